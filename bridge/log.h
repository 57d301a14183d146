#ifndef CB_LOG_H
#define CB_LOG_H
#include <stdio.h>

/* One logfmt line per event on stderr:
 *   ts=2026-11-21T23:40:01.123Z level=info mod=db msg="connected" host=/tmp/x
 * Fields after the message are key/value string pairs. Every value is scrubbed of registered
 * secrets before it is written. The level is checked before anything is formatted. */

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG, LOGL_TRACE };

extern int log_threshold;

/* Parses "error", "warn", "info", "debug" or "trace"; returns -1 for anything else. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

/* Where lines go; stderr unless set (tests capture into a memory stream). */
void log_set_stream(FILE *f);

/* Writes one line. The variadic part is key, value, key, value, ..., NULL (all strings;
 * a NULL value is written as an empty string). Use the macros below. */
void log_emit(int level, const char *mod, const char *msg, ...);

#define LOG_AT(lvl, mod, ...)                                                                      \
	do {                                                                                       \
		if ((lvl) <= log_threshold)                                                        \
			log_emit((lvl), (mod), __VA_ARGS__, (const char *)NULL);                   \
	} while (0)
#define log_error(mod, ...) LOG_AT(LOGL_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  LOG_AT(LOGL_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  LOG_AT(LOGL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) LOG_AT(LOGL_DEBUG, mod, __VA_ARGS__)
#define log_trace(mod, ...) LOG_AT(LOGL_TRACE, mod, __VA_ARGS__)

/* A small formatting helper for numeric fields: LOG_NUM(buf, "%d", n) → buf. */
#define LOG_NUM(buf, fmt, v) (snprintf((buf), sizeof(buf), (fmt), (v)), (buf))

#endif
