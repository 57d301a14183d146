/* The control API under /_sim/: what tests, benchmarks and the demo use to act as users and as
 * Discord itself (drops, reconnects, faults), and to read the world back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void ok(struct http_resp *rs, int status, json_t *body)
{
	rs->status = status;
	json_decref(rs->body);
	rs->body = body;
}

static void bad(struct http_resp *rs, int status, const char *msg)
{
	ok(rs, status, json_pack("{s:s}", "error", msg));
}

static const char *str(json_t *b, const char *k)
{
	return json_string_value(json_object_get(b, k));
}

static struct guild *guild_or_first(json_t *b)
{
	const char *gid = str(b, "guild_id");
	return gid ? world_guild(gid) : (sim.w.nguilds ? &sim.w.guilds[0] : NULL);
}

static void member_add(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	struct guild *g = guild_or_first(b);
	if (!g) {
		bad(rs, 404, "unknown guild");
		return;
	}
	const char *name = str(b, "username");
	json_t *u = str(b, "user_id") ? world_user(str(b, "user_id")) : NULL;
	if (!u)
		u = world_add_user(name ? name : "newcomer",
		                   json_is_true(json_object_get(b, "bot")));
	const char *uid = json_string_value(json_object_get(u, "id"));
	char at[64];
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_t *roles = json_object_get(b, "roles");
	json_t *m = json_pack("{s:O, s:o, s:s, s:b, s:b, s:i, s:b, s:n, s:n, s:n, s:n}", "user", u,
	                      "roles", json_is_array(roles) ? json_deep_copy(roles) : json_array(),
	                      "joined_at", at, "deaf", 0, "mute", 0, "flags", 0, "pending", 0,
	                      "nick", "avatar", "premium_since", "communication_disabled_until");
	json_object_set(g->members, uid, m);
	json_t *d = json_deep_copy(m);
	json_object_set(d, "guild_id", json_object_get(g->obj, "id"));
	gw_dispatch("GUILD_MEMBER_ADD", d, json_string_value(json_object_get(g->obj, "id")),
	            I_GUILD_MEMBERS);
	ok(rs, 200, json_pack("{s:O, s:o}", "user", u, "member", m));
}

static void member_remove(const char *uid, struct http_req *rq, struct http_resp *rs)
{
	for (size_t i = 0; i < sim.w.nguilds; i++) {
		struct guild *g = &sim.w.guilds[i];
		json_t *m = json_object_get(g->members, uid);
		if (!m)
			continue;
		json_t *d = json_pack("{s:O, s:O}", "guild_id", json_object_get(g->obj, "id"),
		                      "user", json_object_get(m, "user"));
		json_object_del(g->members, uid);
		json_object_del(g->voice, uid);
		gw_dispatch("GUILD_MEMBER_REMOVE", d,
		            json_string_value(json_object_get(g->obj, "id")), I_GUILD_MEMBERS);
		ok(rs, 204, NULL);
		return;
	}
	bad(rs, 404, "not a member");
}

static json_t *channel_of(json_t *b, struct guild **g)
{
	const char *cid = str(b, "channel_id");
	if (cid)
		return world_channel(cid, g);
	/* default: the first text channel of the guild */
	*g = guild_or_first(b);
	const char *k;
	json_t *c;
	json_object_foreach((*g)->channels, k, c)
		if (json_integer_value(json_object_get(c, "type")) == 0)
			return c;
	return NULL;
}

static void user_message(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	struct guild *g = NULL;
	json_t *c = channel_of(b, &g);
	json_t *u = world_user(str(b, "user_id"));
	if (!c || !u) {
		bad(rs, 404, "unknown channel or user");
		return;
	}
	json_t *body = json_pack("{s:s}", "content", str(b, "content") ? str(b, "content") : "");
	json_t *m = sim_post_message(g, c, u, body);
	json_decref(body);
	ok(rs, 200, m);
}

static void vote(const char *mid, struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	const char *cid = json_string_value(json_object_get(sim.w.msg_index, mid));
	const char *uid = str(b, "user_id");
	json_int_t answer = json_integer_value(json_object_get(b, "answer_id"));
	if (!cid || !uid || answer < 1) {
		bad(rs, 400, "needs a poll message, user_id and answer_id");
		return;
	}
	struct guild *g = NULL;
	world_channel(cid, &g);
	json_t *votes = json_object_get(sim.w.votes, mid);
	if (!votes) {
		votes = json_object();
		json_object_set_new(sim.w.votes, mid, votes);
	}
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)answer);
	json_t *list = json_object_get(votes, key);
	if (!list) {
		list = json_array();
		json_object_set_new(votes, key, list);
	}
	json_array_append_new(list, json_string(uid));
	json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "user_id", uid, "channel_id", cid,
	                      "message_id", mid, "answer_id", answer);
	if (g)
		json_object_set(d, "guild_id", json_object_get(g->obj, "id"));
	gw_dispatch("MESSAGE_POLL_VOTE_ADD", d,
	            g ? json_string_value(json_object_get(g->obj, "id")) : NULL,
	            g ? I_GUILD_MESSAGE_POLLS : I_DIRECT_MESSAGE_POLLS);
	ok(rs, 204, NULL);
}

static int interaction_type(json_t *t)
{
	if (json_is_integer(t))
		return (int)json_integer_value(t);
	const char *s = json_string_value(t);
	if (!s || strcmp(s, "command") == 0)
		return 2;
	if (strcmp(s, "ping") == 0)
		return 1;
	if (strcmp(s, "button") == 0 || strcmp(s, "select") == 0 || strcmp(s, "component") == 0)
		return 3;
	if (strcmp(s, "autocomplete") == 0)
		return 4;
	if (strcmp(s, "modal") == 0)
		return 5;
	return 2;
}

static void interaction_create(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	struct guild *g = NULL;
	json_t *c = channel_of(b, &g);
	json_t *u = world_user(str(b, "user_id"));
	char idb[32], tok[80];
	if (!c || !u) {
		bad(rs, 404, "unknown channel or user (give channel_id and user_id)");
		return;
	}
	int type = interaction_type(json_object_get(b, "type"));
	sim_snowflake(idb, sizeof(idb));
	snprintf(tok, sizeof(tok), "aW50ZXJhY3Rpb246%s:%08x%08x", idb,
	         (unsigned)(sim_rand() * 4294967295.0), (unsigned)(sim_rand() * 4294967295.0));
	json_t *data;
	if (type == 2 || type == 4) {
		const char *name = str(b, "name");
		const char *cmd_id = "0";
		const char *k;
		json_t *cmd;
		if (g)
			json_object_foreach(g->commands, k, cmd)
				if (name && strcmp(json_string_value(json_object_get(cmd, "name")),
				                   name) == 0)
					cmd_id = k;
		data =
		    json_pack("{s:s, s:s, s:i}", "id", cmd_id, "name", name ? name : "", "type", 1);
		if (json_object_get(b, "options"))
			json_object_set(data, "options", json_object_get(b, "options"));
		if (g)
			json_object_set(data, "guild_id", json_object_get(g->obj, "id"));
	} else if (type == 3) {
		json_t *values = json_object_get(b, "values");
		data = json_pack("{s:s, s:i}", "custom_id",
		                 str(b, "custom_id") ? str(b, "custom_id") : "", "component_type",
		                 values ? 3 : 2);
		if (values)
			json_object_set(data, "values", values);
	} else if (type == 5) {
		json_t *rows = json_array(), *fields = json_object_get(b, "fields");
		const char *k;
		json_t *v;
		json_object_foreach(fields, k, v)
			json_array_append_new(rows, json_pack("{s:i, s:[{s:i, s:s, s:O}]}", "type",
			                                      1, "components", "type", 4,
			                                      "custom_id", k, "value", v));
		data =
		    json_pack("{s:s, s:o}", "custom_id",
		              str(b, "custom_id") ? str(b, "custom_id") : "", "components", rows);
	} else {
		data = json_object();
	}
	json_t *in = json_pack("{s:s, s:O, s:i, s:o, s:O, s:s, s:i, s:s, s:s, s:[], s:i}", "id",
	                       idb, "application_id", json_object_get(sim.w.app, "id"), "type",
	                       type, "data", data, "channel_id", json_object_get(c, "id"), "token",
	                       tok, "version", 1, "locale", "en-US", "guild_locale", "en-US",
	                       "entitlements", "context", g ? 0 : 1);
	json_object_set_new(in, "channel", json_deep_copy(c));
	if (g) {
		json_t *m = json_deep_copy(
		    json_object_get(g->members, json_string_value(json_object_get(u, "id"))));
		char perms[32];
		snprintf(perms, sizeof(perms), "%llu",
		         (unsigned long long)world_perms(
		             g, json_string_value(json_object_get(u, "id")), c));
		if (!m)
			m = json_pack("{s:O, s:[]}", "user", u, "roles");
		json_object_set_new(m, "permissions", json_string(perms));
		json_object_set(in, "guild_id", json_object_get(g->obj, "id"));
		json_object_set_new(in, "member", m);
		json_object_set_new(in, "guild",
		                    json_pack("{s:O, s:s, s:[]}", "id",
		                              json_object_get(g->obj, "id"), "locale", "en-US",
		                              "features"));
		snprintf(perms, sizeof(perms), "%llu",
		         (unsigned long long)world_perms(
		             g, json_string_value(json_object_get(sim.w.bot, "id")), c));
		json_object_set_new(in, "app_permissions", json_string(perms));
		json_object_set_new(in, "authorizing_integration_owners",
		                    json_pack("{s:O}", "0", json_object_get(g->obj, "id")));
	} else {
		json_object_set(in, "user", u);
		json_object_set_new(in, "app_permissions", json_string("0"));
		json_object_set_new(in, "authorizing_integration_owners",
		                    json_pack("{s:O}", "1", json_object_get(u, "id")));
	}
	const char *mid = str(b, "message_id");
	if (mid) {
		const char *cid = json_string_value(json_object_get(sim.w.msg_index, mid));
		json_t *list = cid ? json_object_get(sim.w.messages, cid) : NULL;
		size_t i;
		json_t *m;
		json_array_foreach(list, i, m)
			if (strcmp(json_string_value(json_object_get(m, "id")), mid) == 0) {
				json_t *copy = json_deep_copy(m);
				json_object_del(copy, "sim_edits");
				json_object_del(copy, "sim_allowed_mentions");
				json_object_set_new(in, "message", copy);
			}
	}
	json_t *stored = json_deep_copy(in);
	json_object_set_new(stored, "sim_created_ms", json_integer((json_int_t)uv_now(sim.loop)));
	json_object_set_new(stored, "sim_acked", json_false());
	json_object_set_new(stored, "sim_callbacks", json_array());
	json_object_set_new(stored, "sim_followups", json_array());
	json_object_set(stored, "sim_user", u);
	json_object_set_new(sim.w.interactions, idb, stored);
	gw_dispatch("INTERACTION_CREATE", in,
	            g ? json_string_value(json_object_get(g->obj, "id")) : NULL, 0);
	stat_inc("interactions", "created");
	ok(rs, 200, json_pack("{s:s, s:s}", "id", idb, "token", tok));
}

static void interaction_get(const char *id, struct http_resp *rs)
{
	json_t *in = json_object_get(sim.w.interactions, id);
	if (!in) {
		bad(rs, 404, "unknown interaction");
		return;
	}
	json_t *out = json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(in, "id"),
	                        "acknowledged", json_object_get(in, "sim_acked"), "callbacks",
	                        json_object_get(in, "sim_callbacks"), "followups",
	                        json_object_get(in, "sim_followups"));
	json_t *orig = json_object_get(in, "sim_original_message");
	const char *oid = json_string_value(json_object_get(in, "sim_original"));
	if (!orig && oid) {
		const char *cid = json_string_value(json_object_get(sim.w.msg_index, oid));
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(sim.w.messages, cid), i, m)
			if (strcmp(json_string_value(json_object_get(m, "id")), oid) == 0)
				orig = m;
	}
	json_object_set(out, "original", orig ? orig : json_null());
	ok(rs, 200, out);
}

static void faults(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	if (strcmp(rq->method, "DELETE") == 0 || !b) {
		sim.latency_ms = 0;
		sim.fail_share = 0;
		sim.fail_status = 0;
		json_object_clear(sim.stalled);
		ok(rs, 204, NULL);
		return;
	}
	if (json_object_get(b, "latency_ms"))
		sim.latency_ms = (unsigned)json_integer_value(json_object_get(b, "latency_ms"));
	if (json_object_get(b, "fail_share"))
		sim.fail_share = json_number_value(json_object_get(b, "fail_share"));
	if (json_object_get(b, "fail_status"))
		sim.fail_status = (int)json_integer_value(json_object_get(b, "fail_status"));
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(b, "stall"), i, r)
		json_object_set_new(sim.stalled, json_string_value(r), json_true());
	ok(rs, 200,
	   json_pack("{s:i, s:f, s:i, s:O}", "latency_ms", sim.latency_ms, "fail_share",
	             sim.fail_share, "fail_status", sim.fail_status ? sim.fail_status : 500,
	             "stall", sim.stalled));
}

static void stats(struct http_resp *rs)
{
	json_t *s = json_deep_copy(sim.stats);
	json_object_set_new(s, "gateway", gw_stats());
	json_object_set_new(s, "ratelimits", rl_stats());
	ok(rs, 200, s);
}

static void reset(struct http_resp *rs)
{
	char err[512];
	gw_control_drop(4000);
	gw_reset();
	rl_reset();
	rest_reset();
	world_free();
	json_object_clear(sim.stats);
	json_object_clear(sim.stalled);
	sim.latency_ms = 0;
	sim.fail_share = 0;
	sim.clock_ms = 1767225600000ull + (uint64_t)(sim.opts.seed >= 0 ? sim.opts.seed : 0) * 1000;
	sim.rng = sim.opts.seed >= 0 ? (uint64_t)sim.opts.seed * 0x9E3779B97F4A7C15ull + 1
	                             : uv_hrtime() | 1;
	if (world_load(sim.opts.world_file, err, sizeof(err)) != 0) {
		bad(rs, 500, err);
		return;
	}
	src_reset();
	ok(rs, 204, NULL);
}

static int is(struct http_req *rq, const char *method, const char *path)
{
	return strcmp(rq->method, method) == 0 && strcmp(rq->path, path) == 0;
}

static const char *tail(struct http_req *rq, const char *method, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strcmp(rq->method, method) != 0 || strncmp(rq->path, prefix, n) != 0 || !rq->path[n])
		return NULL;
	return rq->path + n;
}

void control_handle(struct http_req *rq, struct http_resp *rs)
{
	const char *t;
	json_t *b = rq->body;
	if (is(rq, "POST", "/_sim/gateway/drop"))
		ok(rs, 200,
		   json_pack("{s:i}", "connections",
		             gw_control_drop((int)json_integer_value(json_object_get(b, "code")))));
	else if (is(rq, "POST", "/_sim/gateway/reconnect"))
		ok(rs, 200, json_pack("{s:i}", "connections", gw_control_reconnect()));
	else if (is(rq, "POST", "/_sim/gateway/invalidate"))
		ok(rs, 200,
		   json_pack("{s:i}", "connections",
		             gw_control_invalidate(json_is_true(json_object_get(b, "resumable")))));
	else if (is(rq, "POST", "/_sim/gateway/acks")) {
		gw_control_acks(!json_is_false(json_object_get(b, "enabled")));
		ok(rs, 204, NULL);
	} else if (is(rq, "POST", "/_sim/gateway/raw")) {
		const char *text = str(b, "text");
		json_int_t size = json_integer_value(json_object_get(b, "size"));
		char *big = NULL;
		if (!text && size >= 64 && size <= 256 * 1024 * 1024 &&
		    (big = malloc((size_t)size + 1))) {
			/* a dispatch of exactly size bytes, built here: bodies are capped far lower
			 */
			static const char head[] =
			    "{\"op\":0,\"t\":\"SIM_PADDING\",\"s\":null,\"d\":\"";
			size_t hl = sizeof(head) - 1;
			memcpy(big, head, hl);
			memset(big + hl, 'x', (size_t)size - hl - 2);
			memcpy(big + size - 2, "\"}", 3);
			text = big;
		}
		if (!text)
			bad(rs, 400, "needs text, or size (64 bytes to 256 MiB)");
		else
			ok(rs, 200, json_pack("{s:i}", "connections", gw_control_raw(text)));
		free(big);
	} else if (is(rq, "POST", "/_sim/gateway/firehose")) {
		json_t *report = NULL;
		if (gw_firehose((long)json_integer_value(json_object_get(b, "events")),
		                str(b, "type"), &report) != 0)
			bad(rs, 409, "no identified, uncompressed gateway connection");
		else
			ok(rs, 200, report);
	} else if (is(rq, "POST", "/_sim/members"))
		member_add(rq, rs);
	else if ((t = tail(rq, "DELETE", "/_sim/members/")))
		member_remove(t, rq, rs);
	else if ((t = tail(rq, "POST", "/_sim/users/")) && strstr(t, "/dms")) {
		char uid[64];
		snprintf(uid, sizeof(uid), "%.*s", (int)strcspn(t, "/"), t);
		if (!world_user(uid))
			bad(rs, 404, "unknown user");
		else {
			if (json_is_false(json_object_get(b, "open")))
				json_object_set_new(sim.w.dm_closed, uid, json_true());
			else
				json_object_del(sim.w.dm_closed, uid);
			ok(rs, 204, NULL);
		}
	} else if (is(rq, "POST", "/_sim/interactions"))
		interaction_create(rq, rs);
	else if ((t = tail(rq, "GET", "/_sim/interactions/")))
		interaction_get(t, rs);
	else if (is(rq, "POST", "/_sim/messages"))
		user_message(rq, rs);
	else if ((t = tail(rq, "POST", "/_sim/polls/")) && strstr(t, "/votes")) {
		char mid[64];
		snprintf(mid, sizeof(mid), "%.*s", (int)strcspn(t, "/"), t);
		vote(mid, rq, rs);
	} else if (is(rq, "GET", "/_sim/state"))
		ok(rs, 200, world_state());
	else if (is(rq, "GET", "/_sim/stats"))
		stats(rs);
	else if (is(rq, "GET", "/_sim/ratelimits"))
		ok(rs, 200, rl_describe());
	else if (is(rq, "POST", "/_sim/faults") || is(rq, "DELETE", "/_sim/faults"))
		faults(rq, rs);
	else if (is(rq, "POST", "/_sim/reset"))
		reset(rs);
	/* the fake sources (sources.c) */
	else if (is(rq, "GET", "/_sim/sources"))
		src_ctl_dump(rs);
	else if (is(rq, "POST", "/_sim/sources/faults") || is(rq, "DELETE", "/_sim/sources/faults"))
		src_ctl_faults(rq, rs);
	else if (is(rq, "POST", "/_sim/sources/learners"))
		src_ctl_learners(rq, rs);
	else if (is(rq, "POST", "/_sim/sources/mutate"))
		src_ctl_mutate(rq, rs);
	else if (is(rq, "GET", "/_sim/sources/requests") ||
	         is(rq, "DELETE", "/_sim/sources/requests"))
		src_ctl_requests(rq, rs);
	else if (is(rq, "GET", "/_sim/sources/files") || is(rq, "POST", "/_sim/sources/files") ||
	         is(rq, "DELETE", "/_sim/sources/files"))
		files_ctl(rq, rs);
	else if (is(rq, "GET", "/_sim/sources/canvas/messages"))
		src_ctl_messages("canvas", rs);
	else if (is(rq, "GET", "/_sim/sources/moodle/messages"))
		src_ctl_messages("moodle", rs);
	else
		bad(rs, 404, "unknown control endpoint; see tests/sim/README.md");
}
