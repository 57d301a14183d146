/* libical through dlopen (see icallib.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define ICALLIB_NO_REDIRECT
#include "icallib.h"

struct icallib_fns icallib_fns;
static char il_error[256]; /* why libical could not be loaded; "" when it was */
static pthread_once_t il_once = PTHREAD_ONCE_INIT;

static void il_init(void)
{
	void *h = dlopen("libical.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(il_error, sizeof(il_error), "%s", dlerror());
		return;
	}
#define ICALLIB_LOOKUP(f)                                                                          \
	if (!il_error[0] && !(*(void **)&icallib_fns.f = dlsym(h, #f)))                            \
		snprintf(il_error, sizeof(il_error), "%s", #f);
	ICALLIB_FUNCS(ICALLIB_LOOKUP)
#undef ICALLIB_LOOKUP
}

int icallib_load(struct err *err)
{
	pthread_once(&il_once, il_init);
	if (il_error[0])
		return err_set(err, "libical cannot be loaded (%s): install the libical3 package",
		               il_error);
	return 0;
}
