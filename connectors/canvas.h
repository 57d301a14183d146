#ifndef CB_CANVAS_H
#define CB_CANVAS_H
#include <jansson.h>

/* A student's due date for an assignment whose own date is base (an ISO 8601 string, or
 * null for none), as Canvas works it out: the latest date among the overrides that apply to
 * the student (listed in student_ids, or for the student's section), where an override
 * without a due_at inherits base and a null one means no date (later than any); base when
 * none applies. Borrowed from base or overrides. */
const json_t *canvas_due_at(const json_t *base, const json_t *overrides, const char *student,
                            const char *section);

#endif
