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

void sync_sources(uv_loop_t *loop, struct db *db, struct httpc *http, const struct config *cfg,
                  const struct sync_opts *o, sync_done_cb done, void *ud);

#endif
