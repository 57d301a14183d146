/* Outside sources: the roster file reader and the sync command against a real database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "helpers.h"
#include "canvas.h"
#include "connector.h"
#include "fetch.h"
#include "pretix.h"
#include "roster_file.h"

static json_t *csv(const char *text, struct err *err)
{
	return roster_snapshot(text, strlen(text), "roster.csv", err);
}

static const char *field(json_t *snap, const char *list, size_t i, const char *key)
{
	return json_string_value(
	    json_object_get(json_array_get(json_object_get(snap, list), i), key));
}

static void test_roster_csv(void **state)
{
	struct err err = {0};
	/* BOM, CRLF, a comma, doubled quotes and a newline inside quotes, a blank line, extra
	 * columns, first/last names, statuses in other words */
	json_t *s =
	    csv("\xEF\xBB\xBFStudent ID,First Name,Last Name,E-Mail,City,Program,Cohort,"
	        "Status,T-Shirt\r\n"
	        "1001,Ada,\"Lovelace, Countess\",ada@example.org,Berlin,Web,2026-01,Enrolled,M\r\n"
	        "\r\n"
	        "1002,\"Grace \"\"Amazing\"\"\",Hopper,,Berlin,Web,2026-01,,\r\n"
	        "1003,\"Two\nLines\",X,x@example.org,Lisbon,Data,2026-02,Dropped,S\r\n",
	        &err);
	assert_non_null(s);
	assert_int_equal(json_array_size(json_object_get(s, "people")), 3);
	assert_string_equal(field(s, "people", 0, "id"), "1001");
	assert_string_equal(field(s, "people", 0, "name"), "Ada Lovelace, Countess");
	assert_string_equal(field(s, "people", 0, "email"), "ada@example.org");
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_array_get(json_object_get(s, "people"), 0), "extra"),
	        "t_shirt")),
	    "M");
	assert_string_equal(field(s, "people", 1, "name"), "Grace \"Amazing\" Hopper");
	assert_true(json_is_null(
	    json_object_get(json_array_get(json_object_get(s, "people"), 1), "email")));
	assert_string_equal(field(s, "people", 2, "name"), "Two\nLines X");
	assert_string_equal(field(s, "memberships", 0, "group"), "Berlin/Web/2026-01");
	assert_string_equal(field(s, "memberships", 0, "kind"), "row");
	assert_string_equal(field(s, "memberships", 0, "status"), "active");
	assert_string_equal(field(s, "memberships", 1, "status"), "active");
	assert_string_equal(field(s, "memberships", 2, "status"), "withdrawn");
	assert_string_equal(field(s, "memberships", 2, "cohort"), "2026-02");
	assert_non_null(
	    json_string_value(json_object_get(json_object_get(s, "cursor"), "fingerprint")));
	json_decref(s);

	/* a spreadsheet in a locale that writes ';'; email as the id, without case; a group */
	s = csv("Email;Name;Group\nAda@Example.ORG;Ada;g1\n", &err);
	assert_non_null(s);
	assert_string_equal(field(s, "people", 0, "id"), "ada@example.org");
	assert_string_equal(field(s, "people", 0, "email"), "Ada@Example.ORG");
	assert_string_equal(field(s, "memberships", 0, "group"), "g1");
	json_decref(s);
	s = csv("id\tname\n7\tTab\n", &err);
	assert_non_null(s);
	assert_string_equal(field(s, "people", 0, "name"), "Tab");
	assert_string_equal(field(s, "memberships", 0, "group"), "all");
	json_decref(s);

	/* errors name the file and line; nothing comes back */
	static const char *const bad[][2] = {
	    {"", "roster.csv: the file is empty"},
	    {"name,city\nAda,Berlin\n", "roster.csv:1: the header names no id or email column"},
	    {"id,name\n1,Ada\n2,\"Grace\n", "roster.csv:3: a quoted field is not closed"},
	    {"id,name\n1,Ada,x\n", "roster.csv:2: 3 fields where the header has 2"},
	    {"id,name\n1,A\"da\n", "roster.csv:2: a quote inside an unquoted field"},
	    {"id,name\n1,\"Ada\"x\n", "roster.csv:2: text after a quoted field's closing quote"},
	    {"id,status\n1,paused\n", "roster.csv:2: status \"paused\" is neither"},
	    {"id,name\n,Ada\n", "roster.csv:2: no id and no email"},
	    {"id,name\n1,\"multi\nline\"\n2\n", "roster.csv:4: 1 fields where the header has 2"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		s = csv(bad[i][0], &err);
		if (s || strncmp(err.msg, bad[i][1], strlen(bad[i][1])) != 0)
			fail_msg("case %zu: got \"%s\"", i, s ? "a snapshot" : err.msg);
	}
}

static void test_roster_json(void **state)
{
	struct err err = {0};
	const char *c = "id,name,email,city,program,cohort,status\n"
	                "1,Ada,ada@example.org,Berlin,Web,A,active\n"
	                "2,Bob,,Lisbon,Data,B,withdrawn\n";
	const char *j = "[{\"id\": 1, \"name\": \"Ada\", \"email\": \"ada@example.org\", "
	                "\"city\": \"Berlin\", \"program\": \"Web\", \"cohort\": \"A\", "
	                "\"status\": \"active\"},\n"
	                " {\"id\": \"2\", \"name\": \"Bob\", \"email\": null, \"city\": "
	                "\"Lisbon\", \"program\": \"Data\", \"cohort\": \"B\", \"status\": "
	                "\"withdrawn\"}]";
	json_t *a = roster_snapshot(c, strlen(c), "r.csv", &err);
	json_t *b = roster_snapshot(j, strlen(j), "r.json", &err);
	assert_non_null(a);
	assert_non_null(b);
	/* the same rows either way (the fingerprints differ with the bytes) */
	json_object_del(a, "cursor");
	json_object_del(b, "cursor");
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);

	const char *rows = "{\"rows\": [{\"email\": \"x@y.z\"}]}";
	b = roster_snapshot(rows, strlen(rows), "r.json", &err);
	assert_non_null(b);
	json_decref(b);
	static const char *const bad[][2] = {
	    {"[{\"id\": 1},\n {\"id\": 2,}]", "r.json:2:"},
	    {"{\"people\": []}", "r.json: expected an array of rows"},
	    {"[{\"id\": 1, \"name\": {\"first\": \"x\"}}]", "r.json: row 1: \"name\" must be"},
	    {"[1]", "r.json: row 1: not an object"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		json_t *s = roster_snapshot(bad[i][0], strlen(bad[i][0]), "r.json", &err);
		if (s || strncmp(err.msg, bad[i][1], strlen(bad[i][1])) != 0)
			fail_msg("case %zu: got \"%s\"", i, s ? "a snapshot" : err.msg);
	}
}

/* --- pretix: real order objects ------------------------------------------------------------ */

static json_t *fixture(const char *name)
{
	char path[512];
	json_error_t je;
	snprintf(path, sizeof(path), "tests/fixtures/pretix/libpretixsync__%s.json", name);
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("%s: %s", path, je.text);
	return j;
}

/* the memberships of person as "kind:group:status" lines, sorted by the snapshot's order */
static void memberships_of(json_t *snap, const char *person, char *out, size_t cap)
{
	size_t i, n = 0;
	json_t *m;
	out[0] = '\0';
	json_array_foreach(json_object_get(snap, "memberships"), i, m) {
		if (strcmp(json_string_value(json_object_get(m, "person")), person) != 0)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s:%s:%s ",
		                      json_string_value(json_object_get(m, "kind")),
		                      json_string_value(json_object_get(m, "group")),
		                      json_string_value(json_object_get(m, "status")));
	}
}

static json_t *person(json_t *snap, const char *id)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(snap, "people"), i, p) {
		if (strcmp(json_string_value(json_object_get(p, "id")), id) == 0)
			return p;
	}
	return NULL;
}

static void test_pretix_orders(void **state)
{
	json_t *items = json_array(), *orders = json_array();
	json_array_append_new(items, fixture("items_item1"));
	json_array_append_new(items, fixture("items_item2"));
	json_array_append_new(items, fixture("items_item3"));
	static const char *const names[] = {
	    "orders_order1", "orders_order2", "orders_order3", "orders_order4", "orders_order5",
	    "orders_order6", "orders_order7", "orders_order8", "orders_order9", "orders_order10"};
	for (size_t i = 0; i < 10; i++)
		json_array_append_new(orders, fixture(names[i]));
	json_t *s = pretix_snapshot(items, orders, 1);
	char m[512];

	/* paid, a variation, checked in, the order's email for want of the attendee's */
	json_t *p = person(s, "VH3D3-1");
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "Casey Flores");
	assert_string_equal(json_string_value(json_object_get(p, "email")),
	                    "holmesconnie@kelly.com");
	assert_true(json_is_true(json_object_get(json_object_get(p, "extra"), "checked_in")));
	/* when it first entered, and through which check-in lists */
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(p, "extra"), "checked_in_at")),
	    "2019-03-04T17:34:38.221090Z");
	char *lists = json_dumps(json_object_get(json_object_get(p, "extra"), "checkin_lists"), 0);
	assert_string_equal(lists, "[9]");
	free(lists);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(p, "extra"), "name_parts"), "full_name")),
	    "Casey Flores");
	memberships_of(s, "VH3D3-1", m, sizeof(m));
	assert_string_equal(m, "item:1:active variation:1/2:active item:2:active "
	                       "variation:2/3:active ");
	assert_non_null(person(s, "VH3D3-3"));
	/* pending (n) and cancelled (c) orders hold nothing active */
	memberships_of(s, "8JUSR-1", m, sizeof(m));
	assert_string_equal(m, "item:1:withdrawn item:2:withdrawn ");
	memberships_of(s, "OCANC-1", m, sizeof(m));
	assert_string_equal(m, "item:1:withdrawn item:2:withdrawn ");
	memberships_of(s, "RR3IP-1", m, sizeof(m));
	assert_string_equal(m, "item:1:active item:2:active ");
	/* an add-on belongs to the ticket it was bought with, not to a person of its own */
	memberships_of(s, "ADDO1-1", m, sizeof(m));
	assert_string_equal(m, "item:1:active item:2:active ");
	assert_null(person(s, "ADDO1-2"));
	/* item names come from the multi-language objects */
	size_t i;
	json_t *x;
	int named = 0;
	json_array_foreach(json_object_get(s, "memberships"), i, x) {
		if (strcmp(json_string_value(json_object_get(x, "group")), "42") == 0)
			named = strcmp(json_string_value(json_object_get(x, "group_name")),
			               "Regular ticket") == 0;
	}
	assert_true(named);
	assert_true(json_is_true(json_object_get(json_object_get(s, "complete"), "memberships")));
	json_decref(s);
	s = pretix_snapshot(items, orders, 0);
	assert_true(json_is_false(json_object_get(json_object_get(s, "complete"), "memberships")));
	json_decref(s);
	json_decref(items);
	json_decref(orders);
}

/* --- cohortbridge sync ------------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int sync_cmd(const char *cfg, const char *db, const char *extra, char **out)
{
	char dir[64];
	const char *argv[] = {"cohortbridge", "--config", cfg,   "--log-level",
	                      "warn",         "sync",     extra, NULL};
	char env_db[1100];
	snprintf(env_db, sizeof(env_db), "DATABASE_URL=%s", db);
	const char *env[] = {env_db, NULL};
	int rc = th_run(argv, env, dir, sizeof(dir));
	*out = th_read(dir, "stdout");
	return rc;
}

static int count(const char *db, const char *sql)
{
	const char *v = th_sql(db, sql, 0);
	return v ? (int)strtol(v, NULL, 10) : -1;
}

static void test_sync_roster_file(void **state)
{
	char db[1024], cfgtext[1024], roster[512];
	th_fresh_db(db, sizeof(db));
	snprintf(roster, sizeof(roster), "%s/roster.csv", th_tmpdir());
	snprintf(cfgtext, sizeof(cfgtext),
	         "{\"sources\": [{\"name\": \"roster\", \"type\": \"roster_file\", \"path\": "
	         "\"%s\", \"min_share\": 0.8}]}",
	         roster);
	const char *cfg = th_write_file(0, "cohortbridge.json", cfgtext);
	char *out = NULL;

	/* 10 learners in two cohorts */
	char text[4096];
	size_t n = (size_t)snprintf(text, sizeof(text), "id,name,email,cohort\n");
	for (int i = 1; i <= 10; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "%d,Learner %d,l%d@example.org,%s\n", i, i, i,
		                      i <= 5 ? "A" : "B");
	write_text(roster, text);

	/* a dry run writes nothing, not even its record */
	assert_int_equal(sync_cmd(cfg, db, "--dry-run", &out), 0);
	assert_non_null(strstr(out, "roster: dry run, nothing written; 10 people (10 new"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM source_syncs"), 0);

	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "roster: synced; 10 people (10 new, 0 changed); 10 "
	                            "memberships (10 new, 0 changed, 0 withdrawn); 10 active"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE status = 'active' AND "
	                           "group_id = 'A'"),
	                 5);
	/* the same file again: not even read into the database */
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "roster: unchanged since the last sync"));
	free(out);
	/* the same rows in other bytes: read, and nothing changes */
	{
		char crlf[4096];
		size_t k = 0;
		for (const char *p = text; *p && k + 2 < sizeof(crlf); p++) {
			if (*p == '\n')
				crlf[k++] = '\r';
			crlf[k++] = *p;
		}
		crlf[k] = '\0';
		write_text(roster, crlf);
	}
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "10 people (0 new, 0 changed); 10 memberships (0 new, 0 "
	                            "changed, 0 withdrawn)"));
	free(out);

	/* one leaves, one moves, one is renamed */
	n = (size_t)snprintf(text, sizeof(text), "id,name,email,cohort\n");
	for (int i = 1; i <= 9; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%d,%s %d,l%d@example.org,%s\n",
		                      i, i == 2 ? "Renamed" : "Learner", i, i,
		                      i <= 5 && i != 3 ? "A" : "B");
	write_text(roster, text);
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "9 people (0 new, 1 changed); 9 memberships (1 new, 0 "
	                            "changed, 2 withdrawn); 9 active"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE person = '3' AND "
	                           "status = 'active' AND group_id = 'B'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE person = '10' AND "
	                           "status = 'withdrawn'"),
	                 1);

	/* broken files change nothing and are recorded as failed syncs */
	write_text(roster, "id,name,email,cohort\n1,\"Ada\n");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "roster: FAILED: "));
	assert_non_null(strstr(out, "roster.csv:2: a quoted field is not closed"));
	free(out);
	/* a sudden near-empty roster (2 of 9, below min_share 0.8) */
	write_text(roster, "id,name,email,cohort\n1,A,a@example.org,A\n2,B,b@example.org,A\n");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "roster: FAILED: the roster shrank from 9 to 2 active "
	                            "memberships (below 80% of the last good sync); nothing "
	                            "changed"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE status = 'active'"), 9);
	assert_int_equal(count(db, "SELECT count(*) FROM source_syncs WHERE NOT ok"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM source_state WHERE failing"), 1);
	/* a missing file, an unknown source name */
	remove(roster);
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "No such file or directory"));
	free(out);
	assert_int_equal(sync_cmd(cfg, db, "--source=nope", &out), 2);
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE status = 'active'"), 9);

	/* the running bridge syncs on its own, shows the sources' state in /metrics, and reads
	 * the file again once it changes; a failed source comes again soon (here after a second,
	 * then two...), not an interval (an hour) later */
	char simdir[64], dir[64], envdb[1100], envapi[128], dcfg[1024];
	int simport, port = 0;
	pid_t sim = th_sim_start(NULL, &simport, simdir, sizeof(simdir));
	snprintf(dcfg, sizeof(dcfg),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"sources\": [{\"name\": "
	         "\"roster\", \"type\": \"roster_file\", \"path\": \"%s\", \"interval_s\": 3600, "
	         "\"retry_s\": 1}]}",
	         roster);
	const char *dpath = th_write_file(1, "bridge.json", dcfg);
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", simport);
	const char *env[] = {envdb, envapi, "DISCORD_TOKEN=sim-token", NULL};
	const char *argv[] = {"", "--config", dpath, "run", NULL};
	pid_t pid = th_spawn(argv, env, dir, sizeof(dir));
	port = th_listen_port(dir, 10000);
	assert_true(port > 0);
	char *body = NULL;
	/* the file is still missing: failing, and more failed syncs than the command's 3 */
	for (int i = 0; i < 150; i++) {
		free(body);
		body = NULL;
		th_http_get(port, "/metrics", &body);
		if (body && strstr(body, "cohortbridge_source_failing{source=\"roster\"} 1") &&
		    !strstr(body, "outcome=\"failed\"} 3\n"))
			break;
		usleep(100000);
	}
	assert_non_null(strstr(body, "cohortbridge_source_failing{source=\"roster\"} 1\n"));
	assert_null(strstr(body, "outcome=\"failed\"} 3\n"));
	free(body);
	body = NULL;
	/* a tenth learner arrives; a reload in between changes nothing */
	n = (size_t)snprintf(text, sizeof(text), "id,name,email,cohort\n");
	for (int i = 1; i <= 10; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%d,L %d,l%d@example.org,A\n", i,
		                      i, i);
	write_text(roster, text);
	kill(pid, SIGHUP);
	int active = 0;
	for (int i = 0; i < 100 && active != 10; i++) {
		usleep(100000);
		active = count(db, "SELECT count(*) FROM memberships WHERE status = 'active'");
	}
	assert_int_equal(active, 10);
	for (int i = 0; i < 150; i++) {
		free(body);
		body = NULL;
		th_http_get(port, "/metrics", &body);
		if (body && strstr(body, "cohortbridge_source_failing{source=\"roster\"} 0\n"))
			break;
		usleep(100000);
	}
	assert_non_null(strstr(body, "cohortbridge_source_failing{source=\"roster\"} 0\n"));
	free(body);
	kill(pid, SIGHUP);
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	th_sim_stop(sim);
}

/* A source's error quoting a secret back: printed and recorded redacted. */
static void test_sync_error_scrubbed(void **state)
{
	char db[1024], cfgtext[1024], roster[512], dir[64], envdb[1100];
	th_fresh_db(db, sizeof(db));
	snprintf(roster, sizeof(roster), "%s/roster.csv", th_tmpdir());
	write_text(roster, "id,status\n1,tok-9f8e7d6c5b\n");
	snprintf(cfgtext, sizeof(cfgtext),
	         "{\"sources\": [{\"name\": \"roster\", \"type\": \"roster_file\", \"path\": "
	         "\"%s\", \"token_env\": \"ROSTER_TOKEN\"}]}",
	         roster);
	const char *cfg = th_write_file(0, "cohortbridge.json", cfgtext);
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	const char *env[] = {envdb, "ROSTER_TOKEN=tok-9f8e7d6c5b", NULL};
	const char *argv[] = {"cohortbridge", "--config", cfg, "sync", NULL};
	assert_int_equal(th_run(argv, env, dir, sizeof(dir)), 1);
	char *out = th_read(dir, "stdout"), *err = th_read(dir, "stderr");
	assert_non_null(strstr(out, "roster: FAILED: "));
	assert_non_null(strstr(out, "<redacted>"));
	assert_null(strstr(out, "tok-9f8e7d6c5b"));
	assert_null(strstr(err, "tok-9f8e7d6c5b"));
	free(out);
	free(err);
	assert_int_equal(count(db, "SELECT count(*) FROM source_syncs WHERE error LIKE "
	                           "'%tok-9f8e7d6c5b%'"),
	                 0);
	assert_int_equal(count(db, "SELECT count(*) FROM source_syncs WHERE error LIKE "
	                           "'%<redacted>%'"),
	                 1);
}

/* --- the fake Canvas, Moodle and pretix of discord-sim ------------------------------------ */

struct fakes {
	pid_t sim;
	int port;
	char db[1024], cfg[512], simdir[64];
};

static void fakes_config(struct fakes *f, const char *token, double timeout_s)
{
	char text[2048];
	snprintf(
	    text, sizeof(text),
	    "{\"sources\": ["
	    "{\"name\": \"canvas\", \"type\": \"canvas\", \"url\": \"http://127.0.0.1:%d/canvas\", "
	    "\"token_env\": \"SRC_TOKEN\", \"timeout_s\": %g},"
	    "{\"name\": \"moodle\", \"type\": \"moodle\", \"url\": \"http://127.0.0.1:%d/moodle\", "
	    "\"token_env\": \"SRC_TOKEN\", \"courses\": [1, 2], \"timeout_s\": %g},"
	    "{\"name\": \"moodle_json\", \"type\": \"moodle\", \"format\": \"json\", \"url\": "
	    "\"http://127.0.0.1:%d/moodle\", \"token_env\": \"SRC_TOKEN\", \"courses\": [1, 2], "
	    "\"timeout_s\": %g},"
	    "{\"name\": \"pretix\", \"type\": \"pretix\", \"url\": \"http://127.0.0.1:%d/pretix\", "
	    "\"organizer\": \"campus\", \"event\": \"conf2026\", \"token_env\": \"SRC_TOKEN\", "
	    "\"timeout_s\": %g}]}",
	    f->port, timeout_s, f->port, timeout_s, f->port, timeout_s, f->port, timeout_s);
	snprintf(f->cfg, sizeof(f->cfg), "%s", th_write_file(2, "fakes.json", text));
	setenv("SRC_TOKEN", token, 1);
}

static int fake_sync(struct fakes *f, const char *source, char **out)
{
	char dir[64], envdb[1100], envtok[128], opt[80];
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", f->db);
	snprintf(envtok, sizeof(envtok), "SRC_TOKEN=%s", getenv("SRC_TOKEN"));
	snprintf(opt, sizeof(opt), "--source=%s", source ? source : "");
	const char *argv[] = {"cohortbridge", "--config",          f->cfg, "--log-level", "error",
	                      "sync",         source ? opt : NULL, NULL};
	const char *env[] = {envdb, envtok, NULL};
	int rc = th_run(argv, env, dir, sizeof(dir));
	*out = th_read(dir, "stdout");
	return rc;
}

/* Every count printed for a list is 0 new, 0 changed, 0 withdrawn/removed. */
static int nothing_changed(const char *out)
{
	static const char *const words[] = {" new", " changed", " withdrawn", " removed"};
	for (size_t w = 0; w < 4; w++)
		for (const char *p = out; (p = strstr(p, words[w])); p++) {
			const char *q = p;
			while (q > out && q[-1] >= '0' && q[-1] <= '9')
				q--;
			if (q == p || !(p - q == 1 && *q == '0'))
				return 0;
		}
	return 1;
}

/* The whole model of the database as one text, to tell that nothing changed. */
static char *model_text(const char *db)
{
	const char *v = th_sql(
	    db,
	    "SELECT md5(coalesce((SELECT string_agg(p::text, ',' ORDER BY source, external_id) "
	    "FROM "
	    "people p), '') || coalesce((SELECT string_agg(m::text, ',' ORDER BY source, person, "
	    "kind, group_id) FROM memberships m), '') || coalesce((SELECT string_agg(d::text, ',' "
	    "ORDER BY source, assignment, person) FROM due_dates d), '') || coalesce((SELECT "
	    "string_agg(u::text, ',' ORDER BY source, assignment, person) FROM submissions u), "
	    "''))",
	    0);
	return strdup(v ? v : "");
}

static void fault(struct fakes *f, const char *body)
{
	assert_int_equal(th_sim_call(f->port, "POST", "/_sim/sources/faults", body, NULL), 200);
}

static void test_sync_fake_sources(void **state)
{
	struct fakes f = {0};
	const char *args[] = {"--learners", "40", "--seed", "7", NULL};
	th_fresh_db(f.db, sizeof(f.db));
	f.sim = th_sim_start(args, &f.port, f.simdir, sizeof(f.simdir));
	fakes_config(&f, "source-token", 2);
	char *out = NULL;
	json_t *campus = NULL;
	assert_int_equal(th_sim_call(f.port, "GET", "/_sim/sources", NULL, &campus), 200);

	assert_int_equal(fake_sync(&f, NULL, &out), 0);
	assert_non_null(strstr(out, "canvas: synced; "));
	assert_non_null(strstr(out, "moodle: synced; "));
	assert_non_null(strstr(out, "moodle_json: synced; "));
	assert_non_null(strstr(out, "pretix: synced; "));
	free(out);

	/* what the campus holds is what the database says */
	size_t i;
	json_t *l;
	int active = 0, paid_tickets = 0;
	json_array_foreach(json_object_get(campus, "learners"), i, l) {
		active += strcmp(json_string_value(json_object_get(l, "status")), "active") == 0;
	}
	json_t *o, *pos;
	json_array_foreach(json_object_get(json_object_get(campus, "pretix"), "orders"), i, o) {
		size_t k;
		if (strcmp(json_string_value(json_object_get(o, "status")), "p") != 0)
			continue;
		json_array_foreach(json_object_get(o, "positions"), k, pos) {
			paid_tickets += json_is_null(json_object_get(pos, "addon_to"));
		}
	}
	assert_int_equal(count(f.db, "SELECT count(*) FROM memberships WHERE source = 'canvas' AND "
	                             "status = 'active'"),
	                 active);
	assert_int_equal(count(f.db, "SELECT count(*) FROM memberships WHERE source = 'canvas' AND "
	                             "person = '1008' AND status = 'withdrawn'"),
	                 1);
	assert_int_equal(count(f.db,
	                       "SELECT count(DISTINCT person) FROM memberships WHERE source = "
	                       "'pretix' AND kind = 'item' AND status = 'active'"),
	                 paid_tickets);
	/* a suspended Moodle enrolment (1008, deactivated) is no active membership */
	assert_int_equal(count(f.db, "SELECT count(*) FROM memberships WHERE source = 'moodle' AND "
	                             "person = '1008' AND status = 'active'"),
	                 0);
	/* Moodle's XML and JSON formats give the same rows */
	assert_int_equal(
	    count(f.db,
	          "SELECT count(*) FROM (SELECT person, kind, group_id, status FROM memberships "
	          "WHERE source = 'moodle' EXCEPT SELECT person, kind, group_id, status FROM "
	          "memberships WHERE source = 'moodle_json') x"),
	    0);
	assert_int_equal(
	    count(f.db,
	          "SELECT count(*) FROM (SELECT assignment, person, due_at FROM due_dates WHERE "
	          "source = 'moodle' EXCEPT SELECT assignment, person, due_at FROM due_dates "
	          "WHERE source = 'moodle_json') x"),
	    0);
	assert_int_equal(
	    count(f.db,
	          "SELECT count(*) FROM (SELECT assignment, person, submitted_at, late, missing "
	          "FROM submissions WHERE source = 'moodle' EXCEPT SELECT assignment, person, "
	          "submitted_at, late, missing FROM submissions WHERE source = 'moodle_json') x"),
	    0);
	assert_true(
	    count(f.db, "SELECT count(*) FROM submissions WHERE source = 'canvas' AND late") > 0);
	/* Canvas: a student's due date follows the overrides that apply to them */
	assert_true(count(f.db, "SELECT count(DISTINCT due_at) FROM due_dates WHERE source = "
	                        "'canvas'") > 4);

	/* again: nothing changes, and pretix is asked only for what was modified since */
	char *before = model_text(f.db);
	assert_int_equal(th_sim_call(f.port, "DELETE", "/_sim/sources/requests", NULL, NULL) / 100,
	                 2);
	assert_int_equal(fake_sync(&f, NULL, &out), 0);
	if (!nothing_changed(out))
		fail_msg("a second sync changed something:\n%s", out);
	free(out);
	char *after = model_text(f.db);
	assert_string_equal(before, after);
	free(after);
	json_t *reqs = NULL;
	assert_int_equal(th_sim_call(f.port, "GET", "/_sim/sources/requests", NULL, &reqs), 200);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(reqs, "max_in_flight"), "canvas")),
	    1);
	int modified_since = 0;
	json_t *r;
	json_array_foreach(json_object_get(reqs, "requests"), i, r) {
		const char *q = json_string_value(json_object_get(r, "query"));
		modified_since |= q && strstr(q, "modified_since=") != NULL;
	}
	assert_true(modified_since);
	json_decref(reqs);

	/* one order cancelled: the incremental pretix sync sees exactly it */
	const char *code = NULL;
	json_array_foreach(json_object_get(json_object_get(campus, "pretix"), "orders"), i, o) {
		if (strcmp(json_string_value(json_object_get(o, "status")), "p") == 0) {
			code = json_string_value(json_object_get(o, "code"));
			break;
		}
	}
	assert_non_null(code);
	char body[256];
	snprintf(body, sizeof(body), "{\"order\": \"%s\", \"status\": \"c\"}", code);
	assert_int_equal(th_sim_call(f.port, "POST", "/_sim/sources/mutate", body, NULL), 200);
	assert_int_equal(fake_sync(&f, "pretix", &out), 0);
	/* its holder's order status, and the ticket's item and variation, now withdrawn */
	if (!strstr(out, "pretix: synced; 1 people (0 new, 1 changed); 2 memberships (0 new, 2 "
	                 "changed, 0 withdrawn)"))
		fail_msg("the incremental sync said: %s", out);
	free(out);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM memberships WHERE source = 'pretix' AND person = '%s-1' AND "
	         "status = 'withdrawn' AND kind = 'item'",
	         code);
	assert_int_equal(count(f.db, sql), 1);

	/* a new submission: the incremental Canvas sync asks only for what came since (by
	 * Canvas's clock) and sees it */
	assert_int_equal(th_sim_call(f.port, "POST", "/_sim/sources/mutate",
	                             "{\"submit\": {\"learner\": 1001, \"assignment\": 104}}",
	                             NULL),
	                 200);
	assert_int_equal(th_sim_call(f.port, "DELETE", "/_sim/sources/requests", NULL, NULL) / 100,
	                 2);
	assert_int_equal(fake_sync(&f, "canvas", &out), 0);
	if (!strstr(out, "submissions (0 new, 1 changed)") &&
	    !strstr(out, "submissions (1 new, 0 changed)"))
		fail_msg("the incremental Canvas sync said: %s", out);
	free(out);
	assert_int_equal(th_sim_call(f.port, "GET", "/_sim/sources/requests", NULL, &reqs), 200);
	int since = 0;
	json_array_foreach(json_object_get(reqs, "requests"), i, r) {
		const char *q = json_string_value(json_object_get(r, "query"));
		since |= q && strstr(q, "submitted_since=") != NULL;
	}
	assert_true(since);
	json_decref(reqs);
	free(before);
	before = model_text(f.db);

	/* broken answers: a clear error naming the source, and nothing changes */
	static const struct {
		const char *fault, *source, *says;
	} broken[] = {
	    {"{\"source\": \"canvas\", \"status\": 500, \"share\": 1}", "canvas",
	     "canvas: FAILED: http://127.0.0.1"},
	    {"{\"source\": \"canvas\", \"truncate\": true, \"share\": 1}", "canvas",
	     "canvas sent JSON that cannot be read"},
	    {"{\"source\": \"pretix\", \"content_type\": \"text/html\", \"share\": 1}", "pretix",
	     "answered with Content-Type \"text/html\""},
	    {"{\"source\": \"moodle\", \"truncate\": true, \"share\": 1}", "moodle",
	     "moodle: FAILED: moodle: moodle answer, line"},
	    {"{\"source\": \"moodle\", \"huge_mb\": 50, \"share\": 1}", "moodle_json",
	     "response larger than"},
	    {"{\"source\": \"canvas\", \"latency_ms\": 3000, \"share\": 1}", "canvas",
	     "5 attempts"},
	};
	for (size_t k = 0; k < sizeof(broken) / sizeof(broken[0]); k++) {
		fault(&f, broken[k].fault);
		int rc = fake_sync(&f, broken[k].source, &out);
		if (rc != 1 || !strstr(out, broken[k].says))
			fail_msg("case %zu: exit %d, said: %s", k, rc, out);
		free(out);
		assert_int_equal(
		    th_sim_call(f.port, "DELETE", "/_sim/sources/faults", NULL, NULL) / 100, 2);
	}
	/* one 500 is retried and forgotten */
	fault(&f, "{\"source\": \"canvas\", \"status\": 500, \"count\": 1}");
	assert_int_equal(fake_sync(&f, "canvas", &out), 0);
	free(out);
	/* a refused token */
	fakes_config(&f, "expired", 2);
	assert_int_equal(fake_sync(&f, NULL, &out), 1);
	assert_non_null(strstr(out, "canvas: FAILED: the token was refused (401)"));
	assert_non_null(strstr(out, "moodle: FAILED: moodle: moodle error invalidtoken"));
	assert_non_null(strstr(out, "pretix: FAILED: the token was refused (401)"));
	free(out);
	/* a roster that suddenly holds 2 learners of 40 */
	fakes_config(&f, "source-token", 2);
	assert_int_equal(
	    th_sim_call(f.port, "POST", "/_sim/sources/learners", "{\"learners\": 2}", NULL), 200);
	assert_int_equal(fake_sync(&f, "canvas", &out), 1);
	assert_non_null(strstr(out, "canvas: FAILED: the roster shrank from"));
	free(out);
	after = model_text(f.db);
	assert_string_equal(before, after);
	free(before);
	free(after);
	json_decref(campus);
	th_sim_stop(f.sim);
}

/* Verification codes travel through Canvas conversations and Moodle instant messages. */
struct sent {
	int done;
	char err[512];
};

static void on_sent(void *ud, const struct err *err)
{
	struct sent *s = ud;
	s->done = 1;
	snprintf(s->err, sizeof(s->err), "%s", err ? err->msg : "");
}

static void send_one(const struct connector_ops *ops, struct source_cfg *cfg, const char *person,
                     struct sent *out)
{
	uv_loop_t *loop = uv_default_loop();
	struct err err = {0};
	struct httpc *h = httpc_new(loop, &err);
	json_t *cursor = json_object();
	struct source_env env = {loop, h, cfg, "source-token", cursor, NULL, NULL};
	void *c = ops->init(&env, &err);
	assert_non_null(c);
	memset(out, 0, sizeof(*out));
	ops->send(c, person, "Your code", "Code: 482913 (valid for 15 minutes) & more", on_sent,
	          out);
	while (!out->done)
		uv_run(loop, UV_RUN_ONCE);
	ops->free(c);
	httpc_close(h);
	uv_run(loop, UV_RUN_DEFAULT);
	json_decref(cursor);
}

static void test_send_messages(void **state)
{
	char simdir[64], url[128];
	int port;
	pid_t sim = th_sim_start(NULL, &port, simdir, sizeof(simdir));
	struct sent s;
	json_t *msgs = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/canvas", port);
	struct source_cfg canvas = {.name = "canvas",
	                            .type = "canvas",
	                            .url = url,
	                            .token_env = "T",
	                            .extra = json_object()};
	send_one(&canvas_connector, &canvas, "1001", &s);
	assert_string_equal(s.err, "");
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/canvas/messages", NULL, &msgs),
	                 200);
	char *text = json_dumps(msgs, 0);
	assert_non_null(strstr(text, "Code: 482913 (valid for 15 minutes) & more"));
	assert_non_null(strstr(text, "Your code"));
	free(text);
	json_decref(msgs);
	json_decref(canvas.extra);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/moodle", port);
	for (int fmt = 0; fmt < 2; fmt++) {
		struct source_cfg moodle = {.name = "moodle",
		                            .type = "moodle",
		                            .url = url,
		                            .token_env = "T",
		                            .extra = json_pack("{s:[i], s:s}", "courses", 1,
		                                               "format", fmt ? "json" : "xml")};
		send_one(&moodle_connector, &moodle, "1002", &s);
		assert_string_equal(s.err, "");
		/* no such user: Moodle says why */
		send_one(&moodle_connector, &moodle, "99999", &s);
		assert_non_null(strstr(s.err, "moodle: Moodle did not send the message: "));
		json_decref(moodle.extra);
	}
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/moodle/messages", NULL, &msgs),
	                 200);
	text = json_dumps(msgs, 0);
	assert_non_null(strstr(text, "Your code\\n\\nCode: 482913"));
	free(text);
	json_decref(msgs);
	th_sim_stop(sim);
}

/* A roster published as a sheet at a URL: asked for conditionally, so an unchanged one is a
 * 304 and nothing more; a change is synced; a web page instead of a roster changes nothing. */
static void put_sheet(int port, const char *text)
{
	json_t *b = json_pack("{s:s, s:s}", "name", "roster.csv", "text", text);
	char *body = json_dumps(b, 0);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/files", body, NULL), 200);
	free(body);
	json_decref(b);
}

/* the statuses of the requests for the sheet so far, "200 304 ..."; the log is emptied */
static void sheet_statuses(int port, char *buf, size_t size)
{
	json_t *log = NULL;
	size_t i, n = 0;
	json_t *e;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/requests", NULL, &log), 200);
	buf[0] = '\0';
	json_array_foreach(json_is_array(log) ? log : json_object_get(log, "requests"), i, e) {
		if (strcmp(json_string_value(json_object_get(e, "source")), "files") == 0)
			n += (size_t)snprintf(buf + n, size - n, "%s%" JSON_INTEGER_FORMAT,
			                      n ? " " : "",
			                      json_integer_value(json_object_get(e, "status")));
	}
	json_decref(log);
	assert_int_equal(th_sim_call(port, "DELETE", "/_sim/sources/requests", NULL, NULL), 204);
}

static void test_sync_roster_sheet(void **state)
{
	char db[1024], cfgtext[1024], simdir[64], got[256];
	int port;
	pid_t sim = th_sim_start(NULL, &port, simdir, sizeof(simdir));
	th_fresh_db(db, sizeof(db));
	snprintf(cfgtext, sizeof(cfgtext),
	         "{\"sources\": [{\"name\": \"sheet\", \"type\": \"roster_file\", \"url\": "
	         "\"http://127.0.0.1:%d/files/roster.csv\"}]}",
	         port);
	const char *cfg = th_write_file(0, "cohortbridge.json", cfgtext);
	char *out = NULL;
	put_sheet(port, "id,name,cohort\n1,Ana,A\n2,Ben,A\n3,Cem,B\n");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "sheet: synced; 3 people (3 new, 0 changed)"));
	free(out);
	/* unchanged: one request, answered 304 */
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "sheet: unchanged since the last sync"));
	free(out);
	sheet_statuses(port, got, sizeof(got));
	assert_string_equal(got, "200 304");
	/* a fourth learner */
	put_sheet(port, "id,name,cohort\n1,Ana,A\n2,Ben,A\n3,Cem,B\n4,Dua,B\n");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "4 people (1 new, 0 changed)"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE status = 'active'"), 4);
	/* a sign-in page where the sheet was: a clear error, nothing changed */
	put_sheet(port, "id,name,cohort\n1,Ana,A\n");
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/faults",
	                             "{\"source\": \"files\", \"content_type\": \"text/html\"}",
	                             NULL),
	                 200);
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "sheet: FAILED: http://127.0.0.1:"));
	assert_non_null(strstr(out, "/files/roster.csv: answered with a web page"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM memberships WHERE status = 'active'"), 4);
	th_sim_stop(sim);
}

/* An iCal feed of coaching sessions (weekly, one moved, one cancelled) synced into instances
 * over the window; asked for again, it is a 304; a change, a broken feed, an emptied one. */
static void ymd(int days_from_today, char *buf, size_t size)
{
	time_t t = time(NULL) + (time_t)days_from_today * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y%m%d", &tm);
}

static void coaching_feed(char *out, size_t size, const char *exdate)
{
	char d0[16], moved_from[16], moved_to[16], cancelled[16];
	ymd(-14, d0, sizeof(d0));
	ymd(7, moved_from, sizeof(moved_from));
	ymd(8, moved_to, sizeof(moved_to));
	ymd(14, cancelled, sizeof(cancelled));
	snprintf(out, size,
	         "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n"
	         "BEGIN:VEVENT\r\nUID:coaching-1@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
	         "DTSTART;TZID=Europe/Berlin:%sT100000\r\nDURATION:PT1H\r\n"
	         "RRULE:FREQ=WEEKLY;COUNT=10\r\n%s%s%s"
	         "SUMMARY:Coaching: Web 2026-01\r\n"
	         "ORGANIZER;CN=Coach:mailto:Coach@Example.org\r\n"
	         "ATTENDEE;CN=Ana:mailto:ana@example.org\r\n"
	         "ATTENDEE;CN=Ben:mailto:ben@example.org\r\nEND:VEVENT\r\n"
	         "BEGIN:VEVENT\r\nUID:coaching-1@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
	         "RECURRENCE-ID;TZID=Europe/Berlin:%sT100000\r\n"
	         "DTSTART;TZID=Europe/Berlin:%sT150000\r\nDURATION:PT1H\r\n"
	         "SUMMARY:Coaching (moved)\r\nEND:VEVENT\r\n"
	         "BEGIN:VEVENT\r\nUID:coaching-1@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
	         "RECURRENCE-ID;TZID=Europe/Berlin:%sT100000\r\n"
	         "DTSTART;TZID=Europe/Berlin:%sT100000\r\nDURATION:PT1H\r\nSTATUS:CANCELLED\r\n"
	         "SUMMARY:Coaching: Web 2026-01\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	         d0, exdate ? "EXDATE;TZID=Europe/Berlin:" : "", exdate ? exdate : "",
	         exdate ? "T100000\r\n" : "", moved_from, moved_to, cancelled, cancelled);
}

static void put_file(int port, const char *name, const char *text)
{
	json_t *b = json_pack("{s:s, s:s}", "name", name, "text", text);
	char *body = json_dumps(b, 0);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/files", body, NULL), 200);
	free(body);
	json_decref(b);
}

static void test_sync_ical_feed(void **state)
{
	char db[1024], cfgtext[1024], simdir[64], feed[4096], last[16];
	int port;
	pid_t sim = th_sim_start(NULL, &port, simdir, sizeof(simdir));
	th_fresh_db(db, sizeof(db));
	snprintf(cfgtext, sizeof(cfgtext),
	         "{\"sources\": [{\"name\": \"coaching\", \"type\": \"ical\", \"url\": "
	         "\"http://127.0.0.1:%d/files/coaching.ics\", \"past_days\": 7, "
	         "\"future_days\": 60}]}",
	         port);
	const char *cfg = th_write_file(0, "cohortbridge.json", cfgtext);
	char *out = NULL;
	coaching_feed(feed, sizeof(feed), NULL);
	put_file(port, "coaching.ics", feed);

	/* ten weekly sessions from two weeks ago: the nine from a week ago on are in the window */
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "coaching: synced; 9 event instances (9 new, 0 changed, 0 "
	                            "removed); 9 entries"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM calendar_instances WHERE status = "
	                           "'CANCELLED'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM calendar_instances WHERE summary = "
	                           "'Coaching (moved)' AND to_char(start_at AT TIME ZONE "
	                           "'Europe/Berlin', 'HH24:MI') = '15:00'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM calendar_instances WHERE organizer = "
	                           "'coach@example.org' AND attendees = "
	                           "'{ana@example.org,ben@example.org}' AND recurrence_id <> ''"),
	                 7);
	/* what an admin sees of the same feed, by its URL */
	{
		char from[16], to[16], url[128], d[64];
		time_t t0 = time(NULL) - 7 * 86400, t1 = time(NULL) + 61 * 86400;
		struct tm tm;
		strftime(from, sizeof(from), "%Y-%m-%d", gmtime_r(&t0, &tm));
		strftime(to, sizeof(to), "%Y-%m-%d", gmtime_r(&t1, &tm));
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/files/coaching.ics", port);
		const char *argv[] = {"cohortbridge", "ical", "expand", url, "--from",
		                      from,           "--to", to,       NULL};
		assert_int_equal(th_run(argv, NULL, d, sizeof(d)), 0);
		char *lines = th_read(d, "stdout");
		int n = 0;
		for (const char *p = lines; (p = strchr(p, '\n')); p++)
			n++;
		assert_int_equal(n, 9);
		assert_non_null(strstr(lines, "\"status\":\"CANCELLED\""));
		assert_non_null(strstr(lines, "\"summary\":\"Coaching (moved)\""));
		free(lines);
	}
	/* unchanged: a 304 */
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "coaching: unchanged since the last sync"));
	free(out);
	/* the last session is taken out */
	ymd(49, last, sizeof(last));
	coaching_feed(feed, sizeof(feed), last);
	put_file(port, "coaching.ics", feed);
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 0);
	assert_non_null(strstr(out, "8 event instances (0 new, 0 changed, 1 removed)"));
	free(out);
	/* a broken feed, then an emptied one: clear errors, nothing changed */
	put_file(port, "coaching.ics", "\x01\x02\x03garbage, not a calendar");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "coaching: FAILED: coaching: "));
	free(out);
	put_file(port, "coaching.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n");
	assert_int_equal(sync_cmd(cfg, db, NULL, &out), 1);
	assert_non_null(strstr(out, "the calendar shrank from 8 to 0 entries"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM calendar_instances"), 8);
	th_sim_stop(sim);
}

/* Schedules and holidays: a frab export and pretalx's API (paged, with a token) into slots;
 * Nager.Date answers per year, a holiday table with allow/deny lists, notes from the
 * configuration and summaries fetched once and kept. */
static void put_path(int port, const char *name, const char *path, const char *token)
{
	char abs[1024], cwd[512];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	json_t *b = json_pack("{s:s, s:s, s:s?}", "name", name, "path", abs, "token", token);
	char *body = json_dumps(b, 0);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/files", body, NULL), 200);
	free(body);
	json_decref(b);
}

static void test_sync_calendars(void **state)
{
	char db[1024], cfgtext[4096], simdir[64], text[4096], got[256];
	int port;
	pid_t sim = th_sim_start(NULL, &port, simdir, sizeof(simdir));
	th_fresh_db(db, sizeof(db));
	put_path(port, "camp2019.json", "tests/fixtures/pretalx/voc-schedule__frab-camp2019.json",
	         NULL);
	put_path(port, "2024-DE.json", "tests/fixtures/holidays/nager-style__DE_2024.json", NULL);
	/* pretalx's API: two pages of one submission each, behind a token */
	/* the documentation's example opens with a comment, which JSON has not */
	char *doc = NULL;
	size_t doclen = 0;
	FILE *df = fopen("tests/fixtures/pretalx/voc-schedule__pretalx-submission.json", "rb");
	assert_non_null(df);
	FILE *m = open_memstream(&doc, &doclen);
	int ch;
	while ((ch = fgetc(df)) != EOF)
		fputc(ch, m);
	fclose(df);
	fclose(m);
	json_t *sub = json_loads(strchr(doc, '{'), 0, NULL);
	free(doc);
	assert_non_null(sub);
	json_t *sub2 = json_deep_copy(sub);
	json_object_set_new(sub2, "code", json_string("SECOND"));
	char next[256];
	snprintf(next, sizeof(next), "http://127.0.0.1:%d/files/api/events/democon/talks/p2", port);
	json_t *p1 = json_pack("{s:i, s:s, s:n, s:[O]}", "count", 2, "next", next, "previous",
	                       "results", sub);
	json_t *p2 =
	    json_pack("{s:i, s:n, s:n, s:[O]}", "count", 2, "next", "previous", "results", sub2);
	const char *names[] = {"api/events/democon/talks/", "api/events/democon/talks/p2"};
	json_t *pages[] = {p1, p2};
	for (int i = 0; i < 2; i++) {
		char *t = json_dumps(pages[i], 0);
		json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "name", names[i], "text", t, "token",
		                      "talk-token", "content_type", "application/json");
		char *body = json_dumps(b, 0);
		assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/files", body, NULL), 200);
		free(body);
		free(t);
		json_decref(b);
		json_decref(pages[i]);
	}
	json_decref(sub);
	json_decref(sub2);
	put_file(port, "wiki/Epiphany.json",
	         "{\"title\": \"Epiphany\", \"extract\": \"Epiphany is a Christian feast day.\", "
	         "\"content_urls\": {\"desktop\": {\"page\": "
	         "\"https://en.wikipedia.org/wiki/Epiphany_(holiday)\"}}}");
	/* an iCal holiday feed that says why, and a schedule exported as iCal */
	put_file(port, "feiertage.ics",
	         "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
	         "BEGIN:VEVENT\r\nUID:h1\r\nDTSTAMP:20260101T000000Z\r\n"
	         "DTSTART;VALUE=DATE:20261003\r\nSUMMARY:Tag der Deutschen Einheit\r\n"
	         "DESCRIPTION:Reunification\\, 1990.\r\nEND:VEVENT\r\n"
	         "BEGIN:VEVENT\r\nUID:h2\r\nDTSTAMP:20260101T000000Z\r\n"
	         "DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Neujahr\r\n"
	         "END:VEVENT\r\nEND:VCALENDAR\r\n");
	put_file(port, "talks.ics",
	         "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
	         "BEGIN:VEVENT\r\nUID:talk-1@conf\r\nDTSTAMP:20260101T000000Z\r\n"
	         "DTSTART:20261110T090000Z\r\nDTEND:20261110T094500Z\r\nSUMMARY:Opening\r\n"
	         "LOCATION:Hall 1\r\nEND:VEVENT\r\n"
	         "BEGIN:VEVENT\r\nUID:talk-2@conf\r\nDTSTAMP:20260101T000000Z\r\n"
	         "DTSTART:20261110T100000Z\r\nDTEND:20261110T110000Z\r\nSUMMARY:Workshop\r\n"
	         "LOCATION:Room B\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");

	snprintf(
	    cfgtext, sizeof(cfgtext),
	    "{\"sources\": ["
	    "{\"name\": \"feiertage\", \"type\": \"holidays\", \"url\": "
	    "\"http://127.0.0.1:%d/files/feiertage.ics\", \"country\": \"DE\", \"years\": "
	    "[2026, 2027]},"
	    "{\"name\": \"ics\", \"type\": \"pretalx\", \"url\": "
	    "\"http://127.0.0.1:%d/files/talks.ics\"},"
	    "{\"name\": \"camp\", \"type\": \"pretalx\", \"url\": "
	    "\"http://127.0.0.1:%d/files/camp2019.json\"},"
	    "{\"name\": \"talks\", \"type\": \"pretalx\", \"url\": \"http://127.0.0.1:%d/files\", "
	    "\"event\": \"democon\", \"token_env\": \"TALK_TOKEN\"},"
	    "{\"name\": \"nager\", \"type\": \"holidays\", \"url\": "
	    "\"http://127.0.0.1:%d/files/{year}-{country}.json\", \"country\": \"DE\", "
	    "\"region\": \"DE-BY\", \"years\": [2024, 2024], \"summaries\": "
	    "\"http://127.0.0.1:%d/files/wiki/{title}.json\"},"
	    "{\"name\": \"table\", \"type\": \"holidays\", \"path\": "
	    "\"%s/tests/fixtures/holidays/python-holidays-snapshot__DE_BY.json\", \"years\": "
	    "[2026, 2026], \"deny\": [\"* Break\"], \"notes\": {\"Epiphany\": \"Schools are "
	    "closed.\"}}]}",
	    port, port, port, port, port, port, getcwd(text, sizeof(text)));
	const char *cfg = th_write_file(0, "cohortbridge.json", cfgtext);
	char *out = NULL;
	char dir[64], env_db[1100];
	snprintf(env_db, sizeof(env_db), "DATABASE_URL=%s", db);
	const char *env[] = {env_db, "TALK_TOKEN=talk-token", NULL};
	const char *argv[] = {"cohortbridge", "--config", cfg, "--log-level", "warn", "sync", NULL};
	int rc = th_run(argv, env, dir, sizeof(dir));
	out = th_read(dir, "stdout");
	if (rc != 0)
		fail_msg("%s\n%s", out, th_read(dir, "stderr"));
	assert_non_null(
	    strstr(out, "camp: synced; 79 schedule slots (79 new, 0 changed, 0 removed)"));
	assert_non_null(strstr(out, "talks: synced; 2 schedule slots (2 new"));
	/* 10 nationwide days and Bavaria's 3 of 2024 */
	assert_non_null(strstr(out, "nager: synced; 13 holidays (13 new"));
	/* 2026 in Bavaria without the school breaks */
	assert_non_null(strstr(out, "table: synced; 13 holidays (13 new"));
	/* two years of a yearly holiday and a single one */
	assert_non_null(strstr(out, "feiertage: synced; 3 holidays (3 new"));
	assert_non_null(strstr(out, "ics: synced; 2 schedule slots (2 new"));
	free(out);
	assert_int_equal(count(db, "SELECT count(*) FROM holidays WHERE source = 'feiertage' AND "
	                           "day = '2026-10-03' AND note = 'Reunification, 1990.' AND "
	                           "note_from = 'the feed'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM schedule_slots WHERE source = 'ics' AND "
	                           "id = 'talk-2@conf' AND room = 'Room B' AND start_at = "
	                           "'2026-11-10T10:00:00Z'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM schedule_slots WHERE source = 'talks' AND "
	                           "id = 'SECOND'"),
	                 1);
	assert_int_equal(count(db,
	                       "SELECT count(*) FROM holidays WHERE source = 'nager' AND "
	                       "name = 'Epiphany' AND note LIKE 'Epiphany is a Christian%' AND "
	                       "note_from LIKE 'https://en.wikipedia.org/wiki/Epiphany_(holiday) "
	                       "(text: Wikipedia, CC BY-SA 4.0)'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM holidays WHERE source = 'table' AND "
	                           "name = 'Epiphany' AND note = 'Schools are closed.' AND "
	                           "note_from = 'configuration'"),
	                 1);
	assert_int_equal(count(db, "SELECT count(*) FROM holidays WHERE name LIKE '% Break'"), 0);
	/* again: nothing changes, the export is a 304 and no summary is asked for twice */
	assert_int_equal(th_sim_call(port, "DELETE", "/_sim/sources/requests", NULL, NULL), 204);
	assert_int_equal(th_run(argv, env, dir, sizeof(dir)), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "camp: unchanged since the last sync"));
	assert_non_null(
	    strstr(out, "talks: synced; 2 schedule slots (0 new, 0 changed, 0 removed)"));
	assert_non_null(strstr(out, "nager: synced; 13 holidays (0 new, 0 changed, 0 removed)"));
	free(out);
	json_t *log = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/requests", NULL, &log), 200);
	char *logtext = json_dumps(log, 0);
	assert_null(strstr(logtext, "/files/wiki/"));
	free(logtext);
	json_decref(log);
	/* a wrong token, and a schedule that is not one: clear errors, nothing changed */
	const char *bad_env[] = {env_db, "TALK_TOKEN=wrong", NULL};
	put_file(port, "camp2019.json", "{\"schedule\": {\"conference\": {\"days\": 5}}}");
	assert_int_equal(th_run(argv, bad_env, dir, sizeof(dir)), 1);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "talks: FAILED: the token was refused (401)"));
	assert_non_null(strstr(out, "camp: FAILED: camp"));
	snprintf(got, sizeof(got), "%d",
	         count(db, "SELECT count(*) FROM schedule_slots WHERE source = 'camp'"));
	assert_string_equal(got, "79");
	free(out);
	th_sim_stop(sim);
}

/* The Canvas request mocks of a Canvas client's test suite, served by the simulator: every
 * shape of paginated list (Link headers, a next link in the body, none), the overrides of an
 * assignment over two pages, and Canvas's rule for a student's due date among overrides. */
struct listed {
	int done;
	json_t *items;
	unsigned pages;
	char err[512];
};

static void on_listed(void *ud, json_t *items, unsigned pages, const struct err *err)
{
	struct listed *l = ud;
	l->done = 1;
	l->items = items;
	l->pages = pages;
	snprintf(l->err, sizeof(l->err), "%s", err ? err->msg : "");
}

static void list_mock(struct fetcher *f, uv_loop_t *loop, const char *url, const char *items_key,
                      const char *next_key, struct listed *out)
{
	memset(out, 0, sizeof(*out));
	struct fetch_list l = {.url = url, .items_key = items_key, .next_key = next_key};
	assert_int_equal(fetch_list(f, &l, on_listed, out), 0);
	while (!out->done)
		uv_run(loop, UV_RUN_ONCE);
}

/* "1,2,3" from the items' ids */
static void ids_of(json_t *items, char *buf, size_t size)
{
	size_t i, n = 0;
	json_t *o;
	buf[0] = '\0';
	json_array_foreach(items, i, o) {
		char one[32];
		json_t *id = json_object_get(o, "id");
		if (json_is_string(id))
			snprintf(one, sizeof(one), "%s", json_string_value(id));
		else
			snprintf(one, sizeof(one), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "", one);
	}
}

static void test_canvas_mocks(void **state)
{
	char simdir[64], site[128], url[256], ids[256];
	int port;
	const char *args[] = {"--canvas-mocks", "tests/fixtures/canvas", NULL};
	pid_t sim = th_sim_start(args, &port, simdir, sizeof(simdir));
	snprintf(site, sizeof(site), "http://127.0.0.1:%d/canvas/mocks/api/v1", port);
	uv_loop_t *loop = uv_default_loop();
	struct err err = {0};
	struct httpc *h = httpc_new(loop, &err);
	struct source_cfg cfg = {.name = "mocks",
	                         .type = "canvas",
	                         .url = site,
	                         .token_env = "T",
	                         .extra = json_object()};
	json_t *cursor = json_object();
	struct source_env env = {loop, h, &cfg, "source-token", cursor, NULL, NULL};
	struct fetcher *f = fetcher_new(&env, FETCH_AUTH_BEARER, NULL);
	assert_non_null(f);

	static const struct {
		const char *endpoint, *items_key, *next_key, *ids;
		unsigned pages;
	} lists[] = {
	    {"empty_list", NULL, NULL, "", 1},
	    {"single_item", NULL, NULL, "1", 1},
	    {"two_objects_one_page", NULL, NULL, "1,2", 1},
	    {"four_objects_two_pages?per_page=2", NULL, NULL, "1,2,3,4", 2},
	    {"six_objects_three_pages", NULL, NULL, "1,2,3,4,5,6", 3},
	    {"no_header_four_objects_two_pages", "assessments", "meta.pagination.next", "1,2,3,4",
	     2},
	    {"no_header_no_next_key", "assessments", "meta.pagination.next", "1,2", 1},
	    {"courses", NULL, NULL, "1,2,3,4", 2},
	    {"courses/1/sections", NULL, NULL, "1,2,3,4", 2},
	    {"courses/1/assignments", NULL, NULL, "1,2,3,4", 2},
	    {"courses/1/assignments/overrides", NULL, NULL, "1,20", 2},
	    {"courses/1/assignments/1/overrides", NULL, NULL, "1,2,3,2", 2},
	};
	struct listed l;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		snprintf(url, sizeof(url), "%s/%s", site, lists[i].endpoint);
		list_mock(f, loop, url, lists[i].items_key, lists[i].next_key, &l);
		if (l.err[0])
			fail_msg("%s: %s", lists[i].endpoint, l.err);
		ids_of(l.items, ids, sizeof(ids));
		if (strcmp(ids, lists[i].ids) != 0 || l.pages != lists[i].pages)
			fail_msg("%s: ids [%s] in %u pages, want [%s] in %u", lists[i].endpoint,
			         ids, l.pages, lists[i].ids, lists[i].pages);
		if (i != sizeof(lists) / sizeof(lists[0]) - 1)
			json_decref(l.items);
	}
	json_t *overrides = l.items;

	/* the mocks' own links point at their site: the token does not follow them there */
	snprintf(url, sizeof(url), "%s/four_objects_two_pages?keep_links=1", site);
	list_mock(f, loop, url, NULL, NULL, &l);
	assert_null(l.items);
	assert_non_null(strstr(l.err, "the next page is on another host "
	                              "(https://example.com/api/v1/four_objects_two_pages)"));
	/* an object where a list belongs */
	snprintf(url, sizeof(url), "%s/courses/1/assignments/1", site);
	list_mock(f, loop, url, NULL, NULL, &l);
	assert_null(l.items);
	assert_non_null(strstr(l.err, "mocks: expected a list of items"));

	/* Overrides without a due_at (all of the mocks') inherit the assignment's date */
	json_t *base = json_string("2024-05-01T23:59:00Z"), *none = json_null();
	assert_ptr_equal(canvas_due_at(base, overrides, "1", "1"), base);
	assert_ptr_equal(canvas_due_at(base, overrides, "7", "2"), base);
	assert_ptr_equal(canvas_due_at(none, overrides, "7", "2"), none);
	/* the same overrides with dates: the latest that applies wins, no date beats any */
	json_object_set_new(json_array_get(overrides, 2), "due_at",
	                    json_string("2024-05-08T23:59:00Z")); /* students 4, 5, 6 */
	json_object_set_new(json_array_get(overrides, 3), "due_at",
	                    json_string("2024-05-03T23:59:00Z"));                 /* student 7 */
	json_object_set_new(json_array_get(overrides, 0), "due_at", json_null()); /* student 1 */
	for (size_t i = 0; i < json_array_size(overrides); i++) /* not for a section */
		json_object_set_new(json_array_get(overrides, i), "course_section_id",
		                    json_integer(90 + (json_int_t)i));
	assert_string_equal(json_string_value(canvas_due_at(base, overrides, "4", "2")),
	                    "2024-05-08T23:59:00Z");
	assert_string_equal(json_string_value(canvas_due_at(base, overrides, "7", "2")),
	                    "2024-05-03T23:59:00Z");
	assert_true(json_is_null(canvas_due_at(base, overrides, "1", "2")));
	assert_ptr_equal(canvas_due_at(base, overrides, "9", "2"), base);
	/* by section: students 2, 3 (override 2, no date of its own) and section 93's date */
	assert_string_equal(json_string_value(canvas_due_at(base, overrides, "2", "93")),
	                    "2024-05-03T23:59:00Z");
	assert_ptr_equal(canvas_due_at(base, overrides, "2", "2"), base);

	json_decref(base);
	json_decref(overrides);
	fetcher_free(f);
	httpc_close(h);
	uv_run(loop, UV_RUN_DEFAULT);
	json_decref(cursor);
	json_decref(cfg.extra);
	th_sim_stop(sim);
}

/* The libFuzzer targets (built by make test), a short run each from the seed corpus. */
static void test_fuzz_short(void **state)
{
	const char *fdir = getenv("COHORTBRIDGE_FUZZ_DIR");
	if (!fdir || !*fdir)
		skip(); /* make test sets it; make fuzz runs them at length */
	static const char *const targets[] = {"csv",      "roster_json",   "moodle_xml", "jtok",
	                                      "frab_xml", "schedule_json", "ical"};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char bin[512], corpus[512], cmd[1400], dir[64];
		snprintf(bin, sizeof(bin), "%s/fuzz_%s", fdir, targets[i]);
		/* new inputs go to a scratch copy, never into the tree */
		snprintf(corpus, sizeof(corpus), "%s", th_tmpdir());
		snprintf(cmd, sizeof(cmd), "cp tests/fuzz/corpus/%s/* %s/", targets[i], corpus);
		assert_int_equal(system(cmd), 0);
		const char *argv[] = {bin, "-runs=30000", "-seed=1", "-max_len=4096", corpus, NULL};
		pid_t pid = th_spawn_bin(bin, argv, NULL, dir, sizeof(dir));
		int st = th_wait(pid, 120000);
		if (st != 0) {
			char *err = th_read(dir, "stderr");
			fail_msg("fuzz_%s exited with %d:\n%s", targets[i], st, err);
		}
	}
}

GROUP(group_sources)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roster_csv),          cmocka_unit_test(test_roster_json),
	    cmocka_unit_test(test_pretix_orders),       cmocka_unit_test(test_sync_roster_file),
	    cmocka_unit_test(test_sync_error_scrubbed), cmocka_unit_test(test_sync_fake_sources),
	    cmocka_unit_test(test_send_messages),       cmocka_unit_test(test_canvas_mocks),
	    cmocka_unit_test(test_sync_roster_sheet),   cmocka_unit_test(test_sync_ical_feed),
	    cmocka_unit_test(test_sync_calendars),      cmocka_unit_test(test_fuzz_short),
	};
	return RUN_GROUP(tests);
}
