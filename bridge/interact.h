#ifndef CB_INTERACT_H
#define CB_INTERACT_H
#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "cache.h"
#include "db.h"
#include "mappings.h"
#include "rest.h"

/* Interactions: slash commands, buttons, selects and modal submits, routed to handlers declared
 * in one table (bridge/commands.c), and the guild's command set registered only when it changed.
 *
 * Routing. Commands go by name. Components and modal submits go by their custom_id, encoded as
 *
 *     prefix[:arg[:arg...]]        e.g. "tk:claim:42" -> the route "tk:claim", args {"42"}
 *
 * where a route's name is the longest declared prefix that matches up to a ':' and each argument
 * is percent-encoded for '%' and ':' (ix_custom_id builds it; at most 100 bytes, Discord's
 * limit). State that must survive a restart lives in the custom_id or in PostgreSQL, never in
 * memory.
 *
 * Answers. A handler answers exactly once, at once or later: ix_reply (a message, or for
 * IX_UPDATE routes the new content of the message the component is on), ix_modal, or ix_fail.
 * One that has not answered within defer_ms of the interaction's arrival is deferred for it
 * (Discord allows 3 s), and its answer then edits the deferred response. A route flagged
 * IX_MODAL is never deferred, because a deferred interaction can no longer open a modal: its
 * handler must call ix_modal before returning. A failure becomes a polite ephemeral message and
 * a log line; a handler that has not answered after 10 minutes is failed for it. A handler
 * still answers exactly once even then, or when the router has gone meanwhile (its answer is
 * dropped): the interaction is freed by that answer.
 *
 * Staff. Commands flagged IX_STAFF are registered with default_member_permissions "0" (hidden
 * from everyone but administrators until the server grants them) and are checked here against
 * the staff roles, by name or id; the Administrator permission passes too. */

#define IX_STAFF     1u /* staff only */
#define IX_MODAL     2u /* answers with a modal, at once; never deferred */
#define IX_EPHEMERAL 4u /* only the user sees the answer (and the "thinking..." of a deferral) */
#define IX_UPDATE    8u /* a component whose answer replaces the message it is on */

enum ix_type { IX_COMMAND = 2, IX_COMPONENT = 3, IX_MODAL_SUBMIT = 5 };

struct ix;

struct ix_def {
	enum ix_type type;
	const char *name;        /* command name, or custom_id route */
	const char *description; /* commands: shown in Discord */
	const char *options;     /* commands: a JSON array of options, or NULL */
	unsigned flags;
	void (*handler)(struct ix *ix);
};

struct ix_router;

struct ix_opts {
	unsigned defer_ms;              /* 0: 2000 */
	const char *const *staff_roles; /* names or ids, NULL-terminated; copied */
	unsigned give_up_ms;            /* an unanswered handler is failed after; 0: 600000 */
};

/* defs (borrowed, static) are the whole set; ud is handed to handlers through ix_ud. */
struct ix_router *ix_router_new(uv_loop_t *loop, struct rest *rest, struct db *db,
                                struct cache *cache, const struct ix_def *defs, size_t ndefs,
                                const struct ix_opts *o, void *ud);
/* The application id, from READY; needed for webhooks and command registration. */
void ix_router_set_app(struct ix_router *r, const char *application_id);
/* The guild's text for key (its mappings'), or NULL for the built-in one; ud is the
 * router's. */
typedef const char *(*ix_text_fn)(void *ud, const char *guild_id, enum mappings_text key);
/* Where the router's own messages (failures, refusals) take their words from. */
void ix_router_set_text(struct ix_router *r, ix_text_fn text);
/* New staff roles after a reload. */
void ix_router_set_staff(struct ix_router *r, const char *const *staff_roles);

/* An INTERACTION_CREATE's data (borrowed). */
void ix_dispatch(struct ix_router *r, json_t *interaction);

/* Registers the command set with the guild (one bulk overwrite) unless PostgreSQL says this
 * very set is already there. */
void ix_sync_commands(struct ix_router *r, const char *guild_id);
/* The command set as registered, and its hash (for tests and `check`). */
json_t *ix_commands_json(const struct ix_router *r);

/* Interactions waiting for an answer. */
size_t ix_pending(const struct ix_router *r);

/* Fails what is pending ("restarting") and frees the router once the loop has run down. */
void ix_router_free(struct ix_router *r);

/* --- for handlers ------------------------------------------------------------------------- */

void *ix_ud(const struct ix *ix);
json_t *ix_data(const struct ix *ix); /* the whole interaction (borrowed) */
const char *ix_user_id(const struct ix *ix);
const char *ix_guild_id(const struct ix *ix); /* NULL in DMs */
struct db *ix_db(const struct ix *ix);
struct cache *ix_cache(const struct ix *ix);
/* A slash command's option by name (borrowed; NULL when absent). */
json_t *ix_option(const struct ix *ix, const char *name);
/* A modal's text input by custom_id (borrowed; NULL when absent). */
const char *ix_field(const struct ix *ix, const char *custom_id);
/* The k-th argument of a custom_id, decoded into buf. Returns its length, or -1. */
int ix_arg(const struct ix *ix, int k, char *buf, size_t cap);
/* A select's chosen values (borrowed array of strings, or NULL). */
json_t *ix_values(const struct ix *ix);

/* Answers; each takes the JSON (a reference is stolen) and ends the interaction. Messages get
 * allowed_mentions {"parse": []} unless they set it themselves. */
void ix_reply(struct ix *ix, json_t *message);
void ix_modal(struct ix *ix, json_t *modal);
/* why goes to the log; the user reads a polite apology (ephemeral). */
void ix_fail(struct ix *ix, const char *why);

/* Builds "route:arg:arg" from a NULL-terminated list of arguments. Returns its length, or -1
 * when it would exceed Discord's 100 bytes or cap. */
int ix_custom_id(char *buf, size_t cap, const char *route, const char *const *args);

#endif
