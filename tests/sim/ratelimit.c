/* Rate limits like Discord's: per-route buckets keyed by the major parameter with every
 * X-RateLimit-* header, the global limit (interaction callbacks exempt), 429 bodies with
 * retry_after and global, X-RateLimit-Scope, and the invalid-request count that ends in a ban.
 *
 * The numbers of the `discord` preset, and where each comes from, are in tests/sim/README.md.
 * `fast` keeps the shape and divides every window by 100 (and lifts the global limit 100-fold);
 * `off` sends no limits at all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct rl_def {
	const char *route;  /* "METHOD /pattern"; NULL ends the table */
	const char *bucket; /* the X-RateLimit-Bucket hash; routes sharing it share counts */
	int limit;
	double window_s;
};

/* route -> bucket. Unlisted routes: the default bucket below. */
static const struct rl_def table[] = {
    {"POST /channels/{channel_id}/messages", "80c17d2f203122d936070c88c8d10f33", 5, 5},
    {"PATCH /channels/{channel_id}/messages/{message_id}", "b1a6fd0e8b3b2cb3d3f5ce40dbe6e4d4", 5,
     5},
    {"DELETE /channels/{channel_id}/messages/{message_id}", "a3b4e7f6d0c94fbb1f41e3a2a2f2d6ce", 5,
     1},
    {"PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}", "b0bb9027ff6ae0c9619c2719f4a24de5",
     10, 10},
    {"DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}",
     "b0bb9027ff6ae0c9619c2719f4a24de5", 10, 10},
    {"PATCH /guilds/{guild_id}/members/{user_id}", "3f4e1c3a8b7d4d0f9e21ab6cd55e1f02", 10, 10},
    {"POST /guilds/{guild_id}/roles", "6b1a2ec1a1f14f6db2c6c0a9e0d3c7aa", 250, 172800},
    {"PATCH /channels/{channel_id}", "9852e1a53c06ffc5a89d65fef85ca4ce", 5, 15},
    {"POST /webhooks/{application_id}/{token}", "5e7c1d2a9f8b4c3d2e1f0a9b8c7d6e5f", 5, 2},
    {"PATCH /webhooks/{application_id}/{token}/messages/{message_id}",
     "5e7c1d2a9f8b4c3d2e1f0a9b8c7d6e5f", 5, 2},
    {"DELETE /webhooks/{application_id}/{token}/messages/{message_id}",
     "5e7c1d2a9f8b4c3d2e1f0a9b8c7d6e5f", 5, 2},
    {NULL, NULL, 0, 0},
};

#define DEFAULT_BUCKET "4ad2c5e7f0e14a6c9b3d2f1e0c9b8a7d"
#define DEFAULT_LIMIT  50
#define DEFAULT_WINDOW 1.0
#define GLOBAL_LIMIT   50
#define RENAME_LIMIT   2 /* channel name/topic changes per channel */
#define RENAME_WINDOW  600.0
#define INVALID_LIMIT  10000
#define INVALID_WINDOW 600.0

struct state {
	int remaining;
	double reset_at; /* seconds, monotonic */
};

static json_t *states; /* "bucket:major" -> {remaining, reset_at} */
static double global_window_start;
static int global_count;
static double invalid_window_start;
static long invalid_count;
static int banned;
static json_t *counters;

static double now_s(void)
{
	return (double)uv_hrtime() / 1e9;
}

static double scale(void)
{
	return sim.opts.ratelimits == RL_FAST ? 0.01 : 1.0;
}

static void count(const char *key)
{
	if (!counters)
		counters = json_object();
	json_t *v = json_object_get(counters, key);
	json_object_set_new(counters, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void header(struct http_resp *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void header(struct http_resp *rs, const char *fmt, ...)
{
	size_t n = strlen(rs->headers);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rs->headers + n, sizeof(rs->headers) - n, fmt, ap);
	va_end(ap);
}

static void too_many(struct http_resp *rs, double retry, int global, const char *scope)
{
	rs->status = 429;
	json_decref(rs->body);
	rs->body = json_pack("{s:s, s:f, s:b}", "message", "You are being rate limited.",
	                     "retry_after", floor(retry * 1000.0 + 0.5) / 1000.0, "global", global);
	if (global)
		json_object_set_new(rs->body, "code", json_integer(0));
	header(rs, "Retry-After: %.0f\r\n", ceil(retry));
	header(rs, "X-RateLimit-Scope: %s\r\n", scope);
	if (global)
		header(rs, "X-RateLimit-Global: true\r\n");
	count(global ? "429_global" : strcmp(scope, "shared") == 0 ? "429_shared" : "429_user");
	rl_note_status(429, scope);
}

void rl_note_status(int status, const char *scope)
{
	if (status != 401 && status != 403 && status != 429)
		return;
	if (status == 429 && scope && strcmp(scope, "shared") == 0)
		return; /* shared-resource limits do not count */
	double t = now_s();
	if (t - invalid_window_start > INVALID_WINDOW) {
		invalid_window_start = t;
		invalid_count = 0;
	}
	invalid_count++;
	count("invalid_requests");
	if (invalid_count >= INVALID_LIMIT && sim.opts.ratelimits != RL_OFF)
		banned = 1;
}

static const struct rl_def *lookup(const char *route)
{
	for (const struct rl_def *d = table; d->route; d++)
		if (strcmp(d->route, route) == 0)
			return d;
	return NULL;
}

/* Takes one from a bucket; returns seconds to wait when empty, else 0. Fills headers. */
static double take(const char *bucket, const char *major, int limit, double window,
                   struct http_resp *rs, int with_headers)
{
	char key[256];
	double t = now_s();
	snprintf(key, sizeof(key), "%s:%s", bucket, major ? major : "");
	if (!states)
		states = json_object();
	json_t *st = json_object_get(states, key);
	if (!st) {
		st = json_pack("{s:i, s:f}", "remaining", limit, "reset_at", t + window);
		json_object_set_new(states, key, st);
	}
	int remaining = (int)json_integer_value(json_object_get(st, "remaining"));
	double reset_at = json_real_value(json_object_get(st, "reset_at"));
	if (t >= reset_at) {
		remaining = limit;
		reset_at = t + window;
	}
	double wait = 0;
	if (remaining <= 0)
		wait = reset_at - t;
	else
		remaining--;
	json_object_set_new(st, "remaining", json_integer(remaining));
	json_object_set_new(st, "reset_at", json_real(reset_at));
	if (with_headers) {
		double after = reset_at - t;
		double epoch = (double)sim_now_ms() / 1000.0 + after;
		header(rs, "X-RateLimit-Limit: %d\r\n", limit);
		header(rs, "X-RateLimit-Remaining: %d\r\n", remaining);
		header(rs, "X-RateLimit-Reset: %.3f\r\n", epoch);
		header(rs, "X-RateLimit-Reset-After: %.3f\r\n", after);
		header(rs, "X-RateLimit-Bucket: %s\r\n", bucket);
	}
	return wait;
}

int rl_check(const char *route, const char *major, bool interaction, json_t *body,
             struct http_resp *rs)
{
	if (sim.opts.ratelimits == RL_OFF)
		return 0;
	if (banned) {
		/* what a banned IP sees: Cloudflare's error page */
		rs->status = 403;
		rs->ctype = "text/html";
		rs->text = strdup("<html><body>error code: 1015 — you have been banned for sending "
		                  "too many invalid requests</body></html>");
		count("banned_requests");
		return 1;
	}
	double t = now_s();
	if (!interaction) {
		double gw = scale();
		if (t - global_window_start >= gw) {
			global_window_start = t;
			global_count = 0;
		}
		if (++global_count > GLOBAL_LIMIT) {
			too_many(rs, global_window_start + gw - t, 1, "global");
			return 1;
		}
	}
	const struct rl_def *d = lookup(route);
	const char *bucket = d ? d->bucket : DEFAULT_BUCKET;
	int limit = d ? d->limit : DEFAULT_LIMIT;
	double window = (d ? d->window_s : DEFAULT_WINDOW) * scale();
	/* the hidden limit on channel renames: the bucket's headers say nothing about it */
	if (d && strcmp(route, "PATCH /channels/{channel_id}") == 0 &&
	    (json_object_get(body, "name") || json_object_get(body, "topic"))) {
		double wait =
		    take("channel-rename", major, RENAME_LIMIT, RENAME_WINDOW * scale(), rs, 0);
		if (wait > 0) {
			take(bucket, major, limit, window, rs, 1);
			too_many(rs, wait, 0, "user");
			return 1;
		}
	}
	double wait = take(bucket, major, limit, window, rs, 1);
	if (wait > 0) {
		too_many(rs, wait, 0, "user");
		return 1;
	}
	return 0;
}

void rl_reset(void)
{
	json_decref(states);
	states = NULL;
	json_decref(counters);
	counters = NULL;
	global_count = 0;
	invalid_count = 0;
	banned = 0;
}

json_t *rl_stats(void)
{
	json_t *s = counters ? json_deep_copy(counters) : json_object();
	json_object_set_new(s, "invalid_in_window", json_integer(invalid_count));
	json_object_set_new(s, "banned", json_boolean(banned));
	return s;
}

json_t *rl_describe(void)
{
	json_t *routes = json_array();
	for (const struct rl_def *d = table; d->route; d++)
		json_array_append_new(routes, json_pack("{s:s, s:s, s:i, s:f}", "route", d->route,
		                                        "bucket", d->bucket, "limit", d->limit,
		                                        "window_s", d->window_s * scale()));
	const char *preset = sim.opts.ratelimits == RL_DISCORD ? "discord"
	                     : sim.opts.ratelimits == RL_FAST  ? "fast"
	                                                       : "off";
	return json_pack("{s:s, s:o, s:{s:i, s:f}, s:{s:i, s:f}, s:{s:i, s:f}, s:{s:i, s:f}}",
	                 "preset", preset, "routes", routes, "default", "limit", DEFAULT_LIMIT,
	                 "window_s", DEFAULT_WINDOW * scale(), "global", "limit", GLOBAL_LIMIT,
	                 "window_s", scale(), "channel_rename", "limit", RENAME_LIMIT, "window_s",
	                 RENAME_WINDOW * scale(), "invalid_requests", "limit", INVALID_LIMIT,
	                 "window_s", INVALID_WINDOW);
}
