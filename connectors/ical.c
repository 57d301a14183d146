/* iCalendar feeds: our own line reader and recurrence expansion around libical's parser.
 *
 * The feed is unfolded here rather than by libical so that every content line keeps its line
 * number and the caps hold before libical sees a byte. Each top-level component is then
 * handed to libical on its own: an error inside one event stays inside that event, and the
 * X-LIC-ERROR properties libical inserts can be traced back to the line that caused them.
 *
 * Times are kept as int64 seconds. A "local" value counts seconds as if the wall clock were
 * UTC (so date arithmetic is plain arithmetic); an "instant" is a real UTC time. Recurrence
 * rules are expanded in local time, as RFC 5545 says, and each occurrence becomes an instant
 * through its zone only at the end. */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libical/ical.h>

#include "icallib.h"

#include "ical.h"

#define DAY 86400
/* Steps one rule may take (periods and candidate times): ends rules that never match and
 * SECONDLY rules run over years. */
#define MAX_STEPS 1000000
#define MAX_YEAR  9999

/* --- civil dates ----------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). Eras of 400 years make
 * the leap rules a table-free computation. */
static int64_t days_of(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_of(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floordiv(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* 0 = Sunday … 6 = Saturday. */
static int weekday_of(int64_t day)
{
	return (int)(((day + 4) % 7 + 7) % 7);
}

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int64_t y, int m)
{
	static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : len[m - 1];
}

/* The first day of week 1 of year y for weeks starting on wkst: the first week with at least
 * four days in y (ISO 8601 when wkst is Monday). */
static int64_t week1_start(int64_t y, int wkst)
{
	int64_t jan1 = days_of(y, 1, 1);
	int64_t start = jan1 - ((weekday_of(jan1) - wkst + 7) % 7);
	if (jan1 - start >= 4)
		start += 7;
	return start;
}

static void format_local(int64_t t, bool date, bool z, char *buf, size_t size, bool dashes)
{
	int64_t y;
	int m, d;
	int64_t day = floordiv(t, DAY);
	int64_t s = t - day * DAY;
	civil_of(day, &y, &m, &d);
	if (date)
		snprintf(buf, size, dashes ? "%04lld-%02d-%02d" : "%04lld%02d%02d", (long long)y, m,
		         d);
	else
		snprintf(buf, size,
		         dashes ? "%04lld-%02d-%02dT%02d:%02d:%02d%s"
		                : "%04lld%02d%02dT%02d%02d%02d%s",
		         (long long)y, m, d, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60),
		         z ? "Z" : "");
}

static int64_t local_of_tt(struct icaltimetype t)
{
	return days_of(t.year, t.month, t.day) * DAY +
	       (t.is_date ? 0 : t.hour * 3600 + t.minute * 60 + t.second);
}

/* --- zones ----------------------------------------------------------------------------------- */

/* The UTC offset in zone z at instant u. NULL is UTC. */
static int offset_at(icaltimezone *z, int64_t u)
{
	if (!z || z == icaltimezone_get_utc_timezone())
		return 0;
	int64_t y;
	int m, d;
	int64_t day = floordiv(u, DAY);
	int64_t s = u - day * DAY;
	/* libical expands a zone's transitions up to the year asked for, every time for a feed's
	 * own VTIMEZONE: beyond 2100 the same rules are read 28 years (the weekday cycle) at a
	 * time earlier, so year 9999 costs what 2100 does */
	static const int64_t y2100 = 47482; /* days_of(2100, 1, 1) */
	if (day >= y2100)
		day -= ((day - y2100) / 10227 + 1) * 10227;
	civil_of(day, &y, &m, &d);
	struct icaltimetype t = icaltime_null_time();
	t.year = (int)y;
	t.month = m;
	t.day = d;
	t.hour = (int)(s / 3600);
	t.minute = (int)(s / 60 % 60);
	t.second = (int)(s % 60);
	int dst = 0;
	return icaltimezone_get_utc_offset_of_utc_time(z, &t, &dst);
}

/* A local time in zone z as an instant. In a repeated hour the first occurrence counts; a
 * time in a gap keeps the offset from before the gap, which moves it forward by the gap
 * (RFC 5545, 3.3.5). Assumes one transition at most within a day, as every zone has. */
static int64_t local_to_utc(icaltimezone *z, int64_t local)
{
	int before = offset_at(z, local - DAY), after = offset_at(z, local + DAY);
	int64_t a = local - before, b = local - after;
	bool a_ok = offset_at(z, a) == before, b_ok = offset_at(z, b) == after;
	if (a_ok && b_ok)
		return a < b ? a : b;
	if (b_ok)
		return b;
	return a;
}

static int64_t utc_to_local(icaltimezone *z, int64_t u)
{
	return u + offset_at(z, u);
}

/* Windows zone names as Outlook and Exchange write them, to the IANA zone CLDR's
 * windowsZones maps them to for the territory "001". */
static const char *const windows_zones[][2] = {
    {"Dateline Standard Time", "Etc/GMT+12"},
    {"UTC-11", "Etc/GMT+11"},
    {"Hawaiian Standard Time", "Pacific/Honolulu"},
    {"Alaskan Standard Time", "America/Anchorage"},
    {"Pacific Standard Time", "America/Los_Angeles"},
    {"Pacific Standard Time (Mexico)", "America/Tijuana"},
    {"US Mountain Standard Time", "America/Phoenix"},
    {"Mountain Standard Time", "America/Denver"},
    {"Central America Standard Time", "America/Guatemala"},
    {"Central Standard Time", "America/Chicago"},
    {"Central Standard Time (Mexico)", "America/Mexico_City"},
    {"Canada Central Standard Time", "America/Regina"},
    {"SA Pacific Standard Time", "America/Bogota"},
    {"Eastern Standard Time", "America/New_York"},
    {"US Eastern Standard Time", "America/Indianapolis"},
    {"Atlantic Standard Time", "America/Halifax"},
    {"SA Western Standard Time", "America/La_Paz"},
    {"Newfoundland Standard Time", "America/St_Johns"},
    {"E. South America Standard Time", "America/Sao_Paulo"},
    {"Argentina Standard Time", "America/Buenos_Aires"},
    {"SA Eastern Standard Time", "America/Cayenne"},
    {"Greenland Standard Time", "America/Godthab"},
    {"UTC-02", "Etc/GMT+2"},
    {"Azores Standard Time", "Atlantic/Azores"},
    {"Cape Verde Standard Time", "Atlantic/Cape_Verde"},
    {"UTC", "Etc/UTC"},
    {"Coordinated Universal Time", "Etc/UTC"},
    {"GMT Standard Time", "Europe/London"},
    {"Greenwich Standard Time", "Atlantic/Reykjavik"},
    {"W. Europe Standard Time", "Europe/Berlin"},
    {"Central Europe Standard Time", "Europe/Budapest"},
    {"Romance Standard Time", "Europe/Paris"},
    {"Central European Standard Time", "Europe/Warsaw"},
    {"W. Central Africa Standard Time", "Africa/Lagos"},
    {"GTB Standard Time", "Europe/Bucharest"},
    {"E. Europe Standard Time", "Europe/Chisinau"},
    {"FLE Standard Time", "Europe/Kiev"},
    {"Israel Standard Time", "Asia/Jerusalem"},
    {"Egypt Standard Time", "Africa/Cairo"},
    {"South Africa Standard Time", "Africa/Johannesburg"},
    {"Turkey Standard Time", "Europe/Istanbul"},
    {"Arabic Standard Time", "Asia/Baghdad"},
    {"Arab Standard Time", "Asia/Riyadh"},
    {"Russian Standard Time", "Europe/Moscow"},
    {"E. Africa Standard Time", "Africa/Nairobi"},
    {"Iran Standard Time", "Asia/Tehran"},
    {"Arabian Standard Time", "Asia/Dubai"},
    {"Afghanistan Standard Time", "Asia/Kabul"},
    {"Pakistan Standard Time", "Asia/Karachi"},
    {"West Asia Standard Time", "Asia/Tashkent"},
    {"India Standard Time", "Asia/Calcutta"},
    {"Nepal Standard Time", "Asia/Katmandu"},
    {"Bangladesh Standard Time", "Asia/Dhaka"},
    {"SE Asia Standard Time", "Asia/Bangkok"},
    {"China Standard Time", "Asia/Shanghai"},
    {"Singapore Standard Time", "Asia/Singapore"},
    {"W. Australia Standard Time", "Australia/Perth"},
    {"Taipei Standard Time", "Asia/Taipei"},
    {"Tokyo Standard Time", "Asia/Tokyo"},
    {"Korea Standard Time", "Asia/Seoul"},
    {"Cen. Australia Standard Time", "Australia/Adelaide"},
    {"AUS Central Standard Time", "Australia/Darwin"},
    {"E. Australia Standard Time", "Australia/Brisbane"},
    {"AUS Eastern Standard Time", "Australia/Sydney"},
    {"Tasmania Standard Time", "Australia/Hobart"},
    {"Lord Howe Standard Time", "Australia/Lord_Howe"},
    {"New Zealand Standard Time", "Pacific/Auckland"},
    {"Fiji Standard Time", "Pacific/Fiji"},
    {"Tonga Standard Time", "Pacific/Tongatapu"},
};

/* An IANA zone by name from libical's builtin set, also when the name is the tail of a
 * vendor-prefixed TZID ("/mozilla.org/20050126_1/Europe/Berlin") or a Windows name. */
static icaltimezone *builtin_zone(const char *name)
{
	if (!name || !*name)
		return NULL;
	if (strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0 || strcmp(name, "Etc/UTC") == 0 ||
	    strcmp(name, "Z") == 0)
		return icaltimezone_get_utc_timezone();
	for (size_t i = 0; i < sizeof(windows_zones) / sizeof(windows_zones[0]); i++)
		if (strcmp(name, windows_zones[i][0]) == 0)
			return builtin_zone(windows_zones[i][1]);
	for (const char *p = name; p; p = strchr(p + 1, '/')) {
		const char *tail = *p == '/' ? p + 1 : p;
		if (!*tail)
			break;
		if (strlen(tail) > 64)
			continue;
		icaltimezone *z = icaltimezone_get_builtin_timezone(tail);
		if (z)
			return z;
	}
	return NULL;
}

/* --- the recurrence engine ------------------------------------------------------------------- */

enum { F_SECONDLY, F_MINUTELY, F_HOURLY, F_DAILY, F_WEEKLY, F_MONTHLY, F_YEARLY };

struct rule {
	int freq, interval, count;
	bool has_until;
	int64_t until; /* local, inclusive */
	int wkst;      /* 0 = Sunday */
	int sec[61], min[60], hour[24];
	int nsec, nmin, nhour;
	int mday[62], yday[732], weekno[106], month[12], setpos[400];
	int nmday, nyday, nweekno, nmonth, nsetpos;
	int wday[64], wpos[64]; /* BYDAY: weekday and position (0: every) */
	int nwday;
};

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Copies a libical BY list, sorted and without repeats (libical repeats an instance for a
 * value named twice). Values outside [lo, hi] or 0 where zero is meaningless make the rule
 * unreadable. */
static int by_list(const short *src, int size, int *dst, int *n, int lo, int hi, bool zero_ok)
{
	*n = 0;
	for (int i = 0; i < size && src[i] != ICAL_RECURRENCE_ARRAY_MAX; i++) {
		int v = src[i];
		if (v < lo || v > hi || (!zero_ok && v == 0))
			return -1;
		dst[(*n)++] = v;
	}
	qsort(dst, (size_t)*n, sizeof(int), cmp_int);
	int k = 0;
	for (int i = 0; i < *n; i++)
		if (k == 0 || dst[k - 1] != dst[i])
			dst[k++] = dst[i];
	*n = k;
	return 0;
}

static int rule_from(const struct icalrecurrencetype *r, struct rule *out, char *why, size_t wsize)
{
	memset(out, 0, sizeof(*out));
	static const int freq_map[] = {
	    [ICAL_SECONDLY_RECURRENCE] = F_SECONDLY, [ICAL_MINUTELY_RECURRENCE] = F_MINUTELY,
	    [ICAL_HOURLY_RECURRENCE] = F_HOURLY,     [ICAL_DAILY_RECURRENCE] = F_DAILY,
	    [ICAL_WEEKLY_RECURRENCE] = F_WEEKLY,     [ICAL_MONTHLY_RECURRENCE] = F_MONTHLY,
	    [ICAL_YEARLY_RECURRENCE] = F_YEARLY,
	};
	if (r->freq < ICAL_SECONDLY_RECURRENCE || r->freq > ICAL_YEARLY_RECURRENCE) {
		snprintf(why, wsize, "no FREQ");
		return -1;
	}
	if (r->rscale && strcasecmp(r->rscale, "GREGORIAN") != 0) {
		snprintf(why, wsize, "RSCALE=%s is not supported", r->rscale);
		return -1;
	}
	/* RFC 7529's SKIP moves the dates a rule names but a month lacks (29 February, the
	 * 31st); this engine only leaves them out, as RFC 5545 does, which would lose
	 * instances without a word */
	if (r->rscale && (r->skip == ICAL_SKIP_FORWARD || r->skip == ICAL_SKIP_BACKWARD)) {
		snprintf(why, wsize, "SKIP=%s is not supported", icalrecur_skip_to_string(r->skip));
		return -1;
	}
	out->freq = freq_map[r->freq];
	out->interval = r->interval > 0 ? r->interval : 1;
	out->count = r->count > 0 ? r->count : 0;
	out->wkst = r->week_start >= ICAL_SUNDAY_WEEKDAY && r->week_start <= ICAL_SATURDAY_WEEKDAY
	                ? (int)r->week_start - 1
	                : 1;
	if (!icaltime_is_null_time(r->until)) {
		out->has_until = true;
		out->until = local_of_tt(r->until) + (r->until.is_date ? DAY - 1 : 0);
	}
	if (by_list(r->by_second, ICAL_BY_SECOND_SIZE, out->sec, &out->nsec, 0, 60, true) ||
	    by_list(r->by_minute, ICAL_BY_MINUTE_SIZE, out->min, &out->nmin, 0, 59, true) ||
	    by_list(r->by_hour, ICAL_BY_HOUR_SIZE, out->hour, &out->nhour, 0, 23, true) ||
	    by_list(r->by_month_day, ICAL_BY_MONTHDAY_SIZE, out->mday, &out->nmday, -31, 31,
	            false) ||
	    by_list(r->by_year_day, ICAL_BY_YEARDAY_SIZE, out->yday, &out->nyday, -366, 366,
	            false) ||
	    by_list(r->by_week_no, ICAL_BY_WEEKNO_SIZE, out->weekno, &out->nweekno, -53, 53,
	            false) ||
	    by_list(r->by_set_pos, ICAL_BY_SETPOS_SIZE, out->setpos, &out->nsetpos, -366, 366,
	            false)) {
		snprintf(why, wsize, "a BY value out of range");
		return -1;
	}
	for (int i = 0; i < ICAL_BY_MONTH_SIZE && r->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX;
	     i++) {
		if (icalrecurrencetype_month_is_leap(r->by_month[i])) {
			snprintf(why, wsize, "leap months are not supported");
			return -1;
		}
		int m = icalrecurrencetype_month_month(r->by_month[i]);
		if (m < 1 || m > 12) {
			snprintf(why, wsize, "BYMONTH out of range");
			return -1;
		}
		bool seen = false;
		for (int k = 0; k < out->nmonth; k++)
			seen |= out->month[k] == m;
		if (!seen)
			out->month[out->nmonth++] = m;
	}
	for (int i = 0;
	     i < ICAL_BY_DAY_SIZE && r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX && out->nwday < 64;
	     i++) {
		int wd = (int)icalrecurrencetype_day_day_of_week(r->by_day[i]) - 1;
		int pos = icalrecurrencetype_day_position(r->by_day[i]);
		if (wd < 0 || wd > 6 || pos < -53 || pos > 53) {
			snprintf(why, wsize, "BYDAY out of range");
			return -1;
		}
		bool seen = false;
		for (int k = 0; k < out->nwday; k++)
			seen |= out->wday[k] == wd && out->wpos[k] == pos;
		if (!seen) {
			out->wday[out->nwday] = wd;
			out->wpos[out->nwday++] = pos;
		}
	}
	return 0;
}

struct expander {
	const struct rule *r;
	bool date;      /* DTSTART is a date: no times */
	int dh, dm, ds; /* DTSTART's time */
	int dmonth, dmday, dwday;
	bool def_month, def_mday, def_wday; /* defaults taken from DTSTART */
	int64_t hint; /* instances before this local time are not needed (0: all) */
	int64_t stop; /* nothing after this local time is needed */
	long steps;
};

static bool in_list(const int *l, int n, int v)
{
	for (int i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

/* Whether day passes the rule's day filters. nth_scope: 'y' for BYDAY positions counted in
 * the year, 'm' in the month, 0 when positions do not apply. */
static bool day_ok(const struct expander *e, int64_t day, int nth_scope)
{
	const struct rule *r = e->r;
	int64_t y;
	int m, d;
	civil_of(day, &y, &m, &d);
	if (r->nmonth && !in_list(r->month, r->nmonth, m))
		return false;
	if (e->def_month && m != e->dmonth)
		return false;
	int mlen = month_len(y, m);
	if (r->nmday && !in_list(r->mday, r->nmday, d) && !in_list(r->mday, r->nmday, d - mlen - 1))
		return false;
	if (e->def_mday && d != e->dmday)
		return false;
	if (r->nyday) {
		int64_t doy = day - days_of(y, 1, 1) + 1;
		int ylen = leap(y) ? 366 : 365;
		if (!in_list(r->yday, r->nyday, (int)doy) &&
		    !in_list(r->yday, r->nyday, (int)(doy - ylen - 1)))
			return false;
	}
	if (r->nweekno && !(e->r->freq == F_YEARLY)) {
		/* the day's week number in its week-numbering year */
		int64_t wy = y + 1;
		while (day < week1_start(wy, r->wkst))
			wy--;
		int64_t w = (day - week1_start(wy, r->wkst)) / 7 + 1;
		int64_t nweeks = (week1_start(wy + 1, r->wkst) - week1_start(wy, r->wkst)) / 7;
		if (!in_list(r->weekno, r->nweekno, (int)w) &&
		    !in_list(r->weekno, r->nweekno, (int)(w - nweeks - 1)))
			return false;
	}
	int wd = weekday_of(day);
	if (e->def_wday && wd != e->dwday)
		return false;
	if (r->nwday) {
		bool ok = false;
		for (int i = 0; i < r->nwday && !ok; i++) {
			if (r->wday[i] != wd)
				continue;
			if (r->wpos[i] == 0 || !nth_scope) {
				ok = true;
				continue;
			}
			int64_t first, last;
			if (nth_scope == 'm') {
				first = days_of(y, m, 1);
				last = first + mlen - 1;
			} else {
				first = days_of(y, 1, 1);
				last = days_of(y, 12, 31);
			}
			int fwd = (int)((day - first) / 7) + 1, back = -(int)((last - day) / 7) - 1;
			ok = r->wpos[i] == fwd || r->wpos[i] == back;
		}
		if (!ok)
			return false;
	}
	return true;
}

typedef int (*occ_fn)(int64_t local, void *ud); /* nonzero: stop */

struct emit_state {
	occ_fn fn;
	void *ud;
	int64_t dtstart, last;
	int emitted;
	bool done;
};

static void emit(const struct expander *e, struct emit_state *s, int64_t t)
{
	if (s->done || t < s->dtstart || t <= s->last)
		return;
	if (e->r->has_until && t > e->r->until) {
		s->done = true;
		return;
	}
	s->last = t;
	s->emitted++;
	if (s->fn(t, s->ud) || (e->r->count && s->emitted >= e->r->count))
		s->done = true;
}

/* One period: the candidate days (sorted), each combined with the time lists, BYSETPOS
 * applied to the whole set in order. The set is a full product, so position i of the set is
 * found by mixed-radix arithmetic and never has to be built. */
static void period(struct expander *e, struct emit_state *s, const int64_t *days, int ndays,
                   const int *hs, int nh, const int *ms, int nm, const int *ss, int ns)
{
	if (ndays == 0 || nh == 0 || nm == 0 || ns == 0)
		return;
	int64_t per_day = (int64_t)nh * nm * ns, n = per_day * ndays;
	const struct rule *r = e->r;
	if (r->nsetpos) {
		int64_t last_idx = -1;
		/* positive positions first, then negative, both ascending in the set */
		int64_t idx[400];
		int k = 0;
		for (int i = 0; i < r->nsetpos; i++) {
			int64_t p = r->setpos[i] > 0 ? r->setpos[i] - 1 : n + r->setpos[i];
			if (p >= 0 && p < n)
				idx[k++] = p;
		}
		for (int i = 1; i < k; i++)
			for (int j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
				int64_t t = idx[j];
				idx[j] = idx[j - 1];
				idx[j - 1] = t;
			}
		for (int i = 0; i < k && !s->done; i++) {
			if (idx[i] == last_idx)
				continue;
			last_idx = idx[i];
			int64_t di = idx[i] / per_day, rem = idx[i] % per_day;
			int hi = (int)(rem / ((int64_t)nm * ns)), mi = (int)(rem / ns % nm),
			    si = (int)(rem % ns);
			emit(e, s, days[di] * DAY + hs[hi] * 3600 + ms[mi] * 60 + ss[si]);
		}
		e->steps += k;
		return;
	}
	for (int d = 0; d < ndays && !s->done; d++)
		for (int h = 0; h < nh && !s->done; h++)
			for (int m = 0; m < nm && !s->done; m++)
				for (int x = 0; x < ns && !s->done; x++) {
					if (++e->steps > MAX_STEPS)
						return;
					emit(e, s,
					     days[d] * DAY + hs[h] * 3600 + ms[m] * 60 + ss[x]);
				}
}

/* Expands rule r from dtstart (local). Returns 1 when a cap cut the expansion short. */
static int expand_rule(const struct rule *r, int64_t dtstart, bool date, int64_t hint, int64_t stop,
                       occ_fn fn, void *ud)
{
	struct expander e = {.r = r, .date = date, .hint = hint, .stop = stop};
	int64_t sday = floordiv(dtstart, DAY);
	int64_t ssec = dtstart - sday * DAY;
	int64_t sy;
	civil_of(sday, &sy, &e.dmonth, &e.dmday);
	e.dh = (int)(ssec / 3600);
	e.dm = (int)(ssec / 60 % 60);
	e.ds = (int)(ssec % 60);
	e.dwday = weekday_of(sday);
	bool none = !r->nweekno && !r->nyday && !r->nmday && !r->nwday;
	if (none && r->freq == F_YEARLY) {
		e.def_month = !r->nmonth;
		e.def_mday = true;
	} else if (none && r->freq == F_MONTHLY) {
		e.def_mday = true;
	} else if ((none && r->freq == F_WEEKLY) ||
	           (r->freq == F_YEARLY && r->nweekno && !r->nwday && !r->nyday && !r->nmday)) {
		/* weekly without days, or a week number alone: DTSTART's weekday */
		e.def_wday = true;
	}
	if (r->freq == F_YEARLY && r->nmday && !r->nmonth && !r->nweekno && !r->nyday && !r->nwday)
		e.def_month = true; /* a yearly month day means one in DTSTART's month */
	if (r->freq == F_YEARLY && r->nweekno) {
		/* periods are week-numbering years, starting with the one DTSTART falls in */
		sy = sy + 1;
		while (sday < week1_start(sy, r->wkst))
			sy--;
	}
	struct emit_state s = {fn, ud, dtstart, INT64_MIN, 0, false};

	/* time lists: the rule's, DTSTART's, or the period's own */
	int hs[24], ms[60], ss[61], nh, nm, ns;
	int one_h[1] = {e.dh}, one_m[1] = {e.dm}, one_s[1] = {e.ds};
	(void)one_h;
	if (date) {
		hs[0] = ms[0] = ss[0] = 0;
		nh = nm = ns = 1;
	} else {
		nh = r->nhour ? r->nhour : 1;
		memcpy(hs, r->nhour ? r->hour : one_h, sizeof(int) * (size_t)nh);
		nm = r->nmin ? r->nmin : 1;
		memcpy(ms, r->nmin ? r->min : one_m, sizeof(int) * (size_t)nm);
		ns = r->nsec ? r->nsec : 1;
		memcpy(ss, r->nsec ? r->sec : one_s, sizeof(int) * (size_t)ns);
	}
	int64_t days[372];
	bool skip = !r->count && hint > dtstart;

	if (r->freq >= F_DAILY) {
		int64_t k = 0;
		if (skip) {
			int64_t hday = floordiv(hint, DAY) - 7;
			int64_t hy;
			int hm, hd;
			civil_of(hday, &hy, &hm, &hd);
			int64_t span = r->freq == F_YEARLY    ? hy - sy
			               : r->freq == F_MONTHLY ? (hy - sy) * 12 + hm - e.dmonth
			               : r->freq == F_WEEKLY  ? (hday - sday) / 7
			                                      : hday - sday;
			k = span > 0 ? span / r->interval - 1 : 0;
			if (k < 0)
				k = 0;
		}
		int64_t wstart0 = sday - ((e.dwday - r->wkst + 7) % 7);
		for (;; k++) {
			int nd = 0;
			int64_t first;
			if (r->freq == F_YEARLY) {
				int64_t y = sy + k * r->interval;
				if (y > MAX_YEAR)
					break;
				int64_t lo = days_of(y, 1, 1), hi = days_of(y + 1, 1, 1);
				if (r->nweekno) {
					lo = week1_start(y, r->wkst);
					hi = week1_start(y + 1, r->wkst);
				}
				first = lo;
				int scope = r->nmonth ? 'm' : r->nweekno ? 0 : 'y';
				for (int64_t d = lo; d < hi; d++) {
					e.steps++;
					if (r->nweekno) {
						int64_t w = (d - lo) / 7 + 1,
						        nweeks = (hi - lo) / 7;
						if (!in_list(r->weekno, r->nweekno, (int)w) &&
						    !in_list(r->weekno, r->nweekno,
						             (int)(w - nweeks - 1)))
							continue;
					}
					if (day_ok(&e, d, scope))
						days[nd++] = d;
				}
			} else if (r->freq == F_MONTHLY) {
				int64_t mi = (sy * 12 + e.dmonth - 1) + k * r->interval;
				int64_t y = floordiv(mi, 12);
				int m = (int)(mi - y * 12) + 1;
				if (y > MAX_YEAR)
					break;
				first = days_of(y, m, 1);
				for (int d = 0; d < month_len(y, m); d++)
					if (day_ok(&e, first + d, 'm'))
						days[nd++] = first + d;
				e.steps += 31;
			} else if (r->freq == F_WEEKLY) {
				first = wstart0 + k * 7 * r->interval;
				for (int d = 0; d < 7; d++)
					if (day_ok(&e, first + d, 0))
						days[nd++] = first + d;
				e.steps += 7;
			} else {
				first = sday + k * r->interval;
				if (day_ok(&e, first, 0))
					days[nd++] = first;
				e.steps++;
			}
			if (first * DAY > stop || floordiv(first, 366) > MAX_YEAR - 1970)
				break;
			period(&e, &s, days, nd, hs, nh, ms, nm, ss, ns);
			if (s.done)
				return 0;
			if (e.steps > MAX_STEPS)
				return 1;
		}
		return 0;
	}

	/* sub-daily: each period is one hour, minute or second of one day */
	int64_t unit = r->freq == F_HOURLY ? 3600 : r->freq == F_MINUTELY ? 60 : 1;
	int64_t step = unit * r->interval;
	int64_t t0 = dtstart - (dtstart % unit + unit) % unit;
	int64_t k = 0;
	if (skip && hint - DAY > t0)
		k = (hint - DAY - t0) / step;
	int64_t cached_day = INT64_MIN;
	bool cached_ok = false;
	for (;; k++) {
		int64_t t = t0 + k * step;
		if (t > stop || floordiv(t, DAY) / 366 > MAX_YEAR - 1970)
			return 0;
		if (++e.steps > MAX_STEPS)
			return 1;
		int64_t day = floordiv(t, DAY);
		if (day != cached_day) {
			cached_day = day;
			cached_ok = day_ok(&e, day, 0);
		}
		if (!cached_ok)
			continue;
		int64_t sec = t - day * DAY;
		int h = (int)(sec / 3600), mi = (int)(sec / 60 % 60), se = (int)(sec % 60);
		if (r->nhour && !in_list(r->hour, r->nhour, h))
			continue;
		int ph[1] = {h}, pm[1] = {mi}, ps[1] = {se};
		const int *H = ph, *M = ms, *S = ss;
		int nH = 1, nM = nm, nS = ns;
		if (r->freq <= F_MINUTELY) {
			if (r->nmin && !in_list(r->min, r->nmin, mi))
				continue;
			M = pm;
			nM = 1;
		}
		if (r->freq == F_SECONDLY) {
			if (r->nsec && !in_list(r->sec, r->nsec, se))
				continue;
			S = ps;
			nS = 1;
		}
		if (date) {
			H = hs;
			M = ms;
			S = ss;
			nM = nS = 1;
		}
		int64_t dd[1] = {day};
		period(&e, &s, dd, 1, H, nH, M, nM, S, nS);
		if (s.done)
			return 0;
	}
}

/* --- the vector interface -------------------------------------------------------------------- */

struct list_ud {
	json_t *arr;
	size_t max;
	bool date, z;
};

static int list_add(int64_t t, void *ud)
{
	struct list_ud *l = ud;
	char buf[32];
	format_local(t, l->date, l->z, buf, sizeof(buf), false);
	json_array_append_new(l->arr, json_string(buf));
	return json_array_size(l->arr) >= l->max;
}

json_t *ical_recur_list(const char *rrule, const char *dtstart, size_t max, struct err *err)
{
	if (icallib_load(err) != 0)
		return NULL;
	struct icaltimetype t = icaltime_from_string(dtstart);
	if (icaltime_is_null_time(t) || !icaltime_is_valid_time(t)) {
		err_set(err, "DTSTART \"%s\" is not a date or date-time", dtstart);
		return NULL;
	}
	icalerror_clear_errno();
	struct icalrecurrencetype rt = icalrecurrencetype_from_string(rrule);
	struct rule r;
	char why[128] = "";
	int rc = rule_from(&rt, &r, why, sizeof(why));
	free(rt.rscale);
	if (rc != 0) {
		err_set(err, "RRULE \"%s\": %s", rrule, why);
		return NULL;
	}
	struct list_ud l = {json_array(), max, t.is_date != 0, icaltime_is_utc(t) != 0};
	if (max)
		expand_rule(&r, local_of_tt(t), t.is_date, 0, INT64_MAX, list_add, &l);
	return l.arr;
}

/* --- reading the feed ------------------------------------------------------------------------ */

struct line {
	char *text; /* unfolded, NUL-terminated, inside struct feed's buffer */
	int no;     /* 1-based line number where it starts */
};

struct tzent {
	char *name;
	icaltimezone *tz;
	bool owned; /* built from the feed's VTIMEZONE */
};

struct ev {
	int line;
	size_t first, last; /* its content lines in struct feed */
	char *uid;
	bool no_uid;     /* the feed gave none: the event is related to no other */
	bool no_dtstart; /* an override without DTSTART starts at its RECURRENCE-ID */
	icalcomponent *comp;
	int sequence;
	bool has_rid;
	int64_t rid;       /* instant, or local date * DAY for a date */
	int64_t rid_local; /* its wall clock in the zone it was written in */
	bool rid_date, range_future;
	bool all_day;
	icaltimezone *zone; /* of DTSTART */
	int64_t start_local, start;
	int64_t dur_days, dur_secs; /* end = start + nominal days in the zone + exact seconds */
	bool used;                  /* an override that matched an occurrence */
};

struct feed {
	const struct ical_opts *o;
	char *buf;
	struct line *lines;
	size_t nlines;
	struct tzent *tzs;
	size_t ntzs;
	icaltimezone *float_zone, *default_zone;
	struct ev *evs;
	size_t nevs;
	json_t *out;
	size_t total;
	bool feed_capped;
};

static void warn(struct feed *f, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn(struct feed *f, int line, const char *fmt, ...)
{
	if (!f->o->warn)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->o->warn(f->o->feed ? f->o->feed : "feed", line, msg, f->o->ud);
}

/* Splits the bytes into unfolded content lines: CRLF or bare LF, a BOM, blank lines, and
 * folds inside UTF-8 sequences are all accepted. Unfolding works in place in a copy, so the
 * memory used is bounded by the input. */
static int split_lines(struct feed *f, const char *data, size_t len, struct err *err)
{
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
		data += 3;
		len -= 3;
	}
	/* NUL bytes in something that starts like a calendar are damage, replaced and warned
	 * about; anywhere else they mean the input is not text at all */
	bool nul = memchr(data, '\0', len) != NULL;
	if (nul && (len < 6 || strncasecmp(data, "BEGIN:", 6) != 0))
		return err_set(err, "%s: not an iCalendar feed (binary data)", f->o->feed);
	if (nul)
		warn(f, 0, "NUL bytes in the feed: read as \"?\"");
	f->buf = malloc(len + 1);
	size_t cap = 64;
	f->lines = calloc(cap, sizeof(*f->lines));
	if (!f->buf || !f->lines)
		return err_set(err, "%s: out of memory", f->o->feed);
	size_t in = 0, outp = 0;
	int no = 0;
	char *cur = NULL;
	int cur_no = 0;
	bool too_long = false;
	while (in < len) {
		size_t e = in;
		while (e < len && data[e] != '\n')
			e++;
		size_t l = e - in;
		if (l && data[in + l - 1] == '\r')
			l--;
		no++;
		bool cont = l > 0 && (data[in] == ' ' || data[in] == '\t');
		if (cont && cur) {
			if (!too_long && (size_t)(f->buf + outp - cur) + l - 1 > ICAL_MAX_LINE) {
				too_long = true;
				warn(f, cur_no, "line longer than %u bytes unfolded: left out",
				     ICAL_MAX_LINE);
			}
			if (!too_long) {
				memcpy(f->buf + outp, data + in + 1, l - 1);
				for (size_t q = 0; nul && q < l - 1; q++)
					f->buf[outp + q] =
					    f->buf[outp + q] ? f->buf[outp + q] : '?';
				outp += l - 1;
			}
		} else if (l > 0 && !cont) {
			if (cur) {
				f->buf[outp++] = '\0';
				if (too_long)
					f->nlines--;
			}
			if (f->nlines == cap) {
				cap *= 2;
				struct line *n = realloc(f->lines, cap * sizeof(*f->lines));
				if (!n)
					return err_set(err, "%s: out of memory", f->o->feed);
				f->lines = n;
			}
			cur = f->buf + outp;
			cur_no = no;
			too_long = l > ICAL_MAX_LINE;
			if (too_long)
				warn(f, no, "line longer than %u bytes: left out", ICAL_MAX_LINE);
			else {
				memcpy(f->buf + outp, data + in, l);
				outp += l;
			}
			if (nul)
				for (char *q = cur; q < f->buf + outp; q++)
					*q = *q ? *q : '?';
			f->lines[f->nlines++] = (struct line){cur, no};
		}
		in = e + 1;
	}
	if (cur) {
		f->buf[outp++] = '\0';
		if (too_long)
			f->nlines--;
	}
	/* the text pointers were taken as the buffer filled; it never moved */
	return 0;
}

static bool is_begin(const char *l, const char *what)
{
	size_t n = strlen(what);
	return strncasecmp(l, "BEGIN:", 6) == 0 &&
	       (!what[0] || (strncasecmp(l + 6, what, n) == 0 && l[6 + n] == '\0'));
}

/* A component's lines [a, b) as text for libical. */
static char *join_lines(const struct feed *f, size_t a, size_t b)
{
	size_t n = 1;
	for (size_t i = a; i < b; i++)
		n += strlen(f->lines[i].text) + 2;
	char *s = malloc(n), *p = s;
	if (!s)
		return NULL;
	for (size_t i = a; i < b; i++) {
		size_t l = strlen(f->lines[i].text);
		memcpy(p, f->lines[i].text, l);
		p += l;
		*p++ = '\r';
		*p++ = '\n';
	}
	*p = '\0';
	return s;
}

static void free_errors(icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
	while (p) {
		icalproperty *next = icalcomponent_get_next_property(c, ICAL_XLICERROR_PROPERTY);
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
		p = next;
	}
}

static int count_errors(icalcomponent *c)
{
	int n = icalcomponent_count_properties(c, ICAL_XLICERROR_PROPERTY);
	for (icalcomponent *s = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); s;
	     s = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
		n += count_errors(s);
	return n;
}

/* libical's errors in a component, each reported with the line that caused it: every
 * property line is parsed alone again, which is cheap because only components with errors
 * get here. */
static void report_errors(struct feed *f, size_t a, size_t b, const char *kind)
{
	int found = 0;
	for (size_t i = a + 1; i + 1 < b; i++) {
		const char *t = f->lines[i].text;
		if (strncasecmp(t, "BEGIN:", 6) == 0 || strncasecmp(t, "END:", 4) == 0)
			continue;
		size_t n = strlen(t) + 40;
		char *s = malloc(n);
		if (!s)
			return;
		snprintf(s, n, "BEGIN:VEVENT\r\n%s\r\nEND:VEVENT\r\n", t);
		icalcomponent *c = icalparser_parse_string(s);
		free(s);
		if (!c)
			continue;
		for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
		     p; p = icalcomponent_get_next_property(c, ICAL_XLICERROR_PROPERTY)) {
			const char *msg = icalproperty_get_xlicerror(p);
			/* an empty property is dropped and harms nothing: not worth a warning */
			if (msg && strncmp(msg, "No value for", 12) == 0) {
				found++;
				continue;
			}
			warn(f, f->lines[i].no, "%s: %s", kind, msg ? msg : "unreadable");
			found++;
		}
		icalcomponent_free(c);
	}
	if (!found)
		warn(f, f->lines[a].no, "%s: libical reported an error in this component", kind);
}

static icaltimezone *find_zone(struct feed *f, const char *tzid, int line)
{
	for (size_t i = 0; i < f->ntzs; i++)
		if (strcmp(f->tzs[i].name, tzid) == 0)
			return f->tzs[i].tz;
	icaltimezone *z = builtin_zone(tzid);
	if (!z) {
		warn(f, line, "unknown time zone \"%.100s\": read in %s", tzid,
		     f->float_zone && icaltimezone_get_location(f->float_zone)
		         ? icaltimezone_get_location(f->float_zone)
		         : "UTC");
		z = f->float_zone;
	}
	struct tzent *n = realloc(f->tzs, (f->ntzs + 1) * sizeof(*f->tzs));
	if (n) {
		f->tzs = n;
		f->tzs[f->ntzs++] = (struct tzent){strdup(tzid), z, false};
	}
	return z;
}

/* A DATE or DATE-TIME property value: its local value, zone (NULL for dates) and instant.
 * Returns -1 when the property has no readable value. */
struct when {
	int64_t local, at;
	bool date;
	icaltimezone *zone;
};

static int read_when(struct feed *f, icalproperty *p, struct icaltimetype t, int line,
                     struct when *w)
{
	if (icaltime_is_null_time(t) || !icaltime_is_valid_time(t) || t.year < 1 ||
	    t.year > MAX_YEAR)
		return -1;
	w->date = t.is_date != 0;
	w->local = local_of_tt(t);
	icalparameter *tzp = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
	const char *tzid = tzp ? icalparameter_get_tzid(tzp) : NULL;
	if (w->date)
		w->zone = f->default_zone;
	else if (icaltime_is_utc(t))
		w->zone = icaltimezone_get_utc_timezone();
	else if (tzid)
		w->zone = find_zone(f, tzid, line);
	else
		w->zone = f->float_zone;
	w->at = local_to_utc(w->zone, w->local);
	return 0;
}

static const char *prop_text(icalcomponent *c, icalproperty_kind k)
{
	icalproperty *p = icalcomponent_get_first_property(c, k);
	return p ? icalproperty_get_value_as_string(p) : NULL;
}

static int read_event(struct feed *f, icalcomponent *c, int line, struct ev *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->line = line;
	ev->comp = c;
	const char *uid = icalcomponent_get_uid(c);
	icalproperty *ds = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);
	icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
	struct when s, r;
	if (rid) {
		if (read_when(f, rid, icalproperty_get_recurrenceid(rid), line, &r) != 0) {
			warn(f, line, "event %s: unreadable RECURRENCE-ID: left out",
			     uid ? uid : "");
			return -1;
		}
		ev->has_rid = true;
		ev->rid_date = r.date;
		ev->rid = r.date ? r.local : r.at;
		ev->rid_local = r.local;
		icalparameter *rg = icalproperty_get_first_parameter(rid, ICAL_RANGE_PARAMETER);
		ev->range_future = rg && icalparameter_get_range(rg) == ICAL_RANGE_THISANDFUTURE;
	}
	if (!ds || read_when(f, ds, icalproperty_get_dtstart(ds), line, &s) != 0) {
		if (!rid) {
			warn(f, line, "event %s: no readable DTSTART: left out", uid ? uid : "");
			return -1;
		}
		s = r;
		ev->no_dtstart = true;
	}
	ev->uid = strdup(uid ? uid : "");
	ev->no_uid = !uid || !*uid;
	ev->all_day = s.date;
	ev->zone = s.zone;
	ev->start_local = s.local;
	ev->start = s.at;
	ev->sequence = icalcomponent_get_sequence(c);
	if (ev->sequence < 0)
		ev->sequence = 0;
	icalproperty *de = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY);
	icalproperty *du = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY);
	struct when e;
	if (de && read_when(f, de, icalproperty_get_dtend(de), line, &e) == 0) {
		if (s.date || (e.zone == s.zone && !e.date)) {
			int64_t diff = e.local - s.local;
			ev->dur_days = floordiv(diff, DAY);
			ev->dur_secs = diff - ev->dur_days * DAY;
		} else
			ev->dur_secs = e.at - s.at;
	} else if (du) {
		struct icaldurationtype d = icalproperty_get_duration(du);
		int64_t days = (int64_t)d.weeks * 7 + d.days;
		int64_t secs = (int64_t)d.hours * 3600 + d.minutes * 60 + d.seconds;
		ev->dur_days = d.is_neg ? -days : days;
		ev->dur_secs = d.is_neg ? -secs : secs;
	} else if (s.date)
		ev->dur_days = 1;
	if (ev->dur_days * DAY + ev->dur_secs < 0) {
		/* RFC 5545 (3.8.2.2) requires DTEND after DTSTART: which of the two is wrong
		 * cannot be known */
		warn(f, line, "event %s: ends before it starts: left out", ev->uid);
		free(ev->uid);
		ev->uid = NULL;
		return -1;
	}
	if (s.date && ev->dur_secs) {
		/* an all-day event lasts whole days: a time of day in DTEND or a DURATION with
		 * hours (RFC 5545, 3.8.2.5 allows only days and weeks with a DATE) is dropped */
		if (!de && du)
			warn(f, line,
			     "event %s: DURATION with a time on an all-day event: whole days",
			     ev->uid);
		ev->dur_secs = 0;
	}
	if (s.date && ev->dur_days == 0)
		ev->dur_days = 1;
	return 0;
}

/* --- expansion of one event ------------------------------------------------------------------ */

struct occ {
	int64_t local, at; /* original start */
	int64_t end;       /* an RDATE PERIOD's end instant, or INT64_MIN */
};

struct occs {
	struct occ *v;
	size_t n, cap;
	bool capped;
	icaltimezone *zone;
	bool date;
	int64_t stop_local;
};

static int occ_push(struct occs *o, int64_t local, int64_t at, int64_t end)
{
	if (o->n >= (size_t)ICAL_MAX_PER_EVENT * 4) {
		o->capped = true;
		return 1;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct occ *n = realloc(o->v, cap * sizeof(*n));
		if (!n)
			return 1;
		o->v = n;
		o->cap = cap;
	}
	o->v[o->n++] = (struct occ){local, at, end};
	return 0;
}

static int occ_add(int64_t local, void *ud)
{
	struct occs *o = ud;
	return occ_push(o, local, o->date ? local : local_to_utc(o->zone, local), INT64_MIN);
}

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	return (x->at > y->at) - (x->at < y->at);
}

/* A RECURRENCE-ID or EXDATE value: an instant (a date: local date * DAY), its wall clock in
 * the zone it was written in, and whether it is a date. */
struct key {
	int64_t at, local;
	bool date;
};

/* Whether occurrence o of m is the one key names: the same instant, or the same date for
 * all-day events. A date against a date-time (or the reverse) matches on the date each was
 * written with: Exchange names an all-day instance by its midnight in the organizer's zone
 * (RECURRENCE-ID;TZID=GMT Standard Time:20200416T000000 is 16 April, although that is 15
 * April in UTC). */
static bool same_instance(const struct ev *m, const struct occ *o, const struct key *k)
{
	if (m->all_day == k->date)
		return (m->all_day ? o->local : o->at) == k->at;
	return floordiv(o->local, DAY) == floordiv(k->local, DAY);
}

static struct key rid_key(const struct ev *v)
{
	return (struct key){v->rid, v->rid_local, v->rid_date};
}

static void fmt_time(const struct ev *ev, int64_t local, int64_t at, char *buf, size_t size)
{
	if (ev->all_day)
		format_local(local, true, false, buf, size, true);
	else
		format_local(at, false, true, buf, size, true);
}

static json_t *str_or_null(const char *s)
{
	if (!s)
		return json_null();
	json_t *v = json_string(s);
	if (v)
		return v;
	/* not UTF-8: keep what is ASCII */
	size_t n = strlen(s);
	char *c = malloc(n + 1);
	if (!c)
		return json_null();
	memcpy(c, s, n);
	c[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	v = json_string(c);
	free(c);
	return v ? v : json_null();
}

static const char *email_of(const char *v)
{
	if (v && strncasecmp(v, "mailto:", 7) == 0)
		return v + 7;
	return v;
}

/* A TEXT property's value as the feed wrote it, unescaped. libical's parser trims trailing
 * blanks off every line, and a summary is the organiser's text, trailing blank included. Only
 * the event's own lines count, not those of its VALARMs. Returns a new string or NULL. */
static char *raw_text(const struct feed *f, const struct ev *ev, const char *name)
{
	size_t n = strlen(name);
	int depth = 0;
	for (size_t i = ev->first + 1; i < ev->last; i++) {
		const char *t = f->lines[i].text;
		if (strncasecmp(t, "BEGIN:", 6) == 0)
			depth++;
		else if (strncasecmp(t, "END:", 4) == 0)
			depth--;
		if (depth || strncasecmp(t, name, n) != 0 || (t[n] != ':' && t[n] != ';'))
			continue;
		bool quoted = false;
		const char *v = t + n;
		for (; *v && (quoted || *v != ':'); v++)
			if (*v == '"')
				quoted = !quoted;
		if (!*v)
			return NULL;
		v++;
		char *out = malloc(strlen(v) + 1), *o = out;
		if (!out)
			return NULL;
		for (; *v; v++) {
			if (*v == '\\' && v[1]) {
				v++;
				*o++ = (*v == 'n' || *v == 'N') ? '\n' : *v;
			} else
				*o++ = *v;
		}
		*o = '\0';
		return out;
	}
	return NULL;
}

static json_t *text_of(const struct feed *f, const struct ev *ev, const char *name,
                       const char *parsed)
{
	char *raw = ev->last > ev->first ? raw_text(f, ev, name) : NULL;
	json_t *v = str_or_null(raw ? raw : parsed);
	free(raw);
	return v;
}

static void add_instance(struct feed *f, const struct ev *master, const struct ev *src,
                         const struct occ *orig, bool recurring, int64_t start_local, int64_t start,
                         int64_t end_local, int64_t end, int64_t *count)
{
	int64_t s_at = src->all_day ? local_to_utc(f->default_zone, start_local) : start;
	int64_t e_at = src->all_day ? local_to_utc(f->default_zone, end_local) : end;
	bool overlaps =
	    s_at < f->o->to && (e_at > f->o->from || (e_at == s_at && s_at >= f->o->from));
	if (!overlaps)
		return;
	if (*count >= ICAL_MAX_PER_EVENT || f->total >= ICAL_MAX_PER_FEED) {
		if (*count == ICAL_MAX_PER_EVENT)
			warn(f, src->line,
			     "event %s: more than %d instances in the window: the rest left out",
			     src->uid, ICAL_MAX_PER_EVENT);
		if (f->total >= ICAL_MAX_PER_FEED && !f->feed_capped) {
			f->feed_capped = true;
			warn(f, 0, "more than %d instances in the window: the rest left out",
			     ICAL_MAX_PER_FEED);
		}
		(*count)++;
		return;
	}
	(*count)++;
	f->total++;
	char sbuf[32], ebuf[32], rbuf[32];
	fmt_time(src, start_local, start, sbuf, sizeof(sbuf));
	fmt_time(src, end_local, end, ebuf, sizeof(ebuf));
	icalcomponent *c = src->comp;
	json_t *o = json_object();
	json_object_set_new(o, "uid", str_or_null(src->uid));
	if (recurring) {
		fmt_time(master, orig->local, orig->at, rbuf, sizeof(rbuf));
		json_object_set_new(o, "recurrence_id", json_string(rbuf));
	} else
		json_object_set_new(o, "recurrence_id", json_null());
	json_object_set_new(o, "start", json_string(sbuf));
	json_object_set_new(o, "end", json_string(ebuf));
	json_object_set_new(o, "all_day", json_boolean(src->all_day));
	icalproperty_status st = icalcomponent_get_status(c);
	const char *sts = st == ICAL_STATUS_NONE ? "CONFIRMED" : icalproperty_status_to_string(st);
	json_object_set_new(o, "status", json_string(sts ? sts : "CONFIRMED"));
	/* an event without SUMMARY has an empty one: every consumer prints it */
	json_t *summary = text_of(f, src, "SUMMARY", icalcomponent_get_summary(c));
	json_object_set_new(o, "summary", json_is_null(summary) ? json_string("") : summary);
	json_object_set_new(o, "location",
	                    text_of(f, src, "LOCATION", icalcomponent_get_location(c)));
	json_object_set_new(o, "url", str_or_null(prop_text(c, ICAL_URL_PROPERTY)));
	json_object_set_new(o, "description",
	                    text_of(f, src, "DESCRIPTION", icalcomponent_get_description(c)));
	icalproperty *org = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);
	json_object_set_new(o, "organizer",
	                    str_or_null(org ? email_of(icalproperty_get_organizer(org)) : NULL));
	json_t *att = json_array();
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY))
		json_array_append_new(att, str_or_null(email_of(icalproperty_get_attendee(p))));
	json_object_set_new(o, "attendees", att);
	json_object_set_new(o, "sequence", json_integer(src->sequence));
	/* sort keys, dropped before returning */
	json_object_set_new(o, "\x01s", json_integer(s_at));
	json_array_append_new(f->out, o);
}

static void end_of(const struct ev *ev, int64_t start_local, int64_t start, int64_t *end_local,
                   int64_t *end)
{
	*end_local = start_local + ev->dur_days * DAY + ev->dur_secs;
	if (ev->all_day)
		*end = *end_local;
	else if (ev->dur_days)
		*end = local_to_utc(ev->zone, start_local + ev->dur_days * DAY) + ev->dur_secs;
	else
		*end = start + ev->dur_secs;
}

/* Occurrences of one recurrence property (RRULE or EXRULE) into o. */
static void expand_prop(struct feed *f, struct ev *m, icalproperty *p, struct occs *o,
                        int64_t hint_local)
{
	struct icalrecurrencetype rt = icalproperty_get_rrule(p);
	struct rule r;
	char why[128] = "";
	int rc = rule_from(&rt, &r, why, sizeof(why));
	if (rc == 0 && r.has_until && !m->all_day && icaltime_is_utc(rt.until))
		r.until = utc_to_local(m->zone, local_of_tt(rt.until));
	if (rc != 0) {
		warn(f, m->line, "event %s: %s: %s: only DTSTART kept", m->uid,
		     icalproperty_get_value_as_string(p), why);
		return;
	}
	if (expand_rule(&r, m->start_local, m->all_day, hint_local, o->stop_local, occ_add, o))
		o->capped = true;
}

static void expand_event(struct feed *f, struct ev *m, struct ev **ovr, size_t novr)
{
	icalcomponent *c = m->comp;
	bool recurring = novr > 0;
	int64_t shift = 0; /* how far THISANDFUTURE overrides move instances */
	for (size_t i = 0; i < novr; i++)
		if (ovr[i]->range_future) {
			int64_t d = ovr[i]->start - ovr[i]->rid;
			shift = d > shift ? d : -d > shift ? -d : shift;
		}
	int64_t longest = m->dur_days * DAY + m->dur_secs + 2 * DAY + shift;
	int64_t from_local = utc_to_local(m->zone, f->o->from),
	        to_local = utc_to_local(m->zone, f->o->to);
	struct occs o = {.zone = m->zone, .date = m->all_day};
	o.stop_local = to_local + 2 * DAY + shift;
	int64_t hint = from_local - longest;

	bool has_rule = false;
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_RRULE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_RRULE_PROPERTY)) {
		expand_prop(f, m, p, &o, hint);
		has_rule = true;
	}
	if (!has_rule)
		occ_push(&o, m->start_local, m->start, INT64_MIN);
	else if (o.n == 0 || o.v[0].local != m->start_local) {
		/* DTSTART is always an instance (RFC 5545, 3.8.5.3), even when the rule skips it */
		if (m->start_local >= hint - 400 * DAY)
			occ_push(&o, m->start_local, m->start, INT64_MIN);
	}
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_RDATE_PROPERTY)) {
		struct icaldatetimeperiodtype dp = icalproperty_get_rdate(p);
		struct when w;
		bool period = !icaltime_is_null_time(dp.period.start);
		struct icaltimetype t = period ? dp.period.start : dp.time;
		if (period && (dp.period.start.is_date ||
		               (!icaltime_is_null_time(dp.period.end) && dp.period.end.is_date))) {
			/* RFC 5545 (3.3.9): a period is of date-times; a time of day made up for
			 * these dates would be wrong */
			warn(f, m->line,
			     "event %s: RDATE PERIOD of dates, not date-times: left out", m->uid);
			continue;
		}
		if (read_when(f, p, t, m->line, &w) != 0) {
			warn(f, m->line, "event %s: unreadable RDATE: left out", m->uid);
			continue;
		}
		int64_t local = m->all_day ? w.local : utc_to_local(m->zone, w.at);
		int64_t at = m->all_day ? w.local : w.at;
		int64_t end = INT64_MIN;
		if (period) {
			struct when we;
			if (!icaltime_is_null_time(dp.period.end) &&
			    read_when(f, p, dp.period.end, m->line, &we) == 0)
				end = we.at;
			else {
				struct icaldurationtype d = dp.period.duration;
				end = at + ((int64_t)d.weeks * 7 + d.days) * DAY + d.hours * 3600 +
				      d.minutes * 60 + d.seconds;
			}
		}
		occ_push(&o, local, at, end);
		recurring = true;
	}
	if (has_rule)
		recurring = true;
	if (o.capped)
		warn(f, m->line, "event %s: too many occurrences: the rest left out", m->uid);
	if (o.n)
		qsort(o.v, o.n, sizeof(*o.v), cmp_occ);

	/* EXDATE and EXRULE, compared as instants (dates by date) */
	struct occs ex = {.zone = m->zone, .date = m->all_day, .stop_local = o.stop_local};
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_EXRULE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_EXRULE_PROPERTY))
		expand_prop(f, m, p, &ex, hint);
	struct key *exd = NULL;
	size_t nexd = 0, exd_cap = 0;
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_EXDATE_PROPERTY)) {
		struct when w;
		if (read_when(f, p, icalproperty_get_exdate(p), m->line, &w) != 0) {
			warn(f, m->line, "event %s: unreadable EXDATE: left out", m->uid);
			continue;
		}
		if (nexd == exd_cap) {
			size_t cap = exd_cap ? exd_cap * 2 : 16;
			struct key *n = cap <= (size_t)ICAL_MAX_PER_EVENT * 4
			                    ? realloc(exd, cap * sizeof(*n))
			                    : NULL;
			if (!n) {
				warn(f, m->line, "event %s: too many EXDATEs: the rest left out",
				     m->uid);
				break;
			}
			exd = n;
			exd_cap = cap;
		}
		exd[nexd++] = (struct key){w.date ? w.local : w.at, w.local, w.date};
	}
	size_t k = 0;
	for (size_t i = 0; i < o.n; i++) {
		if (k && o.v[k - 1].at == o.v[i].at)
			continue; /* one instance, however many ways it was produced */
		bool excluded = false;
		for (size_t j = 0; j < ex.n && !excluded; j++)
			excluded = ex.v[j].local == o.v[i].local;
		for (size_t j = 0; j < nexd && !excluded; j++)
			excluded = same_instance(m, &o.v[i], &exd[j]);
		if (!excluded)
			o.v[k++] = o.v[i];
	}
	o.n = k;

	int64_t count = 0;
	for (size_t i = 0; i < o.n; i++) {
		const struct occ *oc = &o.v[i];
		const struct ev *exact = NULL, *range = NULL;
		for (size_t j = 0; j < novr; j++) {
			struct key rk = rid_key(ovr[j]);
			if (same_instance(m, oc, &rk)) {
				exact = ovr[j];
				ovr[j]->used = true;
			} else if (ovr[j]->range_future && !ovr[j]->rid_date &&
			           oc->at > ovr[j]->rid && (!range || ovr[j]->rid > range->rid))
				range = ovr[j];
		}
		int64_t sl, s, el, e;
		if (exact) {
			end_of(exact, exact->start_local, exact->start, &el, &e);
			add_instance(f, m, exact, oc, recurring, exact->start_local, exact->start,
			             el, e, &count);
			continue;
		}
		const struct ev *src = range ? range : m;
		if (range) {
			s = oc->at + (range->start - range->rid);
			sl = utc_to_local(range->zone, s);
		} else {
			s = oc->at;
			sl = oc->local;
		}
		if (oc->end != INT64_MIN) {
			e = oc->end;
			el = m->all_day ? e : utc_to_local(m->zone, e);
		} else
			end_of(src, sl, s, &el, &e);
		add_instance(f, m, src, oc, recurring, sl, s, el, e, &count);
	}
	/* overrides of instances the rule does not produce stand on their own, unless EXDATE
	 * removed that instance */
	for (size_t j = 0; j < novr; j++) {
		struct ev *v = ovr[j];
		/* an override older than its master refers to an instance the master may have
		 * dropped since */
		if (v->used || v->sequence < m->sequence)
			continue;
		struct occ orig = {v->rid, v->rid, INT64_MIN};
		if (!v->rid_date) {
			/* an all-day series names the date the RECURRENCE-ID was written with */
			if (m->all_day)
				orig.at = orig.local = floordiv(v->rid_local, DAY) * DAY;
			else
				orig.local = utc_to_local(m->zone, v->rid);
		}
		bool excluded = false;
		for (size_t x = 0; x < nexd && !excluded; x++)
			excluded = same_instance(m, &orig, &exd[x]);
		if (excluded)
			continue;
		int64_t el, e;
		end_of(v, v->start_local, v->start, &el, &e);
		add_instance(f, m, v, &orig, true, v->start_local, v->start, el, e, &count);
	}
	free(o.v);
	free(ex.v);
	free(exd);
}

/* --- the feed as a whole --------------------------------------------------------------------- */

static int cmp_ev(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	int c = strcmp(x->uid, y->uid);
	if (c)
		return c;
	if (x->no_uid || y->no_uid)
		return (x->line > y->line) - (x->line < y->line);
	if (x->has_rid != y->has_rid)
		return x->has_rid - y->has_rid;
	if (x->rid != y->rid)
		return (x->rid > y->rid) - (x->rid < y->rid);
	if (x->sequence != y->sequence)
		return (x->sequence > y->sequence) - (x->sequence < y->sequence);
	return (x->line > y->line) - (x->line < y->line);
}

static int cmp_out(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t sx = json_integer_value(json_object_get(x, "\x01s")),
	           sy = json_integer_value(json_object_get(y, "\x01s"));
	if (sx != sy)
		return (sx > sy) - (sx < sy);
	int c = strcmp(json_string_value(json_object_get(x, "uid")),
	               json_string_value(json_object_get(y, "uid")));
	if (c)
		return c;
	const char *rx = json_string_value(json_object_get(x, "recurrence_id")),
	           *ry = json_string_value(json_object_get(y, "recurrence_id"));
	return strcmp(rx ? rx : "", ry ? ry : "");
}

/* Reads the components between lines [a, b): VTIMEZONE blocks first (an event may use a zone
 * defined after it), then events. */
static int read_components(struct feed *f, struct err *err)
{
	size_t depth = 0, start = 0, comp_depth = 0;
	bool in_cal = false, any_cal = false;
	char kind[64] = "";
	/* two passes: zones, then events */
	for (int pass = 0; pass < 2; pass++) {
		depth = comp_depth = 0;
		in_cal = false;
		for (size_t i = 0; i < f->nlines; i++) {
			const char *t = f->lines[i].text;
			if (!t)
				continue;
			if (strncasecmp(t, "BEGIN:", 6) == 0) {
				if (++depth > ICAL_MAX_DEPTH)
					return err_set(err,
					               "%s:%d: components nested more than %d deep",
					               f->o->feed, f->lines[i].no, ICAL_MAX_DEPTH);
				if (depth == 1)
					in_cal = is_begin(t, "VCALENDAR");
				any_cal |= in_cal;
				/* a bare VEVENT without its VCALENDAR is read as well */
				if ((depth == 2 && in_cal) || (depth == 1 && !in_cal)) {
					start = i;
					comp_depth = depth;
					snprintf(kind, sizeof(kind), "%s", t + 6);
					any_cal = true;
				}
				continue;
			}
			if (strncasecmp(t, "END:", 4) == 0) {
				if (depth == 0)
					continue;
				if (depth == comp_depth &&
				    ((pass == 0 && strcasecmp(kind, "VTIMEZONE") == 0) ||
				     (pass == 1 && strcasecmp(kind, "VEVENT") == 0))) {
					if (strcasecmp(t + 4, kind) != 0) {
						warn(f, f->lines[start].no,
						     "%s ends with \"%.60s\" at line %d: left out",
						     kind, t, f->lines[i].no);
					} else {
						char *text = join_lines(f, start, i + 1);
						icalcomponent *c =
						    text ? icalparser_parse_string(text) : NULL;
						free(text);
						if (c && count_errors(c)) {
							report_errors(f, start, i + 1, kind);
						}
						if (!c)
							warn(f, f->lines[start].no,
							     "%s: unreadable: left out", kind);
						else if (pass == 0) {
							free_errors(c);
							const char *tzid =
							    prop_text(c, ICAL_TZID_PROPERTY);
							icaltimezone *z = icaltimezone_new();
							if (!tzid || !z ||
							    !icaltimezone_set_component(z, c)) {
								warn(f, f->lines[start].no,
								     "VTIMEZONE without TZID: left "
								     "out");
								icalcomponent_free(c);
								if (z)
									icaltimezone_free(z, 1);
							} else {
								struct tzent *n =
								    realloc(f->tzs, (f->ntzs + 1) *
								                        sizeof(*n));
								if (n) {
									f->tzs = n;
									f->tzs[f->ntzs++] =
									    (struct tzent){
									        strdup(tzid), z,
									        true};
								} else
									icaltimezone_free(z, 1);
							}
						} else {
							struct ev ev;
							if (read_event(f, c, f->lines[start].no,
							               &ev) == 0) {
								ev.first = start;
								ev.last = i;
								struct ev *n =
								    realloc(f->evs, (f->nevs + 1) *
								                        sizeof(*n));
								if (n) {
									f->evs = n;
									f->evs[f->nevs++] = ev;
									c = NULL;
								} else
									free(ev.uid);
							}
							if (c)
								icalcomponent_free(c);
						}
					}
				}
				if (depth == comp_depth)
					comp_depth = 0;
				depth--;
				continue;
			}
			if (pass == 0 && depth == 1 && in_cal &&
			    strncasecmp(t, "X-WR-TIMEZONE", 13) == 0 &&
			    (t[13] == ':' || t[13] == ';')) {
				const char *v = strchr(t, ':');
				icaltimezone *z = v ? builtin_zone(v + 1) : NULL;
				if (z)
					f->float_zone = z;
				else
					warn(f, f->lines[i].no,
					     "X-WR-TIMEZONE \"%.100s\" is unknown", v ? v + 1 : "");
			}
		}
		if (pass == 0 && depth > 0)
			warn(f, 0,
			     "the feed ends inside a component (cut short?): what is complete is "
			     "read");
	}
	if (!any_cal)
		return err_set(err, "%s: not an iCalendar feed (no BEGIN:VCALENDAR or component)",
		               f->o->feed);
	return 0;
}

json_t *ical_expand(const char *data, size_t len, const struct ical_opts *o, struct err *err)
{
	if (icallib_load(err) != 0)
		return NULL;
	struct ical_opts opts = *o;
	if (!opts.feed)
		opts.feed = "feed";
	if (len > ICAL_MAX_FEED) {
		err_set(err, "%s: %zu bytes is more than the %u MiB a feed may have", opts.feed,
		        len, ICAL_MAX_FEED / (1024 * 1024));
		return NULL;
	}
	icalerror_set_errors_are_fatal(0);
	struct feed f = {.o = &opts};
	json_t *result = NULL;
	f.default_zone = icaltimezone_get_utc_timezone();
	if (opts.default_tz && *opts.default_tz) {
		f.default_zone = builtin_zone(opts.default_tz);
		if (!f.default_zone) {
			err_set(err, "unknown time zone \"%s\"", opts.default_tz);
			return NULL;
		}
	}
	f.float_zone = f.default_zone;
	f.out = json_array();
	if (split_lines(&f, data, len, err) != 0 || read_components(&f, err) != 0)
		goto done;

	if (f.nevs)
		qsort(f.evs, f.nevs, sizeof(*f.evs), cmp_ev);
	/* the highest SEQUENCE (then the last in the feed) wins for one UID and recurrence id */
	size_t k = 0;
	for (size_t i = 0; i < f.nevs; i++) {
		if (k && !f.evs[i].no_uid && strcmp(f.evs[k - 1].uid, f.evs[i].uid) == 0 &&
		    f.evs[k - 1].has_rid == f.evs[i].has_rid && f.evs[k - 1].rid == f.evs[i].rid) {
			icalcomponent_free(f.evs[k - 1].comp);
			free(f.evs[k - 1].uid);
			f.evs[k - 1] = f.evs[i];
			continue;
		}
		f.evs[k++] = f.evs[i];
	}
	f.nevs = k;
	struct ev **ovr = calloc(f.nevs + 1, sizeof(void *));
	for (size_t i = 0; ovr && i < f.nevs;) {
		/* one UID is one event with its overrides; events without UID stand alone (two
		 * of them are not known to be related) */
		size_t j = i + 1;
		while (j < f.nevs && !f.evs[i].no_uid && strcmp(f.evs[j].uid, f.evs[i].uid) == 0)
			j++;
		struct ev *master = f.evs[i].has_rid ? NULL : &f.evs[i];
		size_t n = 0;
		for (size_t x = master ? i + 1 : i; x < j; x++)
			ovr[n++] = &f.evs[x];
		if (master)
			expand_event(&f, master, ovr, n);
		else
			for (size_t x = 0; x < n; x++) {
				int64_t count = 0, el, e;
				struct ev *v = ovr[x];
				if (v->no_dtstart) {
					/* nothing says when this one is: RFC 5545 (3.6.1)
					 * requires DTSTART */
					warn(&f, v->line,
					     "event %s: no DTSTART and no master event: left out",
					     v->uid);
					continue;
				}
				/* with no master, an override that brings its own RRULE or RDATE
				 * is the only statement of the series there is (Lotus Notes
				 * sends RANGE=THISANDFUTURE with every date as an RDATE): it is
				 * expanded like a master */
				if (icalcomponent_get_first_property(v->comp,
				                                     ICAL_RRULE_PROPERTY) ||
				    icalcomponent_get_first_property(v->comp,
				                                     ICAL_RDATE_PROPERTY)) {
					expand_event(&f, v, NULL, 0);
					continue;
				}
				struct occ orig = {v->rid, v->rid, INT64_MIN};
				end_of(v, v->start_local, v->start, &el, &e);
				struct ev as_master = *v;
				as_master.all_day = v->rid_date;
				add_instance(&f, &as_master, v, &orig, true, v->start_local,
				             v->start, el, e, &count);
			}
		i = j;
	}
	free(ovr);

	size_t n = json_array_size(f.out);
	json_t **items = calloc(n + 1, sizeof(void *));
	if (!items) {
		err_set(err, "%s: out of memory", opts.feed);
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(f.out, i));
	if (n)
		qsort(items, n, sizeof(void *), cmp_out);
	result = json_array();
	for (size_t i = 0; i < n; i++) {
		json_object_del(items[i], "\x01s");
		json_array_append_new(result, items[i]);
	}
	free(items);
done:
	json_decref(f.out);
	for (size_t i = 0; i < f.nevs; i++) {
		icalcomponent_free(f.evs[i].comp);
		free(f.evs[i].uid);
	}
	free(f.evs);
	for (size_t i = 0; i < f.ntzs; i++) {
		if (f.tzs[i].owned)
			icaltimezone_free(f.tzs[i].tz, 1);
		free(f.tzs[i].name);
	}
	free(f.tzs);
	free(f.lines);
	free(f.buf);
	return result;
}

/* n decimal digits at p into *v; false when any is not a digit. */
static bool digits(const char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

int ical_parse_time(const char *text, const char *tz, time_t *out, struct err *err)
{
	if (icallib_load(err) != 0)
		return -1;
	int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
	bool z = false;
	size_t len = strlen(text);
	bool ok = len >= 10 && digits(text, 4, &y) && text[4] == '-' && digits(text + 5, 2, &mo) &&
	          text[7] == '-' && digits(text + 8, 2, &d);
	if (ok && len > 10) {
		const char *t = text + 10;
		ok = t[0] == 'T' && digits(t + 1, 2, &h) && t[3] == ':' && digits(t + 4, 2, &mi);
		const char *rest = t + 6;
		if (ok && rest[0] == ':') {
			ok = digits(rest + 1, 2, &s);
			rest += 3;
		}
		if (ok && rest[0] == 'Z') {
			z = true;
			rest++;
		}
		ok = ok && rest[0] == '\0';
	}
	if (!ok || mo < 1 || mo > 12 || d < 1 || d > month_len(y, mo) || h > 23 || mi > 59 ||
	    s > 59)
		return err_set(err,
		               "\"%s\" is not a date (YYYY-MM-DD) or date-time "
		               "(YYYY-MM-DDTHH:MM[:SS][Z])",
		               text);
	icaltimezone *zone = icaltimezone_get_utc_timezone();
	if (tz && *tz && !z) {
		zone = builtin_zone(tz);
		if (!zone)
			return err_set(err, "unknown time zone \"%s\"", tz);
	}
	int64_t local = days_of(y, mo, d) * DAY + h * 3600 + mi * 60 + s;
	*out = (time_t)local_to_utc(zone, local);
	return 0;
}
