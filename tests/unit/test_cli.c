/* The cohortbridge binary itself: commands, errors, reload, shutdown, redaction. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static void test_help_and_usage(void **state)
{
	char dir[64];
	const char *help[] = {"", "--help", NULL};
	assert_int_equal(th_run(help, NULL, dir, sizeof(dir)), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "usage: cohortbridge"));
	assert_non_null(strstr(out, "migrate"));
	free(out);

	static const char *const cmds[] = {"run", "migrate", "check", "version", "help"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *a[] = {"", cmds[i], "--help", NULL};
		assert_int_equal(th_run(a, NULL, dir, sizeof(dir)), 0);
		out = th_read(dir, "stdout");
		char want[64];
		snprintf(want, sizeof(want), "usage: cohortbridge %s", cmds[i]);
		if (!strstr(out, want))
			fail_msg("%s --help printed: %s", cmds[i], out);
		free(out);
	}

	const char *unknown[] = {"", "frobnicate", NULL};
	assert_int_equal(th_run(unknown, NULL, dir, sizeof(dir)), 2);
	out = th_read(dir, "stderr");
	assert_non_null(strstr(out, "unknown command \"frobnicate\""));
	assert_non_null(strstr(out, "usage: cohortbridge"));
	free(out);

	const char *badflag[] = {"", "run", "--bogus", NULL};
	assert_int_equal(th_run(badflag, NULL, dir, sizeof(dir)), 2);
	out = th_read(dir, "stderr");
	assert_non_null(strstr(out, "unknown option --bogus"));
	free(out);

	const char *badglobal[] = {"", "--wat", "run", NULL};
	assert_int_equal(th_run(badglobal, NULL, dir, sizeof(dir)), 2);
	const char *badlevel[] = {"", "--log-level", "loud", "version", NULL};
	assert_int_equal(th_run(badlevel, NULL, dir, sizeof(dir)), 2);
	const char *none[] = {"", NULL};
	assert_int_equal(th_run(none, NULL, dir, sizeof(dir)), 2);

	const char *version[] = {"", "version", NULL};
	assert_int_equal(th_run(version, NULL, dir, sizeof(dir)), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "libwebsockets 4."));
	free(out);
}

static void test_check_reports_positions(void **state)
{
	char dir[64];
	const char *path = th_write_file(0, "bad.json", "{\n  \"http\": {\"listen\": 8787}\n}\n");
	const char *a[] = {"", "check", path, NULL};
	assert_int_equal(th_run(a, (const char *[]){"DATABASE_URL", NULL}, dir, sizeof(dir)), 1);
	char *err = th_read(dir, "stderr");
	char want[600];
	snprintf(want, sizeof(want), "%s:2:22: http.listen: expected string, got integer\n", path);
	assert_string_equal(err, want);
	free(err);

	const char *syntax = th_write_file(1, "syntax.json", "{\"log_level\": \"info\"\n\"x\": 1}");
	const char *b[] = {"", "--config", syntax, "check", NULL};
	assert_int_equal(th_run(b, NULL, dir, sizeof(dir)), 1);
	err = th_read(dir, "stderr");
	snprintf(want, sizeof(want), "%s:2:", syntax);
	assert_non_null(strstr(err, want));
	free(err);

	const char *good = th_write_file(2, "good.json", "{\"log_level\": \"warn\"}");
	const char *c[] = {"", "check", NULL};
	char envc[600];
	snprintf(envc, sizeof(envc), "COHORTBRIDGE_CONFIG=%s", good);
	assert_int_equal(th_run(c, (const char *[]){envc, NULL}, dir, sizeof(dir)), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, ": OK"));
	free(out);
}

static void test_run_needs_database_url(void **state)
{
	char dir[64];
	const char *a[] = {"", "run", NULL};
	assert_int_equal(th_run(a, (const char *[]){"DATABASE_URL", "DATABASE_URL_FILE", NULL}, dir,
	                        sizeof(dir)),
	                 1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "DATABASE_URL is not set"));
	assert_non_null(strstr(err, "make demo"));
	free(err);

	const char *f = th_write_file(3, "dburl", th_db_url());
	chmod(f, 0644);
	char env[600];
	snprintf(env, sizeof(env), "DATABASE_URL_FILE=%s", f);
	assert_int_equal(th_run(a, (const char *[]){"DATABASE_URL", env, NULL}, dir, sizeof(dir)),
	                 1);
	err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "readable by group or others"));
	free(err);
}

/* A Discord simulator for the bridges these tests start (one per test). */
static pid_t sim_pid;
static int sim_port;

static void start_sim(const char *token)
{
	char dir[96];
	const char *args[] = {"--ratelimits", "fast", "--heartbeat-ms", "500", "--token",
	                      token,          NULL};
	sim_pid = th_sim_start(args, &sim_port, dir, sizeof(dir));
}

static void stop_sim(void)
{
	th_sim_stop(sim_pid);
}

/* Starts `run` with the config file against the simulator (started here when none runs);
 * returns the pid once the database is ready and the gateway client has begun (not yet READY). */
static pid_t start_bridge(const char *cfg_path, const char *db, const char *const *extra, char *dir,
                          size_t dirsize, int *port)
{
	char envdb[1100], envapi[128];
	if (!sim_pid)
		start_sim("sim-token");
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *env[16] = {envdb,
	                       "DATABASE_URL_FILE",
	                       "COHORTBRIDGE_LOG_LEVEL",
	                       "DISCORD_TOKEN=sim-token",
	                       "DISCORD_TOKEN_FILE",
	                       envapi};
	int n = 6;
	for (const char *const *e = extra; e && *e && n < 15; e++)
		env[n++] = *e;
	env[n] = NULL;
	const char *a[] = {"", "--config", cfg_path, "run", NULL};
	pid_t pid = th_spawn(a, env, dir, dirsize);
	*port = th_listen_port(dir, 10000);
	assert_true(*port > 0);
	assert_true(th_wait_for(dir, "stderr", "database ready", 10000));
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=", 10000));
	return pid;
}

static void end_bridge(pid_t pid)
{
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	stop_sim();
	sim_pid = 0;
}

static void test_reload_and_graceful_shutdown(void **state)
{
	char db[1024], dir[64];
	int port;
	th_fresh_db(db, sizeof(db));
	const char *cfg =
	    th_write_file(0, "cohortbridge.json",
	                  "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"log_level\": \"info\"}");
	pid_t pid = start_bridge(cfg, db, NULL, dir, sizeof(dir), &port);
	/* healthy only once the gateway session is up */
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=ready", 10000));

	char *body = NULL;
	assert_int_equal(th_http_get(port, "/healthz", &body), 200);
	assert_non_null(strstr(body, "\"status\":\"ok\""));
	free(body);
	assert_int_equal(th_http_get(port, "/metrics", &body), 200);
	assert_non_null(strstr(body, "cohortbridge_uptime_seconds "));
	assert_non_null(strstr(body, "cohortbridge_loop_iterations_total "));
	assert_non_null(strstr(body, "cohortbridge_db_roundtrips_total "));
	assert_non_null(strstr(body, "cohortbridge_http_client_requests_total{outcome=\"ok\"}"));
	free(body);
	assert_int_equal(th_http_get(port, "/other", NULL), 404);

	/* A broken file is rejected with its position; the bridge keeps running as it was. */
	FILE *f = fopen(cfg, "w");
	fputs("{\"http\": {\"listen\": \"127.0.0.1:0\"},\n \"log_levle\": \"debug\"}", f);
	fclose(f);
	kill(pid, SIGHUP);
	assert_true(th_wait_for(dir, "stderr", "configuration rejected", 5000));
	char *log = th_read(dir, "stderr");
	assert_non_null(strstr(log, "cohortbridge.json:2:2: unknown key \\\"log_levle\\\" (did you "
	                            "mean \\\"log_level\\\"?)"));
	free(log);
	assert_int_equal(th_http_get(port, "/healthz", NULL), 200);
	assert_int_equal(th_http_get(port, "/metrics", &body), 200);
	assert_non_null(strstr(body, "cohortbridge_config_reloads_total{outcome=\"rejected\"} 1"));
	free(body);

	/* A good file is taken: debug lines start to appear. */
	f = fopen(cfg, "w");
	fputs("{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"log_level\": \"debug\"}", f);
	fclose(f);
	kill(pid, SIGHUP);
	assert_true(th_wait_for(dir, "stderr", "configuration reloaded", 5000));

	end_bridge(pid);
	log = th_read(dir, "stderr");
	assert_non_null(strstr(log, "msg=stopped"));
	free(log);
	/* the shutdown's own audit write was finished before exit */
	assert_string_equal(
	    th_sql(db, "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log", 0),
	    "started,config_reloaded,stopped");
}

/* The database goes away under a running bridge: /healthz says so, and comes back. */
static void test_health_follows_database(void **state)
{
	char db[1024], dir[64];
	int port;
	th_fresh_db(db, sizeof(db));
	const char *cfg = th_write_file(0, "cohortbridge.json",
	                                "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"database\": "
	                                "{\"health_interval_ms\": 200}}");
	pid_t pid = start_bridge(cfg, db, NULL, dir, sizeof(dir), &port);
	/* kill the bridge's connection from the server side */
	th_sql(db,
	       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
	       "current_database() AND pid <> pg_backend_pid()",
	       0);
	char *body = NULL;
	long st = 0;
	for (int i = 0; i < 100 && st != 503; i++) {
		usleep(20000);
		free(body);
		body = NULL;
		st = th_http_get(port, "/healthz", &body);
	}
	assert_int_equal(st, 503);
	assert_non_null(strstr(body, "\"database\":{\"ok\":false"));
	free(body);
	for (int i = 0; i < 200 && st != 200; i++) {
		usleep(50000);
		st = th_http_get(port, "/healthz", NULL);
	}
	assert_int_equal(st, 200);
	end_bridge(pid);
}

/* A canary in every secret, the most verbose level, start, errors, reload and shutdown: the
 * canary never appears in anything the process writes. */
static void test_secrets_never_logged(void **state)
{
	char db[1024], dburl[1200], dir[64];
	int port;
	th_fresh_db(db, sizeof(db));
	snprintf(dburl, sizeof(dburl), "%s password=canary-db-5b1e", db);
	const char *cfg = th_write_file(
	    0, "cohortbridge.json",
	    "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"sources\": [{\"name\": \"c\", \"type\": "
	    "\"canvas\", \"url\": \"https://canvas.invalid\", \"token_env\": \"CANVAS_T\"}]}");
	const char *tokfile = th_write_file(1, "canvas", "canary-canvas-77aa\n");
	chmod(tokfile, 0600);
	char tokenv[600];
	snprintf(tokenv, sizeof(tokenv), "CANVAS_T_FILE=%s", tokfile);
	const char *extra[] = {"DISCORD_TOKEN=canary-discord-9f3c", tokenv, NULL};
	char envdb[1300], envapi[128];
	start_sim("canary-discord-9f3c");
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", dburl);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *env[] = {
	    envdb, "DATABASE_URL_FILE", "COHORTBRIDGE_LOG_LEVEL=trace", extra[0], extra[1], envapi,
	    NULL};
	const char *a[] = {"", "--config", cfg, "run", NULL};
	pid_t pid = th_spawn(a, env, dir, sizeof(dir));
	port = th_listen_port(dir, 10000);
	assert_true(port > 0);
	assert_true(th_wait_for(dir, "stderr", "database ready", 10000));
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=ready", 10000));
	th_http_get(port, "/healthz", NULL);
	th_http_get(port, "/metrics", NULL);
	/* a dropped gateway connection and a resume, at trace */
	th_sim_call(sim_port, "POST", "/_sim/gateway/drop", "{}", NULL);
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=resumed", 10000));
	FILE *f = fopen(cfg, "w");
	fputs("{\"sources\": 1}", f);
	fclose(f);
	kill(pid, SIGHUP);
	assert_true(th_wait_for(dir, "stderr", "configuration rejected", 5000));
	end_bridge(pid);

	/* an unreachable database with the canary in its URL, at trace */
	const char *env2[] = {"DATABASE_URL=postgresql://u:canary-db-5b1e@127.0.0.1:1/x",
	                      "DATABASE_URL_FILE", "COHORTBRIDGE_LOG_LEVEL=trace", extra[0], NULL};
	const char *m[] = {"", "migrate", NULL};
	char dir2[64];
	assert_int_equal(th_run(m, env2, dir2, sizeof(dir2)), 1);

	const char *files[][2] = {
	    {dir, "stderr"}, {dir, "stdout"}, {dir2, "stderr"}, {dir2, "stdout"}};
	for (size_t i = 0; i < 4; i++) {
		char *s = th_read(files[i][0], files[i][1]);
		if (strstr(s, "canary"))
			fail_msg("a secret leaked into %s/%s:\n%s", files[i][0], files[i][1], s);
		free(s);
	}
	char *s = th_read(dir, "stderr");
	assert_non_null(strstr(s, "level=trace")); /* the most verbose level really was on */
	free(s);
}

/* The bridge keeps its gateway session in PostgreSQL: a restart resumes, no second IDENTIFY. */
static void test_bridge_resumes_after_restart(void **state)
{
	char db[1024], dir[64], dir2[64];
	int port;
	th_fresh_db(db, sizeof(db));
	const char *cfg =
	    th_write_file(0, "cohortbridge.json", "{\"http\": {\"listen\": \"127.0.0.1:0\"}}");
	pid_t pid = start_bridge(cfg, db, NULL, dir, sizeof(dir), &port);
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=ready", 10000));
	char *body = NULL;
	assert_int_equal(th_http_get(port, "/healthz", &body), 200);
	assert_non_null(strstr(body, "\"discord\":{\"ok\":true,\"state\":\"ready\"}"));
	free(body);
	/* something happens while no bridge runs */
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	assert_int_equal(
	    th_sim_call(sim_port, "POST", "/_sim/members", "{\"username\": \"meanwhile\"}", NULL),
	    200);
	pid = start_bridge(cfg, db, NULL, dir2, sizeof(dir2), &port);
	assert_true(th_wait_for(dir2, "stderr", "mod=gateway msg=resumed", 10000));
	json_t *st = NULL;
	th_sim_call(sim_port, "GET", "/_sim/stats", NULL, &st);
	json_t *gw = json_object_get(st, "gateway");
	assert_int_equal(json_integer_value(json_object_get(gw, "identifies")), 1);
	assert_int_equal(json_integer_value(json_object_get(gw, "resumes")), 1);
	assert_true(json_integer_value(json_object_get(gw, "events_replayed")) >= 1);
	json_decref(st);
	end_bridge(pid);
}

/* A saved session whose resume address no longer answers is given up for a new IDENTIFY. */
static void test_bridge_stale_session(void **state)
{
	char db[1024], dir[64];
	int port;
	th_fresh_db(db, sizeof(db));
	const char *cfg =
	    th_write_file(0, "cohortbridge.json", "{\"http\": {\"listen\": \"127.0.0.1:0\"}}");
	/* migrate first, then plant a session on a dead address */
	char envdb[1100];
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	const char *m[] = {"", "migrate", NULL};
	assert_int_equal(th_run(m, (const char *[]){envdb, NULL}, dir, sizeof(dir)), 0);
	th_sql(db,
	       "INSERT INTO gateway_sessions (shard_id, session_id, seq, resume_url) "
	       "VALUES (0, 'gone', 42, 'ws://127.0.0.1:1')",
	       0);
	pid_t pid = start_bridge(cfg, db, NULL, dir, sizeof(dir), &port);
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=ready", 15000));
	end_bridge(pid);
}

/* Without a token, or with a wrong one, the bridge says so and exits non-zero. */
static void test_bridge_needs_a_working_token(void **state)
{
	char db[1024], dir[64], envdb[1100], envapi[128];
	th_fresh_db(db, sizeof(db));
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	const char *a[] = {"", "run", NULL};
	assert_int_equal(
	    th_run(a, (const char *[]){envdb, "DISCORD_TOKEN", "DISCORD_TOKEN_FILE", NULL}, dir,
	           sizeof(dir)),
	    1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "DISCORD_TOKEN is not set"));
	assert_non_null(strstr(err, "make demo"));
	free(err);

	start_sim("sim-token");
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *cfg =
	    th_write_file(0, "cohortbridge.json", "{\"http\": {\"listen\": \"127.0.0.1:0\"}}");
	const char *b[] = {"", "--config", cfg, "run", NULL};
	assert_int_equal(th_run(b,
	                        (const char *[]){envdb, "DISCORD_TOKEN=wrong-token", envapi, NULL},
	                        dir, sizeof(dir)),
	                 1);
	err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "rejected DISCORD_TOKEN (401"));
	free(err);
	stop_sim();
	sim_pid = 0;
}

GROUP(group_cli)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_help_and_usage),
	    cmocka_unit_test(test_check_reports_positions),
	    cmocka_unit_test(test_run_needs_database_url),
	    cmocka_unit_test(test_reload_and_graceful_shutdown),
	    cmocka_unit_test(test_health_follows_database),
	    cmocka_unit_test(test_secrets_never_logged),
	    cmocka_unit_test(test_bridge_resumes_after_restart),
	    cmocka_unit_test(test_bridge_needs_a_working_token),
	    cmocka_unit_test(test_bridge_stale_session),
	};
	return RUN_GROUP(tests);
}
