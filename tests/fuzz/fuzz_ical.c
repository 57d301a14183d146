/* libFuzzer: calendar feeds, expanded over a month in a zone with DST (short, so each run is
 * quick). */
#include <stdint.h>

#include "ical.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	struct ical_opts o = {"fuzz", 1704067200, 1706745600, "Europe/Berlin", NULL, NULL};
	json_t *v = ical_expand((const char *)data, size, &o, &err);
	if (!v && !err.msg[0])
		__builtin_trap();
	json_decref(v);
	return 0;
}
