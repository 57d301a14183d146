/* The campus the fake sources share: learners in eight cohorts (Berlin and Lisbon, Web and
 * Data, starting in January or March 2026), generated from a seed, and what each system holds
 * about them, in its own API shapes:
 *   Canvas: users, two courses, a section per city and start, enrollments (a few withdrawn, one
 *           teacher), four assignments per course with section and student overrides, and a
 *           submission record for every learner and assignment;
 *   Moodle: the same people and courses, groups (the sections), cohorts (programme and start),
 *           assignments, overrides, an extension, submissions;
 *   pretix: an event with a learner pass (a variation per city), a staff pass and a workshop
 *           add-on, check-in lists, and an order per learner.
 * Also the changes made through POST /_sim/sources/mutate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

#define TEACHER_ID 900
#define FIRST_ID   1001

/* The generator's own random numbers, so that the campus depends on the seed alone. */
struct gen {
	uint64_t rng;
};

static double grand(struct gen *g)
{
	uint64_t x = g->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static long gpick(struct gen *g, long n)
{
	long v = (long)(grand(g) * (double)n);
	return v < n ? v : n - 1;
}

static void grandom_chars(struct gen *g, const char *alphabet, char *out, size_t n)
{
	size_t al = strlen(alphabet);
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[gpick(g, (long)al)];
	out[n] = '\0';
}

static const char *const given_names[] = {
    "José",   "Ana",        "João",   "Inês",     "Lena",     "Jürgen",   "Zoë",    "Søren",
    "Ayşe",   "Małgorzata", "Chloé",  "François", "Ngozi",    "Priya",    "Mei",    "Oluwaseun",
    "Mateus", "Beatriz",    "Björn",  "Élodie",   "Łukasz",   "Jonas",    "Sofia",  "Mia",
    "Noah",   "Leon",       "Emma",   "Hannah",   "Tomás",    "Gonçalo",  "Chiara", "Dmitri",
    "Yusuf",  "Aiko",       "Fátima", "Lucía",    "Raúl",     "Sérgio",   "Ingrid", "Kemal",
    "Amélie", "Nils",       "Olga",   "Rui",      "Catarina", "Felix",    "Clara",  "Miguel",
    "Leonor", "Paul",       "Maël",   "Zeynep",   "Ömer",     "Małgosia", "Renée",  "Jiří"};

static const char *const family_names[] = {
    "Núñez",      "Müller",     "Schröder",     "Gonçalves", "Conceição", "Öztürk",
    "Wiśniewski", "Sørensen",   "Dubois",       "Becker",    "Fischer",   "Silva",
    "Santos",     "Ferreira",   "Costa",        "Pereira",   "Okafor",    "Nakamura",
    "Kowalski",   "Weiß",       "Lefèvre",      "García",    "Martínez",  "Yılmaz",
    "Andersson",  "O'Brien",    "van der Berg", "Kim",       "Nguyễn",    "Hoffmann",
    "Schäfer",    "Rodrigues",  "Almeida",      "Carvalho",  "Sousa",     "Oliveira",
    "Krüger",     "Zimmermann", "Dąbrowska",    "Brandão",   "Jäger",     "Rossi",
    "Mendes",     "Lopes",      "Wagner",       "Ribeiro",   "Novák",     "Horváth",
    "Petrović",   "Çelik",      "Łęcka",        "Ahmed",     "Dvořák",    "Ferreira da Silva"};

/* ASCII for the letters above, for e-mail addresses and user names. */
static const char *const translit[][2] = {
    {"á", "a"},  {"à", "a"},  {"â", "a"}, {"ä", "a"}, {"ã", "a"}, {"å", "a"}, {"ą", "a"},
    {"æ", "ae"}, {"ç", "c"},  {"ć", "c"}, {"č", "c"}, {"é", "e"}, {"è", "e"}, {"ê", "e"},
    {"ë", "e"},  {"ę", "e"},  {"ễ", "e"}, {"ě", "e"}, {"í", "i"}, {"ì", "i"}, {"î", "i"},
    {"ï", "i"},  {"ı", "i"},  {"ł", "l"}, {"ñ", "n"}, {"ń", "n"}, {"ó", "o"}, {"ò", "o"},
    {"ô", "o"},  {"ö", "o"},  {"õ", "o"}, {"ø", "o"}, {"ő", "o"}, {"ś", "s"}, {"š", "s"},
    {"ş", "s"},  {"ß", "ss"}, {"ú", "u"}, {"ù", "u"}, {"û", "u"}, {"ü", "u"}, {"ý", "y"},
    {"ź", "z"},  {"ż", "z"},  {"ž", "z"}, {"ğ", "g"}, {"ř", "r"}, {"Á", "a"}, {"É", "e"},
    {"Ł", "l"},  {"Ö", "o"},  {"Ü", "u"}, {"Ø", "o"}, {"Ç", "c"}, {"Ś", "s"}, {"Ż", "z"},
    {"Ó", "o"},  {"Í", "i"},  {"Ú", "u"}, {"Ä", "a"}, {"Å", "a"}, {"Š", "s"}, {"Č", "c"},
    {"Ž", "z"},  {"Ş", "s"},  {"İ", "i"}};

/* "Núñez" -> "nunez"; "van der Berg" -> "vanderberg"; "O'Brien" -> "obrien". */
static void ascii_slug(const char *s, char *out, size_t size)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p && o + 3 < size) {
		if (*p < 0x80) {
			if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
				out[o++] = (char)*p;
			else if (*p >= 'A' && *p <= 'Z')
				out[o++] = (char)(*p - 'A' + 'a');
			p++;
			continue;
		}
		size_t matched = 0;
		for (size_t i = 0; i < sizeof(translit) / sizeof(translit[0]) && !matched; i++) {
			size_t n = strlen(translit[i][0]);
			if (strncmp((const char *)p, translit[i][0], n) == 0) {
				for (const char *a = translit[i][1]; *a && o + 1 < size; a++)
					out[o++] = *a;
				matched = n;
			}
		}
		if (!matched) { /* unknown: skip the whole UTF-8 sequence */
			matched = 1;
			while ((p[matched] & 0xC0) == 0x80)
				matched++;
		}
		p += matched;
	}
	out[o] = '\0';
}

static const char *const cities[] = {"Berlin", "Lisbon"};
static const char *const city_codes[] = {"BER", "LIS"};
static const char *const countries[] = {"DE", "PT"};
static const char *const programs[] = {"Web", "Data"};
static const char *const course_names[] = {"Web Development", "Data Science"};
static const char *const course_codes[] = {"WEB-2026", "DATA-2026"};
static const char *const starts[] = {"2026-01", "2026-03"};
static const int start_days[][3] = {{2026, 1, 12}, {2026, 3, 9}};
static const char *const far_zones[] = {"Europe/London", "America/New_York", "America/Sao_Paulo",
                                        "Asia/Kolkata",  "Africa/Lagos",     "Asia/Tokyo"};

static const char *const assignment_names[2][4] = {
    {"Portfolio page (HTML & CSS)", "JavaScript game", "API project <capstone>",
     "Learning journal"},
    {"Data cleaning with pandas", "SQL & dashboards", "Machine-learning capstone",
     "Learning journal"}};

/* Due dates: two past, one still ahead of the campus's "now" (2026-06-01), one without. */
static uint64_t base_due(int k)
{
	switch (k) {
	case 0:
		return src_utc(2026, 2, 13, 22, 59, 59);
	case 1:
		return src_utc(2026, 3, 27, 22, 59, 59);
	case 2:
		return src_utc(2026, 6, 19, 21, 59, 59);
	default:
		return 0;
	}
}

#define SECTION_OVERRIDE_DAYS 7 /* assignment 2, Lisbon's January cohort */
#define STUDENT_OVERRIDE_DAYS 7 /* assignment 3, one learner per course */
#define EXTENSION_DAYS        5 /* Moodle: assignment 1, one learner per course */
#define DAY_MS                86400000ull
#define HOUR_MS               3600000ull

static json_t *iso(uint64_t ms)
{
	return ms ? src_iso_json(ms, 0) : json_null();
}

static json_t *iso_frac(uint64_t ms)
{
	return src_iso_json(ms, 1);
}

static json_int_t secs(uint64_t ms)
{
	return (json_int_t)(ms / 1000);
}

static char *idkey(json_int_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", (long long)id);
	return buf;
}

/* --- people --- */

static json_t *person(struct gen *g, json_t *used, json_int_t id, const char *given,
                      const char *family, int city)
{
	char a[64], b[64], local[140], email[180];
	ascii_slug(given, a, sizeof(a));
	ascii_slug(family, b, sizeof(b));
	snprintf(local, sizeof(local), "%s.%s", a, b);
	for (int n = 2; json_object_get(used, local); n++)
		snprintf(local, sizeof(local), "%s.%s%d", a, b, n);
	json_object_set_new(used, local, json_true());
	snprintf(email, sizeof(email), "%s@example.org", local);
	char name[160];
	snprintf(name, sizeof(name), "%s %s", given, family);
	const char *tz =
	    grand(g) < 0.75 ? (city ? "Europe/Lisbon" : "Europe/Berlin") : far_zones[gpick(g, 6)];
	/* Moodle: about a third keep the site's default zone ("99") */
	const char *mtz = grand(g) < 0.3 ? "99" : tz;
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "first_name", given,
	                 "last_name", family, "name", name, "email", email, "username", local,
	                 "time_zone", tz, "moodle_timezone", mtz);
}

/* --- Canvas --- */

static json_t *canvas_user(json_t *p, uint64_t created)
{
	char sortable[200], sis[32];
	snprintf(sortable, sizeof(sortable), "%s, %s", jstr(p, "last_name"), jstr(p, "first_name"));
	snprintf(sis, sizeof(sis), "%s%lld", jint(p, "id") == TEACHER_ID ? "T" : "L",
	         (long long)jint(p, "id"));
	return json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:n, s:s, s:s, s:s, s:n}", "id",
	                 jint(p, "id"), "name", jstr(p, "name"), "created_at", iso(created),
	                 "sortable_name", sortable, "short_name", jstr(p, "name"), "sis_user_id",
	                 sis, "integration_id", "login_id", jstr(p, "email"), "email",
	                 jstr(p, "email"), "time_zone", jstr(p, "time_zone"), "locale");
}

static json_t *canvas_enrollment(json_int_t id, json_t *p, int course, json_int_t section,
                                 bool teacher, const char *state, uint64_t created,
                                 uint64_t updated, struct gen *g)
{
	char url[128], sis_section[48];
	snprintf(url, sizeof(url), "https://canvas.example.org/courses/%d/users/%lld", course,
	         (long long)jint(p, "id"));
	snprintf(sis_section, sizeof(sis_section), "%s-%s-%s", course == 1 ? "WEB" : "DATA",
	         city_codes[(section % 10 - 1) / 2], starts[(section % 10 - 1) % 2]);
	const char *type = teacher ? "TeacherEnrollment" : "StudentEnrollment";
	json_t *e = json_pack(
	    "{s:I, s:I, s:i, s:s, s:o, s:o, s:n, s:n, s:n, s:I, s:i, s:b, s:s, s:s, s:i, s:o, s:n, "
	    "s:i, s:n, s:s, s:n, s:s, s:n, s:n, s:s}",
	    "id", id, "user_id", jint(p, "id"), "course_id", course, "type", type, "created_at",
	    iso(created), "updated_at", iso(updated), "associated_user_id", "start_at", "end_at",
	    "course_section_id", section, "root_account_id", 1,
	    "limit_privileges_to_course_section", 0, "enrollment_state", state, "role", type,
	    "role_id", teacher ? 4 : 3, "last_activity_at",
	    iso(src_utc(2026, 5, 20, 8, 0, 0) + (uint64_t)gpick(g, 280) * HOUR_MS),
	    "last_attended_at", "total_activity_time", (int)gpick(g, 400000), "sis_account_id",
	    "sis_course_id", course_codes[course - 1], "course_integration_id", "sis_section_id",
	    sis_section, "section_integration_id", "sis_user_id", "html_url", url);
	return e;
}

uint64_t campus_canvas_due(json_t *a, json_int_t user_id, json_int_t section_id)
{
	uint64_t base = 0, best = 0, t;
	bool matched = false, open = false;
	if (jstr(a, "due_at"))
		src_parse_iso(jstr(a, "due_at"), &base);
	size_t i, j;
	json_t *o, *sid;
	json_array_foreach(json_object_get(a, "overrides"), i, o) {
		bool hit = json_object_get(o, "course_section_id") &&
		           jint(o, "course_section_id") == section_id;
		json_array_foreach(json_object_get(o, "student_ids"), j, sid)
			hit = hit || json_integer_value(sid) == user_id;
		if (!hit)
			continue;
		matched = true;
		json_t *due = json_object_get(o, "due_at");
		/* no due_at key: the base date; null: no date at all */
		if (!due)
			t = base;
		else if (json_is_null(due) || src_parse_iso(json_string_value(due), &t) != 0)
			t = 0;
		if (!t)
			open = true;
		else if (t > best)
			best = t;
	}
	if (!matched)
		return base;
	/* Canvas gives the most lenient of the dates that apply */
	return open ? 0 : best;
}

/* The plan for one learner and assignment, shared by Canvas and Moodle. */
struct work {
	bool submitted, excused, graded;
	uint64_t at;
	double score;
};

static struct work plan_work(struct gen *g, uint64_t due, uint64_t now)
{
	struct work w = {0};
	w.submitted = grand(g) < 0.7;
	double late = grand(g), spread = grand(g);
	if (w.submitted) {
		if (due && late < 0.2)
			w.at = due + HOUR_MS + (uint64_t)(spread * 96.0 * (double)HOUR_MS);
		else if (due)
			w.at = due - HOUR_MS - (uint64_t)(spread * 240.0 * (double)HOUR_MS);
		else
			w.at = now - DAY_MS - (uint64_t)(spread * 60.0 * (double)DAY_MS);
		if (w.at >= now)
			w.at = now - HOUR_MS - (uint64_t)(spread * 48.0 * (double)HOUR_MS);
		w.at -= w.at % 1000;
	}
	w.graded = w.submitted && grand(g) < 0.5;
	w.score = (double)(55 + gpick(g, 46));
	return w;
}

static json_t *canvas_submission(json_int_t id, json_int_t uid, json_t *a, uint64_t due,
                                 struct work *w, uint64_t now)
{
	bool late = w->submitted && due && w->at > due;
	bool missing = !w->submitted && !w->excused && due && due < now;
	const char *state = w->excused || w->graded ? "graded"
	                    : w->submitted          ? "submitted"
	                                            : "unsubmitted";
	uint64_t graded_at = w->graded ? w->at + 2 * DAY_MS : 0;
	if (graded_at >= now)
		graded_at = now - HOUR_MS;
	char grade[16];
	snprintf(grade, sizeof(grade), "%.0f", w->score);
	json_t *s = json_pack(
	    "{s:I, s:I, s:I, s:i, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:o, s:n, s:s, s:b, s:b, s:b, "
	    "s:n, s:n, s:i, s:o, s:n, s:b, s:b}",
	    "id", id, "user_id", uid, "assignment_id", jint(a, "id"), "attempt",
	    w->submitted ? 1 : 0, "body", "grade", "score", "graded_at", "grader_id", "posted_at",
	    "submission_type", "submitted_at", iso(w->submitted ? w->at : 0), "url",
	    "workflow_state", state, "late", late, "missing", missing, "excused", w->excused,
	    "late_policy_status", "points_deducted", "seconds_late",
	    late ? (int)((w->at - due) / 1000) : 0, "cached_due_date", iso(due), "extra_attempts",
	    "grade_matches_current_submission", 1, "redo_request", 0);
	if (!w->submitted)
		json_object_set_new(s, "attempt", json_null());
	else
		json_object_set_new(s, "submission_type", json_string("online_upload"));
	if (w->graded) {
		json_object_set_new(s, "grade", json_string(grade));
		json_object_set_new(s, "score", json_real(w->score));
		json_object_set_new(s, "graded_at", iso(graded_at));
		json_object_set_new(s, "grader_id", json_integer(TEACHER_ID));
		json_object_set_new(s, "posted_at", iso(graded_at));
	}
	return s;
}

/* --- Moodle --- */

static json_t *moodle_user(json_t *p, int city, uint64_t first, uint64_t last)
{
	char idnumber[32];
	snprintf(idnumber, sizeof(idnumber), "%s%lld", jint(p, "id") == TEACHER_ID ? "T" : "L",
	         (long long)jint(p, "id"));
	return json_pack(
	    "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:i, s:s, "
	    "s:s, s:s, s:s, s:s}",
	    "id", jint(p, "id"), "username", jstr(p, "username"), "firstname",
	    jstr(p, "first_name"), "lastname", jstr(p, "last_name"), "fullname", jstr(p, "name"),
	    "email", jstr(p, "email"), "department", "", "institution", "", "idnumber", idnumber,
	    "firstaccess", secs(first), "lastaccess", secs(last), "description", "",
	    "descriptionformat", 1, "city", cities[city], "country", countries[city], "timezone",
	    jstr(p, "moodle_timezone"), "profileimageurlsmall",
	    "https://moodle.example.org/theme/image.php/boost/core/1/u/f2", "profileimageurl",
	    "https://moodle.example.org/theme/image.php/boost/core/1/u/f1");
}

static json_t *moodle_assignment(json_int_t id, int course, const char *name, uint64_t due,
                                 uint64_t from)
{
	char intro[200];
	snprintf(intro, sizeof(intro), "<p>%s: hand in through the course page.</p>", name);
	return json_pack(
	    "{s:I, s:I, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:i, s:I, s:i, s:I, s:i, s:i, "
	    "s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:[], s:s, s:i, s:[], s:[]}",
	    "id", id, "cmid", id + 100, "course", course, "name", name, "nosubmissions", 0,
	    "submissiondrafts", 0, "sendnotifications", 0, "sendlatenotifications", 0,
	    "sendstudentnotifications", 1, "duedate", secs(due), "allowsubmissionsfromdate",
	    secs(from), "grade", 100, "timemodified", secs(src_utc(2026, 1, 2, 9, 30, 0)),
	    "completionsubmit", 1, "cutoffdate", (json_int_t)0, "gradingduedate", 0,
	    "teamsubmission", 0, "requireallteammemberssubmit", 0, "teamsubmissiongroupingid", 0,
	    "blindmarking", 0, "hidegrader", 0, "revealidentities", 0, "attemptreopenmethod",
	    "none", "maxattempts", -1, "markingworkflow", 0, "markingallocation", 0,
	    "requiresubmissionstatement", 0, "preventsubmissionnotingroup", 0, "configs", "intro",
	    intro, "introformat", 1, "introfiles", "introattachments");
}

/* --- pretix --- */

static json_t *pretix_variation(int id, const char *city, int position)
{
	return json_pack("{s:i, s:{s:s}, s:b, s:n, s:i, s:n, s:s, s:n, s:n, s:b, s:b, s:[], s:b, "
	                 "s:b, s:n, s:n, s:s, s:n, s:s, s:b, s:[], s:[s], s:b, s:{}}",
	                 "id", id, "value", "en", city, "active", 1, "description", "position",
	                 position, "default_price", "price", "390.00", "original_price",
	                 "free_price_suggestion", "require_approval", 0, "require_membership", 0,
	                 "require_membership_types", "require_membership_hidden", 0,
	                 "checkin_attention", 0, "checkin_text", "available_from",
	                 "available_from_mode", "hide", "available_until", "available_until_mode",
	                 "hide", "all_sales_channels", 1, "limit_sales_channels", "sales_channels",
	                 "web", "hide_without_voucher", 0, "meta_data");
}

/* An item with pretix's full key set (as in the items fixtures). */
static json_t *pretix_item(int id, int category, const char *name, const char *price,
                           bool admission, int position)
{
	json_t *i = json_pack(
	    "{s:i, s:i, s:{s:s}, s:n, s:b, s:b, s:[], s:n, s:s, s:b, s:n, s:s, s:n, s:b, s:b, s:i, "
	    "s:n, s:n, s:s, s:n, s:s, s:b, s:b, s:b, s:b, s:n, s:n, s:b, s:n, s:b, s:[], s:[], "
	    "s:[], "
	    "s:[], s:n, s:b, s:n, s:n, s:n, s:n, s:s, s:b, s:b, s:{}, s:b, s:[], s:b, s:n, s:b, "
	    "s:i, "
	    "s:i, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:b, s:n, s:n, s:n, s:[s]}",
	    "id", id, "category", category, "name", "en", name, "internal_name", "active", 1,
	    "all_sales_channels", 1, "limit_sales_channels", "description", "default_price", price,
	    "free_price", 0, "free_price_suggestion", "tax_rate", "0.00", "tax_rule", "admission",
	    admission, "personalized", admission, "position", position, "picture", "available_from",
	    "available_from_mode", "hide", "available_until", "available_until_mode", "hide",
	    "require_voucher", 0, "hide_without_voucher", 0, "allow_cancel", 1, "require_bundling",
	    0, "min_per_order", "max_per_order", "checkin_attention", 0, "checkin_text",
	    "has_variations", 0, "variations", "addons", "bundles", "program_times",
	    "original_price", "require_approval", 0, "generate_tickets", "show_quota_left",
	    "hidden_if_available", "hidden_if_item_available", "hidden_if_item_available_mode",
	    "hide", "allow_waitinglist", 1, "issue_giftcard", 0, "meta_data", "require_membership",
	    0, "require_membership_types", "require_membership_hidden", 0, "grant_membership_type",
	    "grant_membership_duration_like_event", 1, "grant_membership_duration_days", 0,
	    "grant_membership_duration_months", 0, "validity_mode", "validity_fixed_from",
	    "validity_fixed_until", "validity_dynamic_duration_minutes",
	    "validity_dynamic_duration_hours", "validity_dynamic_duration_days",
	    "validity_dynamic_duration_months", "validity_dynamic_start_choice", 0,
	    "validity_dynamic_start_choice_day_limit", "media_policy", "media_type",
	    "sales_channels", "web");
	return i;
}

/* A position with pretix's full key set (as in the orders fixtures). */
static json_t *pretix_position(struct gen *g, json_int_t id, const char *code, int positionid,
                               int item, json_t *variation, const char *price, json_t *person,
                               json_t *addon_to)
{
	char secret[33], pseudo[11];
	grandom_chars(g, "abcdefghijklmnopqrstuvwxyz0123456789", secret, 32);
	grandom_chars(g, "ABCDEFGHJKLMNPQRSTUVWXYZ3789", pseudo, 10);
	json_t *p = json_pack(
	    "{s:I, s:s, s:i, s:i, s:o, s:s, s:n, s:{s:s}, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, "
	    "s:n, s:s, s:s, s:s, s:o, s:n, s:[], s:[], s:[], s:[], s:n, s:s, s:n, s:b, s:n, s:n, "
	    "s:n, s:n, s:n, s:{}}",
	    "id", id, "order", code, "positionid", positionid, "item", item, "variation", variation,
	    "price", price, "attendee_name", "attendee_name_parts", "_scheme", "given_family",
	    "company", "street", "zipcode", "city", "country", "state", "discount",
	    "attendee_email", "voucher", "tax_rate", "0.00", "tax_value", "0.00", "secret", secret,
	    "addon_to", addon_to, "subevent", "checkins", "print_logs", "downloads", "answers",
	    "tax_rule", "pseudonymization_id", pseudo, "seat", "canceled", 0, "tax_code",
	    "valid_from", "valid_until", "blocked", "voucher_budget_use", "plugin_data");
	if (person) {
		json_object_set(p, "attendee_name", json_object_get(person, "name"));
		json_object_set_new(p, "attendee_name_parts",
		                    json_pack("{s:s, s:O, s:O}", "_scheme", "given_family",
		                              "given_name", json_object_get(person, "first_name"),
		                              "family_name", json_object_get(person, "last_name")));
		json_object_set(p, "attendee_email", json_object_get(person, "email"));
	}
	return p;
}

struct order_gen {
	json_t *codes; /* codes taken */
	json_int_t next_position;
};

static json_t *pretix_order(struct gen *g, struct order_gen *og, json_t *person, bool staff,
                            int city)
{
	char code[6], secret[17], url[160], date[32];
	do
		grandom_chars(g, "ABCDEFGHJKLMNPQRSTUVWXYZ3789", code, 5);
	while (json_object_get(og->codes, code));
	json_object_set_new(og->codes, code, json_true());
	grandom_chars(g, "abcdefghijklmnopqrstuvwxyz0123456789", secret, 16);
	snprintf(url, sizeof(url), "https://tickets.example.org/campus/conf2026/order/%s/%s/", code,
	         secret);
	double r = grand(g);
	const char *status = staff ? "p" : r < 0.80 ? "p" : r < 0.88 ? "n" : r < 0.94 ? "e" : "c";
	uint64_t at = src_utc(2025, 11, 1, 9, 0, 0) + (uint64_t)(grand(g) * 120.0 * (double)DAY_MS);
	at += (uint64_t)gpick(g, 1000);
	uint64_t expires = at + 14 * DAY_MS,
	         paid = at + (uint64_t)(grand(g) * 3.0 * (double)DAY_MS);
	uint64_t modified = at + (uint64_t)gpick(g, 600000);
	bool workshop = !staff && grand(g) < 0.3;
	const char *provider = staff ? "free" : grand(g) < 0.6 ? "banktransfer" : "stripe";
	const char *locale = city == 0 && grand(g) < 0.5   ? "de"
	                     : city == 1 && grand(g) < 0.5 ? "pt"
	                                                   : "en";
	const char *total = staff ? "0.00" : workshop ? "450.00" : "390.00";
	json_t *positions = json_array();
	json_int_t pass_id = og->next_position++;
	json_array_append_new(positions,
	                      pretix_position(g, pass_id, code, 1, staff ? 2 : 1,
	                                      staff ? json_null() : json_integer(city + 1),
	                                      staff ? "0.00" : "390.00", person, json_null()));
	if (workshop)
		json_array_append_new(positions, pretix_position(g, og->next_position++, code, 2, 3,
		                                                 json_null(), "60.00", NULL,
		                                                 json_integer(pass_id)));
	json_t *payments = json_array();
	const char *pay_state = "created";
	if (strcmp(status, "p") == 0) {
		pay_state = "confirmed";
		modified = paid + (uint64_t)gpick(g, 600000);
	} else if (strcmp(status, "e") == 0) {
		pay_state = "canceled";
		modified = expires + 60000;
	} else if (strcmp(status, "c") == 0) {
		pay_state = "canceled";
		modified = at + (uint64_t)(grand(g) * 30.0 * (double)DAY_MS);
	}
	json_array_append_new(
	    payments, json_pack("{s:i, s:s, s:s, s:o, s:o, s:s, s:n, s:{}}", "local_id", 1, "state",
	                        pay_state, "amount", total, "created", iso_frac(at), "payment_date",
	                        strcmp(status, "p") == 0 ? iso_frac(paid) : json_null(), "provider",
	                        provider, "payment_url", "details"));
	src_iso(paid, date, sizeof(date), 0);
	date[10] = '\0';
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:b, s:s, s:O, s:n, s:s, s:o, s:o, s:o, s:s, s:[], s:s, s:s, s:s, "
	    "s:n, "
	    "s:n, s:o, s:[], s:b, s:n, s:o, s:o, s:[], s:b, s:s, s:s, s:n, s:b, s:{}, s:o, s:{}}",
	    "code", code, "event", "conf2026", "status", status, "testmode", 0, "secret", secret,
	    "email", json_object_get(person, "email"), "phone", "locale", locale, "datetime",
	    iso_frac(at), "expires", iso(expires), "payment_date",
	    strcmp(status, "p") == 0 ? json_string(date) : json_null(), "payment_provider",
	    provider, "fees", "total", total, "tax_rounding_mode", "line", "comment", "",
	    "custom_followup_at", "invoice_address", "positions", positions, "downloads",
	    "checkin_attention", 0, "checkin_text", "last_modified", iso_frac(modified), "payments",
	    payments, "refunds", "require_approval", 0, "sales_channel", "web", "url", url,
	    "customer", "valid_if_pending", 0, "api_meta", "cancellation_date",
	    strcmp(status, "c") == 0 ? iso_frac(modified) : json_null(), "plugin_data");
	return o;
}

static int by_datetime(const void *a, const void *b)
{
	json_t *const *x = a, *const *y = b;
	int c = strcmp(jstr(*x, "datetime"), jstr(*y, "datetime"));
	return c ? c : strcmp(jstr(*x, "code"), jstr(*y, "code"));
}

/* --- the campus --- */

json_t *campus_generate(long seed, int learners)
{
	struct gen g = {(uint64_t)seed * 0xD6E8FEB86659FD93ull + 0x2545F4914F6CDD1Dull};
	for (int i = 0; i < 4; i++)
		grand(&g);
	uint64_t now = src_utc(2026, 6, 1, 12, 0, 0);
	json_t *used = json_object();

	json_t *people = json_array(), *staff = json_array();
	json_t *teacher = person(&g, used, TEACHER_ID, "Sabine", "Krüger", 0);
	json_object_set_new(teacher, "role", json_string("teacher"));
	json_array_append_new(staff, teacher);
	for (int i = 0; i < learners; i++) {
		int c8 = i % 8, city = c8 & 1, prog = (c8 >> 1) & 1, start = (c8 >> 2) & 1;
		int course = 1 + prog, k = 1 + city * 2 + start;
		const char *given =
		    given_names[gpick(&g, sizeof(given_names) / sizeof(*given_names))];
		const char *family =
		    family_names[gpick(&g, sizeof(family_names) / sizeof(*family_names))];
		json_t *p = person(&g, used, FIRST_ID + i, given, family, city);
		/* one in twenty withdrawn, in both programmes, deactivated or removed by turns */
		long block = i / 20;
		bool removed = (block % 2) ^ ((block / 2) % 2);
		const char *status = i % 20 != (block % 2 ? 5 : 7) ? "active"
		                     : removed                     ? "deleted"
		                                                   : "inactive";
		char section[32], cohort[32];
		snprintf(section, sizeof(section), "%s %s", cities[city], starts[start]);
		snprintf(cohort, sizeof(cohort), "%s %s", programs[prog], starts[start]);
		json_object_update_new(
		    p, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "city",
		                 cities[city], "program", programs[prog], "start", starts[start],
		                 "section", section, "cohort", cohort, "status", status,
		                 "canvas_course_id", course, "canvas_section_id", course * 10 + k,
		                 "moodle_course_id", course, "moodle_group_id", course * 10 + k,
		                 "moodle_cohort_id", 1 + prog * 2 + start));
		json_array_append_new(people, p);
	}
	json_decref(used);

	/* Canvas */
	json_t *cv = json_object(), *cv_users = json_array(), *courses = json_array();
	json_t *sections = json_array(), *enrollments = json_array();
	json_t *assignments = json_array(), *submissions = json_array();
	json_t *map = json_array();
	json_array_append_new(cv_users, canvas_user(teacher, src_utc(2025, 9, 1, 8, 0, 0)));
	size_t i;
	json_t *p;
	json_array_foreach(people, i, p)
		json_array_append_new(
		    cv_users, canvas_user(p, src_utc(2025, 12, 1, 9, 0, 0) + (uint64_t)i * 61000));
	for (int c = 1; c <= 2; c++) {
		char uuid[41];
		grandom_chars(&g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		              uuid, 40);
		json_array_append_new(
		    courses,
		    json_pack(
		        "{s:i, s:s, s:s, s:n, s:s, s:i, s:i, s:i, s:s, s:o, s:o, s:o, s:b, s:b, "
		        "s:s, s:s, s:n, s:b, s:s, s:b, s:s, s:n, s:b, s:b, s:[{s:s, s:s, s:i, "
		        "s:i, s:s, s:b}]}",
		        "id", c, "name", course_names[c - 1], "course_code", course_codes[c - 1],
		        "original_name", "workflow_state", "available", "account_id", 1,
		        "root_account_id", 1, "enrollment_term_id", 1, "uuid", uuid, "start_at",
		        iso(src_utc(2026, 1, 12, 8, 0, 0)), "end_at",
		        iso(src_utc(2026, 12, 18, 17, 0, 0)), "created_at",
		        iso(src_utc(2025, 11, 3, 10, 0, 0)), "is_public", 0, "public_syllabus", 0,
		        "default_view", "modules", "license", "private", "grading_standard_id",
		        "apply_assignment_group_weights", 0, "time_zone", "Europe/Berlin",
		        "blueprint", 0, "sis_course_id", course_codes[c - 1], "integration_id",
		        "hide_final_grades", 0, "restrict_enrollments_to_course_dates", 0,
		        "enrollments", "type", "teacher", "role", "TeacherEnrollment", "role_id", 4,
		        "user_id", TEACHER_ID, "enrollment_state", "active",
		        "limit_privileges_to_course_section", 0));
		for (int k = 1; k <= 4; k++) {
			int city = (k - 1) / 2, start = (k - 1) % 2;
			char name[32], sis[48];
			snprintf(name, sizeof(name), "%s %s", cities[city], starts[start]);
			snprintf(sis, sizeof(sis), "%s-%s-%s", c == 1 ? "WEB" : "DATA",
			         city_codes[city], starts[start]);
			json_array_append_new(
			    sections,
			    json_pack("{s:i, s:i, s:s, s:n, s:n, s:o, s:b, s:n, s:s, s:s, "
			              "s:n, s:n}",
			              "id", c * 10 + k, "course_id", c, "name", name, "start_at",
			              "end_at", "created_at", iso(src_utc(2025, 11, 3, 10, 5, 0)),
			              "restrict_enrollments_to_section_dates", 0,
			              "nonxlist_course_id", "sis_section_id", sis, "sis_course_id",
			              course_codes[c - 1], "integration_id", "sis_import_id"));
		}
	}
	json_int_t enr_id = 100000;
	for (int c = 1; c <= 2; c++) {
		json_t *e = canvas_enrollment(++enr_id, teacher, c, c * 10 + 1, true, "active",
		                              src_utc(2025, 11, 3, 10, 10, 0),
		                              src_utc(2025, 11, 3, 10, 10, 0), &g);
		json_object_set_new(e, "sis_user_id", json_string("T900"));
		json_array_append_new(enrollments, e);
	}
	json_array_foreach(people, i, p) {
		int st_ix = strcmp(jstr(p, "start"), starts[0]) == 0 ? 0 : 1;
		uint64_t created = src_utc(start_days[st_ix][0], start_days[st_ix][1],
		                           start_days[st_ix][2], 7, 0, 0) -
		                   (uint64_t)gpick(&g, 20) * DAY_MS;
		const char *state = jstr(p, "status");
		uint64_t updated = strcmp(state, "active") == 0
		                       ? created
		                       : src_utc(2026, 4, 2, 10, 0, 0) + (uint64_t)i * 60000;
		char sis[32];
		snprintf(sis, sizeof(sis), "L%lld", (long long)jint(p, "id"));
		json_t *e = canvas_enrollment(++enr_id, p, (int)jint(p, "canvas_course_id"),
		                              jint(p, "canvas_section_id"), false, state, created,
		                              updated, &g);
		json_object_set_new(e, "sis_user_id", json_string(sis));
		json_array_append_new(enrollments, e);
	}

	/* Moodle (built alongside, from the same plan) */
	json_t *md = json_object(), *md_users = json_array(), *md_courses = json_array();
	json_t *enrolments = json_array(), *groups = json_array(), *group_members = json_array();
	json_t *cohorts = json_array(), *cohort_members = json_array();
	json_t *md_assignments = json_array(), *overrides = json_array();
	json_t *user_flags = json_array(), *md_submissions = json_array();
	json_array_append_new(md_users, moodle_user(teacher, 0, src_utc(2025, 9, 1, 8, 0, 0),
	                                            src_utc(2026, 5, 29, 16, 0, 0)));
	json_array_foreach(people, i, p)
		json_array_append_new(
		    md_users,
		    moodle_user(p, strcmp(jstr(p, "city"), "Lisbon") == 0,
		                src_utc(2026, 1, 5, 9, 0, 0) + (uint64_t)gpick(&g, 30) * DAY_MS,
		                src_utc(2026, 5, 20, 9, 0, 0) + (uint64_t)gpick(&g, 11) * DAY_MS));
	for (int c = 1; c <= 2; c++) {
		json_array_append_new(md_courses, json_pack("{s:i, s:s, s:s, s:s, s:s}", "id", c,
		                                            "shortname", course_codes[c - 1],
		                                            "fullname", course_names[c - 1],
		                                            "displayname", course_names[c - 1],
		                                            "idnumber", course_codes[c - 1]));
		json_array_append_new(enrolments, json_pack("{s:i, s:i, s:s, s:i}", "userid",
		                                            TEACHER_ID, "courseid", c, "role",
		                                            "editingteacher", "status", 0));
		for (int k = 1; k <= 4; k++) {
			json_t *s = json_array_get(sections, (size_t)((c - 1) * 4 + k - 1));
			json_array_append_new(
			    groups,
			    json_pack("{s:i, s:i, s:O, s:s, s:i, s:s, s:O, s:i, s:b}", "id",
			              c * 10 + k, "courseid", c, "name", json_object_get(s, "name"),
			              "description", "", "descriptionformat", 1, "enrolmentkey", "",
			              "idnumber", json_object_get(s, "sis_section_id"),
			              "visibility", 0, "participation", 1));
			json_array_append_new(group_members, json_pack("{s:i, s:[]}", "groupid",
			                                               c * 10 + k, "userids"));
		}
	}
	for (int prog = 0; prog < 2; prog++)
		for (int start = 0; start < 2; start++) {
			char name[32], idn[32];
			snprintf(name, sizeof(name), "%s %s", programs[prog], starts[start]);
			snprintf(idn, sizeof(idn), "%s-%s", prog ? "data" : "web", starts[start]);
			json_array_append_new(
			    cohorts, json_pack("{s:i, s:s, s:s, s:s, s:i, s:b, s:s}", "id",
			                       1 + prog * 2 + start, "name", name, "idnumber", idn,
			                       "description", "", "descriptionformat", 1, "visible",
			                       1, "theme", ""));
			json_array_append_new(
			    cohort_members,
			    json_pack("{s:i, s:[]}", "cohortid", 1 + prog * 2 + start, "userids"));
		}
	json_array_foreach(people, i, p) {
		const char *state = jstr(p, "status");
		json_array_append_new(
		    json_object_get(
		        json_array_get(cohort_members, (size_t)jint(p, "moodle_cohort_id") - 1),
		        "userids"),
		    json_integer(jint(p, "id")));
		/* a learner removed from the Canvas course is unenrolled in Moodle; a deactivated
		 * one keeps a suspended enrolment */
		if (strcmp(state, "deleted") == 0)
			continue;
		json_array_append_new(
		    enrolments, json_pack("{s:I, s:I, s:s, s:i}", "userid", jint(p, "id"),
		                          "courseid", jint(p, "moodle_course_id"), "role",
		                          "student", "status", strcmp(state, "active") ? 1 : 0));
		size_t gi = (size_t)((jint(p, "moodle_course_id") - 1) * 4 +
		                     jint(p, "moodle_group_id") % 10 - 1);
		json_array_append_new(json_object_get(json_array_get(group_members, gi), "userids"),
		                      json_integer(jint(p, "id")));
	}

	/* assignments, overrides, and the work of every learner */
	json_int_t override_id = 0, md_override_id = 0, sub_id = 500000, md_sub_id = 0;
	json_int_t flag_id = 0;
	for (int c = 1; c <= 2; c++) {
		/* the learners of the course still taking part, in order: the first gets a
		 * student override, the second an extension (Moodle), the third an excused
		 * submission (Canvas, course 1) */
		json_int_t special[3] = {0, 0, 0};
		int found = 0;
		json_array_foreach(people, i, p)
			if (found < 3 && jint(p, "canvas_course_id") == c &&
			    strcmp(jstr(p, "status"), "active") == 0)
				special[found++] = jint(p, "id");
		for (int k = 0; k < 4; k++) {
			json_int_t aid = c * 100 + k + 1, mid = (c - 1) * 4 + k + 1;
			const char *name = assignment_names[c - 1][k];
			uint64_t due = base_due(k);
			char url[128], desc[200];
			snprintf(url, sizeof(url),
			         "https://canvas.example.org/courses/%d/assignments/%lld", c,
			         (long long)aid);
			snprintf(desc, sizeof(desc), "<p>%s: hand in through the course page.</p>",
			         name);
			json_t *ovs = json_array();
			json_t *md_a =
			    moodle_assignment(mid, c, name, due, src_utc(2026, 1, 12, 8, 0, 0));
			if (k == 0)
				json_object_set_new(md_a, "cutoffdate",
				                    json_integer(secs(due + 7 * DAY_MS)));
			if (k == 1) {
				uint64_t moved = due + SECTION_OVERRIDE_DAYS * DAY_MS;
				char day[24];
				src_iso(moved, day, sizeof(day), 0);
				day[10] = '\0';
				json_array_append_new(
				    ovs, json_pack("{s:I, s:I, s:s, s:i, s:o, s:b, s:s}", "id",
				                   ++override_id, "assignment_id", aid, "title",
				                   "Lisbon 2026-01", "course_section_id",
				                   c * 10 + 3, "due_at", iso(moved), "all_day", 0,
				                   "all_day_date", day));
				json_array_append_new(
				    overrides,
				    json_pack("{s:I, s:I, s:i, s:n, s:i, s:n, s:I, s:n, s:n}", "id",
				              ++md_override_id, "assignid", mid, "groupid",
				              c * 10 + 3, "userid", "sortorder", 1,
				              "allowsubmissionsfromdate", "duedate", secs(moved),
				              "cutoffdate", "timelimit"));
			}
			if (k == 2 && special[0]) {
				uint64_t moved = due + STUDENT_OVERRIDE_DAYS * DAY_MS;
				char day[24];
				src_iso(moved, day, sizeof(day), 0);
				day[10] = '\0';
				json_array_append_new(
				    ovs, json_pack("{s:I, s:I, s:s, s:[I], s:o, s:b, s:s}", "id",
				                   ++override_id, "assignment_id", aid, "title",
				                   "1 student", "student_ids", special[0], "due_at",
				                   iso(moved), "all_day", 0, "all_day_date", day));
				json_array_append_new(
				    overrides,
				    json_pack("{s:I, s:I, s:n, s:I, s:n, s:n, s:I, s:n, s:n}", "id",
				              ++md_override_id, "assignid", mid, "groupid",
				              "userid", special[0], "sortorder",
				              "allowsubmissionsfromdate", "duedate", secs(moved),
				              "cutoffdate", "timelimit"));
			}
			if (k == 3) {
				/* no due_at key: the section keeps the assignment's (absent) date
				 * and only closes later */
				uint64_t lock = src_utc(2026, 7, 31, 21, 59, 59);
				json_array_append_new(
				    ovs, json_pack("{s:I, s:I, s:s, s:i, s:o}", "id", ++override_id,
				                   "assignment_id", aid, "title", "Berlin 2026-03",
				                   "course_section_id", c * 10 + 2, "lock_at",
				                   iso(lock)));
				json_array_append_new(
				    overrides,
				    json_pack("{s:I, s:I, s:i, s:n, s:i, s:n, s:n, s:I, s:n}", "id",
				              ++md_override_id, "assignid", mid, "groupid",
				              c * 10 + 2, "userid", "sortorder", 1,
				              "allowsubmissionsfromdate", "duedate", "cutoffdate",
				              secs(lock), "timelimit"));
			}
			json_t *a = json_pack(
			    "{s:I, s:s, s:s, s:o, s:o, s:o, s:n, s:n, s:b, s:i, s:s, s:I, s:b, "
			    "s:f, s:s, "
			    "s:[s], s:s, s:b, s:i, s:b, s:b, s:b, s:b, s:o}",
			    "id", aid, "name", name, "description", desc, "created_at",
			    iso(src_utc(2026, 1, 2, 9, 30, 0)), "updated_at",
			    iso(src_utc(2026, 1, 2, 9, 30, 0)), "due_at", iso(due), "lock_at",
			    "unlock_at", "has_overrides", json_array_size(ovs) > 0, "course_id", c,
			    "html_url", url, "assignment_group_id", (json_int_t)c * 10,
			    "due_date_required", 0, "points_possible", 100.0, "grading_type",
			    "points", "submission_types", "online_upload", "workflow_state",
			    "published", "published", 1, "position", k + 1,
			    "only_visible_to_overrides", 0, "omit_from_final_grade", 0,
			    "moderated_grading", 0, "anonymous_submissions", 0, "overrides", ovs);
			json_array_append_new(assignments, a);
			json_array_append_new(md_assignments, md_a);
			json_array_append_new(map, json_pack("{s:i, s:I, s:I, s:s}", "course", c,
			                                     "canvas_id", aid, "moodle_id", mid,
			                                     "name", name));
			json_t *flags = json_array();
			json_array_foreach(people, i, p) {
				if (jint(p, "canvas_course_id") != c)
					continue;
				json_int_t uid = jint(p, "id");
				uint64_t cdue =
				    campus_canvas_due(a, uid, jint(p, "canvas_section_id"));
				struct work w = plan_work(&g, cdue, now);
				if (c == 1 && k == 1 && uid == special[2]) {
					w.submitted = w.graded = false;
					w.excused = true;
				}
				json_array_append_new(
				    submissions,
				    canvas_submission(++sub_id, uid, a, cdue, &w, now));
				bool new_record = !w.submitted && grand(&g) < 0.5;
				if (strcmp(jstr(p, "status"), "deleted") == 0 ||
				    (!w.submitted && !new_record))
					continue;
				uint64_t created = w.submitted
				                       ? w.at - (uint64_t)gpick(&g, 48) * HOUR_MS
				                       : src_utc(2026, 1, 14, 9, 0, 0) +
				                             (uint64_t)gpick(&g, 100) * DAY_MS;
				json_array_append_new(
				    md_submissions,
				    json_pack(
				        "{s:I, s:I, s:i, s:I, s:I, s:n, s:s, s:i, s:I, s:i, s:[], "
				        "s:s}",
				        "id", ++md_sub_id, "userid", uid, "attemptnumber", 0,
				        "timecreated", secs(created), "timemodified",
				        secs(w.submitted ? w.at : created), "timestarted", "status",
				        w.submitted ? "submitted" : "new", "groupid", 0,
				        "assignment", mid, "latest", 1, "plugins", "gradingstatus",
				        w.graded ? "graded" : "notgraded"));
			}
			if (k == 0 && special[1])
				json_array_append_new(
				    flags, json_pack("{s:I, s:I, s:i, s:i, s:I, s:s, s:i}", "id",
				                     ++flag_id, "userid", special[1], "locked", 0,
				                     "mailed", 0, "extensionduedate",
				                     secs(due + EXTENSION_DAYS * DAY_MS),
				                     "workflowstate", "", "allocatedmarker", 0));
			json_array_append_new(user_flags, json_pack("{s:I, s:o}", "assignmentid",
			                                            mid, "userflags", flags));
		}
	}
	json_object_update_new(cv, json_pack("{s:o, s:o, s:[i], s:o, s:o, s:o, s:o, s:[]}", "users",
	                                     cv_users, "courses", courses,
	                                     "unauthorized_course_ids", 3, "sections", sections,
	                                     "enrollments", enrollments, "assignments", assignments,
	                                     "submissions", submissions, "messages"));
	json_object_update_new(
	    md, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:[]}",
	                  "site_timezone", "Europe/Berlin", "users", md_users, "courses",
	                  md_courses, "enrolments", enrolments, "groups", groups, "group_members",
	                  group_members, "cohorts", cohorts, "cohort_members", cohort_members,
	                  "assignments", md_assignments, "overrides", overrides, "user_flags",
	                  user_flags, "submissions", md_submissions, "messages"));

	/* pretix */
	json_t *px = json_object(), *items = json_array();
	json_t *pass = pretix_item(1, 1, "Learner pass", "390.00", true, 0);
	json_object_set_new(pass, "has_variations", json_true());
	json_object_set_new(pass, "variations",
	                    json_pack("[o, o]", pretix_variation(1, "Berlin", 0),
	                              pretix_variation(2, "Lisbon", 1)));
	json_object_set_new(pass, "addons",
	                    json_pack("[{s:i, s:i, s:i, s:i, s:b, s:b}]", "addon_category", 2,
	                              "min_count", 0, "max_count", 1, "position", 0,
	                              "price_included", 0, "multi_allowed", 0));
	json_array_append_new(items, pass);
	json_array_append_new(items, pretix_item(2, 1, "Staff pass", "0.00", true, 1));
	json_array_append_new(items, pretix_item(3, 2, "Workshop", "60.00", false, 2));
	struct order_gen og = {json_object(), 20001};
	size_t n_orders = json_array_size(people) + 1;
	json_t **orders = calloc(n_orders, sizeof(json_t *));
	size_t no = 0;
	if (orders) {
		orders[no++] = pretix_order(&g, &og, teacher, true, 0);
		json_object_set(teacher, "pretix_order", json_object_get(orders[0], "code"));
		json_array_foreach(people, i, p) {
			orders[no] =
			    pretix_order(&g, &og, p, false, strcmp(jstr(p, "city"), "Lisbon") == 0);
			json_object_set(p, "pretix_order", json_object_get(orders[no], "code"));
			no++;
		}
		qsort(orders, no, sizeof(json_t *), by_datetime);
	}
	json_t *order_list = json_array();
	long paid_passes = 0, paid_workshops = 0;
	for (size_t o = 0; o < no; o++) {
		if (strcmp(jstr(orders[o], "status"), "p") == 0) {
			size_t j;
			json_t *pos;
			json_array_foreach(json_object_get(orders[o], "positions"), j, pos) {
				if (jint(pos, "item") == 3)
					paid_workshops++;
				else
					paid_passes++;
			}
		}
		json_array_append_new(order_list, orders[o]);
	}
	free(orders);
	json_decref(og.codes);
	json_t *lists = json_pack(
	    "[{s:i, s:s, s:b, s:[i, i], s:n, s:i, s:I, s:b, s:b, s:b, s:{}}, {s:i, s:s, s:b, "
	    "s:[i], "
	    "s:n, s:i, s:I, s:b, s:b, s:b, s:{}}]",
	    "id", 1, "name", "Main entrance", "all_products", 0, "limit_products", 1, 2, "subevent",
	    "checkin_count", 0, "position_count", (json_int_t)paid_passes, "include_pending", 0,
	    "allow_multiple_entries", 0, "allow_entry_after_exit", 1, "rules", "id", 2, "name",
	    "Workshops", "all_products", 0, "limit_products", 3, "subevent", "checkin_count", 0,
	    "position_count", (json_int_t)paid_workshops, "include_pending", 0,
	    "allow_multiple_entries", 0, "allow_entry_after_exit", 1, "rules");
	json_t *event = json_pack(
	    "{s:{s:s}, s:s, s:b, s:b, s:s, s:s, s:s, s:s, s:b, s:n, s:n, s:{s:s}, s:b, s:{}, s:s, "
	    "s:[s, s], s:{}}",
	    "name", "en", "Campus Conference 2026", "slug", "conf2026", "live", 1, "testmode", 0,
	    "currency", "EUR", "date_from", "2026-09-17T07:00:00Z", "date_to",
	    "2026-09-18T16:00:00Z", "date_admission", "2026-09-17T06:30:00Z", "is_public", 1,
	    "presale_start", "presale_end", "location", "en", "Lisbon", "has_subevents", 0,
	    "meta_data", "timezone", "Europe/Lisbon", "plugins", "pretix.plugins.banktransfer",
	    "pretix.plugins.stripe", "seat_category_mapping");
	json_object_update_new(px, json_pack("{s:s, s:o, s:o, s:o, s:o}", "organizer", "campus",
	                                     "event", event, "items", items, "checkinlists", lists,
	                                     "orders", order_list));

	json_t *root =
	    json_pack("{s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "seed", (json_int_t)seed,
	              "now", iso(now), "learner_count", (json_int_t)learners, "learners", people,
	              "staff", staff, "assignments", map, "canvas", cv, "moodle", md, "pretix", px);
	return root;
}

/* --- adoption and indexes --- */

static json_t *obj(json_t *parent, const char *k)
{
	json_t *o = json_object_get(parent, k);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(parent, k, o);
	}
	return o;
}

static json_t *index_by(json_t *list, const char *k)
{
	json_t *idx = json_object();
	size_t i;
	json_t *o;
	char key[32];
	json_array_foreach(list, i, o) {
		json_t *v = json_object_get(o, k);
		if (json_is_string(v))
			json_object_set(idx, json_string_value(v), o);
		else if (json_is_integer(v))
			json_object_set(idx, idkey(json_integer_value(v), key, sizeof(key)), o);
	}
	return idx;
}

int campus_adopt(json_t *root, char *err, size_t errsize)
{
	static const char *const cv_lists[] = {
	    "users",       "courses",     "sections", "enrollments",
	    "assignments", "submissions", "messages", "unauthorized_course_ids",
	    NULL};
	static const char *const md_lists[] = {
	    "users",       "courses",        "enrolments",  "groups",    "group_members",
	    "cohorts",     "cohort_members", "assignments", "overrides", "user_flags",
	    "submissions", "messages",       NULL};
	static const char *const px_lists[] = {"items", "checkinlists", "orders", NULL};
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errsize,
		         "a sources file holds one JSON object (see tests/sim/README.md)");
		return -1;
	}
	jarr(root, "learners");
	jarr(root, "staff");
	jarr(root, "assignments");
	json_t *cv = obj(root, "canvas"), *md = obj(root, "moodle"), *px = obj(root, "pretix");
	for (const char *const *k = cv_lists; *k; k++)
		jarr(cv, *k);
	for (const char *const *k = md_lists; *k; k++)
		jarr(md, *k);
	for (const char *const *k = px_lists; *k; k++)
		jarr(px, *k);
	if (!jstr(px, "organizer"))
		json_object_set_new(px, "organizer", json_string("campus"));
	json_t *event = obj(px, "event");
	if (!jstr(event, "slug"))
		json_object_set_new(event, "slug", json_string("conf2026"));
	if (!jstr(md, "site_timezone"))
		json_object_set_new(md, "site_timezone", json_string("Europe/Berlin"));
	campus_free();
	campus.root = root;
	campus.cv_users = index_by(json_object_get(cv, "users"), "id");
	campus.md_users = index_by(json_object_get(md, "users"), "id");
	campus.px_orders = index_by(json_object_get(px, "orders"), "code");
	return 0;
}

void campus_free(void)
{
	json_decref(campus.root);
	json_decref(campus.cv_users);
	json_decref(campus.md_users);
	json_decref(campus.px_orders);
	memset(&campus, 0, sizeof(campus));
}

/* --- changes --- */

static json_t *part(const char *k)
{
	return json_object_get(campus.root, k);
}

static json_t *find_by(json_t *list, const char *k, json_int_t id)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
		if (jint(o, k) == id)
			return o;
	return NULL;
}

static json_t *find_person(json_int_t id)
{
	json_t *p = find_by(part("learners"), "id", id);
	return p ? p : find_by(part("staff"), "id", id);
}

struct counts {
	int canvas, moodle, pretix;
};

static void rename_person(json_t *p, const char *name, uint64_t now, struct counts *n)
{
	char key[32];
	/* the given name is the first word, the family name the rest */
	const char *sp = strchr(name, ' ');
	char given[128];
	snprintf(given, sizeof(given), "%.*s", sp ? (int)(sp - name) : (int)strlen(name), name);
	const char *family = sp ? sp + 1 : "";
	json_int_t id = jint(p, "id");
	json_object_set_new(p, "name", json_string(name));
	json_object_set_new(p, "first_name", json_string(given));
	json_object_set_new(p, "last_name", json_string(family));
	json_t *u = json_object_get(campus.cv_users, idkey(id, key, sizeof(key)));
	if (u) {
		char sortable[300];
		snprintf(sortable, sizeof(sortable), "%s%s%s", family, *family ? ", " : "", given);
		json_object_set_new(u, "name", json_string(name));
		json_object_set_new(u, "short_name", json_string(name));
		json_object_set_new(u, "sortable_name", json_string(sortable));
		n->canvas++;
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(part("canvas"), "enrollments"), i, e)
		if (jint(e, "user_id") == id)
			json_object_set_new(e, "updated_at", iso(now));
	json_t *m = json_object_get(campus.md_users, key);
	if (m) {
		json_object_set_new(m, "firstname", json_string(given));
		json_object_set_new(m, "lastname", json_string(family));
		json_object_set_new(m, "fullname", json_string(name));
		n->moodle++;
	}
	json_t *o = jstr(p, "pretix_order")
	                ? json_object_get(campus.px_orders, jstr(p, "pretix_order"))
	                : NULL;
	json_t *pos;
	json_array_foreach(json_object_get(o, "positions"), i, pos)
		if (json_is_string(json_object_get(pos, "attendee_name"))) {
			json_object_set_new(pos, "attendee_name", json_string(name));
			json_object_set_new(pos, "attendee_name_parts",
			                    json_pack("{s:s, s:s, s:s}", "_scheme", "given_family",
			                              "given_name", given, "family_name", family));
		}
	if (o) {
		json_object_set_new(o, "last_modified", iso_frac(now));
		n->pretix++;
	}
}

static void set_enrollment(json_t *p, const char *state, uint64_t now, struct counts *n)
{
	json_int_t id = jint(p, "id");
	json_object_set_new(p, "status", json_string(state));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(part("canvas"), "enrollments"), i, e)
		if (jint(e, "user_id") == id && strcmp(jstr(e, "type"), "StudentEnrollment") == 0) {
			json_object_set_new(e, "enrollment_state", json_string(state));
			json_object_set_new(e, "updated_at", iso(now));
			n->canvas++;
		}
	json_t *md = part("moodle"), *enrolments = json_object_get(md, "enrolments");
	bool deleted = strcmp(state, "deleted") == 0;
	bool enrolled = false;
	for (i = json_array_size(enrolments); i-- > 0;) {
		e = json_array_get(enrolments, i);
		if (jint(e, "userid") != id || strcmp(jstr(e, "role"), "student") != 0)
			continue;
		enrolled = true;
		n->moodle++;
		if (deleted)
			json_array_remove(enrolments, i);
		else
			json_object_set_new(e, "status",
			                    json_integer(strcmp(state, "active") ? 1 : 0));
	}
	json_t *gm;
	if (deleted)
		json_array_foreach(json_object_get(md, "group_members"), i, gm) {
			json_t *ids = json_object_get(gm, "userids");
			for (size_t j = json_array_size(ids); j-- > 0;)
				if (json_integer_value(json_array_get(ids, j)) == id)
					json_array_remove(ids, j);
		}
	else if (!enrolled && json_object_get(p, "moodle_course_id")) {
		/* back after removal: enrolled again, and in the group again */
		json_array_append_new(enrolments,
		                      json_pack("{s:I, s:I, s:s, s:i}", "userid", id, "courseid",
		                                jint(p, "moodle_course_id"), "role", "student",
		                                "status", strcmp(state, "active") ? 1 : 0));
		gm = find_by(json_object_get(md, "group_members"), "groupid",
		             jint(p, "moodle_group_id"));
		if (gm)
			json_array_append_new(json_object_get(gm, "userids"), json_integer(id));
		n->moodle++;
	}
}

static void submit(json_int_t uid, json_int_t aid, uint64_t now, struct counts *n)
{
	json_t *cv = part("canvas"), *md = part("moodle");
	json_int_t cid = 0, mid = 0;
	size_t i;
	json_t *m;
	json_array_foreach(part("assignments"), i, m)
		if (jint(m, "canvas_id") == aid || jint(m, "moodle_id") == aid) {
			cid = jint(m, "canvas_id");
			mid = jint(m, "moodle_id");
		}
	if (!cid && find_by(json_object_get(cv, "assignments"), "id", aid))
		cid = aid;
	if (!mid && find_by(json_object_get(md, "assignments"), "id", aid))
		mid = aid;
	json_t *s;
	json_t *a = cid ? find_by(json_object_get(cv, "assignments"), "id", cid) : NULL;
	if (a) {
		json_t *found = NULL;
		json_array_foreach(json_object_get(cv, "submissions"), i, s)
			if (jint(s, "user_id") == uid && jint(s, "assignment_id") == cid)
				found = s;
		uint64_t due = 0;
		if (found && jstr(found, "cached_due_date"))
			src_parse_iso(jstr(found, "cached_due_date"), &due);
		else if (!found) {
			json_t *p = find_person(uid);
			due = campus_canvas_due(a, uid, jint(p, "canvas_section_id"));
			struct work w = {0};
			found = canvas_submission(
			    500000 +
			        (json_int_t)json_array_size(json_object_get(cv, "submissions")) + 1,
			    uid, a, due, &w, now);
			json_array_append_new(json_object_get(cv, "submissions"), found);
		}
		bool late = due && now > due;
		json_object_set_new(found, "submitted_at", iso(now - now % 1000));
		json_object_set_new(found, "workflow_state", json_string("submitted"));
		json_object_set_new(found, "attempt", json_integer(jint(found, "attempt") + 1));
		json_object_set_new(found, "submission_type", json_string("online_upload"));
		json_object_set_new(found, "missing", json_false());
		json_object_set_new(found, "excused", json_false());
		json_object_set_new(found, "late", json_boolean(late));
		json_object_set_new(found, "seconds_late",
		                    json_integer(late ? (json_int_t)((now - due) / 1000) : 0));
		json_object_set_new(found, "grade_matches_current_submission", json_false());
		n->canvas++;
	}
	if (mid && find_by(json_object_get(md, "assignments"), "id", mid)) {
		json_t *found = NULL;
		json_int_t top = 0;
		json_array_foreach(json_object_get(md, "submissions"), i, s) {
			if (jint(s, "userid") == uid && jint(s, "assignment") == mid)
				found = s;
			if (jint(s, "id") > top)
				top = jint(s, "id");
		}
		if (!found) {
			found = json_pack("{s:I, s:I, s:i, s:I, s:n, s:I, s:i, s:[], s:s}", "id",
			                  top + 1, "userid", uid, "attemptnumber", 0, "timecreated",
			                  secs(now), "timestarted", "assignment", mid, "latest", 1,
			                  "plugins", "gradingstatus", "notgraded");
			json_array_append_new(json_object_get(md, "submissions"), found);
		}
		json_object_set_new(found, "status", json_string("submitted"));
		json_object_set_new(found, "timemodified", json_integer(secs(now)));
		json_object_set_new(found, "groupid", json_integer(0));
		n->moodle++;
	}
}

static int order_status(const char *code, const char *status, uint64_t now, struct counts *n,
                        char *err, size_t errsize)
{
	json_t *o = json_object_get(campus.px_orders, code);
	if (!o) {
		snprintf(err, errsize, "no pretix order %s", code);
		return 404;
	}
	if (!status || strlen(status) != 1 || !strchr("npec", status[0])) {
		snprintf(err, errsize, "status is n, p, e or c");
		return 400;
	}
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "last_modified", iso_frac(now));
	json_object_set_new(o, "cancellation_date", status[0] == 'c' ? iso_frac(now) : json_null());
	if (status[0] == 'p') {
		char day[32];
		src_iso(now, day, sizeof(day), 0);
		day[10] = '\0';
		json_object_set_new(o, "payment_date", json_string(day));
		json_t *pay = json_array_get(json_object_get(o, "payments"), 0);
		if (pay) {
			json_object_set_new(pay, "state", json_string("confirmed"));
			json_object_set_new(pay, "payment_date", iso_frac(now));
		}
	}
	n->pretix++;
	return 0;
}

int campus_mutate(json_t *b, json_t **report, char *err, size_t errsize)
{
	struct counts n = {0};
	uint64_t now = src_now_ms();
	json_t *submit_req = json_object_get(b, "submit");
	if (!json_is_object(b)) {
		snprintf(err, errsize, "needs a JSON object; see tests/sim/README.md");
		return 400;
	}
	if (json_is_object(submit_req)) {
		json_int_t uid = jint(submit_req, "learner"), aid = jint(submit_req, "assignment");
		if (!find_person(uid)) {
			snprintf(err, errsize, "no learner %lld", (long long)uid);
			return 404;
		}
		submit(uid, aid, now, &n);
		if (!n.canvas && !n.moodle) {
			snprintf(err, errsize, "no assignment %lld", (long long)aid);
			return 404;
		}
	} else if (jstr(b, "order")) {
		int status =
		    order_status(jstr(b, "order"), jstr(b, "status"), now, &n, err, errsize);
		if (status)
			return status;
	} else if (json_object_get(b, "learner")) {
		json_t *p = find_person(jint(b, "learner"));
		if (!p) {
			snprintf(err, errsize, "no learner %lld", (long long)jint(b, "learner"));
			return 404;
		}
		const char *name = jstr(b, "name");
		json_t *withdraw = json_object_get(b, "withdraw");
		if (!name && !withdraw) {
			snprintf(err, errsize, "a learner change needs name or withdraw");
			return 400;
		}
		if (name && *name)
			rename_person(p, name, now, &n);
		if (withdraw) {
			const char *state = json_is_true(withdraw)
			                        ? (jstr(b, "state") ? jstr(b, "state") : "inactive")
			                        : "active";
			if (strcmp(state, "inactive") != 0 && strcmp(state, "deleted") != 0 &&
			    strcmp(state, "active") != 0 && strcmp(state, "completed") != 0) {
				snprintf(err, errsize,
				         "state is inactive, deleted or completed (withdraw: false "
				         "makes the learner active again)");
				return 400;
			}
			set_enrollment(p, state, now, &n);
		}
	} else {
		snprintf(err, errsize,
		         "needs {learner, name | withdraw}, {submit: {learner, assignment}} or "
		         "{order, status}");
		return 400;
	}
	*report = json_pack("{s:o, s:i, s:i, s:i}", "at", iso_frac(now), "canvas", n.canvas,
	                    "moodle", n.moodle, "pretix", n.pretix);
	return 0;
}
