#ifndef CB_SCHEDULE_H
#define CB_SCHEDULE_H
#include <jansson.h>
#include <stddef.h>

#include "err.h"

/* Conference schedules (pretalx, frab and their exports) as one list of slots:
 *
 *   {"id", "title", "start", "end", "room", "track", "type", "language", "url", "abstract",
 *    "speakers": [{"id", "name"}], "status"}
 *
 * start and end are UTC, "YYYY-MM-DDTHH:MM:SSZ", computed from each event's own UTC offset and
 * never from the day's or the conference's (38C3's file starts its days at +00:00 and its
 * events at +01:00; a schedule across a DST change has two offsets); in frab's formats end is
 * start plus the duration. id is the event's guid where it has one
 * (stable across re-exports), else its id or pretalx code as a string. A field the source does
 * not give, or gives as "", is null; status only comes from pretalx's API (its "state"), and
 * a submission without a slot has null start, end and room. Slots keep the document's order.
 *
 * Every reader refuses the whole document on the first problem, with where it is:
 * "name:line:column: message" for the JSON and XML exports (name is the file or URL, for
 * messages only). Nothing is printed. Limits: 64 MiB, no DTD or entities but XML's five,
 * nesting 32 elements deep in XML. */

/* Any of the formats below, told apart by their first bytes and shape: '<' is frab XML; a JSON
 * object with "schedule" is frab JSON; a JSON array, or an object with "results" (one page of
 * pretalx's API), is pretalx submissions. A new reference, or NULL with err. */
json_t *schedule_parse(const char *data, size_t len, const char *name, struct err *err);

/* frab JSON (pretalx's /{event}/schedule.json): schedule.conference.days[].rooms{name: [event]}
 * with "date" (a date-time with offset) and "duration" ("HH:MM") per event. Checked against the
 * c3voc schema where it matters to us: event and person ids are integers, every event has a
 * title, date and duration, every person a name. */
json_t *schedule_parse_frab_json(const char *data, size_t len, const char *name, struct err *err);

/* frab XML (/{event}/schedule.xml): schedule/day/room/event with guid and id attributes, and
 * date, duration ("HH:MM" or "HH:MM:SS"), title, room, track, type, language, url, abstract,
 * persons/person children. Unknown elements are skipped. */
json_t *schedule_parse_frab_xml(const char *data, size_t len, const char *name, struct err *err);

/* pretalx API submissions or talks (/api/events/{event}/submissions/, talks/): one page's
 * "results" array, borrowed. Fields pretalx localizes ({"en": "Talk", "de": ...}) give their
 * English text, else the first; newer pretalx versions that send bare ids (room, track,
 * submission type, speaker codes) give those ids as strings. */
json_t *schedule_parse_pretalx(const json_t *results, const char *name, struct err *err);

/* "YYYY-MM-DDTHH:MM[:SS[.frac]]" followed by "Z" or an offset ("+01:00", "+0100", "-05"): the
 * instant in seconds since 1970. 0, or -1 when s is anything else (no offset included). */
int schedule_instant(const char *s, long long *out);

/* "HH:MM" or "HH:MM:SS" as seconds. 0 or -1. */
int schedule_duration(const char *s, long long *out);

/* An instant as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). 0, or -1 outside the
 * years 1..9999. */
int schedule_utc(long long t, char *out, size_t size);

#endif
