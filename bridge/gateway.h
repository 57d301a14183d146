#ifndef CB_GATEWAY_H
#define CB_GATEWAY_H
#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "err.h"
#include "jtok.h"

/* The Discord gateway client: one shard's WebSocket on the loop (libwebsockets client).
 *
 * HELLO, heartbeats with jitter carrying the last sequence, IDENTIFY or RESUME, dispatch with
 * sequence tracking, zombie detection (a heartbeat not acknowledged before the next one),
 * RESUME after op 7, resumable closes, closes without a code and op 9 true; a fresh IDENTIFY
 * after op 9 false (after 1-5 s), 4007 and 4009; backoff with jitter on repeated failures;
 * the codes that must not be retried (4004, 4010-4014) end the client with a clear reason.
 * The 120-per-60-s send limit and the IDENTIFY budget are kept; zlib-stream is optional. */

struct gw;

enum gw_state {
	GW_CONNECTING,
	GW_READY, /* READY or RESUMED received */
	GW_DOWN,  /* the connection ended; the client reconnects by itself */
	GW_FATAL, /* the client stopped: see the reason; do not restart it unchanged */
};

struct gw_opts {
	const char *url; /* the gateway URL from GET /gateway/bot (ws:// or wss://) */
	const char *token;
	unsigned intents;
	int shard_id, shard_count;    /* shard_count 0: no shard field */
	bool compress;                /* zlib-stream */
	unsigned identify_remaining;  /* session_start_limit.remaining (0: unknown, assume fine) */
	unsigned identify_reset_ms;   /* session_start_limit.reset_after */
	unsigned identify_spacing_ms; /* between IDENTIFYs (max_concurrency 1); 0: 5000 */
};

struct gw_handler {
	/* Every dispatch (op 0), in order: its name and its data, the value d of the message in j
	 * (borrowed for the call; jtok_json(j, d) gives a tree when one is wanted). */
	void (*dispatch)(void *ud, const char *t, const struct jtok *j, int d, long seq);
	/* State changes, with a reason for DOWN and FATAL. */
	void (*state)(void *ud, enum gw_state st, const char *why);
};

struct gw *gw_new(uv_loop_t *loop, const struct gw_opts *o, const struct gw_handler *h, void *ud,
                  struct err *err);

/* Restores a session to RESUME on the first connection (from PostgreSQL after a restart). */
void gw_restore(struct gw *g, const char *session_id, long seq, const char *resume_url);

int gw_start(struct gw *g, struct err *err);

/* Sends op with d (borrowed) within the send limit; queued when over it. */
int gw_send(struct gw *g, int op, json_t *d);

/* The session to persist: id (NULL when none), last sequence and resume URL. Borrowed. */
const char *gw_session_id(const struct gw *g);
long gw_seq(const struct gw *g);
const char *gw_resume_url(const struct gw *g);

struct gw_stats {
	unsigned long connects, identifies, resumes, zombies, dispatches, sent, heartbeats;
};
void gw_get_stats(const struct gw *g, struct gw_stats *out);

/* Stops: drops the connection without ending the session (a later process can RESUME it).
 * The loop must then run until its handles are closed; gw_free releases the rest. */
void gw_close(struct gw *g);
void gw_free(struct gw *g);

#endif
