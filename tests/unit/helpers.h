#ifndef CB_TEST_HELPERS_H
#define CB_TEST_HELPERS_H
/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <sys/types.h>

/* Each test file defines one group runner; main.c calls them all and prints the total. */
struct group_result {
	int run, failed;
};
#define GROUP(name) struct group_result name(void)
#define RUN_GROUP(tests)                                                                           \
	((struct group_result){(int)(sizeof(tests) / sizeof(tests[0])),                            \
	                       cmocka_run_group_tests_name(__FILE__, tests, NULL, NULL)})

GROUP(group_core);
GROUP(group_loop);
GROUP(group_cli);
GROUP(group_sim);
GROUP(group_rest);
GROUP(group_gateway);
GROUP(group_cache);
GROUP(group_outbox);
GROUP(group_interact);
GROUP(group_sources);
GROUP(group_moodle);
GROUP(group_ical);
GROUP(group_calendars);
GROUP(group_mappings);
GROUP(group_reconcile);
GROUP(group_registration);
GROUP(group_doctor);
GROUP(group_staff);
GROUP(group_crowd);

/* DATABASE_URL of the throwaway cluster (fails the test when unset). */
const char *th_db_url(void);

/* Creates a new, empty database and writes a conninfo string for it into out. */
void th_fresh_db(char *out, size_t size);

/* Runs one SQL statement synchronously on conninfo; returns the first value of the first row
 * (static buffer) or NULL. Fails the test on error unless allow_error. */
const char *th_sql(const char *conninfo, const char *sql, int allow_error);

/* The cohortbridge binary under test. */
const char *th_bin(void);

/* Starts the binary with argv (argv[0] is ignored) and extra environment entries "K=V" (NULL
 * value removes K). stdout and stderr go to files in a fresh directory, whose path is written
 * to dir. Returns the pid. */
pid_t th_spawn(const char *const *argv, const char *const *env, char *dir, size_t dirsize);

/* As th_spawn, for any program (argv[0] is ignored). */
pid_t th_spawn_bin(const char *bin, const char *const *argv, const char *const *env, char *dir,
                   size_t dirsize);

/* A fresh directory under the run's temporary root (static buffer per call slot). */
const char *th_tmpdir(void);

/* Runs to completion; returns the exit status; output files as th_spawn. */
int th_run(const char *const *argv, const char *const *env, char *dir, size_t dirsize);

/* Waits up to ms for pid to exit; returns its exit status, or -1 on timeout (then kills it). */
int th_wait(pid_t pid, int ms);

/* Reads dir/name into a malloc'd string ("" when missing). */
char *th_read(const char *dir, const char *name);

/* Waits up to ms until dir/name contains needle. Returns 1 when found. */
int th_wait_for(const char *dir, const char *name, const char *needle, int ms);

/* Blocking HTTP GET to 127.0.0.1:port path; returns the status, body into a malloc'd *body. */
long th_http_get(int port, const char *path, char **body);

/* Writes text to a new file in a temporary directory; returns the path (static buffer per call
 * slot 0..3). */
const char *th_write_file(int slot, const char *name, const char *text);

/* Starts discord-sim (DISCORD_SIM_BIN or build/discord-sim) on a free port with extra
 * arguments (NULL-terminated, may be NULL); returns its pid and port. */
pid_t th_sim_start(const char *const *args, int *port, char *dir, size_t dirsize);
/* SIGTERM and a clean exit. */
void th_sim_stop(pid_t pid);
/* A blocking JSON request to the simulator (control API or REST); returns the status and the
 * parsed answer in *out (may be NULL). */
long th_sim_call(int port, const char *method, const char *path, const char *body, json_t **out);

/* Runs `cohortbridge --config cfg run` against the simulator on sim_port and the database db
 * (sources answer to SRC_TOKEN=source-token) until its gateway session is ready or resumed;
 * fails the test with the bridge's log otherwise. Returns its pid; its output is in dir. */
pid_t th_bridge_run(const char *cfg, const char *db, int sim_port, char *dir, size_t dirsize);

/* A simulated interaction's record (GET /_sim/interactions/ID): the first callback's type, the
 * answer's message (the callback's, or after a deferral the original response), its content
 * ("" when none) and its first component's custom_id (NULL when none). */
int th_ix_type(json_t *rec);
json_t *th_ix_answer(json_t *rec);
const char *th_ix_content(json_t *rec);
const char *th_ix_first_cid(json_t *rec);

/* Port from a "port=N" field in dir/stderr, after waiting for the listening line. */
int th_listen_port(const char *dir, int ms);

#endif
