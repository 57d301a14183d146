/* discord-sim: command line, the libwebsockets server on the libuv loop, HTTP plumbing. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct sim sim;

static const char usage[] =
    "usage: discord-sim --listen 127.0.0.1:PORT [--token TOKEN] [--world FILE] [--record FILE]\n"
    "                   [--ratelimits discord|fast|off] [--seed N] [--heartbeat-ms N]\n"
    "                   [--learners N] [--sources-file FILE] [--source-token TOKEN]\n"
    "                   [--canvas-mocks DIR] [--files DIR]\n"
    "\n"
    "A local Discord (API v10): REST under /api/v10, the gateway (WebSocket, zlib-stream),\n"
    "and a control API under /_sim for tests; and on the same port fake Canvas (/canvas),\n"
    "Moodle (/moodle) and pretix (/pretix) sharing one campus of learners. Port 0 picks a\n"
    "free port. The first line on stdout is always `listening on 127.0.0.1:PORT`. See\n"
    "tests/sim/README.md.\n"
    "\n"
    "  --listen ADDR:PORT   where to listen (loopback only)\n"
    "  --token TOKEN        the bot token clients must present (default: sim-token)\n"
    "  --world FILE         guilds, roles, channels and members to start with (JSON)\n"
    "  --record FILE        append every REST request and gateway frame from the bot (JSON lines)\n"
    "  --ratelimits PRESET  discord (as documented and observed), fast (same shape, quicker\n"
    "                       windows), off. Default: discord\n"
    "  --seed N             deterministic ids and timestamps\n"
    "  --heartbeat-ms N     heartbeat interval sent in HELLO (default 41250)\n"
    "  --learners N         learners on the fake sources' campus (default 40)\n"
    "  --sources-file FILE  the fake sources' campus from a file (the shape GET /_sim/sources\n"
    "                       prints) instead of a generated one\n"
    "  --source-token TOKEN the token the fake sources want (default: source-token)\n"
    "  --canvas-mocks DIR   serve the Canvas request mocks in DIR (maps of {name: {method,\n"
    "                       endpoint, data, headers, status_code}}) under /canvas/mocks\n"
    "  --files DIR          serve the files in DIR under /files/NAME (with ETag and\n"
    "                       Last-Modified; may be given up to 8 times; more with POST\n"
    "                       /_sim/sources/files)\n";

/* Per connection. HTTP requests use the fields here; WebSocket connections keep their gateway
 * state behind gw (allocated by gateway.c). */
struct conn {
	int is_ws;
	void *gw;
	/* HTTP request */
	char method[8];
	char *path, *query, *auth, *audit, *agent, *accept, *ctype, *host, *inm, *ims;
	char *body;
	size_t body_len, body_cap;
	int too_big;
	/* HTTP response */
	struct http_resp resp;
	char *out;
	size_t out_len, out_off;
	int headers_sent;
	int delayed;
	int handled;
};

void stat_inc(const char *group, const char *key)
{
	json_t *g = json_object_get(sim.stats, group);
	if (!g) {
		g = json_object();
		json_object_set_new(sim.stats, group, g);
	}
	json_t *v = json_object_get(g, key);
	json_object_set_new(g, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

void sim_record(json_t *entry)
{
	if (sim.record) {
		char *s = json_dumps(entry, JSON_COMPACT);
		if (s) {
			fprintf(sim.record, "%s\n", s);
			fflush(sim.record);
		}
		free(s);
	}
	json_decref(entry);
}

static void conn_reset(struct conn *c)
{
	free(c->path);
	free(c->query);
	free(c->auth);
	free(c->audit);
	free(c->agent);
	free(c->accept);
	free(c->ctype);
	free(c->host);
	free(c->inm);
	free(c->ims);
	free(c->body);
	free(c->out);
	json_decref(c->resp.body);
	free(c->resp.text);
	if (c->resp.on_done)
		c->resp.on_done(c->resp.done_arg);
	void *gw = c->gw;
	int is_ws = c->is_ws;
	memset(c, 0, sizeof(*c));
	c->gw = gw;
	c->is_ws = is_ws;
}

static char *hdr(struct lws *wsi, enum lws_token_indexes t)
{
	int n = lws_hdr_total_length(wsi, t);
	if (n <= 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s && lws_hdr_copy(wsi, s, n + 1, t) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static char *query_string(struct lws *wsi)
{
	char frag[512];
	char *q = NULL;
	size_t len = 0;
	for (int i = 0;
	     lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		size_t n = strlen(frag);
		char *g = realloc(q, len + n + 2);
		if (!g)
			break;
		q = g;
		if (len)
			q[len++] = '&';
		memcpy(q + len, frag, n + 1);
		len += n;
	}
	return q;
}

static int start_response(struct lws *wsi, struct conn *c);

static int write_body(struct lws *wsi, struct conn *c);

/* Handles a complete request and answers it. Returns what the lws callback must return. */
static int handle(struct lws *wsi, struct conn *c)
{
	struct http_req rq = {0};
	/* lws may report a body completion for a request it already handed over (POST with
	 * Content-Length: 0): a request is handled once */
	if (c->handled)
		return 0;
	c->handled = 1;
	json_error_t je;
	rq.method = c->method;
	rq.path = c->path;
	rq.query = c->query;
	rq.auth = c->auth;
	rq.audit_reason = c->audit;
	rq.raw_body = c->body;
	rq.raw_len = c->body_len;
	rq.accept = c->accept;
	rq.content_type = c->ctype;
	rq.host = c->host;
	rq.if_none_match = c->inm;
	rq.if_modified_since = c->ims;
	c->resp.status = 200;
	/* the fake sources parse their own bodies (forms, mostly) */
	int source = src_route(c->path);
	if (c->too_big) {
		c->resp.status = 413;
		c->resp.body = discord_error(40005, "Request entity too large");
	} else if (c->body_len && !source) {
		rq.body = json_loadb(c->body, c->body_len, JSON_DECODE_ANY, &je);
		if (!rq.body) {
			c->resp.status = 400;
			c->resp.body =
			    discord_error(50109, "The request body contains invalid JSON.");
		}
	}
	if (c->resp.status == 200) {
		if (source)
			src_handle(&rq, &c->resp);
		else if (strncmp(c->path, "/_sim/", 6) == 0)
			control_handle(&rq, &c->resp);
		else if (strncmp(c->path, "/api/v10/", 9) == 0 || strcmp(c->path, "/api/v10") == 0)
			rest_handle(&rq, &c->resp);
		else if (strncmp(c->path, "/api/", 5) == 0) {
			c->resp.status = 400;
			c->resp.body = json_pack("{s:s, s:i}", "message", "Invalid API version",
			                         "code", 50041);
		} else {
			c->resp.status = 404;
			c->resp.body =
			    json_pack("{s:s, s:i}", "message", "404: Not Found", "code", 0);
		}
	}
	/* the fake sources keep their own log (GET /_sim/sources/requests); Moodle's token is in
	 * its query */
	if (!source && strncmp(c->path, "/_sim/", 6) != 0) {
		json_t *rec = json_pack("{s:s, s:s, s:s, s:O?, s:i, s:O?}", "kind", "rest",
		                        "method", c->method, "path", c->path, "query", json_null(),
		                        "status", c->resp.status, "body", rq.body);
		if (c->query)
			json_object_set_new(rec, "query", json_string(c->query));
		if (c->agent)
			json_object_set_new(rec, "user_agent", json_string(c->agent));
		if (c->audit)
			json_object_set_new(rec, "audit_log_reason", json_string(c->audit));
		sim_record(rec);
	}
	json_decref(rq.body);
	if (c->resp.stall)
		return 0; /* a stalled route never answers */
	if (c->resp.text) {
		c->out = c->resp.text;
		c->resp.text = NULL;
		c->out_len = strlen(c->out);
	} else if (c->resp.body) {
		c->out = json_dumps(c->resp.body, JSON_COMPACT);
		c->out_len = c->out ? strlen(c->out) : 0;
	}
	unsigned delay = source ? c->resp.delay_ms : sim.latency_ms;
	if (delay) {
		c->delayed = 1;
		lws_set_timer_usecs(wsi, (lws_usec_t)delay * 1000);
		return 0;
	}
	/* Answer at once, from this callback: lws 4.1 on a libuv loop can miss the writable
	 * callback asked for from a request's body callback, leaving the client waiting. Large
	 * answers continue from HTTP_WRITEABLE. */
	return write_body(wsi, c);
}

static int start_response(struct lws *wsi, struct conn *c)
{
	uint8_t buf[LWS_PRE + 8192], *start = &buf[LWS_PRE], *p = start,
	                             *end = &buf[sizeof(buf) - 1];
	/* an empty answer (204) has no content type, as on Discord: clients parse JSON by it */
	const char *ctype = c->resp.ctype ? c->resp.ctype : c->out_len ? "application/json" : NULL;
	if (lws_add_http_common_headers(wsi, (unsigned)c->resp.status, ctype, c->out_len, &p, end))
		return -1;
	/* extra headers: "name: value\r\n" lines */
	for (char *l = c->resp.headers; *l;) {
		char *colon = strchr(l, ':'), *eol = strstr(l, "\r\n");
		if (!colon || !eol)
			break;
		char name[128];
		size_t nl = (size_t)(colon - l) + 1;
		if (nl >= sizeof(name))
			break;
		memcpy(name, l, nl);
		name[nl] = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
		                                (const unsigned char *)v, (int)(eol - v), &p, end))
			return -1;
		l = eol + 2;
	}
	/* Every answer ends its connection: on a kept-alive connection lws 4.1 parses the headers
	 * of a request that carries a body and then never reports the body, so the client would
	 * wait forever. Clients open a new connection per request instead (cheap on loopback). */
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
	                                 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	c->headers_sent = 1;
	return 0;
}

static int write_body(struct lws *wsi, struct conn *c)
{
	if (!c->headers_sent) {
		if (start_response(wsi, c))
			return -1;
	}
	if (c->out && c->out_off < c->out_len) {
		size_t n = c->out_len - c->out_off;
		if (n > 65536)
			n = 65536;
		uint8_t *b = malloc(LWS_PRE + n);
		if (!b)
			return -1;
		memcpy(b + LWS_PRE, c->out + c->out_off, n);
		int last = c->out_off + n == c->out_len;
		int w =
		    lws_write(wsi, b + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
		free(b);
		if (w < (int)n)
			return -1;
		c->out_off += n;
		if (!last) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	conn_reset(c);
	/* the client closes, having read "Connection: close"; closing first could cut the answer */
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct conn *c = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		char *uri = NULL;
		int ulen = 0;
		static const char *const methods[] = {"GET",   "POST",   "OPTIONS", "PUT",
		                                      "PATCH", "DELETE", "CONNECT", "HEAD"};
		int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
		conn_reset(c);
		snprintf(c->method, sizeof(c->method), "%s", m >= 0 && m < 8 ? methods[m] : "GET");
		c->path = uri ? strndup(uri, (size_t)ulen)
		              : strndup(in ? (const char *)in : "/", in ? len : 1);
		c->query = query_string(wsi);
		c->auth = hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
		c->agent = hdr(wsi, WSI_TOKEN_HTTP_USER_AGENT);
		c->accept = hdr(wsi, WSI_TOKEN_HTTP_ACCEPT);
		c->ctype = hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
		c->host = hdr(wsi, WSI_TOKEN_HOST);
		c->inm = hdr(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
		c->ims = hdr(wsi, WSI_TOKEN_HTTP_IF_MODIFIED_SINCE);
		int al = lws_hdr_custom_length(wsi, "x-audit-log-reason:", 19);
		if (al > 0) {
			c->audit = malloc((size_t)al + 1);
			if (c->audit && lws_hdr_custom_copy(wsi, c->audit, al + 1,
			                                    "x-audit-log-reason:", 19) < 0) {
				free(c->audit);
				c->audit = NULL;
			}
		}
		char *cl = hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
		long clen = cl ? strtol(cl, NULL, 10) : 0;
		free(cl);
		if (clen > 0 || strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0 ||
		    strcmp(c->method, "PATCH") == 0) {
			if (clen > 0)
				return 0; /* wait for the body */
		}
		return handle(wsi, c);
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (!len)
			return 0;
		if (c->body_len + len > 8u * 1024 * 1024) {
			c->too_big = 1;
			return 0;
		}
		if (c->body_len + len + 1 > c->body_cap) {
			size_t cap = c->body_cap ? c->body_cap * 2 : 4096;
			while (cap < c->body_len + len + 1)
				cap *= 2;
			char *g = realloc(c->body, cap);
			if (!g)
				return -1;
			c->body = g;
			c->body_cap = cap;
		}
		memcpy(c->body + c->body_len, in, len);
		c->body_len += len;
		c->body[c->body_len] = '\0';
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return handle(wsi, c);
	case LWS_CALLBACK_TIMER:
		if (!c)
			return 0;
		if (c->is_ws)
			return gw_callback(wsi, (int)reason, &c->gw, in, len);
		if (c->delayed) {
			c->delayed = 0;
			return write_body(wsi, c);
		}
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!c || c->delayed || (!c->out && !c->resp.status))
			return 0;
		return write_body(wsi, c);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		/* a client gone before its request was read has no per-connection data yet */
		if (c && !c->is_ws)
			conn_reset(c);
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (reason == LWS_CALLBACK_ESTABLISHED)
			c->is_ws = 1;
		return gw_callback(wsi, (int)reason, &c->gw, in, len);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static struct lws_protocols protocols[] = {
    {"discord", callback, sizeof(struct conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_context *ctx;
static uv_signal_t sig_term, sig_int;

static void on_signal(uv_signal_t *s, int signum)
{
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	gw_free();
	lws_context_destroy(ctx);
}

static void lws_log(int level, const char *line)
{
	fprintf(stderr, "discord-sim: lws: %s", line);
}

int main(int argc, char **argv)
{
	sim.opts.listen_host = NULL;
	sim.opts.token = "sim-token";
	sim.opts.seed = -1;
	sim.opts.heartbeat_ms = 41250;
	sim.opts.ratelimits = RL_DISCORD;
	sim.opts.learners = 40;
	sim.opts.source_token = "source-token";
	const char *listen = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "discord-sim: %s needs a value\n\n%s", a, usage);
			return 2;
		}
		i++;
		if (strcmp(a, "--listen") == 0)
			listen = v;
		else if (strcmp(a, "--token") == 0)
			sim.opts.token = v;
		else if (strcmp(a, "--world") == 0)
			sim.opts.world_file = v;
		else if (strcmp(a, "--record") == 0)
			sim.opts.record_file = v;
		else if (strcmp(a, "--seed") == 0)
			sim.opts.seed = strtol(v, NULL, 10);
		else if (strcmp(a, "--heartbeat-ms") == 0)
			sim.opts.heartbeat_ms = (int)strtol(v, NULL, 10);
		else if (strcmp(a, "--learners") == 0) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 0 || n > 100000) {
				fprintf(stderr, "discord-sim: --learners is 0 to 100000\n");
				return 2;
			}
			sim.opts.learners = (int)n;
		} else if (strcmp(a, "--sources-file") == 0)
			sim.opts.sources_file = v;
		else if (strcmp(a, "--source-token") == 0)
			sim.opts.source_token = v;
		else if (strcmp(a, "--canvas-mocks") == 0)
			sim.opts.canvas_mocks = v;
		else if (strcmp(a, "--files") == 0) {
			if (sim.opts.nfiles_dirs == 8) {
				fprintf(stderr, "discord-sim: --files at most 8 times\n");
				return 2;
			}
			sim.opts.files_dirs[sim.opts.nfiles_dirs++] = v;
		} else if (strcmp(a, "--ratelimits") == 0) {
			if (strcmp(v, "discord") == 0)
				sim.opts.ratelimits = RL_DISCORD;
			else if (strcmp(v, "fast") == 0)
				sim.opts.ratelimits = RL_FAST;
			else if (strcmp(v, "off") == 0)
				sim.opts.ratelimits = RL_OFF;
			else {
				fprintf(stderr,
				        "discord-sim: --ratelimits is discord, fast or off\n");
				return 2;
			}
		} else {
			fprintf(stderr, "discord-sim: unknown option %s\n\n%s", a, usage);
			return 2;
		}
	}
	if (!listen) {
		fprintf(stderr, "discord-sim: --listen is required\n\n%s", usage);
		return 2;
	}
	static char host[64];
	const char *colon = strrchr(listen, ':');
	if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
		fprintf(stderr, "discord-sim: --listen wants ADDR:PORT\n");
		return 2;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (strncmp(host, "127.", 4) != 0 && strcmp(host, "localhost") != 0) {
		fprintf(stderr, "discord-sim: listens on loopback only (127.x.x.x)\n");
		return 2;
	}
	sim.opts.listen_host = host;
	sim.opts.port = (int)strtol(colon + 1, NULL, 10);
	sim.rng = sim.opts.seed >= 0 ? (uint64_t)sim.opts.seed * 0x9E3779B97F4A7C15ull + 1
	                             : uv_hrtime() | 1;
	sim.clock_ms = 1767225600000ull + (uint64_t)(sim.opts.seed >= 0 ? sim.opts.seed : 0) * 1000;
	sim.stats = json_object();
	sim.stalled = json_object();

	char err[1024];
	if (world_load(sim.opts.world_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "discord-sim: %s\n", err);
		return 1;
	}
	if (src_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "discord-sim: %s\n", err);
		return 1;
	}
	if (sim.opts.record_file) {
		sim.record = fopen(sim.opts.record_file, "a");
		if (!sim.record) {
			fprintf(stderr, "discord-sim: cannot open %s\n", sim.opts.record_file);
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	sim.loop = uv_default_loop();
	gw_init();

	const char *lws_level = getenv("SIM_LWS_LOG"); /* lws's own debug output, for debugging */
	lws_set_log_level(lws_level ? (int)strtol(lws_level, NULL, 10) : LLL_ERR, lws_log);
	struct lws_context_creation_info info;
	void *loops[1] = {sim.loop};
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
	               LWS_SERVER_OPTION_DISABLE_IPV6;
	info.foreign_loops = loops;
	info.pcontext = &ctx;
	info.port = sim.opts.port;
	info.iface = host;
	info.protocols = protocols;
	info.keepalive_timeout = 60;
	info.timeout_secs = 120;
	info.pt_serv_buf_size = 256 * 1024;
	info.max_http_header_pool =
	    1024; /* one per connection: lws parks connections without one */
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "discord-sim: cannot listen on %s\n", listen);
		return 1;
	}
	struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
	sim.port = vh ? lws_get_vhost_listen_port(vh) : sim.opts.port;
	printf("listening on %s:%d\n", host, sim.port);
	fflush(stdout);

	uv_signal_init(sim.loop, &sig_term);
	uv_signal_init(sim.loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(sim.loop, UV_RUN_DEFAULT);
	if (ctx)
		lws_context_destroy(ctx);
	world_free();
	src_free();
	json_decref(sim.stats);
	json_decref(sim.stalled);
	if (sim.record)
		fclose(sim.record);
	return 0;
}
