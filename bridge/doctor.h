#ifndef CB_DOCTOR_H
#define CB_DOCTOR_H
#include <stdio.h>
#include <uv.h>

#include "mappings.h"
#include "rest.h"

/* `cohortbridge doctor`: is the Discord side set up the way the mappings need it?
 *
 * Reads over REST only (the bot user, the application, each mapped guild's roles, channels and
 * the bot's member) and prints one line per check, "ok" or "problem" with what to do, then the
 * invite URL carrying exactly the permissions the mappings need. Needs no database. */

struct doctor_opts {
	const char *guild; /* only this guild; NULL: every mapped guild */
	unsigned intents;  /* the gateway intents the configuration asks for */
	FILE *out;
};

/* The guild permissions the bridge needs for g: what reconciling and registration do there. */
unsigned long long doctor_needed(const struct mappings_guild *g);

/* Runs the checks, turning loop until each answer is in (the command line owns the loop; no
 * other work is on it). Returns 0 when every check passed, 1 when any found a problem. */
int doctor_run(uv_loop_t *loop, struct rest *rest, const struct mappings *m,
               const struct doctor_opts *o);

#endif
