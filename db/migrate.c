#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "embedded.h"
#include "log.h"
#include "migrate.h"

#define PREFIX   "db/migrations/"
#define LOCK_KEY "7165064291283217413" /* any fixed bigint shared by every cohortbridge */

static struct migration known[256];
static size_t nknown;

static int by_version(const void *a, const void *b)
{
	return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

size_t migrations_known(const struct migration **out)
{
	if (!nknown) {
		for (const struct embedded_file *f = embedded_files; f->path; f++) {
			if (strncmp(f->path, PREFIX, strlen(PREFIX)) != 0 || nknown == 256)
				continue;
			const char *base = f->path + strlen(PREFIX);
			struct migration *m = &known[nknown];
			char *end;
			long v = strtol(base, &end, 10);
			if (v <= 0 || *end != '_')
				continue;
			m->version = (int)v;
			snprintf(m->name, sizeof(m->name), "%.*s", (int)(strcspn(base, ".")), base);
			m->sql = f->data;
			m->len = f->len;
			nknown++;
		}
		qsort(known, nknown, sizeof(known[0]), by_version);
	}
	*out = known;
	return nknown;
}

static void checksum(const struct migration *m, char out[17])
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < m->len; i++) {
		h ^= (unsigned char)m->sql[i];
		h *= 1099511628211ull;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

struct run {
	struct db *db;
	int status_only;
	migrate_cb cb;
	void *ud;
	struct migrate_report rep;
	size_t pending[256];
	size_t npending, next;
	int in_tx;
	uint64_t t0;
	struct err err;
	int failed;
};

static void step_unlock(struct run *r);

static void finish(struct run *r)
{
	r->cb(r->failed ? -1 : 0, r->failed ? &r->err : NULL, &r->rep, r->ud);
	free(r);
}

static void fail(struct run *r, const char *what, const struct err *e)
{
	if (!r->failed) {
		r->failed = 1;
		err_set(&r->err, "%s%s%s", what, e ? ": " : "", e ? e->msg : "");
	}
	step_unlock(r);
}

static void on_unlocked(PGresult *res, const struct err *e, void *ud)
{
	finish(ud);
}

static void step_unlock(struct run *r)
{
	const char *p[] = {LOCK_KEY};
	if (db_query(r->db, "SELECT pg_advisory_unlock($1::bigint)", 1, p, on_unlocked, r, NULL))
		finish(r);
}

static void apply_next(struct run *r);

static void on_rolled_back(PGresult *res, const struct err *e, void *ud)
{
	step_unlock(ud);
}

static void abort_tx(struct run *r, const char *what, const struct err *e)
{
	if (!r->failed) {
		r->failed = 1;
		err_set(&r->err, "%s: %s", what, e ? e->msg : "failed");
	}
	r->in_tx = 0;
	if (db_query(r->db, "ROLLBACK", 0, NULL, on_rolled_back, r, NULL))
		step_unlock(r);
}

static void on_committed(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	const struct migration *all;
	migrations_known(&all);
	const struct migration *m = &all[r->pending[r->next]];
	char ms[32];
	if (e) {
		abort_tx(r, m->name, e);
		return;
	}
	r->in_tx = 0;
	r->rep.applied++;
	log_info("migrate", "applied", "migration", m->name, "ms",
	         LOG_NUM(ms, "%llu", (unsigned long long)(uv_hrtime() / 1000000 - r->t0)));
	r->next++;
	apply_next(r);
}

static void on_recorded(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	if (e) {
		abort_tx(r, "recording the migration", e);
		return;
	}
	if (db_query(r->db, "COMMIT", 0, NULL, on_committed, r, NULL))
		abort_tx(r, "commit", NULL);
}

static void on_script(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	const struct migration *all;
	migrations_known(&all);
	const struct migration *m = &all[r->pending[r->next]];
	char ver[16], sum[17];
	if (e) {
		abort_tx(r, m->name, e);
		return;
	}
	snprintf(ver, sizeof(ver), "%d", m->version);
	checksum(m, sum);
	const char *p[] = {ver, m->name, sum};
	if (db_query(r->db,
	             "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
	             3, p, on_recorded, r, NULL))
		abort_tx(r, "recording the migration", NULL);
}

static void on_begun(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	const struct migration *all;
	migrations_known(&all);
	if (e) {
		fail(r, "BEGIN", e);
		return;
	}
	r->in_tx = 1;
	if (db_script(r->db, all[r->pending[r->next]].sql, on_script, r, NULL))
		abort_tx(r, all[r->pending[r->next]].name, NULL);
}

static void apply_next(struct run *r)
{
	const struct migration *all;
	migrations_known(&all);
	if (r->next >= r->npending) {
		if (r->rep.applied)
			log_info("migrate", "database is up to date", "version",
			         all[r->pending[r->npending - 1]].name);
		step_unlock(r);
		return;
	}
	char progress[48];
	snprintf(progress, sizeof(progress), "%zu/%zu", r->next + 1, r->npending);
	log_info("migrate", "applying", "migration", all[r->pending[r->next]].name, "step",
	         progress);
	r->t0 = uv_hrtime() / 1000000;
	if (db_query(r->db, "BEGIN", 0, NULL, on_begun, r, NULL))
		fail(r, "BEGIN", NULL);
}

static void on_listed(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	const struct migration *all;
	size_t n = migrations_known(&all);
	if (e) {
		fail(r, "reading schema_migrations", e);
		return;
	}
	r->rep.known_version = n ? all[n - 1].version : 0;
	int rows = PQntuples(res);
	char applied[256] = {0};
	for (int i = 0; i < rows; i++) {
		int v = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		const char *sum = PQgetvalue(res, i, 2);
		if (v > r->rep.db_version)
			r->rep.db_version = v;
		size_t k = 0;
		while (k < n && all[k].version != v)
			k++;
		if (k == n) {
			if (v > r->rep.known_version)
				err_set(
				    &r->err,
				    "the database schema is at version %d, newer than this binary "
				    "knows (%d): "
				    "it was migrated by a newer cohortbridge; upgrade this binary",
				    v, r->rep.known_version);
			else
				err_set(&r->err,
				        "the database has migration %d (%s), which this binary "
				        "does not know",
				        v, PQgetvalue(res, i, 1));
			r->failed = 1;
			step_unlock(r);
			return;
		}
		char mine[17];
		checksum(&all[k], mine);
		if (strcmp(mine, sum) != 0) {
			err_set(&r->err,
			        "migration %s was changed after it was applied (checksum %s, "
			        "database has %s)",
			        all[k].name, mine, sum);
			r->failed = 1;
			step_unlock(r);
			return;
		}
		applied[k] = 1;
	}
	for (size_t k = 0; k < n; k++)
		if (!applied[k])
			r->pending[r->npending++] = k;
	r->rep.pending = (int)r->npending;
	if (r->status_only || r->npending == 0) {
		step_unlock(r);
		return;
	}
	apply_next(r);
}

static void on_table(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	if (e) {
		fail(r, "creating schema_migrations", e);
		return;
	}
	if (db_query(r->db,
	             "SELECT version, name, checksum FROM schema_migrations ORDER BY version", 0,
	             NULL, on_listed, r, NULL))
		fail(r, "reading schema_migrations", NULL);
}

static void on_locked(PGresult *res, const struct err *e, void *ud)
{
	struct run *r = ud;
	if (e) {
		r->failed = 1;
		err_set(&r->err, "cannot lock for migration: %s", e->msg);
		finish(r);
		return;
	}
	if (db_query(r->db,
	             "CREATE TABLE IF NOT EXISTS schema_migrations ("
	             " version integer PRIMARY KEY,"
	             " name text NOT NULL,"
	             " checksum text NOT NULL,"
	             " applied_at timestamptz NOT NULL DEFAULT now())",
	             0, NULL, on_table, r, NULL))
		fail(r, "creating schema_migrations", NULL);
}

void migrate_run(struct db *db, int status_only, migrate_cb cb, void *ud)
{
	struct run *r = calloc(1, sizeof(*r));
	struct err e = {0};
	if (!r) {
		err_set(&e, "out of memory");
		cb(-1, &e, NULL, ud);
		return;
	}
	r->db = db;
	r->status_only = status_only;
	r->cb = cb;
	r->ud = ud;
	const char *p[] = {LOCK_KEY};
	if (db_query(db, "SELECT pg_advisory_lock($1::bigint)", 1, p, on_locked, r, &e)) {
		free(r);
		cb(-1, &e, NULL, ud);
	}
}
