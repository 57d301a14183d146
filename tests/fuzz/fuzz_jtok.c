/* libFuzzer: the gateway's JSON reader. Whatever it accepts, jansson must accept too and read
 * as the same value; every reader must be safe on every token. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "jtok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jtok j;
	if (jtok_parse(&j, (const char *)data, size) != 0)
		return 0;
	json_t *ours = jtok_json(&j, 0);
	json_t *theirs =
	    json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	/* jansson refuses numbers it cannot hold; everything else it must read alike */
	if (ours && theirs && !json_equal(ours, theirs))
		__builtin_trap();
	json_decref(ours);
	json_decref(theirs);
	char buf[64];
	for (int i = 0; i < j.n && i < 4096; i++) {
		jtok_str(&j, i, buf, sizeof(buf));
		(void)jtok_u64(&j, i);
		(void)jtok_int(&j, i, 0);
		(void)jtok_get(&j, i, "d");
		(void)jtok_skip(&j, i);
	}
	return 0;
}
