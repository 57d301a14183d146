#ifndef SIM_REST_H
#define SIM_REST_H
/* Shared between the REST handler files. */
#include "sim.h"

#define MAX_PARAMS 4

struct ctx {
	struct http_req *rq;
	struct http_resp *rs;
	char names[MAX_PARAMS][32];
	char values[MAX_PARAMS][128];
	int nparams;
	const char *bot_id;
};

const char *param(struct ctx *x, const char *name);
const char *query_arg(struct ctx *x, const char *name, char *buf, size_t size);
void reply(struct ctx *x, int status, json_t *body); /* takes body */
void derr(struct ctx *x, int status, int code, const char *msg);
/* 400 Invalid Form Body with one error at a dotted path (e.g. "content" or "embeds.0.title") */
void form_err(struct ctx *x, const char *path, const char *code, const char *msg);
struct guild *need_guild(struct ctx *x);
json_t *need_channel(struct ctx *x, struct guild **g);
int need_perm(struct ctx *x, struct guild *g, uint64_t perm, json_t *channel);
size_t utf8_len(const char *s);

/* rest_messages.c */
void h_messages_list(struct ctx *x);
void h_message_get(struct ctx *x);
void h_message_create(struct ctx *x);
void h_message_edit(struct ctx *x);
void h_message_delete(struct ctx *x);
void h_poll_expire(struct ctx *x);
void h_poll_voters(struct ctx *x);
void h_dm_create(struct ctx *x);
void h_thread_create(struct ctx *x);
void h_thread_from_message(struct ctx *x);
void h_thread_member_add(struct ctx *x);
void h_thread_member_remove(struct ctx *x);
void h_thread_members_list(struct ctx *x);
void h_commands_put(struct ctx *x);
void h_commands_list(struct ctx *x);
void h_interaction_callback(struct ctx *x);
void h_webhook_create(struct ctx *x);
void h_webhook_get(struct ctx *x);
void h_webhook_edit(struct ctx *x);
void h_webhook_delete(struct ctx *x);
void h_events_list(struct ctx *x);
void h_event_get(struct ctx *x);
void h_event_create(struct ctx *x);
void h_event_edit(struct ctx *x);
void h_event_delete(struct ctx *x);
/* Validates a message body (content, embeds, components, poll, allowed_mentions); 0 if valid,
 * otherwise it has replied with the error. */
int validate_message(struct ctx *x, json_t *b, int require_something);
/* Builds and stores a message in channel (guild may be NULL for DMs); dispatches MESSAGE_CREATE.
 * Returns a new reference to the message. */
json_t *store_message(struct guild *g, json_t *channel, json_t *author, json_t *b, json_t *extra);

#endif
