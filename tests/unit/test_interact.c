/* Interactions against the simulator: the router's answers, automatic deferral of a slow
 * handler, modals never deferred, failures as polite ephemeral messages, staff checks, custom_id
 * state; and the bridge registering its commands once, not on every start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "helpers.h"

#include "cache.h"
#include "gateway.h"
#include "httpc.h"
#include "interact.h"
#include "rest.h"

struct world {
	uv_loop_t *loop;
	struct httpc *http;
	struct rest *rest;
	struct gw *gw;
	struct cache *cache;
	struct ix_router *ix;
	int ready, port;
	char guild[32], channel[32], learner[32], staff[32], app[32];
	uv_timer_t slow_timer;
	struct ix *slow;
};

static void on_dispatch(void *ud, const char *t, const struct jtok *j, int d, long seq)
{
	struct world *w = ud;
	cache_apply(w->cache, t, j, d);
	if (strcmp(t, "READY") == 0) {
		jtok_str(j, jtok_get(j, jtok_get(j, d, "application"), "id"), w->app,
		         sizeof(w->app));
		ix_router_set_app(w->ix, w->app);
	} else if (strcmp(t, "GUILD_CREATE") == 0) {
		w->ready = 1;
	} else if (strcmp(t, "INTERACTION_CREATE") == 0) {
		json_t *in = jtok_json(j, d);
		ix_dispatch(w->ix, in);
		json_decref(in);
	}
}

static void on_state(void *ud, enum gw_state st, const char *why)
{
}

/* --- the handlers under test ---------------------------------------------------------------- */

static void h_quick(struct ix *ix)
{
	json_t *text = ix_option(ix, "text");
	char content[200];
	snprintf(content, sizeof(content), "you said: %s", json_string_value(text) ?: "nothing");
	ix_reply(ix, json_pack("{s:s}", "content", content));
}

static void on_slow(uv_timer_t *t)
{
	struct world *w = t->data;
	ix_reply(w->slow, json_pack("{s:s}", "content", "slow but sure"));
}

static void h_slow(struct ix *ix)
{
	struct world *w = ix_ud(ix);
	w->slow = ix;
	uv_timer_start(&w->slow_timer, on_slow, 2600, 0); /* past defer_ms, past 3 s in all */
}

static void h_form(struct ix *ix)
{
	char id[101];
	const char *args[] = {"a:b%c", NULL};
	ix_custom_id(id, sizeof(id), "form:submit", args);
	ix_modal(ix, json_pack("{s:s, s:s, s:[{s:i, s:[{s:i, s:s, s:s, s:i}]}]}", "custom_id", id,
	                       "title", "Tell us", "components", "type", 1, "components", "type", 4,
	                       "custom_id", "why", "label", "Why?", "style", 1));
}

static void h_form_submit(struct ix *ix)
{
	char arg[64], content[200];
	if (ix_arg(ix, 0, arg, sizeof(arg)) < 0) {
		ix_fail(ix, "no argument");
		return;
	}
	snprintf(content, sizeof(content), "%s / %s", arg, ix_field(ix, "why") ?: "?");
	ix_reply(ix, json_pack("{s:s}", "content", content));
}

static void h_boom(struct ix *ix)
{
	ix_fail(ix, "the database is on fire");
}

static void h_admin(struct ix *ix)
{
	ix_reply(ix, json_pack("{s:s}", "content", "staff things"));
}

static void h_button(struct ix *ix)
{
	ix_reply(ix, json_pack("{s:s}", "content", "pressed"));
}

static void h_modal_slow(struct ix *ix)
{
	/* returns without a modal: the router must not defer it, and fails it at once */
}

static const struct ix_def defs[] = {
    {IX_COMMAND, "quick", "answers at once", NULL, 0, h_quick},
    {IX_COMMAND, "slow", "answers after 2.6 s", NULL, 0, h_slow},
    {IX_COMMAND, "form", "opens a modal", NULL, IX_MODAL, h_form},
    {IX_MODAL_SUBMIT, "form:submit", NULL, NULL, IX_EPHEMERAL, h_form_submit},
    {IX_COMMAND, "boom", "fails", NULL, 0, h_boom},
    {IX_COMMAND, "admin", "staff only", NULL, IX_STAFF, h_admin},
    {IX_COMPONENT, "btn", NULL, NULL, IX_UPDATE, h_button},
    {IX_COMMAND, "lazyform", "forgets its modal", NULL, IX_MODAL, h_modal_slow},
};

/* --- plumbing ----------------------------------------------------------------------------- */

static void run_ms(struct world *w, int ms)
{
	uv_update_time(w->loop);
	uint64_t until = uv_now(w->loop) + (uint64_t)ms;
	while (uv_now(w->loop) < until) {
		uv_run(w->loop, UV_RUN_NOWAIT);
		usleep(500);
		uv_update_time(w->loop);
	}
}

/* Acts as a user; runs the loop until the interaction has its answer (or ms pass), and returns
 * the simulator's record of it. */
static json_t *interact(struct world *w, const char *body, int ms)
{
	json_t *res = NULL, *rec = NULL;
	assert_int_equal(th_sim_call(w->port, "POST", "/_sim/interactions", body, &res), 200);
	char path[128];
	snprintf(path, sizeof(path), "/_sim/interactions/%s",
	         json_string_value(json_object_get(res, "id")));
	json_decref(res);
	uv_update_time(w->loop);
	uint64_t until = uv_now(w->loop) + (uint64_t)ms;
	while (uv_now(w->loop) < until) {
		run_ms(w, 50);
		json_decref(rec);
		th_sim_call(w->port, "GET", path, NULL, &rec);
		if (json_array_size(json_object_get(rec, "callbacks")) && !ix_pending(w->ix))
			break;
	}
	run_ms(w, 100);
	json_decref(rec);
	th_sim_call(w->port, "GET", path, NULL, &rec);
	return rec;
}

static int callback_type(json_t *rec, size_t i)
{
	return (int)json_integer_value(
	    json_object_get(json_array_get(json_object_get(rec, "callbacks"), i), "type"));
}

static json_t *callback_data(json_t *rec, size_t i)
{
	return json_object_get(json_array_get(json_object_get(rec, "callbacks"), i), "data");
}

/* Finds ids in the sample world: its guild, a text channel, a learner and a staff member. */
static void read_world(struct world *w)
{
	json_t *st = NULL;
	th_sim_call(w->port, "GET", "/_sim/state", NULL, &st);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	snprintf(w->guild, sizeof(w->guild), "%s", json_string_value(json_object_get(g, "id")));
	const char *learner_role = NULL, *staff_role = NULL;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (strcmp(name, "Learner") == 0)
			learner_role = json_string_value(json_object_get(v, "id"));
		if (strcmp(name, "Staff") == 0)
			staff_role = json_string_value(json_object_get(v, "id"));
	}
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		if (json_integer_value(json_object_get(v, "type")) == 0 && !w->channel[0])
			snprintf(w->channel, sizeof(w->channel), "%s",
			         json_string_value(json_object_get(v, "id")));
	}
	json_array_foreach(json_object_get(g, "members"), i, v) {
		const char *uid =
		    json_string_value(json_object_get(json_object_get(v, "user"), "id"));
		size_t k;
		json_t *r, *roles = json_object_get(v, "roles");
		if (json_array_size(roles) == 0 && !w->learner[0] &&
		    !json_is_true(json_object_get(json_object_get(v, "user"), "bot")))
			snprintf(w->learner, sizeof(w->learner), "%s",
			         uid); /* not yet registered */
		json_array_foreach(roles, k, r) {
			if (learner_role && strcmp(json_string_value(r), learner_role) == 0 &&
			    !w->learner[0])
				snprintf(w->learner, sizeof(w->learner), "%s", uid);
			if (staff_role && strcmp(json_string_value(r), staff_role) == 0 &&
			    !w->staff[0])
				snprintf(w->staff, sizeof(w->staff), "%s", uid);
		}
	}
	json_decref(st);
	if (!(w->guild[0] && w->channel[0] && w->learner[0] && w->staff[0]))
		fail_msg("sample world: guild %s channel %s learner %s staff %s", w->guild,
		         w->channel, w->learner, w->staff);
}

static void test_interactions_routed(void **state)
{
	struct world w = {0};
	char dir[96], url[64];
	struct err err = {0};
	const char *args[] = {"--ratelimits", "discord", NULL};
	pid_t sim = th_sim_start(args, &w.port, dir, sizeof(dir));
	read_world(&w);
	w.loop = uv_default_loop();
	w.http = httpc_new(w.loop, &err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v10", w.port);
	struct rest_opts ro = {.base_url = url, .token = "sim-token"};
	w.rest = rest_new(w.loop, w.http, &ro, &err);
	w.cache = cache_new();
	const char *staff[] = {"Staff", NULL};
	struct ix_opts io = {.staff_roles = staff};
	w.ix = ix_router_new(w.loop, w.rest, NULL, w.cache, defs, sizeof(defs) / sizeof(defs[0]),
	                     &io, &w);
	uv_timer_init(w.loop, &w.slow_timer);
	w.slow_timer.data = &w;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", w.port);
	struct gw_opts go = {.url = url, .token = "sim-token", .intents = 1 | 2};
	struct gw_handler h = {on_dispatch, on_state};
	w.gw = gw_new(w.loop, &go, &h, &w, &err);
	assert_int_equal(gw_start(w.gw, &err), 0);
	uv_update_time(w.loop);
	for (int i = 0; i < 200 && !w.ready; i++)
		run_ms(&w, 25);
	assert_true(w.ready);

	char body[512];
	json_t *rec;
#define ASK(fmt, ...) (snprintf(body, sizeof(body), fmt, __VA_ARGS__), interact(&w, body, 5000))

	/* at once: a message, with mentions disabled although the user typed @everyone */
	rec = ASK("{\"type\":\"command\",\"name\":\"quick\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\",\"options\":[{\"name\":\"text\",\"type\":3,"
	          "\"value\":\"@everyone hi\"}]}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(json_array_size(json_object_get(rec, "callbacks")), 1);
	assert_int_equal(callback_type(rec, 0), 4);
	assert_string_equal(json_string_value(json_object_get(callback_data(rec, 0), "content")),
	                    "you said: @everyone hi");
	assert_int_equal(json_array_size(json_object_get(
	                     json_object_get(callback_data(rec, 0), "allowed_mentions"), "parse")),
	                 0);
	assert_non_null(
	    json_object_get(json_object_get(callback_data(rec, 0), "allowed_mentions"), "parse"));
	json_decref(rec);

	/* slow: deferred before 3 s, then the response edited with the answer */
	rec = ASK("{\"type\":\"command\",\"name\":\"slow\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(json_array_size(json_object_get(rec, "callbacks")), 1);
	assert_int_equal(callback_type(rec, 0), 5);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "original"), "content")),
	    "slow but sure");
	json_decref(rec);

	/* a modal at once, never a deferral; its submit carries the custom_id's argument */
	rec = ASK("{\"type\":\"command\",\"name\":\"form\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(json_array_size(json_object_get(rec, "callbacks")), 1);
	assert_int_equal(callback_type(rec, 0), 9);
	const char *cid = json_string_value(json_object_get(callback_data(rec, 0), "custom_id"));
	assert_string_equal(cid, "form:submit:a%3Ab%25c");
	snprintf(body, sizeof(body),
	         "{\"type\":\"modal\",\"custom_id\":\"%s\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	         "\"channel_id\":\"%s\",\"fields\":{\"why\":\"because\"}}",
	         cid, w.learner, w.guild, w.channel);
	json_decref(rec);
	rec = interact(&w, body, 5000);
	assert_int_equal(callback_type(rec, 0), 4);
	assert_string_equal(json_string_value(json_object_get(callback_data(rec, 0), "content")),
	                    "a:b%c / because");
	assert_int_equal(json_integer_value(json_object_get(callback_data(rec, 0), "flags")), 64);
	json_decref(rec);

	/* a modal handler that forgets its modal is failed at once, not deferred */
	rec = ASK("{\"type\":\"command\",\"name\":\"lazyform\",\"user_id\":\"%s\",\"guild_id\":"
	          "\"%s\",\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(json_array_size(json_object_get(rec, "callbacks")), 1);
	assert_int_equal(callback_type(rec, 0), 4);
	assert_int_equal(json_integer_value(json_object_get(callback_data(rec, 0), "flags")), 64);
	json_decref(rec);

	/* a failure: a polite ephemeral message, not the reason */
	rec = ASK("{\"type\":\"command\",\"name\":\"boom\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(callback_type(rec, 0), 4);
	assert_int_equal(json_integer_value(json_object_get(callback_data(rec, 0), "flags")), 64);
	assert_null(
	    strstr(json_string_value(json_object_get(callback_data(rec, 0), "content")), "fire"));
	json_decref(rec);

	/* staff only: refused to a learner, answered to staff */
	rec = ASK("{\"type\":\"command\",\"name\":\"admin\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_string_equal(json_string_value(json_object_get(callback_data(rec, 0), "content")),
	                    "This is for staff only.");
	json_decref(rec);
	rec = ASK("{\"type\":\"command\",\"name\":\"admin\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.staff, w.guild, w.channel);
	assert_string_equal(json_string_value(json_object_get(callback_data(rec, 0), "content")),
	                    "staff things");
	json_decref(rec);

	/* an unknown command: an apology */
	rec = ASK("{\"type\":\"command\",\"name\":\"gone\",\"user_id\":\"%s\",\"guild_id\":\"%s\","
	          "\"channel_id\":\"%s\"}",
	          w.learner, w.guild, w.channel);
	assert_int_equal(callback_type(rec, 0), 4);
	assert_int_equal(json_integer_value(json_object_get(callback_data(rec, 0), "flags")), 64);
	json_decref(rec);
#undef ASK
	assert_int_equal(ix_pending(w.ix), 0);

	char id[101];
	const char *long_args[] = {
	    "0123456789012345678901234567890123456789012345678901234567890123456789",
	    "0123456789"
	    "01234567890123456789",
	    NULL};
	assert_int_equal(ix_custom_id(id, sizeof(id), "tk:claim", long_args), -1);

	/* the router ends while a handler is still working: the user hears why, and the handler's
	 * late answer finds its interaction (the sanitizer build would see it otherwise) */
	snprintf(body, sizeof(body),
	         "{\"type\":\"command\",\"name\":\"slow\",\"user_id\":\"%s\",\"guild_id\":"
	         "\"%s\",\"channel_id\":\"%s\"}",
	         w.learner, w.guild, w.channel);
	json_t *res = NULL;
	assert_int_equal(th_sim_call(w.port, "POST", "/_sim/interactions", body, &res), 200);
	char path[128];
	snprintf(path, sizeof(path), "/_sim/interactions/%s",
	         json_string_value(json_object_get(res, "id")));
	json_decref(res);
	for (int i = 0; i < 100 && !ix_pending(w.ix); i++)
		run_ms(&w, 20);
	assert_int_equal(ix_pending(w.ix), 1);
	ix_router_free(w.ix);
	run_ms(&w, 3000); /* the handler answers after 2.6 s */
	th_sim_call(w.port, "GET", path, NULL, &rec);
	assert_non_null(
	    strstr(json_string_value(json_object_get(callback_data(rec, 0), "content")) ?: "",
	           "restarting"));
	json_decref(rec);

	uv_close((uv_handle_t *)&w.slow_timer, NULL);
	gw_close(w.gw);
	rest_free(w.rest);
	httpc_close(w.http);
	uv_run(w.loop, UV_RUN_DEFAULT);
	gw_free(w.gw);
	cache_free(w.cache);
	th_sim_stop(sim);
}

static int count_lines(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, a) && strstr(line, b))
			n++;
	if (f)
		fclose(f);
	return n;
}

/* The bridge registers its commands with one bulk overwrite, and a restart with the same set
 * registers nothing (the hash is in PostgreSQL) - also when the session resumes. /status answers
 * staff and refuses learners. */
static void test_commands_registered_once(void **state)
{
	char sdir[96], dir[96], db[1024], envdb[1100], envapi[128], record[160];
	struct world w = {0};
	snprintf(record, sizeof(record), "%s/record.jsonl", th_tmpdir());
	const char *args[] = {"--ratelimits", "discord", "--record", record, NULL};
	pid_t sim = th_sim_start(args, &w.port, sdir, sizeof(sdir));
	read_world(&w);
	th_fresh_db(db, sizeof(db));
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", w.port);
	const char *cfg =
	    th_write_file(0, "cohortbridge.json", "{\"http\": {\"listen\": \"127.0.0.1:0\"}}");
	const char *a[] = {"", "--config", cfg, "run", NULL};
	const char *env[] = {envdb, "DISCORD_TOKEN=sim-token", envapi, NULL};
	for (int round = 0; round < 3; round++) {
		pid_t pid = th_spawn(a, env, dir, sizeof(dir));
		assert_true(th_listen_port(dir, 10000) > 0);
		assert_true(th_wait_for(dir, "stderr", round ? "msg=resumed" : "msg=ready", 10000));
		if (round == 0)
			assert_true(
			    th_wait_for(dir, "stderr", "msg=\"commands registered\"", 10000));
		else
			usleep(1500000); /* time enough for a needless registration to show */
		char *log = th_read(dir, "stderr");
		if (round && strstr(log, "commands registered"))
			fail_msg("round %d registered the same commands again:\n%s", round, log);
		free(log);
		if (round == 2) {
			/* /status: staff get the figures, others a refusal */
			char body[512];
			json_t *res = NULL, *rec = NULL;
			for (int who = 0; who < 2; who++) {
				snprintf(body, sizeof(body),
				         "{\"type\":\"command\",\"name\":\"status\",\"user_id\":"
				         "\"%s\",\"guild_id\":\"%s\",\"channel_id\":\"%s\"}",
				         who ? w.learner : w.staff, w.guild, w.channel);
				assert_int_equal(
				    th_sim_call(w.port, "POST", "/_sim/interactions", body, &res),
				    200);
				char path[128];
				snprintf(path, sizeof(path), "/_sim/interactions/%s",
				         json_string_value(json_object_get(res, "id")));
				json_decref(res);
				for (int i = 0; i < 60; i++) {
					usleep(50000);
					json_decref(rec);
					th_sim_call(w.port, "GET", path, NULL, &rec);
					if (json_array_size(json_object_get(rec, "callbacks")))
						break;
				}
				const char *content = json_string_value(
				    json_object_get(callback_data(rec, 0), "content"));
				if (!content ||
				    !strstr(content, who ? "staff only" : "Outbox: 0 pending"))
					fail_msg("/status for %s: %s", who ? "a learner" : "staff",
					         content ? content : "no answer");
				json_decref(rec);
				rec = NULL;
			}
		}
		kill(pid, SIGTERM);
		assert_int_equal(th_wait(pid, 10000), 0);
	}
	/* the set Discord holds: the staff command hidden by default */
	json_t *st = NULL, *c;
	size_t i;
	int hidden = 0;
	th_sim_call(w.port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "commands"), i, c) {
		if (strcmp(json_string_value(json_object_get(c, "name")), "status") == 0)
			hidden =
			    json_string_value(json_object_get(c, "default_member_permissions")) &&
			    strcmp(
			        json_string_value(json_object_get(c, "default_member_permissions")),
			        "0") == 0;
	}
	json_decref(st);
	assert_true(hidden);
	th_sim_stop(sim);
	assert_int_equal(count_lines(record, "\"PUT\"", "/commands"), 1);
}

GROUP(group_interact)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interactions_routed),
	    cmocka_unit_test(test_commands_registered_once),
	};
	return RUN_GROUP(tests);
}
