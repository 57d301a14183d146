#ifndef CB_HTTPD_H
#define CB_HTTPD_H
#include <uv.h>

#include "err.h"

/* The small HTTP endpoint served by libwebsockets on our libuv loop: GET /healthz and
 * GET /metrics. The lws context is created here with explicit vhosts, so the Discord gateway
 * client can later add its own client vhost to the same context. */

struct httpd;

/* Fills *body (malloc'd JSON) and returns the HTTP status for /healthz. */
typedef int (*httpd_health_fn)(void *ud, char **body);

/* Listens on host:port (port 0 picks one). */
struct httpd *httpd_start(uv_loop_t *loop, const char *host, int port, httpd_health_fn health,
                          void *ud, struct err *err);

/* The port actually bound. */
int httpd_port(const struct httpd *h);

/* Stops serving: lws starts closing its handles on the loop, which must keep running until
 * they are gone. */
void httpd_stop(struct httpd *h);

/* After the loop has finished: releases what is left. httpd_free(NULL) is a no-op. */
void httpd_free(struct httpd *h);

#endif
