#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"

enum state { ST_RESOLVING, ST_CONNECTING, ST_READY, ST_BACKOFF, ST_CLOSED };

struct query {
	struct query *next;
	char *sql;
	int nparams;
	char **values;
	int script;
	db_cb cb;
	void *ud;
};

struct watch {
	uv_poll_t h;
	int fd;
};

struct listener {
	char channel[64];
	db_notify_cb cb; /* NULL once removed */
	void *ud;
	int queued; /* in the LISTEN in flight */
};

struct db {
	uv_loop_t *loop;
	struct db_opts opts;
	enum state st;
	PGconn *conn;
	PQconninfoOption *info;
	char *hostaddr; /* resolved addresses, comma-separated like host */
	size_t resolve_idx;
	uv_getaddrinfo_t gai;
	int gai_busy;
	struct watch *w;
	uv_timer_t connect_timer, health_timer, retry_timer, close_timer;
	unsigned backoff_ms;
	struct query *head, *tail, *inflight;
	PGresult *result; /* last result of the query in flight */
	PGresult *errres; /* first error result of the query in flight */
	size_t npending;
	uint64_t last_ok_ms;
	int ping_busy;
	char last_error[256];
	struct listener *listeners;
	size_t nlisteners;
	int listen_due; /* LISTEN to be sent before the next query */
	int closing;
	int handles_open;
	void (*done)(void *, size_t);
	void *done_ud;
	size_t abandoned;
};

static void start_resolve(struct db *db);
static void pump(struct db *db);
static void maybe_finish_close(struct db *db);
static void on_query_io(uv_poll_t *h, int status, int events);

static void set_error(struct db *db, const char *msg)
{
	snprintf(db->last_error, sizeof(db->last_error), "%s", msg);
	size_t n = strlen(db->last_error);
	while (n && (db->last_error[n - 1] == '\n' || db->last_error[n - 1] == ' '))
		db->last_error[--n] = '\0';
}

static void query_free(struct query *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	free(q->sql);
	free(q);
}

static const char *opt(const struct db *db, const char *key)
{
	for (const PQconninfoOption *o = db->info; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val && *o->val ? o->val : NULL;
	return NULL;
}

/* --- socket watching ------------------------------------------------------------------ */

static void on_watch_closed(uv_handle_t *h)
{
	free(h->data);
}

static void unwatch(struct db *db)
{
	if (!db->w)
		return;
	uv_poll_stop(&db->w->h);
	db->w->h.data = db->w;
	uv_close((uv_handle_t *)&db->w->h, on_watch_closed);
	db->w = NULL;
}

static void watch(struct db *db, int events, uv_poll_cb cb)
{
	int fd = db->conn ? PQsocket(db->conn) : -1;
	if (fd < 0)
		return;
	if (db->w && db->w->fd != fd)
		unwatch(db);
	if (!db->w) {
		db->w = calloc(1, sizeof(*db->w));
		if (!db->w)
			return;
		db->w->fd = fd;
		uv_poll_init(db->loop, &db->w->h, fd);
	}
	db->w->h.data = db;
	uv_poll_start(&db->w->h, events, cb);
}

/* --- connection lifecycle ------------------------------------------------------------- */

static void fail_all_queued(struct db *db, const char *why)
{
	struct err e = {0};
	err_set(&e, "%s", why);
	e.retryable = true;
	while (db->head) {
		struct query *q = db->head;
		db->head = q->next;
		if (!db->head)
			db->tail = NULL;
		db->npending--;
		metrics.db_errors++;
		q->cb(NULL, &e, q->ud);
		query_free(q);
	}
}

static void on_retry(uv_timer_t *t)
{
	struct db *db = t->data;
	start_resolve(db);
}

static void connection_failed(struct db *db, const char *why)
{
	set_error(db, why);
	metrics.db_connected = 0;
	unwatch(db);
	uv_timer_stop(&db->connect_timer);
	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	if (db->inflight) {
		struct query *q = db->inflight;
		struct err e = {0};
		db->inflight = NULL;
		db->npending--;
		PQclear(db->result);
		PQclear(db->errres);
		db->result = db->errres = NULL;
		err_set(&e, "database connection lost: %s", db->last_error);
		e.retryable = true;
		metrics.db_errors++;
		q->cb(NULL, &e, q->ud);
		query_free(q);
	}
	if (db->opts.fail_fast || db->closing) {
		fail_all_queued(db, db->last_error);
		db->st = ST_CLOSED;
		maybe_finish_close(db);
		return;
	}
	db->st = ST_BACKOFF;
	unsigned ms = db->backoff_ms ? db->backoff_ms : 250;
	db->backoff_ms = ms * 2 > 30000 ? 30000 : ms * 2;
	ms = ms - ms / 4 + (unsigned)(rand() % (int)(ms / 2 + 1)); /* ±25% jitter */
	char b[32];
	log_warn("db", "database unavailable; retrying", "error", db->last_error, "retry_ms",
	         LOG_NUM(b, "%u", ms));
	uv_timer_start(&db->retry_timer, on_retry, ms, 0);
}

/* Server notices (such as "relation already exists, skipping") go to the log, not stderr. */
static void on_notice(void *arg, const char *message)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", message);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("db", "server notice", "notice", buf);
}

static void on_connected(struct db *db)
{
	PQsetNoticeProcessor(db->conn, on_notice, NULL);
	uv_timer_stop(&db->connect_timer);
	PQsetnonblocking(db->conn, 1);
	db->st = ST_READY;
	db->backoff_ms = 0;
	db->last_ok_ms = uv_now(db->loop);
	db->last_error[0] = '\0';
	metrics.db_connects++;
	metrics.db_connected = 1;
	char b[16];
	log_info("db", "connected", "server_version", LOG_NUM(b, "%d", PQserverVersion(db->conn)));
	/* an idle connection is watched too: notifications, and a server that goes away */
	watch(db, UV_READABLE, on_query_io);
	for (size_t i = 0; i < db->nlisteners; i++)
		db->listen_due |= db->listeners[i].cb != NULL;
	pump(db);
}

static void on_connect_io(uv_poll_t *h, int status, int events);

static void connect_step(struct db *db)
{
	switch (PQconnectPoll(db->conn)) {
	case PGRES_POLLING_OK:
		on_connected(db);
		return;
	case PGRES_POLLING_FAILED:
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	case PGRES_POLLING_READING:
		watch(db, UV_READABLE, on_connect_io);
		return;
	default:
		watch(db, UV_WRITABLE, on_connect_io);
		return;
	}
}

static void on_connect_io(uv_poll_t *h, int status, int events)
{
	connect_step(h->data);
}

static void on_connect_timeout(uv_timer_t *t)
{
	connection_failed(t->data, "timed out connecting to the database");
}

static void start_connect(struct db *db)
{
	const char *kw[64], *val[64];
	int n = 0;
	for (const PQconninfoOption *o = db->info; o && o->keyword && n < 62; o++) {
		if (!o->val || strcmp(o->keyword, "hostaddr") == 0)
			continue;
		kw[n] = o->keyword;
		val[n++] = o->val;
	}
	if (db->hostaddr) {
		kw[n] = "hostaddr";
		val[n++] = db->hostaddr;
	} else if (opt(db, "hostaddr")) {
		kw[n] = "hostaddr";
		val[n++] = opt(db, "hostaddr");
	}
	kw[n] = NULL;
	val[n] = NULL;
	db->st = ST_CONNECTING;
	db->conn = PQconnectStartParams(kw, val, 0);
	if (!db->conn) {
		connection_failed(db, "out of memory");
		return;
	}
	if (PQstatus(db->conn) == CONNECTION_BAD) {
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	}
	uv_timer_start(&db->connect_timer, on_connect_timeout, db->opts.connect_timeout_ms, 0);
	watch(db, UV_WRITABLE, on_connect_io);
}

/* host may be a comma-separated list; resolve each name in turn. Socket directories (and
 * numeric addresses, which resolve without a lookup) pass through unchanged. */
static void resolve_next(struct db *db);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct db *db = req->data;
	db->gai_busy = 0;
	if (db->closing) {
		uv_freeaddrinfo(res);
		connection_failed(db, "shutting down");
		return;
	}
	if (status < 0 || !res) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot resolve database host: %s", uv_strerror(status));
		uv_freeaddrinfo(res);
		connection_failed(db, msg);
		return;
	}
	char addr[64] = "";
	if (res->ai_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)res->ai_addr, addr, sizeof(addr));
	else
		uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, addr, sizeof(addr));
	uv_freeaddrinfo(res);
	size_t cur = db->hostaddr ? strlen(db->hostaddr) : 0;
	char *g = realloc(db->hostaddr, cur + strlen(addr) + 2);
	if (!g) {
		connection_failed(db, "out of memory");
		return;
	}
	db->hostaddr = g;
	snprintf(g + cur, strlen(addr) + 2, "%s%s", cur ? "," : "", addr);
	db->resolve_idx++;
	resolve_next(db);
}

static void resolve_next(struct db *db)
{
	const char *hosts = opt(db, "host");
	const char *p = hosts;
	for (size_t i = 0; p && i < db->resolve_idx; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p) {
		start_connect(db);
		return;
	}
	char name[256];
	size_t len = strcspn(p, ",");
	if (len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, p, len);
	name[len] = '\0';
	struct addrinfo hints = {0};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	db->gai.data = db;
	db->gai_busy = 1;
	int rc = uv_getaddrinfo(db->loop, &db->gai, on_resolved, name, NULL, &hints);
	if (rc < 0) {
		db->gai_busy = 0;
		connection_failed(db, uv_strerror(rc));
	}
}

static void start_resolve(struct db *db)
{
	const char *host = opt(db, "host");
	free(db->hostaddr);
	db->hostaddr = NULL;
	db->resolve_idx = 0;
	db->st = ST_RESOLVING;
	/* Unix socket directories need no lookup; neither does an explicit hostaddr. */
	if (!host || host[0] == '/' || host[0] == '@' || opt(db, "hostaddr")) {
		start_connect(db);
		return;
	}
	resolve_next(db);
}

/* --- queries --------------------------------------------------------------------------- */

static void complete_inflight(struct db *db)
{
	struct query *q = db->inflight;
	struct err e = {0};
	PGresult *res = db->errres ? db->errres : db->result;
	int failed = db->errres != NULL;

	db->inflight = NULL;
	db->npending--;
	metrics.db_roundtrips++;
	if (failed) {
		metrics.db_errors++;
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		err_set(&e, "%s", PQresultErrorMessage(res));
		size_t n = strlen(e.msg);
		while (n && e.msg[n - 1] == '\n')
			e.msg[--n] = '\0';
		/* serialization failures, deadlocks and admin shutdowns are worth retrying */
		e.retryable =
		    state && (strncmp(state, "40", 2) == 0 || strncmp(state, "57P", 3) == 0);
	} else {
		db->last_ok_ms = uv_now(db->loop);
	}
	q->cb(res, failed ? &e : NULL, q->ud);
	query_free(q);
	PQclear(db->result);
	PQclear(db->errres);
	db->result = db->errres = NULL;
}

static void read_results(struct db *db)
{
	if (!PQconsumeInput(db->conn)) {
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	}
	while (!PQisBusy(db->conn)) {
		PGresult *r = PQgetResult(db->conn);
		if (!r) {
			complete_inflight(db);
			pump(db);
			return;
		}
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_FATAL_ERROR || s == PGRES_BAD_RESPONSE ||
		    s == PGRES_NONFATAL_ERROR) {
			if (!db->errres)
				db->errres = r;
			else
				PQclear(r);
		} else if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT || s == PGRES_COPY_BOTH) {
			PQclear(r);
			connection_failed(db, "COPY is not supported on this connection");
			return;
		} else {
			PQclear(db->result);
			db->result = r;
		}
	}
	watch(db, UV_READABLE, on_query_io);
}

static void deliver_notifies(struct db *db)
{
	PGnotify *n;
	while (db->conn && (n = PQnotifies(db->conn)) != NULL) {
		/* by index: a callback may add listeners */
		for (size_t i = 0; i < db->nlisteners; i++)
			if (db->listeners[i].cb &&
			    strcmp(db->listeners[i].channel, n->relname) == 0)
				db->listeners[i].cb(n->relname, n->extra, db->listeners[i].ud);
		PQfreemem(n);
	}
}

/* Readable while no query is in flight: notifications, or the server closing the session. */
static void read_idle(struct db *db)
{
	if (!PQconsumeInput(db->conn) || PQstatus(db->conn) == CONNECTION_BAD) {
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	}
	deliver_notifies(db);
}

static void on_query_io(uv_poll_t *h, int status, int events)
{
	struct db *db = h->data;
	if (!db->conn)
		return;
	if (status < 0) {
		connection_failed(db, uv_strerror(status));
		return;
	}
	if (!db->inflight) {
		watch(db, UV_READABLE, on_query_io);
		if (events & UV_READABLE)
			read_idle(db);
		return;
	}
	if (events & UV_WRITABLE) {
		int f = PQflush(db->conn);
		if (f < 0) {
			connection_failed(db, PQerrorMessage(db->conn));
			return;
		}
		if (f == 0)
			watch(db, UV_READABLE, on_query_io);
	}
	if (events & UV_READABLE) {
		read_results(db);
		deliver_notifies(db);
	}
}

static void on_listened(PGresult *res, const struct err *err, void *ud)
{
	struct db *db = ud;
	if (err) {
		/* a lost connection sends it again on the next one */
		if (!err->retryable)
			log_error("db", "LISTEN failed", "error", err->msg);
		return;
	}
	for (size_t i = 0; i < db->nlisteners; i++) {
		struct listener *l = &db->listeners[i];
		if (l->queued && l->cb) {
			l->queued = 0;
			l->cb(l->channel, NULL, l->ud);
		}
	}
}

/* One LISTEN per channel, as a script ahead of the queue. Channel names were checked by
 * db_listen, so they can go into the SQL text. */
static void queue_listen(struct db *db)
{
	size_t len = 1;
	for (size_t i = 0; i < db->nlisteners; i++)
		len += strlen(db->listeners[i].channel) + 12;
	struct query *q = calloc(1, sizeof(*q));
	char *sql = malloc(len);
	if (!q || !sql) {
		free(q);
		free(sql);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < db->nlisteners; i++) {
		struct listener *l = &db->listeners[i];
		l->queued = l->cb != NULL;
		if (l->cb)
			n += (size_t)snprintf(sql + n, len - n, "LISTEN \"%s\";", l->channel);
	}
	if (!n) {
		free(q);
		free(sql);
		return;
	}
	q->sql = sql;
	q->script = 1;
	q->cb = on_listened;
	q->ud = db;
	q->next = db->head;
	db->head = q;
	if (!db->tail)
		db->tail = q;
	db->npending++;
}

static void pump(struct db *db)
{
	if (db->st != ST_READY || db->inflight) {
		maybe_finish_close(db);
		return;
	}
	/* not inside a transaction: a rollback would undo the LISTEN */
	if (db->listen_due && !db->closing && PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
		db->listen_due = 0;
		queue_listen(db);
	}
	if (!db->head) {
		maybe_finish_close(db);
		return;
	}
	struct query *q = db->head;
	db->head = q->next;
	if (!db->head)
		db->tail = NULL;
	db->inflight = q;
	int ok = q->script ? PQsendQuery(db->conn, q->sql)
	                   : PQsendQueryParams(db->conn, q->sql, q->nparams, NULL,
	                                       (const char *const *)q->values, NULL, NULL, 0);
	if (!ok) {
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	}
	int f = PQflush(db->conn);
	if (f < 0) {
		connection_failed(db, PQerrorMessage(db->conn));
		return;
	}
	watch(db, f ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, on_query_io);
}

static int enqueue(struct db *db, const char *sql, int nparams, const char *const *values,
                   int script, db_cb cb, void *ud, struct err *err)
{
	if (db->closing || db->st == ST_CLOSED)
		return err_set(err, "database connection is closing");
	struct query *q = calloc(1, sizeof(*q));
	if (!q || !(q->sql = strdup(sql)))
		goto oom;
	if (nparams > 0) {
		q->values = calloc((size_t)nparams, sizeof(char *));
		if (!q->values)
			goto oom;
		q->nparams = nparams;
		for (int i = 0; i < nparams; i++)
			if (values[i] && !(q->values[i] = strdup(values[i])))
				goto oom;
	}
	q->script = script;
	q->cb = cb;
	q->ud = ud;
	if (db->tail)
		db->tail->next = q;
	else
		db->head = q;
	db->tail = q;
	db->npending++;
	pump(db);
	return 0;
oom:
	query_free(q);
	return err_set(err, "out of memory");
}

int db_query(struct db *db, const char *sql, int nparams, const char *const *values, db_cb cb,
             void *ud, struct err *err)
{
	return enqueue(db, sql, nparams, values, 0, cb, ud, err);
}

int db_script(struct db *db, const char *sql, db_cb cb, void *ud, struct err *err)
{
	return enqueue(db, sql, 0, NULL, 1, cb, ud, err);
}

int db_listen(struct db *db, const char *channel, db_notify_cb cb, void *ud, struct err *err)
{
	size_t len = strlen(channel);
	if (len == 0 || len > 63 || !(islower((unsigned char)channel[0]) || channel[0] == '_') ||
	    strspn(channel, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
		return err_set(err, "invalid channel name for LISTEN: %s", channel);
	if (db->closing || db->st == ST_CLOSED)
		return err_set(err, "database connection is closing");
	struct listener *l = realloc(db->listeners, (db->nlisteners + 1) * sizeof(*l));
	if (!l)
		return err_set(err, "out of memory");
	db->listeners = l;
	l += db->nlisteners++;
	memcpy(l->channel, channel, len + 1);
	l->cb = cb;
	l->ud = ud;
	l->queued = 0;
	db->listen_due = 1;
	pump(db);
	return 0;
}

void db_unlisten(struct db *db, const char *channel, db_notify_cb cb, void *ud)
{
	for (size_t i = 0; db && i < db->nlisteners; i++)
		if (db->listeners[i].cb == cb && db->listeners[i].ud == ud &&
		    strcmp(db->listeners[i].channel, channel) == 0)
			db->listeners[i].cb = NULL;
}

/* --- health ----------------------------------------------------------------------------- */

static void on_ping(PGresult *res, const struct err *err, void *ud)
{
	struct db *db = ud;
	db->ping_busy = 0;
	if (err) {
		set_error(db, err->msg);
		log_warn("db", "health check failed", "error", err->msg);
	}
}

static void on_health_timer(uv_timer_t *t)
{
	struct db *db = t->data;
	if (db->st != ST_READY || db->ping_busy || db->closing)
		return;
	/* Any answered query proves the connection; ping only when idle. */
	if (db->npending > 0)
		return;
	if (db_query(db, "SELECT 1", 0, NULL, on_ping, db, NULL) == 0)
		db->ping_busy = 1;
}

bool db_healthy(const struct db *db, char *why, size_t size)
{
	if (db->st != ST_READY) {
		snprintf(why, size, "not connected%s%s", db->last_error[0] ? ": " : "",
		         db->last_error);
		return false;
	}
	uint64_t limit = db->opts.health_interval_ms ? 3ull * db->opts.health_interval_ms : 15000;
	uint64_t age = uv_now(db->loop) - db->last_ok_ms;
	if (age > limit) {
		snprintf(why, size, "no answer from the database for %llu ms",
		         (unsigned long long)age);
		return false;
	}
	return true;
}

size_t db_pending(const struct db *db)
{
	return db->npending;
}

/* --- open and close -------------------------------------------------------------------- */

/* Registers the password in conninfo before libpq parses it: a parse error may quote part of
 * the string, and the parsed form is not available then. */
static void register_password(const char *conninfo)
{
	char buf[512];
	const char *scheme = strstr(conninfo, "://");
	if (scheme) {
		const char *user = scheme + 3, *at = strchr(user, '@'), *colon = strchr(user, ':');
		if (at && colon && colon < at && (size_t)(at - colon - 1) < sizeof(buf)) {
			memcpy(buf, colon + 1, (size_t)(at - colon - 1));
			buf[at - colon - 1] = '\0';
			secret_register(buf);
		}
	}
	for (const char *p = strstr(conninfo, "password="); p; p = strstr(p + 1, "password=")) {
		const char *v = p + 9;
		size_t n = strcspn(v, " &'");
		if (n < sizeof(buf)) {
			memcpy(buf, v, n);
			buf[n] = '\0';
			secret_register(buf);
		}
	}
}

struct db *db_open(uv_loop_t *loop, const char *conninfo, const struct db_opts *opts,
                   struct err *err)
{
	char *perr = NULL;
	struct db *db = calloc(1, sizeof(*db));
	if (!db) {
		err_set(err, "out of memory");
		return NULL;
	}
	register_password(conninfo);
	db->info = PQconninfoParse(conninfo, &perr);
	if (!db->info) {
		err_set(err, "invalid DATABASE_URL: %s", perr ? perr : "out of memory");
		PQfreemem(perr);
		free(db);
		return NULL;
	}
	secret_register(opt(db, "password"));
	db->loop = loop;
	if (opts)
		db->opts = *opts;
	if (!db->opts.connect_timeout_ms)
		db->opts.connect_timeout_ms = 10000;
	uv_timer_init(loop, &db->connect_timer);
	uv_timer_init(loop, &db->health_timer);
	uv_timer_init(loop, &db->retry_timer);
	uv_timer_init(loop, &db->close_timer);
	db->connect_timer.data = db->health_timer.data = db->retry_timer.data = db;
	db->close_timer.data = db;
	if (db->opts.health_interval_ms)
		uv_timer_start(&db->health_timer, on_health_timer, db->opts.health_interval_ms,
		               db->opts.health_interval_ms);
	start_resolve(db);
	return db;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct db *db = h->data;
	if (--db->handles_open > 0)
		return;
	void (*done)(void *, size_t) = db->done;
	void *ud = db->done_ud;
	size_t abandoned = db->abandoned;
	free(db->hostaddr);
	free(db->listeners);
	PQconninfoFree(db->info);
	free(db);
	if (done)
		done(ud, abandoned);
}

static void maybe_finish_close(struct db *db)
{
	if (!db->closing || db->handles_open || db->inflight || db->head || db->gai_busy)
		return;
	unwatch(db);
	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->st = ST_CLOSED;
	metrics.db_connected = 0;
	uv_handle_t *hs[] = {(uv_handle_t *)&db->connect_timer, (uv_handle_t *)&db->health_timer,
	                     (uv_handle_t *)&db->retry_timer, (uv_handle_t *)&db->close_timer};
	db->handles_open = 4;
	for (int i = 0; i < 4; i++) {
		uv_timer_stop((uv_timer_t *)hs[i]);
		uv_close(hs[i], on_handle_closed);
	}
}

static void on_close_timeout(uv_timer_t *t)
{
	struct db *db = t->data;
	db->abandoned = db->npending;
	if (db->npending)
		log_error("db", "shutdown timeout: abandoning unfinished queries");
	connection_failed(db, "shutdown timeout");
}

void db_close(struct db *db, unsigned timeout_ms, void (*done)(void *ud, size_t abandoned),
              void *ud)
{
	if (!db) {
		if (done)
			done(ud, 0);
		return;
	}
	db->closing = 1;
	db->done = done;
	db->done_ud = ud;
	uv_timer_stop(&db->health_timer);
	uv_timer_stop(&db->retry_timer);
	if (db->st == ST_BACKOFF) {
		/* Not connected and not trying right now: nothing queued can run. */
		db->abandoned = db->npending;
		connection_failed(db, "shutting down: database unavailable");
		return;
	}
	if ((db->st == ST_CONNECTING || db->st == ST_RESOLVING) && !db->head) {
		if (db->st == ST_CONNECTING)
			connection_failed(db, "shutting down");
		return; /* a lookup in progress finishes the close from its callback */
	}
	if (db->head || db->inflight)
		uv_timer_start(&db->close_timer, on_close_timeout, timeout_ms, 0);
	maybe_finish_close(db);
}
