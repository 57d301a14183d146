#ifndef CB_CONNECTOR_H
#define CB_CONNECTOR_H
#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "err.h"
#include "httpc.h"

/* A connector reads one kind of outside source and hands back a snapshot: a JSON object
 * with the lists db/migrations/0006_sources.sql describes (people, memberships, assignments,
 * due_dates, submissions; "complete" flags; the "cursor" to keep for the next sync). Writing
 * it into PostgreSQL, in one transaction with the shrink guard, is the sync driver's job
 * (connectors/sync.c), the same for every source. */

struct source_env {
	uv_loop_t *loop;
	struct httpc *http;
	const struct source_cfg *cfg;
	const char *token;    /* from cfg->token_env; NULL when the source needs none */
	const json_t *cursor; /* what the last good sync kept; {} the first time */
	/* a progress line for long fetches ("42 of 120 pages"); may be NULL */
	void (*progress)(void *ud, const char *line);
	void *progress_ud;
};

/* Called once per sync, on the loop: snapshot (a new reference, the callee's) or err. A
 * snapshot of NULL with no error means "unchanged since the cursor": nothing to apply. */
typedef void (*connector_done)(void *ud, json_t *snapshot, const struct err *err);

struct connector_ops {
	const char *type;
	/* Checks what the config gives (URL or path, token). env outlives the connector. */
	void *(*init)(const struct source_env *env, struct err *err);
	void (*sync)(void *c, connector_done done, void *ud);
	/* Sends a short plain text to one person (the source's own id for them), through the
	 * source's messaging: verification codes travel this way. NULL when the source has no
	 * messaging. done runs once, on the loop. Not while a sync of the same connector runs. */
	void (*send)(void *c, const char *person, const char *subject, const char *text,
	             void (*done)(void *ud, const struct err *err), void *ud);
	/* A few words for people: "roster file /srv/roster.csv". */
	void (*describe)(void *c, char *buf, size_t size);
	void (*free)(void *c);
};

/* The connector for a config type, or NULL when this build has none. */
const struct connector_ops *connector_find(const char *type);

extern const struct connector_ops roster_file_connector, canvas_connector, moodle_connector,
    pretix_connector, ical_connector, pretalx_connector, holidays_connector;

#endif
