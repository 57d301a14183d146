/* Registration through the real binary, the simulator (as Discord, as the learners, and as
 * Canvas and pretix) and a throwaway database: the Register message, the selects, the modals,
 * each proof method with its failures, the attempt limits, races, staff decisions, rejoining;
 * the roles members end with, the message every failure got, the audit channel's lines. */
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define G_LMS    "100000000000000001"
#define G_PRETIX "100000000000000002"
#define G_STAFF  "100000000000000003"
#define STAFF    "100000000000000900"

struct bed {
	pid_t sim, bridge;
	int port;
	char simdir[96], dir[96], db[1024], cfg[512];
	json_t *campus;
};

static const char *const COHORTS[] = {
    "Web Berlin 2026-01",  "Web Lisbon 2026-01",  "Web Berlin 2026-03",  "Web Lisbon 2026-03",
    "Data Berlin 2026-01", "Data Lisbon 2026-01", "Data Berlin 2026-03", "Data Lisbon 2026-03"};

static void append_guild(char *buf, size_t cap, const char *id, const char *extra_roles)
{
	size_t n = strlen(buf);
	snprintf(buf + n, cap - n,
	         "%s{\"id\": \"%s\", \"name\": \"G%s\", \"roles\": ["
	         "{\"name\": \"@everyone\", \"permissions\": \"274879024129\"},%s"
	         "{\"name\": \"Staff\", \"position\": 20},"
	         "{\"name\": \"cohortbridge\", \"position\": 30, \"permissions\": \"402656256\", "
	         "\"bot\": true}],"
	         "\"channels\": [{\"name\": \"register\", \"type\": 0}, {\"name\": \"help\", "
	         "\"type\": 0}, {\"name\": \"approvals\", \"type\": 0}, {\"name\": \"audit\", "
	         "\"type\": 0}],"
	         "\"members\": [{\"user\": {\"id\": \"%s\", \"username\": \"staffer\"}, "
	         "\"roles\": [], \"owner\": true}]}",
	         buf[n - 1] == '[' ? "" : ",", id, id, extra_roles, STAFF);
}

/* Rows added to the roster file: one city and program with this many cohorts. */
static int porto_cohorts;

/* The world (three servers, one per proof method), the mappings and the config. */
static void start(struct bed *b, int defer_ms)
{
	char world[16384], roles[2048] = "", path[600];
	for (size_t i = 0; i < 8; i++) {
		size_t n = strlen(roles);
		snprintf(roles + n, sizeof(roles) - n, "{\"name\": \"%s\", \"position\": %zu},",
		         COHORTS[i], i + 1);
	}
	snprintf(world, sizeof(world), "{\"guilds\": [");
	append_guild(world, sizeof(world), G_LMS, roles);
	append_guild(world, sizeof(world), G_PRETIX,
	             "{\"name\": \"Pass Berlin\", \"position\": 1}, {\"name\": \"Pass Lisbon\", "
	             "\"position\": 2},");
	append_guild(world, sizeof(world), G_STAFF, roles);
	size_t wn = strlen(world);
	snprintf(world + wn, sizeof(world) - wn, "]}");
	const char *wpath = th_write_file(0, "world.json", world);
	const char *args[] = {"--world", wpath, "--ratelimits", "off", NULL};
	b->sim = th_sim_start(args, &b->port, b->simdir, sizeof(b->simdir));
	assert_int_equal(th_sim_call(b->port, "GET", "/_sim/sources", NULL, &b->campus), 200);

	/* mappings: Canvas sections as cohorts (lms_code), pretix variations (pretix_order), a
	 * roster file's city/program/cohort through a cohort set (staff_approval) */
	const char *mdir = th_tmpdir();
	char text[16384], csv[16384];
	size_t n = 0, cn = 0;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	                      "{\"guild\": \"" G_LMS "\", \"cohorts\": [");
	json_t *learners = json_object_get(b->campus, "learners"), *l;
	size_t i;
	json_t *seen = json_object();
	cn += (size_t)snprintf(csv + cn, sizeof(csv) - cn, "id,name,email,city,program,cohort\n");
	json_array_foreach(learners, i, l) {
		char name[128];
		snprintf(name, sizeof(name), "%s %s",
		         json_string_value(json_object_get(l, "program")),
		         json_string_value(json_object_get(l, "section")));
		if (!json_object_get(seen, name)) {
			json_object_set_new(seen, name, json_true());
			n += (size_t)snprintf(
			    text + n, sizeof(text) - n,
			    "%s{\"name\": \"%s\", \"match\": {\"source\": \"canvas\", \"groups\": "
			    "[\"%lld\"]}}",
			    json_object_size(seen) > 1 ? "," : "", name,
			    (long long)json_integer_value(json_object_get(l, "canvas_section_id")));
		}
		cn += (size_t)snprintf(csv + cn, sizeof(csv) - cn, "r%lld,%s,%s,%s,%s,%s\n",
		                       (long long)json_integer_value(json_object_get(l, "id")),
		                       json_string_value(json_object_get(l, "name")),
		                       json_string_value(json_object_get(l, "email")),
		                       json_string_value(json_object_get(l, "city")),
		                       json_string_value(json_object_get(l, "program")),
		                       json_string_value(json_object_get(l, "start")));
	}
	json_decref(seen);
	for (int k = 1; k <= porto_cohorts; k++)
		cn += (size_t)snprintf(csv + cn, sizeof(csv) - cn,
		                       "p%d,Porto Learner %d,p%d@example.org,Porto,Web,P%02d\n", k,
		                       k, k, k);
	snprintf(text + n, sizeof(text) - n,
	         "], \"registration\": {\"sources\": [\"canvas\"], \"proof\": \"lms_code\", "
	         "\"channels\": {\"registration\": \"register\", \"help\": \"help\", \"audit\": "
	         "\"audit\"}, \"attempts\": {\"per_user\": 3, \"per_entry\": 5, "
	         "\"window_minutes\": 60}, \"code_minutes\": 10, \"set_nickname\": true}}");
	snprintf(path, sizeof(path), "%s/lms.json", mdir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/pretix.json", mdir);
	f = fopen(path, "w");
	fputs("{\"guild\": \"" G_PRETIX "\", \"roles\": {\"attendee\": {\"name\": "
	      "\"Attendee\"}}, \"role_rules\": [{\"source\": \"pretix\", \"items\": [1], "
	      "\"roles\": [\"attendee\"]}], \"cohorts\": ["
	      "{\"name\": \"Pass Berlin\", \"match\": {\"source\": \"pretix\", \"groups\": "
	      "[\"1/1\"]}},"
	      "{\"name\": \"Pass Lisbon\", \"match\": {\"source\": \"pretix\", \"groups\": "
	      "[\"1/2\"]}}],"
	      "\"registration\": {\"sources\": [\"pretix\"], \"proof\": \"pretix_order\", "
	      "\"channels\": {\"registration\": \"register\", \"help\": \"help\", \"audit\": "
	      "\"audit\"}, \"attempts\": {\"per_user\": 3, \"per_entry\": 5, "
	      "\"window_minutes\": 60}}}",
	      f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/staff.json", mdir);
	f = fopen(path, "w");
	fputs("{\"guild\": \"" G_STAFF "\", \"cohort_sets\": [{\"source\": \"roster\", "
	      "\"name\": \"{program} {city} {cohort}\"}],"
	      "\"registration\": {\"sources\": [\"roster\"], \"proof\": \"staff_approval\", "
	      "\"channels\": {\"registration\": \"register\", \"help\": \"help\", \"approval\": "
	      "\"approvals\", \"audit\": \"audit\"}, \"attempts\": {\"per_user\": 3, "
	      "\"per_entry\": 5, \"window_minutes\": 60}}, \"texts\": {\"staff_only\": "
	      "\"Nur f\u00fcr das Team.\", \"approve_button\": \"Annehmen\"}}",
	      f);
	fclose(f);
	const char *csvpath = th_write_file(1, "roster.csv", csv);
	snprintf(text, sizeof(text),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"mappings_dir\": \"%s\", "
	         "\"discord\": {\"staff_roles\": [\"Staff\"], \"defer_ms\": %d}, \"sources\": ["
	         "{\"name\": \"canvas\", \"type\": \"canvas\", \"url\": "
	         "\"http://127.0.0.1:%d/canvas\", \"token_env\": \"SRC_TOKEN\"},"
	         "{\"name\": \"pretix\", \"type\": \"pretix\", \"url\": "
	         "\"http://127.0.0.1:%d/pretix\", \"organizer\": \"campus\", \"event\": "
	         "\"conf2026\", \"token_env\": \"SRC_TOKEN\"},"
	         "{\"name\": \"roster\", \"type\": \"roster_file\", \"path\": \"%s\"}]}",
	         mdir, defer_ms, b->port, b->port, csvpath);
	snprintf(b->cfg, sizeof(b->cfg), "%s", th_write_file(2, "cohortbridge.json", text));
	th_fresh_db(b->db, sizeof(b->db));
}

static void run_bridge(struct bed *b)
{
	b->bridge = th_bridge_run(b->cfg, b->db, b->port, b->dir, sizeof(b->dir));
}

static void stop_bridge(struct bed *b)
{
	kill(b->bridge, SIGTERM);
	assert_int_equal(th_wait(b->bridge, 10000), 0);
}

static int count_sql(struct bed *b, const char *sql)
{
	const char *v = th_sql(b->db, sql, 0);
	return v ? (int)strtol(v, NULL, 10) : -1;
}

/* Waits until sql counts at least want. */
static int wait_count(struct bed *b, const char *sql, int want, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		if (count_sql(b, sql) >= want)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* The cohort roles the worlds hold (named as the mappings name them): the running bridge's
 * reconcile adopts them into owned_objects, which registration reads. */
static void own_cohort_roles(struct bed *b)
{
	json_t *st = NULL, *g, *r;
	size_t i, k;
	int n = 0;
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(json_object_get(st, "guilds"), i, g) {
		json_array_foreach(json_object_get(g, "roles"), k, r) {
			const char *name = json_string_value(json_object_get(r, "name"));
			if (strcmp(name, "@everyone") == 0 || strcmp(name, "Staff") == 0 ||
			    strcmp(name, "cohortbridge") == 0)
				continue;
			n++;
		}
	}
	json_decref(st);
	assert_true(
	    wait_count(b,
	               "SELECT count(*) FROM owned_objects WHERE kind = 'role' AND key LIKE "
	               "'cohort:%' AND discord_id IS NOT NULL",
	               n, 30000));
}

static void bed_up(struct bed *b, int defer_ms)
{
	memset(b, 0, sizeof(*b));
	start(b, defer_ms);
	run_bridge(b);
	assert_true(
	    wait_count(b, "SELECT count(*) FROM memberships WHERE status = 'active'", 3, 20000));
	/* every source synced */
	assert_true(
	    wait_count(b, "SELECT count(DISTINCT source) FROM source_syncs WHERE ok", 3, 20000));
	own_cohort_roles(b);
	assert_true(wait_count(b,
	                       "SELECT count(*) FROM owned_objects WHERE kind = 'message' AND "
	                       "key = 'register' AND discord_id IS NOT NULL",
	                       3, 15000));
}

static void bed_down(struct bed *b)
{
	stop_bridge(b);
	th_sim_stop(b->sim);
	json_decref(b->campus);
}

/* A user joins a guild; returns the user id (static buffer per slot). */
static const char *join(struct bed *b, const char *guild, const char *name, int slot)
{
	static char ids[8][32];
	char body[256];
	json_t *res = NULL;
	snprintf(body, sizeof(body), "{\"username\": \"%s\", \"guild_id\": \"%s\"}", name, guild);
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/members", body, &res), 200);
	snprintf(ids[slot], sizeof(ids[slot]), "%s",
	         json_string_value(json_object_get(json_object_get(res, "user"), "id")));
	json_decref(res);
	return ids[slot];
}

static const char *channel_of(struct bed *b, const char *guild, const char *name)
{
	static char id[4][32];
	static int k;
	json_t *st = NULL, *g, *c;
	size_t i, j;
	char *out = id[k++ % 4];
	out[0] = '\0';
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(json_object_get(st, "guilds"), i, g) {
		if (strcmp(json_string_value(json_object_get(g, "id")), guild) != 0)
			continue;
		json_array_foreach(json_object_get(g, "channels"), j, c)
			if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
				snprintf(out, 32, "%s",
				         json_string_value(json_object_get(c, "id")));
	}
	json_decref(st);
	return out;
}

/* Acts as a user and returns the simulator's record once the bot has answered (after a
 * deferral: once the original response has its content). */
static json_t *act(struct bed *b, const char *body)
{
	json_t *res = NULL, *rec = NULL;
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/interactions", body, &res), 200);
	char path[128];
	snprintf(path, sizeof(path), "/_sim/interactions/%s",
	         json_string_value(json_object_get(res, "id")));
	json_decref(res);
	for (int t = 0; t < 200; t++) {
		usleep(50000);
		json_decref(rec);
		th_sim_call(b->port, "GET", path, NULL, &rec);
		json_t *cb = json_array_get(json_object_get(rec, "callbacks"), 0);
		int type = (int)json_integer_value(json_object_get(cb, "type"));
		if (type == 4 || type == 7 || type == 9)
			break;
		const char *oc =
		    json_string_value(json_object_get(json_object_get(rec, "original"), "content"));
		if ((type == 5 || type == 6) && oc && *oc)
			break;
	}
	return rec;
}

static json_t *click(struct bed *b, const char *guild, const char *user, const char *custom_id)
{
	char body[512];
	snprintf(body, sizeof(body),
	         "{\"type\": \"button\", \"user_id\": \"%s\", \"guild_id\": \"%s\", "
	         "\"channel_id\": \"%s\", \"custom_id\": \"%s\"}",
	         user, guild, channel_of(b, guild, "register"), custom_id);
	return act(b, body);
}

static json_t *pick(struct bed *b, const char *guild, const char *user, const char *custom_id,
                    const char *value)
{
	char body[512];
	snprintf(body, sizeof(body),
	         "{\"type\": \"select\", \"user_id\": \"%s\", \"guild_id\": \"%s\", "
	         "\"channel_id\": \"%s\", \"custom_id\": \"%s\", \"values\": [\"%s\"]}",
	         user, guild, channel_of(b, guild, "register"), custom_id, value);
	return act(b, body);
}

static json_t *submit(struct bed *b, const char *guild, const char *user, const char *custom_id,
                      const char *fields)
{
	char body[1024];
	snprintf(body, sizeof(body),
	         "{\"type\": \"modal\", \"user_id\": \"%s\", \"guild_id\": \"%s\", "
	         "\"channel_id\": \"%s\", \"custom_id\": \"%s\", \"fields\": %s}",
	         user, guild, channel_of(b, guild, "register"), custom_id, fields);
	return act(b, body);
}

static json_t *command(struct bed *b, const char *guild, const char *user, const char *name,
                       const char *options)
{
	char body[1024];
	snprintf(body, sizeof(body),
	         "{\"type\": \"command\", \"user_id\": \"%s\", \"guild_id\": \"%s\", "
	         "\"channel_id\": \"%s\", \"name\": \"%s\", \"options\": %s}",
	         user, guild, channel_of(b, guild, "help"), name, options);
	return act(b, body);
}

/* Start, then the picks until the identifier button: values answers the selects in order. */
static void pick_cohort(struct bed *b, const char *guild, const char *user,
                        const char *const *values)
{
	json_t *rec = click(b, guild, user, "reg:start");
	for (size_t i = 0; values && values[i]; i++) {
		const char *cid = th_ix_first_cid(rec);
		if (!cid || strncmp(cid, "reg:pick:", 9) != 0) {
			fail_msg("step %zu: expected a select, got %s / %s", i, cid ? cid : "none",
			         th_ix_content(rec));
			return;
		}
		char route[64];
		snprintf(route, sizeof(route), "%s", cid);
		json_decref(rec);
		rec = pick(b, guild, user, route, values[i]);
	}
	const char *cid = th_ix_first_cid(rec);
	if (!cid || strcmp(cid, "reg:go") != 0)
		fail_msg("expected the identifier button, got %s / %s", cid ? cid : "none",
		         th_ix_content(rec));
	json_decref(rec);
	rec = click(b, guild, user, "reg:go");
	assert_int_equal(th_ix_type(rec), 9);
	json_decref(rec);
}

/* Role names a member holds in a guild, as "|A|B|". */
static void member_roles(struct bed *b, const char *guild, const char *user, char *out, size_t cap)
{
	json_t *st = NULL, *g, *m, *r, *role;
	size_t i, k, j;
	snprintf(out, cap, "|");
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(json_object_get(st, "guilds"), i, g) {
		if (strcmp(json_string_value(json_object_get(g, "id")), guild) != 0)
			continue;
		json_array_foreach(json_object_get(g, "members"), k, m) {
			if (strcmp(json_string_value(
			               json_object_get(json_object_get(m, "user"), "id")),
			           user) != 0)
				continue;
			/* in the guild's order of roles, whatever order they were given in */
			json_array_foreach(json_object_get(g, "roles"), j, role) {
				size_t q;
				json_array_foreach(json_object_get(m, "roles"), q, r) {
					if (strcmp(json_string_value(json_object_get(role, "id")),
					           json_string_value(r)) == 0) {
						size_t n = strlen(out);
						snprintf(out + n, cap - n, "%s|",
						         json_string_value(
						             json_object_get(role, "name")));
					}
				}
			}
		}
	}
	json_decref(st);
}

static int wait_roles(struct bed *b, const char *guild, const char *user, const char *want, int ms)
{
	char got[512];
	for (int t = 0; t < ms; t += 100) {
		member_roles(b, guild, user, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return 1;
		usleep(100000);
	}
	fail_msg("member %s in %s has roles %s, expected %s", user, guild, got, want);
	return 0;
}

/* The audit channel's lines in a guild. */
static int audit_lines(struct bed *b, const char *guild, const char *needle)
{
	json_t *st = NULL, *m;
	size_t i;
	int n = 0;
	th_sim_call(b->port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(
	    json_object_get(json_object_get(st, "messages"), channel_of(b, guild, "audit")), i, m) {
		const char *c = json_string_value(json_object_get(m, "content"));
		if (c && (!needle || strstr(c, needle)))
			n++;
	}
	json_decref(st);
	return n;
}

static int wait_audit(struct bed *b, const char *guild, const char *needle, int want)
{
	for (int t = 0; t < 100; t++) {
		if (audit_lines(b, guild, needle) >= want)
			break;
		usleep(100000);
	}
	return audit_lines(b, guild, needle);
}

static json_t *learner(struct bed *b, size_t k)
{
	return json_array_get(json_object_get(b->campus, "learners"), k);
}

static const char *lstr(json_t *l, const char *key)
{
	return json_string_value(json_object_get(l, key));
}

/* --- the tests ------------------------------------------------------------------------------ */

/* One Register message per guild, with its button; a restart finds it and posts nothing. */
static void test_registration_message(void **state)
{
	struct bed b;
	bed_up(&b, 2000);
	json_t *st = NULL, *m;
	size_t i;
	int found = 0;
	th_sim_call(b.port, "GET", "/_sim/state", NULL, &st);
	json_array_foreach(
	    json_object_get(json_object_get(st, "messages"), channel_of(&b, G_LMS, "register")), i,
	    m) {
		json_t *row = json_array_get(json_object_get(m, "components"), 0);
		const char *cid = json_string_value(json_object_get(
		    json_array_get(json_object_get(row, "components"), 0), "custom_id"));
		found += cid && strcmp(cid, "reg:start") == 0;
	}
	json_decref(st);
	assert_int_equal(found, 1);
	stop_bridge(&b);
	run_bridge(&b);
	usleep(2500000);
	assert_int_equal(count_sql(&b, "SELECT count(*) FROM outbox WHERE kind = 'message_create' "
	                               "AND key LIKE 'reg-message:%'"),
	                 3);
	char *log = th_read(b.dir, "stderr");
	assert_non_null(strstr(log, "state=unchanged"));
	free(log);
	bed_down(&b);
}

/* pretix: the order code as on the badge and the name in any order and spelling; a wrong
 * name; an order that does not exist; too many attempts; an entry already taken. */
static void test_registration_pretix(void **state)
{
	struct bed b;
	bed_up(&b, 2000);
	/* a paid learner pass: person "CODE-1" with a Berlin or Lisbon variation */
	const char *code = NULL, *cohort = NULL;
	char name[256] = "";
	for (size_t k = 0; !code && k < 40; k++) {
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM memberships WHERE source = 'pretix' AND person = "
		         "'%s-1' AND kind = 'variation' AND status = 'active'",
		         lstr(learner(&b, k), "pretix_order"));
		if (count_sql(&b, sql) == 1) {
			json_t *l = learner(&b, k);
			code = lstr(l, "pretix_order");
			cohort =
			    strcmp(lstr(l, "city"), "Berlin") == 0 ? "Pass Berlin" : "Pass Lisbon";
			/* family name first, upper case, accents dropped by hand where simple */
			snprintf(name, sizeof(name), "%s, %s", lstr(l, "last_name"),
			         lstr(l, "first_name"));
			for (char *p = name; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
		}
	}
	assert_non_null(code);
	const char *ada = join(&b, G_PRETIX, "ada", 0), *eve = join(&b, G_PRETIX, "eve", 1);
	const char *const vals[] = {cohort, NULL};
	char fields[512];

	/* wrong name: counted, with attempts left */
	pick_cohort(&b, G_PRETIX, eve, vals);
	snprintf(fields, sizeof(fields), "{\"code\": \"#%s-1\", \"name\": \"Someone Else\"}", code);
	json_t *rec = submit(&b, G_PRETIX, eve, "reg:ident", fields);
	assert_non_null(strstr(th_ix_content(rec), "attempt"));
	assert_non_null(strstr(th_ix_content(rec), "<#"));
	json_decref(rec);
	/* an order that does not exist */
	rec = submit(&b, G_PRETIX, eve, "reg:ident", "{\"code\": \"ZZZZZ\", \"name\": \"X Y\"}");
	assert_non_null(strstr(th_ix_content(rec), "<#"));
	json_decref(rec);

	/* the right one, as printed on the badge */
	pick_cohort(&b, G_PRETIX, ada, vals);
	snprintf(fields, sizeof(fields), "{\"code\": \"#%s-1\", \"name\": \"%s\"}", code, name);
	rec = submit(&b, G_PRETIX, ada, "reg:ident", fields);
	if (count_sql(&b, "SELECT count(*) FROM registrations WHERE guild_id = '" G_PRETIX "'") !=
	    1)
		fail_msg("not registered with %s / %s: %s", code, name, th_ix_content(rec));
	json_decref(rec);
	/* the cohort's role and the role rule's (a ticket of item 1) */
	char want[64];
	snprintf(want, sizeof(want), "|%s|Attendee|", cohort);
	wait_roles(&b, G_PRETIX, ada, want, 10000);

	/* the same entry for eve: taken; then eve runs out of attempts */
	snprintf(fields, sizeof(fields), "{\"code\": \"%s\", \"name\": \"%s\"}", code, name);
	pick_cohort(&b, G_PRETIX, eve, vals);
	rec = submit(&b, G_PRETIX, eve, "reg:ident", fields);
	assert_int_equal(
	    count_sql(&b, "SELECT count(*) FROM registrations WHERE guild_id = '" G_PRETIX "'"), 1);
	json_decref(rec);
	rec = submit(&b, G_PRETIX, eve, "reg:ident", "{\"code\": \"QQQQQ\", \"name\": \"X Y\"}");
	json_decref(rec);
	rec = submit(&b, G_PRETIX, eve, "reg:ident", "{\"code\": \"QQQQQ\", \"name\": \"X Y\"}");
	assert_non_null(strstr(th_ix_content(rec), "minutes"));
	json_decref(rec);
	wait_roles(&b, G_PRETIX, eve, "|", 1000);
	/* one audit line per outcome: 1 registered, 5 failures */
	assert_int_equal(wait_audit(&b, G_PRETIX, NULL, 6), 6);
	bed_down(&b);
}

/* Canvas: a code through Canvas conversations, a wrong code, the right one (nickname too); a
 * slow Canvas (the interaction is deferred, then edited); closed DMs change nothing; a member
 * who leaves and comes back gets the role again. */
static void test_registration_lms_code(void **state)
{
	struct bed b;
	bed_up(&b, 1000);
	json_t *l = NULL;
	for (size_t k = 0; k < 40 && !l; k++)
		if (strcmp(lstr(learner(&b, k), "status"), "active") == 0)
			l = learner(&b, k);
	char cohort[128], want[160], fields[512];
	snprintf(cohort, sizeof(cohort), "%s %s", lstr(l, "program"), lstr(l, "section"));
	const char *bo = join(&b, G_LMS, "bo", 0);
	th_sim_call(b.port, "POST", "/_sim/users/" STAFF "/dms", "{\"open\": false}", NULL);
	char dms[96];
	snprintf(dms, sizeof(dms), "/_sim/users/%s/dms", bo);
	th_sim_call(b.port, "POST", dms, "{\"open\": false}", NULL);
	/* Canvas answers slowly: past the deferral */
	th_sim_call(b.port, "POST", "/_sim/sources/faults",
	            "{\"source\": \"canvas\", \"latency_ms\": 2500}", NULL);
	const char *const vals[] = {cohort, NULL};
	pick_cohort(&b, G_LMS, bo, vals);
	snprintf(fields, sizeof(fields), "{\"ident\": \"%s\"}", lstr(l, "email"));
	json_t *rec = submit(&b, G_LMS, bo, "reg:ident", fields);
	assert_int_equal(th_ix_type(rec), 5); /* deferred, then edited */
	assert_string_equal(th_ix_first_cid(rec), "reg:code");
	json_decref(rec);
	th_sim_call(b.port, "DELETE", "/_sim/sources/faults", NULL, NULL);
	/* the code, as the learner reads it in Canvas */
	json_t *msgs = NULL;
	th_sim_call(b.port, "GET", "/_sim/sources/canvas/messages", NULL, &msgs);
	json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
	const char *body = json_string_value(json_object_get(last, "body"));
	assert_non_null(body);
	regex_t re;
	regmatch_t mt[1];
	regcomp(&re, "[0-9]{6}", REG_EXTENDED);
	assert_int_equal(regexec(&re, body, 1, mt, 0), 0);
	regfree(&re);
	char code[8];
	snprintf(code, sizeof(code), "%.6s", body + mt[0].rm_so);
	json_decref(msgs);
	/* a wrong code, then the right one */
	rec = click(&b, G_LMS, bo, "reg:code");
	assert_int_equal(th_ix_type(rec), 9);
	json_decref(rec);
	char wrong[8];
	snprintf(wrong, sizeof(wrong), "%06d", (int)((strtol(code, NULL, 10) + 1) % 1000000));
	snprintf(fields, sizeof(fields), "{\"code\": \"%s\"}", wrong);
	rec = submit(&b, G_LMS, bo, "reg:codesub", fields);
	assert_non_null(strstr(th_ix_content(rec), "attempt"));
	json_decref(rec);
	snprintf(fields, sizeof(fields), "{\"code\": \"%s\"}", code);
	rec = submit(&b, G_LMS, bo, "reg:codesub", fields);
	assert_non_null(strstr(th_ix_content(rec), cohort));
	json_decref(rec);
	snprintf(want, sizeof(want), "|%s|", cohort);
	wait_roles(&b, G_LMS, bo, want, 10000);
	/* the code is stored hashed only */
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM reg_codes WHERE code_hash = '%s'", code);
	assert_int_equal(count_sql(&b, sql), 0);
	/* leaves and comes back: the role again, without registering */
	char path[96];
	snprintf(path, sizeof(path), "/_sim/members/%s", bo);
	th_sim_call(b.port, "DELETE", path, NULL, NULL);
	snprintf(fields, sizeof(fields),
	         "{\"username\": \"bo\", \"guild_id\": \"" G_LMS "\", \"user_id\": \"%s\"}", bo);
	th_sim_call(b.port, "POST", "/_sim/members", fields, NULL);
	wait_roles(&b, G_LMS, bo, want, 10000);
	/* an identifier that is nobody */
	const char *cy = join(&b, G_LMS, "cy", 1);
	pick_cohort(&b, G_LMS, cy, vals);
	rec = submit(&b, G_LMS, cy, "reg:ident", "{\"ident\": \"nobody@example.org\"}");
	assert_non_null(strstr(th_ix_content(rec), "<#"));
	json_decref(rec);
	/* a code used after it expired: refused, and a new Register starts over */
	json_t *l2 = NULL;
	for (size_t k = 0; k < 40 && !l2; k++)
		if (learner(&b, k) != l && strcmp(lstr(learner(&b, k), "status"), "active") == 0 &&
		    strcmp(lstr(learner(&b, k), "section"), lstr(l, "section")) == 0 &&
		    strcmp(lstr(learner(&b, k), "program"), lstr(l, "program")) == 0)
			l2 = learner(&b, k);
	assert_non_null(l2);
	const char *di = join(&b, G_LMS, "di", 2);
	pick_cohort(&b, G_LMS, di, vals);
	snprintf(fields, sizeof(fields), "{\"ident\": \"%s\"}", lstr(l2, "email"));
	rec = submit(&b, G_LMS, di, "reg:ident", fields);
	assert_string_equal(th_ix_first_cid(rec), "reg:code");
	json_decref(rec);
	th_sim_call(b.port, "GET", "/_sim/sources/canvas/messages", NULL, &msgs);
	body = json_string_value(
	    json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "body"));
	regcomp(&re, "[0-9]{6}", REG_EXTENDED);
	assert_int_equal(regexec(&re, body, 1, mt, 0), 0);
	regfree(&re);
	snprintf(fields, sizeof(fields), "{\"code\": \"%.6s\"}", body + mt[0].rm_so);
	json_decref(msgs);
	snprintf(sql, sizeof(sql),
	         "UPDATE reg_codes SET expires_at = now() - interval '1 second' WHERE user_id = "
	         "'%s' RETURNING 1",
	         di);
	assert_non_null(th_sql(b.db, sql, 0));
	rec = submit(&b, G_LMS, di, "reg:codesub", fields);
	assert_non_null(strstr(th_ix_content(rec), "expired"));
	json_decref(rec);
	wait_roles(&b, G_LMS, di, "|", 1000);
	assert_int_equal(wait_audit(&b, G_LMS, NULL, 4), 4);
	bed_down(&b);
}

/* Staff approval from a roster file: City -> Program -> Cohort, a request with buttons,
 * Approve and Deny, a race of two accounts for one entry (one winner), /lookup, /unlink and
 * /link, and staff-only commands refused to learners. */
static void test_registration_approval(void **state)
{
	struct bed b;
	bed_up(&b, 2000);
	json_t *l = learner(&b, 0), *l2 = learner(&b, 1);
	char cohort[128], want[160], fields[512];
	snprintf(cohort, sizeof(cohort), "%s %s %s", lstr(l, "program"), lstr(l, "city"),
	         lstr(l, "start"));
	const char *dee = join(&b, G_STAFF, "dee", 0), *fay = join(&b, G_STAFF, "fay", 1);
	const char *const vals[] = {lstr(l, "city"), lstr(l, "program"), cohort, NULL};
	pick_cohort(&b, G_STAFF, dee, vals);
	snprintf(fields, sizeof(fields), "{\"ident\": \"%s\"}", lstr(l, "email"));
	json_t *rec = submit(&b, G_STAFF, dee, "reg:ident", fields);
	json_decref(rec);
	assert_true(wait_count(&b,
	                       "SELECT count(*) FROM outbox WHERE key LIKE 'reg-approval:%' AND "
	                       "state = 'done'",
	                       1, 10000));
	assert_int_equal(count_sql(&b, "SELECT count(*) FROM outbox WHERE key LIKE "
	                               "'reg-approval:%' AND payload::text LIKE '%Annehmen%'"),
	                 1);
	const char *id = th_sql(b.db, "SELECT id FROM reg_approvals WHERE state = 'pending'", 0);
	char cid[64];
	snprintf(cid, sizeof(cid), "reg:decide:ok:%s", id);
	/* a learner cannot approve (told in the server's own words) */
	rec = click(&b, G_STAFF, fay, cid);
	assert_non_null(strstr(th_ix_content(rec), "Nur f\xc3\xbcr das Team."));
	json_decref(rec);
	rec = click(&b, G_STAFF, STAFF, cid);
	assert_non_null(strstr(th_ix_content(rec), "Approved"));
	json_decref(rec);
	snprintf(want, sizeof(want), "|%s|", cohort);
	wait_roles(&b, G_STAFF, dee, want, 10000);

	/* fay asks for the same entry: denied by staff, told by the buttons' outcome */
	pick_cohort(&b, G_STAFF, fay, vals);
	rec = submit(&b, G_STAFF, fay, "reg:ident", fields);
	assert_non_null(strstr(th_ix_content(rec), "<#")); /* taken */
	json_decref(rec);

	/* a race: two accounts claim one entry at the same moment through /link */
	char opt[256];
	const char *gus = join(&b, G_STAFF, "gus", 2), *hal = join(&b, G_STAFF, "hal", 3);
	char body1[512], body2[512];
	snprintf(opt, sizeof(opt),
	         "[{\"name\": \"user\", \"type\": 6, \"value\": \"%s\"}, {\"name\": \"entry\", "
	         "\"type\": 3, \"value\": \"roster:r%lld\"}]",
	         gus, (long long)json_integer_value(json_object_get(l2, "id")));
	snprintf(body1, sizeof(body1),
	         "{\"type\": \"command\", \"user_id\": \"" STAFF "\", \"guild_id\": \"" G_STAFF
	         "\", \"channel_id\": \"%s\", \"name\": \"link\", \"options\": %s}",
	         channel_of(&b, G_STAFF, "help"), opt);
	snprintf(opt, sizeof(opt),
	         "[{\"name\": \"user\", \"type\": 6, \"value\": \"%s\"}, {\"name\": \"entry\", "
	         "\"type\": 3, \"value\": \"roster:r%lld\"}]",
	         hal, (long long)json_integer_value(json_object_get(l2, "id")));
	snprintf(body2, sizeof(body2),
	         "{\"type\": \"command\", \"user_id\": \"" STAFF "\", \"guild_id\": \"" G_STAFF
	         "\", \"channel_id\": \"%s\", \"name\": \"link\", \"options\": %s}",
	         channel_of(&b, G_STAFF, "help"), opt);
	json_t *r1 = NULL, *r2 = NULL;
	th_sim_call(b.port, "POST", "/_sim/interactions", body1, &r1);
	th_sim_call(b.port, "POST", "/_sim/interactions", body2, &r2);
	json_decref(r1);
	json_decref(r2);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM registrations WHERE guild_id = '" G_STAFF
	         "' AND person = 'r%lld'",
	         (long long)json_integer_value(json_object_get(l2, "id")));
	assert_true(wait_count(&b, sql, 1, 5000));
	usleep(1000000);
	assert_int_equal(count_sql(&b, sql), 1);

	/* /lookup finds dee; /unlink releases the entry and takes the role back */
	snprintf(opt, sizeof(opt), "[{\"name\": \"who\", \"type\": 3, \"value\": \"<@%s>\"}]", dee);
	rec = command(&b, G_STAFF, STAFF, "lookup", opt);
	assert_non_null(strstr(th_ix_content(rec), "roster:r"));
	json_decref(rec);
	snprintf(opt, sizeof(opt), "[{\"name\": \"user\", \"type\": 6, \"value\": \"%s\"}]", dee);
	rec = command(&b, G_STAFF, fay, "unlink", opt);
	assert_non_null(strstr(th_ix_content(rec), "Nur f\xc3\xbcr das Team."));
	json_decref(rec);
	rec = command(&b, G_STAFF, STAFF, "unlink", opt);
	assert_non_null(strstr(th_ix_content(rec), "no longer holds"));
	json_decref(rec);
	wait_roles(&b, G_STAFF, dee, "|", 10000);
	/* now fay may have it, and a deny ends a request */
	pick_cohort(&b, G_STAFF, fay, vals);
	rec = submit(&b, G_STAFF, fay, "reg:ident", fields);
	json_decref(rec);
	assert_true(
	    wait_count(&b, "SELECT count(*) FROM reg_approvals WHERE state = 'pending'", 1, 5000));
	id = th_sql(b.db, "SELECT id FROM reg_approvals WHERE state = 'pending'", 0);
	snprintf(cid, sizeof(cid), "reg:decide:no:%s", id);
	rec = click(&b, G_STAFF, STAFF, cid);
	assert_non_null(strstr(th_ix_content(rec), "Denied"));
	json_decref(rec);
	wait_roles(&b, G_STAFF, fay, "|", 2000);

	/* /approve by command closes the request's message; a learner who takes no direct
	 * messages is told in the registration channel instead */
	json_t *l3 = learner(&b, 2);
	char cohort3[128];
	snprintf(cohort3, sizeof(cohort3), "%s %s %s", lstr(l3, "program"), lstr(l3, "city"),
	         lstr(l3, "start"));
	const char *ivy = join(&b, G_STAFF, "ivy", 4);
	snprintf(sql, sizeof(sql), "/_sim/users/%s/dms", ivy);
	th_sim_call(b.port, "POST", sql, "{\"open\": false}", NULL);
	const char *const vals3[] = {lstr(l3, "city"), lstr(l3, "program"), cohort3, NULL};
	pick_cohort(&b, G_STAFF, ivy, vals3);
	snprintf(fields, sizeof(fields), "{\"ident\": \"%s\"}", lstr(l3, "email"));
	json_decref(submit(&b, G_STAFF, ivy, "reg:ident", fields));
	assert_true(wait_count(&b,
	                       "SELECT count(*) FROM outbox WHERE key LIKE 'reg-approval:%' AND "
	                       "state = 'done'",
	                       3, 10000));
	snprintf(opt, sizeof(opt), "[{\"name\": \"user\", \"type\": 6, \"value\": \"%s\"}]", ivy);
	rec = command(&b, G_STAFF, STAFF, "approve", opt);
	assert_non_null(strstr(th_ix_content(rec), "Approved by"));
	json_decref(rec);
	snprintf(want, sizeof(want), "|%s|", cohort3);
	wait_roles(&b, G_STAFF, ivy, want, 10000);
	assert_true(wait_count(&b,
	                       "SELECT count(*) FROM outbox WHERE key LIKE 'reg-approval-close:%' "
	                       "AND state = 'done'",
	                       1, 10000));
	assert_true(wait_count(&b,
	                       "SELECT count(*) FROM outbox WHERE key LIKE 'reg-dm:%' AND state = "
	                       "'done' AND (result->>'fallback')::boolean",
	                       1, 10000));
	json_t *st = NULL, *m;
	size_t i;
	int closed = 0, told = 0;
	char mention[48];
	snprintf(mention, sizeof(mention), "<@%s> ", ivy);
	th_sim_call(b.port, "GET", "/_sim/state", NULL, &st);
	json_t *msgs = json_object_get(st, "messages");
	json_array_foreach(json_object_get(msgs, channel_of(&b, G_STAFF, "approvals")), i, m) {
		const char *c = json_string_value(json_object_get(m, "content"));
		if (c && strstr(c, ivy) && strncmp(c, "Approved by", 11) == 0 &&
		    json_array_size(json_object_get(m, "components")) == 0)
			closed++;
	}
	json_array_foreach(json_object_get(msgs, channel_of(&b, G_STAFF, "register")), i, m) {
		const char *c = json_string_value(json_object_get(m, "content"));
		if (c && strncmp(c, mention, strlen(mention)) == 0 && strstr(c, cohort3))
			told++;
	}
	json_decref(st);
	assert_int_equal(closed, 1);
	assert_int_equal(told, 1);
	assert_true(wait_audit(&b, G_STAFF, NULL, 6) >= 6);
	bed_down(&b);
}

/* More than 25 choices in one step: 24 a page and an option that turns the page. */
static void test_registration_many_choices(void **state)
{
	struct bed b;
	porto_cohorts = 30;
	bed_up(&b, 2000);
	porto_cohorts = 0;
	const char *jo = join(&b, G_STAFF, "jo", 0);
	json_t *rec = click(&b, G_STAFF, jo, "reg:start");
	assert_string_equal(th_ix_first_cid(rec), "reg:pick:city");
	json_decref(rec);
	/* one program in Porto: that step is taken for the learner */
	rec = pick(&b, G_STAFF, jo, "reg:pick:city", "Porto");
	assert_string_equal(th_ix_first_cid(rec), "reg:pick:cohort");
	json_t *opts = json_object_get(
	    json_array_get(
	        json_object_get(json_array_get(json_object_get(th_ix_answer(rec), "components"), 0),
	                        "components"),
	        0),
	    "options");
	assert_int_equal(json_array_size(opts), 25);
	assert_string_equal(json_string_value(json_object_get(json_array_get(opts, 0), "value")),
	                    "Web Porto P01");
	assert_string_equal(json_string_value(json_object_get(json_array_get(opts, 24), "value")),
	                    "~page:1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(opts, 24), "label")),
	                    "More... (1 of 2)");
	json_decref(rec);
	rec = pick(&b, G_STAFF, jo, "reg:pick:cohort", "~page:1");
	opts = json_object_get(
	    json_array_get(
	        json_object_get(json_array_get(json_object_get(th_ix_answer(rec), "components"), 0),
	                        "components"),
	        0),
	    "options");
	assert_int_equal(json_array_size(opts), 7); /* P25..P30 and the way back */
	assert_string_equal(json_string_value(json_object_get(json_array_get(opts, 0), "value")),
	                    "Web Porto P25");
	json_decref(rec);
	rec = pick(&b, G_STAFF, jo, "reg:pick:cohort", "Web Porto P27");
	assert_string_equal(th_ix_first_cid(rec), "reg:go");
	json_decref(rec);
	rec = click(&b, G_STAFF, jo, "reg:go");
	assert_int_equal(th_ix_type(rec), 9);
	json_decref(rec);
	rec = submit(&b, G_STAFF, jo, "reg:ident", "{\"ident\": \"p27@example.org\"}");
	json_decref(rec);
	assert_true(wait_count(&b,
	                       "SELECT count(*) FROM reg_approvals WHERE person = 'p27' AND "
	                       "cohort = 'Web Porto P27'",
	                       1, 10000));
	bed_down(&b);
}

GROUP(group_registration)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registration_message),
	    cmocka_unit_test(test_registration_pretix),
	    cmocka_unit_test(test_registration_lms_code),
	    cmocka_unit_test(test_registration_approval),
	    cmocka_unit_test(test_registration_many_choices),
	};
	return RUN_GROUP(tests);
}
