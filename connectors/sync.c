#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "log.h"
#include "secret.h"
#include "sync.h"

const struct connector_ops *connector_find(const char *type)
{
	static const struct connector_ops *const all[] = {
	    &roster_file_connector, &canvas_connector,  &moodle_connector,  &pretix_connector,
	    &ical_connector,        &pretalx_connector, &holidays_connector};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->type, type) == 0)
			return all[i];
	return NULL;
}

struct run {
	uv_loop_t *loop;
	struct db *db;
	struct httpc *http;
	const struct config *cfg;
	struct sync_opts o;
	sync_done_cb done;
	void *ud;
	size_t next;
	int failed, matched;
	/* the source in progress */
	const struct source_cfg *src;
	struct source_env env;
	json_t *cursor;
	char *token;
	const struct connector_ops *ops;
	void *conn;
	char started[64];
	uint64_t t0;
	/* the database query under way, and what follows it */
	int db_busy, cancelled, starting, finished;
	void (*then)(struct run *r, PGresult *res, const struct err *err);
};

static void step(struct run *r);

static void say(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct run *r, const char *fmt, ...)
{
	if (!r->o.out)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(r->o.out, fmt, ap);
	va_end(ap);
	fflush(r->o.out);
}

static void progress(void *ud, const char *line)
{
	struct run *r = ud;
	say(r, "%s: %s\n", r->src->name, line);
}

static void end_source(struct run *r)
{
	if (r->conn)
		r->ops->free(r->conn);
	r->conn = NULL;
	json_decref(r->cursor);
	r->cursor = NULL;
	free(r->token);
	r->token = NULL;
}

static void on_db(PGresult *res, const struct err *err, void *ud)
{
	struct run *r = ud;
	r->db_busy = 0;
	if (r->cancelled) {
		end_source(r);
		free(r);
		return;
	}
	r->then(r, res, err);
}

static int query(struct run *r, const char *sql, int n, const char *const *params,
                 void (*then)(struct run *r, PGresult *res, const struct err *err), struct err *err)
{
	r->then = then;
	int rc = db_query(r->db, sql, n, params, on_db, r, err);
	r->db_busy = rc == 0;
	return rc;
}

static void on_recorded(struct run *r, PGresult *res, const struct err *err)
{
	if (err)
		log_error("sync", "could not record the sync", "source", r->src->name, "error",
		          err->msg);
	step(r);
}

static void fail(struct run *r, const char *reason)
{
	/* a source may quote anything back, a token included: never print or keep one */
	char *scrubbed = secret_scrub(reason);
	const char *why = scrubbed ? scrubbed : reason;
	r->failed++;
	say(r, "%s: FAILED: %s\n", r->src->name, why);
	log_warn("sync", "sync failed; nothing changed", "source", r->src->name, "error", why);
	struct err err = {0};
	const char *params[3] = {r->src->name, r->started, why};
	end_source(r);
	if (r->o.dry_run || query(r, "SELECT cb_sync_failed($1, $2::timestamptz, $3)", 3, params,
	                          on_recorded, &err) != 0)
		step(r);
	free(scrubbed);
}

/* "12 people (2 new, 1 changed)" for one list of the report */
static size_t describe_list(const json_t *rep, const char *key, const char *label, char *buf,
                            size_t cap)
{
	const json_t *l = json_object_get(rep, key);
	if (!l || !cap)
		return 0;
	long long fetched = json_integer_value(json_object_get(l, "fetched"));
	long long nw = json_integer_value(json_object_get(l, "new"));
	long long ch = json_integer_value(json_object_get(l, "changed"));
	const json_t *gone = json_object_get(l, "withdrawn");
	const char *gone_label = "withdrawn";
	if (!gone) {
		gone = json_object_get(l, "removed");
		gone_label = "removed";
	}
	int n = snprintf(buf, cap, "; %lld %s (%lld new, %lld changed", fetched, label, nw, ch);
	if (n > 0 && (size_t)n < cap && gone)
		n += snprintf(buf + n, cap - (size_t)n, ", %lld %s", json_integer_value(gone),
		              gone_label);
	if (n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, ")");
	return n > 0 ? ((size_t)n < cap ? (size_t)n : cap - 1) : 0;
}

static void on_applied(struct run *r, PGresult *res, const struct err *err)
{
	if (err) {
		char why[600];
		snprintf(why, sizeof(why), "the database refused the snapshot: %s", err->msg);
		fail(r, why);
		return;
	}
	json_t *rep = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!json_is_true(json_object_get(rep, "ok"))) {
		char why[600];
		snprintf(why, sizeof(why), "%s",
		         json_string_value(json_object_get(rep, "error"))
		             ? json_string_value(json_object_get(rep, "error"))
		             : "refused");
		json_decref(rep);
		r->failed++;
		say(r, "%s: FAILED: %s\n", r->src->name, why);
		log_warn("sync", "sync refused; nothing changed", "source", r->src->name, "error",
		         why);
		end_source(r);
		step(r);
		return;
	}
	char line[1024];
	size_t n = 0;
	static const char *const lists[][2] = {
	    {"people", "people"},           {"memberships", "memberships"},
	    {"assignments", "assignments"}, {"due_dates", "due dates"},
	    {"submissions", "submissions"}, {"instances", "event instances"},
	    {"slots", "schedule slots"},    {"holidays", "holidays"}};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		n += describe_list(rep, lists[i][0], lists[i][1], line + n, sizeof(line) - n);
	double secs = (double)(uv_hrtime() - r->t0) / 1e9;
	const json_t *entries = json_object_get(rep, "entries");
	say(r, "%s: %s%s; %lld %s (%.2f s)\n", r->src->name,
	    r->o.dry_run ? "dry run, nothing written" : "synced", n ? line : "",
	    json_integer_value(entries ? entries : json_object_get(rep, "active")),
	    entries ? "entries" : "active memberships", secs);
	char active[32];
	log_info("sync", r->o.dry_run ? "dry run" : "synced", "source", r->src->name,
	         entries ? "entries" : "active",
	         LOG_NUM(active, "%lld",
	                 json_integer_value(entries ? entries : json_object_get(rep, "active"))));
	json_decref(rep);
	end_source(r);
	step(r);
}

static void on_fetched(void *ud, json_t *snap, const struct err *err)
{
	struct run *r = ud;
	if (err) {
		fail(r, err->msg);
		json_decref(snap);
		return;
	}
	if (!snap) {
		say(r, "%s: unchanged since the last sync\n", r->src->name);
		end_source(r);
		/* still a good sync: the source is fresh */
		const char *params[2] = {r->src->name, r->started};
		struct err qe = {0};
		if (r->o.dry_run ||
		    query(
		        r,
		        "WITH s AS (INSERT INTO source_syncs (source, started_at, ok, report) "
		        "VALUES ($1, $2::timestamptz, true, '{\"ok\": true, \"unchanged\": "
		        "true}')) "
		        "INSERT INTO source_state (source, last_ok_at, failing) VALUES ($1, now(), "
		        "false) ON CONFLICT (source) DO UPDATE SET last_ok_at = now(), failing = "
		        "false",
		        2, params, on_recorded, &qe) != 0)
			step(r);
		return;
	}
	/* calendars (instances, slots, holidays) have their own tables and guard */
	int calendar = json_object_get(snap, "instances") || json_object_get(snap, "slots") ||
	               json_object_get(snap, "holidays");
	char *text = json_dumps(snap, JSON_COMPACT);
	json_decref(snap);
	char share[32];
	snprintf(share, sizeof(share), "%g", r->src->min_share);
	const char *params[5] = {r->src->name, r->started, text, share,
	                         r->o.dry_run ? "true" : "false"};
	struct err qe = {0};
	if (!text) {
		fail(r, "out of memory");
		return;
	}
	int rc = query(r,
	               calendar ? "SELECT cb_calendar_apply($1, $2::timestamptz, $3::jsonb, "
	                          "$4::real, $5::boolean)::text"
	                        : "SELECT cb_sync_apply($1, $2::timestamptz, $3::jsonb, $4::real, "
	                          "$5::boolean)::text",
	               5, params, on_applied, &qe);
	free(text);
	if (rc != 0)
		fail(r, qe.msg);
}

static void on_cursor(struct run *r, PGresult *res, const struct err *err)
{
	struct err e = {0};
	if (err) {
		r->failed++;
		say(r, "%s: FAILED: %s\n", r->src->name, err->msg);
		step(r);
		return;
	}
	snprintf(r->started, sizeof(r->started), "%s", PQgetvalue(res, 0, 1));
	r->cursor = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!json_is_object(r->cursor)) {
		json_decref(r->cursor);
		r->cursor = json_object();
	}
	r->ops = connector_find(r->src->type);
	if (!r->ops) {
		char why[200];
		snprintf(why, sizeof(why), "sources of type %s are not supported by this build yet",
		         r->src->type);
		fail(r, why);
		return;
	}
	if (r->src->token_env) {
		int rc = secret_get(r->src->token_env, &r->token, &e);
		if (rc != 0) {
			char why[600];
			if (rc > 0)
				snprintf(why, sizeof(why), "%s is not set (nor %s_FILE)",
				         r->src->token_env, r->src->token_env);
			else
				snprintf(why, sizeof(why), "%s", e.msg);
			fail(r, why);
			return;
		}
	}
	r->env = (struct source_env){r->loop, r->http, r->src, r->token, r->cursor, progress, r};
	r->conn = r->ops->init(&r->env, &e);
	if (!r->conn) {
		fail(r, e.msg);
		return;
	}
	char what[300];
	r->ops->describe(r->conn, what, sizeof(what));
	log_info("sync", "fetching", "source", r->src->name, "from", what);
	r->ops->sync(r->conn, on_fetched, r);
}

static void step(struct run *r)
{
	while (r->next < r->cfg->nsources) {
		const struct source_cfg *s = &r->cfg->sources[r->next++];
		if (r->o.only && strcmp(r->o.only, s->name) != 0)
			continue;
		r->matched++;
		r->src = s;
		r->t0 = uv_hrtime();
		struct err err = {0};
		const char *params[1] = {s->name};
		if (query(r,
		          "SELECT coalesce((SELECT cursor FROM source_state WHERE source = $1), "
		          "'{}')::text, now()::text",
		          1, params, on_cursor, &err) != 0) {
			r->failed++;
			say(r, "%s: FAILED: %s\n", s->name, err.msg);
			continue;
		}
		return;
	}
	if (r->starting) {
		/* over before sync_sources returned: it reports */
		r->finished = 1;
		return;
	}
	int failed = r->o.only && !r->matched ? -1 : r->failed;
	sync_done_cb done = r->done;
	void *ud = r->ud;
	free(r);
	done(failed, ud);
}

struct sync_run *sync_sources(uv_loop_t *loop, struct db *db, struct httpc *http,
                              const struct config *cfg, const struct sync_opts *o,
                              sync_done_cb done, void *ud)
{
	struct run *r = calloc(1, sizeof(*r));
	if (!r) {
		done(cfg->nsources ? (int)cfg->nsources : 1, ud);
		return NULL;
	}
	*r = (struct run){
	    .loop = loop, .db = db, .http = http, .cfg = cfg, .o = *o, .done = done, .ud = ud};
	r->starting = 1;
	step(r);
	r->starting = 0;
	if (r->finished) {
		r->finished = 0;
		step(r); /* reports and frees */
		return NULL;
	}
	return (struct sync_run *)r;
}

void sync_cancel(struct sync_run *run)
{
	struct run *r = (struct run *)run;
	if (!r || r->cancelled)
		return;
	r->cancelled = 1;
	if (r->conn)
		r->ops->free(r->conn); /* its callbacks never come */
	r->conn = NULL;
	if (!r->db_busy) {
		end_source(r);
		free(r);
	}
}

/* --- in the running bridge: each source on its own interval, one at a time -------------------- */

struct sched_source {
	char name[65];
	uint64_t due;      /* loop ms */
	unsigned failures; /* in a row */
};

struct sync_sched {
	uv_loop_t *loop;
	struct db *db;
	struct httpc *http;
	const struct config *cfg;
	const struct config *run_cfg; /* the one the sync under way reads */
	struct config *retired;       /* run_cfg, replaced meanwhile: freed when the sync ends */
	struct sched_source *src;
	size_t n;
	uv_timer_t timer;
	struct sync_run *running;
	size_t running_i;
	char running_name[65];
	int stopping;
	void (*on_synced)(const char *source, int failed, void *ud);
	void *on_synced_ud;
};

static unsigned interval_ms(const struct source_cfg *s)
{
	const json_t *v = json_object_get(s->extra, "interval_s");
	if (json_is_number(v))
		return (unsigned)(json_number_value(v) * 1000.0);
	/* a file costs a read and a checksum, a published sheet a conditional request; an API,
	 * requests against its limits */
	if (strcmp(s->type, "roster_file") == 0)
		return s->path ? 60000 : 300000;
	/* holidays change once a year */
	return strcmp(s->type, "holidays") == 0 ? 86400000 : 900000;
}

static unsigned retry_ms(const struct source_cfg *s)
{
	const json_t *v = json_object_get(s->extra, "retry_s");
	return json_is_number(v) ? (unsigned)(json_number_value(v) * 1000.0) : 30000;
}

static void sched_tick(uv_timer_t *t);

static void sched_done(int failed, void *ud)
{
	struct sync_sched *s = ud;
	s->running = NULL;
	/* the next one of this source, counted from now; after a failure sooner (retry_s, 30 s,
	 * doubling up to the interval), so that a source that was down a moment is not stale for
	 * long */
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->src[i].name, s->running_name) != 0)
			continue;
		uint64_t wait = interval_ms(&s->cfg->sources[i]);
		s->src[i].failures = failed > 0 ? s->src[i].failures + 1 : 0;
		if (s->src[i].failures) {
			unsigned shift = s->src[i].failures < 16 ? s->src[i].failures - 1 : 15;
			uint64_t retry = (uint64_t)retry_ms(&s->cfg->sources[i]) << shift;
			if (retry < wait)
				wait = retry;
		}
		s->src[i].due = uv_now(s->loop) + wait;
	}
	if (s->retired) {
		config_free(s->retired);
		s->retired = NULL;
	}
	if (!s->stopping)
		uv_timer_start(&s->timer, sched_tick, 0, 1000);
	if (!s->stopping && s->on_synced)
		s->on_synced(s->running_name, failed, s->on_synced_ud);
}

void sync_sched_on_synced(struct sync_sched *s,
                          void (*cb)(const char *source, int failed, void *ud), void *ud)
{
	if (!s)
		return;
	s->on_synced = cb;
	s->on_synced_ud = ud;
}

static void sched_tick(uv_timer_t *t)
{
	struct sync_sched *s = t->data;
	if (s->running || s->stopping)
		return;
	uint64_t now = uv_now(s->loop);
	for (size_t i = 0; i < s->n; i++) {
		if (s->src[i].due > now)
			continue;
		snprintf(s->running_name, sizeof(s->running_name), "%s", s->src[i].name);
		struct sync_opts o = {s->running_name, false, NULL};
		/* a placeholder: sched_done may run before sync_sources returns */
		s->running = (struct sync_run *)s;
		s->run_cfg = s->cfg;
		struct sync_run *r =
		    sync_sources(s->loop, s->db, s->http, s->cfg, &o, sched_done, s);
		if (s->running)
			s->running = r;
		return;
	}
}

static int sched_adopt(struct sync_sched *s, const struct config *cfg)
{
	struct sched_source *src = calloc(cfg->nsources ? cfg->nsources : 1, sizeof(*src));
	if (!src)
		return -1;
	uint64_t now = uv_now(s->loop);
	for (size_t i = 0; i < cfg->nsources; i++) {
		snprintf(src[i].name, sizeof(src[i].name), "%s", cfg->sources[i].name);
		src[i].due = now; /* a new source: at once */
		for (size_t k = 0; k < s->n; k++)
			if (strcmp(s->src[k].name, src[i].name) == 0) {
				src[i].due = s->src[k].due;
				src[i].failures = s->src[k].failures;
			}
	}
	free(s->src);
	s->src = src;
	s->n = cfg->nsources;
	s->cfg = cfg;
	return 0;
}

struct sync_sched *sync_sched_start(uv_loop_t *loop, struct db *db, struct httpc *http,
                                    const struct config *cfg)
{
	struct sync_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->db = db;
	s->http = http;
	if (sched_adopt(s, cfg) != 0) {
		free(s);
		return NULL;
	}
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, sched_tick, 0, 1000);
	return s;
}

struct config *sync_sched_reload(struct sync_sched *s, const struct config *nc, struct config *old)
{
	if (!s)
		return old;
	sched_adopt(s, nc);
	if (!s->running || old != s->run_cfg)
		return old;
	/* the sync under way still reads it */
	s->retired = old;
	return NULL;
}

static void on_sched_closed(uv_handle_t *h)
{
	struct sync_sched *s = h->data;
	if (s->retired)
		config_free(s->retired);
	free(s->src);
	free(s);
}

void sync_sched_stop(struct sync_sched *s)
{
	if (!s)
		return;
	s->stopping = 1;
	sync_cancel(s->running);
	s->running = NULL;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, on_sched_closed);
}
