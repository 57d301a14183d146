/* cohortbridge: the command line. */
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <libwebsockets.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "db.h"
#include "doctor.h"
#include "log.h"
#include "mappings.h"
#include "migrate.h"
#include "outbox.h"
#include "reconcile.h"
#include "rest.h"
#include "secret.h"
#include "sync.h"
#include "httpc.h"
#include "ical.h"
#include "version.h"

struct command {
	const char *name;
	const char *summary;
	const char *usage; /* the whole --help text after the first line */
	int (*run)(int argc, char **argv);
};

static const char *opt_config;
static int log_level_fixed;

static const char main_usage[] =
    "usage: cohortbridge [--config FILE] [--log-level LEVEL] COMMAND [OPTIONS]\n"
    "\n"
    "Keeps a Discord server in step with a learning programme's LMS, ticketing and calendars.\n"
    "\n"
    "commands:\n"
    "  run        run the bridge (health and metrics endpoint, database, sources)\n"
    "  migrate    apply pending database migrations\n"
    "  sync       fetch the configured sources now and show what changed\n"
    "  check      validate the configuration and mapping files without a database or Discord\n"
    "  plan       show what reconciling Discord with the mappings and roster would change\n"
    "  apply      reconcile once: carry out the plan through the outbox\n"
    "  doctor     check the token, intents, role position and permissions; print the invite URL\n"
    "  ical       `ical expand`: the instances of a calendar feed in a window\n"
    "  version    print the version and the library versions\n"
    "  help       show this help, or `help COMMAND` for one command\n"
    "\n"
    "global options:\n"
    "  --config FILE      configuration file (default: $COHORTBRIDGE_CONFIG; optional)\n"
    "  --log-level LEVEL  error, warn, info, debug or trace (default: $COHORTBRIDGE_LOG_LEVEL,\n"
    "                     then the config's log_level, then info)\n"
    "  -h, --help         show help\n"
    "  --version          print the version\n"
    "\n"
    "environment:\n"
    "  DATABASE_URL       PostgreSQL connection string (URL or key=value); required by run and "
    "migrate\n"
    "  DISCORD_TOKEN      the bot token\n"
    "  DISCORD_API_URL    Discord REST base URL (default https://discord.com/api/v10)\n"
    "  Each secret may instead be read from a file named by NAME_FILE (mode 0600 or stricter).\n";

/* Prints an error for the person at the terminal, scrubbed of secrets like every log line. */
static void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void cli_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char *clean = secret_scrub(buf);
	fprintf(stderr, "%s\n", clean ? clean : buf);
	free(clean);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cohortbridge: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", main_usage);
}

static int load_config(struct config **out)
{
	struct diags diags = {0};
	struct err err = {0};
	const char *path = opt_config ? opt_config : getenv("COHORTBRIDGE_CONFIG");
	if (path && !*path)
		path = NULL;
	*out = config_load(path, &diags, &err);
	if (!*out) {
		if (diags.n)
			diags_print(&diags, stderr);
		else
			cli_error("%s", err.msg);
		diags_clear(&diags);
		return -1;
	}
	if (!log_level_fixed && (*out)->log_level >= 0)
		log_threshold = (*out)->log_level;
	return 0;
}

/* Parses a command's own options: every one must be in allowed (NULL-terminated); flags[i] is
 * set for the ones seen. Positional arguments are returned through pos (at most npos).
 * Returns 0, 1 after printing help, or 2 on a usage error. */
static int parse_cmd(const struct command *c, int argc, char **argv, const char *const *allowed,
                     int *flags, char **pos, int npos)
{
	int np = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: cohortbridge %s%s", c->name, c->usage);
			return 1;
		}
		if (a[0] == '-') {
			int k = 0;
			while (allowed && allowed[k] && strcmp(allowed[k], a) != 0)
				k++;
			if (!allowed || !allowed[k]) {
				fprintf(stderr,
				        "cohortbridge %s: unknown option %s\n\nusage: cohortbridge "
				        "%s%s",
				        c->name, a, c->name, c->usage);
				return 2;
			}
			flags[k] = 1;
			continue;
		}
		if (np >= npos) {
			fprintf(
			    stderr,
			    "cohortbridge %s: unexpected argument %s\n\nusage: cohortbridge %s%s",
			    c->name, a, c->name, c->usage);
			return 2;
		}
		pos[np++] = argv[i];
	}
	return 0;
}

static const struct command commands[];

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int cmd_run(int argc, char **argv)
{
	static const char *const allowed[] = {"--no-migrate", NULL};
	int flags[1] = {0};
	int rc = parse_cmd(find_command("run"), argc, argv, allowed, flags, NULL, 0);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct config *cfg;
	if (load_config(&cfg) != 0)
		return 1;
	return daemon_run(cfg, flags[0], log_level_fixed);
}

struct migrate_state {
	int status_only;
	int rc;
};

static void on_migrate_done(int rc, const struct err *err, const struct migrate_report *r,
                            void *ud);

static void on_db_closed(void *ud, size_t abandoned)
{
}

static struct db *cli_db;

static void on_migrate_done(int rc, const struct err *err, const struct migrate_report *r, void *ud)
{
	struct migrate_state *st = ud;
	st->rc = rc ? 1 : 0;
	if (rc) {
		cli_error("cohortbridge migrate: %s", err ? err->msg : "failed");
	} else if (st->status_only) {
		const struct migration *all;
		size_t n = migrations_known(&all);
		printf("database schema version %d; this binary knows %d; %d pending\n",
		       r->db_version, r->known_version, r->pending);
		for (size_t i = 0; i < n; i++)
			if (all[i].version > r->db_version)
				printf("  pending: %s\n", all[i].name);
	} else if (r->applied) {
		printf("applied %d migration(s); schema version %d\n", r->applied,
		       r->known_version);
	} else {
		printf("nothing to do; schema version %d\n", r->db_version);
	}
	db_close(cli_db, 5000, on_db_closed, NULL);
}

static int cmd_migrate(int argc, char **argv)
{
	static const char *const allowed[] = {"--status", NULL};
	int flags[1] = {0};
	int rc = parse_cmd(find_command("migrate"), argc, argv, allowed, flags, NULL, 0);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct config *cfg;
	if (load_config(&cfg) != 0)
		return 1;
	char *url = NULL;
	struct err err = {0};
	rc = secret_get("DATABASE_URL", &url, &err);
	if (rc != 0) {
		cli_error("cohortbridge migrate: %s",
		          rc < 0 ? err.msg : "DATABASE_URL is not set (nor DATABASE_URL_FILE)");
		config_free(cfg);
		return 1;
	}
	struct db_opts o = {cfg->db_connect_timeout_ms, 0, true};
	struct migrate_state st = {flags[0], 1};
	cli_db = db_open(uv_default_loop(), url, &o, &err);
	free(url);
	config_free(cfg);
	if (!cli_db) {
		cli_error("cohortbridge migrate: %s", err.msg);
		return 1;
	}
	migrate_run(cli_db, st.status_only, on_migrate_done, &st);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	uv_loop_close(uv_default_loop());
	return st.rc;
}

/* --- sync ------------------------------------------------------------------------------------ */

struct sync_state {
	const struct config *cfg;
	struct sync_opts o;
	struct httpc *http;
	int rc;
};

static void on_synced(int failed, void *ud)
{
	struct sync_state *st = ud;
	if (failed < 0) {
		cli_error("cohortbridge sync: no source is named \"%s\"", st->o.only);
		st->rc = 2;
	} else {
		st->rc = failed ? 1 : 0;
	}
	httpc_close(st->http);
	db_close(cli_db, 5000, on_db_closed, NULL);
}

static void on_sync_migrated(int rc, const struct err *err, const struct migrate_report *r,
                             void *ud)
{
	struct sync_state *st = ud;
	if (rc || (!st->cfg->migrate_on_start && r->pending)) {
		cli_error("cohortbridge sync: %s",
		          rc ? (err ? err->msg : "the database is not ready")
		             : "the database schema is behind: run cohortbridge migrate first");
		st->rc = 1;
		httpc_close(st->http);
		db_close(cli_db, 5000, on_db_closed, NULL);
		return;
	}
	sync_sources(uv_default_loop(), cli_db, st->http, st->cfg, &st->o, on_synced, st);
}

/* argv without "NAME VALUE" or "NAME=VALUE" (the value into *value, borrowed from argv): the
 * rest as a new array in *rest, which the caller frees, and its length; or -2 after a usage
 * error (NAME without a value), -1 out of memory. */
static int value_option(int argc, char **argv, const char *name, const char *needs,
                        const char **value, char ***rest)
{
	size_t len = strlen(name);
	char **args = calloc((size_t)argc + 1, sizeof(char *));
	int n = 0;
	if (!args)
		return -1;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], name) == 0) {
			if (i + 1 >= argc) {
				free(args);
				usage_error("%s", needs);
				return -2;
			}
			*value = argv[++i];
		} else if (i > 0 && strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
			*value = argv[i] + len + 1;
		} else {
			args[n++] = argv[i];
		}
	}
	*rest = args;
	return n;
}

static int cmd_sync(int argc, char **argv)
{
	static const char *const allowed[] = {"--dry-run", NULL};
	int flags[1] = {0};
	const char *only = NULL;
	char **args;
	int n = value_option(argc, argv, "--source", "--source needs a source name", &only, &args);
	if (n < 0)
		return -n;
	int rc = parse_cmd(find_command("sync"), n, args, allowed, flags, NULL, 0);
	free(args);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct config *cfg;
	if (load_config(&cfg) != 0)
		return 1;
	if (!cfg->nsources) {
		cli_error("cohortbridge sync: the configuration declares no sources");
		config_free(cfg);
		return 1;
	}
	char *url = NULL;
	struct err err = {0};
	rc = secret_get("DATABASE_URL", &url, &err);
	if (rc != 0) {
		cli_error("cohortbridge sync: %s",
		          rc < 0 ? err.msg : "DATABASE_URL is not set (nor DATABASE_URL_FILE)");
		config_free(cfg);
		return 1;
	}
	struct db_opts o = {cfg->db_connect_timeout_ms, 0, true};
	struct sync_state st = {cfg, {only, flags[0] != 0, stdout}, NULL, 1};
	cli_db = db_open(uv_default_loop(), url, &o, &err);
	free(url);
	if (cli_db)
		st.http = httpc_new(uv_default_loop(), &err);
	if (!cli_db || !st.http) {
		cli_error("cohortbridge sync: %s", err.msg);
		if (cli_db)
			db_close(cli_db, 0, on_db_closed, NULL);
		uv_run(uv_default_loop(), UV_RUN_DEFAULT);
		config_free(cfg);
		return 1;
	}
	/* the schema as run would have it: migrated on start unless the config says not to */
	migrate_run(cli_db, !cfg->migrate_on_start, on_sync_migrated, &st);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	uv_loop_close(uv_default_loop());
	config_free(cfg);
	return st.rc;
}

static int cmd_check(int argc, char **argv)
{
	char *pos[1] = {NULL};
	const char *dir = NULL;
	char **args;
	int n = value_option(argc, argv, "--mappings", "--mappings needs a directory", &dir, &args);
	if (n < 0)
		return -n;
	int rc = parse_cmd(find_command("check"), n, args, NULL, NULL, pos, 1);
	free(args);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (pos[0])
		opt_config = pos[0];
	const char *path = opt_config ? opt_config : getenv("COHORTBRIDGE_CONFIG");
	struct config *cfg;
	if (load_config(&cfg) != 0)
		return 1;
	if (path && *path)
		printf("%s: OK (%zu source(s))\n", path, cfg->nsources);
	else
		printf("no configuration file given: the defaults apply\n");
	struct diags diags = {0};
	struct err err = {0};
	struct mappings *m = mappings_load(dir ? dir : cfg->mappings_dir, cfg,
	                                   dir || cfg->mappings_dir_set, &diags, &err);
	if (!m) {
		if (diags.n)
			diags_print(&diags, stderr);
		else
			cli_error("%s", err.msg);
		diags_clear(&diags);
		config_free(cfg);
		return 1;
	}
	printf("%s: OK (%zu file(s), %zu guild(s), %zu cohort(s), %zu cohort set(s))\n", m->dir,
	       m->nfiles, m->nguilds, mappings_cohort_count(m), mappings_set_count(m));
	mappings_free(m);
	config_free(cfg);
	return 0;
}

/* --- plan and apply -------------------------------------------------------------------------- */

struct rec_state {
	const char *name;
	struct config *cfg;
	struct mappings *maps;
	struct httpc *http;
	struct rest *rest;
	struct outbox *ob;
	struct reconcile_opts o;
	int rc;
};

static void rec_close(struct rec_state *st)
{
	outbox_stop(st->ob);
	if (st->rest)
		rest_free(st->rest);
	st->rest = NULL;
	httpc_close(st->http);
	db_close(cli_db, 5000, on_db_closed, NULL);
}

static void on_reconciled(int rc, const char *msg, void *ud)
{
	struct rec_state *st = ud;
	st->rc = rc;
	if (rc)
		cli_error("cohortbridge %s: %s", st->name, msg);
	rec_close(st);
}

static void on_rec_migrated(int rc, const struct err *err, const struct migrate_report *r, void *ud)
{
	struct rec_state *st = ud;
	if (rc || (!st->cfg->migrate_on_start && r->pending)) {
		cli_error("cohortbridge %s: %s", st->name,
		          rc ? (err ? err->msg : "the database is not ready")
		             : "the database schema is behind: run cohortbridge migrate first");
		st->rc = 1;
		rec_close(st);
		return;
	}
	struct err e = {0};
	if (st->o.apply) {
		struct outbox_opts oo = {.lease_ms = st->cfg->outbox_lease_ms,
		                         .batch = st->cfg->outbox_batch};
		st->ob = outbox_new(uv_default_loop(), cli_db, st->rest, &oo, &e);
		if (!st->ob) {
			cli_error("cohortbridge %s: %s", st->name, e.msg);
			st->rc = 1;
			rec_close(st);
			return;
		}
	}
	if (!reconcile_start(uv_default_loop(), cli_db, st->rest, st->maps, &st->o, on_reconciled,
	                     st)) {
		cli_error("cohortbridge %s: out of memory", st->name);
		st->rc = 1;
		rec_close(st);
	}
}

/* plan and apply: the same reading and planning; apply also enqueues and runs the outbox. */
static int cmd_reconcile(int argc, char **argv, int apply)
{
	const char *name = apply ? "apply" : "plan";
	static const char *const plan_allowed[] = {"--json", NULL};
	static const char *const apply_allowed[] = {"--allow-removals", NULL};
	int flags[1] = {0};
	const char *guild = NULL;
	char **args;
	int n = value_option(argc, argv, "--guild", "--guild needs a guild id", &guild, &args);
	if (n < 0)
		return -n;
	int rc = parse_cmd(find_command(name), n, args, apply ? apply_allowed : plan_allowed, flags,
	                   NULL, 0);
	free(args);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct rec_state st = {.name = name, .rc = 1};
	if (load_config(&st.cfg) != 0)
		return 1;
	struct diags diags = {0};
	struct err err = {0};
	st.maps =
	    mappings_load(st.cfg->mappings_dir, st.cfg, st.cfg->mappings_dir_set, &diags, &err);
	if (!st.maps) {
		if (diags.n)
			diags_print(&diags, stderr);
		else
			cli_error("cohortbridge %s: %s", name, err.msg);
		diags_clear(&diags);
		config_free(st.cfg);
		return 1;
	}
	char *url = NULL, *token = NULL;
	const char *missing = NULL;
	rc = secret_get("DATABASE_URL", &url, &err);
	if (rc == 1)
		missing = "DATABASE_URL is not set (nor DATABASE_URL_FILE)";
	if (rc == 0) {
		rc = secret_get("DISCORD_TOKEN", &token, &err);
		if (rc == 1)
			missing =
			    "DISCORD_TOKEN is not set (nor DISCORD_TOKEN_FILE): planning reads "
			    "Discord's current state";
	}
	if (rc != 0) {
		cli_error("cohortbridge %s: %s", name, rc < 0 ? err.msg : missing);
		free(url);
		mappings_free(st.maps);
		config_free(st.cfg);
		return 1;
	}
	st.o = (struct reconcile_opts){.guild = guild,
	                               .apply = apply,
	                               .allow_removals = apply && flags[0],
	                               .out = stdout,
	                               .json = !apply && flags[0]};
	struct db_opts o = {st.cfg->db_connect_timeout_ms, 0, true};
	cli_db = db_open(uv_default_loop(), url, &o, &err);
	free(url);
	if (cli_db)
		st.http = httpc_new(uv_default_loop(), &err);
	if (st.http) {
		struct rest_opts ro = {.base_url = st.cfg->discord_api_url,
		                       .token = token,
		                       .global_limit = st.cfg->discord_global_limit,
		                       .global_window_ms = st.cfg->discord_global_window_ms};
		st.rest = rest_new(uv_default_loop(), st.http, &ro, &err);
	}
	if (!cli_db || !st.http || !st.rest) {
		cli_error("cohortbridge %s: %s", name, err.msg);
		if (st.http)
			httpc_close(st.http);
		if (cli_db)
			db_close(cli_db, 0, on_db_closed, NULL);
		uv_run(uv_default_loop(), UV_RUN_DEFAULT);
		free(token);
		mappings_free(st.maps);
		config_free(st.cfg);
		return 1;
	}
	migrate_run(cli_db, !st.cfg->migrate_on_start, on_rec_migrated, &st);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	uv_loop_close(uv_default_loop());
	outbox_free(st.ob);
	free(token);
	mappings_free(st.maps);
	config_free(st.cfg);
	return st.rc;
}

static int cmd_plan(int argc, char **argv)
{
	return cmd_reconcile(argc, argv, 0);
}

static int cmd_apply(int argc, char **argv)
{
	return cmd_reconcile(argc, argv, 1);
}

/* --- doctor ---------------------------------------------------------------------------------- */

static int cmd_doctor(int argc, char **argv)
{
	const char *guild = NULL;
	char **args;
	int n = value_option(argc, argv, "--guild", "--guild needs a guild id", &guild, &args);
	if (n < 0)
		return -n;
	int rc = parse_cmd(find_command("doctor"), n, args, NULL, NULL, NULL, 0);
	free(args);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct config *cfg;
	if (load_config(&cfg) != 0)
		return 1;
	struct diags diags = {0};
	struct err err = {0};
	struct mappings *m =
	    mappings_load(cfg->mappings_dir, cfg, cfg->mappings_dir_set, &diags, &err);
	if (!m) {
		if (diags.n)
			diags_print(&diags, stderr);
		else
			cli_error("cohortbridge doctor: %s", err.msg);
		diags_clear(&diags);
		config_free(cfg);
		return 1;
	}
	if (guild && !mappings_guild(m, guild)) {
		fprintf(stderr, "cohortbridge doctor: no mapping file describes guild %s\n", guild);
		mappings_free(m);
		config_free(cfg);
		return 2;
	}
	char *token = NULL;
	rc = secret_get("DISCORD_TOKEN", &token, &err);
	if (rc != 0) {
		printf("problem  token: %s\n",
		       rc < 0 ? err.msg
		              : "DISCORD_TOKEN is not set (nor DISCORD_TOKEN_FILE): set it to the "
		                "bot's token from the Developer Portal (Bot → Reset Token)");
		mappings_free(m);
		config_free(cfg);
		return 1;
	}
	struct httpc *http = httpc_new(uv_default_loop(), &err);
	struct rest *rest = NULL;
	if (http) {
		struct rest_opts ro = {.base_url = cfg->discord_api_url,
		                       .token = token,
		                       .global_limit = cfg->discord_global_limit,
		                       .global_window_ms = cfg->discord_global_window_ms,
		                       .max_retries = 2};
		rest = rest_new(uv_default_loop(), http, &ro, &err);
	}
	rc = 1;
	if (rest) {
		struct doctor_opts o = {guild, cfg->discord_intents, stdout};
		rc = doctor_run(uv_default_loop(), rest, m, &o);
		rest_free(rest);
	} else {
		cli_error("cohortbridge doctor: %s", err.msg);
	}
	if (http)
		httpc_close(http);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	uv_loop_close(uv_default_loop());
	free(token);
	mappings_free(m);
	config_free(cfg);
	return rc;
}

/* --- ical expand ----------------------------------------------------------------------------- */

static void ical_warned(const char *feed, int line, const char *msg, void *ud)
{
	(void)ud;
	if (line > 0)
		cli_error("%s:%d: warning: %s", feed, line, msg);
	else
		cli_error("%s: warning: %s", feed, msg);
}

struct ical_fetch {
	char *body;
	size_t len;
	struct err err;
	int done;
};

static void on_ical_fetched(const struct httpc_response *resp, void *ud)
{
	struct ical_fetch *f = ud;
	f->done = 1;
	if (resp->status == 0) {
		f->err = resp->err;
		return;
	}
	if (resp->status != 200) {
		err_set(&f->err, "HTTP %ld", resp->status);
		return;
	}
	f->body = malloc(resp->body_len + 1);
	if (!f->body) {
		err_set(&f->err, "out of memory");
		return;
	}
	memcpy(f->body, resp->body, resp->body_len);
	f->body[resp->body_len] = '\0';
	f->len = resp->body_len;
}

/* The feed's bytes from a file or an http(s) URL (fetched on the loop with the bridge's own
 * client, so the same TLS and loopback rules apply). */
static int ical_read_source(const char *src, char **out, size_t *len, struct err *err)
{
	if (strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0) {
		struct httpc *c = httpc_new(uv_default_loop(), err);
		if (!c)
			return -1;
		struct ical_fetch f = {0};
		struct httpc_request req = {.url = src, .max_body = ICAL_MAX_FEED + 1};
		if (httpc_send(c, &req, on_ical_fetched, &f, err) != 0) {
			httpc_close(c);
			uv_run(uv_default_loop(), UV_RUN_DEFAULT);
			return -1;
		}
		while (!f.done && uv_run(uv_default_loop(), UV_RUN_ONCE))
			;
		httpc_close(c);
		uv_run(uv_default_loop(), UV_RUN_DEFAULT);
		if (!f.body) {
			*err = f.err;
			return -1;
		}
		*out = f.body;
		*len = f.len;
		return 0;
	}
	FILE *fp = fopen(src, "rb");
	if (!fp)
		return err_set(err, "%s: cannot open: %s", src, strerror(errno));
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, fp);
		n += got;
		if (got == 0)
			break;
		if (n > ICAL_MAX_FEED) {
			free(buf);
			fclose(fp);
			return err_set(err, "%s: more than the %u MiB a feed may have", src,
			               ICAL_MAX_FEED / (1024 * 1024));
		}
		if (n + 1 == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	int failed = ferror(fp);
	fclose(fp);
	if (!buf || failed) {
		free(buf);
		return err_set(err, "%s: cannot read", src);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int cmd_ical(int argc, char **argv)
{
	const struct command *c = find_command("ical");
	const char *from = NULL, *to = NULL, *tz = "UTC", *src = NULL;
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		printf("usage: cohortbridge ical%s", c->usage);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "expand") != 0) {
		fprintf(stderr,
		        "cohortbridge ical: unknown subcommand %s\n\nusage: cohortbridge ical%s",
		        argv[1], c->usage);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = strcmp(a, "--from") == 0 ? &from
		                    : strcmp(a, "--to") == 0 ? &to
		                    : strcmp(a, "--tz") == 0 ? &tz
		                                             : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: cohortbridge ical%s", c->usage);
			return 0;
		}
		if (slot) {
			if (i + 1 >= argc) {
				fprintf(stderr, "cohortbridge ical: %s needs a value\n", a);
				return 2;
			}
			*slot = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			fprintf(
			    stderr,
			    "cohortbridge ical: unknown option %s\n\nusage: cohortbridge ical%s", a,
			    c->usage);
			return 2;
		} else if (!src) {
			src = a;
		} else {
			fprintf(stderr, "cohortbridge ical: unexpected argument %s\n", a);
			return 2;
		}
	}
	if (!src || !from || !to) {
		fprintf(stderr,
		        "cohortbridge ical expand: FILE_OR_URL, --from and --to are needed\n\n"
		        "usage: cohortbridge ical%s",
		        c->usage);
		return 2;
	}
	struct err err = {0};
	time_t t0, t1;
	if (ical_parse_time(from, tz, &t0, &err) != 0 || ical_parse_time(to, tz, &t1, &err) != 0) {
		fprintf(stderr, "cohortbridge ical expand: %s\n", err.msg);
		return 2;
	}
	char *data = NULL;
	size_t len = 0;
	if (ical_read_source(src, &data, &len, &err) != 0) {
		cli_error("cohortbridge ical expand: %s", err.msg);
		return 1;
	}
	struct ical_opts o = {src, t0, t1, tz, ical_warned, NULL};
	json_t *inst = ical_expand(data, len, &o, &err);
	free(data);
	if (!inst) {
		cli_error("cohortbridge ical expand: %s", err.msg);
		return 1;
	}
	static const char *const keys[] = {"uid",     "recurrence_id", "start",  "end",
	                                   "all_day", "status",        "summary"};
	size_t i;
	json_t *v;
	json_array_foreach(inst, i, v) {
		json_t *line = json_object();
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			json_object_set(line, keys[k], json_object_get(v, keys[k]));
		char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(line);
	}
	json_decref(inst);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	int rc = parse_cmd(find_command("version"), argc, argv, NULL, NULL, NULL, 0);
	if (rc)
		return rc == 1 ? 0 : rc;
	printf("cohortbridge %s\n", CB_VERSION);
	printf("  libuv %s, libwebsockets %s, libcurl %s, jansson %s, libpq %d\n",
	       uv_version_string(), lws_get_library_version(),
	       curl_version_info(CURLVERSION_NOW)->version, JANSSON_VERSION, PQlibVersion());
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: cohortbridge help%s", find_command("help")->usage);
		return 0;
	}
	if (argc > 1) {
		const struct command *c = find_command(argv[1]);
		if (!c) {
			usage_error("unknown command \"%s\"", argv[1]);
			return 2;
		}
		printf("usage: cohortbridge %s%s", c->name, c->usage);
		return 0;
	}
	fputs(main_usage, stdout);
	return 0;
}

static const struct command commands[] = {
    {"run", "run the bridge",
     " [--no-migrate]\n\n"
     "Runs the bridge in the foreground until SIGTERM or SIGINT. Serves GET /healthz and\n"
     "GET /metrics on http.listen (default 127.0.0.1:8787). Applies pending migrations first\n"
     "unless --no-migrate is given or database.migrate_on_start is false.\n"
     "SIGHUP reloads the configuration; a file that fails validation is rejected and the\n"
     "running configuration stays. Logs are logfmt lines on stderr.\n\n"
     "options:\n"
     "  --no-migrate   do not apply migrations; refuse to start if any are pending\n",
     cmd_run},
    {"migrate", "apply migrations",
     " [--status]\n\n"
     "Applies pending database migrations in order, each in its own transaction. Running it\n"
     "again is a no-op. A database migrated by a newer cohortbridge is refused.\n\n"
     "options:\n"
     "  --status   only show the schema version and what is pending\n",
     cmd_migrate},
    {"sync", "fetch the sources now",
     " [--source NAME] [--dry-run]\n\n"
     "Fetches every configured source (or only NAME) and writes what changed into the\n"
     "database, one transaction per source. Prints a line per source: what was fetched and\n"
     "what changed. A source that fails to fetch, sends something unreadable, or whose full\n"
     "roster shrank below its min_share of the last good sync changes nothing and is\n"
     "recorded as a failed sync. The exit status is 1 when any source failed.\n\n"
     "options:\n"
     "  --source NAME   only this source\n"
     "  --dry-run       say what would change; write nothing (not even the sync's record)\n",
     cmd_sync},
    {"check", "validate configuration and mapping files",
     " [--mappings DIR] [FILE]\n\n"
     "Validates the configuration (FILE, --config or $COHORTBRIDGE_CONFIG) and then the mapping\n"
     "files (every *.json directly in mappings_dir) against their JSON Schemas and the rules\n"
     "the schemas cannot express. Problems are printed as file:line:column: message; the exit\n"
     "status is 1 when there are any. Says how many files, guilds and cohorts it found. Needs\n"
     "no database and no Discord.\n\n"
     "options:\n"
     "  --mappings DIR   check the mapping files in DIR instead of mappings_dir\n",
     cmd_check},
    {"plan", "show what reconciling would change",
     " [--guild ID] [--json]\n\n"
     "Compares the desired state (the mapping files, the roster in the database, the\n"
     "registrations) with what Discord holds now, read over REST (roles, channels, members), and\n"
     "prints the actions that would bring Discord in step, grouped by guild and cohort: roles\n"
     "to create, a private category with a text and a voice channel per cohort, permissions,\n"
     "ended cohorts to archive read-only, cohort roles to add to or remove from registered\n"
     "members. Warns about cohorts that match nobody and removals held back; checks Discord's\n"
     "limits (250 roles, 500 channels, 50 per category) on the whole desired state. Changes\n"
     "nothing, anywhere. Works with or without a running bridge. Exit status 1 on errors\n"
     "(such as a limit), 3 when removals would wait for a confirmation.\n\n"
     "options:\n"
     "  --guild ID   only this guild\n"
     "  --json       the plan as JSON\n",
     cmd_plan},
    {"apply", "reconcile once",
     " [--guild ID] [--allow-removals]\n\n"
     "Computes the plan as `plan` does and carries it out through the outbox: each action is\n"
     "enqueued under a stable key, so that applying again, or after a crash at any point,\n"
     "creates no role or channel twice; then runs the outbox until the actions are done,\n"
     "planning again for what needed ids that did not exist yet. Only objects the bridge\n"
     "created or that the mappings name are touched. A limit exceeded changes nothing (exit\n"
     "status 1). Members whose source's last sync failed lose no role. More removals than\n"
     "removals.confirm_share of the managed members are held back (the rest is applied; exit\n"
     "status 3) unless --allow-removals is given.\n\n"
     "options:\n"
     "  --guild ID         only this guild\n"
     "  --allow-removals   confirm removals beyond the share\n",
     cmd_apply},
    {"doctor", "check the Discord set-up",
     " [--guild ID]\n\n"
     "Checks, one line each, \"ok\" or \"problem\" with what to do: the token works; the\n"
     "application has the privileged intents the bridge needs (GUILD_MEMBERS, and any other\n"
     "the configuration asks for); for each guild in the mapping files, the bot is in it, its\n"
     "highest role sits above every role the mappings name that exists, it holds the guild\n"
     "permissions the mappings need (ADMINISTRATOR counts as all), and it can view and send\n"
     "in the registration, help, approval and audit channels after their overwrites. Then\n"
     "prints the invite URL with exactly the permissions the mappings need. Changes nothing;\n"
     "needs no database. Exit status 0 when all is well, 1 when a problem was found.\n\n"
     "options:\n"
     "  --guild ID   only this guild\n",
     cmd_doctor},
    {"ical", "expand a calendar feed",
     " expand FILE_OR_URL --from DATE --to DATE [--tz ZONE]\n\n"
     "Prints every instance of the feed's events that overlaps the window [--from, --to) as one\n"
     "JSON object per line, sorted by start: uid, recurrence_id, start, end, all_day, status,\n"
     "summary. Times are UTC (2024-03-01T09:00:00Z); all-day instances give dates, the end\n"
     "exclusive. recurrence_id is the original start of an instance of a recurring event, null\n"
     "otherwise. Cancelled instances are included with status CANCELLED. What is wrong in the\n"
     "feed is a warning on stderr with its line number; the exit status is 1 only when the\n"
     "feed cannot be read at all. A URL is fetched (plain http only from loopback).\n\n"
     "options:\n"
     "  --from DATE   start of the window: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z]\n"
     "  --to DATE     end of the window (exclusive), same forms\n"
     "  --tz ZONE     IANA zone the window is read in, and floating times without\n"
     "                X-WR-TIMEZONE (default UTC)\n",
     cmd_ical},
    {"version", "print versions", "\n\nPrints the version of cohortbridge and of its libraries.\n",
     cmd_version},
    {"help", "show help", " [COMMAND]\n\nShows help for cohortbridge or one command.\n", cmd_help},
    {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	int i = 1;
	const char *lvl_opt = NULL;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(main_usage, stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("cohortbridge %s\n", CB_VERSION);
			return 0;
		}
		if (strcmp(a, "--config") == 0 || strcmp(a, "--log-level") == 0) {
			if (i + 1 >= argc) {
				usage_error("%s needs a value", a);
				return 2;
			}
			if (a[2] == 'c')
				opt_config = argv[++i];
			else
				lvl_opt = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			opt_config = a + 9;
			continue;
		}
		if (strncmp(a, "--log-level=", 12) == 0) {
			lvl_opt = a + 12;
			continue;
		}
		usage_error("unknown option %s", a);
		return 2;
	}
	const char *lvl = lvl_opt ? lvl_opt : getenv("COHORTBRIDGE_LOG_LEVEL");
	if (lvl && *lvl) {
		int l = log_level_parse(lvl);
		if (l < 0) {
			usage_error(
			    "unknown log level \"%s\" (use error, warn, info, debug or trace)",
			    lvl);
			return 2;
		}
		log_threshold = l;
		log_level_fixed = 1;
	}
	if (i >= argc) {
		fputs(main_usage, stderr);
		return 2;
	}
	const struct command *c = find_command(argv[i]);
	if (!c) {
		usage_error("unknown command \"%s\"", argv[i]);
		return 2;
	}
	int rc = c->run(argc - i, argv + i);
	secret_clear();
	return rc;
}
