#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gateway.h"
#include "jtok.h"
#include "log.h"
#include "lwsctx.h"

#define SEND_LIMIT     120
#define SEND_WINDOW_MS 60000
#define SEND_RESERVE   6 /* kept for heartbeats and the handshake */

enum conn_state { C_NONE, C_RESOLVING, C_CONNECTING, C_OPEN, C_CLOSING };

/* What to do when the connection has ended. */
enum next { N_RESUME, N_IDENTIFY, N_FATAL };

struct frame {
	struct frame *next;
	size_t len;
	int priority;
	unsigned char data[];
};

struct gw {
	uv_loop_t *loop;
	struct gw_opts o;
	struct gw_handler h;
	void *ud;
	struct lws_context *ctx;
	struct lws *wsi;
	enum conn_state cs;
	int ready;
	char *session_id, *resume_url;
	long seq;
	struct jtok jt; /* the last message, tokenized */
	/* the connection */
	int zlib;
	z_stream zs;
	unsigned char *rx, *zout;
	size_t rxlen, rxcap, zcap;
	unsigned hb_interval;
	int acked;
	int close_code;        /* the peer's close code, 0 when none */
	enum next after_close; /* decided by us before we drop the connection */
	int dropping;
	const char *drop_reason;
	unsigned identify_delay_ms; /* op 9 false: 1-5 s before identifying again */
	unsigned resume_failures;   /* connections to the resume address that failed */
	/* sending */
	struct frame *head, *tail;
	uint64_t sends[SEND_LIMIT];
	size_t send_next;
	/* timers */
	uv_timer_t hb_timer, re_timer, send_timer;
	unsigned failures;
	uint64_t last_identify;
	/* addresses */
	uv_getaddrinfo_t gai;
	int gai_busy;
	char host[256], addr[64], path[512];
	int port, tls;
	struct gw_stats st;
	int closing, fatal;
	int handles_open;
};

static void connect_now(struct gw *g);
static void flush(struct gw *g);

static uint64_t now_ms(struct gw *g)
{
	return uv_now(g->loop);
}

static double jitter(void)
{
	return (double)rand() / ((double)RAND_MAX + 1.0);
}

static void set_state(struct gw *g, enum gw_state s, const char *why)
{
	if (g->h.state)
		g->h.state(g->ud, s, why);
}

static void free_frames(struct gw *g)
{
	while (g->head) {
		struct frame *f = g->head;
		g->head = f->next;
		free(f);
	}
	g->tail = NULL;
}

static int enqueue(struct gw *g, const char *s, size_t n, int priority)
{
	struct frame *f = malloc(sizeof(*f) + LWS_PRE + n);
	if (!f)
		return -1;
	f->next = NULL;
	f->len = n;
	f->priority = priority;
	memcpy(f->data + LWS_PRE, s, n);
	if (priority) {
		/* after other priority frames, before everything else */
		struct frame **pp = &g->head;
		while (*pp && (*pp)->priority)
			pp = &(*pp)->next;
		f->next = *pp;
		*pp = f;
		if (!f->next)
			g->tail = f;
	} else {
		if (g->tail)
			g->tail->next = f;
		else
			g->head = f;
		g->tail = f;
	}
	flush(g);
	return 0;
}

static int send_json(struct gw *g, json_t *j, int priority)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int rc = s ? enqueue(g, s, strlen(s), priority) : -1;
	free(s);
	return rc;
}

/* Frames leave one per writable callback; the send limit holds back ordinary frames. */
static void on_send_timer(uv_timer_t *t)
{
	flush(t->data);
}

static void flush(struct gw *g)
{
	if (g->cs != C_OPEN || !g->wsi || !g->head)
		return;
	lws_callback_on_writable(g->wsi);
}

static int write_one(struct gw *g)
{
	struct frame *f = g->head;
	uint64_t now = now_ms(g);
	if (!f)
		return 0;
	/* sends in the last minute: the oldest of the ring tells */
	size_t used = 0;
	for (size_t i = 0; i < SEND_LIMIT; i++)
		used += g->sends[i] && now - g->sends[i] < SEND_WINDOW_MS;
	if (used >= SEND_LIMIT || (!f->priority && used >= SEND_LIMIT - SEND_RESERVE)) {
		uint64_t oldest = UINT64_MAX;
		for (size_t i = 0; i < SEND_LIMIT; i++)
			if (g->sends[i] && g->sends[i] < oldest)
				oldest = g->sends[i];
		uint64_t wait = oldest + SEND_WINDOW_MS > now ? oldest + SEND_WINDOW_MS - now : 1;
		uv_timer_start(&g->send_timer, on_send_timer, wait, 0);
		return 0;
	}
	g->head = f->next;
	if (!g->head)
		g->tail = NULL;
	int w = lws_write(g->wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT);
	free(f);
	g->sends[g->send_next] = now;
	g->send_next = (g->send_next + 1) % SEND_LIMIT;
	g->st.sent++;
	if (w < 0)
		return -1;
	if (g->head)
		lws_callback_on_writable(g->wsi);
	return 0;
}

/* --- connection end and reconnection -------------------------------------------------------- */

static void on_reconnect(uv_timer_t *t)
{
	connect_now(t->data);
}

static enum next next_for_code(int code, const char **why)
{
	switch (code) {
	case 4004:
		*why = "authentication failed (4004): the bot token is wrong or was reset";
		return N_FATAL;
	case 4010:
		*why = "invalid shard (4010)";
		return N_FATAL;
	case 4011:
		*why = "sharding required (4011): the bot is in too many guilds for one shard";
		return N_FATAL;
	case 4012:
		*why = "invalid API version (4012)";
		return N_FATAL;
	case 4013:
		*why = "invalid intents (4013)";
		return N_FATAL;
	case 4014:
		*why = "disallowed intents (4014): enable the privileged intents (server members, "
		       "message content) for this bot in the Discord developer portal";
		return N_FATAL;
	case 4007:
		*why = "invalid sequence (4007): starting a new session";
		return N_IDENTIFY;
	case 4009:
		*why = "session timed out (4009): starting a new session";
		return N_IDENTIFY;
	default:
		/* 4000-4003, 4005, 4008, a close without a code, a dropped connection */
		*why = "connection closed; resuming";
		return N_RESUME;
	}
}

static void connection_ended(struct gw *g, const char *detail)
{
	const char *why = g->drop_reason;
	enum next next = g->after_close;
	char codebuf[16];

	uv_timer_stop(&g->hb_timer);
	uv_timer_stop(&g->send_timer);
	free_frames(g);
	if (g->zlib)
		inflateEnd(&g->zs);
	g->zlib = 0;
	g->cs = C_NONE;
	g->wsi = NULL;
	g->ready = 0;
	if (g->closing || g->fatal)
		return;
	if (!g->dropping) {
		next = next_for_code(g->close_code, &why);
		if (!g->close_code && detail)
			why = detail;
	}
	log_warn("gateway", "disconnected", "reason", why, "close_code",
	         g->close_code ? LOG_NUM(codebuf, "%d", g->close_code) : NULL);
	g->dropping = 0;
	g->drop_reason = NULL;
	g->close_code = 0;
	if (next == N_FATAL) {
		g->fatal = 1;
		log_error("gateway", "stopping: this cannot be fixed by reconnecting", "reason",
		          why);
		set_state(g, GW_FATAL, why);
		return;
	}
	if (next == N_IDENTIFY) {
		free(g->session_id);
		g->session_id = NULL;
		g->seq = 0;
	}
	set_state(g, GW_DOWN, why);
	/* reconnect at once the first time, then back off: 1, 2, 4 ... 60 s, each with jitter */
	uint64_t delay = 0;
	if (g->failures++ > 0) {
		uint64_t base = 1000ull << (g->failures - 2 < 6 ? g->failures - 2 : 6);
		if (base > 60000)
			base = 60000;
		delay = base / 2 + (uint64_t)(jitter() * (double)base / 2.0);
	}
	if (g->identify_delay_ms > delay)
		delay = g->identify_delay_ms;
	g->identify_delay_ms = 0;
	uv_timer_start(&g->re_timer, on_reconnect, delay, 0);
}

/* Ends the connection from our side; what follows is decided here, not by a close code. */
static void drop(struct gw *g, enum next next, const char *why)
{
	if (!g->wsi || g->dropping)
		return;
	g->dropping = 1;
	g->after_close = next;
	g->drop_reason = why;
	lws_callback_on_writable(g->wsi);
}

/* --- messages ----------------------------------------------------------------------------------
 */

static void send_heartbeat(struct gw *g)
{
	json_t *j =
	    json_pack("{s:i, s:o}", "op", 1, "d", g->seq ? json_integer(g->seq) : json_null());
	send_json(g, j, 1);
	json_decref(j);
	g->st.heartbeats++;
}

static void on_heartbeat(uv_timer_t *t)
{
	struct gw *g = t->data;
	if (!g->acked) {
		/* no ACK since the last heartbeat: a zombie connection */
		g->st.zombies++;
		drop(g, N_RESUME, "no heartbeat ACK: zombie connection; resuming");
		return;
	}
	g->acked = 0;
	send_heartbeat(g);
	uv_timer_start(&g->hb_timer, on_heartbeat, g->hb_interval, 0);
}

static void on_identify_timer(uv_timer_t *t);

static void identify(struct gw *g)
{
	uint64_t now = now_ms(g);
	/* max_concurrency: one IDENTIFY per 5 s per bucket (this process runs one shard) */
	uint64_t spacing = g->o.identify_spacing_ms ? g->o.identify_spacing_ms : 5000;
	if (g->last_identify && now - g->last_identify < spacing) {
		uv_timer_start(&g->re_timer, on_identify_timer, g->last_identify + spacing - now,
		               0);
		return;
	}
	if (g->o.identify_remaining == 1) {
		log_error("gateway", "the daily IDENTIFY budget is spent; waiting for its reset");
		uv_timer_start(&g->re_timer, on_identify_timer,
		               g->o.identify_reset_ms ? g->o.identify_reset_ms : 60000, 0);
		g->o.identify_remaining = 0;
		return;
	}
	if (g->o.identify_remaining > 1)
		g->o.identify_remaining--;
	g->last_identify = now;
	json_t *d = json_pack("{s:s, s:I, s:{s:s, s:s, s:s}, s:b, s:i}", "token", g->o.token,
	                      "intents", (json_int_t)g->o.intents, "properties", "os", "linux",
	                      "browser", "cohortbridge", "device", "cohortbridge", "compress", 0,
	                      "large_threshold", 250);
	if (g->o.shard_count > 0)
		json_object_set_new(d, "shard",
		                    json_pack("[i, i]", g->o.shard_id, g->o.shard_count));
	json_t *j = json_pack("{s:i, s:o}", "op", 2, "d", d);
	send_json(g, j, 1);
	json_decref(j);
	g->st.identifies++;
	log_info("gateway", "identifying");
}

static void on_identify_timer(uv_timer_t *t)
{
	struct gw *g = t->data;
	if (g->cs == C_OPEN)
		identify(g);
}

static void resume(struct gw *g)
{
	json_t *j = json_pack("{s:i, s:{s:s, s:s, s:I}}", "op", 6, "d", "token", g->o.token,
	                      "session_id", g->session_id, "seq", (json_int_t)g->seq);
	send_json(g, j, 1);
	json_decref(j);
	g->st.resumes++;
	log_info("gateway", "resuming");
}

static void handle(struct gw *g, const char *text, size_t len)
{
	struct jtok *j = &g->jt;
	if (jtok_parse(j, text, len) != 0 || !jtok_is_object(j, 0)) {
		drop(g, N_RESUME, "undecodable frame from the gateway; reconnecting");
		return;
	}
	int op = (int)jtok_int(j, jtok_get(j, 0, "op"), -1);
	int d = jtok_get(j, 0, "d");
	long long s = jtok_int(j, jtok_get(j, 0, "s"), -1);
	if (s >= 0)
		g->seq = (long)s;
	switch (op) {
	case 10: {
		g->hb_interval = (unsigned)jtok_int(j, jtok_get(j, d, "heartbeat_interval"), 0);
		if (g->hb_interval < 100)
			g->hb_interval = 41250;
		g->acked = 1;
		uv_timer_start(&g->hb_timer, on_heartbeat, (uint64_t)(g->hb_interval * jitter()),
		               0);
		if (g->session_id)
			resume(g);
		else
			identify(g);
		break;
	}
	case 11:
		g->acked = 1;
		break;
	case 1:
		send_heartbeat(g);
		break;
	case 7:
		drop(g, N_RESUME, "the gateway asked to reconnect (op 7); resuming");
		break;
	case 9:
		if (jtok_is_true(j, d)) {
			drop(g, N_RESUME, "invalid session (op 9, resumable); resuming");
		} else {
			free(g->session_id);
			g->session_id = NULL;
			g->seq = 0;
			g->identify_delay_ms = 1000 + (unsigned)(jitter() * 4000);
			drop(g, N_IDENTIFY, "invalid session (op 9); identifying afresh in 1-5 s");
		}
		break;
	case 0: {
		char t[64];
		if (jtok_str(j, jtok_get(j, 0, "t"), t, sizeof(t)) < 0)
			break;
		g->st.dispatches++;
		int ready = strcmp(t, "READY") == 0;
		if (ready) {
			free(g->session_id);
			g->session_id = jtok_strdup(j, jtok_get(j, d, "session_id"));
			char *url = jtok_strdup(j, jtok_get(j, d, "resume_gateway_url"));
			if (url) {
				free(g->resume_url);
				g->resume_url = url;
			}
		}
		if (ready || strcmp(t, "RESUMED") == 0) {
			g->ready = 1;
			g->failures = 0;
			log_info("gateway", ready ? "ready" : "resumed");
			set_state(g, GW_READY, t);
		}
		if (g->h.dispatch)
			g->h.dispatch(g->ud, t, j, d, g->seq);
		break;
	}
	default:
		break;
	}
}

/* Buffers grown for a rare large message (member chunks, GUILD_CREATE) are let go once it is
 * handled: kept, they would hold megabytes for the whole life of the process. */
#define GW_KEEP_BYTES (256u * 1024)

static void handled(struct gw *g)
{
	if (g->rxcap > GW_KEEP_BYTES) {
		free(g->rx);
		g->rx = NULL;
		g->rxcap = 0;
	}
	if (g->zcap > GW_KEEP_BYTES) {
		free(g->zout);
		g->zout = NULL;
		g->zcap = 0;
	}
	if (g->jt.cap * sizeof(*g->jt.tok) > GW_KEEP_BYTES / 4)
		jtok_free(&g->jt);
}

/* Collects a message; with zlib-stream a message ends with 00 00 ff ff. */
static void receive(struct gw *g, const unsigned char *in, size_t len, int final)
{
	if (g->rxlen + len > g->rxcap) {
		size_t cap = g->rxcap ? g->rxcap : 65536;
		while (cap < g->rxlen + len)
			cap *= 2;
		if (cap > 64u * 1024 * 1024) {
			drop(g, N_RESUME, "gateway message larger than 64 MiB; reconnecting");
			return;
		}
		unsigned char *n = realloc(g->rx, cap);
		if (!n)
			return;
		g->rx = n;
		g->rxcap = cap;
	}
	memcpy(g->rx + g->rxlen, in, len);
	g->rxlen += len;
	if (!final)
		return;
	if (!g->zlib) {
		handle(g, (const char *)g->rx, g->rxlen);
		g->rxlen = 0;
		handled(g);
		return;
	}
	if (g->rxlen < 4 || memcmp(g->rx + g->rxlen - 4, "\x00\x00\xff\xff", 4) != 0)
		return; /* the message continues in the next frame */
	size_t out = 0;
	g->zs.next_in = g->rx;
	g->zs.avail_in = (uInt)g->rxlen;
	do {
		if (out == g->zcap) {
			size_t cap = g->zcap ? g->zcap * 2 : 262144;
			if (cap > 64u * 1024 * 1024) {
				g->rxlen = 0;
				drop(g, N_RESUME,
				     "gateway message inflates past 64 MiB; reconnecting");
				return;
			}
			unsigned char *n = realloc(g->zout, cap);
			if (!n)
				return;
			g->zout = n;
			g->zcap = cap;
		}
		g->zs.next_out = g->zout + out;
		g->zs.avail_out = (uInt)(g->zcap - out);
		int rc = inflate(&g->zs, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			g->rxlen = 0;
			drop(g, N_RESUME, "corrupt zlib-stream from the gateway; reconnecting");
			return;
		}
		out = g->zcap - g->zs.avail_out;
	} while (g->zs.avail_out == 0);
	g->rxlen = 0;
	handle(g, (const char *)g->zout, out);
	handled(g);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct gw *g = lws_get_opaque_user_data(wsi);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!g)
			return -1;
		g->cs = C_OPEN;
		g->resume_failures = 0;
		g->st.connects++;
		g->rxlen = 0;
		if (g->o.compress) {
			memset(&g->zs, 0, sizeof(g->zs));
			g->zlib = inflateInit(&g->zs) == Z_OK;
		}
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (g && !g->dropping)
			receive(g, in, len,
			        lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi));
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!g)
			return -1;
		if (g->dropping || g->closing)
			return -1; /* no close frame: the session stays resumable */
		return write_one(g);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (g && len >= 2)
			g->close_code =
			    ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1];
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (g) {
			char why[256];
			snprintf(why, sizeof(why), "cannot connect to the gateway: %s",
			         in ? (const char *)in : "unknown error");
			lws_set_opaque_user_data(wsi, NULL);
			/* a resume address that cannot be reached twice in a row is given up: the
			 * next attempt identifies on the main gateway address */
			if (g->session_id && ++g->resume_failures >= 2) {
				free(g->session_id);
				g->session_id = NULL;
				g->seq = 0;
				g->resume_failures = 0;
			}
			connection_ended(g, why);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (g) {
			lws_set_opaque_user_data(wsi, NULL);
			connection_ended(g, NULL);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
    {"discord-gateway", callback, 0, 1 << 16, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* --- connecting ---------------------------------------------------------------------------------
 */

static int parse_url(struct gw *g, const char *url)
{
	const char *p;
	if (strncmp(url, "wss://", 6) == 0) {
		g->tls = 1;
		p = url + 6;
	} else if (strncmp(url, "ws://", 5) == 0) {
		g->tls = 0;
		p = url + 5;
	} else {
		return -1;
	}
	size_t hl = strcspn(p, ":/?");
	if (hl == 0 || hl >= sizeof(g->host))
		return -1;
	memcpy(g->host, p, hl);
	g->host[hl] = '\0';
	p += hl;
	g->port = g->tls ? 443 : 80;
	if (*p == ':') {
		g->port = (int)strtol(p + 1, NULL, 10);
		p += 1 + strspn(p + 1, "0123456789");
	}
	const char *path = *p == '/' ? p : "/";
	size_t pl = strcspn(path, "?");
	snprintf(g->path, sizeof(g->path), "%.*s?v=10&encoding=json%s", (int)pl, path,
	         g->o.compress ? "&compress=zlib-stream" : "");
	return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct gw *g = req->data;
	g->gai_busy = 0;
	if (g->closing) {
		uv_freeaddrinfo(res);
		return;
	}
	if (status < 0 || !res) {
		char why[300];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", g->host, uv_strerror(status));
		uv_freeaddrinfo(res);
		g->cs = C_NONE;
		g->close_code = 0;
		connection_ended(g, why);
		return;
	}
	if (res->ai_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)res->ai_addr, g->addr, sizeof(g->addr));
	else
		uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, g->addr, sizeof(g->addr));
	uv_freeaddrinfo(res);

	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = g->ctx;
	ci.address = g->addr; /* an address: lws 4.1 would resolve a name synchronously */
	ci.port = g->port;
	ci.path = g->path;
	ci.host = g->host;
	ci.origin = g->host;
	ci.ssl_connection = g->tls ? LCCSCF_USE_SSL : 0;
	ci.local_protocol_name = protocols[0].name;
	ci.opaque_user_data = g;
	ci.pwsi = &g->wsi;
	g->cs = C_CONNECTING;
	if (!lws_client_connect_via_info(&ci)) {
		g->cs = C_NONE;
		connection_ended(g, "cannot start a gateway connection");
	}
}

static void connect_now(struct gw *g)
{
	const char *url = g->session_id && g->resume_url ? g->resume_url : g->o.url;
	if (g->closing || g->fatal || g->cs != C_NONE)
		return;
	if (parse_url(g, url) != 0) {
		g->fatal = 1;
		set_state(g, GW_FATAL, "the gateway URL is not a ws:// or wss:// URL");
		return;
	}
	set_state(g, GW_CONNECTING, url);
	struct addrinfo hints = {0};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	g->gai.data = g;
	g->gai_busy = 1;
	g->cs = C_RESOLVING;
	int rc = uv_getaddrinfo(g->loop, &g->gai, on_resolved, g->host, NULL, &hints);
	if (rc < 0) {
		g->gai_busy = 0;
		on_resolved(&g->gai, rc, NULL);
	}
}

/* --- public -------------------------------------------------------------------------------------
 */

struct gw *gw_new(uv_loop_t *loop, const struct gw_opts *o, const struct gw_handler *h, void *ud,
                  struct err *err)
{
	struct gw *g = calloc(1, sizeof(*g));
	if (!g) {
		err_set(err, "out of memory");
		return NULL;
	}
	g->loop = loop;
	g->o = *o;
	g->o.url = strdup(o->url);
	g->o.token = strdup(o->token);
	if (h)
		g->h = *h;
	g->ud = ud;
	if (!g->o.url || !g->o.token) {
		gw_free(g);
		err_set(err, "out of memory");
		return NULL;
	}
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	/* TLS, and with it the system's CA bundle (about 0.9 MB of heap), only for a wss://
	 * gateway. Behind a ws:// one, a wss:// resume address fails twice and the session
	 * identifies anew. */
	if (strncmp(g->o.url, "wss://", 6) == 0)
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.pcontext = &g->ctx;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.ka_time = 0;
	info.pt_serv_buf_size = 65536;
	g->ctx = lwsctx_new(loop, &info);
	if (!g->ctx) {
		free((char *)g->o.url);
		free((char *)g->o.token);
		free(g);
		err_set(err, "cannot create the gateway's libwebsockets context");
		return NULL;
	}
	uv_timer_init(loop, &g->hb_timer);
	uv_timer_init(loop, &g->re_timer);
	uv_timer_init(loop, &g->send_timer);
	g->hb_timer.data = g->re_timer.data = g->send_timer.data = g;
	g->handles_open = 3;
	return g;
}

void gw_restore(struct gw *g, const char *session_id, long seq, const char *resume_url)
{
	free(g->session_id);
	free(g->resume_url);
	g->session_id = session_id ? strdup(session_id) : NULL;
	g->resume_url = resume_url ? strdup(resume_url) : NULL;
	g->seq = seq;
}

int gw_start(struct gw *g, struct err *err)
{
	if (strncmp(g->o.url, "ws://", 5) != 0 && strncmp(g->o.url, "wss://", 6) != 0)
		return err_set(err, "gateway URL must start with ws:// or wss://");
	connect_now(g);
	return 0;
}

int gw_send(struct gw *g, int op, json_t *d)
{
	json_t *j = json_pack("{s:i, s:O}", "op", op, "d", d ? d : json_null());
	int rc = send_json(g, j, 0);
	json_decref(j);
	return rc;
}

const char *gw_session_id(const struct gw *g)
{
	return g->session_id;
}

long gw_seq(const struct gw *g)
{
	return g->seq;
}

const char *gw_resume_url(const struct gw *g)
{
	return g->resume_url;
}

void gw_get_stats(const struct gw *g, struct gw_stats *out)
{
	*out = g->st;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct gw *g = h->data;
	g->handles_open--;
}

void gw_close(struct gw *g)
{
	if (!g || g->closing)
		return;
	g->closing = 1;
	uv_timer_stop(&g->hb_timer);
	uv_timer_stop(&g->re_timer);
	uv_timer_stop(&g->send_timer);
	uv_close((uv_handle_t *)&g->hb_timer, on_timer_closed);
	uv_close((uv_handle_t *)&g->re_timer, on_timer_closed);
	uv_close((uv_handle_t *)&g->send_timer, on_timer_closed);
	if (g->gai_busy)
		uv_cancel((uv_req_t *)&g->gai);
	lws_context_destroy(g->ctx); /* closes the connection without a close frame */
}

void gw_free(struct gw *g)
{
	if (!g)
		return;
	if (g->ctx)
		lws_context_destroy(g->ctx);
	free_frames(g);
	if (g->zlib)
		inflateEnd(&g->zs);
	free(g->rx);
	free(g->zout);
	jtok_free(&g->jt);
	free(g->session_id);
	free(g->resume_url);
	free((char *)g->o.url);
	free((char *)g->o.token);
	free(g);
}
