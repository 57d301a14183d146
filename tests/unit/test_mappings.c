/* Mapping files: the examples, every kind of problem with its exact position, cohort sets
 * against roster values, templates, and check and reload through the binary. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "helpers.h"
#include "jschema.h"
#include "mappings.h"

/* A configuration declaring one source of each roster kind and an iCal feed. */
static struct config *test_config(void)
{
	const char *p = th_write_file(
	    0, "config.json",
	    "{\"sources\": [{\"name\": \"canvas\", \"type\": \"canvas\", \"url\": "
	    "\"https://canvas.example.edu\"},\n"
	    " {\"name\": \"moodle\", \"type\": \"moodle\", \"url\": "
	    "\"https://moodle.example.edu\"},\n"
	    " {\"name\": \"roster\", \"type\": \"roster_file\", \"path\": \"roster.csv\"},\n"
	    " {\"name\": \"tickets\", \"type\": \"pretix\", \"url\": "
	    "\"https://pretix.example.org/api/v1/organizers/o/events/e\"},\n"
	    " {\"name\": \"coaching\", \"type\": \"ical\", \"url\": "
	    "\"https://cal.example.org/c.ics\"}]}");
	struct diags d = {0};
	struct err e = {0};
	struct config *c = config_load(p, &d, &e);
	assert_non_null(c);
	return c;
}

static void write_in(const char *dir, const char *name, const char *text)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_map_schema_in_subset(void **state)
{
	json_error_t je;
	json_t *s = json_loads(mappings_schema_text(), 0, &je);
	assert_non_null(s);
	struct err e = {0};
	assert_int_equal(jschema_check_keywords(s, &e), 0);
	json_decref(s);
	/* the file in the repository is the one compiled in */
	FILE *f = fopen("mappings/mapping.schema.json", "r");
	assert_non_null(f);
	char buf[64];
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(strncmp(buf, mappings_schema_text(), strlen(buf)), 0);
}

static void test_map_examples_load(void **state)
{
	struct diags d = {0};
	struct err e = {0};
	struct config *cfg = config_load("deploy/config.example.json", &d, &e);
	assert_non_null(cfg);
	struct mappings *m = mappings_load("mappings/examples", cfg, 1, &d, &e);
	diags_print(&d, stderr); /* says why when the next line fails */
	assert_non_null(m);
	assert_int_equal(m->nfiles, 2);
	assert_int_equal(m->nguilds, 2);
	assert_int_equal(mappings_cohort_count(m), 3);
	assert_int_equal(mappings_set_count(m), 1);

	const struct mappings_guild *boot = mappings_guild(m, "912345678901234567");
	assert_non_null(boot);
	assert_int_equal(boot->registration.proof, MAPPINGS_PROOF_LMS_CODE);
	assert_int_equal(boot->registration.attempts_per_entry, 8);
	assert_true(boot->registration.set_nickname);
	assert_int_equal(boot->nstaff_roles, 4);
	assert_string_equal(boot->staff_roles[0].key, "coach");
	assert_int_equal(boot->staff_roles[0].color, 0x2e86de);
	const struct mappings_cohort *ev = &boot->cohorts[0];
	assert_string_equal(ev->name, "Evening Web");
	assert_int_equal(ev->nmatches, 2);
	assert_string_equal(ev->matches[1].source, "canvas");
	assert_string_equal(ev->matches[1].group, "4102");
	assert_null(ev->voice);
	assert_string_equal(ev->category, "Part-time");
	assert_string_equal(ev->country, "DE"); /* from the region */
	assert_string_equal(ev->end_date, "2026-12-18");
	assert_non_null(strstr(mappings_text_get(boot, MT_CODE_MESSAGE), "bootcamp's Discord"));
	assert_string_equal(mappings_text_get(boot, MT_REGISTER_BUTTON), "Register");
	assert_true(boot->removals_confirm_share > 0.09 && boot->removals_confirm_share < 0.11);

	const struct mappings_guild *conf = mappings_guild(m, "923456789012345678");
	assert_non_null(conf);
	assert_int_equal(conf->registration.proof, MAPPINGS_PROOF_PRETIX_ORDER);
	assert_int_equal(conf->nrole_rules, 5);
	assert_string_equal(conf->role_rules[0].items[2], "203");
	assert_string_equal(conf->role_rules[2].variations[1], "202/12");
	assert_string_equal(conf->cohorts[0].role, "Sprinters");
	assert_string_equal(conf->cohorts[1].role, "Tutorials"); /* the default: the name */
	assert_string_equal(conf->cohorts[0].voice, "sprints hall");
	assert_null(mappings_guild(m, "1"));
	mappings_free(m);
	config_free(cfg);
}

static void test_map_expand_set(void **state)
{
	struct diags d = {0};
	struct err e = {0};
	struct config *cfg = config_load("deploy/config.example.json", &d, &e);
	struct mappings *m = mappings_load("mappings/examples", cfg, 1, &d, &e);
	assert_non_null(m);
	const struct mappings_guild *g = mappings_guild(m, "912345678901234567");
	const struct mappings_tuple t[] = {
	    {"roster", "Berlin", "Web", "2026-01"}, {"roster", "Lisbon", "Data", "2026-03"},
	    {"roster", "Berlin", "UX", "2026-01"},  /* not in where */
	    {"canvas", "Berlin", "Web", "2026-09"}, /* another source */
	    {"roster", "Lisbon", "Web", NULL},      /* no cohort value */
	    {"roster", "Berlin", "Web", "2026-01"}, /* the same again */
	};
	struct mappings_cohort *c;
	size_t n;
	assert_int_equal(mappings_expand_set(g, &g->sets[0], t, 6, &c, &n, &d, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(c[0].name, "Web Berlin 2026-01");
	assert_string_equal(c[0].role, "Web Berlin 2026-01");
	assert_string_equal(c[0].text, "Web-Berlin-chat");
	assert_string_equal(c[0].voice, "Web Berlin room");
	assert_string_equal(c[0].time_zone, "Europe/Berlin");
	assert_string_equal(c[0].region, "DE-BE");
	assert_string_equal(c[0].end_date, "2026-06-30");
	assert_int_equal(c[0].nmatches, 2);
	assert_string_equal(c[0].matches[0].source, "roster");
	assert_int_equal(c[0].nstaff, 3);
	assert_string_equal(c[1].name, "Data Lisbon 2026-03");
	assert_string_equal(c[1].time_zone, "Europe/Lisbon");
	assert_string_equal(c[1].country, "PT");
	assert_null(c[1].region); /* the city's country replaces the set's region */
	assert_string_equal(c[1].end_date, "2026-08-31");
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.v[0].msg, "(Lisbon, Web, -) have no cohort"));
	mappings_cohorts_free(c, n);
	diags_clear(&d);

	/* a name without {cohort} puts every cohort of a city and program together */
	struct mappings_cohort_set s = g->sets[0];
	s.name = "{program} {city}";
	s.role = s.category = s.text = "{name}";
	s.voice = NULL;
	assert_int_equal(mappings_expand_set(g, &s, t, 6, &c, &n, &d, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(c[2].name, "Web Lisbon");
	assert_null(c[2].matches[0].cohort);
	assert_null(c[0].voice);
	assert_int_equal(d.n, 0);
	mappings_cohorts_free(c, n);
	mappings_free(m);
	config_free(cfg);
}

static void test_map_render(void **state)
{
	struct err e = {0};
	const char *vars[] = {"city", "Berlin", "program", "Web", "cohort", NULL, NULL};
	char *s = mappings_render("{program} {city} {{x}} {cohort}!", vars, &e);
	assert_string_equal(s, "Web Berlin {x} !");
	free(s);
	assert_null(mappings_render("{town}", vars, &e));
	assert_string_equal(e.msg, "unknown variable {town}");
	assert_null(mappings_render("{city", vars, &e));
	assert_non_null(strstr(e.msg, "not closed"));
	assert_null(mappings_render("a } b", vars, &e));
	assert_null(mappings_render("{}", vars, &e));
	s = mappings_render("", vars, &e);
	assert_string_equal(s, "");
	free(s);
	assert_string_equal(mappings_text_key(MT_FAIL_TAKEN), "fail_taken");
	assert_non_null(strstr(mappings_text_get(NULL, MT_FAIL_TAKEN), "{help_channel}"));
}

/* One file in a fresh directory gives exactly one problem: want is what follows the path. */
static void expect_one(const struct config *cfg, const char *text, const char *want)
{
	char dir[96], path[200], got[1400], full[1600];
	snprintf(dir, sizeof(dir), "%s", th_tmpdir());
	write_in(dir, "m.json", text);
	snprintf(path, sizeof(path), "%s/m.json", dir);
	struct diags d = {0};
	struct err e = {0};
	struct mappings *m = mappings_load(dir, cfg, 1, &d, &e);
	assert_null(m);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	if (d.n != 1) {
		diags_print(&d, stderr);
		fail_msg("%zu problems for %s", d.n, want);
	}
	diags_format(&d, 0, got, sizeof(got));
	assert_string_equal(got, full);
	diags_clear(&d);
}

#define G "{\"guild\": \"912345678901234567\",\n"

static void test_map_errors(void **state)
{
	struct config *cfg = test_config();
	/* the schema */
	expect_one(cfg, G " \"cohort\": []}",
	           "2:2: unknown key \"cohort\" (did you mean \"cohorts\"?)");
	expect_one(cfg, "{\"guild\": \"12\"}",
	           "1:11: guild: \"12\" is not a Discord id of 17 to 20 digits");
	expect_one(cfg, G " \"cohorts\": [{\"name\": \"A\"}]}",
	           "2:14: cohorts[0]: missing required key \"match\"");
	/* syntax */
	expect_one(cfg, G " \"label\": \"x\",,}", "2:15: string or '}' expected near ','");
	/* duplicate names */
	expect_one(cfg,
	           G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"Berlin\"}},\n"
	             "  {\"name\": \"A\", \"match\": {\"city\": \"Lisbon\"}, \"role\": \"A2\", "
	             "\"channels\": {\"category\": \"A2\"}}]}",
	           "3:12: cohorts[1].name: \"A\" is already the name of cohorts[0] (line 2)");
	expect_one(cfg,
	           G " \"staff_roles\": {\"coach\": {\"name\": \"Staff\"},\n"
	             "  \"tutor\": {\"name\": \"Staff\"}}}",
	           "3:21: staff_roles.tutor.name: role name \"Staff\" is already used by "
	           "staff_roles.coach.name (line 2)");
	expect_one(cfg,
	           G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"Berlin\"}},\n"
	             "  {\"name\": \"B\", \"match\": {\"city\": \"Lisbon\"}, \"role\": \"A\"}]}",
	           "3:54: cohorts[1].role: role name \"A\" is already used by cohorts[0] (line 2)");
	expect_one(cfg,
	           G " \"staff_roles\": {\"coach\": {\"name\": \"Coach\"}},\n"
	             " \"roles\": {\"coach\": {\"name\": \"Coaches\"}}}",
	           "3:12: roles.coach: \"coach\" is already the key of a staff role");
	/* references */
	expect_one(cfg,
	           G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"B\"}, \"staff\": "
	             "[\"coach\"]}]}",
	           "2:62: cohorts[0].staff[0]: staff role \"coach\" is not defined in staff_roles");
	expect_one(cfg,
	           G " \"role_rules\": [{\"source\": \"tickets\", \"items\": [1], \"roles\": "
	             "[\"speaker\"]}]}",
	           "2:63: role_rules[0].roles[0]: role \"speaker\" is not defined in roles or "
	           "staff_roles");
	/* time zones and dates */
	expect_one(
	    cfg,
	    G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"B\"}, \"time_zone\": "
	      "\"Europe/Berln\"}]}",
	    "2:65: cohorts[0].time_zone: \"Europe/Berln\" is not a known IANA time zone (such "
	    "as Europe/Berlin)");
	expect_one(
	    cfg, G " \"cohort_sets\": [{\"cities\": {\"Lisbon\": {\"time_zone\": \"Lisboa\"}}}]}",
	    "2:54: cohort_sets[0].cities.Lisbon.time_zone: \"Lisboa\" is not a known IANA time "
	    "zone (such as Europe/Berlin)");
	expect_one(cfg,
	           G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"B\"}, \"end_date\": "
	             "\"2026-02-29\"}]}",
	           "2:64: cohorts[0].end_date: \"2026-02-29\" is not a date in the calendar");
	/* sources */
	expect_one(cfg,
	           G
	           " \"cohorts\": [{\"name\": \"A\", \"match\": {\"source\": \"sis\", \"groups\": "
	           "[1]}}]}",
	           "2:48: cohorts[0].match.source: source \"sis\" is not declared in the "
	           "configuration (declared: canvas, moodle, roster, tickets, coaching)");
	expect_one(
	    cfg, G " \"cohort_sets\": [{\"source\": \"coaching\"}]}",
	    "2:29: cohort_sets[0].source: source \"coaching\" is a ical source, which has no "
	    "roster");
	expect_one(
	    cfg,
	    G " \"registration\": {\"sources\": [\"roster\"], \"proof\": \"pretix_order\",\n"
	      "  \"channels\": {\"registration\": \"r\", \"help\": \"h\", \"audit\": \"a\"}}}",
	    "2:31: registration.sources[0]: source \"roster\" is a roster_file source; proof "
	    "pretix_order needs a pretix source");
	expect_one(cfg,
	           G
	           " \"registration\": {\"sources\": [\"tickets\"], \"proof\": \"lms_code\",\n"
	           "  \"channels\": {\"registration\": \"r\", \"help\": \"h\", \"audit\": \"a\"}}}",
	           "2:31: registration.sources[0]: source \"tickets\" is a pretix source; proof "
	           "lms_code needs a canvas or moodle source");
	expect_one(
	    cfg,
	    G " \"roles\": {\"x\": {\"name\": \"X\"}},\n"
	      " \"role_rules\": [{\"source\": \"moodle\", \"items\": [1], \"roles\": [\"x\"]}]}",
	    "3:28: role_rules[0].source: source \"moodle\" is a moodle source; a role rule "
	    "needs a pretix source");
	expect_one(cfg,
	           G
	           " \"registration\": {\"sources\": [\"canvas\"], \"proof\": \"staff_approval\",\n"
	           "  \"channels\": {\"registration\": \"r\", \"help\": \"h\", \"audit\": \"a\"}}}",
	           "3:15: registration.channels: proof staff_approval needs an approval channel");
	/* templates and texts */
	expect_one(
	    cfg,
	    G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"source\": \"canvas\", \"groups\": "
	      "[1]}, \"role\": \"{city} A\"}]}",
	    "2:82: cohorts[0].role: unknown variable {city} (known here: {name})");
	expect_one(cfg, G " \"cohort_sets\": [{\"channels\": {\"text\": \"{program\"}}]}",
	           "2:40: cohort_sets[0].channels.text: a { is not closed (write {{ for a brace)");
	expect_one(cfg, G " \"texts\": {\"registerd\": \"Done\"}}",
	           "2:12: texts: unknown text \"registerd\" (did you mean \"registered\"?)");
	expect_one(cfg, G " \"texts\": {\"register_button\": \"Go {name}\"}}",
	           "2:31: texts.register_button: unknown variable {name} (this text takes none)");
	/* Discord's limits */
	char big[4000];
	snprintf(
	    big, sizeof(big),
	    G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"B\"}, \"role\": \"{name} "
	      "%0100d\"}]}",
	    0);
	expect_one(cfg, big,
	           "2:60: cohorts[0].role: \"A 00000000000000000000000000000000000000...\" is 102 "
	           "characters; Discord allows 100");
	size_t n = (size_t)snprintf(big, sizeof(big), G " \"cohorts\": [\n");
	for (int i = 0; i < 26; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		                      "  {\"name\": \"C%d\", \"match\": {\"cohort\": \"%d\"}, "
		                      "\"channels\": {\"category\": \"Shared\"}}%s\n",
		                      i, i, i < 25 ? "," : "");
	snprintf(big + n, sizeof(big) - n, "]}");
	expect_one(cfg, big,
	           "28:3: cohorts[25]: category \"Shared\" would hold more than 50 channels, "
	           "Discord's limit");
	config_free(cfg);
}

static void test_map_directory(void **state)
{
	struct config *cfg = test_config();
	char dir[96];
	struct diags d = {0};
	struct err e = {0};
	snprintf(dir, sizeof(dir), "%s", th_tmpdir());
	/* two files for one server; the schema itself and subfolders are not mappings */
	write_in(dir, "a.json", G " \"label\": \"A\"}");
	write_in(dir, "b.json", G " \"label\": \"B\"}");
	write_in(dir, "mapping.schema.json", "not json");
	char sub[200];
	snprintf(sub, sizeof(sub), "%s/examples", dir);
	mkdir(sub, 0700);
	write_in(sub, "c.json", "not json");
	assert_null(mappings_load(dir, cfg, 1, &d, &e));
	assert_int_equal(d.n, 1);
	char got[1400], want[600];
	diags_format(&d, 0, got, sizeof(got));
	snprintf(want, sizeof(want),
	         "%s/b.json:1:11: guild: \"912345678901234567\" is already mapped by %s/a.json",
	         dir, dir);
	assert_string_equal(got, want);
	diags_clear(&d);

	/* a missing directory holds nothing, unless the configuration names it */
	snprintf(sub, sizeof(sub), "%s/none", dir);
	struct mappings *m = mappings_load(sub, cfg, 0, &d, &e);
	assert_non_null(m);
	assert_int_equal(m->nfiles, 0);
	mappings_free(m);
	assert_null(mappings_load(sub, cfg, 1, &d, &e));
	assert_non_null(strstr(e.msg, "No such file or directory"));
	assert_int_equal(d.n, 0);
	config_free(cfg);
}

/* `check` through the binary: the examples pass, a broken file fails with its position. */
static void test_map_check_binary(void **state)
{
	char dir[64];
	const char *a[] = {
	    "", "check", "--mappings", "mappings/examples", "deploy/config.example.json", NULL};
	assert_int_equal(th_run(a, NULL, dir, sizeof(dir)), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "mappings/examples: OK (2 file(s), 2 guild(s), 3 cohort(s), 1 "
	                            "cohort set(s))"));
	free(out);

	char mdir[96];
	snprintf(mdir, sizeof(mdir), "%s", th_tmpdir());
	write_in(mdir, "broken.json",
	         G " \"cohorts\": [{\"name\": \"A\", \"match\": {\"city\": \"B\"},\n"
	           "   \"time_zone\": \"Nowhere/City\", \"staff\": [\"coach\"]}]}");
	const char *b[] = {"", "check", "--mappings", mdir, "deploy/config.example.json", NULL};
	assert_int_equal(th_run(b, NULL, dir, sizeof(dir)), 1);
	char *err = th_read(dir, "stderr");
	char want[1000];
	snprintf(want, sizeof(want),
	         "%s/broken.json:3:17: cohorts[0].time_zone: \"Nowhere/City\" is not a known IANA "
	         "time zone (such as Europe/Berlin)\n"
	         "%s/broken.json:3:43: cohorts[0].staff[0]: staff role \"coach\" is not defined in "
	         "staff_roles\n",
	         mdir, mdir);
	assert_string_equal(err, want);
	free(err);

	/* a config whose mappings_dir does not exist */
	const char *cfg = th_write_file(1, "c.json", "{\"mappings_dir\": \"missing\"}");
	const char *c[] = {"", "check", cfg, NULL};
	assert_int_equal(th_run(c, NULL, dir, sizeof(dir)), 1);
	err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "missing: No such file or directory"));
	free(err);
}

/* `run` refuses to start on a broken mapping file, before it needs a database. */
static void test_map_run_refuses(void **state)
{
	char mdir[96], dir[64], cfgtext[300];
	snprintf(mdir, sizeof(mdir), "%s", th_tmpdir());
	write_in(mdir, "m.json", G " \"texts\": {\"registerd\": \"x\"}}");
	snprintf(cfgtext, sizeof(cfgtext), "{\"mappings_dir\": \"%s\"}", mdir);
	const char *cfg = th_write_file(1, "c.json", cfgtext);
	const char *a[] = {"", "--config", cfg, "run", NULL};
	assert_int_equal(
	    th_run(a, (const char *[]){"DATABASE_URL=postgres://unused", NULL}, dir, sizeof(dir)),
	    1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "m.json:2:12: texts: unknown text \\\"registerd\\\""));
	assert_non_null(strstr(err, "not starting"));
	free(err);
}

/* SIGHUP with a broken mapping file: rejected with its position; the running mappings stay,
 * and a fixed file is then taken. */
static void test_map_reload_keeps_old(void **state)
{
	char db[1024], dir[96], sdir[96], mdir[96], cfgtext[400], envdb[1100], envapi[128];
	int sim_port;
	th_fresh_db(db, sizeof(db));
	const char *sargs[] = {"--ratelimits", "fast", "--token", "sim-token", NULL};
	pid_t sim = th_sim_start(sargs, &sim_port, sdir, sizeof(sdir));
	snprintf(mdir, sizeof(mdir), "%s", th_tmpdir());
	write_in(mdir, "m.json", G " \"label\": \"one\"}");
	snprintf(cfgtext, sizeof(cfgtext),
	         "{\"http\": {\"listen\": \"127.0.0.1:0\"}, \"mappings_dir\": \"%s\"}", mdir);
	const char *cfg = th_write_file(2, "c.json", cfgtext);
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *env[] = {envdb, envapi, "DISCORD_TOKEN=sim-token", "COHORTBRIDGE_LOG_LEVEL",
	                     NULL};
	const char *a[] = {"", "--config", cfg, "run", NULL};
	pid_t pid = th_spawn(a, env, dir, sizeof(dir));
	assert_true(th_wait_for(dir, "stderr", "msg=\"mappings loaded\"", 10000));
	assert_true(th_wait_for(dir, "stderr", "database ready", 10000));

	write_in(mdir, "m.json", G " \"cohorts\": [{\"name\": \"A\", \"match\": {}}]}");
	kill(pid, SIGHUP);
	assert_true(th_wait_for(dir, "stderr", "mappings rejected", 5000));
	char *log = th_read(dir, "stderr");
	assert_non_null(strstr(log, "m.json:2:37: cohorts[0].match: give groups (with source) or "
	                            "at least one of city, program, cohort"));
	assert_null(strstr(log, "configuration reloaded"));
	free(log);
	int port = th_listen_port(dir, 1000);
	assert_int_equal(th_http_get(port, "/healthz", NULL) > 0, 1);

	write_in(mdir, "m.json", G " \"label\": \"two\"}");
	write_in(mdir, "n.json", "{\"guild\": \"923456789012345678\"}");
	kill(pid, SIGHUP);
	assert_true(th_wait_for(dir, "stderr", "configuration reloaded", 5000));
	assert_true(th_wait_for(dir, "stderr", "files=2", 1000));
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	th_sim_stop(sim);
}

GROUP(group_mappings)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_schema_in_subset), cmocka_unit_test(test_map_examples_load),
	    cmocka_unit_test(test_map_expand_set),       cmocka_unit_test(test_map_render),
	    cmocka_unit_test(test_map_errors),           cmocka_unit_test(test_map_directory),
	    cmocka_unit_test(test_map_check_binary),     cmocka_unit_test(test_map_run_refuses),
	    cmocka_unit_test(test_map_reload_keeps_old),
	};
	return RUN_GROUP(tests);
}
