/* libFuzzer: roster files read as CSV. Any bytes give a snapshot or an error, never a crash. */
#include <stdint.h>

#include "roster_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	json_t *s = roster_snapshot((const char *)data, size, "fuzz.csv", &err);
	if (!s && !err.msg[0])
		__builtin_trap(); /* a refusal must say why */
	json_decref(s);
	return 0;
}
