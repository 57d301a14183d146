/* Reconciling through the binary: `plan` and `apply` against the simulator and a throwaway
 * database. 2,000 registered learners in 40 cohorts, applied twice (the second run writes
 * nothing); plan writes nothing; a failing source removes nothing; removals beyond the share
 * wait for --allow-removals; limits stop everything; objects the bridge does not own stay as
 * they were; kill -9 at random points, then a rerun, leaves no duplicate; renamed roles,
 * categories and channels keep their ids (through apply and through SIGHUP), and channels move
 * into a new category; end dates are read in each cohort's time zone. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define GUILD "912345678901234567"

struct rig {
	pid_t sim;
	int port;
	char db[1024];
	char envdb[1100], envcfg[600];
	char mapfile[512];
	const char *env[4];
};

/* One cohort set (city × program × cohort: 5 × 2 × 4 = 40 cohorts) and one staff role, coach,
 * named `coach` in colour `color`; `templates` (the role and channel templates) and `extra`
 * (time zones, end dates) go into the set as they are. */
static void write_map_as(struct rig *r, const char *coach, const char *color, const char *templates,
                         const char *extra)
{
	FILE *f = fopen(r->mapfile, "w");
	assert_non_null(f);
	fprintf(f,
	        "{\"guild\": \"" GUILD "\", \"label\": \"Big Academy\", "
	        "\"staff_roles\": {\"coach\": {\"name\": \"%s\", \"color\": \"%s\"}}, "
	        "\"cohort_sets\": [{\"source\": \"roster\", \"name\": \"{program} {city} "
	        "{cohort}\", %s, \"staff\": [\"coach\"]%s}], \"removals\": {\"confirm_share\": "
	        "0.1}}",
	        coach, color, templates, extra);
	fclose(f);
}

#define TEMPLATES                                                                                  \
	"\"channels\": {\"category\": \"{name}\", \"text\": \"{program}-{city}-{cohort}\", "       \
	"\"voice\": \"{name} voice\"}"

/* The cohorts whose cohort value is `ended` ended long ago. */
static void write_map(struct rig *r, const char *ended)
{
	char extra[200] = "";
	if (ended)
		snprintf(extra, sizeof(extra), ", \"end_dates\": {\"%s\": \"2020-01-31\"}", ended);
	write_map_as(r, "Coach", "#2e86de", TEMPLATES, extra);
}

/* A world with `extra_roles` roles nobody maps, an unmanaged Alumni role and #general, and
 * `learners` members; the mapping above; a roster of `learners` people spread over the 40 cohorts,
 * each registered as one of the members. */
static void rig_open(struct rig *r, int learners, int extra_roles, const char *ended)
{
	char sdir[96], dir[96], path[600];
	size_t cap = 4096 + (size_t)extra_roles * 64, n = 0;
	char *world = malloc(cap);
	assert_non_null(world);
	n += (size_t)snprintf(world + n, cap - n,
	                      "{\"guilds\": [{\"id\": \"" GUILD "\", \"name\": \"Big Academy\", "
	                      "\"roles\": [{\"name\": \"@everyone\", \"permissions\": "
	                      "\"274879024129\"}, {\"name\": \"Alumni\", \"position\": 1}, "
	                      "{\"name\": \"cohortbridge\", \"position\": 2, \"permissions\": "
	                      "\"268435472\", \"bot\": true}");
	for (int i = 0; i < extra_roles; i++)
		n += (size_t)snprintf(world + n, cap - n, ", {\"name\": \"Other %d\"}", i);
	snprintf(world + n, cap - n,
	         "], \"channels\": [{\"id\": \"700\", \"name\": \"Welcome\", \"type\": 4}, "
	         "{\"name\": \"general\", \"type\": 0, \"parent_id\": \"700\", "
	         "\"permission_overwrites\": []}], \"members\": [{\"user\": {\"id\": \"501\", "
	         "\"username\": \"ada\"}, \"roles\": [], \"owner\": true}], "
	         "\"generate_members\": %d}]}",
	         learners);
	const char *wpath = th_write_file(0, "world.json", world);
	free(world);
	snprintf(path, sizeof(path), "%s", wpath);
	const char *args[] = {"--world", path, "--ratelimits", "off", NULL};
	r->sim = th_sim_start(args, &r->port, sdir, sizeof(sdir));

	char mpath[512];
	snprintf(mpath, sizeof(mpath), "%s", th_write_file(1, "academy.json", "{}"));
	snprintf(r->mapfile, sizeof(r->mapfile), "%s", mpath);
	write_map(r, ended);
	*strrchr(mpath, '/') = '\0';
	char cfg[1400];
	snprintf(cfg, sizeof(cfg),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"mappings_dir\": \"%s\", "
	         "\"discord\": {\"api_url\": "
	         "\"http://127.0.0.1:%d/api/v10\", \"global_limit\": 1000}, \"outbox\": "
	         "{\"lease_ms\": 1500}, \"sources\": [{\"name\": \"roster\", \"type\": "
	         "\"roster_file\", \"path\": \"/nonexistent/roster.csv\"}]}",
	         mpath, r->port);
	snprintf(r->envcfg, sizeof(r->envcfg), "COHORTBRIDGE_CONFIG=%s",
	         th_write_file(2, "config.json", cfg));
	th_fresh_db(r->db, sizeof(r->db));
	snprintf(r->envdb, sizeof(r->envdb), "DATABASE_URL=%s", r->db);
	r->env[0] = r->envdb;
	r->env[1] = r->envcfg;
	r->env[2] = "DISCORD_TOKEN=sim-token";
	r->env[3] = NULL;
	const char *m[] = {"", "migrate", NULL};
	assert_int_equal(th_run(m, r->env, dir, sizeof(dir)), 0);

	char sql[700];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO people (source, external_id, name) SELECT 'roster', 'p' || i, "
	         "'Learner ' || i FROM generate_series(0, %d) i",
	         learners - 1);
	th_sql(r->db, sql, 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO memberships (source, person, kind, group_id, city, program, cohort, "
	         "status) SELECT 'roster', 'p' || i, 'row', 'g' || (i %% 40), 'C' || (i %% 5), "
	         "'P' || ((i / 5) %% 2), 'K' || ((i / 10) %% 4 + 1), 'active' "
	         "FROM generate_series(0, %d) i",
	         learners - 1);
	th_sql(r->db, sql, 0);

	json_t *st = NULL;
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	size_t i, k = 0, qcap = 256 + (size_t)learners * 80, qn = 0;
	json_t *v;
	char *q = malloc(qcap);
	assert_non_null(q);
	qn += (size_t)snprintf(q, qcap,
	                       "INSERT INTO registrations (guild_id, user_id, source, person, "
	                       "method) VALUES ");
	json_array_foreach(json_object_get(g, "members"), i, v) {
		json_t *u = json_object_get(v, "user");
		const char *name = json_string_value(json_object_get(u, "username"));
		if (!name || strncmp(name, "learner", 7) != 0)
			continue;
		qn +=
		    (size_t)snprintf(q + qn, qcap - qn,
		                     "%s('" GUILD "', '%s', 'roster', 'p%zu', "
		                     "'staff_link')",
		                     k ? ", " : "", json_string_value(json_object_get(u, "id")), k);
		k++;
	}
	assert_int_equal((int)k, learners);
	th_sql(r->db, q, 0);
	free(q);
	json_decref(st);
}

static void rig_close(struct rig *r)
{
	th_sim_stop(r->sim);
}

/* Runs cohortbridge ARGS...; returns the exit status; its output dir in dir. */
static int cli(struct rig *r, char *dir, size_t size, const char *a1, const char *a2)
{
	const char *argv[] = {"", a1, a2, NULL};
	return th_run(argv, r->env, dir, size);
}

/* REST requests other than GET the simulator has seen. */
static long writes(struct rig *r)
{
	json_t *st = NULL;
	long n = 0;
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/stats", NULL, &st), 200);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(st, "requests"), k, v) {
		if (strncmp(k, "GET ", 4) != 0)
			n += (long)json_integer_value(v);
	}
	json_decref(st);
	return n;
}

static long requests(struct rig *r, const char *route)
{
	json_t *st = NULL;
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/stats", NULL, &st), 200);
	long n = (long)json_integer_value(json_object_get(json_object_get(st, "requests"), route));
	json_decref(st);
	return n;
}

struct census {
	int roles, cohort_roles, categories, texts, voices, dup_names;
	int members_with_cohort_role, members_with_two;
	int alumni_intact, general_intact;
	json_t *overwrites; /* of one cohort text channel */
};

/* What the guild holds: cohort roles are named "P... C... K...". */
static void census(struct rig *r, struct census *c)
{
	json_t *st = NULL;
	memset(c, 0, sizeof(*c));
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	json_t *cohort_ids = json_object(), *names = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		c->roles++;
		if (name[0] == 'P' && name[1] >= '0' && name[1] <= '9') {
			c->cohort_roles++;
			json_object_set_new(cohort_ids, json_string_value(json_object_get(v, "id")),
			                    json_true());
		}
		if (json_object_get(names, name))
			c->dup_names++;
		json_object_set_new(names, name, json_true());
		if (strcmp(name, "Alumni") == 0)
			c->alumni_intact =
			    json_integer_value(json_object_get(v, "color")) == 0 &&
			    strcmp(json_string_value(json_object_get(v, "permissions")), "0") == 0;
	}
	json_object_clear(names);
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		json_int_t t = json_integer_value(json_object_get(v, "type"));
		char key[200];
		snprintf(key, sizeof(key), "%d/%s", (int)t, name);
		if (json_object_get(names, key))
			c->dup_names++;
		json_object_set_new(names, key, json_true());
		if (strcmp(name, "general") == 0)
			c->general_intact =
			    json_array_size(json_object_get(v, "permission_overwrites")) == 0 &&
			    strcmp(json_string_value(json_object_get(v, "parent_id")), "700") == 0;
		if (name[0] != 'P' && name[0] != 'p')
			continue;
		if (t == 4)
			c->categories++;
		else if (t == 0) {
			c->texts++;
			if (!c->overwrites)
				c->overwrites =
				    json_incref(json_object_get(v, "permission_overwrites"));
		} else if (t == 2)
			c->voices++;
	}
	json_array_foreach(json_object_get(g, "members"), i, v) {
		size_t k;
		json_t *rid;
		int n = 0;
		json_array_foreach(json_object_get(v, "roles"), k, rid)
			n += json_object_get(cohort_ids, json_string_value(rid)) != NULL;
		c->members_with_cohort_role += n > 0;
		c->members_with_two += n > 1;
	}
	json_decref(cohort_ids);
	json_decref(names);
	json_decref(st);
}

/* Every role ("role/NAME") and channel ("TYPE/NAME") of the guild: its id and, for roles, its
 * colour under "color/NAME". */
static json_t *objects(struct rig *r)
{
	json_t *st = NULL, *o = json_object(), *v;
	size_t i;
	char k[200];
	assert_int_equal(th_sim_call(r->port, "GET", "/_sim/state", NULL, &st), 200);
	json_t *g = json_array_get(json_object_get(st, "guilds"), 0);
	json_array_foreach(json_object_get(g, "roles"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		snprintf(k, sizeof(k), "role/%s", name);
		json_object_set(o, k, json_object_get(v, "id"));
		snprintf(k, sizeof(k), "color/%s", name);
		json_object_set(o, k, json_object_get(v, "color"));
	}
	json_array_foreach(json_object_get(g, "channels"), i, v) {
		snprintf(k, sizeof(k), "%d/%s", (int)json_integer_value(json_object_get(v, "type")),
		         json_string_value(json_object_get(v, "name")));
		json_object_set(o, k, json_object_get(v, "id"));
	}
	json_decref(st);
	return o;
}

/* The object `after_key` in `after` is the very object `before_key` was in `before`. */
static void same_object(json_t *before, const char *before_key, json_t *after,
                        const char *after_key)
{
	const char *a = json_string_value(json_object_get(before, before_key));
	const char *b = json_string_value(json_object_get(after, after_key));
	if (!a || !b || strcmp(a, b) != 0)
		fail_msg("%s (%s) is not %s (%s)", before_key, a ? a : "missing", after_key,
		         b ? b : "missing");
}

static void test_reconcile_2000_twice(void **state)
{
	struct rig r = {0};
	char dir[96];
	struct census c;
	rig_open(&r, 2000, 0, NULL);

	/* plan reads and writes nothing, and says what it would do */
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "cohort \"P0 C0 K1\" (50 active)"));
	assert_non_null(strstr(out, "+ create role \"Coach\""));
	assert_non_null(strstr(out, "+ create private text channel \"p0-c0-k1\""));
	assert_non_null(strstr(out, "+ add role \"P0 C0 K1\" to 50 member(s)"));
	assert_non_null(strstr(out, "2000 role add(s)"));
	free(out);
	assert_int_equal(writes(&r), 0);
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM outbox", 0), "0");
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM owned_objects", 0), "0");

	/* --json: one document, every action with its stable key */
	const char *pj[] = {"", "plan", "--json", NULL};
	assert_int_equal(th_run(pj, r.env, dir, sizeof(dir)), 0);
	out = th_read(dir, "stdout");
	json_t *doc = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(doc);
	json_t *g0 = json_array_get(json_object_get(doc, "guilds"), 0);
	assert_string_equal(json_string_value(json_object_get(g0, "guild")), GUILD);
	assert_int_equal(json_array_size(json_object_get(g0, "cohorts")), 40);
	assert_int_equal(json_array_size(json_object_get(g0, "actions")), 41 + 120 + 2000);
	json_decref(doc);

	/* first apply */
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	long first = writes(&r);
	census(&r, &c);
	assert_int_equal(c.cohort_roles, 40);
	assert_int_equal(c.categories, 40);
	assert_int_equal(c.texts, 40);
	assert_int_equal(c.voices, 40);
	assert_int_equal(c.dup_names, 0);
	assert_int_equal(c.members_with_cohort_role, 2000);
	assert_int_equal(c.members_with_two, 0);
	assert_true(c.alumni_intact);
	assert_true(c.general_intact);
	/* hidden from @everyone, visible to the cohort, its staff and the bot */
	assert_int_equal(json_array_size(c.overwrites), 4);
	json_t *ev = json_array_get(c.overwrites, 0);
	assert_string_equal(json_string_value(json_object_get(ev, "id")), GUILD);
	assert_string_equal(json_string_value(json_object_get(ev, "deny")), "1024");
	json_decref(c.overwrites);
	/* 41 roles, 120 channels, 2,000 role adds: each exactly once */
	assert_int_equal(first, 41 + 120 + 2000);
	assert_string_equal(
	    th_sql(r.db, "SELECT count(*) FROM owned_objects WHERE discord_id IS NOT NULL", 0),
	    "161");
	print_message("reconcile: first apply %ld REST writes\n", first);

	/* second apply: nothing to write */
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	long second = writes(&r) - first;
	print_message("reconcile: second apply %ld REST writes\n", second);
	assert_int_equal(second, 0);
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM outbox", 0), "2161");
	rig_close(&r);
}

static void test_reconcile_guards(void **state)
{
	struct rig r = {0};
	char dir[96];
	struct census c;
	rig_open(&r, 200, 0, NULL);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	long base = writes(&r);

	/* 50 of 200 leave the roster while their source's last sync failed: nothing removed */
	th_sql(r.db,
	       "UPDATE memberships SET status = 'withdrawn' WHERE person IN (SELECT 'p' || i FROM "
	       "generate_series(0, 49) i)",
	       0);
	th_sql(r.db, "INSERT INTO source_state (source, failing) VALUES ('roster', true)", 0);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "50 role removal(s) skipped: the last sync of their source "
	                            "failed"));
	free(out);
	assert_int_equal(writes(&r), base);

	/* the source is well again: 50 of 200 is more than the 10% share, so they wait */
	th_sql(r.db, "UPDATE source_state SET failing = false", 0);
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 3);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 3);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "--allow-removals"));
	free(err);
	assert_int_equal(writes(&r), base);
	census(&r, &c);
	assert_int_equal(c.members_with_cohort_role, 200);
	json_decref(c.overwrites);

	/* confirmed */
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", "--allow-removals"), 0);
	assert_int_equal(
	    requests(&r, "DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}"), 50);
	census(&r, &c);
	assert_int_equal(c.members_with_cohort_role, 150);
	assert_true(c.alumni_intact && c.general_intact);
	json_decref(c.overwrites);

	/* one comes back: a role add, not a removal; the done row runs again */
	th_sql(r.db, "UPDATE memberships SET status = 'active' WHERE person = 'p0'", 0);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	census(&r, &c);
	assert_int_equal(c.members_with_cohort_role, 151);
	json_decref(c.overwrites);
	rig_close(&r);
}

static void test_reconcile_archive_and_empty(void **state)
{
	struct rig r = {0};
	char dir[96];
	struct census c;
	rig_open(&r, 200, 0, NULL);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	long base = writes(&r);

	/* a cohort nobody is in any more is named */
	th_sql(r.db, "UPDATE memberships SET status = 'withdrawn' WHERE group_id = 'g0'", 0);
	th_sql(r.db,
	       "DELETE FROM registrations WHERE person IN (SELECT person FROM memberships "
	       "WHERE group_id = 'g0')",
	       0);
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "warning: cohort \"P0 C0 K1\" matches nobody in the roster"));
	free(out);
	assert_int_equal(writes(&r), base);

	/* the K4 cohorts end: their 30 channels go read-only, nothing is deleted, and their
	 * learners keep their roles */
	write_map(&r, "K4");
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(requests(&r, "PATCH /channels/{channel_id}"), 30);
	assert_int_equal(writes(&r) - base, 30);
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM owned_objects WHERE archived", 0),
	                    "30");
	census(&r, &c);
	assert_int_equal(c.texts, 40);
	/* the five who left were unregistered too: no longer managed, so not touched */
	assert_int_equal(c.members_with_cohort_role, 200);
	json_decref(c.overwrites);
	json_t *st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	size_t i;
	json_t *v;
	int checked = 0;
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "channels"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), "p0-c0-k4") != 0)
			continue;
		json_t *ow = json_array_get(json_object_get(v, "permission_overwrites"), 2);
		/* the cohort's role: may read, may not write (SEND_MESSAGES | CONNECT) */
		assert_string_equal(json_string_value(json_object_get(ow, "allow")), "1024");
		assert_string_equal(json_string_value(json_object_get(ow, "deny")), "1050624");
		checked = 1;
	}
	json_decref(st);
	assert_true(checked);
	/* and again: in step */
	long w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(writes(&r), w);
	rig_close(&r);
}

static void test_reconcile_limits(void **state)
{
	struct rig r = {0};
	char dir[96];
	/* 3 + 220 roles on the server, 41 wanted: 264 > 250 */
	rig_open(&r, 200, 220, NULL);
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 1);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "error: the server would hold 264 roles (223 now, 41 to "
	                            "create); Discord allows 250"));
	free(out);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "Discord allows 250; nothing was changed"));
	free(err);
	assert_int_equal(writes(&r), 0);
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM outbox", 0), "0");
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM owned_objects", 0), "0");
	rig_close(&r);
}

static void test_reconcile_adopts_named(void **state)
{
	struct rig r = {0};
	char dir[96], path[96];
	struct census c;
	json_t *role = NULL;
	rig_open(&r, 200, 0, NULL);
	/* the server already has the Coach role the mappings name: found by name and owned,
	 * not created again; Alumni and #general, which nothing names, stay as they are */
	snprintf(path, sizeof(path), "/api/v10/guilds/%s/roles", GUILD);
	assert_int_equal(th_sim_call(r.port, "POST", path, "{\"name\": \"Coach\"}", &role), 200);
	long base = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "= adopt existing role \"Coach\""));
	free(out);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(writes(&r) - base, 40 + 120 + 200);
	char sql[200];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM owned_objects WHERE key = 'staff:coach' AND discord_id = "
	         "'%s' AND NOT created_by_bridge",
	         json_string_value(json_object_get(role, "id")));
	assert_string_equal(th_sql(r.db, sql, 0), "1");
	census(&r, &c);
	assert_int_equal(c.dup_names, 0);
	assert_true(c.alumni_intact && c.general_intact);
	json_decref(c.overwrites);

	/* the mappings rename and recolour it: the bridge did not create it, so it keeps
	 * Discord's name and colour, and the plan says so */
	write_map_as(&r, "Coaches", "#ff0000", TEMPLATES, "");
	long w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "warning: role \"Coach\" was found by its name, not created by "
	                            "the bridge: left as it is, although the mappings give it the "
	                            "name \"Coaches\", the colour #ff0000\n"));
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	assert_int_equal(writes(&r), w);
	json_t *now = objects(&r);
	assert_string_equal(json_string_value(json_object_get(now, "role/Coach")),
	                    json_string_value(json_object_get(role, "id")));
	assert_null(json_object_get(now, "role/Coaches"));
	json_decref(now);
	json_decref(role);
	rig_close(&r);
}

static void test_reconcile_kill9(void **state)
{
	struct rig r = {0};
	char dir[96];
	struct census c;
	rig_open(&r, 400, 0, NULL);
	srand((unsigned)time(NULL));
	for (int k = 0; k < 5; k++) {
		const char *argv[] = {"", "apply", NULL};
		pid_t pid = th_spawn(argv, r.env, dir, sizeof(dir));
		usleep((useconds_t)(100000 + rand() % 900000));
		kill(pid, SIGKILL);
		th_wait(pid, 5000);
	}
	int rc = cli(&r, dir, sizeof(dir), "apply", NULL);
	if (rc != 0)
		fail_msg("apply after the kills: exit %d\n%s", rc, th_read(dir, "stderr"));
	census(&r, &c);
	assert_int_equal(c.cohort_roles, 40);
	assert_int_equal(c.categories, 40);
	assert_int_equal(c.texts, 40);
	assert_int_equal(c.voices, 40);
	assert_int_equal(c.dup_names, 0);
	assert_int_equal(c.members_with_cohort_role, 400);
	assert_int_equal(c.members_with_two, 0);
	json_decref(c.overwrites);
	print_message("reconcile: after 5 kills, %ld role and %ld channel creations for 41 and "
	              "120 objects\n",
	              requests(&r, "POST /guilds/{guild_id}/roles"),
	              requests(&r, "POST /guilds/{guild_id}/channels"));
	long w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(writes(&r), w);
	rig_close(&r);
}

#define RENAMED                                                                                    \
	"\"role\": \"{name} crew\", \"channels\": {\"category\": \"{name} area\", \"text\": "      \
	"\"{program}-{city}-{cohort}-chat\", \"voice\": \"{name} room\"}"

static void test_reconcile_renames(void **state)
{
	struct rig r = {0};
	char dir[96];
	struct census c;
	rig_open(&r, 200, 0, NULL);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	json_t *before = objects(&r);
	long base = writes(&r);

	/* the mappings rename the cohorts' roles, categories and channels and the staff role,
	 * recolour it, and end the K4 cohorts: plan says so and changes nothing */
	write_map_as(&r, "Coaches", "#ff0000", RENAMED,
	             ", \"end_dates\": {\"K4\": \"2020-01-31\"}");
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "~ rename role \"Coach\" -> \"Coaches\", colour #ff0000\n"));
	assert_non_null(strstr(out, "~ rename role \"P0 C0 K1\" -> \"P0 C0 K1 crew\"\n"));
	assert_non_null(strstr(out, "~ rename category \"P0 C0 K1\" -> \"P0 C0 K1 area\"\n"));
	assert_non_null(strstr(out, "~ rename text channel \"p0-c0-k1\" -> \"p0-c0-k1-chat\"\n"));
	assert_non_null(
	    strstr(out, "~ rename voice channel \"P0 C0 K1 voice\" -> \"P0 C0 K1 room\"\n"));
	assert_non_null(strstr(out, "~ archive (read-only) \"p0-c0-k4-chat\""));
	assert_non_null(
	    strstr(out, "0 to create, 0 to adopt, 161 to edit, 30 permission change(s)"));
	assert_null(strstr(out, "+ create"));
	free(out);
	assert_int_equal(writes(&r), base);

	/* apply: every object edited in place, none created */
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(requests(&r, "PATCH /guilds/{guild_id}/roles/{role_id}"), 41);
	assert_int_equal(requests(&r, "PATCH /channels/{channel_id}"), 120 + 30);
	assert_int_equal(writes(&r) - base, 161 + 30);
	json_t *after = objects(&r);
	assert_int_equal(json_object_size(after), json_object_size(before));
	same_object(before, "role/Coach", after, "role/Coaches");
	assert_int_equal(json_integer_value(json_object_get(after, "color/Coaches")), 0xff0000);
	same_object(before, "role/P0 C0 K1", after, "role/P0 C0 K1 crew");
	same_object(before, "role/P1 C4 K4", after, "role/P1 C4 K4 crew");
	same_object(before, "4/P0 C0 K1", after, "4/P0 C0 K1 area");
	same_object(before, "0/p0-c0-k1", after, "0/p0-c0-k1-chat");
	same_object(before, "2/P0 C0 K1 voice", after, "2/P0 C0 K1 room");
	same_object(before, "0/p1-c4-k4", after, "0/p1-c4-k4-chat");
	same_object(before, "role/Alumni", after, "role/Alumni");
	same_object(before, "0/general", after, "0/general");
	census(&r, &c);
	assert_int_equal(c.cohort_roles, 40);
	assert_int_equal(c.categories, 40);
	assert_int_equal(c.dup_names, 0);
	assert_int_equal(c.members_with_cohort_role, 200);
	assert_true(c.alumni_intact && c.general_intact);
	json_decref(c.overwrites);
	/* what the bridge owns carries the new names; the categories their new keys */
	assert_string_equal(th_sql(r.db,
	                           "SELECT count(*) FROM owned_objects WHERE (kind = 'role' AND "
	                           "name LIKE '% crew') OR (kind = 'category' AND name LIKE "
	                           "'% area' AND key = 'category:' || name) OR (kind = 'text' AND "
	                           "name LIKE '%-chat') OR (kind = 'voice' AND name LIKE '% room')",
	                           0),
	                    "160");
	assert_string_equal(
	    th_sql(r.db, "SELECT name FROM owned_objects WHERE key = 'staff:coach'", 0), "Coaches");
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM owned_objects", 0), "161");
	assert_string_equal(th_sql(r.db, "SELECT count(*) FROM owned_objects WHERE archived", 0),
	                    "30");
	/* the ended cohorts' channels stay read-only under their new names */
	json_t *st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	size_t i;
	json_t *v;
	int checked = 0;
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "channels"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), "p0-c0-k4-chat") != 0)
			continue;
		json_t *ow = json_array_get(json_object_get(v, "permission_overwrites"), 2);
		assert_string_equal(json_string_value(json_object_get(ow, "deny")), "1050624");
		checked = 1;
	}
	json_decref(st);
	assert_true(checked);

	/* a second apply writes nothing */
	long w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	assert_int_equal(writes(&r), w);
	json_decref(before);
	before = after;

	/* the running bridge: a mapping change and SIGHUP rename the text channels and recolour
	 * the staff role, and a later apply finds nothing left to do */
	const char *run[] = {"", "run", NULL};
	char bdir[96];
	pid_t bridge = th_spawn(run, r.env, bdir, sizeof(bdir));
	if (!th_wait_for(bdir, "stderr", "Discord is in step", 20000))
		fail_msg("the bridge did not reconcile:\n%s", th_read(bdir, "stderr"));
	write_map_as(&r, "Coaches", "#00ff00",
	             "\"role\": \"{name} crew\", \"channels\": {\"category\": \"{name} area\", "
	             "\"text\": \"{program}-{city}-{cohort}-talk\", \"voice\": \"{name} room\"}",
	             ", \"end_dates\": {\"K4\": \"2020-01-31\"}");
	kill(bridge, SIGHUP);
	int done = 0;
	for (int t = 0; t < 200 && !done; t++) {
		usleep(100000);
		json_t *now = objects(&r);
		done = json_integer_value(json_object_get(now, "color/Coaches")) == 0x00ff00 &&
		       json_object_get(now, "0/p1-c4-k4-talk") &&
		       json_object_get(now, "0/p0-c0-k1-talk");
		json_decref(now);
	}
	if (!done)
		fail_msg("SIGHUP did not rename:\n%s", th_read(bdir, "stderr"));
	kill(bridge, SIGTERM);
	assert_int_equal(th_wait(bridge, 10000), 0);
	after = objects(&r);
	same_object(before, "0/p0-c0-k1-chat", after, "0/p0-c0-k1-talk");
	same_object(before, "role/Coaches", after, "role/Coaches");
	json_decref(before);
	json_decref(after);
	w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	assert_int_equal(writes(&r), w);

	/* one category per program: the 40 categories are still named by nobody, so two new
	 * ones are created and every text and voice channel moves into its program's */
	write_map_as(&r, "Coaches", "#00ff00",
	             "\"role\": \"{name} crew\", \"channels\": {\"category\": \"{program}\", "
	             "\"text\": \"{program}-{city}-{cohort}-talk\", \"voice\": \"{name} room\"}",
	             ", \"end_dates\": {\"K4\": \"2020-01-31\"}");
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "+ create category \"P0\""));
	assert_non_null(strstr(out, "~ text channel \"p0-c0-k1-talk\": move to category \"P0\" "
	                            "(once the category exists)\n"));
	free(out);
	long posts = requests(&r, "POST /guilds/{guild_id}/channels");
	long patches = requests(&r, "PATCH /channels/{channel_id}");
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(requests(&r, "POST /guilds/{guild_id}/channels") - posts, 2);
	assert_int_equal(requests(&r, "PATCH /channels/{channel_id}") - patches, 80);
	after = objects(&r);
	st = NULL;
	th_sim_call(r.port, "GET", "/_sim/state", NULL, &st);
	int moved = 0;
	json_array_foreach(
	    json_object_get(json_array_get(json_object_get(st, "guilds"), 0), "channels"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *parent = json_string_value(json_object_get(v, "parent_id"));
		char cat[8];
		snprintf(cat, sizeof(cat), "4/P%c", name[1]);
		if (json_integer_value(json_object_get(v, "type")) != 4 && (name[0] | 0x20) == 'p')
			moved +=
			    parent &&
			    strcmp(parent, json_string_value(json_object_get(after, cat))) == 0;
	}
	json_decref(st);
	json_decref(after);
	assert_int_equal(moved, 80);
	w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	assert_int_equal(writes(&r), w);
	rig_close(&r);
}

/* A cohort's end date is a day in its own time zone. The K1 cohorts end "today" as Pago Pago
 * (UTC-11) counts: there the day is not over, while in Kiritimati (UTC+14, 25 hours ahead) it
 * is already over. UTC's date is that day or the next, so reading the date in UTC would
 * treat all of them alike, whatever the hour. */
static void test_reconcile_end_date_zone(void **state)
{
	struct rig r = {0};
	char dir[96], day[16], extra[300];
	rig_open(&r, 200, 0, NULL);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	long base = writes(&r);

	/* keep clear of Pago Pago's midnight (11:00 UTC) while the test runs */
	time_t now = time(NULL);
	long left = 86400 - (long)((now - 11 * 3600) % 86400);
	if (left < 120) {
		sleep((unsigned)left + 1);
		now = time(NULL);
	}
	time_t pago = now - 11 * 3600;
	struct tm tm;
	gmtime_r(&pago, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	snprintf(extra, sizeof(extra),
	         ", \"time_zone\": \"Pacific/Pago_Pago\", \"cities\": {\"C0\": {\"time_zone\": "
	         "\"Pacific/Kiritimati\"}}, \"end_dates\": {\"K1\": \"%s\"}",
	         day);
	write_map_as(&r, "Coach", "#2e86de", TEMPLATES, extra);
	assert_int_equal(cli(&r, dir, sizeof(dir), "plan", NULL), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "cohort \"P0 C0 K1\" (5 active, ended)\n"));
	assert_non_null(strstr(out, "cohort \"P1 C0 K1\" (5 active, ended)\n"));
	assert_non_null(strstr(out, "cohort \"P0 C1 K1\" (5 active)\n"));
	assert_non_null(strstr(out, "cohort \"P1 C4 K1\" (5 active)\n"));
	assert_non_null(strstr(out, "~ archive (read-only) \"p0-c0-k1\""));
	assert_null(strstr(out, "~ archive (read-only) \"p0-c1-k1\""));
	free(out);

	/* two cohorts' category, text and voice channels go read-only */
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(requests(&r, "PATCH /channels/{channel_id}"), 6);
	assert_int_equal(writes(&r) - base, 6);
	assert_string_equal(th_sql(r.db,
	                           "SELECT string_agg(DISTINCT key, ',' ORDER BY key) FROM "
	                           "owned_objects WHERE archived",
	                           0),
	                    "category:P0 C0 K1,category:P1 C0 K1,cohort:P0 C0 K1,cohort:P1 C0 K1");
	long w = writes(&r);
	assert_int_equal(cli(&r, dir, sizeof(dir), "apply", NULL), 0);
	assert_int_equal(writes(&r), w);
	rig_close(&r);
}

GROUP(group_reconcile)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reconcile_2000_twice),
	    cmocka_unit_test(test_reconcile_guards),
	    cmocka_unit_test(test_reconcile_archive_and_empty),
	    cmocka_unit_test(test_reconcile_limits),
	    cmocka_unit_test(test_reconcile_adopts_named),
	    cmocka_unit_test(test_reconcile_kill9),
	    cmocka_unit_test(test_reconcile_renames),
	    cmocka_unit_test(test_reconcile_end_date_zone),
	};
	return RUN_GROUP(tests);
}
