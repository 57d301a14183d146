#ifndef CB_STRMAP_H
#define CB_STRMAP_H
#include <stddef.h>

/* A string-keyed hash map of pointers (open addressing, keys copied). Values are borrowed:
 * the map never frees them. */
struct strmap {
	struct strmap_slot *slots;
	size_t cap, n;
};

void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns 0, or -1 when out of memory. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value (NULL when absent). */
void *strmap_del(struct strmap *m, const char *key);
/* Calls fn for every entry (the map must not change meanwhile). */
void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *ud),
                 void *ud);
/* Frees the map's own memory (not the values). */
void strmap_clear(struct strmap *m);

#endif
