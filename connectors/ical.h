#ifndef CB_ICAL_H
#define CB_ICAL_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* iCalendar feeds (RFC 5545) expanded into instances over a window.
 *
 * libical parses the text and the RRULE grammar; the expansion is ours, because libical
 * 3.0.16's icalcomponent_foreach_recurrence ignores RECURRENCE-ID overrides and repeats
 * instances, and its iterator gets about a third of its own test vectors wrong. What is
 * handled: RRULE (several are a union), RDATE (also PERIOD values), EXDATE and RECURRENCE-ID
 * compared as instants whatever zone each is written in, overrides (moved, cancelled,
 * RANGE=THISANDFUTURE), SEQUENCE (the highest wins for one UID and recurrence id), TZID
 * resolved through the feed's VTIMEZONE blocks wherever they stand, then the IANA zone of that
 * name, then Windows zone names; floating times in X-WR-TIMEZONE or the caller's zone; local
 * times in a DST gap move forward by the gap, a repeated hour means its first occurrence;
 * all-day events with an exclusive DTEND; DURATION. An override without a master stands alone, or
 * is the series when it brings RRULE or RDATE. RFC 7529 calendars other than Gregorian, and
 * SKIP, are not supported: such a rule is dropped with a warning, DTSTART stays.
 *
 * Input is never trusted: at most ICAL_MAX_FEED bytes, lines of at most ICAL_MAX_LINE bytes
 * once unfolded, components nested at most ICAL_MAX_DEPTH deep, and a cap on instances per
 * event and per feed. What is wrong inside one event (libical's X-LIC-ERROR, a missing
 * DTSTART, an unreadable RRULE) is a warning with the line number and skips as little as
 * possible; only a feed that cannot be read at all is an error. */

#define ICAL_MAX_FEED      (16u * 1024 * 1024)
#define ICAL_MAX_LINE      (256u * 1024)
#define ICAL_MAX_DEPTH     16
#define ICAL_MAX_PER_EVENT 10000
#define ICAL_MAX_PER_FEED  200000

/* A warning about the feed: line is 1-based, 0 when it concerns no one line. */
typedef void (*ical_warn_cb)(const char *feed, int line, const char *msg, void *ud);

struct ical_opts {
	const char *feed; /* the feed's name in warnings */
	time_t from, to;  /* the window [from, to), UTC */
	const char
	    *default_tz;   /* floating times without X-WR-TIMEZONE, and all-day dates; NULL: UTC */
	ical_warn_cb warn; /* may be NULL */
	void *ud;
};

/* Every instance overlapping [from, to), sorted by start, then uid, then recurrence_id. A new
 * array of objects whose keys come in this order:
 *   uid, recurrence_id (null for an event without recurrence), start, end (UTC
 *   "YYYY-MM-DDTHH:MM:SSZ", or "YYYY-MM-DD" for all-day instances, end exclusive), all_day,
 *   status ("CONFIRMED" when the feed says nothing; cancelled instances are kept), summary,
 *   location, url, description, organizer (email or null), attendees (emails), sequence.
 * NULL with err when the feed cannot be read at all (too large, binary, no VCALENDAR, nesting
 * too deep, an unknown default zone). */
json_t *ical_expand(const char *data, size_t len, const struct ical_opts *o, struct err *err);

/* One RRULE expanded from DTSTART (libical's text forms: "19970902T090000", with a trailing
 * "Z" for UTC, or a date "19970902"), at most max instances, as a new array of strings in
 * DTSTART's form. NULL with err when the rule or DTSTART cannot be read. */
json_t *ical_recur_list(const char *rrule, const char *dtstart, size_t max, struct err *err);

/* A date "YYYY-MM-DD" or date-time "YYYY-MM-DDTHH:MM[:SS][Z]" read in zone tz (NULL: UTC) into
 * *out. -1 with err when either cannot be read. */
int ical_parse_time(const char *text, const char *tz, time_t *out, struct err *err);

#endif
