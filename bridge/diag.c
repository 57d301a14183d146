#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void diags_add(struct diags *d, const char *file, struct jpos pos, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	if (pos.line == 0)
		pos = (struct jpos){1, 1};
	d->v[d->n].file = strdup(file ? file : "<input>");
	d->v[d->n].msg = strdup(buf);
	d->v[d->n].pos = pos;
	if (d->v[d->n].file && d->v[d->n].msg)
		d->n++;
}

static int cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	if (x->pos.col != y->pos.col)
		return x->pos.col < y->pos.col ? -1 : 1;
	return strcmp(x->msg, y->msg);
}

void diags_sort(struct diags *d)
{
	if (d->n > 1)
		qsort(d->v, d->n, sizeof(*d->v), cmp);
}

void diags_format(const struct diags *d, size_t i, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%u:%u: %s", d->v[i].file, d->v[i].pos.line, d->v[i].pos.col,
	         d->v[i].msg);
}

void diags_print(const struct diags *d, FILE *out)
{
	char buf[1400];
	for (size_t i = 0; i < d->n; i++) {
		diags_format(d, i, buf, sizeof(buf));
		fprintf(out, "%s\n", buf);
	}
}

void diags_clear(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	*d = (struct diags){0};
}
