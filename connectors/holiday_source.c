/* Public holidays per country and region, from a Nager.Date-style API (url with {year} and
 * {country}), an iCal holiday feed, or a local table in the python-holidays snapshot format
 * (path, or url). Only the years around now are kept (years: this one and the next by
 * default); names are allowed or denied by lists, since tables mix public holidays with
 * school breaks and observances. Each day may carry a note saying why it is kept: the feed's
 * own description, the configuration's notes, or else a summary from an encyclopedia
 * (summaries: a URL template with {title}, such as Wikipedia's REST summary), fetched once per
 * name and kept in the source's cursor in PostgreSQL with its attribution. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "connector.h"
#include "fetch.h"
#include "holidays.h"
#include "ical.h"

#define MAX_TABLE (16u * 1024 * 1024)

enum fmt { F_NAGER, F_ICAL, F_SNAPSHOT };

struct hol {
	const struct source_env *env;
	struct fetcher *f;  /* the source, with its token */
	struct fetcher *sf; /* summaries, elsewhere: without it */
	connector_done done;
	void *ud;
	enum fmt fmt;
	int year_from, year_to, year; /* year: the one being fetched (Nager) */
	char country[16], region[32];
	json_t *days;      /* gathered so far */
	json_t *summaries; /* name -> {"note", "from"}: the cursor's cache, updated */
	json_t *wanted;    /* names still to look up */
	size_t next_wanted;
};

static const char *opt(const struct hol *h, const char *key)
{
	return json_string_value(json_object_get(h->env->cfg->extra, key));
}

static void fail(struct hol *h, const struct err *err)
{
	connector_done done = h->done;
	h->done = NULL;
	json_decref(h->days);
	json_decref(h->summaries);
	json_decref(h->wanted);
	h->days = h->summaries = h->wanted = NULL;
	done(h->ud, NULL, err);
}

static void failf(struct hol *h, const char *msg)
{
	struct err e;
	err_set(&e, "%s: %s", h->env->cfg->name, msg);
	fail(h, &e);
}

/* "...{key}..." with each {key} replaced (percent-encoded) */
static void expand(const char *tpl, const char *key, const char *value, char *out, size_t size)
{
	char enc[512], pat[32];
	fetch_escape(enc, sizeof(enc), value);
	snprintf(pat, sizeof(pat), "{%s}", key);
	size_t n = 0;
	const char *p = tpl, *hit;
	out[0] = '\0';
	while ((hit = strstr(p, pat)) && n < size) {
		n += (size_t)snprintf(out + n, size - n, "%.*s%s", (int)(hit - p), p, enc);
		p = hit + strlen(pat);
	}
	if (n < size)
		snprintf(out + n, size - n, "%s", p);
}

static void next_summary(struct hol *h);
static void fetch_year(struct hol *h);

static void finish(struct hol *h)
{
	/* notes: the feed's own, else the configuration's, else a summary */
	const json_t *notes = json_object_get(h->env->cfg->extra, "notes");
	size_t i;
	json_t *d;
	json_array_foreach(h->days, i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		if (json_is_string(json_object_get(d, "note")))
			continue;
		const json_t *mine = json_object_get(notes, name);
		const json_t *sum = json_object_get(h->summaries, name);
		if (json_is_string(mine)) {
			json_object_set(d, "note", (json_t *)mine);
			json_object_set_new(d, "note_from", json_string("configuration"));
		} else if (json_is_string(json_object_get(sum, "note"))) {
			json_object_set(d, "note", json_object_get(sum, "note"));
			json_object_set(d, "note_from", json_object_get(sum, "from"));
		}
	}
	json_t *snap =
	    json_pack("{s:o, s:{s:o}}", "holidays", h->days, "cursor", "summaries", h->summaries);
	h->days = h->summaries = NULL;
	json_decref(h->wanted);
	h->wanted = NULL;
	connector_done done = h->done;
	h->done = NULL;
	done(h->ud, snap, NULL);
}

/* the years wanted, then the lists, then the notes still to look up */
static void gathered(struct hol *h)
{
	json_t *kept = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(h->days, i, d) {
		long y = strtol(json_string_value(json_object_get(d, "date")), NULL, 10);
		if (y >= h->year_from && y <= h->year_to)
			json_array_append(kept, d);
	}
	json_decref(h->days);
	h->days = kept;
	struct err e = {0};
	if (holidays_filter(h->days, json_object_get(h->env->cfg->extra, "allow"),
	                    json_object_get(h->env->cfg->extra, "deny"), &e) != 0) {
		failf(h, e.msg);
		return;
	}
	const json_t *notes = json_object_get(h->env->cfg->extra, "notes");
	h->wanted = json_array();
	if (opt(h, "summaries")) {
		json_t *seen = json_object();
		json_array_foreach(h->days, i, d) {
			const char *name = json_string_value(json_object_get(d, "name"));
			if (json_is_string(json_object_get(d, "note")) ||
			    json_object_get(notes, name) || json_object_get(h->summaries, name) ||
			    json_object_get(seen, name))
				continue;
			json_object_set_new(seen, name, json_true());
			json_array_append_new(h->wanted, json_string(name));
		}
		json_decref(seen);
	}
	h->next_wanted = 0;
	next_summary(h);
}

static void on_summary(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct hol *h = ud;
	const char *name = json_string_value(json_array_get(h->wanted, h->next_wanted - 1));
	json_t *j = NULL;
	struct err e = {0};
	if (!err)
		j = fetch_json(h->sf, resp, &e);
	if ((err && err->http_status != 404) || (!err && !j)) {
		/* a summary is a nicety: the holidays are stored without it, and it is asked for
		 * again next time */
		json_decref(j);
		next_summary(h);
		return;
	}
	const char *extract = json_string_value(json_object_get(j, "extract"));
	const char *page = json_string_value(json_object_get(
	    json_object_get(json_object_get(j, "content_urls"), "desktop"), "page"));
	char from[700];
	snprintf(from, sizeof(from), "%s%s%s", page ? page : "", page ? " " : "",
	         "(text: Wikipedia, CC BY-SA 4.0)");
	/* a name the encyclopedia does not know is remembered as such, not asked again */
	json_object_set_new(h->summaries, name,
	                    extract && *extract
	                        ? json_pack("{s:s, s:s}", "note", extract, "from", from)
	                        : json_pack("{s:n, s:n}", "note", "from"));
	json_decref(j);
	next_summary(h);
}

static void next_summary(struct hol *h)
{
	if (h->next_wanted >= json_array_size(h->wanted)) {
		finish(h);
		return;
	}
	const char *name = json_string_value(json_array_get(h->wanted, h->next_wanted++));
	char title[256], url[1024];
	snprintf(title, sizeof(title), "%s", name);
	for (char *p = title; *p; p++)
		if (*p == ' ')
			*p = '_';
	expand(opt(h, "summaries"), "title", title, url, sizeof(url));
	struct fetch_req rq = {.url = url, .expect = "json"};
	if (fetch(h->sf, &rq, on_summary, h) != 0)
		failf(h, "cannot start a request");
}

static int add(struct hol *h, json_t *days, const struct err *e)
{
	if (!days) {
		if (strncmp(e->msg, h->env->cfg->name, strlen(h->env->cfg->name)) == 0)
			fail(h, e);
		else
			failf(h, e->msg);
		return -1;
	}
	json_array_extend(h->days, days);
	json_decref(days);
	return 0;
}

static json_t *parse_ical(struct hol *h, const char *data, size_t len, struct err *err)
{
	struct tm tm = {0};
	tm.tm_year = h->year_from - 1900;
	tm.tm_mday = 1;
	struct ical_opts o = {.feed = h->env->cfg->name, .from = timegm(&tm)};
	tm.tm_year = h->year_to + 1 - 1900;
	o.to = timegm(&tm);
	json_t *all = ical_expand(data, len, &o, err);
	if (!all)
		return NULL;
	json_t *days = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(all, i, x) {
		const char *start = json_string_value(json_object_get(x, "start"));
		if (strcmp(json_string_value(json_object_get(x, "status")), "CANCELLED") == 0)
			continue;
		char date[11];
		snprintf(date, sizeof(date), "%.10s", start);
		const json_t *desc = json_object_get(x, "description");
		json_array_append_new(
		    days,
		    json_pack(
		        "{s:s, s:O, s:s?, s:s?, s:[], s:O, s:s?}", "date", date, "name",
		        json_object_get(x, "summary"), "country", h->country[0] ? h->country : NULL,
		        "region", h->region[0] ? h->region : NULL, "types", "note",
		        json_is_string(desc) && *json_string_value(desc) ? desc : json_null(),
		        "note_from",
		        json_is_string(desc) && *json_string_value(desc) ? "the feed" : NULL));
	}
	json_decref(all);
	return days;
}

static void on_document(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct hol *h = ud;
	if (err) {
		fail(h, err);
		return;
	}
	struct err e = {0};
	const char *data = resp->body ? resp->body : "";
	const char *name = h->env->cfg->name;
	json_t *days = h->fmt == F_NAGER ? holidays_parse_nager(data, resp->body_len, name,
	                                                        h->region[0] ? h->region : NULL, &e)
	               : h->fmt == F_ICAL
	                   ? parse_ical(h, data, resp->body_len, &e)
	                   : holidays_parse_snapshot(data, resp->body_len, name, h->country,
	                                             h->region[0] ? h->region : NULL, &e);
	if (add(h, days, &e) != 0)
		return;
	if (h->fmt == F_NAGER && h->year < h->year_to) {
		h->year++;
		fetch_year(h);
		return;
	}
	gathered(h);
}

static void fetch_year(struct hol *h)
{
	char y[8], step[1024], url[1024];
	snprintf(y, sizeof(y), "%d", h->year);
	expand(h->env->cfg->url, "year", y, step, sizeof(step));
	expand(step, "country", h->country, url, sizeof(url));
	struct fetch_req rq = {.url = url, .expect = "json"};
	if (fetch(h->f, &rq, on_document, h) != 0)
		failf(h, "cannot start a request");
}

static void *hol_init(const struct source_env *env, struct err *err)
{
	const struct source_cfg *cfg = env->cfg;
	struct hol *h = calloc(1, sizeof(*h));
	if (!h) {
		err_set(err, "out of memory");
		return NULL;
	}
	h->env = env;
	const char *format = json_string_value(json_object_get(cfg->extra, "format"));
	const char *where = cfg->url ? cfg->url : cfg->path ? cfg->path : "";
	size_t wl = strcspn(where, "?#");
	if (format)
		h->fmt = strcmp(format, "nager") == 0  ? F_NAGER
		         : strcmp(format, "ical") == 0 ? F_ICAL
		                                       : F_SNAPSHOT;
	else
		h->fmt = strstr(where, "{year}")                             ? F_NAGER
		         : wl > 4 && strncmp(where + wl - 4, ".ics", 4) == 0 ? F_ICAL
		                                                             : F_SNAPSHOT;
	const char *country = json_string_value(json_object_get(cfg->extra, "country"));
	const char *region = json_string_value(json_object_get(cfg->extra, "region"));
	if (country)
		snprintf(h->country, sizeof(h->country), "%s", country);
	if (region)
		snprintf(h->region, sizeof(h->region), "%s", region);
	if (!country && h->fmt == F_SNAPSHOT &&
	    holidays_snapshot_place(where, h->country, sizeof(h->country), h->region,
	                            sizeof(h->region)) != 0) {
		free(h);
		err_set(err, "a holidays table needs \"country\" (its file name does not say)");
		return NULL;
	}
	if (h->fmt == F_NAGER && !h->country[0]) {
		free(h);
		err_set(err, "a holidays source with format nager needs \"country\"");
		return NULL;
	}
	if (!(h->f = fetcher_new(env, env->token ? FETCH_AUTH_BEARER : FETCH_AUTH_NONE, NULL)) ||
	    !(h->sf = fetcher_new(env, FETCH_AUTH_NONE, NULL))) {
		fetcher_free(h->f);
		free(h);
		err_set(err, "out of memory");
		return NULL;
	}
	if (h->fmt != F_SNAPSHOT && !cfg->url) {
		fetcher_free(h->f);
		fetcher_free(h->sf);
		free(h);
		err_set(err, "a holidays source of this format needs \"url\"");
		return NULL;
	}
	return h;
}

static char *read_table(const char *path, size_t *len, struct err *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *data = NULL;
	if (!f)
		err_set(err, "%s: %s", path, strerror(errno));
	else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
		err_set(err, "%s: not a regular file", path);
	else if ((size_t)st.st_size > MAX_TABLE)
		err_set(err, "%s: larger than %u MB", path, MAX_TABLE / (1024 * 1024));
	else if (!(data = malloc((size_t)st.st_size + 1)))
		err_set(err, "out of memory");
	else if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		err_set(err, "%s: could not read the whole file", path);
		free(data);
		data = NULL;
	} else {
		data[st.st_size] = '\0';
		*len = (size_t)st.st_size;
	}
	if (f)
		fclose(f);
	return data;
}

static void hol_sync(void *c, connector_done done, void *ud)
{
	struct hol *h = c;
	const struct source_cfg *cfg = h->env->cfg;
	h->done = done;
	h->ud = ud;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	h->year_from = tm.tm_year + 1900;
	h->year_to = h->year_from + 1;
	const json_t *years = json_object_get(cfg->extra, "years");
	if (json_is_array(years) && json_array_size(years) == 2) {
		h->year_from = (int)json_integer_value(json_array_get(years, 0));
		h->year_to = (int)json_integer_value(json_array_get(years, 1));
	}
	h->days = json_array();
	json_t *cached = json_object_get(h->env->cursor, "summaries");
	h->summaries = json_is_object(cached) ? json_deep_copy(cached) : json_object();
	if (h->fmt == F_NAGER) {
		h->year = h->year_from;
		fetch_year(h);
	} else if (cfg->url) {
		struct fetch_req rq = {.url = cfg->url};
		if (fetch(h->f, &rq, on_document, h) != 0)
			failf(h, "cannot start a request");
	} else {
		struct err e = {0};
		size_t len = 0;
		char *data = read_table(cfg->path, &len, &e);
		if (!data) {
			fail(h, &e);
			return;
		}
		json_t *days = holidays_parse_snapshot(data, len, cfg->path, h->country,
		                                       h->region[0] ? h->region : NULL, &e);
		free(data);
		if (add(h, days, &e) == 0)
			gathered(h);
	}
}

static void hol_describe(void *c, char *buf, size_t size)
{
	const struct hol *h = c;
	static const char *const names[] = {"Nager.Date API", "iCal feed", "table"};
	snprintf(buf, size, "holidays (%s) for %s%s%s", names[h->fmt], h->country,
	         h->region[0] ? " " : "", h->region);
}

static void hol_free(void *c)
{
	struct hol *h = c;
	if (h) {
		fetcher_free(h->f);
		fetcher_free(h->sf);
		json_decref(h->days);
		json_decref(h->summaries);
		json_decref(h->wanted);
	}
	free(h);
}

const struct connector_ops holidays_connector = {
    .type = "holidays",
    .init = hol_init,
    .sync = hol_sync,
    .describe = hol_describe,
    .free = hol_free,
};
