/* The REST client against discord-sim: buckets, the global limit, 429s, retries, priority for
 * interaction callbacks, headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "helpers.h"

#include "httpc.h"
#include "rest.h"

struct world {
	char guild[32], channel[32], learner[32], staff_role[32];
	char members[16][32];
	int nmembers;
	char app[32];
};

static void read_world(int port, struct world *w)
{
	json_t *st = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	snprintf(w->guild, sizeof(w->guild), "%s", json_string_value(json_object_get(g, "id")));
	snprintf(w->app, sizeof(w->app), "%s",
	         json_string_value(json_object_get(json_object_get(st, "application"), "id")));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		if (json_integer_value(json_object_get(v, "type")) == 0)
			snprintf(w->channel, sizeof(w->channel), "%s",
			         json_string_value(json_object_get(v, "id")));
	}
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (strcmp(name, "Learner") == 0)
			snprintf(w->learner, sizeof(w->learner), "%s",
			         json_string_value(json_object_get(v, "id")));
	}
	const char *owner = json_string_value(json_object_get(g, "owner_id"));
	json_array_foreach(json_object_get(g, "members"), i, v) {
		json_t *u = json_object_get(v, "user");
		const char *id = json_string_value(json_object_get(u, "id"));
		if (json_is_true(json_object_get(u, "bot")) || strcmp(id, owner) == 0 ||
		    w->nmembers == 16)
			continue;
		snprintf(w->members[w->nmembers++], sizeof(w->members[0]), "%s", id);
	}
	json_decref(st);
}

struct client {
	uv_loop_t *loop;
	struct httpc *http;
	struct rest *rest;
	int done, failed, ok;
	long last_status;
	int last_code;
	char last_error[512];
	json_t *last_body;
	uint64_t done_at_ms;
};

static void open_client(struct client *c, int port, const char *token, unsigned global_limit,
                        unsigned window_ms, unsigned retries)
{
	char base[64];
	struct err err = {0};
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/api/v10", port);
	c->loop = uv_default_loop();
	c->http = httpc_new(c->loop, &err);
	struct rest_opts o = {.base_url = base,
	                      .token = token,
	                      .global_limit = global_limit,
	                      .global_window_ms = window_ms,
	                      .max_retries = retries};
	c->rest = rest_new(c->loop, c->http, &o, &err);
	assert_non_null(c->rest);
}

static void close_client(struct client *c)
{
	rest_free(c->rest);
	httpc_close(c->http);
	uv_run(c->loop, UV_RUN_DEFAULT);
	json_decref(c->last_body);
}

static void on_done(const struct rest_result *res, void *ud)
{
	struct client *c = ud;
	c->done++;
	c->last_status = res->status;
	c->last_code = res->code;
	c->done_at_ms = uv_now(c->loop);
	json_decref(c->last_body);
	c->last_body = json_incref(res->body);
	if (res->status >= 200 && res->status < 300) {
		c->ok++;
	} else {
		c->failed++;
		snprintf(c->last_error, sizeof(c->last_error), "%s", res->err.msg);
	}
}

static void submit(struct client *c, const char *method, const char *route, const char *const *args,
                   json_t *body, const char *reason, int flags, rest_cb cb, void *ud)
{
	struct err err = {0};
	if (rest_send(c->rest, method, route, args, body, reason, flags, cb ? cb : on_done,
	              ud ? ud : c, &err) != 0)
		fail_msg("rest_send: %s", err.msg);
}

static void wait_for(struct client *c, int n, int timeout_ms)
{
	uv_update_time(c->loop);
	uint64_t until = uv_now(c->loop) + (uint64_t)timeout_ms;
	while (c->done < n && uv_now(c->loop) < until)
		uv_run(c->loop, UV_RUN_ONCE);
	if (c->done < n)
		fail_msg("only %d of %d requests finished in %d ms", c->done, n, timeout_ms);
}

static json_int_t sim_stat(int port, const char *group, const char *key)
{
	json_t *st = NULL;
	th_sim_call(port, "GET", "/_sim/stats", NULL, &st);
	json_int_t v = json_integer_value(json_object_get(json_object_get(st, group), key));
	json_decref(st);
	return v;
}

static void test_rest_basics(void **state)
{
	char dir[96], rec[200];
	int port;
	struct world w = {0};
	snprintf(rec, sizeof(rec), "%s/record.jsonl", th_tmpdir());
	const char *args[] = {"--record", rec, NULL};
	pid_t sim = th_sim_start(args, &port, dir, sizeof(dir));
	read_world(port, &w);
	struct client c = {0};
	open_client(&c, port, "sim-token", 0, 0, 0);

	submit(&c, "GET", "/users/@me", NULL, NULL, NULL, 0, NULL, NULL);
	wait_for(&c, 1, 5000);
	assert_int_equal(c.last_status, 200);
	assert_string_equal(json_string_value(json_object_get(c.last_body, "username")),
	                    "cohortbridge");

	submit(&c, "GET", "/guilds/{guild_id}", (const char *[]){"1", NULL}, NULL, NULL, 0, NULL,
	       NULL);
	wait_for(&c, 2, 5000);
	assert_int_equal(c.last_status, 404);
	assert_int_equal(c.last_code, 10004);
	assert_non_null(strstr(c.last_error, "Unknown Guild"));

	submit(&c, "PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
	       (const char *[]){w.guild, w.members[5], w.learner, NULL}, NULL,
	       "Registered: pretix order ÄB12 — Zoë", 0, NULL, NULL);
	wait_for(&c, 3, 5000);
	assert_int_equal(c.last_status, 204);
	close_client(&c);

	/* a wrong token: 401, and nothing retried */
	struct client bad = {0};
	open_client(&bad, port, "wrong-token", 0, 0, 0);
	submit(&bad, "GET", "/users/@me", NULL, NULL, NULL, 0, NULL, NULL);
	wait_for(&bad, 1, 5000);
	assert_int_equal(bad.last_status, 401);
	struct rest_stats st;
	rest_get_stats(bad.rest, &st);
	assert_int_equal(st.invalid, 1);
	assert_int_equal(st.sent, 1);
	close_client(&bad);
	th_sim_stop(sim);

	FILE *f = fopen(rec, "r");
	assert_non_null(f);
	char line[4096];
	int seen_reason = 0, seen_agent = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "\"user_agent\":\"DiscordBot (cohortbridge, "))
			seen_agent++;
		if (strstr(line, "\"audit_log_reason\":\"Registered: pretix order %C3%84B12 "
		                 "%E2%80%94 Zo%C3%AB\""))
			seen_reason++;
	}
	fclose(f);
	assert_true(seen_agent >= 3);
	assert_int_equal(seen_reason, 1);
}

/* Requests under the discord preset: as fast as the limits allow, and not one 429. */
static void test_rest_no_429_discord(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	const char *dbg[] = {"--record", "/tmp/dbg.jsonl", NULL};
	pid_t sim = th_sim_start(dbg, &port, dir, sizeof(dir));
	read_world(port, &w);
	struct client c = {0};
	open_client(&c, port, "sim-token", 0, 0, 0);
	char channels[12][32];
	for (int i = 0; i < 12; i++) {
		json_t *b = json_pack("{s:s}", "name", "burst");
		submit(&c, "POST", "/guilds/{guild_id}/channels", (const char *[]){w.guild, NULL},
		       b, "cohort channels", 0, NULL, NULL);
		json_decref(b);
		wait_for(&c, i + 1, 10000);
		assert_int_equal(c.last_status, 201);
		snprintf(channels[i], sizeof(channels[i]), "%s",
		         json_string_value(json_object_get(c.last_body, "id")));
	}
	/* 120 messages across 12 channels (5 per 5 s each) and 15 role changes in one guild
	 * (10 per 10 s), all queued at once */
	int n = 12;
	for (int k = 0; k < 10; k++)
		for (int i = 0; i < 12; i++) {
			json_t *b = json_pack("{s:s, s:{s:[]}}", "content", "hello",
			                      "allowed_mentions", "parse");
			submit(&c, "POST", "/channels/{channel_id}/messages",
			       (const char *[]){channels[i], NULL}, b, NULL, 0, NULL, NULL);
			json_decref(b);
			n++;
		}
	for (int i = 0; i < 15; i++) {
		submit(&c, "PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
		       (const char *[]){w.guild, w.members[i % w.nmembers], w.learner, NULL}, NULL,
		       NULL, 0, NULL, NULL);
		n++;
	}
	uv_update_time(c.loop);
	uint64_t t0 = uv_now(c.loop);
	wait_for(&c, n, 60000);
	uint64_t took = uv_now(c.loop) - t0;
	assert_int_equal(c.failed, 0);
	assert_int_equal(sim_stat(port, "ratelimits", "429_user"), 0);
	assert_int_equal(sim_stat(port, "ratelimits", "429_global"), 0);
	/* the floor: 10 messages per channel need one more 5 s window; 15 role changes one more
	 * 10 s window. Done near it, not far beyond. */
	assert_true(took >= 9000);
	assert_true(took < 14000);
	close_client(&c);
	th_sim_stop(sim);
}

/* The id of the sample world's role by name, from /_sim/state's guild. */
static const char *role_id(json_t *guild, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(guild, "roles"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return json_string_value(json_object_get(v, "id"));
	}
	return NULL;
}

/* Whether member user_id of the state's first guild holds role. */
static int holds(json_t *st, const char *user_id, const char *role)
{
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	size_t i, k;
	json_t *m, *r;
	json_array_foreach(json_object_get(g, "members"), i, m) {
		if (strcmp(json_string_value(json_object_get(json_object_get(m, "user"), "id")),
		           user_id) != 0)
			continue;
		json_array_foreach(json_object_get(m, "roles"), k, r) {
			if (strcmp(json_string_value(r), role) == 0)
				return 1;
		}
	}
	return 0;
}

#define BURST_CHANNELS 56
#define BURST_PER_CH   35
#define BURST_ROLES    40
#define BURST_ALL      (BURST_CHANNELS * BURST_PER_CH + BURST_ROLES)

/* 2,000 role changes and messages under the discord preset, all queued at once: every one
 * done, and not one 429 of scope user or global, by our count and by the simulator's.
 *
 * The floor, from the preset: the global limit (50 per 1 s) lets 2,000 requests through in no
 * less than 39 s (the 40th window opens 39 s after the first). The mix keeps every bucket's own
 * floor below that: 35 messages per channel (5 per 5 s) need 30 s, 40 role changes in the one
 * guild (10 per 10 s, adds and removes sharing the bucket) need 30 s. */
static void test_rest_burst_2000_discord(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	pid_t sim = th_sim_start(NULL, &port, dir, sizeof(dir));
	read_world(port, &w);
	json_t *st = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	static const char *const names[4] = {"Alumni", "Learner", "Coach", "Staff"};
	char roles[4][32];
	for (int i = 0; i < 4; i++) {
		assert_non_null(role_id(g, names[i]));
		snprintf(roles[i], sizeof(roles[i]), "%s", role_id(g, names[i]));
	}
	assert_int_equal(w.nmembers, 12);
	/* the learners hold Alumni and Learner (as Discord itself, through the control API), so
	 * that the burst removes about as many roles as it adds */
	for (int i = 0; i < w.nmembers; i++) {
		if (holds(st, w.members[i], roles[2]) || holds(st, w.members[i], roles[3]))
			continue;
		char body[256];
		snprintf(body, sizeof(body),
		         "{\"user_id\": \"%s\", \"username\": \"x\", \"roles\": [\"%s\", \"%s\"]}",
		         w.members[i], roles[0], roles[1]);
		assert_int_equal(th_sim_call(port, "POST", "/_sim/members", body, NULL), 200);
	}
	json_decref(st);
	assert_int_equal(th_sim_call(port, "GET", "/_sim/state", NULL, &st), 200);

	struct client c = {0};
	open_client(&c, port, "sim-token", 0, 0, 0);
	char channels[BURST_CHANNELS][32];
	for (int i = 0; i < BURST_CHANNELS; i++) {
		json_t *b = json_pack("{s:s}", "name", "burst");
		submit(&c, "POST", "/guilds/{guild_id}/channels", (const char *[]){w.guild, NULL},
		       b, "cohort channels", 0, NULL, NULL);
		json_decref(b);
		wait_for(&c, i + 1, 10000);
		assert_int_equal(c.last_status, 201);
		snprintf(channels[i], sizeof(channels[i]), "%s",
		         json_string_value(json_object_get(c.last_body, "id")));
	}
	int setup = c.done;

	/* each of the first 40 (member, role) pairs toggled: removed when held, else added */
	const char *pair_user[BURST_ROLES], *pair_role[BURST_ROLES];
	int pair_held[BURST_ROLES], puts = 0, dels = 0;
	for (int k = 0; k < BURST_ROLES; k++) {
		pair_user[k] = w.members[k / 4];
		pair_role[k] = roles[k % 4];
		pair_held[k] = holds(st, pair_user[k], pair_role[k]);
		if (pair_held[k])
			dels++;
		else
			puts++;
	}
	assert_true(puts >= 10 && dels >= 10);
	/* the setup's sends leave the global window before the burst starts */
	uv_sleep(1100);
	uv_update_time(c.loop);
	uint64_t t0 = uv_now(c.loop);
	/* interleaved as the outbox would hand them over: a role change after every 49 messages */
	int msgs = 0, role_changes = 0;
	for (int i = 0; i < BURST_ALL; i++) {
		if (i % 50 == 49 && role_changes < BURST_ROLES) {
			int k = role_changes++;
			submit(&c, pair_held[k] ? "DELETE" : "PUT",
			       "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
			       (const char *[]){w.guild, pair_user[k], pair_role[k], NULL}, NULL,
			       "cohort roles", 0, NULL, NULL);
		} else {
			json_t *b = json_pack("{s:s, s:{s:[]}}", "content", "hello",
			                      "allowed_mentions", "parse");
			submit(&c, "POST", "/channels/{channel_id}/messages",
			       (const char *[]){channels[msgs++ % BURST_CHANNELS], NULL}, b, NULL,
			       0, NULL, NULL);
			json_decref(b);
		}
	}
	assert_int_equal(msgs, BURST_CHANNELS * BURST_PER_CH);
	assert_int_equal(role_changes, BURST_ROLES);
	assert_int_equal(rest_pending(c.rest), BURST_ALL);
	wait_for(&c, setup + BURST_ALL, 58000);
	uint64_t took = uv_now(c.loop) - t0;
	assert_int_equal(c.failed, 0);
	assert_int_equal(c.ok, setup + BURST_ALL);
	struct rest_stats rs;
	rest_get_stats(c.rest, &rs);
	assert_int_equal(rs.limited_user, 0);
	assert_int_equal(rs.limited_global, 0);
	assert_int_equal(rs.sent, setup + BURST_ALL);

	/* the simulator's side: no 429 at all, and exactly the requests of each kind */
	json_t *ss = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/stats", NULL, &ss), 200);
	json_t *lim = json_object_get(ss, "ratelimits"), *req = json_object_get(ss, "requests");
	assert_int_equal(json_integer_value(json_object_get(lim, "429_user")), 0);
	assert_int_equal(json_integer_value(json_object_get(lim, "429_global")), 0);
	assert_int_equal(json_integer_value(json_object_get(lim, "invalid_requests")), 0);
	assert_int_equal(
	    json_integer_value(json_object_get(req, "POST /channels/{channel_id}/messages")),
	    BURST_CHANNELS * BURST_PER_CH);
	assert_int_equal(json_integer_value(json_object_get(
	                     req, "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}")),
	                 puts);
	assert_int_equal(json_integer_value(json_object_get(
	                     req, "DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}")),
	                 dels);
	json_decref(ss);

	/* and the world: every pair toggled, every channel holding its messages */
	json_t *after = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/state", NULL, &after), 200);
	for (int k = 0; k < BURST_ROLES; k++)
		assert_int_equal(holds(after, pair_user[k], pair_role[k]), !pair_held[k]);
	json_t *by_channel = json_object_get(after, "messages");
	for (int i = 0; i < BURST_CHANNELS; i++)
		assert_int_equal(json_array_size(json_object_get(by_channel, channels[i])),
		                 BURST_PER_CH);
	json_decref(after);
	json_decref(st);

	/* not below the floor, and near what the client allows itself: it keeps a tenth of the
	 * global window spare, so 2,000 sends need 39 windows of 1.1 s, 42.9 s */
	assert_true(took >= 39000);
	assert_true(took < 44500);
	close_client(&c);
	th_sim_stop(sim);
}

/* Two thousand mixed requests under the fast preset. */
static void test_rest_no_429_fast(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	const char *args[] = {"--ratelimits", "fast", NULL};
	pid_t sim = th_sim_start(args, &port, dir, sizeof(dir));
	read_world(port, &w);
	struct client c = {0};
	/* the fast preset divides windows by 100: 50 per 10 ms */
	open_client(&c, port, "sim-token", 50, 10, 0);
	int n = 0;
	for (int i = 0; i < 2000; i++) {
		if (i % 2) {
			json_t *b = json_pack("{s:s}", "content", "m");
			submit(&c, "POST", "/channels/{channel_id}/messages",
			       (const char *[]){w.channel, NULL}, b, NULL, 0, NULL, NULL);
			json_decref(b);
		} else {
			submit(
			    &c, i % 4 ? "PUT" : "DELETE",
			    "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
			    (const char *[]){w.guild, w.members[i % w.nmembers], w.learner, NULL},
			    NULL, NULL, 0, NULL, NULL);
		}
		n++;
	}
	wait_for(&c, n, 120000);
	assert_int_equal(c.failed, 0);
	assert_int_equal(sim_stat(port, "ratelimits", "429_user"), 0);
	assert_int_equal(sim_stat(port, "ratelimits", "429_global"), 0);
	close_client(&c);
	th_sim_stop(sim);
}

/* A client that believes the global limit is twice what it is gets global 429s, honours them,
 * and still finishes every request. */
static void test_rest_honours_429(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	pid_t sim = th_sim_start(NULL, &port, dir, sizeof(dir));
	read_world(port, &w);
	struct client c = {0};
	open_client(&c, port, "sim-token", 100, 1000, 0);
	const char *routes[] = {"/users/@me", "/gateway/bot", "/guilds/{guild_id}",
	                        "/guilds/{guild_id}/roles", "/guilds/{guild_id}/channels"};
	for (int i = 0; i < 150; i++)
		submit(&c, "GET", routes[i % 5], (const char *[]){w.guild, NULL}, NULL, NULL, 0,
		       NULL, NULL);
	wait_for(&c, 150, 30000);
	assert_int_equal(c.failed, 0);
	struct rest_stats st;
	rest_get_stats(c.rest, &st);
	assert_true(st.limited_global > 0);
	assert_int_equal(sim_stat(port, "ratelimits", "429_user"), 0);
	close_client(&c);
	th_sim_stop(sim);
}

static void test_rest_retries(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	const char *args[] = {"--ratelimits", "fast", NULL};
	pid_t sim = th_sim_start(args, &port, dir, sizeof(dir));
	read_world(port, &w);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/faults",
	                             "{\"fail_share\": 0.25, \"fail_status\": 502}", NULL),
	                 200);
	struct client c = {0};
	open_client(&c, port, "sim-token", 50, 10, 8);
	for (int i = 0; i < 40; i++)
		submit(&c, "GET", "/guilds/{guild_id}/members/{user_id}",
		       (const char *[]){w.guild, w.members[i % w.nmembers], NULL}, NULL, NULL, 0,
		       NULL, NULL);
	wait_for(&c, 40, 60000);
	assert_int_equal(c.failed, 0);
	struct rest_stats st;
	rest_get_stats(c.rest, &st);
	assert_true(st.retries > 0);
	assert_true(sim_stat(port, "faults", "GET /guilds/{guild_id}/members/{user_id}") > 0);
	/* REST_NO_RETRY: a 502 comes straight back */
	th_sim_call(port, "POST", "/_sim/faults", "{\"fail_share\": 1.0, \"fail_status\": 502}",
	            NULL);
	submit(&c, "GET", "/users/@me", NULL, NULL, NULL, REST_NO_RETRY, NULL, NULL);
	wait_for(&c, 41, 5000);
	assert_int_equal(c.last_status, 502);
	close_client(&c);
	th_sim_stop(sim);
}

struct order {
	struct client *c;
	int position;
};

static void on_callback(const struct rest_result *res, void *ud)
{
	struct order *o = ud;
	o->position = o->c->done + 1;
	on_done(res, o->c);
}

/* An interaction callback queued behind a long line of requests is sent at once. */
static void test_rest_interaction_first(void **state)
{
	char dir[96];
	int port;
	struct world w = {0};
	pid_t sim = th_sim_start(NULL, &port, dir, sizeof(dir));
	read_world(port, &w);
	struct client c = {0};
	open_client(&c, port, "sim-token", 0, 0, 0);
	const char *routes[] = {"/users/@me", "/gateway/bot", "/guilds/{guild_id}",
	                        "/guilds/{guild_id}/roles", "/guilds/{guild_id}/channels"};
	for (int i = 0; i < 120; i++)
		submit(&c, "GET", routes[i % 5], (const char *[]){w.guild, NULL}, NULL, NULL, 0,
		       NULL, NULL);
	char body[256];
	json_t *in = NULL;
	snprintf(body, sizeof(body),
	         "{\"type\": \"command\", \"name\": \"ticket\", \"user_id\": \"%s\", "
	         "\"channel_id\": \"%s\"}",
	         w.members[0], w.channel);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/interactions", body, &in), 200);
	struct order o = {&c, 0};
	json_t *cb =
	    json_pack("{s:i, s:{s:s, s:i}}", "type", 4, "data", "content", "on it", "flags", 64);
	submit(&c, "POST", "/interactions/{interaction_id}/{interaction_token}/callback",
	       (const char *[]){json_string_value(json_object_get(in, "id")),
	                        json_string_value(json_object_get(in, "token")), NULL},
	       cb, NULL, REST_INTERACTION, on_callback, &o);
	json_decref(cb);
	json_decref(in);
	wait_for(&c, 121, 30000);
	assert_int_equal(c.failed, 0);
	/* the global limit holds 70 of the 120 for a second; the callback is not among them */
	assert_true(o.position > 0 && o.position <= 60);
	close_client(&c);
	th_sim_stop(sim);
}

/* Every channel (and interaction token) gets a queue and a bucket; once nothing is pending the
 * client forgets the idle ones, so a long-running bridge does not grow with them. */
static void test_rest_forgets_idle(void **state)
{
	char dir[96], base[64], id[32];
	int port;
	pid_t sim = th_sim_start(NULL, &port, dir, sizeof(dir));
	struct client c = {0};
	struct err err = {0};
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/api/v10", port);
	c.loop = uv_default_loop();
	c.http = httpc_new(c.loop, &err);
	/* a sweep at most once a second: slower than 40 answers even under sanitizers, so that
	 * they are all still there to count */
	struct rest_opts o = {.base_url = base, .token = "sim-token", .sweep_ms = 1000};
	c.rest = rest_new(c.loop, c.http, &o, &err);
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "%d", 1000 + i);
		submit(&c, "GET", "/channels/{channel_id}", (const char *[]){id, NULL}, NULL, NULL,
		       0, NULL, NULL);
	}
	wait_for(&c, 40, 10000);
	struct rest_stats st;
	rest_get_stats(c.rest, &st);
	assert_true(st.queues >= 40);
	assert_true(st.buckets >= 40);
	/* past the sweep interval and the buckets' windows, the next quiet moment forgets */
	uv_update_time(c.loop);
	uint64_t until = uv_now(c.loop) + 3300;
	while (uv_now(c.loop) < until) {
		uv_run(c.loop, UV_RUN_NOWAIT);
		uv_sleep(2);
		uv_update_time(c.loop);
	}
	submit(&c, "GET", "/users/@me", NULL, NULL, NULL, 0, NULL, NULL);
	wait_for(&c, 41, 5000);
	for (int i = 0; i < 20; i++)
		uv_run(c.loop, UV_RUN_NOWAIT);
	rest_get_stats(c.rest, &st);
	if (st.queues > 1 || st.buckets > 2)
		fail_msg("still %zu queues and %zu buckets", st.queues, st.buckets);
	/* and it still works */
	submit(&c, "GET", "/users/@me", NULL, NULL, NULL, 0, NULL, NULL);
	wait_for(&c, 42, 5000);
	assert_int_equal(c.last_status, 200);
	close_client(&c);
	th_sim_stop(sim);
}

GROUP(group_rest)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rest_basics),
	    cmocka_unit_test(test_rest_no_429_discord),
	    cmocka_unit_test(test_rest_burst_2000_discord),
	    cmocka_unit_test(test_rest_forgets_idle),
	    cmocka_unit_test(test_rest_no_429_fast),
	    cmocka_unit_test(test_rest_honours_429),
	    cmocka_unit_test(test_rest_retries),
	    cmocka_unit_test(test_rest_interaction_first),
	};
	return RUN_GROUP(tests);
}
