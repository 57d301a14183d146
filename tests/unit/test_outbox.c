/* The outbox through the bridge: 1,000 mixed actions, a kill -9 halfway, a restart, and every
 * action carried out exactly once in the simulator. In process: wake-ups by NOTIFY from another
 * connection (also after the server ends the session), a storm of 500s, permanent failures. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "helpers.h"

#include "db.h"
#include "httpc.h"
#include "metrics.h"
#include "outbox.h"
#include "rest.h"

static long count_sql(const char *db, const char *sql)
{
	const char *v = th_sql(db, sql, 0);
	return v ? strtol(v, NULL, 10) : -1;
}

static void test_outbox_kill9(void **state)
{
	char sdir[96], dir[96], dir2[96], db[1024], envdb[1100], envapi[128];
	int sim_port;
	const char *args[] = {"--ratelimits", "fast", "--heartbeat-ms", "500", NULL};
	pid_t sim = th_sim_start(args, &sim_port, sdir, sizeof(sdir));
	th_fresh_db(db, sizeof(db));
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *env[] = {envdb, "DISCORD_TOKEN=sim-token", envapi, NULL};
	const char *m[] = {"", "migrate", NULL};
	assert_int_equal(th_run(m, env, dir, sizeof(dir)), 0);

	json_t *st = NULL;
	th_sim_call(sim_port, "GET", "/_sim/state", NULL, &st);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	const char *gid = json_string_value(json_object_get(g, "id"));
	const char *channel = NULL, *learner = NULL,
	           *owner = json_string_value(json_object_get(g, "owner_id"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		if (json_integer_value(json_object_get(v, "type")) == 0)
			channel = json_string_value(json_object_get(v, "id"));
	}
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), "Learner") == 0)
			learner = json_string_value(json_object_get(v, "id"));
	}
	const char *users[16];
	int nusers = 0;
	json_array_foreach(json_object_get(g, "members"), i, v) {
		json_t *u = json_object_get(v, "user");
		if (!json_is_true(json_object_get(u, "bot")) &&
		    strcmp(json_string_value(json_object_get(u, "id")), owner) != 0 && nusers < 16)
			users[nusers++] = json_string_value(json_object_get(u, "id"));
	}
	assert_true(channel && learner && nusers >= 8);

	/* 1,000 actions, queued as features would queue them */
	FILE *f = NULL;
	char *sql = NULL;
	size_t len = 0;
	f = open_memstream(&sql, &len);
	fprintf(f, "INSERT INTO outbox (guild_id, kind, key, payload) VALUES ");
	for (int k = 0; k < 1000; k++) {
		char payload[512];
		const char *kind;
		int t = k % 10;
		if (t < 4) {
			kind = "message_create";
			snprintf(payload, sizeof(payload),
			         "{\"channel_id\": \"%s\", \"body\": {\"content\": \"m-%d\"}}",
			         channel, k);
		} else if (t < 8) {
			kind = "role_add";
			snprintf(payload, sizeof(payload),
			         "{\"guild_id\": \"%s\", \"user_id\": \"%s\", \"role_id\": \"%s\", "
			         "\"reason\": \"test\"}",
			         gid, users[k % nusers], learner);
		} else if (t < 9) {
			kind = "channel_create";
			snprintf(payload, sizeof(payload),
			         "{\"guild_id\": \"%s\", \"body\": {\"name\": \"cohort-%d\", "
			         "\"type\": 0}}",
			         gid, k);
		} else {
			kind = "dm";
			snprintf(payload, sizeof(payload),
			         "{\"user_id\": \"%s\", \"body\": {\"content\": \"dm-%d\"}}",
			         users[k % nusers], k);
		}
		fprintf(f, "%s(%s, '%s', 'k-%d', '%s')", k ? ", " : "", gid, kind, k, payload);
	}
	fclose(f);
	th_sql(db, sql, 0);
	free(sql);
	/* keep what the checks below need: st is read again later */
	char chan[32], role[32], ids[16][32];
	snprintf(chan, sizeof(chan), "%s", channel);
	snprintf(role, sizeof(role), "%s", learner);
	for (int u = 0; u < nusers; u++)
		snprintf(ids[u], sizeof(ids[u]), "%s", users[u]);
	channel = chan;
	learner = role;
	for (int u = 0; u < nusers; u++)
		users[u] = ids[u];
	json_decref(st);

	const char *cfg =
	    th_write_file(0, "cohortbridge.json",
	                  "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"outbox\": {\"lease_ms\": "
	                  "1000, \"batch\": 200}, "
	                  "\"discord\": {\"global_limit\": 50, \"global_window_ms\": 10}}");
	const char *a[] = {"", "--config", cfg, "run", NULL};
	pid_t pid = th_spawn(a, env, dir, sizeof(dir));
	long done = 0;
	for (int t = 0; t < 300 && done < 300; t++) {
		usleep(20000);
		done = count_sql(db, "SELECT count(*) FROM outbox WHERE state = 'done'");
	}
	assert_true(done >= 300);
	kill(pid, SIGKILL); /* mid-flight: some sent, not recorded */
	th_wait(pid, 5000);
	assert_true(count_sql(db, "SELECT count(*) FROM outbox WHERE state = 'done'") < 1000);

	pid = th_spawn(a, env, dir2, sizeof(dir2));
	for (int t = 0; t < 1500 && done < 1000; t++) {
		usleep(20000);
		done = count_sql(db, "SELECT count(*) FROM outbox WHERE state = 'done'");
	}
	if (done < 1000) {
		const char *e = th_sql(db,
		                       "SELECT coalesce(string_agg(DISTINCT last_error, ' | '), "
		                       "'') FROM outbox WHERE state <> 'done'",
		                       0);
		char *simerr = th_read(sdir, "stderr");
		size_t n = strlen(simerr);
		fail_msg("%ld of 1000 done; errors: %s\nsimulator (%s): %s", done, e ? e : "",
		         kill(sim, 0) == 0 ? "running" : "gone",
		         n > 3000 ? simerr + n - 3000 : simerr);
	}
	assert_int_equal(count_sql(db, "SELECT count(*) FROM outbox WHERE state = 'parked'"), 0);
	/* the crash left claimed rows behind, and they were taken again after their lease */
	assert_true(count_sql(db, "SELECT count(*) FROM outbox WHERE attempts >= 2") > 0);
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);

	/* exactly once, as the simulator saw it */
	th_sim_call(sim_port, "GET", "/_sim/state", NULL, &st);
	json_t *msgs = json_object_get(json_object_get(st, "messages"), channel);
	json_t *seen = json_object();
	json_array_foreach(msgs, i, v) {
		const char *c = json_string_value(json_object_get(v, "content"));
		if (strncmp(c, "m-", 2) != 0)
			continue;
		if (json_object_get(seen, c))
			fail_msg("message %s posted twice", c);
		json_object_set_new(seen, c, json_true());
	}
	assert_int_equal(json_object_size(seen), 400);
	json_object_clear(seen);
	g = json_array_get(json_object_get(st, "guilds"), 0);
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		const char *c = json_string_value(json_object_get(v, "name"));
		if (strncmp(c, "cohort-", 7) != 0)
			continue;
		if (json_object_get(seen, c))
			fail_msg("channel %s created twice", c);
		json_object_set_new(seen, c, json_true());
	}
	assert_int_equal(json_object_size(seen), 100);
	json_object_clear(seen);
	const char *k;
	json_t *dmc;
	json_object_foreach(json_object_get(st, "dm_channels"), k, dmc) {
		json_array_foreach(json_object_get(json_object_get(st, "messages"),
		                                   json_string_value(json_object_get(dmc, "id"))),
		                   i, v) {
			const char *c = json_string_value(json_object_get(v, "content"));
			if (json_object_get(seen, c))
				fail_msg("DM %s sent twice", c);
			json_object_set_new(seen, c, json_true());
		}
	}
	assert_int_equal(json_object_size(seen), 100);
	json_array_foreach(json_object_get(g, "members"), i, v) {
		const char *uid =
		    json_string_value(json_object_get(json_object_get(v, "user"), "id"));
		for (int u = 0; u < nusers; u++)
			if (strcmp(uid, users[u]) == 0) {
				int has = 0;
				size_t r;
				json_t *rid;
				json_array_foreach(json_object_get(v, "roles"), r, rid)
					has |= strcmp(json_string_value(rid), learner) == 0;
				assert_true(has);
			}
	}
	json_decref(seen);
	json_decref(st);
	th_sim_stop(sim);
}

/* --- the executor in process --------------------------------------------------------------- */

struct world {
	char guild[32], channel[32], owner_role[32];
	char users[8][32];
	int nusers;
};

/* One executor (or two) on this process's loop; pc is another process's plain connection. */
struct rig {
	uv_loop_t *loop;
	pid_t sim;
	int port;
	char conninfo[1024];
	struct world w;
	PGconn *pc;
	struct db *db, *db2;
	struct httpc *http, *http2;
	struct rest *rest, *rest2;
	struct outbox *ob, *ob2;
	uv_timer_t tick;
	uv_check_t check;
	unsigned long iterations;
};

static void on_tick(uv_timer_t *t)
{
}

static void on_check(uv_check_t *c)
{
	((struct rig *)c->data)->iterations++;
}

static void read_world(struct rig *r)
{
	json_t *st = NULL;
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	const char *owner = json_string_value(json_object_get(g, "owner_id"));
	size_t i;
	json_t *v;
	snprintf(r->w.guild, sizeof(r->w.guild), "%s", json_string_value(json_object_get(g, "id")));
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		if (json_integer_value(json_object_get(v, "type")) == 0)
			snprintf(r->w.channel, sizeof(r->w.channel), "%s",
			         json_string_value(json_object_get(v, "id")));
	}
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), "Owner") == 0)
			snprintf(r->w.owner_role, sizeof(r->w.owner_role), "%s",
			         json_string_value(json_object_get(v, "id")));
	}
	json_array_foreach(json_object_get(g, "members"), i, v) {
		json_t *u = json_object_get(v, "user");
		const char *id = json_string_value(json_object_get(u, "id"));
		if (!json_is_true(json_object_get(u, "bot")) && strcmp(id, owner) != 0 &&
		    r->w.nusers < 8)
			snprintf(r->w.users[r->w.nusers++], sizeof(r->w.users[0]), "%s", id);
	}
	json_decref(st);
	assert_true(r->w.channel[0] && r->w.owner_role[0] && r->w.nusers == 8);
}

static struct rest *rig_rest(struct rig *r, struct httpc **http, unsigned retries)
{
	char base[64];
	struct err err = {0};
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/api/v10", r->port);
	*http = httpc_new(r->loop, &err);
	assert_non_null(*http);
	struct rest_opts ro = {.base_url = base,
	                       .token = "sim-token",
	                       .global_limit = 50,
	                       .global_window_ms = 10,
	                       .max_retries = retries};
	struct rest *rest = rest_new(r->loop, *http, &ro, &err);
	assert_non_null(rest);
	return rest;
}

static void rig_open(struct rig *r, const char *ratelimits, const struct outbox_opts *oo,
                     unsigned rest_retries)
{
	char dir[96], envdb[1100];
	struct err err = {0};
	const char *args[] = {"--ratelimits", ratelimits, NULL};
	r->sim = th_sim_start(args, &r->port, dir, sizeof(dir));
	th_fresh_db(r->conninfo, sizeof(r->conninfo));
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", r->conninfo);
	const char *env[] = {envdb, NULL};
	const char *m[] = {"", "migrate", NULL};
	assert_int_equal(th_run(m, env, dir, sizeof(dir)), 0);
	read_world(r);
	r->pc = PQconnectdb(r->conninfo);
	assert_int_equal(PQstatus(r->pc), CONNECTION_OK);

	/* a loop of its own: a failed test leaves it behind without harming the next */
	r->loop = calloc(1, sizeof(*r->loop));
	assert_non_null(r->loop);
	assert_int_equal(uv_loop_init(r->loop), 0);
	/* a tick keeps UV_RUN_ONCE short; the check counts loop iterations */
	uv_timer_init(r->loop, &r->tick);
	uv_timer_start(&r->tick, on_tick, 2, 2);
	uv_check_init(r->loop, &r->check);
	r->check.data = r;
	uv_check_start(&r->check, on_check);
	r->db = db_open(r->loop, r->conninfo, NULL, &err);
	assert_non_null(r->db);
	r->rest = rig_rest(r, &r->http, rest_retries);
	r->ob = outbox_new(r->loop, r->db, r->rest, oo, &err);
	assert_non_null(r->ob);
}

static void rig_close(struct rig *r)
{
	outbox_stop(r->ob);
	outbox_stop(r->ob2);
	rest_free(r->rest);
	if (r->rest2)
		rest_free(r->rest2);
	httpc_close(r->http);
	if (r->http2)
		httpc_close(r->http2);
	db_close(r->db, 2000, NULL, NULL);
	db_close(r->db2, 2000, NULL, NULL);
	uv_close((uv_handle_t *)&r->tick, NULL);
	uv_close((uv_handle_t *)&r->check, NULL);
	uv_run(r->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(r->loop), 0);
	free(r->loop);
	outbox_free(r->ob);
	outbox_free(r->ob2);
	PQfinish(r->pc);
	th_sim_stop(r->sim);
}

typedef int (*rig_pred)(struct rig *r, uint64_t arg);

/* Runs the loop until pred holds (1) or ms pass (0). */
static int run_until(struct rig *r, rig_pred pred, uint64_t arg, int ms)
{
	uint64_t until = uv_hrtime() + (uint64_t)ms * 1000000;
	while (!pred || !pred(r, arg)) {
		if (uv_hrtime() >= until)
			return 0;
		uv_run(r->loop, UV_RUN_ONCE);
	}
	return 1;
}

static int settled(struct rig *r, uint64_t arg)
{
	char why[256];
	return db_healthy(r->db, why, sizeof(why)) && db_pending(r->db) == 0 &&
	       rest_pending(r->rest) == 0 && (!r->db2 || db_pending(r->db2) == 0) &&
	       (!r->rest2 || rest_pending(r->rest2) == 0);
}

static int done_reaches(struct rig *r, uint64_t n)
{
	return metrics.outbox_done >= n;
}

static int reconnected(struct rig *r, uint64_t connects)
{
	return metrics.db_connects > connects && settled(r, 0);
}

static void pc_exec(struct rig *r, const char *sql)
{
	PGresult *res = PQexec(r->pc, sql);
	ExecStatusType st = PQresultStatus(res);
	PQclear(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(r->pc));
}

static long pc_long(struct rig *r, const char *sql)
{
	PGresult *res = PQexec(r->pc, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(r->pc));
	long v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* As a feature enqueues: OUTBOX_INSERT inside the caller's transaction. */
static void enqueue(struct rig *r, const char *kind, const char *key, const char *payload)
{
	const char *p[] = {r->w.guild, kind, key, payload};
	PGresult *res = PQexecParams(r->pc, OUTBOX_INSERT, 4, NULL, p, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	PQclear(res);
	if (st != PGRES_COMMAND_OK)
		fail_msg("enqueue %s: %s", key, PQerrorMessage(r->pc));
}

static void enqueue_message(struct rig *r, const char *channel, const char *content)
{
	char payload[256];
	snprintf(payload, sizeof(payload),
	         "{\"channel_id\": \"%s\", \"body\": {\"content\": \"%s\"}}", channel, content);
	enqueue(r, "message_create", content, payload);
}

/* Counts the messages in channel whose content starts with prefix; fails on a duplicate. */
static size_t count_once(json_t *st, const char *channel, const char *prefix)
{
	json_t *seen = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(json_object_get(st, "messages"), channel), i, v) {
		const char *c = json_string_value(json_object_get(v, "content"));
		if (!c || strncmp(c, prefix, strlen(prefix)) != 0)
			continue;
		if (json_object_get(seen, c))
			fail_msg("message %s posted twice", c);
		json_object_set_new(seen, c, json_true());
	}
	size_t n = json_object_size(seen);
	json_decref(seen);
	return n;
}

/* Enqueued from another connection, one at a time: carried out in ms, not at the 30 s poll. */
static double notify_latency(struct rig *r, const char *tag, int rounds, double *max)
{
	double sum = 0;
	char content[64];
	*max = 0;
	for (int i = 0; i < rounds; i++) {
		/* nothing in flight that could find the row without the notification */
		if (!run_until(r, settled, 0, 5000))
			fail_msg("the executor did not settle");
		uint64_t want = metrics.outbox_done + 1;
		snprintf(content, sizeof(content), "%s-%d", tag, i);
		uint64_t t0 = uv_hrtime();
		pc_exec(r, "BEGIN");
		enqueue_message(r, r->w.channel, content);
		pc_exec(r, "COMMIT");
		if (!run_until(r, done_reaches, want, 5000))
			fail_msg("%s not carried out within 5 s", content);
		double ms = (double)(uv_hrtime() - t0) / 1e6;
		sum += ms;
		if (ms > *max)
			*max = ms;
	}
	return sum / rounds;
}

static void test_outbox_notify(void **state)
{
	struct rig r = {0};
	struct outbox_opts oo = {.poll_ms = 30000, .batch = 20};
	rig_open(&r, "off", &oo, 2);
	double max1, max2;
	double avg1 = notify_latency(&r, "notify", 20, &max1);
	assert_true(max1 < 1000);

	/* the server ends the bridge's idle session: noticed at once, LISTEN again after the
	 * reconnect, and no busy loop meanwhile */
	assert_true(run_until(&r, settled, 0, 5000));
	uint64_t connects = metrics.db_connects;
	unsigned long it0 = r.iterations;
	uint64_t t0 = uv_hrtime();
	assert_int_equal(pc_long(&r, "SELECT count(pg_terminate_backend(pid)) FROM "
	                             "pg_stat_activity WHERE datname = current_database() AND "
	                             "pid <> pg_backend_pid() AND backend_type = 'client backend'"),
	                 1);
	if (!run_until(&r, reconnected, connects, 5000))
		fail_msg("no reconnect within 5 s of pg_terminate_backend");
	double reconnect_ms = (double)(uv_hrtime() - t0) / 1e6;
	unsigned long iterations = r.iterations - it0;
	/* the 2 ms tick and the I/O of a reconnect, not a spinning loop */
	assert_true(iterations < (unsigned long)reconnect_ms * 2 + 200);
	double avg2 = notify_latency(&r, "after-reconnect", 10, &max2);
	assert_true(max2 < 1000);

	/* a second executor on its own connection: one commit wakes both, the rows are split
	 * (SKIP LOCKED) and each is carried out once */
	struct err err = {0};
	r.db2 = db_open(r.loop, r.conninfo, NULL, &err);
	r.rest2 = rig_rest(&r, &r.http2, 2);
	r.ob2 = outbox_new(r.loop, r.db2, r.rest2, &oo, &err);
	assert_non_null(r.ob2);
	assert_true(run_until(&r, settled, 0, 5000));
	uint64_t want = metrics.outbox_done + 100;
	char content[32];
	t0 = uv_hrtime();
	pc_exec(&r, "BEGIN");
	for (int i = 0; i < 100; i++) {
		snprintf(content, sizeof(content), "shared-%d", i);
		enqueue_message(&r, r.w.channel, content);
	}
	pc_exec(&r, "COMMIT");
	assert_true(run_until(&r, done_reaches, want, 10000));
	double shared_ms = (double)(uv_hrtime() - t0) / 1e6;
	assert_true(shared_ms < 1000);
	struct rest_stats s1, s2;
	rest_get_stats(r.rest, &s1);
	rest_get_stats(r.rest2, &s2);
	assert_true(s2.ok > 0);
	assert_true(s1.ok > 30); /* 30 before the second executor started */

	json_t *st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	assert_int_equal(count_once(st, r.w.channel, "notify-"), 20);
	assert_int_equal(count_once(st, r.w.channel, "after-reconnect-"), 10);
	assert_int_equal(count_once(st, r.w.channel, "shared-"), 100);
	json_decref(st);
	print_message("notify: %.1f ms mean, %.1f ms max (poll 30 s); reconnect after "
	              "pg_terminate_backend %.0f ms (%lu loop iterations); then %.1f ms mean, "
	              "%.1f ms max; 100 rows through two executors in %.0f ms (%lu + %lu)\n",
	              avg1, max1, reconnect_ms, iterations, avg2, max2, shared_ms, s1.ok - 30,
	              s2.ok);
	rig_close(&r);
}

/* Outbox attempts one row can begin within ms, at the least waits: the REST client's retries
 * (0.25 s, 0.5 s, ...: the lower half of its jitter), then half the outbox's retry delay. */
static int attempts_within(int ms, unsigned retry_ms, unsigned rest_retries)
{
	long rest_min = 0, t = 0;
	int n = 0;
	for (unsigned i = 0; i < rest_retries; i++)
		rest_min += 250L << i;
	while (t < ms) {
		n++;
		t += rest_min + ((long)retry_ms / 2 << (n - 1));
	}
	return n;
}

static long sim_faults(int port)
{
	json_t *st = NULL, *v;
	const char *k;
	long n = 0;
	th_sim_call(port, "GET", "/_sim/stats", NULL, &st);
	json_object_foreach(json_object_get(st, "faults"), k, v)
		n += (long)json_integer_value(v);
	json_decref(st);
	return n;
}

#define STORM_MS 3000

/* Every REST call answers 500 for a while: the 200 rows are retried with backoff (the attempts
 * the simulator sees stay under what the least waits allow), none is parked before
 * max_attempts, and after the storm each is carried out exactly once, woken by its own retry
 * timers (the poll is a minute away). */
static void test_outbox_500_storm(void **state)
{
	struct rig r = {0};
	const unsigned rest_retries = 1;
	struct outbox_opts oo = {.retry_ms = 200, .max_attempts = 10, .poll_ms = 60000};
	rig_open(&r, "fast", &oo, rest_retries);
	/* forty channels of four messages each: the REST client keeps a failed request at the head
	 * of its channel's queue, so with fewer queues most rows would wait there, not here */
	char rooms[40][32], path[96], body[96];
	snprintf(path, sizeof(path), "/api/v10/guilds/%s/channels", r.w.guild);
	for (int k = 0; k < 40; k++) {
		json_t *c = NULL;
		snprintf(body, sizeof(body), "{\"name\": \"room-%d\", \"type\": 0}", k);
		assert_int_equal(th_sim_call(r.port, "POST", path, body, &c), 201);
		snprintf(rooms[k], sizeof(rooms[k]), "%s",
		         json_string_value(json_object_get(c, "id")));
		json_decref(c);
	}
	assert_true(run_until(&r, settled, 0, 5000));
	assert_int_equal(th_sim_call(r.port, "POST", "/_sim/faults", "{\"fail_share\": 1.0}", NULL),
	                 200);
	uint64_t done0 = metrics.outbox_done, retried0 = metrics.outbox_retried;
	uint64_t trips0 = metrics.db_roundtrips;

	char key[32], payload[256];
	pc_exec(&r, "BEGIN");
	for (int k = 0; k < 200; k++) {
		if (k < 160) {
			snprintf(key, sizeof(key), "storm-%d", k);
			enqueue_message(&r, rooms[k % 40], key);
			continue;
		}
		if (k < 180) {
			snprintf(key, sizeof(key), "storm-dm-%d", k);
			snprintf(payload, sizeof(payload),
			         "{\"user_id\": \"%s\", \"body\": {\"content\": \"%s\"}}",
			         r.w.users[k % r.w.nusers], key);
			enqueue(&r, "dm", key, payload);
		} else {
			snprintf(key, sizeof(key), "made-%d", k);
			snprintf(payload, sizeof(payload),
			         "{\"guild_id\": \"%s\", \"body\": {\"name\": \"%s\", "
			         "\"type\": 0}}",
			         r.w.guild, key);
			enqueue(&r, "channel_create", key, payload);
		}
	}
	pc_exec(&r, "COMMIT");
	run_until(&r, NULL, 0, STORM_MS);

	/* the storm so far */
	long faults = sim_faults(r.port);
	uint64_t trips = metrics.db_roundtrips - trips0;
	int starts = attempts_within(STORM_MS, oo.retry_ms, rest_retries);
	long bound = 200L * (long)(1 + rest_retries) * starts;
	assert_int_equal(pc_long(&r, "SELECT count(*) FROM outbox WHERE state = 'parked'"), 0);
	assert_int_equal(pc_long(&r, "SELECT count(*) FROM outbox WHERE state = 'done'"), 0);
	long retried_rows = pc_long(&r, "SELECT count(*) FROM outbox WHERE attempts >= 2");
	long max_attempts = pc_long(&r, "SELECT max(attempts) FROM outbox");
	long waiting = pc_long(&r, "SELECT count(*) FROM outbox WHERE next_at > now()");
	/* none waits longer than its attempt's delay: 200 ms, 400 ms, 800 ms ... */
	assert_int_equal(pc_long(&r, "SELECT count(*) FROM outbox WHERE next_at > now() + "
	                             "make_interval(secs => 0.2 * 2 ^ (attempts - 1))"),
	                 0);
	assert_true(retried_rows >= 100 && metrics.outbox_retried > retried0 && waiting > 0);
	assert_true(max_attempts <= starts && max_attempts < (long)oo.max_attempts);
	assert_true(faults > 0 && faults <= bound);
	/* per attempt: the claim, the retry recorded, a look for channels, a claim after it */
	assert_true(trips <= (uint64_t)(200L * starts * 4 + 100));

	assert_int_equal(th_sim_call(r.port, "DELETE", "/_sim/faults", NULL, NULL), 204);
	uint64_t t0 = uv_hrtime();
	if (!run_until(&r, done_reaches, done0 + 200, 20000)) {
		PGresult *res = PQexec(r.pc, "SELECT state, count(*), max(attempts), "
		                             "string_agg(DISTINCT last_error, ' | ') FROM outbox "
		                             "GROUP BY state");
		for (int i = 0; i < PQntuples(res); i++)
			print_message("%s: %s rows, attempts up to %s: %s\n", PQgetvalue(res, i, 0),
			              PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			              PQgetvalue(res, i, 3));
		PQclear(res);
		fail_msg("not every action was carried out after the storm");
	}
	double recovery_ms = (double)(uv_hrtime() - t0) / 1e6;
	/* the longest wait left was that of the highest attempt so far */
	assert_true(recovery_ms < (double)(oo.retry_ms << (max_attempts - 1)) + 2000);
	assert_true(run_until(&r, settled, 0, 5000)); /* the last results recorded */
	assert_int_equal(pc_long(&r, "SELECT count(*) FROM outbox WHERE state = 'done'"), 200);
	long max_final = pc_long(&r, "SELECT max(attempts) FROM outbox");
	assert_true(max_final < (long)oo.max_attempts);

	/* exactly once, as the simulator saw it */
	json_t *st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	size_t msgs = 0;
	for (int k = 0; k < 40; k++)
		msgs += count_once(st, rooms[k], "storm-");
	assert_int_equal(msgs, 160);
	size_t dms = 0;
	const char *uid;
	json_t *dmc, *v;
	json_object_foreach(json_object_get(st, "dm_channels"), uid, dmc)
		dms += count_once(st, json_string_value(json_object_get(dmc, "id")), "storm-dm-");
	assert_int_equal(dms, 20);
	json_t *seen = json_object();
	size_t i;
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (strncmp(name, "made-", 5) != 0)
			continue;
		if (json_object_get(seen, name))
			fail_msg("channel %s created twice", name);
		json_object_set_new(seen, name, json_true());
	}
	assert_int_equal(json_object_size(seen), 20);
	json_decref(seen);
	json_decref(st);
	print_message("500 storm of %d ms: %ld 500s served (bound %ld), %ld rows retried, up to "
	              "%ld attempts (bound %d), %ld waiting for their retry, %llu db round-trips; "
	              "all 200 done %.0f ms after it, up to %ld attempts\n",
	              STORM_MS, faults, bound, retried_rows, max_attempts, starts, waiting,
	              (unsigned long long)trips, recovery_ms, max_final);
	rig_close(&r);
}

/* A row Discord refuses for good is parked at its first answer, with the reason, and the rows
 * after it go on. */
static void test_outbox_parks_permanent(void **state)
{
	struct rig r = {0};
	rig_open(&r, "fast", NULL, 2);
	assert_true(run_until(&r, settled, 0, 5000));
	uint64_t done0 = metrics.outbox_done;
	char payload[256], content[32];
	pc_exec(&r, "BEGIN");
	enqueue_message(&r, "1", "to-nowhere");
	snprintf(payload, sizeof(payload),
	         "{\"guild_id\": \"%s\", \"user_id\": \"%s\", \"role_id\": \"%s\"}", r.w.guild,
	         r.w.users[0], r.w.owner_role);
	enqueue(&r, "role_add", "above-the-bot", payload);
	for (int i = 0; i < 20; i++) {
		snprintf(content, sizeof(content), "after-%d", i);
		enqueue_message(&r, r.w.channel, content);
	}
	pc_exec(&r, "COMMIT");
	assert_true(run_until(&r, done_reaches, done0 + 20, 10000));
	assert_true(run_until(&r, settled, 0, 5000));
	PGresult *res = PQexec(r.pc, "SELECT key, attempts, last_error FROM outbox WHERE state = "
	                             "'parked' ORDER BY id");
	assert_int_equal(PQntuples(res), 2);
	assert_string_equal(PQgetvalue(res, 0, 0), "to-nowhere");
	assert_string_equal(PQgetvalue(res, 0, 1), "1");
	assert_string_equal(PQgetvalue(res, 0, 2),
	                    "POST /channels/{channel_id}/messages: HTTP 404: Unknown Channel");
	assert_string_equal(PQgetvalue(res, 1, 0), "above-the-bot");
	assert_string_equal(PQgetvalue(res, 1, 1), "1");
	assert_string_equal(PQgetvalue(res, 1, 2),
	                    "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}: HTTP 403: "
	                    "Missing Permissions");
	PQclear(res);
	json_t *st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	assert_int_equal(count_once(st, r.w.channel, "after-"), 20);
	json_decref(st);
	rig_close(&r);
}

/* Discord answers slower than the lease: the executor renews its claims, so a second executor
 * polling all the while never takes a row in flight, and each channel is created once. */
static void test_outbox_lease_renewed(void **state)
{
	struct rig r = {0};
	struct outbox_opts oo = {.poll_ms = 50, .lease_ms = 300, .batch = 10};
	rig_open(&r, "off", &oo, 2);
	struct err err = {0};
	r.db2 = db_open(r.loop, r.conninfo, NULL, &err);
	r.rest2 = rig_rest(&r, &r.http2, 2);
	r.ob2 = outbox_new(r.loop, r.db2, r.rest2, &oo, &err);
	assert_non_null(r.ob2);
	assert_true(run_until(&r, settled, 0, 5000));
	assert_int_equal(
	    th_sim_call(r.port, "POST", "/_sim/faults", "{\"latency_ms\": 1200}", NULL), 200);
	uint64_t done0 = metrics.outbox_done;
	char key[32], payload[256];
	pc_exec(&r, "BEGIN");
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "slow-%d", i);
		snprintf(payload, sizeof(payload),
		         "{\"guild_id\": \"%s\", \"body\": {\"name\": \"slow-%d\", \"type\": 0}}",
		         r.w.guild, i);
		enqueue(&r, "channel_create", key, payload);
	}
	pc_exec(&r, "COMMIT");
	assert_true(run_until(&r, done_reaches, done0 + 6, 20000));
	th_sim_call(r.port, "DELETE", "/_sim/faults", NULL, NULL);
	assert_true(run_until(&r, settled, 0, 5000));
	json_t *st = NULL, *c;
	size_t i;
	int created = 0;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "channels"), i, c) {
		if (strncmp(json_string_value(json_object_get(c, "name")) ?: "", "slow-", 5) == 0)
			created++;
	}
	json_decref(st);
	assert_int_equal(created, 6);
	assert_int_equal(pc_long(&r, "SELECT max(attempts) FROM outbox WHERE key LIKE 'slow-%'"),
	                 1);
	rig_close(&r);
}

GROUP(group_outbox)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outbox_kill9),
	    cmocka_unit_test(test_outbox_notify),
	    cmocka_unit_test(test_outbox_500_storm),
	    cmocka_unit_test(test_outbox_parks_permanent),
	    cmocka_unit_test(test_outbox_lease_renewed),
	};
	return RUN_GROUP(tests);
}
