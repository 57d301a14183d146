#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "commands.h"
#include "discord.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "registration.h"

#define SAVE_EVERY_MS 2000
#define SHARD         0

struct discord {
	uv_loop_t *loop;
	struct db *db;
	struct rest *rest;
	struct gw *gw;
	unsigned intents, global_limit, global_window_ms;
	int compress;
	char *token;
	char *gateway_url;
	unsigned identify_remaining, identify_reset_ms;
	discord_fatal_cb fatal;
	void *ud;
	const char *state;
	long saved_seq;
	struct cache *cache;
	struct ix_router *ix;
	struct reg *reg;
	struct staff *staff;
	json_t *chunk_retry; /* guild id -> when (loop ms) to ask for its members again */
	/* retry_timer serves the /gateway/bot retry before the gateway is up and the chunk
	 * retries after it; the two are never pending at once. */
	uv_timer_t save_timer, retry_timer;
	int stopping, handles;
};

static void fetch_gateway(struct discord *d);

static void on_saved(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("discord", "could not save the gateway session", "error", err->msg);
}

/* Keeps the session in PostgreSQL, so that a restart resumes instead of identifying. */
static void save_session(struct discord *d)
{
	char seq[24], shard[8];
	if (!d->gw || !gw_session_id(d->gw) || !gw_resume_url(d->gw) ||
	    gw_seq(d->gw) == d->saved_seq)
		return;
	d->saved_seq = gw_seq(d->gw);
	snprintf(seq, sizeof(seq), "%ld", d->saved_seq);
	snprintf(shard, sizeof(shard), "%d", SHARD);
	const char *p[] = {shard, gw_session_id(d->gw), seq, gw_resume_url(d->gw)};
	db_query(d->db,
	         "INSERT INTO gateway_sessions (shard_id, session_id, seq, resume_url) "
	         "VALUES ($1, $2, $3, $4) ON CONFLICT (shard_id) DO UPDATE SET "
	         "session_id = excluded.session_id, seq = excluded.seq, "
	         "resume_url = excluded.resume_url, updated_at = now()",
	         4, p, on_saved, d, NULL);
}

static void on_save_timer(uv_timer_t *t)
{
	save_session(t->data);
}

/* Asks for every member of a guild (op 8); the answer comes as GUILD_MEMBERS_CHUNK events. */
static void request_members(struct discord *d, const char *guild_id)
{
	if (!(d->intents & (1u << 1)) || !d->gw)
		return;
	char nonce[40];
	snprintf(nonce, sizeof(nonce), "m%s", guild_id);
	json_t *req = json_pack("{s:s, s:s, s:i, s:s}", "guild_id", guild_id, "query", "", "limit",
	                        0, "nonce", nonce);
	gw_send(d->gw, 8, req);
	json_decref(req);
}

static void on_chunk_retry(uv_timer_t *t);

/* Sets the retry timer to the earliest guild due for another members request. */
static void schedule_chunk_retries(struct discord *d)
{
	const char *gid;
	json_t *when;
	uint64_t now = uv_now(d->loop), next = UINT64_MAX;
	json_object_foreach(d->chunk_retry, gid, when) {
		uint64_t at = (uint64_t)json_integer_value(when);
		if (at < next)
			next = at;
	}
	if (next != UINT64_MAX)
		uv_timer_start(&d->retry_timer, on_chunk_retry, next > now ? next - now : 0, 0);
}

static void on_chunk_retry(uv_timer_t *t)
{
	struct discord *d = t->data;
	const char *gid;
	json_t *when;
	void *tmp;
	uint64_t now = uv_now(d->loop);
	json_object_foreach_safe(d->chunk_retry, tmp, gid, when) {
		if ((uint64_t)json_integer_value(when) <= now) {
			request_members(d, gid);
			json_object_del(d->chunk_retry, gid);
		}
	}
	schedule_chunk_retries(d);
}

/* A process that resumed a session gets no GUILD_CREATE: it reads its guilds over REST and
 * asks for their members, so that its cache is complete all the same. */
struct refill {
	struct discord *d;
	json_t *guild; /* the GUILD_CREATE it assembles */
	int waiting;
};

static void refill_done(struct refill *f)
{
	struct discord *d = f->d;
	if (!d->stopping) {
		cache_apply_json(d->cache, "GUILD_CREATE", f->guild);
		request_members(d, json_string_value(json_object_get(f->guild, "id")));
		ix_sync_commands(d->ix, json_string_value(json_object_get(f->guild, "id")));
		reg_guild_ready(d->reg, d->cache,
		                json_string_value(json_object_get(f->guild, "id")));
	}
	json_decref(f->guild);
	free(f);
}

static void on_refill_part(const struct rest_result *r, void *ud)
{
	struct refill *f = ud;
	if (r->status == 200 && json_is_array(r->body))
		json_object_set(f->guild, "channels", r->body);
	else if (r->status == 200 && json_is_object(r->body))
		json_object_set(f->guild, "roles", json_object_get(r->body, "roles"));
	else
		log_warn("discord", "cannot read a guild after resuming", "error", r->err.msg);
	if (--f->waiting == 0)
		refill_done(f);
}

static void on_my_guilds(const struct rest_result *r, void *ud)
{
	struct discord *d = ud;
	size_t i;
	json_t *g;
	if (r->status != 200 || d->stopping) {
		log_warn("discord", "cannot list the bot's guilds after resuming", "error",
		         r->err.msg);
		return;
	}
	json_array_foreach(r->body, i, g) {
		const char *gid = json_string_value(json_object_get(g, "id"));
		if (!gid)
			continue;
		struct refill *f = calloc(1, sizeof(*f));
		if (!f)
			return;
		f->d = d;
		f->guild =
		    json_pack("{s:s, s:[], s:[], s:[]}", "id", gid, "roles", "channels", "members");
		f->waiting = 2;
		const char *args[] = {gid, NULL};
		struct err e = {0};
		if (rest_send(d->rest, "GET", "/guilds/{guild_id}", args, NULL, NULL, 0,
		              on_refill_part, f, &e) ||
		    rest_send(d->rest, "GET", "/guilds/{guild_id}/channels", args, NULL, NULL, 0,
		              on_refill_part, f, &e)) {
			log_warn("discord", e.msg);
			json_decref(f->guild);
			free(f); /* nothing of it was queued, or the REST client is shutting down */
			return;
		}
	}
}

static void on_dispatch(void *ud, const char *t, const struct jtok *j, int data, long seq)
{
	struct discord *d = ud;
	metrics.gateway_dispatches++;
	cache_apply(d->cache, t, j, data);
	if (strcmp(t, "INTERACTION_CREATE") == 0) {
		json_t *in = jtok_json(j, data);
		if (in)
			ix_dispatch(d->ix, in);
		json_decref(in);
	} else if (strcmp(t, "GUILD_CREATE") == 0) {
		char gid[24];
		if (jtok_str(j, jtok_get(j, data, "id"), gid, sizeof(gid)) > 0) {
			request_members(d, gid);
			ix_sync_commands(d->ix, gid);
			reg_guild_ready(d->reg, d->cache, gid);
		}
	} else if (strcmp(t, "CHANNEL_CREATE") == 0 || strcmp(t, "CHANNEL_UPDATE") == 0) {
		/* the registration channel may be created after the guild came up */
		char gid[24];
		if (jtok_str(j, jtok_get(j, data, "guild_id"), gid, sizeof(gid)) > 0)
			reg_guild_ready(d->reg, d->cache, gid);
	} else if (strcmp(t, "GUILD_MEMBER_ADD") == 0) {
		char gid[24], uid[24];
		if (jtok_str(j, jtok_get(j, data, "guild_id"), gid, sizeof(gid)) > 0 &&
		    jtok_str(j, jtok_get(j, jtok_get(j, data, "user"), "id"), uid, sizeof(uid)) > 0)
			reg_member_joined(d->reg, gid, uid);
	} else if (strcmp(t, "READY") == 0) {
		char app[24];
		if (jtok_str(j, jtok_get(j, jtok_get(j, data, "application"), "id"), app,
		             sizeof(app)) > 0)
			ix_router_set_app(d->ix, app);
	} else if (strcmp(t, "RESUMED") == 0 && cache_guild_count(d->cache) == 0) {
		struct err e = {0};
		if (rest_send(d->rest, "GET", "/users/@me/guilds", NULL, NULL, NULL, 0,
		              on_my_guilds, d, &e))
			log_warn("discord", e.msg);
	} else if (strcmp(t, "RATE_LIMITED") == 0 &&
	           jtok_int(j, jtok_get(j, data, "opcode"), -1) == 8) {
		/* one all-members request per guild every 30 s: ask again when allowed */
		char gid[24];
		double after = jtok_real(j, jtok_get(j, data, "retry_after"), 30.0);
		if (jtok_str(j, jtok_get(j, jtok_get(j, data, "meta"), "guild_id"), gid,
		             sizeof(gid)) > 0) {
			uint64_t at = uv_now(d->loop) + (uint64_t)(after * 1000.0) + 100;
			json_object_set_new(d->chunk_retry, gid, json_integer((json_int_t)at));
			schedule_chunk_retries(d);
		}
	}
	size_t members = 0;
	for (size_t i = 0; i < cache_guild_count(d->cache); i++)
		members += cache_member_count(d->cache, cache_guild_id(d->cache, i));
	metrics.cache_members = members;
	metrics.cache_bytes = cache_bytes(d->cache);
}

static void on_state(void *ud, enum gw_state st, const char *why)
{
	struct discord *d = ud;
	switch (st) {
	case GW_CONNECTING:
		d->state = "connecting";
		break;
	case GW_READY:
		d->state = "ready";
		break;
	case GW_DOWN:
		d->state = "down";
		break;
	case GW_FATAL:
		d->state = "stopped";
		if (d->fatal && !d->stopping)
			d->fatal(d->ud, why);
		break;
	}
}

static void start_gateway(struct discord *d, const char *session, long seq, const char *resume)
{
	struct err err = {0};
	struct gw_opts o = {.url = d->gateway_url,
	                    .token = d->token,
	                    .intents = d->intents,
	                    .compress = d->compress,
	                    .identify_remaining = d->identify_remaining,
	                    .identify_reset_ms = d->identify_reset_ms};
	struct gw_handler h = {on_dispatch, on_state};
	d->gw = gw_new(d->loop, &o, &h, d, &err);
	if (!d->gw) {
		if (d->fatal)
			d->fatal(d->ud, err.msg);
		return;
	}
	if (session && resume) {
		gw_restore(d->gw, session, seq, resume);
		d->saved_seq = seq;
		log_info("discord", "resuming the saved gateway session");
	}
	if (gw_start(d->gw, &err) != 0 && d->fatal)
		d->fatal(d->ud, err.msg);
	uv_timer_start(&d->save_timer, on_save_timer, SAVE_EVERY_MS, SAVE_EVERY_MS);
}

static void on_session_loaded(PGresult *res, const struct err *err, void *ud)
{
	struct discord *d = ud;
	if (d->stopping)
		return;
	if (err || !res || PQntuples(res) == 0) {
		if (err)
			log_warn("discord", "could not read the saved gateway session", "error",
			         err->msg);
		start_gateway(d, NULL, 0, NULL);
		return;
	}
	start_gateway(d, PQgetvalue(res, 0, 0), strtol(PQgetvalue(res, 0, 1), NULL, 10),
	              PQgetvalue(res, 0, 2));
}

static void on_retry(uv_timer_t *t)
{
	fetch_gateway(t->data);
}

static void on_gateway_bot(const struct rest_result *r, void *ud)
{
	struct discord *d = ud;
	char shard[8];
	if (d->stopping)
		return;
	if (r->status == 401) {
		if (d->fatal)
			d->fatal(d->ud,
			         "Discord rejected DISCORD_TOKEN (401 Unauthorized): check the bot "
			         "token");
		return;
	}
	const char *url = json_string_value(json_object_get(r->body, "url"));
	if (r->status != 200 || !url) {
		log_warn("discord", "cannot get the gateway address; trying again in 5 s", "error",
		         r->err.msg[0] ? r->err.msg : "no url in the answer");
		uv_timer_start(&d->retry_timer, on_retry, 5000, 0);
		return;
	}
	json_t *limit = json_object_get(r->body, "session_start_limit");
	d->identify_remaining = (unsigned)json_integer_value(json_object_get(limit, "remaining"));
	d->identify_reset_ms = (unsigned)json_integer_value(json_object_get(limit, "reset_after"));
	free(d->gateway_url);
	d->gateway_url = strdup(url);
	snprintf(shard, sizeof(shard), "%d", SHARD);
	const char *p[] = {shard};
	if (db_query(d->db,
	             "SELECT session_id, seq, resume_url FROM gateway_sessions WHERE shard_id = $1",
	             1, p, on_session_loaded, d, NULL) != 0)
		start_gateway(d, NULL, 0, NULL);
}

/* The application's id, for commands and interaction webhooks: READY carries it too, but a
 * resumed session never sees a READY. */
static void on_application(const struct rest_result *r, void *ud)
{
	struct discord *d = ud;
	const char *id = json_string_value(json_object_get(r->body, "id"));
	if (r->status == 200 && id && d->ix)
		ix_router_set_app(d->ix, id);
	else if (r->status != 0)
		log_warn("discord", "cannot read the application", "error", r->err.msg);
}

static void fetch_gateway(struct discord *d)
{
	struct err err = {0};
	d->state = "connecting";
	if (rest_send(d->rest, "GET", "/applications/@me", NULL, NULL, NULL, 0, on_application, d,
	              &err))
		log_error("discord", err.msg);
	if (rest_send(d->rest, "GET", "/gateway/bot", NULL, NULL, NULL, 0, on_gateway_bot, d, &err))
		log_error("discord", err.msg);
}

struct discord *discord_start(uv_loop_t *loop, struct httpc *http, struct db *db,
                              const struct config *cfg, const char *token, discord_fatal_cb fatal,
                              void *ud, struct err *err)
{
	struct discord *d = calloc(1, sizeof(*d));
	if (!d || !(d->token = strdup(token))) {
		free(d);
		err_set(err, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->db = db;
	/* copied: a reload replaces the configuration under us */
	d->intents = cfg->discord_intents;
	d->compress = cfg->discord_compress;
	d->fatal = fatal;
	d->ud = ud;
	d->state = "starting";
	d->saved_seq = -1;
	d->cache = cache_new();
	d->chunk_retry = json_object();
	struct rest_opts o = {.base_url = cfg->discord_api_url,
	                      .token = token,
	                      .global_limit = cfg->discord_global_limit,
	                      .global_window_ms = cfg->discord_global_window_ms};
	d->rest = rest_new(loop, http, &o, err);
	struct ix_opts io = {.defer_ms = cfg->defer_ms,
	                     .staff_roles = (const char *const *)cfg->staff_roles};
	d->ix = d->rest
	            ? ix_router_new(loop, d->rest, db, d->cache, commands, commands_count, &io, d)
	            : NULL;
	if (!d->ix) {
		rest_free(d->rest);
		cache_free(d->cache);
		json_decref(d->chunk_retry);
		free(d->token);
		free(d);
		if (err && !err->msg[0])
			err_set(err, "out of memory");
		return NULL;
	}
	uv_timer_init(loop, &d->save_timer);
	uv_timer_init(loop, &d->retry_timer);
	d->save_timer.data = d->retry_timer.data = d;
	d->handles = 2;
	fetch_gateway(d);
	return d;
}

void discord_reload(struct discord *d, const struct config *cfg)
{
	if (d && d->ix)
		ix_router_set_staff(d->ix, (const char *const *)cfg->staff_roles);
}

const char *discord_state(const struct discord *d)
{
	return d ? d->state : "stopped";
}

int discord_ready(const struct discord *d)
{
	return d && strcmp(d->state, "ready") == 0;
}

/* The router's own messages in the guild's words. */
static const char *router_text(void *ud, const char *guild_id, enum mappings_text key)
{
	struct discord *d = ud;
	return reg_text(d->reg, guild_id, key);
}

void discord_set_registration(struct discord *d, struct reg *r)
{
	if (!d)
		return;
	d->reg = r;
	ix_router_set_text(d->ix, router_text);
}

struct reg *discord_registration(struct discord *d)
{
	return d ? d->reg : NULL;
}

void discord_set_staff(struct discord *d, struct staff *s)
{
	if (d)
		d->staff = s;
}

struct staff *discord_staff(struct discord *d)
{
	return d ? d->staff : NULL;
}

struct cache *discord_cache(struct discord *d)
{
	return d ? d->cache : NULL;
}

struct rest *discord_rest(struct discord *d)
{
	return d->rest;
}

static void on_closed(uv_handle_t *h)
{
	struct discord *d = h->data;
	d->handles--;
}

void discord_stop(struct discord *d)
{
	if (!d || d->stopping)
		return;
	d->stopping = 1;
	save_session(d);
	uv_close((uv_handle_t *)&d->save_timer, on_closed);
	uv_close((uv_handle_t *)&d->retry_timer, on_closed);
	if (d->gw)
		gw_close(d->gw);
	ix_router_free(d->ix);
	d->ix = NULL;
	rest_free(d->rest);
	d->rest = NULL;
	d->state = "stopped";
}

void discord_free(struct discord *d)
{
	if (!d)
		return;
	gw_free(d->gw);
	cache_free(d->cache);
	json_decref(d->chunk_retry);
	free(d->gateway_url);
	free(d->token);
	free(d);
}
