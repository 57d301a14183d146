/* jsmn's code, built here once with the settings jtok.h declares it with */
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>
#include <stdlib.h>
#include <string.h>

#include "jtok.h"

/* jsmn looks only at a primitive's first byte: the rest of true, false, null and numbers is
 * checked here. */
static int valid_primitive(const char *p, size_t n)
{
	switch (*p) {
	case 't':
		return n == 4 && memcmp(p, "true", 4) == 0;
	case 'f':
		return n == 5 && memcmp(p, "false", 5) == 0;
	case 'n':
		return n == 4 && memcmp(p, "null", 4) == 0;
	default:
		break;
	}
	size_t i = 0;
	if (p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	else
		return 0;
	if (i < n && p[i] == '.') {
		size_t d = ++i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	return i == n;
}

int jtok_parse(struct jtok *j, const char *js, size_t len)
{
	jsmn_parser p;
	jsmn_init(&p);
	j->js = js;
	j->len = len;
	j->n = 0;
	if (len > 0x7fffffff)
		return -1;
	for (;;) {
		int r = j->cap ? jsmn_parse(&p, js, len, j->tok, j->cap) : JSMN_ERROR_NOMEM;
		if (r == JSMN_ERROR_NOMEM) {
			/* jsmn goes on from where it stopped once it has room */
			unsigned cap = j->cap ? j->cap * 2 : 256;
			jsmntok_t *t = realloc(j->tok, cap * sizeof(*t));
			if (!t)
				return -1;
			j->tok = t;
			j->cap = cap;
			continue;
		}
		if (r < 1)
			return -1;
		/* one value, and nothing after it but white space */
		size_t end = (size_t)j->tok[0].end;
		while (end < len && strchr(" \t\r\n", js[end]) && js[end])
			end++;
		if (end != len || jtok_skip(&(struct jtok){.tok = j->tok, .n = r}, 0) != r)
			return -1;
		for (int i = 0; i < r; i++)
			if (j->tok[i].type == JSMN_PRIMITIVE &&
			    !valid_primitive(js + j->tok[i].start,
			                     (size_t)(j->tok[i].end - j->tok[i].start)))
				return -1;
		j->n = r;
		return 0;
	}
}

void jtok_free(struct jtok *j)
{
	free(j->tok);
	memset(j, 0, sizeof(*j));
}

int jtok_skip(const struct jtok *j, int i)
{
	if (i < 0 || i >= j->n)
		return j->n;
	int end = j->tok[i].end, k = i + 1;
	while (k < j->n && j->tok[k].start < end)
		k++;
	return k;
}

int jtok_size(const struct jtok *j, int i)
{
	return i >= 0 && i < j->n ? j->tok[i].size : 0;
}

static int is(const struct jtok *j, int i, jsmntype_t type)
{
	return i >= 0 && i < j->n && j->tok[i].type == type;
}

int jtok_is_object(const struct jtok *j, int i)
{
	return is(j, i, JSMN_OBJECT);
}

int jtok_is_array(const struct jtok *j, int i)
{
	return is(j, i, JSMN_ARRAY);
}

int jtok_is_string(const struct jtok *j, int i)
{
	return is(j, i, JSMN_STRING);
}

int jtok_is_null(const struct jtok *j, int i)
{
	return is(j, i, JSMN_PRIMITIVE) && j->js[j->tok[i].start] == 'n';
}

int jtok_is_true(const struct jtok *j, int i)
{
	return is(j, i, JSMN_PRIMITIVE) && j->js[j->tok[i].start] == 't';
}

int jtok_get(const struct jtok *j, int obj, const char *key)
{
	if (!is(j, obj, JSMN_OBJECT))
		return -1;
	size_t kl = strlen(key);
	int k = obj + 1;
	for (int m = 0; m < j->tok[obj].size; m++) {
		const jsmntok_t *t = &j->tok[k];
		if ((size_t)(t->end - t->start) == kl && memcmp(j->js + t->start, key, kl) == 0)
			return k + 1;
		k = jtok_skip(j, k + 1);
	}
	return -1;
}

uint64_t jtok_u64(const struct jtok *j, int i)
{
	if (!is(j, i, JSMN_STRING) && !is(j, i, JSMN_PRIMITIVE))
		return 0;
	const char *s = j->js + j->tok[i].start, *e = j->js + j->tok[i].end;
	if (s == e || e - s > 20)
		return 0;
	uint64_t v = 0;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		uint64_t nv = v * 10 + (uint64_t)(*s - '0');
		if (nv / 10 != v)
			return 0; /* overflow */
		v = nv;
	}
	return v;
}

long long jtok_int(const struct jtok *j, int i, long long dflt)
{
	if (!is(j, i, JSMN_PRIMITIVE))
		return dflt;
	const char *s = j->js + j->tok[i].start;
	if (*s != '-' && (*s < '0' || *s > '9'))
		return dflt;
	return (long long)jtok_real(j, i, (double)dflt);
}

double jtok_real(const struct jtok *j, int i, double dflt)
{
	if (!is(j, i, JSMN_PRIMITIVE))
		return dflt;
	char buf[64];
	size_t n = (size_t)(j->tok[i].end - j->tok[i].start);
	if (n >= sizeof(buf))
		return dflt;
	memcpy(buf, j->js + j->tok[i].start, n);
	buf[n] = '\0';
	char *end;
	double v = strtod(buf, &end);
	return end == buf + n && n ? v : dflt;
}

int jtok_eq(const struct jtok *j, int i, const char *s)
{
	if (!is(j, i, JSMN_STRING))
		return 0;
	size_t n = strlen(s);
	return (size_t)(j->tok[i].end - j->tok[i].start) == n &&
	       memcmp(j->js + j->tok[i].start, s, n) == 0;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		char c = p[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

int jtok_str(const struct jtok *j, int i, char *buf, size_t cap)
{
	if (!is(j, i, JSMN_STRING) || !cap)
		return -1;
	const char *s = j->js + j->tok[i].start, *e = j->js + j->tok[i].end;
	size_t o = 0;
	while (s < e) {
		unsigned cp;
		if (*s != '\\') {
			if (o + 1 >= cap)
				return -1;
			buf[o++] = *s++;
			continue;
		}
		if (e - s < 2)
			return -1;
		char c = s[1];
		s += 2;
		switch (c) {
		case 'n':
			cp = '\n';
			break;
		case 't':
			cp = '\t';
			break;
		case 'r':
			cp = '\r';
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'u':
			if (e - s < 4 || hex4(s, &cp))
				return -1;
			s += 4;
			if (cp >= 0xD800 && cp < 0xDC00) {
				unsigned lo;
				if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				s += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				return -1;
			}
			break;
		default:
			cp = (unsigned char)c;
			break; /* \" \\ \/ */
		}
		/* UTF-8 */
		unsigned char u[4];
		size_t n;
		if (cp < 0x80) {
			u[0] = (unsigned char)cp;
			n = 1;
		} else if (cp < 0x800) {
			u[0] = (unsigned char)(0xC0 | (cp >> 6));
			u[1] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			u[0] = (unsigned char)(0xE0 | (cp >> 12));
			u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
			u[2] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			u[0] = (unsigned char)(0xF0 | (cp >> 18));
			u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
			u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
			u[3] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		if (cp == 0 || o + n >= cap)
			return -1; /* NUL inside a string is not for C strings */
		memcpy(buf + o, u, n);
		o += n;
	}
	buf[o] = '\0';
	return (int)o;
}

char *jtok_strdup(const struct jtok *j, int i)
{
	if (!is(j, i, JSMN_STRING))
		return NULL;
	size_t cap = (size_t)(j->tok[i].end - j->tok[i].start) + 1;
	char *s = malloc(cap);
	if (s && jtok_str(j, i, s, cap) < 0) {
		free(s);
		s = NULL;
	}
	return s;
}

const char *jtok_raw(const struct jtok *j, int i, size_t *n)
{
	if (i < 0 || i >= j->n) {
		*n = 0;
		return NULL;
	}
	*n = (size_t)(j->tok[i].end - j->tok[i].start);
	return j->js + j->tok[i].start;
}

json_t *jtok_json(const struct jtok *j, int i)
{
	if (i < 0 || i >= j->n)
		return NULL;
	int q = j->tok[i].type == JSMN_STRING;
	size_t start = (size_t)j->tok[i].start - (size_t)q;
	size_t len = (size_t)(j->tok[i].end - j->tok[i].start) + 2 * (size_t)q;
	return json_loadb(j->js + start, len, JSON_DECODE_ANY, NULL);
}
