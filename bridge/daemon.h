#ifndef CB_DAEMON_H
#define CB_DAEMON_H
#include "config.h"

/* `cohortbridge run`: the long-running process. Takes ownership of cfg. log_level_fixed is
 * set when --log-level or COHORTBRIDGE_LOG_LEVEL chose the level (a reload keeps it).
 * Returns the process exit status. */
int daemon_run(struct config *cfg, int no_migrate, int log_level_fixed);

#endif
