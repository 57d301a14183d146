/* The fake Moodle under /moodle: its REST web service endpoint,
 * /moodle/webservice/rest/server.php, with wstoken, wsfunction, parameters in PHP's array
 * notation (GET or a form POST), and answers in XML (the default) or JSON. Errors come back
 * with HTTP 200 as an exception in the requested format, as Moodle sends them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

static json_t *md(const char *k)
{
	return json_object_get(json_object_get(campus.root, "moodle"), k);
}

static bool want_json(struct src_req *r)
{
	const char *f = srcp_get(&r->q, "moodlewsrestformat");
	return f && strcmp(f, "json") == 0;
}

/* htmlspecialchars(ENT_COMPAT): what Moodle applies to text, once. */
static void xml_text(struct sbuf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '&')
			sb_str(b, "&amp;");
		else if (*p == '<')
			sb_str(b, "&lt;");
		else if (*p == '>')
			sb_str(b, "&gt;");
		else if (*p == '"')
			sb_str(b, "&quot;");
		else
			sb_add(b, p, 1);
	}
}

/* Moodle's XML grammar (webservice_rest_server::xmlize_result): a list is MULTIPLE, an object
 * SINGLE of KEYs, a scalar VALUE; null is <VALUE null="null"/>, booleans 0 and 1. */
static void xml_value(struct sbuf *b, json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sb_str(b, "<SINGLE>\n");
		json_object_foreach(v, k, e) {
			sb_str(b, "<KEY name=\"");
			xml_text(b, k);
			sb_str(b, "\">");
			xml_value(b, e);
			sb_str(b, "</KEY>\n");
		}
		sb_str(b, "</SINGLE>\n");
		break;
	case JSON_ARRAY:
		sb_str(b, "<MULTIPLE>\n");
		json_array_foreach(v, i, e)
			xml_value(b, e);
		sb_str(b, "</MULTIPLE>\n");
		break;
	case JSON_NULL:
		sb_str(b, "<VALUE null=\"null\"/>\n");
		break;
	case JSON_TRUE:
		sb_str(b, "<VALUE>1</VALUE>\n");
		break;
	case JSON_FALSE:
		sb_str(b, "<VALUE>0</VALUE>\n");
		break;
	case JSON_INTEGER:
		sb_fmt(b, "<VALUE>%lld</VALUE>\n", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		sb_fmt(b, "<VALUE>%.15g</VALUE>\n", json_real_value(v));
		break;
	case JSON_STRING:
		sb_str(b, "<VALUE>");
		xml_text(b, json_string_value(v));
		sb_str(b, "</VALUE>\n");
		break;
	}
}

/* PHP's json_encode: non-ASCII as \u escapes (in lower case), '/' as '\/'. */
static void php_json(struct src_req *r, json_t *v)
{
	src_json(r, 200, v, JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY);
	for (char *p = r->rs->text; p && *p; p++) {
		if (*p != '\\')
			continue;
		if (p[1] == 'u')
			for (int i = 2; i < 6 && p[i]; i++)
				if (p[i] >= 'A' && p[i] <= 'F')
					p[i] = (char)(p[i] - 'A' + 'a');
		if (p[1])
			p++;
	}
}

/* The answer; takes v. */
static void answer(struct src_req *r, json_t *v)
{
	if (want_json(r)) {
		php_json(r, v);
		return;
	}
	struct sbuf b = {0};
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n");
	xml_value(&b, v);
	sb_str(&b, "</RESPONSE>\n");
	json_decref(v);
	src_text(r, 200, "application/xml; charset=utf-8", sb_take(&b));
}

static void exception(struct src_req *r, const char *cls, const char *code, const char *message)
{
	if (want_json(r)) {
		php_json(r, json_pack("{s:s, s:s, s:s}", "exception", cls, "errorcode", code,
		                      "message", message));
		return;
	}
	struct sbuf b = {0};
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"");
	xml_text(&b, cls);
	sb_str(&b, "\">\n<ERRORCODE>");
	xml_text(&b, code);
	sb_str(&b, "</ERRORCODE>\n<MESSAGE>");
	xml_text(&b, message);
	sb_str(&b, "</MESSAGE>\n</EXCEPTION>\n");
	src_text(r, 200, "application/xml; charset=utf-8", sb_take(&b));
}

static void invalid_parameter(struct src_req *r)
{
	exception(r, "invalid_parameter_exception", "invalidparameter",
	          "Invalid parameter value detected");
}

static void missing_record(struct src_req *r, const char *table)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "Can't find data record in database table %s.", table);
	exception(r, "dml_missing_record_exception", "invalidrecord", msg);
}

/* --- parameters in PHP's array notation --- */

/* An integer parameter: 0 and its value, 1 when absent, -1 when not an integer. */
static int int_param(struct src_req *r, const char *name, long *out)
{
	const char *v = srcp_get(&r->q, name);
	if (!v)
		return 1;
	char *end;
	long n = strtol(v, &end, 10);
	if (!*v || *end)
		return -1;
	*out = n;
	return 0;
}

/* name[0]=..&name[1]=.. (or name[]=..) as integers, in order; NULL when one is not an
 * integer. */
static json_t *int_list(struct src_req *r, const char *name)
{
	json_t *out = json_array();
	size_t n = strlen(name);
	for (size_t i = 0; i < r->q.n; i++) {
		const char *k = r->q.k[i];
		if (strncmp(k, name, n) != 0 || k[n] != '[')
			continue;
		const char *close = strchr(k + n, ']');
		if (!close || close[1])
			continue;
		char *end;
		long v = strtol(r->q.v[i], &end, 10);
		if (!*r->q.v[i] || *end) {
			json_decref(out);
			return NULL;
		}
		json_array_append_new(out, json_integer(v));
	}
	return out;
}

/* name[N][field] of the entry whose index key is prefix (e.g. "options[3]"). */
static const char *sub_param(struct src_req *r, const char *prefix, const char *field)
{
	char key[128];
	snprintf(key, sizeof(key), "%s[%s]", prefix, field);
	return srcp_get(&r->q, key);
}

/* The distinct "name[N]" prefixes of name[N][...] parameters, in order. */
static json_t *entries(struct src_req *r, const char *name)
{
	json_t *out = json_array(), *seen = json_object();
	size_t n = strlen(name);
	for (size_t i = 0; i < r->q.n; i++) {
		const char *k = r->q.k[i];
		if (strncmp(k, name, n) != 0 || k[n] != '[')
			continue;
		const char *close = strchr(k + n, ']');
		if (!close || close[1] != '[')
			continue;
		char prefix[96];
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(close + 1 - k), k);
		if (!json_object_get(seen, prefix)) {
			json_object_set_new(seen, prefix, json_true());
			json_array_append_new(out, json_string(prefix));
		}
	}
	json_decref(seen);
	return out;
}

static json_t *find(json_t *list, const char *k, json_int_t id)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
		if (jint(o, k) == id)
			return o;
	return NULL;
}

static char *key_of(json_int_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", (long long)id);
	return buf;
}

/* --- functions --- */

static int course_param(struct src_req *r, json_t **course)
{
	long id = 0;
	int rc = int_param(r, "courseid", &id);
	if (rc != 0) {
		invalid_parameter(r);
		return -1;
	}
	*course = find(md("courses"), "id", id);
	if (!*course) {
		char msg[200];
		snprintf(msg, sizeof(msg),
		         "You cannot execute functions in the course context (course id:%ld). The "
		         "error message was: Can't find data record in database table course.",
		         id);
		exception(r, "moodle_exception", "errorcoursecontextnotvalid", msg);
		return -1;
	}
	return 0;
}

static int by_userid(const void *a, const void *b)
{
	json_int_t x = jint(*(json_t *const *)a, "userid"), y = jint(*(json_t *const *)b, "userid");
	return (x > y) - (x < y);
}

static void enrolled_users(struct src_req *r)
{
	json_t *course;
	if (course_param(r, &course) != 0)
		return;
	json_int_t cid = jint(course, "id");
	long from = 0, number = 0, group = 0, onlyactive = 0;
	const char *fields = NULL;
	json_t *opts = entries(r, "options");
	size_t i;
	json_t *o;
	json_array_foreach(opts, i, o) {
		const char *name = sub_param(r, json_string_value(o), "name");
		const char *value = sub_param(r, json_string_value(o), "value");
		long *target = NULL;
		if (!name || !value)
			continue;
		if (strcmp(name, "limitfrom") == 0)
			target = &from;
		else if (strcmp(name, "limitnumber") == 0)
			target = &number;
		else if (strcmp(name, "groupid") == 0)
			target = &group;
		else if (strcmp(name, "onlyactive") == 0)
			target = &onlyactive;
		else if (strcmp(name, "userfields") == 0)
			fields = value;
		if (target) {
			char *end;
			*target = strtol(value, &end, 10);
			if (!*value || *end || *target < 0) {
				json_decref(opts);
				invalid_parameter(r);
				return;
			}
		}
	}
	json_decref(opts);
	/* every user's courses, and this course's groups by member, in one pass each */
	json_t *courses_of = json_object(), *groups_of = json_object(), *in_group = json_object();
	json_t *e, *g;
	char key[32];
	json_array_foreach(md("enrolments"), i, e) {
		json_t *c = find(md("courses"), "id", jint(e, "courseid"));
		key_of(jint(e, "userid"), key, sizeof(key));
		json_t *list = json_object_get(courses_of, key);
		if (!list) {
			list = json_array();
			json_object_set_new(courses_of, key, list);
		}
		if (c)
			json_array_append_new(
			    list, json_pack("{s:O, s:O, s:O}", "id", json_object_get(c, "id"),
			                    "fullname", json_object_get(c, "fullname"), "shortname",
			                    json_object_get(c, "shortname")));
	}
	json_array_foreach(md("group_members"), i, g) {
		json_t *grp = find(md("groups"), "id", jint(g, "groupid"));
		if (!grp || jint(grp, "courseid") != cid)
			continue;
		size_t j;
		json_t *uid;
		json_array_foreach(json_object_get(g, "userids"), j, uid) {
			key_of(json_integer_value(uid), key, sizeof(key));
			json_t *list = json_object_get(groups_of, key);
			if (!list) {
				list = json_array();
				json_object_set_new(groups_of, key, list);
			}
			json_array_append_new(
			    list,
			    json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(grp, "id"),
			              "name", json_object_get(grp, "name"), "description",
			              json_object_get(grp, "description"), "descriptionformat",
			              json_object_get(grp, "descriptionformat")));
			if (jint(grp, "id") == group)
				json_object_set_new(in_group, key, json_true());
		}
	}
	/* the course's enrolments in user id order; limitfrom/limitnumber cut a page of them */
	json_t *out = json_array(), *seen = json_object();
	size_t n = json_array_size(md("enrolments")), m = 0;
	json_t **v = calloc(n ? n : 1, sizeof(json_t *));
	json_array_foreach(md("enrolments"), i, e) {
		if (!v || jint(e, "courseid") != cid || (onlyactive && jint(e, "status") != 0))
			continue;
		key_of(jint(e, "userid"), key, sizeof(key));
		if (json_object_get(seen, key) || (group && !json_object_get(in_group, key)))
			continue;
		json_object_set_new(seen, key, json_true());
		v[m++] = e;
	}
	if (v)
		qsort(v, m, sizeof(json_t *), by_userid);
	for (size_t x = (size_t)from; x < m; x++) {
		e = v[x];
		if (number && (long)json_array_size(out) >= number)
			break;
		key_of(jint(e, "userid"), key, sizeof(key));
		json_t *u = json_object_get(campus.md_users, key);
		if (!u)
			continue;
		json_t *user = json_deep_copy(u);
		const char *role = jstr(e, "role");
		bool teacher = role && strcmp(role, "editingteacher") == 0;
		json_object_set_new(user, "groups",
		                    json_object_get(groups_of, key)
		                        ? json_incref(json_object_get(groups_of, key))
		                        : json_array());
		json_object_set_new(user, "roles",
		                    json_pack("[{s:i, s:s, s:s, s:i}]", "roleid", teacher ? 3 : 5,
		                              "name", "", "shortname", role ? role : "student",
		                              "sortorder", 0));
		json_object_set_new(user, "enrolledcourses",
		                    json_incref(json_object_get(courses_of, key)));
		if (fields) {
			/* userfields: only these (and the id) */
			const char *k;
			void *tmp;
			json_t *f;
			json_object_foreach_safe(user, tmp, k, f) {
				const char *hit = strstr(fields, k);
				size_t kl = strlen(k);
				bool listed = hit && (hit == fields || hit[-1] == ',') &&
				              (hit[kl] == ',' || !hit[kl]);
				if (!listed && strcmp(k, "id") != 0)
					json_object_del(user, k);
			}
		}
		json_array_append_new(out, user);
	}
	free(v);
	json_decref(seen);
	json_decref(courses_of);
	json_decref(groups_of);
	json_decref(in_group);
	answer(r, out);
}

static void course_groups(struct src_req *r)
{
	json_t *course;
	if (course_param(r, &course) != 0)
		return;
	json_t *out = json_array();
	size_t i;
	json_t *g;
	json_array_foreach(md("groups"), i, g)
		if (jint(g, "courseid") == jint(course, "id"))
			json_array_append_new(out, json_deep_copy(g));
	answer(r, out);
}

/* For group and cohort members: [{idkey: id, userids: [...]}] for each id asked for. */
static void members(struct src_req *r, const char *param, const char *list, const char *idkey,
                    const char *things, const char *table)
{
	json_t *ids = int_list(r, param);
	if (!ids || !json_array_size(ids)) {
		json_decref(ids);
		invalid_parameter(r);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id) {
		json_t *m = find(md(list), idkey, json_integer_value(id));
		if (!m || !find(md(things), "id", json_integer_value(id))) {
			json_decref(out);
			json_decref(ids);
			missing_record(r, table);
			return;
		}
		json_array_append_new(out, json_deep_copy(m));
	}
	json_decref(ids);
	answer(r, out);
}

static void cohorts(struct src_req *r)
{
	json_t *ids = int_list(r, "cohortids");
	if (!ids) {
		invalid_parameter(r);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *c, *id;
	if (!json_array_size(ids))
		json_array_foreach(md("cohorts"), i, c)
			json_array_append_new(out, json_deep_copy(c));
	json_array_foreach(ids, i, id) {
		c = find(md("cohorts"), "id", json_integer_value(id));
		if (!c) {
			json_decref(out);
			json_decref(ids);
			missing_record(r, "cohort");
			return;
		}
		json_array_append_new(out, json_deep_copy(c));
	}
	json_decref(ids);
	answer(r, out);
}

static json_t *warning(const char *item, json_int_t id, const char *code, const char *message)
{
	return json_pack("{s:s, s:I, s:s, s:s}", "item", item, "itemid", id, "warningcode", code,
	                 "message", message);
}

static void get_assignments(struct src_req *r)
{
	json_t *ids = int_list(r, "courseids");
	if (!ids) {
		invalid_parameter(r);
		return;
	}
	json_t *courses = json_array(), *warnings = json_array();
	size_t i, j;
	json_t *c, *id, *a;
	if (!json_array_size(ids))
		json_array_foreach(md("courses"), i, c)
			json_array_append_new(ids, json_integer(jint(c, "id")));
	json_array_foreach(ids, i, id) {
		c = find(md("courses"), "id", json_integer_value(id));
		if (!c) {
			json_array_append_new(warnings,
			                      warning("course", json_integer_value(id), "1",
			                              "No access rights in course context"));
			continue;
		}
		json_t *list = json_array();
		json_array_foreach(md("assignments"), j, a)
			if (jint(a, "course") == jint(c, "id"))
				json_array_append_new(list, json_deep_copy(a));
		json_array_append_new(
		    courses, json_pack("{s:O, s:O, s:O, s:I, s:o}", "id", json_object_get(c, "id"),
		                       "fullname", json_object_get(c, "fullname"), "shortname",
		                       json_object_get(c, "shortname"), "timemodified",
		                       (json_int_t)1767346200, "assignments", list));
	}
	json_decref(ids);
	answer(r, json_pack("{s:o, s:o}", "courses", courses, "warnings", warnings));
}

/* For submissions and user flags: the assignments asked for, each with its list. */
static void per_assignment(struct src_req *r, bool flags)
{
	json_t *ids = int_list(r, "assignmentids");
	long since = 0, before = 0;
	const char *status = srcp_get(&r->q, "status");
	if (!ids || int_param(r, "since", &since) < 0 || int_param(r, "before", &before) < 0) {
		json_decref(ids);
		invalid_parameter(r);
		return;
	}
	json_t *out = json_array(), *warnings = json_array();
	size_t i, j;
	json_t *id, *s;
	json_array_foreach(ids, i, id) {
		json_int_t aid = json_integer_value(id);
		if (!find(md("assignments"), "id", aid)) {
			json_array_append_new(
			    warnings,
			    warning("module", aid, "3", "No access rights in module context"));
			continue;
		}
		if (flags) {
			json_t *f = find(md("user_flags"), "assignmentid", aid);
			json_array_append_new(
			    out, json_pack("{s:I, s:o}", "assignmentid", aid, "userflags",
			                   f ? json_deep_copy(json_object_get(f, "userflags"))
			                     : json_array()));
			continue;
		}
		json_t *list = json_array();
		json_array_foreach(md("submissions"), j, s) {
			if (jint(s, "assignment") != aid ||
			    (status && *status && strcmp(status, jstr(s, "status")) != 0) ||
			    jint(s, "timemodified") < since ||
			    (before && jint(s, "timemodified") > before))
				continue;
			json_array_append_new(list, json_deep_copy(s));
		}
		json_array_append_new(
		    out, json_pack("{s:I, s:o}", "assignmentid", aid, "submissions", list));
	}
	json_decref(ids);
	answer(r, json_pack("{s:o, s:o}", "assignments", out, "warnings", warnings));
}

/* The participants of an assignment with their own dates: a user override, else the group's
 * (lowest sortorder), else the assignment's; an extension shows as grantedextension. */
static void list_participants(struct src_req *r)
{
	long aid = 0, group = 0, skip = 0, limit = 0;
	if (int_param(r, "assignid", &aid) != 0 || int_param(r, "groupid", &group) < 0 ||
	    int_param(r, "skip", &skip) < 0 || int_param(r, "limit", &limit) < 0) {
		invalid_parameter(r);
		return;
	}
	json_t *a = find(md("assignments"), "id", aid);
	if (!a) {
		missing_record(r, "assign");
		return;
	}
	json_int_t cid = jint(a, "course");
	json_t *flags = json_object_get(find(md("user_flags"), "assignmentid", aid), "userflags");
	json_t *out = json_array(), *seen = json_object();
	size_t i, j;
	json_t *e, *g, *o, *uid, *s;
	char key[32];
	long n = 0;
	/* each learner's group in the course and submission to the assignment, in one pass each */
	json_t *group_of = json_object(), *sub_of = json_object();
	json_array_foreach(md("group_members"), j, g) {
		json_t *grp = find(md("groups"), "id", jint(g, "groupid"));
		size_t k;
		if (!grp || jint(grp, "courseid") != cid)
			continue;
		json_array_foreach(json_object_get(g, "userids"), k, uid)
			json_object_set(group_of, key_of(json_integer_value(uid), key, sizeof(key)),
			                grp);
	}
	json_array_foreach(md("submissions"), j, s)
		if (jint(s, "assignment") == aid)
			json_object_set(sub_of, key_of(jint(s, "userid"), key, sizeof(key)), s);
	json_array_foreach(md("enrolments"), i, e) {
		if (jint(e, "courseid") != cid || strcmp(jstr(e, "role"), "student") != 0)
			continue;
		json_int_t user = jint(e, "userid");
		json_t *u = json_object_get(campus.md_users, key_of(user, key, sizeof(key)));
		if (!u || json_object_get(seen, key))
			continue;
		json_object_set_new(seen, key, json_true());
		json_t *mygroup = json_object_get(group_of, key);
		if (group && (!mygroup || jint(mygroup, "id") != group))
			continue;
		if (n++ < skip || (limit && (long)json_array_size(out) >= limit))
			continue;
		json_t *due = json_object_get(a, "duedate"),
		       *from = json_object_get(a, "allowsubmissionsfromdate"),
		       *cutoff = json_object_get(a, "cutoffdate");
		json_t *chosen = NULL;
		json_int_t order = 0;
		json_array_foreach(md("overrides"), j, o) {
			if (jint(o, "assignid") != aid)
				continue;
			if (jint(o, "userid") == user) {
				chosen = o;
				break;
			}
			if (mygroup && json_is_integer(json_object_get(o, "groupid")) &&
			    jint(o, "groupid") == jint(mygroup, "id") &&
			    (!chosen || jint(o, "sortorder") < order)) {
				chosen = o;
				order = jint(o, "sortorder");
			}
		}
		if (chosen) {
			if (json_is_integer(json_object_get(chosen, "duedate")))
				due = json_object_get(chosen, "duedate");
			if (json_is_integer(json_object_get(chosen, "allowsubmissionsfromdate")))
				from = json_object_get(chosen, "allowsubmissionsfromdate");
			if (json_is_integer(json_object_get(chosen, "cutoffdate")))
				cutoff = json_object_get(chosen, "cutoffdate");
		}
		bool extension = find(flags, "userid", user) != NULL;
		json_t *sub = json_object_get(sub_of, key);
		bool submitted = sub && strcmp(jstr(sub, "status"), "submitted") == 0;
		json_array_append_new(
		    out,
		    json_pack("{s:I, s:O, s:O, s:O, s:b, s:b, s:b, s:s, s:b, s:O, s:O, s:O, s:I, "
		              "s:o}",
		              "id", user, "username", json_object_get(u, "username"), "fullname",
		              json_object_get(u, "fullname"), "email", json_object_get(u, "email"),
		              "submitted", submitted, "requiregrading",
		              submitted && strcmp(jstr(sub, "gradingstatus"), "graded") != 0,
		              "grantedextension", extension, "submissionstatus",
		              sub ? jstr(sub, "status") : "new", "blindmarking", 0,
		              "allowsubmissionsfromdate", from, "duedate", due, "cutoffdate",
		              cutoff, "groupid", mygroup ? jint(mygroup, "id") : 0, "groupname",
		              mygroup ? json_incref(json_object_get(mygroup, "name"))
		                      : json_null()));
	}
	json_decref(seen);
	json_decref(group_of);
	json_decref(sub_of);
	answer(r, out);
}

static void send_messages(struct src_req *r)
{
	json_t *list = entries(r, "messages");
	if (!json_array_size(list)) {
		json_decref(list);
		invalid_parameter(r);
		return;
	}
	json_t *out = json_array(), *log = md("messages");
	size_t i;
	json_t *m;
	json_int_t from = 900;
	json_t *me = json_array_get(json_object_get(campus.root, "staff"), 0);
	if (me)
		from = jint(me, "id");
	json_array_foreach(list, i, m) {
		const char *prefix = json_string_value(m);
		const char *to = sub_param(r, prefix, "touserid"),
		           *text = sub_param(r, prefix, "text");
		const char *format = sub_param(r, prefix, "textformat"),
		           *client = sub_param(r, prefix, "clientmsgid");
		long uid = src_long(to), fmt = format ? src_long(format) : 0;
		if (uid < 0 || !text || fmt < 0 || fmt > 4) {
			json_decref(out);
			json_decref(list);
			invalid_parameter(r);
			return;
		}
		char key[32];
		if (!json_object_get(campus.md_users, key_of(uid, key, sizeof(key)))) {
			char msg[96];
			snprintf(msg, sizeof(msg), "The destination user id (%ld) doesn't exist",
			         uid);
			json_t *res = json_pack("{s:i, s:s}", "msgid", -1, "errormessage", msg);
			if (client)
				json_object_set_new(res, "clientmsgid", json_string(client));
			json_array_append_new(out, res);
			continue;
		}
		json_int_t id = 3001 + (json_int_t)json_array_size(log);
		json_int_t at = (json_int_t)(r->now / 1000);
		json_t *rec =
		    json_pack("{s:I, s:I, s:I, s:s, s:i, s:I, s:I}", "id", id, "useridfrom", from,
		              "touserid", (json_int_t)uid, "text", text, "textformat", (int)fmt,
		              "timecreated", at, "conversationid", 500 + uid);
		if (client)
			json_object_set_new(rec, "clientmsgid", json_string(client));
		json_array_append_new(log, rec);
		json_t *res = json_pack("{s:I, s:s, s:I, s:I, s:I, s:b}", "msgid", id, "text", text,
		                        "timecreated", at, "conversationid", 500 + uid,
		                        "useridfrom", from, "candeletemessagesforallusers", 0);
		if (client)
			json_object_set_new(res, "clientmsgid", json_string(client));
		json_array_append_new(out, res);
	}
	json_decref(list);
	answer(r, out);
}

void moodle_handle(struct src_req *r)
{
	if (strcmp(r->sub, "/webservice/rest/server.php") != 0) {
		src_text(
		    r, 404, "text/html; charset=utf-8",
		    strdup(
		        "<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>"
		        "<p>The requested URL was not found on this server.</p></body></html>\n"));
		return;
	}
	const char *token = srcp_get(&r->q, "wstoken");
	const char *fn = srcp_get(&r->q, "wsfunction");
	r->function = fn;
	if (!token || strcmp(token, sim.opts.source_token) != 0) {
		exception(r, "moodle_exception", "invalidtoken", "Invalid token - token not found");
		return;
	}
	if (!fn) {
		invalid_parameter(r);
		return;
	}
	if (strcmp(fn, "core_enrol_get_enrolled_users") == 0)
		enrolled_users(r);
	else if (strcmp(fn, "core_group_get_course_groups") == 0)
		course_groups(r);
	else if (strcmp(fn, "core_group_get_group_members") == 0)
		members(r, "groupids", "group_members", "groupid", "groups", "groups");
	else if (strcmp(fn, "core_cohort_get_cohorts") == 0)
		cohorts(r);
	else if (strcmp(fn, "core_cohort_get_cohort_members") == 0)
		members(r, "cohortids", "cohort_members", "cohortid", "cohorts", "cohort");
	else if (strcmp(fn, "mod_assign_get_assignments") == 0)
		get_assignments(r);
	else if (strcmp(fn, "mod_assign_get_submissions") == 0)
		per_assignment(r, false);
	else if (strcmp(fn, "mod_assign_get_user_flags") == 0)
		per_assignment(r, true);
	else if (strcmp(fn, "mod_assign_list_participants") == 0)
		list_participants(r);
	else if (strcmp(fn, "core_message_send_instant_messages") == 0)
		send_messages(r);
	else
		missing_record(r, "external_functions");
}
