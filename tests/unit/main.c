/* The test runner: every group, then one summary line.
 * TEST_FILTER=pattern runs only the tests whose names match (cmocka's wildcards). */
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "log.h"

int main(void)
{
	GROUP((*groups[])) = {group_core,      group_loop,     group_cli,       group_sim,
	                      group_rest,      group_gateway,  group_cache,     group_outbox,
	                      group_interact,  group_sources,  group_moodle,    group_ical,
	                      group_calendars, group_mappings, group_reconcile, group_registration,
	                      group_doctor,    group_staff,    group_crowd};
	int run = 0, failed = 0;
	const char *filter = getenv("TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	/* In-process modules log only what matters; the binary's own logs are read by tests. */
	log_threshold = LOGL_ERROR;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		struct group_result r = groups[i]();
		run += r.run;
		failed += r.failed;
	}
	printf("\ntests: %d passed, %d failed\n", run - failed, failed);
	return failed ? 1 : 0;
}
