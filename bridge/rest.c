#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "rest.h"
#include "strmap.h"
#include "version.h"

#define INVALID_WINDOW_MS (10 * 60 * 1000)
#define MAX_429_REQUEUES  20

struct bucket {
	int known; /* headers seen */
	int limit, remaining;
	uint64_t reset_at; /* ms on the loop clock; 0: unknown */
	unsigned inflight;
};

/* Routes can share a bucket (adding and removing a role do). Until a route's bucket is known,
 * its first request waits while any bucket of the same major parameter is used up: it may be
 * the one the route shares. */
#define MAJOR_BUCKETS 16
struct major_buckets {
	struct bucket *b[MAJOR_BUCKETS];
	int n;
	unsigned unknown_inflight; /* requests out whose route's bucket was not known yet */
};

struct req;

struct queue {
	char *route_key; /* "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}" */
	char *major;
	struct req *head, *tail;
	unsigned inflight;
	int active; /* in r->active */
	int priority;
	int served; /* took its turn in this pump: goes to the end of r->active */
	struct queue *next_active;
};

struct req {
	struct req *next;
	struct rest *r;
	struct queue *q;
	struct bucket *b; /* the bucket it was sent under */
	char *method, *url, *body, *audit;
	size_t body_len;
	int flags;
	unsigned attempts, requeues, failures; /* sends; 429s; 5xx and network errors */
	struct major_buckets *provisional;     /* set while out as a route's first request */
	uint64_t not_before;
	rest_cb cb;
	void *ud;
};

struct rest {
	uv_loop_t *loop;
	struct httpc *http;
	struct rest_opts o;
	char *base, *auth;
	struct strmap queues;  /* route_key + "\n" + major -> queue */
	struct strmap hashes;  /* route_key -> bucket hash */
	struct strmap buckets; /* (hash or route_key) + "\n" + major -> bucket */
	struct strmap majors;  /* major -> struct major_buckets */
	struct queue *active;  /* queues with requests waiting */
	uint64_t *sends;       /* ring of the last global_limit send times */
	size_t send_next;
	uint64_t global_until; /* a global 429 holds everything until then */
	uint64_t invalid_since;
	uint64_t last_sweep;
	unsigned invalid_count;
	int guard_logged;
	uv_timer_t timer;
	size_t pending, inflight;
	int closing;
	struct rest_stats st;
};

static void pump(struct rest *r);
static void schedule(struct rest *r);

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s\n%s", a, b);
	return s;
}

static struct bucket *bucket_for(struct rest *r, struct queue *q)
{
	const char *hash = strmap_get(&r->hashes, q->route_key);
	char *key = join(hash ? hash : q->route_key, q->major);
	if (!key)
		return NULL;
	struct bucket *b = strmap_get(&r->buckets, key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b && strmap_put(&r->buckets, key, b) != 0) {
			free(b);
			b = NULL;
		}
		struct major_buckets *mb = b ? strmap_get(&r->majors, q->major) : NULL;
		if (b && !mb) {
			mb = calloc(1, sizeof(*mb));
			if (mb && strmap_put(&r->majors, q->major, mb) != 0) {
				free(mb);
				mb = NULL;
			}
		}
		if (mb && mb->n < MAJOR_BUCKETS)
			mb->b[mb->n++] = b;
	}
	free(key);
	return b;
}

static void req_free(struct req *q)
{
	if (!q)
		return;
	free(q->method);
	free(q->url);
	free(q->body);
	free(q->audit);
	free(q);
}

static void activate(struct rest *r, struct queue *q)
{
	if (q->active)
		return;
	q->active = 1;
	if (q->priority) {
		q->next_active = r->active;
		r->active = q;
		return;
	}
	struct queue **pp = &r->active;
	while (*pp)
		pp = &(*pp)->next_active;
	q->next_active = NULL;
	*pp = q;
}

static void push_front(struct queue *q, struct req *x)
{
	x->next = q->head;
	q->head = x;
	if (!q->tail)
		q->tail = x;
}

static void deliver(struct req *x, long status, json_t *body, const char *msg)
{
	struct rest *r = x->r;
	struct rest_result res = {0};
	res.status = status;
	res.body = body;
	res.attempts = x->attempts;
	if (status == 0 || status >= 400) {
		json_t *code = json_object_get(body, "code");
		json_t *m = json_object_get(body, "message");
		res.code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
		/* the route's pattern, not its path: paths can hold interaction tokens */
		if (msg)
			err_set(&res.err, "%s: %s", x->q->route_key, msg);
		else
			err_set(&res.err, "%s: HTTP %ld%s%s", x->q->route_key, status,
			        json_is_string(m) ? ": " : "",
			        json_is_string(m) ? json_string_value(m) : "");
		res.err.http_status = (int)status;
		r->st.failed++;
	} else {
		r->st.ok++;
	}
	r->pending--;
	if (x->cb)
		x->cb(&res, x->ud);
	req_free(x);
}

static double header_num(const struct httpc_response *resp, const char *name, double dflt)
{
	char buf[64];
	if (!httpc_header(resp, name, buf, sizeof(buf)))
		return dflt;
	char *end;
	double v = strtod(buf, &end);
	return end == buf ? dflt : v;
}

static void count_invalid(struct rest *r)
{
	uint64_t now = uv_now(r->loop);
	if (!r->invalid_since || now - r->invalid_since >= INVALID_WINDOW_MS) {
		r->invalid_since = now;
		r->invalid_count = 0;
		r->guard_logged = 0;
	}
	r->invalid_count++;
	r->st.invalid++;
}

static int guard_closed(struct rest *r, uint64_t now)
{
	if (!r->invalid_since || now - r->invalid_since >= INVALID_WINDOW_MS)
		return 0;
	if (r->invalid_count < r->o.invalid_guard)
		return 0;
	if (!r->guard_logged) {
		char n[16];
		log_error("rest",
		          "too many invalid requests (401/403/429): holding requests to avoid "
		          "Discord's ban",
		          "count", LOG_NUM(n, "%u", r->invalid_count));
		r->guard_logged = 1;
	}
	return 1;
}

/* Updates the bucket from the answer's headers; learns the route's bucket hash. */
static void learn(struct rest *r, struct req *x, const struct httpc_response *resp)
{
	char hash[80];
	uint64_t now = uv_now(r->loop);
	struct bucket *b = x->b;
	if (httpc_header(resp, "X-RateLimit-Bucket", hash, sizeof(hash))) {
		const char *old = strmap_get(&r->hashes, x->q->route_key);
		if (!old || strcmp(old, hash) != 0) {
			char *copy = strdup(hash);
			if (copy && strmap_put(&r->hashes, x->q->route_key, copy) == 0)
				free((char *)old);
			else
				free(copy);
		}
		/* From now on the route's requests count against the bucket the hash names
		 * (shared with other routes of the same hash), not the provisional one. */
		struct bucket *nb = bucket_for(r, x->q);
		if (nb)
			b = x->b = nb;
	}
	double limit = header_num(resp, "X-RateLimit-Limit", -1);
	double remaining = header_num(resp, "X-RateLimit-Remaining", -1);
	double after = header_num(resp, "X-RateLimit-Reset-After", -1);
	if (!b || limit < 0 || remaining < 0 || after < 0)
		return;
	/* Reset-After comes rounded to the millisecond: 2 ms of margin keep us out of the old
	 * window */
	uint64_t reset_at = now + (uint64_t)ceil(after * 1000.0) + 2;
	/* answers may overtake each other: within one window the lowest Remaining wins */
	if (!b->known || !b->reset_at || now >= b->reset_at || (int)remaining < b->remaining)
		b->remaining = (int)remaining;
	b->limit = (int)limit;
	if (!b->reset_at || reset_at > b->reset_at || now >= b->reset_at)
		b->reset_at = reset_at;
	b->known = 1;
}

static void on_response(const struct httpc_response *resp, void *ud)
{
	struct req *x = ud;
	struct rest *r = x->r;
	uint64_t now = uv_now(r->loop);
	json_t *body = NULL;

	x->q->inflight--;
	if (x->b && x->b->inflight)
		x->b->inflight--;
	if (x->provisional) {
		x->provisional->unknown_inflight--;
		x->provisional = NULL;
	}
	r->inflight--;
	if (resp->status)
		learn(r, x, resp);
	if (resp->body_len)
		body = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, NULL);

	if (r->closing) {
		deliver(x, 0, NULL, "cancelled: shutting down");
	} else if (resp->status == 429) {
		char scope[32] = "user";
		char g[16] = "";
		httpc_header(resp, "X-RateLimit-Scope", scope, sizeof(scope));
		int global = json_is_true(json_object_get(body, "global")) ||
		             (httpc_header(resp, "X-RateLimit-Global", g, sizeof(g)) &&
		              strcmp(g, "true") == 0);
		double retry = json_number_value(json_object_get(body, "retry_after"));
		if (retry <= 0)
			retry = header_num(resp, "Retry-After", 1);
		uint64_t until = now + (uint64_t)ceil(retry * 1000.0);
		if (global) {
			r->st.limited_global++;
			if (until > r->global_until)
				r->global_until = until;
		} else {
			if (strcmp(scope, "shared") == 0)
				r->st.limited_shared++;
			else
				r->st.limited_user++;
			if (x->b) {
				x->b->remaining = 0;
				if (until > x->b->reset_at)
					x->b->reset_at = until;
				x->b->known = 1;
			}
		}
		if (strcmp(scope, "shared") != 0)
			count_invalid(r);
		char ms[32];
		log_warn("rest", "rate limited", "route", x->q->route_key, "scope",
		         global ? "global" : scope, "retry_ms", LOG_NUM(ms, "%.0f", retry * 1000));
		if (++x->requeues > MAX_429_REQUEUES) {
			deliver(x, 429, body, NULL);
		} else {
			push_front(x->q, x);
			activate(r, x->q);
		}
	} else if ((resp->status == 0 || resp->status >= 500) && !(x->flags & REST_NO_RETRY) &&
	           x->failures < r->o.max_retries) {
		/* backoff with jitter: 0.5 s, 1 s, 2 s, ... each between half and the whole; 429s
		 * before do not count, they have their own limit */
		uint64_t base = 500ull << (x->failures < 6 ? x->failures : 6);
		x->failures++;
		x->not_before = now + base / 2 + (uint64_t)(rand() % (int)(base / 2 + 1));
		r->st.retries++;
		char st[16];
		log_warn("rest", "retrying", "route", x->q->route_key, "status",
		         LOG_NUM(st, "%ld", resp->status), "error",
		         resp->status ? NULL : resp->err.msg);
		push_front(x->q, x);
		activate(r, x->q);
	} else {
		if (resp->status == 401 || resp->status == 403)
			count_invalid(r);
		deliver(x, resp->status, body, resp->status ? NULL : resp->err.msg);
	}
	json_decref(body);
	if (r->closing) {
		if (!r->inflight)
			rest_free(r);
		return;
	}
	schedule(r);
}

static int global_ok(struct rest *r, uint64_t now, uint64_t *wait)
{
	if (now < r->global_until) {
		*wait = r->global_until;
		return 0;
	}
	/* at most global_limit sends in any window, with a tenth of margin for the time answers
	 * spend on the way */
	uint64_t oldest = r->sends[r->send_next];
	uint64_t window = r->o.global_window_ms + r->o.global_window_ms / 10;
	if (oldest && now < oldest + window) {
		*wait = oldest + window;
		return 0;
	}
	return 1;
}

static void send_one(struct rest *r, struct queue *q, struct bucket *b, uint64_t now)
{
	struct req *x = q->head;
	char audit[600];
	const char *headers[6];
	int n = 0;
	q->head = x->next;
	if (!q->head)
		q->tail = NULL;
	x->next = NULL;
	x->b = b;
	x->attempts++;
	headers[n++] = r->auth;
	headers[n++] = "User-Agent: DiscordBot (cohortbridge, " CB_VERSION ")";
	if (x->body)
		headers[n++] = "Content-Type: application/json";
	if (x->audit) {
		snprintf(audit, sizeof(audit), "X-Audit-Log-Reason: %s", x->audit);
		headers[n++] = audit;
	}
	headers[n] = NULL;
	if (!(x->flags & REST_INTERACTION)) {
		r->sends[r->send_next] = now;
		r->send_next = (r->send_next + 1) % r->o.global_limit;
	}
	struct httpc_request hr = {.method = x->method,
	                           .url = x->url,
	                           .headers = headers,
	                           .body = x->body,
	                           .body_len = x->body_len,
	                           .timeout_ms = r->o.timeout_ms};
	struct err e = {0};
	q->inflight++;
	b->inflight++;
	r->inflight++;
	r->st.sent++;
	if (!b->known) {
		x->provisional = strmap_get(&r->majors, q->major);
		if (x->provisional)
			x->provisional->unknown_inflight++;
	}
	if (httpc_send(r->http, &hr, on_response, x, &e) != 0) {
		q->inflight--;
		b->inflight--;
		r->inflight--;
		if (x->provisional)
			x->provisional->unknown_inflight--;
		deliver(x, 0, NULL, e.msg);
	}
}

static void on_timer(uv_timer_t *t)
{
	pump(t->data);
}

/* Sends run from the loop's timer, never inside a caller's or a callback's work: what the global
 * limiter records as a request's send time is when it leaves, not when it was queued. */
static void schedule(struct rest *r)
{
	uv_timer_start(&r->timer, on_timer, 0, 0);
}

/* Moves the queues that took their turn to the end of the active list, keeping their order. */
static void rotate(struct rest *r)
{
	struct queue **pp = &r->active, *moved = NULL, **tail = &moved;
	while (*pp) {
		struct queue *q = *pp;
		if (q->served) {
			q->served = 0;
			*pp = q->next_active;
			q->next_active = NULL;
			*tail = q;
			tail = &q->next_active;
		} else {
			pp = &q->next_active;
		}
	}
	*pp = moved;
}

/* Queues are served in the order of the active list. A queue that sent goes to its end once its
 * bucket (not the global limit) stops it, so that when the global limit binds, queues take turns
 * of a bucket's worth instead of the first ones starving the rest. */
/* --- forgetting what is idle ----------------------------------------------------------------- */

/* Every channel, DM and interaction token gets a queue and a bucket of its own; a long-running
 * bridge forgets them once nothing is queued or in flight anywhere (so no request points at
 * them): all queues, and the buckets whose window has ended. */
struct sweep {
	struct rest *r;
	uint64_t now;
	char **keys;
	size_t n, cap;
};

/* Collects keys: every queue's, and the buckets' whose window has ended (what they knew is
 * learnt again from the next answer). */
static void collect_key(struct sweep *sw, const char *key)
{
	if (sw->n == sw->cap) {
		size_t cap = sw->cap ? sw->cap * 2 : 64;
		char **k = realloc(sw->keys, cap * sizeof(*k));
		if (!k)
			return;
		sw->keys = k;
		sw->cap = cap;
	}
	sw->keys[sw->n] = strdup(key);
	if (sw->keys[sw->n])
		sw->n++;
}

static void collect_queue(const char *key, void *value, void *ud)
{
	collect_key(ud, key);
}

static void collect_bucket(const char *key, void *value, void *ud)
{
	struct sweep *sw = ud;
	struct bucket *b = value;
	if (!b->inflight && b->reset_at <= sw->now)
		collect_key(sw, key);
}

static void drop_from_major(struct rest *r, const char *major, struct bucket *b)
{
	struct major_buckets *mb = strmap_get(&r->majors, major);
	if (!mb)
		return;
	for (int i = 0; i < mb->n; i++)
		if (mb->b[i] == b) {
			mb->b[i] = mb->b[--mb->n];
			break;
		}
	if (!mb->n && !mb->unknown_inflight)
		free(strmap_del(&r->majors, major));
}

static void sweep(struct rest *r, uint64_t now)
{
	struct sweep sw = {.r = r, .now = now};
	r->last_sweep = now;
	/* queues: all idle, as nothing is pending */
	strmap_each(&r->queues, collect_queue, &sw);
	for (size_t i = 0; i < sw.n; i++) {
		struct queue *q = strmap_del(&r->queues, sw.keys[i]);
		if (q) {
			free(q->route_key);
			free(q->major);
			free(q);
		}
		free(sw.keys[i]);
	}
	sw.n = 0;
	strmap_each(&r->buckets, collect_bucket, &sw);
	for (size_t i = 0; i < sw.n; i++) {
		struct bucket *b = strmap_del(&r->buckets, sw.keys[i]);
		const char *major = strchr(sw.keys[i], '\n');
		if (b && major)
			drop_from_major(r, major + 1, b);
		free(b);
		free(sw.keys[i]);
	}
	free(sw.keys);
}

static void pump(struct rest *r)
{
	uint64_t now = uv_now(r->loop), wake = 0;
	if (!r->pending && !r->inflight && !r->closing && now - r->last_sweep >= r->o.sweep_ms)
		sweep(r, now);
	struct queue **pp = &r->active;
	int guard = guard_closed(r, now);
	while (*pp) {
		struct queue *q = *pp;
		struct bucket *b = bucket_for(r, q);
		int sent = 0, held = 0;
		if (!b)
			break;
		while (q->head) {
			struct req *x = q->head;
			uint64_t w = 0;
			if (x->not_before > now) {
				w = x->not_before;
			} else if (guard && !(x->flags & REST_INTERACTION)) {
				w = r->invalid_since + INVALID_WINDOW_MS;
			} else if (!(x->flags & REST_INTERACTION) && !global_ok(r, now, &w)) {
				held = 1; /* w set by global_ok; the turn goes on when it allows */
			} else if (b->known) {
				if (b->reset_at && now >= b->reset_at) {
					b->remaining = b->limit;
					b->reset_at = 0;
				}
				/* a first request of another route may be spending this bucket too
				 */
				struct major_buckets *mb = strmap_get(&r->majors, q->major);
				unsigned others = mb ? mb->unknown_inflight : 0;
				if ((int)(b->inflight + others) >= b->remaining)
					w = b->reset_at ? b->reset_at : 0;
				if (!w && (int)(b->inflight + others) >= b->remaining)
					break;
			} else if (q->inflight) {
				w = 0; /* one at a time until the bucket's headers are known */
				break;
			} else {
				int used_up = 0;
				struct major_buckets *mb = strmap_get(&r->majors, q->major);
				for (int i = 0; mb && i < mb->n; i++) {
					struct bucket *o = mb->b[i];
					if (o == b || !o->known)
						continue;
					if (o->reset_at && now >= o->reset_at)
						continue; /* its window is over */
					if ((int)o->inflight >= o->remaining) {
						used_up = 1;
						if (o->reset_at && (!w || o->reset_at < w))
							w = o->reset_at;
					}
				}
				if (used_up && !w)
					break; /* an answer in flight will tell */
			}
			if (w) {
				if (!wake || w < wake)
					wake = w;
				break;
			}
			if (b->known && (int)b->inflight >= b->remaining)
				break; /* waits for an answer in flight to tell the new window */
			send_one(r, q, b, now);
			if (r->closing)
				return; /* a failed send's callback freed the client */
			sent = 1;
		}
		if (!q->head) {
			q->active = 0;
			*pp = q->next_active;
		} else {
			q->served = sent && !held && !q->priority;
			pp = &q->next_active;
		}
	}
	rotate(r);
	if (wake)
		uv_timer_start(&r->timer, on_timer, wake > now ? wake - now : 0, 0);
}

struct rest *rest_new(uv_loop_t *loop, struct httpc *http, const struct rest_opts *o,
                      struct err *err)
{
	struct rest *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set(err, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->http = http;
	r->o = *o;
	if (!r->o.global_limit)
		r->o.global_limit = 50;
	if (!r->o.global_window_ms)
		r->o.global_window_ms = 1000;
	if (!r->o.max_retries)
		r->o.max_retries = 5;
	if (!r->o.invalid_guard)
		r->o.invalid_guard = 5000;
	if (!r->o.timeout_ms)
		r->o.timeout_ms = 15000;
	if (!r->o.sweep_ms)
		r->o.sweep_ms = 60000;
	r->last_sweep = uv_now(loop);
	size_t al = strlen(o->token) + 32;
	r->base = strdup(o->base_url);
	r->auth = malloc(al);
	r->sends = calloc(r->o.global_limit, sizeof(*r->sends));
	if (!r->base || !r->auth || !r->sends) {
		free(r->base);
		free(r->auth);
		free(r->sends);
		free(r);
		err_set(err, "out of memory");
		return NULL;
	}
	snprintf(r->auth, al, "Authorization: Bot %s", o->token);
	r->o.base_url = r->base;
	r->o.token = NULL; /* kept only inside the Authorization header */
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	return r;
}

/* Percent-encodes what is not plain ASCII, as Discord wants X-Audit-Log-Reason. */
static char *encode_reason(const char *s)
{
	size_t n = strlen(s);
	if (n > 512)
		n = 512;
	char *out = malloc(n * 3 + 1), *w = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '%')
			*w++ = (char)c;
		else
			w += snprintf(w, 4, "%%%02X", c);
	}
	*w = '\0';
	return out;
}

int rest_send(struct rest *r, const char *method, const char *route, const char *const *args,
              json_t *body, const char *audit_reason, int flags, rest_cb cb, void *ud,
              struct err *err)
{
	char path[1024], major[256] = "";
	size_t len = 0, ai = 0;
	if (r->closing)
		return err_set(err, "REST client is shutting down");
	/* fill {params}; the major parameter is the channel, else the guild, else the webhook */
	for (const char *p = route; *p && len + 1 < sizeof(path);) {
		if (*p != '{') {
			path[len++] = *p++;
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end || !args || !args[ai])
			return err_set(err, "route %s: missing argument", route);
		const char *v = args[ai++];
		size_t vl = strlen(v);
		if (len + vl + 1 >= sizeof(path))
			return err_set(err, "route %s: path too long", route);
		memcpy(path + len, v, vl);
		len += vl;
		size_t nl = (size_t)(end - p - 1);
		int is_major = (nl == 10 && strncmp(p + 1, "channel_id", 10) == 0) ||
		               ((nl == 8 && strncmp(p + 1, "guild_id", 8) == 0) && !major[0]) ||
		               ((nl == 10 && strncmp(p + 1, "webhook_id", 10) == 0) && !major[0]) ||
		               (nl == 5 && strncmp(p + 1, "token", 5) == 0);
		if (is_major) {
			if (nl == 10 && strncmp(p + 1, "channel_id", 10) == 0)
				major[0] = '\0';
			size_t ml = strlen(major);
			snprintf(major + ml, sizeof(major) - ml, "%s%s", ml ? "/" : "", v);
		}
		p = end + 1;
	}
	path[len] = '\0';

	char rk[600];
	snprintf(rk, sizeof(rk), "%s %.*s", method, (int)strcspn(route, "?"), route);
	char *qkey = join(rk, major);
	struct queue *q = qkey ? strmap_get(&r->queues, qkey) : NULL;
	if (qkey && !q) {
		q = calloc(1, sizeof(*q));
		if (q) {
			q->route_key = strdup(rk);
			q->major = strdup(major);
			q->priority = (flags & REST_INTERACTION) != 0;
		}
		if (!q || !q->route_key || !q->major || strmap_put(&r->queues, qkey, q) != 0) {
			if (q) {
				free(q->route_key);
				free(q->major);
			}
			free(q);
			q = NULL;
		}
	}
	free(qkey);
	struct req *x = q ? calloc(1, sizeof(*x)) : NULL;
	if (!x)
		return err_set(err, "out of memory");
	size_t ul = strlen(r->base) + len + 1;
	x->url = malloc(ul);
	x->method = strdup(method);
	if (x->url)
		snprintf(x->url, ul, "%s%s", r->base, path);
	if (body) {
		x->body = json_dumps(body, JSON_COMPACT);
		x->body_len = x->body ? strlen(x->body) : 0;
	}
	if (audit_reason)
		x->audit = encode_reason(audit_reason);
	if (!x->url || !x->method || (body && !x->body) || (audit_reason && !x->audit)) {
		req_free(x);
		return err_set(err, "out of memory");
	}
	x->r = r;
	x->q = q;
	x->flags = flags;
	x->cb = cb;
	x->ud = ud;
	if (q->tail)
		q->tail->next = x;
	else
		q->head = x;
	q->tail = x;
	r->pending++;
	activate(r, q);
	schedule(r);
	return 0;
}

size_t rest_pending(const struct rest *r)
{
	return r->pending;
}

void rest_get_stats(const struct rest *r, struct rest_stats *out)
{
	*out = r->st;
	out->queues = r->queues.n;
	out->buckets = r->buckets.n;
}

static void free_queue(const char *key, void *value, void *ud)
{
	struct queue *q = value;
	free(q->route_key);
	free(q->major);
	free(q);
}

static void free_value(const char *key, void *value, void *ud)
{
	free(value);
}

static void on_closed(uv_handle_t *h)
{
	struct rest *r = h->data;
	strmap_each(&r->queues, free_queue, NULL);
	strmap_each(&r->buckets, free_value, NULL);
	strmap_each(&r->hashes, free_value, NULL);
	strmap_each(&r->majors, free_value, NULL);
	strmap_clear(&r->majors);
	strmap_clear(&r->queues);
	strmap_clear(&r->buckets);
	strmap_clear(&r->hashes);
	free(r->sends);
	free(r->base);
	free(r->auth);
	free(r);
}

void rest_free(struct rest *r)
{
	if (!r)
		return;
	if (!r->closing) {
		r->closing = 1;
		uv_timer_stop(&r->timer);
		for (struct queue *q = r->active; q; q = q->next_active) {
			while (q->head) {
				struct req *x = q->head;
				q->head = x->next;
				deliver(x, 0, NULL, "cancelled: shutting down");
			}
			q->tail = NULL;
			q->active = 0;
		}
		r->active = NULL;
	}
	/* answers still in flight arrive (or are cancelled by httpc_close) and finish the job */
	if (r->inflight || uv_is_closing((uv_handle_t *)&r->timer))
		return;
	uv_close((uv_handle_t *)&r->timer, on_closed);
}
