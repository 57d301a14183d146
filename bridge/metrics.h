#ifndef CB_METRICS_H
#define CB_METRICS_H
#include <stdint.h>
#include <stddef.h>

/* Process-wide counters, rendered at /metrics in Prometheus text format. One process, one
 * loop, one thread: plain integers suffice. */
struct metrics {
	uint64_t start_ms; /* uv_hrtime()/1e6 at start */
	uint64_t loop_iterations;
	uint64_t db_roundtrips;
	uint64_t db_errors;
	uint64_t db_connects;
	int db_connected;
	uint64_t http_client_ok;       /* outgoing requests answered 1xx-3xx */
	uint64_t http_client_http_err; /* answered 4xx/5xx */
	uint64_t http_client_net_err;  /* no answer: DNS, connect, TLS, timeout, size cap */
	uint64_t http_server_2xx, http_server_4xx, http_server_5xx;
	uint64_t config_reloads_ok, config_reloads_failed;
	uint64_t gateway_dispatches;
	uint64_t cache_members, cache_bytes;
	uint64_t outbox_done, outbox_retried, outbox_parked, outbox_adopted;
	/* the sources as source_state and source_syncs last said (refreshed by the daemon,
	 * whoever ran the syncs) */
	struct metrics_source {
		char name[65];
		int failing;
		double last_ok; /* Unix seconds, 0 when never */
		uint64_t ok, failed;
	} sources[64];
	size_t nsources;
};

extern struct metrics metrics;

/* Renders the metrics; returns a malloc'd string. now_ms is the monotonic clock in ms. */
char *metrics_render(uint64_t now_ms);

#endif
