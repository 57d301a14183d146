#ifndef CB_REGISTRATION_H
#define CB_REGISTRATION_H
#include <uv.h>

#include "cache.h"
#include "config.h"
#include "db.h"
#include "httpc.h"
#include "interact.h"
#include "mappings.h"

/* Registration (PRODUCT.md §1): the persistent Register message, the City -> Program -> Cohort
 * selects, the identifier modal, the proof the mappings ask for (pretix order code and name, a
 * one-time code through the LMS's messaging, or staff approval), the attempt limits, and the
 * claim of a roster entry by one Discord account.
 *
 * Every step's state is in PostgreSQL (db/migrations/0010_registration.sql): a restart between
 * two clicks loses nothing, and several processes may answer the same learner. Every Discord
 * side effect (roles, nickname, messages, audit lines) goes through the outbox, enqueued in the
 * same statement that decides it. */

struct reg;

struct reg *reg_new(uv_loop_t *loop, struct db *db, struct httpc *http);
/* The configuration and mappings in force (borrowed; the caller calls this again before it
 * frees them). */
void reg_set_config(struct reg *r, const struct config *cfg, const struct mappings *maps);
/* The guild's channels are known (GUILD_CREATE, a channel created): posts or updates its
 * Register message. */
void reg_guild_ready(struct reg *r, struct cache *c, const char *guild_id);
/* GUILD_MEMBER_ADD: a registered learner who comes back gets their roles again. */
void reg_member_joined(struct reg *r, const char *guild_id, const char *user_id);
/* The guild's text for key, as its mappings word it; NULL when no mappings name the guild. */
const char *reg_text(const struct reg *r, const char *guild_id, enum mappings_text key);
void reg_free(struct reg *r);

/* The routes and commands (bridge/commands.c lists them); they reach the module through
 * discord_registration(ix_ud(ix)). */
void reg_ix_start(struct ix *ix);
void reg_ix_pick(struct ix *ix);
void reg_ix_go(struct ix *ix);
void reg_ix_ident(struct ix *ix);
void reg_ix_code(struct ix *ix);
void reg_ix_code_submit(struct ix *ix);
void reg_ix_decide(struct ix *ix);
void reg_cmd_link(struct ix *ix);
void reg_cmd_unlink(struct ix *ix);
void reg_cmd_approve(struct ix *ix);
void reg_cmd_lookup(struct ix *ix);

#endif
