#ifndef CB_SECRET_H
#define CB_SECRET_H
#include <stddef.h>
#include "err.h"

/* Secrets come from the environment: NAME, or a file named by NAME_FILE. Every secret read
 * here (and any registered by hand, such as a password inside DATABASE_URL) is remembered so
 * that the logger and error paths can scrub it from anything they print. */

/* Reads secret NAME. Returns 0 and sets *out (owned by the caller) when found, 1 when neither
 * NAME nor NAME_FILE is set, -1 on error (unreadable file, or a file readable by group or
 * others). Empty values count as unset. */
int secret_get(const char *name, char **out, struct err *err);

/* Remembers a value to scrub. Values shorter than 4 bytes are ignored (they would scrub
 * ordinary text). */
void secret_register(const char *value);

/* Returns a newly allocated copy of s with every registered secret replaced by <redacted>,
 * or NULL when s contains none (the common case costs no allocation). */
char *secret_scrub(const char *s);

/* Forgets all registered secrets (tests). */
void secret_clear(void);

#endif
