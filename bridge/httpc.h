#ifndef CB_HTTPC_H
#define CB_HTTPC_H
#include <stddef.h>
#include <uv.h>

#include "err.h"

/* Outgoing HTTP on the loop: libcurl's multi interface driven by curl_multi_socket_action,
 * with a uv_poll per socket and one uv_timer. Connections are reused across requests.
 * TLS verification is always on; plain http:// is refused unless the host is loopback. */

struct httpc;

struct httpc_request {
	const char *method; /* NULL: GET */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;           /* may be NULL */
	size_t body_len;
	long timeout_ms; /* 0: 30 s */
	size_t max_body; /* 0: 16 MiB; a larger response fails */
};

struct httpc_response {
	long status;      /* 0 when no HTTP answer arrived (see err) */
	const char *body; /* NUL-terminated; borrowed for the callback's duration */
	size_t body_len;
	const char *headers; /* the raw header block of the final response */
	double seconds;      /* total time */
	struct err err;      /* set when status is 0 */
};

/* Called exactly once per request, also when the client is closed with it in flight
 * (status 0, "cancelled"). */
typedef void (*httpc_cb)(const struct httpc_response *resp, void *ud);

struct httpc *httpc_new(uv_loop_t *loop, struct err *err);

/* Starts a request; the request struct and its strings are copied. */
int httpc_send(struct httpc *c, const struct httpc_request *req, httpc_cb cb, void *ud,
               struct err *err);

/* Number of requests in flight. */
size_t httpc_pending(const struct httpc *c);

/* Cancels what is in flight and releases everything once libuv has closed the handles. */
void httpc_close(struct httpc *c);

/* Finds header name (case-insensitive) in resp; copies its value into buf. NULL if absent. */
const char *httpc_header(const struct httpc_response *resp, const char *name, char *buf,
                         size_t size);

/* 1 when url's host is a loopback address or localhost. */
int httpc_is_loopback_url(const char *url);

#endif
