#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "jtok.h"

#define MAX_ROLES 250 /* Discord's limit: a role index fits a byte */

struct role {
	uint64_t id;
	uint32_t name; /* arena offset */
	int32_t position;
	uint64_t permissions;
};

struct channel {
	uint64_t id, parent_id;
	uint32_t name;
	uint8_t type;
};

/* 24 bytes. Roles live in the arena as nroles one-byte indexes. */
struct member {
	uint64_t user_id;
	uint32_t name, nick; /* arena offsets; nick 0: none */
	uint32_t roles;
	uint8_t nroles;
};

struct guild {
	uint64_t id;
	struct role *roles;
	size_t nroles;
	struct channel *channels;
	size_t nchannels, chcap;
	/* members side by side, found through an open-addressing index of positions + 1 (4 bytes
	 * a slot, so the slack of a hash table costs little) */
	struct member *members;
	size_t mcap, mcount;
	uint32_t *index;
	size_t icap;
	char *arena; /* strings and role lists; offset 0 is the empty string */
	size_t alen, acap, garbage;
	int chunks_seen, chunk_count;
};

struct cache {
	struct guild *guilds;
	size_t n, cap;
};

#define GET(i, key) jtok_get(j, (i), (key))

static uint32_t arena_put(struct guild *g, const void *p, size_t n, int nul)
{
	size_t need = (g->alen ? g->alen : 1) + n + (nul ? 1 : 0); /* offset 0 holds "" */
	if (need > g->acap || !g->arena) {
		size_t cap = g->acap ? g->acap * 2 : 4096;
		while (cap < need)
			cap *= 2;
		char *a = realloc(g->arena, cap);
		if (!a)
			return 0;
		g->arena = a;
		g->acap = cap;
	}
	if (!g->alen) {
		g->arena[0] = '\0';
		g->alen = 1;
	}
	uint32_t off = (uint32_t)g->alen;
	memcpy(g->arena + off, p, n);
	if (nul)
		g->arena[off + n] = '\0';
	g->alen = off + n + (nul ? 1 : 0);
	return off;
}

/* Sets the string at *off to the value i (unescaped), reusing its room when it fits; what
 * cannot be reused is counted as garbage for the next compaction. Absent: left as is. */
static void arena_set_str(struct guild *g, uint32_t *off, const struct jtok *j, int i)
{
	char buf[1024];
	int n = jtok_is_string(j, i) ? jtok_str(j, i, buf, sizeof(buf)) : (i >= 0 ? 0 : -1);
	if (n < 0)
		return;
	size_t old = *off ? strlen(g->arena + *off) : 0;
	if (old >= (size_t)n && *off && n) {
		if (old != (size_t)n || memcmp(g->arena + *off, buf, (size_t)n) != 0) {
			memcpy(g->arena + *off, buf, (size_t)n + 1);
			g->garbage += old - (size_t)n;
		}
		return;
	}
	if (*off)
		g->garbage += old + 1;
	*off = n ? arena_put(g, buf, (size_t)n, 1) : 0;
}

/* Rewrites the arena with only what is in use, once most of it is garbage. */
static void maybe_compact(struct guild *g)
{
	if (g->garbage < 65536 || g->garbage < g->alen / 2)
		return;
	char *old = g->arena;
	g->arena = NULL;
	g->alen = g->acap = g->garbage = 0;
#define MOVE_STR(o) ((o) = (o) ? arena_put(g, old + (o), strlen(old + (o)), 1) : 0)
	for (size_t i = 0; i < g->nroles; i++)
		MOVE_STR(g->roles[i].name);
	for (size_t i = 0; i < g->nchannels; i++)
		MOVE_STR(g->channels[i].name);
	for (size_t i = 0; i < g->mcount; i++) {
		struct member *m = &g->members[i];
		MOVE_STR(m->name);
		MOVE_STR(m->nick);
		m->roles = m->nroles ? arena_put(g, old + m->roles, m->nroles, 0) : 0;
	}
#undef MOVE_STR
	free(old);
}

struct cache *cache_new(void)
{
	return calloc(1, sizeof(struct cache));
}

static void guild_clear(struct guild *g)
{
	free(g->roles);
	free(g->channels);
	free(g->members);
	free(g->index);
	free(g->arena);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		guild_clear(&c->guilds[i]);
	free(c->guilds);
	free(c);
}

static struct guild *find_guild(const struct cache *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->guilds[i].id == id)
			return &c->guilds[i];
	return NULL;
}

static struct guild *get_guild(struct cache *c, uint64_t id)
{
	struct guild *g = find_guild(c, id);
	if (g || !id)
		return g;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4;
		struct guild *n = realloc(c->guilds, cap * sizeof(*n));
		if (!n)
			return NULL;
		c->guilds = n;
		c->cap = cap;
	}
	g = &c->guilds[c->n++];
	memset(g, 0, sizeof(*g));
	g->id = id;
	return g;
}

static int role_index(const struct guild *g, uint64_t id)
{
	for (size_t i = 0; i < g->nroles; i++)
		if (g->roles[i].id == id)
			return (int)i;
	return -1;
}

static void set_role(struct guild *g, const struct jtok *j, int r)
{
	uint64_t id = jtok_u64(j, GET(r, "id"));
	int i = role_index(g, id);
	if (!id)
		return;
	if (i < 0) {
		if (g->nroles >= MAX_ROLES)
			return;
		struct role *n = realloc(g->roles, (g->nroles + 1) * sizeof(*n));
		if (!n)
			return;
		g->roles = n;
		i = (int)g->nroles++;
		memset(&g->roles[i], 0, sizeof(g->roles[i]));
	}
	struct role *ro = &g->roles[i];
	ro->id = id;
	arena_set_str(g, &ro->name, j, GET(r, "name"));
	ro->position = (int32_t)jtok_int(j, GET(r, "position"), ro->position);
	ro->permissions = jtok_u64(j, GET(r, "permissions"));
}

static void set_channel(struct guild *g, const struct jtok *j, int ch)
{
	uint64_t id = jtok_u64(j, GET(ch, "id"));
	size_t i = 0;
	if (!id)
		return;
	while (i < g->nchannels && g->channels[i].id != id)
		i++;
	if (i == g->nchannels) {
		if (g->nchannels == g->chcap) {
			size_t cap = g->chcap ? g->chcap * 2 : 16;
			struct channel *n = realloc(g->channels, cap * sizeof(*n));
			if (!n)
				return;
			g->channels = n;
			g->chcap = cap;
		}
		memset(&g->channels[i], 0, sizeof(g->channels[i]));
		g->nchannels++;
	}
	struct channel *c = &g->channels[i];
	c->id = id;
	c->parent_id = jtok_u64(j, GET(ch, "parent_id"));
	c->type = (uint8_t)jtok_int(j, GET(ch, "type"), 0);
	arena_set_str(g, &c->name, j, GET(ch, "name"));
}

static void remove_channel(struct guild *g, uint64_t id)
{
	for (size_t i = 0; i < g->nchannels; i++)
		if (g->channels[i].id == id) {
			g->channels[i] = g->channels[--g->nchannels];
			return;
		}
}

static size_t slot(const struct guild *g, uint64_t user)
{
	uint64_t h = user * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 17) & (g->icap - 1);
}

/* The index slot of user: the one holding it, or the empty one where it would go. */
static size_t find_slot(const struct guild *g, uint64_t user)
{
	size_t i = slot(g, user);
	while (g->index[i] && g->members[g->index[i] - 1].user_id != user)
		i = (i + 1) & (g->icap - 1);
	return i;
}

static struct member *find_member(const struct guild *g, uint64_t user)
{
	if (!g->icap)
		return NULL;
	uint32_t k = g->index[find_slot(g, user)];
	return k ? &g->members[k - 1] : NULL;
}

static int grow_index(struct guild *g)
{
	size_t cap = g->icap ? g->icap * 2 : 64;
	uint32_t *n = calloc(cap, sizeof(*n));
	if (!n)
		return -1;
	free(g->index);
	g->index = n;
	g->icap = cap;
	for (size_t k = 0; k < g->mcount; k++)
		g->index[find_slot(g, g->members[k].user_id)] = (uint32_t)(k + 1);
	return 0;
}

static struct member *add_member(struct guild *g, uint64_t id)
{
	if ((g->mcount + 1) * 4 > g->icap * 3 && grow_index(g) != 0)
		return NULL;
	size_t i = find_slot(g, id);
	if (g->index[i])
		return &g->members[g->index[i] - 1];
	if (g->mcount == g->mcap) {
		size_t cap = g->mcap + g->mcap / 2 + 16;
		struct member *n = realloc(g->members, cap * sizeof(*n));
		if (!n)
			return NULL;
		g->members = n;
		g->mcap = cap;
	}
	struct member *m = &g->members[g->mcount++];
	memset(m, 0, sizeof(*m));
	m->user_id = id;
	g->index[i] = (uint32_t)g->mcount;
	return m;
}

static void set_member(struct guild *g, const struct jtok *j, int m)
{
	int user = GET(m, "user");
	uint64_t id = jtok_u64(j, GET(user, "id"));
	if (!id)
		return;
	struct member *slotp = add_member(g, id);
	if (!slotp)
		return;
	arena_set_str(g, &slotp->name, j, GET(user, "username"));
	arena_set_str(g, &slotp->nick, j, GET(m, "nick"));
	int roles = GET(m, "roles");
	if (jtok_is_array(j, roles)) {
		uint8_t idx[MAX_ROLES];
		size_t n = 0;
		int e = jtok_first(j, roles);
		for (int k = 0; k < jtok_size(j, roles); k++, e = jtok_skip(j, e)) {
			int x = role_index(g, jtok_u64(j, e));
			if (x >= 0 && n < MAX_ROLES)
				idx[n++] = (uint8_t)x;
		}
		if (n <= slotp->nroles) {
			g->garbage += slotp->nroles - n;
			if (n)
				memcpy(g->arena + slotp->roles, idx, n);
		} else {
			g->garbage += slotp->nroles;
			slotp->roles = arena_put(g, idx, n, 0);
		}
		slotp->nroles = (uint8_t)n;
		if (!n)
			slotp->roles = 0;
	}
}

static void remove_member(struct guild *g, uint64_t user)
{
	if (!g->icap || !g->index[find_slot(g, user)])
		return;
	size_t i = find_slot(g, user);
	size_t k = g->index[i] - 1;
	struct member *m = &g->members[k];
	g->garbage += (m->name ? strlen(g->arena + m->name) + 1 : 0) +
	              (m->nick ? strlen(g->arena + m->nick) + 1 : 0) + m->nroles;
	/* backward-shift deletion keeps every probe chain intact */
	for (;;) {
		g->index[i] = 0;
		size_t j = i;
		for (;;) {
			j = (j + 1) & (g->icap - 1);
			if (!g->index[j])
				goto shifted;
			size_t home = slot(g, g->members[g->index[j] - 1].user_id);
			/* can the entry at j move to i? only if its home is not between i and j */
			if ((j > i && (home <= i || home > j)) ||
			    (j < i && (home <= i && home > j)))
				break;
		}
		g->index[i] = g->index[j];
		i = j;
	}
shifted:
	/* the last member fills the hole */
	if (k != --g->mcount) {
		g->members[k] = g->members[g->mcount];
		g->index[find_slot(g, g->members[k].user_id)] = (uint32_t)(k + 1);
	}
}

typedef void (*apply_fn)(struct guild *g, const struct jtok *j, int v);

static void each(struct guild *g, const struct jtok *j, int arr, apply_fn f)
{
	int e = jtok_first(j, arr);
	for (int k = 0; k < jtok_size(j, arr); k++, e = jtok_skip(j, e))
		f(g, j, e);
}

static void guild_create(struct cache *c, const struct jtok *j, int d)
{
	struct guild *g = get_guild(c, jtok_u64(j, GET(d, "id")));
	if (!g)
		return;
	each(g, j, GET(d, "roles"), set_role);
	each(g, j, GET(d, "channels"), set_channel);
	each(g, j, GET(d, "threads"), set_channel);
	each(g, j, GET(d, "members"), set_member);
}

static void role_delete(struct guild *g, int k)
{
	/* members keep indexes: the last role moves into the hole, so remap them */
	int last = (int)g->nroles - 1;
	for (size_t s = 0; s < g->mcount; s++) {
		struct member *m = &g->members[s];
		if (!m->nroles)
			continue;
		uint8_t *r = (uint8_t *)g->arena + m->roles;
		size_t w = 0;
		for (size_t x = 0; x < m->nroles; x++) {
			if (r[x] == k)
				continue;
			r[w++] = r[x] == last ? (uint8_t)k : r[x];
		}
		g->garbage += m->nroles - w;
		m->nroles = (uint8_t)w;
	}
	g->garbage += strlen(g->arena ? g->arena + g->roles[k].name : "");
	g->roles[k] = g->roles[last];
	g->nroles--;
}

static int apply(struct cache *c, const char *t, const struct jtok *j, int d)
{
	struct guild *g;

	if (strcmp(t, "GUILD_CREATE") == 0) {
		guild_create(c, j, d);
		return 1;
	}
	if (strcmp(t, "GUILD_DELETE") == 0) {
		g = find_guild(c, jtok_u64(j, GET(d, "id")));
		if (g && !jtok_is_true(j, GET(d, "unavailable"))) {
			guild_clear(g);
			*g = c->guilds[--c->n];
		}
		return 1;
	}
	uint64_t gid = jtok_u64(j, GET(d, "guild_id"));
	g = gid ? find_guild(c, gid) : NULL;
	if (!g)
		return 0;
	if (strcmp(t, "GUILD_MEMBER_UPDATE") == 0 || strcmp(t, "GUILD_MEMBER_ADD") == 0) {
		set_member(g, j, d);
		return 1;
	}
	if (strcmp(t, "GUILD_MEMBERS_CHUNK") == 0) {
		each(g, j, GET(d, "members"), set_member);
		g->chunk_count = (int)jtok_int(j, GET(d, "chunk_count"), 0);
		g->chunks_seen++;
		return 1;
	}
	if (strcmp(t, "GUILD_MEMBER_REMOVE") == 0) {
		remove_member(g, jtok_u64(j, GET(GET(d, "user"), "id")));
		return 1;
	}
	if (strcmp(t, "GUILD_ROLE_CREATE") == 0 || strcmp(t, "GUILD_ROLE_UPDATE") == 0) {
		set_role(g, j, GET(d, "role"));
		return 1;
	}
	if (strcmp(t, "GUILD_ROLE_DELETE") == 0) {
		int k = role_index(g, jtok_u64(j, GET(d, "role_id")));
		if (k < 0)
			return 0;
		role_delete(g, k);
		return 1;
	}
	if (strcmp(t, "CHANNEL_CREATE") == 0 || strcmp(t, "CHANNEL_UPDATE") == 0 ||
	    strcmp(t, "THREAD_CREATE") == 0 || strcmp(t, "THREAD_UPDATE") == 0) {
		set_channel(g, j, d);
		return 1;
	}
	if (strcmp(t, "CHANNEL_DELETE") == 0 || strcmp(t, "THREAD_DELETE") == 0) {
		remove_channel(g, jtok_u64(j, GET(d, "id")));
		return 1;
	}
	return 0;
}

int cache_apply(struct cache *c, const char *t, const struct jtok *j, int d)
{
	int changed = apply(c, t, j, d);
	if (changed)
		for (size_t i = 0; i < c->n; i++)
			maybe_compact(&c->guilds[i]);
	return changed;
}

int cache_apply_json(struct cache *c, const char *t, json_t *d)
{
	char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
	struct jtok j = {0};
	int changed = 0;
	if (s && jtok_parse(&j, s, strlen(s)) == 0)
		changed = cache_apply(c, t, &j, 0);
	jtok_free(&j);
	free(s);
	return changed;
}

size_t cache_guild_count(const struct cache *c)
{
	return c->n;
}

uint64_t cache_guild_id(const struct cache *c, size_t i)
{
	return i < c->n ? c->guilds[i].id : 0;
}

size_t cache_member_count(const struct cache *c, uint64_t guild)
{
	const struct guild *g = find_guild(c, guild);
	return g ? g->mcount : 0;
}

size_t cache_role_count(const struct cache *c, uint64_t guild)
{
	const struct guild *g = find_guild(c, guild);
	return g ? g->nroles : 0;
}

size_t cache_channel_count(const struct cache *c, uint64_t guild)
{
	const struct guild *g = find_guild(c, guild);
	return g ? g->nchannels : 0;
}

int cache_members_complete(const struct cache *c, uint64_t guild)
{
	const struct guild *g = find_guild(c, guild);
	return g && g->chunk_count > 0 && g->chunks_seen >= g->chunk_count;
}

int cache_member(const struct cache *c, uint64_t guild, uint64_t user, struct cache_member *out)
{
	const struct guild *g = find_guild(c, guild);
	const struct member *m = g ? find_member(g, user) : NULL;
	if (!m)
		return -1;
	out->user_id = m->user_id;
	if (!g->arena) {
		/* nothing stored yet: a member with neither name nor roles */
		out->username = "";
		out->nick = NULL;
		out->nroles = 0;
		return 0;
	}
	out->username = g->arena + m->name;
	out->nick = m->nick ? g->arena + m->nick : NULL;
	out->nroles = m->nroles;
	for (size_t i = 0; i < m->nroles; i++)
		out->roles[i] = g->roles[(uint8_t)g->arena[m->roles + i]].id;
	return 0;
}

uint64_t cache_role_by_name(const struct cache *c, uint64_t guild, const char *name)
{
	const struct guild *g = find_guild(c, guild);
	for (size_t i = 0; g && g->arena && i < g->nroles; i++)
		if (strcmp(g->arena + g->roles[i].name, name) == 0)
			return g->roles[i].id;
	return 0;
}

uint64_t cache_channel_by_name(const struct cache *c, uint64_t guild, const char *name)
{
	const struct guild *g = find_guild(c, guild);
	for (size_t i = 0; g && g->arena && i < g->nchannels; i++)
		if (g->channels[i].type == 0 && strcmp(g->arena + g->channels[i].name, name) == 0)
			return g->channels[i].id;
	return 0;
}

size_t cache_bytes(const struct cache *c)
{
	size_t n = sizeof(*c) + c->cap * sizeof(struct guild);
	for (size_t i = 0; i < c->n; i++) {
		const struct guild *g = &c->guilds[i];
		n += g->nroles * sizeof(struct role) + g->chcap * sizeof(struct channel) +
		     g->mcap * sizeof(struct member) + g->icap * sizeof(uint32_t) + g->acap;
	}
	return n;
}
