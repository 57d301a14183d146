/* The one loop: libwebsockets, libcurl and libpq together; the database layer; migrations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "helpers.h"

#include "db.h"
#include "httpc.h"
#include "httpd.h"
#include "metrics.h"
#include "migrate.h"
#include "secret.h"

struct together {
	uv_loop_t *loop;
	struct httpd *httpd;
	struct httpc *httpc;
	struct db *db;
	int order; /* sequence counter */
	int http_done_at, query_done_at;
	long status;
	char body[256];
	int health_calls;
	int closed;
};

static int fake_health(void *ud, char **body)
{
	struct together *t = ud;
	t->health_calls++;
	*body = strdup("{\"status\":\"ok\"}");
	return 200;
}

static void on_closed(void *ud, size_t abandoned)
{
	struct together *t = ud;
	assert_int_equal(abandoned, 0);
	t->closed = 1;
}

static void maybe_stop(struct together *t)
{
	if (t->http_done_at && t->query_done_at) {
		httpd_stop(t->httpd);
		httpc_close(t->httpc);
		db_close(t->db, 1000, on_closed, t);
	}
}

static void on_fetched(const struct httpc_response *r, void *ud)
{
	struct together *t = ud;
	t->http_done_at = ++t->order;
	t->status = r->status;
	snprintf(t->body, sizeof(t->body), "%s", r->body);
	maybe_stop(t);
}

static void on_slept(PGresult *res, const struct err *err, void *ud)
{
	struct together *t = ud;
	assert_null(err);
	assert_string_equal(PQgetvalue(res, 0, 0), "slept");
	t->query_done_at = ++t->order;
	maybe_stop(t);
}

/* A slow query is in flight while an HTTP fetch from our own libwebsockets server completes:
 * nothing blocks the loop. */
static void test_curl_lws_libpq_together(void **state)
{
	struct together t = {0};
	struct err err = {0};
	char url[64];
	t.loop = uv_default_loop();
	t.db = db_open(t.loop, th_db_url(), &(struct db_opts){0}, &err);
	assert_non_null(t.db);
	const char *p[] = {"slept"};
	assert_int_equal(
	    db_query(t.db, "SELECT $1::text FROM pg_sleep(0.4)", 1, p, on_slept, &t, &err), 0);
	t.httpd = httpd_start(t.loop, "127.0.0.1", 0, fake_health, &t, &err);
	assert_non_null(t.httpd);
	t.httpc = httpc_new(t.loop, &err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", httpd_port(t.httpd));
	struct httpc_request rq = {.url = url};
	assert_int_equal(httpc_send(t.httpc, &rq, on_fetched, &t, &err), 0);
	uint64_t t0 = uv_hrtime();
	uv_run(t.loop, UV_RUN_DEFAULT);
	httpd_free(t.httpd);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	assert_int_equal(t.status, 200);
	assert_string_equal(t.body, "{\"status\":\"ok\"}");
	assert_int_equal(t.health_calls, 1);
	assert_int_equal(t.http_done_at, 1); /* the fetch finished while the query was sleeping */
	assert_int_equal(t.query_done_at, 2);
	assert_true(t.closed);
	assert_true(secs < 5.0);
}

struct fetch {
	long status;
	struct err err;
	int done;
};

static void on_fetch(const struct httpc_response *r, void *ud)
{
	struct fetch *f = ud;
	f->status = r->status;
	f->err = r->err;
	f->done = 1;
}

static int fat_health(void *ud, char **body)
{
	*body = calloc(1, 5001);
	memset(*body, 'x', 5000);
	return 200;
}

static void test_httpc_errors(void **state)
{
	struct err err = {0};
	uv_loop_t *loop = uv_default_loop();
	struct httpc *c = httpc_new(loop, &err);
	struct fetch f1 = {0}, f2 = {0}, f3 = {0};
	struct httpc_request plain = {.url = "http://example.com/x?token=abc"};
	assert_int_equal(httpc_send(c, &plain, on_fetch, &f1, &err), -1);
	assert_non_null(strstr(err.msg, "only https"));
	assert_null(strstr(err.msg, "token=abc"));

	/* nothing listens on port 1: an error, not a hang */
	struct httpc_request refused = {.url = "http://127.0.0.1:1/", .timeout_ms = 3000};
	assert_int_equal(httpc_send(c, &refused, on_fetch, &f1, &err), 0);

	struct httpd *h = httpd_start(loop, "127.0.0.1", 0, fat_health, NULL, &err);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", httpd_port(h));
	struct httpc_request capped = {.url = url, .max_body = 1000};
	assert_int_equal(httpc_send(c, &capped, on_fetch, &f2, &err), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", httpd_port(h));
	struct httpc_request missing = {.url = url};
	assert_int_equal(httpc_send(c, &missing, on_fetch, &f3, &err), 0);
	while (!(f1.done && f2.done && f3.done))
		uv_run(loop, UV_RUN_ONCE);
	assert_int_equal(f1.status, 0);
	assert_true(f1.err.retryable);
	assert_int_equal(f2.status, 0);
	assert_non_null(strstr(f2.err.msg, "larger than 1000 bytes"));
	assert_int_equal(f3.status, 404);
	httpd_stop(h);
	httpc_close(c);
	uv_run(loop, UV_RUN_DEFAULT);
	httpd_free(h);
}

struct mig {
	int rc, applied, db_version, pending;
	char msg[512];
	struct db *db;
};

static void on_db_closed(void *ud, size_t abandoned)
{
}

static void on_mig(int rc, const struct err *err, const struct migrate_report *r, void *ud)
{
	struct mig *m = ud;
	m->rc = rc;
	snprintf(m->msg, sizeof(m->msg), "%s", err ? err->msg : "");
	if (r) {
		m->applied = r->applied;
		m->db_version = r->db_version;
		m->pending = r->pending;
	}
	db_close(m->db, 1000, on_db_closed, NULL);
}

static struct mig migrate_once(const char *conninfo, int status_only)
{
	struct mig m = {0};
	struct err err = {0};
	m.db = db_open(uv_default_loop(), conninfo, &(struct db_opts){.fail_fast = true}, &err);
	assert_non_null(m.db);
	migrate_run(m.db, status_only, on_mig, &m);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	return m;
}

static void test_migrations(void **state)
{
	char ci[1024];
	const struct migration *all;
	size_t n = migrations_known(&all);
	assert_true(n >= 1);
	assert_string_equal(all[0].name, "0001_core");
	th_fresh_db(ci, sizeof(ci));

	struct mig m = migrate_once(ci, 1);
	assert_int_equal(m.rc, 0);
	assert_int_equal(m.pending, (int)n);
	m = migrate_once(ci, 0);
	assert_int_equal(m.rc, 0);
	assert_int_equal(m.applied, (int)n);
	char count[16];
	snprintf(count, sizeof(count), "%zu", n);
	assert_string_equal(th_sql(ci, "SELECT count(*) FROM schema_migrations", 0), count);
	assert_non_null(th_sql(ci, "SELECT to_regclass('audit_log')", 0));
	m = migrate_once(ci, 0); /* twice: a no-op */
	assert_int_equal(m.rc, 0);
	assert_int_equal(m.applied, 0);

	/* a newer binary migrated this database */
	th_sql(ci,
	       "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, "
	       "'9999_future', 'x')",
	       0);
	m = migrate_once(ci, 0);
	assert_int_equal(m.rc, -1);
	assert_non_null(strstr(m.msg, "newer than this binary knows"));
	th_sql(ci, "DELETE FROM schema_migrations WHERE version = 9999", 0);

	/* an applied migration was edited afterwards */
	th_sql(ci, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1", 0);
	m = migrate_once(ci, 0);
	assert_int_equal(m.rc, -1);
	assert_non_null(strstr(m.msg, "was changed after it was applied"));
}

static void test_migration_failure_rolls_back(void **state)
{
	char ci[1024];
	th_fresh_db(ci, sizeof(ci));
	/* A table in the way makes 0001 fail halfway: nothing of it may stay. */
	th_sql(ci, "CREATE TABLE audit_log (x int)", 0);
	struct mig m = migrate_once(ci, 0);
	assert_int_equal(m.rc, -1);
	assert_non_null(strstr(m.msg, "0001_core"));
	assert_non_null(strstr(m.msg, "already exists"));
	assert_string_equal(th_sql(ci, "SELECT coalesce(to_regclass('guilds')::text, 'none')", 0),
	                    "none");
	assert_string_equal(th_sql(ci, "SELECT count(*) FROM schema_migrations", 0), "0");
}

struct q {
	int done;
	char value[128];
	char error[512];
	int retryable;
};

static void on_q(PGresult *res, const struct err *err, void *ud)
{
	struct q *q = ud;
	q->done = 1;
	if (err) {
		snprintf(q->error, sizeof(q->error), "%s", err->msg);
		q->retryable = err->retryable;
	} else if (PQntuples(res) > 0) {
		snprintf(q->value, sizeof(q->value), "%s", PQgetvalue(res, 0, 0));
	}
}

static void run_until(int *flag)
{
	while (!*flag)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
}

/* Host names are resolved on the loop and handed to libpq as addresses. */
static void test_db_tcp_hostname(void **state)
{
	const char *tcp = getenv("PGDEV_TCP_URL");
	if (!tcp || !*tcp)
		skip();
	struct err err = {0};
	struct q q1 = {0}, q2 = {0};
	struct db *db = db_open(uv_default_loop(), tcp, &(struct db_opts){.fail_fast = true}, &err);
	assert_non_null(db);
	const char *p[] = {"it's \"quoted\"; DROP TABLE x"};
	db_query(db, "SELECT $1::text", 1, p, on_q, &q1, &err);
	db_query(db, "SELEC 1", 0, NULL, on_q, &q2, &err);
	run_until(&q2.done);
	assert_string_equal(q1.value, p[0]);
	assert_non_null(strstr(q2.error, "syntax error"));
	assert_false(q2.retryable);
	char why[256];
	assert_true(db_healthy(db, why, sizeof(why)));
	db_close(db, 1000, on_db_closed, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

static void test_db_unreachable(void **state)
{
	struct err err = {0};
	struct q q1 = {0};
	uint64_t t0 = uv_hrtime();
	struct db *db = db_open(uv_default_loop(), "postgresql://nobody:pw-canary-77@127.0.0.1:1/x",
	                        &(struct db_opts){.fail_fast = true}, &err);
	assert_non_null(db);
	db_query(db, "SELECT 1", 0, NULL, on_q, &q1, &err);
	run_until(&q1.done);
	assert_non_null(strstr(q1.error, "connect"));
	assert_null(strstr(q1.error, "pw-canary-77"));
	assert_true((uv_hrtime() - t0) / 1000000 < 5000);
	char why[256];
	assert_false(db_healthy(db, why, sizeof(why)));
	db_close(db, 1000, on_db_closed, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);

	assert_null(db_open(uv_default_loop(), "postgresql://a:b@host/db?nonsense=1", NULL, &err));
	assert_non_null(strstr(err.msg, "invalid DATABASE_URL"));
	/* libpq quotes the bad token; when that is the password, the logger must know it */
	assert_null(db_open(uv_default_loop(), "postgresql://a:pw%zzsecret@host/db", NULL, &err));
	char *clean = secret_scrub(err.msg);
	assert_non_null(clean);
	assert_null(strstr(clean, "pw%zz"));
	free(clean);
	secret_clear();
}

GROUP(group_loop)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_curl_lws_libpq_together),
	    cmocka_unit_test(test_httpc_errors),
	    cmocka_unit_test(test_migrations),
	    cmocka_unit_test(test_migration_failure_rolls_back),
	    cmocka_unit_test(test_db_tcp_hostname),
	    cmocka_unit_test(test_db_unreachable),
	};
	return RUN_GROUP(tests);
}
