/* libxml2 through dlopen, and the one way our readers run its SAX parser. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlerror.h>

#include "xmllib.h"

static struct {
	struct xmllib pub;
	__typeof__(&xmlInitParser) InitParser;
	__typeof__(&xmlNewParserCtxt) NewParserCtxt;
	__typeof__(&xmlCtxtReadMemory) CtxtReadMemory;
	__typeof__(&xmlFreeDoc) FreeDoc;
	__typeof__(&xmlFreeParserCtxt) FreeParserCtxt;
	__typeof__(&xmlSetGenericErrorFunc) SetGenericErrorFunc;
	__typeof__(&__xmlGenericError) GenericError;
	__typeof__(&__xmlGenericErrorContext) GenericErrorContext;
} lx;
static char lx_error[256]; /* why libxml2 could not be loaded; "" when it was */
static pthread_once_t lx_once = PTHREAD_ONCE_INIT;

static void lx_init(void)
{
	void *h = dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
	const char *why = h ? NULL : dlerror();
	struct {
		void **slot;
		const char *name;
	} syms[] = {
	    {(void **)&lx.pub.SAX2GetLineNumber, "xmlSAX2GetLineNumber"},
	    {(void **)&lx.pub.SAX2GetColumnNumber, "xmlSAX2GetColumnNumber"},
	    {(void **)&lx.pub.StopParser, "xmlStopParser"},
	    {(void **)&lx.InitParser, "xmlInitParser"},
	    {(void **)&lx.NewParserCtxt, "xmlNewParserCtxt"},
	    {(void **)&lx.CtxtReadMemory, "xmlCtxtReadMemory"},
	    {(void **)&lx.FreeDoc, "xmlFreeDoc"},
	    {(void **)&lx.FreeParserCtxt, "xmlFreeParserCtxt"},
	    {(void **)&lx.SetGenericErrorFunc, "xmlSetGenericErrorFunc"},
	    {(void **)&lx.GenericError, "__xmlGenericError"},
	    {(void **)&lx.GenericErrorContext, "__xmlGenericErrorContext"},
	};
	for (size_t i = 0; h && !why && i < sizeof(syms) / sizeof(syms[0]); i++)
		if (!(*syms[i].slot = dlsym(h, syms[i].name)))
			why = syms[i].name;
	if (why) {
		snprintf(lx_error, sizeof(lx_error), "%s", why);
		return;
	}
	lx.InitParser();
}

const struct xmllib *xmllib_get(struct err *err)
{
	pthread_once(&lx_once, lx_init);
	if (lx_error[0]) {
		err_set(err, "libxml2 cannot be loaded (%s): install the libxml2 package",
		        lx_error);
		return NULL;
	}
	return &lx.pub;
}

/* What libxml2 reports outside the parser context (encoding, memory) goes to the thread's
 * generic handler, which prints to stderr: this one stands in for it during a parse. */
static void quiet(void *ctx, const char *msg, ...)
{
}

int xmllib_sax_parse(const xmlSAXHandler *sax, void *priv, const char *buf, size_t len, int *line,
                     struct err *err)
{
	if (!xmllib_get(err))
		return -1;
	xmlParserCtxtPtr ctxt = lx.NewParserCtxt();
	if (!ctxt)
		return err_set(err, "out of memory");
	*ctxt->sax = *sax;
	ctxt->_private = priv;

	xmlGenericErrorFunc old_fn = *lx.GenericError();
	void *old_ctx = *lx.GenericErrorContext();
	lx.SetGenericErrorFunc(NULL, quiet);
	/* No NOENT (entities stay unexpanded), NONET, no DTDLOAD; UTF-8 whatever the
	 * declaration says. */
	xmlDocPtr doc =
	    lx.CtxtReadMemory(ctxt, buf, (int)len, NULL, "UTF-8",
	                      XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC |
	                          XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
	lx.SetGenericErrorFunc(old_ctx, old_fn);
	int well_formed = ctxt->wellFormed ? 1 : 0;
	*line = lx.pub.SAX2GetLineNumber(ctxt);
	lx.FreeDoc(doc);
	lx.FreeParserCtxt(ctxt);
	return well_formed;
}

static const char *skip_past(const char *p, const char *end, const char *marker)
{
	size_t m = strlen(marker);
	while ((p = memchr(p, marker[0], (size_t)(end - p))) && (size_t)(end - p) >= m) {
		if (memcmp(p, marker, m) == 0)
			return p + m;
		p++;
	}
	return end;
}

static int line_at(const char *s, const char *at)
{
	int line = 1;
	for (const char *p = s; (p = memchr(p, '\n', (size_t)(at - p))); p++)
		line++;
	return line;
}

int xmllib_crowded_tag(const char *s, size_t len, int max)
{
	const char *p = s, *end = s + len;
	while ((p = memchr(p, '<', (size_t)(end - p)))) {
		const char *tag = p++;
		if (end - p >= 3 && memcmp(p, "!--", 3) == 0) {
			p = skip_past(p + 3, end, "-->");
			continue;
		}
		if (end - p >= 8 && memcmp(p, "![CDATA[", 8) == 0) {
			p = skip_past(p + 8, end, "]]>");
			continue;
		}
		if (p < end && *p == '?') {
			p = skip_past(p + 1, end, "?>");
			continue;
		}
		int eq = 0;
		while (p < end && *p != '>' && *p != '<') {
			if (*p == '"' || *p == '\'') {
				const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
				p = q ? q + 1 : end;
				continue;
			}
			if (*p == '=' && ++eq > max)
				return line_at(s, tag);
			p++;
		}
	}
	return 0;
}

char *xmllib_attr(const xmlChar **attrs, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		const xmlChar **a = attrs + 5 * i;
		if (a[1] || strcmp((const char *)a[0], name) != 0)
			continue;
		size_t len = (size_t)(a[4] - a[3]), o = 0;
		char *v = malloc(len + 1);
		if (!v)
			return NULL;
		for (size_t j = 0; j < len; j++) {
			v[o++] = (char)a[3][j];
			if (a[3][j] == '&' && j + 5 <= len && memcmp(a[3] + j, "&#38;", 5) == 0)
				j += 4;
		}
		v[o] = '\0';
		return v;
	}
	return NULL;
}
