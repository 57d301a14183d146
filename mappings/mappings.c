#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "jschema.h"
#include "mappings.h"

#define SCHEMA_PATH "mappings/mapping.schema.json"

/* Discord's limits that a file alone can break. */
#define MAX_NAME         100
#define MAX_PER_CATEGORY 50
#define MAX_ROLES        250
#define MAX_CHANNELS     500

const char *mappings_schema_text(void)
{
	const struct embedded_file *f = embedded_find(SCHEMA_PATH);
	return f ? f->data : "{}";
}

/* --- texts ----------------------------------------------------------------------------------- */

struct text_def {
	const char *key;
	const char *dflt;
	const char *vars[6]; /* the variables the text may use */
};

/* Indexed by enum mappings_text. The defaults are English; a file overrides any of them. */
static const struct text_def text_defs[MT_COUNT] = {
    [MT_REGISTRATION_MESSAGE] = {"registration_message",
                                 "Welcome! Press Register to get your cohort's roles and "
                                 "channels. Stuck? Ask in {help_channel}.",
                                 {"help_channel"}},
    [MT_REGISTER_BUTTON] = {"register_button", "Register", {0}},
    [MT_PICK_CITY] = {"pick_city", "Choose your city", {0}},
    [MT_PICK_PROGRAM] = {"pick_program", "Choose your program", {"city"}},
    [MT_PICK_COHORT] = {"pick_cohort", "Choose your cohort", {"city", "program"}},
    [MT_IDENTIFIER_LABEL] = {"identifier_label",
                             "Your e-mail address as {source} knows it",
                             {"source"}},
    [MT_ORDER_CODE_LABEL] = {"order_code_label", "Order code (as on your ticket, e.g. ABC12)", {0}},
    [MT_ORDER_NAME_LABEL] = {"order_name_label", "Name on the ticket", {0}},
    [MT_CODE_SENT] = {"code_sent",
                      "We sent a code to your {source} inbox. It is valid for {minutes} minutes: "
                      "press Enter code when you have it.",
                      {"source", "minutes"}},
    [MT_CODE_MESSAGE] = {"code_message",
                         "Your Discord registration code is {code}. It is valid for {minutes} "
                         "minutes. If you did not ask for it, ignore this message.",
                         {"code", "minutes"}},
    [MT_ENTER_CODE_BUTTON] = {"enter_code_button", "Enter code", {0}},
    [MT_CODE_LABEL] = {"code_label", "The code from your {source} inbox", {"source"}},
    [MT_APPROVAL_PENDING] = {"approval_pending",
                             "Thanks! A member of staff will check your registration soon.",
                             {0}},
    [MT_APPROVAL_REQUEST] = {"approval_request",
                             "{user} asks to register as {entry} ({cohort}).",
                             {"user", "entry", "cohort"}},
    [MT_REGISTERED] = {"registered",
                       "Welcome, {name}! You are now in {cohort}.",
                       {"name", "cohort", "roles"}},
    [MT_DENIED] = {"denied",
                   "Your registration was not approved. Please ask in {help_channel}.",
                   {"help_channel"}},
    [MT_FAIL_NOT_FOUND] = {"fail_not_found",
                           "We could not find you in the roster. Please ask in {help_channel}.",
                           {"help_channel", "source"}},
    [MT_FAIL_WRONG_PROOF] = {"fail_wrong_proof",
                             "That did not match. {attempts_left} attempt(s) left; ask in "
                             "{help_channel} if you are stuck.",
                             {"help_channel", "attempts_left"}},
    [MT_FAIL_TAKEN] = {"fail_taken",
                       "This registration is already linked to another Discord account. "
                       "Please ask in {help_channel}.",
                       {"help_channel"}},
    [MT_FAIL_TOO_MANY] = {"fail_too_many",
                          "Too many attempts. Try again in {minutes} minutes, or ask in "
                          "{help_channel}.",
                          {"help_channel", "minutes"}},
    [MT_FAIL_CODE_EXPIRED] = {"fail_code_expired",
                              "That code has expired. Press Register again for a new one.",
                              {"help_channel"}},
    [MT_FAIL_SOURCE_DOWN] = {"fail_source_down",
                             "{source} does not answer right now. Please try again in a few "
                             "minutes, or ask in {help_channel}.",
                             {"help_channel", "source"}},
    [MT_AUDIT_REGISTERED] = {"audit_registered",
                             "{user} registered as {entry} ({cohort}) by "
                             "{method}",
                             {"user", "entry", "cohort", "method"}},
    [MT_AUDIT_FAILED] = {"audit_failed",
                         "{user} failed to register: {reason}",
                         {"user", "reason", "method"}},
    [MT_REMOVALS_CONFIRM] = {"removals_confirm",
                             "This plan removes {count} of {total} roles the bridge handed out, "
                             "more than {share}. Confirm to go ahead.",
                             {"count", "total", "share"}},
    [MT_REMOVALS_BUTTON] = {"removals_button", "Confirm removals", {0}},
    [MT_REMOVALS_CONFIRMED] = {"removals_confirmed",
                               "{user} confirmed the removal of {count} role(s); they are "
                               "carried out.",
                               {"user", "count"}},
    [MT_REMOVALS_OUTDATED] = {"removals_outdated",
                              "The planned removals changed since this message; a new "
                              "confirmation is asked for below.",
                              {0}},
    [MT_SOURCE_FAILING] = {"source_failing",
                           "Roster source {source} failed: {error}. Nothing was removed; its "
                           "members keep their roles until it answers properly again.",
                           {"source", "error"}},
    [MT_SOURCE_RECOVERED] = {"source_recovered",
                             "Roster source {source} answers properly again; changes from it "
                             "apply as usual.",
                             {"source"}},
    [MT_APPROVE_BUTTON] = {"approve_button", "Approve", {0}},
    [MT_DENY_BUTTON] = {"deny_button", "Deny", {0}},
    [MT_APPROVED_BY] = {"approved_by",
                        "Approved by {staff}: {user}, {entry}, {cohort}",
                        {"staff", "user", "entry", "cohort"}},
    [MT_DENIED_BY] = {"denied_by",
                      "Denied by {staff}: {user}, {entry}, {cohort}",
                      {"staff", "user", "entry", "cohort"}},
    [MT_ALREADY_DECIDED] = {"already_decided", "This request was already decided.", {0}},
    [MT_NOTHING_PENDING] = {"nothing_pending", "There is no pending request for this member.", {0}},
    [MT_NOT_SET_UP] = {"not_set_up", "Registration is not set up on this server.", {0}},
    [MT_ERROR] = {"error",
                  "Sorry, something went wrong on our side and this could not be done. Please "
                  "try again in a moment; if it keeps happening, ask in the help channel.",
                  {0}},
    [MT_UNAVAILABLE] = {"unavailable", "This button or command is no longer available.", {0}},
    [MT_STAFF_ONLY] = {"staff_only", "This is for staff only.", {0}},
    [MT_RESTARTING] = {"restarting",
                       "The bridge is restarting; please try again in a minute.",
                       {0}},
    [MT_MORE_CHOICES] = {"more_choices", "More... ({page} of {pages})", {"page", "pages"}},
};

const char *mappings_text_key(enum mappings_text key)
{
	return key < MT_COUNT ? text_defs[key].key : NULL;
}

const char *mappings_text_get(const struct mappings_guild *g, enum mappings_text key)
{
	if (key >= MT_COUNT)
		return "";
	return g && g->texts[key] ? g->texts[key] : text_defs[key].dflt;
}

/* --- templates ------------------------------------------------------------------------------- */

static int var_known(const char *name, size_t len, const char *const *allowed)
{
	for (size_t i = 0; allowed[i]; i++)
		if (strlen(allowed[i]) == len && strncmp(allowed[i], name, len) == 0)
			return 1;
	return 0;
}

/* Walks tpl: for each {var} calls on_var (when not NULL), for each literal byte on_lit.
 * Returns 0, or -1 with err for an unclosed or empty brace. */
static int tpl_walk(const char *tpl, int (*on_var)(const char *name, size_t len, void *ud),
                    void (*on_lit)(char c, void *ud), void *ud, struct err *err)
{
	for (const char *p = tpl; *p; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			if (on_lit)
				on_lit(*p, ud);
			p++;
			continue;
		}
		if (*p == '}')
			return err_set(err, "a lone } (write }} for a brace)");
		if (*p != '{') {
			if (on_lit)
				on_lit(*p, ud);
			continue;
		}
		const char *end = p + 1;
		while (*end && *end != '}' && *end != '{')
			end++;
		if (*end != '}')
			return err_set(err, "a { is not closed (write {{ for a brace)");
		if (end == p + 1)
			return err_set(err, "an empty {}");
		if (on_var && on_var(p + 1, (size_t)(end - p - 1), ud) != 0)
			return -1;
		p = end;
	}
	return 0;
}

struct check_ud {
	const char *const *allowed;
	struct err *err;
};

static int check_var(const char *name, size_t len, void *ud)
{
	struct check_ud *c = ud;
	if (var_known(name, len, c->allowed))
		return 0;
	char list[256] = "";
	for (size_t i = 0; c->allowed[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s{%s}", i ? ", " : "", c->allowed[i]);
	}
	if (*list)
		return err_set(c->err, "unknown variable {%.*s} (known here: %s)", (int)len, name,
		               list);
	return err_set(c->err, "unknown variable {%.*s} (this text takes none)", (int)len, name);
}

/* 0 when tpl parses and uses only variables in allowed (NULL-terminated). */
static int tpl_check(const char *tpl, const char *const *allowed, struct err *err)
{
	struct check_ud c = {allowed, err};
	return tpl_walk(tpl, check_var, NULL, &c, err);
}

struct uses_ud {
	const char *name;
	int found;
};

static int find_var(const char *name, size_t len, void *ud)
{
	struct uses_ud *u = ud;
	u->found |= strlen(u->name) == len && strncmp(u->name, name, len) == 0;
	return 0;
}

static int tpl_uses(const char *tpl, const char *var)
{
	struct uses_ud u = {var, 0};
	if (tpl)
		tpl_walk(tpl, find_var, NULL, &u, NULL);
	return u.found;
}

struct render_ud {
	const char *const *vars;
	char *buf;
	size_t len, cap;
	int oom;
	struct err *err;
};

static void put(struct render_ud *r, const char *s, size_t n)
{
	if (r->oom)
		return;
	if (r->len + n + 1 > r->cap) {
		size_t cap = (r->len + n + 1) * 2;
		char *b = realloc(r->buf, cap);
		if (!b) {
			r->oom = 1;
			return;
		}
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

static void put_lit(char c, void *ud)
{
	put(ud, &c, 1);
}

static int put_var(const char *name, size_t len, void *ud)
{
	struct render_ud *r = ud;
	for (size_t i = 0; r->vars && r->vars[i]; i += 2)
		if (strlen(r->vars[i]) == len && strncmp(r->vars[i], name, len) == 0) {
			const char *v = r->vars[i + 1] ? r->vars[i + 1] : "";
			put(r, v, strlen(v));
			return 0;
		}
	return err_set(r->err, "unknown variable {%.*s}", (int)len, name);
}

char *mappings_render(const char *tpl, const char *const *vars, struct err *err)
{
	struct render_ud r = {vars, NULL, 0, 0, 0, err};
	put(&r, "", 0);
	if (tpl_walk(tpl, put_var, put_lit, &r, err) != 0 || r.oom) {
		if (r.oom)
			err_set(err, "out of memory");
		free(r.buf);
		return NULL;
	}
	return r.buf;
}

/* --- small helpers --------------------------------------------------------------------------- */

static char *dup_str(const json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_integer(v)) {
		char b[32];
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
		return strdup(b);
	}
	return NULL;
}

/* Every list here is NULL-terminated, so n is only for the callers' symmetry. */
static void strv_free(char **v, size_t n)
{
	(void)n;
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* An array of strings or integers as strings; *n gets the count. A NULL-terminated copy. */
static char **dup_strv(const json_t *a, size_t *n)
{
	size_t k = json_array_size(a);
	char **v = calloc(k + 1, sizeof(char *));
	if (n)
		*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < k; i++) {
		v[i] = dup_str(json_array_get(a, i));
		if (!v[i]) {
			strv_free(v, 0);
			return NULL;
		}
	}
	if (n)
		*n = k;
	return v;
}

static const char *str_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_color(const json_t *o)
{
	const char *c = str_of(o, "color");
	return c && c[0] == '#' ? (int)strtol(c + 1, NULL, 16) : -1;
}

static size_t utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int zone_known(const char *name)
{
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
		return 1;
	/* the system's zone database, which libical reads too (Debian's tzdata); a name is a
	 * path there, so odd input is kept away from it */
	if (strlen(name) > 64 || strstr(name, "..") || name[0] == '/' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
	        strlen(name))
		return 0;
	char path[128], magic[4];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	int ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

/* A number of exactly n digits at s, or -1. */
static long digits(const char *s, int n)
{
	long v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* The schema has checked the shape YYYY-MM-DD; this checks the calendar. */
static int date_valid(const char *s)
{
	long y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
	if (y < 0 || m < 1 || m > 12 || d < 1 || s[4] != '-' || s[7] != '-' || s[10])
		return 0;
	static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= days[m - 1] && !(m == 2 && d == 29 && !leap);
}

static const struct source_cfg *find_source(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

static int is_roster_type(const char *type)
{
	return strcmp(type, "canvas") == 0 || strcmp(type, "moodle") == 0 ||
	       strcmp(type, "pretix") == 0 || strcmp(type, "roster_file") == 0;
}

/* --- freeing --------------------------------------------------------------------------------- */

static void cohort_clear(struct mappings_cohort *c)
{
	free(c->name);
	free(c->role);
	for (size_t i = 0; i < c->nmatches; i++) {
		free(c->matches[i].source);
		free(c->matches[i].group);
		free(c->matches[i].city);
		free(c->matches[i].program);
		free(c->matches[i].cohort);
	}
	free(c->matches);
	free(c->time_zone);
	free(c->country);
	free(c->region);
	free(c->category);
	free(c->text);
	free(c->voice);
	strv_free(c->staff, c->nstaff);
	free(c->end_date);
}

void mappings_cohorts_free(struct mappings_cohort *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		cohort_clear(&v[i]);
	free(v);
}

static void set_clear(struct mappings_cohort_set *s)
{
	free(s->source);
	for (int k = 0; k < 3; k++)
		strv_free(s->where[k], 0);
	free(s->name);
	free(s->role);
	free(s->category);
	free(s->text);
	free(s->voice);
	free(s->time_zone);
	free(s->country);
	free(s->region);
	for (size_t i = 0; i < s->ncities; i++) {
		free(s->cities[i].city);
		free(s->cities[i].time_zone);
		free(s->cities[i].country);
		free(s->cities[i].region);
	}
	free(s->cities);
	for (size_t i = 0; i < s->nend_dates; i++) {
		free(s->end_dates[i].cohort);
		free(s->end_dates[i].date);
	}
	free(s->end_dates);
	strv_free(s->staff, s->nstaff);
}

static void roles_free(struct mappings_role *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].key);
		free(r[i].name);
	}
	free(r);
}

static void guild_clear(struct mappings_guild *g)
{
	free(g->file);
	free(g->guild_id);
	free(g->label);
	roles_free(g->staff_roles, g->nstaff_roles);
	roles_free(g->roles, g->nroles);
	mappings_cohorts_free(g->cohorts, g->ncohorts);
	for (size_t i = 0; i < g->nsets; i++)
		set_clear(&g->sets[i]);
	free(g->sets);
	struct mappings_registration *r = &g->registration;
	strv_free(r->sources, r->nsources);
	free(r->registration_channel);
	free(r->help_channel);
	free(r->approval_channel);
	free(r->audit_channel);
	for (size_t i = 0; i < g->nrole_rules; i++) {
		struct mappings_role_rule *rr = &g->role_rules[i];
		free(rr->source);
		strv_free(rr->items, rr->nitems);
		strv_free(rr->variations, rr->nvariations);
		strv_free(rr->roles, rr->nroles);
	}
	free(g->role_rules);
	for (int i = 0; i < MT_COUNT; i++)
		free(g->texts[i]);
}

void mappings_free(struct mappings *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nguilds; i++)
		guild_clear(&m->guilds[i]);
	free(m->guilds);
	free(m->dir);
	free(m);
}

/* --- loading one file ------------------------------------------------------------------------ */

struct ld {
	const struct jdoc *doc;
	const char *file;
	const struct config *cfg;
	struct diags *d;
	size_t problems;
	int oom;
	struct mappings_guild *g;
	/* every Discord role name the file defines, for uniqueness */
	struct {
		const char *name;
		char path[96];
		unsigned line;
	} * names;
	size_t nnames;
};

static void bad(struct ld *l, struct jpos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(struct ld *l, struct jpos pos, const char *fmt, ...)
{
	char msg[1000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diags_add(l->d, l->file, pos, "%s", msg);
	l->problems++;
}

static struct jpos at(const struct ld *l, const json_t *parent, const char *key, size_t index)
{
	return jdoc_pos(l->doc, parent, key, index, 0);
}

static char *xdup(struct ld *l, const char *s)
{
	char *r = s ? strdup(s) : NULL;
	if (s && !r)
		l->oom = 1;
	return r;
}

/* Source roles a section can ask for. */
enum want { WANT_ROSTER, WANT_PRETIX, WANT_LMS };

static void check_source(struct ld *l, const json_t *parent, const char *key, size_t index,
                         const char *path, const char *name, enum want want, const char *why)
{
	const struct source_cfg *s = find_source(l->cfg, name);
	struct jpos pos = at(l, parent, key, index);
	if (!s) {
		char list[300] = "";
		for (size_t i = 0; l->cfg && i < l->cfg->nsources; i++) {
			size_t n = strlen(list);
			snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
			         l->cfg->sources[i].name);
		}
		bad(l, pos, "%s: source \"%s\" is not declared in the configuration (declared: %s)",
		    path, name, *list ? list : "none");
		return;
	}
	const char *t = s->type;
	if (want == WANT_PRETIX && strcmp(t, "pretix") != 0)
		bad(l, pos, "%s: source \"%s\" is a %s source; %s needs a pretix source", path,
		    name, t, why);
	else if (want == WANT_LMS && strcmp(t, "canvas") != 0 && strcmp(t, "moodle") != 0)
		bad(l, pos, "%s: source \"%s\" is a %s source; %s needs a canvas or moodle source",
		    path, name, t, why);
	else if (want == WANT_ROSTER && !is_roster_type(t))
		bad(l, pos, "%s: source \"%s\" is a %s source, which has no roster", path, name, t);
}

static void check_template(struct ld *l, const json_t *parent, const char *key, const char *path,
                           const char *const *allowed)
{
	const char *tpl = str_of(parent, key);
	struct err e = {0};
	if (tpl && tpl_check(tpl, allowed, &e) != 0)
		bad(l, at(l, parent, key, 0), "%s.%s: %s", path, key, e.msg);
}

static void check_zone(struct ld *l, const json_t *parent, const char *path)
{
	const char *tz = str_of(parent, "time_zone");
	if (tz && !zone_known(tz))
		bad(l, at(l, parent, "time_zone", 0),
		    "%s.time_zone: \"%s\" is not a known IANA time zone (such as Europe/Berlin)",
		    path, tz);
	const char *c = str_of(parent, "country"), *r = str_of(parent, "region");
	if (c && r && strncmp(c, r, 2) != 0)
		bad(l, at(l, parent, "region", 0), "%s.region: \"%s\" is not in country \"%s\"",
		    path, r, c);
}

static void check_date(struct ld *l, const json_t *parent, const char *key, const char *path)
{
	const char *s = str_of(parent, key);
	if (s && strlen(s) == 10 && !date_valid(s))
		bad(l, at(l, parent, key, 0), "%s: \"%s\" is not a date in the calendar", path, s);
}

static const struct mappings_role *find_role(const struct mappings_role *v, size_t n,
                                             const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return &v[i];
	return NULL;
}

/* Staff role keys; a NULL-terminated copy. */
static char **read_staff(struct ld *l, const json_t *parent, const char *path, size_t *n)
{
	const json_t *a = json_object_get(parent, "staff");
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v) {
		if (json_is_string(v) &&
		    !find_role(l->g->staff_roles, l->g->nstaff_roles, json_string_value(v)))
			bad(l, at(l, a, NULL, i),
			    "%s.staff[%zu]: staff role \"%s\" is not defined in "
			    "staff_roles",
			    path, i, json_string_value(v));
	}
	char **r = dup_strv(json_is_array(a) ? a : NULL, n);
	if (!r)
		l->oom = 1;
	return r;
}

/* A Discord role name: unique within the server. */
static void claim_role_name(struct ld *l, const char *name, struct jpos pos, const char *path)
{
	for (size_t i = 0; i < l->nnames; i++)
		if (strcmp(l->names[i].name, name) == 0) {
			bad(l, pos, "%s: role name \"%s\" is already used by %s (line %u)", path,
			    name, l->names[i].path, l->names[i].line);
			return;
		}
	void *nv = realloc(l->names, (l->nnames + 1) * sizeof(*l->names));
	if (!nv) {
		l->oom = 1;
		return;
	}
	l->names = nv;
	l->names[l->nnames].name = name;
	snprintf(l->names[l->nnames].path, sizeof(l->names[l->nnames].path), "%s", path);
	l->names[l->nnames].line = pos.line;
	l->nnames++;
}

static void read_roles(struct ld *l, const char *section, struct mappings_role **out, size_t *nout)
{
	const json_t *o = json_object_get(jdoc_root(l->doc), section);
	const char *k;
	json_t *v;
	char path[160];

	if (!json_is_object(o) || !json_object_size(o))
		return;
	*out = calloc(json_object_size(o), sizeof(**out));
	if (!*out) {
		l->oom = 1;
		return;
	}
	json_object_foreach((json_t *)o, k, v) {
		struct mappings_role *r = &(*out)[*nout];
		const char *name = str_of(v, "name");
		if (!name)
			continue;
		snprintf(path, sizeof(path), "%s.%s", section, k);
		if (strcmp(section, "roles") == 0 &&
		    find_role(l->g->staff_roles, l->g->nstaff_roles, k))
			bad(l, jdoc_pos(l->doc, o, k, 0, 1),
			    "%s: \"%s\" is already the key of a staff role", path, k);
		char npath[200];
		snprintf(npath, sizeof(npath), "%s.name", path);
		claim_role_name(l, name, at(l, v, "name", 0), npath);
		r->key = xdup(l, k);
		r->name = xdup(l, name);
		r->color = parse_color(v);
		(*nout)++;
	}
}

/* Discord shows text channels in lowercase with - for spaces; two names that look alike
 * there are the same channel. */
static int same_channel(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == ' ' ? '-' : *a, y = *b == ' ' ? '-' : *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return *a == *b;
}

static char *render_name(struct ld *l, const json_t *parent, const char *key, const char *dflt,
                         const char *const *vars, const char *path)
{
	const char *tpl = str_of(parent, key);
	struct err e = {0};
	char *r = mappings_render(tpl ? tpl : dflt, vars, &e);
	if (!r) {
		if (strcmp(e.msg, "out of memory") == 0)
			l->oom = 1;
		return NULL; /* the template check has said why */
	}
	if (utf8_len(r) > MAX_NAME)
		bad(l, at(l, tpl ? parent : NULL, tpl ? key : NULL, 0),
		    "%s.%s: \"%.40s...\" is %zu characters; Discord allows %d", path, key, r,
		    utf8_len(r), MAX_NAME);
	return r;
}

static void read_cohort(struct ld *l, const json_t *arr, size_t i, struct mappings_cohort *c)
{
	const json_t *o = json_array_get(arr, i);
	const json_t *m = json_object_get(o, "match");
	const json_t *ch = json_object_get(o, "channels");
	char path[64], chpath[80];
	snprintf(path, sizeof(path), "cohorts[%zu]", i);
	snprintf(chpath, sizeof(chpath), "%s.channels", path);

	c->pos = at(l, arr, NULL, i);
	c->name = xdup(l, str_of(o, "name"));
	const char *source = str_of(m, "source");
	const char *val[3] = {str_of(m, "city"), str_of(m, "program"), str_of(m, "cohort")};
	const json_t *groups = json_object_get(m, "groups");
	char mpath[80];
	snprintf(mpath, sizeof(mpath), "%s.match", path);
	if (json_is_object(m) && !groups && !val[0] && !val[1] && !val[2])
		bad(l, at(l, o, "match", 0),
		    "%s: give groups (with source) or at least one of city, program, cohort",
		    mpath);
	if (groups && !source)
		bad(l, at(l, m, "groups", 0), "%s.groups: group ids need match.source", mpath);
	if (source) {
		char spath[100];
		snprintf(spath, sizeof(spath), "%s.source", mpath);
		check_source(l, m, "source", 0, spath, source, WANT_ROSTER, NULL);
	}
	size_t ng = json_array_size(groups);
	c->nmatches = ng ? ng : 1;
	c->matches = calloc(c->nmatches, sizeof(*c->matches));
	if (!c->matches) {
		c->nmatches = 0;
		l->oom = 1;
		return;
	}
	for (size_t k = 0; k < c->nmatches; k++) {
		struct mappings_match *mm = &c->matches[k];
		mm->source = xdup(l, source);
		mm->group = ng ? dup_str(json_array_get(groups, k)) : NULL;
		mm->city = xdup(l, val[0]);
		mm->program = xdup(l, val[1]);
		mm->cohort = xdup(l, val[2]);
	}

	/* Only the values the cohort is defined by can appear in its names. */
	const char *allowed[5] = {"name"};
	const char *vars[9] = {"name", c->name};
	size_t na = 1, nv = 2;
	static const char *const vnames[3] = {"city", "program", "cohort"};
	for (int k = 0; k < 3; k++)
		if (val[k]) {
			allowed[na++] = vnames[k];
			vars[nv++] = vnames[k];
			vars[nv++] = val[k];
		}
	check_template(l, o, "role", path, allowed);
	check_template(l, ch, "category", chpath, allowed);
	check_template(l, ch, "text", chpath, allowed);
	if (json_is_string(json_object_get(ch, "voice")))
		check_template(l, ch, "voice", chpath, allowed);
	if (!c->name)
		return;
	c->role = render_name(l, o, "role", "{name}", vars, path);
	c->color = parse_color(o);
	c->category = render_name(l, ch, "category", "{name}", vars, chpath);
	c->text = render_name(l, ch, "text", "{name}", vars, chpath);
	if (!json_is_false(json_object_get(ch, "voice")))
		c->voice = render_name(l, json_is_string(json_object_get(ch, "voice")) ? ch : NULL,
		                       "voice", "{name} voice", vars, chpath);
	if (c->role && json_object_get(o, "role")) {
		char rpath[80];
		snprintf(rpath, sizeof(rpath), "%s.role", path);
		claim_role_name(l, c->role, at(l, o, "role", 0), rpath);
	} else if (c->role) {
		claim_role_name(l, c->role, at(l, o, "name", 0), path);
	}
	check_zone(l, o, path);
	c->time_zone = xdup(l, str_of(o, "time_zone") ? str_of(o, "time_zone") : "UTC");
	c->region = xdup(l, str_of(o, "region"));
	const char *country = str_of(o, "country");
	char cc[3] = "";
	if (!country && c->region) {
		memcpy(cc, c->region, 2);
		country = cc;
	}
	c->country = xdup(l, country);
	c->staff = read_staff(l, o, path, &c->nstaff);
	char dpath[100];
	snprintf(dpath, sizeof(dpath), "%s.end_date", path);
	check_date(l, o, "end_date", dpath);
	c->end_date = xdup(l, str_of(o, "end_date"));
}

/* Cohorts sharing a category name share the category: Discord holds 50 channels in one. */
static void check_channels(struct ld *l, const json_t *arr)
{
	struct mappings_guild *g = l->g;
	size_t categories = 0, channels = 0;
	for (size_t i = 0; i < g->ncohorts; i++) {
		const struct mappings_cohort *c = &g->cohorts[i];
		if (!c->category || !c->text)
			continue;
		const json_t *o = json_array_get(arr, i);
		const json_t *ch = json_object_get(o, "channels");
		size_t inside = 0, first = i;
		for (size_t j = 0; j <= i; j++) {
			const struct mappings_cohort *p = &g->cohorts[j];
			if (!p->category || strcmp(p->category, c->category) != 0)
				continue;
			if (first == i)
				first = j;
			inside += 1 + (p->voice != NULL);
			if (j < i && p->text && same_channel(p->text, c->text))
				bad(l, at(l, ch ? ch : arr, ch ? "text" : NULL, i),
				    "cohorts[%zu].channels.text: \"%s\" is already the text "
				    "channel of "
				    "cohorts[%zu] in category \"%s\"",
				    i, c->text, j, c->category);
		}
		if (first == i)
			categories++;
		channels += 1 + (c->voice != NULL);
		size_t mine = 1 + (c->voice != NULL);
		if (inside > MAX_PER_CATEGORY && inside - mine <= MAX_PER_CATEGORY)
			bad(l, at(l, arr, NULL, i),
			    "cohorts[%zu]: category \"%s\" would hold more than %d channels, "
			    "Discord's limit",
			    i, c->category, MAX_PER_CATEGORY);
	}
	const json_t *root = jdoc_root(l->doc);
	size_t roles = g->nstaff_roles + g->nroles + g->ncohorts;
	if (roles > MAX_ROLES)
		bad(l, at(l, root, "cohorts", 0),
		    "cohorts: %zu roles in all (staff, other and cohort roles); Discord allows %d",
		    roles, MAX_ROLES);
	if (categories + channels > MAX_CHANNELS)
		bad(l, at(l, root, "cohorts", 0),
		    "cohorts: %zu channels and categories in all; Discord allows %d",
		    categories + channels, MAX_CHANNELS);
}

static void read_set(struct ld *l, const json_t *arr, size_t i, struct mappings_cohort_set *s)
{
	const json_t *o = json_array_get(arr, i);
	const json_t *ch = json_object_get(o, "channels");
	const json_t *where = json_object_get(o, "where");
	char path[64], chpath[80];
	snprintf(path, sizeof(path), "cohort_sets[%zu]", i);
	snprintf(chpath, sizeof(chpath), "%s.channels", path);
	static const char *const values[] = {"city", "program", "cohort", NULL};
	static const char *const with_name[] = {"name", "city", "program", "cohort", NULL};

	s->pos = at(l, arr, NULL, i);
	s->source = xdup(l, str_of(o, "source"));
	if (s->source) {
		char spath[100];
		snprintf(spath, sizeof(spath), "%s.source", path);
		check_source(l, o, "source", 0, spath, s->source, WANT_ROSTER, NULL);
	}
	for (int k = 0; k < 3; k++) {
		const json_t *w = json_object_get(where, values[k]);
		if (json_is_array(w) && !(s->where[k] = dup_strv(w, NULL)))
			l->oom = 1;
	}
	check_template(l, o, "name", path, values);
	check_template(l, o, "role", path, with_name);
	check_template(l, ch, "category", chpath, with_name);
	check_template(l, ch, "text", chpath, with_name);
	if (json_is_string(json_object_get(ch, "voice")))
		check_template(l, ch, "voice", chpath, with_name);
	s->name = xdup(l, str_of(o, "name") ? str_of(o, "name") : "{program} {city} {cohort}");
	s->role = xdup(l, str_of(o, "role") ? str_of(o, "role") : "{name}");
	s->category = xdup(l, str_of(ch, "category") ? str_of(ch, "category") : "{name}");
	s->text = xdup(l, str_of(ch, "text") ? str_of(ch, "text") : "{name}");
	if (!json_is_false(json_object_get(ch, "voice")))
		s->voice = xdup(l, str_of(ch, "voice") ? str_of(ch, "voice") : "{name} voice");
	s->color = parse_color(o);
	check_zone(l, o, path);
	s->time_zone = xdup(l, str_of(o, "time_zone") ? str_of(o, "time_zone") : "UTC");
	s->country = xdup(l, str_of(o, "country"));
	s->region = xdup(l, str_of(o, "region"));

	const json_t *cities = json_object_get(o, "cities");
	const char *k;
	json_t *v;
	if (json_object_size(cities)) {
		s->cities = calloc(json_object_size(cities), sizeof(*s->cities));
		if (!s->cities)
			l->oom = 1;
	}
	json_object_foreach((json_t *)cities, k, v) {
		if (!s->cities)
			break;
		char cpath[200];
		snprintf(cpath, sizeof(cpath), "%s.cities.%s", path, k);
		check_zone(l, v, cpath);
		struct mappings_place *p = &s->cities[s->ncities++];
		p->city = xdup(l, k);
		p->time_zone = xdup(l, str_of(v, "time_zone"));
		p->country = xdup(l, str_of(v, "country"));
		p->region = xdup(l, str_of(v, "region"));
	}
	const json_t *ends = json_object_get(o, "end_dates");
	if (json_object_size(ends)) {
		s->end_dates = calloc(json_object_size(ends), sizeof(*s->end_dates));
		if (!s->end_dates)
			l->oom = 1;
	}
	json_object_foreach((json_t *)ends, k, v) {
		if (!s->end_dates)
			break;
		char epath[200];
		snprintf(epath, sizeof(epath), "%s.end_dates.%s", path, k);
		check_date(l, ends, k, epath);
		s->end_dates[s->nend_dates].cohort = xdup(l, k);
		s->end_dates[s->nend_dates++].date = xdup(l, json_string_value(v));
	}
	s->staff = read_staff(l, o, path, &s->nstaff);
}

static void read_registration(struct ld *l)
{
	const json_t *o = json_object_get(jdoc_root(l->doc), "registration");
	struct mappings_registration *r = &l->g->registration;
	if (!json_is_object(o))
		return;
	const char *proof = str_of(o, "proof");
	enum want want = WANT_ROSTER;
	if (!proof)
		return;
	if (strcmp(proof, "pretix_order") == 0) {
		r->proof = MAPPINGS_PROOF_PRETIX_ORDER;
		want = WANT_PRETIX;
	} else if (strcmp(proof, "lms_code") == 0) {
		r->proof = MAPPINGS_PROOF_LMS_CODE;
		want = WANT_LMS;
	} else if (strcmp(proof, "staff_approval") == 0) {
		r->proof = MAPPINGS_PROOF_STAFF_APPROVAL;
	} else {
		return;
	}
	const json_t *srcs = json_object_get(o, "sources");
	size_t i;
	const json_t *v;
	char why[40], path[64];
	snprintf(why, sizeof(why), "proof %s", proof);
	json_array_foreach(srcs, i, v) {
		snprintf(path, sizeof(path), "registration.sources[%zu]", i);
		if (json_is_string(v))
			check_source(l, srcs, NULL, i, path, json_string_value(v), want, why);
	}
	r->sources = dup_strv(json_is_array(srcs) ? srcs : NULL, &r->nsources);
	const json_t *ch = json_object_get(o, "channels");
	r->registration_channel = xdup(l, str_of(ch, "registration"));
	r->help_channel = xdup(l, str_of(ch, "help"));
	r->approval_channel = xdup(l, str_of(ch, "approval"));
	r->audit_channel = xdup(l, str_of(ch, "audit"));
	if (r->proof == MAPPINGS_PROOF_STAFF_APPROVAL && ch && !r->approval_channel)
		bad(l, at(l, o, "channels", 0),
		    "registration.channels: proof staff_approval needs an approval channel");
	const json_t *at_ = json_object_get(o, "attempts");
	const json_t *x;
	r->attempts_per_user = json_is_integer(x = json_object_get(at_, "per_user"))
	                           ? (unsigned)json_integer_value(x)
	                           : 5;
	r->attempts_per_entry = json_is_integer(x = json_object_get(at_, "per_entry"))
	                            ? (unsigned)json_integer_value(x)
	                            : 10;
	r->attempts_window_minutes = json_is_integer(x = json_object_get(at_, "window_minutes"))
	                                 ? (unsigned)json_integer_value(x)
	                                 : 60;
	r->code_minutes = json_is_integer(x = json_object_get(o, "code_minutes"))
	                      ? (unsigned)json_integer_value(x)
	                      : 15;
	r->set_nickname = json_is_true(json_object_get(o, "set_nickname"));
}

static void read_role_rules(struct ld *l)
{
	struct mappings_guild *g = l->g;
	const json_t *arr = json_object_get(jdoc_root(l->doc), "role_rules");
	size_t n = json_array_size(arr);
	if (!n)
		return;
	g->role_rules = calloc(n, sizeof(*g->role_rules));
	if (!g->role_rules) {
		l->oom = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(arr, i);
		struct mappings_role_rule *rr = &g->role_rules[g->nrole_rules++];
		char path[64];
		snprintf(path, sizeof(path), "role_rules[%zu]", i);
		const json_t *items = json_object_get(o, "items"),
		             *vars = json_object_get(o, "variations");
		const json_t *roles = json_object_get(o, "roles");
		rr->source = xdup(l, str_of(o, "source"));
		if (rr->source) {
			char spath[80];
			snprintf(spath, sizeof(spath), "%s.source", path);
			check_source(l, o, "source", 0, spath, rr->source, WANT_PRETIX,
			             "a role rule");
		}
		if (json_is_object(o) && !items && !vars)
			bad(l, at(l, arr, NULL, i), "%s: give items, variations or both", path);
		rr->items = dup_strv(json_is_array(items) ? items : NULL, &rr->nitems);
		rr->variations = dup_strv(json_is_array(vars) ? vars : NULL, &rr->nvariations);
		rr->roles = dup_strv(json_is_array(roles) ? roles : NULL, &rr->nroles);
		if (!rr->items || !rr->variations || !rr->roles)
			l->oom = 1;
		size_t j;
		const json_t *v;
		json_array_foreach(roles, j, v) {
			const char *key = json_string_value(v);
			if (key && !find_role(g->roles, g->nroles, key) &&
			    !find_role(g->staff_roles, g->nstaff_roles, key))
				bad(l, at(l, roles, NULL, j),
				    "%s.roles[%zu]: role \"%s\" is not defined in roles or "
				    "staff_roles",
				    path, j, key);
		}
	}
}

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];
	if (la > 64 || lb > 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void read_texts(struct ld *l)
{
	const json_t *o = json_object_get(jdoc_root(l->doc), "texts");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v) {
		int key = -1;
		size_t best = 4;
		const char *near = NULL;
		for (int i = 0; i < MT_COUNT; i++) {
			if (strcmp(text_defs[i].key, k) == 0)
				key = i;
			size_t dd = distance(k, text_defs[i].key);
			if (dd < best) {
				best = dd;
				near = text_defs[i].key;
			}
		}
		if (key < 0) {
			if (near)
				bad(l, jdoc_pos(l->doc, o, k, 0, 1),
				    "texts: unknown text \"%s\" (did you mean \"%s\"?)", k, near);
			else
				bad(l, jdoc_pos(l->doc, o, k, 0, 1), "texts: unknown text \"%s\"",
				    k);
			continue;
		}
		if (!json_is_string(v))
			continue;
		char path[80];
		snprintf(path, sizeof(path), "texts");
		check_template(l, o, k, path, text_defs[key].vars);
		l->g->texts[key] = xdup(l, json_string_value(v));
	}
}

static void read_guild(struct ld *l)
{
	const json_t *root = jdoc_root(l->doc);
	struct mappings_guild *g = l->g;
	if (!json_is_object(root))
		return;
	g->file = xdup(l, l->file);
	g->guild_id = xdup(l, str_of(root, "guild"));
	g->label = xdup(l, str_of(root, "label"));
	read_roles(l, "staff_roles", &g->staff_roles, &g->nstaff_roles);
	read_roles(l, "roles", &g->roles, &g->nroles);

	const json_t *arr = json_object_get(root, "cohorts");
	size_t n = json_array_size(arr);
	if (n && !(g->cohorts = calloc(n, sizeof(*g->cohorts))))
		l->oom = 1;
	for (size_t i = 0; g->cohorts && i < n; i++) {
		struct mappings_cohort *c = &g->cohorts[g->ncohorts++];
		read_cohort(l, arr, i, c);
		for (size_t j = 0; c->name && j < i; j++)
			if (g->cohorts[j].name && strcmp(g->cohorts[j].name, c->name) == 0) {
				const json_t *o = json_array_get(arr, i);
				bad(l, at(l, o, "name", 0),
				    "cohorts[%zu].name: \"%s\" is already the name of cohorts[%zu] "
				    "(line "
				    "%u)",
				    i, c->name, j, g->cohorts[j].pos.line);
				break;
			}
	}
	check_channels(l, arr);

	arr = json_object_get(root, "cohort_sets");
	n = json_array_size(arr);
	if (n && !(g->sets = calloc(n, sizeof(*g->sets))))
		l->oom = 1;
	for (size_t i = 0; g->sets && i < n; i++)
		read_set(l, arr, i, &g->sets[g->nsets++]);

	read_registration(l);
	read_role_rules(l);
	read_texts(l);
	const json_t *share = json_object_get(json_object_get(root, "removals"), "confirm_share");
	g->removals_confirm_share = json_is_number(share) ? json_number_value(share) : 0.1;
}

/* --- the directory --------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* jdoc_load reports a syntax error as "file:line:col: message"; as a diagnostic it sorts and
 * prints with the others. */
static void syntax_diag(struct diags *d, const char *path, const char *msg)
{
	size_t pl = strlen(path);
	if (strncmp(msg, path, pl) == 0 && msg[pl] == ':') {
		char *end;
		unsigned long line = strtoul(msg + pl + 1, &end, 10);
		unsigned long col = *end == ':' ? strtoul(end + 1, &end, 10) : 0;
		if (line && col && strncmp(end, ": ", 2) == 0) {
			diags_add(d, path, (struct jpos){(unsigned)line, (unsigned)col}, "%s",
			          end + 2);
			return;
		}
		diags_add(d, path, (struct jpos){0, 0}, "%s", msg + pl + 1 + (msg[pl + 1] == ' '));
		return;
	}
	diags_add(d, path, (struct jpos){0, 0}, "%s", msg);
}

/* The names of the mapping files in dir, sorted; NULL-terminated. */
static char **list_dir(const char *dir, int must_exist, size_t *n, struct err *err)
{
	DIR *dp = opendir(dir);
	char **names = calloc(1, sizeof(char *));
	size_t cap = 1;
	*n = 0;
	if (!names) {
		if (dp)
			closedir(dp);
		err_set(err, "out of memory");
		return NULL;
	}
	if (!dp) {
		if (errno == ENOENT && !must_exist)
			return names;
		err_set(err, "%s: %s", dir, strerror(errno));
		free(names);
		return NULL;
	}
	const struct dirent *e;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.' || !ends_with(e->d_name, ".json") ||
		    ends_with(e->d_name, ".schema.json") || e->d_type == DT_DIR)
			continue;
		if (*n + 1 >= cap) {
			cap *= 2;
			char **nv = realloc(names, cap * sizeof(char *));
			if (!nv)
				goto oom;
			names = nv;
		}
		if (!(names[*n] = strdup(e->d_name)))
			goto oom;
		names[++*n] = NULL;
	}
	closedir(dp);
	qsort(names, *n, sizeof(char *), cmp_str);
	return names;
oom:
	closedir(dp);
	strv_free(names, 0);
	err_set(err, "out of memory");
	return NULL;
}

struct mappings *mappings_load(const char *dir, const struct config *cfg, int must_exist,
                               struct diags *diags, struct err *err)
{
	struct mappings *m = calloc(1, sizeof(*m));
	json_t *schema = NULL;
	json_error_t je;
	size_t n = 0, before = diags->n;
	char **names = NULL;
	int failed = 0;

	if (!m || !(m->dir = strdup(dir))) {
		err_set(err, "out of memory");
		goto fail;
	}
	names = list_dir(dir, must_exist, &n, err);
	if (!names)
		goto fail;
	schema = json_loads(mappings_schema_text(), 0, &je);
	if (!schema) {
		err_set(err, "embedded mapping schema is invalid: %s", je.text);
		goto fail;
	}
	if (n && !(m->guilds = calloc(n, sizeof(*m->guilds)))) {
		err_set(err, "out of memory");
		goto fail;
	}
	m->nfiles = n;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct err e = {0};
		size_t dl = strlen(dir);
		snprintf(path, sizeof(path), "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
		         names[i]);
		struct jdoc *doc = jdoc_load(path, &e);
		if (!doc) {
			syntax_diag(diags, path, e.msg);
			continue;
		}
		struct ld l = {.doc = doc, .file = path, .cfg = cfg, .d = diags};
		struct mappings_guild *g = &m->guilds[m->nguilds++];
		l.g = g;
		jschema_validate(schema, doc, diags);
		read_guild(&l);
		const json_t *root = jdoc_root(doc);
		for (size_t j = 0; g->guild_id && j + 1 < m->nguilds; j++)
			if (m->guilds[j].guild_id &&
			    strcmp(m->guilds[j].guild_id, g->guild_id) == 0)
				diags_add(diags, path, jdoc_pos(doc, root, "guild", 0, 0),
				          "guild: \"%s\" is already mapped by %s", g->guild_id,
				          m->guilds[j].file);
		free(l.names);
		jdoc_free(doc);
		if (l.oom) {
			err_set(err, "out of memory");
			failed = 1;
		}
	}
	if (failed)
		goto fail;
	if (diags->n > before) {
		diags_sort(diags);
		err_set(err, "%s: %zu problem(s)", dir, diags->n - before);
		goto fail;
	}
	json_decref(schema);
	strv_free(names, 0);
	return m;
fail:
	json_decref(schema);
	strv_free(names, 0);
	mappings_free(m);
	return NULL;
}

const struct mappings_guild *mappings_guild(const struct mappings *m, const char *guild_id)
{
	for (size_t i = 0; m && guild_id && i < m->nguilds; i++)
		if (m->guilds[i].guild_id && strcmp(m->guilds[i].guild_id, guild_id) == 0)
			return &m->guilds[i];
	return NULL;
}

size_t mappings_cohort_count(const struct mappings *m)
{
	size_t n = 0;
	for (size_t i = 0; m && i < m->nguilds; i++)
		n += m->guilds[i].ncohorts;
	return n;
}

size_t mappings_set_count(const struct mappings *m)
{
	size_t n = 0;
	for (size_t i = 0; m && i < m->nguilds; i++)
		n += m->guilds[i].nsets;
	return n;
}

/* --- cohort sets against the roster ---------------------------------------------------------- */

static int in_list(char *const *list, const char *v)
{
	if (!list)
		return 1;
	for (size_t i = 0; v && list[i]; i++)
		if (strcmp(list[i], v) == 0)
			return 1;
	return 0;
}

static char *dup_or_null(const char *s, int *oom)
{
	char *r = s ? strdup(s) : NULL;
	if (s && !r)
		*oom = 1;
	return r;
}

int mappings_expand_set(const struct mappings_guild *g, const struct mappings_cohort_set *set,
                        const struct mappings_tuple *tuples, size_t ntuples,
                        struct mappings_cohort **out, size_t *nout, struct diags *diags,
                        struct err *err)
{
	struct mappings_cohort *v = NULL;
	size_t n = 0;
	int oom = 0;
	static const char *const vnames[3] = {"city", "program", "cohort"};
	const char *file = g && g->file ? g->file : NULL;

	*out = NULL;
	*nout = 0;
	for (size_t t = 0; t < ntuples && !oom; t++) {
		const struct mappings_tuple *tu = &tuples[t];
		const char *val[3] = {tu->city, tu->program, tu->cohort};
		if (set->source && tu->source && strcmp(set->source, tu->source) != 0)
			continue;
		int keep = 1, missing = -1;
		for (int k = 0; k < 3; k++) {
			keep &= in_list(set->where[k], val[k]) && (!set->where[k] || val[k]);
			int used =
			    tpl_uses(set->name, vnames[k]) || tpl_uses(set->role, vnames[k]) ||
			    tpl_uses(set->category, vnames[k]) || tpl_uses(set->text, vnames[k]) ||
			    tpl_uses(set->voice, vnames[k]);
			if (used && !val[k] && missing < 0)
				missing = k;
		}
		if (!keep)
			continue;
		if (missing >= 0) {
			if (diags)
				diags_add(
				    diags, file, set->pos,
				    "cohort set: roster values (%s, %s, %s) have no %s, which the "
				    "names use; skipped",
				    val[0] ? val[0] : "-", val[1] ? val[1] : "-",
				    val[2] ? val[2] : "-", vnames[missing]);
			continue;
		}
		const char *vars[11] = {"city", val[0], "program", val[1], "cohort", val[2]};
		char *name = mappings_render(set->name, vars, err);
		if (!name)
			goto fail;
		struct mappings_cohort *c = NULL;
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, name) == 0)
				c = &v[i];
		if (c) {
			free(name);
		} else {
			struct mappings_cohort *nv = realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				free(name);
				oom = 1;
				break;
			}
			v = nv;
			c = &v[n++];
			memset(c, 0, sizeof(*c));
			c->name = name;
			c->pos = set->pos;
			c->color = set->color;
			vars[6] = "name";
			vars[7] = name;
			if (!(c->role = mappings_render(set->role, vars, err)) ||
			    !(c->category = mappings_render(set->category, vars, err)) ||
			    !(c->text = mappings_render(set->text, vars, err)) ||
			    (set->voice && !(c->voice = mappings_render(set->voice, vars, err))))
				goto fail;
			const struct mappings_place *pl = NULL;
			for (size_t i = 0; val[0] && i < set->ncities; i++)
				if (strcmp(set->cities[i].city, val[0]) == 0)
					pl = &set->cities[i];
			const char *tz = pl && pl->time_zone ? pl->time_zone : set->time_zone;
			const char *country = pl && pl->country ? pl->country : set->country;
			const char *region =
			    pl && (pl->region || pl->country) ? pl->region : set->region;
			c->time_zone = dup_or_null(tz ? tz : "UTC", &oom);
			c->country = dup_or_null(country, &oom);
			c->region = dup_or_null(region, &oom);
			for (size_t i = 0; val[2] && i < set->nend_dates; i++)
				if (strcmp(set->end_dates[i].cohort, val[2]) == 0)
					c->end_date = dup_or_null(set->end_dates[i].date, &oom);
			c->staff = calloc(set->nstaff + 1, sizeof(char *));
			if (!c->staff) {
				oom = 1;
				break;
			}
			for (size_t i = 0; i < set->nstaff; i++)
				c->staff[c->nstaff++] = dup_or_null(set->staff[i], &oom);
			if (diags && g)
				for (size_t i = 0; i < g->ncohorts; i++)
					if (strcmp(g->cohorts[i].role, c->role) == 0)
						diags_add(
						    diags, file, set->pos,
						    "cohort set: the generated cohort \"%s\" has "
						    "the role name of cohorts[%zu]",
						    c->name, i);
		}
		struct mappings_match *nm = realloc(c->matches, (c->nmatches + 1) * sizeof(*nm));
		if (!nm) {
			oom = 1;
			break;
		}
		c->matches = nm;
		nm = &c->matches[c->nmatches++];
		nm->source = dup_or_null(set->source, &oom);
		nm->group = NULL;
		nm->city = dup_or_null(val[0], &oom);
		nm->program = dup_or_null(val[1], &oom);
		nm->cohort = dup_or_null(val[2], &oom);
	}
	if (oom) {
		err_set(err, "out of memory");
		goto fail;
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	mappings_cohorts_free(v, n);
	return -1;
}
