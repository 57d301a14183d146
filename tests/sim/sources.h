#ifndef SIM_SOURCES_H
#define SIM_SOURCES_H
/* The fake Canvas, Moodle and pretix that discord-sim serves under /canvas, /moodle and /pretix.
 * One campus of learners is shared by the three; each system's part is held as jansson objects
 * in that system's own API shapes, so an answer is mostly the stored objects, paged. The whole
 * campus is one JSON document (GET /_sim/sources; --sources-file loads one). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

enum src_kind { SRC_CANVAS, SRC_MOODLE, SRC_PRETIX, SRC_FILES, SRC_COUNT };

/* A query string or form body as (key, value) pairs in their order; keys may repeat
 * (include[]=a&include[]=b). */
struct src_params {
	size_t n, cap;
	char **k, **v;
};
/* decode: undo %XX and '+' (form bodies; lws has already decoded query strings). */
void srcp_parse(struct src_params *p, const char *s, size_t len, bool decode);
void srcp_add(struct src_params *p, const char *k, const char *v);
void srcp_free(struct src_params *p);
const char *srcp_get(const struct src_params *p, const char *key);
bool srcp_has(const struct src_params *p, const char *key, const char *value);
/* p as a query string, percent-encoded, without the keys in skip (NULL-terminated). */
void srcp_encode(const struct src_params *p, const char *const *skip, char *buf, size_t size);

/* A growable text buffer. */
struct sbuf {
	char *s;
	size_t len, cap;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_str(struct sbuf *b, const char *s);
void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sb_take(struct sbuf *b); /* the text (never NULL); b is empty afterwards */

/* One request to a fake source. */
struct src_req {
	struct http_req *rq;
	struct http_resp *rs;
	enum src_kind kind;
	const char *sub;      /* the path after the source's prefix */
	struct src_params q;  /* query parameters, then form-body parameters */
	char base[192];       /* "http://HOST:PORT" for absolute links */
	uint64_t now;         /* the sources' clock at arrival (ms) */
	double upfront;       /* Canvas: the bucket's up-front charge, given back when answered */
	const char *function; /* Moodle: wsfunction, for the request log */
};

/* The campus: root is the whole document; the indexes (id or code -> object) borrow from it. */
struct campus {
	json_t *root;
	json_t *cv_users;  /* canvas user id -> user */
	json_t *md_users;  /* moodle user id -> user */
	json_t *px_orders; /* order code -> order */
};
extern struct campus campus;

/* Canvas's throttle (a leaky bucket) and pretix's (a budget per window). */
struct src_throttle {
	double bucket, refill, upfront, cost; /* cost < 0: each request's own, 0.5 to 2.0 */
	double used, held;    /* costs (leaking away), and up-front charges of answers under way */
	uint64_t at_ms;       /* src_mono_ms() of the last leak */
	long limit, window_s; /* pretix: limit 0 is off */
	long window_count;
	uint64_t window_start;
};
extern struct src_throttle src_throttle[SRC_COUNT];

/* The sources' clock: strictly increasing, never before the campus's own "now" (so changes
 * made through /_sim/sources/mutate are newer than anything generated). Virtual when --seed
 * is given: one millisecond per reading. */
uint64_t src_now_ms(void);
double src_rand(void);
/* ms as "2026-02-13T22:59:59Z" (frac 0) or "2026-02-13T22:59:59.123000Z" (frac 1). */
void src_iso(uint64_t ms, char *buf, size_t size, int frac);
json_t *src_iso_json(uint64_t ms, int frac);
/* An ISO 8601 time (date only, 'Z', offsets, fractions; a space where a '+' was): 0 on
 * success. */
int src_parse_iso(const char *s, uint64_t *ms);
uint64_t src_utc(int y, int mo, int d, int h, int mi, int s); /* ms */

/* Answers: the body is taken over. */
void src_text(struct src_req *r, int status, const char *ctype, char *text);
void src_json(struct src_req *r, int status, json_t *body, size_t flags);
void src_header(struct src_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string that lives as long as the process (content types from faults). */
const char *src_intern(const char *s);

json_t *jarr(json_t *o, const char *k); /* o[k] when it is an array, else an empty one */
json_int_t jint(json_t *o, const char *k);
const char *jstr(json_t *o, const char *k);
/* A positive decimal number, or -1. */
long src_long(const char *s);

/* sources_campus.c: generation, loading, indexes, changes. */
json_t *campus_generate(long seed, int learners);
/* Fills in what a campus file leaves out and builds the indexes; takes root. 0 or -1 (err). */
int campus_adopt(json_t *root, char *err, size_t errsize);
void campus_free(void);
/* POST /_sim/sources/mutate: 0 and a report, or an HTTP status and err. */
int campus_mutate(json_t *body, json_t **report, char *err, size_t errsize);
/* Canvas's effective due date of an assignment for a learner (overrides applied); 0 when
 * there is none. */
uint64_t campus_canvas_due(json_t *assignment, json_int_t user_id, json_int_t section_id);

/* The three fakes. */
void canvas_handle(struct src_req *r);
/* sources_mocks.c: Canvas request mocks loaded from a directory */
int canvas_mocks_load(const char *dir, char *err, size_t errsize);
void canvas_mocks_free(void);
void canvas_mocks_handle(struct src_req *r, const char *endpoint);
/* sources_files.c: files served under /files with ETag and Last-Modified */
int files_load(const char *dir, char *err, size_t errsize);
void files_free(void);
void files_handle(struct src_req *r);
void moodle_handle(struct src_req *r);
void pretix_handle(struct src_req *r);
/* Throttles run on the real, monotonic clock even when --seed makes the sources' clock
 * virtual: clients wait in real time. */
uint64_t src_mono_ms(void);
/* Leaks the Canvas bucket up to now. */
void canvas_leak(void);

#endif
