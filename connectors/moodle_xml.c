/* Moodle's XML answers into JSON values, read with libxml2's SAX interface: the values are
 * built as the elements go by, so a large answer never exists twice as a DOM and a JSON tree,
 * and a DOCTYPE or excess depth stops the parser where it appears. libxml2 itself is loaded
 * on the first answer (xmllib.c). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlerror.h>

#include "moodle_xml.h"
#include "xmllib.h"

static const struct xmllib *lx; /* set before the first parse */

#define MAX_ANSWER (64u * 1024 * 1024)
#define MAX_DEPTH  64
#define MAX_ATTRS  16

enum kind {
	K_RESPONSE,
	K_MULTIPLE,
	K_SINGLE,
	K_KEY,
	K_VALUE,
	K_EXCEPTION,
	K_FIELD, /* ERRORCODE, MESSAGE, DEBUGINFO: text kept in struct parse */
	K_SKIP,  /* anything else inside EXCEPTION: an error answer either way */
};

static const char *const kind_name[] = {"RESPONSE", "MULTIPLE",  "SINGLE", "KEY",
                                        "VALUE",    "EXCEPTION", "",       ""};

enum field { F_ERRORCODE, F_MESSAGE, F_DEBUGINFO, F_CLASS, F_COUNT };

struct frame {
	enum kind kind;
	json_t *val; /* MULTIPLE: the array, SINGLE: the object, RESPONSE and KEY: the value */
	char *key;   /* KEY: its name */
	bool has;    /* RESPONSE and KEY: the value was seen (it may be null) */
	bool null;   /* VALUE null="null" */
	enum field field;
};

struct parse {
	xmlParserCtxtPtr ctxt;
	struct frame stack[MAX_DEPTH];
	int depth;
	bool done;      /* the root element closed */
	bool exception; /* the root is EXCEPTION */
	json_t *result;
	char *exc[F_COUNT];
	char *text; /* the open VALUE's or field's text */
	size_t len, cap;
	bool failed;
	int line;
	char msg[400];
};

/* The first problem wins: later ones are usually its echoes. Stops the parser. */
static void fail_at(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_at(struct parse *p, int line, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	p->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	lx->StopParser(p->ctxt);
}

/* The parse behind a callback's parser context, which it also remembers for FAIL. */
static struct parse *from(void *ud)
{
	xmlParserCtxtPtr ctxt = ud;
	struct parse *p = ctxt->_private;
	p->ctxt = ctxt;
	return p;
}

#define FAIL(p, ...) fail_at((p), lx->SAX2GetLineNumber((p)->ctxt), __VA_ARGS__)

/* libxml2's errors for this document: kept, never printed. */
static void on_error(void *ud, xmlErrorPtr e)
{
	struct parse *p = from(ud);
	if (!e || e->level < XML_ERR_ERROR || p->failed)
		return;
	char m[sizeof(p->msg)];
	snprintf(m, sizeof(m), "%s", e->message ? e->message : "unknown error");
	size_t n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	fail_at(p, e->line, "not well-formed XML: %s", m);
}

static void on_doctype(void *ud, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	/* refused before its internal subset is read: no entity is ever declared */
	FAIL(from(ud),
	     "a DOCTYPE is not accepted (Moodle sends none; DTDs could declare entities)");
}

static bool blank(const xmlChar *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static void on_text(void *ud, const xmlChar *s, int len)
{
	struct parse *p = from(ud);
	if (p->failed || p->depth == 0)
		return;
	enum kind k = p->stack[p->depth - 1].kind;
	if (k == K_VALUE || k == K_FIELD) {
		if (p->len + (size_t)len + 1 > p->cap) {
			size_t cap = p->cap ? p->cap : 256;
			while (cap < p->len + (size_t)len + 1)
				cap *= 2;
			char *t = realloc(p->text, cap);
			if (!t) {
				FAIL(p, "out of memory");
				return;
			}
			p->text = t;
			p->cap = cap;
		}
		memcpy(p->text + p->len, s, (size_t)len);
		p->len += (size_t)len;
		p->text[p->len] = '\0';
	} else if (k != K_SKIP && k != K_EXCEPTION && !blank(s, len)) {
		FAIL(p, "text inside %s: only a VALUE holds text", kind_name[k]);
	}
}

static enum kind value_kind(const char *name)
{
	if (strcmp(name, "MULTIPLE") == 0)
		return K_MULTIPLE;
	if (strcmp(name, "SINGLE") == 0)
		return K_SINGLE;
	if (strcmp(name, "VALUE") == 0)
		return K_VALUE;
	return K_SKIP;
}

static void on_start(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nns, const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs)
{
	struct parse *p = from(ud);
	const char *name = (const char *)local;
	if (p->failed)
		return;
	if (p->depth == MAX_DEPTH) {
		FAIL(p, "elements nested deeper than %d levels", MAX_DEPTH);
		return;
	}
	struct frame f = {0};
	struct frame *up = p->depth ? &p->stack[p->depth - 1] : NULL;
	if (prefix) {
		FAIL(p, "unknown element <%s:%s>", (const char *)prefix, name);
		return;
	}
	if (!up) {
		if (strcmp(name, "RESPONSE") == 0) {
			f.kind = K_RESPONSE;
		} else if (strcmp(name, "EXCEPTION") == 0) {
			f.kind = K_EXCEPTION;
			p->exception = true;
			p->exc[F_CLASS] = xmllib_attr(attrs, nattrs, "class");
		} else {
			FAIL(p, "the root element is <%s>, not RESPONSE or EXCEPTION", name);
			return;
		}
	} else if (up->kind == K_EXCEPTION || up->kind == K_FIELD || up->kind == K_SKIP) {
		f.kind = K_SKIP;
		if (up->kind == K_EXCEPTION) {
			static const char *const fields[] = {"ERRORCODE", "MESSAGE", "DEBUGINFO"};
			for (int i = 0; i < 3; i++)
				if (strcmp(name, fields[i]) == 0) {
					f.kind = K_FIELD;
					f.field = (enum field)i;
					p->len = 0;
				}
		}
	} else if (up->kind == K_SINGLE) {
		if (strcmp(name, "KEY") != 0) {
			FAIL(p, "<%s> inside SINGLE: only KEY belongs there", name);
			return;
		}
		f.kind = K_KEY;
		f.key = xmllib_attr(attrs, nattrs, "name");
		if (!f.key) {
			FAIL(p, "a KEY without a name");
			return;
		}
		if (json_object_get(up->val, f.key)) {
			FAIL(p, "KEY \"%s\" twice in one SINGLE", f.key);
			free(f.key);
			return;
		}
	} else if (up->kind == K_VALUE) {
		FAIL(p, "<%s> inside VALUE: a VALUE holds only text", name);
		return;
	} else {
		/* RESPONSE, MULTIPLE, KEY: a value */
		f.kind = value_kind(name);
		if (f.kind == K_SKIP) {
			FAIL(p, "unknown element <%s> inside %s", name, kind_name[up->kind]);
			return;
		}
		if (up->kind != K_MULTIPLE && up->has) {
			FAIL(p, "a second value inside %s", kind_name[up->kind]);
			return;
		}
		up->has = true;
	}

	if (f.kind == K_MULTIPLE || f.kind == K_SINGLE) {
		f.val = f.kind == K_MULTIPLE ? json_array() : json_object();
		if (!f.val) {
			free(f.key);
			FAIL(p, "out of memory");
			return;
		}
	} else if (f.kind == K_VALUE) {
		char *null = xmllib_attr(attrs, nattrs, "null");
		f.null = null && strcmp(null, "null") == 0;
		free(null);
		p->len = 0;
	}
	p->stack[p->depth++] = f;
}

/* Hands a finished value to the element around it. Takes the reference. */
static int give(struct parse *p, json_t *v)
{
	if (!v) {
		FAIL(p, "out of memory or text that is not UTF-8");
		return -1;
	}
	struct frame *up = &p->stack[p->depth - 1];
	if (up->kind == K_MULTIPLE) {
		if (json_array_append_new(up->val, v) == 0)
			return 0;
		FAIL(p, "out of memory");
		return -1;
	}
	up->val = v; /* RESPONSE or KEY */
	return 0;
}

static void on_end(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	struct parse *p = from(ud);
	if (p->failed || p->depth == 0)
		return;
	struct frame f = p->stack[--p->depth];
	switch (f.kind) {
	case K_VALUE:
		if (f.null && p->len) {
			FAIL(p, "a VALUE null=\"null\" with text");
			return;
		}
		give(p, f.null ? json_null() : json_stringn(p->text ? p->text : "", p->len));
		break;
	case K_MULTIPLE:
	case K_SINGLE:
		give(p, f.val);
		break;
	case K_KEY: {
		struct frame *single = &p->stack[p->depth - 1];
		json_t *v = f.val ? f.val : json_null();
		if (json_object_set_new(single->val, f.key, v) != 0)
			FAIL(p, "KEY name \"%s\" is not usable as a JSON key", f.key);
		free(f.key);
		break;
	}
	case K_FIELD:
		free(p->exc[f.field]);
		p->exc[f.field] = strndup(p->text ? p->text : "", p->len);
		break;
	case K_RESPONSE:
		p->result = f.val ? f.val : json_null();
		p->done = true;
		break;
	case K_EXCEPTION:
		p->done = true;
		break;
	case K_SKIP:
		break;
	}
}

static void free_parse(struct parse *p)
{
	for (int i = 0; i < p->depth; i++) {
		json_decref(p->stack[i].val);
		free(p->stack[i].key);
	}
	json_decref(p->result);
	for (int i = 0; i < F_COUNT; i++)
		free(p->exc[i]);
	free(p->text);
}

static int moodle_error(struct err *err, const char *code, const char *message, const char *cls)
{
	return err_set(err, "moodle error %s: %s%s%s%s", code && *code ? code : "(no errorcode)",
	               message && *message ? message : "(no message)", cls && *cls ? " (" : "",
	               cls && *cls ? cls : "", cls && *cls ? ")" : "");
}

json_t *moodle_xml_parse(const char *xml, size_t len, struct err *err)
{
	if (len == 0) {
		err_set(err, "moodle answer is empty");
		return NULL;
	}
	if (len > MAX_ANSWER) {
		err_set(err, "moodle answer is %zu bytes, more than the %u MiB accepted", len,
		        MAX_ANSWER >> 20);
		return NULL;
	}
	int crowded = xmllib_crowded_tag(xml, len, MAX_ATTRS);
	if (crowded) {
		err_set(err, "moodle answer, line %d: a tag with more than %d attributes", crowded,
		        MAX_ATTRS);
		return NULL;
	}
	if (!(lx = xmllib_get(err)))
		return NULL;

	struct parse p = {0};
	/* Only these callbacks: no tree, no entity or DTD handling, errors to on_error. Blanks
	 * go to on_text like other text, so libxml2 never guesses which are ignorable. */
	xmlSAXHandler sax = {0};
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = on_start;
	sax.endElementNs = on_end;
	sax.characters = on_text;
	sax.ignorableWhitespace = on_text;
	sax.cdataBlock = on_text;
	sax.internalSubset = on_doctype;
	sax.serror = on_error;
	/* The limits that matter are ours: 64 MiB, 64 levels, no DTD. */
	int line = 0;
	int well_formed = xmllib_sax_parse(&sax, &p, xml, len, &line, err);
	if (well_formed < 0) {
		free_parse(&p);
		return NULL;
	}

	json_t *out = NULL;
	if (p.failed)
		err_set(err, "moodle answer, line %d: %s", p.line, p.msg);
	else if (!well_formed || !p.done)
		err_set(err, "moodle answer, line %d: not well-formed XML", line);
	else if (p.exception)
		moodle_error(err, p.exc[F_ERRORCODE], p.exc[F_MESSAGE], p.exc[F_CLASS]);
	else
		out = json_incref(p.result);
	free_parse(&p);
	return out;
}

int moodle_check_exception(const json_t *json_answer, struct err *err)
{
	if (!json_is_object(json_answer) || !json_object_get(json_answer, "exception"))
		return 0;
	return moodle_error(err, json_string_value(json_object_get(json_answer, "errorcode")),
	                    json_string_value(json_object_get(json_answer, "message")),
	                    json_string_value(json_object_get(json_answer, "exception")));
}
