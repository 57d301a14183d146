#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "secret.h"

int log_threshold = LOGL_INFO;
static FILE *log_stream;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int log_level_parse(const char *s)
{
	for (int i = 0; s && i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > LOGL_TRACE)
		return "?";
	return level_names[level];
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

/* A growable line buffer; the line is written with one fwrite so lines never interleave. */
struct line {
	char *p;
	size_t len, cap;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->len + n + 2 > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		while (l->len + n + 2 > cap)
			cap *= 2;
		char *p = realloc(l->p, cap);
		if (!p)
			return;
		l->p = p;
		l->cap = cap;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* logfmt value: bare when it is a plain token, otherwise quoted with \" \\ \n \t escapes and
 * other control bytes as \u00XX. Secrets are scrubbed first. */
static void put_value(struct line *l, const char *v)
{
	char *scrubbed = secret_scrub(v ? v : "");
	const char *s = scrubbed ? scrubbed : (v ? v : "");
	int bare = *s != '\0';

	for (const char *c = s; *c && bare; c++)
		if ((unsigned char)*c <= ' ' || *c == '"' || *c == '=' || *c == '\\' || *c == 0x7f)
			bare = 0;
	if (bare) {
		puts_(l, s);
		free(scrubbed);
		return;
	}
	put(l, "\"", 1);
	for (const char *c = s; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		char esc[8];
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			put(l, esc, 2);
		} else if (ch == '\n') {
			put(l, "\\n", 2);
		} else if (ch == '\t') {
			put(l, "\\t", 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			put(l, esc, 6);
		} else {
			put(l, (const char *)c, 1);
		}
	}
	put(l, "\"", 1);
	free(scrubbed);
}

void log_emit(int level, const char *mod, const char *msg, ...)
{
	struct line l = {0};
	struct timespec ts;
	struct tm tm;
	char tbuf[64];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(tbuf + n, sizeof(tbuf) - n, ".%03ldZ", ts.tv_nsec / 1000000);

	puts_(&l, "ts=");
	puts_(&l, tbuf);
	puts_(&l, " level=");
	puts_(&l, log_level_name(level));
	puts_(&l, " mod=");
	put_value(&l, mod);
	puts_(&l, " msg=");
	put_value(&l, msg);

	va_start(ap, msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		put(&l, " ", 1);
		puts_(&l, k);
		put(&l, "=", 1);
		put_value(&l, v);
	}
	va_end(ap);
	put(&l, "\n", 1);
	if (l.p) {
		FILE *f = log_stream ? log_stream : stderr;
		fwrite(l.p, 1, l.len, f);
		fflush(f);
	}
	free(l.p);
}
