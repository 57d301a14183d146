#ifndef CB_STAFF_H
#define CB_STAFF_H
#include <stddef.h>
#include <uv.h>

#include "cache.h"
#include "config.h"
#include "db.h"
#include "interact.h"
#include "mappings.h"
#include "rest.h"

/* What staff are told in each guild's audit channel, and what they confirm there.
 *
 * Roster sources: when a source's syncs start failing (an error, an unreadable answer, a roster
 * refused by the shrink guard) every guild whose mappings use it gets one message saying which
 * source, why, and that nothing was removed; when it syncs again, one more. Both go through the
 * outbox under keys made of the guild, the source and the id of the failure streak's first
 * failed sync, so a source failing every 30 s posts once, and a restart posts nothing again.
 *
 * Held removals: a reconcile whose removals exceed removals.confirm_share posts one message with
 * a Confirm removals button, keyed by the removal set. Staff pressing it (checked on the server)
 * run the guild's reconcile with that set allowed; when the plan has changed meanwhile it holds
 * again and asks anew. The message then says who confirmed. */

struct staff;

struct staff *staff_new(uv_loop_t *loop, struct db *db);
/* What is in force (all borrowed; called again before any of them is freed). A confirmation
 * under way on the old mappings is given up (its staff member is told to press again). */
void staff_set(struct staff *s, const struct config *cfg, const struct mappings *maps,
               struct rest *rest, struct cache *cache);
/* Looks at every source's recorded state and posts what staff have not been told yet. */
void staff_check_sources(struct staff *s);
/* A reconcile held removals (reconcile_opts.held). */
void staff_removals_held(struct staff *s, const char *guild, const char *removal_set,
                         size_t removals, size_t managed, double share);
/* Gives up what is under way; staff_free once the loop has run down. */
void staff_stop(struct staff *s);
void staff_free(struct staff *s);

/* The Confirm removals button (commands.c). */
void staff_ix_confirm(struct ix *ix);

#endif
