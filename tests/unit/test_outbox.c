/* The outbox through the bridge: 1,000 mixed actions, a kill -9 halfway, a restart, and every
 * action carried out exactly once in the simulator. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

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
		fail_msg("%ld of 1000 done; errors: %s", done, e ? e : "");
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

GROUP(group_outbox)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outbox_kill9),
	};
	return RUN_GROUP(tests);
}
