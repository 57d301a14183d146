#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "lwsctx.h"
#include "metrics.h"

struct httpd {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int port;
	httpd_health_fn health;
	void *ud;
	uv_loop_t *loop;
	int stopped;
};

/* Per connection: the response waiting to be written. */
struct pss {
	char *body;
	size_t len;
};

static void count_status(int status)
{
	if (status >= 500)
		metrics.http_server_5xx++;
	else if (status >= 400)
		metrics.http_server_4xx++;
	else
		metrics.http_server_2xx++;
}

static int respond(struct lws *wsi, struct pss *pss, int status, const char *ctype, char *body)
{
	uint8_t buf[LWS_PRE + 1024], *start = &buf[LWS_PRE], *p = start,
	                             *end = &buf[sizeof(buf) - 1];

	free(pss->body);
	pss->body = body;
	pss->len = body ? strlen(body) : 0;
	count_status(status);
	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, pss->len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
	                                 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
	struct pss *pss = user;
	struct httpd *h = lws_context_user(lws_get_context(wsi));
	char uri[256];

	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		int is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
		if (!is_get)
			return respond(wsi, pss, 405, "application/json",
			               strdup("{\"error\":\"method not allowed\"}\n"));
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
			uri[0] = '\0';
		log_trace("httpd", "request", "path", uri);
		if (strcmp(uri, "/healthz") == 0) {
			char *body = NULL;
			int status = h->health(h->ud, &body);
			return respond(wsi, pss, status, "application/json", body);
		}
		if (strcmp(uri, "/metrics") == 0)
			return respond(wsi, pss, 200, "text/plain; version=0.0.4",
			               metrics_render(uv_now(h->loop)));
		return respond(
		    wsi, pss, 404, "application/json",
		    strdup("{\"error\":\"not found\",\"paths\":[\"/healthz\",\"/metrics\"]}\n"));
	}
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		size_t n = pss->len;
		uint8_t *buf = malloc(LWS_PRE + n + 1);
		if (!buf)
			return -1;
		if (n)
			memcpy(buf + LWS_PRE, pss->body, n);
		int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
		free(buf);
		free(pss->body);
		pss->body = NULL;
		pss->len = 0;
		if (w < (int)n)
			return -1;
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	}
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		free(pss->body);
		pss->body = NULL;
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
    {"http", on_http, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct httpd *httpd_start(uv_loop_t *loop, const char *host, int port, httpd_health_fn health,
                          void *ud, struct err *err)
{
	struct lws_context_creation_info info;
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h) {
		err_set(err, "out of memory");
		return NULL;
	}
	h->health = health;
	h->ud = ud;
	h->loop = loop;

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
	info.pcontext = &h->ctx; /* lws clears it once the context is wholly gone */
	info.user = h;
	info.port = CONTEXT_PORT_NO_LISTEN;
	h->ctx = lwsctx_new(loop, &info);
	if (!h->ctx) {
		free(h);
		err_set(err, "cannot create the libwebsockets context (is libwebsockets-evlib-uv "
		             "installed?)");
		return NULL;
	}

	memset(&info, 0, sizeof(info));
	info.port = port; /* 0: the kernel picks a free port */
	info.iface = host;
	info.protocols = protocols;
	info.vhost_name = "health";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.keepalive_timeout = 5;
	h->vh = lws_create_vhost(h->ctx, &info);
	if (!h->vh) {
		err_set(err, "cannot listen on %s:%d (address in use or not local?)", host, port);
		lws_context_destroy(h->ctx);
		free(h);
		return NULL;
	}
	h->port = lws_get_vhost_listen_port(h->vh);
	return h;
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_stop(struct httpd *h)
{
	if (!h || h->stopped)
		return;
	h->stopped = 1;
	lws_context_destroy(h->ctx);
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	/* With a foreign loop the first destroy only starts closing lws's handles; once the loop
	 * has run them down, a second call frees the rest. */
	if (h->ctx)
		lws_context_destroy(h->ctx);
	free(h);
}
