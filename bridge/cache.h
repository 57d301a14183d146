#ifndef CB_CACHE_H
#define CB_CACHE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jtok.h"

/* What the bridge knows of Discord: guilds with their roles, channels and members, kept from
 * GUILD_CREATE, member chunks and events. Compact on purpose: snowflakes as 64-bit integers,
 * a member's roles as one-byte indexes into its guild's role table, names in one string arena
 * per guild, no JSON kept. A member costs a few dozen bytes. */

struct cache;

struct cache_member {
	uint64_t user_id;
	const char *username; /* borrowed from the cache */
	const char *nick;     /* NULL when none */
	size_t nroles;
	uint64_t roles[250];
};

struct cache *cache_new(void);
void cache_free(struct cache *c);

/* Applies a gateway dispatch: its name and its data, the value d in j. Returns 1 when it
 * changed the cache. */
int cache_apply(struct cache *c, const char *t, const struct jtok *j, int d);
/* The same for data held as a tree (read over REST). */
int cache_apply_json(struct cache *c, const char *t, json_t *d);

size_t cache_guild_count(const struct cache *c);
uint64_t cache_guild_id(const struct cache *c, size_t i);
size_t cache_member_count(const struct cache *c, uint64_t guild);
size_t cache_role_count(const struct cache *c, uint64_t guild);
size_t cache_channel_count(const struct cache *c, uint64_t guild);
/* 1 when every member chunk of the guild has arrived. */
int cache_members_complete(const struct cache *c, uint64_t guild);
/* Fills out; returns 0, or -1 when the guild or member is unknown. */
int cache_member(const struct cache *c, uint64_t guild, uint64_t user, struct cache_member *out);
/* The role's id by name, 0 when none. */
uint64_t cache_role_by_name(const struct cache *c, uint64_t guild, const char *name);
/* The id of the guild's text channel called name (the first one), 0 when none. */
uint64_t cache_channel_by_name(const struct cache *c, uint64_t guild, const char *name);
/* Bytes the cache holds (its own structures, not the allocator's overhead). */
size_t cache_bytes(const struct cache *c);

#endif
