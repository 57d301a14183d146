/* Calendar feeds: the recurrence engine against libical's own vectors, the data-driven cases
 * in tests/cases/ical, each feature on a small feed, bad input, and `ical expand`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "ical.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

struct warnings {
	char text[8192];
	int n;
};

static void on_warn(const char *feed, int line, const char *msg, void *ud)
{
	struct warnings *w = ud;
	size_t used = strlen(w->text);
	snprintf(w->text + used, sizeof(w->text) - used, "%s:%d: %s\n", feed, line, msg);
	w->n++;
}

/* The instances as `ical expand` prints them, one line each (malloc'd). */
static char *lines_of(json_t *inst)
{
	static const char *const keys[] = {"uid",     "recurrence_id", "start",  "end",
	                                   "all_day", "status",        "summary"};
	size_t cap = 1024, used = 0, i;
	char *out = calloc(1, cap);
	json_t *v;
	json_array_foreach(inst, i, v) {
		json_t *o = json_object();
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			json_object_set(o, keys[k], json_object_get(v, keys[k]));
		char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		size_t n = strlen(t);
		while (used + n + 2 > cap) {
			char *bigger = realloc(out, cap *= 2);
			assert_non_null(bigger);
			out = bigger;
		}
		memcpy(out + used, t, n);
		used += n;
		out[used++] = '\n';
		out[used] = '\0';
		free(t);
		json_decref(o);
	}
	return out;
}

static json_t *expand(const char *text, const char *from, const char *to, const char *tz,
                      struct warnings *w, struct err *err)
{
	struct ical_opts o = {"test.ics", 0, 0, tz, on_warn, w};
	assert_int_equal(ical_parse_time(from, tz, &o.from, err), 0);
	assert_int_equal(ical_parse_time(to, tz, &o.to, err), 0);
	return ical_expand(text, strlen(text), &o, err);
}

/* --- libical's vectors --------------------------------------------------------------------- */

static void test_ical_vectors(void **state)
{
	size_t len;
	char *vec = slurp("tests/fixtures/ical/libical__icalrecur_test.txt", &len);
	char *dev = slurp("tests/fixtures/ical/known-deviations.txt", NULL);
	assert_non_null(vec);
	assert_non_null(dev);
	/* nothing teaching calendars use may be a known deviation */
	for (char *l = dev; l && *l;) {
		char *nl = strchr(l, '\n');
		if (*l != '#' && *l != '\n') {
			assert_null(strstr(l, "FREQ=WEEKLY"));
			assert_null(strstr(l, "FREQ=DAILY"));
			assert_null(strstr(l, "FREQ=MONTHLY"));
		}
		l = nl ? nl + 1 : NULL;
	}
	char rrule[1024] = "", dtstart[64] = "";
	int pass = 0, deviations = 0, wrong = 0;
	char report[4096] = "";
	for (char *l = vec; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(l, "RRULE:", 6) == 0)
			snprintf(rrule, sizeof(rrule), "%s", l + 6);
		else if (strncmp(l, "DTSTART:", 8) == 0)
			snprintf(dtstart, sizeof(dtstart), "%s", l + 8);
		else if (strncmp(l, "INSTANCES:", 10) == 0) {
			/* START-AT lines are ignored: the list still starts at DTSTART */
			const char *want = l + 10;
			size_t n = 1;
			for (const char *p = want; *p; p++)
				n += *p == ',';
			bool bounded = strstr(rrule, "COUNT=") || strstr(rrule, "UNTIL=");
			struct err err = {0};
			json_t *got = ical_recur_list(rrule, dtstart, bounded ? 100000 : n, &err);
			char text[65536] = "";
			size_t i;
			json_t *v;
			if (got)
				json_array_foreach(got, i, v) {
					size_t u = strlen(text);
					snprintf(text + u, sizeof(text) - u, "%s%s", i ? "," : "",
					         json_string_value(v));
				}
			json_decref(got);
			char key[1100];
			snprintf(key, sizeof(key), "\n%s\t", rrule);
			if (strcmp(text, want) == 0)
				pass++;
			else if (strstr(dev, key))
				deviations++;
			else {
				wrong++;
				size_t u = strlen(report);
				snprintf(report + u, sizeof(report) - u,
				         "%s from %s:\n  want %.200s\n  got  %.200s\n", rrule,
				         dtstart, want, got ? text : err.msg);
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	printf("ical vectors: %d pass, %d known deviations, %d wrong\n", pass, deviations, wrong);
	free(vec);
	free(dev);
	if (wrong)
		fail_msg("%s", report);
	assert_int_equal(pass + deviations, 146);
}

/* --- tests/cases/ical ---------------------------------------------------------------------- */

static void test_ical_cases(void **state)
{
	DIR *d = opendir("tests/cases/ical");
	assert_non_null(d);
	struct dirent *de;
	int cases = 0, failed = 0;
	static char report[65536];
	report[0] = '\0';
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl < 7 || strcmp(de->d_name + nl - 6, ".jsonl") != 0)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "tests/cases/ical/%s", de->d_name);
		char *text = slurp(path, NULL);
		assert_non_null(text);
		char *body = strchr(text, '\n');
		assert_non_null(body);
		*body++ = '\0';
		json_error_t je;
		json_t *h = json_loads(text, 0, &je);
		if (!h)
			fail_msg("%s:1: %s", path, je.text);
		const char *feed = json_string_value(json_object_get(h, "feed"));
		const char *tz = json_string_value(json_object_get(h, "tz"));
		char fpath[512];
		snprintf(fpath, sizeof(fpath), "tests/fixtures/ical/%s", feed ? feed : "");
		size_t len = 0;
		char *data = slurp(fpath, &len);
		if (!data)
			fail_msg("%s: no feed %s", path, fpath);
		struct warnings w = {{0}, 0};
		struct ical_opts o = {feed, 0, 0, tz, on_warn, &w};
		struct err err = {0};
		assert_int_equal(ical_parse_time(json_string_value(json_object_get(h, "from")), tz,
		                                 &o.from, &err),
		                 0);
		assert_int_equal(
		    ical_parse_time(json_string_value(json_object_get(h, "to")), tz, &o.to, &err),
		    0);
		json_t *inst = ical_expand(data, len, &o, &err);
		if (!inst) {
			size_t u = strlen(report);
			snprintf(report + u, sizeof(report) - u, "%s: %s\n", path, err.msg);
			failed++;
			inst = json_array();
		}
		char *got = lines_of(inst);
		/* line by line, each expected line reparsed and printed the same way */
		int no = 1;
		char *g = got, *e = body;
		while (*e || *g) {
			char *ge = strchr(g, '\n'), *ee = strchr(e, '\n');
			size_t gl = ge ? (size_t)(ge - g) : strlen(g);
			size_t el = ee ? (size_t)(ee - e) : strlen(e);
			no++;
			if (el == 0 && ee) {
				e = ee + 1;
				continue;
			}
			char *want = NULL;
			if (el) {
				json_t *x = json_loadb(e, el, 0, &je);
				if (!x)
					fail_msg("%s:%d: %s", path, no, je.text);
				want = json_dumps(x, JSON_COMPACT | JSON_PRESERVE_ORDER);
				json_decref(x);
			}
			if (!want || gl != strlen(want) || strncmp(g, want, gl) != 0) {
				/* the first difference of every case, all cases run */
				size_t u = strlen(report);
				snprintf(report + u, sizeof(report) - u,
				         "%s:%d: expected\n  %s\ngot\n  %.*s\n", path, no,
				         want ? want : "(no more instances)", (int)gl,
				         gl ? g : "(no more instances)");
				failed++;
				free(want);
				break;
			}
			free(want);
			g = ge ? ge + 1 : g + gl;
			e = ee ? ee + 1 : e + el;
		}
		free(got);
		json_decref(inst);
		json_decref(h);
		free(data);
		free(text);
		cases++;
	}
	closedir(d);
	printf("ical cases: %d, %d differ\n", cases, failed);
	assert_true(cases >= 1);
	if (failed) {
		/* printed whole: cmocka cuts long failure messages short */
		fputs(report, stdout);
		fail_msg("%d of %d cases differ (listed above)", failed, cases);
	}
}

/* --- features, each on a small feed -------------------------------------------------------- */

#define CAL(body) "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" body "END:VCALENDAR\r\n"

static void expect(const char *feed, const char *from, const char *to, const char *tz,
                   const char *want)
{
	struct warnings w = {{0}, 0};
	struct err err = {0};
	json_t *inst = expand(feed, from, to, tz, &w, &err);
	if (!inst)
		fail_msg("error: %s", err.msg);
	char *got = lines_of(inst);
	if (strcmp(got, want) != 0)
		fail_msg("expected:\n%s\ngot:\n%s\nwarnings:\n%s", want, got, w.text);
	free(got);
	json_decref(inst);
}

static void test_ical_features(void **state)
{
	/* EXDATE in UTC against a zoned DTSTART; RDATE as a PERIOD; an RDATE equal to an RRULE
	 * instance appears once */
	expect(
	    CAL("BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20240101T100000\r\n"
	        "DTEND;TZID=Europe/Berlin:20240101T110000\r\nRRULE:FREQ=DAILY;COUNT=3\r\n"
	        "EXDATE:20240102T090000Z\r\nRDATE;VALUE=PERIOD:20240110T120000Z/PT2H\r\n"
	        "RDATE;TZID=Europe/Berlin:20240103T100000\r\nSUMMARY:s\r\nEND:VEVENT\r\n"),
	    "2024-01-01", "2024-02-01", "UTC",
	    "{\"uid\":\"a\",\"recurrence_id\":\"2024-01-01T09:00:00Z\",\"start\":\"2024-01-01T09:"
	    "00:00Z\",\"end\":\"2024-01-01T10:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"s\"}\n"
	    "{\"uid\":\"a\",\"recurrence_id\":\"2024-01-03T09:00:00Z\",\"start\":\"2024-01-03T09:"
	    "00:00Z\",\"end\":\"2024-01-03T10:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"s\"}\n"
	    "{\"uid\":\"a\",\"recurrence_id\":\"2024-01-10T12:00:00Z\",\"start\":\"2024-01-10T12:"
	    "00:00Z\",\"end\":\"2024-01-10T14:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"s\"}\n");

	/* DST gap: 02:30 on 31 March does not exist in Berlin and moves forward to 03:30 CEST;
	 * the repeated hour on 27 October takes its first occurrence (CEST) */
	expect(
	    CAL("BEGIN:VEVENT\r\nUID:g\r\nDTSTART;TZID=Europe/Berlin:20240330T023000\r\n"
	        "RRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:r\r\nDTSTART;TZID=Europe/Berlin:20241027T023000\r\n"
	        "END:VEVENT\r\n"),
	    "2024-03-01", "2024-12-01", "UTC",
	    "{\"uid\":\"g\",\"recurrence_id\":\"2024-03-30T01:30:00Z\",\"start\":\"2024-03-30T01:"
	    "30:00Z\",\"end\":\"2024-03-30T01:30:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"\"}\n"
	    "{\"uid\":\"g\",\"recurrence_id\":\"2024-03-31T01:30:00Z\",\"start\":\"2024-03-31T01:"
	    "30:00Z\",\"end\":\"2024-03-31T01:30:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"\"}\n"
	    "{\"uid\":\"r\",\"recurrence_id\":null,\"start\":\"2024-10-27T00:30:00Z\",\"end\":"
	    "\"2024-10-27T00:30:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	    "\"\"}\n");

	/* a VTIMEZONE after its use, with offsets of its own (not the IANA zone's), a missing one
	 * read as the IANA zone of that name, and a Windows name */
	expect(
	    CAL("BEGIN:VEVENT\r\nUID:late\r\nDTSTART;TZID=Custom:20240601T120000\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:miss\r\nDTSTART;TZID=America/New_York:20240601T120000\r\n"
	        "END:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:win\r\nDTSTART;TZID=W. Europe Standard Time:20240601T12000"
	        "0\r\nEND:VEVENT\r\n"
	        "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
	        "TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"),
	    "2024-06-01", "2024-06-02", "UTC",
	    "{\"uid\":\"late\",\"recurrence_id\":null,\"start\":\"2024-06-01T09:00:00Z\",\"end\":"
	    "\"2024-06-01T09:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	    "\"\"}\n"
	    "{\"uid\":\"win\",\"recurrence_id\":null,\"start\":\"2024-06-01T10:00:00Z\",\"end\":"
	    "\"2024-06-01T10:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	    "\"\"}\n"
	    "{\"uid\":\"miss\",\"recurrence_id\":null,\"start\":\"2024-06-01T16:00:00Z\",\"end\":"
	    "\"2024-06-01T16:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	    "\"\"}\n");

	/* floating times: X-WR-TIMEZONE, else the caller's zone */
	const char *floating = CAL("BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20240601T120000\r\n"
	                           "DURATION:PT30M\r\nEND:VEVENT\r\n");
	expect(floating, "2024-06-01", "2024-06-02", "Asia/Tokyo",
	       "{\"uid\":\"f\",\"recurrence_id\":null,\"start\":\"2024-06-01T03:00:00Z\",\"end\":"
	       "\"2024-06-01T03:30:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	       "\"\"}\n");
	expect("BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:America/New_York\r\nBEGIN:VEVENT\r\nUID:f\r\n"
	       "DTSTART:20240601T120000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	       "2024-06-01", "2024-06-02", "UTC",
	       "{\"uid\":\"f\",\"recurrence_id\":null,\"start\":\"2024-06-01T16:00:00Z\",\"end\":"
	       "\"2024-06-01T16:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	       "\"\"}\n");

	/* all-day: DTEND exclusive, a yearly rule, the window overlap by date */
	expect(CAL("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20200229\r\n"
	           "DTEND;VALUE=DATE:20200302\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1\r\n"
	           "END:VEVENT\r\n"),
	       "2021-02-28", "2021-03-01", "UTC",
	       "{\"uid\":\"d\",\"recurrence_id\":\"2021-02-28\",\"start\":\"2021-02-28\",\"end\":"
	       "\"2021-03-02\",\"all_day\":true,\"status\":\"CONFIRMED\",\"summary\":\"\"}\n");

	/* an all-day event with a DURATION in hours (invalid for a DATE) lasts whole days, one
	 * at least */
	expect(CAL("BEGIN:VEVENT\r\nUID:h\r\nDTSTART;VALUE=DATE:20240601\r\nDURATION:PT10H\r\n"
	           "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:i\r\nDTSTART;VALUE=DATE:20240601\r\n"
	           "DURATION:P1DT10H\r\nEND:VEVENT\r\n"),
	       "2024-06-01", "2024-06-02", "UTC",
	       "{\"uid\":\"h\",\"recurrence_id\":null,\"start\":\"2024-06-01\",\"end\":"
	       "\"2024-06-02\",\"all_day\":true,\"status\":\"CONFIRMED\",\"summary\":\"\"}\n"
	       "{\"uid\":\"i\",\"recurrence_id\":null,\"start\":\"2024-06-01\",\"end\":"
	       "\"2024-06-02\",\"all_day\":true,\"status\":\"CONFIRMED\",\"summary\":\"\"}\n");

	/* all-day series named by a date-time at midnight in a zone east of UTC (as Exchange
	 * writes them): the date as written counts, not the date in UTC */
	expect(CAL("BEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:20240606\r\n"
	           "RRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE;TZID=Europe/London:20240613T000000\r\n"
	           "END:VEVENT\r\n"
	           "BEGIN:VEVENT\r\nUID:x\r\nRECURRENCE-ID;TZID=Europe/London:20240606T000000\r\n"
	           "DTSTART;VALUE=DATE:20240607\r\nSUMMARY:moved\r\nEND:VEVENT\r\n"),
	       "2024-06-01", "2024-07-01", "UTC",
	       "{\"uid\":\"x\",\"recurrence_id\":\"2024-06-06\",\"start\":\"2024-06-07\",\"end\":"
	       "\"2024-06-08\",\"all_day\":true,\"status\":\"CONFIRMED\",\"summary\":\"moved\"}\n"
	       "{\"uid\":\"x\",\"recurrence_id\":\"2024-06-20\",\"start\":\"2024-06-20\",\"end\":"
	       "\"2024-06-21\",\"all_day\":true,\"status\":\"CONFIRMED\",\"summary\":\"\"}\n");

	/* SEQUENCE: the higher one wins whatever the order; cancelled instances are kept;
	 * THISANDFUTURE moves every later instance */
	expect(
	    CAL("BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:3\r\nSUMMARY:new\r\n"
	        "DTSTART:20240101T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:1\r\nSUMMARY:old\r\n"
	        "DTSTART:20240101T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID:20240108T100000Z\r\nSTATUS:CANCELLED\r\n"
	        "DTSTART:20240108T100000Z\r\nSUMMARY:new\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20240115T100000Z\r\n"
	        "DTSTART:20240115T110000Z\r\nSUMMARY:later\r\nEND:VEVENT\r\n"),
	    "2024-01-01", "2024-02-01", "UTC",
	    "{\"uid\":\"s\",\"recurrence_id\":\"2024-01-01T10:00:00Z\",\"start\":\"2024-01-01T10:"
	    "00:00Z\",\"end\":\"2024-01-01T10:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"new\"}\n"
	    "{\"uid\":\"s\",\"recurrence_id\":\"2024-01-08T10:00:00Z\",\"start\":\"2024-01-08T10:"
	    "00:00Z\",\"end\":\"2024-01-08T10:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CANCELLED\",\"summary\":\"new\"}\n"
	    "{\"uid\":\"s\",\"recurrence_id\":\"2024-01-15T10:00:00Z\",\"start\":\"2024-01-15T11:"
	    "00:00Z\",\"end\":\"2024-01-15T11:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"later\"}\n"
	    "{\"uid\":\"s\",\"recurrence_id\":\"2024-01-22T10:00:00Z\",\"start\":\"2024-01-22T11:"
	    "00:00Z\",\"end\":\"2024-01-22T11:00:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"later\"}\n");

	/* events without UID are related to no other: two alike both count, and one with only a
	 * RECURRENCE-ID (no DTSTART, nothing to override) is left out */
	expect(CAL("BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nSUMMARY:a\r\nEND:VEVENT\r\n"
	           "BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nSUMMARY:a\r\nEND:VEVENT\r\n"
	           "BEGIN:VEVENT\r\nRECURRENCE-ID:20240101T100000Z\r\nEND:VEVENT\r\n"),
	       "2024-01-01", "2024-01-02", "UTC",
	       "{\"uid\":\"\",\"recurrence_id\":null,\"start\":\"2024-01-01T10:00:00Z\",\"end\":"
	       "\"2024-01-01T10:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	       "\"a\"}\n"
	       "{\"uid\":\"\",\"recurrence_id\":null,\"start\":\"2024-01-01T10:00:00Z\",\"end\":"
	       "\"2024-01-01T10:00:00Z\",\"all_day\":false,\"status\":\"CONFIRMED\",\"summary\":"
	       "\"a\"}\n");

	/* an override with no master that carries RDATEs is its own series; the RDATE equal to
	 * DTSTART appears once */
	expect(
	    CAL("BEGIN:VEVENT\r\nUID:n\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20240105T090000Z\r\n"
	        "DTSTART:20240105T090000Z\r\nDTEND:20240105T093000Z\r\n"
	        "RDATE;VALUE=PERIOD:20240105T090000Z/20240105T093000Z,"
	        "20240112T090000Z/20240112T093000Z\r\nEND:VEVENT\r\n"),
	    "2024-01-01", "2024-02-01", "UTC",
	    "{\"uid\":\"n\",\"recurrence_id\":\"2024-01-05T09:00:00Z\",\"start\":\"2024-01-05T09:"
	    "00:00Z\",\"end\":\"2024-01-05T09:30:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"\"}\n"
	    "{\"uid\":\"n\",\"recurrence_id\":\"2024-01-12T09:00:00Z\",\"start\":\"2024-01-12T09:"
	    "00:00Z\",\"end\":\"2024-01-12T09:30:00Z\",\"all_day\":false,\"status\":"
	    "\"CONFIRMED\",\"summary\":\"\"}\n");

	/* the other fields: organizer and attendees as emails, location, url */
	struct warnings w = {{0}, 0};
	struct err err = {0};
	json_t *inst =
	    expand(CAL("BEGIN:VEVENT\r\nUID:o\r\nDTSTART:20240101T100000Z\r\n"
	               "ORGANIZER;CN=Coach:mailto:coach@example.org\r\n"
	               "ATTENDEE:mailto:a@example.org\r\nATTENDEE:MAILTO:b@example.org\r\n"
	               "LOCATION:Room 1\r\nURL:https://example.org/s\r\nEND:VEVENT\r\n"),
	           "2024-01-01", "2024-01-02", "UTC", &w, &err);
	assert_non_null(inst);
	json_t *i0 = json_array_get(inst, 0);
	assert_string_equal(json_string_value(json_object_get(i0, "organizer")),
	                    "coach@example.org");
	assert_string_equal(json_string_value(json_array_get(json_object_get(i0, "attendees"), 1)),
	                    "b@example.org");
	assert_string_equal(json_string_value(json_object_get(i0, "location")), "Room 1");
	assert_string_equal(json_string_value(json_object_get(i0, "url")), "https://example.org/s");
	json_decref(inst);
}

/* libical's X-LIC-ERROR reported with the line; a broken event is skipped, not the feed */
static void test_ical_warnings(void **state)
{
	struct warnings w = {{0}, 0};
	struct err err = {0};
	json_t *inst = expand(CAL("BEGIN:VEVENT\r\nUID:bad\r\nDTSTART:nope\r\nEND:VEVENT\r\n"
	                          "BEGIN:VEVENT\r\nUID:ok\r\nDTSTART:20240101T100000Z\r\n"
	                          "RRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n"),
	                      "2024-01-01", "2024-01-02", "UTC", &w, &err);
	assert_non_null(inst);
	assert_int_equal(json_array_size(inst), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(inst, 0), "uid")),
	                    "ok");
	if (!strstr(w.text, "test.ics:5: VEVENT: Can't parse as DATE-TIME") ||
	    !strstr(w.text, "test.ics:3: event bad: no readable DTSTART") ||
	    !strstr(w.text, "test.ics:10: VEVENT: Can't parse as RECUR"))
		fail_msg("warnings:\n%s", w.text);
	json_decref(inst);

	/* an RDATE PERIOD of dates is no period: left out, the event keeps its one instance */
	struct warnings w2 = {{0}, 0};
	inst =
	    expand(CAL("BEGIN:VEVENT\r\nUID:p\r\nDTSTART;TZID=America/New_York:20240101T180000\r\n"
	               "RDATE;VALUE=PERIOD:20240102/20240103\r\nEND:VEVENT\r\n"),
	           "2024-01-01", "2024-02-01", "UTC", &w2, &err);
	assert_non_null(inst);
	char *got = lines_of(inst);
	assert_string_equal(
	    got, "{\"uid\":\"p\",\"recurrence_id\":null,\"start\":\"2024-01-01T23:00:00Z\","
	         "\"end\":\"2024-01-01T23:00:00Z\",\"all_day\":false,\"status\":"
	         "\"CONFIRMED\",\"summary\":\"\"}\n");
	if (!strstr(w2.text, "test.ics:3: event p: RDATE PERIOD of dates"))
		fail_msg("warnings:\n%s", w2.text);
	free(got);
	json_decref(inst);

	/* RFC 7529: a rule in another calendar or with SKIP is dropped with a warning rather
	 * than read as a plain Gregorian rule; DTSTART stays */
	struct warnings w3 = {{0}, 0};
	inst = expand(CAL("BEGIN:VEVENT\r\nUID:k\r\nDTSTART;VALUE=DATE:20240229\r\n"
	                  "RRULE:RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=FORWARD\r\nEND:VEVENT\r\n"
	                  "BEGIN:VEVENT\r\nUID:c\r\nDTSTART;VALUE=DATE:20240210\r\n"
	                  "RRULE:RSCALE=CHINESE;FREQ=YEARLY\r\nEND:VEVENT\r\n"),
	              "2024-01-01", "2027-01-01", "UTC", &w3, &err);
	assert_non_null(inst);
	assert_int_equal(json_array_size(inst), 2);
	if (!strstr(w3.text, "SKIP=FORWARD is not supported") ||
	    !strstr(w3.text, "RSCALE=CHINESE is not supported"))
		fail_msg("warnings:\n%s", w3.text);
	json_decref(inst);
}

static void expect_error(const char *data, size_t len, const char *want)
{
	struct ical_opts o = {"bad.ics", 0, 2000000000, "UTC", NULL, NULL};
	struct err err = {0};
	json_t *inst = ical_expand(data, len, &o, &err);
	if (inst)
		fail_msg("expected the error %s", want);
	if (!strstr(err.msg, want))
		fail_msg("expected %s, got %s", want, err.msg);
}

static void test_ical_bad_input(void **state)
{
	expect_error("\x00\x01\x02\x03binary", 10, "binary data");
	expect_error("hello", 5, "not an iCalendar feed");
	size_t big = 50u * 1024 * 1024;
	char *huge = malloc(big);
	memset(huge, 'A', big);
	expect_error(huge, big, "more than the 16 MiB");
	/* nesting: BEGIN:X a thousand times */
	size_t n = 0;
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(huge + n, big - n, "BEGIN:X%d\r\n", i);
	expect_error(huge, n, "nested more than 16 deep");

	/* an endlessly folded line is left out with a warning; the rest of the feed is read */
	n = (size_t)snprintf(huge, big, "BEGIN:VCALENDAR\r\nX-LONG:a");
	for (int i = 0; i < 200000; i++)
		n += (size_t)snprintf(huge + n, big - n, "\r\n bcdefghij");
	n += (size_t)snprintf(huge + n, big - n,
	                      "\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240101T100000Z\r\n"
	                      "END:VEVENT\r\nEND:VCALENDAR\r\n");
	struct warnings w = {{0}, 0};
	struct ical_opts o = {"fold.ics", 0, 2000000000, "UTC", on_warn, &w};
	struct err err = {0};
	json_t *inst = ical_expand(huge, n, &o, &err);
	assert_non_null(inst);
	assert_int_equal(json_array_size(inst), 1);
	assert_non_null(strstr(w.text, "fold.ics:2: line longer than"));
	json_decref(inst);

	/* truncated: what is complete is read */
	const char *cut = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240101T100000Z\r\n"
	                  "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:y\r\nDTSTART:2024";
	w.text[0] = '\0';
	o.feed = "cut.ics";
	inst = ical_expand(cut, strlen(cut), &o, &err);
	assert_non_null(inst);
	assert_int_equal(json_array_size(inst), 1);
	assert_non_null(strstr(w.text, "cut short"));
	json_decref(inst);

	/* a rule producing an instance every second is capped, not run to exhaustion */
	const char *flood = CAL("BEGIN:VEVENT\r\nUID:s\r\nDTSTART:20240101T000000Z\r\n"
	                        "RRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\n");
	w.text[0] = '\0';
	o.feed = "flood.ics";
	o.from = 1704067200;
	o.to = o.from + 86400;
	inst = ical_expand(flood, strlen(flood), &o, &err);
	assert_non_null(inst);
	assert_true(json_array_size(inst) <= ICAL_MAX_PER_EVENT);
	assert_non_null(strstr(w.text, "instances"));
	json_decref(inst);
	free(huge);
}

/* `cohortbridge ical expand` through the binary */
static void test_ical_cli(void **state)
{
	char dir[64];
	const char *argv[] = {"",       "ical",
	                      "expand", "tests/fixtures/ical/synthetic_weekly_overrides.ics",
	                      "--from", "2024-03-01",
	                      "--to",   "2024-03-31T12:00",
	                      "--tz",   "Europe/Berlin",
	                      NULL};
	assert_int_equal(th_run(argv, NULL, dir, sizeof(dir)), 0);
	char *out = th_read(dir, "stdout");
	char *want = slurp("tests/cases/ical/synthetic_weekly_overrides.jsonl", NULL);
	if (!strstr(want, out) || strlen(out) < 100)
		fail_msg("printed:\n%s", out);
	free(out);
	free(want);

	const char *missing[] = {"",       "ical",       "expand", "/nonexistent.ics",
	                         "--from", "2024-01-01", "--to",   "2024-02-01",
	                         NULL};
	assert_int_equal(th_run(missing, NULL, dir, sizeof(dir)), 1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "cannot open"));
	free(err);

	const char *warned[] = {
	    "",
	    "ical",
	    "expand",
	    th_write_file(0, "w.ics", CAL("BEGIN:VEVENT\r\nUID:w\r\nDTSTART:nope\r\nEND:VEVENT\r\n")),
	    "--from",
	    "2024-01-01",
	    "--to",
	    "2024-02-01",
	    NULL};
	assert_int_equal(th_run(warned, NULL, dir, sizeof(dir)), 0);
	err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "w.ics:5: warning:"));
	free(err);

	const char *help[] = {"", "ical", "--help", NULL};
	assert_int_equal(th_run(help, NULL, dir, sizeof(dir)), 0);
	out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "usage: cohortbridge ical expand FILE_OR_URL"));
	free(out);

	const char *bad[] = {"",         "ical", "expand",     "x.ics", "--from",
	                     "tomorrow", "--to", "2024-02-01", NULL};
	assert_int_equal(th_run(bad, NULL, dir, sizeof(dir)), 2);
}

GROUP(group_ical)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ical_vectors),   cmocka_unit_test(test_ical_cases),
	    cmocka_unit_test(test_ical_features),  cmocka_unit_test(test_ical_warnings),
	    cmocka_unit_test(test_ical_bad_input), cmocka_unit_test(test_ical_cli),
	};
	return RUN_GROUP(tests);
}
