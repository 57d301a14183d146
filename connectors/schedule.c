/* Conference schedules into slots: frab JSON and XML exports and pretalx's API objects. The
 * JSON export is read with positions (jpos.c) so that a schema problem names its line and
 * column; the XML export goes through libxml2's SAX interface (xmllib.c) and becomes slots as
 * each event closes, so a 2 MB schedule never exists as a DOM. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlerror.h>

#include "jpos.h"
#include "schedule.h"
#include "xmllib.h"

#define MAX_DOC   (64u * 1024 * 1024)
#define MAX_DEPTH 32
#define MAX_ATTRS 16

/* --- time ------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(long long y, int m)
{
	static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : n[m - 1];
}

/* n decimal digits at *p as a number (p moves past them), or -1. */
static int digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

int schedule_instant(const char *s, long long *out)
{
	const char *p = s;
	int y = digits(&p, 4);
	if (y < 1 || *p++ != '-')
		return -1;
	int mo = digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -1;
	int d = digits(&p, 2);
	if (d < 1 || d > days_in_month(y, mo) || (*p != 'T' && *p != ' '))
		return -1;
	p++;
	int h = digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -1;
	int mi = digits(&p, 2), sec = 0;
	if (mi < 0 || mi > 59)
		return -1;
	if (*p == ':') {
		p++;
		/* a leap second counts as the last second of its minute */
		if ((sec = digits(&p, 2)) < 0 || sec > 60)
			return -1;
		sec = sec == 60 ? 59 : sec;
		if (*p == '.' || *p == ',') {
			p++;
			if (*p < '0' || *p > '9')
				return -1;
			while (*p >= '0' && *p <= '9')
				p++;
		}
	}
	long long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh = digits(&p, 2), om = 0;
		if (oh < 0 || oh > 18)
			return -1;
		if (*p == ':')
			p++;
		if (*p >= '0' && *p <= '9' && (om = digits(&p, 2)) < 0)
			return -1;
		if (om > 59)
			return -1;
		off = sign * (oh * 3600LL + om * 60LL);
	} else {
		return -1; /* a local time: without its offset it is no instant */
	}
	if (*p)
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec - off;
	return 0;
}

int schedule_duration(const char *s, long long *out)
{
	const char *p = s;
	long long h = 0;
	int n = 0;
	for (; *p >= '0' && *p <= '9' && n < 4; p++, n++)
		h = h * 10 + (*p - '0');
	if (n == 0 || *p++ != ':')
		return -1;
	int m = digits(&p, 2), sec = 0;
	if (m < 0 || m > 59)
		return -1;
	if (*p == ':') {
		p++;
		if ((sec = digits(&p, 2)) < 0 || sec > 59)
			return -1;
	}
	if (*p)
		return -1;
	*out = h * 3600 + m * 60 + sec;
	return 0;
}

int schedule_utc(long long t, char *out, size_t size)
{
	long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	long long rem = t - days * 86400, y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 1 || y > 9999)
		return -1;
	int w = snprintf(out, size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
	                 (int)(rem / 60 % 60), (int)(rem % 60));
	return w > 0 && (size_t)w < size ? 0 : -1;
}

/* --- slots ------------------------------------------------------------------------------ */

/* A text field: "" and absent are both null. */
static json_t *text_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* start and duration (or end) as UTC text in the slot. 0, or -1 with why. */
static int set_times(json_t *slot, long long start, long long end, const char **why)
{
	char a[32], b[32];
	if (end < start) {
		*why = "ends before it starts";
		return -1;
	}
	if (schedule_utc(start, a, sizeof(a)) < 0 || schedule_utc(end, b, sizeof(b)) < 0) {
		*why = "is outside the years 1 to 9999";
		return -1;
	}
	json_object_set_new(slot, "start", json_string(a));
	json_object_set_new(slot, "end", json_string(b));
	return 0;
}

/* A slot with every key, all null but speakers ([]). */
static json_t *slot_new(void)
{
	static const char *const keys[] = {"id",   "title",    "start", "end",
	                                   "room", "track",    "type",  "language",
	                                   "url",  "abstract", "status"};
	json_t *s = json_object();
	if (!s)
		return NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_set_new(s, keys[i], json_null());
	json_object_set_new(s, "speakers", json_array());
	return s;
}

/* --- frab JSON ------------------------------------------------------------------------- */

/* Where a member or item is, for messages: "name:line:col". */
struct jwalk {
	const struct jdoc *doc;
	const char *name;
	struct err *err;
	/* where the object being read sits (its container and key or index), for problems
	 * with the object as a whole */
	const json_t *in;
	const char *key;
	size_t index;
};

static void jat(struct jwalk *w, const json_t *in, const char *key, size_t index)
{
	w->in = in;
	w->key = key;
	w->index = index;
}

/* a problem at parent[key] (or parent[index]), with its position */
#define jfail(w, parent, key, index, ...)                                                          \
	jdoc_fail((w)->doc, (w)->err, parent, key, index, __VA_ARGS__)

/* An optional string member: its text, "" when absent or null; -1 when another type. */
static int opt_str(struct jwalk *w, const json_t *obj, const char *key, const char *path,
                   const char **out)
{
	const json_t *v = json_object_get(obj, key);
	*out = "";
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return jfail(w, obj, key, 0, "%s.%s is not a string", path, key);
	*out = json_string_value(v);
	return 0;
}

static int req_str(struct jwalk *w, const json_t *obj, const char *key, const char *path,
                   const char **out)
{
	const json_t *v = json_object_get(obj, key);
	if (!json_is_string(v)) {
		if (v)
			return jfail(w, obj, key, 0, "%s.%s is not a string", path, key);
		return jfail(w, w->in, w->key, w->index, "%s has no \"%s\"", path, key);
	}
	*out = json_string_value(v);
	return 0;
}

/* frab's ids are positive integers (the c3voc schema); as text for the slot. */
static int frab_id(struct jwalk *w, const json_t *obj, const char *path, char *out, size_t size)
{
	const json_t *v = json_object_get(obj, "id");
	out[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		char shown[64] = "";
		if (json_is_string(v))
			snprintf(shown, sizeof(shown), " (\"%.40s\")", json_string_value(v));
		return jfail(w, obj, "id", 0,
		             "%s.id is not a positive integer%s: frab ids are numbers", path,
		             shown);
	}
	snprintf(out, size, "%lld", (long long)json_integer_value(v));
	return 0;
}

static int frab_person(struct jwalk *w, const json_t *p, const char *path, json_t *speakers)
{
	if (!json_is_object(p))
		return jfail(w, w->in, w->key, w->index, "%s is not an object", path);
	char idbuf[32];
	const char *guid, *code, *name, *pub;
	if (frab_id(w, p, path, idbuf, sizeof(idbuf)) < 0 ||
	    opt_str(w, p, "guid", path, &guid) < 0 || opt_str(w, p, "code", path, &code) < 0 ||
	    opt_str(w, p, "name", path, &name) < 0 || opt_str(w, p, "public_name", path, &pub) < 0)
		return -1;
	if (!*name)
		name = pub;
	if (!*name)
		return jfail(w, w->in, w->key, w->index,
		             "%s has neither \"name\" nor \"public_name\"", path);
	const char *id = *guid ? guid : *code ? code : idbuf;
	json_t *s = json_pack("{s:o, s:s}", "id", text_or_null(id), "name", name);
	if (!s || json_array_append_new(speakers, s) < 0)
		return jfail(w, w->in, w->key, w->index, "%s: out of memory", path);
	return 0;
}

static int frab_event(struct jwalk *w, const json_t *ev, const char *room, const char *path,
                      json_t *out)
{
	if (!json_is_object(ev))
		return jfail(w, w->in, w->key, w->index, "%s is not an object", path);
	char idbuf[32];
	const char *guid, *title, *date, *dur, *eroom, *track, *type, *lang, *url, *abstract;
	if (frab_id(w, ev, path, idbuf, sizeof(idbuf)) < 0 ||
	    opt_str(w, ev, "guid", path, &guid) < 0 || req_str(w, ev, "title", path, &title) < 0 ||
	    req_str(w, ev, "date", path, &date) < 0 || req_str(w, ev, "duration", path, &dur) < 0 ||
	    opt_str(w, ev, "room", path, &eroom) < 0 || opt_str(w, ev, "track", path, &track) < 0 ||
	    opt_str(w, ev, "type", path, &type) < 0 ||
	    opt_str(w, ev, "language", path, &lang) < 0 || opt_str(w, ev, "url", path, &url) < 0 ||
	    opt_str(w, ev, "abstract", path, &abstract) < 0)
		return -1;
	if (!*guid && !*idbuf)
		return jfail(w, w->in, w->key, w->index, "%s has neither \"guid\" nor \"id\"",
		             path);
	long long start, len;
	if (schedule_instant(date, &start) < 0)
		return jfail(w, ev, "date", 0,
		             "%s.date \"%.40s\" is not a date-time with a UTC offset", path, date);
	if (schedule_duration(dur, &len) < 0)
		return jfail(w, ev, "duration", 0, "%s.duration \"%.40s\" is not HH:MM", path, dur);
	json_t *slot = slot_new();
	if (!slot)
		return jfail(w, w->in, w->key, w->index, "out of memory");
	const char *why = NULL;
	if (set_times(slot, start, start + len, &why) < 0) {
		json_decref(slot);
		return jfail(w, ev, "date", 0, "%s %s", path, why);
	}
	json_object_set_new(slot, "id", json_string(*guid ? guid : idbuf));
	json_object_set_new(slot, "title", json_string(title));
	json_object_set_new(slot, "room", text_or_null(*eroom ? eroom : room));
	json_object_set_new(slot, "track", text_or_null(track));
	json_object_set_new(slot, "type", text_or_null(type));
	json_object_set_new(slot, "language", text_or_null(lang));
	json_object_set_new(slot, "url", text_or_null(url));
	json_object_set_new(slot, "abstract", text_or_null(abstract));
	json_array_append_new(out, slot);

	const json_t *persons = json_object_get(ev, "persons");
	if (!persons || json_is_null(persons))
		return 0;
	if (!json_is_array(persons))
		return jfail(w, ev, "persons", 0, "%s.persons is not an array", path);
	size_t i;
	const json_t *p;
	json_array_foreach(persons, i, p) {
		char pp[300];
		snprintf(pp, sizeof(pp), "%s.persons[%zu]", path, i);
		jat(w, persons, NULL, i);
		if (frab_person(w, p, pp, json_object_get(slot, "speakers")) < 0)
			return -1;
	}
	return 0;
}

static int frab_day(struct jwalk *w, const json_t *day, size_t d, json_t *out)
{
	char path[64];
	snprintf(path, sizeof(path), "conference.days[%zu]", d);
	if (!json_is_object(day))
		return jfail(w, w->in, w->key, w->index, "%s is not an object", path);
	const json_t *rooms = json_object_get(day, "rooms");
	if (!json_is_object(rooms))
		return rooms ? jfail(w, day, "rooms", 0, "%s.rooms is not an object of room names",
		                     path)
		             : jfail(w, w->in, w->key, w->index, "%s has no \"rooms\"", path);
	const char *room;
	const json_t *events;
	json_object_foreach((json_t *)rooms, room, events) {
		char rp[200];
		snprintf(rp, sizeof(rp), "%s.rooms[\"%.80s\"]", path, room);
		if (!json_is_array(events))
			return jfail(w, rooms, room, 0, "%s is not an array of events", rp);
		size_t i;
		const json_t *ev;
		json_array_foreach(events, i, ev) {
			char ep[240];
			snprintf(ep, sizeof(ep), "%s[%zu]", rp, i);
			jat(w, events, NULL, i);
			if (frab_event(w, ev, room, ep, out) < 0)
				return -1;
		}
	}
	return 0;
}

static json_t *frab_json_walk(struct jwalk *w, const json_t *root)
{
	const json_t *sched = json_object_get(root, "schedule");
	if (!json_is_object(sched)) {
		if (sched)
			jfail(w, root, "schedule", 0,
			      "not a frab schedule: \"schedule\" is not an object");
		else
			jfail(w, NULL, NULL, 0,
			      "not a frab schedule: no \"schedule\" object at the top");
		return NULL;
	}
	const json_t *conf = json_object_get(sched, "conference");
	if (!json_is_object(conf)) {
		if (conf)
			jfail(w, sched, "conference", 0, "schedule.conference is not an object");
		else
			jfail(w, root, "schedule", 0, "schedule.conference is missing");
		return NULL;
	}
	const json_t *days = json_object_get(conf, "days");
	if (!json_is_array(days)) {
		if (days)
			jfail(w, conf, "days", 0, "conference.days is not an array");
		else
			jfail(w, sched, "conference", 0, "conference.days is missing");
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	const json_t *day;
	json_array_foreach(days, i, day) {
		jat(w, days, NULL, i);
		if (frab_day(w, day, i, out) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* jansson's message for a comment is "'[' or '{' expected near '/'" or the like; a comment is
 * common enough (hand-edited exports, examples copied from docs) to be named. Finds the first
 * '/' outside a string: 0 with its line and column, or -1. */
static int find_comment(const char *s, size_t len, unsigned *line, unsigned *col)
{
	bool in_str = false;
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (in_str) {
			if (ch == '\\')
				i++, c++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '/' && i + 1 < len && (s[i + 1] == '*' || s[i + 1] == '/')) {
			*line = l;
			*col = c;
			return 0;
		}
		if (ch == '\n') {
			l++;
			c = 1;
		} else if ((ch & 0xC0) != 0x80) {
			c++;
		}
	}
	return -1;
}

static const char *or_default(const char *name)
{
	return name && *name ? name : "schedule";
}

static bool gzipped(const char *data, size_t len)
{
	return len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b;
}

/* Size, compression, syntax and comments; the document with positions, or NULL with err. */
static struct jdoc *json_doc(const char *data, size_t len, const char *name, struct err *err)
{
	if (len > MAX_DOC) {
		err_set(err, "%s: %zu bytes, more than the %u MiB accepted", name, len,
		        MAX_DOC >> 20);
		return NULL;
	}
	if (gzipped(data, len)) {
		err_set(err, "%s: the data is gzip-compressed; decompress it first", name);
		return NULL;
	}
	struct err e = {0};
	struct jdoc *doc = jdoc_parse(name, data, len, &e);
	if (doc)
		return doc;
	unsigned line, col;
	if (find_comment(data, len, &line, &col) == 0)
		err_set(err,
		        "%s:%u:%u: a comment: JSON has none (remove it; the exports pretalx and "
		        "frab write have none)",
		        name, line, col);
	else
		err_set(err, "%s", e.msg);
	return NULL;
}

json_t *schedule_parse_frab_json(const char *data, size_t len, const char *name, struct err *err)
{
	name = or_default(name);
	struct jdoc *doc = json_doc(data, len, name, err);
	if (!doc)
		return NULL;
	struct jwalk w = {.doc = doc, .name = name, .err = err};
	json_t *out = frab_json_walk(&w, jdoc_root(doc));
	jdoc_free(doc);
	return out;
}

/* --- pretalx API ------------------------------------------------------------------------- */

/* A field pretalx may localize ({"en": "Talk", "de": "Vortrag"}) or, in newer versions, send
 * as an id: its text, or NULL. buf holds an id's digits. */
static const char *i18n(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (!json_is_object(v))
		return NULL;
	const json_t *en = json_object_get(v, "en");
	if (json_is_string(en))
		return json_string_value(en);
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (json_is_string(x) && *json_string_value(x))
			return json_string_value(x);
	}
	return NULL;
}

static int pretalx_one(const json_t *sub, size_t i, const char *name, json_t *out, struct err *err)
{
	if (!json_is_object(sub))
		return err_set(err, "%s: results[%zu] is not an object", name, i);
	const char *code = json_string_value(json_object_get(sub, "code"));
	if (!code || !*code)
		return err_set(err, "%s: results[%zu] has no \"code\"", name, i);
	const json_t *title = json_object_get(sub, "title");
	if (title && !json_is_string(title) && !json_is_null(title))
		return err_set(err, "%s: results[%zu] (%.20s): \"title\" is not a string", name, i,
		               code);
	json_t *slot = slot_new();
	if (!slot)
		return err_set(err, "%s: out of memory", name);
	char b1[32], b2[32], b3[32];
	json_object_set_new(slot, "id", json_string(code));
	json_object_set_new(slot, "title", text_or_null(json_string_value(title)));
	json_object_set_new(slot, "track",
	                    text_or_null(i18n(json_object_get(sub, "track"), b1, sizeof(b1))));
	json_object_set_new(
	    slot, "type",
	    text_or_null(i18n(json_object_get(sub, "submission_type"), b2, sizeof(b2))));
	json_object_set_new(
	    slot, "language",
	    text_or_null(json_string_value(json_object_get(sub, "content_locale"))));
	json_object_set_new(slot, "abstract",
	                    text_or_null(json_string_value(json_object_get(sub, "abstract"))));
	json_object_set_new(slot, "status",
	                    text_or_null(json_string_value(json_object_get(sub, "state"))));
	json_array_append_new(out, slot);

	const json_t *when = json_object_get(sub, "slot");
	if (json_is_object(when)) {
		json_object_set_new(
		    slot, "room",
		    text_or_null(i18n(json_object_get(when, "room"), b3, sizeof(b3))));
		const char *s = json_string_value(json_object_get(when, "start"));
		const char *e = json_string_value(json_object_get(when, "end"));
		long long ts, te;
		const char *why = NULL;
		if (s && e) {
			if (schedule_instant(s, &ts) < 0 || schedule_instant(e, &te) < 0)
				return err_set(
				    err,
				    "%s: results[%zu] (%.20s): slot start or end is not a "
				    "date-time with a UTC offset",
				    name, i, code);
			if (set_times(slot, ts, te, &why) < 0)
				return err_set(err, "%s: results[%zu] (%.20s): the slot %s", name,
				               i, code, why);
		}
	} else if (when && !json_is_null(when)) {
		return err_set(err, "%s: results[%zu] (%.20s): \"slot\" is not an object", name, i,
		               code);
	}

	const json_t *speakers = json_object_get(sub, "speakers");
	size_t k;
	const json_t *sp;
	json_array_foreach(speakers, k, sp) {
		const char *id = NULL, *sname = NULL;
		if (json_is_string(sp)) {
			id = json_string_value(sp); /* a speaker code only */
		} else if (json_is_object(sp)) {
			id = json_string_value(json_object_get(sp, "code"));
			sname = json_string_value(json_object_get(sp, "name"));
		} else {
			return err_set(err,
			               "%s: results[%zu] (%.20s): speakers[%zu] is neither a "
			               "code nor an object",
			               name, i, code, k);
		}
		json_t *s =
		    json_pack("{s:o, s:o}", "id", text_or_null(id), "name", text_or_null(sname));
		if (!s || json_array_append_new(json_object_get(slot, "speakers"), s) < 0)
			return err_set(err, "%s: out of memory", name);
	}
	return 0;
}

json_t *schedule_parse_pretalx(const json_t *results, const char *name, struct err *err)
{
	name = or_default(name);
	if (!json_is_array(results)) {
		err_set(err, "%s: pretalx results are not an array", name);
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	const json_t *sub;
	json_array_foreach(results, i, sub) {
		if (pretalx_one(sub, i, name, out, err) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* --- frab XML -------------------------------------------------------------------------------- */

enum field {
	F_DATE,
	F_DURATION,
	F_TITLE,
	F_ROOM,
	F_TRACK,
	F_TYPE,
	F_LANGUAGE,
	F_URL,
	F_ABSTRACT,
	F_PERSON,
	F_COUNT
};
static const char *const field_name[F_COUNT] = {"date", "duration", "title", "room",     "track",
                                                "type", "language", "url",   "abstract", "person"};

static const struct xmllib *lx; /* set before the first parse */

struct xparse {
	xmlParserCtxtPtr ctxt;
	const char *name;
	int depth;
	bool root_seen;
	char *room;      /* the enclosing <room name="..."> */
	int event_depth; /* depth of the open <event>, 0 when none */
	int event_line;
	char *guid, *id; /* the event's attributes */
	char *person_id; /* the open <person>'s guid or id attribute */
	char *text[F_COUNT];
	int capture; /* the field whose text is being read, -1 when none */
	char *buf;
	size_t len, cap;
	json_t *speakers;
	json_t *out;
	bool failed;
	char msg[480];
};

static struct xparse *xfrom(void *ud)
{
	xmlParserCtxtPtr ctxt = ud;
	struct xparse *p = ctxt->_private;
	p->ctxt = ctxt;
	return p;
}

/* The first problem wins: later ones are usually its echoes. Stops the parser. */
static void xfail_at(struct xparse *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void xfail_at(struct xparse *p, int line, int col, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	char m[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (col > 0)
		snprintf(p->msg, sizeof(p->msg), "%s:%d:%d: %s", p->name, line, col, m);
	else
		snprintf(p->msg, sizeof(p->msg), "%s:%d: %s", p->name, line, m);
	if (p->ctxt)
		lx->StopParser(p->ctxt);
}

#define XFAIL(p, ...)                                                                              \
	xfail_at((p), lx->SAX2GetLineNumber((p)->ctxt), lx->SAX2GetColumnNumber((p)->ctxt),        \
	         __VA_ARGS__)

static void x_error(void *ud, xmlErrorPtr e)
{
	struct xparse *p = xfrom(ud);
	if (!e || e->level < XML_ERR_ERROR || p->failed)
		return;
	char m[300];
	snprintf(m, sizeof(m), "%s", e->message ? e->message : "unknown error");
	size_t n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	xfail_at(p, e->line, e->int2, "not well-formed XML: %s", m);
}

static void x_doctype(void *ud, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	/* refused before its internal subset is read: no entity is ever declared */
	XFAIL(xfrom(ud), "a DOCTYPE is not accepted (schedules need none; DTDs could declare "
	                 "entities)");
}

static void x_event_reset(struct xparse *p)
{
	for (int i = 0; i < F_COUNT; i++) {
		free(p->text[i]);
		p->text[i] = NULL;
	}
	free(p->guid);
	free(p->id);
	free(p->person_id);
	p->guid = p->id = p->person_id = NULL;
	json_decref(p->speakers);
	p->speakers = NULL;
	p->event_depth = 0;
	p->capture = -1;
}

static void x_start(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                    int nns, const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs)
{
	struct xparse *p = xfrom(ud);
	const char *name = (const char *)local;
	if (p->failed)
		return;
	if (p->depth == MAX_DEPTH) {
		XFAIL(p, "elements nested deeper than %d levels", MAX_DEPTH);
		return;
	}
	p->depth++;
	if (p->depth == 1) {
		if (prefix || strcmp(name, "schedule") != 0)
			XFAIL(p, "the root element is <%s>, not a frab <schedule>", name);
		p->root_seen = true;
		return;
	}
	if (p->capture >= 0) {
		/* markup inside a text field (an abstract with <br/>, say) is not ours to read */
		XFAIL(p, "<%s> inside <%s>: frab's fields hold text only", name,
		      field_name[p->capture]);
		return;
	}
	if (!p->event_depth) {
		if (strcmp(name, "room") == 0) {
			free(p->room);
			p->room = xmllib_attr(attrs, nattrs, "name");
		} else if (strcmp(name, "event") == 0) {
			x_event_reset(p);
			p->event_depth = p->depth;
			p->event_line = lx->SAX2GetLineNumber(p->ctxt);
			p->guid = xmllib_attr(attrs, nattrs, "guid");
			p->id = xmllib_attr(attrs, nattrs, "id");
			p->speakers = json_array();
			if (!p->speakers)
				XFAIL(p, "out of memory");
		}
		return;
	}
	if (p->depth == p->event_depth + 1) {
		for (int i = 0; i < F_PERSON; i++)
			if (strcmp(name, field_name[i]) == 0) {
				if (p->text[i]) {
					XFAIL(p, "a second <%s> in event %s", name,
					      p->guid ? p->guid
					      : p->id ? p->id
					              : "");
					return;
				}
				p->capture = i;
				p->len = 0;
			}
	} else if (p->depth == p->event_depth + 2 && strcmp(name, "person") == 0) {
		free(p->person_id);
		p->person_id = xmllib_attr(attrs, nattrs, "guid");
		if (!p->person_id)
			p->person_id = xmllib_attr(attrs, nattrs, "id");
		p->capture = F_PERSON;
		p->len = 0;
	}
}

static void x_text(void *ud, const xmlChar *s, int len)
{
	struct xparse *p = xfrom(ud);
	if (p->failed || p->capture < 0)
		return;
	if (p->len + (size_t)len + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 256;
		while (cap < p->len + (size_t)len + 1)
			cap *= 2;
		char *t = realloc(p->buf, cap);
		if (!t) {
			XFAIL(p, "out of memory");
			return;
		}
		p->buf = t;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, (size_t)len);
	p->len += (size_t)len;
	p->buf[p->len] = '\0';
}

/* Text without the indentation around it (pretty-printed exports indent multi-line text). */
static char *x_trimmed(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return strndup(s, n);
}

static void x_event_end(struct xparse *p)
{
	const char *ev = p->guid ? p->guid : p->id;
	int line = p->event_line;
	if (!ev || !*ev) {
		xfail_at(p, line, 0, "an <event> with neither a guid nor an id attribute");
		return;
	}
	for (int i = F_DATE; i <= F_TITLE; i++)
		if (!p->text[i]) {
			xfail_at(p, line, 0, "event %.40s has no <%s>%s", ev, field_name[i],
			         i == F_DATE ? " (the start with its UTC offset)" : "");
			return;
		}
	long long start, len;
	if (schedule_instant(p->text[F_DATE], &start) < 0) {
		xfail_at(p, line, 0,
		         "event %.40s: <date> \"%.40s\" is not a date-time with a UTC offset", ev,
		         p->text[F_DATE]);
		return;
	}
	if (schedule_duration(p->text[F_DURATION], &len) < 0) {
		xfail_at(p, line, 0, "event %.40s: <duration> \"%.40s\" is not HH:MM or HH:MM:SS",
		         ev, p->text[F_DURATION]);
		return;
	}
	json_t *slot = slot_new();
	const char *why = NULL;
	if (!slot || set_times(slot, start, start + len, &why) < 0) {
		json_decref(slot);
		xfail_at(p, line, 0, "event %.40s %s", ev, why ? why : "out of memory");
		return;
	}
	json_object_set_new(slot, "id", json_string(ev));
	json_object_set_new(slot, "title", json_string(p->text[F_TITLE]));
	const char *room = p->text[F_ROOM] && *p->text[F_ROOM] ? p->text[F_ROOM] : p->room;
	json_object_set_new(slot, "room", text_or_null(room));
	static const struct {
		enum field f;
		const char *key;
	} rest[] = {{F_TRACK, "track"},
	            {F_TYPE, "type"},
	            {F_LANGUAGE, "language"},
	            {F_URL, "url"},
	            {F_ABSTRACT, "abstract"}};
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		json_object_set_new(slot, rest[i].key, text_or_null(p->text[rest[i].f]));
	json_object_set(slot, "speakers", p->speakers);
	if (json_array_append_new(p->out, slot) < 0)
		xfail_at(p, line, 0, "out of memory");
}

static void x_end(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	struct xparse *p = xfrom(ud);
	if (p->failed)
		return;
	if (p->capture >= 0) {
		char *t = x_trimmed(p->buf ? p->buf : "", p->len);
		int f = p->capture;
		p->capture = -1;
		if (!t) {
			XFAIL(p, "out of memory");
			return;
		}
		if (f == F_PERSON) {
			json_t *s = json_pack("{s:o, s:o}", "id", text_or_null(p->person_id),
			                      "name", text_or_null(t));
			free(t);
			if (!s || json_array_append_new(p->speakers, s) < 0)
				XFAIL(p, "out of memory or text that is not UTF-8");
		} else {
			p->text[f] = t;
		}
	} else if (p->event_depth && p->depth == p->event_depth) {
		x_event_end(p);
		x_event_reset(p);
	}
	p->depth--;
}

json_t *schedule_parse_frab_xml(const char *data, size_t len, const char *name, struct err *err)
{
	name = or_default(name);
	if (len == 0) {
		err_set(err, "%s: empty", name);
		return NULL;
	}
	if (len > MAX_DOC) {
		err_set(err, "%s: %zu bytes, more than the %u MiB accepted", name, len,
		        MAX_DOC >> 20);
		return NULL;
	}
	if (gzipped(data, len)) {
		err_set(err, "%s: the data is gzip-compressed; decompress it first", name);
		return NULL;
	}
	int crowded = xmllib_crowded_tag(data, len, MAX_ATTRS);
	if (crowded) {
		err_set(err, "%s:%d: a tag with more than %d attributes", name, crowded, MAX_ATTRS);
		return NULL;
	}
	if (!(lx = xmllib_get(err)))
		return NULL;

	struct xparse p = {.name = name, .capture = -1, .out = json_array()};
	if (!p.out) {
		err_set(err, "%s: out of memory", name);
		return NULL;
	}
	xmlSAXHandler sax = {0};
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = x_start;
	sax.endElementNs = x_end;
	sax.characters = x_text;
	sax.cdataBlock = x_text;
	sax.internalSubset = x_doctype;
	sax.serror = x_error;
	int line = 0;
	int well_formed = xmllib_sax_parse(&sax, &p, data, len, &line, err);
	json_t *out = NULL;
	if (well_formed < 0)
		; /* err is set */
	else if (p.failed)
		err_set(err, "%s", p.msg);
	else if (!well_formed || !p.root_seen || p.depth != 0)
		err_set(err, "%s:%d: not well-formed XML (cut short?)", name, line);
	else
		out = json_incref(p.out);
	x_event_reset(&p);
	free(p.room);
	free(p.buf);
	json_decref(p.out);
	return out;
}

/* --- any of them ------------------------------------------------------------------------------ */

json_t *schedule_parse(const char *data, size_t len, const char *name, struct err *err)
{
	name = or_default(name);
	size_t i = 0;
	/* a UTF-8 byte order mark, then blanks */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
		i++;
	if (i == len) {
		err_set(err, "%s: empty", name);
		return NULL;
	}
	if (data[i] == '<')
		return schedule_parse_frab_xml(data, len, name, err);
	struct jdoc *doc = json_doc(data, len, name, err);
	if (!doc)
		return NULL;
	json_t *root = jdoc_root(doc), *out = NULL;
	struct jwalk w = {.doc = doc, .name = name, .err = err};
	if (json_is_object(root) && json_object_get(root, "schedule"))
		out = frab_json_walk(&w, root);
	else if (json_is_array(root))
		out = schedule_parse_pretalx(root, name, err);
	else if (json_is_array(json_object_get(root, "results")))
		out = schedule_parse_pretalx(json_object_get(root, "results"), name, err);
	else
		err_set(err,
		        "%s: neither a frab schedule ({\"schedule\": ...}) nor pretalx results "
		        "(an array, or {\"results\": [...]})",
		        name);
	jdoc_free(doc);
	return out;
}
