#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "outbox.h"

struct outbox {
	uv_loop_t *loop;
	struct db *db;
	struct rest *rest;
	struct outbox_opts o;
	uv_timer_t timer, renew_timer;
	uint64_t due; /* when the timer fires (loop time) */
	unsigned inflight;
	struct job *jobs; /* in flight, for lease renewal */
	int claiming, again, stopping, closed;
};

/* One row being carried out. */
struct job {
	struct outbox *ob;
	struct job *prev, *next;
	char id[24];
	char *kind;
	json_t *payload;
	int attempts;
	char channel_id[32]; /* dm: the DM channel, once opened */
};

static void claim(struct outbox *ob);
static void on_timer(uv_timer_t *t);

static void job_free(struct job *j)
{
	struct outbox *ob = j->ob;
	ob->inflight--;
	if (j->prev)
		j->prev->next = j->next;
	else
		ob->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	free(j->kind);
	json_decref(j->payload);
	free(j);
	if (!ob->stopping && ob->inflight < ob->o.batch / 2)
		claim(ob);
}

static void on_marked(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_error("outbox", "could not record an outbox result", "error", err->msg);
}

/* Looks for work in ms unless the timer fires sooner. */
static void arm(struct outbox *ob, uint64_t ms)
{
	if (ob->stopping)
		return;
	uv_update_time(ob->loop);
	uint64_t at = uv_now(ob->loop) + ms;
	if (at >= ob->due)
		return;
	ob->due = at;
	uv_timer_start(&ob->timer, on_timer, ms, 0);
}

/* A retry is recorded: wake when it is due (the answer says in how many ms). */
static void on_retry_marked(PGresult *res, const struct err *err, void *ud)
{
	if (err) {
		on_marked(res, err, ud);
		return;
	}
	if (PQntuples(res) == 1) {
		long long ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		arm(ud, (uint64_t)(ms > 0 ? ms : 0) + 10);
	}
}

static void mark_done(struct job *j, json_t *result)
{
	char *r = result ? json_dumps(result, JSON_COMPACT) : NULL;
	const char *p[] = {j->id, r ? r : "{}"};
	if (json_object_get(j->payload, "own"))
		/* what the row created (or found) becomes the bridge's in the same statement that
		 * marks it done: a crash between the two would leave an object nobody owns */
		db_query(
		    j->ob->db,
		    "WITH d AS (UPDATE outbox SET state = 'done', result = $2::jsonb, "
		    "done_at = now(), claimed_until = NULL, last_error = NULL WHERE id = $1 "
		    "RETURNING payload) "
		    "INSERT INTO owned_objects AS o (guild_id, kind, key, discord_id, name, "
		    "parent_id, archived) SELECT coalesce(d.payload->>'guild_id', "
		    "d.payload->'own'->>'guild_id'), d.payload->'own'->>'kind', "
		    "d.payload->'own'->>'key', coalesce($2::jsonb->>'role_id', "
		    "$2::jsonb->>'channel_id', d.payload->>'channel_id'), "
		    "d.payload->'own'->>'name', d.payload->'own'->>'parent_id', "
		    "coalesce((d.payload->'own'->>'archived')::boolean, false) FROM d "
		    "ON CONFLICT (guild_id, kind, key) DO UPDATE SET discord_id = "
		    "coalesce(EXCLUDED.discord_id, o.discord_id), archived = EXCLUDED.archived, "
		    "updated_at = now()",
		    2, p, on_marked, NULL, NULL);
	else
		db_query(j->ob->db,
		         "UPDATE outbox SET state = 'done', result = $2::jsonb, done_at = now(), "
		         "claimed_until = NULL, last_error = NULL WHERE id = $1",
		         2, p, on_marked, NULL, NULL);
	free(r);
	metrics.outbox_done++;
	job_free(j);
}

static void mark_failed(struct job *j, const char *why, int permanent)
{
	char delay[24];
	if (j->ob->stopping) {
		/* cancelled by our own shutdown: give the row back as it was */
		const char *p[] = {j->id};
		db_query(
		    j->ob->db,
		    "UPDATE outbox SET claimed_until = NULL, attempts = greatest(attempts - 1, 0) "
		    "WHERE id = $1",
		    1, p, on_marked, NULL, NULL);
		job_free(j);
		return;
	}
	if (permanent || j->attempts >= (int)j->ob->o.max_attempts) {
		const char *p[] = {j->id, why};
		db_query(
		    j->ob->db,
		    "UPDATE outbox SET state = 'parked', last_error = $2, claimed_until = NULL "
		    "WHERE id = $1",
		    2, p, on_marked, NULL, NULL);
		metrics.outbox_parked++;
		log_warn("outbox", "action parked", "id", j->id, "kind", j->kind, "reason", why);
	} else {
		/* retry_ms, twice that, ... at most ten minutes; each between half and the whole,
		 * so that rows that failed together do not come back together */
		int shift = j->attempts > 1 ? j->attempts - 1 : 0;
		uint64_t base = (uint64_t)j->ob->o.retry_ms << (shift < 20 ? shift : 20);
		if (base > 600000)
			base = 600000;
		uint64_t ms = base / 2 + (uint64_t)(rand() % (int)(base / 2 + 1));
		snprintf(delay, sizeof(delay), "%llu", (unsigned long long)ms);
		const char *p[] = {j->id, delay, why};
		db_query(j->ob->db,
		         "UPDATE outbox SET next_at = now() + make_interval(secs => $2::int / "
		         "1000.0), claimed_until = NULL, last_error = $3 WHERE id = $1 "
		         "RETURNING ceil(extract(epoch FROM next_at - clock_timestamp()) * 1000)",
		         3, p, on_retry_marked, j->ob, NULL);
		metrics.outbox_retried++;
	}
	job_free(j);
}

/* 5xx, network errors and exhausted 429s come back later; other 4xx are parked. */
static int transient(const struct rest_result *r)
{
	return r->status == 0 || r->status == 429 || r->status >= 500;
}

static int dm_fallback(struct job *j);

static void on_simple(const struct rest_result *r, void *ud)
{
	struct job *j = ud;
	if (r->status >= 200 && r->status < 300) {
		json_t *res = json_object();
		const char *id = json_string_value(json_object_get(r->body, "id"));
		if (id && strcmp(j->kind, "channel_edit") != 0 && strcmp(j->kind, "role_edit") != 0)
			json_object_set_new(res,
			                    strcmp(j->kind, "channel_create") == 0 ? "channel_id"
			                    : strcmp(j->kind, "role_create") == 0  ? "role_id"
			                                                           : "message_id",
			                    json_string(id));
		mark_done(j, res);
		json_decref(res);
		return;
	}
	/* removing a role from someone who left is done, not failed */
	if (strcmp(j->kind, "role_remove") == 0 && r->status == 404) {
		mark_done(j, NULL);
		return;
	}
	if (strcmp(j->kind, "dm") == 0 && r->code == 50007 && dm_fallback(j))
		return;
	mark_failed(j, r->err.msg, !transient(r));
}

static int submit(struct job *j, const char *method, const char *route, const char *const *args,
                  json_t *body, const char *reason, rest_cb cb)
{
	struct err err = {0};
	if (rest_send(j->ob->rest, method, route, args, body, reason, 0, cb, j, &err) != 0) {
		mark_failed(j, err.msg, 0);
		return -1;
	}
	return 0;
}

/* A message's body with our nonce and, unless given, no mentions at all. */
static json_t *message_body(struct job *j)
{
	json_t *b = json_deep_copy(json_object_get(j->payload, "body"));
	char nonce[32];
	if (!json_is_object(b)) {
		json_decref(b);
		b = json_object();
	}
	snprintf(nonce, sizeof(nonce), "ob%s", j->id);
	json_object_set_new(b, "nonce", json_string(nonce));
	json_object_set_new(b, "enforce_nonce", json_true());
	if (!json_object_get(b, "allowed_mentions"))
		json_object_set_new(b, "allowed_mentions", json_pack("{s:[]}", "parse"));
	return b;
}

static void on_dm_channel(const struct rest_result *r, void *ud)
{
	struct job *j = ud;
	const char *cid = json_string_value(json_object_get(r->body, "id"));
	if (r->status != 200 || !cid) {
		mark_failed(j, r->err.msg, !transient(r));
		return;
	}
	json_t *b = message_body(j);
	const char *args[] = {cid, NULL};
	submit(j, "POST", "/channels/{channel_id}/messages", args, b, NULL, on_simple);
	json_decref(b);
}

/* The fallback's answer: done either way it went, with where the text went. */
static void on_fallback(const struct rest_result *r, void *ud)
{
	struct job *j = ud;
	if (r->status < 200 || r->status >= 300) {
		mark_failed(j, r->err.msg, !transient(r));
		return;
	}
	json_t *res = json_pack("{s:b, s:s*}", "fallback", 1, "message_id",
	                        json_string_value(json_object_get(r->body, "id")));
	mark_done(j, res);
	json_decref(res);
}

/* A member who does not take direct messages from the server (Discord's 50007) gets the text
 * where the payload's "fallback" says ({"channel_id", "body"}: a body posted there instead,
 * mentioning only that member). Returns 0 when the payload has no fallback. */
static int dm_fallback(struct job *j)
{
	json_t *fb = json_object_get(j->payload, "fallback");
	const char *args[] = {json_string_value(json_object_get(fb, "channel_id")), NULL};
	const char *user = json_string_value(json_object_get(j->payload, "user_id"));
	if (!args[0] || !user || !json_is_object(json_object_get(fb, "body")))
		return 0;
	json_t *b = json_deep_copy(json_object_get(fb, "body"));
	char nonce[32];
	snprintf(nonce, sizeof(nonce), "of%s", j->id);
	json_object_set_new(b, "nonce", json_string(nonce));
	json_object_set_new(b, "enforce_nonce", json_true());
	json_object_set_new(b, "allowed_mentions",
	                    json_pack("{s:[], s:[s]}", "parse", "users", user));
	log_info("outbox", "direct messages closed: posted in the channel instead", "id", j->id,
	         "channel", args[0]);
	submit(j, "POST", "/channels/{channel_id}/messages", args, b, NULL, on_fallback);
	json_decref(b);
	return 1;
}

struct lookup {
	struct job *j;
	json_t *objects; /* the guild's channels or roles */
};

static void on_owned(PGresult *res, const struct err *err, void *ud)
{
	struct lookup *l = ud;
	struct job *j = l->j;
	int role = strcmp(j->kind, "role_create") == 0;
	json_t *want = json_object_get(j->payload, "body");
	const char *name = json_string_value(json_object_get(want, "name"));
	json_int_t type = json_integer_value(json_object_get(want, "type"));
	const char *parent = json_string_value(json_object_get(want, "parent_id"));
	size_t i;
	json_t *c;
	json_t *found = NULL;
	if (err) {
		json_decref(l->objects);
		free(l);
		mark_failed(j, err->msg, 0);
		return;
	}
	json_array_foreach(l->objects, i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *cp = json_string_value(json_object_get(c, "parent_id"));
		const char *cn = json_string_value(json_object_get(c, "name"));
		int owned = 0;
		for (int k = 0; res && k < PQntuples(res); k++)
			owned |= id && strcmp(PQgetvalue(res, k, 0), id) == 0;
		if (!owned && name && cn && strcmp(cn, name) == 0 &&
		    (role || (json_integer_value(json_object_get(c, "type")) == type &&
		              ((!parent && !cp) || (parent && cp && strcmp(parent, cp) == 0))))) {
			found = c;
			break;
		}
	}
	if (found) {
		/* created before a crash, never recorded: adopt it instead of creating a second */
		json_t *res_json = json_pack("{s:O, s:b}", role ? "role_id" : "channel_id",
		                             json_object_get(found, "id"), "adopted", 1);
		metrics.outbox_adopted++;
		json_decref(l->objects);
		free(l);
		mark_done(j, res_json);
		json_decref(res_json);
		return;
	}
	json_decref(l->objects);
	free(l);
	const char *args[] = {json_string_value(json_object_get(j->payload, "guild_id")), NULL};
	submit(j, "POST", role ? "/guilds/{guild_id}/roles" : "/guilds/{guild_id}/channels", args,
	       want, json_string_value(json_object_get(j->payload, "reason")), on_simple);
}

static void on_channels(const struct rest_result *r, void *ud)
{
	struct job *j = ud;
	if (r->status != 200 || !json_is_array(r->body)) {
		mark_failed(j, r->err.msg, !transient(r));
		return;
	}
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l) {
		mark_failed(j, "out of memory", 0);
		return;
	}
	l->j = j;
	l->objects = json_incref(r->body);
	/* objects other rows already account for, or that the bridge owns under another key,
	 * are not ours to adopt */
	json_t *own = json_object_get(j->payload, "own");
	const char *p[] = {json_string_value(json_object_get(j->payload, "guild_id")),
	                   own ? json_string_value(json_object_get(own, "kind")) : "",
	                   own ? json_string_value(json_object_get(own, "key")) : ""};
	if (db_query(j->ob->db,
	             "SELECT result->>'channel_id' FROM outbox WHERE kind = 'channel_create' AND "
	             "state = 'done' AND result ? 'channel_id' UNION ALL "
	             "SELECT discord_id FROM owned_objects WHERE guild_id = $1 AND "
	             "discord_id IS NOT NULL AND NOT (kind = $2 AND key = $3)",
	             3, p, on_owned, l, NULL) != 0) {
		json_decref(l->objects);
		free(l);
		mark_failed(j, "database unavailable", 0);
	}
}

static void run(struct job *j)
{
	json_t *p = j->payload;
	const char *guild = json_string_value(json_object_get(p, "guild_id"));
	const char *reason = json_string_value(json_object_get(p, "reason"));
	if (strcmp(j->kind, "role_add") == 0 || strcmp(j->kind, "role_remove") == 0) {
		const char *args[] = {guild, json_string_value(json_object_get(p, "user_id")),
		                      json_string_value(json_object_get(p, "role_id")), NULL};
		if (!args[0] || !args[1] || !args[2]) {
			mark_failed(j, "payload lacks guild_id, user_id or role_id", 1);
			return;
		}
		submit(j, j->kind[5] == 'a' ? "PUT" : "DELETE",
		       "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", args, NULL, reason,
		       on_simple);
	} else if (strcmp(j->kind, "message_create") == 0) {
		const char *args[] = {json_string_value(json_object_get(p, "channel_id")), NULL};
		if (!args[0]) {
			mark_failed(j, "payload lacks channel_id", 1);
			return;
		}
		json_t *b = message_body(j);
		submit(j, "POST", "/channels/{channel_id}/messages", args, b, NULL, on_simple);
		json_decref(b);
	} else if (strcmp(j->kind, "message_edit") == 0) {
		const char *args[] = {json_string_value(json_object_get(p, "channel_id")),
		                      json_string_value(json_object_get(p, "message_id")), NULL};
		if (!args[0] || !args[1]) {
			mark_failed(j, "payload lacks channel_id or message_id", 1);
			return;
		}
		submit(j, "PATCH", "/channels/{channel_id}/messages/{message_id}", args,
		       json_object_get(p, "body"), NULL, on_simple);
	} else if (strcmp(j->kind, "channel_create") == 0) {
		const char *args[] = {guild, NULL};
		if (!guild) {
			mark_failed(j, "payload lacks guild_id", 1);
			return;
		}
		if (j->attempts <= 1 && !json_object_get(p, "own")) {
			submit(j, "POST", "/guilds/{guild_id}/channels", args,
			       json_object_get(p, "body"), reason, on_simple);
			return;
		}
		/* a retry: the first attempt may have created it before we could record that; an
		 * owned object is looked for every time, since its row may be run again after a
		 * crash of the process that enqueued it */
		submit(j, "GET", "/guilds/{guild_id}/channels", args, NULL, NULL, on_channels);
	} else if (strcmp(j->kind, "role_create") == 0) {
		const char *args[] = {guild, NULL};
		if (!guild) {
			mark_failed(j, "payload lacks guild_id", 1);
			return;
		}
		submit(j, "GET", "/guilds/{guild_id}/roles", args, NULL, NULL, on_channels);
	} else if (strcmp(j->kind, "channel_edit") == 0) {
		const char *args[] = {json_string_value(json_object_get(p, "channel_id")), NULL};
		if (!args[0]) {
			mark_failed(j, "payload lacks channel_id", 1);
			return;
		}
		submit(j, "PATCH", "/channels/{channel_id}", args, json_object_get(p, "body"),
		       reason, on_simple);
	} else if (strcmp(j->kind, "role_edit") == 0) {
		const char *args[] = {guild, json_string_value(json_object_get(p, "role_id")),
		                      NULL};
		if (!args[0] || !args[1]) {
			mark_failed(j, "payload lacks guild_id or role_id", 1);
			return;
		}
		submit(j, "PATCH", "/guilds/{guild_id}/roles/{role_id}", args,
		       json_object_get(p, "body"), reason, on_simple);
	} else if (strcmp(j->kind, "member_edit") == 0) {
		const char *args[] = {guild, json_string_value(json_object_get(p, "user_id")),
		                      NULL};
		if (!args[0] || !args[1]) {
			mark_failed(j, "payload lacks guild_id or user_id", 1);
			return;
		}
		submit(j, "PATCH", "/guilds/{guild_id}/members/{user_id}", args,
		       json_object_get(p, "body"), reason, on_simple);
	} else if (strcmp(j->kind, "dm") == 0) {
		json_t *b = json_pack("{s:O}", "recipient_id", json_object_get(p, "user_id"));
		submit(j, "POST", "/users/@me/channels", NULL, b, NULL, on_dm_channel);
		json_decref(b);
	} else {
		mark_failed(j, "unknown outbox kind", 1);
	}
}

static void on_claimed(PGresult *res, const struct err *err, void *ud)
{
	struct outbox *ob = ud;
	/* woken while claiming: what woke us may have committed after this claim's snapshot */
	int again = ob->again;
	ob->claiming = ob->again = 0;
	if (err) {
		log_warn("outbox", "cannot claim work", "error", err->msg);
		return;
	}
	int n = PQntuples(res);
	for (int i = 0; i < n && !ob->stopping; i++) {
		if (PQgetisnull(res, i, 0)) {
			/* the row without an id: when the next retry is due */
			if (!PQgetisnull(res, i, 4))
				arm(ob, strtoull(PQgetvalue(res, i, 4), NULL, 10) + 10);
			continue;
		}
		struct job *j = calloc(1, sizeof(*j));
		if (!j)
			return;
		j->ob = ob;
		snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(res, i, 0));
		j->kind = strdup(PQgetvalue(res, i, 1));
		j->payload = json_loads(PQgetvalue(res, i, 2), 0, NULL);
		j->attempts = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
		ob->inflight++;
		j->next = ob->jobs;
		if (ob->jobs)
			ob->jobs->prev = j;
		ob->jobs = j;
		if (!j->kind || !j->payload) {
			mark_failed(j, "unreadable payload", 1);
			continue;
		}
		run(j);
	}
	if (again)
		claim(ob);
}

static void claim(struct outbox *ob)
{
	char lease[24], batch[16];
	if (ob->claiming) {
		ob->again = 1;
		return;
	}
	if (ob->stopping || ob->inflight >= ob->o.batch)
		return;
	snprintf(lease, sizeof(lease), "%u", ob->o.lease_ms);
	snprintf(batch, sizeof(batch), "%u", ob->o.batch - ob->inflight);
	const char *p[] = {lease, batch};
	ob->claiming = 1;
	/* and, in one more row, in how many ms the earliest row waiting for its retry is due
	 * (those rows are not claimed, so the statement's snapshot holds them as they are) */
	if (db_query(ob->db,
	             "WITH c AS (UPDATE outbox SET claimed_until = now() + "
	             "make_interval(secs => $1::int / 1000.0), attempts = attempts + 1 "
	             "WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' "
	             "AND next_at <= now() AND (claimed_until IS NULL OR claimed_until < now()) "
	             "ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED) "
	             "RETURNING id, kind, payload::text AS payload, attempts) "
	             "SELECT id, kind, payload, attempts, NULL FROM c UNION ALL "
	             "SELECT NULL, NULL, NULL, NULL, "
	             "ceil(extract(epoch FROM min(next_at) - now()) * 1000)::bigint "
	             "FROM outbox WHERE state = 'pending' AND next_at > now()",
	             2, p, on_claimed, ob, NULL) != 0)
		ob->claiming = 0;
}

static void on_timer(uv_timer_t *t)
{
	struct outbox *ob = t->data;
	ob->due = uv_now(ob->loop) + ob->o.poll_ms;
	uv_timer_start(t, on_timer, ob->o.poll_ms, 0);
	claim(ob);
}

/* Rows still in flight keep their claim: a request that waits out rate limits and retries may
 * take longer than a lease, and another process must not take the row meanwhile. */
static void on_renew(uv_timer_t *t)
{
	struct outbox *ob = t->data;
	size_t cap = 64, n = 1;
	char lease[24], *ids = malloc(cap);
	if (!ids || !ob->jobs) {
		free(ids);
		return;
	}
	ids[0] = '{';
	for (struct job *j = ob->jobs; j; j = j->next) {
		size_t l = strlen(j->id);
		if (n + l + 3 > cap) {
			char *m = realloc(ids, cap = cap * 2 + l);
			if (!m) {
				free(ids);
				return;
			}
			ids = m;
		}
		memcpy(ids + n, j->id, l);
		n += l;
		ids[n++] = j->next ? ',' : '}';
	}
	ids[n] = '\0';
	snprintf(lease, sizeof(lease), "%u", ob->o.lease_ms);
	const char *p[] = {ids, lease};
	db_query(
	    ob->db,
	    "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2::int / 1000.0) "
	    "WHERE id = ANY($1::bigint[]) AND state = 'pending' AND claimed_until IS NOT NULL",
	    2, p, on_marked, NULL, NULL);
	free(ids);
}

static void on_notify(const char *channel, const char *payload, void *ud)
{
	/* a NOTIFY, or LISTEN in effect again after a reconnect (payload NULL) */
	claim(ud);
}

struct outbox *outbox_new(uv_loop_t *loop, struct db *db, struct rest *rest,
                          const struct outbox_opts *o, struct err *err)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	if (!ob) {
		err_set(err, "out of memory");
		return NULL;
	}
	ob->loop = loop;
	ob->db = db;
	ob->rest = rest;
	if (o)
		ob->o = *o;
	if (!ob->o.lease_ms)
		ob->o.lease_ms = 30000;
	if (!ob->o.batch)
		ob->o.batch = 100;
	if (!ob->o.poll_ms)
		ob->o.poll_ms = 5000;
	if (!ob->o.max_attempts)
		ob->o.max_attempts = 10;
	if (!ob->o.retry_ms)
		ob->o.retry_ms = 2000;
	if (db_listen(db, OUTBOX_CHANNEL, on_notify, ob, err) != 0) {
		free(ob);
		return NULL;
	}
	uv_timer_init(loop, &ob->timer);
	uv_timer_init(loop, &ob->renew_timer);
	ob->timer.data = ob->renew_timer.data = ob;
	uv_timer_start(&ob->renew_timer, on_renew, ob->o.lease_ms / 3, ob->o.lease_ms / 3);
	ob->due = uv_now(loop);
	uv_timer_start(&ob->timer, on_timer, 0, 0);
	return ob;
}

void outbox_kick(struct outbox *ob)
{
	claim(ob);
}

static void on_closed(uv_handle_t *h)
{
	struct outbox *ob = h->data;
	ob->closed++;
}

void outbox_stop(struct outbox *ob)
{
	if (!ob || ob->stopping)
		return;
	ob->stopping = 1;
	db_unlisten(ob->db, OUTBOX_CHANNEL, on_notify, ob);
	uv_close((uv_handle_t *)&ob->timer, on_closed);
	uv_close((uv_handle_t *)&ob->renew_timer, on_closed);
}

void outbox_free(struct outbox *ob)
{
	free(ob);
}
