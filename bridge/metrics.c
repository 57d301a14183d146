#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

struct metrics metrics;

char *metrics_render(uint64_t now_ms)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(
	    f,
	    "# HELP cohortbridge_uptime_seconds Seconds since the process started.\n"
	    "# TYPE cohortbridge_uptime_seconds gauge\n"
	    "cohortbridge_uptime_seconds %.3f\n"
	    "# HELP cohortbridge_loop_iterations_total Event loop iterations.\n"
	    "# TYPE cohortbridge_loop_iterations_total counter\n"
	    "cohortbridge_loop_iterations_total %llu\n"
	    "# HELP cohortbridge_db_roundtrips_total Database queries answered.\n"
	    "# TYPE cohortbridge_db_roundtrips_total counter\n"
	    "cohortbridge_db_roundtrips_total %llu\n"
	    "# HELP cohortbridge_db_errors_total Database queries that failed.\n"
	    "# TYPE cohortbridge_db_errors_total counter\n"
	    "cohortbridge_db_errors_total %llu\n"
	    "# HELP cohortbridge_db_connects_total Database connections established.\n"
	    "# TYPE cohortbridge_db_connects_total counter\n"
	    "cohortbridge_db_connects_total %llu\n"
	    "# HELP cohortbridge_db_connected Whether the database connection is up.\n"
	    "# TYPE cohortbridge_db_connected gauge\n"
	    "cohortbridge_db_connected %d\n"
	    "# HELP cohortbridge_http_client_requests_total Outgoing HTTP requests by outcome.\n"
	    "# TYPE cohortbridge_http_client_requests_total counter\n"
	    "cohortbridge_http_client_requests_total{outcome=\"ok\"} %llu\n"
	    "cohortbridge_http_client_requests_total{outcome=\"http_error\"} %llu\n"
	    "cohortbridge_http_client_requests_total{outcome=\"network_error\"} %llu\n"
	    "# HELP cohortbridge_http_server_requests_total Requests to this endpoint by status "
	    "class.\n"
	    "# TYPE cohortbridge_http_server_requests_total counter\n"
	    "cohortbridge_http_server_requests_total{code=\"2xx\"} %llu\n"
	    "cohortbridge_http_server_requests_total{code=\"4xx\"} %llu\n"
	    "cohortbridge_http_server_requests_total{code=\"5xx\"} %llu\n"
	    "# HELP cohortbridge_config_reloads_total Configuration reloads by outcome.\n"
	    "# TYPE cohortbridge_config_reloads_total counter\n"
	    "cohortbridge_config_reloads_total{outcome=\"ok\"} %llu\n"
	    "cohortbridge_config_reloads_total{outcome=\"rejected\"} %llu\n"
	    "# HELP cohortbridge_gateway_dispatches_total Gateway events received.\n"
	    "# TYPE cohortbridge_gateway_dispatches_total counter\n"
	    "cohortbridge_gateway_dispatches_total %llu\n"
	    "# HELP cohortbridge_cache_members Guild members held in the cache.\n"
	    "# TYPE cohortbridge_cache_members gauge\n"
	    "cohortbridge_cache_members %llu\n"
	    "# HELP cohortbridge_cache_bytes Bytes the cache's structures hold.\n"
	    "# TYPE cohortbridge_cache_bytes gauge\n"
	    "cohortbridge_cache_bytes %llu\n"
	    "# HELP cohortbridge_outbox_actions_total Outbox actions by outcome.\n"
	    "# TYPE cohortbridge_outbox_actions_total counter\n"
	    "cohortbridge_outbox_actions_total{outcome=\"done\"} %llu\n"
	    "cohortbridge_outbox_actions_total{outcome=\"retried\"} %llu\n"
	    "cohortbridge_outbox_actions_total{outcome=\"parked\"} %llu\n"
	    "cohortbridge_outbox_actions_total{outcome=\"adopted\"} %llu\n",
	    (double)(now_ms - metrics.start_ms) / 1000.0,
	    (unsigned long long)metrics.loop_iterations, (unsigned long long)metrics.db_roundtrips,
	    (unsigned long long)metrics.db_errors, (unsigned long long)metrics.db_connects,
	    metrics.db_connected, (unsigned long long)metrics.http_client_ok,
	    (unsigned long long)metrics.http_client_http_err,
	    (unsigned long long)metrics.http_client_net_err,
	    (unsigned long long)metrics.http_server_2xx,
	    (unsigned long long)metrics.http_server_4xx,
	    (unsigned long long)metrics.http_server_5xx,
	    (unsigned long long)metrics.config_reloads_ok,
	    (unsigned long long)metrics.config_reloads_failed,
	    (unsigned long long)metrics.gateway_dispatches,
	    (unsigned long long)metrics.cache_members, (unsigned long long)metrics.cache_bytes,
	    (unsigned long long)metrics.outbox_done, (unsigned long long)metrics.outbox_retried,
	    (unsigned long long)metrics.outbox_parked, (unsigned long long)metrics.outbox_adopted);
	if (metrics.nsources) {
		fputs("# HELP cohortbridge_source_syncs_total Syncs of each source by outcome.\n"
		      "# TYPE cohortbridge_source_syncs_total counter\n",
		      f);
		for (size_t i = 0; i < metrics.nsources; i++)
			fprintf(
			    f,
			    "cohortbridge_source_syncs_total{source=\"%s\",outcome=\"ok\"} %llu\n"
			    "cohortbridge_source_syncs_total{source=\"%s\",outcome=\"failed\"} "
			    "%llu\n",
			    metrics.sources[i].name, (unsigned long long)metrics.sources[i].ok,
			    metrics.sources[i].name, (unsigned long long)metrics.sources[i].failed);
		fputs("# HELP cohortbridge_source_failing Whether the source's last sync failed.\n"
		      "# TYPE cohortbridge_source_failing gauge\n",
		      f);
		for (size_t i = 0; i < metrics.nsources; i++)
			fprintf(f, "cohortbridge_source_failing{source=\"%s\"} %d\n",
			        metrics.sources[i].name, metrics.sources[i].failing);
		fputs("# HELP cohortbridge_source_last_ok_timestamp_seconds When the source last "
		      "synced well.\n"
		      "# TYPE cohortbridge_source_last_ok_timestamp_seconds gauge\n",
		      f);
		for (size_t i = 0; i < metrics.nsources; i++)
			fprintf(
			    f,
			    "cohortbridge_source_last_ok_timestamp_seconds{source=\"%s\"} %.0f\n",
			    metrics.sources[i].name, metrics.sources[i].last_ok);
	}
	fclose(f);
	return buf;
}
