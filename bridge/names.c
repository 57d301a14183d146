/* Unicode work is utf8proc's: compatibility decomposition with the marks stripped and case
 * folded turns "Sérgio" into "sergio" and "ﬁ" into "fi". A few Latin letters have no
 * decomposition to a base letter ("ł", "ø", "æ"); people type them as their ASCII look-alikes,
 * so those are folded here. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "names.h"

/* Letters that NFKD leaves alone but keyboards without them replace. */
static const char *plain(utf8proc_int32_t c)
{
	switch (c) {
	case 0x0142: /* ł */
		return "l";
	case 0x00F8: /* ø */
		return "o";
	case 0x0111: /* đ */
		return "d";
	case 0x00E6: /* æ */
		return "ae";
	case 0x0153: /* œ */
		return "oe";
	case 0x00FE: /* þ */
		return "th";
	case 0x0131: /* ı */
		return "i";
	case 0x00F0: /* ð */
		return "d";
	default:
		return NULL;
	}
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *names_fold(const char *name)
{
	utf8proc_uint8_t *m = NULL;
	if (!name)
		return NULL;
	utf8proc_ssize_t n =
	    utf8proc_map((const utf8proc_uint8_t *)name, 0, &m,
	                 UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPAT |
	                     UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK | UTF8PROC_CASEFOLD);
	if (n < 0)
		return NULL;
	/* the folded letters, parts ended by '\0'; at most twice as long ("æ" -> "ae") */
	size_t cap = (size_t)n * 2 + 2, len = 0, nparts = 0;
	char *buf = malloc(cap), *out = NULL;
	char **parts = NULL;
	if (!buf)
		goto done;
	int in_part = 0;
	for (utf8proc_ssize_t i = 0; i < n;) {
		utf8proc_int32_t c;
		utf8proc_ssize_t k = utf8proc_iterate(m + i, n - i, &c);
		if (k <= 0)
			goto done;
		utf8proc_category_t cat = utf8proc_category(c);
		const char *p = plain(c);
		int letter = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
		             cat == UTF8PROC_CATEGORY_LT || cat == UTF8PROC_CATEGORY_LM ||
		             cat == UTF8PROC_CATEGORY_LO || cat == UTF8PROC_CATEGORY_ND ||
		             cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
		int separator = cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_PD ||
		                c == ',' || c == '/' || c == '_' || c < 0x20;
		if (letter || p) {
			if (p) {
				size_t pl = strlen(p);
				memcpy(buf + len, p, pl);
				len += pl;
			} else {
				memcpy(buf + len, m + i, (size_t)k);
				len += (size_t)k;
			}
			if (!in_part)
				nparts++;
			in_part = 1;
		} else if (separator && in_part) {
			buf[len++] = '\0';
			in_part = 0;
		}
		/* other punctuation (O'Brien, St. John) joins what it stands between */
		i += k;
	}
	if (in_part)
		buf[len++] = '\0';
	parts = calloc(nparts ? nparts : 1, sizeof(char *));
	out = malloc(len + 1);
	if (!parts || !out) {
		free(out);
		out = NULL;
		goto done;
	}
	for (size_t i = 0, at = 0; i < nparts; i++) {
		parts[i] = buf + at;
		at += strlen(buf + at) + 1;
	}
	qsort(parts, nparts, sizeof(char *), by_text);
	size_t o = 0;
	for (size_t i = 0; i < nparts; i++) {
		size_t pl = strlen(parts[i]);
		if (o)
			out[o++] = ' ';
		memcpy(out + o, parts[i], pl);
		o += pl;
	}
	out[o] = '\0';
done:
	free(parts);
	free(buf);
	free(m);
	return out;
}

int names_same(const char *a, const char *b)
{
	char *fa = names_fold(a), *fb = names_fold(b);
	int same = fa && fb && *fa && strcmp(fa, fb) == 0;
	free(fa);
	free(fb);
	return same;
}
