#ifndef CB_XMLLIB_H
#define CB_XMLLIB_H
#include <stddef.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>

#include "err.h"

/* libxml2, loaded on first use rather than linked: on Debian it brings ICU and the C++
 * runtime, about 2.4 MB of resident memory that a bridge reading no XML would carry for
 * nothing. The readers (Moodle answers, frab schedules) use its SAX interface only. */

/* The few libxml2 functions a SAX callback may need, typed by libxml2's own headers. */
struct xmllib {
	__typeof__(&xmlSAX2GetLineNumber) SAX2GetLineNumber;
	__typeof__(&xmlSAX2GetColumnNumber) SAX2GetColumnNumber;
	__typeof__(&xmlStopParser) StopParser;
};

/* Loads libxml2 once per process (thread-safe). NULL with err when it cannot be loaded. */
const struct xmllib *xmllib_get(struct err *err);

/* Runs one parse of buf with only the callbacks in sax: no tree kept, no DTD loaded, no entity
 * substituted, no network, the text read as UTF-8 whatever its declaration says, and nothing
 * printed (libxml2's generic error handler is silenced for the call). ctxt->_private is priv
 * in every callback (the callbacks' first argument is the parser context). HUGE lifts
 * libxml2's 10 MB limit on one run of text; callers set their own limits before calling.
 * Returns 1 when the document was well-formed, 0 when not, -1 with err when libxml2 is missing
 * or out of memory; *line is the line where the parser stopped. */
int xmllib_sax_parse(const xmlSAXHandler *sax, void *priv, const char *buf, size_t len, int *line,
                     struct err *err);

/* libxml2 checks each attribute of a tag against all the others before any callback sees the
 * tag: 80,000 attributes take seconds, 64 MiB of them hours. The readers refuse a tag with
 * more than max attributes before parsing. Returns that tag's 1-based line, or 0 when there is
 * none. Comments, CDATA, processing instructions and quoted values (which may hold '>') are
 * skipped. */
int xmllib_crowded_tag(const char *s, size_t len, int max);

/* The value of attribute name among a SAX2 start tag's n attributes (5 pointers each), as a
 * new string, with the "&#38;" libxml2 leaves for a literal '&' undone; NULL when absent or
 * out of memory. */
char *xmllib_attr(const xmlChar **attrs, int n, const char *name);

#endif
