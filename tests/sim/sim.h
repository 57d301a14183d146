#ifndef SIM_H
#define SIM_H
/* discord-sim: a local Discord for tests, benchmarks and the demo. One libuv loop; one
 * libwebsockets vhost serves REST (/api/v10/...), the gateway (WebSocket) and the control API
 * (/_sim/...) on one port. The world (users, guilds, roles, channels, members, messages, ...)
 * is held as jansson objects in Discord's own API shapes, so REST answers are the stored
 * objects themselves. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lws;

/* Discord's error codes used here. */
enum {
	DERR_UNKNOWN_CHANNEL = 10003,
	DERR_UNKNOWN_GUILD = 10004,
	DERR_UNKNOWN_MEMBER = 10007,
	DERR_UNKNOWN_MESSAGE = 10008,
	DERR_UNKNOWN_ROLE = 10011,
	DERR_UNKNOWN_USER = 10013,
	DERR_UNKNOWN_WEBHOOK = 10015,
	DERR_UNKNOWN_INTERACTION = 10062,
	DERR_UNKNOWN_COMMAND = 10063,
	DERR_UNKNOWN_EVENT = 10070,
	DERR_MAX_ROLES = 30005,
	DERR_MAX_CHANNELS = 30013,
	DERR_UNAUTHORIZED = 40001,
	DERR_ALREADY_ACKED = 40060,
	DERR_MISSING_ACCESS = 50001,
	DERR_CANNOT_DM = 50007,
	DERR_MISSING_PERMISSIONS = 50013,
	DERR_INVALID_FORM = 50035,
	DERR_POLL_EXPIRED = 520001,
};

/* Permission bits. */
#define P_CREATE_INVITE          (1ull << 0)
#define P_ADMINISTRATOR          (1ull << 3)
#define P_MANAGE_CHANNELS        (1ull << 4)
#define P_MANAGE_GUILD           (1ull << 5)
#define P_VIEW_CHANNEL           (1ull << 10)
#define P_SEND_MESSAGES          (1ull << 11)
#define P_MANAGE_MESSAGES        (1ull << 13)
#define P_READ_HISTORY           (1ull << 16)
#define P_CONNECT                (1ull << 20)
#define P_MANAGE_NICKNAMES       (1ull << 27)
#define P_MANAGE_ROLES           (1ull << 28)
#define P_MANAGE_THREADS         (1ull << 34)
#define P_CREATE_PRIVATE_THREADS (1ull << 36)
#define P_SEND_IN_THREADS        (1ull << 38)
#define P_MANAGE_EVENTS          (1ull << 33)

/* Gateway intents. */
#define I_GUILDS                 (1u << 0)
#define I_GUILD_MEMBERS          (1u << 1)
#define I_GUILD_PRESENCES        (1u << 8)
#define I_GUILD_MESSAGES         (1u << 9)
#define I_DIRECT_MESSAGES        (1u << 12)
#define I_MESSAGE_CONTENT        (1u << 15)
#define I_GUILD_SCHEDULED_EVENTS (1u << 16)
#define I_GUILD_MESSAGE_POLLS    (1u << 24)
#define I_DIRECT_MESSAGE_POLLS   (1u << 25)
#define I_ALL_KNOWN              ((1u << 26) - 1)
#define I_PRIVILEGED             (I_GUILD_MEMBERS | I_GUILD_PRESENCES | I_MESSAGE_CONTENT)

enum rl_preset { RL_DISCORD, RL_FAST, RL_OFF };

/* One guild's state. */
struct guild {
	json_t *obj;                  /* the guild object without roles/channels/members */
	json_t *roles;                /* id -> role */
	json_t *channels;             /* id -> channel (threads too) */
	json_t *members;              /* user id -> member {user, roles, nick, joined_at, ...} */
	json_t *voice;                /* user id -> voice state */
	json_t *events;               /* id -> scheduled event */
	json_t *commands;             /* id -> application command */
	uint64_t last_all_members_ms; /* the 30 s rule for op 8 */
};

struct world {
	json_t *app;            /* application object */
	json_t *bot;            /* the bot user */
	json_t *users;          /* id -> user */
	json_t *dm_closed;      /* user id -> true */
	json_t *dms;            /* user id -> DM channel */
	json_t *messages;       /* channel id -> array of messages (oldest first) */
	json_t *msg_index;      /* message id -> channel id */
	json_t *nonces;         /* "channel:nonce" -> message id */
	json_t *interactions;   /* id -> {id, token, type, data, callbacks[], followups[], ...} */
	json_t *thread_members; /* thread id -> {user id -> member} */
	json_t *votes;          /* message id -> {answer id -> [user ids]} */
	struct guild *guilds;
	size_t nguilds;
	unsigned privileged; /* privileged intents the application may use */
};

struct sim_opts {
	const char *listen_host;
	int port;
	const char *token;
	const char *world_file;
	const char *record_file;
	enum rl_preset ratelimits;
	long seed; /* -1: real clock and random ids */
	int heartbeat_ms;
	/* the fake sources (sources.c) */
	int learners;
	const char *sources_file;
	const char *source_token;
	const char *canvas_mocks;  /* a directory of Canvas request mocks */
	const char *files_dirs[8]; /* files served under /files from the start */
	int nfiles_dirs;
};

struct sim {
	uv_loop_t *loop;
	struct sim_opts opts;
	struct world w;
	int port;
	FILE *record;
	/* snowflakes */
	uint64_t clock_ms; /* virtual clock when seeded */
	uint32_t increment;
	/* statistics for GET /_sim/stats */
	json_t *stats;
	/* faults */
	double fail_share;
	int fail_status;
	unsigned latency_ms;
	json_t *stalled; /* route keys that never answer */
	uint64_t rng;
};

extern struct sim sim;

/* --- world.c --- */
uint64_t sim_now_ms(void);
char *sim_snowflake(char *buf, size_t size); /* a new id, in buf */
double sim_rand(void);                       /* [0,1), seeded when --seed is given */
void sim_iso_time(uint64_t ms, char *buf, size_t size);
int world_load(const char *file, char *err, size_t errsize); /* NULL: the sample world */
void world_free(void);
struct guild *world_guild(const char *id);
json_t *world_user(const char *id);
json_t *world_channel(const char *id, struct guild **g); /* guild channel, thread or DM */
json_t *world_member(struct guild *g, const char *user_id);
json_t *world_add_user(const char *username, bool bot);
json_t *world_state(void); /* GET /_sim/state */
/* permissions of user in guild (and channel, when given) */
uint64_t world_perms(struct guild *g, const char *user_id, json_t *channel);
int world_top_role_position(struct guild *g, const char *user_id);
json_t *world_guild_json(struct guild *g, bool full); /* GUILD_CREATE / GET guild */
json_t *world_member_json(struct guild *g, json_t *member);

/* --- gateway.c --- */
void gw_init(void);
void gw_free(void);
/* lws callback share for WebSocket connections */
int gw_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
size_t gw_pss_size(void);
/* Sends a dispatch to every session that should see it. guild may be NULL (DMs). intent is the
 * intent the event needs (0: none). Takes ownership of d. */
void gw_dispatch(const char *t, json_t *d, const char *guild_id, unsigned intent);
/* Control: drop (code 0: TCP drop without close frame), reconnect (op 7), invalidate (op 9). */
int gw_control_drop(int code);
int gw_control_reconnect(void);
int gw_control_invalidate(bool resumable);
json_t *gw_stats(void);
/* Control: stop (or resume) answering heartbeats; send a raw text frame (compressed when the
 * connection asked for zlib-stream). */
void gw_control_acks(bool enabled);
int gw_control_raw(const char *text);
void gw_reset(void);
/* Firehose: streams n copies of a pre-built dispatch (TYPING_START, or GUILD_MEMBER_UPDATE of a
 * real member) to the connected bot as fast as it reads. */
int gw_firehose(long n, const char *type, json_t **report);

/* --- rest.c --- */
struct http_req {
	const char *method;
	char *path;  /* without query */
	char *query; /* may be NULL */
	json_t *body;
	const char *raw_body;
	size_t raw_len;
	const char *auth;
	const char *audit_reason;
	const char *accept; /* the fake sources read these three */
	const char *content_type;
	const char *host;
	const char *if_none_match, *if_modified_since; /* for /files */
};

struct http_resp {
	int status;
	json_t *body; /* NULL: no body (204) */
	char *text;   /* a text body instead of JSON */
	const char *ctype;
	char headers[4096]; /* extra "name: value\r\n" lines */
	int stall;          /* never answer (fault injection) */
	unsigned delay_ms;  /* answer this much later (a fake source's latency) */
	/* runs once when the answer has been sent or its connection is gone */
	void (*on_done)(void *arg);
	void *done_arg;
};

void rest_handle(struct http_req *rq, struct http_resp *rs);
json_t *discord_error(int code, const char *message);
/* A user (or the bot) posts body in channel; returns the message as REST shows it (new ref). */
json_t *sim_post_message(struct guild *g, json_t *channel, json_t *author, json_t *body);
void rest_reset(void);

/* --- ratelimit.c --- */
/* Checks the global limit and route's bucket (keyed by major parameter). Returns 0 when the
 * request may proceed (the X-RateLimit-* headers are added to rs), 1 when it was refused (rs
 * holds the 429, or the 403 of a banned client). */
int rl_check(const char *route, const char *major, bool interaction, json_t *body,
             struct http_resp *rs);
/* Counts a 401/403/429 answer towards the invalid-request limit. */
void rl_note_status(int status, const char *scope);
void rl_reset(void);
json_t *rl_stats(void);
/* The preset's table, for GET /_sim/ratelimits and the README. */
json_t *rl_describe(void);

/* --- control.c --- */
void control_handle(struct http_req *rq, struct http_resp *rs);

/* --- sources.c: fake Canvas, Moodle and pretix under /canvas, /moodle, /pretix --- */
int src_init(char *err, size_t errsize);
void src_free(void);
void src_reset(void);
int src_route(const char *path); /* 1 when a fake source serves path */
void src_handle(struct http_req *rq, struct http_resp *rs);
/* the control API under /_sim/sources */
void src_ctl_dump(struct http_resp *rs);
void src_ctl_faults(struct http_req *rq, struct http_resp *rs);
void src_ctl_learners(struct http_req *rq, struct http_resp *rs);
void src_ctl_mutate(struct http_req *rq, struct http_resp *rs);
void src_ctl_requests(struct http_req *rq, struct http_resp *rs);
void src_ctl_messages(const char *source, struct http_resp *rs);
void files_ctl(struct http_req *rq, struct http_resp *rs);

/* --- record --- */
void sim_record(json_t *entry); /* takes ownership */

/* --- stats --- */
void stat_inc(const char *group, const char *key);

#endif
