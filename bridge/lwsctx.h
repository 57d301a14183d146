#ifndef CB_LWSCTX_H
#define CB_LWSCTX_H
#include <libwebsockets.h>
#include <uv.h>

/* A libwebsockets context on our libuv loop, set up the one way both of ours need: the loop is
 * foreign (lws never runs or closes it), lws's own log lines go through ours, and its
 * per-descriptor tables are sized for what the bridge opens rather than for RLIMIT_NOFILE
 * (lws touches 32 bytes per possible descriptor: 32 MB in a container allowing 1,048,576).
 * info carries the rest; its options are added to. */
struct lws_context *lwsctx_new(uv_loop_t *loop, struct lws_context_creation_info *info);

#endif
