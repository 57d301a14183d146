#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "discord.h"
#include "log.h"
#include "names.h"
#include "registration.h"
#include "secret.h"

#define EPHEMERAL   64
#define MAX_OPTIONS 25

struct reg {
	uv_loop_t *loop;
	struct db *db;
	struct httpc *http;
	const struct config *cfg;
	const struct mappings *maps;
};

struct reg *reg_new(uv_loop_t *loop, struct db *db, struct httpc *http)
{
	struct reg *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	r->db = db;
	r->http = http;
	return r;
}

void reg_set_config(struct reg *r, const struct config *cfg, const struct mappings *maps)
{
	if (!r)
		return;
	r->cfg = cfg;
	r->maps = maps;
}

const char *reg_text(const struct reg *r, const char *guild_id, enum mappings_text key)
{
	const struct mappings_guild *g =
	    r && r->maps && guild_id ? mappings_guild(r->maps, guild_id) : NULL;
	return g ? mappings_text_get(g, key) : NULL;
}

void reg_free(struct reg *r)
{
	free(r);
}

/* --- small helpers ------------------------------------------------------------------------ */

static int eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static const char *method_name(enum mappings_proof p)
{
	switch (p) {
	case MAPPINGS_PROOF_PRETIX_ORDER:
		return "pretix_order";
	case MAPPINGS_PROOF_LMS_CODE:
		return "lms_code";
	case MAPPINGS_PROOF_STAFF_APPROVAL:
		return "staff_approval";
	default:
		return "none";
	}
}

/* A text of the guild's, rendered; never NULL (a template the loader accepted renders). */
static char *text(const struct mappings_guild *g, enum mappings_text key, const char *const *vars)
{
	struct err e = {0};
	const char *none[] = {NULL};
	char *s = mappings_render(mappings_text_get(g, key), vars ? vars : none, &e);
	if (!s) {
		log_warn("registration", "a text did not render", "key", mappings_text_key(key),
		         "error", e.msg);
		s = strdup(mappings_text_get(g, key));
	}
	return s ? s : strdup("");
}

/* A channel the mappings name, as its id (into buf) or "" when the guild has none by that
 * name yet. */
static const char *channel_id(struct cache *c, const char *guild, const char *name, char *buf,
                              size_t cap)
{
	uint64_t id = name && c ? cache_channel_by_name(c, strtoull(guild, NULL, 10), name) : 0;
	if (id)
		snprintf(buf, cap, "%llu", (unsigned long long)id);
	else
		buf[0] = '\0';
	return buf;
}

/* The help channel as people see it: a link when it exists, its name otherwise. */
static const char *help_mention(struct cache *c, const struct mappings_guild *g, const char *guild,
                                char *buf, size_t cap)
{
	char id[32];
	const char *name = g->registration.help_channel;
	if (*channel_id(c, guild, name, id, sizeof(id)))
		snprintf(buf, cap, "<#%s>", id);
	else
		snprintf(buf, cap, "#%s", name ? name : "help");
	return buf;
}

/* "{a,b}" for a text[] parameter; source names are [a-z0-9_-] (the config's schema). */
static void sources_array(const struct mappings_guild *g, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "{");
	for (size_t i = 0; i < g->registration.nsources && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "",
		                      g->registration.sources[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "}");
}

/* The mappings' role rules as cb_reg_roles reads them: [{"source", "items", "variations",
 * "roles": ["role:<key>" | "staff:<key>"]}]. Returned to the caller to free. */
static char *rules_json(const struct mappings_guild *g)
{
	json_t *a = json_array();
	for (size_t i = 0; g && i < g->nrole_rules; i++) {
		const struct mappings_role_rule *rr = &g->role_rules[i];
		json_t *items = json_array(), *vars = json_array(), *roles = json_array();
		for (size_t k = 0; k < rr->nitems; k++)
			json_array_append_new(items, json_string(rr->items[k]));
		for (size_t k = 0; k < rr->nvariations; k++)
			json_array_append_new(vars, json_string(rr->variations[k]));
		for (size_t k = 0; k < rr->nroles; k++) {
			int other = 0;
			for (size_t x = 0; x < g->nroles && !other; x++)
				other = eq(g->roles[x].key, rr->roles[k]);
			json_array_append_new(
			    roles, json_sprintf("%s:%s", other ? "role" : "staff", rr->roles[k]));
		}
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:o}", "source", rr->source,
		                                   "items", items, "variations", vars, "roles",
		                                   roles));
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static const struct source_cfg *source_cfg(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg && i < cfg->nsources; i++)
		if (eq(cfg->sources[i].name, name))
			return &cfg->sources[i];
	return NULL;
}

static json_t *ephemeral(char *content)
{
	json_t *m = json_pack("{s:s, s:i, s:[]}", "content", content ? content : "", "flags",
	                      EPHEMERAL, "components");
	free(content);
	return m;
}

/* --- cohorts: what a learner can pick ------------------------------------------------------- */

/* A cohort as the selects show it. */
struct choice {
	char *name, *city, *program;
};

struct choices {
	struct choice *v;
	size_t n, cap;
};

static void choices_free(struct choices *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->v[i].name);
		free(cs->v[i].city);
		free(cs->v[i].program);
	}
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

static void choices_add(struct choices *cs, const char *name, const char *city, const char *program)
{
	for (size_t i = 0; i < cs->n; i++)
		if (eq(cs->v[i].name, name))
			return;
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 16;
		struct choice *nv = realloc(cs->v, cap * sizeof(*nv));
		if (!nv)
			return;
		cs->v = nv;
		cs->cap = cap;
	}
	cs->v[cs->n].name = strdup(name);
	cs->v[cs->n].city = city ? strdup(city) : NULL;
	cs->v[cs->n].program = program ? strdup(program) : NULL;
	cs->n++;
}

static int source_registers(const struct mappings_guild *g, const char *source)
{
	if (!source)
		return 1;
	for (size_t i = 0; i < g->registration.nsources; i++)
		if (eq(g->registration.sources[i], source))
			return 1;
	return 0;
}

/* Roster tuples as rows of (source, city, program, cohort). */
static struct mappings_tuple *tuples_of(PGresult *res, int col, size_t *n)
{
	int rows = res ? PQntuples(res) : 0;
	struct mappings_tuple *t = calloc(rows ? (size_t)rows : 1, sizeof(*t));
	*n = 0;
	for (int i = 0; t && i < rows; i++) {
		const char *v[4];
		for (int k = 0; k < 4; k++)
			v[k] = PQgetisnull(res, i, col + k) ? NULL : PQgetvalue(res, i, col + k);
		t[*n] = (struct mappings_tuple){v[0], v[1], v[2], v[3]};
		(*n)++;
	}
	return t;
}

/* Every cohort a learner of the registration's sources may pick: the mappings' own cohorts,
 * and those the cohort sets make from the roster's tuples. */
static void build_choices(const struct mappings_guild *g, const struct mappings_tuple *t, size_t nt,
                          struct choices *cs)
{
	for (size_t i = 0; i < g->ncohorts; i++) {
		const struct mappings_cohort *c = &g->cohorts[i];
		const char *city = NULL, *program = NULL;
		int relevant = 0;
		for (size_t k = 0; k < c->nmatches; k++) {
			relevant |= source_registers(g, c->matches[k].source);
			city = city ? city : c->matches[k].city;
			program = program ? program : c->matches[k].program;
		}
		if (relevant)
			choices_add(cs, c->name, city, program);
	}
	for (size_t s = 0; s < g->nsets; s++) {
		if (!source_registers(g, g->sets[s].source))
			continue;
		struct mappings_cohort *out = NULL;
		size_t nout = 0;
		struct err e = {0};
		if (mappings_expand_set(g, &g->sets[s], t, nt, &out, &nout, NULL, &e) != 0)
			continue;
		for (size_t i = 0; i < nout; i++) {
			const struct mappings_match *m =
			    out[i].nmatches ? &out[i].matches[0] : NULL;
			if (m && !source_registers(g, m->source))
				continue;
			choices_add(cs, out[i].name, m ? m->city : NULL, m ? m->program : NULL);
		}
		mappings_cohorts_free(out, nout);
	}
}

/* A roster membership, as the proof queries return it. */
struct row {
	const char *source, *person, *group, *city, *program, *cohort;
};

static int match_ok(const struct mappings_match *m, const struct row *w)
{
	return (!m->source || eq(m->source, w->source)) && (!m->group || eq(m->group, w->group)) &&
	       (!m->city || eq(m->city, w->city)) && (!m->program || eq(m->program, w->program)) &&
	       (!m->cohort || eq(m->cohort, w->cohort));
}

/* Whether the memberships rows (one person's) put that person in the cohort called name. */
static int in_cohort(const struct mappings_guild *g, const char *name, const struct row *rows,
                     size_t n)
{
	for (size_t i = 0; i < g->ncohorts; i++) {
		const struct mappings_cohort *c = &g->cohorts[i];
		if (!eq(c->name, name))
			continue;
		for (size_t k = 0; k < c->nmatches; k++)
			for (size_t j = 0; j < n; j++)
				if (match_ok(&c->matches[k], &rows[j]))
					return 1;
	}
	struct mappings_tuple *t = calloc(n ? n : 1, sizeof(*t));
	int found = 0;
	for (size_t j = 0; t && j < n; j++)
		t[j] = (struct mappings_tuple){rows[j].source, rows[j].city, rows[j].program,
		                               rows[j].cohort};
	for (size_t s = 0; t && !found && s < g->nsets; s++) {
		struct mappings_cohort *out = NULL;
		size_t nout = 0;
		struct err e = {0};
		if (mappings_expand_set(g, &g->sets[s], t, n, &out, &nout, NULL, &e) != 0)
			continue;
		for (size_t i = 0; i < nout && !found; i++)
			found = eq(out[i].name, name);
		mappings_cohorts_free(out, nout);
	}
	free(t);
	return found;
}

/* The first cohort (by the mappings' order) a person's memberships put them in, or NULL. */
static char *cohort_of(const struct mappings_guild *g, const struct row *rows, size_t n)
{
	struct mappings_tuple *t = calloc(n ? n : 1, sizeof(*t));
	struct choices cs = {0};
	char *name = NULL;
	for (size_t j = 0; t && j < n; j++)
		t[j] = (struct mappings_tuple){rows[j].source, rows[j].city, rows[j].program,
		                               rows[j].cohort};
	if (t)
		build_choices(g, t, n, &cs);
	for (size_t i = 0; i < cs.n && !name; i++)
		if (in_cohort(g, cs.v[i].name, rows, n))
			name = strdup(cs.v[i].name);
	choices_free(&cs);
	free(t);
	return name;
}

/* --- one request: an interaction (or a command) and what it has learnt so far --------------- */

struct rq {
	struct reg *r;
	struct ix *ix;
	char guild[32], user[32];
	char source[64], person[128], cohort[128], name[256];
	char staff[32];
	long user_fails, entry_fails;
	int approve;       /* decisions: 1 approve, 0 deny */
	int update;        /* answer by replacing the message the component is on */
	char approval[24]; /* a staff decision: the request's id */
};

static struct rq *rq_new(struct ix *ix)
{
	struct rq *q = calloc(1, sizeof(*q));
	if (!q) {
		ix_fail(ix, "out of memory");
		return NULL;
	}
	q->r = discord_registration(ix_ud(ix));
	q->ix = ix;
	snprintf(q->guild, sizeof(q->guild), "%s", ix_guild_id(ix) ? ix_guild_id(ix) : "");
	snprintf(q->user, sizeof(q->user), "%s", ix_user_id(ix) ? ix_user_id(ix) : "");
	return q;
}

/* The guild's mappings, looked up again after every wait: a reload may have replaced them. */
static const struct mappings_guild *guild_of(const struct rq *q)
{
	const struct mappings_guild *g =
	    q->r && q->r->maps && q->guild[0] ? mappings_guild(q->r->maps, q->guild) : NULL;
	return g && g->registration.proof != MAPPINGS_PROOF_NONE ? g : NULL;
}

static void done(struct rq *q, json_t *message)
{
	ix_reply(q->ix, message);
	free(q);
}

static void oops(struct rq *q, const char *why)
{
	ix_fail(q->ix, why);
	free(q);
}

static int query(struct rq *q, const char *sql, int n, const char *const *p, db_cb cb)
{
	struct err e = {0};
	if (db_query(q->r->db, sql, n, p, cb, q, &e) != 0) {
		oops(q, e.msg);
		return -1;
	}
	return 0;
}

static void on_failure_recorded(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("registration", "could not record a failed attempt", "error", err->msg);
}

/* A failure: one line in the audit channel, the attempt counted when it was a guess (person
 * may be NULL: the identifier named nobody), and the learner's message (taken). */
static void refuse(struct rq *q, const char *reason, int counts, const char *person, char *message)
{
	const struct mappings_guild *g = guild_of(q);
	char audit_ch[32] = "", who[40];
	char *audit = NULL;
	if (g) {
		snprintf(who, sizeof(who), "<@%s>", q->user);
		const char *vars[] = {"user", who,      "reason",
		                      reason, "method", method_name(g->registration.proof),
		                      NULL};
		audit = text(g, MT_AUDIT_FAILED, vars);
		channel_id(ix_cache(q->ix), q->guild, g->registration.audit_channel, audit_ch,
		           sizeof(audit_ch));
	}
	const char *p[] = {q->guild,
	                   q->user,
	                   q->source[0] ? q->source : NULL,
	                   person,
	                   g ? method_name(g->registration.proof) : "none",
	                   reason,
	                   counts ? "true" : "false",
	                   audit_ch,
	                   audit};
	db_query(q->r->db,
	         "WITH a AS (INSERT INTO reg_attempts (guild_id, user_id, source, person, method, "
	         "ok, reason) SELECT $1, $2, $3, $4, $5, false, $6 WHERE $7::boolean) "
	         "SELECT cb_reg_audit($1, $8, $9)",
	         9, p, on_failure_recorded, q, NULL);
	free(audit);
	done(q, ephemeral(message));
}

/* A failure message with the help channel and the given extra variable pair (may be NULL). */
static char *fail_text(struct rq *q, enum mappings_text key, const char *var, const char *val)
{
	const struct mappings_guild *g = guild_of(q);
	char help[128];
	if (!g)
		return strdup(mappings_text_get(NULL, MT_NOT_SET_UP));
	help_mention(ix_cache(q->ix), g, q->guild, help, sizeof(help));
	const char *vars[] = {"help_channel", help, var, val, NULL};
	return text(g, key, var ? vars : (const char *[]){"help_channel", help, NULL});
}

static void refuse_too_many(struct rq *q)
{
	const struct mappings_guild *g = guild_of(q);
	char mins[16];
	snprintf(mins, sizeof(mins), "%u", g ? g->registration.attempts_window_minutes : 60);
	refuse(q, "too many attempts", 0, NULL, fail_text(q, MT_FAIL_TOO_MANY, "minutes", mins));
}

static void not_set_up(struct rq *q)
{
	done(q, ephemeral(text(guild_of(q), MT_NOT_SET_UP, NULL)));
}

/* --- the steps: City -> Program -> Cohort ------------------------------------------------- */

static const char *const STEP_ROUTE[] = {"reg:pick:city", "reg:pick:program", "reg:pick:cohort"};

/* A select of values (distinct, in order) for one step; more than 25 are shown 24 at a time
 * with a last option that turns the page. */
static json_t *select_of(const struct mappings_guild *g, int step, const char *const *values,
                         size_t n, size_t page)
{
	json_t *opts = json_array();
	size_t per = n > MAX_OPTIONS ? MAX_OPTIONS - 1 : n;
	size_t pages = per ? (n + per - 1) / per : 1;
	if (page >= pages)
		page = 0;
	for (size_t i = page * per; i < n && i < (page + 1) * per; i++)
		json_array_append_new(
		    opts, json_pack("{s:s, s:s}", "label", values[i], "value", values[i]));
	if (n > MAX_OPTIONS) {
		char v[32], at[24], of[24];
		snprintf(v, sizeof(v), "~page:%zu", (page + 1) % pages);
		snprintf(at, sizeof(at), "%zu", page + 1);
		snprintf(of, sizeof(of), "%zu", pages);
		const char *vars[] = {"page", at, "pages", of, NULL};
		char *label = text(g, MT_MORE_CHOICES, vars);
		json_array_append_new(opts, json_pack("{s:s%, s:s}", "label", label,
		                                      strlen(label) > 100 ? 100 : strlen(label),
		                                      "value", v));
		free(label);
	}
	return json_pack("{s:i, s:[{s:i, s:s, s:o}]}", "type", 1, "components", "type", 3,
	                 "custom_id", STEP_ROUTE[step], "options", opts);
}

/* The distinct values of one field among the choices that fit the picks so far. */
static size_t values_of(const struct choices *cs, int step, const char *city, const char *program,
                        const char **out)
{
	size_t n = 0;
	for (size_t i = 0; i < cs->n; i++) {
		const struct choice *c = &cs->v[i];
		if ((step > 0 && city && !eq(c->city, city)) ||
		    (step > 1 && program && !eq(c->program, program)))
			continue;
		const char *v = step == 0 ? c->city : step == 1 ? c->program : c->name;
		if (!v)
			continue;
		size_t k = 0;
		while (k < n && !eq(out[k], v))
			k++;
		if (k == n)
			out[n++] = v;
	}
	return n;
}

struct flow {
	char *city, *program, *cohort;
};

/* What the learner sees next: the first step with a real choice, or, once the cohort is
 * settled, the cohort and the button that opens the identifier modal. Steps with one choice are
 * taken for the learner (and written into picked). */
static json_t *next_step(struct rq *q, const struct mappings_guild *g, const struct choices *cs,
                         struct flow *f, int page_step, size_t page)
{
	const char **vals = calloc(cs->n ? cs->n : 1, sizeof(char *));
	json_t *m = NULL;
	if (!vals)
		return NULL;
	for (int step = 0; step < 3; step++) {
		char **pick = step == 0 ? &f->city : step == 1 ? &f->program : &f->cohort;
		size_t n = values_of(cs, step, f->city, f->program, vals);
		if (*pick) {
			size_t k = 0;
			while (k < n && !eq(vals[k], *pick))
				k++;
			if (k < n || (n == 0 && step < 2))
				continue;
			free(*pick); /* no longer offered (the roster changed): pick again */
			*pick = NULL;
		}
		if (n == 1) {
			*pick = strdup(vals[0]);
			continue;
		}
		if (n == 0) {
			if (step < 2)
				continue;
			free(vals);
			return NULL;
		}
		enum mappings_text key = step == 0   ? MT_PICK_CITY
		                         : step == 1 ? MT_PICK_PROGRAM
		                                     : MT_PICK_COHORT;
		const char *vars[] = {"city", f->city, "program", f->program, NULL};
		char *content = text(g, key, vars);
		m = json_pack("{s:s, s:i, s:[o]}", "content", content, "flags", EPHEMERAL,
		              "components",
		              select_of(g, step, vals, n, page_step == step ? page : 0));
		free(content);
		free(vals);
		return m;
	}
	free(vals);
	char content[300], *label = text(g, MT_REGISTER_BUTTON, NULL);
	snprintf(content, sizeof(content), "**%s**", f->cohort);
	m = json_pack("{s:s, s:i, s:[{s:i, s:[{s:i, s:i, s:s, s:s}]}]}", "content", content,
	              "flags", EPHEMERAL, "components", "type", 1, "components", "type", 2, "style",
	              1, "label", label, "custom_id", "reg:go");
	free(label);
	return m;
}

#define TUPLES_SQL                                                                                 \
	"SELECT DISTINCT source, city, program, cohort FROM memberships WHERE status = 'active' "  \
	"AND source = ANY($1::text[])"

struct pick {
	struct rq *q;
	struct flow f;
	int step;
	size_t page;
};

static void pick_free(struct pick *k)
{
	free(k->f.city);
	free(k->f.program);
	free(k->f.cohort);
	free(k);
}

static void on_flow_saved(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("registration", "could not save a registration step", "error", err->msg);
}

static void on_tuples(PGresult *res, const struct err *err, void *ud)
{
	struct pick *k = ud;
	struct rq *q = k->q;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		pick_free(k);
		return;
	}
	size_t nt = 0;
	struct mappings_tuple *t = tuples_of(res, 0, &nt);
	struct choices cs = {0};
	build_choices(g, t, nt, &cs);
	free(t);
	json_t *m = next_step(q, g, &cs, &k->f, k->step, k->page);
	choices_free(&cs);
	if (!m) {
		char src[64];
		snprintf(src, sizeof(src), "%s",
		         g->registration.nsources ? g->registration.sources[0] : "");
		refuse(q, "no cohort to pick", 0, NULL,
		       fail_text(q, MT_FAIL_NOT_FOUND, "source", src));
		pick_free(k);
		return;
	}
	/* the picks, including those taken for the learner, are the flow's state */
	const char *p[] = {q->guild, q->user, k->f.city, k->f.program, k->f.cohort};
	db_query(q->r->db,
	         "INSERT INTO reg_flows (guild_id, user_id, city, program, cohort) "
	         "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, user_id) DO UPDATE SET "
	         "city = $3, program = $4, cohort = $5, source = NULL, person = NULL, "
	         "updated_at = now()",
	         5, p, on_flow_saved, NULL, NULL);
	done(q, m);
	pick_free(k);
}

static void load_choices(struct pick *k)
{
	const struct mappings_guild *g = guild_of(k->q);
	char arr[512];
	if (!g) {
		not_set_up(k->q);
		pick_free(k);
		return;
	}
	sources_array(g, arr, sizeof(arr));
	const char *p[] = {arr};
	struct err e = {0};
	if (db_query(k->q->r->db, TUPLES_SQL, 1, p, on_tuples, k, &e) != 0) {
		oops(k->q, e.msg);
		pick_free(k);
	}
}

static void on_registered_already(PGresult *res, const struct err *err, void *ud)
{
	struct pick *k = ud;
	struct rq *q = k->q;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		pick_free(k);
		return;
	}
	if (PQntuples(res) > 0) {
		const char *vars[] = {
		    "name",  PQgetvalue(res, 0, 1), "cohort", PQgetvalue(res, 0, 0),
		    "roles", PQgetvalue(res, 0, 2), NULL};
		done(q, ephemeral(text(g, MT_REGISTERED, vars)));
		pick_free(k);
		return;
	}
	load_choices(k);
}

void reg_ix_start(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	if (!q)
		return;
	if (!guild_of(q)) {
		not_set_up(q);
		return;
	}
	struct pick *k = calloc(1, sizeof(*k));
	if (!k) {
		oops(q, "out of memory");
		return;
	}
	k->q = q;
	k->step = -1;
	const char *p[] = {q->guild, q->user};
	struct err e = {0};
	if (db_query(q->r->db,
	             "SELECT r.cohort, coalesce(pp.name, ''), coalesce(o.name, r.cohort) "
	             "FROM registrations r LEFT JOIN people pp ON pp.source = r.source AND "
	             "pp.external_id = r.person LEFT JOIN owned_objects o ON o.guild_id = "
	             "r.guild_id AND o.kind = 'role' AND o.key = 'cohort:' || r.cohort "
	             "WHERE r.guild_id = $1 AND r.user_id = $2",
	             2, p, on_registered_already, k, &e) != 0) {
		oops(q, e.msg);
		free(k);
	}
}

static void on_flow_read(PGresult *res, const struct err *err, void *ud)
{
	struct pick *k = ud;
	if (err) {
		oops(k->q, err->msg);
		pick_free(k);
		return;
	}
	if (PQntuples(res) == 1) {
		for (int c = 0; c < 3; c++) {
			char **f = c == 0 ? &k->f.city : c == 1 ? &k->f.program : &k->f.cohort;
			/* a pick made now wins over the stored one; later steps start afresh */
			if (c < k->step && !*f && !PQgetisnull(res, 0, c))
				*f = strdup(PQgetvalue(res, 0, c));
		}
	}
	load_choices(k);
}

/* A select: the step is the route's last part, the value the pick (or a page). */
void reg_ix_pick(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	if (!q)
		return;
	char which[16] = "";
	ix_arg(ix, 0, which, sizeof(which));
	int step = eq(which, "city") ? 0 : eq(which, "program") ? 1 : 2;
	const char *v = json_string_value(json_array_get(ix_values(ix), 0));
	struct pick *k = calloc(1, sizeof(*k));
	if (!k || !v) {
		free(k);
		oops(q, "a select without a value");
		return;
	}
	k->q = q;
	k->step = step;
	if (strncmp(v, "~page:", 6) == 0) {
		/* another page of the same step: the picks before it stay */
		k->page = strtoul(v + 6, NULL, 10);
	} else {
		char **f = step == 0 ? &k->f.city : step == 1 ? &k->f.program : &k->f.cohort;
		*f = strdup(v);
	}
	const char *p[] = {q->guild, q->user};
	struct err e = {0};
	if (db_query(q->r->db,
	             "SELECT city, program, cohort FROM reg_flows WHERE guild_id = $1 AND "
	             "user_id = $2",
	             2, p, on_flow_read, k, &e) != 0) {
		oops(q, e.msg);
		pick_free(k);
	}
}

/* The identifier modal (answered at once: a modal cannot follow a deferral). */
void reg_ix_go(struct ix *ix)
{
	struct reg *r = discord_registration(ix_ud(ix));
	const struct mappings_guild *g =
	    r && r->maps && ix_guild_id(ix) ? mappings_guild(r->maps, ix_guild_id(ix)) : NULL;
	if (!g || g->registration.proof == MAPPINGS_PROOF_NONE) {
		ix_fail(ix, "registration is not set up here");
		return;
	}
	char *title = text(g, MT_REGISTER_BUTTON, NULL);
	if (strlen(title) > 45)
		title[45] = '\0';
	json_t *rows = json_array();
	if (g->registration.proof == MAPPINGS_PROOF_PRETIX_ORDER) {
		char *l1 = text(g, MT_ORDER_CODE_LABEL, NULL),
		     *l2 = text(g, MT_ORDER_NAME_LABEL, NULL);
		l1[strlen(l1) > 45 ? 45 : strlen(l1)] = '\0';
		l2[strlen(l2) > 45 ? 45 : strlen(l2)] = '\0';
		json_array_append_new(rows, json_pack("{s:i, s:[{s:i, s:s, s:s, s:i, s:i, s:b}]}",
		                                      "type", 1, "components", "type", 4,
		                                      "custom_id", "code", "label", l1, "style", 1,
		                                      "max_length", 20, "required", 1));
		json_array_append_new(rows, json_pack("{s:i, s:[{s:i, s:s, s:s, s:i, s:i, s:b}]}",
		                                      "type", 1, "components", "type", 4,
		                                      "custom_id", "name", "label", l2, "style", 1,
		                                      "max_length", 200, "required", 1));
		free(l1);
		free(l2);
	} else {
		const char *vars[] = {
		    "source", g->registration.nsources ? g->registration.sources[0] : "", NULL};
		char *l = text(g, MT_IDENTIFIER_LABEL, vars);
		l[strlen(l) > 45 ? 45 : strlen(l)] = '\0';
		json_array_append_new(rows, json_pack("{s:i, s:[{s:i, s:s, s:s, s:i, s:i, s:b}]}",
		                                      "type", 1, "components", "type", 4,
		                                      "custom_id", "ident", "label", l, "style", 1,
		                                      "max_length", 200, "required", 1));
		free(l);
	}
	ix_modal(ix, json_pack("{s:s, s:s, s:o}", "custom_id", "reg:ident", "title", title,
	                       "components", rows));
	free(title);
}

/* --- claiming an entry ---------------------------------------------------------------------- */

/* What a staff decision on q's request says (approved_by or denied_by); to be freed. */
static char *decision(struct rq *q, const struct mappings_guild *g, enum mappings_text key)
{
	char staff[40], who[40], entry[200];
	snprintf(staff, sizeof(staff), "<@%s>", q->staff);
	snprintf(who, sizeof(who), "<@%s>", q->user);
	snprintf(entry, sizeof(entry), "%.60s:%.120s", q->source, q->person);
	const char *vars[] = {"staff", staff,    "user",    who, "entry",
	                      entry,   "cohort", q->cohort, NULL};
	return text(g, key, vars);
}

static void on_claimed(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		return;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	const char *role = PQgetisnull(res, 0, 1) ? q->cohort : PQgetvalue(res, 0, 1);
	if (eq(outcome, "ok") || eq(outcome, "same")) {
		log_info("registration", "registered", "guild", q->guild, "user", q->user, "source",
		         q->source, "cohort", q->cohort);
		const char *vars[] = {"name", q->name, "cohort", q->cohort, "roles", role, NULL};
		char *t = text(g, MT_REGISTERED, vars);
		if (q->approval[0]) {
			/* a staff decision: staff see the decision, not the welcome */
			free(t);
			t = decision(q, g, MT_APPROVED_BY);
			if (q->update) {
				done(q, json_pack("{s:s, s:[]}", "content", t, "components"));
				free(t);
				return;
			}
			const char *p[] = {q->guild, q->approval, t};
			db_query(q->r->db, "SELECT cb_reg_approval_close($1, $2::bigint, $3)", 3, p,
			         on_failure_recorded, NULL, NULL);
		}
		done(q, ephemeral(t));
		return;
	}
	/* someone else holds the entry, or this account holds another one */
	char *msg = fail_text(q, MT_FAIL_TAKEN, NULL, NULL);
	if (q->approval[0]) {
		/* a staff decision: the answer goes to staff, so the learner is told as after
		 * any other decision (by DM, else in the registration channel) */
		char reg_ch[32];
		channel_id(ix_cache(q->ix), q->guild, g->registration.registration_channel, reg_ch,
		           sizeof(reg_ch));
		const char *p[] = {q->guild, q->user, q->approval, msg, reg_ch};
		db_query(q->r->db, "SELECT cb_reg_dm($1, $2, 'reg-taken:' || $3, $4, $5)", 5, p,
		         on_failure_recorded, NULL, NULL);
	}
	refuse(q, eq(outcome, "taken") ? "entry already taken" : "already holds another entry", 0,
	       q->person, msg);
}

/* Claims q->source/person for q->user in one statement (cb_reg_claim). dm: also tell the
 * learner in a direct message (when the interaction is someone else's: staff approval). */
static void claim(struct rq *q, const char *method, int dm)
{
	const struct mappings_guild *g = guild_of(q);
	if (!g) {
		not_set_up(q);
		return;
	}
	char audit_ch[32], who[40];
	snprintf(who, sizeof(who), "<@%s>", q->user);
	char entry[200];
	snprintf(entry, sizeof(entry), "%.60s:%.120s", q->source, q->person);
	const char *vars[] = {"user",    who,      "entry", entry, "cohort",
	                      q->cohort, "method", method,  NULL};
	char *audit = text(g, MT_AUDIT_REGISTERED, vars);
	const char *dvars[] = {"name", q->name, "cohort", q->cohort, "roles", q->cohort, NULL};
	char *dm_text = dm ? text(g, MT_REGISTERED, dvars) : NULL;
	char *rules = rules_json(g);
	char reg_ch[32];
	channel_id(ix_cache(q->ix), q->guild, g->registration.audit_channel, audit_ch,
	           sizeof(audit_ch));
	channel_id(ix_cache(q->ix), q->guild, g->registration.registration_channel, reg_ch,
	           sizeof(reg_ch));
	const char *p[] = {q->guild,
	                   q->user,
	                   q->source,
	                   q->person,
	                   q->cohort,
	                   method,
	                   g->registration.set_nickname && q->name[0] ? q->name : NULL,
	                   audit_ch,
	                   audit,
	                   dm_text,
	                   rules,
	                   reg_ch};
	query(q,
	      "SELECT outcome, role_name FROM cb_reg_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, "
	      "$10, $11::jsonb, $12)",
	      12, p, on_claimed);
	free(audit);
	free(dm_text);
	free(rules);
}

/* --- the identifier and its proof ---------------------------------------------------------- */

struct proof {
	struct rq *q;
	char *ident, *name; /* what the learner typed */
};

static void proof_free(struct proof *pf)
{
	free(pf->ident);
	free(pf->name);
	free(pf);
}

/* One-time codes go through the source's messaging: a connector of its own for the one send,
 * since the sync schedule's may be fetching. */
struct sender {
	struct rq *q;
	struct source_cfg cfg;
	struct source_env env;
	const struct connector_ops *ops;
	void *conn;
	char *token;
	json_t *cursor;
	int failed;
	char why[256];
	uv_timer_t t;
};

static void sender_closed(uv_handle_t *h)
{
	struct sender *s = h->data;
	free(s->cfg.name);
	free(s->cfg.type);
	free(s->cfg.url);
	free(s->cfg.path);
	free(s->cfg.token_env);
	json_decref(s->cfg.extra);
	json_decref(s->cursor);
	free(s->token);
	free(s);
}

/* The connector is freed from the loop, never from inside its own callback. */
static void sender_release(uv_timer_t *t)
{
	struct sender *s = t->data;
	if (s->conn)
		s->ops->free(s->conn);
	s->conn = NULL;
	uv_close((uv_handle_t *)&s->t, sender_closed);
}

static void code_sent(struct rq *q, int ok, const char *why)
{
	const struct mappings_guild *g = guild_of(q);
	if (!g) {
		not_set_up(q);
		return;
	}
	if (!ok) {
		log_warn("registration", "the code could not be sent", "source", q->source, "error",
		         why);
		refuse(q, "source unavailable", 0, q->person,
		       fail_text(q, MT_FAIL_SOURCE_DOWN, "source", q->source));
		return;
	}
	char mins[16];
	snprintf(mins, sizeof(mins), "%u", g->registration.code_minutes);
	const char *vars[] = {"source", q->source, "minutes", mins, NULL};
	char *content = text(g, MT_CODE_SENT, vars), *label = text(g, MT_ENTER_CODE_BUTTON, NULL);
	if (strlen(label) > 80)
		label[80] = '\0';
	done(q, json_pack("{s:s, s:i, s:[{s:i, s:[{s:i, s:i, s:s, s:s}]}]}", "content", content,
	                  "flags", EPHEMERAL, "components", "type", 1, "components", "type", 2,
	                  "style", 1, "label", label, "custom_id", "reg:code"));
	free(content);
	free(label);
}

static void on_code_delivered(void *ud, const struct err *err)
{
	struct sender *s = ud;
	code_sent(s->q, !err, err ? err->msg : NULL);
	uv_timer_start(&s->t, sender_release, 0, 0);
}

static void send_code(struct rq *q, const char *code)
{
	struct reg *r = q->r;
	const struct mappings_guild *g = guild_of(q);
	const struct source_cfg *sc = source_cfg(r->cfg, q->source);
	const struct connector_ops *ops = sc ? connector_find(sc->type) : NULL;
	struct err e = {0};
	if (!g || !ops || !ops->send) {
		code_sent(q, 0, "the source has no messaging");
		return;
	}
	struct sender *s = calloc(1, sizeof(*s));
	if (!s) {
		code_sent(q, 0, "out of memory");
		return;
	}
	s->q = q;
	s->ops = ops;
	/* copied: a reload may free the configuration while the message is on its way */
	s->cfg.name = strdup(sc->name);
	s->cfg.type = strdup(sc->type);
	s->cfg.url = sc->url ? strdup(sc->url) : NULL;
	s->cfg.path = sc->path ? strdup(sc->path) : NULL;
	s->cfg.token_env = sc->token_env ? strdup(sc->token_env) : NULL;
	s->cfg.min_share = sc->min_share;
	s->cfg.extra = sc->extra ? json_incref(sc->extra) : NULL;
	s->cursor = json_object();
	if (sc->token_env && secret_get(sc->token_env, &s->token, &e) < 0)
		s->token = NULL;
	s->env = (struct source_env){r->loop, r->http, &s->cfg, s->token, s->cursor, NULL, NULL};
	uv_timer_init(r->loop, &s->t);
	s->t.data = s;
	s->conn = ops->init(&s->env, &e);
	if (!s->conn) {
		code_sent(q, 0, e.msg);
		uv_close((uv_handle_t *)&s->t, sender_closed);
		return;
	}
	char mins[16];
	snprintf(mins, sizeof(mins), "%u", g->registration.code_minutes);
	const char *vars[] = {"code", code, "minutes", mins, NULL};
	char *body = text(g, MT_CODE_MESSAGE, vars);
	ops->send(s->conn, q->person, g->label ? g->label : "Discord registration", body,
	          on_code_delivered, s);
	free(body);
}

static void on_code_stored(PGresult *res, const struct err *err, void *ud)
{
	struct proof *pf = ud;
	struct rq *q = pf->q;
	if (err) {
		oops(q, err->msg);
		proof_free(pf);
		return;
	}
	send_code(q, pf->name); /* the code, kept here until it is sent */
	proof_free(pf);
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char b[32];
	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	if (uv_random(NULL, NULL, b, nbytes, 0, NULL) != 0)
		for (size_t i = 0; i < nbytes; i++)
			b[i] = (unsigned char)rand();
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void start_code(struct proof *pf)
{
	struct rq *q = pf->q;
	const struct mappings_guild *g = guild_of(q);
	unsigned char b[4];
	char code[16], salt[40], mins[16];
	if (uv_random(NULL, NULL, b, sizeof(b), 0, NULL) != 0)
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	uint32_t v = ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
	snprintf(code, sizeof(code), "%06u", v % 1000000u);
	random_hex(salt, 16);
	snprintf(mins, sizeof(mins), "%u", g ? g->registration.code_minutes : 15);
	free(pf->name);
	pf->name = strdup(code);
	const char *p[] = {q->guild, q->user, q->source, q->person, q->cohort, salt, code, mins};
	struct err e = {0};
	if (db_query(q->r->db,
	             "INSERT INTO reg_codes (guild_id, user_id, source, person, cohort, salt, "
	             "code_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6, "
	             "encode(sha256(convert_to($6 || $7, 'UTF8')), 'hex'), now() + "
	             "make_interval(mins => $8::int)) ON CONFLICT (guild_id, user_id) DO UPDATE "
	             "SET source = $3, person = $4, cohort = $5, salt = $6, code_hash = "
	             "EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, created_at = now()",
	             8, p, on_code_stored, pf, &e) != 0) {
		oops(q, e.msg);
		proof_free(pf);
	}
}

static void on_approval_queued(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		return;
	}
	done(q, ephemeral(text(g, MT_APPROVAL_PENDING, NULL)));
}

static void start_approval(struct rq *q)
{
	const struct mappings_guild *g = guild_of(q);
	char ch[32], who[40], entry[500];
	if (!g) {
		not_set_up(q);
		return;
	}
	channel_id(ix_cache(q->ix), q->guild, g->registration.approval_channel, ch, sizeof(ch));
	if (!ch[0]) {
		oops(q, "the approval channel does not exist");
		return;
	}
	snprintf(who, sizeof(who), "<@%s>", q->user);
	snprintf(entry, sizeof(entry), "%s:%s (%s)", q->source, q->person, q->name);
	const char *vars[] = {"user", who, "entry", entry, "cohort", q->cohort, NULL};
	char *req = text(g, MT_APPROVAL_REQUEST, vars);
	const char *p[] = {q->guild,
	                   q->user,
	                   q->source,
	                   q->person,
	                   q->cohort,
	                   ch,
	                   req,
	                   mappings_text_get(g, MT_APPROVE_BUTTON),
	                   mappings_text_get(g, MT_DENY_BUTTON)};
	/* the request and its message in one statement; asking again while a request is pending
	 * changes the request, not the number of messages */
	query(q,
	      "WITH a AS (INSERT INTO reg_approvals (guild_id, user_id, source, person, cohort) "
	      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, user_id) WHERE state = "
	      "'pending' DO UPDATE SET source = $3, person = $4, cohort = $5 "
	      "RETURNING id, (xmax = 0) AS fresh) "
	      "INSERT INTO outbox (guild_id, kind, key, payload) "
	      "SELECT $1::bigint, 'message_create', 'reg-approval:' || a.id, jsonb_build_object("
	      "'channel_id', $6::text, 'body', jsonb_build_object('content', left($7::text, 2000), "
	      "'components', jsonb_build_array(jsonb_build_object('type', 1, 'components', "
	      "jsonb_build_array(jsonb_build_object('type', 2, 'style', 3, 'label', left($8::text, "
	      "80), "
	      "'custom_id', 'reg:decide:ok:' || a.id), jsonb_build_object('type', 2, 'style', 4, "
	      "'label', left($9::text, 80), 'custom_id', 'reg:decide:no:' || a.id)))))) "
	      "FROM a WHERE a.fresh ON CONFLICT (key) DO NOTHING",
	      9, p, on_approval_queued);
	free(req);
}

/* The order code as printed on a badge ("#ABC12-1") or typed ("abc12"): upper case, no '#',
 * no spaces. Returns 0 when what is left is not an order code (letters, digits, one '-'). */
static int order_code(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *s = in; *s; s++) {
		char c = *s;
		if (c == '#' || c == ' ' || c == '\t')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (n + 1 >= cap)
			return 0;
		out[n++] = c;
	}
	out[n] = '\0';
	return n >= 3;
}

/* Candidate entries, one row per active membership:
 * person, source, name, name parts, group, city, program, cohort, holder, entry failures. */
#define CANDIDATE_COLS                                                                             \
	"SELECT p.external_id, p.source, coalesce(p.name, ''), coalesce((SELECT string_agg(v, ' "  \
	"') "                                                                                      \
	"FROM jsonb_each_text(CASE WHEN jsonb_typeof(p.extra->'name_parts') = 'object' THEN "      \
	"p.extra->'name_parts' ELSE '{}' END) AS e(k, v) WHERE k <> '_scheme'), ''), m.group_id, " \
	"m.city, m.program, m.cohort, (SELECT r.user_id FROM registrations r WHERE r.guild_id = "  \
	"$2 AND r.source = p.source AND r.person = p.external_id), (SELECT count(*) FROM "         \
	"reg_attempts a WHERE a.guild_id = $2 AND a.source = p.source AND a.person = "             \
	"p.external_id AND NOT a.ok AND a.at > now() - make_interval(mins => $3::int)) "           \
	"FROM people p JOIN memberships m ON m.source = p.source AND m.person = p.external_id "    \
	"AND "                                                                                     \
	"m.status = 'active' "

static void on_candidates(PGresult *res, const struct err *err, void *ud)
{
	struct proof *pf = ud;
	struct rq *q = pf->q;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		proof_free(pf);
		return;
	}
	int n = PQntuples(res);
	struct row *rows = calloc(n ? (size_t)n : 1, sizeof(*rows));
	/* the first person (in the query's order) in the picked cohort; for pretix, the first
	 * whose name matches, else the first at all (for the wrong-name count) */
	int chosen = -1, in_cohort_any = -1;
	for (int i = 0; rows && i < n;) {
		int j = i;
		while (j < n && eq(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) &&
		       eq(PQgetvalue(res, j, 1), PQgetvalue(res, i, 1))) {
			rows[j] =
			    (struct row){PQgetvalue(res, j, 1),
			                 PQgetvalue(res, j, 0),
			                 PQgetvalue(res, j, 4),
			                 PQgetisnull(res, j, 5) ? NULL : PQgetvalue(res, j, 5),
			                 PQgetisnull(res, j, 6) ? NULL : PQgetvalue(res, j, 6),
			                 PQgetisnull(res, j, 7) ? NULL : PQgetvalue(res, j, 7)};
			j++;
		}
		if (in_cohort(g, q->cohort, rows + i, (size_t)(j - i))) {
			if (in_cohort_any < 0)
				in_cohort_any = i;
			if (g->registration.proof != MAPPINGS_PROOF_PRETIX_ORDER ||
			    names_same(pf->name, PQgetvalue(res, i, 2)) ||
			    names_same(pf->name, PQgetvalue(res, i, 3))) {
				chosen = i;
				break;
			}
		}
		i = j;
	}
	free(rows);
	const char *src0 = g->registration.nsources ? g->registration.sources[0] : "";
	if (in_cohort_any < 0) {
		refuse(q, "no such roster entry", 1, NULL,
		       fail_text(q, MT_FAIL_NOT_FOUND, "source", src0));
		proof_free(pf);
		return;
	}
	int at = chosen >= 0 ? chosen : in_cohort_any;
	snprintf(q->source, sizeof(q->source), "%s", PQgetvalue(res, at, 1));
	snprintf(q->person, sizeof(q->person), "%s", PQgetvalue(res, at, 0));
	snprintf(q->name, sizeof(q->name), "%s", PQgetvalue(res, at, 2));
	q->entry_fails = strtol(PQgetvalue(res, at, 9), NULL, 10);
	const char *holder = PQgetisnull(res, at, 8) ? NULL : PQgetvalue(res, at, 8);
	if (q->entry_fails >= (long)g->registration.attempts_per_entry) {
		refuse_too_many(q);
		proof_free(pf);
		return;
	}
	if (holder && !eq(holder, q->user)) {
		refuse(q, "entry already taken", 0, q->person,
		       fail_text(q, MT_FAIL_TAKEN, NULL, NULL));
		proof_free(pf);
		return;
	}
	if (chosen < 0) { /* pretix: the order is right, the name is not */
		long left_u = (long)g->registration.attempts_per_user - q->user_fails - 1;
		long left_e = (long)g->registration.attempts_per_entry - q->entry_fails - 1;
		char left[24];
		snprintf(left, sizeof(left), "%ld", left_u < left_e ? left_u : left_e);
		refuse(q, "wrong name", 1, q->person,
		       fail_text(q, MT_FAIL_WRONG_PROOF, "attempts_left", left));
		proof_free(pf);
		return;
	}
	switch (g->registration.proof) {
	case MAPPINGS_PROOF_PRETIX_ORDER:
		claim(q, "pretix_order", 0);
		proof_free(pf);
		return;
	case MAPPINGS_PROOF_LMS_CODE:
		start_code(pf);
		return;
	default:
		start_approval(q);
		proof_free(pf);
		return;
	}
}

static void on_flow_for_proof(PGresult *res, const struct err *err, void *ud)
{
	struct proof *pf = ud;
	struct rq *q = pf->q;
	const struct mappings_guild *g = guild_of(q);
	char arr[512], window[16];
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		proof_free(pf);
		return;
	}
	q->user_fails = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (PQgetisnull(res, 0, 0)) {
		/* no cohort picked (the flow was reset or finished meanwhile): start again */
		refuse(q, "no cohort picked", 0, NULL,
		       fail_text(q, MT_FAIL_NOT_FOUND, "source",
		                 g->registration.nsources ? g->registration.sources[0] : ""));
		proof_free(pf);
		return;
	}
	snprintf(q->cohort, sizeof(q->cohort), "%s", PQgetvalue(res, 0, 0));
	if (q->user_fails >= (long)g->registration.attempts_per_user) {
		refuse_too_many(q);
		proof_free(pf);
		return;
	}
	sources_array(g, arr, sizeof(arr));
	snprintf(window, sizeof(window), "%u", g->registration.attempts_window_minutes);
	struct err e = {0};
	int rc;
	if (g->registration.proof == MAPPINGS_PROOF_PRETIX_ORDER) {
		char code[64], like[72];
		if (!order_code(pf->ident, code, sizeof(code))) {
			refuse(
			    q, "no such roster entry", 1, NULL,
			    fail_text(q, MT_FAIL_NOT_FOUND, "source",
			              g->registration.nsources ? g->registration.sources[0] : ""));
			proof_free(pf);
			return;
		}
		/* "ABC12-1" is one ticket; "ABC12" any ticket of the order */
		snprintf(like, sizeof(like), "%s-%%", code);
		const char *p[] = {arr, q->guild, window, code, strchr(code, '-') ? code : like};
		rc = db_query(q->r->db,
		              CANDIDATE_COLS "WHERE p.source = ANY($1::text[]) AND "
		                             "(p.external_id = $4 OR p.external_id LIKE $5) "
		                             "ORDER BY p.external_id, p.source",
		              5, p, on_candidates, pf, &e);
	} else {
		const char *p[] = {arr, q->guild, window, pf->ident};
		rc = db_query(q->r->db,
		              CANDIDATE_COLS
		              "WHERE p.source = ANY($1::text[]) AND (lower(p.email) = lower($4) OR "
		              "p.external_id = $4 OR p.extra->>'login_id' = $4 OR "
		              "p.extra->>'sis_user_id' = $4 OR p.extra->>'username' = $4 OR "
		              "p.extra->>'student_id' = $4) ORDER BY p.source, p.external_id",
		              4, p, on_candidates, pf, &e);
	}
	if (rc != 0) {
		oops(q, e.msg);
		proof_free(pf);
	}
}

static char *trimmed(const char *s)
{
	if (!s)
		return strdup("");
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		n--;
	return strndup(s, n);
}

void reg_ix_ident(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	if (!q)
		return;
	const struct mappings_guild *g = guild_of(q);
	if (!g) {
		not_set_up(q);
		return;
	}
	struct proof *pf = calloc(1, sizeof(*pf));
	if (!pf) {
		oops(q, "out of memory");
		return;
	}
	pf->q = q;
	int pretix = g->registration.proof == MAPPINGS_PROOF_PRETIX_ORDER;
	pf->ident = trimmed(ix_field(ix, pretix ? "code" : "ident"));
	pf->name = trimmed(pretix ? ix_field(ix, "name") : "");
	if (!pf->ident || !pf->name || !pf->ident[0] || strlen(pf->ident) > 200) {
		proof_free(pf);
		refuse(q, "no identifier", 0, NULL,
		       fail_text(q, MT_FAIL_NOT_FOUND, "source",
		                 g->registration.nsources ? g->registration.sources[0] : ""));
		return;
	}
	char window[16];
	snprintf(window, sizeof(window), "%u", g->registration.attempts_window_minutes);
	const char *p[] = {q->guild, q->user, window};
	struct err e = {0};
	if (db_query(q->r->db,
	             "SELECT (SELECT cohort FROM reg_flows WHERE guild_id = $1 AND user_id = $2), "
	             "(SELECT count(*) FROM reg_attempts WHERE guild_id = $1 AND user_id = $2 AND "
	             "NOT ok AND at > now() - make_interval(mins => $3::int))",
	             3, p, on_flow_for_proof, pf, &e) != 0) {
		oops(q, e.msg);
		proof_free(pf);
	}
}

/* --- the one-time code --------------------------------------------------------------------- */

void reg_ix_code(struct ix *ix)
{
	struct reg *r = discord_registration(ix_ud(ix));
	const struct mappings_guild *g =
	    r && r->maps && ix_guild_id(ix) ? mappings_guild(r->maps, ix_guild_id(ix)) : NULL;
	if (!g) {
		ix_fail(ix, "registration is not set up here");
		return;
	}
	const char *vars[] = {"source", g->registration.nsources ? g->registration.sources[0] : "",
	                      NULL};
	char *label = text(g, MT_CODE_LABEL, vars), *title = text(g, MT_REGISTER_BUTTON, NULL);
	label[strlen(label) > 45 ? 45 : strlen(label)] = '\0';
	title[strlen(title) > 45 ? 45 : strlen(title)] = '\0';
	ix_modal(ix, json_pack("{s:s, s:s, s:[{s:i, s:[{s:i, s:s, s:s, s:i, s:i, s:b}]}]}",
	                       "custom_id", "reg:codesub", "title", title, "components", "type", 1,
	                       "components", "type", 4, "custom_id", "code", "label", label,
	                       "style", 1, "max_length", 20, "required", 1));
	free(label);
	free(title);
}

static void on_code_checked(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		return;
	}
	if (PQntuples(res) == 0) {
		refuse(q, "no code under way", 0, NULL,
		       fail_text(q, MT_FAIL_CODE_EXPIRED, NULL, NULL));
		return;
	}
	snprintf(q->source, sizeof(q->source), "%s", PQgetvalue(res, 0, 0));
	snprintf(q->person, sizeof(q->person), "%s", PQgetvalue(res, 0, 1));
	snprintf(q->cohort, sizeof(q->cohort), "%s", PQgetvalue(res, 0, 2));
	snprintf(q->name, sizeof(q->name), "%s", PQgetvalue(res, 0, 5));
	q->user_fails = strtol(PQgetvalue(res, 0, 6), NULL, 10);
	q->entry_fails = strtol(PQgetvalue(res, 0, 7), NULL, 10);
	int expired = PQgetvalue(res, 0, 3)[0] == 't', right = PQgetvalue(res, 0, 4)[0] == 't';
	if (q->user_fails >= (long)g->registration.attempts_per_user ||
	    q->entry_fails >= (long)g->registration.attempts_per_entry) {
		refuse_too_many(q);
		return;
	}
	if (expired) {
		refuse(q, "code expired", 0, q->person,
		       fail_text(q, MT_FAIL_CODE_EXPIRED, NULL, NULL));
		return;
	}
	if (!right) {
		long left_u = (long)g->registration.attempts_per_user - q->user_fails - 1;
		long left_e = (long)g->registration.attempts_per_entry - q->entry_fails - 1;
		char left[24];
		snprintf(left, sizeof(left), "%ld", left_u < left_e ? left_u : left_e);
		refuse(q, "wrong code", 1, q->person,
		       fail_text(q, MT_FAIL_WRONG_PROOF, "attempts_left", left));
		return;
	}
	claim(q, "lms_code", 0);
}

void reg_ix_code_submit(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	if (!q)
		return;
	const struct mappings_guild *g = guild_of(q);
	if (!g) {
		not_set_up(q);
		return;
	}
	char *code = trimmed(ix_field(ix, "code")), window[16];
	snprintf(window, sizeof(window), "%u", g->registration.attempts_window_minutes);
	const char *p[] = {q->guild, q->user, code ? code : "", window};
	query(q,
	      "SELECT c.source, c.person, coalesce(c.cohort, ''), c.expires_at < now(), "
	      "c.code_hash = encode(sha256(convert_to(c.salt || $3, 'UTF8')), 'hex'), "
	      "coalesce((SELECT name FROM people WHERE source = c.source AND external_id = "
	      "c.person), ''), (SELECT count(*) FROM reg_attempts WHERE guild_id = $1 AND user_id "
	      "= $2 AND NOT ok AND at > now() - make_interval(mins => $4::int)), (SELECT count(*) "
	      "FROM reg_attempts a WHERE a.guild_id = $1 AND a.source = c.source AND a.person = "
	      "c.person AND NOT a.ok AND a.at > now() - make_interval(mins => $4::int)) "
	      "FROM reg_codes c WHERE c.guild_id = $1 AND c.user_id = $2",
	      4, p, on_code_checked);
	free(code);
}

/* --- staff: approvals ---------------------------------------------------------------------- */

static void on_decided(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		return;
	}
	if (PQntuples(res) == 0) {
		char *t = text(g, q->update ? MT_ALREADY_DECIDED : MT_NOTHING_PENDING, NULL);
		if (q->update) {
			done(q, json_pack("{s:s, s:[]}", "content", t, "components"));
			free(t);
		} else
			done(q, ephemeral(t));
		return;
	}
	/* from here on, the learner's request is the one being answered */
	snprintf(q->user, sizeof(q->user), "%s", PQgetvalue(res, 0, 0));
	snprintf(q->source, sizeof(q->source), "%s", PQgetvalue(res, 0, 1));
	snprintf(q->person, sizeof(q->person), "%s", PQgetvalue(res, 0, 2));
	snprintf(q->cohort, sizeof(q->cohort), "%s", PQgetvalue(res, 0, 3));
	snprintf(q->name, sizeof(q->name), "%s", PQgetvalue(res, 0, 4));
	snprintf(q->approval, sizeof(q->approval), "%s", PQgetvalue(res, 0, 5));
	if (q->approve) {
		claim(q, "staff_approval", 1);
		return;
	}
	char audit_ch[32], reg_ch[32], who[40], help[128];
	snprintf(who, sizeof(who), "<@%s>", q->user);
	const char *avars[] = {"user",           who, "reason", "denied by staff", "method",
	                       "staff_approval", NULL};
	char *audit = text(g, MT_AUDIT_FAILED, avars);
	help_mention(ix_cache(q->ix), g, q->guild, help, sizeof(help));
	const char *dvars[] = {"help_channel", help, NULL};
	char *denied = text(g, MT_DENIED, dvars);
	channel_id(ix_cache(q->ix), q->guild, g->registration.audit_channel, audit_ch,
	           sizeof(audit_ch));
	channel_id(ix_cache(q->ix), q->guild, g->registration.registration_channel, reg_ch,
	           sizeof(reg_ch));
	char *line = decision(q, g, MT_DENIED_BY);
	const char *p[] = {q->guild, q->user, q->source,   q->person, audit_ch,
	                   audit,    denied,  q->approval, reg_ch,    q->update ? NULL : line};
	db_query(q->r->db,
	         "WITH a AS (INSERT INTO reg_attempts (guild_id, user_id, source, person, method, "
	         "ok, reason) VALUES ($1, $2, $3, $4, 'staff_approval', false, 'denied')) "
	         "SELECT cb_reg_audit($1, $5, $6), "
	         "cb_reg_dm($1, $2, 'reg-denied:' || $8, $7, $9), "
	         "cb_reg_approval_close($1, $8::bigint, $10)",
	         10, p, on_failure_recorded, q, NULL);
	free(audit);
	free(denied);
	if (q->update) {
		done(q, json_pack("{s:s, s:[]}", "content", line, "components"));
		free(line);
	} else
		done(q, ephemeral(line));
}

#define DECIDE_SQL                                                                                 \
	"UPDATE reg_approvals a SET state = $3, decided_by = $4, decided_at = now() WHERE "        \
	"a.guild_id = $1 AND a.state = 'pending' AND %s RETURNING a.user_id, a.source, a.person, " \
	"coalesce(a.cohort, ''), coalesce((SELECT name FROM people WHERE source = a.source AND "   \
	"external_id = a.person), ''), a.id"

/* The Approve and Deny buttons: reg:decide:ok:<id>, reg:decide:no:<id>. */
void reg_ix_decide(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	char what[8], id[24], sql[1024];
	if (!q)
		return;
	if (ix_arg(ix, 0, what, sizeof(what)) < 0 || ix_arg(ix, 1, id, sizeof(id)) < 0) {
		oops(q, "a decision without its request");
		return;
	}
	q->approve = eq(what, "ok");
	q->update = 1;
	snprintf(q->staff, sizeof(q->staff), "%s", q->user);
	snprintf(sql, sizeof(sql), DECIDE_SQL, "a.id = $2::bigint");
	const char *p[] = {q->guild, id, q->approve ? "approved" : "denied", q->staff};
	query(q, sql, 4, p, on_decided);
}

/* The user option of a staff command, or NULL. */
static const char *user_option(struct ix *ix, const char *name)
{
	return json_string_value(ix_option(ix, name));
}

void reg_cmd_approve(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	char sql[1024];
	const char *learner = user_option(ix, "user");
	if (!q)
		return;
	if (!learner) {
		oops(q, "no user given");
		return;
	}
	q->approve = 1;
	snprintf(q->staff, sizeof(q->staff), "%s", q->user);
	snprintf(sql, sizeof(sql), DECIDE_SQL, "a.user_id = $2");
	const char *p[] = {q->guild, learner, "approved", q->staff};
	query(q, sql, 4, p, on_decided);
}

/* --- staff: link, unlink, look up ----------------------------------------------------------- */

static void on_link_entry(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	const struct mappings_guild *g = guild_of(q);
	if (err || !g) {
		if (err)
			oops(q, err->msg);
		else
			not_set_up(q);
		return;
	}
	int n = PQntuples(res);
	if (n == 0) {
		done(q, ephemeral(strdup("No active roster entry matches that.")));
		return;
	}
	struct row *rows = calloc((size_t)n, sizeof(*rows));
	int k = 0;
	while (rows && k < n && eq(PQgetvalue(res, k, 0), PQgetvalue(res, 0, 0)) &&
	       eq(PQgetvalue(res, k, 1), PQgetvalue(res, 0, 1))) {
		rows[k] = (struct row){PQgetvalue(res, k, 1),
		                       PQgetvalue(res, k, 0),
		                       PQgetvalue(res, k, 4),
		                       PQgetisnull(res, k, 5) ? NULL : PQgetvalue(res, k, 5),
		                       PQgetisnull(res, k, 6) ? NULL : PQgetvalue(res, k, 6),
		                       PQgetisnull(res, k, 7) ? NULL : PQgetvalue(res, k, 7)};
		k++;
	}
	char *cohort = rows ? cohort_of(g, rows, (size_t)k) : NULL;
	free(rows);
	snprintf(q->source, sizeof(q->source), "%s", PQgetvalue(res, 0, 1));
	snprintf(q->person, sizeof(q->person), "%s", PQgetvalue(res, 0, 0));
	snprintf(q->name, sizeof(q->name), "%s", PQgetvalue(res, 0, 2));
	snprintf(q->cohort, sizeof(q->cohort), "%s", cohort ? cohort : "");
	free(cohort);
	claim(q, "staff_link", 0);
}

void reg_cmd_link(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	const char *learner = user_option(ix, "user"), *entry = user_option(ix, "entry");
	char arr[512];
	if (!q)
		return;
	const struct mappings_guild *g = guild_of(q);
	if (!g) {
		not_set_up(q);
		return;
	}
	if (!learner || !entry) {
		oops(q, "user and entry are needed");
		return;
	}
	snprintf(q->staff, sizeof(q->staff), "%s", q->user);
	snprintf(q->user, sizeof(q->user), "%s", learner);
	sources_array(g, arr, sizeof(arr));
	const char *p[] = {arr, q->guild, "60", entry};
	query(q,
	      CANDIDATE_COLS "WHERE p.source = ANY($1::text[]) AND (p.external_id = $4 OR "
	                     "p.source || ':' || p.external_id = $4 OR lower(p.email) = lower($4)) "
	                     "ORDER BY p.source, p.external_id",
	      4, p, on_link_entry);
}

static void on_unlinked(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	if (err) {
		oops(q, err->msg);
		return;
	}
	char line[300];
	if (PQntuples(res) == 0)
		snprintf(line, sizeof(line), "<@%s> holds no roster entry here.", q->user);
	else
		snprintf(line, sizeof(line), "<@%s> no longer holds %s:%s (%s).", q->user,
		         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	done(q, ephemeral(strdup(line)));
}

void reg_cmd_unlink(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	const char *learner = user_option(ix, "user");
	if (!q)
		return;
	const struct mappings_guild *g = guild_of(q);
	if (!g || !learner) {
		if (!g)
			not_set_up(q);
		else
			oops(q, "no user given");
		return;
	}
	char audit_ch[32], audit[200];
	snprintf(q->staff, sizeof(q->staff), "%s", q->user);
	snprintf(q->user, sizeof(q->user), "%s", learner);
	channel_id(ix_cache(ix), q->guild, g->registration.audit_channel, audit_ch,
	           sizeof(audit_ch));
	snprintf(audit, sizeof(audit), "<@%s> unlinked by <@%s>", q->user, q->staff);
	const char *p[] = {q->guild, q->user, audit_ch, audit};
	/* the entry is released and the cohort role taken back in one statement */
	query(q,
	      "WITH d AS (DELETE FROM registrations WHERE guild_id = $1 AND user_id = $2 "
	      "RETURNING source, person, cohort), "
	      "r AS (INSERT INTO outbox (guild_id, kind, key, payload) SELECT $1::bigint, "
	      "'role_remove', format('reg-unlink:%s:%s:%s:%s', $1::text, $2::text, o.discord_id, "
	      "to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS')), jsonb_build_object('guild_id', "
	      "$1::text, 'user_id', $2::text, 'role_id', o.discord_id, 'reason', 'unlinked') "
	      "FROM d JOIN owned_objects o ON o.guild_id = $1 AND o.kind = 'role' AND o.key = "
	      "'cohort:' || d.cohort AND o.discord_id IS NOT NULL) "
	      "SELECT d.source, d.person, coalesce(d.cohort, ''), cb_reg_audit($1, $3, $4) FROM d",
	      4, p, on_unlinked);
}

static void on_looked_up(PGresult *res, const struct err *err, void *ud)
{
	struct rq *q = ud;
	if (err) {
		oops(q, err->msg);
		return;
	}
	char out[1900];
	size_t n = 0;
	int rows = PQntuples(res);
	if (rows == 0)
		n = (size_t)snprintf(out, sizeof(out), "Nothing found.");
	for (int i = 0; i < rows && n < sizeof(out); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s<@%s>: %s:%s, %s (%s, %s)",
		                      i ? "\n" : "", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		                      PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		                      PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
	done(q, ephemeral(strdup(out)));
}

void reg_cmd_lookup(struct ix *ix)
{
	struct rq *q = rq_new(ix);
	const char *who = user_option(ix, "who");
	char key[160];
	if (!q)
		return;
	if (!who) {
		oops(q, "nothing to look up");
		return;
	}
	/* a mention <@123> or <@!123> is the user id */
	size_t k = 0;
	for (const char *s = who; *s && k + 1 < sizeof(key); s++)
		if (!(*s == '<' || *s == '>' || *s == '@' ||
		      (*s == '!' && s > who && s[-1] == '@')))
			key[k++] = *s;
	key[k] = '\0';
	const char *p[] = {q->guild, key};
	query(q,
	      "SELECT r.user_id, r.source, r.person, coalesce(r.cohort, ''), r.method, "
	      "to_char(r.registered_at, 'YYYY-MM-DD HH24:MI') FROM registrations r "
	      "LEFT JOIN people p ON p.source = r.source AND p.external_id = r.person "
	      "WHERE r.guild_id = $1 AND (r.user_id = $2 OR r.person = $2 OR r.source || ':' || "
	      "r.person = $2 OR lower(p.email) = lower($2)) "
	      "UNION ALL SELECT a.user_id, a.source, a.person, coalesce(a.cohort, ''), "
	      "'waiting for approval', to_char(a.created_at, 'YYYY-MM-DD HH24:MI') "
	      "FROM reg_approvals a WHERE a.guild_id = $1 AND a.state = 'pending' AND "
	      "(a.user_id = $2 OR a.person = $2) LIMIT 20",
	      2, p, on_looked_up);
}

/* --- the Register message and members who come back ----------------------------------------- */

static void on_message_state(PGresult *res, const struct err *err, void *ud)
{
	char *guild = ud;
	if (err)
		log_warn("registration", "cannot place the Register message", "guild", guild,
		         "error", err->msg);
	else
		log_info("registration", "Register message", "guild", guild, "state",
		         PQgetvalue(res, 0, 0));
	free(guild);
}

/* FNV-1a, 64 bits: tells one body from another. */
static void hash_text(const char *s, char out[17])
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void reg_guild_ready(struct reg *r, struct cache *c, const char *guild_id)
{
	const struct mappings_guild *g =
	    r && r->maps && guild_id ? mappings_guild(r->maps, guild_id) : NULL;
	char ch[32], help[128], hash[17];
	if (!g || g->registration.proof == MAPPINGS_PROOF_NONE)
		return;
	if (!*channel_id(c, guild_id, g->registration.registration_channel, ch, sizeof(ch))) {
		log_debug("registration", "no registration channel yet", "guild", guild_id,
		          "channel", g->registration.registration_channel);
		return;
	}
	const char *hid = *channel_id(c, guild_id, g->registration.help_channel, help, sizeof(help))
	                      ? help
	                      : NULL;
	char hm[160];
	if (hid)
		snprintf(hm, sizeof(hm), "<#%s>", hid);
	else
		snprintf(hm, sizeof(hm), "#%s", g->registration.help_channel);
	const char *vars[] = {"help_channel", hm, NULL};
	char *content = text(g, MT_REGISTRATION_MESSAGE, vars);
	char *label = text(g, MT_REGISTER_BUTTON, NULL);
	if (strlen(label) > 80)
		label[80] = '\0';
	json_t *body = json_pack("{s:s, s:[{s:i, s:[{s:i, s:i, s:s, s:s}]}]}", "content", content,
	                         "components", "type", 1, "components", "type", 2, "style", 1,
	                         "label", label, "custom_id", "reg:start");
	free(content);
	free(label);
	char *text_body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	hash_text(text_body, hash);
	const char *p[] = {guild_id, ch, text_body, hash};
	char *gid = strdup(guild_id);
	if (!text_body || !gid ||
	    db_query(r->db, "SELECT cb_reg_message($1, $2, $3::jsonb, $4)", 4, p, on_message_state,
	             gid, NULL) != 0)
		free(gid);
	free(text_body);
}

static void on_rejoined(PGresult *res, const struct err *err, void *ud)
{
	char *who = ud;
	if (err)
		log_warn("registration", "cannot give a returning member their roles", "user", who,
		         "error", err->msg);
	else if (strtol(PQgetvalue(res, 0, 0), NULL, 10) > 0)
		log_info("registration", "a registered member came back; roles restored", "user",
		         who);
	free(who);
}

void reg_member_joined(struct reg *r, const char *guild_id, const char *user_id)
{
	if (!r || !guild_id || !user_id || !r->maps || !mappings_guild(r->maps, guild_id))
		return;
	char *rules = rules_json(mappings_guild(r->maps, guild_id));
	const char *p[] = {guild_id, user_id, rules};
	char *who = strdup(user_id);
	if (!who || db_query(r->db, "SELECT cb_reg_rejoin($1, $2, $3::jsonb)", 3, p, on_rejoined,
	                     who, NULL) != 0)
		free(who);
	free(rules);
}
