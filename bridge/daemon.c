#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <string.h>
#include <uv.h>

#include "daemon.h"
#include "version.h"
#include "db.h"
#include "discord.h"
#include "outbox.h"
#include "reconcile.h"
#include "httpc.h"
#include "httpd.h"
#include "log.h"
#include "mappings.h"
#include "metrics.h"
#include "migrate.h"
#include "registration.h"
#include "secret.h"
#include "staff.h"
#include "sync.h"

struct daemon {
	uv_loop_t *loop;
	struct config *cfg;
	struct mappings *maps; /* immutable; a reload swaps in a new one */
	int log_level_fixed;
	struct db *db;
	struct httpc *httpc;
	struct httpd *httpd;
	struct discord *discord;
	struct outbox *outbox;
	struct sync_sched *sched;
	struct reconcile *reconcile; /* the run under way, or NULL */
	int reconcile_again;         /* something changed while it ran */
	struct reg *reg;
	struct staff *staff;
	char *token;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_check_t iter;
	uv_timer_t tick;
	uint64_t last_tick_ms, lag_ms;
	int migrated;
	int stopping;
	int sources_reading;
	uint64_t sources_read_ms;
	int exit_code;
};

#define TICK_MS         500
#define SOURCES_READ_MS 10000

static void on_iteration(uv_check_t *h)
{
	metrics.loop_iterations++;
}

static void on_sources_read(PGresult *res, const struct err *err, void *ud)
{
	struct daemon *d = ud;
	d->sources_reading = 0;
	if (err || !res)
		return;
	size_t n = (size_t)PQntuples(res);
	if (n > sizeof(metrics.sources) / sizeof(metrics.sources[0]))
		n = sizeof(metrics.sources) / sizeof(metrics.sources[0]);
	for (size_t i = 0; i < n; i++) {
		struct metrics_source *m = &metrics.sources[i];
		/* source names are [a-z0-9_-] (the schema), safe inside a label */
		snprintf(m->name, sizeof(m->name), "%s", PQgetvalue(res, (int)i, 0));
		m->failing = PQgetvalue(res, (int)i, 1)[0] == 't';
		m->last_ok = strtod(PQgetvalue(res, (int)i, 2), NULL);
		m->ok = strtoull(PQgetvalue(res, (int)i, 3), NULL, 10);
		m->failed = strtoull(PQgetvalue(res, (int)i, 4), NULL, 10);
	}
	metrics.nsources = n;
}

/* The sources' health for /metrics, from what the syncs recorded (the sync command's too). */
static void read_sources(struct daemon *d)
{
	if (!d->migrated || d->sources_reading || d->stopping)
		return;
	d->sources_reading = 1;
	if (db_query(
	        d->db,
	        "SELECT st.source, st.failing, coalesce(extract(epoch FROM st.last_ok_at), 0), "
	        "(SELECT count(*) FROM source_syncs s WHERE s.source = st.source AND s.ok), "
	        "(SELECT count(*) FROM source_syncs s WHERE s.source = st.source AND NOT s.ok) "
	        "FROM source_state st ORDER BY st.source LIMIT 64",
	        0, NULL, on_sources_read, d, NULL) != 0)
		d->sources_reading = 0;
}

/* Measures how late the loop runs timers: a loop blocked by a slow call shows up here. */
static void on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = uv_hrtime() / 1000000;
	if (now - d->sources_read_ms >= SOURCES_READ_MS) {
		d->sources_read_ms = now;
		read_sources(d);
		staff_check_sources(d->staff);
	}
	if (d->last_tick_ms) {
		uint64_t late = now - d->last_tick_ms;
		d->lag_ms = late > TICK_MS ? late - TICK_MS : 0;
	}
	d->last_tick_ms = now;
}

static int health(void *ud, char **body)
{
	struct daemon *d = ud;
	char why[300] = "";
	int db_ok = d->db && db_healthy(d->db, why, sizeof(why));
	uint64_t since = uv_hrtime() / 1000000 - d->last_tick_ms;
	int loop_ok = d->last_tick_ms && since < 4 * TICK_MS;
	int discord_ok = discord_ready(d->discord);
	int ok = db_ok && loop_ok && d->migrated && discord_ok && !d->stopping;
	const char *status = d->stopping ? "stopping" : ok ? "ok" : "unavailable";
	json_t *j = json_pack("{s:s, s:{s:{s:b, s:b}, s:{s:b, s:I}, s:{s:b, s:s}}}", "status",
	                      status, "checks", "database", "ok", db_ok, "migrated", d->migrated,
	                      "loop", "ok", loop_ok, "lag_ms", (json_int_t)d->lag_ms, "discord",
	                      "ok", discord_ok, "state", discord_state(d->discord));
	if (!db_ok)
		json_object_set_new(json_object_get(json_object_get(j, "checks"), "database"),
		                    "error", json_string(why[0] ? why : "not connected"));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	size_t n = s ? strlen(s) : 0;
	*body = s ? realloc(s, n + 2) : NULL;
	if (*body) {
		(*body)[n] = '\n';
		(*body)[n + 1] = '\0';
	}
	return ok ? 200 : 503;
}

static void on_audit_written(PGresult *res, const struct err *err, void *ud)
{
	if (err)
		log_warn("audit", "could not write audit entry", "error", err->msg);
}

/* Records a process-level event in audit_log. detail is a JSON object. */
static void audit(struct daemon *d, const char *action, json_t *detail)
{
	char *js = json_dumps(detail, JSON_COMPACT);
	const char *p[] = {"cohortbridge", action, js ? js : "{}"};
	json_decref(detail);
	if (d->migrated)
		db_query(d->db,
		         "INSERT INTO audit_log (actor, action, detail) VALUES ($1, $2, $3::jsonb)",
		         3, p, on_audit_written, d, NULL);
	free(js);
}

static void on_closed(uv_handle_t *h)
{
}

static void reconcile_now(struct daemon *d);

static void on_reconciled(int rc, const char *msg, void *ud)
{
	struct daemon *d = ud;
	d->reconcile = NULL;
	if (rc == RECONCILE_HELD)
		/* staff confirm with the button in the audit channel, or from the command line;
		 * the other actions went ahead */
		log_warn("reconcile",
		         "role removals wait for a confirmation: the button in the audit channel, "
		         "or `cohortbridge apply --allow-removals`",
		         "detail", msg);
	else if (rc)
		log_error("reconcile", "Discord is not in step with the mappings", "error", msg);
	else
		log_info("reconcile", "Discord is in step with the mappings and the roster");
	if (d->reconcile_again && !d->stopping)
		reconcile_now(d);
}

static void on_held(const char *guild, const char *set, size_t removals, size_t managed,
                    double share, void *ud)
{
	struct daemon *d = ud;
	staff_removals_held(d->staff, guild, set, removals, managed, share);
}

/* Plans and applies every guild, through the outbox this process runs; a request while a run
 * is under way makes one more run after it. */
static void reconcile_now(struct daemon *d)
{
	if (d->stopping || !d->outbox || !d->discord || !d->maps->nguilds)
		return;
	if (d->reconcile) {
		d->reconcile_again = 1;
		return;
	}
	d->reconcile_again = 0;
	struct reconcile_opts o = {.apply = 1, .held = on_held};
	d->reconcile = reconcile_start(d->loop, d->db, discord_rest(d->discord), d->maps, &o,
	                               on_reconciled, d);
}

static void on_source_synced(const char *source, int failed, void *ud)
{
	struct daemon *d = ud;
	/* staff hear of a source that starts failing, or answers again */
	staff_check_sources(d->staff);
	/* a failed sync changed nothing; it is the roster's guard that keeps removals away */
	if (!failed)
		reconcile_now(d);
}

static void on_db_closed(void *ud, size_t abandoned)
{
	struct daemon *d = ud;
	d->db = NULL;
	if (abandoned && !d->exit_code)
		d->exit_code = 1;
	uv_close((uv_handle_t *)&d->sig_term, on_closed);
	uv_close((uv_handle_t *)&d->sig_int, on_closed);
	uv_close((uv_handle_t *)&d->sig_hup, on_closed);
	uv_close((uv_handle_t *)&d->iter, on_closed);
	uv_close((uv_handle_t *)&d->tick, on_closed);
	log_info("daemon", "stopped");
}

static void stop(struct daemon *d, int code)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	if (code)
		d->exit_code = code;
	char n[24];
	log_info("daemon", "shutting down", "pending_db_queries",
	         LOG_NUM(n, "%zu", d->db ? db_pending(d->db) : (size_t)0));
	audit(d, "stopped", json_pack("{s:i}", "exit_code", d->exit_code));
	httpd_stop(d->httpd);
	reconcile_cancel(d->reconcile);
	d->reconcile = NULL;
	staff_stop(d->staff);
	outbox_stop(d->outbox);
	sync_sched_stop(d->sched);
	d->sched = NULL;
	discord_stop(d->discord);
	httpc_close(d->httpc);
	d->httpc = NULL;
	db_close(d->db, d->cfg->shutdown_timeout_ms, on_db_closed, d);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	if (d->stopping) {
		log_warn("daemon", "second signal: exiting without waiting");
		exit(1);
	}
	log_info("daemon", "signal received", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(d, 0);
}

/* Loads the mappings cfg names, logging every problem with its position. NULL on any. */
static struct mappings *load_mappings(const struct config *cfg)
{
	struct diags diags = {0};
	struct err err = {0};
	char line[1400];
	struct mappings *m =
	    mappings_load(cfg->mappings_dir, cfg, cfg->mappings_dir_set, &diags, &err);
	if (!m) {
		for (size_t i = 0; i < diags.n; i++) {
			diags_format(&diags, i, line, sizeof(line));
			log_error("mappings", line);
		}
		if (!diags.n)
			log_error("mappings", err.msg);
		diags_clear(&diags);
		return NULL;
	}
	char files[16], cohorts[16];
	log_info("mappings", "mappings loaded", "dir", m->dir, "files",
	         LOG_NUM(files, "%zu", m->nfiles), "cohorts",
	         LOG_NUM(cohorts, "%zu", mappings_cohort_count(m)));
	return m;
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void on_reload(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	struct diags diags = {0};
	struct err err = {0};
	char line[1400];

	if (!d->cfg->path) {
		log_info("daemon", "SIGHUP: no config file to reload");
		return;
	}
	log_info("daemon", "reloading configuration", "file", d->cfg->path);
	struct config *nc = config_load(d->cfg->path, &diags, &err);
	if (!nc) {
		metrics.config_reloads_failed++;
		for (size_t i = 0; i < diags.n; i++) {
			diags_format(&diags, i, line, sizeof(line));
			log_error("config", line);
		}
		if (!diags.n)
			log_error("config", err.msg);
		log_error("daemon", "configuration rejected; the running configuration stays",
		          "file", d->cfg->path);
		diags_clear(&diags);
		return;
	}
	/* the configuration and the mappings are taken together or not at all */
	struct mappings *nm = load_mappings(nc);
	if (!nm) {
		metrics.config_reloads_failed++;
		log_error("daemon",
		          "mappings rejected; the running configuration and mappings stay", "dir",
		          nc->mappings_dir);
		config_free(nc);
		return;
	}
	/* a run under way reads the mappings being replaced: it stops; a run on the new ones
	 * carries out what they changed (renames, new cohorts, end dates) */
	reconcile_cancel(d->reconcile);
	d->reconcile = NULL;
	reg_set_config(d->reg, nc, nm); /* before the old ones go */
	staff_set(d->staff, nc, nm, discord_rest(d->discord), discord_cache(d->discord));
	mappings_free(d->maps);
	d->maps = nm;
	reconcile_now(d);
	if (str_differs(nc->http_host, d->cfg->http_host) || nc->http_port != d->cfg->http_port)
		log_warn("daemon", "http.listen changed; it takes effect on restart");
	if (nc->migrate_on_start != d->cfg->migrate_on_start ||
	    nc->db_connect_timeout_ms != d->cfg->db_connect_timeout_ms ||
	    nc->db_health_interval_ms != d->cfg->db_health_interval_ms)
		log_warn("daemon", "database settings changed; they take effect on restart");
	if (!d->log_level_fixed && nc->log_level >= 0)
		log_threshold = nc->log_level;
	struct config *old = d->cfg;
	d->cfg = nc;
	/* a sync under way keeps reading the old one; the schedule frees it after */
	old = d->sched ? sync_sched_reload(d->sched, nc, old) : old;
	config_free(old);
	discord_reload(d->discord, nc);
	metrics.config_reloads_ok++;
	log_info("daemon", "configuration reloaded", "file", nc->path);
	audit(d, "config_reloaded", json_pack("{s:s}", "file", nc->path));
}

static void on_discord_fatal(void *ud, const char *reason)
{
	struct daemon *d = ud;
	log_error("daemon", "Discord cannot be used; stopping", "reason", reason);
	stop(d, 1);
}

static void on_migrated(int rc, const struct err *err, const struct migrate_report *r, void *ud)
{
	struct daemon *d = ud;
	if (rc != 0) {
		log_error("daemon", "migration failed", "error", err ? err->msg : "unknown");
		stop(d, 1);
		return;
	}
	d->migrated = 1;
	char v[16];
	log_info("daemon", "database ready", "schema_version",
	         LOG_NUM(v, "%d", r ? r->known_version : 0));
	audit(d, "started", json_pack("{s:s}", "version", CB_VERSION));
	struct err e = {0};
	d->discord =
	    discord_start(d->loop, d->httpc, d->db, d->cfg, d->token, on_discord_fatal, d, &e);
	if (!d->discord) {
		log_error("daemon", e.msg);
		stop(d, 1);
		return;
	}
	d->reg = reg_new(d->loop, d->db, d->httpc);
	reg_set_config(d->reg, d->cfg, d->maps);
	discord_set_registration(d->discord, d->reg);
	d->staff = staff_new(d->loop, d->db);
	staff_set(d->staff, d->cfg, d->maps, discord_rest(d->discord), discord_cache(d->discord));
	discord_set_staff(d->discord, d->staff);
	struct outbox_opts oo = {.lease_ms = d->cfg->outbox_lease_ms,
	                         .batch = d->cfg->outbox_batch};
	d->outbox = outbox_new(d->loop, d->db, discord_rest(d->discord), &oo, &e);
	d->sched = sync_sched_start(d->loop, d->db, d->httpc, d->cfg);
	sync_sched_on_synced(d->sched, on_source_synced, d);
	if (d->outbox)
		reconcile_now(d);
}

static void on_schema_checked(int rc, const struct err *err, const struct migrate_report *r,
                              void *ud)
{
	struct daemon *d = ud;
	if (rc == 0 && r && r->pending) {
		log_error("daemon", "the database needs migrations; run `cohortbridge migrate` or "
		                    "drop --no-migrate");
		stop(d, 1);
		return;
	}
	on_migrated(rc, err, r, ud);
}

/* Reads the secrets the configuration names, so they are known to the redactor before anything
 * is logged, and says which are missing. */
static int read_secrets(struct daemon *d, char **db_url)
{
	struct err err = {0};
	char *tok = NULL;
	int rc = secret_get("DATABASE_URL", db_url, &err);
	if (rc < 0) {
		log_error("daemon", err.msg);
		return -1;
	}
	if (rc == 1) {
		log_error("daemon", "DATABASE_URL is not set (nor DATABASE_URL_FILE); `make demo` "
		                    "shows a complete setup");
		return -1;
	}
	rc = secret_get("DISCORD_TOKEN", &d->token, &err);
	if (rc < 0) {
		log_error("daemon", err.msg);
		return -1;
	}
	if (rc == 1) {
		log_error("daemon",
		          "DISCORD_TOKEN is not set (nor DISCORD_TOKEN_FILE); `make demo` runs "
		          "the bridge against a local Discord simulator");
		return -1;
	}
	for (size_t i = 0; i < d->cfg->nsources; i++) {
		const struct source_cfg *s = &d->cfg->sources[i];
		if (!s->token_env)
			continue;
		rc = secret_get(s->token_env, &tok, &err);
		if (rc < 0) {
			log_error("daemon", err.msg, "source", s->name);
			return -1;
		}
		if (rc == 1)
			log_warn("daemon", "source token is not set", "source", s->name, "variable",
			         s->token_env);
		free(tok);
	}
	return 0;
}

int daemon_run(struct config *cfg, int no_migrate, int log_level_fixed)
{
	struct daemon d = {0};
	struct err err = {0};
	char *db_url = NULL;
	char port[16];

	/* A fixed threshold keeps large, short-lived buffers (member chunks) in their own
	 * mappings, returned when freed; glibc's sliding default moves them onto the heap after
	 * the first free, where they stay resident. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);

	/* No core dumps and no ptrace by other processes: memory holds the tokens. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	d.loop = uv_default_loop();
	d.cfg = cfg;
	d.log_level_fixed = log_level_fixed;
	metrics.start_ms = uv_now(d.loop);
	/* backoff jitter must differ between processes sharing one database */
	srand((unsigned)(uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 16)));

	d.maps = load_mappings(cfg);
	if (!d.maps) {
		log_error("daemon", "mapping files have problems; not starting", "dir",
		          cfg->mappings_dir);
		config_free(cfg);
		return 1;
	}
	if (read_secrets(&d, &db_url) != 0) {
		free(db_url);
		free(d.token);
		mappings_free(d.maps);
		config_free(cfg);
		return 1;
	}
	struct db_opts o = {cfg->db_connect_timeout_ms, cfg->db_health_interval_ms, false};
	d.db = db_open(d.loop, db_url, &o, &err);
	free(db_url);
	if (!d.db) {
		log_error("daemon", err.msg);
		mappings_free(d.maps);
		config_free(cfg);
		return 1;
	}
	d.httpc = httpc_new(d.loop, &err);
	d.httpd =
	    d.httpc ? httpd_start(d.loop, cfg->http_host, cfg->http_port, health, &d, &err) : NULL;
	if (!d.httpd) {
		log_error("daemon", err.msg);
		d.exit_code = 1;
		d.stopping = 1;
		httpc_close(d.httpc);
		db_close(d.db, 1000, NULL, NULL);
		uv_run(d.loop, UV_RUN_DEFAULT);
		mappings_free(d.maps);
		config_free(cfg);
		return 1;
	}
	char addr[64];
	snprintf(addr, sizeof(addr), "http://%s:%d", cfg->http_host, httpd_port(d.httpd));
	log_info("daemon", "listening", "health", addr, "port",
	         LOG_NUM(port, "%d", httpd_port(d.httpd)));

	uv_signal_init(d.loop, &d.sig_term);
	uv_signal_init(d.loop, &d.sig_int);
	uv_signal_init(d.loop, &d.sig_hup);
	d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
	uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d.sig_hup, on_reload, SIGHUP);
	uv_check_init(d.loop, &d.iter);
	uv_check_start(&d.iter, on_iteration);
	uv_unref((uv_handle_t *)&d.iter);
	uv_timer_init(d.loop, &d.tick);
	d.tick.data = &d;
	uv_timer_start(&d.tick, on_tick, 0, TICK_MS);

	migrate_run(d.db, no_migrate || !cfg->migrate_on_start,
	            no_migrate || !cfg->migrate_on_start ? on_schema_checked : on_migrated, &d);

	uv_run(d.loop, UV_RUN_DEFAULT);
	httpd_free(d.httpd);
	discord_free(d.discord);
	reg_free(d.reg);
	staff_free(d.staff);
	outbox_free(d.outbox);
	free(d.token);
	mappings_free(d.maps);
	config_free(d.cfg);
	uv_loop_close(d.loop);
	return d.exit_code;
}
