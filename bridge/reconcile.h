#ifndef CB_RECONCILE_H
#define CB_RECONCILE_H
#include <stdio.h>
#include <uv.h>

#include "db.h"
#include "mappings.h"
#include "rest.h"

/* Reconciling a guild: the desired state (the mappings, the roster in PostgreSQL, the
 * registrations) against what Discord holds (read over REST each time: roles, channels,
 * members) gives a plan of actions. Planning changes nothing. Applying enqueues the plan's
 * actions into the outbox under stable keys (one statement per round) and waits until the
 * executor has carried them out; actions that need an id Discord has not given yet (a channel's
 * category, a role in its overwrites) come in the next round, planned afresh, so that any round
 * may be cut short by a crash and the next run picks up where Discord stands.
 *
 * Only objects in owned_objects are changed: those the bridge created, and those the mappings
 * name that were found by name (recorded with created_by_bridge false). What the bridge created
 * is renamed, recoloured and moved to its category in place when the mappings change
 * (owned_objects.name is the name it last gave); what it found by name keeps its name, colour
 * and place, with a warning. A cohort ends after the last second of its end_date in its own
 * time zone; ended cohorts' channels are archived read-only. Discord's limits are
 * checked on the whole desired state before anything is enqueued. Removals are guarded: a
 * member whose source's last sync failed loses nothing, and more removals than the mappings'
 * removals.confirm_share of the managed members are held until allowed. */

#define RECONCILE_ERROR 1 /* limits exceeded, state unreadable, actions parked */
#define RECONCILE_HELD  3 /* removals wait for a confirmation */

struct reconcile_opts {
	const char *guild;   /* NULL: every guild the mappings describe */
	int apply;           /* 0: plan only */
	int allow_removals;  /* removals beyond the share go ahead */
	unsigned max_rounds; /* 0: 6 */
	unsigned poll_ms;    /* how often a round looks whether its rows are done; 0: 200 */
	FILE *out;           /* the readable plan and progress; NULL: none */
	int json;            /* the plan as one JSON document on out instead */
	/* A staff confirmation: removals go ahead beyond the share only when the plan's removal
	 * set (the "removal_set" of plan --json) is still this one; NULL: none. */
	const char *confirm;
	size_t *confirmed; /* the removals the confirmation let through are added here */
	/* Called for each guild whose removals wait, with the removal set's key, so that staff can
	 * be asked (NULL: nobody is); ud is reconcile_start's. */
	void (*held)(const char *guild, const char *removal_set, size_t removals, size_t managed,
	             double share, void *ud);
};

/* rc is 0, RECONCILE_ERROR or RECONCILE_HELD; msg says why (never NULL). */
typedef void (*reconcile_done_cb)(int rc, const char *msg, void *ud);

struct reconcile;

/* Starts; maps must live until done runs. done is called exactly once, never from inside
 * reconcile_start. */
struct reconcile *reconcile_start(uv_loop_t *loop, struct db *db, struct rest *rest,
                                  const struct mappings *maps, const struct reconcile_opts *o,
                                  reconcile_done_cb done, void *ud);

/* Gives up: done is not called; the run frees itself once its pending request returns. */
void reconcile_cancel(struct reconcile *r);

#endif
