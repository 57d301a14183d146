#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jschema.h"

struct ctx {
	const json_t *root_schema;
	const struct jdoc *doc;
	struct diags *out;
	size_t count;
};

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

static int type_matches(const char *want, const json_t *v)
{
	if (strcmp(want, "number") == 0)
		return json_is_number(v);
	if (strcmp(want, "integer") == 0)
		return json_is_integer(v) ||
		       (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
	return strcmp(want, type_name(v)) == 0;
}

static void report(struct ctx *c, struct jpos pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(struct ctx *c, struct jpos pos, const char *path, const char *fmt, ...)
{
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (*path)
		diags_add(c->out, jdoc_name(c->doc), pos, "%s: %s", path, msg);
	else
		diags_add(c->out, jdoc_name(c->doc), pos, "%s", msg);
	c->count++;
}

/* Edit distance for "did you mean" hints on unknown keys. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const json_t *resolve(struct ctx *c, const json_t *s)
{
	for (int depth = 0; depth < 16; depth++) {
		const json_t *ref = json_object_get(s, "$ref");
		if (!json_is_string(ref))
			return s;
		const char *r = json_string_value(ref);
		if (strncmp(r, "#/$defs/", 8) != 0)
			return s;
		const json_t *t = json_object_get(json_object_get(c->root_schema, "$defs"), r + 8);
		if (!t)
			return s;
		s = t;
	}
	return s;
}

static void child_path(char *buf, size_t size, const char *path, const char *key, long index)
{
	if (key)
		snprintf(buf, size, "%s%s%s", path, *path ? "." : "", key);
	else
		snprintf(buf, size, "%s[%ld]", path, index);
}

static void validate(struct ctx *c, const json_t *schema, const json_t *v, const json_t *parent,
                     const char *key, size_t index, const char *path);

static void validate_object(struct ctx *c, const json_t *s, const json_t *v, struct jpos here,
                            const char *path)
{
	const json_t *props = json_object_get(s, "properties");
	const json_t *addl = json_object_get(s, "additionalProperties");
	const json_t *req = json_object_get(s, "required");
	const char *k;
	json_t *val;
	size_t i;
	json_t *r;
	char sub[512];

	json_array_foreach(req, i, r) {
		if (json_is_string(r) && !json_object_get(v, json_string_value(r)))
			report(c, here, path, "missing required key \"%s\"", json_string_value(r));
	}
	json_object_foreach((json_t *)v, k, val) {
		const json_t *ps = props ? json_object_get(props, k) : NULL;
		child_path(sub, sizeof(sub), path, k, 0);
		if (ps) {
			validate(c, ps, val, v, k, 0, sub);
		} else if (json_is_false(addl)) {
			const char *best = NULL, *pk;
			json_t *pv;
			size_t bd = 3;
			json_object_foreach((json_t *)props, pk, pv) {
				size_t dd = distance(k, pk);
				if (dd < bd) {
					bd = dd;
					best = pk;
				}
			}
			struct jpos kp = jdoc_pos(c->doc, v, k, 0, 1);
			if (best)
				report(c, kp, path, "unknown key \"%s\" (did you mean \"%s\"?)", k,
				       best);
			else
				report(c, kp, path, "unknown key \"%s\"", k);
		} else if (json_is_object(addl)) {
			validate(c, addl, val, v, k, 0, sub);
		}
	}
}

static void validate_array(struct ctx *c, const json_t *s, const json_t *v, struct jpos here,
                           const char *path)
{
	const json_t *items = json_object_get(s, "items");
	const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
	size_t n = json_array_size(v);
	char sub[512];

	if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
		report(c, here, path, "needs at least %lld item(s), has %zu",
		       (long long)json_integer_value(mn), n);
	if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
		report(c, here, path, "allows at most %lld item(s), has %zu",
		       (long long)json_integer_value(mx), n);
	for (size_t i = 0; i < n; i++) {
		child_path(sub, sizeof(sub), path, NULL, (long)i);
		if (json_is_object(items))
			validate(c, items, json_array_get(v, i), v, NULL, i, sub);
		if (json_is_true(json_object_get(s, "uniqueItems")))
			for (size_t j = 0; j < i; j++)
				if (json_equal(json_array_get(v, i), json_array_get(v, j)))
					report(c, jdoc_pos(c->doc, v, NULL, i, 0), sub,
					       "duplicate of item %zu", j);
	}
}

static void validate_string(struct ctx *c, const json_t *s, const json_t *v, struct jpos here,
                            const char *path)
{
	const char *str = json_string_value(v);
	size_t cps = 0;
	for (const char *p = str; *p; p++)
		cps += ((unsigned char)*p & 0xC0) != 0x80;
	const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
	const json_t *pat = json_object_get(s, "pattern");

	if (json_is_integer(mn) && (json_int_t)cps < json_integer_value(mn)) {
		if (cps == 0)
			report(c, here, path, "must not be empty");
		else
			report(c, here, path, "is shorter than %lld characters",
			       (long long)json_integer_value(mn));
	}
	if (json_is_integer(mx) && (json_int_t)cps > json_integer_value(mx))
		report(c, here, path, "is longer than %lld characters",
		       (long long)json_integer_value(mx));
	if (json_is_string(pat)) {
		regex_t re;
		if (regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) == 0) {
			if (regexec(&re, str, 0, NULL, 0) != 0) {
				const json_t *hint = json_object_get(s, "patternDescription");
				if (json_is_string(hint))
					report(c, here, path, "\"%s\" is not %s", str,
					       json_string_value(hint));
				else
					report(c, here, path, "\"%s\" does not match %s", str,
					       json_string_value(pat));
			}
			regfree(&re);
		}
	}
}

static void validate(struct ctx *c, const json_t *schema, const json_t *v, const json_t *parent,
                     const char *key, size_t index, const char *path)
{
	const json_t *s = resolve(c, schema);
	struct jpos here = jdoc_pos(c->doc, parent, key, index, 0);
	const json_t *type = json_object_get(s, "type");

	if (type) {
		int ok = 0;
		char want[128] = "";
		if (json_is_string(type)) {
			ok = type_matches(json_string_value(type), v);
			snprintf(want, sizeof(want), "%s", json_string_value(type));
		} else {
			size_t i;
			json_t *t;
			json_array_foreach(type, i, t) {
				ok |= type_matches(json_string_value(t), v);
				size_t l = strlen(want);
				snprintf(want + l, sizeof(want) - l, "%s%s", i ? " or " : "",
				         json_string_value(t));
			}
		}
		if (!ok) {
			report(c, here, path, "expected %s, got %s", want, type_name(v));
			return;
		}
	}

	const json_t *en = json_object_get(s, "enum");
	if (json_is_array(en)) {
		size_t i;
		json_t *e;
		int found = 0;
		char list[400] = "";
		json_array_foreach(en, i, e) {
			found |= json_equal((json_t *)v, e);
			char *d = json_dumps(e, JSON_ENCODE_ANY);
			size_t l = strlen(list);
			if (d)
				snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", d);
			free(d);
		}
		if (!found) {
			char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			report(c, here, path, "%s is not one of %s", got ? got : "value", list);
			free(got);
		}
	}
	const json_t *cn = json_object_get(s, "const");
	if (cn && !json_equal((json_t *)v, (json_t *)cn))
		report(c, here, path, "must be %s",
		       json_is_string(cn) ? json_string_value(cn) : "the constant");

	if (json_is_number(v)) {
		const json_t *mn = json_object_get(s, "minimum"),
		             *mx = json_object_get(s, "maximum");
		double x = json_number_value(v);
		if (json_is_number(mn) && x < json_number_value(mn))
			report(c, here, path, "must be at least %g", json_number_value(mn));
		if (json_is_number(mx) && x > json_number_value(mx))
			report(c, here, path, "must be at most %g", json_number_value(mx));
	}
	if (json_is_object(v))
		validate_object(c, s, v, here, path);
	else if (json_is_array(v))
		validate_array(c, s, v, here, path);
	else if (json_is_string(v))
		validate_string(c, s, v, here, path);
}

size_t jschema_validate(const json_t *schema, const struct jdoc *doc, struct diags *out)
{
	struct ctx c = {schema, doc, out, 0};
	validate(&c, schema, jdoc_root(doc), NULL, NULL, 0, "");
	return c.count;
}

static const char *const known_keywords[] = {"type",        "properties",
                                             "required",    "additionalProperties",
                                             "items",       "enum",
                                             "const",       "minimum",
                                             "maximum",     "minLength",
                                             "maxLength",   "pattern",
                                             "minItems",    "maxItems",
                                             "uniqueItems", "$ref",
                                             "$defs",       "title",
                                             "description", "default",
                                             "examples",    "$schema",
                                             "$id",         "$comment",
                                             "format",      "patternDescription",
                                             NULL};

static int check_kw(const json_t *s, const char *path, struct err *err)
{
	const char *k;
	json_t *v;
	char sub[512];

	if (!json_is_object(s))
		return 0;
	json_object_foreach((json_t *)s, k, v) {
		int known = 0;
		for (int i = 0; known_keywords[i]; i++)
			known |= strcmp(k, known_keywords[i]) == 0;
		if (!known)
			return err_set(err, "%s: unsupported schema keyword \"%s\"", path, k);
		snprintf(sub, sizeof(sub), "%s/%s", path, k);
		if (strcmp(k, "properties") == 0 || strcmp(k, "$defs") == 0) {
			const char *pk;
			json_t *pv;
			json_object_foreach(v, pk, pv) {
				char sub2[600];
				snprintf(sub2, sizeof(sub2), "%s/%s", sub, pk);
				if (check_kw(pv, sub2, err) != 0)
					return -1;
			}
		} else if (strcmp(k, "items") == 0 || strcmp(k, "additionalProperties") == 0) {
			if (check_kw(v, sub, err) != 0)
				return -1;
		}
	}
	return 0;
}

int jschema_check_keywords(const json_t *schema, struct err *err)
{
	return check_kw(schema, "#", err);
}
