/* The simulated world: ids, clock, the sample server, world files, lookups, permissions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define DISCORD_EPOCH 1420070400000ull
#define SEEDED_BASE   1767225600000ull /* 2026-01-01T00:00:00Z */

uint64_t sim_now_ms(void)
{
	if (sim.opts.seed >= 0)
		return sim.clock_ms;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

double sim_rand(void)
{
	/* xorshift64*: small, seedable, good enough for jitter and sample data */
	uint64_t x = sim.rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sim.rng = x;
	return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

char *sim_snowflake(char *buf, size_t size)
{
	uint64_t ms;
	if (sim.opts.seed >= 0)
		ms = ++sim.clock_ms; /* deterministic: the virtual clock moves one ms per id */
	else
		ms = sim_now_ms();
	uint64_t id = ((ms - DISCORD_EPOCH) << 22) | (1ull << 17) | (sim.increment++ & 0xfff);
	snprintf(buf, size, "%llu", (unsigned long long)id);
	return buf;
}

void sim_iso_time(uint64_t ms, char *buf, size_t size)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03u000+00:00", (unsigned)(ms % 1000));
}

static json_t *new_user(const char *id, const char *username, bool bot)
{
	char idb[32];
	json_t *u = json_pack("{s:s, s:s, s:s, s:n, s:n, s:b, s:i, s:i}", "id",
	                      id ? id : sim_snowflake(idb, sizeof(idb)), "username", username,
	                      "discriminator", "0", "global_name", "avatar", "bot", bot,
	                      "public_flags", 0, "flags", 0);
	if (!bot)
		json_object_set_new(u, "global_name", json_string(username));
	return u;
}

json_t *world_add_user(const char *username, bool bot)
{
	json_t *u = new_user(NULL, username, bot);
	json_object_set(sim.w.users, json_string_value(json_object_get(u, "id")), u);
	json_decref(u);
	return u;
}

static json_t *new_role(const char *id, const char *name, int position, uint64_t perms, int color)
{
	char idb[32], pb[32];
	snprintf(pb, sizeof(pb), "%llu", (unsigned long long)perms);
	return json_pack("{s:s, s:s, s:i, s:b, s:n, s:n, s:i, s:s, s:b, s:b, s:i}", "id",
	                 id ? id : sim_snowflake(idb, sizeof(idb)), "name", name, "color", color,
	                 "hoist", 0, "icon", "unicode_emoji", "position", position, "permissions",
	                 pb, "managed", 0, "mentionable", 0, "flags", 0);
}

static json_t *new_channel(const char *guild_id, const char *name, int type, const char *parent,
                           int position)
{
	char idb[32];
	json_t *c =
	    json_pack("{s:s, s:i, s:s, s:s, s:i, s:[], s:b}", "id", sim_snowflake(idb, sizeof(idb)),
	              "type", type, "guild_id", guild_id, "name", name, "position", position,
	              "permission_overwrites", "nsfw", 0);
	json_object_set_new(c, "parent_id", parent ? json_string(parent) : json_null());
	if (type == 0) {
		json_object_set_new(c, "topic", json_null());
		json_object_set_new(c, "last_message_id", json_null());
		json_object_set_new(c, "rate_limit_per_user", json_integer(0));
	} else if (type == 2) {
		json_object_set_new(c, "bitrate", json_integer(64000));
		json_object_set_new(c, "user_limit", json_integer(0));
		json_object_set_new(c, "rtc_region", json_null());
	}
	return c;
}

/* Takes ownership of roles. */
static json_t *new_member(json_t *user, json_t *roles, const char *nick)
{
	char at[64];
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_t *m =
	    json_pack("{s:O, s:o, s:s, s:b, s:b, s:i, s:b, s:n, s:n, s:n}", "user", user, "roles",
	              roles, "joined_at", at, "deaf", 0, "mute", 0, "flags", 0, "pending", 0,
	              "avatar", "premium_since", "communication_disabled_until");
	json_object_set_new(m, "nick", nick ? json_string(nick) : json_null());
	return m;
}

static void guild_init(struct guild *g, json_t *obj)
{
	g->obj = obj;
	g->roles = json_object();
	g->channels = json_object();
	g->members = json_object();
	g->voice = json_object();
	g->events = json_object();
	g->commands = json_object();
}

static const char *const sample_names[] = {"ada",  "grace",   "linus",  "margaret",
                                           "alan", "barbara", "dennis", "frances",
                                           "ken",  "radia",   "tim",    "hedy"};

/* The default world: a bot high in the hierarchy, roles below it, a category with a text and a
 * voice channel, an owner and a dozen learners and staff. */
static void sample_world(void)
{
	char idb[32];
	struct world *w = &sim.w;
	w->app = json_pack("{s:s, s:s, s:s, s:b, s:b, s:i}", "id", sim_snowflake(idb, sizeof(idb)),
	                   "name", "cohortbridge (simulated)", "description", "", "bot_public", 0,
	                   "bot_require_code_grant", 0, "flags", (1 << 15) | (1 << 19));
	w->bot = new_user(json_string_value(json_object_get(w->app, "id")), "cohortbridge", true);
	json_object_set(w->users, json_string_value(json_object_get(w->bot, "id")), w->bot);
	w->privileged = I_GUILD_MEMBERS | I_MESSAGE_CONTENT;

	w->guilds = calloc(1, sizeof(*w->guilds));
	w->nguilds = 1;
	struct guild *g = &w->guilds[0];
	json_t *owner = world_add_user("owner", false);
	const char *gid = sim_snowflake(idb, sizeof(idb));
	guild_init(g,
	           json_pack("{s:s, s:s, s:n, s:s, s:i, s:i, s:i, s:s, s:[], s:[]}", "id", gid,
	                     "name", "Sample Academy", "icon", "owner_id",
	                     json_string_value(json_object_get(owner, "id")), "verification_level",
	                     0, "default_message_notifications", 1, "explicit_content_filter", 0,
	                     "preferred_locale", "en-US", "features", "emoji"));
	uint64_t everyone = P_VIEW_CHANNEL | P_SEND_MESSAGES | P_READ_HISTORY | P_CONNECT |
	                    P_CREATE_INVITE | P_SEND_IN_THREADS;
	uint64_t bot_perms = P_MANAGE_ROLES | P_MANAGE_CHANNELS | P_MANAGE_NICKNAMES |
	                     P_MANAGE_EVENTS | P_MANAGE_THREADS | P_MANAGE_MESSAGES |
	                     P_CREATE_PRIVATE_THREADS | everyone;
	struct {
		const char *name;
		uint64_t perms;
		int pos;
		int color;
	} roles[] = {{"@everyone", everyone, 0, 0},
	             {"Alumni", 0, 1, 0x95a5a6},
	             {"Learner", 0, 2, 0x3498db},
	             {"Coach", 0, 3, 0x2ecc71},
	             {"Staff", P_MANAGE_MESSAGES, 4, 0xe67e22},
	             {"cohortbridge", bot_perms, 5, 0},
	             {"Owner", P_ADMINISTRATOR, 6, 0xe74c3c}};
	const char *role_ids[7];
	for (size_t i = 0; i < 7; i++) {
		json_t *r = new_role(i == 0 ? gid : NULL, roles[i].name, roles[i].pos,
		                     roles[i].perms, roles[i].color);
		if (i == 5) {
			json_object_set_new(r, "managed", json_true());
			json_object_set_new(
			    r, "tags", json_pack("{s:O}", "bot_id", json_object_get(w->bot, "id")));
		}
		role_ids[i] = json_string_value(json_object_get(r, "id"));
		json_object_set_new(g->roles, role_ids[i], r);
	}
	json_t *cat = new_channel(gid, "Welcome", 4, NULL, 0);
	const char *cat_id = json_string_value(json_object_get(cat, "id"));
	json_object_set_new(g->channels, cat_id, cat);
	json_t *text = new_channel(gid, "general", 0, cat_id, 1);
	json_object_set_new(g->channels, json_string_value(json_object_get(text, "id")), text);
	json_t *voice = new_channel(gid, "lounge", 2, cat_id, 2);
	const char *voice_id = json_string_value(json_object_get(voice, "id"));
	json_object_set_new(g->channels, voice_id, voice);

	json_object_set_new(g->members, json_string_value(json_object_get(owner, "id")),
	                    new_member(owner, json_pack("[s]", role_ids[6]), NULL));
	json_object_set_new(g->members, json_string_value(json_object_get(w->bot, "id")),
	                    new_member(w->bot, json_pack("[s]", role_ids[5]), NULL));
	for (size_t i = 0; i < sizeof(sample_names) / sizeof(sample_names[0]); i++) {
		json_t *u = world_add_user(sample_names[i], false);
		json_t *r = json_array();
		if (i < 2)
			json_array_append_new(r, json_string(role_ids[4])); /* staff */
		else if (i < 4)
			json_array_append_new(r, json_string(role_ids[3])); /* coaches */
		json_object_set_new(g->members, json_string_value(json_object_get(u, "id")),
		                    new_member(u, r, NULL));
		if (i == 2) {
			json_t *vs = json_pack(
			    "{s:s, s:s, s:O, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "guild_id",
			    gid, "channel_id", voice_id, "user_id", json_object_get(u, "id"),
			    "session_id", "sim", "deaf", 0, "mute", 0, "self_deaf", 0, "self_mute",
			    0, "self_video", 0, "suppress", 0, "self_stream", 0);
			json_object_set_new(g->voice, json_string_value(json_object_get(u, "id")),
			                    vs);
		}
	}
}

static int fail(char *err, size_t size, const char *msg, const char *detail)
{
	snprintf(err, size, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	return -1;
}

/* Loads a world file (format in tests/sim/README.md). Missing ids are generated. */
static int load_file(const char *file, char *err, size_t errsize)
{
	json_error_t je;
	char idb[32];
	json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
	struct world *w = &sim.w;
	if (!root) {
		char where[600];
		snprintf(where, sizeof(where), "%s:%d:%d: %s", file, je.line, je.column, je.text);
		return fail(err, errsize, "cannot load world", where);
	}
	json_t *app = json_object_get(root, "application");
	w->app = json_pack("{s:s, s:s, s:s, s:b, s:b, s:i}", "id", sim_snowflake(idb, sizeof(idb)),
	                   "name", "cohortbridge (simulated)", "description", "", "bot_public", 0,
	                   "bot_require_code_grant", 0, "flags", (1 << 15) | (1 << 19));
	if (json_is_object(app))
		json_object_update(w->app, app);
	w->privileged = I_GUILD_MEMBERS | I_MESSAGE_CONTENT;
	json_t *pi = json_object_get(app, "privileged_intents");
	if (json_is_array(pi)) {
		size_t i;
		json_t *v;
		w->privileged = 0;
		json_array_foreach(pi, i, v) {
			const char *s = json_string_value(v);
			if (s && strcmp(s, "GUILD_MEMBERS") == 0)
				w->privileged |= I_GUILD_MEMBERS;
			else if (s && strcmp(s, "GUILD_PRESENCES") == 0)
				w->privileged |= I_GUILD_PRESENCES;
			else if (s && strcmp(s, "MESSAGE_CONTENT") == 0)
				w->privileged |= I_MESSAGE_CONTENT;
		}
		json_object_del(w->app, "privileged_intents");
		/* The application's flags say the same as the list (the _LIMITED bits, as for a bot
		 * in fewer than 100 servers), unless the file gives flags of its own. */
		if (!json_object_get(app, "flags")) {
			long long f = 0;
			if (w->privileged & I_GUILD_PRESENCES)
				f |= 1 << 13;
			if (w->privileged & I_GUILD_MEMBERS)
				f |= 1 << 15;
			if (w->privileged & I_MESSAGE_CONTENT)
				f |= 1 << 19;
			json_object_set_new(w->app, "flags", json_integer(f));
		}
	}
	const char *bot_name =
	    json_string_value(json_object_get(json_object_get(root, "bot"), "username"));
	w->bot = new_user(json_string_value(json_object_get(w->app, "id")),
	                  bot_name ? bot_name : "cohortbridge", true);
	json_object_set(w->users, json_string_value(json_object_get(w->bot, "id")), w->bot);

	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(root, "users"), i, u) {
		const char *name = json_string_value(json_object_get(u, "username"));
		json_t *nu =
		    new_user(json_string_value(json_object_get(u, "id")), name ? name : "user",
		             json_is_true(json_object_get(u, "bot")));
		json_object_set_new(w->users, json_string_value(json_object_get(nu, "id")), nu);
	}
	json_t *guilds = json_object_get(root, "guilds");
	w->nguilds = json_array_size(guilds);
	if (!w->nguilds) {
		json_decref(root);
		return fail(err, errsize, "world file has no guilds", file);
	}
	w->guilds = calloc(w->nguilds, sizeof(*w->guilds));
	json_t *gj;
	json_array_foreach(guilds, i, gj) {
		struct guild *g = &w->guilds[i];
		const char *gid = json_string_value(json_object_get(gj, "id"));
		json_t *obj = json_pack(
		    "{s:s, s:s, s:n, s:i, s:i, s:i, s:s, s:[], s:[]}", "id",
		    gid ? gid : sim_snowflake(idb, sizeof(idb)), "name",
		    json_string_value(json_object_get(gj, "name"))
		        ? json_string_value(json_object_get(gj, "name"))
		        : "Guild",
		    "icon", "verification_level", 0, "default_message_notifications", 1,
		    "explicit_content_filter", 0, "preferred_locale", "en-US", "features", "emoji");
		guild_init(g, obj);
		gid = json_string_value(json_object_get(obj, "id"));
		json_t *r, *c, *m;
		size_t k;
		int have_everyone = 0;
		json_array_foreach(json_object_get(gj, "roles"), k, r) {
			const char *name = json_string_value(json_object_get(r, "name"));
			const char *perms = json_string_value(json_object_get(r, "permissions"));
			int is_everyone = name && strcmp(name, "@everyone") == 0;
			json_t *nr = new_role(
			    is_everyone ? gid : json_string_value(json_object_get(r, "id")),
			    name ? name : "role",
			    (int)json_integer_value(json_object_get(r, "position")),
			    perms ? strtoull(perms, NULL, 10) : 0,
			    (int)json_integer_value(json_object_get(r, "color")));
			have_everyone |= is_everyone;
			if (json_is_true(json_object_get(r, "bot"))) {
				json_object_set_new(nr, "managed", json_true());
				json_object_set_new(
				    nr, "tags",
				    json_pack("{s:O}", "bot_id", json_object_get(w->bot, "id")));
			}
			json_object_set_new(g->roles, json_string_value(json_object_get(nr, "id")),
			                    nr);
		}
		if (!have_everyone)
			json_object_set_new(
			    g->roles, gid,
			    new_role(gid, "@everyone", 0,
			             P_VIEW_CHANNEL | P_SEND_MESSAGES | P_READ_HISTORY | P_CONNECT,
			             0));
		json_array_foreach(json_object_get(gj, "channels"), k, c) {
			const char *name = json_string_value(json_object_get(c, "name"));
			json_t *nc =
			    new_channel(gid, name ? name : "channel",
			                (int)json_integer_value(json_object_get(c, "type")),
			                json_string_value(json_object_get(c, "parent_id")), (int)k);
			if (json_string_value(json_object_get(c, "id")))
				json_object_set(nc, "id", json_object_get(c, "id"));
			if (json_is_array(json_object_get(c, "permission_overwrites")))
				json_object_set(nc, "permission_overwrites",
				                json_object_get(c, "permission_overwrites"));
			json_object_set_new(g->channels,
			                    json_string_value(json_object_get(nc, "id")), nc);
		}
		json_array_foreach(json_object_get(gj, "members"), k, m) {
			json_t *mu = json_object_get(m, "user");
			const char *uid = json_string_value(json_object_get(mu, "id"));
			json_t *user = uid ? json_object_get(w->users, uid) : NULL;
			if (!user) {
				const char *name =
				    json_string_value(json_object_get(mu, "username"));
				user = new_user(uid, name ? name : "member",
				                json_is_true(json_object_get(mu, "bot")));
				json_object_set_new(
				    w->users, json_string_value(json_object_get(user, "id")), user);
			}
			json_t *roles = json_object_get(m, "roles");
			json_object_set_new(
			    g->members, json_string_value(json_object_get(user, "id")),
			    new_member(user, json_is_array(roles) ? json_copy(roles) : json_array(),
			               json_string_value(json_object_get(m, "nick"))));
			if (json_is_true(json_object_get(m, "owner")))
				json_object_set(obj, "owner_id", json_object_get(user, "id"));
		}
		/* the bot is always a member, with the roles the file gives it */
		const char *bid = json_string_value(json_object_get(w->bot, "id"));
		if (!json_object_get(g->members, bid)) {
			json_t *br = json_array();
			const char *rk;
			json_t *rv;
			json_object_foreach(g->roles, rk, rv)
				if (json_is_true(json_object_get(rv, "managed")))
					json_array_append_new(br, json_string(rk));
			json_object_set_new(g->members, bid, new_member(w->bot, br, NULL));
		}
		json_int_t gen = json_integer_value(json_object_get(gj, "generate_members"));
		for (json_int_t n = 0; n < gen; n++) {
			char name[32];
			snprintf(name, sizeof(name), "learner%lld", (long long)n);
			json_t *nu = world_add_user(name, false);
			json_object_set_new(g->members,
			                    json_string_value(json_object_get(nu, "id")),
			                    new_member(nu, json_array(), NULL));
		}
		if (!json_object_get(obj, "owner_id") ||
		    json_is_null(json_object_get(obj, "owner_id"))) {
			json_t *owner = world_add_user("owner", false);
			json_object_set(obj, "owner_id", json_object_get(owner, "id"));
			json_object_set_new(g->members,
			                    json_string_value(json_object_get(owner, "id")),
			                    new_member(owner, json_array(), NULL));
		}
	}
	json_decref(root);
	return 0;
}

int world_load(const char *file, char *err, size_t errsize)
{
	struct world *w = &sim.w;
	w->users = json_object();
	w->dm_closed = json_object();
	w->dms = json_object();
	w->messages = json_object();
	w->msg_index = json_object();
	w->nonces = json_object();
	w->interactions = json_object();
	w->thread_members = json_object();
	w->votes = json_object();
	if (!file) {
		sample_world();
		return 0;
	}
	return load_file(file, err, errsize);
}

void world_free(void)
{
	struct world *w = &sim.w;
	for (size_t i = 0; i < w->nguilds; i++) {
		struct guild *g = &w->guilds[i];
		json_decref(g->obj);
		json_decref(g->roles);
		json_decref(g->channels);
		json_decref(g->members);
		json_decref(g->voice);
		json_decref(g->events);
		json_decref(g->commands);
	}
	free(w->guilds);
	json_decref(w->app);
	json_decref(w->bot);
	json_decref(w->users);
	json_decref(w->dm_closed);
	json_decref(w->dms);
	json_decref(w->messages);
	json_decref(w->msg_index);
	json_decref(w->nonces);
	json_decref(w->interactions);
	json_decref(w->thread_members);
	json_decref(w->votes);
	memset(w, 0, sizeof(*w));
}

struct guild *world_guild(const char *id)
{
	for (size_t i = 0; id && i < sim.w.nguilds; i++)
		if (strcmp(json_string_value(json_object_get(sim.w.guilds[i].obj, "id")), id) == 0)
			return &sim.w.guilds[i];
	return NULL;
}

json_t *world_user(const char *id)
{
	return id ? json_object_get(sim.w.users, id) : NULL;
}

json_t *world_channel(const char *id, struct guild **gout)
{
	if (gout)
		*gout = NULL;
	if (!id)
		return NULL;
	for (size_t i = 0; i < sim.w.nguilds; i++) {
		json_t *c = json_object_get(sim.w.guilds[i].channels, id);
		if (c) {
			if (gout)
				*gout = &sim.w.guilds[i];
			return c;
		}
	}
	const char *k;
	json_t *dm;
	json_object_foreach(sim.w.dms, k, dm)
		if (strcmp(json_string_value(json_object_get(dm, "id")), id) == 0)
			return dm;
	return NULL;
}

json_t *world_member(struct guild *g, const char *user_id)
{
	return g && user_id ? json_object_get(g->members, user_id) : NULL;
}

static uint64_t perm_of(json_t *v)
{
	const char *s = json_string_value(v);
	return s ? strtoull(s, NULL, 10) : 0;
}

int world_top_role_position(struct guild *g, const char *user_id)
{
	json_t *m = world_member(g, user_id);
	int top = 0;
	size_t i;
	json_t *rid;
	json_array_foreach(json_object_get(m, "roles"), i, rid) {
		json_t *r = json_object_get(g->roles, json_string_value(rid));
		int p = (int)json_integer_value(json_object_get(r, "position"));
		if (p > top)
			top = p;
	}
	return top;
}

uint64_t world_perms(struct guild *g, const char *user_id, json_t *channel)
{
	const char *gid = json_string_value(json_object_get(g->obj, "id"));
	const char *owner = json_string_value(json_object_get(g->obj, "owner_id"));
	json_t *m = world_member(g, user_id);
	if (!m)
		return 0;
	if (owner && strcmp(owner, user_id) == 0)
		return ~0ull;
	uint64_t p = perm_of(json_object_get(json_object_get(g->roles, gid), "permissions"));
	size_t i;
	json_t *rid;
	json_array_foreach(json_object_get(m, "roles"), i, rid)
		p |= perm_of(json_object_get(json_object_get(g->roles, json_string_value(rid)),
		                             "permissions"));
	if (p & P_ADMINISTRATOR)
		return ~0ull;
	if (!channel)
		return p;
	/* threads take their parent's overwrites */
	json_t *ch = channel;
	int t = (int)json_integer_value(json_object_get(channel, "type"));
	if (t == 10 || t == 11 || t == 12) {
		json_t *parent = json_object_get(
		    g->channels, json_string_value(json_object_get(channel, "parent_id")));
		if (parent)
			ch = parent;
	}
	json_t *ow = json_object_get(ch, "permission_overwrites");
	uint64_t allow = 0, deny = 0;
	json_t *o;
	json_array_foreach(ow, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		if (id && strcmp(id, gid) == 0) {
			p &= ~perm_of(json_object_get(o, "deny"));
			p |= perm_of(json_object_get(o, "allow"));
		}
	}
	json_array_foreach(ow, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		if (json_integer_value(json_object_get(o, "type")) != 0 || !id ||
		    strcmp(id, gid) == 0)
			continue;
		size_t k;
		json_t *rid2;
		json_array_foreach(json_object_get(m, "roles"), k, rid2)
			if (strcmp(json_string_value(rid2), id) == 0) {
				allow |= perm_of(json_object_get(o, "allow"));
				deny |= perm_of(json_object_get(o, "deny"));
			}
	}
	p = (p & ~deny) | allow;
	json_array_foreach(ow, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		if (json_integer_value(json_object_get(o, "type")) == 1 && id &&
		    strcmp(id, user_id) == 0) {
			p &= ~perm_of(json_object_get(o, "deny"));
			p |= perm_of(json_object_get(o, "allow"));
		}
	}
	return p;
}

json_t *world_member_json(struct guild *g, json_t *member)
{
	json_t *m = json_copy(member);
	return m;
}

static json_t *values(json_t *map, int threads)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(map, k, v) {
		if (threads >= 0) {
			int t = (int)json_integer_value(json_object_get(v, "type"));
			int is_thread = t == 10 || t == 11 || t == 12;
			if (is_thread != threads)
				continue;
		}
		json_array_append(a, v);
	}
	return a;
}

json_t *world_guild_json(struct guild *g, bool full)
{
	json_t *j = json_deep_copy(g->obj);
	json_object_set_new(j, "roles", values(g->roles, -1));
	json_object_set_new(j, "emojis", json_array());
	json_object_set_new(j, "stickers", json_array());
	if (!full)
		return j;
	char at[64];
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_object_set_new(j, "channels", values(g->channels, 0));
	json_object_set_new(j, "threads", values(g->channels, 1));
	json_object_set_new(j, "member_count",
	                    json_integer((json_int_t)json_object_size(g->members)));
	json_object_set_new(j, "large", json_boolean(json_object_size(g->members) > 250));
	json_object_set_new(j, "unavailable", json_false());
	json_object_set_new(j, "joined_at", json_string(at));
	json_object_set_new(j, "voice_states", values(g->voice, -1));
	json_object_set_new(j, "presences", json_array());
	json_object_set_new(j, "stage_instances", json_array());
	json_object_set_new(j, "guild_scheduled_events", values(g->events, -1));
	/* As on Discord: only the bot itself and members in voice channels. */
	json_t *members = json_array();
	const char *bid = json_string_value(json_object_get(sim.w.bot, "id"));
	json_array_append(members, json_object_get(g->members, bid));
	const char *k;
	json_t *v;
	json_object_foreach(g->voice, k, v)
		if (strcmp(k, bid) != 0 && json_object_get(g->members, k))
			json_array_append(members, json_object_get(g->members, k));
	json_object_set_new(j, "members", members);
	return j;
}

json_t *world_state(void)
{
	struct world *w = &sim.w;
	json_t *guilds = json_array();
	for (size_t i = 0; i < w->nguilds; i++) {
		struct guild *g = &w->guilds[i];
		json_t *gj = json_deep_copy(g->obj);
		json_object_set_new(gj, "roles", values(g->roles, -1));
		json_object_set_new(gj, "channels", values(g->channels, 0));
		json_object_set_new(gj, "threads", values(g->channels, 1));
		json_object_set_new(gj, "members", values(g->members, -1));
		json_object_set_new(gj, "voice_states", values(g->voice, -1));
		json_object_set_new(gj, "scheduled_events", values(g->events, -1));
		json_object_set_new(gj, "commands", values(g->commands, -1));
		json_array_append_new(guilds, gj);
	}
	return json_pack("{s:O, s:O, s:o, s:O, s:O, s:O, s:O, s:O}", "application", w->app, "bot",
	                 w->bot, "guilds", guilds, "messages", w->messages, "dm_channels", w->dms,
	                 "thread_members", w->thread_members, "poll_votes", w->votes,
	                 "interactions", w->interactions);
}
