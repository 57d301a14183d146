#ifndef CB_OUTBOX_H
#define CB_OUTBOX_H
#include <uv.h>

#include "db.h"
#include "err.h"
#include "rest.h"

/* The outbox executor: claims pending rows of the outbox table (FOR UPDATE SKIP LOCKED, with a
 * lease so that a crashed process's rows come back), carries them out through the REST client
 * and marks them done, retries them later (backoff with jitter), or parks them with the reason.
 *
 * Several processes can share one table. Each LISTENs on OUTBOX_CHANNEL, on which a trigger
 * notifies at commit when rows are enqueued, and claims at once; its own retries wake it when
 * due; a slow poll catches lost notifications and leases that expired.
 *
 * Nothing twice: messages go out with a nonce derived from the row and enforce_nonce; role
 * changes are idempotent; a channel whose creation may have happened before a crash is looked
 * for before it is created again.
 *
 * Kinds and payloads (JSON):
 *   role_add, role_remove  {"guild_id", "user_id", "role_id", "reason"?}
 *   message_create         {"channel_id", "body": {...}}  (allowed_mentions defaults to none)
 *   message_edit           {"channel_id", "message_id", "body": {...}}
 *   channel_create         {"guild_id", "body": {"name", "type", "parent_id"?, ...}, "reason"?,
 *                           "own"?}
 *   role_create            {"guild_id", "body": {"name", "color"?, ...}, "reason"?, "own"?}
 *   channel_edit           {"guild_id", "channel_id", "body": {...}, "reason"?, "own"?}
 *   role_edit              {"guild_id", "role_id", "body": {"name"?, "color"?, ...}, "reason"?}
 *   member_edit            {"guild_id", "user_id", "body": {"nick"?, ...}, "reason"?}
 *   dm                     {"user_id", "body": {...}}
 *
 * Creations look first: a role, or a channel with "own", that already exists under the same
 * name (and type and parent) and that no other row or owned object accounts for was created
 * by an attempt whose answer was lost, and is adopted instead of created twice. "own"
 * {"kind", "key", "name"?, "parent_id"?, "archived"?} records the object in owned_objects in
 * the statement that marks the row done. An edit's "owned_name" (role_edit, channel_edit)
 * becomes the edited object's owned_objects.name when its row is done (a trigger, 0012).
 * Enqueue with OUTBOX_INSERT inside the caller's own transaction. */

#define OUTBOX_CHANNEL "outbox"

#define OUTBOX_INSERT                                                                              \
	"INSERT INTO outbox (guild_id, kind, key, payload) VALUES ($1, $2, $3, $4::jsonb) "        \
	"ON CONFLICT (key) DO NOTHING"

struct outbox;

struct outbox_opts {
	unsigned lease_ms;     /* how long a claim holds; 0: 30000 */
	unsigned batch;        /* rows claimed at once; 0: 100 */
	unsigned poll_ms;      /* fallback look for work without a notification; 0: 5000 */
	unsigned max_attempts; /* then parked; 0: 10 */
	unsigned retry_ms;     /* first retry delay, doubled per attempt up to 10 minutes, each
	                          between half and the whole; 0: 2000 */
};

struct outbox *outbox_new(uv_loop_t *loop, struct db *db, struct rest *rest,
                          const struct outbox_opts *o, struct err *err);
/* Looks for work now (after an enqueue). */
void outbox_kick(struct outbox *ob);
/* Stops claiming; the loop must run down, then outbox_free. */
void outbox_stop(struct outbox *ob);
void outbox_free(struct outbox *ob);

#endif
