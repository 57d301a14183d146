/* discord-sim, the local Discord every other test runs against: its command line, and three
 * checks from outside — Discord's REST rules, its gateway rules, and Debian's discord.py
 * running unmodified against it; and the fake Canvas, Moodle and pretix it serves beside
 * Discord, checked against the contract the connectors are written to. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static const char *sim_bin(void)
{
	const char *b = getenv("DISCORD_SIM_BIN");
	return b && *b ? b : "build/discord-sim";
}

/* Runs a Python check script against port; it prints its verdict. */
static void run_check(const char *script, int port, const char *extra)
{
	char portbuf[16], dir[96];
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	const char *argv[] = {"", script, portbuf, extra, NULL};
	int rc = th_wait(th_spawn_bin("/usr/bin/python3", argv, NULL, dir, sizeof(dir)), 120000);
	char *out = th_read(dir, "stdout");
	char *err = th_read(dir, "stderr");
	char verdict[4096];
	snprintf(verdict, sizeof(verdict), "%s exited %d:\n%s\n%.2000s", script, rc, out, err);
	int ok = rc == 0 && strstr(out, ": OK") != NULL;
	free(out);
	free(err);
	if (!ok)
		fail_msg("%s", verdict);
}

static void test_sim_command_line(void **state)
{
	char dir[96];
	const char *help[] = {"", "--help", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), help, NULL, dir, sizeof(dir)), 5000), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "usage: discord-sim --listen"));
	free(out);
	const char *none[] = {"", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), none, NULL, dir, sizeof(dir)), 5000), 2);
	const char *bad[] = {"", "--listen", "127.0.0.1:0", "--ratelimits", "sometimes", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), bad, NULL, dir, sizeof(dir)), 5000), 2);
	const char *remote[] = {"", "--listen", "10.1.2.3:80", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), remote, NULL, dir, sizeof(dir)), 5000), 2);
	const char *world[] = {"", "--listen", "127.0.0.1:0", "--world", "/nonexistent.json", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), world, NULL, dir, sizeof(dir)), 5000), 1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "cannot load world"));
	free(err);

	/* seeded: the same ids every time */
	int p1, p2;
	char d1[96], d2[96], *s1, *s2;
	const char *seeded[] = {"--seed", "7", NULL};
	pid_t a = th_sim_start(seeded, &p1, d1, sizeof(d1));
	pid_t b = th_sim_start(seeded, &p2, d2, sizeof(d2));
	assert_int_equal(th_http_get(p1, "/_sim/state", &s1), 200);
	assert_int_equal(th_http_get(p2, "/_sim/state", &s2), 200);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	th_sim_stop(a);
	th_sim_stop(b);
}

static void test_sim_rest(void **state)
{
	char dir[96], rec[160];
	int port;
	snprintf(rec, sizeof(rec), "%s/record.jsonl", th_tmpdir());
	const char *args[] = {"--record", rec, NULL};
	pid_t pid = th_sim_start(args, &port, dir, sizeof(dir));
	run_check("tests/sim/rest_check.py", port, rec);
	th_sim_stop(pid);
}

static void test_sim_gateway(void **state)
{
	char dir[96];
	int port;
	const char *args[] = {"--ratelimits",
	                      "fast",
	                      "--heartbeat-ms",
	                      "500",
	                      "--world",
	                      "tests/sim/worlds/large.json",
	                      NULL};
	pid_t pid = th_sim_start(args, &port, dir, sizeof(dir));
	run_check("tests/sim/gateway_check.py", port, NULL);
	th_sim_stop(pid);
}

static void test_sim_discordpy(void **state)
{
	char dir[96];
	int port;
	pid_t pid = th_sim_start(NULL, &port, dir, sizeof(dir));
	run_check("tests/sim/discordpy_check.py", port, NULL);
	th_sim_stop(pid);
}

/* --- the fake sources (Canvas, Moodle, pretix) served by the simulator --- */

struct src_res {
	long status;
	char *body, *headers;
	double seconds;
};

static size_t src_collect(char *data, size_t size, size_t n, void *ud)
{
	return fwrite(data, size, n, (FILE *)ud);
}

/* A request with headers (NULL-terminated "Name: value" lines) to a path on the simulator or
 * to an absolute URL; the answer's status, headers and body into res. */
static void src_request(int port, const char *method, const char *url, const char *const *hdrs,
                        const char *body, struct src_res *res)
{
	char full[4096];
	size_t blen = 0, hlen = 0;
	struct curl_slist *h = NULL;
	if (strncmp(url, "http", 4) == 0)
		snprintf(full, sizeof(full), "%s", url);
	else
		snprintf(full, sizeof(full), "http://127.0.0.1:%d%s", port, url);
	memset(res, 0, sizeof(*res));
	FILE *b = open_memstream(&res->body, &blen), *hd = open_memstream(&res->headers, &hlen);
	CURL *c = curl_easy_init();
	for (const char *const *x = hdrs; x && *x; x++)
		h = curl_slist_append(h, *x);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, src_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, src_collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, hd);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
		curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &res->seconds);
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	fclose(b);
	fclose(hd);
}

static void src_res_free(struct src_res *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

/* A header's value (the name without case), or NULL; static buffer. */
static const char *src_hdr(const struct src_res *r, const char *name)
{
	static char value[4096];
	size_t n = strlen(name);
	for (const char *l = r->headers; l && *l;) {
		const char *eol = strstr(l, "\r\n");
		size_t len = eol ? (size_t)(eol - l) : strlen(l);
		if (len > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1;
			while (*v == ' ')
				v++;
			snprintf(value, sizeof(value), "%.*s", (int)(len - (size_t)(v - l)), v);
			return value;
		}
		l += len + (eol ? 2 : 0);
	}
	return NULL;
}

/* The rel="next" URL of a Link header, or NULL; static buffer. */
static const char *src_link_next(const struct src_res *r)
{
	static char url[4096];
	const char *link = src_hdr(r, "Link");
	const char *rel = link ? strstr(link, "; rel=\"next\"") : NULL;
	if (!rel)
		return NULL;
	const char *open = rel;
	while (open > link && *open != '<')
		open--;
	snprintf(url, sizeof(url), "%.*s", (int)(rel - open - 2), open + 1);
	return url;
}

static json_t *src_json_body(const struct src_res *r)
{
	return r->body ? json_loads(r->body, JSON_DECODE_ANY, NULL) : NULL;
}

static const char *const canvas_auth[] = {"Authorization: Bearer source-token", NULL};
static const char *const pretix_auth[] = {"Authorization: Token source-token", NULL};

/* Canvas: pagination to the end by Link, string ids, the 401, the throttle's 403. */
static void sources_canvas(int port, json_t *campus)
{
	struct src_res r;
	/* the active students of course 1, from the campus itself */
	size_t want = 0, i;
	json_t *e;
	json_array_foreach(json_object_get(json_object_get(campus, "canvas"), "enrollments"), i, e)
		want += json_integer_value(json_object_get(e, "course_id")) == 1 &&
		        strcmp(json_string_value(json_object_get(e, "type")),
		               "StudentEnrollment") == 0 &&
		        strcmp(json_string_value(json_object_get(e, "enrollment_state")),
		               "active") == 0;
	assert_true(want > 10);
	char url[4096];
	snprintf(url, sizeof(url),
	         "/canvas/api/v1/courses/1/enrollments?type[]=StudentEnrollment&state[]=active"
	         "&per_page=7");
	size_t seen = 0;
	int pages = 0;
	for (; pages < 50; pages++) {
		src_request(port, "GET", url, canvas_auth, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_non_null(src_hdr(&r, "X-Request-Cost"));
		assert_non_null(src_hdr(&r, "X-Rate-Limit-Remaining"));
		json_t *page = src_json_body(&r);
		assert_true(json_is_array(page) && json_array_size(page) <= 7);
		json_array_foreach(page, i, e) {
			assert_string_equal(json_string_value(json_object_get(e, "type")),
			                    "StudentEnrollment");
			assert_true(json_is_integer(json_object_get(e, "id")));
			assert_non_null(
			    json_object_get(json_object_get(e, "user"), "sortable_name"));
		}
		seen += json_array_size(page);
		json_decref(page);
		const char *next = src_link_next(&r);
		if (!next) {
			src_res_free(&r);
			break;
		}
		/* absolute, on the simulator itself */
		char origin[64];
		snprintf(origin, sizeof(origin), "http://127.0.0.1:%d/canvas/", port);
		assert_true(strncmp(next, origin, strlen(origin)) == 0);
		snprintf(url, sizeof(url), "%s", next);
		src_res_free(&r);
	}
	assert_int_equal(seen, want);
	assert_int_equal(pages + 1, (int)((want + 6) / 7));

	/* the instructor is a TeacherEnrollment: a student filter leaves them out */
	src_request(port, "GET",
	            "/canvas/api/v1/courses/1/users?enrollment_type[]=student&per_page=50",
	            canvas_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "\"id\":900,"));
	assert_null(strstr(r.body, "\"email\""));
	src_res_free(&r);
	src_request(port, "GET", "/canvas/api/v1/courses/1/users?include[]=email&per_page=50",
	            canvas_auth, NULL, &r);
	assert_non_null(strstr(r.body, "\"id\":900,"));
	assert_non_null(strstr(r.body, "@example.org\""));
	src_res_free(&r);

	/* ids as strings on request */
	const char *const strings[] = {"Authorization: Bearer source-token",
	                               "Accept: application/json+canvas-string-ids", NULL};
	src_request(port, "GET", "/canvas/api/v1/courses/1/assignments?include[]=overrides",
	            strings, NULL, &r);
	json_t *list = src_json_body(&r);
	assert_true(json_is_string(json_object_get(json_array_get(list, 0), "id")));
	assert_true(json_is_string(json_object_get(json_array_get(list, 0), "course_id")));
	json_decref(list);
	assert_non_null(strstr(r.body, "\"student_ids\":[\""));
	src_res_free(&r);

	/* a refused token: 401 with WWW-Authenticate */
	const char *const bad[] = {"Authorization: Bearer wrong", NULL};
	src_request(port, "GET", "/canvas/api/v1/courses", bad, NULL, &r);
	assert_int_equal(r.status, 401);
	assert_non_null(src_hdr(&r, "WWW-Authenticate"));
	assert_non_null(strstr(src_hdr(&r, "WWW-Authenticate"), "Bearer realm=\"canvas-lms\""));
	assert_non_null(strstr(r.body, "Invalid access token."));
	assert_non_null(src_hdr(&r, "X-Rate-Limit-Remaining"));
	src_res_free(&r);
	/* a course the token may not see: 401 without it */
	src_request(port, "GET", "/canvas/api/v1/courses/3/users", canvas_auth, NULL, &r);
	assert_int_equal(r.status, 401);
	assert_null(src_hdr(&r, "WWW-Authenticate"));
	src_res_free(&r);

	/* throttling, forced: a small bucket that does not refill */
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/faults",
	                             "{\"source\":\"canvas\",\"throttle\":{\"bucket\":100,"
	                             "\"refill\":0,\"cost\":30}}",
	                             NULL),
	                 200);
	long throttled = 0;
	for (int k = 0; k < 6 && !throttled; k++) {
		src_request(port, "GET", "/canvas/api/v1/courses", canvas_auth, NULL, &r);
		if (r.status == 403) {
			throttled = k + 1;
			assert_string_equal(r.body, "403 Forbidden (Rate Limit Exceeded)\n");
			assert_non_null(strstr(src_hdr(&r, "Content-Type"), "text/plain"));
			assert_non_null(src_hdr(&r, "X-Rate-Limit-Remaining"));
		} else {
			assert_int_equal(r.status, 200);
		}
		src_res_free(&r);
	}
	assert_int_equal(throttled, 3); /* 30 + 30 used, and 50 held up front do not fit in 100 */
	assert_int_equal(th_sim_call(port, "DELETE", "/_sim/sources/faults", NULL, NULL), 204);
	src_request(port, "GET", "/canvas/api/v1/courses", canvas_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	src_res_free(&r);

	/* a message through conversations, recorded for tests */
	src_request(port, "POST", "/canvas/api/v1/conversations", canvas_auth,
	            "recipients[]=1001&subject=Welcome&body=Hello%20there", &r);
	assert_int_equal(r.status, 201);
	list = src_json_body(&r);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	src_res_free(&r);
	json_t *msgs = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/canvas/messages", NULL, &msgs),
	                 200);
	assert_int_equal(json_array_size(msgs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "body")),
	                    "Hello there");
	json_decref(msgs);
}

static const char moodle_path[] = "/moodle/webservice/rest/server.php";

/* Moodle: XML by default and JSON on request carry the same data; exceptions in both; paging
 * that ends at a short page. */
static void sources_moodle(int port, json_t *campus)
{
	struct src_res x, j;
	char url[512];
	snprintf(url, sizeof(url),
	         "%s?wstoken=source-token&wsfunction=mod_assign_get_assignments"
	         "&courseids[0]=1",
	         moodle_path);
	src_request(port, "GET", url, NULL, NULL, &x);
	snprintf(url, sizeof(url),
	         "%s?wstoken=source-token&wsfunction=mod_assign_get_assignments"
	         "&courseids[0]=1&moodlewsrestformat=json",
	         moodle_path);
	src_request(port, "GET", url, NULL, NULL, &j);
	assert_int_equal(x.status, 200);
	assert_non_null(strstr(src_hdr(&x, "Content-Type"), "application/xml"));
	assert_non_null(strstr(src_hdr(&j, "Content-Type"), "application/json"));
	assert_true(strncmp(x.body,
	                    "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n<SINGLE>\n",
	                    58) == 0);
	json_t *doc = src_json_body(&j);
	json_t *as =
	    json_object_get(json_array_get(json_object_get(doc, "courses"), 0), "assignments");
	assert_int_equal(json_array_size(as), 4);
	size_t i;
	json_t *a;
	json_array_foreach(as, i, a) {
		/* every JSON value is in the XML, text escaped once */
		char want[512], esc[256];
		const char *name = json_string_value(json_object_get(a, "name"));
		size_t o = 0;
		for (const char *p = name; *p && o + 6 < sizeof(esc); p++) {
			const char *rep = *p == '&'   ? "&amp;"
			                  : *p == '<' ? "&lt;"
			                  : *p == '>' ? "&gt;"
			                              : NULL;
			if (rep) {
				memcpy(esc + o, rep, strlen(rep));
				o += strlen(rep);
			} else
				esc[o++] = *p;
		}
		esc[o] = '\0';
		snprintf(want, sizeof(want), "<KEY name=\"name\"><VALUE>%s</VALUE>\n</KEY>", esc);
		assert_non_null(strstr(x.body, want));
		snprintf(want, sizeof(want), "<KEY name=\"duedate\"><VALUE>%lld</VALUE>\n</KEY>",
		         (long long)json_integer_value(json_object_get(a, "duedate")));
		assert_non_null(strstr(x.body, want));
	}
	assert_non_null(strstr(x.body, "(HTML &amp; CSS)"));
	assert_non_null(strstr(x.body, "<KEY name=\"configs\"><MULTIPLE>\n</MULTIPLE>\n</KEY>"));
	json_decref(doc);
	src_res_free(&x);
	src_res_free(&j);

	/* a refused token: an exception with HTTP 200, in either format */
	src_request(port, "POST", moodle_path, NULL,
	            "wstoken=wrong&wsfunction=core_cohort_get_cohorts", &x);
	assert_int_equal(x.status, 200);
	assert_non_null(strstr(x.body,
	                       "<EXCEPTION class=\"moodle_exception\">\n<ERRORCODE>invalidtoken"
	                       "</ERRORCODE>\n<MESSAGE>Invalid token - token not found"));
	src_res_free(&x);
	src_request(port, "POST", moodle_path, NULL,
	            "wstoken=wrong&wsfunction=core_cohort_get_cohorts&moodlewsrestformat=json", &j);
	assert_int_equal(j.status, 200);
	doc = src_json_body(&j);
	assert_string_equal(json_string_value(json_object_get(doc, "errorcode")), "invalidtoken");
	assert_string_equal(json_string_value(json_object_get(doc, "exception")),
	                    "moodle_exception");
	json_decref(doc);
	src_res_free(&j);
	src_request(port, "POST", moodle_path, NULL,
	            "wstoken=source-token&wsfunction=core_enrol_get_enrolled_users&courseid=x"
	            "&moodlewsrestformat=json",
	            &j);
	assert_non_null(strstr(j.body, "\"errorcode\":\"invalidparameter\""));
	src_res_free(&j);

	/* limitfrom/limitnumber: no total; a short page ends it */
	size_t want = 0;
	json_t *e;
	json_array_foreach(json_object_get(json_object_get(campus, "moodle"), "enrolments"), i, e)
		want += json_integer_value(json_object_get(e, "courseid")) == 1;
	size_t seen = 0, got = 8;
	int pages = 0;
	while (got == 8 && pages < 50) {
		char body[512];
		snprintf(
		    body, sizeof(body),
		    "wstoken=source-token&wsfunction=core_enrol_get_enrolled_users"
		    "&moodlewsrestformat=json&courseid=1&options%%5B0%%5D%%5Bname%%5D=limitfrom"
		    "&options%%5B0%%5D%%5Bvalue%%5D=%zu&options%%5B1%%5D%%5Bname%%5D=limitnumber"
		    "&options%%5B1%%5D%%5Bvalue%%5D=8",
		    seen);
		src_request(port, "POST", moodle_path, NULL, body, &j);
		doc = src_json_body(&j);
		assert_true(json_is_array(doc));
		got = json_array_size(doc);
		if (got)
			assert_non_null(json_object_get(json_array_get(doc, 0), "roles"));
		seen += got;
		pages++;
		json_decref(doc);
		src_res_free(&j);
	}
	assert_int_equal(seen, want);
	assert_true(got < 8);

	/* an instant message, recorded */
	src_request(port, "POST", moodle_path, NULL,
	            "wstoken=source-token&wsfunction=core_message_send_instant_messages"
	            "&moodlewsrestformat=json&messages%5B0%5D%5Btouserid%5D=1002"
	            "&messages%5B0%5D%5Btext%5D=Hi&messages%5B0%5D%5Btextformat%5D=1",
	            &j);
	assert_non_null(strstr(j.body, "\"msgid\":"));
	src_res_free(&j);
	json_t *msgs = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/moodle/messages", NULL, &msgs),
	                 200);
	assert_int_equal(json_array_size(msgs), 1);
	json_decref(msgs);
}

/* pretix: pages of 50 with absolute links, X-Page-Generated, and an incremental fetch that
 * returns exactly what changed. */
static void sources_pretix(int port, json_t *campus)
{
	static const char orders[] = "/pretix/api/v1/organizers/campus/events/conf2026/orders/";
	struct src_res r;
	size_t want = json_array_size(json_object_get(json_object_get(campus, "pretix"), "orders"));
	assert_true(want > 50);
	src_request(port, "GET", orders, pretix_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	char generated[64];
	assert_non_null(src_hdr(&r, "X-Page-Generated"));
	snprintf(generated, sizeof(generated), "%s", src_hdr(&r, "X-Page-Generated"));
	json_t *page = src_json_body(&r);
	assert_int_equal(json_integer_value(json_object_get(page, "count")), want);
	assert_int_equal(json_array_size(json_object_get(page, "results")), 50);
	assert_true(json_is_null(json_object_get(page, "previous")));
	char origin[64], next[1024];
	snprintf(origin, sizeof(origin), "http://127.0.0.1:%d/pretix/", port);
	const char *n = json_string_value(json_object_get(page, "next"));
	assert_non_null(n);
	assert_true(strncmp(n, origin, strlen(origin)) == 0);
	snprintf(next, sizeof(next), "%s", n);
	json_t *first = json_array_get(json_object_get(page, "results"), 0);
	assert_non_null(json_object_get(first, "code"));
	assert_non_null(json_object_get(first, "last_modified"));
	json_t *pos = json_array_get(json_object_get(first, "positions"), 0);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(pos, "attendee_name_parts"), "_scheme")),
	                    "given_family");
	json_decref(page);
	src_res_free(&r);
	src_request(port, "GET", next, pretix_auth, NULL, &r);
	page = src_json_body(&r);
	assert_int_equal(json_array_size(json_object_get(page, "results")), want - 50);
	assert_true(json_is_null(json_object_get(page, "next")));
	assert_non_null(src_hdr(&r, "X-Page-Generated"));
	json_decref(page);
	src_res_free(&r);

	/* one order changes; the next incremental fetch sees exactly that one */
	const char *code = json_string_value(json_object_get(
	    json_array_get(json_object_get(campus, "learners"), 4), "pretix_order"));
	char body[128], url[512];
	snprintf(body, sizeof(body), "{\"order\":\"%s\",\"status\":\"c\"}", code);
	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/mutate", body, NULL), 200);
	CURL *c = curl_easy_init();
	char *since = curl_easy_escape(c, generated, 0);
	snprintf(url, sizeof(url), "%s?modified_since=%s", orders, since);
	curl_free(since);
	curl_easy_cleanup(c);
	src_request(port, "GET", url, pretix_auth, NULL, &r);
	page = src_json_body(&r);
	assert_int_equal(json_integer_value(json_object_get(page, "count")), 1);
	json_t *o = json_array_get(json_object_get(page, "results"), 0);
	assert_string_equal(json_string_value(json_object_get(o, "code")), code);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "c");
	json_decref(page);
	src_res_free(&r);

	const char *const bad[] = {"Authorization: Token wrong", NULL};
	src_request(port, "GET", orders, bad, NULL, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.body, "{\"detail\":\"Invalid token.\"}");
	src_res_free(&r);
}

/* Faults: a status once, a cut body, the wrong content type, latency. */
static void sources_faults(int port)
{
	static const char items[] = "/pretix/api/v1/organizers/campus/events/conf2026/items/";
	struct src_res r;
	assert_int_equal(
	    th_sim_call(port, "POST", "/_sim/sources/faults",
	                "{\"source\":\"pretix\",\"status\":500,\"share\":1,\"count\":1}", NULL),
	    200);
	src_request(port, "GET", items, pretix_auth, NULL, &r);
	assert_int_equal(r.status, 500);
	src_res_free(&r);
	src_request(port, "GET", items, pretix_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	src_res_free(&r);

	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/faults",
	                             "{\"source\":\"canvas\",\"truncate\":true,\"count\":1}", NULL),
	                 200);
	src_request(port, "GET", "/canvas/api/v1/courses", canvas_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(strtol(src_hdr(&r, "Content-Length"), NULL, 10), (long)strlen(r.body));
	json_t *broken = src_json_body(&r);
	assert_null(broken);
	src_res_free(&r);

	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/faults",
	                             "{\"source\":\"moodle\",\"content_type\":\"text/html\"}",
	                             NULL),
	                 200);
	src_request(port, "POST", moodle_path, NULL,
	            "wstoken=source-token&wsfunction=core_cohort_get_cohorts", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(src_hdr(&r, "Content-Type"), "text/html"));
	assert_true(strncmp(r.body, "<!DOCTYPE html>", 15) == 0);
	src_res_free(&r);

	assert_int_equal(th_sim_call(port, "POST", "/_sim/sources/faults",
	                             "{\"source\":\"all\",\"latency_ms\":300}", NULL),
	                 200);
	src_request(port, "GET", items, pretix_auth, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(r.seconds >= 0.28);
	src_res_free(&r);
	assert_int_equal(th_sim_call(port, "DELETE", "/_sim/sources/faults", NULL, NULL), 204);
	src_request(port, "GET", items, pretix_auth, NULL, &r);
	assert_true(r.seconds < 0.28);
	src_res_free(&r);

	/* the request log: every source seen, one request at a time */
	json_t *log = NULL;
	assert_int_equal(th_sim_call(port, "GET", "/_sim/sources/requests", NULL, &log), 200);
	json_t *counts = json_object_get(log, "counts"),
	       *most = json_object_get(log, "max_in_flight");
	assert_true(json_integer_value(json_object_get(counts, "canvas")) > 0);
	assert_true(json_integer_value(json_object_get(counts, "moodle")) > 0);
	assert_true(json_integer_value(json_object_get(counts, "pretix")) > 0);
	assert_int_equal(json_integer_value(json_object_get(most, "canvas")), 1);
	json_t *last = json_array_get(json_object_get(log, "requests"),
	                              json_array_size(json_object_get(log, "requests")) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "path")), items);
	json_decref(log);
}

static void test_sim_sources(void **state)
{
	char d1[96], d2[96], d3[96];
	int p1, p2, p3;
	const char *seven[] = {"--seed", "7", "--learners", "60", NULL};
	const char *eight[] = {"--seed", "8", "--learners", "60", NULL};
	pid_t a = th_sim_start(seven, &p1, d1, sizeof(d1));
	pid_t b = th_sim_start(seven, &p2, d2, sizeof(d2));
	pid_t c = th_sim_start(eight, &p3, d3, sizeof(d3));

	/* the same seed, the same campus; another seed, another */
	char *s1, *s2, *s3;
	assert_int_equal(th_http_get(p1, "/_sim/sources", &s1), 200);
	assert_int_equal(th_http_get(p2, "/_sim/sources", &s2), 200);
	assert_int_equal(th_http_get(p3, "/_sim/sources", &s3), 200);
	assert_string_equal(s1, s2);
	assert_string_not_equal(s1, s3);
	json_t *campus = json_loads(s1, 0, NULL);
	free(s1);
	free(s2);
	free(s3);
	assert_non_null(campus);
	assert_int_equal(json_array_size(json_object_get(campus, "learners")), 60);
	th_sim_stop(b);
	th_sim_stop(c);

	sources_canvas(p1, campus);
	sources_moodle(p1, campus);
	sources_pretix(p1, campus);
	sources_faults(p1);
	json_decref(campus);
	th_sim_stop(a);
}

GROUP(group_sim)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sim_command_line), cmocka_unit_test(test_sim_rest),
	    cmocka_unit_test(test_sim_gateway),      cmocka_unit_test(test_sim_discordpy),
	    cmocka_unit_test(test_sim_sources),
	};
	return RUN_GROUP(tests);
}
