#ifndef CB_COMMANDS_H
#define CB_COMMANDS_H
#include <stddef.h>

#include "interact.h"

/* The bridge's commands and component routes; handlers get the struct discord as ix_ud. */
extern const struct ix_def commands[];
extern const size_t commands_count;

#endif
