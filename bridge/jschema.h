#ifndef CB_JSCHEMA_H
#define CB_JSCHEMA_H
#include <jansson.h>

#include "diag.h"
#include "jpos.h"

/* A validator for the subset of JSON Schema (2020-12) that our published schemas use, so that
 * `cohortbridge check` and an editor reading the same schema file agree.
 *
 * Supported: type (string or list), properties, required, additionalProperties (boolean or
 * schema), items, enum, const, minimum, maximum, minLength, maxLength, pattern (POSIX
 * extended), minItems, maxItems, uniqueItems, $ref to "#/$defs/NAME". Annotations (title,
 * description, default, examples, $schema, $id, $comment, format) are ignored. */

/* Validates doc against schema, adding one diagnostic per problem. Returns the number added. */
size_t jschema_validate(const json_t *schema, const struct jdoc *doc, struct diags *out);

/* Returns 0 when every keyword in schema is one the validator knows, else -1 with the first
 * unknown keyword's JSON path in err (a test keeps our schemas inside the subset). */
int jschema_check_keywords(const json_t *schema, struct err *err);

#endif
