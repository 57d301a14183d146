/* Schedules (frab JSON and XML, pretalx's API) and holiday tables, read from real exports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "holidays.h"
#include "schedule.h"

/* A fixture's bytes, gunzipped when it is a .gz (zlib reads plain files as they are); the
 * suite runs from the repository root. */
static char *fixture(const char *dir, const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "tests/fixtures/%s/%s", dir, name);
	gzFile f = gzopen(path, "rb");
	if (!f)
		fail_msg("fixture %s is missing (the tests run from the repository root)", path);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	int r;
	while ((r = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			char *more = realloc(buf, cap + 1);
			assert_non_null(more);
			buf = more;
		}
	}
	assert_true(r == 0);
	gzclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The slot with this id, or a failure. */
static const json_t *slot_by_id(const json_t *slots, const char *id)
{
	size_t i;
	const json_t *s;
	json_array_foreach(slots, i, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), id) == 0)
			return s;
	}
	fail_msg("no slot %s", id);
	return NULL;
}

/* got (borrowed) equals the JSON text expected. */
static void assert_json(const json_t *got, const char *expected, const char *what)
{
	json_error_t je;
	json_t *want = json_loads(expected, JSON_DECODE_ANY, &je);
	if (!want)
		fail_msg("%s: bad expectation: %s", what, je.text);
	if (!got || !json_equal(got, want)) {
		char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
		char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);
		fail_msg("%s:\n  got  %s\n  want %s", what, g ? g : "NULL", w);
	}
	json_decref(want);
}

/* Every slot has all the keys, UTC times in the one format, and ends after it starts. */
static void assert_slots_sane(const json_t *slots)
{
	static const char *const keys[] = {"id",   "title",    "start",    "end",
	                                   "room", "track",    "type",     "language",
	                                   "url",  "abstract", "speakers", "status"};
	size_t i;
	const json_t *s;
	json_array_foreach(slots, i, s) {
		assert_int_equal(json_object_size(s), sizeof(keys) / sizeof(keys[0]));
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!json_object_get(s, keys[k]))
				fail_msg("slot %zu has no %s", i, keys[k]);
		const char *a = json_string_value(json_object_get(s, "start"));
		const char *b = json_string_value(json_object_get(s, "end"));
		if (!a && !b)
			continue;
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(strlen(a), 20);
		assert_int_equal(a[19], 'Z');
		assert_true(strcmp(a, b) <= 0);
		assert_true(json_is_array(json_object_get(s, "speakers")));
	}
}

/* --- time ------------------------------------------------------------------------------- */

static void test_cal_times(void **state)
{
	static const struct {
		const char *in, *utc;
	} ok[] = {
	    {"2024-12-27T10:30:00+01:00", "2024-12-27T09:30:00Z"},
	    {"2024-12-28T00:15:00+01:00", "2024-12-27T23:15:00Z"},
	    {"2017-12-27T10:00:00Z", "2017-12-27T10:00:00Z"},
	    {"2020-02-29T23:59:59-05:00", "2020-03-01T04:59:59Z"},
	    {"2019-08-21T11:00+02:00", "2019-08-21T09:00:00Z"},
	    {"2024-06-01T12:00:00.123456+0530", "2024-06-01T06:30:00Z"},
	    {"2024-01-01 00:30:00-01", "2024-01-01T01:30:00Z"},
	    {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
	    {"1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"},
	    {"2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		long long t;
		char out[32];
		if (schedule_instant(ok[i].in, &t) < 0)
			fail_msg("%s refused", ok[i].in);
		assert_int_equal(schedule_utc(t, out, sizeof(out)), 0);
		assert_string_equal(out, ok[i].utc);
	}
	static const char *const bad[] = {
	    "",
	    "2024-12-27T10:30:00",
	    "2024-12-27",
	    "2024-13-01T00:00Z",
	    "2023-02-29T00:00Z",
	    "2024-12-27T24:00Z",
	    "2024-12-27T10:30:00+25:00",
	    "2024-12-27T10:30Zjunk",
	    "24-12-27T10:30Z",
	    "2024-12-27T10:30:00.Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long t;
		if (schedule_instant(bad[i], &t) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
	}
	long long d;
	assert_int_equal(schedule_duration("00:30", &d), 0);
	assert_int_equal(d, 1800);
	assert_int_equal(schedule_duration("12:00", &d), 0);
	assert_int_equal(d, 43200);
	assert_int_equal(schedule_duration("1:05:07", &d), 0);
	assert_int_equal(d, 3907);
	assert_int_equal(schedule_duration("100:00", &d), 0);
	assert_int_equal(d, 360000);
	assert_int_equal(schedule_duration("00:60", &d), -1);
	assert_int_equal(schedule_duration(":30", &d), -1);
	assert_int_equal(schedule_duration("01:3", &d), -1);
	assert_int_equal(schedule_duration("PT30M", &d), -1);
	char out[32];
	assert_int_equal(schedule_utc(253402300800LL, out, sizeof(out)), -1); /* year 10000 */
}

/* --- frab XML: 38C3 --------------------------------------------------------------------------- */

static void test_cal_38c3(void **state)
{
	size_t len;
	char *xml = fixture("pretalx", "eventfahrplan__schedule-38c3-20251206.xml.gz", &len);
	assert_int_equal(len, 2187176);
	struct err err = {0};
	json_t *slots = schedule_parse_frab_xml(xml, len, "schedule.xml", &err);
	if (!slots)
		fail_msg("%s", err.msg);
	assert_int_equal(json_array_size(slots), 1007);
	assert_slots_sane(slots);

	/* every guid once; every person kept (1,032 in the file) */
	size_t speakers = 0, i;
	const json_t *s;
	json_t *seen = json_object();
	json_array_foreach(slots, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));
		assert_null(json_object_get(seen, id));
		json_object_set_new(seen, id, json_true());
		speakers += json_array_size(json_object_get(s, "speakers"));
		assert_true(json_is_null(json_object_get(s, "status")));
	}
	json_decref(seen);
	assert_int_equal(speakers, 1032);

	/* 10:30 at +01:00 for 30 minutes */
	assert_json(
	    slot_by_id(slots, "270fa44c-821a-577f-8ca3-33e8d4a8c2a7"),
	    "{\"id\": \"270fa44c-821a-577f-8ca3-33e8d4a8c2a7\","
	    " \"title\": \"38C3: Opening Ceremony\","
	    " \"start\": \"2024-12-27T09:30:00Z\", \"end\": \"2024-12-27T10:00:00Z\","
	    " \"room\": \"Saal 1\", \"track\": \"CCC\", \"type\": \"Ceremony\","
	    " \"language\": \"en\","
	    " \"url\": \"https://events.ccc.de/congress/2024/hub/de/event/"
	    "38c3-opening-ceremony/\","
	    " \"abstract\": \"Glad you could make it! Take a seat and buckle up for a ride "
	    "through four days of chaotic adventures.\","
	    " \"speakers\": ["
	    "  {\"id\": \"0c16ffaa-709d-599f-959f-9a38b911361a\", \"name\": \"Gabriela Bogk\"},"
	    "  {\"id\": \"4cee1e72-681f-5c8b-8dcd-8e58c8f4a445\", \"name\": \"Senficon\"},"
	    "  {\"id\": \"721a267b-b09d-5422-8221-4f9a71cfc727\", \"name\": \"Aline "
	    "Blankertz\"}],"
	    " \"status\": null}",
	    "opening ceremony");
	/* after local midnight on the 28th: still the 27th in UTC */
	s = slot_by_id(slots, "1c8f06f9-ce0d-51bc-9bf3-0a1f71e8e484");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2024-12-27T23:15:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2024-12-27T23:55:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "language")), "de");
	/* 01:10 for 90 minutes */
	s = slot_by_id(slots, "19b141f2-0f27-5d84-9e90-0d2474d37b7e");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2024-12-28T00:10:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2024-12-28T01:40:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "title")),
	                    "Fnord-Nachrichtenr\xC3\xBC"
	                    "ckblick 2024");
	assert_int_equal(json_array_size(json_object_get(s, "speakers")), 2);
	/* entities decoded once: "Ethics, Society &amp; Politics" */
	s = slot_by_id(slots, "78910469-adfa-5c79-8529-1a9d66ef9e6a");
	assert_string_equal(json_string_value(json_object_get(s, "track")),
	                    "Ethics, Society & Politics");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2024-12-27T18:15:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2024-12-27T18:55:00Z");
	/* the last event in the file */
	s = json_array_get(slots, 1006);
	assert_string_equal(json_string_value(json_object_get(s, "id")),
	                    "9565f2e3-e371-4122-a28c-643a166b06d4");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2024-12-30T11:00:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2024-12-30T11:45:00Z");

	/* the same through the format sniffer */
	json_t *again = schedule_parse(xml, len, "schedule.xml", &err);
	assert_non_null(again);
	assert_true(json_equal(again, slots));
	json_decref(again);
	json_decref(slots);
	free(xml);
}

static void test_cal_frab_xml_errors(void **state)
{
	static const char head[] = "<?xml version=\"1.0\"?>\n<schedule>\n<day date=\"2024-12-27\">"
	                           "\n<room name=\"A\">\n";
	static const struct {
		const char *body, *want;
	} cases[] = {
	    {"<event guid=\"g1\"><title>T</title><duration>00:30</duration></event>",
	     "x.xml:5: event g1 has no <date> (the start with its UTC offset)"},
	    {"<event guid=\"g1\"><date>2024-12-27T10:00:00</date><title>T</title>"
	     "<duration>00:30</duration></event>",
	     "x.xml:5: event g1: <date> \"2024-12-27T10:00:00\" is not a date-time with a UTC "
	     "offset"},
	    {"<event id=\"7\"><date>2024-12-27T10:00:00Z</date><title>T</title>"
	     "<duration>half an hour</duration></event>",
	     "x.xml:5: event 7: <duration> \"half an hour\" is not HH:MM or HH:MM:SS"},
	    {"<event><date>2024-12-27T10:00:00Z</date></event>",
	     "x.xml:5: an <event> with neither a guid nor an id attribute"},
	    {"<event guid=\"g\"><title>a<b>bold</b></title></event>",
	     "<b> inside <title>: frab's fields hold text only"},
	    {"<event guid=\"g\"><title>a</title><title>b</title></event>",
	     "a second <title> in event g"},
	    {"<event guid=\"g\"><title>&nbsp;</title></event>",
	     "not well-formed XML: Entity 'nbsp' not defined"},
	};
	struct err err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char doc[1024];
		int n = snprintf(doc, sizeof(doc), "%s%s\n</room></day></schedule>\n", head,
		                 cases[i].body);
		memset(&err, 0, sizeof(err));
		json_t *v = schedule_parse_frab_xml(doc, (size_t)n, "x.xml", &err);
		if (v || !strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, v ? "slots" : err.msg,
			         cases[i].want);
	}
	static const struct {
		const char *doc, *want;
	} docs[] = {
	    {"", "x.xml: empty"},
	    {"<html><body>Bad gateway</body></html>",
	     "x.xml:1:6: the root element is <html>, not a frab <schedule>"},
	    {"<!DOCTYPE schedule [<!ENTITY a \"b\">]>\n<schedule/>", "x.xml:1:"},
	    {"<schedule><day>", "x.xml:1:16: not well-formed XML"},
	    {"\x1f\x8b\x08\x00", "gzip-compressed"},
	    {"<schedule a=\"1\" b=\"1\" c=\"1\" d=\"1\" e=\"1\" f=\"1\" g=\"1\" h=\"1\" i=\"1\" "
	     "j=\"1\" k=\"1\" l=\"1\" m=\"1\" n=\"1\" o=\"1\" p=\"1\" q=\"1\"/>",
	     "x.xml:1: a tag with more than 16 attributes"},
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		memset(&err, 0, sizeof(err));
		size_t n = i == 4 ? 4 : strlen(docs[i].doc);
		json_t *v = schedule_parse_frab_xml(docs[i].doc, n, "x.xml", &err);
		if (v || !strstr(err.msg, docs[i].want))
			fail_msg("doc %zu: got \"%s\", want \"%s\"", i, v ? "slots" : err.msg,
			         docs[i].want);
	}
	/* deeper than 32 elements */
	char deep[2048] = "<schedule>";
	for (int i = 0; i < 40; i++)
		strncat(deep, "<x>", sizeof(deep) - strlen(deep) - 1);
	memset(&err, 0, sizeof(err));
	assert_null(schedule_parse_frab_xml(deep, strlen(deep), "x.xml", &err));
	assert_non_null(strstr(err.msg, "nested deeper than 32 levels"));
	/* an empty schedule is no error: nothing is scheduled yet */
	json_t *none = schedule_parse_frab_xml("<schedule/>", 11, "x.xml", &err);
	assert_non_null(none);
	assert_int_equal(json_array_size(none), 0);
	json_decref(none);
}

/* Every prefix of the 38C3 file's first kilobytes, and the whole file cut in places: an error
 * each time, never slots or a crash. */
static void test_cal_truncated(void **state)
{
	size_t len;
	char *xml = fixture("pretalx", "eventfahrplan__schedule-38c3-20251206.xml.gz", &len);
	struct err err;
	for (size_t n = 0; n < 6000; n += 7) {
		memset(&err, 0, sizeof(err));
		json_t *v = schedule_parse(xml, n, "schedule.xml", &err);
		if (v)
			fail_msg("cut at %zu: slots", n);
		assert_true(err.msg[0] != '\0');
	}
	memset(&err, 0, sizeof(err));
	assert_null(schedule_parse(xml, len / 2, "schedule.xml", &err));
	assert_non_null(strstr(err.msg, "schedule.xml:"));
	assert_non_null(strstr(err.msg, "not well-formed XML"));
	free(xml);

	char *js = fixture("pretalx", "voc-schedule__pretalx-democon.json", &len);
	for (size_t n = 0; n < len; n += 97) {
		memset(&err, 0, sizeof(err));
		json_t *v = schedule_parse(js, n, "democon.json", &err);
		if (v)
			fail_msg("cut at %zu: slots", n);
		assert_non_null(strstr(err.msg, "democon.json"));
	}
	free(js);

	/* garbage */
	static const char *const junk[] = {"\xff\xfe\x00<",    "not a schedule", "[1, 2", "42",
	                                   "{\"results\": 3}", "\"text\""};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_null(schedule_parse(junk[i], i == 0 ? 4 : strlen(junk[i]), "junk", &err));
		assert_non_null(strstr(err.msg, "junk"));
	}
}

/* --- frab JSON ------------------------------------------------------------------------------ */

static void test_cal_frab_json(void **state)
{
	size_t len;
	struct err err = {0};
	char *js = fixture("pretalx", "voc-schedule__frab-camp2019.json", &len);
	json_t *slots = schedule_parse_frab_json(js, len, "camp2019.json", &err);
	if (!slots)
		fail_msg("%s", err.msg);
	assert_int_equal(json_array_size(slots), 79);
	assert_slots_sane(slots);
	assert_json(
	    json_array_get(slots, 0),
	    "{\"id\": \"a0a0fcfe-b7fb-46e3-84b6-97a5406016b4\","
	    " \"title\": \"Opening Ceremony\","
	    " \"start\": \"2019-08-21T09:00:00Z\", \"end\": \"2019-08-21T09:30:00Z\","
	    " \"room\": \"Curie\", \"track\": \"CCC\", \"type\": \"lecture\","
	    " \"language\": \"en\","
	    " \"url\": \"https://fahrplan.events.ccc.de/camp/2019/Fahrplan/events/10386.html\","
	    " \"abstract\": \"A hearty welcome me lasses and lads!\","
	    " \"speakers\": [{\"id\": \"7797\", \"name\": \"jinxx\"},"
	    "              {\"id\": \"4827\", \"name\": \"smtw\"}],"
	    " \"status\": null}",
	    "camp2019 opening");
	/* 23:00 at +02:00 for 90 minutes */
	const json_t *s = slot_by_id(slots, "ed4b6c75-14f4-49fe-a11e-3762bd6b54e3");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2019-08-22T21:00:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2019-08-22T22:30:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "room")), "Meitner");
	json_decref(slots);
	free(js);

	js = fixture("pretalx", "voc-schedule__pretalx-democon.json", &len);
	slots = schedule_parse(js, len, "democon.json", &err);
	if (!slots)
		fail_msg("%s", err.msg);
	assert_int_equal(json_array_size(slots), 36);
	assert_slots_sane(slots);
	s = json_array_get(slots, 0);
	assert_string_equal(json_string_value(json_object_get(s, "id")),
	                    "8079583e-8321-506c-95af-fd2903a5f075");
	assert_string_equal(json_string_value(json_object_get(s, "start")), "2020-12-14T08:00:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "end")), "2020-12-14T08:30:00Z");
	assert_string_equal(json_string_value(json_object_get(s, "url")),
	                    "http://localhost/democon/talk/G9JGWY/");
	/* a pretalx person: its code is its id */
	assert_json(json_object_get(s, "speakers"),
	            "[{\"id\": \"NQTF8Y\", \"name\": \"Brian "
	            "Robinson\"}]",
	            "democon speakers");
	/* logo "" and the like are not kept; an empty track would be null */
	json_decref(slots);
	free(js);
}

static void test_cal_schedule_errors(void **state)
{
	size_t len;
	struct err err = {0};
	/* c3voc's deliberately invalid example: string ids where the schema has integers */
	char *js = fixture("pretalx", "voc-schedule__invalid-example.json", &len);
	assert_null(schedule_parse(js, len, "invalid-example.json", &err));
	assert_string_equal(err.msg, "invalid-example.json:23:25: "
	                             "conference.days[0].rooms[\"Winterchaos\"][0].id is not a "
	                             "positive integer (\"2814\"): frab ids are numbers");
	free(js);

	/* a comment, in the middle of a schedule */
	js = fixture("pretalx", "commented-schedule.json", &len);
	memset(&err, 0, sizeof(err));
	assert_null(schedule_parse_frab_json(js, len, "commented-schedule.json", &err));
	assert_string_equal(err.msg,
	                    "commented-schedule.json:7:7: a comment: JSON has none (remove "
	                    "it; the exports pretalx and frab write have none)");
	free(js);
	/* and at the top, as the pretalx example has it */
	js = fixture("pretalx", "voc-schedule__pretalx-submission.json", &len);
	memset(&err, 0, sizeof(err));
	assert_null(schedule_parse(js, len, "submission.json", &err));
	assert_non_null(strstr(err.msg, "submission.json:1:1: a comment"));
	free(js);
	/* a slash inside a string is no comment: the real error is reported */
	static const char url[] = "{\"schedule\": {\"url\": \"http://x/*y\", \"conference\": [}}";
	memset(&err, 0, sizeof(err));
	assert_null(schedule_parse(url, strlen(url), "u.json", &err));
	assert_null(strstr(err.msg, "comment"));
	assert_non_null(strstr(err.msg, "u.json:1:"));

	static const struct {
		const char *doc, *want;
	} cases[] = {
	    {"{\"schedule\": {}}", "x.json:1:14: schedule.conference is missing"},
	    {"{\"schedule\": {\"conference\": {\"days\": {}}}}",
	     "x.json:1:38: conference.days is not an array"},
	    {"{\"schedule\": {\"conference\": {\"days\": [{\"rooms\": {\"A\": [\n"
	     "  {\"id\": 1, \"title\": \"T\", \"duration\": \"00:30\"}]}}]}}}",
	     "x.json:2:3: conference.days[0].rooms[\"A\"][0] has no \"date\""},
	    {"{\"schedule\": {\"conference\": {\"days\": [{\"rooms\": {\"A\": [\n"
	     "  {\"id\": 1, \"title\": \"T\", \"date\": \"2024-01-01T10:00:00+01:00\",\n"
	     "   \"duration\": \"0:3\"}]}}]}}}",
	     "x.json:3:16: conference.days[0].rooms[\"A\"][0].duration \"0:3\" is not HH:MM"},
	    {"{\"schedule\": {\"conference\": {\"days\": [{\"rooms\": {\"A\": [\n"
	     "  {\"id\": 1, \"title\": 5, \"date\": \"2024-01-01T10:00:00+01:00\"}]}}]}}}",
	     "x.json:2:22: conference.days[0].rooms[\"A\"][0].title is not a string"},
	    {"{\"schedule\": {\"conference\": {\"days\": [{\"rooms\": {\"A\": [\n"
	     "  {\"id\": 1, \"title\": \"T\", \"date\": \"2024-01-01T10:00:00+01:00\",\n"
	     "   \"duration\": \"00:30\", \"persons\": [{\"id\": 2}]}]}}]}}}",
	     "x.json:3:37: conference.days[0].rooms[\"A\"][0].persons[0] has neither \"name\" nor "
	     "\"public_name\""},
	    {"{\"schedule\": 1, \"schedule\": 2}", "x.json:1:"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		json_t *v = schedule_parse(cases[i].doc, strlen(cases[i].doc), "x.json", &err);
		if (v || !strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, v ? "slots" : err.msg,
			         cases[i].want);
	}
}

/* --- pretalx API -------------------------------------------------------------------------- */

static void test_cal_pretalx(void **state)
{
	size_t len;
	struct err err = {0};
	char *js = fixture("pretalx", "voc-schedule__pretalx-submission.json", &len);
	/* the fixture is the API documentation's example behind a comment: the object itself */
	const char *obj = strchr(js, '{');
	assert_non_null(obj);
	json_t *sub = json_loads(obj, 0, NULL);
	assert_non_null(sub);
	json_t *page = json_pack("{s:i, s:n, s:[O]}", "count", 1, "next", "results", sub);
	json_t *slots = schedule_parse_pretalx(json_object_get(page, "results"), "p", &err);
	if (!slots)
		fail_msg("%s", err.msg);
	assert_int_equal(json_array_size(slots), 1);
	assert_json(
	    json_array_get(slots, 0),
	    "{\"id\": \"ABCDE\", \"title\": \"A talk\","
	    " \"start\": \"2017-12-27T10:00:00Z\", \"end\": \"2017-12-27T10:30:00Z\","
	    " \"room\": \"R101\", \"track\": null, \"type\": \"talk\", \"language\": \"en\","
	    " \"url\": null, \"abstract\": \"A good talk.\","
	    " \"speakers\": [{\"id\": \"DEFAB\", \"name\": \"Jane\"}],"
	    " \"status\": \"confirmed\"}",
	    "pretalx submission");

	/* the page envelope through the sniffer */
	char *text = json_dumps(page, 0);
	json_t *again = schedule_parse(text, strlen(text), "page.json", &err);
	assert_non_null(again);
	assert_true(json_equal(again, slots));
	json_decref(again);
	free(text);
	json_decref(slots);
	json_decref(page);
	json_decref(sub);
	free(js);

	/* localized fields, offsets, unscheduled talks, ids in newer versions */
	json_t *results = json_loads(
	    "[{\"code\": \"K1\", \"title\": \"Zwei\", \"state\": \"accepted\","
	    "  \"submission_type\": {\"de\": \"Vortrag\", \"en\": \"Talk\"},"
	    "  \"track\": {\"de\": \"Sicherheit\"},"
	    "  \"slot\": {\"start\": \"2024-12-28T01:10:00+01:00\", \"end\": "
	    "\"2024-12-28T02:40:00+01:00\", \"room\": {\"en\": \"Saal 1\"}},"
	    "  \"speakers\": [{\"code\": \"S1\", \"name\": \"Ada\"}, \"S2\"]},"
	    " {\"code\": \"K2\", \"title\": \"Later\", \"slot\": null, \"speakers\": []},"
	    " {\"code\": \"K3\", \"title\": \"Ids\", \"track\": 4, \"submission_type\": 2,"
	    "  \"slot\": {\"start\": \"2024-01-01T10:00:00Z\", \"end\": \"2024-01-01T11:00:00Z\","
	    " \"room\": 12}}]",
	    0, NULL);
	assert_non_null(results);
	slots = schedule_parse_pretalx(results, "p", &err);
	if (!slots)
		fail_msg("%s", err.msg);
	assert_slots_sane(slots);
	assert_json(
	    slots,
	    "[{\"id\": \"K1\", \"title\": \"Zwei\", \"start\": \"2024-12-28T00:10:00Z\","
	    "  \"end\": \"2024-12-28T01:40:00Z\", \"room\": \"Saal 1\", \"track\": "
	    "\"Sicherheit\","
	    "  \"type\": \"Talk\", \"language\": null, \"url\": null, \"abstract\": null,"
	    "  \"speakers\": [{\"id\": \"S1\", \"name\": \"Ada\"}, {\"id\": \"S2\", \"name\": "
	    "null}],"
	    "  \"status\": \"accepted\"},"
	    " {\"id\": \"K2\", \"title\": \"Later\", \"start\": null, \"end\": null, \"room\": "
	    "null,"
	    "  \"track\": null, \"type\": null, \"language\": null, \"url\": null,"
	    "  \"abstract\": null, \"speakers\": [], \"status\": null},"
	    " {\"id\": \"K3\", \"title\": \"Ids\", \"start\": \"2024-01-01T10:00:00Z\","
	    "  \"end\": \"2024-01-01T11:00:00Z\", \"room\": \"12\", \"track\": \"4\", \"type\": "
	    "\"2\","
	    "  \"language\": null, \"url\": null, \"abstract\": null, \"speakers\": [],"
	    "  \"status\": null}]",
	    "pretalx variants");
	json_decref(slots);
	json_decref(results);

	static const struct {
		const char *doc, *want;
	} bad[] = {
	    {"[{\"title\": \"x\"}]", "p: results[0] has no \"code\""},
	    {"[1]", "p: results[0] is not an object"},
	    {"[{\"code\": \"A\", \"slot\": {\"start\": \"2024-01-01T10:00\", \"end\": "
	     "\"2024-01-01T11:00\"}}]",
	     "p: results[0] (A): slot start or end is not a date-time with a UTC offset"},
	    {"[{\"code\": \"A\", \"slot\": {\"start\": \"2024-01-01T10:00Z\", \"end\": "
	     "\"2024-01-01T09:00Z\"}}]",
	     "p: results[0] (A): the slot ends before it starts"},
	    {"[{\"code\": \"A\", \"slot\": 3}]", "p: results[0] (A): \"slot\" is not an object"},
	    {"[{\"code\": \"A\", \"speakers\": [3]}]",
	     "p: results[0] (A): speakers[0] is neither a code nor an object"},
	    {"{}", "p: pretalx results are not an array"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = json_loads(bad[i].doc, 0, NULL);
		assert_non_null(r);
		memset(&err, 0, sizeof(err));
		json_t *v = schedule_parse_pretalx(r, "p", &err);
		if (v || strcmp(err.msg, bad[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, v ? "slots" : err.msg,
			         bad[i].want);
		json_decref(r);
	}
}

/* --- holidays ------------------------------------------------------------------------------ */

static json_t *snapshot(const char *file, struct err *err)
{
	size_t len;
	char cc[3], region[16];
	assert_int_equal(holidays_snapshot_place(file, cc, sizeof(cc), region, sizeof(region)), 0);
	char *js = fixture("holidays", file, &len);
	json_t *h = holidays_parse_snapshot(js, len, file, cc, *region ? region : NULL, err);
	free(js);
	return h;
}

/* The names on one date, joined with "|". */
static void names_on(const json_t *list, const char *date, char *out, size_t size)
{
	size_t i, n = 0;
	const json_t *h;
	out[0] = '\0';
	json_array_foreach(list, i, h) {
		if (strcmp(json_string_value(json_object_get(h, "date")), date) != 0)
			continue;
		int w = snprintf(out + n, size - n, "%s%s", n ? "|" : "",
		                 json_string_value(json_object_get(h, "name")));
		n += w > 0 ? (size_t)w : 0;
	}
}

static void test_cal_holidays_snapshot(void **state)
{
	static const struct {
		const char *file, *cc, *region;
		size_t entries;
	} files[] = {
	    {"python-holidays-snapshot__AU_VIC.json", "AU", "AU-VIC", 1107},
	    {"python-holidays-snapshot__DE_BE.json", "DE", "DE-BE", 4150},
	    {"python-holidays-snapshot__DE_BY.json", "DE", "DE-BY", 4355},
	    {"python-holidays-snapshot__DE_COMMON.json", "DE", "", 545},
	    {"python-holidays-snapshot__GB_COMMON.json", "GB", "", 621},
	    {"python-holidays-snapshot__JP_COMMON.json", "JP", "", 1925},
	    {"python-holidays-snapshot__US_COMMON.json", "US", "", 2209},
	};
	struct err err = {0};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char cc[3], region[16];
		assert_int_equal(
		    holidays_snapshot_place(files[i].file, cc, sizeof(cc), region, sizeof(region)),
		    0);
		assert_string_equal(cc, files[i].cc);
		assert_string_equal(region, files[i].region);
		json_t *h = snapshot(files[i].file, &err);
		if (!h)
			fail_msg("%s: %s", files[i].file, err.msg);
		if (json_array_size(h) != files[i].entries)
			fail_msg("%s: %zu entries, want %zu", files[i].file, json_array_size(h),
			         files[i].entries);
		json_t *first = json_array_get(h, 0);
		assert_string_equal(json_string_value(json_object_get(first, "country")), cc);
		if (*region)
			assert_string_equal(json_string_value(json_object_get(first, "region")),
			                    region);
		else
			assert_true(json_is_null(json_object_get(first, "region")));
		assert_true(json_is_null(json_object_get(first, "note")));
		assert_int_equal(json_array_size(json_object_get(first, "types")), 0);
		json_decref(h);
	}

	/* two names on one day are two entries */
	json_t *by = snapshot("python-holidays-snapshot__DE_BY.json", &err);
	char names[256];
	names_on(by, "2024-03-29", names, sizeof(names));
	assert_string_equal(names, "Easter/Spring Break|Good Friday");
	names_on(by, "2024-05-30", names, sizeof(names));
	assert_string_equal(names, "Ascension/Whit Break|Corpus Christi");
	assert_json(json_array_get(by, 0),
	            "{\"date\": \"1991-01-01\", \"name\": \"Christmas Break\", \"country\": \"DE\","
	            " \"region\": \"DE-BY\", \"types\": [], \"note\": null}",
	            "DE_BY first");

	/* school breaks denied: the public holidays remain (785 from 1991 to 2050) */
	json_t *deny = json_pack("[s]", "* break");
	assert_int_equal(holidays_filter(by, NULL, deny, &err), 0);
	assert_int_equal(json_array_size(by), 785);
	names_on(by, "2024-03-29", names, sizeof(names));
	assert_string_equal(names, "Good Friday");
	names_on(by, "2024-01-02", names, sizeof(names));
	assert_string_equal(names, "");
	json_decref(deny);
	json_decref(by);

	/* the US table's observances denied by name */
	json_t *us = snapshot("python-holidays-snapshot__US_COMMON.json", &err);
	deny = json_pack("[s,s,s,s,s,s,s,s,s]", "Groundhog Day", "Valentine's Day", "Halloween",
	                 "Mother's Day", "Father's Day", "Saint Patrick's Day", "Election Day",
	                 "Christmas Eve*", "New Year's Eve");
	assert_int_equal(holidays_filter(us, NULL, deny, &err), 0);
	assert_int_equal(json_array_size(us), 1395);
	names_on(us, "2024-02-14", names, sizeof(names));
	assert_string_equal(names, "");
	names_on(us, "2024-01-15", names, sizeof(names));
	assert_string_equal(names,
	                    "Birthday of Martin Luther King, Jr.|Martin Luther King Jr. Day");
	/* and only the days off in lieu, by allowing them */
	json_t *allow = json_pack("[s]", "*(observed)");
	assert_int_equal(holidays_filter(us, allow, deny, &err), 0);
	assert_int_equal(json_array_size(us), 116);
	json_decref(allow);
	json_decref(deny);
	json_decref(us);

	/* errors */
	static const struct {
		const char *doc, *want;
	} bad[] = {
	    {"[]", "t.json:1:1: not a holiday table"},
	    {"{\"2024-02-30\": \"X\"}", "t.json:1:16: \"2024-02-30\" is not a YYYY-MM-DD date"},
	    {"{\n \"2024-01-01\": 1}", "t.json:2:16: the name for 2024-01-01 is not a string"},
	    {"{\"2024-01-01\": \"X\"", "t.json:1:"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		json_t *v = holidays_parse_snapshot(bad[i].doc, strlen(bad[i].doc), "t.json", "DE",
		                                    NULL, &err);
		if (v || !strstr(err.msg, bad[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, v ? "holidays" : err.msg,
			         bad[i].want);
	}
	char cc[3], region[16];
	assert_int_equal(
	    holidays_snapshot_place("holidays.json", cc, sizeof(cc), region, sizeof(region)), -1);
	assert_int_equal(
	    holidays_snapshot_place("/x/de_by.json", cc, sizeof(cc), region, sizeof(region)), -1);
}

static void test_cal_holidays_nager(void **state)
{
	size_t len;
	struct err err = {0};
	char *js = fixture("holidays", "nager-style__DE_2024.json", &len);
	json_t *all = holidays_parse_nager(js, len, "DE.json", NULL, &err);
	if (!all)
		fail_msg("%s", err.msg);
	/* 10 nationwide days, and the regional ones once per county: 40 */
	assert_int_equal(json_array_size(all), 40);
	assert_json(json_array_get(all, 0),
	            "{\"date\": \"2024-01-01\", \"name\": \"New Year's Day\", \"country\": \"DE\","
	            " \"region\": null, \"types\": [\"Public\"], \"note\": null}",
	            "new year");
	assert_json(json_array_get(all, 2),
	            "{\"date\": \"2024-01-06\", \"name\": \"Epiphany\", \"country\": \"DE\","
	            " \"region\": \"DE-BY\", \"types\": [\"Public\"], \"note\": null}",
	            "epiphany in Bavaria");
	json_decref(all);

	/* Bavaria: the nationwide days and its own */
	json_t *by = holidays_parse_nager(js, len, "DE.json", "DE-BY", &err);
	assert_non_null(by);
	assert_int_equal(json_array_size(by), 13);
	char names[256];
	names_on(by, "2024-11-01", names, sizeof(names));
	assert_string_equal(names, "All Saints' Day");
	names_on(by, "2024-10-31", names, sizeof(names));
	assert_string_equal(names, ""); /* Reformation Day is not Bavaria's */
	/* the bank-only day denied */
	json_t *deny = json_pack("[s]", "christmas eve");
	assert_int_equal(holidays_filter(by, NULL, deny, &err), 0);
	assert_int_equal(json_array_size(by), 12);
	json_decref(deny);
	json_decref(by);

	/* Berlin keeps Women's Day */
	json_t *be = holidays_parse_nager(js, len, "DE.json", "DE-BE", &err);
	names_on(be, "2024-03-08", names, sizeof(names));
	assert_string_equal(names, "International Women's Day");
	json_decref(be);
	free(js);

	static const struct {
		const char *doc, *want;
	} bad[] = {
	    {"{}", "n.json:1:1: not a list of holidays"},
	    {"[{\"date\": \"2024-1-1\", \"name\": \"X\", \"countryCode\": \"DE\"}]",
	     "n.json:1:11: [0].date is not a YYYY-MM-DD date"},
	    {"[\n{\"date\": \"2024-01-01\", \"countryCode\": \"DE\"}]",
	     "n.json:2:1: [0] (2024-01-01) has no \"name\""},
	    {"[{\"date\": \"2024-01-01\", \"name\": \"X\", \"countryCode\": \"DE\", \"types\": "
	     "\"Public\"}]",
	     "[0].types is not an array"},
	    {"[{\"date\": \"2024-01-01\", \"name\": \"X\", \"countryCode\": \"DE\", \"global\": "
	     "false, \"counties\": [\"DE-BY\", 7]}]",
	     "[0].counties[1] is not a string"},
	    {"<html>", "n.json:1:1:"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		json_t *v =
		    holidays_parse_nager(bad[i].doc, strlen(bad[i].doc), "n.json", NULL, &err);
		if (v || !strstr(err.msg, bad[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, v ? "holidays" : err.msg,
			         bad[i].want);
	}
}

static void test_cal_holidays_filter(void **state)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
	    {"Good Friday", "Good Friday", true},
	    {"good friday", "Good Friday", true},
	    {"Good", "Good Friday", false},
	    {"* Break", "Easter/Spring Break", true},
	    {"* Break", "Break", false},
	    {"*Break", "Break", true},
	    {"Easter*", "Easter Monday", true},
	    {"Easter*", "Good Friday", false},
	    {"*", "", true},
	    {"", "", true},
	    {"", "x", false},
	    {"*a*b*", "xxaxxbxx", true},
	    {"*a*b", "xxaxxbxxc", false},
	    {"**(observed)", "Christmas Day (observed)", true},
	    {"New Year's *", "New Year's Day", true},
	    {"Mari\xC3\xA4*", "Mari\xC3\xA4 Himmelfahrt", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (holidays_name_matches(cases[i].pattern, cases[i].name) != cases[i].match)
			fail_msg("\"%s\" against \"%s\": want %s", cases[i].pattern, cases[i].name,
			         cases[i].match ? "a match" : "none");

	struct err err = {0};
	json_t *h = json_pack("[{s:s}, {s:s}]", "name", "A", "name", "B");
	json_t *bad = json_pack("[s, i]", "A", 3);
	assert_int_equal(holidays_filter(h, bad, NULL, &err), -1);
	assert_string_equal(err.msg, "allow[1] is not a string (a holiday name or pattern)");
	json_t *notlist = json_string("A");
	assert_int_equal(holidays_filter(h, NULL, notlist, &err), -1);
	assert_string_equal(err.msg, "the deny list of holiday names is not an array");
	assert_int_equal(json_array_size(h), 2); /* untouched on error */
	json_t *empty = json_array();
	assert_int_equal(holidays_filter(h, empty, empty, &err), 0);
	assert_int_equal(json_array_size(h), 2);
	json_decref(empty);
	json_decref(notlist);
	json_decref(bad);
	json_decref(h);
}

GROUP(group_calendars)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cal_times),
	    cmocka_unit_test(test_cal_38c3),
	    cmocka_unit_test(test_cal_frab_xml_errors),
	    cmocka_unit_test(test_cal_truncated),
	    cmocka_unit_test(test_cal_frab_json),
	    cmocka_unit_test(test_cal_schedule_errors),
	    cmocka_unit_test(test_cal_pretalx),
	    cmocka_unit_test(test_cal_holidays_snapshot),
	    cmocka_unit_test(test_cal_holidays_nager),
	    cmocka_unit_test(test_cal_holidays_filter),
	};
	return RUN_GROUP(tests);
}
