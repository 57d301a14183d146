#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct strmap_slot {
	char *key; /* NULL: empty */
	void *value;
	uint64_t hash;
};

static uint64_t hash_of(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static struct strmap_slot *find(const struct strmap *m, const char *key, uint64_t h)
{
	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, hash_of(key));
	return s && s->key ? s->value : NULL;
}

static int grow(struct strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;
	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -1;
	}
	m->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			*find(m, old[i].key, old[i].hash) = old[i];
	free(old);
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0)
		return -1;
	uint64_t h = hash_of(key);
	struct strmap_slot *s = find(m, key, h);
	if (!s->key) {
		s->key = strdup(key);
		if (!s->key)
			return -1;
		s->hash = h;
		m->n++;
	}
	s->value = value;
	return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
	uint64_t h = hash_of(key);
	struct strmap_slot *s = find(m, key, h);
	if (!s || !s->key)
		return NULL;
	void *value = s->value;
	free(s->key);
	m->n--;
	/* backward-shift deletion: later entries of the probe chain move up into the hole */
	size_t i = (size_t)(s - m->slots);
	for (;;) {
		m->slots[i].key = NULL;
		size_t j = i;
		for (;;) {
			j = (j + 1) & (m->cap - 1);
			if (!m->slots[j].key)
				return value;
			size_t home = m->slots[j].hash & (m->cap - 1);
			if ((j > i && (home <= i || home > j)) ||
			    (j < i && (home <= i && home > j)))
				break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
}

void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *ud),
                 void *ud)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			fn(m->slots[i].key, m->slots[i].value, ud);
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	*m = (struct strmap){0};
}
