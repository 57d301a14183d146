/* libFuzzer: frab XML schedules. */
#include <stdint.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	json_t *v = schedule_parse_frab_xml((const char *)data, size, "fuzz.xml", &err);
	if (!v && !err.msg[0])
		__builtin_trap();
	json_decref(v);
	return 0;
}
