#ifndef CB_ERR_H
#define CB_ERR_H
#include <stdbool.h>

/* The one error type. Functions return 0 or a negative code and, when the caller passes a
 * struct err, describe the failure in it. A message never contains a secret: the logger
 * redacts registered secrets, and code that builds messages from outside text must not copy
 * credentials into them. */
struct err {
	char msg[512];
	int http_status; /* HTTP status of the failed call, 0 when none */
	bool retryable;  /* trying again later may succeed */
};

/* Sets err (if not NULL) and returns -1. printf-style. */
int err_set(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
