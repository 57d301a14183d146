#ifndef CB_FETCH_H
#define CB_FETCH_H
#include <jansson.h>
#include <stddef.h>

#include "connector.h"

/* How the connectors fetch: one request at a time per source (Canvas asks for that, and no
 * source needs more), through the shared HTTP client, with
 *   - the source's credentials (a header, or for Moodle a parameter the connector adds),
 *   - retries of network errors, timeouts and 5xx: 0.5 s doubling, with jitter, 5 attempts,
 *   - each source's throttling signal honoured (429 + Retry-After; Canvas's 403 "Rate Limit
 *     Exceeded"), up to 10 waits, and Canvas's X-Rate-Limit-Remaining watched so that its
 *     budget is rarely used up,
 *   - a timeout per request (the source's timeout_s, 60 s by default), a size cap (16 MiB)
 *     and a content-type check (HTML from a login page is an error, not data),
 *   - conditional requests (If-None-Match / If-Modified-Since) when asked,
 *   - next pages only on the source's own host, so its token never goes elsewhere.
 * Errors name the source and what to do ("the token was refused (401): ..."). */

enum fetch_auth { FETCH_AUTH_NONE, FETCH_AUTH_BEARER, FETCH_AUTH_TOKEN };

struct fetcher;

struct fetch_req {
	const char *method; /* NULL: GET */
	const char *url;
	const char *body; /* form or JSON; content_type says which */
	const char *content_type;
	const char *expect;   /* "json" or "xml": the answer's Content-Type must mention it */
	const char *etag;     /* sent as If-None-Match */
	const char *modified; /* sent as If-Modified-Since */
};

/* A 2xx answer (or 304 when a validator was sent): resp is borrowed for the call. On failure
 * resp is NULL and err says why. */
typedef void (*fetch_cb)(void *ud, const struct httpc_response *resp, const struct err *err);

struct fetcher *fetcher_new(const struct source_env *env, enum fetch_auth auth,
                            const char *const *extra_headers);
int fetch(struct fetcher *f, const struct fetch_req *rq, fetch_cb cb, void *ud);
/* Drops what is pending (its callback never runs) and frees f. */
void fetcher_free(struct fetcher *f);

/* Requests sent so far (retries included). */
unsigned fetcher_requests(const struct fetcher *f);

/* The rel="next" URL of a Link header, when on the source's own scheme, host and port.
 * 1 when found, 0 when there is no next page, -1 when the next page is elsewhere (err). */
int fetch_link_next(const struct fetcher *f, const struct httpc_response *resp, char *buf,
                    size_t size, struct err *err);
/* The same check for a URL found in a body (pretix's absolute "next"). */
int fetch_same_origin(const struct fetcher *f, const char *url);

/* A paginated list, every page's items gathered into one array. The items are the body
 * itself (a JSON array) or the array at items_key; the next page is the Link header's
 * rel="next" (Canvas) or, with next_key, the URL at that dotted path of the body ("next" for
 * pretix, "meta.pagination.next" for Canvas's JSON-API lists), in both cases only on the
 * source's own host. Every tenth page is reported through the source's progress callback. */
struct fetch_list {
	const char *url;
	const char *items_key; /* NULL: the body is the list */
	const char *next_key;  /* NULL: the Link header */
	const char *what;      /* for progress lines and errors: "orders", "enrollments" */
	/* the first page's answer, for headers that date the whole list (Date,
	 * X-Page-Generated) */
	void (*first)(void *ud, const struct httpc_response *resp);
};
/* items: the whole list (taken by the callee), or NULL and err. */
typedef void (*fetch_list_cb)(void *ud, json_t *items, unsigned pages, const struct err *err);
int fetch_list(struct fetcher *f, const struct fetch_list *l, fetch_list_cb cb, void *ud);

/* Documents asked for again only when changed: rq's If-None-Match / If-Modified-Since from a
 * cursor's "etag" and "last_modified" (borrowed from cursor), and the answer's validators into
 * cursor for the next time. */
void fetch_if_changed(struct fetch_req *rq, const json_t *cursor);
void fetch_keep_validators(const struct httpc_response *resp, json_t *cursor);

/* s percent-encoded for a form or a query, cut short (never mid-escape) to fit cap. */
void fetch_escape(char *out, size_t cap, const char *s);

/* resp's body as JSON (a new reference), or NULL with err naming the line and column. */
json_t *fetch_json(const struct fetcher *f, const struct httpc_response *resp, struct err *err);

#endif
