#ifndef CB_REST_H
#define CB_REST_H
#include <jansson.h>
#include <uv.h>

#include "err.h"
#include "httpc.h"

/* Discord's REST API, on the loop, as fast as Discord allows and no faster.
 *
 * Requests queue per route and major parameter. Buckets are learnt from X-RateLimit-Bucket;
 * while a bucket's budget (Remaining, Reset-After) allows, several requests of it are in flight
 * at once. A proactive global limiter keeps under the global limit in any window (interaction
 * callbacks are exempt and go first); while it binds, queues take turns. 429s are honoured from
 * Retry-After / retry_after, X-RateLimit-Global and -Scope; 5xx and network errors are retried with
 * backoff and jitter; a guard stops sending well before the invalid-request ban. */

struct rest;

struct rest_opts {
	const char *base_url;      /* ".../api/v10", no trailing slash */
	const char *token;         /* the bot token (registered as a secret by the caller) */
	unsigned global_limit;     /* requests per global window; 0: 50 */
	unsigned global_window_ms; /* 0: 1000 */
	unsigned max_retries;      /* for 5xx and network errors; 0: 5 */
	unsigned invalid_guard;    /* 401/403/429 per 10 minutes before we stop; 0: 5000 */
	unsigned timeout_ms;       /* per attempt; 0: 15000 */
	unsigned sweep_ms;         /* idle queues and long-ended buckets are forgotten at most this
	                              often, once nothing is pending; 0: 60000 */
};

struct rest_result {
	long status;  /* 0: no answer (network error) */
	json_t *body; /* the parsed answer, or NULL; borrowed for the callback's duration */
	int code;     /* Discord's error code from the body, 0 when none */
	unsigned attempts;
	struct err err; /* set when the request failed (status 0 or >= 400) */
};

typedef void (*rest_cb)(const struct rest_result *res, void *ud);

#define REST_INTERACTION 1 /* an interaction callback: exempt from the global limit, sent first */
#define REST_NO_RETRY    2 /* do not retry 5xx or network errors */

struct rest *rest_new(uv_loop_t *loop, struct httpc *http, const struct rest_opts *o,
                      struct err *err);

/* Queues a request. route is Discord's path pattern, e.g.
 * "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", args fill its {params} in order;
 * a query may follow in the route ("?limit=1000"). body (borrowed, may be NULL) is sent as
 * JSON. audit_reason (may be NULL) goes to X-Audit-Log-Reason. cb (may be NULL) is called
 * exactly once, never inside rest_send (requests leave on the loop's next turn). */
int rest_send(struct rest *r, const char *method, const char *route, const char *const *args,
              json_t *body, const char *audit_reason, int flags, rest_cb cb, void *ud,
              struct err *err);

/* Requests queued or in flight. */
size_t rest_pending(const struct rest *r);

/* Statistics for tests and /metrics. */
struct rest_stats {
	unsigned long sent, ok, failed, retries, limited_user, limited_global, limited_shared;
	unsigned long invalid;  /* 401/403/429 (not shared) counted towards the ban */
	size_t queues, buckets; /* held now */
};
void rest_get_stats(const struct rest *r, struct rest_stats *out);

/* Fails what is queued ("shutting down") and frees everything. In-flight requests are
 * cancelled by httpc_close, which the owner calls. */
void rest_free(struct rest *r);

#endif
