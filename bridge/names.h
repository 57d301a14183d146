#ifndef CB_NAMES_H
#define CB_NAMES_H

/* People's names compared the way a person at a desk would: "Łukasz Kowalski" is
 * "kowalski, lukasz" is "LUKASZ KOWALSKI". Accents, case, punctuation and the order of the
 * parts do not count; the letters and the parts do. */

/* The comparable form of a UTF-8 name (a new string: its parts folded, sorted and joined by
 * single spaces), or NULL for invalid UTF-8 or no memory. */
char *names_fold(const char *name);

/* 1 when a and b are the same name in the sense above (and neither is empty), else 0. */
int names_same(const char *a, const char *b);

#endif
