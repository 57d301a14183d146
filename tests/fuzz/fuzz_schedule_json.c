/* libFuzzer: schedules in JSON (frab exports and pretalx API pages), through the sniffer. */
#include <stdint.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	json_t *v = schedule_parse((const char *)data, size, "fuzz.json", &err);
	if (!v && !err.msg[0])
		__builtin_trap();
	json_decref(v);
	return 0;
}
