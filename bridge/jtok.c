#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "jtok.h"

enum { T_OBJECT, T_ARRAY, T_STRING, T_PRIMITIVE };

#define TYPE(t)   ((t)->kind & 3u)
#define SIZE(t)   ((int)((t)->kind >> 2))
#define DIGIT(c)  ((unsigned)((c) - '0') < 10u)
#define WS(c)     ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
#define MAX_DEPTH 512

/* Bytes a string's scan stops at: the quote, a backslash, controls, and UTF-8 to check. */
#define STOP(c) ((c) < 0x20 || (c) >= 0x80 || (c) == '"' || (c) == '\\')
#define HEX(c)  (DIGIT(c) || (unsigned)(((c) | 0x20) - 'a') < 6u)

#ifdef __SSE2__
/* Of the 16 bytes at p, the quotes (*q) and what else a string's scan must look at (*s):
 * backslashes, and bytes below ' ' compared as signed, which are the controls and every byte of
 * UTF-8 in one go. */
static inline void marks16(const char *p, unsigned *q, unsigned *s)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	*q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
	*s = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
	                                              _mm_cmplt_epi8(v, _mm_set1_epi8(' '))));
}
#endif

/* The first byte at or after p that needs a look, or e. Strings are most of a message's bytes:
 * plain text goes by 16 bytes at a time. */
static inline const char *next_stop(const char *p, const char *e)
{
#ifdef __SSE2__
	for (; e - p >= 16; p += 16) {
		unsigned q, s;
		marks16(p, &q, &s);
		if (q | s)
			return p + __builtin_ctz(q | s);
	}
#endif
	while (p < e && !STOP((unsigned char)*p))
		p++;
	return p;
}

/* Past one UTF-8 sequence whose lead byte (>= 0x80) is at p, or NULL: the shortest form only,
 * no surrogates, nothing above U+10FFFF (RFC 3629). */
static const char *utf8_next(const char *p, const char *e)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned lo = 0x80, hi = 0xBF; /* what the second byte may be */
	long n;
	if (u[0] >= 0xC2 && u[0] <= 0xDF) {
		n = 2;
	} else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
		n = 3;
		if (u[0] == 0xE0)
			lo = 0xA0;
		else if (u[0] == 0xED)
			hi = 0x9F;
	} else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
		n = 4;
		if (u[0] == 0xF0)
			lo = 0x90;
		else if (u[0] == 0xF4)
			hi = 0x8F;
	} else {
		return NULL;
	}
	if (e - p < n || u[1] < lo || u[1] > hi)
		return NULL;
	for (long k = 2; k < n; k++)
		if ((u[k] & 0xC0) != 0x80)
			return NULL;
	return p + n;
}

/* The closing quote of the string whose body starts at p, or NULL when it is not valid. A lone
 * surrogate escape passes, as the grammar has it; jtok_str refuses it. */
static const char *string_end(const char *p, const char *e)
{
	for (;;) {
		p = next_stop(p, e);
		if (p == e)
			return NULL;
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p;
		if (c == '\\') {
			if (e - p < 2)
				return NULL;
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				break;
			case 'u':
				if (e - p < 6 || !HEX(p[2]) || !HEX(p[3]) || !HEX(p[4]) ||
				    !HEX(p[5]))
					return NULL;
				p += 6;
				break;
			default:
				return NULL;
			}
		} else if (c < 0x20) {
			return NULL;
		} else {
			/* text in another script is mostly multibyte: stay here while it lasts */
			do
				p = utf8_next(p, e);
			while (p && p < e && (unsigned char)*p >= 0x80);
			if (!p)
				return NULL;
		}
	}
}

/* Past the number at p: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, or NULL. What follows is
 * the caller's to check (a comma, a bracket, white space or the end). */
static const char *number_end(const char *p, const char *e)
{
	if (*p == '-' && ++p == e)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (DIGIT(*p)) {
		do
			p++;
		while (p < e && DIGIT(*p));
	} else {
		return NULL;
	}
	if (p < e && *p == '.') {
		if (++p == e || !DIGIT(*p))
			return NULL;
		do
			p++;
		while (p < e && DIGIT(*p));
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p == e || !DIGIT(*p))
			return NULL;
		do
			p++;
		while (p < e && DIGIT(*p));
	}
	return p;
}

/* The closing quote of the string whose body starts at p, or NULL. Most strings (keys,
 * snowflakes, timestamps) have nothing to look at before their quote and end here; the others
 * go byte by byte where they must, in string_end. */
static inline const char *string_close(const char *p, const char *e)
{
#ifdef __SSE2__
	for (; e - p >= 16; p += 16) {
		unsigned q, s;
		marks16(p, &q, &s);
		if (q && !(s & (q - 1)))
			return p + __builtin_ctz(q);
		if (q | s)
			break;
	}
#endif
	return string_end(p, e);
}

static inline const char *skip_ws(const char *p, const char *e)
{
	while (p < e && WS(*p))
		p++;
	return p;
}

static struct jtok_tok *grow(struct jtok *j)
{
	unsigned cap = j->cap ? j->cap * 2 : 256;
	struct jtok_tok *t = realloc(j->tok, (size_t)cap * sizeof(*t));
	if (t) {
		j->tok = t;
		j->cap = cap;
	}
	return t;
}

static inline struct jtok_tok token(const char *js, const char *start, const char *end, int next,
                                    uint32_t kind)
{
	return (struct jtok_tok){(uint32_t)(start - js), (uint32_t)(end - js), next, kind};
}

/* One pass over the bytes with a stack of the open containers; each value's token is written
 * when it starts, and a container's count, end and next when it closes. The paths a compact
 * message takes come first; white space goes the long way round. */
int jtok_parse(struct jtok *j, const char *js, size_t len)
{
	struct {
		int tok;        /* an open container around the current one */
		uint32_t count; /* and its keys or elements so far */
	} stack[MAX_DEPTH];
	const char *p = js, *e = js + len, *q;
	struct jtok_tok *tok = j->tok;
	int n = 0, depth = 0, cur = -1;
	unsigned cap = j->cap;
	uint32_t count = 0;
	char closer = 0; /* of the innermost container */

	j->js = js;
	j->len = len;
	j->n = 0;
	if (len > 0x7fffffff)
		return -1;

value:
	if (p == e || WS(*p)) {
		p = skip_ws(p, e);
		if (p == e)
			return -1;
	}
	if ((unsigned)n == cap) {
		if (!(tok = grow(j)))
			return -1;
		cap = j->cap;
	}
	if (*p == '"') {
		if (!(q = string_close(p + 1, e)))
			return -1;
		tok[n] = token(js, p + 1, q, n + 1, T_STRING);
		n++;
		p = q + 1;
		goto after;
	}
	switch (*p) {
	case '{':
	case '[':
		if (depth == MAX_DEPTH)
			return -1;
		stack[depth].tok = cur;
		stack[depth].count = count;
		depth++;
		cur = n;
		closer = *p == '{' ? '}' : ']';
		tok[n] = token(js, p, p, 0, closer == '}' ? T_OBJECT : T_ARRAY);
		n++;
		p = skip_ws(p + 1, e);
		if (p < e && *p == closer) {
			count = 0;
			goto close;
		}
		count = 1;
		if (closer == '}')
			goto key;
		goto value;
	case 't':
		if (e - p < 4 || memcmp(p, "true", 4) != 0)
			return -1;
		q = p + 4;
		goto primitive;
	case 'f':
		if (e - p < 5 || memcmp(p, "false", 5) != 0)
			return -1;
		q = p + 5;
		goto primitive;
	case 'n':
		if (e - p < 4 || memcmp(p, "null", 4) != 0)
			return -1;
		q = p + 4;
		goto primitive;
	default:
		if (!(q = number_end(p, e)))
			return -1;
	primitive:
		tok[n] = token(js, p, q, n + 1, T_PRIMITIVE);
		n++;
		p = q;
		break;
	}

after:
	/* compact JSON first: a comma or the bracket right after the value */
	if (p < e && depth) {
		if (*p == ',') {
			count++;
			p++;
			if (closer == '}')
				goto key;
			goto value;
		}
		if (*p == closer)
			goto close;
	}
	p = skip_ws(p, e);
	if (p == e || !depth) {
		/* one value, and only white space after it */
		if (depth || p != e)
			return -1;
		j->n = n;
		return 0;
	}
	if (*p != ',' && *p != closer)
		return -1;
	goto after;
close:
	tok[cur].end = (uint32_t)(p + 1 - js);
	tok[cur].next = n;
	tok[cur].kind |= count << 2;
	depth--;
	cur = stack[depth].tok;
	count = stack[depth].count;
	closer = depth && TYPE(&tok[cur]) == T_OBJECT ? '}' : ']';
	p++;
	goto after;

key:
	if (p == e || *p != '"') {
		p = skip_ws(p, e);
		if (p == e || *p != '"')
			return -1;
	}
	if ((unsigned)n == cap) {
		if (!(tok = grow(j)))
			return -1;
		cap = j->cap;
	}
	if (!(q = string_close(p + 1, e)))
		return -1;
	/* a key counts its value, as jsmn's keys did */
	tok[n] = token(js, p + 1, q, n + 1, T_STRING | 1u << 2);
	n++;
	p = q + 1;
	if (p == e || *p != ':') {
		p = skip_ws(p, e);
		if (p == e || *p != ':')
			return -1;
	}
	p++;
	goto value;
}

void jtok_free(struct jtok *j)
{
	free(j->tok);
	memset(j, 0, sizeof(*j));
}

int jtok_skip(const struct jtok *j, int i)
{
	return i >= 0 && i < j->n ? j->tok[i].next : j->n;
}

int jtok_size(const struct jtok *j, int i)
{
	return i >= 0 && i < j->n ? SIZE(&j->tok[i]) : 0;
}

static inline int is(const struct jtok *j, int i, unsigned type)
{
	return i >= 0 && i < j->n && TYPE(&j->tok[i]) == type;
}

int jtok_is_object(const struct jtok *j, int i)
{
	return is(j, i, T_OBJECT);
}

int jtok_is_array(const struct jtok *j, int i)
{
	return is(j, i, T_ARRAY);
}

int jtok_is_string(const struct jtok *j, int i)
{
	return is(j, i, T_STRING);
}

int jtok_is_null(const struct jtok *j, int i)
{
	return is(j, i, T_PRIMITIVE) && j->js[j->tok[i].start] == 'n';
}

int jtok_is_true(const struct jtok *j, int i)
{
	return is(j, i, T_PRIMITIVE) && j->js[j->tok[i].start] == 't';
}

int jtok_get(const struct jtok *j, int obj, const char *key)
{
	if (!is(j, obj, T_OBJECT))
		return -1;
	size_t kl = strlen(key);
	const struct jtok_tok *t = j->tok;
	/* key to key: each value's token says where the next key is */
	for (int m = SIZE(&t[obj]), k = obj + 1; m > 0; m--, k = t[k + 1].next) {
		if (t[k].end - t[k].start != kl)
			continue;
		/* short keys that mostly differ at once: cheaper than a call to memcmp */
		const char *a = j->js + t[k].start;
		size_t x = 0;
		while (x < kl && a[x] == key[x])
			x++;
		if (x == kl)
			return k + 1;
	}
	return -1;
}

/* Eight digits at p as a number, or -1 when one of them is not a digit: bytes in a word, then
 * pairs, fours and the eight combined in parallel. Snowflakes are read for every role of every
 * member, and digit by digit each one is a long chain of multiplies. */
static inline int64_t digits8(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t x = (uint64_t)u[0] | (uint64_t)u[1] << 8 | (uint64_t)u[2] << 16 |
	             (uint64_t)u[3] << 24 | (uint64_t)u[4] << 32 | (uint64_t)u[5] << 40 |
	             (uint64_t)u[6] << 48 | (uint64_t)u[7] << 56;
	const uint64_t high = 0xF0F0F0F0F0F0F0F0u, threes = 0x3030303030303030u;
	/* every byte 0x30-0x39: its high nibble a 3, and its low one not carrying when given 6 */
	if ((x & high) != threes || ((x + 0x0606060606060606u) & high) != threes)
		return -1;
	x -= threes;                                             /* the first digit lowest */
	x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFu;           /* 4 pairs of digits */
	x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFu;         /* 2 fours */
	return (int64_t)((x & 0xFFFFFFFFu) * 10000 + (x >> 32)); /* the eight */
}

uint64_t jtok_u64(const struct jtok *j, int i)
{
	if (!is(j, i, T_STRING) && !is(j, i, T_PRIMITIVE))
		return 0;
	const char *s = j->js + j->tok[i].start, *e = j->js + j->tok[i].end;
	if (s == e || e - s > 20)
		return 0;
	/* 19 digits cannot overflow: a 20th is added apart, with a check */
	const char *e19 = e - s == 20 ? e - 1 : e;
	uint64_t v = 0;
	for (; e19 - s >= 8; s += 8) {
		int64_t d = digits8(s);
		if (d < 0)
			return 0;
		v = v * 100000000 + (uint64_t)d;
	}
	for (; s < e19; s++) {
		if (!DIGIT(*s))
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s == e)
		return v;
	unsigned d = (unsigned)(unsigned char)*s - '0';
	if (d > 9 || v > (UINT64_MAX - d) / 10)
		return 0;
	return v * 10 + d;
}

long long jtok_int(const struct jtok *j, int i, long long dflt)
{
	if (!is(j, i, T_PRIMITIVE))
		return dflt;
	const char *s = j->js + j->tok[i].start, *e = j->js + j->tok[i].end;
	/* op and s on every message: an integer exact as a double reads without strtod */
	const char *d = s + (*s == '-');
	if (e > d && e - d <= 15) {
		long long v = 0;
		while (d < e && DIGIT(*d))
			v = v * 10 + (*d++ - '0');
		if (d == e)
			return *s == '-' ? -v : v;
	}
	if (*s != '-' && (*s < '0' || *s > '9'))
		return dflt;
	return (long long)jtok_real(j, i, (double)dflt);
}

double jtok_real(const struct jtok *j, int i, double dflt)
{
	if (!is(j, i, T_PRIMITIVE))
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
	if (!is(j, i, T_STRING))
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
	if (!is(j, i, T_STRING) || !cap)
		return -1;
	const char *s = j->js + j->tok[i].start, *e = j->js + j->tok[i].end;
	size_t o = 0;
	while (s < e) {
		unsigned cp;
		const char *b = memchr(s, '\\', (size_t)(e - s));
		size_t run = (size_t)((b ? b : e) - s);
		if (o + run >= cap)
			return -1;
		memcpy(buf + o, s, run);
		o += run;
		s += run;
		if (!b)
			break;
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
	if (!is(j, i, T_STRING))
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
	int q = TYPE(&j->tok[i]) == T_STRING;
	size_t start = (size_t)j->tok[i].start - (size_t)q;
	size_t len = (size_t)(j->tok[i].end - j->tok[i].start) + 2 * (size_t)q;
	return json_loadb(j->js + start, len, JSON_DECODE_ANY, NULL);
}
