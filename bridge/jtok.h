#ifndef CB_JTOK_H
#define CB_JTOK_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* JSON read in place: tokens over the bytes, no tree and no allocation per value. The
 * gateway's hot path (every dispatch, the member cache) reads messages this way; a consumer
 * that wants a jansson tree of one value asks jtok_json for it.
 *
 * A value is a token index; -1 stands for "absent", and every reader accepts it. */

/* Private to jtok.c. A value knows the token past it, so skipping one costs nothing. */
struct jtok_tok {
	uint32_t start, end; /* strings without their quotes */
	int32_t next;
	uint32_t kind; /* the type in the low 2 bits, the count of keys or elements above */
};

struct jtok {
	const char *js;
	size_t len;
	struct jtok_tok *tok;
	int n;
	unsigned cap;
};

/* Tokenizes js (borrowed until the next parse). Returns 0, or -1 when it is not JSON (RFC 8259
 * strictly, UTF-8 included; at most 512 levels of nesting). The token array is kept and reused;
 * jtok_free releases it. */
int jtok_parse(struct jtok *j, const char *js, size_t len);
void jtok_free(struct jtok *j);

/* The index just past value i and everything inside it. */
int jtok_skip(const struct jtok *j, int i);
/* The value of key in object obj, or -1. */
int jtok_get(const struct jtok *j, int obj, const char *key);
/* Elements of array arr: for (int e = jtok_first(j, arr), k = 0; k < jtok_size(j, arr); k++,
 * e = jtok_skip(j, e)). Objects alternate keys and values the same way. */
int jtok_size(const struct jtok *j, int i);
static inline int jtok_first(const struct jtok *j, int i)
{
	(void)j;
	return i + 1;
}

int jtok_is_object(const struct jtok *j, int i);
int jtok_is_array(const struct jtok *j, int i);
int jtok_is_string(const struct jtok *j, int i);
int jtok_is_null(const struct jtok *j, int i);
int jtok_is_true(const struct jtok *j, int i);

/* A snowflake, given as a string or a number; 0 when absent or not one. */
uint64_t jtok_u64(const struct jtok *j, int i);
/* A number (integers and the integer part of reals), or dflt. */
long long jtok_int(const struct jtok *j, int i, long long dflt);
double jtok_real(const struct jtok *j, int i, double dflt);
/* 1 when i is a string equal to s (compared as written: s must need no escapes). */
int jtok_eq(const struct jtok *j, int i, const char *s);
/* A string, unescaped into buf with a NUL. Returns its length, or -1 when i is not a string
 * or it does not fit. */
int jtok_str(const struct jtok *j, int i, char *buf, size_t cap);
/* A string, unescaped into a new allocation (free it), or NULL. */
char *jtok_strdup(const struct jtok *j, int i);
/* The value's bytes as written (strings without their quotes). */
const char *jtok_raw(const struct jtok *j, int i, size_t *n);
/* A jansson tree of the value (a new reference), or NULL. */
json_t *jtok_json(const struct jtok *j, int i);

#endif
