#ifndef CB_DIAG_H
#define CB_DIAG_H
#include <stdio.h>

#include "jpos.h"

/* Diagnostics found while checking a file: "file:line:col: message", sorted by position. */
struct diag {
	char *file;
	struct jpos pos;
	char *msg;
};

struct diags {
	struct diag *v;
	size_t n, cap;
};

/* Adds a diagnostic. printf-style message. */
void diags_add(struct diags *d, const char *file, struct jpos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sorts by file, line, column. */
void diags_sort(struct diags *d);

/* Writes one "file:line:col: message" per line. */
void diags_print(const struct diags *d, FILE *out);

/* Formats diagnostic i as "file:line:col: message" into buf. */
void diags_format(const struct diags *d, size_t i, char *buf, size_t size);

void diags_clear(struct diags *d);

#endif
