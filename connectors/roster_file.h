#ifndef CB_ROSTER_FILE_H
#define CB_ROSTER_FILE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A roster file's bytes as a snapshot ({"people", "memberships", "cursor"}); file names the
 * file in errors ("roster.csv:12: ...") and picks the format by its extension (.json, else
 * CSV unless the text starts with [ or {). NULL with err on any problem: a file with one bad
 * row gives nothing. */
json_t *roster_snapshot(const char *data, size_t len, const char *file, struct err *err);
/* The same with the format given: 1 CSV, 2 JSON, 0 by the text (JSON when it starts with [
 * or {). */
json_t *roster_snapshot_as(const char *data, size_t len, const char *file, int format,
                           struct err *err);

/* FNV-1a of the bytes: a file or sheet unchanged since the last sync is not read again. */
uint64_t roster_fingerprint(const char *s, size_t n);

/* The two readers, appending to snap's "people" and "memberships" arrays. 0 or -1. */
int roster_parse_csv(const char *data, size_t len, const char *file, json_t *snap, struct err *err);
int roster_parse_json(const char *data, size_t len, const char *file, json_t *snap,
                      struct err *err);

#endif
