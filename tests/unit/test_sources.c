/* Outside sources: the roster file reader and the sync command against a real database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "helpers.h"
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

	/* the running bridge shows the sources' state in /metrics, whoever synced them */
	char simdir[64], dir[64], envdb[1100], envapi[128], dcfg[1024];
	int simport, port = 0;
	pid_t sim = th_sim_start(NULL, &simport, simdir, sizeof(simdir));
	snprintf(dcfg, sizeof(dcfg),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"sources\": [{\"name\": "
	         "\"roster\", \"type\": \"roster_file\", \"path\": \"%s\"}]}",
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
	for (int i = 0; i < 150; i++) {
		free(body);
		body = NULL;
		th_http_get(port, "/metrics", &body);
		if (body && strstr(body, "cohortbridge_source_failing{source=\"roster\"} 1"))
			break;
		usleep(100000);
	}
	assert_non_null(strstr(body, "cohortbridge_source_failing{source=\"roster\"} 1\n"));
	assert_non_null(strstr(
	    body, "cohortbridge_source_syncs_total{source=\"roster\",outcome=\"failed\"} 3\n"));
	free(body);
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	th_sim_stop(sim);
}

/* The libFuzzer targets (built by make test), a short run each from the seed corpus. */
static void test_fuzz_short(void **state)
{
	const char *fdir = getenv("COHORTBRIDGE_FUZZ_DIR");
	if (!fdir || !*fdir)
		skip(); /* make test sets it; make fuzz runs them at length */
	static const char *const targets[] = {"csv", "roster_json", "moodle_xml", "jtok"};
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
	    cmocka_unit_test(test_roster_csv),    cmocka_unit_test(test_roster_json),
	    cmocka_unit_test(test_pretix_orders), cmocka_unit_test(test_sync_roster_file),
	    cmocka_unit_test(test_fuzz_short),
	};
	return RUN_GROUP(tests);
}
