#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ical.h"
#include "log.h"
#include "reconcile.h"

#define MAX_ROLES        250
#define MAX_CHANNELS     500
#define MAX_PER_CATEGORY 50

#define P_VIEW_CHANNEL  (1ull << 10)
#define P_SEND_MESSAGES (1ull << 11)
#define P_CONNECT       (1ull << 20)

#define CH_TEXT     0
#define CH_VOICE    2
#define CH_CATEGORY 4

struct reconcile {
	uv_loop_t *loop;
	struct db *db;
	struct rest *rest;
	const struct mappings *maps;
	struct reconcile_opts o;
	reconcile_done_cb done;
	void *ud;
	size_t gi;
	const struct mappings_guild *g;
	unsigned round;
	size_t enqueued;
	int rc, cancelled, waiting, matched;
	char msg[600];
	char bot_id[32], after[32];
	json_t *dbstate, *roles, *channels, *members;
	json_t *keys;   /* this round's outbox keys */
	json_t *report; /* {"guilds": [...]} for --json */
	uv_timer_t timer;
};

static void next_guild(struct reconcile *r);
static void read_db(struct reconcile *r);

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void say(struct reconcile *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct reconcile *r, const char *fmt, ...)
{
	va_list ap;
	if (!r->o.out || r->o.json)
		return;
	va_start(ap, fmt);
	vfprintf(r->o.out, fmt, ap);
	va_end(ap);
}

/* The first problem decides the exit status; RECONCILE_ERROR outranks a hold. */
static void fail(struct reconcile *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct reconcile *r, int rc, const char *fmt, ...)
{
	va_list ap;
	if (r->rc == RECONCILE_ERROR || (r->rc == rc && r->msg[0]))
		return;
	r->rc = rc;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

static void free_round(struct reconcile *r)
{
	json_decref(r->dbstate);
	json_decref(r->roles);
	json_decref(r->channels);
	json_decref(r->members);
	json_decref(r->keys);
	r->dbstate = r->roles = r->channels = r->members = r->keys = NULL;
}

static void on_closed(uv_handle_t *h)
{
	struct reconcile *r = h->data;
	if (!r->cancelled)
		r->done(r->rc, r->msg[0] ? r->msg : "done", r->ud);
	free_round(r);
	json_decref(r->report);
	free(r);
}

static void finish(struct reconcile *r)
{
	if (r->o.json && r->o.out && !r->cancelled) {
		char *s = json_dumps(r->report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			fprintf(r->o.out, "%s\n", s);
		free(s);
	}
	uv_close((uv_handle_t *)&r->timer, on_closed);
}

/* A callback of a run that was cancelled meanwhile ends it. */
static int gone(struct reconcile *r)
{
	if (!r->cancelled)
		return 0;
	finish(r);
	return 1;
}

/* --- the desired state ----------------------------------------------------------------------- */

/* What planning one round of one guild works with. */
struct ctx {
	struct reconcile *r;
	const struct mappings_guild *g;
	const char *guild;
	time_t now;
	json_t *actions, *warnings, *errors;
	json_t *role_by_id, *chan_by_id, *owned, *owned_ids, *claimed;
	json_t *staff_ids; /* staff role key -> id, for those that exist */
	json_t *failing;
	/* the cohorts: the file's and those its sets make from the roster */
	const struct mappings_cohort **coh;
	size_t ncoh;
	struct mappings_cohort **expanded;
	size_t *nexpanded;
	char **role_ids; /* per cohort: its role's id, NULL until it exists */
	int *ended;
	size_t roles_to_create, channels_to_create;
	json_t *cat_new; /* category name -> channels to create in it or move into it */
};

static json_t *add_action(struct ctx *c, const char *op, const char *cohort, const char *name)
{
	json_t *a = json_pack("{s:s, s:o, s:s?, s:b}", "op", op, "cohort",
	                      cohort ? json_string(cohort) : json_null(), "name", name, "ready", 1);
	json_array_append_new(c->actions, a);
	return a;
}

static char *key_of(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s:%s", a, b);
	return k;
}

static void set_outbox(struct ctx *c, json_t *a, const char *kind, const char *what,
                       json_t *payload)
{
	char *key = key_of(c->guild, what);
	char *full = key ? key_of("rc", key) : NULL;
	json_object_set_new(
	    a, "outbox",
	    json_pack("{s:s, s:s?, s:o}", "kind", kind, "key", full, "payload", payload));
	free(key);
	free(full);
}

/* Discord lower-cases text channel names and joins words with dashes; comparing and creating
 * with the form Discord keeps is what makes the second run find the first run's channel. */
static void text_name(char *out, size_t size, const char *name)
{
	size_t i = 0;
	for (; name[i] && i + 1 < size; i++) {
		char ch = name[i];
		out[i] = ch == ' ' ? '-' : (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	out[i] = '\0';
}

/* The id of the object the mappings call (kind, key), or NULL when it must be created. One the
 * bridge owns that still exists is taken as it is; else an object of that name (and type and
 * parent) that nobody owns is adopted, which the plan records. */
static const char *resolve(struct ctx *c, const char *kind, const char *key, const char *name,
                           int type, const char *parent, const char *cohort)
{
	int role = strcmp(kind, "role") == 0;
	json_t *byid = role ? c->role_by_id : c->chan_by_id;
	char okey[600];
	snprintf(okey, sizeof(okey), "%s\n%s", kind, key);
	json_t *own = json_object_get(c->owned, okey);
	const char *id = jstr(own, "discord_id");
	if (id && json_object_get(byid, id))
		return id;
	/* enqueued and not done yet: its row finds or creates it; adopting a same-named object
	 * now could be adopting what that row created before a crash, and the row would then
	 * create another */
	if (own && !id)
		return NULL;
	const char *k;
	json_t *v;
	json_object_foreach(byid, k, v) {
		if (json_object_get(c->owned_ids, k) || json_object_get(c->claimed, k) ||
		    !streq(jstr(v, "name"), name))
			continue;
		if (role && json_is_true(json_object_get(v, "managed")))
			continue;
		if (!role &&
		    (json_integer_value(json_object_get(v, "type")) != type ||
		     !(parent ? streq(jstr(v, "parent_id"), parent) : !jstr(v, "parent_id"))))
			continue;
		json_object_set_new(c->claimed, k, json_true());
		char op[32];
		snprintf(op, sizeof(op), "adopt_%s", kind);
		json_t *a = add_action(c, op, cohort, name);
		json_object_set_new(a, "own",
		                    json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b}", "kind", kind,
		                              "key", key, "name", name, "discord_id", k,
		                              "parent_id", parent, "created", 0));
		return k;
	}
	return NULL;
}

/* How a plan names a kind of object. */
static const char *kind_text(const char *kind)
{
	return streq(kind, "role")       ? "role"
	       : streq(kind, "category") ? "category"
	       : streq(kind, "text")     ? "text channel"
	                                 : "voice channel";
}

/* An object the bridge owns, found again, against what the mappings now say of it: a name the
 * mappings changed (owned_objects.name is the name the bridge last gave it, so a name Discord
 * spells its own way is not renamed again on every run), a role's colour or a channel's
 * category that differ on Discord. What the bridge created is edited in place and keeps its
 * id; what it adopted by name keeps Discord's name, colour and place, and the plan says so. */
static void edit_owned(struct ctx *c, const char *kind, const char *key, const char *id,
                       const char *name, int color, const char *parent, const char *parent_name,
                       const char *cohort)
{
	int role = strcmp(kind, "role") == 0;
	char okey[600], hex[16];
	snprintf(okey, sizeof(okey), "%s\n%s", kind, key);
	json_t *own = json_object_get(c->owned, okey);
	json_t *have = json_object_get(role ? c->role_by_id : c->chan_by_id, id);
	if (!own || !have || !streq(jstr(own, "discord_id"), id))
		return; /* adopted in this very plan, by its name */
	const char *cur = jstr(have, "name");
	int recolor =
	    role && color >= 0 && json_integer_value(json_object_get(have, "color")) != color;
	/* a channel moves to its category; to one still to be created in the next round, but it
	 * counts against the category's limit now, before anything changes */
	int move = !role && parent_name && !(parent && streq(jstr(have, "parent_id"), parent));
	snprintf(hex, sizeof(hex), "#%06x", (unsigned)(color >= 0 ? color : 0));
	if (!json_is_true(json_object_get(own, "created_by_bridge"))) {
		int renamed = !streq(cur, name);
		char diff[600];
		int n = 0;
		diff[0] = '\0';
		if (renamed)
			n += snprintf(diff + n, sizeof(diff) - (size_t)n, "the name \"%s\"", name);
		if (recolor && n >= 0 && (size_t)n < sizeof(diff))
			n += snprintf(diff + n, sizeof(diff) - (size_t)n, "%sthe colour %s",
			              n ? ", " : "", hex);
		if (move && n >= 0 && (size_t)n < sizeof(diff))
			n += snprintf(diff + n, sizeof(diff) - (size_t)n, "%sthe category \"%s\"",
			              n ? ", " : "", parent_name ? parent_name : "?");
		if (n)
			json_array_append_new(
			    c->warnings,
			    json_sprintf(
			        "%s \"%s\" was found by its name, not created by the bridge: "
			        "left as it is, although the mappings give it %s",
			        kind_text(kind), cur ? cur : "?", diff));
		return;
	}
	int renamed = !streq(jstr(own, "name"), name);
	if (!renamed && !recolor && !move)
		return;
	char op[32], what[64];
	snprintf(op, sizeof(op), "edit_%s", kind);
	json_t *a = add_action(c, op, cohort, name);
	if (move) {
		json_t *cnt = json_object_get(c->cat_new, parent_name);
		json_object_set_new(c->cat_new, parent_name,
		                    json_integer(json_integer_value(cnt) + 1));
		json_object_set_new(a, "category", json_string(parent_name));
	}
	if (move && !parent) {
		/* the whole edit waits for the category */
		json_object_set_new(a, "ready", json_false());
		return;
	}
	json_t *body = json_object();
	if (renamed) {
		json_object_set_new(body, "name", json_string(name));
		json_object_set_new(a, "from", json_string(cur ? cur : "?"));
	}
	if (recolor) {
		json_object_set_new(body, "color", json_integer(color));
		json_object_set_new(a, "color", json_string(hex));
	}
	if (move)
		json_object_set_new(body, "parent_id", json_string(parent));
	const char *idk = role ? "role_id" : "channel_id";
	json_object_set_new(a, idk, json_string(id));
	snprintf(what, sizeof(what), "edit:%s", id);
	/* owned_name: what owned_objects.name becomes once the row is done (0012) */
	set_outbox(c, a, role ? "role_edit" : "channel_edit", what,
	           json_pack("{s:s, s:s, s:o, s:s, s:s}", "guild_id", c->guild, idk, id, "body",
	                     body, "reason", "cohortbridge: the mappings changed", "owned_name",
	                     name));
}

static json_t *overwrite(const char *id, int type, unsigned long long allow,
                         unsigned long long deny)
{
	char a[24], d[24];
	snprintf(a, sizeof(a), "%llu", allow);
	snprintf(d, sizeof(d), "%llu", deny);
	return json_pack("{s:s, s:i, s:s, s:s}", "id", id, "type", type, "allow", a, "deny", d);
}

/* The overwrites a cohort object needs: hidden from @everyone, visible to the cohort roles and
 * their staff and to the bot itself; read-only once archived. NULL while a role is missing. */
static json_t *overwrites(struct ctx *c, const size_t *cohorts, size_t n, int archived)
{
	unsigned long long ro = archived ? P_SEND_MESSAGES | P_CONNECT : 0;
	json_t *ow = json_array();
	json_t *seen = json_object();
	json_array_append_new(ow, overwrite(c->guild, 0, 0, P_VIEW_CHANNEL));
	if (c->r->bot_id[0])
		json_array_append_new(ow, overwrite(c->r->bot_id, 1, P_VIEW_CHANNEL, 0));
	for (size_t i = 0; i < n; i++) {
		const struct mappings_cohort *co = c->coh[cohorts[i]];
		const char *rid = c->role_ids[cohorts[i]];
		if (!rid)
			goto missing;
		if (!json_object_get(seen, rid))
			json_array_append_new(ow, overwrite(rid, 0, P_VIEW_CHANNEL, ro));
		json_object_set_new(seen, rid, json_true());
		for (size_t s = 0; s < co->nstaff; s++) {
			const char *sid = jstr(c->staff_ids, co->staff[s]);
			if (!sid)
				goto missing;
			if (!json_object_get(seen, sid))
				json_array_append_new(ow, overwrite(sid, 0, P_VIEW_CHANNEL, ro));
			json_object_set_new(seen, sid, json_true());
		}
	}
	json_decref(seen);
	return ow;
missing:
	json_decref(seen);
	json_decref(ow);
	return NULL;
}

static unsigned long long perm(const json_t *v)
{
	if (json_is_integer(v))
		return (unsigned long long)json_integer_value(v);
	const char *s = json_string_value(v);
	return s ? strtoull(s, NULL, 10) : 0;
}

/* Every wanted overwrite is there exactly (others on the channel are left as they are). */
static int overwrites_hold(const json_t *want, const json_t *have)
{
	size_t i, k;
	json_t *w, *h;
	json_array_foreach(want, i, w) {
		int ok = 0;
		json_array_foreach(have, k, h) {
			if (streq(jstr(w, "id"), jstr(h, "id")) &&
			    perm(json_object_get(w, "allow")) ==
			        perm(json_object_get(h, "allow")) &&
			    perm(json_object_get(w, "deny")) == perm(json_object_get(h, "deny")))
				ok = 1;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* A channel of the cohorts `cohorts`: found, adopted or created; its overwrites set right. */
static const char *want_channel(struct ctx *c, const char *kind, const char *key, const char *name,
                                int type, const char *parent, const char *parent_name,
                                const size_t *cohorts, size_t n, int archived, const char *cohort)
{
	const char *id = resolve(c, kind, key, name, type, parent, cohort);
	json_t *ow = overwrites(c, cohorts, n, archived);
	if (!id) {
		if (archived) {
			json_decref(ow);
			return NULL; /* an ended cohort gets no new channels */
		}
		char op[32];
		snprintf(op, sizeof(op), "create_%s", kind);
		json_t *a = add_action(c, op, cohort, name);
		c->channels_to_create++;
		if (type != CH_CATEGORY) {
			json_t *cnt = json_object_get(c->cat_new, parent_name);
			json_object_set_new(c->cat_new, parent_name,
			                    json_integer(json_integer_value(cnt) + 1));
		}
		json_object_set_new(a, "own",
		                    json_pack("{s:s, s:s, s:s, s:s?}", "kind", kind, "key", key,
		                              "name", name, "parent_id", parent));
		if (!ow || (type != CH_CATEGORY && !parent)) {
			json_object_set_new(a, "ready", json_false());
			json_decref(ow);
			return NULL;
		}
		json_t *body = json_pack("{s:s, s:i, s:o}", "name", name, "type", type,
		                         "permission_overwrites", ow);
		if (parent)
			json_object_set_new(body, "parent_id", json_string(parent));
		char what[600];
		snprintf(what, sizeof(what), "%s:%s", kind, key);
		set_outbox(c, a, "channel_create", what,
		           json_pack("{s:s, s:o, s:s, s:O}", "guild_id", c->guild, "body", body,
		                     "reason", "cohortbridge: cohort channel", "own",
		                     json_object_get(a, "own")));
		return NULL;
	}
	/* an ended cohort gets no new category, so its channels stay where they are */
	edit_owned(c, kind, key, id, name, -1, parent, archived && !parent ? NULL : parent_name,
	           cohort);
	json_t *have = json_object_get(json_object_get(c->chan_by_id, id), "permission_overwrites");
	if (ow && !overwrites_hold(ow, have)) {
		/* ours replace theirs for the same ids; any other overwrite stays */
		size_t i;
		json_t *h;
		json_t *merged = json_deep_copy(ow);
		json_array_foreach(have, i, h) {
			size_t k;
			json_t *w;
			int mine = 0;
			json_array_foreach(ow, k, w)
				mine |= streq(jstr(w, "id"), jstr(h, "id"));
			if (!mine)
				json_array_append(merged, h);
		}
		json_t *a = add_action(c, archived ? "archive" : "set_permissions", cohort, name);
		json_object_set_new(a, "channel_id", json_string(id));
		char what[64];
		snprintf(what, sizeof(what), "perm:%s", id);
		set_outbox(c, a, "channel_edit", what,
		           json_pack("{s:s, s:s, s:{s:o}, s:s, s:{s:s, s:s, s:b}}", "guild_id",
		                     c->guild, "channel_id", id, "body", "permission_overwrites",
		                     merged, "reason",
		                     archived ? "cohortbridge: cohort ended, archived read-only"
		                              : "cohortbridge: cohort channel access",
		                     "own", "kind", kind, "key", key, "archived", archived));
	}
	json_decref(ow);
	return id;
}

static int opt_eq(const char *want, const char *have)
{
	return !want || streq(want, have);
}

static int row_matches(const struct mappings_match *m, const json_t *row)
{
	return opt_eq(m->source, jstr(row, "source")) && opt_eq(m->group, jstr(row, "group_id")) &&
	       opt_eq(m->city, jstr(row, "city")) && opt_eq(m->program, jstr(row, "program")) &&
	       opt_eq(m->cohort, jstr(row, "cohort"));
}

static int cohort_matches(const struct mappings_cohort *co, const json_t *row)
{
	for (size_t i = 0; i < co->nmatches; i++)
		if (row_matches(&co->matches[i], row))
			return 1;
	return 0;
}

static int rule_matches(const struct mappings_role_rule *rr, const json_t *row)
{
	const char *kind = jstr(row, "kind"), *gid = jstr(row, "group_id");
	if (!streq(rr->source, jstr(row, "source")) || !gid)
		return 0;
	if (streq(kind, "item"))
		for (size_t i = 0; i < rr->nitems; i++)
			if (streq(rr->items[i], gid))
				return 1;
	if (streq(kind, "variation"))
		for (size_t i = 0; i < rr->nvariations; i++)
			if (streq(rr->variations[i], gid))
				return 1;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct mappings_cohort *const *)a)->name,
	              (*(const struct mappings_cohort *const *)b)->name);
}

/* The roster's distinct (source, city, program, cohort), for the cohort sets. */
static int expand_sets(struct ctx *c)
{
	json_t *groups = json_object_get(c->r->dbstate, "groups");
	size_t n = json_array_size(groups), nt = 0;
	struct mappings_tuple *t = calloc(n + 1, sizeof(*t));
	json_t *seen = json_object();
	size_t i;
	json_t *row;
	if (!t)
		return -1;
	json_array_foreach(groups, i, row) {
		char k[1200];
		snprintf(k, sizeof(k), "%s\n%s\n%s\n%s", jstr(row, "source"),
		         jstr(row, "city") ? jstr(row, "city") : "",
		         jstr(row, "program") ? jstr(row, "program") : "",
		         jstr(row, "cohort") ? jstr(row, "cohort") : "");
		if (json_object_get(seen, k))
			continue;
		json_object_set_new(seen, k, json_true());
		t[nt++] = (struct mappings_tuple){jstr(row, "source"), jstr(row, "city"),
		                                  jstr(row, "program"), jstr(row, "cohort")};
	}
	c->expanded = calloc(c->g->nsets + 1, sizeof(struct mappings_cohort *));
	c->nexpanded = calloc(c->g->nsets + 1, sizeof(*c->nexpanded));
	size_t total = c->g->ncohorts;
	for (size_t s = 0; c->expanded && c->nexpanded && s < c->g->nsets; s++) {
		struct err err = {0};
		if (mappings_expand_set(c->g, &c->g->sets[s], t, nt, &c->expanded[s],
		                        &c->nexpanded[s], NULL, &err) != 0)
			c->nexpanded[s] = 0;
		total += c->nexpanded[s];
	}
	c->coh = calloc(total + 1, sizeof(const struct mappings_cohort *));
	if (c->coh) {
		for (i = 0; i < c->g->ncohorts; i++)
			c->coh[c->ncoh++] = &c->g->cohorts[i];
		for (size_t s = 0; c->expanded && c->nexpanded && s < c->g->nsets; s++)
			for (i = 0; i < c->nexpanded[s]; i++)
				c->coh[c->ncoh++] = &c->expanded[s][i];
		/* a plan reads best in the order of the names */
		qsort(c->coh, c->ncoh, sizeof(const struct mappings_cohort *), by_name);
	}
	json_decref(seen);
	free(t);
	return c->coh ? 0 : -1;
}

static void ctx_free(struct ctx *c)
{
	for (size_t s = 0; c->expanded && c->nexpanded && s < c->g->nsets; s++)
		mappings_cohorts_free(c->expanded[s], c->nexpanded[s]);
	free(c->expanded);
	free(c->nexpanded);
	free(c->coh);
	free(c->role_ids);
	free(c->ended);
	json_decref(c->role_by_id);
	json_decref(c->chan_by_id);
	json_decref(c->owned);
	json_decref(c->owned_ids);
	json_decref(c->claimed);
	json_decref(c->staff_ids);
	json_decref(c->failing);
	json_decref(c->cat_new);
}

/* A role the mappings name: its id, or NULL after planning its creation (none for an ended
 * cohort, which gets nothing new). */
static const char *want_role(struct ctx *c, const char *key, const char *name, int color,
                             const char *cohort, int ended)
{
	const char *id = resolve(c, "role", key, name, 0, NULL, cohort);
	if (id) {
		edit_owned(c, "role", key, id, name, color, NULL, NULL, cohort);
		return id;
	}
	if (ended)
		return NULL;
	json_t *a = add_action(c, "create_role", cohort, name);
	json_t *own = json_pack("{s:s, s:s, s:s}", "kind", "role", "key", key, "name", name);
	json_t *body =
	    json_pack("{s:s, s:s, s:b}", "name", name, "permissions", "0", "mentionable", 0);
	if (color >= 0)
		json_object_set_new(body, "color", json_integer(color));
	json_object_set(a, "own", own);
	char what[600];
	snprintf(what, sizeof(what), "role:%s", key);
	set_outbox(c, a, "role_create", what,
	           json_pack("{s:s, s:o, s:s, s:o}", "guild_id", c->guild, "body", body, "reason",
	                     "cohortbridge: role named by the mappings", "own", own));
	c->roles_to_create++;
	return NULL;
}

/* A cohort's end_date is a day in the cohort's own time zone: the cohort has ended once the
 * last second of that day has passed there. When that instant cannot be told (libical
 * missing), the plan stops rather than guess: a guess could archive the cohort's channels in
 * one run and open them again in the next. */
static int cohort_ended(struct ctx *c, const struct mappings_cohort *co)
{
	char last[32];
	time_t end;
	struct err err = {0};
	if (!co->end_date)
		return 0;
	snprintf(last, sizeof(last), "%.10sT23:59:59", co->end_date);
	if (ical_parse_time(last, co->time_zone, &end, &err) != 0) {
		json_array_append_new(
		    c->errors, json_sprintf("cohort \"%s\": cannot tell when %s ends in %s: %s",
		                            co->name, co->end_date, co->time_zone, err.msg));
		return 0;
	}
	return c->now > end;
}

/* A category's key is its name (cohorts whose category names come out the same share it), so
 * a category the mappings now call otherwise has a key nobody owns. When the channels of the
 * cohorts that use the new name all sit in one category the bridge created, under an old name
 * no cohort uses any more, that category is the one renamed: its ownership moves to the new key
 * (in the round's statement; a second group finds it under that key, which is in use) and
 * edit_owned renames it, instead of a second category being created next to it. A category of
 * the new name that the server already has and nobody owns is adopted instead, as always. */
static void rekey_category(struct ctx *c, const char *name, const size_t *ix, size_t n,
                           const json_t *cats)
{
	static const char *const kinds[] = {"text", "voice"};
	char okey[600], ck[600];
	const char *pid = NULL, *k;
	json_t *v;
	snprintf(okey, sizeof(okey), "category\ncategory:%s", name);
	if (json_object_get(c->owned, okey))
		return;
	json_object_foreach(c->chan_by_id, k, v) {
		if (json_integer_value(json_object_get(v, "type")) == CH_CATEGORY &&
		    streq(jstr(v, "name"), name) && !json_object_get(c->owned_ids, k) &&
		    !json_object_get(c->claimed, k))
			return;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t t = 0; t < 2; t++) {
			snprintf(ck, sizeof(ck), "%s\ncohort:%s", kinds[t], c->coh[ix[i]]->name);
			const char *id = jstr(json_object_get(c->owned, ck), "discord_id");
			const char *p =
			    id ? jstr(json_object_get(c->chan_by_id, id), "parent_id") : NULL;
			if (!p)
				continue;
			if (pid && !streq(pid, p))
				return; /* spread over several: a new category, and the channels
				           move */
			pid = p;
		}
	if (!pid)
		return;
	json_object_foreach(c->owned, k, v) {
		const char *old = jstr(v, "key");
		if (!streq(jstr(v, "kind"), "category") || !streq(jstr(v, "discord_id"), pid))
			continue;
		if (!old || strncmp(old, "category:", 9) != 0 ||
		    !json_is_true(json_object_get(v, "created_by_bridge")) ||
		    json_object_get(cats, old + 9))
			return;
		json_t *a = add_action(c, "rekey_category", NULL, name);
		json_object_set_new(a, "rekey",
		                    json_pack("{s:s, s:s, s:s+}", "kind", "category", "from", old,
		                              "to", "category:", name));
		json_t *moved = json_deep_copy(v);
		json_object_set_new(moved, "key", json_sprintf("category:%s", name));
		json_object_del(c->owned, k); /* frees k and old: the loop ends here */
		json_object_set_new(c->owned, okey, moved);
		return;
	}
}

static void member_change(struct ctx *c, const char *op, const char *user, const char *role_id,
                          const char *role_name, const char *cohort)
{
	json_t *a = add_action(c, op, cohort, role_name);
	json_object_set_new(a, "user_id", json_string(user));
	if (!role_id) {
		json_object_set_new(a, "ready", json_false());
		return;
	}
	json_object_set_new(a, "role_id", json_string(role_id));
	char what[96];
	int add = strcmp(op, "add_role") == 0;
	snprintf(what, sizeof(what), "%s:%s:%s", add ? "add" : "remove", user, role_id);
	set_outbox(c, a, add ? "role_add" : "role_remove", what,
	           json_pack("{s:s, s:s, s:s, s:s}", "guild_id", c->guild, "user_id", user,
	                     "role_id", role_id, "reason",
	                     add ? "cohortbridge: roster membership"
	                         : "cohortbridge: no longer on the roster"));
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* FNV-1a over the plan's sorted "user:role" removals, in hex: the same removals give the same
 * key whatever order planning met them in. */
static void removal_set(const json_t *actions, char *out, size_t cap)
{
	size_t i, n = 0;
	json_t *a;
	unsigned long long h = 1469598103934665603ull;
	const char **v = calloc(json_array_size(actions) + 1, sizeof(const char *));
	json_t *keys = json_array();
	json_array_foreach(actions, i, a) {
		if (!v || !streq(jstr(a, "op"), "remove_role"))
			continue;
		json_t *k = json_sprintf("%s:%s", jstr(a, "user_id"), jstr(a, "role_id"));
		json_array_append_new(keys, k);
		v[n++] = json_string_value(k);
	}
	if (v)
		qsort(v, n, sizeof(*v), by_string);
	for (i = 0; i < n; i++)
		for (const char *p = v[i];; p++) {
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
			if (!*p)
				break;
		}
	snprintf(out, cap, "%016llx", h);
	free(v);
	json_decref(keys);
}

/* The plan of one round: {"guild", "label", "actions", "warnings", "errors", ...}. */
static json_t *compute(struct reconcile *r)
{
	struct ctx cc = {0}, *c = &cc;
	const struct mappings_guild *g = r->g;
	size_t i;
	json_t *v;
	c->r = r;
	c->g = g;
	c->guild = g->guild_id;
	c->actions = json_array();
	c->warnings = json_array();
	c->errors = json_array();
	c->role_by_id = json_object();
	c->chan_by_id = json_object();
	c->owned = json_object();
	c->owned_ids = json_object();
	c->claimed = json_object();
	c->failing = json_object();
	c->cat_new = json_object();
	c->staff_ids = json_object();
	c->now = time(NULL);

	json_array_foreach(r->roles, i, v)
		json_object_set(c->role_by_id, jstr(v, "id"), v);
	json_array_foreach(r->channels, i, v) {
		json_int_t t = json_integer_value(json_object_get(v, "type"));
		if (t != 10 && t != 11 && t != 12)
			json_object_set(c->chan_by_id, jstr(v, "id"), v);
	}
	json_array_foreach(json_object_get(r->dbstate, "owned"), i, v) {
		char k[600];
		snprintf(k, sizeof(k), "%s\n%s", jstr(v, "kind"), jstr(v, "key"));
		json_object_set(c->owned, k, v);
		if (jstr(v, "discord_id"))
			json_object_set_new(c->owned_ids, jstr(v, "discord_id"), json_true());
	}
	json_array_foreach(json_object_get(r->dbstate, "failing"), i, v)
		json_object_set_new(c->failing, json_string_value(v), json_true());
	json_t *resolved_staff = c->staff_ids;
	json_t *plan = NULL;
	if (expand_sets(c) != 0)
		goto out;
	c->role_ids = calloc(c->ncoh + 1, sizeof(*c->role_ids));
	c->ended = calloc(c->ncoh + 1, sizeof(*c->ended));
	if (!c->role_ids || !c->ended)
		goto out;

	/* roles first: every overwrite and member change needs their ids */
	json_t *rule_role = json_object(); /* role key -> id (or null) */
	for (i = 0; i < g->nstaff_roles; i++) {
		char key[300];
		snprintf(key, sizeof(key), "staff:%s", g->staff_roles[i].key);
		const char *id =
		    want_role(c, key, g->staff_roles[i].name, g->staff_roles[i].color, NULL, 0);
		if (id)
			json_object_set_new(resolved_staff, g->staff_roles[i].key, json_string(id));
		json_object_set_new(rule_role, g->staff_roles[i].key,
		                    id ? json_string(id) : json_null());
	}
	for (i = 0; i < g->nroles; i++) {
		char key[300];
		snprintf(key, sizeof(key), "role:%s", g->roles[i].key);
		const char *id = want_role(c, key, g->roles[i].name, g->roles[i].color, NULL, 0);
		json_object_set_new(rule_role, g->roles[i].key, id ? json_string(id) : json_null());
	}
	json_t *active = json_object(); /* cohort index -> active memberships */
	for (i = 0; i < c->ncoh; i++) {
		const struct mappings_cohort *co = c->coh[i];
		size_t k;
		json_t *row;
		json_int_t n = 0;
		json_array_foreach(json_object_get(r->dbstate, "groups"), k, row) {
			if (cohort_matches(co, row))
				n += json_integer_value(json_object_get(row, "active"));
		}
		char ix[24];
		snprintf(ix, sizeof(ix), "%zu", i);
		json_object_set_new(active, ix, json_integer(n));
		if (!n)
			json_array_append_new(
			    c->warnings,
			    json_sprintf("cohort \"%s\" matches nobody in the roster", co->name));
		c->ended[i] = cohort_ended(c, co);
		char key[300];
		snprintf(key, sizeof(key), "cohort:%s", co->name);
		const char *id = want_role(c, key, co->role, co->color, co->name, c->ended[i]);
		c->role_ids[i] = id ? strdup(id) : NULL;
	}

	/* categories: cohorts whose category names come out the same share one */
	json_t *cats = json_object(); /* name -> [cohort indexes] */
	for (i = 0; i < c->ncoh; i++) {
		json_t *l = json_object_get(cats, c->coh[i]->category);
		if (!l)
			json_object_set_new(cats, c->coh[i]->category, l = json_array());
		json_array_append_new(l, json_integer((json_int_t)i));
	}
	json_t *cat_ids = json_object();
	const char *cname;
	json_t *members;
	json_object_foreach(cats, cname, members) {
		size_t n = json_array_size(members), k, all_ended = 1;
		size_t *ix = calloc(n + 1, sizeof(*ix));
		json_t *e;
		if (!ix)
			continue;
		json_array_foreach(members, k, e) {
			ix[k] = (size_t)json_integer_value(e);
			all_ended &= (size_t)c->ended[ix[k]];
		}
		char key[300];
		snprintf(key, sizeof(key), "category:%s", cname);
		rekey_category(c, cname, ix, n, cats);
		const char *id =
		    want_channel(c, "category", key, cname, CH_CATEGORY, NULL, NULL, ix, n,
		                 (int)all_ended, n == 1 ? c->coh[ix[0]]->name : NULL);
		json_object_set_new(cat_ids, cname, id ? json_string(id) : json_null());
		free(ix);
	}
	for (i = 0; i < c->ncoh; i++) {
		const struct mappings_cohort *co = c->coh[i];
		const char *parent = jstr(cat_ids, co->category);
		char key[300], tname[200];
		snprintf(key, sizeof(key), "cohort:%s", co->name);
		text_name(tname, sizeof(tname), co->text);
		want_channel(c, "text", key, tname, CH_TEXT, parent, co->category, &i, 1,
		             c->ended[i], co->name);
		if (co->voice)
			want_channel(c, "voice", key, co->voice, CH_VOICE, parent, co->category, &i,
			             1, c->ended[i], co->name);
	}

	/* members: registered ones get what their active memberships say, and lose the cohort
	 * and rule roles they no longer earn */
	json_t *managed_roles = json_object(); /* role id -> true: ours to take away */
	for (i = 0; i < c->ncoh; i++)
		if (c->role_ids[i] && !c->ended[i])
			json_object_set_new(managed_roles, c->role_ids[i], json_true());
	for (i = 0; i < g->nrole_rules; i++)
		for (size_t k = 0; k < g->role_rules[i].nroles; k++) {
			const char *rid = jstr(rule_role, g->role_rules[i].roles[k]);
			if (rid && !json_object_get(resolved_staff, g->role_rules[i].roles[k]))
				json_object_set_new(managed_roles, rid, json_true());
		}
	json_t *have = json_object(); /* user -> {role id: true} */
	json_array_foreach(r->members, i, v) {
		json_t *set = json_object();
		size_t k;
		json_t *rid;
		json_array_foreach(json_object_get(v, "roles"), k, rid)
			json_object_set_new(set, json_string_value(rid), json_true());
		json_object_set_new(have, jstr(json_object_get(v, "user"), "id"), set);
	}
	json_t *users = json_object(); /* user -> {"source", "rows": [...]} */
	json_array_foreach(json_object_get(r->dbstate, "regs"), i, v) {
		const char *u = jstr(v, "user_id");
		json_t *e = json_object_get(users, u);
		if (!e)
			json_object_set_new(users, u,
			                    e = json_pack("{s:O, s:[]}", "source",
			                                  json_object_get(v, "source"), "rows"));
		if (jstr(v, "group_id"))
			json_array_append(json_object_get(e, "rows"), v);
	}
	size_t managed = 0, removals = 0, spared = 0;
	const char *uid;
	json_t *ue;
	json_object_foreach(users, uid, ue) {
		json_t *cur = json_object_get(have, uid);
		if (!cur)
			continue; /* not on the server (left): nothing to change */
		managed++;
		json_t *want = json_object(); /* role id or "?name" -> cohort name or null */
		size_t k;
		json_t *row;
		json_array_foreach(json_object_get(ue, "rows"), k, row) {
			for (size_t x = 0; x < c->ncoh; x++) {
				if (c->ended[x] || !cohort_matches(c->coh[x], row))
					continue;
				char pending[300];
				snprintf(pending, sizeof(pending), "?%s", c->coh[x]->role);
				json_object_set_new(want, c->role_ids[x] ? c->role_ids[x] : pending,
				                    json_string(c->coh[x]->name));
			}
			for (size_t x = 0; x < g->nrole_rules; x++) {
				if (!rule_matches(&g->role_rules[x], row))
					continue;
				for (size_t y = 0; y < g->role_rules[x].nroles; y++) {
					const char *rk = g->role_rules[x].roles[y];
					const char *rid = jstr(rule_role, rk);
					char pending[300];
					snprintf(pending, sizeof(pending), "?%s", rk);
					json_object_set_new(want, rid ? rid : pending, json_null());
				}
			}
		}
		const char *rid;
		json_t *co;
		json_object_foreach(want, rid, co) {
			if (rid[0] == '?')
				member_change(c, "add_role", uid, NULL, rid + 1,
				              json_string_value(co));
			else if (!json_object_get(cur, rid))
				member_change(c, "add_role", uid, rid,
				              jstr(json_object_get(c->role_by_id, rid), "name"),
				              json_string_value(co));
		}
		int failing = json_object_get(c->failing, jstr(ue, "source")) != NULL;
		json_t *one;
		json_object_foreach(cur, rid, one) {
			if (!json_object_get(managed_roles, rid) || json_object_get(want, rid))
				continue;
			if (failing) {
				spared++;
				continue;
			}
			const char *cohort = NULL;
			for (size_t x = 0; x < c->ncoh; x++)
				if (streq(c->role_ids[x], rid))
					cohort = c->coh[x]->name;
			member_change(c, "remove_role", uid, rid,
			              jstr(json_object_get(c->role_by_id, rid), "name"), cohort);
			removals++;
		}
		json_decref(want);
	}
	if (spared)
		json_array_append_new(
		    c->warnings,
		    json_sprintf(
		        "%zu role removal(s) skipped: the last sync of their source failed",
		        spared));
	/* the removal set, as a key a confirmation names: the sorted "user:role" pairs hashed */
	char set[24];
	removal_set(c->actions, set, sizeof(set));
	int held = 0;
	if (removals && (double)removals > g->removals_confirm_share * (double)managed) {
		int confirmed = r->o.confirm && streq(r->o.confirm, set);
		held = !r->o.allow_removals && !confirmed;
		if (confirmed && r->o.confirmed && r->round == 1)
			*r->o.confirmed += removals;
		json_array_append_new(
		    c->warnings,
		    json_sprintf("%zu role removal(s) among %zu managed member(s) exceed "
		                 "removals.confirm_share %.0f%%%s",
		                 removals, managed, g->removals_confirm_share * 100.0,
		                 held ? ": they wait for a confirmation (apply --allow-removals)"
		                      : "; allowed"));
		if (held) {
			json_array_foreach(c->actions, i, v)
				if (streq(jstr(v, "op"), "remove_role"))
					json_object_set_new(v, "held", json_true());
		}
	}

	/* Discord's limits, on the whole desired state, before anything is enqueued */
	size_t nroles = json_object_size(c->role_by_id) + c->roles_to_create;
	size_t nchan = json_object_size(c->chan_by_id) + c->channels_to_create;
	if (nroles > MAX_ROLES)
		json_array_append_new(
		    c->errors,
		    json_sprintf("the server would hold %zu roles (%zu now, %zu to create); "
		                 "Discord allows %d",
		                 nroles, json_object_size(c->role_by_id), c->roles_to_create,
		                 MAX_ROLES));
	if (nchan > MAX_CHANNELS)
		json_array_append_new(
		    c->errors,
		    json_sprintf(
		        "the server would hold %zu channels (%zu now, %zu to create); Discord "
		        "allows %d",
		        nchan, json_object_size(c->chan_by_id), c->channels_to_create,
		        MAX_CHANNELS));
	json_t *cnt;
	json_object_foreach(c->cat_new, cname, cnt) {
		const char *cid = jstr(cat_ids, cname);
		size_t n = (size_t)json_integer_value(cnt);
		const char *k;
		json_t *ch;
		json_object_foreach(c->chan_by_id, k, ch)
			n += cid && streq(jstr(ch, "parent_id"), cid);
		if (n > MAX_PER_CATEGORY)
			json_array_append_new(
			    c->errors,
			    json_sprintf("category \"%s\" would hold %zu channels; Discord "
			                 "allows %d in one category",
			                 cname, n, MAX_PER_CATEGORY));
	}

	plan = json_pack("{s:s, s:s?, s:O, s:O, s:O, s:I, s:I, s:b, s:s}", "guild", c->guild,
	                 "label", g->label, "actions", c->actions, "warnings", c->warnings,
	                 "errors", c->errors, "managed_members", (json_int_t)managed, "removals",
	                 (json_int_t)removals, "removals_held", held, "removal_set", set);
	json_t *cl = json_array();
	for (i = 0; i < c->ncoh; i++) {
		char ix[24];
		snprintf(ix, sizeof(ix), "%zu", i);
		json_array_append_new(cl, json_pack("{s:s, s:O, s:b}", "name", c->coh[i]->name,
		                                    "active", json_object_get(active, ix), "ended",
		                                    c->ended[i]));
	}
	json_object_set_new(plan, "cohorts", cl);
	json_decref(users);
	json_decref(have);
	json_decref(managed_roles);
	json_decref(cat_ids);
	json_decref(cats);
	json_decref(active);
	json_decref(rule_role);
out:
	for (i = 0; c->role_ids && i < c->ncoh; i++)
		free(c->role_ids[i]);
	json_decref(c->actions);
	json_decref(c->warnings);
	json_decref(c->errors);
	ctx_free(c);
	return plan;
}

/* --- printing -------------------------------------------------------------------------------- */

static const char *op_text(const char *op)
{
	static const char *const t[][2] = {
	    {"create_role", "+ create role"},
	    {"adopt_role", "= adopt existing role"},
	    {"create_category", "+ create category"},
	    {"adopt_category", "= adopt existing category"},
	    {"create_text", "+ create private text channel"},
	    {"adopt_text", "= adopt existing text channel"},
	    {"create_voice", "+ create private voice channel"},
	    {"adopt_voice", "= adopt existing voice channel"},
	    {"set_permissions", "~ set permissions of"},
	    {"archive", "~ archive (read-only)"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i][0], op) == 0)
			return t[i][1];
	return op;
}

/* "~ rename role "A" -> "B", colour #ff0000", "~ text channel "b": move to category "C"" */
static void print_edit(struct reconcile *r, const json_t *a)
{
	const char *what = kind_text(jstr(a, "op") + 5);
	const char *from = jstr(a, "from"), *color = jstr(a, "color"), *cat = jstr(a, "category");
	if (from)
		say(r, "    ~ rename %s \"%s\" -> \"%s\"", what, from, jstr(a, "name"));
	else
		say(r, "    ~ %s \"%s\":", what, jstr(a, "name"));
	if (color)
		say(r, "%s colour %s", from ? "," : "", color);
	if (cat)
		say(r, "%s move to category \"%s\"", from || color ? "," : "", cat);
	say(r, "%s\n",
	    json_is_true(json_object_get(a, "ready")) ? "" : " (once the category exists)");
}

static void print_group(struct reconcile *r, const json_t *plan, const char *cohort)
{
	size_t i;
	json_t *a;
	json_t *adds = json_object(), *removes = json_object();
	json_array_foreach(json_object_get(plan, "actions"), i, a) {
		const char *co = jstr(a, "cohort");
		if (!(cohort ? streq(co, cohort) : !co))
			continue;
		const char *op = jstr(a, "op");
		int ready = json_is_true(json_object_get(a, "ready"));
		if (streq(op, "add_role") || streq(op, "remove_role")) {
			json_t *m = streq(op, "add_role") ? adds : removes;
			const char *n = jstr(a, "name") ? jstr(a, "name") : "?";
			json_object_set_new(
			    m, n, json_integer(json_integer_value(json_object_get(m, n)) + 1));
			continue;
		}
		if (strncmp(op, "rekey_", 6) == 0)
			continue; /* bookkeeping: its rename is the edit that follows */
		if (strncmp(op, "edit_", 5) == 0) {
			print_edit(r, a);
			continue;
		}
		say(r, "    %s \"%s\"%s\n", op_text(op), jstr(a, "name"),
		    ready ? "" : " (once the roles and category it needs exist)");
	}
	const char *n;
	json_t *cnt;
	json_object_foreach(adds, n, cnt)
		say(r, "    + add role \"%s\" to %lld member(s)\n", n, json_integer_value(cnt));
	json_object_foreach(removes, n, cnt)
		say(r, "    - remove role \"%s\" from %lld member(s)%s\n", n,
		    json_integer_value(cnt),
		    json_is_true(json_object_get(plan, "removals_held")) ? " (held)" : "");
	json_decref(adds);
	json_decref(removes);
}

static void print_plan(struct reconcile *r, const json_t *plan)
{
	size_t i, n = 0, counts[6] = {0};
	json_t *a;
	say(r, "guild %s%s%s%s\n", jstr(plan, "guild"), jstr(plan, "label") ? " (" : "",
	    jstr(plan, "label") ? jstr(plan, "label") : "", jstr(plan, "label") ? ")" : "");
	json_array_foreach(json_object_get(plan, "actions"), i, a) {
		const char *op = jstr(a, "op");
		if (strncmp(op, "rekey_", 6) == 0)
			continue;
		n++;
		counts[strncmp(op, "create", 6) == 0  ? 0
		       : strncmp(op, "adopt", 5) == 0 ? 1
		       : strncmp(op, "edit_", 5) == 0 ? 2
		       : streq(op, "add_role")        ? 4
		       : streq(op, "remove_role")     ? 5
		                                      : 3]++;
	}
	say(r, "  server-wide roles\n");
	print_group(r, plan, NULL);
	json_array_foreach(json_object_get(plan, "cohorts"), i, a) {
		say(r, "  cohort \"%s\" (%lld active%s)\n", jstr(a, "name"),
		    json_integer_value(json_object_get(a, "active")),
		    json_is_true(json_object_get(a, "ended")) ? ", ended" : "");
		print_group(r, plan, jstr(a, "name"));
	}
	json_array_foreach(json_object_get(plan, "warnings"), i, a)
		say(r, "  warning: %s\n", json_string_value(a));
	json_array_foreach(json_object_get(plan, "errors"), i, a)
		say(r, "  error: %s\n", json_string_value(a));
	if (!n)
		say(r, "  nothing to do: Discord matches the mappings and the roster\n");
	else
		say(r,
		    "  %zu action(s): %zu to create, %zu to adopt, %zu to edit, %zu "
		    "permission change(s), %zu role add(s), %zu removal(s) (%lld managed "
		    "member(s))\n",
		    n, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
		    json_integer_value(json_object_get(plan, "managed_members")));
}

/* --- the rounds ------------------------------------------------------------------------------ */

static void on_polled(PGresult *res, const struct err *err, void *ud);

static void on_poll_timer(uv_timer_t *t)
{
	struct reconcile *r = t->data;
	r->waiting = 0;
	char *keys = json_dumps(r->keys, JSON_COMPACT);
	const char *p[] = {keys ? keys : "[]"};
	if (db_query(r->db,
	             "SELECT count(*) FILTER (WHERE state = 'pending'), "
	             "count(*) FILTER (WHERE state = 'parked'), "
	             "min(last_error) FILTER (WHERE state = 'parked') FROM outbox "
	             "WHERE key IN (SELECT jsonb_array_elements_text($1::jsonb))",
	             1, p, on_polled, r, NULL) != 0) {
		fail(r, RECONCILE_ERROR, "the database is unavailable");
		next_guild(r);
	}
	free(keys);
}

static void wait_rows(struct reconcile *r)
{
	r->waiting = 1;
	uv_timer_start(&r->timer, on_poll_timer, r->o.poll_ms, 0);
}

static void on_polled(PGresult *res, const struct err *err, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r))
		return;
	if (err) {
		fail(r, RECONCILE_ERROR, "cannot read the outbox: %s", err->msg);
		next_guild(r);
		return;
	}
	if (strtol(PQgetvalue(res, 0, 0), NULL, 10) > 0) {
		wait_rows(r);
		return;
	}
	if (strtol(PQgetvalue(res, 0, 1), NULL, 10) > 0) {
		fail(r, RECONCILE_ERROR, "guild %s: %s action(s) failed and were parked: %s",
		     r->g->guild_id, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		say(r, "  error: %s\n", r->msg);
		next_guild(r);
		return;
	}
	say(r, "  round %u: done\n", r->round);
	read_db(r);
}

static void on_enqueued(PGresult *res, const struct err *err, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r))
		return;
	if (err) {
		fail(r, RECONCILE_ERROR, "cannot enqueue the plan: %s", err->msg);
		next_guild(r);
		return;
	}
	long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	r->enqueued += (size_t)(n > 0 ? n : 0);
	say(r, "  round %u: %zu action(s), %ld new in the outbox\n", r->round,
	    json_array_size(r->keys), n);
	wait_rows(r);
}

static void planned(struct reconcile *r, json_t *plan)
{
	size_t i;
	json_t *a;
	if (r->round == 1) {
		if (r->o.json)
			json_array_append(json_object_get(r->report, "guilds"), plan);
		else
			print_plan(r, plan);
	}
	if (json_array_size(json_object_get(plan, "errors"))) {
		json_t *e = json_array_get(json_object_get(plan, "errors"), 0);
		fail(r, RECONCILE_ERROR, "guild %s: %s; nothing was changed", r->g->guild_id,
		     json_string_value(e));
		next_guild(r);
		return;
	}
	if (json_is_true(json_object_get(plan, "removals_held")) && r->o.held)
		r->o.held(r->g->guild_id, jstr(plan, "removal_set"),
		          (size_t)json_integer_value(json_object_get(plan, "removals")),
		          (size_t)json_integer_value(json_object_get(plan, "managed_members")),
		          r->g->removals_confirm_share, r->ud);
	if (json_is_true(json_object_get(plan, "removals_held")))
		fail(r, RECONCILE_HELD,
		     "guild %s: %lld role removal(s) among %lld managed member(s) exceed "
		     "removals.confirm_share; they wait for a confirmation (cohortbridge apply "
		     "--allow-removals)",
		     r->g->guild_id, json_integer_value(json_object_get(plan, "removals")),
		     json_integer_value(json_object_get(plan, "managed_members")));
	if (!r->o.apply) {
		next_guild(r);
		return;
	}
	json_t *batch = json_array();
	r->keys = json_array();
	json_array_foreach(json_object_get(plan, "actions"), i, a) {
		if (!json_is_true(json_object_get(a, "ready")) ||
		    json_is_true(json_object_get(a, "held")))
			continue;
		json_t *ob = json_object_get(a, "outbox");
		json_t *e = json_object();
		if (json_object_get(a, "rekey"))
			json_object_set(e, "rekey", json_object_get(a, "rekey"));
		if (json_object_get(a, "own"))
			json_object_set(e, "own", json_object_get(a, "own"));
		if (ob) {
			json_object_set(e, "outbox", ob);
			json_array_append(r->keys, json_object_get(ob, "key"));
		}
		json_array_append_new(batch, e);
	}
	if (!json_array_size(batch)) {
		json_decref(batch);
		size_t left = 0;
		json_array_foreach(json_object_get(plan, "actions"), i, a)
			left += !json_is_true(json_object_get(a, "held"));
		if (left)
			fail(r, RECONCILE_ERROR,
			     "guild %s: %zu action(s) still wait for objects that were not created",
			     r->g->guild_id, left);
		say(r, "  applied: %zu action(s) carried out in %u round(s)\n", r->enqueued,
		    r->round - 1);
		next_guild(r);
		return;
	}
	if (r->round > r->o.max_rounds) {
		json_decref(batch);
		fail(r, RECONCILE_ERROR, "guild %s: still not in step after %u rounds",
		     r->g->guild_id, r->o.max_rounds);
		next_guild(r);
		return;
	}
	char *js = json_dumps(batch, JSON_COMPACT);
	json_decref(batch);
	const char *p[] = {r->g->guild_id, js ? js : "[]"};
	if (db_query(r->db, "SELECT cb_reconcile_enqueue($1, $2::jsonb)", 2, p, on_enqueued, r,
	             NULL) != 0) {
		fail(r, RECONCILE_ERROR, "the database is unavailable");
		next_guild(r);
	}
	free(js);
}

static void on_members(const struct rest_result *res, void *ud);

static void get_members(struct reconcile *r)
{
	struct err err = {0};
	const char *args[] = {r->g->guild_id, r->after, NULL};
	if (rest_send(r->rest, "GET", "/guilds/{guild_id}/members?limit=1000&after={after}", args,
	              NULL, NULL, 0, on_members, r, &err) != 0) {
		fail(r, RECONCILE_ERROR, "cannot read the members: %s", err.msg);
		next_guild(r);
	}
}

/* A REST read that failed ends this guild's run: no plan from half a picture. */
static int read_failed(struct reconcile *r, const struct rest_result *res, const char *what)
{
	if (res->status == 200 && (json_is_array(res->body) || json_is_object(res->body)))
		return 0;
	fail(r, RECONCILE_ERROR, "guild %s: cannot read its %s from Discord: %s", r->g->guild_id,
	     what, res->err.msg[0] ? res->err.msg : "unexpected answer");
	say(r, "guild %s: error: %s\n", r->g->guild_id, r->msg);
	next_guild(r);
	return 1;
}

static void on_members(const struct rest_result *res, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r) || read_failed(r, res, "members"))
		return;
	size_t i, n = json_array_size(res->body);
	json_t *m;
	json_array_foreach(res->body, i, m) {
		json_array_append(r->members, m);
		snprintf(r->after, sizeof(r->after), "%s", jstr(json_object_get(m, "user"), "id"));
	}
	if (n == 1000) {
		get_members(r);
		return;
	}
	json_t *plan = compute(r);
	if (!plan) {
		fail(r, RECONCILE_ERROR, "out of memory");
		next_guild(r);
		return;
	}
	planned(r, plan);
	json_decref(plan);
}

static void on_channels(const struct rest_result *res, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r) || read_failed(r, res, "channels"))
		return;
	r->channels = json_incref(res->body);
	r->members = json_array();
	snprintf(r->after, sizeof(r->after), "0");
	get_members(r);
}

static void on_roles(const struct rest_result *res, void *ud)
{
	struct reconcile *r = ud;
	struct err err = {0};
	if (gone(r) || read_failed(r, res, "roles"))
		return;
	r->roles = json_incref(res->body);
	const char *args[] = {r->g->guild_id, NULL};
	if (rest_send(r->rest, "GET", "/guilds/{guild_id}/channels", args, NULL, NULL, 0,
	              on_channels, r, &err) != 0) {
		fail(r, RECONCILE_ERROR, "cannot read the channels: %s", err.msg);
		next_guild(r);
	}
}

static void get_roles(struct reconcile *r)
{
	struct err err = {0};
	const char *args[] = {r->g->guild_id, NULL};
	if (rest_send(r->rest, "GET", "/guilds/{guild_id}/roles", args, NULL, NULL, 0, on_roles, r,
	              &err) != 0) {
		fail(r, RECONCILE_ERROR, "cannot read the roles: %s", err.msg);
		next_guild(r);
	}
}

static void on_me(const struct rest_result *res, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r) || read_failed(r, res, "bot user"))
		return;
	snprintf(r->bot_id, sizeof(r->bot_id), "%s",
	         jstr(res->body, "id") ? jstr(res->body, "id") : "");
	get_roles(r);
}

static void on_db_state(PGresult *res, const struct err *err, void *ud)
{
	struct reconcile *r = ud;
	if (gone(r))
		return;
	if (err || PQntuples(res) != 1) {
		fail(r, RECONCILE_ERROR, "cannot read the roster and owned objects: %s",
		     err ? err->msg : "no answer");
		next_guild(r);
		return;
	}
	r->dbstate = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!r->dbstate) {
		fail(r, RECONCILE_ERROR, "unreadable database state");
		next_guild(r);
		return;
	}
	if (!r->bot_id[0]) {
		struct err e = {0};
		if (rest_send(r->rest, "GET", "/users/@me", NULL, NULL, NULL, 0, on_me, r, &e) !=
		    0) {
			fail(r, RECONCILE_ERROR, "cannot read the bot user: %s", e.msg);
			next_guild(r);
		}
		return;
	}
	get_roles(r);
}

/* One round: what PostgreSQL says, in one statement; then what Discord holds. */
static void read_db(struct reconcile *r)
{
	free_round(r);
	r->round++;
	const char *p[] = {r->g->guild_id};
	if (db_query(
	        r->db,
	        "SELECT json_build_object("
	        "'groups', (SELECT coalesce(json_agg(g), '[]') FROM (SELECT source, kind, "
	        "group_id, "
	        "city, program, cohort, count(*) FILTER (WHERE status = 'active') AS active "
	        "FROM memberships GROUP BY 1, 2, 3, 4, 5, 6) g), "
	        "'regs', (SELECT coalesce(json_agg(x), '[]') FROM (SELECT r.user_id, r.source, "
	        "m.kind, m.group_id, m.city, m.program, m.cohort FROM registrations r LEFT JOIN "
	        "memberships m ON m.source = r.source AND m.person = r.person AND "
	        "m.status = 'active' WHERE r.guild_id = $1) x), "
	        "'failing', (SELECT coalesce(json_agg(source), '[]') FROM source_state WHERE "
	        "failing), "
	        "'owned', (SELECT coalesce(json_agg(o), '[]') FROM (SELECT kind, key, discord_id, "
	        "name, parent_id, created_by_bridge, archived FROM owned_objects WHERE "
	        "guild_id = $1) o))::text",
	        1, p, on_db_state, r, NULL) != 0) {
		fail(r, RECONCILE_ERROR, "the database is unavailable");
		next_guild(r);
	}
}

static void next_guild(struct reconcile *r)
{
	free_round(r);
	if (r->cancelled) {
		finish(r);
		return;
	}
	while (r->gi < r->maps->nguilds) {
		const struct mappings_guild *g = &r->maps->guilds[r->gi++];
		if (r->o.guild && strcmp(r->o.guild, g->guild_id) != 0)
			continue;
		r->g = g;
		r->matched++;
		r->round = 0;
		r->enqueued = 0;
		read_db(r);
		return;
	}
	if (!r->matched)
		fail(r, RECONCILE_ERROR,
		     r->o.guild ? "no mapping file describes guild %s"
		                : "the mappings describe no guild%s",
		     r->o.guild ? r->o.guild : "");
	finish(r);
}

static void on_start(uv_timer_t *t)
{
	next_guild(t->data);
}

struct reconcile *reconcile_start(uv_loop_t *loop, struct db *db, struct rest *rest,
                                  const struct mappings *maps, const struct reconcile_opts *o,
                                  reconcile_done_cb done, void *ud)
{
	struct reconcile *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	r->db = db;
	r->rest = rest;
	r->maps = maps;
	r->o = *o;
	if (!r->o.max_rounds)
		r->o.max_rounds = 6;
	if (!r->o.poll_ms)
		r->o.poll_ms = 200;
	r->done = done;
	r->ud = ud;
	r->report = json_pack("{s:[]}", "guilds");
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_start, 0, 0);
	return r;
}

void reconcile_cancel(struct reconcile *r)
{
	if (!r || r->cancelled)
		return;
	r->cancelled = 1;
	if (r->waiting || uv_is_active((uv_handle_t *)&r->timer)) {
		uv_timer_stop(&r->timer);
		finish(r);
	}
}
