#ifndef CB_CONFIG_H
#define CB_CONFIG_H
#include <stdbool.h>

#include "diag.h"
#include "err.h"

struct source_cfg {
	char *name;
	char *type;
	char *url;        /* NULL for file sources */
	char *path;       /* resolved against the config file's directory */
	char *token_env;  /* may be NULL */
	double min_share; /* a complete roster below this share of the last good one is refused */
	struct json_t *extra; /* the whole entry, for options of one type (courses, event ...) */
};

/* The running configuration. Immutable once loaded: a reload builds a new one and swaps. */
struct config {
	char *path; /* the file it came from, NULL when built from defaults */
	int log_level;
	char *http_host;
	int http_port;
	char *mappings_dir;
	bool mappings_dir_set; /* the file names it: a missing directory is then an error */
	unsigned shutdown_timeout_ms;
	bool migrate_on_start;
	unsigned db_connect_timeout_ms;
	unsigned db_health_interval_ms;
	char *discord_api_url;
	unsigned discord_intents;
	bool discord_compress;
	unsigned discord_global_limit, discord_global_window_ms;
	char **staff_roles; /* names or ids, NULL-terminated */
	unsigned defer_ms;
	unsigned outbox_lease_ms, outbox_batch;
	struct source_cfg *sources;
	size_t nsources;
};

/* Loads the config at path (NULL: defaults only), then applies DISCORD_API_URL. Problems go
 * to diags as file:line:column; returns NULL when there were any (or err for I/O). */
struct config *config_load(const char *path, struct diags *diags, struct err *err);

void config_free(struct config *cfg);

/* The published JSON Schema, as compiled into the binary. */
const char *config_schema_text(void);

#endif
