/* make bench: figures for the foundation's hot paths, each with a ratio against a baseline.
 *
 *   log       a formatted logfmt line, and the cost of a disabled level (must be ~free)
 *   jpos      parsing with positions against jansson alone
 *   db        round-trips queued on the loop against blocking PQexec, same server
 *   httpd     requests served by /healthz to the loop's own HTTP client
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "db.h"
#include "httpc.h"
#include "httpd.h"
#include "jpos.h"
#include "log.h"

static double now_s(void)
{
	return (double)uv_hrtime() / 1e9;
}

static void bench_log(void)
{
	FILE *null = fopen("/dev/null", "w");
	log_set_stream(null);
	log_threshold = LOGL_INFO;
	int n = 200000;
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		log_info("bench", "member updated", "guild", "1234567890", "user", "987654321",
		         "roles", "a b c");
	double on = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < n * 50; i++)
		log_trace("bench", "member updated", "guild", "1234567890");
	double off = now_s() - t0;
	log_set_stream(NULL);
	fclose(null);
	printf("log      %10.0f lines/s formatted   %6.2f ns per disabled call   ratio %.0fx\n",
	       n / on, off / (n * 50.0) * 1e9, (on / n) / (off / (n * 50.0)));
}

static void bench_jpos(void)
{
	/* a mapping-sized document: 5,000 cohorts with nested channels */
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	fputs("{\"cohorts\": [\n", m);
	for (int i = 0; i < 5000; i++)
		fprintf(m,
		        "%s  {\"name\": \"cohort-%d\", \"role\": \"Cohort %d\", \"time_zone\": "
		        "\"Europe/Berlin\", \"channels\": [\"general\", \"voice\"], \"ends\": "
		        "\"2027-06-30\", \"match\": {\"source\": \"canvas\", \"section\": %d}}\n",
		        i ? "," : "", i, i, 1000 + i);
	fputs("]}\n", m);
	fclose(m);
	int reps = 20;
	struct err err = {0};
	double t0 = now_s();
	for (int i = 0; i < reps; i++)
		json_decref(json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL));
	double plain = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < reps; i++)
		jdoc_free(jdoc_parse("bench.json", text, len, &err));
	double pos = now_s() - t0;
	printf("jpos     %10.1f MB/s with positions  %6.1f MB/s jansson alone     ratio %.2fx\n",
	       len * reps / pos / 1e6, len * reps / plain / 1e6, pos / plain);
	free(text);
}

struct dbb {
	int left, done;
	struct db *db;
};

static void on_q(PGresult *res, const struct err *err, void *ud)
{
	struct dbb *b = ud;
	if (err) {
		fprintf(stderr, "bench: %s\n", err->msg);
		exit(1);
	}
	b->done++;
}

static void on_closed(void *ud, size_t abandoned)
{
}

static void bench_db(const char *url)
{
	int n = 20000;
	struct dbb b = {n, 0, NULL};
	struct err err = {0};
	b.db = db_open(uv_default_loop(), url, &(struct db_opts){.fail_fast = true}, &err);
	const char *p[] = {"42"};
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		db_query(b.db, "SELECT $1::int + 1", 1, p, on_q, &b, &err);
	while (b.done < n)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	double loop = now_s() - t0;
	db_close(b.db, 1000, on_closed, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);

	PGconn *c = PQconnectdb(url);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		PQclear(PQexecParams(c, "SELECT $1::int + 1", 1, NULL, p, NULL, NULL, 0));
	double sync = now_s() - t0;
	PQfinish(c);
	printf("db       %10.0f round-trips/s on the loop   %8.0f/s blocking PQexecParams   ratio "
	       "%.2fx\n",
	       n / loop, n / sync, sync / loop);
}

struct hb {
	struct httpc *c;
	char url[64];
	int sent, done, n, inflight;
};

static void on_resp(const struct httpc_response *r, void *ud);

static void send_one(struct hb *h)
{
	struct httpc_request rq = {.url = h->url};
	h->sent++;
	httpc_send(h->c, &rq, on_resp, h, NULL);
}

static void on_resp(const struct httpc_response *r, void *ud)
{
	struct hb *h = ud;
	if (r->status != 200) {
		fprintf(stderr, "bench: http %ld %s\n", r->status, r->err.msg);
		exit(1);
	}
	h->done++;
	if (h->sent < h->n)
		send_one(h);
}

static int health(void *ud, char **body)
{
	*body = strdup("{\"status\":\"ok\"}\n");
	return 200;
}

static void bench_httpd(void)
{
	struct err err = {0};
	struct hb h = {0};
	h.n = 5000;
	struct httpd *d = httpd_start(uv_default_loop(), "127.0.0.1", 0, health, NULL, &err);
	h.c = httpc_new(uv_default_loop(), &err);
	snprintf(h.url, sizeof(h.url), "http://127.0.0.1:%d/healthz", httpd_port(d));
	double t0 = now_s();
	for (int i = 0; i < 8; i++)
		send_one(&h);
	while (h.done < h.n)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	double t = now_s() - t0;
	httpd_stop(d);
	httpc_close(h.c);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	httpd_free(d);
	printf(
	    "httpd    %10.0f requests/s, server and client on one loop and one core, 8 in flight\n",
	    h.n / t);
}

int main(void)
{
	const char *url = getenv("DATABASE_URL");
	log_threshold = LOGL_WARN;
	printf("cohortbridge benchmarks (%s)\n", uv_version_string());
	bench_log();
	bench_jpos();
	if (url && *url)
		bench_db(url);
	else
		printf("db       skipped: DATABASE_URL is not set\n");
	bench_httpd();
	return 0;
}
