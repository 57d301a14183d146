#ifndef CB_DB_H
#define CB_DB_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

#include "err.h"

/* PostgreSQL on the loop. One non-blocking libpq connection watched through PQsocket; queries
 * queue in order and run one at a time. Host names are resolved with uv_getaddrinfo and handed
 * to libpq as hostaddr, because PQconnectStart would resolve them synchronously.
 *
 * Only parameterised statements (PQsendQueryParams): values never go into SQL text. Statements
 * that depend on each other (BEGIN ... COMMIT) are queued one after the other from each
 * other's callbacks: when the connection breaks, the query in flight fails, and what is still
 * queued runs on the next connection. */

struct db;

struct db_opts {
	unsigned connect_timeout_ms; /* 0: 10 s */
	unsigned health_interval_ms; /* 0: no health pings */
	bool fail_fast;              /* a failed connect fails everything queued (CLI use) */
};

/* res is borrowed for the callback's duration; on failure err is set and res may be NULL
 * (connection lost) or the error result (SQLSTATE via PQresultErrorField). */
typedef void (*db_cb)(PGresult *res, const struct err *err, void *ud);

/* Parses conninfo (a URL or key=value string) and starts connecting. A password in it is
 * registered as a secret. */
struct db *db_open(uv_loop_t *loop, const char *conninfo, const struct db_opts *opts,
                   struct err *err);

int db_query(struct db *db, const char *sql, int nparams, const char *const *values, db_cb cb,
             void *ud, struct err *err);

/* Runs a script of several statements with the simple query protocol. Only for SQL that
 * ships with the program (migrations), never for text with values in it. */
int db_script(struct db *db, const char *sql, db_cb cb, void *ud, struct err *err);

/* A notification on channel. payload is NULL once LISTEN is in effect after each connect or
 * reconnect: notifications sent meanwhile may have been missed. */
typedef void (*db_notify_cb)(const char *channel, const char *payload, void *ud);

/* LISTENs on channel (a lower-case identifier of at most 63 characters) on this connection
 * and again after every reconnect, outside any transaction in progress. cb runs for each
 * NOTIFY on it until db_unlisten. */
int db_listen(struct db *db, const char *channel, db_notify_cb cb, void *ud, struct err *err);
/* Stops calling cb for channel (the session keeps listening until the next reconnect). */
void db_unlisten(struct db *db, const char *channel, db_notify_cb cb, void *ud);

/* Healthy when connected and the last round-trip succeeded within three health intervals.
 * Otherwise writes the reason to why. */
bool db_healthy(const struct db *db, char *why, size_t size);

/* Queries queued or in flight. */
size_t db_pending(const struct db *db);

/* Stops taking queries, lets the queued ones finish (waiting at most timeout_ms), then closes
 * the connection and frees everything. done gets the number of queries abandoned. */
void db_close(struct db *db, unsigned timeout_ms, void (*done)(void *ud, size_t abandoned),
              void *ud);

#endif
