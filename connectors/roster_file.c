/* Roster files: a spreadsheet exported as CSV (RFC 4180: a header row, quoted fields with
 * embedded commas, quotes and newlines, CRLF or LF, a UTF-8 BOM; ';' or tab separators as
 * spreadsheets in many locales write them) or a JSON array of objects with the same keys.
 * Every row is a person and one membership of kind "row". The readers only: the connector
 * that fetches them is roster_source.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roster_file.h"

/* --- columns ------------------------------------------------------------------------------ */

enum col {
	C_EXTRA,
	C_ID,
	C_NAME,
	C_FIRST,
	C_LAST,
	C_EMAIL,
	C_TZ,
	C_GROUP,
	C_CITY,
	C_PROGRAM,
	C_COHORT,
	C_STATUS
};

static const struct {
	const char *name;
	enum col col;
} known[] = {
    {"id", C_ID},          {"external_id", C_ID},   {"student_id", C_ID},
    {"user_id", C_ID},     {"learner_id", C_ID},    {"name", C_NAME},
    {"full_name", C_NAME}, {"first_name", C_FIRST}, {"given_name", C_FIRST},
    {"last_name", C_LAST}, {"family_name", C_LAST}, {"surname", C_LAST},
    {"email", C_EMAIL},    {"e_mail", C_EMAIL},     {"email_address", C_EMAIL},
    {"time_zone", C_TZ},   {"timezone", C_TZ},      {"tz", C_TZ},
    {"group", C_GROUP},    {"group_id", C_GROUP},   {"section", C_GROUP},
    {"city", C_CITY},      {"program", C_PROGRAM},  {"programme", C_PROGRAM},
    {"cohort", C_COHORT},  {"status", C_STATUS},
};

/* "E-Mail Address " -> "e_mail_address" */
static void norm_key(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	while (*in == ' ' || *in == '\t')
		in++;
	for (; *in && n + 1 < cap; in++) {
		char c = *in;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (c == ' ' || c == '-' || c == '.')
			c = '_';
		out[n++] = c;
	}
	while (n && out[n - 1] == '_')
		n--;
	out[n] = '\0';
}

static enum col col_of(const char *header)
{
	char k[64];
	norm_key(header, k, sizeof(k));
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(k, known[i].name) == 0)
			return known[i].col;
	return C_EXTRA;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Turns one row (header names and values) into a person and a membership. */
static int add_row(json_t *snap, char **names, char **vals, size_t n, const char *where,
                   struct err *err)
{
	const char *v[C_STATUS + 1] = {0};
	json_t *extra = json_object();
	for (size_t i = 0; i < n; i++) {
		char *val = trim(vals[i]);
		enum col c = col_of(names[i]);
		if (c == C_EXTRA) {
			char k[64];
			norm_key(names[i], k, sizeof(k));
			if (*k && *val)
				json_object_set_new(extra, k, json_string(val));
		} else if (*val && !v[c]) {
			v[c] = val;
		}
	}
	char idbuf[320], name[512] = "", group[512] = "";
	const char *id = v[C_ID];
	if (!id && v[C_EMAIL]) {
		/* an email as the id: compared without case */
		snprintf(idbuf, sizeof(idbuf), "%s", v[C_EMAIL]);
		for (char *p = idbuf; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		id = idbuf;
	}
	if (!id) {
		json_decref(extra);
		return err_set(err, "%s: no id and no email: every row needs one", where);
	}
	if (v[C_NAME])
		snprintf(name, sizeof(name), "%s", v[C_NAME]);
	else if (v[C_FIRST] || v[C_LAST])
		snprintf(name, sizeof(name), "%s%s%s", v[C_FIRST] ? v[C_FIRST] : "",
		         v[C_FIRST] && v[C_LAST] ? " " : "", v[C_LAST] ? v[C_LAST] : "");
	if (v[C_FIRST])
		json_object_set_new(extra, "first_name", json_string(v[C_FIRST]));
	if (v[C_LAST])
		json_object_set_new(extra, "last_name", json_string(v[C_LAST]));
	if (v[C_GROUP]) {
		snprintf(group, sizeof(group), "%s", v[C_GROUP]);
	} else {
		/* city/program/cohort as far as the file has them */
		const char *parts[3] = {v[C_CITY], v[C_PROGRAM], v[C_COHORT]};
		size_t g = 0;
		for (int i = 0; i < 3; i++) {
			if (!parts[i] || g >= sizeof(group))
				continue;
			int w =
			    snprintf(group + g, sizeof(group) - g, "%s%s", g ? "/" : "", parts[i]);
			g += w > 0 ? (size_t)w : 0;
		}
		if (!g)
			snprintf(group, sizeof(group), "all");
	}
	const char *status = "active";
	if (v[C_STATUS]) {
		char s[32];
		norm_key(v[C_STATUS], s, sizeof(s));
		if (strcmp(s, "withdrawn") == 0 || strcmp(s, "dropped") == 0 ||
		    strcmp(s, "inactive") == 0 || strcmp(s, "left") == 0 ||
		    strcmp(s, "cancelled") == 0 || strcmp(s, "canceled") == 0)
			status = "withdrawn";
		else if (strcmp(s, "active") != 0 && strcmp(s, "enrolled") != 0 &&
		         strcmp(s, "yes") != 0) {
			json_decref(extra);
			return err_set(err,
			               "%s: status \"%s\" is neither active nor withdrawn (also "
			               "understood: enrolled, dropped, inactive, left, cancelled)",
			               where, v[C_STATUS]);
		}
	}
	json_t *person = json_pack("{s:s, s:o, s:o, s:o, s:o}", "id", id, "name",
	                           *name ? json_string(name) : json_null(), "email",
	                           v[C_EMAIL] ? json_string(v[C_EMAIL]) : json_null(), "time_zone",
	                           v[C_TZ] ? json_string(v[C_TZ]) : json_null(), "extra", extra);
	json_t *m = json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "person", id, "kind", "row", "group", group,
	    "group_name", group, "city", v[C_CITY] ? json_string(v[C_CITY]) : json_null(),
	    "program", v[C_PROGRAM] ? json_string(v[C_PROGRAM]) : json_null(), "cohort",
	    v[C_COHORT] ? json_string(v[C_COHORT]) : json_null(), "status", status);
	if (!person || !m) {
		json_decref(person);
		json_decref(m);
		return err_set(err, "%s: a value is not valid UTF-8", where);
	}
	json_array_append_new(json_object_get(snap, "people"), person);
	json_array_append_new(json_object_get(snap, "memberships"), m);
	return 0;
}

/* --- CSV ------------------------------------------------------------------------------------ */

struct row {
	char **f;
	size_t n, cap;
};

static int push_field(struct row *r, const char *s, size_t len)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		char **f = realloc(r->f, cap * sizeof(*f));
		if (!f)
			return -1;
		r->f = f;
		r->cap = cap;
	}
	char *v = malloc(len + 1);
	if (!v)
		return -1;
	memcpy(v, s, len);
	v[len] = '\0';
	r->f[r->n++] = v;
	return 0;
}

static void clear_row(struct row *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i]);
	r->n = 0;
}

/* Reads one record starting at *pp (which moves past it). *line counts physical lines.
 * Returns 1 with a record, 0 at the end, -1 on error. */
static int csv_record(const char **pp, const char *end, char sep, struct row *r, unsigned *line,
                      const char *file, struct err *err)
{
	const char *p = *pp;
	char *buf = NULL;
	size_t blen = 0, bcap = 0;
	int rc = -1;
	clear_row(r);
	if (p >= end)
		return 0;
	unsigned start_line = *line;
	for (;;) {
		blen = 0;
		if (p < end && *p == '"') {
			p++;
			for (;;) {
				if (p >= end) {
					err_set(err,
					        "%s:%u: a quoted field is not closed (it starts on "
					        "this "
					        "line)",
					        file, start_line);
					goto out;
				}
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"') {
						p += 2;
						if (blen + 1 > bcap) {
							bcap = bcap ? bcap * 2 : 256;
							char *nb = realloc(buf, bcap);
							if (!nb)
								goto oom;
							buf = nb;
						}
						buf[blen++] = '"';
						continue;
					}
					p++;
					break;
				}
				if (*p == '\n')
					(*line)++;
				if (blen + 1 > bcap) {
					bcap = bcap ? bcap * 2 : 256;
					char *nb = realloc(buf, bcap);
					if (!nb)
						goto oom;
					buf = nb;
				}
				buf[blen++] = *p++;
			}
			if (p < end && *p != sep && *p != '\n' && *p != '\r') {
				err_set(err, "%s:%u: text after a quoted field's closing quote",
				        file, *line);
				goto out;
			}
			if (push_field(r, buf ? buf : "", blen) != 0)
				goto oom;
		} else {
			const char *s = p;
			while (p < end && *p != sep && *p != '\n' && *p != '\r') {
				if (*p == '"') {
					err_set(err,
					        "%s:%u: a quote inside an unquoted field (quote "
					        "the whole "
					        "field and double the quote)",
					        file, *line);
					goto out;
				}
				p++;
			}
			if (push_field(r, s, (size_t)(p - s)) != 0)
				goto oom;
		}
		if (p < end && *p == sep) {
			p++;
			continue;
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			p++;
		(*line)++;
		break;
	}
	*pp = p;
	rc = 1;
	goto out;
oom:
	err_set(err, "out of memory");
out:
	free(buf);
	return rc;
}

static int blank(const struct row *r)
{
	return r->n == 1 && !*trim(r->f[0]);
}

int roster_parse_csv(const char *data, size_t len, const char *file, json_t *snap, struct err *err)
{
	const char *p = data, *end = data + len;
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	/* the separator: the header's first of , ; tab */
	char sep = ',';
	for (const char *q = p; q < end && *q != '\n'; q++)
		if (*q == ',' || *q == ';' || *q == '\t') {
			sep = *q;
			break;
		}
	struct row head = {0}, r = {0};
	unsigned line = 1;
	int rc = csv_record(&p, end, sep, &head, &line, file, err);
	if (rc == 0)
		rc = err_set(err, "%s: the file is empty: a header row is needed", file);
	if (rc < 0)
		goto out;
	int ids = 0;
	for (size_t i = 0; i < head.n; i++) {
		enum col c = col_of(head.f[i]);
		ids |= c == C_ID || c == C_EMAIL;
	}
	if (!ids) {
		rc = err_set(err,
		             "%s:1: the header names no id or email column (found: %zu columns; "
		             "id, student_id, email ... are understood)",
		             file, head.n);
		goto out;
	}
	for (;;) {
		unsigned at = line;
		rc = csv_record(&p, end, sep, &r, &line, file, err);
		if (rc <= 0)
			break;
		if (blank(&r))
			continue;
		if (r.n != head.n) {
			rc = err_set(err, "%s:%u: %zu fields where the header has %zu", file, at,
			             r.n, head.n);
			break;
		}
		char where[300];
		snprintf(where, sizeof(where), "%s:%u", file, at);
		if ((rc = add_row(snap, head.f, r.f, r.n, where, err)) != 0)
			break;
	}
out:
	clear_row(&head);
	clear_row(&r);
	free(head.f);
	free(r.f);
	return rc < 0 ? -1 : 0;
}

/* --- JSON ----------------------------------------------------------------------------------- */

int roster_parse_json(const char *data, size_t len, const char *file, json_t *snap, struct err *err)
{
	json_error_t je;
	json_t *root = json_loadb(data, len, 0, &je);
	if (!root)
		return err_set(err, "%s:%d:%d: %s", file, je.line, je.column, je.text);
	json_t *rows = json_is_array(root) ? root : json_object_get(root, "rows");
	int rc = 0;
	if (!json_is_array(rows)) {
		rc = err_set(err, "%s: expected an array of rows (or {\"rows\": [...]})", file);
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(rows, i, o) {
		char where[300];
		snprintf(where, sizeof(where), "%s: row %zu", file, i + 1);
		if (!json_is_object(o)) {
			rc = err_set(err, "%s: not an object", where);
			break;
		}
		size_t n = json_object_size(o), k = 0;
		char **names = calloc(n + 1, sizeof(char *)),
		     **vals = calloc(n + 1, sizeof(char *));
		const char *key;
		json_t *v;
		json_object_foreach(o, key, v) {
			char num[64];
			const char *s = json_is_string(v) ? json_string_value(v) : NULL;
			if (json_is_integer(v)) {
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				         json_integer_value(v));
				s = num;
			} else if (json_is_boolean(v)) {
				s = json_is_true(v) ? "yes" : "no";
			}
			if (!s && !json_is_null(v)) {
				rc = err_set(err, "%s: \"%s\" must be a string or a number", where,
				             key);
				break;
			}
			if (names && vals) {
				names[k] = strdup(key);
				vals[k] = strdup(s ? s : "");
				k++;
			}
		}
		if (!rc && (!names || !vals))
			rc = err_set(err, "out of memory");
		if (!rc)
			rc = add_row(snap, names, vals, k, where, err);
		for (size_t m = 0; m < k; m++) {
			free(names[m]);
			free(vals[m]);
		}
		free(names);
		free(vals);
		if (rc)
			break;
	}
out:
	json_decref(root);
	return rc;
}

/* --- snapshots ------------------------------------------------------------------------------ */

uint64_t roster_fingerprint(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

json_t *roster_snapshot(const char *data, size_t len, const char *file, struct err *err)
{
	const char *dot = strrchr(file, '.');
	return roster_snapshot_as(data, len, file, dot ? (strcmp(dot, ".json") == 0 ? 2 : 1) : 0,
	                          err);
}

json_t *roster_snapshot_as(const char *data, size_t len, const char *file, int format,
                           struct err *err)
{
	json_t *snap = json_pack("{s:[], s:[]}", "people", "memberships");
	const char *p = data;
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (p < data + len && strchr(" \t\r\n", *p))
		p++;
	int json = format ? format == 2 : (p < data + len && (*p == '[' || *p == '{'));
	int rc = json ? roster_parse_json(p, len - (size_t)(p - data), file, snap, err)
	              : roster_parse_csv(data, len, file, snap, err);
	if (rc != 0) {
		json_decref(snap);
		return NULL;
	}
	char fp[32];
	snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)roster_fingerprint(data, len));
	json_object_set_new(snap, "cursor", json_pack("{s:s}", "fingerprint", fp));
	return snap;
}
