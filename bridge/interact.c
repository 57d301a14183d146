#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interact.h"
#include "log.h"

#define ADMINISTRATOR (1ull << 3)
#define EPHEMERAL     64

enum ix_state { S_NEW, S_DEFERRING, S_DEFERRED, S_DONE };

struct ix {
	struct ix_router *r;
	struct ix *prev, *next;
	const struct ix_def *def;
	json_t *in;
	char id[32], token[512];
	const char *user_id, *guild_id, *custom_id;
	size_t route_len; /* where the custom_id's arguments begin */
	enum ix_state state;
	json_t *held;  /* an answer that came while the deferral was in flight */
	int held_kind; /* 0 reply, 1 failure */
	uint64_t arrived;
	/* Freed when the timer is closed, the deferral's request has come back, and the handler has
	 * given its answer: a handler waiting on the database may answer after the router ended
	 * the interaction (shutdown, a give-up), and must still find it. */
	int deferring, closed, handler_done;
	struct db *db; /* the router's, copied: handlers may outlive the router */
	struct cache *cache;
	void *ud;
	uv_timer_t timer;
};

struct ix_router {
	uv_loop_t *loop;
	struct rest *rest;
	struct db *db;
	struct cache *cache;
	const struct ix_def *defs;
	size_t ndefs;
	unsigned defer_ms, give_up_ms;
	char **staff;
	char app_id[32];
	json_t *unsynced; /* guilds waiting for the application id */
	void *ud;
	struct ix *live;
	size_t npending;
	int freeing;
	struct sync *syncs; /* command registrations under way */
	ix_text_fn text;
};

static void set_staff(struct ix_router *r, const char *const *staff)
{
	for (size_t i = 0; r->staff && r->staff[i]; i++)
		free(r->staff[i]);
	free(r->staff);
	size_t n = 0;
	while (staff && staff[n])
		n++;
	r->staff = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; r->staff && i < n; i++)
		if (!(r->staff[i] = strdup(staff[i])))
			break;
}

struct ix_router *ix_router_new(uv_loop_t *loop, struct rest *rest, struct db *db,
                                struct cache *cache, const struct ix_def *defs, size_t ndefs,
                                const struct ix_opts *o, void *ud)
{
	struct ix_router *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	r->rest = rest;
	r->db = db;
	r->cache = cache;
	r->defs = defs;
	r->ndefs = ndefs;
	r->defer_ms = o && o->defer_ms ? o->defer_ms : 2000;
	r->give_up_ms = o && o->give_up_ms ? o->give_up_ms : 600000;
	r->ud = ud;
	r->unsynced = json_array();
	set_staff(r, o ? o->staff_roles : NULL);
	return r;
}

void ix_router_set_app(struct ix_router *r, const char *application_id)
{
	size_t i;
	json_t *g;
	snprintf(r->app_id, sizeof(r->app_id), "%s", application_id ? application_id : "");
	if (!r->app_id[0])
		return;
	json_array_foreach(r->unsynced, i, g)
		ix_sync_commands(r, json_string_value(g));
	json_array_clear(r->unsynced);
}

void ix_router_set_staff(struct ix_router *r, const char *const *staff_roles)
{
	set_staff(r, staff_roles);
}

size_t ix_pending(const struct ix_router *r)
{
	return r->npending;
}

/* --- ending an interaction ------------------------------------------------------------------ */

static void free_ix(struct ix *ix)
{
	json_decref(ix->in);
	json_decref(ix->held);
	free(ix);
}

static void maybe_free(struct ix *ix)
{
	if (ix->closed && !ix->deferring && ix->handler_done)
		free_ix(ix);
}

static void on_closed(uv_handle_t *h)
{
	struct ix *ix = h->data;
	ix->closed = 1;
	maybe_free(ix);
}

static void finish(struct ix *ix)
{
	struct ix_router *r = ix->r;
	if (ix->state == S_DONE)
		return;
	ix->state = S_DONE;
	if (ix->prev)
		ix->prev->next = ix->next;
	else
		r->live = ix->next;
	if (ix->next)
		ix->next->prev = ix->prev;
	r->npending--;
	uv_timer_stop(&ix->timer);
	uv_close((uv_handle_t *)&ix->timer, on_closed);
}

struct sent {
	char what[48], route[48];
};

static void on_sent(const struct rest_result *res, void *ud)
{
	struct sent *s = ud;
	if (res->status < 200 || res->status >= 300)
		log_warn("interactions", "an answer was not accepted", "what", s->what, "route",
		         s->route, "error", res->err.msg);
	free(s);
}

/* The interaction callback (type and data) or, after a deferral, an edit of its response. */
static int send_answer(struct ix *ix, int type, json_t *data, rest_cb cb, void *cbud)
{
	struct ix_router *r = ix->r;
	struct err e = {0};
	int rc;
	if (ix->state == S_DEFERRED) {
		/* the interaction names its application; the router learns it only from READY */
		const char *app = json_string_value(json_object_get(ix->in, "application_id"));
		const char *args[] = {app ? app : r->app_id, ix->token, NULL};
		rc = rest_send(r->rest, "PATCH",
		               "/webhooks/{application_id}/{token}/messages/@original", args, data,
		               NULL, 0, cb, cbud, &e);
	} else {
		const char *args[] = {ix->id, ix->token, NULL};
		json_t *body = data ? json_pack("{s:i, s:O}", "type", type, "data", data)
		                    : json_pack("{s:i}", "type", type);
		rc = rest_send(r->rest, "POST", "/interactions/{interaction_id}/{token}/callback",
		               args, body, NULL, REST_INTERACTION, cb, cbud, &e);
		json_decref(body);
	}
	if (rc != 0)
		log_warn("interactions", "cannot answer", "error", e.msg);
	return rc;
}

static void answer(struct ix *ix, int type, json_t *data, const char *what)
{
	struct sent *s = calloc(1, sizeof(*s));
	if (s) {
		snprintf(s->what, sizeof(s->what), "%s", what);
		snprintf(s->route, sizeof(s->route), "%s", ix->def ? ix->def->name : "?");
	}
	if (send_answer(ix, type, data, s ? on_sent : NULL, s) != 0)
		free(s);
}

/* An ephemeral message in the guild's words (its mappings' text for key). */
static json_t *apology(const struct ix *ix, enum mappings_text key)
{
	const struct ix_router *r = ix->r;
	const char *text = r->text ? r->text(r->ud, ix->guild_id, key) : NULL;
	return json_pack("{s:s, s:i, s:{s:[]}}", "content",
	                 text ? text : mappings_text_get(NULL, key), "flags", EPHEMERAL,
	                 "allowed_mentions", "parse");
}

static void fail_with(struct ix *ix, enum mappings_text key, const char *why)
{
	log_warn("interactions", "interaction failed", "route", ix->def ? ix->def->name : "?",
	         "user", ix->user_id ? ix->user_id : "?", "why", why);
	json_t *m = apology(ix, key);
	answer(ix, 4, m, "failure");
	json_decref(m);
	finish(ix);
}

/* --- deferral --------------------------------------------------------------------------- */

static void on_give_up(uv_timer_t *t)
{
	struct ix *ix = t->data;
	fail_with(ix, MT_ERROR, "the handler did not answer in time");
}

static void on_deferred(const struct rest_result *res, void *ud)
{
	struct ix *ix = ud;
	ix->deferring = 0;
	if (ix->closed) {
		maybe_free(ix);
		return;
	}
	if (ix->state == S_DONE) /* the router went away meanwhile; the close frees it */
		return;
	if (res->status < 200 || res->status >= 300) {
		log_warn("interactions", "a deferral was not accepted", "route", ix->def->name,
		         "error", res->err.msg);
		/* nothing more can reach the user through this interaction */
		ix->state = S_DEFERRED;
		finish(ix);
		return;
	}
	ix->state = S_DEFERRED;
	if (ix->held) {
		json_t *held = ix->held;
		ix->held = NULL;
		if (ix->held_kind)
			fail_with(ix, MT_ERROR, json_string_value(held));
		else {
			answer(ix, 4, held, "reply");
			finish(ix);
		}
		json_decref(held);
		return;
	}
	uv_timer_start(&ix->timer, on_give_up, ix->r->give_up_ms, 0);
}

static void on_defer_timer(uv_timer_t *t)
{
	struct ix *ix = t->data;
	int type = (ix->def->flags & IX_UPDATE) && ix->def->type != IX_COMMAND ? 6 : 5;
	json_t *data = type == 5 && (ix->def->flags & IX_EPHEMERAL)
	                   ? json_pack("{s:i}", "flags", EPHEMERAL)
	                   : NULL;
	ix->state = S_DEFERRING;
	ix->deferring = 1;
	log_debug("interactions", "deferred", "route", ix->def->name);
	if (send_answer(ix, type, data, on_deferred, ix) != 0) {
		ix->deferring = 0;
		finish(ix);
	}
	json_decref(data);
}

/* --- for handlers -------------------------------------------------------------------------- */

void *ix_ud(const struct ix *ix)
{
	return ix->ud;
}

json_t *ix_data(const struct ix *ix)
{
	return ix->in;
}

const char *ix_user_id(const struct ix *ix)
{
	return ix->user_id;
}

const char *ix_guild_id(const struct ix *ix)
{
	return ix->guild_id;
}

struct db *ix_db(const struct ix *ix)
{
	return ix->db;
}

struct cache *ix_cache(const struct ix *ix)
{
	return ix->cache;
}

json_t *ix_option(const struct ix *ix, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(json_object_get(ix->in, "data"), "options"), i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")) ?: "", name) == 0)
			return json_object_get(o, "value");
	}
	return NULL;
}

const char *ix_field(const struct ix *ix, const char *custom_id)
{
	size_t i, k;
	json_t *row, *c;
	json_array_foreach(json_object_get(json_object_get(ix->in, "data"), "components"), i, row) {
		json_array_foreach(json_object_get(row, "components"), k, c) {
			if (strcmp(json_string_value(json_object_get(c, "custom_id")) ?: "",
			           custom_id) == 0)
				return json_string_value(json_object_get(c, "value"));
		}
	}
	return NULL;
}

json_t *ix_values(const struct ix *ix)
{
	return json_object_get(json_object_get(ix->in, "data"), "values");
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int ix_arg(const struct ix *ix, int k, char *buf, size_t cap)
{
	if (!ix->custom_id || k < 0 || !cap)
		return -1;
	const char *p = ix->custom_id + ix->route_len;
	for (int i = 0; i <= k; i++) {
		if (*p != ':')
			return -1;
		p++;
		if (i < k)
			p += strcspn(p, ":");
	}
	size_t n = 0;
	while (*p && *p != ':') {
		int c = (unsigned char)*p++;
		if (c == '%') {
			int hi = hexval(p[0]), lo = hi >= 0 ? hexval(p[1]) : -1;
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		}
		if (n + 1 >= cap)
			return -1;
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return (int)n;
}

int ix_custom_id(char *buf, size_t cap, const char *route, const char *const *args)
{
	size_t n = strlen(route), lim = cap < 101 ? cap : 101;
	if (n >= lim)
		return -1;
	memcpy(buf, route, n);
	for (size_t i = 0; args && args[i]; i++) {
		if (n + 1 >= lim)
			return -1;
		buf[n++] = ':';
		for (const char *s = args[i]; *s; s++) {
			if (*s == ':' || *s == '%') {
				if (n + 3 >= lim)
					return -1;
				n += (size_t)snprintf(buf + n, 4, "%%%02X", (unsigned char)*s);
			} else {
				if (n + 1 >= lim)
					return -1;
				buf[n++] = *s;
			}
		}
	}
	buf[n] = '\0';
	return (int)n;
}

static json_t *with_defaults(json_t *message, unsigned flags)
{
	if (!json_is_object(message)) {
		json_decref(message);
		return NULL;
	}
	if (!json_object_get(message, "allowed_mentions"))
		json_object_set_new(message, "allowed_mentions", json_pack("{s:[]}", "parse"));
	if ((flags & IX_EPHEMERAL) && !json_object_get(message, "flags"))
		json_object_set_new(message, "flags", json_integer(EPHEMERAL));
	return message;
}

void ix_reply(struct ix *ix, json_t *message)
{
	ix->handler_done = 1;
	if (ix->state == S_DONE) {
		json_decref(message);
		maybe_free(ix);
		return;
	}
	message = with_defaults(message, ix->def->flags);
	if (!message) {
		ix_fail(ix, "the handler's answer was not a message");
		return;
	}
	if (ix->state == S_DEFERRING) {
		json_decref(ix->held);
		ix->held = message;
		ix->held_kind = 0;
		uv_timer_stop(&ix->timer);
		return;
	}
	int type = (ix->def->flags & IX_UPDATE) && ix->def->type != IX_COMMAND ? 7 : 4;
	answer(ix, type, message, "reply");
	json_decref(message);
	finish(ix);
}

void ix_modal(struct ix *ix, json_t *modal)
{
	ix->handler_done = 1;
	if (ix->state == S_DONE) {
		json_decref(modal);
		maybe_free(ix);
		return;
	}
	if (ix->state != S_NEW || ix->def->type == IX_MODAL_SUBMIT) {
		/* Discord refuses a modal after a deferral or in answer to a modal */
		json_decref(modal);
		ix_fail(ix, "a modal cannot answer this interaction any more");
		return;
	}
	answer(ix, 9, modal, "modal");
	json_decref(modal);
	finish(ix);
}

void ix_fail(struct ix *ix, const char *why)
{
	ix->handler_done = 1;
	if (ix->state == S_DONE) {
		maybe_free(ix);
		return;
	}
	if (ix->state == S_DEFERRING) {
		json_decref(ix->held);
		ix->held = json_string(why ? why : "failed");
		ix->held_kind = 1;
		uv_timer_stop(&ix->timer);
		return;
	}
	fail_with(ix, MT_ERROR, why ? why : "failed");
}

/* --- routing ------------------------------------------------------------------------------- */

static const struct ix_def *route(const struct ix_router *r, int type, const char *name,
                                  size_t *len)
{
	const struct ix_def *best = NULL;
	size_t bl = 0;
	for (size_t i = 0; name && i < r->ndefs; i++) {
		const struct ix_def *d = &r->defs[i];
		size_t n = strlen(d->name);
		if ((int)d->type != type)
			continue;
		if (type == IX_COMMAND) {
			if (strcmp(d->name, name) == 0)
				return d;
			continue;
		}
		if (strncmp(name, d->name, n) == 0 && (name[n] == '\0' || name[n] == ':') &&
		    (!best || n > bl)) {
			best = d;
			bl = n;
		}
	}
	*len = bl;
	return best;
}

static int is_staff(const struct ix_router *r, json_t *member, const char *guild_id)
{
	if (!member)
		return 0;
	const char *perm = json_string_value(json_object_get(member, "permissions"));
	if (perm && (strtoull(perm, NULL, 10) & ADMINISTRATOR))
		return 1;
	uint64_t gid = guild_id ? strtoull(guild_id, NULL, 10) : 0;
	size_t i;
	json_t *role;
	json_array_foreach(json_object_get(member, "roles"), i, role) {
		const char *rid = json_string_value(role);
		for (size_t k = 0; rid && r->staff && r->staff[k]; k++) {
			const char *s = r->staff[k];
			if (strcmp(s, rid) == 0)
				return 1;
			uint64_t byname = r->cache ? cache_role_by_name(r->cache, gid, s) : 0;
			if (byname && byname == strtoull(rid, NULL, 10))
				return 1;
		}
	}
	return 0;
}

void ix_dispatch(struct ix_router *r, json_t *in)
{
	int type = (int)json_integer_value(json_object_get(in, "type"));
	json_t *data = json_object_get(in, "data");
	const char *id = json_string_value(json_object_get(in, "id"));
	const char *token = json_string_value(json_object_get(in, "token"));
	if (!id || !token || strlen(id) >= sizeof(((struct ix *)0)->id) ||
	    strlen(token) >= sizeof(((struct ix *)0)->token) || r->freeing) {
		log_warn("interactions", "an interaction without a usable id or token was ignored");
		return;
	}
	struct ix *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return;
	ix->r = r;
	ix->in = json_incref(in);
	memcpy(ix->id, id, strlen(id) + 1);
	memcpy(ix->token, token, strlen(token) + 1);
	ix->arrived = uv_now(r->loop);
	ix->db = r->db;
	ix->cache = r->cache;
	ix->ud = r->ud;
	ix->handler_done = 1; /* until a handler is called */
	json_t *member = json_object_get(in, "member");
	ix->user_id =
	    json_string_value(json_object_get(json_object_get(member ? member : in, "user"), "id"));
	ix->guild_id = json_string_value(json_object_get(in, "guild_id"));
	uv_timer_init(r->loop, &ix->timer);
	ix->timer.data = ix;
	ix->next = r->live;
	if (r->live)
		r->live->prev = ix;
	r->live = ix;
	r->npending++;

	if (type == 4) { /* autocomplete: none of ours offers it yet */
		json_t *d = json_pack("{s:[]}", "choices");
		answer(ix, 8, d, "autocomplete");
		json_decref(d);
		finish(ix);
		return;
	}
	const char *name =
	    json_string_value(json_object_get(data, type == IX_COMMAND ? "name" : "custom_id"));
	ix->def = route(r, type, name, &ix->route_len);
	if (type != IX_COMMAND)
		ix->custom_id = name;
	if (!ix->def) {
		fail_with(ix, MT_UNAVAILABLE,
		          name ? "no handler for it" : "an interaction of an unknown kind");
		return;
	}
	if ((ix->def->flags & IX_STAFF) && !is_staff(r, member, ix->guild_id)) {
		log_info("interactions", "a staff command was refused", "route", ix->def->name,
		         "user", ix->user_id ? ix->user_id : "?");
		json_t *m = apology(ix, MT_STAFF_ONLY);
		answer(ix, 4, m, "refusal");
		json_decref(m);
		finish(ix);
		return;
	}
	log_debug("interactions", "handling", "route", ix->def->name);
	ix->handler_done = 0;
	ix->def->handler(ix);
	/* the handler may have answered (and ix may be closing, not yet freed) */
	if (ix->state != S_NEW)
		return;
	if (ix->def->flags & IX_MODAL) {
		/* a modal handler answers before it returns or not at all */
		ix->handler_done = 1;
		fail_with(ix, MT_ERROR, "a modal handler returned without opening its modal");
		return;
	}
	uint64_t spent = uv_now(r->loop) - ix->arrived;
	uv_timer_start(&ix->timer, on_defer_timer, spent < r->defer_ms ? r->defer_ms - spent : 0,
	               0);
}

/* --- command registration ------------------------------------------------------------------ */

json_t *ix_commands_json(const struct ix_router *r)
{
	json_t *all = json_array();
	for (size_t i = 0; i < r->ndefs; i++) {
		const struct ix_def *d = &r->defs[i];
		if (d->type != IX_COMMAND)
			continue;
		json_t *c =
		    json_pack("{s:s, s:s, s:i, s:[i]}", "name", d->name, "description",
		              d->description ? d->description : d->name, "type", 1, "contexts", 0);
		if (d->options) {
			json_t *o = json_loads(d->options, 0, NULL);
			if (!json_is_array(o))
				log_error("interactions",
				          "a command's options are not a JSON array", "command",
				          d->name);
			else
				json_object_set(c, "options", o);
			json_decref(o);
		}
		if (d->flags & IX_STAFF)
			json_object_set_new(c, "default_member_permissions", json_string("0"));
		json_array_append_new(all, c);
	}
	return all;
}

/* FNV-1a, 64 bits: enough to tell one command set from another. */
static void hash_text(const char *s, char out[17])
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* A guild's command registration: a read of the stored hash, then maybe a PUT. The router
 * may be freed (shutdown) while either is under way: it then leaves r NULL and the callbacks
 * only free the sync. */
struct sync {
	struct ix_router *r;
	struct sync *next;
	char guild[32], hash[17];
	json_t *body;
};

static void sync_free(struct sync *s)
{
	if (s->r)
		for (struct sync **p = &s->r->syncs; *p; p = &(*p)->next)
			if (*p == s) {
				*p = s->next;
				break;
			}
	json_decref(s->body);
	free(s);
}

static void on_hash_saved(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("interactions", "could not record the registered commands", "error",
		         err->msg);
}

static void on_registered(const struct rest_result *res, void *ud)
{
	struct sync *s = ud;
	if (!s->r) {
		sync_free(s);
		return;
	}
	if (res->status == 200) {
		const char *p[] = {s->guild, s->hash};
		log_info("interactions", "commands registered", "guild", s->guild, "hash", s->hash);
		db_query(s->r->db,
		         "INSERT INTO discord_commands (guild_id, hash) VALUES ($1, $2) "
		         "ON CONFLICT (guild_id) DO UPDATE SET hash = excluded.hash, "
		         "registered_at = now()",
		         2, p, on_hash_saved, NULL, NULL);
	} else {
		log_error("interactions", "cannot register the commands", "guild", s->guild,
		          "error", res->err.msg);
	}
	sync_free(s);
}

static void on_hash_read(PGresult *res, const struct err *err, void *ud)
{
	struct sync *s = ud;
	struct err e = {0};
	if (!s->r)
		goto done;
	if (err) {
		log_warn("interactions", "cannot read the registered commands' hash", "error",
		         err->msg);
		goto done;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), s->hash) == 0) {
		log_debug("interactions", "commands unchanged", "guild", s->guild);
		goto done;
	}
	const char *args[] = {s->r->app_id, s->guild, NULL};
	if (rest_send(s->r->rest, "PUT",
	              "/applications/{application_id}/guilds/{guild_id}/commands", args, s->body,
	              NULL, 0, on_registered, s, &e) == 0)
		return;
	log_warn("interactions", "cannot register the commands", "error", e.msg);
done:
	sync_free(s);
}

void ix_sync_commands(struct ix_router *r, const char *guild_id)
{
	if (!guild_id || strlen(guild_id) >= 32)
		return;
	if (!r->app_id[0]) {
		json_array_append_new(r->unsynced, json_string(guild_id));
		return;
	}
	struct sync *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->r = r;
	memcpy(s->guild, guild_id, strlen(guild_id) + 1);
	s->body = ix_commands_json(r);
	char *text = json_dumps(s->body, JSON_COMPACT | JSON_SORT_KEYS);
	hash_text(text ? text : "", s->hash);
	free(text);
	const char *p[] = {s->guild};
	struct err e = {0};
	if (db_query(r->db, "SELECT hash FROM discord_commands WHERE guild_id = $1", 1, p,
	             on_hash_read, s, &e) != 0) {
		log_warn("interactions", "cannot read the registered commands' hash", "error",
		         e.msg);
		json_decref(s->body);
		free(s);
		return;
	}
	s->next = r->syncs;
	r->syncs = s;
}

void ix_router_free(struct ix_router *r)
{
	if (!r)
		return;
	r->freeing = 1;
	while (r->live) {
		struct ix *ix = r->live;
		if (ix->state == S_DEFERRING) {
			/* its deferral is on the way: a second callback would be refused */
			log_warn("interactions", "interaction left deferred at shutdown", "route",
			         ix->def->name);
			finish(ix);
		} else {
			fail_with(ix, MT_RESTARTING, "shutting down");
		}
	}
	for (struct sync *s = r->syncs; s; s = s->next)
		s->r = NULL;
	for (size_t i = 0; r->staff && r->staff[i]; i++)
		free(r->staff[i]);
	free(r->staff);
	json_decref(r->unsynced);
	free(r);
}

void ix_router_set_text(struct ix_router *r, ix_text_fn text)
{
	if (r)
		r->text = text;
}
