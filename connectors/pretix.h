#ifndef CB_PRETIX_H
#define CB_PRETIX_H
#include <jansson.h>

/* The snapshot of an event from its items and orders as pretix's API gives them (arrays of
 * its objects). full: the orders are all there are (not only those modified since). */
json_t *pretix_snapshot(const json_t *items, const json_t *orders, int full);

#endif
