#ifndef CB_DISCORD_H
#define CB_DISCORD_H
#include <uv.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "httpc.h"
#include "rest.h"

/* The daemon's connection to Discord: the REST client, GET /gateway/bot, and the gateway
 * client, whose session is kept in PostgreSQL so a restarted process resumes it. */

struct discord;

/* Called once when Discord cannot be used as configured (a rejected token, disallowed
 * intents ...); reason names the cause. */
typedef void (*discord_fatal_cb)(void *ud, const char *reason);

struct discord *discord_start(uv_loop_t *loop, struct httpc *http, struct db *db,
                              const struct config *cfg, const char *token, discord_fatal_cb fatal,
                              void *ud, struct err *err);

/* Takes what may change on a reload (the staff roles). */
void discord_reload(struct discord *d, const struct config *cfg);

/* "starting", "connecting", "ready", "down" or "stopped". */
const char *discord_state(const struct discord *d);
int discord_ready(const struct discord *d);
struct rest *discord_rest(struct discord *d);

/* The registration module the interaction handlers and member events reach (borrowed; NULL
 * until set). */
struct reg;
void discord_set_registration(struct discord *d, struct reg *r);
struct reg *discord_registration(struct discord *d);
/* The staff notices and confirmations (bridge/staff.c), reached the same way. */
struct staff;
void discord_set_staff(struct discord *d, struct staff *s);
struct staff *discord_staff(struct discord *d);
/* The gateway's cache (borrowed): channels by name for the audit channel. */
struct cache *discord_cache(struct discord *d);

/* Saves the session (a queued database write) and closes; the loop must run down, then
 * discord_free. */
void discord_stop(struct discord *d);
void discord_free(struct discord *d);

#endif
