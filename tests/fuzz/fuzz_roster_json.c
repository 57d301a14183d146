/* libFuzzer: roster files read as JSON. */
#include <stdint.h>

#include "roster_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	json_t *s = roster_snapshot((const char *)data, size, "fuzz.json", &err);
	if (!s && !err.msg[0])
		__builtin_trap();
	json_decref(s);
	return 0;
}
