/* Moodle's web service answers: its XML grammar and its errors. */
#include "helpers.h"

GROUP(group_moodle)
{
	const struct CMUnitTest tests[] = {};
	return RUN_GROUP(tests);
}
