/* The fake Canvas LMS under /canvas/api/v1: courses, sections, enrollments, users, assignments
 * with overrides and dates, submissions, user profiles, and conversations (messages). Bearer
 * tokens, page-numbered pagination with a Link header of absolute URLs, ids as strings on
 * request, and Canvas's throttle: a leaky bucket whose exhaustion is a 403, not a 429. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "sources.h"

static const char not_found[] = "The specified resource does not exist.";

static void errors(struct src_req *r, int status, const char *message)
{
	src_json(r, status, json_pack("{s:[{s:s}]}", "errors", "message", message), 0);
}

static json_t *cv(const char *k)
{
	return json_object_get(json_object_get(campus.root, "canvas"), k);
}

/* Canvas's ids: numbers, or strings when the client asks for them. */
static bool string_ids(struct src_req *r)
{
	return r->rq->accept && strstr(r->rq->accept, "application/json+canvas-string-ids");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void stringify(json_t *j)
{
	char buf[32];
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			stringify(v);
		return;
	}
	if (!json_is_object(j))
		return;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		bool id = strcmp(k, "id") == 0 || ends_with(k, "_id");
		if (id && json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
			json_object_set_new(j, k, json_string(buf));
		} else if (ends_with(k, "_ids") && json_is_array(v)) {
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
				if (json_is_integer(e)) {
					snprintf(buf, sizeof(buf), "%lld",
					         (long long)json_integer_value(e));
					json_array_set_new(v, i, json_string(buf));
				}
		} else {
			stringify(v);
		}
	}
}

static void reply(struct src_req *r, int status, json_t *body)
{
	if (string_ids(r))
		stringify(body);
	src_json(r, status, body, 0);
}

/* --- throttling --- */

void canvas_leak(void)
{
	struct src_throttle *t = &src_throttle[SRC_CANVAS];
	uint64_t now = src_mono_ms();
	if (t->at_ms && now > t->at_ms) {
		t->used -= t->refill * (double)(now - t->at_ms) / 1000.0;
		if (t->used < 0)
			t->used = 0;
	}
	t->at_ms = now;
}

/* Charges the request; 1 when the bucket is empty (the 403 is then the answer). Every answer
 * carries the campus clock as its Date, as Canvas's carry the server's. */
static int throttled(struct src_req *r)
{
	struct src_throttle *t = &src_throttle[SRC_CANVAS];
	char date[64];
	time_t secs = (time_t)(src_now_ms() / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	src_header(r, "Date: %s\r\n", date);
	canvas_leak();
	if (t->used + t->held + t->upfront > t->bucket) {
		src_header(r, "X-Request-Cost: 0\r\nX-Rate-Limit-Remaining: %.4f\r\n",
		           t->bucket - t->used - t->held);
		src_text(r, 403, "text/plain; charset=utf-8",
		         strdup("403 Forbidden (Rate Limit Exceeded)\n"));
		return 1;
	}
	double cost = t->cost >= 0 ? t->cost : 0.5 + 1.5 * src_rand();
	t->used += cost;
	t->held += t->upfront;
	r->upfront = t->upfront;
	src_header(r, "X-Request-Cost: %.4f\r\nX-Rate-Limit-Remaining: %.4f\r\n", cost,
	           t->bucket - t->used - (t->held - t->upfront));
	return 0;
}

/* --- pagination --- */

struct page {
	long page, per_page;
};

static struct page page_of(struct src_req *r)
{
	struct page p = {src_long(srcp_get(&r->q, "page")), src_long(srcp_get(&r->q, "per_page"))};
	if (p.page < 1)
		p.page = 1;
	if (p.per_page < 1)
		p.per_page = 10;
	if (p.per_page > 50)
		p.per_page = 50;
	return p;
}

static void link(struct src_req *r, struct sbuf *b, const char *query, long page, long per_page,
                 const char *rel)
{
	sb_fmt(b, "%s<%s%s?%s%spage=%ld&per_page=%ld>; rel=\"%s\"", b->len ? "," : "", r->base,
	       r->rq->path, query, *query ? "&" : "", page, per_page, rel);
}

/* The page of all (borrowed) that the request asks for, as copies; sets the Link header. */
static json_t *paginate(struct src_req *r, json_t *all, bool with_last)
{
	static const char *const skip[] = {"page", "per_page", "access_token", NULL};
	struct page p = page_of(r);
	size_t n = json_array_size(all), from = (size_t)((p.page - 1) * p.per_page);
	long last = n ? (long)((n + (size_t)p.per_page - 1) / (size_t)p.per_page) : 1;
	json_t *out = json_array();
	for (size_t i = from; i < n && i < from + (size_t)p.per_page; i++)
		json_array_append_new(out, json_deep_copy(json_array_get(all, i)));
	char query[2048];
	srcp_encode(&r->q, skip, query, sizeof(query));
	struct sbuf b = {0};
	link(r, &b, query, p.page, p.per_page, "current");
	if (p.page < last)
		link(r, &b, query, p.page + 1, p.per_page, "next");
	if (p.page > 1)
		link(r, &b, query, p.page - 1, p.per_page, "prev");
	link(r, &b, query, 1, p.per_page, "first");
	if (with_last)
		link(r, &b, query, last, p.per_page, "last");
	char *l = sb_take(&b);
	src_header(r, "Link: %s\r\n", l);
	free(l);
	return out;
}

/* --- lookups --- */

static json_t *user(json_int_t id)
{
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)id);
	return json_object_get(campus.cv_users, key);
}

static json_int_t self_id(void)
{
	json_t *s = json_array_get(json_object_get(campus.root, "staff"), 0);
	return s ? jint(s, "id") : 900;
}

/* The short user object Canvas embeds in enrollments and sections. */
static json_t *user_short(json_t *u)
{
	static const char *const keys[] = {
	    "id",         "name",        "created_at",     "sortable_name",
	    "short_name", "sis_user_id", "integration_id", "login_id",
	    NULL};
	json_t *o = json_object();
	for (const char *const *k = keys; *k; k++)
		if (json_object_get(u, *k))
			json_object_set(o, *k, json_object_get(u, *k));
	return o;
}

/* 0 when the course is one of the token's; else the answer is set. */
static int course_access(struct src_req *r, json_int_t id, json_t **course)
{
	size_t i;
	json_t *c;
	json_array_foreach(cv("courses"), i, c)
		if (jint(c, "id") == id) {
			*course = c;
			return 0;
		}
	json_array_foreach(cv("unauthorized_course_ids"), i, c)
		if (json_integer_value(c) == id) {
			/* a 401 without WWW-Authenticate: the token is fine, the permission is
			 * missing */
			src_json(r, 401,
			         json_pack("{s:s, s:[{s:s}]}", "status", "unauthorized", "errors",
			                   "message", "user not authorized to perform that action"),
			         0);
			return -1;
		}
	errors(r, 404, not_found);
	return -1;
}

/* Whether an enrollment state is asked for: state[] (or enrollment_state[]) values, Canvas's
 * compound ones, and by default active and invited. */
static bool state_wanted(struct src_req *r, const char *param, const char *state)
{
	bool any = false;
	for (size_t i = 0; i < r->q.n; i++) {
		if (strcmp(r->q.k[i], param) != 0)
			continue;
		any = true;
		const char *v = r->q.v[i];
		if (strcmp(v, state) == 0)
			return true;
		if ((strcmp(v, "current_and_invited") == 0 ||
		     strcmp(v, "current_and_future") == 0) &&
		    (strcmp(state, "active") == 0 || strcmp(state, "invited") == 0 ||
		     strcmp(state, "creation_pending") == 0))
			return true;
		if (strcmp(v, "current_and_concluded") == 0 &&
		    (strcmp(state, "active") == 0 || strcmp(state, "completed") == 0))
			return true;
	}
	return !any && (strcmp(state, "active") == 0 || strcmp(state, "invited") == 0);
}

static bool type_wanted(struct src_req *r, const char *type)
{
	bool any = false;
	for (size_t i = 0; i < r->q.n; i++)
		if (strcmp(r->q.k[i], "type[]") == 0 || strcmp(r->q.k[i], "role[]") == 0) {
			any = true;
			if (strcmp(r->q.v[i], type) == 0)
				return true;
		}
	return !any;
}

/* enrollment_type[]=student (or enrollment_type=student) as Canvas's types. */
static bool short_type_wanted(struct src_req *r, const char *type)
{
	static const char *const map[][2] = {{"student", "StudentEnrollment"},
	                                     {"teacher", "TeacherEnrollment"},
	                                     {"ta", "TaEnrollment"},
	                                     {"observer", "ObserverEnrollment"},
	                                     {"designer", "DesignerEnrollment"},
	                                     {"student_view", "StudentViewEnrollment"}};
	bool any = false;
	for (size_t i = 0; i < r->q.n; i++) {
		if (strcmp(r->q.k[i], "enrollment_type[]") != 0 &&
		    strcmp(r->q.k[i], "enrollment_type") != 0)
			continue;
		any = true;
		for (size_t m = 0; m < sizeof(map) / sizeof(map[0]); m++)
			if (strcmp(r->q.v[i], map[m][0]) == 0 && strcmp(type, map[m][1]) == 0)
				return true;
	}
	return !any;
}

static bool has_include(struct src_req *r, const char *what)
{
	return srcp_has(&r->q, "include[]", what) || srcp_has(&r->q, "include", what);
}

/* A list filter on ids (user_ids[], assignment_ids[]): true when absent. */
static bool id_wanted(struct src_req *r, const char *param, json_int_t id)
{
	char buf[32];
	bool any = false;
	snprintf(buf, sizeof(buf), "%lld", (long long)id);
	for (size_t i = 0; i < r->q.n; i++)
		if (strcmp(r->q.k[i], param) == 0) {
			any = true;
			if (strcmp(r->q.v[i], buf) == 0 || strcmp(r->q.v[i], "all") == 0)
				return true;
		}
	return !any;
}

/* --- endpoints --- */

static void courses(struct src_req *r)
{
	json_t *all = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(cv("courses"), i, c)
		json_array_append(all, c);
	json_t *page = paginate(r, all, true);
	json_decref(all);
	if (has_include(r, "total_students")) {
		json_array_foreach(page, i, c) {
			long n = 0;
			size_t j;
			json_t *e;
			json_array_foreach(cv("enrollments"), j, e)
				n += jint(e, "course_id") == jint(c, "id") &&
				     strcmp(jstr(e, "type"), "StudentEnrollment") == 0 &&
				     strcmp(jstr(e, "enrollment_state"), "active") == 0;
			json_object_set_new(c, "total_students", json_integer(n));
		}
	}
	reply(r, 200, page);
}

static void sections(struct src_req *r, json_int_t course)
{
	json_t *all = json_array(), *students = json_object();
	bool with_students = has_include(r, "students"), totals = has_include(r, "total_students");
	size_t i;
	json_t *s, *e;
	char key[32];
	json_array_foreach(cv("sections"), i, s)
		if (jint(s, "course_id") == course)
			json_array_append(all, s);
	/* the students of every section, gathered in one pass */
	if (with_students || totals)
		json_array_foreach(cv("enrollments"), i, e) {
			const char *es = jstr(e, "enrollment_state");
			if (jint(e, "course_id") != course ||
			    strcmp(jstr(e, "type"), "StudentEnrollment") != 0 ||
			    (strcmp(es, "active") != 0 && strcmp(es, "invited") != 0))
				continue;
			snprintf(key, sizeof(key), "%lld", (long long)jint(e, "course_section_id"));
			json_t *list = json_object_get(students, key);
			if (!list) {
				list = json_array();
				json_object_set_new(students, key, list);
			}
			json_t *u = user(jint(e, "user_id"));
			if (u)
				json_array_append_new(list, user_short(u));
		}
	json_t *page = paginate(r, all, true);
	json_decref(all);
	json_array_foreach(page, i, s) {
		snprintf(key, sizeof(key), "%lld", (long long)jint(s, "id"));
		json_t *list = json_object_get(students, key);
		if (with_students)
			json_object_set_new(s, "students", list ? json_incref(list) : json_array());
		if (totals)
			json_object_set_new(s, "total_students",
			                    json_integer((json_int_t)json_array_size(list)));
	}
	json_decref(students);
	reply(r, 200, page);
}

static void enrollments(struct src_req *r, json_int_t course)
{
	json_t *all = json_array();
	long only_user = src_long(srcp_get(&r->q, "user_id"));
	size_t i;
	json_t *e;
	json_array_foreach(cv("enrollments"), i, e) {
		if (jint(e, "course_id") != course || !type_wanted(r, jstr(e, "type")) ||
		    !state_wanted(r, "state[]", jstr(e, "enrollment_state")) ||
		    (only_user >= 0 && jint(e, "user_id") != only_user))
			continue;
		json_array_append(all, e);
	}
	json_t *page = paginate(r, all, false);
	json_decref(all);
	json_array_foreach(page, i, e) {
		json_t *u = user(jint(e, "user_id"));
		if (u)
			json_object_set_new(e, "user", user_short(u));
	}
	reply(r, 200, page);
}

static int by_sortable_name(const void *a, const void *b)
{
	json_t *const *x = a, *const *y = b;
	const char *p = jstr(*x, "sortable_name"), *q = jstr(*y, "sortable_name");
	int c = strcmp(p ? p : "", q ? q : "");
	return c ? c : (jint(*x, "id") > jint(*y, "id")) - (jint(*x, "id") < jint(*y, "id"));
}

static bool contains_nocase(const char *s, const char *term)
{
	size_t n = strlen(term);
	for (; *s; s++)
		if (strncasecmp(s, term, n) == 0)
			return true;
	return false;
}

/* search_term: a part of the name, login or SIS id (ASCII letters without case). */
static bool name_matches(json_t *u, const char *term)
{
	const char *fields[] = {jstr(u, "name"), jstr(u, "login_id"), jstr(u, "sis_user_id")};
	for (size_t f = 0; f < 3; f++)
		if (fields[f] && contains_nocase(fields[f], term))
			return true;
	return false;
}

static void users(struct src_req *r, json_t *course)
{
	json_int_t cid = jint(course, "id");
	json_t *seen = json_object(), *list = json_array(), *mine = json_object();
	const char *term = srcp_get(&r->q, "search_term");
	bool emails = has_include(r, "email"), with_enr = has_include(r, "enrollments");
	size_t i;
	json_t *e;
	char key[32];
	json_array_foreach(cv("enrollments"), i, e) {
		if (jint(e, "course_id") != cid || !short_type_wanted(r, jstr(e, "type")) ||
		    !state_wanted(r, "enrollment_state[]", jstr(e, "enrollment_state")) ||
		    !id_wanted(r, "user_ids[]", jint(e, "user_id")))
			continue;
		snprintf(key, sizeof(key), "%lld", (long long)jint(e, "user_id"));
		json_t *u = json_object_get(campus.cv_users, key);
		if (!u || (term && !name_matches(u, term)))
			continue;
		json_t *ue = json_object_get(mine, key);
		if (!ue) {
			ue = json_array();
			json_object_set_new(mine, key, ue);
		}
		json_array_append(ue, e);
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			json_array_append(list, u);
		}
	}
	/* Canvas lists a course's users by sortable name */
	size_t n = json_array_size(list);
	json_t **v = calloc(n ? n : 1, sizeof(json_t *));
	for (i = 0; v && i < n; i++)
		v[i] = json_array_get(list, i);
	if (v)
		qsort(v, n, sizeof(json_t *), by_sortable_name);
	json_t *sorted = json_array();
	for (i = 0; v && i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	json_t *page = paginate(r, sorted, true), *u;
	json_array_foreach(page, i, u) {
		json_object_del(u, "time_zone");
		json_object_del(u, "locale");
		if (!emails)
			json_object_del(u, "email");
		if (with_enr) {
			snprintf(key, sizeof(key), "%lld", (long long)jint(u, "id"));
			json_object_set_new(u, "enrollments",
			                    json_deep_copy(json_object_get(mine, key)));
		}
	}
	json_decref(sorted);
	json_decref(list);
	json_decref(seen);
	json_decref(mine);
	reply(r, 200, page);
}

/* One entry of all_dates: the override's dates, the assignment's where it has none. */
static json_t *date_entry(json_t *a, json_t *o)
{
	static const char *const keys[] = {"due_at", "unlock_at", "lock_at"};
	json_t *d = json_object();
	if (o) {
		json_object_set(d, "id", json_object_get(o, "id"));
		json_object_set(d, "title", json_object_get(o, "title"));
		bool section = json_object_get(o, "course_section_id") != NULL;
		json_object_set_new(d, "set_type",
		                    json_string(section ? "CourseSection" : "ADHOC"));
		json_object_set(d, "set_id",
		                section ? json_object_get(o, "course_section_id") : json_null());
	} else {
		json_object_set_new(d, "base", json_true());
		json_object_set_new(d, "title", json_string("Everyone else"));
	}
	for (size_t i = 0; i < 3; i++) {
		json_t *v = o ? json_object_get(o, keys[i]) : NULL;
		json_object_set(d, keys[i], v ? v : json_object_get(a, keys[i]));
		if (!json_object_get(d, keys[i]))
			json_object_set_new(d, keys[i], json_null());
	}
	return d;
}

static void assignments(struct src_req *r, json_int_t course)
{
	json_t *all = json_array();
	size_t i, j;
	json_t *a, *o;
	json_array_foreach(cv("assignments"), i, a)
		if (jint(a, "course_id") == course &&
		    id_wanted(r, "assignment_ids[]", jint(a, "id")))
			json_array_append(all, a);
	json_t *page = paginate(r, all, true);
	json_decref(all);
	bool overrides = has_include(r, "overrides"), dates = has_include(r, "all_dates");
	json_array_foreach(page, i, a) {
		if (dates) {
			json_t *list = json_array();
			json_array_append_new(list, date_entry(a, NULL));
			json_array_foreach(json_object_get(a, "overrides"), j, o)
				json_array_append_new(list, date_entry(a, o));
			json_object_set_new(a, "all_dates", list);
		}
		if (!overrides)
			json_object_del(a, "overrides");
	}
	reply(r, 200, page);
}

/* A set of ids, sorted, for filters over thousands of rows. */
struct idset {
	json_int_t *v;
	size_t n, cap;
};

static void ids_add(struct idset *s, json_int_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		json_int_t *g = realloc(s->v, cap * sizeof(*g));
		if (!g)
			return;
		s->v = g;
		s->cap = cap;
	}
	s->v[s->n++] = id;
}

static int cmp_id(const void *a, const void *b)
{
	json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
	return (x > y) - (x < y);
}

static void ids_sort(struct idset *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_id);
}

static bool ids_has(const struct idset *s, json_int_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(*s->v), cmp_id) != NULL;
}

/* The ids of a list parameter (student_ids[]); 0 when it is absent, 2 for "all". */
static int ids_param(struct src_req *r, const char *param, struct idset *s)
{
	int seen = 0;
	for (size_t i = 0; i < r->q.n; i++) {
		if (strcmp(r->q.k[i], param) != 0)
			continue;
		if (strcmp(r->q.v[i], "all") == 0)
			return 2;
		seen = 1;
		ids_add(s, src_long(r->q.v[i]));
	}
	ids_sort(s);
	return seen;
}

static bool time_before(json_t *o, const char *k, uint64_t since)
{
	uint64_t t;
	return !jstr(o, k) || src_parse_iso(jstr(o, k), &t) != 0 || t < since;
}

static void submissions(struct src_req *r, json_int_t course)
{
	uint64_t since = 0, graded_since = 0;
	const char *s = srcp_get(&r->q, "submitted_since");
	if (s && *s && src_parse_iso(s, &since) != 0) {
		errors(r, 400, "Invalid submitted_since");
		return;
	}
	s = srcp_get(&r->q, "graded_since");
	if (s && *s && src_parse_iso(s, &graded_since) != 0) {
		errors(r, 400, "Invalid graded_since");
		return;
	}
	/* whose: student_ids[]=all or a list; without it, the caller's own (a teacher has none) */
	struct idset wanted = {0}, wanted_a = {0}, students = {0}, assigned = {0};
	int who = ids_param(r, "student_ids[]", &wanted);
	int which = ids_param(r, "assignment_ids[]", &wanted_a);
	const char *state = srcp_get(&r->q, "workflow_state");
	const char *enr = srcp_get(&r->q, "enrollment_state");
	size_t i;
	json_t *e, *sub, *a;
	/* the course's students (not removed ones) and assignments, in one pass each */
	json_array_foreach(cv("enrollments"), i, e) {
		if (jint(e, "course_id") != course ||
		    strcmp(jstr(e, "type"), "StudentEnrollment") != 0)
			continue;
		const char *es = jstr(e, "enrollment_state");
		if (strcmp(es, "deleted") == 0 ||
		    (enr && strcmp(enr, "active") == 0 && strcmp(es, "active") != 0) ||
		    (enr && strcmp(enr, "concluded") == 0 && strcmp(es, "completed") != 0))
			continue;
		ids_add(&students, jint(e, "user_id"));
	}
	ids_sort(&students);
	json_array_foreach(cv("assignments"), i, a)
		if (jint(a, "course_id") == course)
			ids_add(&assigned, jint(a, "id"));
	ids_sort(&assigned);
	json_t *all = json_array();
	if (who)
		json_array_foreach(cv("submissions"), i, sub) {
			json_int_t uid = jint(sub, "user_id"), aid = jint(sub, "assignment_id");
			if (!ids_has(&assigned, aid) || !ids_has(&students, uid) ||
			    (who == 1 && !ids_has(&wanted, uid)) ||
			    (which == 1 && !ids_has(&wanted_a, aid)) ||
			    (state && strcmp(state, jstr(sub, "workflow_state")) != 0) ||
			    (since && time_before(sub, "submitted_at", since)) ||
			    (graded_since && time_before(sub, "graded_at", graded_since)))
				continue;
			json_array_append(all, sub);
		}
	free(wanted.v);
	free(wanted_a.v);
	free(students.v);
	free(assigned.v);
	json_t *page = paginate(r, all, false);
	json_decref(all);
	reply(r, 200, page);
}

static void profile(struct src_req *r, json_int_t id)
{
	json_t *u = user(id);
	if (!u) {
		errors(r, 404, not_found);
		return;
	}
	json_t *p = json_pack(
	    "{s:O, s:O, s:O, s:O, s:n, s:n, s:O, s:O, s:O, s:O, s:s, s:O, s:n}", "id",
	    json_object_get(u, "id"), "name", json_object_get(u, "name"), "short_name",
	    json_object_get(u, "short_name"), "sortable_name", json_object_get(u, "sortable_name"),
	    "title", "bio", "primary_email", json_object_get(u, "email"), "login_id",
	    json_object_get(u, "login_id"), "sis_user_id", json_object_get(u, "sis_user_id"),
	    "integration_id", json_object_get(u, "integration_id"), "avatar_url",
	    "https://canvas.example.org/images/messages/avatar-50.png", "time_zone",
	    json_object_get(u, "time_zone"), "locale");
	reply(r, 200, p);
}

/* recipients[] from a form, or recipients from JSON; each an id (number or string). */
static json_t *recipients_of(struct src_req *r, json_t *body)
{
	json_t *ids = json_array();
	if (body) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(body, "recipients"), i, v) {
			long n = json_is_integer(v) ? (long)json_integer_value(v)
			                            : src_long(json_string_value(v));
			json_array_append_new(ids, json_integer(n));
		}
		return ids;
	}
	for (size_t i = 0; i < r->q.n; i++)
		if (strcmp(r->q.k[i], "recipients[]") == 0 || strcmp(r->q.k[i], "recipients") == 0)
			json_array_append_new(ids, json_integer(src_long(r->q.v[i])));
	return ids;
}

static const char *field(struct src_req *r, json_t *body, const char *k)
{
	return body ? jstr(body, k) : srcp_get(&r->q, k);
}

static bool truthy(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void conversations(struct src_req *r)
{
	json_t *body = NULL;
	if (r->rq->content_type && strstr(r->rq->content_type, "json") && r->rq->raw_len) {
		body = json_loadb(r->rq->raw_body, r->rq->raw_len, 0, NULL);
		if (!json_is_object(body)) {
			json_decref(body);
			errors(r, 400, "The request body is not valid JSON.");
			return;
		}
	}
	json_t *ids = recipients_of(r, body);
	const char *subject = field(r, body, "subject"), *text = field(r, body, "body");
	bool group = body ? json_is_true(json_object_get(body, "group_conversation"))
	                  : truthy(srcp_get(&r->q, "group_conversation"));
	size_t i;
	json_t *id;
	const char *bad_attr = NULL, *bad_type = NULL;
	if (!text || !*text) {
		bad_attr = "body";
		bad_type = "blank";
	} else if (!json_array_size(ids)) {
		bad_attr = "recipients";
		bad_type = "blank";
	}
	json_array_foreach(ids, i, id)
		if (!bad_attr && !user(json_integer_value(id))) {
			bad_attr = "recipients";
			bad_type = "invalid";
		}
	if (bad_attr) {
		src_json(r, 400,
		         json_pack("{s:[{s:s, s:s, s:s}]}", "errors", "attribute", bad_attr, "type",
		                   bad_type, "message", bad_type),
		         0);
		json_decref(ids);
		json_decref(body);
		return;
	}
	/* one private conversation per recipient, unless a group one is asked for */
	json_t *out = json_array(), *messages = cv("messages");
	size_t groups = group ? 1 : json_array_size(ids);
	char at[40];
	src_iso(r->now - r->now % 1000, at, sizeof(at), 0);
	json_t *me = user(self_id());
	for (size_t g = 0; g < groups; g++) {
		json_t *audience = json_array(), *participants = json_array();
		json_array_append_new(participants,
		                      json_pack("{s:I, s:s, s:s}", "id", (json_int_t)self_id(),
		                                "name", me ? jstr(me, "name") : "Teacher",
		                                "full_name", me ? jstr(me, "name") : "Teacher"));
		json_array_foreach(ids, i, id) {
			if (!group && i != g)
				continue;
			json_t *u = user(json_integer_value(id));
			json_array_append(audience, id);
			json_array_append_new(participants,
			                      json_pack("{s:O, s:O, s:O}", "id", id, "name",
			                                json_object_get(u, "short_name"),
			                                "full_name", json_object_get(u, "name")));
		}
		json_int_t cid = 7001 + (json_int_t)json_array_size(messages);
		json_t *conv = json_pack(
		    "{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:b, s:b, s:[s], s:O, s:{s:{}, "
		    "s:{}}, s:s, s:o, s:b, s:o}",
		    "id", cid, "subject", subject ? json_string(subject) : json_null(),
		    "workflow_state", "read", "last_message", text, "last_message_at", at,
		    "last_authored_message", text, "last_authored_message_at", at, "message_count",
		    1, "subscribed", 1, "private", json_array_size(audience) == 1, "starred", 0,
		    "properties", "last_author", "audience", audience, "audience_contexts",
		    "courses", "groups", "avatar_url",
		    "https://canvas.example.org/images/messages/avatar-50.png", "participants",
		    participants, "visible", 1, "context_code",
		    field(r, body, "context_code") ? json_string(field(r, body, "context_code"))
		                                   : json_null());
		json_array_append_new(
		    messages, json_pack("{s:I, s:O, s:o, s:s, s:s, s:I, s:b}", "conversation_id",
		                        cid, "recipients", audience, "subject",
		                        subject ? json_string(subject) : json_null(), "body", text,
		                        "created_at", at, "author_id", (json_int_t)self_id(),
		                        "group_conversation", group));
		json_decref(audience);
		json_array_append_new(out, conv);
	}
	json_decref(ids);
	json_decref(body);
	/* Canvas answers a list: one conversation per private conversation made */
	reply(r, 201, out);
}

/* --- routing --- */

static bool authorized(struct src_req *r)
{
	const char *token = sim.opts.source_token;
	const char *a = r->rq->auth, *q = srcp_get(&r->q, "access_token");
	if (a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, token) == 0)
		return true;
	return !a && q && strcmp(q, token) == 0;
}

void canvas_handle(struct src_req *r)
{
	const char *p = r->sub;
	if (!authorized(r)) {
		src_header(r, "WWW-Authenticate: Bearer realm=\"canvas-lms\"\r\n");
		canvas_leak();
		struct src_throttle *t = &src_throttle[SRC_CANVAS];
		src_header(r, "X-Request-Cost: 0\r\nX-Rate-Limit-Remaining: %.4f\r\n",
		           t->bucket - t->used - t->held);
		errors(r, 401, "Invalid access token.");
		return;
	}
	if (throttled(r))
		return;
	if (strncmp(p, "/mocks/api/v1/", 14) == 0) {
		canvas_mocks_handle(r, p + 14);
		return;
	}
	if (strncmp(p, "/api/v1/", 8) != 0) {
		errors(r, 404, not_found);
		return;
	}
	p += 8;
	bool get = strcmp(r->rq->method, "GET") == 0;
	char rest[256] = "";
	long id = -1;
	json_t *course = NULL;
	if (get && strcmp(p, "courses") == 0) {
		courses(r);
	} else if (strcmp(p, "conversations") == 0 && strcmp(r->rq->method, "POST") == 0) {
		conversations(r);
	} else if (get && strncmp(p, "courses/", 8) == 0) {
		const char *slash = strchr(p + 8, '/');
		char num[32];
		snprintf(num, sizeof(num), "%.*s",
		         slash ? (int)(slash - p - 8) : (int)strlen(p + 8), p + 8);
		id = src_long(num);
		snprintf(rest, sizeof(rest), "%s", slash ? slash + 1 : "");
		if (id < 0) {
			errors(r, 404, not_found);
			return;
		}
		if (course_access(r, id, &course) != 0)
			return;
		if (!*rest)
			reply(r, 200, json_deep_copy(course));
		else if (strcmp(rest, "sections") == 0)
			sections(r, id);
		else if (strcmp(rest, "enrollments") == 0)
			enrollments(r, id);
		else if (strcmp(rest, "users") == 0)
			users(r, course);
		else if (strcmp(rest, "assignments") == 0)
			assignments(r, id);
		else if (strcmp(rest, "students/submissions") == 0)
			submissions(r, id);
		else
			errors(r, 404, not_found);
	} else if (get && strncmp(p, "users/", 6) == 0) {
		const char *who = p + 6;
		const char *slash = strchr(who, '/');
		char num[32];
		snprintf(num, sizeof(num), "%.*s", slash ? (int)(slash - who) : (int)strlen(who),
		         who);
		id = strcmp(num, "self") == 0 ? self_id() : src_long(num);
		if (slash && strcmp(slash, "/profile") == 0)
			profile(r, id);
		else if (!slash && user(id)) {
			json_t *u = json_deep_copy(user(id));
			json_object_del(u, "email");
			reply(r, 200, u);
		} else
			errors(r, 404, not_found);
	} else {
		errors(r, 404, not_found);
	}
}
