/* Holiday tables: Nager.Date's JSON answers and python-holidays' snapshot files. Both are
 * read with positions (jpos.c) so a bad entry is named by line and column; the allow and
 * deny lists exist because the snapshots mix public holidays with school breaks and
 * observances and say nothing about which is which. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holidays.h"
#include "jpos.h"

#define MAX_DOC (16u * 1024 * 1024)

struct hwalk {
	const struct jdoc *doc;
	const char *name;
	struct err *err;
};

/* a problem at parent[key] (or parent[index]), with its position */
#define hfail(w, parent, key, index, ...)                                                          \
	jdoc_fail((w)->doc, (w)->err, parent, key, index, __VA_ARGS__)

/* "YYYY-MM-DD" with a real day of a real month. */
static bool is_date(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

static json_t *holiday(const char *date, const char *name, size_t name_len, const char *country,
                       const char *region, json_t *types)
{
	return json_pack("{s:s, s:s%, s:s, s:o, s:o, s:n}", "date", date, "name", name, name_len,
	                 "country", country, "region",
	                 region && *region ? json_string(region) : json_null(), "types", types,
	                 "note");
}

static struct jdoc *load(const char *data, size_t len, const char *name, struct err *err)
{
	if (len > MAX_DOC) {
		err_set(err, "%s: %zu bytes, more than the %u MiB accepted", name, len,
		        MAX_DOC >> 20);
		return NULL;
	}
	return jdoc_parse(name, data, len, err);
}

/* --- Nager.Date ------------------------------------------------------------------------------ */

static int nager_one(struct hwalk *w, const json_t *list, size_t i, const char *region, json_t *out)
{
	const json_t *h = json_array_get(list, i);
	if (!json_is_object(h))
		return hfail(w, list, NULL, i, "[%zu] is not an object", i);
	const char *date = json_string_value(json_object_get(h, "date"));
	const char *hname = json_string_value(json_object_get(h, "name"));
	const char *cc = json_string_value(json_object_get(h, "countryCode"));
	if (!is_date(date))
		return hfail(w, h, json_object_get(h, "date") ? "date" : NULL, 0,
		             "[%zu].date is not a YYYY-MM-DD date", i);
	if (!hname || !*hname)
		return hfail(w, list, NULL, i, "[%zu] (%s) has no \"name\"", i, date);
	if (!cc || !*cc)
		return hfail(w, list, NULL, i, "[%zu] (%s) has no \"countryCode\"", i, date);

	const json_t *types = json_object_get(h, "types");
	if (types && !json_is_null(types) && !json_is_array(types))
		return hfail(w, h, "types", 0, "[%zu].types is not an array", i);
	size_t k;
	const json_t *t;
	json_array_foreach(types, k, t) {
		if (!json_is_string(t))
			return hfail(w, types, NULL, k, "[%zu].types[%zu] is not a string", i, k);
	}

	const json_t *counties = json_object_get(h, "counties");
	const json_t *global = json_object_get(h, "global");
	if (counties && !json_is_null(counties) && !json_is_array(counties))
		return hfail(w, h, "counties", 0, "[%zu].counties is not an array", i);
	if (global && !json_is_boolean(global))
		return hfail(w, h, "global", 0, "[%zu].global is not true or false", i);
	/* Nationwide unless it says otherwise; a regional day without its regions is taken for
	 * nationwide rather than dropped, since the source did call it a holiday. */
	bool nationwide = !json_is_false(global) || json_array_size(counties) == 0;
	if (nationwide) {
		json_t *e = holiday(date, hname, strlen(hname), cc, NULL,
		                    types ? json_deep_copy(types) : json_array());
		if (!e || json_array_append_new(out, e) < 0)
			return hfail(w, list, NULL, i,
			             "[%zu]: out of memory or text that is not UTF-8", i);
		return 0;
	}
	const json_t *c;
	json_array_foreach(counties, k, c) {
		if (!json_is_string(c))
			return hfail(w, counties, NULL, k, "[%zu].counties[%zu] is not a string", i,
			             k);
		if (region && *region && strcmp(region, json_string_value(c)) != 0)
			continue;
		json_t *e = holiday(date, hname, strlen(hname), cc, json_string_value(c),
		                    types ? json_deep_copy(types) : json_array());
		if (!e || json_array_append_new(out, e) < 0)
			return hfail(w, list, NULL, i,
			             "[%zu]: out of memory or text that is not UTF-8", i);
	}
	return 0;
}

json_t *holidays_parse_nager(const char *data, size_t len, const char *name, const char *region,
                             struct err *err)
{
	name = name && *name ? name : "holidays";
	struct jdoc *doc = load(data, len, name, err);
	if (!doc)
		return NULL;
	struct hwalk w = {doc, name, err};
	json_t *root = jdoc_root(doc), *out = NULL;
	if (!json_is_array(root)) {
		hfail(&w, NULL, NULL, 0,
		      "not a list of holidays (Nager.Date answers with an array)");
		goto done;
	}
	out = json_array();
	for (size_t i = 0; out && i < json_array_size(root); i++)
		if (nager_one(&w, root, i, region, out) < 0) {
			json_decref(out);
			out = NULL;
		}
done:
	jdoc_free(doc);
	return out;
}

/* --- python-holidays snapshots -----------------------------------------------------------------
 */

json_t *holidays_parse_snapshot(const char *data, size_t len, const char *name, const char *country,
                                const char *region, struct err *err)
{
	name = name && *name ? name : "holidays";
	if (!country || !*country) {
		err_set(err, "%s: no country given for the table", name);
		return NULL;
	}
	struct jdoc *doc = load(data, len, name, err);
	if (!doc)
		return NULL;
	struct hwalk w = {doc, name, err};
	json_t *root = jdoc_root(doc);
	json_t *out = json_array();
	if (!json_is_object(root)) {
		hfail(&w, NULL, NULL, 0, "not a holiday table ({\"YYYY-MM-DD\": \"Name\", ...})");
		goto fail;
	}
	const char *date;
	json_t *v;
	json_object_foreach(root, date, v) {
		if (!is_date(date)) {
			hfail(&w, root, date, 0, "\"%.40s\" is not a YYYY-MM-DD date", date);
			goto fail;
		}
		if (!json_is_string(v)) {
			hfail(&w, root, date, 0, "the name for %s is not a string", date);
			goto fail;
		}
		/* python-holidays joins the names of one day with "; " */
		const char *s = json_string_value(v);
		for (;;) {
			const char *sep = strstr(s, "; ");
			size_t n = sep ? (size_t)(sep - s) : strlen(s);
			while (n && s[n - 1] == ' ')
				n--;
			if (n) {
				json_t *e = holiday(date, s, n, country, region, json_array());
				if (!e || json_array_append_new(out, e) < 0) {
					hfail(&w, root, date, 0, "out of memory");
					goto fail;
				}
			}
			if (!sep)
				break;
			s = sep + 2;
		}
	}
	jdoc_free(doc);
	return out;
fail:
	json_decref(out);
	jdoc_free(doc);
	return NULL;
}

int holidays_snapshot_place(const char *file, char *country, size_t csize, char *region,
                            size_t rsize)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	const char *tag = strstr(base, "__");
	if (tag)
		base = tag + 2;
	const char *dot = strchr(base, '.');
	size_t n = dot ? (size_t)(dot - base) : strlen(base);
	/* "CC_SUB": an ISO 3166-1 alpha-2 code, an underscore, a subdivision or COMMON */
	if (n < 4 || base[2] != '_' || base[0] < 'A' || base[0] > 'Z' || base[1] < 'A' ||
	    base[1] > 'Z' || csize < 3)
		return -1;
	for (size_t i = 3; i < n; i++)
		if (!((base[i] >= 'A' && base[i] <= 'Z') || (base[i] >= '0' && base[i] <= '9')))
			return -1;
	snprintf(country, csize, "%.2s", base);
	if (n == 9 && memcmp(base + 3, "COMMON", 6) == 0)
		snprintf(region, rsize, "%s", "");
	else if (snprintf(region, rsize, "%.2s-%.*s", base, (int)(n - 3), base + 3) >= (int)rsize)
		return -1;
	return 0;
}

/* --- allow and deny ----------------------------------------------------------------------- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool holidays_name_matches(const char *pattern, const char *name)
{
	/* the classic backtracking glob: only the last '*' seen ever needs to be retried */
	const char *p = pattern, *n = name, *star = NULL, *resume = NULL;
	while (*n) {
		if (*p == '*') {
			star = ++p;
			resume = n;
		} else if (*p && lower(*p) == lower(*n)) {
			p++;
			n++;
		} else if (star) {
			p = star;
			n = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static int check_list(const json_t *list, const char *what, struct err *err)
{
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return err_set(err, "the %s list of holiday names is not an array", what);
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			return err_set(err, "%s[%zu] is not a string (a holiday name or pattern)",
			               what, i);
	}
	return 0;
}

static bool any_match(const json_t *list, const char *name)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v) {
		if (holidays_name_matches(json_string_value(v), name))
			return true;
	}
	return false;
}

int holidays_filter(json_t *holidays, const json_t *allow, const json_t *deny, struct err *err)
{
	if (!json_is_array(holidays))
		return err_set(err, "holidays: not a list");
	if (check_list(allow, "allow", err) < 0 || check_list(deny, "deny", err) < 0)
		return -1;
	bool allow_all = json_array_size(allow) == 0;
	size_t keep = 0, n = json_array_size(holidays);
	json_t *kept = json_array();
	if (!kept)
		return err_set(err, "holidays: out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *h = json_array_get(holidays, i);
		const char *name = json_string_value(json_object_get(h, "name"));
		if (!name)
			name = "";
		if ((allow_all || any_match(allow, name)) && !any_match(deny, name)) {
			json_array_append(kept, h);
			keep++;
		}
	}
	json_array_clear(holidays);
	json_array_extend(holidays, kept);
	json_decref(kept);
	return keep == json_array_size(holidays) ? 0 : err_set(err, "holidays: out of memory");
}
