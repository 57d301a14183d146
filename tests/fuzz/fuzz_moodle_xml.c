/* libFuzzer: Moodle's XML answers. */
#include <stdint.h>

#include "moodle_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	json_t *v = moodle_xml_parse((const char *)data, size, &err);
	if (!v && !err.msg[0])
		__builtin_trap();
	json_decref(v);
	return 0;
}
