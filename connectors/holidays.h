#ifndef CB_HOLIDAYS_H
#define CB_HOLIDAYS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Public holidays (and whatever else a table lists) as one list of days:
 *
 *   {"date": "YYYY-MM-DD", "name", "country": "DE", "region": "DE-BY" or null,
 *    "types": ["Public", ...], "note": null}
 *
 * region null means the whole country. types are the source's categories (Nager.Date's
 * Public, Bank, School, Authorities, Optional, Observance); the snapshot tables carry none, so
 * theirs are []. note is the "why" text, which these sources never carry: it is filled in
 * later (a mapping file, a feed's description, an encyclopedia summary). Entries keep the
 * source's order. Errors name the place: "name:line:column: message". */

/* A Nager.Date-style answer (GET /api/v3/PublicHolidays/{year}/{country}): an array of
 * {date, localName, name, countryCode, fixed, global, counties, launchYear, types}. A holiday
 * of some regions only (global false, counties ["DE-BY", ...]) gives one entry per county.
 * With region ("DE-BY"), only the nationwide days and that region's are kept. */
json_t *holidays_parse_nager(const char *data, size_t len, const char *name, const char *region,
                             struct err *err);

/* A python-holidays snapshot table ({"YYYY-MM-DD": "Name; Other name"}), one file per country
 * (XX_COMMON) or region (DE_BY): two names on one day become two entries. country is the ISO
 * code ("DE"), region the subdivision as ISO 3166-2 ("DE-BY") or NULL for the whole country. */
json_t *holidays_parse_snapshot(const char *data, size_t len, const char *name, const char *country,
                                const char *region, struct err *err);

/* The country and region a snapshot file is for, from its name: ".../DE_BY.json" gives "DE"
 * and "DE-BY", "US_COMMON.json" gives "US" and "" (anything before "__" is ignored). 0, or -1
 * when the name does not say. */
int holidays_snapshot_place(const char *file, char *country, size_t csize, char *region,
                            size_t rsize);

/* A name against one pattern of an allow or deny list: the whole name, compared without
 * regard to ASCII case, where '*' stands for any run of characters ("* Break", "Easter*"). */
bool holidays_name_matches(const char *pattern, const char *name);

/* Keeps, in place, the entries whose name matches some pattern of allow (every entry when
 * allow is NULL or empty) and none of deny (NULL or empty: none denied). Both are arrays of
 * strings, as a mapping file gives them. 0, or -1 with err when a list is not. */
int holidays_filter(json_t *holidays, const json_t *allow, const json_t *deny, struct err *err);

#endif
