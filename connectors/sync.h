#ifndef CB_SYNC_H
#define CB_SYNC_H
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "db.h"
#include "httpc.h"

/* Runs configured sources one after another: fetch through the source's connector, then
 * apply the snapshot in one statement (cb_sync_apply: upserts, withdrawals, the shrink guard,
 * the sync's record). A failed fetch is recorded (cb_sync_failed) and changes nothing. */

struct sync_opts {
	const char *only; /* one source by name, or NULL for all */
	bool dry_run;     /* report what would change; change and record nothing */
	FILE *out;        /* a line per source (and progress lines); NULL: quiet */
};

/* done gets the number of sources that failed (or -1 when only names no source). */
typedef void (*sync_done_cb)(int failed, void *ud);

struct sync_run;

/* Starts the run; its handle, or NULL when it ended at once (done has run). cfg must live
 * until done. */
struct sync_run *sync_sources(uv_loop_t *loop, struct db *db, struct httpc *http,
                              const struct config *cfg, const struct sync_opts *o,
                              sync_done_cb done, void *ud);

/* Abandons a run: its connector is freed at once, nothing more is written, done never runs.
 * What a source had applied stays (each source is one statement). */
void sync_cancel(struct sync_run *r);

/* The running bridge's schedule: every source at start, then again after its interval_s
 * (default 900; roster files 60: a file unchanged since is not even parsed), one source at a
 * time; after a failure sooner: retry_s (30), doubling with each failure in a row. */
struct sync_sched;

struct sync_sched *sync_sched_start(uv_loop_t *loop, struct db *db, struct httpc *http,
                                    const struct config *cfg);
/* The configuration changed to nc. Returns old when the caller may free it now; NULL when a
 * sync still reads it (the schedule frees it once that one ends). */
struct config *sync_sched_reload(struct sync_sched *s, const struct config *nc, struct config *old);
/* cb runs after each scheduled sync of a source (failed: it did not apply), so that the
 * bridge can bring Discord in step with what changed. */
void sync_sched_on_synced(struct sync_sched *s,
                          void (*cb)(const char *source, int failed, void *ud), void *ud);
/* Cancels a sync under way and releases the schedule once its timer is closed. */
void sync_sched_stop(struct sync_sched *s);

#endif
