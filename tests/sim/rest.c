/* REST under /api/v10: the router, authentication, rate limits, and the guild, role, member and
 * channel endpoints. Messages, threads, interactions, commands and events: rest_messages.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest.h"

json_t *discord_error(int code, const char *message)
{
	return json_pack("{s:s, s:i}", "message", message, "code", code);
}

const char *param(struct ctx *x, const char *name)
{
	for (int i = 0; i < x->nparams; i++)
		if (strcmp(x->names[i], name) == 0)
			return x->values[i];
	return NULL;
}

const char *query_arg(struct ctx *x, const char *name, char *buf, size_t size)
{
	size_t nl = strlen(name);
	for (const char *p = x->rq->query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			snprintf(buf, size, "%.*s", (int)(len - nl - 1), p + nl + 1);
			return buf;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

void reply(struct ctx *x, int status, json_t *body)
{
	x->rs->status = status;
	json_decref(x->rs->body);
	x->rs->body = body;
}

void derr(struct ctx *x, int status, int code, const char *msg)
{
	reply(x, status, discord_error(code, msg));
}

void form_err(struct ctx *x, const char *path, const char *code, const char *msg)
{
	/* {"errors": {"embeds": {"0": {"title": {"_errors": [{code, message}]}}}}} */
	json_t *errors = json_object(), *node = errors;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg;
	     seg = strtok_r(NULL, ".", &save)) {
		json_t *n = json_object();
		json_object_set_new(node, seg, n);
		node = n;
	}
	json_object_set_new(node, "_errors",
	                    json_pack("[{s:s, s:s}]", "code", code, "message", msg));
	json_t *b = discord_error(DERR_INVALID_FORM, "Invalid Form Body");
	json_object_set_new(b, "errors", errors);
	reply(x, 400, b);
}

size_t utf8_len(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

struct guild *need_guild(struct ctx *x)
{
	struct guild *g = world_guild(param(x, "guild_id"));
	if (!g)
		derr(x, 404, DERR_UNKNOWN_GUILD, "Unknown Guild");
	return g;
}

json_t *need_channel(struct ctx *x, struct guild **g)
{
	json_t *c = world_channel(param(x, "channel_id"), g);
	if (!c)
		derr(x, 404, DERR_UNKNOWN_CHANNEL, "Unknown Channel");
	return c;
}

int need_perm(struct ctx *x, struct guild *g, uint64_t perm, json_t *channel)
{
	uint64_t have = world_perms(g, x->bot_id, channel);
	if (channel && !(have & P_VIEW_CHANNEL)) {
		derr(x, 403, DERR_MISSING_ACCESS, "Missing Access");
		return -1;
	}
	if ((have & perm) != perm) {
		derr(x, 403, DERR_MISSING_PERMISSIONS, "Missing Permissions");
		return -1;
	}
	return 0;
}

/* --- gateway, users, application --------------------------------------------------------- */

static void h_gateway(struct ctx *x)
{
	char url[64];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", sim.port);
	reply(x, 200, json_pack("{s:s}", "url", url));
}

static void h_gateway_bot(struct ctx *x)
{
	char url[64];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", sim.port);
	json_t *st = gw_stats();
	json_int_t remaining = json_integer_value(json_object_get(st, "identify_remaining"));
	json_decref(st);
	reply(x, 200,
	      json_pack("{s:s, s:I, s:{s:i, s:I, s:i, s:i}}", "url", url, "shards",
	                (json_int_t)sim.w.nguilds / 1000 + 1, "session_start_limit", "total", 1000,
	                "remaining", remaining, "reset_after", 86400000, "max_concurrency", 1));
}

static void h_me(struct ctx *x)
{
	reply(x, 200, json_deep_copy(sim.w.bot));
}

static void h_user(struct ctx *x)
{
	json_t *u = world_user(param(x, "user_id"));
	if (!u)
		derr(x, 404, DERR_UNKNOWN_USER, "Unknown User");
	else
		reply(x, 200, json_deep_copy(u));
}

static void h_my_guilds(struct ctx *x)
{
	json_t *out = json_array();
	for (size_t i = 0; i < sim.w.nguilds; i++) {
		struct guild *g = &sim.w.guilds[i];
		char perms[32];
		snprintf(perms, sizeof(perms), "%llu",
		         (unsigned long long)world_perms(g, x->bot_id, NULL));
		const char *owner = json_string_value(json_object_get(g->obj, "owner_id"));
		json_array_append_new(out,
		                      json_pack("{s:O, s:O, s:n, s:b, s:s, s:[]}", "id",
		                                json_object_get(g->obj, "id"), "name",
		                                json_object_get(g->obj, "name"), "icon", "owner",
		                                owner && strcmp(owner, x->bot_id) == 0,
		                                "permissions", perms, "features"));
	}
	reply(x, 200, out);
}

static void h_application(struct ctx *x)
{
	json_t *a = json_deep_copy(sim.w.app);
	json_object_set(a, "bot", sim.w.bot);
	json_t *owner =
	    sim.w.nguilds
	        ? world_user(json_string_value(json_object_get(sim.w.guilds[0].obj, "owner_id")))
	        : NULL;
	json_object_set(a, "owner", owner ? owner : sim.w.bot);
	json_object_set_new(a, "verify_key", json_string("0000"));
	json_object_set_new(a, "team", json_null());
	json_object_set_new(a, "icon", json_null());
	reply(x, 200, a);
}

/* --- guilds and roles ------------------------------------------------------------------------ */

static void h_guild(struct ctx *x)
{
	struct guild *g = need_guild(x);
	char b[16];
	if (!g)
		return;
	json_t *j = world_guild_json(g, false);
	if (query_arg(x, "with_counts", b, sizeof(b)) && strcmp(b, "true") == 0)
		json_object_set_new(j, "approximate_member_count",
		                    json_integer((json_int_t)json_object_size(g->members)));
	reply(x, 200, j);
}

static json_t *role_list(struct guild *g)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(g->roles, k, v)
		json_array_append(a, v);
	return a;
}

static void h_roles(struct ctx *x)
{
	struct guild *g = need_guild(x);
	if (g)
		reply(x, 200, role_list(g));
}

static int check_role_fields(struct ctx *x, json_t *b)
{
	json_t *name = json_object_get(b, "name");
	if (name && !json_is_null(name) &&
	    (!json_is_string(name) || utf8_len(json_string_value(name)) > 100)) {
		form_err(x, "name", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.");
		return -1;
	}
	json_t *perms = json_object_get(b, "permissions");
	if (perms && !json_is_null(perms) && !json_is_string(perms) && !json_is_integer(perms)) {
		form_err(x, "permissions", "NUMBER_TYPE_COERCE", "Value is not int.");
		return -1;
	}
	json_t *color = json_object_get(b, "color");
	if (color && !json_is_null(color) &&
	    (!json_is_integer(color) || json_integer_value(color) < 0 ||
	     json_integer_value(color) > 0xFFFFFF)) {
		form_err(x, "color", "NUMBER_TYPE_MAX",
		         "int value should be less than or equal to 16777215.");
		return -1;
	}
	return 0;
}

static void apply_role_fields(json_t *r, json_t *b)
{
	const char *keys[] = {"name", "color", "hoist", "mentionable", "unicode_emoji", "icon"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(b, keys[i]);
		if (v && !(json_is_null(v) && strcmp(keys[i], "name") == 0))
			json_object_set(r, keys[i], v);
	}
	json_t *p = json_object_get(b, "permissions");
	if (json_is_string(p))
		json_object_set(r, "permissions", p);
	else if (json_is_integer(p)) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(p));
		json_object_set_new(r, "permissions", json_string(buf));
	}
}

static void h_role_create(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *b = x->rq->body ? x->rq->body : json_object();
	char idb[32];
	if (!g || need_perm(x, g, P_MANAGE_ROLES, NULL) || check_role_fields(x, b))
		goto out;
	if (json_object_size(g->roles) >= 250) {
		derr(x, 400, DERR_MAX_ROLES, "Maximum number of guild roles reached (250)");
		goto out;
	}
	/* new roles go just above @everyone, pushing the others up */
	const char *k;
	json_t *v;
	json_object_foreach(g->roles, k, v) {
		json_int_t p = json_integer_value(json_object_get(v, "position"));
		if (p >= 1)
			json_object_set_new(v, "position", json_integer(p + 1));
	}
	json_t *r = json_pack("{s:s, s:s, s:i, s:b, s:n, s:n, s:i, s:s, s:b, s:b, s:i}", "id",
	                      sim_snowflake(idb, sizeof(idb)), "name", "new role", "color", 0,
	                      "hoist", 0, "icon", "unicode_emoji", "position", 1, "permissions",
	                      "0", "managed", 0, "mentionable", 0, "flags", 0);
	apply_role_fields(r, b);
	json_object_set(g->roles, idb, r);
	gw_dispatch("GUILD_ROLE_CREATE",
	            json_pack("{s:O, s:O}", "guild_id", json_object_get(g->obj, "id"), "role", r),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 200, r);
out:
	if (b != x->rq->body)
		json_decref(b);
}

static json_t *role_for_change(struct ctx *x, struct guild *g)
{
	json_t *r = json_object_get(g->roles, param(x, "role_id"));
	if (!r) {
		derr(x, 404, DERR_UNKNOWN_ROLE, "Unknown Role");
		return NULL;
	}
	if (need_perm(x, g, P_MANAGE_ROLES, NULL))
		return NULL;
	/* the bot may only manage roles below its own highest role */
	if (json_integer_value(json_object_get(r, "position")) >=
	    world_top_role_position(g, x->bot_id)) {
		derr(x, 403, DERR_MISSING_PERMISSIONS, "Missing Permissions");
		return NULL;
	}
	return r;
}

static void h_role_edit(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *r;
	if (!g || !(r = role_for_change(x, g)) || check_role_fields(x, x->rq->body))
		return;
	apply_role_fields(r, x->rq->body);
	gw_dispatch("GUILD_ROLE_UPDATE",
	            json_pack("{s:O, s:O}", "guild_id", json_object_get(g->obj, "id"), "role", r),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 200, json_incref(r));
}

static void h_role_delete(struct ctx *x)
{
	struct guild *g = need_guild(x);
	if (!g)
		return;
	if (strcmp(param(x, "role_id"), json_string_value(json_object_get(g->obj, "id"))) == 0) {
		derr(x, 400, DERR_INVALID_FORM, "Invalid Role");
		return;
	}
	if (!role_for_change(x, g))
		return;
	const char *rid = param(x, "role_id");
	const char *k;
	json_t *m;
	json_object_foreach(g->members, k, m) {
		json_t *roles = json_object_get(m, "roles");
		for (size_t i = 0; i < json_array_size(roles); i++)
			if (strcmp(json_string_value(json_array_get(roles, i)), rid) == 0)
				json_array_remove(roles, i--);
	}
	gw_dispatch(
	    "GUILD_ROLE_DELETE",
	    json_pack("{s:O, s:s}", "guild_id", json_object_get(g->obj, "id"), "role_id", rid),
	    json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	json_object_del(g->roles, rid);
	reply(x, 204, NULL);
}

/* --- members -------------------------------------------------------------------------------------
 */

static json_t *need_member(struct ctx *x, struct guild *g)
{
	const char *uid = param(x, "user_id");
	if (uid && strcmp(uid, "@me") == 0)
		uid = x->bot_id;
	json_t *m = world_member(g, uid);
	if (!m)
		derr(x, 404, DERR_UNKNOWN_MEMBER, "Unknown Member");
	return m;
}

static void member_updated(struct guild *g, json_t *m)
{
	json_t *d = json_deep_copy(m);
	json_object_set(d, "guild_id", json_object_get(g->obj, "id"));
	gw_dispatch("GUILD_MEMBER_UPDATE", d, json_string_value(json_object_get(g->obj, "id")),
	            I_GUILD_MEMBERS);
}

static void h_member(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *m;
	if (g && (m = need_member(x, g)))
		reply(x, 200, json_deep_copy(m));
}

static int by_id(const void *a, const void *b)
{
	unsigned long long x = strtoull(*(const char *const *)a, NULL, 10);
	unsigned long long y = strtoull(*(const char *const *)b, NULL, 10);
	return x < y ? -1 : x > y;
}

static void h_members(struct ctx *x)
{
	struct guild *g = need_guild(x);
	char b[32];
	if (!g)
		return;
	long limit = query_arg(x, "limit", b, sizeof(b)) ? strtol(b, NULL, 10) : 1;
	if (limit < 1 || limit > 1000) {
		form_err(x, "limit", "NUMBER_TYPE_MAX",
		         "int value should be less than or equal to 1000.");
		return;
	}
	unsigned long long after = query_arg(x, "after", b, sizeof(b)) ? strtoull(b, NULL, 10) : 0;
	size_t n = json_object_size(g->members), k = 0;
	const char **ids = malloc(n * sizeof(*ids));
	const char *key;
	json_t *v;
	json_object_foreach(g->members, key, v)
		ids[k++] = key;
	qsort(ids, n, sizeof(*ids), by_id);
	json_t *out = json_array();
	for (size_t i = 0; i < n && (long)json_array_size(out) < limit; i++)
		if (strtoull(ids[i], NULL, 10) > after)
			json_array_append(out, json_object_get(g->members, ids[i]));
	free(ids);
	reply(x, 200, out);
}

static int has_role(json_t *m, const char *rid)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(m, "roles"), i, r)
		if (strcmp(json_string_value(r), rid) == 0)
			return 1;
	return 0;
}

static void h_member_role(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *m, *r;
	if (!g || !(m = need_member(x, g)) || !(r = role_for_change(x, g)))
		return;
	const char *rid = param(x, "role_id");
	int add = strcmp(x->rq->method, "PUT") == 0;
	json_t *roles = json_object_get(m, "roles");
	int had = has_role(m, rid);
	if (json_is_true(json_object_get(r, "managed"))) {
		derr(x, 400, DERR_INVALID_FORM, "Cannot assign a managed role");
		return;
	}
	if (add && !had)
		json_array_append_new(roles, json_string(rid));
	if (!add && had)
		for (size_t i = 0; i < json_array_size(roles); i++)
			if (strcmp(json_string_value(json_array_get(roles, i)), rid) == 0)
				json_array_remove(roles, i--);
	if (add != had) /* idempotent: no change, no event */
		member_updated(g, m);
	reply(x, 204, NULL);
}

static void h_member_edit(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *m, *b = x->rq->body;
	if (!g || !(m = need_member(x, g)))
		return;
	const char *uid = json_string_value(json_object_get(json_object_get(m, "user"), "id"));
	const char *owner = json_string_value(json_object_get(g->obj, "owner_id"));
	json_t *nick = json_object_get(b, "nick");
	if (nick) {
		int self = strcmp(uid, x->bot_id) == 0;
		if (!self && need_perm(x, g, P_MANAGE_NICKNAMES, NULL))
			return;
		if (!self &&
		    ((owner && strcmp(owner, uid) == 0) ||
		     world_top_role_position(g, uid) >= world_top_role_position(g, x->bot_id))) {
			derr(x, 403, DERR_MISSING_PERMISSIONS, "Missing Permissions");
			return;
		}
		if (!json_is_null(nick) &&
		    (!json_is_string(nick) || utf8_len(json_string_value(nick)) > 32)) {
			form_err(x, "nick", "BASE_TYPE_MAX_LENGTH",
			         "Must be 32 or fewer in length.");
			return;
		}
	}
	json_t *roles = json_object_get(b, "roles");
	if (roles) {
		if (!json_is_array(roles)) {
			form_err(x, "roles", "LIST_TYPE_CONVERT", "Must be an array.");
			return;
		}
		if (need_perm(x, g, P_MANAGE_ROLES, NULL))
			return;
		int top = world_top_role_position(g, x->bot_id);
		size_t i;
		json_t *rid;
		json_array_foreach(roles, i, rid) {
			json_t *r = json_object_get(g->roles, json_string_value(rid));
			if (!r) {
				derr(x, 404, DERR_UNKNOWN_ROLE, "Unknown Role");
				return;
			}
			if (!has_role(m, json_string_value(rid)) &&
			    json_integer_value(json_object_get(r, "position")) >= top) {
				derr(x, 403, DERR_MISSING_PERMISSIONS, "Missing Permissions");
				return;
			}
		}
		json_object_set_new(m, "roles", json_deep_copy(roles));
	}
	if (nick)
		json_object_set(m, "nick",
		                json_is_string(nick) && *json_string_value(nick) ? nick
		                                                                 : json_null());
	member_updated(g, m);
	reply(x, 200, json_deep_copy(m));
}

/* --- channels ----------------------------------------------------------------------------------
 */

static const int channel_types[] = {0, 2, 4, 5, 13, 15};

static int check_overwrites(struct ctx *x, json_t *ow)
{
	size_t i;
	json_t *o;
	if (!ow)
		return 0;
	if (!json_is_array(ow)) {
		form_err(x, "permission_overwrites", "LIST_TYPE_CONVERT", "Must be an array.");
		return -1;
	}
	json_array_foreach(ow, i, o) {
		char path[64];
		json_t *type = json_object_get(o, "type");
		if (!json_is_string(json_object_get(o, "id"))) {
			snprintf(path, sizeof(path), "permission_overwrites.%zu.id", i);
			form_err(x, path, "BASE_TYPE_REQUIRED", "This field is required");
			return -1;
		}
		if (!json_is_integer(type) || json_integer_value(type) < 0 ||
		    json_integer_value(type) > 1) {
			snprintf(path, sizeof(path), "permission_overwrites.%zu.type", i);
			form_err(x, path, "BASE_TYPE_CHOICES", "Value must be one of (0, 1).");
			return -1;
		}
	}
	return 0;
}

static json_t *normalized_overwrites(json_t *ow)
{
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(ow, i, o) {
		json_t *allow = json_object_get(o, "allow"), *deny = json_object_get(o, "deny");
		char a[32] = "0", d[32] = "0";
		if (json_is_string(allow))
			snprintf(a, sizeof(a), "%s", json_string_value(allow));
		else if (json_is_integer(allow))
			snprintf(a, sizeof(a), "%lld", (long long)json_integer_value(allow));
		if (json_is_string(deny))
			snprintf(d, sizeof(d), "%s", json_string_value(deny));
		else if (json_is_integer(deny))
			snprintf(d, sizeof(d), "%lld", (long long)json_integer_value(deny));
		json_array_append_new(
		    out, json_pack("{s:O, s:O, s:s, s:s}", "id", json_object_get(o, "id"), "type",
		                   json_object_get(o, "type"), "allow", a, "deny", d));
	}
	return out;
}

static size_t children_of(struct guild *g, const char *parent)
{
	size_t n = 0;
	const char *k;
	json_t *c;
	json_object_foreach(g->channels, k, c) {
		const char *p = json_string_value(json_object_get(c, "parent_id"));
		int t = (int)json_integer_value(json_object_get(c, "type"));
		if (p && strcmp(p, parent) == 0 && t != 10 && t != 11 && t != 12)
			n++;
	}
	return n;
}

static size_t nonthread_channels(struct guild *g)
{
	size_t n = 0;
	const char *k;
	json_t *c;
	json_object_foreach(g->channels, k, c) {
		int t = (int)json_integer_value(json_object_get(c, "type"));
		n += t != 10 && t != 11 && t != 12;
	}
	return n;
}

static void h_channels(struct ctx *x)
{
	struct guild *g = need_guild(x);
	if (!g)
		return;
	json_t *a = json_array();
	const char *k;
	json_t *c;
	json_object_foreach(g->channels, k, c) {
		int t = (int)json_integer_value(json_object_get(c, "type"));
		if (t != 10 && t != 11 && t != 12)
			json_array_append(a, c);
	}
	reply(x, 200, a);
}

static int check_channel_fields(struct ctx *x, struct guild *g, json_t *b, int creating,
                                json_t *self)
{
	json_t *name = json_object_get(b, "name");
	if (creating && !json_is_string(name)) {
		form_err(x, "name", "BASE_TYPE_REQUIRED", "This field is required");
		return -1;
	}
	if (name && (!json_is_string(name) || utf8_len(json_string_value(name)) < 1 ||
	             utf8_len(json_string_value(name)) > 100)) {
		form_err(x, "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.");
		return -1;
	}
	json_t *type = json_object_get(b, "type");
	if (type) {
		int ok = 0;
		for (size_t i = 0; i < sizeof(channel_types) / sizeof(channel_types[0]); i++)
			ok |= json_is_integer(type) && json_integer_value(type) == channel_types[i];
		if (!ok) {
			form_err(x, "type", "BASE_TYPE_CHOICES",
			         "Value must be one of {0, 2, 4, 5, 13, 15}.");
			return -1;
		}
	}
	json_t *parent = json_object_get(b, "parent_id");
	if (parent && !json_is_null(parent)) {
		json_t *p = json_object_get(g->channels, json_string_value(parent));
		if (!p || json_integer_value(json_object_get(p, "type")) != 4) {
			form_err(x, "parent_id", "CHANNEL_PARENT_INVALID_TYPE", "Not a category");
			return -1;
		}
		const char *cur =
		    self ? json_string_value(json_object_get(self, "parent_id")) : NULL;
		if ((!cur || strcmp(cur, json_string_value(parent)) != 0) &&
		    children_of(g, json_string_value(parent)) >= 50) {
			form_err(x, "parent_id", "CHANNEL_PARENT_MAX_CHANNELS",
			         "Maximum number of channels in category reached (50)");
			return -1;
		}
	}
	json_t *topic = json_object_get(b, "topic");
	if (topic && !json_is_null(topic) &&
	    (!json_is_string(topic) || utf8_len(json_string_value(topic)) > 1024)) {
		form_err(x, "topic", "BASE_TYPE_MAX_LENGTH", "Must be 1024 or fewer in length.");
		return -1;
	}
	return check_overwrites(x, json_object_get(b, "permission_overwrites"));
}

static void apply_channel_fields(json_t *c, json_t *b)
{
	const char *keys[] = {"name",     "topic",     "parent_id",
	                      "position", "nsfw",      "rate_limit_per_user",
	                      "bitrate",  "user_limit"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(b, keys[i]);
		if (v)
			json_object_set(c, keys[i], v);
	}
	json_t *ow = json_object_get(b, "permission_overwrites");
	if (ow)
		json_object_set_new(c, "permission_overwrites", normalized_overwrites(ow));
}

static void h_channel_create(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *b = x->rq->body;
	char idb[32];
	if (!g || need_perm(x, g, P_MANAGE_CHANNELS, NULL) ||
	    check_channel_fields(x, g, b, 1, NULL))
		return;
	if (nonthread_channels(g) >= 500) {
		derr(x, 400, DERR_MAX_CHANNELS, "Maximum number of guild channels reached (500)");
		return;
	}
	int type = json_is_integer(json_object_get(b, "type"))
	               ? (int)json_integer_value(json_object_get(b, "type"))
	               : 0;
	json_t *c = json_pack(
	    "{s:s, s:i, s:O, s:s, s:i, s:[], s:b, s:n}", "id", sim_snowflake(idb, sizeof(idb)),
	    "type", type, "guild_id", json_object_get(g->obj, "id"), "name", "", "position",
	    (int)nonthread_channels(g), "permission_overwrites", "nsfw", 0, "parent_id");
	if (type == 0 || type == 5) {
		json_object_set_new(c, "topic", json_null());
		json_object_set_new(c, "last_message_id", json_null());
		json_object_set_new(c, "rate_limit_per_user", json_integer(0));
	} else if (type == 2 || type == 13) {
		json_object_set_new(c, "bitrate", json_integer(64000));
		json_object_set_new(c, "user_limit", json_integer(0));
		json_object_set_new(c, "rtc_region", json_null());
	}
	apply_channel_fields(c, b);
	json_object_set(g->channels, idb, c);
	gw_dispatch("CHANNEL_CREATE", json_incref(c),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 201, c);
}

static void h_channel_get(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	if (!c)
		return;
	if (g && !(world_perms(g, x->bot_id, c) & P_VIEW_CHANNEL)) {
		derr(x, 403, DERR_MISSING_ACCESS, "Missing Access");
		return;
	}
	reply(x, 200, json_deep_copy(c));
}

static int is_thread(json_t *c)
{
	int t = (int)json_integer_value(json_object_get(c, "type"));
	return t == 10 || t == 11 || t == 12;
}

static void h_channel_edit(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g), *b = x->rq->body;
	if (!c)
		return;
	if (!g) {
		derr(x, 403, DERR_MISSING_PERMISSIONS, "Missing Permissions");
		return;
	}
	if (is_thread(c)) {
		if (need_perm(x, g, P_MANAGE_THREADS, c))
			return;
		const char *keys[] = {"name", "archived", "locked", "auto_archive_duration",
		                      "invitable"};
		json_t *meta = json_object_get(c, "thread_metadata");
		for (size_t i = 0; i < 5; i++) {
			json_t *v = json_object_get(b, keys[i]);
			if (v)
				json_object_set(i == 0 ? c : meta, keys[i], v);
		}
		gw_dispatch("THREAD_UPDATE", json_incref(c),
		            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
		reply(x, 200, json_deep_copy(c));
		return;
	}
	if (need_perm(x, g, P_MANAGE_CHANNELS, c) || check_channel_fields(x, g, b, 0, c))
		return;
	apply_channel_fields(c, b);
	gw_dispatch("CHANNEL_UPDATE", json_incref(c),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 200, json_deep_copy(c));
}

static void h_channel_delete(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	if (!c)
		return;
	if (!g) {
		reply(x, 200, json_deep_copy(c)); /* closing a DM */
		return;
	}
	if (need_perm(x, g, is_thread(c) ? P_MANAGE_THREADS : P_MANAGE_CHANNELS, c))
		return;
	json_t *copy = json_deep_copy(c);
	json_object_del(g->channels, param(x, "channel_id"));
	json_object_del(sim.w.messages, param(x, "channel_id"));
	gw_dispatch(is_thread(copy) ? "THREAD_DELETE" : "CHANNEL_DELETE", json_incref(copy),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 200, copy);
}

static void h_overwrite(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g), *b = x->rq->body;
	if (!c || !g || need_perm(x, g, P_MANAGE_ROLES, c))
		return;
	const char *oid = param(x, "overwrite_id");
	json_t *ow = json_object_get(c, "permission_overwrites");
	if (strcmp(x->rq->method, "PUT") == 0) {
		json_t *o = json_pack("[{s:s}]", "id", oid);
		json_t *o0 = json_array_get(o, 0);
		json_object_set_new(o0, "type",
		                    json_integer(json_integer_value(json_object_get(b, "type"))));
		if (json_object_get(b, "allow"))
			json_object_set(o0, "allow", json_object_get(b, "allow"));
		if (json_object_get(b, "deny"))
			json_object_set(o0, "deny", json_object_get(b, "deny"));
		if (check_overwrites(x, o)) {
			json_decref(o);
			return;
		}
		for (size_t i = 0; i < json_array_size(ow); i++)
			if (strcmp(json_string_value(json_object_get(json_array_get(ow, i), "id")),
			           oid) == 0)
				json_array_remove(ow, i--);
		json_t *n = normalized_overwrites(o);
		json_array_extend(ow, n);
		json_decref(n);
		json_decref(o);
	} else {
		for (size_t i = 0; i < json_array_size(ow); i++)
			if (strcmp(json_string_value(json_object_get(json_array_get(ow, i), "id")),
			           oid) == 0)
				json_array_remove(ow, i--);
	}
	gw_dispatch("CHANNEL_UPDATE", json_incref(c),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	reply(x, 204, NULL);
}

/* --- the router ------------------------------------------------------------------------------ */

struct route {
	const char *method;
	const char *pattern; /* segments; {name} captures */
	void (*fn)(struct ctx *x);
	int flags;
};

#define NOAUTH      1 /* authenticated by the token in the path */
#define INTERACTION 2 /* exempt from the global limit */

static const struct route routes[] = {
    {"GET", "gateway", h_gateway, NOAUTH},
    {"GET", "gateway/bot", h_gateway_bot, 0},
    {"GET", "users/@me", h_me, 0},
    {"GET", "users/{user_id}", h_user, 0},
    {"POST", "users/@me/channels", h_dm_create, 0},
    {"GET", "users/@me/guilds", h_my_guilds, 0},
    {"GET", "applications/@me", h_application, 0},
    {"GET", "oauth2/applications/@me", h_application, 0},
    {"GET", "guilds/{guild_id}", h_guild, 0},
    {"GET", "guilds/{guild_id}/roles", h_roles, 0},
    {"POST", "guilds/{guild_id}/roles", h_role_create, 0},
    {"PATCH", "guilds/{guild_id}/roles/{role_id}", h_role_edit, 0},
    {"DELETE", "guilds/{guild_id}/roles/{role_id}", h_role_delete, 0},
    {"GET", "guilds/{guild_id}/members", h_members, 0},
    {"GET", "guilds/{guild_id}/members/{user_id}", h_member, 0},
    {"PATCH", "guilds/{guild_id}/members/{user_id}", h_member_edit, 0},
    {"PUT", "guilds/{guild_id}/members/{user_id}/roles/{role_id}", h_member_role, 0},
    {"DELETE", "guilds/{guild_id}/members/{user_id}/roles/{role_id}", h_member_role, 0},
    {"GET", "guilds/{guild_id}/channels", h_channels, 0},
    {"POST", "guilds/{guild_id}/channels", h_channel_create, 0},
    {"GET", "guilds/{guild_id}/scheduled-events", h_events_list, 0},
    {"POST", "guilds/{guild_id}/scheduled-events", h_event_create, 0},
    {"GET", "guilds/{guild_id}/scheduled-events/{event_id}", h_event_get, 0},
    {"PATCH", "guilds/{guild_id}/scheduled-events/{event_id}", h_event_edit, 0},
    {"DELETE", "guilds/{guild_id}/scheduled-events/{event_id}", h_event_delete, 0},
    {"GET", "channels/{channel_id}", h_channel_get, 0},
    {"PATCH", "channels/{channel_id}", h_channel_edit, 0},
    {"DELETE", "channels/{channel_id}", h_channel_delete, 0},
    {"PUT", "channels/{channel_id}/permissions/{overwrite_id}", h_overwrite, 0},
    {"DELETE", "channels/{channel_id}/permissions/{overwrite_id}", h_overwrite, 0},
    {"GET", "channels/{channel_id}/messages", h_messages_list, 0},
    {"POST", "channels/{channel_id}/messages", h_message_create, 0},
    {"GET", "channels/{channel_id}/messages/{message_id}", h_message_get, 0},
    {"PATCH", "channels/{channel_id}/messages/{message_id}", h_message_edit, 0},
    {"DELETE", "channels/{channel_id}/messages/{message_id}", h_message_delete, 0},
    {"POST", "channels/{channel_id}/messages/{message_id}/threads", h_thread_from_message, 0},
    {"POST", "channels/{channel_id}/threads", h_thread_create, 0},
    {"GET", "channels/{channel_id}/thread-members", h_thread_members_list, 0},
    {"PUT", "channels/{channel_id}/thread-members/{user_id}", h_thread_member_add, 0},
    {"DELETE", "channels/{channel_id}/thread-members/{user_id}", h_thread_member_remove, 0},
    {"POST", "channels/{channel_id}/polls/{message_id}/expire", h_poll_expire, 0},
    {"GET", "channels/{channel_id}/polls/{message_id}/answers/{answer_id}", h_poll_voters, 0},
    {"PUT", "applications/{application_id}/guilds/{guild_id}/commands", h_commands_put, 0},
    {"GET", "applications/{application_id}/guilds/{guild_id}/commands", h_commands_list, 0},
    {"PUT", "applications/{application_id}/commands", h_commands_put, 0},
    {"GET", "applications/{application_id}/commands", h_commands_list, 0},
    {"POST", "interactions/{interaction_id}/{token}/callback", h_interaction_callback,
     NOAUTH | INTERACTION},
    {"POST", "webhooks/{application_id}/{token}", h_webhook_create, NOAUTH},
    {"GET", "webhooks/{application_id}/{token}/messages/{message_id}", h_webhook_get, NOAUTH},
    {"PATCH", "webhooks/{application_id}/{token}/messages/{message_id}", h_webhook_edit, NOAUTH},
    {"DELETE", "webhooks/{application_id}/{token}/messages/{message_id}", h_webhook_delete, NOAUTH},
};

/* Matches path segments against pattern; fills captures. */
static int match(const char *pattern, const char *path, struct ctx *x)
{
	const char *p = pattern, *s = path;
	x->nparams = 0;
	while (*p && *s) {
		size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
		if (*p == '{') {
			if (x->nparams == MAX_PARAMS || sl == 0 || sl >= sizeof(x->values[0]))
				return 0;
			snprintf(x->names[x->nparams], sizeof(x->names[0]), "%.*s", (int)(pl - 2),
			         p + 1);
			snprintf(x->values[x->nparams], sizeof(x->values[0]), "%.*s", (int)sl, s);
			x->nparams++;
		} else if (pl != sl || strncmp(p, s, pl) != 0) {
			return 0;
		}
		p += pl;
		s += sl;
		if (*p == '/')
			p++;
		if (*s == '/')
			s++;
	}
	return *p == '\0' && *s == '\0';
}

/* The route key and major parameter, as Discord groups rate limits. */
static void route_key(const struct route *r, struct ctx *x, char *key, size_t ks, char *major,
                      size_t ms)
{
	snprintf(key, ks, "%s /%s", r->method, r->pattern);
	major[0] = '\0';
	const char *majors[] = {"channel_id", "guild_id", "token"};
	for (size_t i = 0; i < 3 && !major[0]; i++) {
		const char *v = param(x, majors[i]);
		if (v)
			snprintf(major, ms, "%s", v);
	}
}

void rest_handle(struct http_req *rq, struct http_resp *rs)
{
	struct ctx x = {0};
	const char *path = rq->path + strlen("/api/v10");
	if (*path == '/')
		path++;
	size_t plen = strlen(path);
	char *clean = strndup(path, plen && path[plen - 1] == '/' ? plen - 1 : plen);
	x.rq = rq;
	x.rs = rs;
	x.bot_id = json_string_value(json_object_get(sim.w.bot, "id"));
	const struct route *found = NULL;
	int path_matched = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, clean, &x))
			continue;
		path_matched = 1;
		if (strcmp(routes[i].method, rq->method) == 0) {
			found = &routes[i];
			break;
		}
	}
	if (!found) {
		if (path_matched)
			reply(&x, 405,
			      json_pack("{s:s, s:i}", "message", "405: Method Not Allowed", "code",
			                0));
		else
			reply(&x, 404,
			      json_pack("{s:s, s:i}", "message", "404: Not Found", "code", 0));
		free(clean);
		return;
	}
	char key[160], major[128];
	route_key(found, &x, key, sizeof(key), major, sizeof(major));
	stat_inc("requests", key);
	if (!(found->flags & NOAUTH)) {
		char want[256];
		snprintf(want, sizeof(want), "Bot %s", sim.opts.token);
		if (!rq->auth || strcmp(rq->auth, want) != 0) {
			reply(&x, 401,
			      json_pack("{s:s, s:i}", "message", "401: Unauthorized", "code", 0));
			rl_note_status(401, NULL);
			free(clean);
			return;
		}
	}
	if (json_object_get(sim.stalled, key)) {
		rs->stall = 1;
		free(clean);
		return;
	}
	if (rl_check(key, major, found->flags & INTERACTION, rq->body, rs)) {
		free(clean);
		return; /* rl_check wrote the 429 */
	}
	if (sim.fail_share > 0 && sim_rand() < sim.fail_share) {
		reply(&x, sim.fail_status ? sim.fail_status : 500,
		      json_pack("{s:s, s:i}", "message", "500: Internal Server Error", "code", 0));
		stat_inc("faults", key);
		free(clean);
		return;
	}
	found->fn(&x);
	if (rs->status == 403 || rs->status == 401 || rs->status == 429)
		rl_note_status(rs->status, NULL);
	free(clean);
}

void rest_reset(void)
{
}
