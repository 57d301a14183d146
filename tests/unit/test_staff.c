/* What staff are told and what they confirm, through the binary, the simulator (as Discord, as
 * staff and learners, and as the file server a roster comes from) and a throwaway database: a
 * roster source that answers 500, then an empty roster, removes nothing and posts one audit
 * message per failure streak and one on recovery; removals beyond the share wait for the
 * Confirm removals button, which a learner cannot press and staff press once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define GUILD "300000000000000001"
#define STAFF "300000000000000900"
#define N     10

#define DEL_ROLE "DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}"

struct bed {
	pid_t sim, bridge;
	int port;
	char simdir[96], dir[96], db[1024], cfg[512];
	char users[N][32];
};

/* The roster of the first n learners (all of them in two cohorts). */
static void put_roster(struct bed *b, int n)
{
	char csv[4096], body[8192];
	size_t k = (size_t)snprintf(csv, sizeof(csv), "id,name,email,city,program,cohort\\n");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(csv + k, sizeof(csv) - k,
		                      "p%d,Learner %d,l%d@example.org,Berlin,Web,%s\\n", i, i, i,
		                      i % 2 ? "K1" : "K2");
	snprintf(body, sizeof(body), "{\"name\": \"roster.csv\", \"text\": \"%s\"}", csv);
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/sources/files", body, NULL), 200);
}

static int count_sql(struct bed *b, const char *sql)
{
	const char *v = th_sql(b->db, sql, 0);
	return v ? (int)strtol(v, NULL, 10) : -1;
}

static const char *channel_of(struct bed *b, const char *name)
{
	static char id[32];
	json_t *st = NULL, *c;
	size_t j;
	id[0] = '\0';
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "channels"), j, c)
		if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
			snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "id")));
	json_decref(st);
	return id;
}

/* The audit channel's messages containing needle (all: NULL); the last one's copy in *last. */
static int audit(struct bed *b, const char *needle, json_t **last)
{
	json_t *st = NULL, *m;
	size_t i;
	int n = 0;
	char ch[32];
	snprintf(ch, sizeof(ch), "%s", channel_of(b, "audit"));
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(json_object_get(json_object_get(st, "messages"), ch), i, m) {
		const char *c = json_string_value(json_object_get(m, "content"));
		if (c && (!needle || strstr(c, needle))) {
			n++;
			if (last) {
				json_decref(*last);
				*last = json_deep_copy(m);
			}
		}
	}
	json_decref(st);
	return n;
}

static int wait_audit(struct bed *b, const char *needle, int want, int ms)
{
	for (int t = 0; t < ms && audit(b, needle, NULL) < want; t += 100)
		usleep(100000);
	return audit(b, needle, NULL);
}

static long requests(struct bed *b, const char *route)
{
	json_t *st = NULL;
	assert_int_equal(th_sim_call(b->port, "GET", "/_sim/stats", NULL, &st), 200);
	long n = (long)json_integer_value(json_object_get(json_object_get(st, "requests"), route));
	json_decref(st);
	return n;
}

/* Members of the guild holding a cohort role ("Web Berlin K..."). */
static int with_cohort_role(struct bed *b)
{
	json_t *st = NULL, *g, *v, *r;
	size_t i, k;
	int n = 0;
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	g = json_array_get(json_object_get(st, "guilds"), 0);
	json_t *cohort = json_object();
	json_array_foreach(json_object_get(g, "roles"), i, v)
		if (strncmp(json_string_value(json_object_get(v, "name")), "Web Berlin", 10) == 0)
			json_object_set_new(cohort, json_string_value(json_object_get(v, "id")),
			                    json_true());
	json_array_foreach(json_object_get(g, "members"), i, v) {
		int has = 0;
		json_array_foreach(json_object_get(v, "roles"), k, r)
			has |= json_object_get(cohort, json_string_value(r)) != NULL;
		n += has;
	}
	json_decref(cohort);
	json_decref(st);
	return n;
}

static int wait_roles(struct bed *b, int want, int ms)
{
	for (int t = 0; t < ms && with_cohort_role(b) != want; t += 100)
		usleep(100000);
	return with_cohort_role(b);
}

/* A guild with #register, #help, #approvals and #audit, a Staff role and its owner; N learners
 * who joined; a cohort set over a roster served by the simulator's file server, synced every
 * second; the learners registered; the bridge running until each holds their cohort role. */
static void bed_up(struct bed *b)
{
	char text[4096];
	memset(b, 0, sizeof(*b));
	const char *wpath = th_write_file(
	    0, "world.json",
	    "{\"guilds\": [{\"id\": \"" GUILD "\", \"name\": \"Academy\", \"roles\": ["
	    "{\"name\": \"@everyone\", \"permissions\": \"274879024129\"},"
	    "{\"name\": \"Staff\", \"position\": 20},"
	    "{\"name\": \"cohortbridge\", \"position\": 30, \"permissions\": \"402656272\", "
	    "\"bot\": true}],"
	    "\"channels\": [{\"name\": \"register\", \"type\": 0}, {\"name\": \"help\", \"type\": "
	    "0}, {\"name\": \"approvals\", \"type\": 0}, {\"name\": \"audit\", \"type\": 0}],"
	    "\"members\": [{\"user\": {\"id\": \"" STAFF "\", \"username\": \"staffer\"}, "
	    "\"roles\": [], \"owner\": true}]}]}");
	const char *args[] = {"--world", wpath, "--ratelimits", "off", NULL};
	b->sim = th_sim_start(args, &b->port, b->simdir, sizeof(b->simdir));
	put_roster(b, N);
	const char *mdir = th_tmpdir();
	snprintf(text, sizeof(text), "%s/academy.json", mdir);
	FILE *f = fopen(text, "w");
	assert_non_null(f);
	fputs("{\"guild\": \"" GUILD "\", \"cohort_sets\": [{\"source\": \"roster\", "
	      "\"name\": \"{program} {city} {cohort}\"}],"
	      "\"registration\": {\"sources\": [\"roster\"], \"proof\": \"staff_approval\", "
	      "\"channels\": {\"registration\": \"register\", \"help\": \"help\", \"approval\": "
	      "\"approvals\", \"audit\": \"audit\"}}, \"removals\": {\"confirm_share\": 0.1}}",
	      f);
	fclose(f);
	snprintf(text, sizeof(text),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"mappings_dir\": \"%s\", "
	         "\"discord\": {\"staff_roles\": [\"Staff\"]}, \"outbox\": {\"lease_ms\": 1500}, "
	         "\"sources\": [{\"name\": \"roster\", \"type\": \"roster_file\", \"url\": "
	         "\"http://127.0.0.1:%d/files/roster.csv\", \"interval_s\": 1, \"retry_s\": 1}]}",
	         mdir, b->port);
	snprintf(b->cfg, sizeof(b->cfg), "%s", th_write_file(2, "cohortbridge.json", text));
	th_fresh_db(b->db, sizeof(b->db));

	/* the learners join, and are registered as the roster's entries */
	char sql[4096];
	size_t n = (size_t)snprintf(sql, sizeof(sql),
	                            "INSERT INTO registrations (guild_id, user_id, source, person, "
	                            "method) VALUES ");
	char envdb[1100], envapi[128];
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", b->db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", b->port);
	const char *env[] = {envdb, "DISCORD_TOKEN=sim-token", envapi, NULL};
	const char *m[] = {"", "--config", b->cfg, "migrate", NULL};
	assert_int_equal(th_run(m, env, b->dir, sizeof(b->dir)), 0);
	for (int i = 0; i < N; i++) {
		char body[256];
		json_t *res = NULL;
		snprintf(body, sizeof(body),
		         "{\"username\": \"learner%d\", \"guild_id\": \"" GUILD "\"}", i);
		assert_int_equal(th_sim_call(b->port, "POST", "/_sim/members", body, &res), 200);
		snprintf(b->users[i], sizeof(b->users[i]), "%s",
		         json_string_value(json_object_get(json_object_get(res, "user"), "id")));
		json_decref(res);
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
		                      "%s('" GUILD "', '%s', 'roster', 'p%d', 'staff_link')",
		                      i ? ", " : "", b->users[i], i);
	}
	th_sql(b->db,
	       "INSERT INTO people (source, external_id, name) SELECT 'roster', 'p' || i, "
	       "'Learner ' || i FROM generate_series(0, 9) i",
	       0);
	th_sql(b->db, sql, 0);

	const char *a[] = {"", "--config", b->cfg, "run", NULL};
	b->bridge = th_spawn(a, env, b->dir, sizeof(b->dir));
	if (!th_wait_for(b->dir, "stderr", "mod=gateway msg=re", 15000))
		fail_msg("the bridge did not get ready:\n%s", th_read(b->dir, "stderr"));
	if (wait_roles(b, N, 30000) != N)
		fail_msg("the learners did not get their cohort roles:\n%s",
		         th_read(b->dir, "stderr"));
}

static void bed_down(struct bed *b)
{
	kill(b->bridge, SIGTERM);
	assert_int_equal(th_wait(b->bridge, 10000), 0);
	th_sim_stop(b->sim);
}

static int syncs(struct bed *b, int ok)
{
	return count_sql(b, ok ? "SELECT count(*) FROM source_syncs WHERE ok"
	                       : "SELECT count(*) FROM source_syncs WHERE NOT ok");
}

/* Waits until `more` further syncs of the kind have been recorded. */
static void wait_syncs(struct bed *b, int ok, int more)
{
	int want = syncs(b, ok) + more;
	for (int t = 0; t < 300 && syncs(b, ok) < want; t++)
		usleep(100000);
	assert_true(syncs(b, ok) >= want);
}

static void test_staff_source_failures(void **state)
{
	struct bed b;
	bed_up(&b);
	assert_int_equal(audit(&b, "Roster source roster", NULL), 0);

	/* the file server answers 500: one message, however often the sync is retried */
	th_sim_call(b.port, "POST", "/_sim/sources/faults",
	            "{\"source\": \"files\", \"status\": 500}", NULL);
	assert_int_equal(wait_audit(&b, "roster failed", 1, 15000), 1);
	wait_syncs(&b, 0, 4);
	sleep(1);
	assert_int_equal(audit(&b, "roster failed", NULL), 1);
	json_t *last = NULL;
	audit(&b, "roster failed", &last);
	const char *c = json_string_value(json_object_get(last, "content"));
	assert_non_null(strstr(c, "500"));
	assert_non_null(strstr(c, "Nothing was removed"));
	json_decref(last);
	assert_int_equal(with_cohort_role(&b), N);

	/* it answers again: one message */
	th_sim_call(b.port, "DELETE", "/_sim/sources/faults", NULL, NULL);
	assert_int_equal(wait_audit(&b, "roster answers properly again", 1, 15000), 1);
	wait_syncs(&b, 1, 3);

	/* an empty roster is refused by the guard: a new streak, one message */
	put_roster(&b, 0);
	assert_int_equal(wait_audit(&b, "roster failed", 2, 15000), 2);
	wait_syncs(&b, 0, 4);
	sleep(1);
	assert_int_equal(audit(&b, "roster failed", NULL), 2);
	assert_int_equal(audit(&b, "roster answers properly again", NULL), 1);
	assert_int_equal(with_cohort_role(&b), N);

	put_roster(&b, N);
	assert_int_equal(wait_audit(&b, "roster answers properly again", 2, 15000), 2);
	wait_syncs(&b, 1, 3);
	sleep(1);
	/* nothing was ever taken away, and no message came twice */
	assert_int_equal(requests(&b, DEL_ROLE), 0);
	assert_int_equal(with_cohort_role(&b), N);
	assert_int_equal(audit(&b, "roster failed", NULL), 2);
	assert_int_equal(audit(&b, "roster answers properly again", NULL), 2);
	bed_down(&b);
}

static json_t *press(struct bed *b, const char *user, const char *custom_id, const char *msg_id)
{
	char body[512], path[128];
	json_t *res = NULL, *rec = NULL;
	snprintf(body, sizeof(body),
	         "{\"type\": \"button\", \"user_id\": \"%s\", \"guild_id\": \"" GUILD "\", "
	         "\"channel_id\": \"%s\", \"message_id\": \"%s\", \"custom_id\": \"%s\"}",
	         user, channel_of(b, "audit"), msg_id, custom_id);
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/interactions", body, &res), 200);
	snprintf(path, sizeof(path), "/_sim/interactions/%s",
	         json_string_value(json_object_get(res, "id")));
	json_decref(res);
	for (int t = 0; t < 600; t++) {
		usleep(50000);
		json_decref(rec);
		th_sim_call(b->port, "GET", path, NULL, &rec);
		json_t *cb = json_array_get(json_object_get(rec, "callbacks"), 0);
		int type = (int)json_integer_value(json_object_get(cb, "type"));
		if (type == 4 || type == 7)
			break;
		const char *oc =
		    json_string_value(json_object_get(json_object_get(rec, "original"), "content"));
		if ((type == 5 || type == 6) && oc && *oc)
			break;
	}
	return rec;
}

static const char *answer_text(json_t *rec)
{
	json_t *cb = json_array_get(json_object_get(rec, "callbacks"), 0);
	int type = (int)json_integer_value(json_object_get(cb, "type"));
	json_t *m =
	    type == 5 || type == 6 ? json_object_get(rec, "original") : json_object_get(cb, "data");
	const char *c = json_string_value(json_object_get(m, "content"));
	return c ? c : "";
}

static void test_staff_held_removals(void **state)
{
	struct bed b;
	bed_up(&b);
	/* four of ten leave the roster: 40% of the roles, more than the 10% share */
	put_roster(&b, N - 4);
	assert_int_equal(wait_audit(&b, "This plan removes 4 of", 1, 20000), 1);
	json_t *msg = NULL;
	audit(&b, "This plan removes 4 of", &msg);
	json_t *btn = json_array_get(
	    json_object_get(json_array_get(json_object_get(msg, "components"), 0), "components"),
	    0);
	assert_string_equal(json_string_value(json_object_get(btn, "label")), "Confirm removals");
	char cid[128], mid[32];
	snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(btn, "custom_id")));
	snprintf(mid, sizeof(mid), "%s", json_string_value(json_object_get(msg, "id")));
	json_decref(msg);
	assert_int_equal(strncmp(cid, "rm:ok:", 6), 0);
	/* held: later reconciles neither remove nor ask again */
	wait_syncs(&b, 1, 3);
	assert_int_equal(requests(&b, DEL_ROLE), 0);
	assert_int_equal(with_cohort_role(&b), N);
	assert_int_equal(audit(&b, "This plan removes", NULL), 1);

	/* a learner is refused */
	json_t *rec = press(&b, b.users[0], cid, mid);
	assert_non_null(strstr(answer_text(rec), "staff only"));
	json_decref(rec);
	sleep(1);
	assert_int_equal(requests(&b, DEL_ROLE), 0);

	/* staff confirm: the four removals happen, and the message says who confirmed */
	rec = press(&b, STAFF, cid, mid);
	if (!strstr(answer_text(rec), "<@" STAFF "> confirmed the removal of 4")) {
		char *log = th_read(b.dir, "stderr");
		char *save = NULL;
		for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			if (strstr(l, "interactions") || strstr(l, "staff") ||
			    strstr(l, "reconcile"))
				fprintf(stderr, "%s\n", l);
		fail_msg("staff's confirmation was answered with %s", answer_text(rec));
	}
	json_decref(rec);
	assert_int_equal(wait_roles(&b, N - 4, 15000), N - 4);
	assert_int_equal(audit(&b, "<@" STAFF "> confirmed", NULL), 1);

	/* exactly once: pressing again, and the bridge's own reconciles, remove nothing more */
	rec = press(&b, STAFF, cid, mid);
	json_decref(rec);
	wait_syncs(&b, 1, 3);
	sleep(1);
	assert_int_equal(requests(&b, DEL_ROLE), 4);
	assert_int_equal(with_cohort_role(&b), N - 4);
	assert_int_equal(audit(&b, "This plan removes", NULL), 0);
	bed_down(&b);
}

GROUP(group_staff)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_staff_source_failures),
	    cmocka_unit_test(test_staff_held_removals),
	};
	return RUN_GROUP(tests);
}
