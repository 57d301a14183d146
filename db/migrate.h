#ifndef CB_MIGRATE_H
#define CB_MIGRATE_H
#include "db.h"

/* Schema migrations: db/migrations/NNNN_name.sql, compiled into the binary, applied in order,
 * each in its own transaction and recorded (with a checksum) in schema_migrations. An advisory
 * lock keeps two processes from migrating at once. A database that has a migration this
 * binary does not know (migrated by a newer version) is refused. */

struct migration {
	int version;
	char name[64]; /* "0001_core" */
	const char *sql;
	size_t len;
};

/* The migrations compiled in, in order. */
size_t migrations_known(const struct migration **out);

struct migrate_report {
	int db_version;    /* highest applied before this run, 0 when none */
	int known_version; /* highest this binary has */
	int applied;       /* applied by this run */
	int pending;       /* still pending (status mode) */
};

typedef void (*migrate_cb)(int rc, const struct err *err, const struct migrate_report *r, void *ud);

/* Applies what is pending; with status_only just reports. */
void migrate_run(struct db *db, int status_only, migrate_cb cb, void *ud);

#endif
