/* Moodle web services (REST): for each configured course, its enrolled students (paged with
 * limitfrom, as the function gives no total: a short page ends it) and their groups, the
 * site's cohorts and their members, the course's assignments, each student's dates after
 * user and group overrides (mod_assign_list_participants), extensions, and submissions. XML is
 * Moodle's default format and the one used unless the source says "format": "json"; both read into
 * the same values. Errors come with HTTP 200 in either format and are checked on every answer.
 * Moodle has no late flag: a submission is late when it was last modified after the student's due
 * date (after overrides; a later extension replaces it), and missing when nothing was submitted by
 * then. Timestamps are Unix seconds, 0 meaning unset. The token travels in the POST body, never in
 * a URL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connector.h"
#include "fetch.h"
#include "moodle_xml.h"

#define PAGE 100

enum step {
	S_USERS,
	S_COHORTS,
	S_COHORT_MEMBERS,
	S_ASSIGNMENTS,
	S_FLAGS,
	S_PARTICIPANTS,
	S_SUBMISSIONS,
	S_DONE
};

struct moodle {
	const struct source_env *env;
	struct fetcher *f;
	char url[640];
	int json;
	connector_done done;
	void *ud;
	json_t *courses;
	size_t course;
	enum step step;
	long offset;
	json_t *users, *cohorts, *cohort_members, *assignments, *flags, *submissions;
	json_t *asg_ids;   /* the course's assignment ids, for the participants' dates */
	size_t asg_next;   /* the next of them to ask about */
	json_t *own_dates; /* "assignment/user" -> due date after overrides (Unix seconds) */
	json_t *snap, *seen_people;
};

static void next_step(struct moodle *m);

static void fail(struct moodle *m, const struct err *err)
{
	connector_done done = m->done;
	m->done = NULL;
	if (done)
		done(m->ud, NULL, err);
}

/* Moodle's scalars arrive as strings in XML and as numbers in JSON */
static long long num(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static const char *str_id(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	snprintf(buf, size, "%lld", num(v));
	return buf;
}

static json_t *iso(long long t)
{
	if (t <= 0)
		return json_null();
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* An answer in either format, with Moodle's errors (sent with HTTP 200) as errors. */
static json_t *parse_answer(const struct moodle *m, const struct httpc_response *resp,
                            struct err *e)
{
	if (!m->json)
		return moodle_xml_parse(resp->body ? resp->body : "", resp->body_len, e);
	json_t *j = fetch_json(m->f, resp, e);
	if (j && moodle_check_exception(j, e) != 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Calls function with params (already form-encoded); the token goes in the body, never in
 * a URL. */
static int post(struct moodle *m, const char *function, const char *params, fetch_cb cb, void *ud)
{
	char tok[512], body[65536];
	fetch_escape(tok, sizeof(tok), m->env->token ? m->env->token : "");
	snprintf(body, sizeof(body), "wstoken=%s&wsfunction=%s&moodlewsrestformat=%s%s%s", tok,
	         function, m->json ? "json" : "xml", *params ? "&" : "", params);
	struct fetch_req rq = {.method = "POST",
	                       .url = m->url,
	                       .body = body,
	                       .content_type = "application/x-www-form-urlencoded",
	                       .expect = m->json ? "json" : "xml"};
	int rc = fetch(m->f, &rq, cb, ud);
	memset(tok, 0, sizeof(tok));
	memset(body, 0, sizeof(body));
	return rc;
}

static void on_answer(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct moodle *m = ud;
	struct err e = {0};
	if (err) {
		fail(m, err);
		return;
	}
	json_t *j = parse_answer(m, resp, &e);
	if (!j) {
		struct err named;
		err_set(&named, "%s: %s", m->env->cfg->name, e.msg);
		fail(m, &named);
		return;
	}
	switch (m->step) {
	case S_USERS: {
		size_t got = json_array_size(j);
		json_array_extend(m->users, j);
		json_decref(j);
		if (got == PAGE) {
			m->offset += PAGE;
			if (m->env->progress && m->offset % 1000 == 0) {
				char line[96];
				snprintf(line, sizeof(line), "%ld users so far", m->offset);
				m->env->progress(m->env->progress_ud, line);
			}
		} else {
			m->step = S_ASSIGNMENTS;
		}
		break;
	}
	case S_COHORTS:
		json_decref(m->cohorts);
		m->cohorts = json_is_array(j) ? j : json_array();
		if (j != m->cohorts)
			json_decref(j);
		m->step = json_array_size(m->cohorts) ? S_COHORT_MEMBERS : S_DONE;
		break;
	case S_COHORT_MEMBERS:
		json_decref(m->cohort_members);
		m->cohort_members = j;
		m->step = S_DONE;
		break;
	case S_ASSIGNMENTS:
		json_decref(m->assignments);
		m->assignments = j;
		m->step = S_FLAGS;
		break;
	case S_FLAGS:
		json_decref(m->flags);
		m->flags = j;
		m->step = S_PARTICIPANTS;
		break;
	case S_PARTICIPANTS: {
		/* each participant's dates after user and group overrides */
		const char *aid = json_string_value(json_array_get(m->asg_ids, m->asg_next - 1));
		size_t i;
		json_t *x;
		char b[32];
		json_array_foreach(j, i, x) {
			char key[80];
			snprintf(key, sizeof(key), "%s/%s", aid,
			         str_id(json_object_get(x, "id"), b, sizeof(b)));
			json_object_set_new(m->own_dates, key,
			                    json_integer(num(json_object_get(x, "duedate"))));
		}
		json_decref(j);
		if (m->asg_next >= json_array_size(m->asg_ids))
			m->step = S_SUBMISSIONS;
		break;
	}
	case S_SUBMISSIONS:
		json_decref(m->submissions);
		m->submissions = j;
		m->step = S_DONE;
		break;
	case S_DONE:
		json_decref(j);
		break;
	}
	next_step(m);
}

static void call(struct moodle *m, const char *function, const char *params)
{
	if (post(m, function, params, on_answer, m) != 0) {
		struct err e;
		err_set(&e, "%s: cannot start a request", m->env->cfg->name);
		fail(m, &e);
	}
}

/* "assignmentids[0]=3&assignmentids[1]=4" for the course's assignments */
static void assignment_ids(const struct moodle *m, char *out, size_t cap)
{
	size_t n = 0, i, k, a = 0;
	json_t *c, *x;
	char b[32];
	out[0] = '\0';
	json_array_foreach(json_object_get(m->assignments, "courses"), i, c) {
		json_array_foreach(json_object_get(c, "assignments"), k, x) {
			int w = snprintf(out + n, cap - n, "%sassignmentids[%zu]=%s", n ? "&" : "",
			                 a++, str_id(json_object_get(x, "id"), b, sizeof(b)));
			if (w < 0 || (size_t)w >= cap - n)
				return;
			n += (size_t)w;
		}
	}
}

static void fold_course(struct moodle *m, const char *course)
{
	json_t *people = json_object_get(m->snap, "people"),
	       *members = json_object_get(m->snap, "memberships"),
	       *asgs = json_object_get(m->snap, "assignments"),
	       *dues = json_object_get(m->snap, "due_dates"),
	       *subs = json_object_get(m->snap, "submissions");
	json_t *students = json_object(), *ext = json_object();
	size_t i, k;
	json_t *u, *x;
	char b1[32], b2[32];
	time_t now = time(NULL);

	json_array_foreach(m->users, i, u) {
		int student = 0;
		json_array_foreach(json_object_get(u, "roles"), k, x) {
			const char *sn = json_string_value(json_object_get(x, "shortname"));
			student |= sn && strcmp(sn, "student") == 0;
		}
		if (!student)
			continue;
		const char *uid = str_id(json_object_get(u, "id"), b1, sizeof(b1));
		json_object_set_new(students, uid, json_true());
		if (!json_object_get(m->seen_people, uid)) {
			json_object_set_new(m->seen_people, uid, json_true());
			const char *tz = json_string_value(json_object_get(u, "timezone"));
			json_t *extra = json_object();
			const char *keys[] = {"username", "firstname", "lastname", "idnumber"};
			for (size_t q = 0; q < 4; q++)
				if (json_is_string(json_object_get(u, keys[q])))
					json_object_set(extra, keys[q],
					                json_object_get(u, keys[q]));
			json_t *fullname = json_object_get(u, "fullname"),
			       *email = json_object_get(u, "email");
			json_array_append_new(
			    people,
			    json_pack("{s:s, s:O, s:O, s:o, s:o}", "id", uid, "name",
			              json_is_string(fullname) ? fullname : json_null(), "email",
			              json_is_string(email) ? email : json_null(), "time_zone",
			              tz && strcmp(tz, "99") != 0 ? json_string(tz) : json_null(),
			              "extra", extra));
		}
		json_array_foreach(json_object_get(u, "groups"), k, x) {
			json_t *gname = json_object_get(x, "name");
			json_array_append_new(
			    members,
			    json_pack("{s:s, s:s, s:s, s:O, s:s, s:s}", "person", uid, "kind",
			              "group", "group",
			              str_id(json_object_get(x, "id"), b2, sizeof(b2)),
			              "group_name", json_is_string(gname) ? gname : json_null(),
			              "status", "active", "course", course));
		}
	}
	/* extensions: assignment/user -> date */
	json_array_foreach(json_object_get(m->flags, "assignments"), i, x) {
		const char *aid = str_id(json_object_get(x, "assignmentid"), b1, sizeof(b1));
		json_t *f;
		json_array_foreach(json_object_get(x, "userflags"), k, f) {
			long long e = num(json_object_get(f, "extensionduedate"));
			if (e > 0) {
				char key[80];
				snprintf(key, sizeof(key), "%s/%s", aid,
				         str_id(json_object_get(f, "userid"), b2, sizeof(b2)));
				json_object_set_new(ext, key, json_integer(e));
			}
		}
	}
	/* submissions: assignment/user -> when */
	json_t *submitted = json_object(), *state = json_object();
	json_array_foreach(json_object_get(m->submissions, "assignments"), i, x) {
		const char *aid = str_id(json_object_get(x, "assignmentid"), b1, sizeof(b1));
		json_t *s;
		json_array_foreach(json_object_get(x, "submissions"), k, s) {
			char key[80];
			snprintf(key, sizeof(key), "%s/%s", aid,
			         str_id(json_object_get(s, "userid"), b2, sizeof(b2)));
			const char *st = json_string_value(json_object_get(s, "status"));
			json_object_set_new(state, key, json_string(st ? st : "new"));
			if (st && strcmp(st, "submitted") == 0)
				json_object_set_new(
				    submitted, key,
				    json_integer(num(json_object_get(s, "timemodified"))));
		}
	}
	json_t *c;
	json_array_foreach(json_object_get(m->assignments, "courses"), i, c) {
		json_array_foreach(json_object_get(c, "assignments"), k, x) {
			const char *aid = str_id(json_object_get(x, "id"), b1, sizeof(b1));
			long long due = num(json_object_get(x, "duedate"));
			json_t *name = json_object_get(x, "name");
			json_array_append_new(
			    asgs, json_pack("{s:s, s:s, s:O, s:o}", "id", aid, "course", course,
			                    "name", json_is_string(name) ? name : json_null(),
			                    "due_at", iso(due)));
			const char *uid;
			json_t *unused;
			json_object_foreach(students, uid, unused) {
				char key[80];
				snprintf(key, sizeof(key), "%s/%s", aid, uid);
				json_t *own = json_object_get(m->own_dates, key);
				long long mine = own ? json_integer_value(own) : due,
				          e = json_integer_value(json_object_get(ext, key));
				if (e > mine)
					mine = e;
				json_array_append_new(dues, json_pack("{s:s, s:s, s:o}",
				                                      "assignment", aid, "person",
				                                      uid, "due_at", iso(mine)));
				json_t *when = json_object_get(submitted, key);
				const char *st = json_string_value(json_object_get(state, key));
				if (!when && !st)
					continue;
				long long t = when ? json_integer_value(when) : 0;
				int late = when && mine > 0 && t > mine;
				int missing = !when && mine > 0 && (long long)now > mine;
				json_array_append_new(
				    subs,
				    json_pack("{s:s, s:s, s:s, s:o, s:b, s:b, s:b}", "assignment",
				              aid, "person", uid, "state", st ? st : "submitted",
				              "submitted_at", iso(t), "late", late, "missing",
				              missing, "excused", 0));
			}
		}
	}
	json_decref(submitted);
	json_decref(state);
	json_decref(students);
	json_decref(ext);
}

static void next_step(struct moodle *m)
{
	char params[65536];
	const char *course = json_string_value(json_array_get(m->courses, m->course));
	switch (m->step) {
	case S_USERS:
		/* onlyactive: a suspended enrolment is a learner who left (Moodle lists them
		 * otherwise, with nothing that tells them apart) */
		snprintf(
		    params, sizeof(params),
		    "courseid=%s&options[0][name]=limitfrom&options[0][value]=%ld&options[1]["
		    "name]=limitnumber&options[1][value]=%d&options[2][name]=onlyactive&options["
		    "2][value]=1",
		    course, m->offset, PAGE);
		call(m, "core_enrol_get_enrolled_users", params);
		return;
	case S_ASSIGNMENTS:
		snprintf(params, sizeof(params), "courseids[0]=%s", course);
		call(m, "mod_assign_get_assignments", params);
		return;
	case S_FLAGS:
	case S_SUBMISSIONS:
		assignment_ids(m, params, sizeof(params));
		if (!params[0]) {
			/* a course without assignments */
			json_decref(m->flags);
			json_decref(m->submissions);
			m->flags = json_object();
			m->submissions = json_object();
			m->step = S_DONE;
			next_step(m);
			return;
		}
		call(m,
		     m->step == S_FLAGS ? "mod_assign_get_user_flags"
		                        : "mod_assign_get_submissions",
		     params);
		return;
	case S_PARTICIPANTS: {
		if (!m->asg_ids) {
			size_t i, k;
			json_t *c, *x;
			char b[32];
			m->asg_ids = json_array();
			m->asg_next = 0;
			json_array_foreach(json_object_get(m->assignments, "courses"), i, c) {
				json_array_foreach(json_object_get(c, "assignments"), k, x) {
					json_array_append_new(
					    m->asg_ids, json_string(str_id(json_object_get(x, "id"),
					                                   b, sizeof(b))));
				}
			}
		}
		if (m->asg_next >= json_array_size(m->asg_ids)) {
			m->step = S_SUBMISSIONS;
			next_step(m);
			return;
		}
		snprintf(params, sizeof(params), "assignid=%s&groupid=0&filter=&skip=0&limit=0",
		         json_string_value(json_array_get(m->asg_ids, m->asg_next++)));
		call(m, "mod_assign_list_participants", params);
		return;
	}
	case S_COHORTS:
		call(m, "core_cohort_get_cohorts", "");
		return;
	case S_COHORT_MEMBERS: {
		size_t n = 0, i;
		json_t *x;
		char b[32];
		params[0] = '\0';
		json_array_foreach(m->cohorts, i, x) {
			int w = snprintf(params + n, sizeof(params) - n, "%scohortids[%zu]=%s",
			                 n ? "&" : "", i,
			                 str_id(json_object_get(x, "id"), b, sizeof(b)));
			if (w < 0 || (size_t)w >= sizeof(params) - n)
				break;
			n += (size_t)w;
		}
		call(m, "core_cohort_get_cohort_members", params);
		return;
	}
	case S_DONE:
		break;
	}
	if (m->course < json_array_size(m->courses)) {
		/* a course is read: fold it in, then the next course, then the cohorts */
		fold_course(m, course);
		json_decref(m->users);
		m->users = json_array();
		json_decref(m->asg_ids);
		m->asg_ids = NULL;
		json_object_clear(m->own_dates);
		m->offset = 0;
		m->course++;
		m->step = m->course < json_array_size(m->courses) ? S_USERS : S_COHORTS;
		next_step(m);
		return;
	}
	/* cohorts hold site-wide members: only the students of the courses read count */
	json_t *members = json_object_get(m->snap, "memberships"), *names = json_object();
	size_t i, k;
	json_t *x, *u;
	char b1[32], b2[32];
	json_array_foreach(m->cohorts, i, x) {
		json_object_set(names, str_id(json_object_get(x, "id"), b1, sizeof(b1)),
		                json_object_get(x, "name"));
	}
	json_array_foreach(m->cohort_members, i, x) {
		const char *cid = str_id(json_object_get(x, "cohortid"), b1, sizeof(b1));
		json_t *name = json_object_get(names, cid);
		json_array_foreach(json_object_get(x, "userids"), k, u) {
			const char *uid = str_id(u, b2, sizeof(b2));
			if (!json_object_get(m->seen_people, uid))
				continue;
			json_array_append_new(
			    members, json_pack("{s:s, s:s, s:s, s:O, s:s}", "person", uid, "kind",
			                       "cohort", "group", cid, "group_name",
			                       json_is_string(name) ? name : json_null(), "status",
			                       "active"));
		}
	}
	json_decref(names);
	connector_done done = m->done;
	json_t *snap = m->snap;
	m->snap = NULL;
	m->done = NULL;
	done(m->ud, snap, NULL);
}

static void *md_init(const struct source_env *env, struct err *err)
{
	const json_t *courses = json_object_get(env->cfg->extra, "courses");
	const char *format = json_string_value(json_object_get(env->cfg->extra, "format"));
	if (!env->cfg->url || !json_array_size(courses)) {
		err_set(err, "a moodle source needs \"url\" and \"courses\"");
		return NULL;
	}
	if (!env->token) {
		err_set(err, "a moodle source needs a token: set token_env");
		return NULL;
	}
	struct moodle *m = calloc(1, sizeof(*m));
	if (!m || !(m->f = fetcher_new(env, FETCH_AUTH_NONE, NULL))) {
		free(m);
		err_set(err, "out of memory");
		return NULL;
	}
	m->env = env;
	m->json = format && strcmp(format, "json") == 0;
	size_t n = strlen(env->cfg->url);
	while (n && env->cfg->url[n - 1] == '/')
		n--;
	const char *ep = "/webservice/rest/server.php";
	int has_ep =
	    n >= strlen(ep) && strncmp(env->cfg->url + n - strlen(ep), ep, strlen(ep)) == 0;
	snprintf(m->url, sizeof(m->url), "%.*s%s", (int)n, env->cfg->url, has_ep ? "" : ep);
	m->courses = json_array();
	size_t i;
	json_t *v;
	char b[32];
	json_array_foreach(courses, i, v) {
		json_array_append_new(m->courses, json_string(str_id(v, b, sizeof(b))));
	}
	return m;
}

static void md_sync(void *p, connector_done done, void *ud)
{
	struct moodle *m = p;
	m->done = done;
	m->ud = ud;
	m->snap = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "people", "memberships",
	                    "assignments", "due_dates", "submissions");
	m->seen_people = json_object();
	m->own_dates = json_object();
	m->users = json_array();
	m->step = S_USERS;
	next_step(m);
}

struct md_send {
	struct moodle *m;
	void (*done)(void *ud, const struct err *err);
	void *ud;
};

/* [{"msgid": 12, ...}] or [{"msgid": -1, "errormessage": "..."}] */
static void on_sent(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct md_send *s = ud;
	struct err e = {0};
	if (!err) {
		json_t *j = parse_answer(s->m, resp, &e);
		if (j) {
			const json_t *first = json_array_get(j, 0);
			if (num(json_object_get(first, "msgid")) <= 0) {
				const char *why =
				    json_string_value(json_object_get(first, "errormessage"));
				err_set(&e, "%s: Moodle did not send the message: %s",
				        s->m->env->cfg->name, why ? why : "no reason given");
			}
			json_decref(j);
		}
		err = e.msg[0] ? &e : NULL;
	}
	s->done(s->ud, err);
	free(s);
}

static void md_send(void *p, const char *person, const char *subject, const char *text,
                    void (*done)(void *ud, const struct err *err), void *ud)
{
	struct moodle *m = p;
	struct err e = {0};
	struct md_send *s = malloc(sizeof(*s));
	if (!s) {
		err_set(&e, "out of memory");
		done(ud, &e);
		return;
	}
	*s = (struct md_send){m, done, ud};
	char who[96], msg[8192], params[10240], full[4096];
	fetch_escape(who, sizeof(who), person);
	/* Moodle's instant messages have no subject: it leads the text */
	snprintf(full, sizeof(full), "%s%s%s", subject && *subject ? subject : "",
	         subject && *subject ? "\n\n" : "", text);
	fetch_escape(msg, sizeof(msg), full);
	snprintf(params, sizeof(params),
	         "messages[0][touserid]=%s&messages[0][text]=%s&messages[0][textformat]=2", who,
	         msg);
	if (post(m, "core_message_send_instant_messages", params, on_sent, s) != 0) {
		free(s);
		err_set(&e, "%s: busy", m->env->cfg->name);
		done(ud, &e);
	}
}

static void md_describe(void *p, char *buf, size_t size)
{
	struct moodle *m = p;
	snprintf(buf, size, "Moodle at %s (%s)", m->url, m->json ? "JSON" : "XML");
}

static void md_free(void *p)
{
	struct moodle *m = p;
	if (!m)
		return;
	fetcher_free(m->f);
	json_decref(m->courses);
	json_decref(m->users);
	json_decref(m->cohorts);
	json_decref(m->cohort_members);
	json_decref(m->assignments);
	json_decref(m->flags);
	json_decref(m->submissions);
	json_decref(m->snap);
	json_decref(m->seen_people);
	json_decref(m->asg_ids);
	json_decref(m->own_dates);
	free(m);
}

const struct connector_ops moodle_connector = {
    .type = "moodle",
    .init = md_init,
    .sync = md_sync,
    .send = md_send,
    .describe = md_describe,
    .free = md_free,
};
