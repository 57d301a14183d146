/* Canvas LMS: for each course, its sections, student enrollments, students, assignments with
 * their overrides, and submissions; one request at a time, following Link pagination. Each
 * student's effective due date is Canvas's own cached_due_date where a submission carries it,
 * and otherwise worked out from the overrides as Canvas does: the latest date among the
 * overrides that apply to the student (a section's or the student's own), the base date when
 * none applies; an override without a due_at key inherits the base date, a null one means no
 * date. Submissions after the first full sync come incrementally (submitted_since, counted
 * by Canvas's clock). */
#define _XOPEN_SOURCE 700 /* strptime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canvas.h"
#include "connector.h"
#include "fetch.h"

enum step { S_COURSES, S_SECTIONS, S_ENROLLMENTS, S_USERS, S_ASSIGNMENTS, S_SUBMISSIONS, S_DONE };

struct canvas {
	const struct source_env *env;
	struct fetcher *f;
	char base[512]; /* .../api/v1 */
	connector_done done;
	void *ud;
	json_t *courses; /* ids as strings */
	size_t course;
	enum step step;
	/* gathered per course, then folded into the snapshot */
	json_t *sections, *enrollments, *users, *assignments, *submissions;
	json_t *snap;
	char since[40], started[40];
	int server_started; /* started has been set from the first answer's Date */
};

static void next_step(struct canvas *c);

static void fail(struct canvas *c, const struct err *err)
{
	connector_done done = c->done;
	c->done = NULL;
	if (done)
		done(c->ud, NULL, err);
}

/* an id as a string, whether Canvas sent a number or (with string ids) a string */
static const char *id_str(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	return NULL;
}

/* the next incremental fetch counts from Canvas's clock, not ours */
static void on_first_page(void *ud, const struct httpc_response *resp)
{
	struct canvas *c = ud;
	char date[64];
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (c->server_started)
		return;
	c->server_started = 1;
	if (httpc_header(resp, "Date", date, sizeof(date)) &&
	    strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		time_t t = timegm(&tm) - 300;
		gmtime_r(&t, &tm);
		strftime(c->started, sizeof(c->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
}

static void on_list(void *ud, json_t *items, unsigned pages, const struct err *err)
{
	struct canvas *c = ud;
	if (err) {
		fail(c, err);
		return;
	}
	/* the whole list: keep it for the step */
	json_t **slot[] = {&c->courses, &c->sections,    &c->enrollments,
	                   &c->users,   &c->assignments, &c->submissions};
	if (c->step == S_COURSES) {
		json_t *ids = json_array();
		size_t i;
		json_t *o;
		char b[32];
		json_array_foreach(items, i, o) {
			const char *id = id_str(json_object_get(o, "id"), b, sizeof(b));
			if (id)
				json_array_append_new(ids, json_string(id));
		}
		json_decref(items);
		c->courses = ids;
	} else {
		json_decref(*slot[c->step]);
		*slot[c->step] = items;
	}
	c->step++;
	next_step(c);
}

static void get_list(struct canvas *c, const char *path_and_query, const char *what)
{
	char url[2048];
	snprintf(url, sizeof(url), "%s%s%sper_page=50", c->base, path_and_query,
	         strchr(path_and_query, '?') ? "&" : "?");
	struct fetch_list l = {.url = url, .what = what, .first = on_first_page};
	if (fetch_list(c->f, &l, on_list, c) != 0) {
		struct err e;
		err_set(&e, "%s: cannot start a request", c->env->cfg->name);
		fail(c, &e);
	}
}

/* --- folding one course into the snapshot ------------------------------------------------- */

static int applies(const json_t *ov, const char *student, const char *section)
{
	char b[32];
	const char *sec = id_str(json_object_get(ov, "course_section_id"), b, sizeof(b));
	if (sec && section && strcmp(sec, section) == 0)
		return 1;
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(ov, "student_ids"), i, s) {
		const char *id = id_str(s, b, sizeof(b));
		if (id && strcmp(id, student) == 0)
			return 1;
	}
	return 0;
}

/* ISO 8601 UTC times compare as strings; NULL (no date) is later than any */
static const json_t *later(const json_t *a, const json_t *b)
{
	if (json_is_null(a) || json_is_null(b))
		return json_null();
	return strcmp(json_string_value(a), json_string_value(b)) >= 0 ? a : b;
}

const json_t *canvas_due_at(const json_t *base, const json_t *overrides, const char *student,
                            const char *section)
{
	const json_t *best = NULL;
	size_t k;
	json_t *ov;
	if (!json_is_string(base))
		base = json_null();
	json_array_foreach(overrides, k, ov) {
		if (!applies(ov, student, section))
			continue;
		json_t *d = json_object_get(ov, "due_at");
		const json_t *date = !d ? base : (json_is_string(d) ? d : json_null());
		best = best ? later(best, date) : date;
	}
	return best ? best : base;
}

static void fold_course(struct canvas *c, const char *course)
{
	json_t *people = json_object_get(c->snap, "people"),
	       *members = json_object_get(c->snap, "memberships"),
	       *asgs = json_object_get(c->snap, "assignments"),
	       *dues = json_object_get(c->snap, "due_dates"),
	       *subs = json_object_get(c->snap, "submissions");
	json_t *section_names = json_object(), *student_section = json_object(),
	       *cached = json_object();
	size_t i;
	json_t *o, *x;
	char b1[32], b2[32];

	json_array_foreach(c->sections, i, o) {
		const char *id = id_str(json_object_get(o, "id"), b1, sizeof(b1));
		if (id)
			json_object_set(section_names, id, json_object_get(o, "name"));
	}
	json_array_foreach(c->enrollments, i, o) {
		const char *uid = id_str(json_object_get(o, "user_id"), b1, sizeof(b1));
		const char *sid = id_str(json_object_get(o, "course_section_id"), b2, sizeof(b2));
		const char *state = json_string_value(json_object_get(o, "enrollment_state"));
		const char *type = json_string_value(json_object_get(o, "type"));
		if (!uid || !sid || (type && strcmp(type, "StudentEnrollment") != 0))
			continue;
		int active =
		    state && (strcmp(state, "active") == 0 || strcmp(state, "invited") == 0);
		json_t *name = json_object_get(section_names, sid);
		json_array_append_new(members,
		                      json_pack("{s:s, s:s, s:s, s:O, s:s, s:s}", "person", uid,
		                                "kind", "section", "group", sid, "group_name",
		                                name ? name : json_null(), "status",
		                                active ? "active" : "withdrawn", "course", course));
		if (active)
			json_object_set_new(student_section, uid, json_string(sid));
	}
	json_array_foreach(c->users, i, o) {
		const char *uid = id_str(json_object_get(o, "id"), b1, sizeof(b1));
		if (!uid)
			continue;
		json_t *extra = json_object();
		const char *keys[] = {"sortable_name", "short_name", "login_id", "sis_user_id"};
		for (size_t m = 0; m < 4; m++)
			if (json_is_string(json_object_get(o, keys[m])))
				json_object_set(extra, keys[m], json_object_get(o, keys[m]));
		json_t *email = json_object_get(o, "email"), *tz = json_object_get(o, "time_zone");
		json_array_append_new(
		    people,
		    json_pack("{s:s, s:O, s:O, s:O, s:o}", "id", uid, "name",
		              json_object_get(o, "name") ? json_object_get(o, "name") : json_null(),
		              "email", email ? email : json_null(), "time_zone",
		              tz ? tz : json_null(), "extra", extra));
	}
	json_array_foreach(c->submissions, i, o) {
		const char *aid = id_str(json_object_get(o, "assignment_id"), b1, sizeof(b1));
		const char *uid = id_str(json_object_get(o, "user_id"), b2, sizeof(b2));
		if (!aid || !uid)
			continue;
		json_t *sub_at = json_object_get(o, "submitted_at");
		json_array_append_new(
		    subs, json_pack("{s:s, s:s, s:O, s:O, s:b, s:b, s:b}", "assignment", aid,
		                    "person", uid, "state",
		                    json_object_get(o, "workflow_state")
		                        ? json_object_get(o, "workflow_state")
		                        : json_null(),
		                    "submitted_at", sub_at ? sub_at : json_null(), "late",
		                    json_is_true(json_object_get(o, "late")), "missing",
		                    json_is_true(json_object_get(o, "missing")), "excused",
		                    json_is_true(json_object_get(o, "excused"))));
		json_t *cd = json_object_get(o, "cached_due_date");
		if (cd) {
			char key[80];
			snprintf(key, sizeof(key), "%s/%s", aid, uid);
			json_object_set(cached, key, cd);
		}
	}
	json_array_foreach(c->assignments, i, o) {
		const char *aid = id_str(json_object_get(o, "id"), b1, sizeof(b1));
		if (!aid)
			continue;
		json_t *base = json_object_get(o, "due_at");
		if (!json_is_string(base))
			base = json_null();
		json_array_append_new(
		    asgs,
		    json_pack("{s:s, s:s, s:O, s:O}", "id", aid, "course", course, "name",
		              json_object_get(o, "name") ? json_object_get(o, "name") : json_null(),
		              "due_at", base));
		json_t *ovs = json_object_get(o, "overrides");
		const char *uid;
		json_object_foreach(student_section, uid, x) {
			char key[80];
			snprintf(key, sizeof(key), "%s/%s", aid, uid);
			const json_t *due = json_object_get(cached, key);
			if (!due)
				due = canvas_due_at(base, ovs, uid, json_string_value(x));
			json_array_append_new(dues, json_pack("{s:s, s:s, s:O}", "assignment", aid,
			                                      "person", uid, "due_at", due));
		}
	}
	json_decref(section_names);
	json_decref(student_section);
	json_decref(cached);
}

static void next_step(struct canvas *c)
{
	char path[512];
	if (c->step == S_SECTIONS && c->course >= json_array_size(c->courses))
		c->step = S_DONE;
	const char *course = json_string_value(json_array_get(c->courses, c->course));
	switch (c->step) {
	case S_COURSES:
		get_list(c, "/courses", "courses");
		return;
	case S_SECTIONS:
		snprintf(path, sizeof(path), "/courses/%s/sections", course);
		get_list(c, path, "sections");
		return;
	case S_ENROLLMENTS:
		snprintf(path, sizeof(path),
		         "/courses/%s/enrollments?type[]=StudentEnrollment&state[]=active&state[]="
		         "invited&state[]=inactive&state[]=completed&state[]=deleted",
		         course);
		get_list(c, path, "enrollments");
		return;
	case S_USERS:
		snprintf(path, sizeof(path),
		         "/courses/%s/users?include[]=email&enrollment_type[]=student", course);
		get_list(c, path, "students");
		return;
	case S_ASSIGNMENTS:
		snprintf(path, sizeof(path),
		         "/courses/%s/assignments?include[]=overrides&include[]=all_dates", course);
		get_list(c, path, "assignments");
		return;
	case S_SUBMISSIONS:
		snprintf(path, sizeof(path),
		         "/courses/%s/students/submissions?student_ids[]=all%s%s", course,
		         c->since[0] ? "&submitted_since=" : "", c->since);
		get_list(c, path, "submissions");
		return;
	case S_DONE:
		break;
	}
	if (c->course < json_array_size(c->courses)) {
		fold_course(c, course);
		if (c->env->progress) {
			char line[128];
			snprintf(line, sizeof(line), "course %s: %zu of %zu courses read", course,
			         c->course + 1, json_array_size(c->courses));
			c->env->progress(c->env->progress_ud, line);
		}
		c->course++;
		c->step = S_SECTIONS;
		next_step(c);
		return;
	}
	/* every course read */
	json_object_set_new(c->snap, "complete",
	                    json_pack("{s:b}", "submissions", c->since[0] ? 0 : 1));
	json_object_set_new(c->snap, "cursor", json_pack("{s:s}", "submitted_since", c->started));
	connector_done done = c->done;
	json_t *snap = c->snap;
	c->snap = NULL;
	c->done = NULL;
	done(c->ud, snap, NULL);
}

static void *cv_init(const struct source_env *env, struct err *err)
{
	if (!env->cfg->url) {
		err_set(err, "a canvas source needs \"url\"");
		return NULL;
	}
	if (!env->token) {
		err_set(err, "a canvas source needs a token: set token_env");
		return NULL;
	}
	struct canvas *c = calloc(1, sizeof(*c));
	if (!c) {
		err_set(err, "out of memory");
		return NULL;
	}
	c->env = env;
	const char *accept[] = {"Accept: application/json+canvas-string-ids", NULL};
	c->f = fetcher_new(env, FETCH_AUTH_BEARER, accept);
	/* the URL is the site (https://school.instructure.com) or already ends in /api/v1 */
	size_t n = strlen(env->cfg->url);
	while (n && env->cfg->url[n - 1] == '/')
		n--;
	int has_api = n >= 7 && strncmp(env->cfg->url + n - 7, "/api/v1", 7) == 0;
	snprintf(c->base, sizeof(c->base), "%.*s%s", (int)n, env->cfg->url,
	         has_api ? "" : "/api/v1");
	const char *since = json_string_value(json_object_get(env->cursor, "submitted_since"));
	if (since)
		snprintf(c->since, sizeof(c->since), "%s", since);
	/* the next incremental fetch starts a little before this one, so that nothing
	 * submitted while it ran is missed (by Canvas's Date header when it sends one) */
	time_t t = time(NULL) - 300;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(c->started, sizeof(c->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!c->f) {
		free(c);
		err_set(err, "out of memory");
		return NULL;
	}
	return c;
}

static void cv_sync(void *p, connector_done done, void *ud)
{
	struct canvas *c = p;
	c->done = done;
	c->ud = ud;
	c->snap = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "people", "memberships",
	                    "assignments", "due_dates", "submissions");
	const json_t *courses = json_object_get(c->env->cfg->extra, "courses");
	if (json_array_size(courses)) {
		c->courses = json_array();
		size_t i;
		json_t *v;
		char b[32];
		json_array_foreach(courses, i, v) {
			const char *id = id_str(v, b, sizeof(b));
			if (id)
				json_array_append_new(c->courses, json_string(id));
		}
		c->step = S_SECTIONS;
	} else {
		c->step = S_COURSES;
	}
	next_step(c);
}

struct cv_send {
	void (*done)(void *ud, const struct err *err);
	void *ud;
};

static void on_sent(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct cv_send *s = ud;
	s->done(s->ud, err);
	free(s);
}

/* A conversation of its own with the one person (force_new: never into an old thread). */
static void cv_send(void *p, const char *person, const char *subject, const char *text,
                    void (*done)(void *ud, const struct err *err), void *ud)
{
	struct canvas *c = p;
	char url[600], who[96], subj[1024], body[8192], form[10240];
	struct err e = {0};
	struct cv_send *s = malloc(sizeof(*s));
	if (!s) {
		err_set(&e, "out of memory");
		done(ud, &e);
		return;
	}
	s->done = done;
	s->ud = ud;
	snprintf(url, sizeof(url), "%s/conversations", c->base);
	fetch_escape(who, sizeof(who), person);
	fetch_escape(subj, sizeof(subj), subject);
	fetch_escape(body, sizeof(body), text);
	snprintf(form, sizeof(form),
	         "recipients[]=%s&subject=%s&body=%s&force_new=true&group_conversation=false", who,
	         subj, body);
	struct fetch_req rq = {.method = "POST",
	                       .url = url,
	                       .body = form,
	                       .content_type = "application/x-www-form-urlencoded",
	                       .expect = "json"};
	if (fetch(c->f, &rq, on_sent, s) != 0) {
		free(s);
		err_set(&e, "%s: busy", c->env->cfg->name);
		done(ud, &e);
	}
}

static void cv_describe(void *p, char *buf, size_t size)
{
	snprintf(buf, size, "Canvas at %s", ((struct canvas *)p)->base);
}

static void cv_free(void *p)
{
	struct canvas *c = p;
	if (!c)
		return;
	fetcher_free(c->f);
	json_decref(c->courses);
	json_decref(c->sections);
	json_decref(c->enrollments);
	json_decref(c->users);
	json_decref(c->assignments);
	json_decref(c->submissions);
	json_decref(c->snap);
	free(c);
}

const struct connector_ops canvas_connector = {
    .type = "canvas",
    .init = cv_init,
    .sync = cv_sync,
    .send = cv_send,
    .describe = cv_describe,
    .free = cv_free,
};
