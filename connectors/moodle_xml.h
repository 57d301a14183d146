#ifndef CB_MOODLE_XML_H
#define CB_MOODLE_XML_H
#include <jansson.h>
#include <stddef.h>

#include "err.h"

/* Moodle's web service answers (webservice/rest/server.php). XML is Moodle's default format;
 * moodle_xml_parse gives the shape moodlewsrestformat=json gives for the same call:
 *   <RESPONSE/>                         -> null (a function that returns nothing)
 *   <MULTIPLE>...</MULTIPLE>            -> array
 *   <SINGLE><KEY name="k">...</KEY>     -> object; a KEY without a value is null
 *   <VALUE>text</VALUE>                 -> string, exactly as sent (not trimmed)
 *   <VALUE/>, <VALUE></VALUE>           -> ""
 *   <VALUE null="null"/>                -> null
 * Scalars stay strings: the XML carries no types, so an id is "42" and a boolean "0" or "1"
 * where the JSON format has 42 and false. Connectors convert the fields they use, which
 * makes them read both formats alike.
 *
 * Both formats report errors with HTTP 200. An <EXCEPTION> answer gives NULL with err
 * "moodle error <errorcode>: <message> (<class>)"; moodle_check_exception gives the same
 * text for the JSON form. DEBUGINFO is left out: it can quote SQL and parameters.
 *
 * Anything else is refused with the line: XML that is not well-formed or cut short, another
 * root element, unknown elements or text outside VALUE, a DOCTYPE (no DTDs, no entities but
 * XML's five), nesting deeper than 64 elements, more than 64 MiB. The body is read as UTF-8,
 * whatever its declaration says: Moodle writes nothing else. Nothing is printed. */

/* A new reference, or NULL with err. */
json_t *moodle_xml_parse(const char *xml, size_t len, struct err *err);

/* A parsed JSON answer: -1 with err when it is an exception object ({"exception",
 * "errorcode", "message"}), else 0. */
int moodle_check_exception(const json_t *json_answer, struct err *err);

#endif
