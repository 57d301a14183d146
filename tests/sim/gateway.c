/* The gateway: WebSocket sessions with HELLO, heartbeats, IDENTIFY, READY, dispatch with
 * sequence numbers, RESUME with replay, op 7/9 on command, the send limit, the IDENTIFY budget,
 * REQUEST_GUILD_MEMBERS chunking, and zlib-stream compression. */
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "sim.h"

#define LOG_KEEP       200000 /* events kept per session for RESUME */
#define SEND_LIMIT     120    /* client sends per window */
#define SEND_WINDOW_MS 60000
#define CHUNK_SIZE     1000

struct frame {
	struct frame *next;
	size_t len;
	int binary;
	int raw; /* pre-framed WebSocket bytes (firehose) */
	unsigned char data[];
};

struct session;

struct gwconn {
	struct lws *wsi;
	struct session *sess;
	int zlib;
	z_stream zs;
	struct frame *head, *tail;
	size_t queued;
	uint64_t last_hb;
	uint64_t window_start;
	int window_count;
	int close_code;
	int close_sent;
	char close_reason[64];
	int drop;
	char *rx;
	size_t rxlen;
	struct gwconn *next;
	/* firehose */
	char *fire_prefix, *fire_suffix; /* a dispatch is prefix + seq + suffix */
	long fire_left;
	long fire_sent;
	uint64_t fire_t0;
};

struct session {
	char id[40];
	unsigned intents;
	int shard_id, shard_count;
	long seq;
	char **log; /* ring of payloads, log[(s - 1) % LOG_KEEP] */
	long first_kept;
	struct gwconn *conn;
	int valid;
	struct session *next;
};

static struct session *sessions;
static int acks_off; /* tests of zombie detection: heartbeats go unanswered */
static void firehose_fill(struct gwconn *c);
static struct gwconn *conns;
static uint64_t identify_times[16];
static int identify_remaining = 1000;
static json_t *gwstats;

static void gstat(const char *key, json_int_t add)
{
	json_t *v = json_object_get(gwstats, key);
	json_object_set_new(gwstats, key, json_integer((v ? json_integer_value(v) : 0) + add));
}

void gw_init(void)
{
	gwstats = json_object();
}

static void session_free(struct session *s)
{
	if (s->log)
		for (long i = 0; i < LOG_KEEP; i++)
			free(s->log[i]);
	free(s->log);
	free(s);
}

void gw_reset(void)
{
	while (sessions) {
		struct session *n = sessions->next;
		if (sessions->conn)
			sessions->conn->sess = NULL;
		session_free(sessions);
		sessions = n;
	}
	identify_remaining = 1000;
	acks_off = 0;
	memset(identify_times, 0, sizeof(identify_times));
	json_object_clear(gwstats);
}

void gw_free(void)
{
	gw_reset();
	json_decref(gwstats);
	gwstats = NULL;
}

size_t gw_pss_size(void)
{
	return sizeof(struct gwconn *);
}

static uint64_t now_ms(void)
{
	return uv_now(sim.loop);
}

/* --- output ------------------------------------------------------------------------------ */

static void enqueue(struct gwconn *c, const unsigned char *data, size_t len, int binary, int raw)
{
	struct frame *f = malloc(sizeof(*f) + LWS_PRE + len);
	if (!f)
		return;
	f->next = NULL;
	f->len = len;
	f->binary = binary;
	f->raw = raw;
	memcpy(f->data + LWS_PRE, data, len);
	if (c->tail)
		c->tail->next = f;
	else
		c->head = f;
	c->tail = f;
	c->queued++;
	lws_callback_on_writable(c->wsi);
}

/* Sends one JSON payload (a complete gateway message). */
static void send_text(struct gwconn *c, const char *s, size_t len)
{
	if (!c->zlib) {
		enqueue(c, (const unsigned char *)s, len, 0, 0);
		return;
	}
	size_t cap = deflateBound(&c->zs, len) + 16, out_len = 0;
	unsigned char *out = malloc(cap);
	if (!out)
		return;
	c->zs.next_in = (unsigned char *)s;
	c->zs.avail_in = (uInt)len;
	do {
		if (out_len == cap) {
			cap *= 2;
			unsigned char *g = realloc(out, cap);
			if (!g) {
				free(out);
				return;
			}
			out = g;
		}
		c->zs.next_out = out + out_len;
		c->zs.avail_out = (uInt)(cap - out_len);
		deflate(&c->zs, Z_SYNC_FLUSH); /* each message ends with 00 00 ff ff */
		out_len = cap - c->zs.avail_out;
	} while (c->zs.avail_out == 0);
	enqueue(c, out, out_len, 1, 0);
	free(out);
}

static void send_json(struct gwconn *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (s)
		send_text(c, s, strlen(s));
	free(s);
	json_decref(j);
}

static void close_with(struct gwconn *c, int code, const char *reason)
{
	if (c->close_code || c->drop)
		return;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	char k[32];
	snprintf(k, sizeof(k), "closes_%d", code);
	gstat(k, 1);
	if (c->sess &&
	    (code == 4007 || code == 4009 || code == 4004 || (code >= 4010 && code <= 4014)))
		c->sess->valid = 0;
	lws_callback_on_writable(c->wsi);
}

/* --- sessions and dispatch --------------------------------------------------------------- */

static void log_event(struct session *s, const char *payload)
{
	if (!s->log)
		s->log = calloc(LOG_KEEP, sizeof(char *));
	if (!s->log)
		return;
	long slot = (s->seq - 1) % LOG_KEEP;
	free(s->log[slot]);
	s->log[slot] = strdup(payload);
	if (s->seq - s->first_kept >= LOG_KEEP)
		s->first_kept = s->seq - LOG_KEEP + 1;
}

static int guild_in_shard(const struct session *s, const char *guild_id)
{
	if (s->shard_count <= 1)
		return 1;
	unsigned long long id = guild_id ? strtoull(guild_id, NULL, 10) : 0;
	return (int)((id >> 22) % (unsigned long long)s->shard_count) == s->shard_id;
}

/* Sends dispatch t with data d to session s (borrowed d). */
static void dispatch_to(struct session *s, const char *t, json_t *d)
{
	json_t *p =
	    json_pack("{s:i, s:s, s:I, s:O}", "op", 0, "t", t, "s", (json_int_t)++s->seq, "d", d);
	char *str = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (!str)
		return;
	log_event(s, str);
	gstat("events_sent", 1);
	if (s->conn && !s->conn->close_code && !s->conn->drop)
		send_text(s->conn, str, strlen(str));
	free(str);
}

static int mentions_bot(json_t *msg)
{
	const char *bid = json_string_value(json_object_get(sim.w.bot, "id"));
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(msg, "mentions"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "id")), bid) == 0)
			return 1;
	return 0;
}

void gw_dispatch(const char *t, json_t *d, const char *guild_id, unsigned intent)
{
	int is_message =
	    strncmp(t, "MESSAGE_CREATE", 14) == 0 || strncmp(t, "MESSAGE_UPDATE", 14) == 0;
	for (struct session *s = sessions; s; s = s->next) {
		if (!s->valid || !guild_in_shard(s, guild_id))
			continue;
		unsigned need = intent;
		if (is_message && !guild_id)
			need = I_DIRECT_MESSAGES;
		if (need && !(s->intents & need))
			continue;
		if (is_message && !(s->intents & I_MESSAGE_CONTENT) && guild_id &&
		    !mentions_bot(d)) {
			/* without MESSAGE_CONTENT, guild messages arrive with their content empty
			 */
			json_t *c = json_deep_copy(d);
			json_object_set_new(c, "content", json_string(""));
			json_object_set_new(c, "embeds", json_array());
			json_object_set_new(c, "attachments", json_array());
			json_object_set_new(c, "components", json_array());
			json_object_del(c, "poll");
			dispatch_to(s, t, c);
			json_decref(c);
			continue;
		}
		dispatch_to(s, t, d);
	}
	json_decref(d);
}

/* --- receiving ----------------------------------------------------------------------------- */

static struct session *find_session(const char *id)
{
	for (struct session *s = sessions; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static void attach(struct gwconn *c, struct session *s)
{
	if (s->conn && s->conn != c) {
		/* a second connection takes the session over; the first is closed */
		s->conn->sess = NULL;
		close_with(s->conn, 4000, "session taken over");
	}
	s->conn = c;
	c->sess = s;
}

static void on_identify(struct gwconn *c, json_t *d)
{
	const char *token = json_string_value(json_object_get(d, "token"));
	json_t *intents = json_object_get(d, "intents");
	json_t *shard = json_object_get(d, "shard");
	char idb[40];

	if (c->sess) {
		close_with(c, 4005, "Already authenticated.");
		return;
	}
	if (!token ||
	    (strcmp(token, sim.opts.token) != 0 &&
	     !(strncmp(token, "Bot ", 4) == 0 && strcmp(token + 4, sim.opts.token) == 0))) {
		close_with(c, 4004, "Authentication failed.");
		return;
	}
	if (identify_remaining <= 0) {
		close_with(c, 4004, "Authentication failed."); /* the token was reset */
		return;
	}
	/* max_concurrency 1: one IDENTIFY per 5 seconds */
	uint64_t now = now_ms();
	if (identify_times[0] && now - identify_times[0] < 5000 &&
	    sim.opts.ratelimits == RL_DISCORD) {
		close_with(c, 4008, "Rate limited.");
		return;
	}
	identify_times[0] = now;
	identify_remaining--;
	gstat("identifies", 1);
	if (!json_is_integer(intents)) {
		close_with(c, 4013, "Invalid intent(s).");
		return;
	}
	unsigned in = (unsigned)json_integer_value(intents);
	if (json_integer_value(intents) < 0 || (in & ~I_ALL_KNOWN)) {
		close_with(c, 4013, "Invalid intent(s).");
		return;
	}
	if (in & I_PRIVILEGED & ~sim.w.privileged) {
		close_with(c, 4014, "Disallowed intent(s).");
		return;
	}
	int sid = 0, scount = 1;
	if (shard) {
		if (!json_is_array(shard) || json_array_size(shard) != 2) {
			close_with(c, 4010, "Invalid shard.");
			return;
		}
		sid = (int)json_integer_value(json_array_get(shard, 0));
		scount = (int)json_integer_value(json_array_get(shard, 1));
		if (scount < 1 || sid < 0 || sid >= scount) {
			close_with(c, 4010, "Invalid shard.");
			return;
		}
	}
	if (sim.w.nguilds > 2500u * (unsigned)scount) {
		close_with(c, 4011, "Sharding required.");
		return;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	snprintf(s->id, sizeof(s->id), "%016llx%016llx", (unsigned long long)(sim_rand() * 1e18),
	         (unsigned long long)(sim_rand() * 1e18));
	s->intents = in;
	s->shard_id = sid;
	s->shard_count = scount;
	s->valid = 1;
	s->first_kept = 1;
	s->next = sessions;
	sessions = s;
	attach(c, s);

	char url[96];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", sim.port);
	json_t *guilds = json_array();
	for (size_t i = 0; i < sim.w.nguilds; i++) {
		const char *gid = json_string_value(json_object_get(sim.w.guilds[i].obj, "id"));
		if (guild_in_shard(s, gid))
			json_array_append_new(guilds,
			                      json_pack("{s:s, s:b}", "id", gid, "unavailable", 1));
	}
	json_t *ready = json_pack(
	    "{s:i, s:O, s:o, s:s, s:s, s:[i,i], s:{s:O, s:O}, s:[], s:{}, s:[]}", "v", 10, "user",
	    sim.w.bot, "guilds", guilds, "session_id", s->id, "resume_gateway_url", url, "shard",
	    sid, scount, "application", "id", json_object_get(sim.w.app, "id"), "flags",
	    json_object_get(sim.w.app, "flags"), "private_channels", "user_settings",
	    "relationships");
	json_object_set_new(ready, "session_type", json_string("normal"));
	(void)idb;
	dispatch_to(s, "READY", ready);
	json_decref(ready);
	for (size_t i = 0; i < sim.w.nguilds; i++) {
		struct guild *g = &sim.w.guilds[i];
		if (!guild_in_shard(s, json_string_value(json_object_get(g->obj, "id"))))
			continue;
		if (!(in & I_GUILDS))
			continue;
		json_t *gc = world_guild_json(g, true);
		dispatch_to(s, "GUILD_CREATE", gc);
		json_decref(gc);
	}
}

static void on_resume(struct gwconn *c, json_t *d)
{
	const char *token = json_string_value(json_object_get(d, "token"));
	const char *sid = json_string_value(json_object_get(d, "session_id"));
	json_t *seqj = json_object_get(d, "seq");
	struct session *s = sid ? find_session(sid) : NULL;
	if (!token ||
	    (strcmp(token, sim.opts.token) != 0 &&
	     !(strncmp(token, "Bot ", 4) == 0 && strcmp(token + 4, sim.opts.token) == 0))) {
		close_with(c, 4004, "Authentication failed.");
		return;
	}
	long seq = json_is_integer(seqj) ? (long)json_integer_value(seqj) : 0;
	if (!s || !s->valid || seq > s->seq || seq + 1 < s->first_kept) {
		gstat("resumes_refused", 1);
		send_json(c, json_pack("{s:i, s:b}", "op", 9, "d", 0));
		return;
	}
	attach(c, s);
	gstat("resumes", 1);
	for (long i = seq + 1; i <= s->seq; i++) {
		const char *p = s->log[(i - 1) % LOG_KEEP];
		if (p)
			send_text(c, p, strlen(p));
		gstat("events_replayed", 1);
	}
	json_t *r = json_object();
	dispatch_to(s, "RESUMED", r);
	json_decref(r);
}

static void send_members(struct gwconn *c, struct guild *g, json_t *list, json_t *not_found,
                         json_t *nonce)
{
	size_t n = json_array_size(list);
	size_t count = n ? (n + CHUNK_SIZE - 1) / CHUNK_SIZE : 1;
	const char *gid = json_string_value(json_object_get(g->obj, "id"));
	for (size_t k = 0; k < count; k++) {
		json_t *chunk = json_array();
		for (size_t i = k * CHUNK_SIZE; i < n && i < (k + 1) * CHUNK_SIZE; i++)
			json_array_append(chunk, json_array_get(list, i));
		json_t *d =
		    json_pack("{s:s, s:o, s:I, s:I}", "guild_id", gid, "members", chunk,
		              "chunk_index", (json_int_t)k, "chunk_count", (json_int_t)count);
		if (nonce)
			json_object_set(d, "nonce", nonce);
		if (k == 0 && not_found && json_array_size(not_found))
			json_object_set(d, "not_found", not_found);
		dispatch_to(c->sess, "GUILD_MEMBERS_CHUNK", d);
		json_decref(d);
	}
	gstat("member_chunks", (json_int_t)count);
}

/* Snowflakes arrive as strings or (from some libraries) as numbers. */
static const char *snowflake(json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return NULL;
}

static void on_request_members(struct gwconn *c, json_t *d)
{
	char gbuf[32];
	struct guild *g =
	    world_guild(snowflake(json_object_get(d, "guild_id"), gbuf, sizeof(gbuf)));
	json_t *nonce = json_object_get(d, "nonce");
	json_t *user_ids = json_object_get(d, "user_ids");
	const char *query = json_string_value(json_object_get(d, "query"));
	json_int_t limit = json_integer_value(json_object_get(d, "limit"));
	if (!g)
		return;
	if (json_is_string(nonce) && strlen(json_string_value(nonce)) > 32)
		nonce = NULL;
	json_t *list = json_array(), *not_found = json_array();
	if (user_ids) {
		json_t *ids =
		    json_is_array(user_ids) ? json_incref(user_ids) : json_pack("[O]", user_ids);
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id) {
			char ub[32];
			const char *uid = snowflake(id, ub, sizeof(ub));
			json_t *m = uid ? json_object_get(g->members, uid) : NULL;
			if (m)
				json_array_append(list, m);
			else
				json_array_append(not_found, id);
			if (i >= 99)
				break;
		}
		json_decref(ids);
	} else if (query && *query) {
		const char *k;
		json_t *m;
		json_object_foreach(g->members, k, m) {
			const char *name = json_string_value(
			    json_object_get(json_object_get(m, "user"), "username"));
			const char *nick = json_string_value(json_object_get(m, "nick"));
			if ((name && strncasecmp(name, query, strlen(query)) == 0) ||
			    (nick && strncasecmp(nick, query, strlen(query)) == 0))
				json_array_append(list, m);
			if (json_array_size(list) >=
			    (size_t)(limit > 0 && limit <= 100 ? limit : 100))
				break;
		}
	} else {
		/* every member: needs GUILD_MEMBERS, and once per guild per 30 s */
		if (!(c->sess->intents & I_GUILD_MEMBERS)) {
			json_decref(list);
			json_decref(not_found);
			close_with(c, 4013, "Invalid intent(s).");
			return;
		}
		uint64_t now = now_ms();
		uint64_t window = sim.opts.ratelimits == RL_FAST ? 300 : 30000; /* fast: 1/100 */
		if (g->last_all_members_ms && now - g->last_all_members_ms < window &&
		    sim.opts.ratelimits != RL_OFF) {
			double retry =
			    ((double)window - (double)(now - g->last_all_members_ms)) / 1000.0;
			json_t *rl = json_pack("{s:i, s:f, s:{s:s}}", "opcode", 8, "retry_after",
			                       retry, "meta", "guild_id",
			                       json_string_value(json_object_get(g->obj, "id")));
			if (nonce)
				json_object_set(json_object_get(rl, "meta"), "nonce", nonce);
			dispatch_to(c->sess, "RATE_LIMITED", rl);
			json_decref(rl);
			json_decref(list);
			json_decref(not_found);
			gstat("member_requests_rate_limited", 1);
			return;
		}
		g->last_all_members_ms = now;
		const char *k;
		json_t *m;
		json_object_foreach(g->members, k, m)
			json_array_append(list, m);
	}
	send_members(c, g, list, not_found, nonce);
	json_decref(list);
	json_decref(not_found);
}

static void on_message(struct gwconn *c, const char *text, size_t len)
{
	json_error_t je;
	json_t *m = json_loadb(text, len, 0, &je);
	uint64_t now = now_ms();
	if (now - c->window_start >= SEND_WINDOW_MS) {
		c->window_start = now;
		c->window_count = 0;
	}
	if (++c->window_count > SEND_LIMIT && sim.opts.ratelimits != RL_OFF) {
		json_decref(m);
		close_with(c, 4008, "Rate limited.");
		return;
	}
	if (!m || !json_is_integer(json_object_get(m, "op"))) {
		json_decref(m);
		close_with(c, 4002, "Error while decoding payload.");
		return;
	}
	int op = (int)json_integer_value(json_object_get(m, "op"));
	json_t *d = json_object_get(m, "d");
	json_t *rec = json_pack("{s:s, s:i, s:O?}", "kind", "gateway", "op", op, "d", d);
	if (op == 2 || op == 6) {
		json_t *copy = json_deep_copy(d);
		json_object_set_new(copy, "token", json_string("<redacted>"));
		json_object_set_new(rec, "d", copy);
	}
	sim_record(rec);
	switch (op) {
	case 1:
		c->last_hb = now;
		gstat("heartbeats", 1);
		if (!acks_off)
			send_json(c, json_pack("{s:i}", "op", 11));
		break;
	case 2:
		on_identify(c, d);
		break;
	case 6:
		if (c->sess)
			close_with(c, 4005, "Already authenticated.");
		else
			on_resume(c, d);
		break;
	case 3:
	case 4:
		if (!c->sess)
			close_with(c, 4003, "Not authenticated.");
		break;
	case 8:
		if (!c->sess)
			close_with(c, 4003, "Not authenticated.");
		else
			on_request_members(c, d);
		break;
	default:
		close_with(c, 4001, "Unknown opcode.");
	}
	json_decref(m);
}

/* --- lws ------------------------------------------------------------------------------------ */

static void conn_free(struct gwconn *c)
{
	if (c->sess && c->sess->conn == c)
		c->sess->conn = NULL;
	struct gwconn **pp = &conns;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	while (c->head) {
		struct frame *f = c->head;
		c->head = f->next;
		free(f);
	}
	if (c->zlib)
		deflateEnd(&c->zs);
	free(c->rx);
	free(c->fire_prefix);
	free(c->fire_suffix);
	free(c);
}

static int url_arg(struct lws *wsi, const char *name, char *out, size_t size)
{
	char frag[256];
	size_t nl = strlen(name);
	for (int i = 0;
	     lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++)
		if (strncmp(frag, name, nl) == 0 && frag[nl] == '=') {
			snprintf(out, size, "%s", frag + nl + 1);
			return 1;
		}
	return 0;
}

int gw_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct gwconn **pc = user;
	struct gwconn *c = *pc;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED: {
		char v[16] = "", enc[16] = "json", comp[32] = "";
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		*pc = c;
		c->wsi = wsi;
		c->next = conns;
		conns = c;
		c->last_hb = now_ms();
		c->window_start = now_ms();
		gstat("connections", 1);
		url_arg(wsi, "v", v, sizeof(v));
		url_arg(wsi, "encoding", enc, sizeof(enc));
		if (url_arg(wsi, "compress", comp, sizeof(comp)) &&
		    strcmp(comp, "zlib-stream") == 0) {
			c->zlib = 1;
			deflateInit(&c->zs, Z_DEFAULT_COMPRESSION);
		}
		if (v[0] && strcmp(v, "10") != 0) {
			close_with(c, 4012, "Invalid API version.");
			return 0;
		}
		if (strcmp(enc, "json") != 0) {
			close_with(c, 4002, "Error while decoding payload.");
			return 0;
		}
		send_json(c, json_pack("{s:i, s:n, s:n, s:{s:i}}", "op", 10, "s", "t", "d",
		                       "heartbeat_interval", sim.opts.heartbeat_ms));
		lws_set_timer_usecs(wsi, (lws_usec_t)sim.opts.heartbeat_ms * 1000);
		return 0;
	}
	case LWS_CALLBACK_RECEIVE: {
		if (!c || c->close_code || c->drop)
			return 0;
		size_t need = c->rxlen + len + 1;
		char *g = realloc(c->rx, need);
		if (!g)
			return -1;
		c->rx = g;
		memcpy(c->rx + c->rxlen, in, len);
		c->rxlen += len;
		c->rx[c->rxlen] = '\0';
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			return 0;
		on_message(c, c->rx, c->rxlen);
		c->rxlen = 0;
		return 0;
	}
	case LWS_CALLBACK_TIMER:
		if (c && c->close_sent)
			return -1;
		/* no heartbeat for an interval and a half: the client is gone */
		if (c && !c->close_code && !c->drop) {
			if (now_ms() - c->last_hb > (uint64_t)sim.opts.heartbeat_ms * 3 / 2 + 1000)
				close_with(c, 4009, "Session timed out.");
			else
				lws_set_timer_usecs(wsi, (lws_usec_t)sim.opts.heartbeat_ms * 250);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c)
			return 0;
		if (c->drop) {
			/* a dropped TCP connection: no close frame */
			shutdown(lws_get_socket_fd(wsi), SHUT_RDWR);
			return -1;
		}
		if (c->head) {
			struct frame *f = c->head;
			int mode = f->raw      ? LWS_WRITE_RAW
			           : f->binary ? LWS_WRITE_BINARY
			                       : LWS_WRITE_TEXT;
			int w = lws_write(wsi, f->data + LWS_PRE, f->len,
			                  (enum lws_write_protocol)mode);
			c->head = f->next;
			if (!c->head)
				c->tail = NULL;
			c->queued--;
			free(f);
			if (w < 0)
				return -1;
			if (c->head || c->close_code || c->fire_left)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if (c->fire_left) {
			firehose_fill(c);
			return 0;
		}
		if (c->close_code && !c->close_sent) {
			/* The close frame is written by hand: lws 4.1 on a libuv loop kills the
			 * socket before its own close frame leaves. */
			unsigned char frame[LWS_PRE + 2 + 2 + 64];
			unsigned char *p = frame + LWS_PRE;
			size_t rl = strlen(c->close_reason);
			p[0] = 0x88;
			p[1] = (unsigned char)(2 + rl);
			p[2] = (unsigned char)(c->close_code >> 8);
			p[3] = (unsigned char)c->close_code;
			memcpy(p + 4, c->close_reason, rl);
			lws_write(wsi, p, 4 + rl, LWS_WRITE_RAW);
			c->close_sent = 1;
			lws_set_timer_usecs(wsi,
			                    200000); /* give the peer a moment to close first */
			return 0;
		}
		if (c->close_sent)
			return -1;
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && len >= 2) {
			int code = ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1];
			/* closing with 1000 or 1001 ends the session */
			if ((code == 1000 || code == 1001) && c->sess)
				c->sess->valid = 0;
		}
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (c) {
			conn_free(c);
			*pc = NULL;
		}
		return 0;
	}
	return 0;
}

/* --- control ------------------------------------------------------------------------------- */

int gw_control_drop(int code)
{
	int n = 0;
	for (struct gwconn *c = conns; c; c = c->next) {
		if (code)
			close_with(c, code, "closed by the simulator");
		else {
			c->drop = 1;
			lws_callback_on_writable(c->wsi);
		}
		n++;
	}
	return n;
}

int gw_control_reconnect(void)
{
	int n = 0;
	for (struct gwconn *c = conns; c; c = c->next, n++)
		send_json(c, json_pack("{s:i, s:n}", "op", 7, "d"));
	return n;
}

int gw_control_invalidate(bool resumable)
{
	int n = 0;
	for (struct gwconn *c = conns; c; c = c->next, n++) {
		if (c->sess && !resumable)
			c->sess->valid = 0;
		send_json(c, json_pack("{s:i, s:b}", "op", 9, "d", resumable));
	}
	return n;
}

void gw_control_acks(bool enabled)
{
	acks_off = !enabled;
}

int gw_control_raw(const char *text)
{
	int n = 0;
	for (struct gwconn *c = conns; c; c = c->next, n++)
		send_text(c, text, strlen(text));
	return n;
}

json_t *gw_stats(void)
{
	json_t *s = json_deep_copy(gwstats);
	int open = 0, nsess = 0;
	for (struct gwconn *c = conns; c; c = c->next)
		open++;
	for (struct session *x = sessions; x; x = x->next)
		nsess += x->valid;
	json_object_set_new(s, "open_connections", json_integer(open));
	json_object_set_new(s, "valid_sessions", json_integer(nsess));
	json_object_set_new(s, "identify_remaining", json_integer(identify_remaining));
	return s;
}

/* --- firehose ------------------------------------------------------------------------------ */

/* Frames many pre-built dispatches into one buffer per write: server frames are unmasked, so a
 * WebSocket frame is a 2-10 byte header and the payload. */
static void firehose_fill(struct gwconn *c)
{
	size_t cap = 256 * 1024, len = 0;
	size_t pl = strlen(c->fire_prefix), sl = strlen(c->fire_suffix);
	unsigned char *buf = malloc(LWS_PRE + cap + pl + sl + 64);
	if (!buf)
		return;
	unsigned char *p = buf + LWS_PRE;
	while (c->fire_left > 0 && len + pl + sl + 40 < cap) {
		char seq[24];
		int sn = snprintf(seq, sizeof(seq), "%ld", ++c->sess->seq);
		size_t n = pl + (size_t)sn + sl;
		p[len++] = 0x81; /* FIN + text */
		if (n < 126) {
			p[len++] = (unsigned char)n;
		} else {
			p[len++] = 126;
			p[len++] = (unsigned char)(n >> 8);
			p[len++] = (unsigned char)n;
		}
		memcpy(p + len, c->fire_prefix, pl);
		memcpy(p + len + pl, seq, (size_t)sn);
		memcpy(p + len + pl + (size_t)sn, c->fire_suffix, sl);
		len += n;
		c->fire_left--;
		c->fire_sent++;
	}
	lws_write(c->wsi, p, len, LWS_WRITE_RAW);
	free(buf);
	if (c->fire_left)
		lws_callback_on_writable(c->wsi);
	else
		gstat("firehose_events", c->fire_sent);
}

int gw_firehose(long n, const char *type, json_t **report)
{
	for (struct gwconn *c = conns; c; c = c->next) {
		if (!c->sess || c->zlib)
			continue;
		free(c->fire_prefix);
		free(c->fire_suffix);
		c->fire_prefix = c->fire_suffix = NULL;
		if (type && strcmp(type, "GUILD_MEMBER_UPDATE") == 0 && sim.w.nguilds) {
			/* a real member of the first guild, as a member update carries it */
			struct guild *g = &sim.w.guilds[0];
			const char *bid = json_string_value(json_object_get(sim.w.bot, "id"));
			const char *k;
			json_t *m, *pick = NULL;
			json_object_foreach(g->members, k, m) {
				if (strcmp(k, bid) != 0) {
					pick = m;
					break;
				}
			}
			json_t *d = json_deep_copy(pick);
			json_object_set(d, "guild_id", json_object_get(g->obj, "id"));
			char *ds = json_dumps(d, JSON_COMPACT);
			json_decref(d);
			size_t dl = ds ? strlen(ds) : 0;
			c->fire_prefix = strdup("{\"op\":0,\"t\":\"GUILD_MEMBER_UPDATE\",\"s\":");
			c->fire_suffix = malloc(dl + 8);
			if (c->fire_suffix)
				snprintf(c->fire_suffix, dl + 8, ",\"d\":%s}", ds ? ds : "{}");
			free(ds);
		} else {
			c->fire_prefix = strdup("{\"op\":0,\"t\":\"TYPING_START\",\"s\":");
			c->fire_suffix = strdup(",\"d\":{\"channel_id\":\"1\",\"user_id\":\"2\","
			                        "\"timestamp\":1767225600}}");
		}
		if (!c->fire_prefix || !c->fire_suffix)
			return -1;
		c->fire_left = n;
		c->fire_sent = 0;
		c->fire_t0 = uv_hrtime();
		lws_callback_on_writable(c->wsi);
		if (report)
			*report = json_pack("{s:I, s:s}", "events", (json_int_t)n, "session_id",
			                    c->sess->id);
		return 0;
	}
	return -1;
}
