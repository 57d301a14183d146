#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"
#include "log.h"
#include "outbox.h"
#include "reconcile.h"
#include "staff.h"

struct confirm {
	struct staff *s;
	struct ix *ix;
	struct reconcile *run;
	size_t confirmed;
	char guild[32], user[32], set[24];
	struct confirm *next;
};

struct staff {
	uv_loop_t *loop;
	struct db *db;
	const struct config *cfg;
	const struct mappings *maps;
	struct rest *rest;
	struct cache *cache;
	struct confirm *runs;
	int checking, stopped;
};

struct staff *staff_new(uv_loop_t *loop, struct db *db)
{
	struct staff *s = calloc(1, sizeof(*s));
	if (s) {
		s->loop = loop;
		s->db = db;
	}
	return s;
}

static void give_up_runs(struct staff *s, const char *why)
{
	while (s->runs) {
		struct confirm *c = s->runs;
		s->runs = c->next;
		reconcile_cancel(c->run);
		ix_fail(c->ix, why);
		free(c);
	}
}

void staff_set(struct staff *s, const struct config *cfg, const struct mappings *maps,
               struct rest *rest, struct cache *cache)
{
	if (!s)
		return;
	if (maps != s->maps)
		give_up_runs(s, "the mappings were reloaded during a confirmation");
	s->cfg = cfg;
	s->maps = maps;
	s->rest = rest;
	s->cache = cache;
}

void staff_stop(struct staff *s)
{
	if (!s)
		return;
	s->stopped = 1;
	give_up_runs(s, "the bridge is stopping");
}

void staff_free(struct staff *s)
{
	free(s);
}

/* The audit channel's id in the guild, or 0 when there is none (yet). */
static unsigned long long audit_channel(struct staff *s, const struct mappings_guild *g)
{
	const char *name = g->registration.audit_channel;
	if (!name || !s->cache)
		return 0;
	return (unsigned long long)cache_channel_by_name(s->cache, strtoull(g->guild_id, NULL, 10),
	                                                 name);
}

static char *render(const struct mappings_guild *g, enum mappings_text key, const char *const *vars)
{
	struct err err = {0};
	char *t = mappings_render(mappings_text_get(g, key), vars, &err);
	if (!t)
		log_warn("staff", "a text could not be rendered", "key", mappings_text_key(key),
		         "error", err.msg);
	return t;
}

static void on_enqueued(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("staff", "could not enqueue a message for staff", "error", err->msg);
}

/* Enqueues [{"guild", "key", "channel", "text", "components"?, "after"?, "quiet"?}]: each
 * once; one with "after" only when the row of that key exists; one with "quiet" only when no
 * role removal of the guild is pending. */
static void enqueue(struct staff *s, json_t *msgs)
{
	if (!json_array_size(msgs) || s->stopped) {
		json_decref(msgs);
		return;
	}
	char *js = json_dumps(msgs, JSON_COMPACT);
	json_decref(msgs);
	const char *p[] = {js ? js : "[]"};
	db_query(
	    s->db,
	    "INSERT INTO outbox (guild_id, kind, key, payload) "
	    "SELECT (e->>'guild')::bigint, 'message_create', e->>'key', jsonb_build_object("
	    "'channel_id', e->>'channel', 'body', jsonb_build_object('content', "
	    "left(e->>'text', 2000), 'components', coalesce(e->'components', '[]'))) "
	    "FROM jsonb_array_elements($1::jsonb) e WHERE e->>'after' IS NULL OR EXISTS "
	    "(SELECT 1 FROM outbox o WHERE o.key = e->>'after') AND NOT (e ? 'quiet' AND EXISTS "
	    "(SELECT 1 FROM outbox o WHERE o.guild_id = (e->>'guild')::bigint AND o.kind = "
	    "'role_remove' AND o.state = 'pending')) ON CONFLICT (key) DO NOTHING",
	    1, p, on_enqueued, s, NULL);
	free(js);
}

/* --- roster sources ------------------------------------------------------------------------- */

static int is_roster(const struct config *cfg, const char *source)
{
	static const char *const types[] = {"roster_file", "canvas", "moodle", "pretix"};
	for (size_t i = 0; cfg && i < cfg->nsources; i++) {
		if (strcmp(cfg->sources[i].name, source) != 0)
			continue;
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			if (strcmp(cfg->sources[i].type, types[k]) == 0)
				return 1;
	}
	return 0;
}

static int same(const char *want, const char *source)
{
	return !want || strcmp(want, source) == 0; /* NULL: any source */
}

/* The guild's cohorts, registration or role rules read the source. */
static int uses(const struct mappings_guild *g, const char *source)
{
	for (size_t i = 0; i < g->registration.nsources; i++)
		if (strcmp(g->registration.sources[i], source) == 0)
			return 1;
	for (size_t i = 0; i < g->ncohorts; i++)
		for (size_t k = 0; k < g->cohorts[i].nmatches; k++)
			if (same(g->cohorts[i].matches[k].source, source))
				return 1;
	for (size_t i = 0; i < g->nsets; i++)
		if (same(g->sets[i].source, source))
			return 1;
	for (size_t i = 0; i < g->nrole_rules; i++)
		if (same(g->role_rules[i].source, source))
			return 1;
	return 0;
}

static void on_sources(PGresult *res, const struct err *err, void *ud)
{
	struct staff *s = ud;
	s->checking = 0;
	if (err || !res || !s->maps || s->stopped)
		return;
	json_t *msgs = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		const char *source = PQgetvalue(res, i, 0);
		int failing = PQgetvalue(res, i, 1)[0] == 't';
		const char *error = PQgetvalue(res, i, 2);
		const char *streak = PQgetvalue(res, i, 3);
		if (PQgetisnull(res, i, 3) || !is_roster(s->cfg, source))
			continue;
		for (size_t k = 0; k < s->maps->nguilds; k++) {
			const struct mappings_guild *g = &s->maps->guilds[k];
			unsigned long long ch = audit_channel(s, g);
			if (!ch || !uses(g, source))
				continue;
			char down[200], up[200], chs[24];
			snprintf(down, sizeof(down), "src-down:%s:%s:%s", g->guild_id, source,
			         streak);
			snprintf(up, sizeof(up), "src-up:%s:%s:%s", g->guild_id, source, streak);
			snprintf(chs, sizeof(chs), "%llu", ch);
			const char *vars[] = {"source", source, "error", error, NULL};
			char *text =
			    render(g, failing ? MT_SOURCE_FAILING : MT_SOURCE_RECOVERED, vars);
			if (!text)
				continue;
			json_t *m = json_pack("{s:s, s:s, s:s, s:s}", "guild", g->guild_id, "key",
			                      failing ? down : up, "channel", chs, "text", text);
			if (!failing) /* a recovery is told only where the failure was */
				json_object_set_new(m, "after", json_string(down));
			json_array_append_new(msgs, m);
			free(text);
		}
	}
	enqueue(s, msgs);
}

void staff_check_sources(struct staff *s)
{
	if (!s || s->checking || s->stopped || !s->maps || !s->maps->nguilds)
		return;
	s->checking = 1;
	/* the streak: the first failed sync after the last good one before the latest failure */
	if (db_query(
	        s->db,
	        "SELECT st.source, st.failing, coalesce(st.last_error, ''), "
	        "(SELECT min(f.id) FROM source_syncs f WHERE f.source = st.source AND NOT f.ok "
	        "AND f.id > coalesce((SELECT max(o.id) FROM source_syncs o WHERE o.source = "
	        "st.source AND o.ok AND o.id < (SELECT max(x.id) FROM source_syncs x WHERE "
	        "x.source = st.source AND NOT x.ok)), 0)) FROM source_state st",
	        0, NULL, on_sources, s, NULL) != 0)
		s->checking = 0;
}

/* --- held removals -------------------------------------------------------------------------- */

void staff_removals_held(struct staff *s, const char *guild, const char *removal_set,
                         size_t removals, size_t managed, double share)
{
	const struct mappings_guild *g = s && s->maps ? mappings_guild(s->maps, guild) : NULL;
	unsigned long long ch = g ? audit_channel(s, g) : 0;
	if (!ch) {
		log_warn("staff",
		         "role removals wait for a confirmation, and the guild has no audit "
		         "channel to ask in: run `cohortbridge apply --allow-removals`",
		         "guild", guild);
		return;
	}
	char count[24], total[24], pct[24], key[128], cid[100], chs[24];
	snprintf(count, sizeof(count), "%zu", removals);
	snprintf(total, sizeof(total), "%zu", managed);
	snprintf(pct, sizeof(pct), "%.0f%%", share * 100.0);
	snprintf(key, sizeof(key), "rm-held:%s:%s", guild, removal_set);
	snprintf(chs, sizeof(chs), "%llu", ch);
	const char *args[] = {removal_set, NULL};
	ix_custom_id(cid, sizeof(cid), "rm:ok", args);
	const char *vars[] = {"count", count, "total", total, "share", pct, NULL};
	char *text = render(g, MT_REMOVALS_CONFIRM, vars);
	if (!text)
		return;
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:[{s:i, s:[{s:i, s:i, s:s, s:s}]}]}", "guild",
	                      guild, "key", key, "channel", chs, "text", text, "components", "type",
	                      1, "components", "type", 2, "style", 4, "label",
	                      mappings_text_get(g, MT_REMOVALS_BUTTON), "custom_id", cid);
	free(text);
	/* not while confirmed removals are being carried out: a plan read half-way through is
	 * what is left of them, not a new set */
	json_object_set_new(m, "quiet", json_true());
	enqueue(s, json_pack("[o]", m));
}

static void on_confirm_held(const char *guild, const char *set, size_t removals, size_t managed,
                            double share, void *ud)
{
	struct confirm *c = ud;
	staff_removals_held(c->s, guild, set, removals, managed, share);
}

static void unlink_run(struct confirm *c)
{
	for (struct confirm **p = &c->s->runs; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

static void on_confirmed(int rc, const char *msg, void *ud)
{
	struct confirm *c = ud;
	const struct mappings_guild *g = mappings_guild(c->s->maps, c->guild);
	unlink_run(c);
	if (rc == RECONCILE_ERROR && !c->confirmed) {
		ix_fail(c->ix, msg);
	} else if (rc == RECONCILE_HELD) {
		char *t = render(g, MT_REMOVALS_OUTDATED, (const char *[]){NULL});
		ix_reply(c->ix, json_pack("{s:s, s:[]}", "content", t ? t : "", "components"));
		free(t);
	} else if (!c->confirmed) {
		ix_reply(c->ix, json_pack("{s:s, s:[]}", "content",
		                          "No role removals wait for a confirmation any more.",
		                          "components"));
	} else {
		char who[40], count[24];
		snprintf(who, sizeof(who), "<@%s>", c->user);
		snprintf(count, sizeof(count), "%zu", c->confirmed);
		const char *vars[] = {"user", who, "count", count, NULL};
		char *t = render(g, MT_REMOVALS_CONFIRMED, vars);
		log_info("staff", "role removals confirmed", "guild", c->guild, "user", c->user,
		         "removals", count);
		ix_reply(c->ix, json_pack("{s:s, s:[]}", "content", t ? t : "", "components"));
		free(t);
	}
	free(c);
}

void staff_ix_confirm(struct ix *ix)
{
	struct staff *s = discord_staff(ix_ud(ix));
	const char *guild = ix_guild_id(ix);
	char set[24];
	if (!s || !s->maps || !s->rest || s->stopped || !guild ||
	    ix_arg(ix, 0, set, sizeof(set)) < 0) {
		ix_fail(ix, "a removal confirmation that cannot be handled");
		return;
	}
	for (struct confirm *o = s->runs; o; o = o->next)
		if (strcmp(o->guild, guild) == 0) {
			ix_fail(ix, "a confirmation for this guild is already being applied");
			return;
		}
	struct confirm *c = calloc(1, sizeof(*c));
	if (!c) {
		ix_fail(ix, "out of memory");
		return;
	}
	c->s = s;
	c->ix = ix;
	snprintf(c->guild, sizeof(c->guild), "%s", guild);
	snprintf(c->user, sizeof(c->user), "%s", ix_user_id(ix) ? ix_user_id(ix) : "");
	snprintf(c->set, sizeof(c->set), "%s", set);
	struct reconcile_opts o = {.guild = c->guild,
	                           .apply = 1,
	                           .confirm = c->set,
	                           .confirmed = &c->confirmed,
	                           .held = on_confirm_held};
	c->run = reconcile_start(s->loop, s->db, s->rest, s->maps, &o, on_confirmed, c);
	if (!c->run) {
		free(c);
		ix_fail(ix, "out of memory");
		return;
	}
	c->next = s->runs;
	s->runs = c;
}
