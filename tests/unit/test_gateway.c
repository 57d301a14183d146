/* The gateway client against discord-sim: the lifecycle, resumes across forced drops with
 * every event once, session-ending closes, fatal closes, zombies, garbage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "helpers.h"

#include "gateway.h"

struct watch {
	uv_loop_t *loop;
	struct gw *gw;
	int ready, downs, fatal;
	char fatal_why[300], down_why[300];
	int guild_creates;
	json_t *joined; /* username -> times seen */
	long last_seq;
	int out_of_order;
};

static void on_dispatch(void *ud, const char *t, const struct jtok *j, int d, long seq)
{
	struct watch *w = ud;
	if (seq <= w->last_seq && strcmp(t, "RESUMED") != 0)
		w->out_of_order++;
	w->last_seq = seq;
	if (strcmp(t, "GUILD_CREATE") == 0)
		w->guild_creates++;
	if (strcmp(t, "GUILD_MEMBER_ADD") == 0) {
		char name[64];
		if (jtok_str(j, jtok_get(j, jtok_get(j, d, "user"), "username"), name,
		             sizeof(name)) < 0)
			return;
		json_t *n = json_object_get(w->joined, name);
		json_object_set_new(w->joined, name,
		                    json_integer(n ? json_integer_value(n) + 1 : 1));
	}
}

static void on_state(void *ud, enum gw_state st, const char *why)
{
	struct watch *w = ud;
	if (st == GW_READY)
		w->ready++;
	else if (st == GW_DOWN) {
		w->downs++;
		snprintf(w->down_why, sizeof(w->down_why), "%s", why);
	} else if (st == GW_FATAL) {
		w->fatal++;
		snprintf(w->fatal_why, sizeof(w->fatal_why), "%s", why);
	}
}

static void start(struct watch *w, int port, const char *token, unsigned intents, int compress)
{
	char url[64];
	struct err err = {0};
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", port);
	struct gw_opts o = {.url = url,
	                    .token = token,
	                    .intents = intents,
	                    .compress = compress,
	                    .identify_spacing_ms = 60};
	struct gw_handler h = {on_dispatch, on_state};
	w->loop = uv_default_loop();
	w->joined = json_object();
	w->gw = gw_new(w->loop, &o, &h, w, &err);
	assert_non_null(w->gw);
	assert_int_equal(gw_start(w->gw, &err), 0);
}

static void stop(struct watch *w)
{
	gw_close(w->gw);
	uv_run(w->loop, UV_RUN_DEFAULT);
	gw_free(w->gw);
	json_decref(w->joined);
}

/* Runs the loop until *flag reaches want (or ms pass). */
static int run_until(struct watch *w, int *flag, int want, int ms)
{
	uv_update_time(w->loop);
	uint64_t until = uv_now(w->loop) + (uint64_t)ms;
	/* NOWAIT and a short sleep: UV_RUN_ONCE would block while nothing is due */
	while (*flag < want && uv_now(w->loop) < until) {
		uv_run(w->loop, UV_RUN_NOWAIT);
		if (*flag < want)
			usleep(500);
		uv_update_time(w->loop);
	}
	return *flag >= want;
}

static void run_for(struct watch *w, int ms)
{
	int never = 0;
	run_until(w, &never, 1, ms);
}

static json_int_t sim_gw_stat(int port, const char *key)
{
	json_t *st = NULL;
	th_sim_call(port, "GET", "/_sim/stats", NULL, &st);
	json_int_t v = json_integer_value(json_object_get(json_object_get(st, "gateway"), key));
	json_decref(st);
	return v;
}

#define INTENTS ((1u << 0) | (1u << 1) | (1u << 9))

static const char *const fast[] = {"--ratelimits", "fast", "--heartbeat-ms", "300", NULL};

static void test_gw_ready_and_heartbeats(void **state)
{
	char dir[96];
	int port;
	pid_t sim = th_sim_start(fast, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "sim-token", INTENTS, 1);
	assert_true(run_until(&w, &w.ready, 1, 5000));
	assert_true(run_until(&w, &w.guild_creates, 1, 5000));
	run_for(&w, 1000);
	assert_true(sim_gw_stat(port, "heartbeats") >= 2);
	assert_int_equal(w.downs, 0); /* the heartbeats were acknowledged: no zombie */
	assert_non_null(gw_session_id(w.gw));
	assert_true(gw_seq(w.gw) >= 2);
	stop(&w);
	th_sim_stop(sim);
}

/* 100 forced drops of the resumable kinds while members keep joining: every event is seen
 * exactly once, there is one IDENTIFY, and the rest are resumes. */
static void test_gw_resumes(void **state)
{
	char dir[96], body[128];
	int port;
	pid_t sim = th_sim_start(fast, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "sim-token", INTENTS, 1);
	assert_true(run_until(&w, &w.ready, 1, 5000));
	static const char *const kinds[] = {"/_sim/gateway/drop", "/_sim/gateway/reconnect",
	                                    "/_sim/gateway/invalidate", "/_sim/gateway/drop"};
	static const char *const bodies[] = {"{}", "{}", "{\"resumable\": true}",
	                                     "{\"code\": 4000}"};
	int joined = 0;
	for (int i = 0; i < 100; i++) {
		int k = i % 4;
		assert_int_equal(th_sim_call(port, "POST", kinds[k], bodies[k], NULL), 200);
		/* a join while the client is away or reconnecting: RESUME must replay it */
		snprintf(body, sizeof(body), "{\"username\": \"joiner-%d\"}", i);
		assert_int_equal(th_sim_call(port, "POST", "/_sim/members", body, NULL), 200);
		joined++;
		if (!run_until(&w, &w.ready, i + 2, 10000))
			fail_msg("no RESUMED after drop %d (kind %d)", i, k);
	}
	run_for(&w, 300);
	assert_int_equal(json_object_size(w.joined), (size_t)joined);
	const char *k;
	json_t *v;
	json_object_foreach(w.joined, k, v)
		if (json_integer_value(v) != 1)
			fail_msg("%s seen %lld times", k, (long long)json_integer_value(v));
	assert_int_equal(w.out_of_order, 0);
	struct gw_stats st;
	gw_get_stats(w.gw, &st);
	assert_int_equal(st.identifies, 1);
	assert_int_equal(st.resumes, 100);
	assert_int_equal(sim_gw_stat(port, "identifies"), 1);
	assert_int_equal(sim_gw_stat(port, "resumes"), 100);
	stop(&w);
	th_sim_stop(sim);
}

/* op 9 false, 4007 and 4009 end the session: exactly one new IDENTIFY each. */
static void test_gw_session_ending(void **state)
{
	char dir[96];
	int port;
	pid_t sim = th_sim_start(fast, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "sim-token", INTENTS, 0);
	assert_true(run_until(&w, &w.ready, 1, 5000));
	th_sim_call(port, "POST", "/_sim/gateway/invalidate", "{\"resumable\": false}", NULL);
	assert_true(run_until(&w, &w.ready, 2, 8000)); /* after waiting 1-5 s */
	th_sim_call(port, "POST", "/_sim/gateway/drop", "{\"code\": 4007}", NULL);
	assert_true(run_until(&w, &w.ready, 3, 5000));
	th_sim_call(port, "POST", "/_sim/gateway/drop", "{\"code\": 4009}", NULL);
	assert_true(run_until(&w, &w.ready, 4, 5000));
	run_for(&w, 200);
	struct gw_stats st;
	gw_get_stats(w.gw, &st);
	assert_int_equal(st.identifies, 4);
	assert_int_equal(st.resumes, 0);
	assert_int_equal(sim_gw_stat(port, "identifies"), 4);
	stop(&w);
	th_sim_stop(sim);
}

/* A bad token and disallowed intents stop the client with a clear reason: no retry loop. */
static void test_gw_fatal(void **state)
{
	char dir[96];
	int port;
	pid_t sim = th_sim_start(fast, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "not-the-token", INTENTS, 0);
	assert_true(run_until(&w, &w.fatal, 1, 5000));
	assert_non_null(strstr(w.fatal_why, "4004"));
	run_for(&w, 500);
	assert_int_equal(sim_gw_stat(port, "connections"), 1);
	stop(&w);

	struct watch w2 = {0};
	start(&w2, port, "sim-token", INTENTS | (1u << 8), 0); /* GUILD_PRESENCES: not enabled */
	assert_true(run_until(&w2, &w2.fatal, 1, 5000));
	assert_non_null(strstr(w2.fatal_why, "4014"));
	assert_non_null(strstr(w2.fatal_why, "developer portal"));
	run_for(&w2, 500);
	assert_int_equal(sim_gw_stat(port, "connections"), 2);
	stop(&w2);
	th_sim_stop(sim);
}

/* Unanswered heartbeats make a zombie: the client drops it and resumes. A frame that is not
 * JSON, and a 300 kB one, are survived the same way: one DOWN naming the cause, one reconnect,
 * a RESUME, and no further reconnects. */
static void test_gw_zombie_and_garbage(void **state)
{
	char dir[96];
	int port;
	pid_t sim = th_sim_start(fast, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "sim-token", INTENTS, 0);
	assert_true(run_until(&w, &w.ready, 1, 5000));
	th_sim_call(port, "POST", "/_sim/gateway/acks", "{\"enabled\": false}", NULL);
	assert_true(run_until(&w, &w.downs, 1, 5000));
	th_sim_call(port, "POST", "/_sim/gateway/acks", "{\"enabled\": true}", NULL);
	assert_true(run_until(&w, &w.ready, 2, 5000));
	struct gw_stats st;
	gw_get_stats(w.gw, &st);
	assert_int_equal(st.zombies, 1);
	assert_int_equal(st.resumes, 1);
	assert_non_null(strstr(w.down_why, "zombie"));

	th_sim_call(port, "POST", "/_sim/gateway/raw", "{\"text\": \"this is not json {\"}", NULL);
	assert_true(run_until(&w, &w.ready, 3, 5000));
	assert_int_equal(w.downs, 2);
	assert_string_equal(w.down_why, "undecodable frame from the gateway; reconnecting");
	/* a 300 kB frame that is not JSON either */
	char *big = calloc(1, 300000);
	memset(big, 'x', 299990);
	snprintf(big, 11, "%s", "{\"text\": \"");
	big[10] = 'x';
	snprintf(big + 299990 - 2, 3, "%s", "\"}");
	th_sim_call(port, "POST", "/_sim/gateway/raw", big, NULL);
	free(big);
	assert_true(run_until(&w, &w.ready, 4, 5000));
	assert_int_equal(w.downs, 3);
	assert_string_equal(w.down_why, "undecodable frame from the gateway; reconnecting");
	/* quiet afterwards: no reconnect loop */
	run_for(&w, 2000);
	gw_get_stats(w.gw, &st);
	assert_int_equal(w.downs, 3);
	assert_int_equal(w.ready, 4);
	assert_int_equal(st.connects, 4);
	assert_int_equal(sim_gw_stat(port, "connections"), 4);
	assert_int_equal(st.identifies, 1);
	assert_int_equal(st.resumes, 3);
	assert_int_equal(w.fatal, 0);
	stop(&w);
	th_sim_stop(sim);
}

/* A well-formed message past the 64 MiB the client accepts: dropped with a clear reason and
 * resumed, once. */
static void test_gw_oversized(void **state)
{
	char dir[96];
	int port;
	pid_t sim = th_sim_start(NULL, &port, dir, sizeof(dir));
	struct watch w = {0};
	start(&w, port, "sim-token", INTENTS, 0);
	assert_true(run_until(&w, &w.ready, 1, 5000));
	th_sim_call(port, "POST", "/_sim/gateway/raw", "{\"size\": 70000000}", NULL);
	assert_true(run_until(&w, &w.ready, 2, 15000));
	assert_int_equal(w.downs, 1);
	assert_string_equal(w.down_why, "gateway message larger than 64 MiB; reconnecting");
	run_for(&w, 1000);
	struct gw_stats st;
	gw_get_stats(w.gw, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.resumes, 1);
	assert_int_equal(st.identifies, 1);
	stop(&w);
	th_sim_stop(sim);
}

GROUP(group_gateway)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gw_ready_and_heartbeats), cmocka_unit_test(test_gw_resumes),
	    cmocka_unit_test(test_gw_session_ending),       cmocka_unit_test(test_gw_fatal),
	    cmocka_unit_test(test_gw_zombie_and_garbage),   cmocka_unit_test(test_gw_oversized),
	};
	return RUN_GROUP(tests);
}
