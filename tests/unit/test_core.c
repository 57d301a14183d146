/* Logs, secrets, JSON positions, schema validation and the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

#include "config.h"
#include "jpos.h"
#include "jschema.h"
#include "log.h"
#include "secret.h"

static char *capture_log(void (*fn)(void))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	log_set_stream(m);
	int saved = log_threshold;
	fn();
	log_threshold = saved;
	log_set_stream(NULL);
	fclose(m);
	return buf;
}

static void emit_sample(void)
{
	log_threshold = LOGL_INFO;
	log_info("db", "connected to server", "host", "/tmp/x y", "quote", "a\"b\nc", "empty", "");
	log_debug("db", "must not appear");
}

static void test_log_format(void **state)
{
	char *out = capture_log(emit_sample);
	assert_non_null(strstr(out, " level=info mod=db msg=\"connected to server\" host=\"/tmp/x "
	                            "y\" quote=\"a\\\"b\\nc\" empty=\"\"\n"));
	assert_true(strncmp(out, "ts=20", 5) == 0);
	assert_null(strstr(out, "must not appear"));
	free(out);
}

static void test_log_levels(void **state)
{
	assert_int_equal(log_level_parse("trace"), LOGL_TRACE);
	assert_int_equal(log_level_parse("error"), LOGL_ERROR);
	assert_int_equal(log_level_parse("verbose"), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

static void emit_secret(void)
{
	log_threshold = LOGL_TRACE;
	log_error("gw", "identify with sekrit-token-123 failed", "payload",
	          "{\"token\":\"sekrit-token-123\"}");
}

static void test_log_redacts(void **state)
{
	secret_register("sekrit-token-123");
	char *out = capture_log(emit_secret);
	assert_null(strstr(out, "sekrit"));
	assert_non_null(strstr(out, "<redacted>"));
	free(out);
	char *s = secret_scrub("a sekrit-token-123 b sekrit-token-123");
	assert_string_equal(s, "a <redacted> b <redacted>");
	free(s);
	assert_null(secret_scrub("nothing here"));
	secret_clear();
}

static void test_secret_sources(void **state)
{
	char *v = NULL;
	struct err err = {0};
	setenv("CB_T_SECRET", "from-env-value", 1);
	assert_int_equal(secret_get("CB_T_SECRET", &v, &err), 0);
	assert_string_equal(v, "from-env-value");
	free(v);
	unsetenv("CB_T_SECRET");

	const char *path = th_write_file(0, "tok", "from-file-value\n");
	chmod(path, 0600);
	setenv("CB_T_SECRET_FILE", path, 1);
	assert_int_equal(secret_get("CB_T_SECRET", &v, &err), 0);
	assert_string_equal(v, "from-file-value");
	free(v);

	chmod(path, 0644);
	assert_int_equal(secret_get("CB_T_SECRET", &v, &err), -1);
	assert_non_null(strstr(err.msg, "readable by group or others"));
	assert_null(strstr(err.msg, "from-file-value"));
	unsetenv("CB_T_SECRET_FILE");
	assert_int_equal(secret_get("CB_T_SECRET", &v, &err), 1);
	secret_clear();
}

static void test_jpos_positions(void **state)
{
	const char *text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"ü\": true,\n\t\"c\": null\n}";
	struct err err = {0};
	struct jdoc *d = jdoc_parse("t.json", text, strlen(text), &err);
	assert_non_null(d);
	json_t *root = jdoc_root(d);
	struct jpos p = jdoc_pos(d, root, "a", 0, 1);
	assert_int_equal(p.line, 2);
	assert_int_equal(p.col, 3);
	p = jdoc_pos(d, root, "a", 0, 0);
	assert_int_equal(p.line, 2);
	assert_int_equal(p.col, 8);
	json_t *arr = json_object_get(root, "a");
	p = jdoc_pos(d, arr, NULL, 1, 0);
	assert_int_equal(p.col, 12);
	p = jdoc_pos(d, json_array_get(arr, 1), "b", 0, 0);
	assert_int_equal(p.col, 18);
	p = jdoc_pos(d, root, "\xc3\xbc", 0, 0); /* ü counts as one column */
	assert_int_equal(p.line, 3);
	assert_int_equal(p.col, 8);
	p = jdoc_pos(d, root, "c", 0, 0); /* singletons (null) are found by parent and key */
	assert_int_equal(p.line, 4);
	assert_int_equal(p.col, 7);
	jdoc_free(d);
}

static void test_jpos_errors(void **state)
{
	struct err err = {0};
	const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}";
	assert_null(jdoc_parse("bad.json", bad, strlen(bad), &err));
	assert_true(strncmp(err.msg, "bad.json:3:", 11) == 0);
	const char *dup = "{\"a\": 1,\n \"a\": 2}";
	assert_null(jdoc_parse("dup.json", dup, strlen(dup), &err));
	assert_non_null(strstr(err.msg, "dup.json:2:"));
	assert_non_null(strstr(err.msg, "duplicate"));
	assert_null(jdoc_load("/nonexistent/x.json", &err));
	assert_non_null(strstr(err.msg, "No such file"));
}

/* Validates text as a config file and returns all diagnostics joined by newlines. */
static char *check_config(const char *text)
{
	struct diags d = {0};
	struct err err = {0};
	const char *path = th_write_file(1, "cohortbridge.json", text);
	struct config *c = config_load(path, &d, &err);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!c && !d.n)
		fprintf(m, "%s\n", err.msg);
	for (size_t i = 0; i < d.n; i++) {
		char line[1400];
		diags_format(&d, i, line, sizeof(line));
		/* strip the temporary directory */
		const char *base = strstr(line, "cohortbridge.json");
		fprintf(m, "%s\n", base ? base : line);
	}
	fclose(m);
	config_free(c);
	diags_clear(&d);
	return buf;
}

static void test_config_valid(void **state)
{
	char *out = check_config(
	    "{\"http\": {\"listen\": \"127.0.0.1:9000\"}, \"log_level\": \"debug\",\n"
	    " \"sources\": [{\"name\": \"canvas-a\", \"type\": \"canvas\", \"url\": "
	    "\"https://c.example\", \"token_env\": \"CANVAS_A\"},\n"
	    "  {\"name\": \"roster\", \"type\": \"roster_file\", \"path\": \"r.csv\"},\n"
	    "  {\"name\": \"sim\", \"type\": \"moodle\", \"url\": \"http://127.0.0.1:8080\"}]}");
	assert_string_equal(out, "");
	free(out);
	struct diags d = {0};
	struct err err = {0};
	struct config *c = config_load(NULL, &d, &err);
	assert_non_null(c);
	assert_string_equal(c->http_host, "127.0.0.1");
	assert_int_equal(c->http_port, 8787);
	assert_int_equal(c->log_level, -1);
	assert_true(c->migrate_on_start);
	config_free(c);
}

static void test_config_errors(void **state)
{
	char *out = check_config(
	    "{\n"
	    "  \"http\": {\"listen\": \"localhost:80\", \"listn\": 1},\n"
	    "  \"log_level\": \"loud\",\n"
	    "  \"shutdown_timeout_ms\": \"10\",\n"
	    "  \"sources\": [\n"
	    "    {\"name\": \"a\", \"type\": \"canvas\", \"url\": \"http://canvas.example\"},\n"
	    "    {\"name\": \"a\", \"type\": \"moodle\"},\n"
	    "    {\"type\": \"pretix\", \"url\": \"https://p\", \"token_env\": \"lower\"}\n"
	    "  ],\n"
	    "  \"colour\": 1\n"
	    "}\n");
	/* Columns count code points from 1; a string's position is its opening quote. */
	const char *want =
	    "cohortbridge.json:2:22: http.listen: \"localhost:80\" is not an IPv4 address and port "
	    "such as 127.0.0.1:8787\n"
	    "cohortbridge.json:2:38: http: unknown key \"listn\" (did you mean \"listen\"?)\n"
	    "cohortbridge.json:3:16: log_level: \"loud\" is not one of \"error\", \"warn\", "
	    "\"info\", \"debug\", \"trace\"\n"
	    "cohortbridge.json:4:26: shutdown_timeout_ms: expected integer, got string\n"
	    "cohortbridge.json:6:44: sources[0].url: plain http:// is allowed only on loopback; "
	    "use https://\n"
	    "cohortbridge.json:7:5: sources[1]: a moodle source needs \"url\"\n"
	    "cohortbridge.json:7:14: sources[1].name: \"a\" is already used by sources[0] (line "
	    "6)\n"
	    "cohortbridge.json:8:5: sources[2]: missing required key \"name\"\n"
	    "cohortbridge.json:8:57: sources[2].token_env: \"lower\" is not an environment "
	    "variable name such as CANVAS_TOKEN\n"
	    "cohortbridge.json:10:3: unknown key \"colour\"\n";
	if (strcmp(out, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", out, want);
	free(out);
	out = check_config("{\"http\": {\"listen\": \"127.0.0.1:9000\",}}");
	assert_non_null(strstr(out, "cohortbridge.json:1:"));
	free(out);
	out = check_config("[]");
	assert_string_equal(out, "cohortbridge.json:1:1: expected object, got array\n");
	free(out);
}

static void test_schema_within_subset(void **state)
{
	json_error_t je;
	struct err err = {0};
	json_t *s = json_loads(config_schema_text(), 0, &je);
	assert_non_null(s);
	if (jschema_check_keywords(s, &err) != 0)
		fail_msg("%s", err.msg);
	json_decref(s);
}

static void test_example_config(void **state)
{
	struct diags d = {0};
	struct err err = {0};
	struct config *c = config_load("deploy/config.example.json", &d, &err);
	if (!c) {
		diags_print(&d, stderr);
		fail_msg("deploy/config.example.json: %s", err.msg);
	}
	config_free(c);
}

GROUP(group_core)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_format),           cmocka_unit_test(test_log_levels),
	    cmocka_unit_test(test_log_redacts),          cmocka_unit_test(test_secret_sources),
	    cmocka_unit_test(test_jpos_positions),       cmocka_unit_test(test_jpos_errors),
	    cmocka_unit_test(test_config_valid),         cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_schema_within_subset), cmocka_unit_test(test_example_config),
	};
	return RUN_GROUP(tests);
}
