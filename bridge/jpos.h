#ifndef CB_JPOS_H
#define CB_JPOS_H
#include <jansson.h>
#include <stddef.h>

#include "err.h"

/* JSON documents whose every value knows its line and column.
 *
 * jansson gives us the values but positions only for syntax errors; jsmn tokenizes the same
 * text with byte offsets. We parse with both and walk the two trees side by side (jansson keeps
 * object keys in document order), recording where each member and item starts. Config and
 * mapping validation use this to report file:line:column. */

struct jpos {
	unsigned line, col; /* 1-based; col counts code points */
};

struct jdoc;

/* Parses text (not necessarily NUL-terminated). name is used in messages (a file path).
 * On a syntax error returns NULL with "name:line:col: message" in err. Duplicate keys are
 * syntax errors. */
struct jdoc *jdoc_parse(const char *name, const char *text, size_t len, struct err *err);

/* Reads and parses a file. */
struct jdoc *jdoc_load(const char *path, struct err *err);

void jdoc_free(struct jdoc *doc);

json_t *jdoc_root(const struct jdoc *doc);
const char *jdoc_name(const struct jdoc *doc);

/* err set to "name:line:column: message" for the value parent[key] (parent[index] when key is
 * NULL), or "name: message" when it has no position. Returns -1. */
int jdoc_fail(const struct jdoc *doc, struct err *err, const json_t *parent, const char *key,
              size_t index, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Position of the value held by parent under key (objects) or at index (arrays); for the
 * root pass parent NULL. With want_key, the position of the key itself. Unknown → {0,0}. */
struct jpos jdoc_pos(const struct jdoc *doc, const json_t *parent, const char *key, size_t index,
                     int want_key);

#endif
