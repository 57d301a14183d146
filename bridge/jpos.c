#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* closing brackets find their parent in O(1), not by scanning back */
#include <jsmn.h>

#include "jpos.h"

struct jentry {
	const json_t *parent; /* NULL for the root */
	const char *key;      /* borrowed from the jansson object; NULL in arrays */
	size_t index;
	struct jpos key_pos, val_pos;
};

struct jdoc {
	char *name;
	json_t *root;
	struct jentry *ents;
	size_t n, cap;
	/* position cursor: offsets only move forward as we walk the tokens in order */
	const char *text;
	size_t off;
	struct jpos cur;
};

static struct jpos pos_at(struct jdoc *d, size_t off)
{
	while (d->off < off) {
		unsigned char c = (unsigned char)d->text[d->off++];
		if (c == '\n') {
			d->cur.line++;
			d->cur.col = 1;
		} else if ((c & 0xC0) != 0x80) {
			d->cur.col++;
		}
	}
	return d->cur;
}

static int add_entry(struct jdoc *d, const json_t *parent, const char *key, size_t index,
                     struct jpos kp, struct jpos vp)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct jentry *e = realloc(d->ents, cap * sizeof(*e));
		if (!e)
			return -1;
		d->ents = e;
		d->cap = cap;
	}
	d->ents[d->n++] = (struct jentry){parent, key, index, kp, vp};
	return 0;
}

/* Walks token t (holding value v); returns the index of the token after it, or -1. */
static int walk(struct jdoc *d, const jsmntok_t *tok, int ntok, int t, const json_t *v)
{
	if (t >= ntok)
		return -1;
	if (tok[t].type == JSMN_OBJECT) {
		if (!json_is_object(v))
			return -1;
		void *it = json_object_iter((json_t *)v);
		int next = t + 1;
		for (int i = 0; i < tok[t].size; i++) {
			if (!it || next >= ntok)
				return -1;
			const char *key = json_object_iter_key(it);
			json_t *child = json_object_iter_value(it);
			/* A string token's start is just past its opening quote. */
			struct jpos kp = pos_at(d, (size_t)tok[next].start - 1);
			int vt = next + 1;
			if (vt >= ntok)
				return -1;
			size_t vstart =
			    (size_t)tok[vt].start - (tok[vt].type == JSMN_STRING ? 1 : 0);
			struct jpos vp = pos_at(d, vstart);
			if (add_entry(d, v, key, 0, kp, vp) != 0)
				return -1;
			next = walk(d, tok, ntok, vt, child);
			if (next < 0)
				return -1;
			it = json_object_iter_next((json_t *)v, it);
		}
		return next;
	}
	if (tok[t].type == JSMN_ARRAY) {
		if (!json_is_array(v))
			return -1;
		int next = t + 1;
		for (int i = 0; i < tok[t].size; i++) {
			if (next >= ntok)
				return -1;
			size_t vstart =
			    (size_t)tok[next].start - (tok[next].type == JSMN_STRING ? 1 : 0);
			struct jpos vp = pos_at(d, vstart);
			if (add_entry(d, v, NULL, (size_t)i, vp, vp) != 0)
				return -1;
			next = walk(d, tok, ntok, next, json_array_get(v, (size_t)i));
			if (next < 0)
				return -1;
		}
		return next;
	}
	return t + 1;
}

struct jdoc *jdoc_parse(const char *name, const char *text, size_t len, struct err *err)
{
	json_error_t jerr;
	jsmn_parser p;
	jsmntok_t *tok = NULL;
	struct jdoc *d = calloc(1, sizeof(*d));

	if (!d || !(d->name = strdup(name ? name : "<input>"))) {
		free(d);
		err_set(err, "out of memory");
		return NULL;
	}
	d->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!d->root) {
		err_set(err, "%s:%d:%d: %s", d->name, jerr.line < 1 ? 1 : jerr.line,
		        jerr.column < 1 ? 1 : jerr.column, jerr.text);
		goto fail;
	}
	jsmn_init(&p);
	int ntok = jsmn_parse(&p, text, len, NULL, 0);
	if (ntok < 1) {
		err_set(err, "%s:1:1: cannot tokenize JSON (error %d)", d->name, ntok);
		goto fail;
	}
	tok = calloc((size_t)ntok, sizeof(*tok));
	if (!tok) {
		err_set(err, "out of memory");
		goto fail;
	}
	jsmn_init(&p);
	if (jsmn_parse(&p, text, len, tok, (unsigned)ntok) != ntok) {
		err_set(err, "%s:1:1: cannot tokenize JSON", d->name);
		goto fail;
	}
	d->text = text;
	d->cur = (struct jpos){1, 1};
	size_t rstart = (size_t)tok[0].start - (tok[0].type == JSMN_STRING ? 1 : 0);
	struct jpos rp = pos_at(d, rstart);
	if (add_entry(d, NULL, NULL, 0, rp, rp) != 0 || walk(d, tok, ntok, 0, d->root) < 0) {
		err_set(err, "%s:1:1: internal error matching JSON positions", d->name);
		goto fail;
	}
	d->text = NULL;
	free(tok);
	return d;
fail:
	free(tok);
	jdoc_free(d);
	return NULL;
}

struct jdoc *jdoc_load(const char *path, struct err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		err_set(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > 64u * 1024 * 1024) {
				err_set(err, "%s: file larger than 64 MiB", path);
				goto fail;
			}
			char *g = realloc(buf, cap);
			if (!g) {
				err_set(err, "out of memory");
				goto fail;
			}
			buf = g;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		err_set(err, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	struct jdoc *d = jdoc_parse(path, buf, len, err);
	free(buf);
	return d;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

void jdoc_free(struct jdoc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc->ents);
	free(doc->name);
	free(doc);
}

json_t *jdoc_root(const struct jdoc *doc)
{
	return doc->root;
}

const char *jdoc_name(const struct jdoc *doc)
{
	return doc->name;
}

struct jpos jdoc_pos(const struct jdoc *doc, const json_t *parent, const char *key, size_t index,
                     int want_key)
{
	/* Linear: positions are looked up only to report errors. */
	for (size_t i = 0; i < doc->n; i++) {
		const struct jentry *e = &doc->ents[i];
		if (e->parent != parent)
			continue;
		int match;
		if (!parent)
			match = 1;
		else if (json_is_object(parent))
			match = key && strcmp(e->key, key) == 0;
		else
			match = e->index == index;
		if (match)
			return want_key ? e->key_pos : e->val_pos;
	}
	return (struct jpos){0, 0};
}

int jdoc_fail(const struct jdoc *doc, struct err *err, const json_t *parent, const char *key,
              size_t index, const char *fmt, ...)
{
	char m[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	struct jpos pos = jdoc_pos(doc, parent, key, index, 0);
	if (pos.line)
		return err_set(err, "%s:%u:%u: %s", jdoc_name(doc), pos.line, pos.col, m);
	return err_set(err, "%s: %s", jdoc_name(doc), m);
}
