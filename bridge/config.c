#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "embedded.h"
#include "jschema.h"
#include "log.h"

#define SCHEMA_PATH "deploy/config.schema.json"

const char *config_schema_text(void)
{
	const struct embedded_file *f = embedded_find(SCHEMA_PATH);
	return f ? f->data : "{}";
}

static char *dup_or(const json_t *v, const char *dflt)
{
	const char *s = json_is_string(v) ? json_string_value(v) : dflt;
	return s ? strdup(s) : NULL;
}

static unsigned uint_or(const json_t *v, unsigned dflt)
{
	return json_is_integer(v) ? (unsigned)json_integer_value(v) : dflt;
}

/* Joins a relative path onto the directory of the config file. */
static char *relative_to(const char *cfg_path, const char *p)
{
	if (!p)
		return NULL;
	if (p[0] == '/' || !cfg_path || !strchr(cfg_path, '/'))
		return strdup(p);
	size_t dl = (size_t)(strrchr(cfg_path, '/') - cfg_path);
	size_t n = dl + 1 + strlen(p) + 1;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%.*s/%s", (int)dl, cfg_path, p);
	return out;
}

static int is_loopback_url(const char *url)
{
	const char *h = strstr(url, "://");
	if (!h)
		return 0;
	h += 3;
	static const char *const loop[] = {"127.", "localhost:", "localhost/", "[::1]"};
	for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++)
		if (strncmp(h, loop[i], strlen(loop[i])) == 0)
			return 1;
	return strcmp(h, "localhost") == 0;
}

static int parse_listen(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	struct in_addr a;
	char buf[64];
	if (!colon || (size_t)(colon - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
		return -1;
	*host = strdup(buf);
	*port = (int)p;
	return *host ? 0 : -1;
}

/* Checks that need more than the schema: names unique, each source's URL or path present and
 * safe, a listen address that parses. */
static void semantic_checks(const struct jdoc *doc, struct diags *d)
{
	const json_t *root = jdoc_root(doc);
	const char *file = jdoc_name(doc);
	const json_t *http = json_object_get(root, "http");
	const json_t *listen = json_object_get(http, "listen");
	char *h = NULL;
	int p;

	/* The schema checks the shape; this catches octets and ports out of range. */
	const char *ls = json_is_string(listen) ? json_string_value(listen) : NULL;
	if (ls && strspn(ls, "0123456789.:") == strlen(ls) && parse_listen(ls, &h, &p) != 0)
		diags_add(d, file, jdoc_pos(doc, http, "listen", 0, 0),
		          "http.listen: \"%s\" has an address or port out of range", ls);
	free(h);

	const json_t *sources = json_object_get(root, "sources");
	size_t i;
	const json_t *s;
	json_array_foreach(sources, i, s) {
		const json_t *name = json_object_get(s, "name"), *type = json_object_get(s, "type");
		const json_t *url = json_object_get(s, "url"), *path = json_object_get(s, "path");
		struct jpos here = jdoc_pos(doc, sources, NULL, i, 0);
		if (!json_is_object(s) || !json_is_string(name) || !json_is_string(type))
			continue;
		for (size_t j = 0; j < i; j++) {
			const json_t *o = json_object_get(json_array_get(sources, j), "name");
			if (json_is_string(o) &&
			    strcmp(json_string_value(o), json_string_value(name)) == 0) {
				struct jpos op =
				    jdoc_pos(doc, json_array_get(sources, j), "name", 0, 0);
				diags_add(d, file, jdoc_pos(doc, s, "name", 0, 0),
				          "sources[%zu].name: \"%s\" is already used by "
				          "sources[%zu] (line %u)",
				          i, json_string_value(name), j, op.line);
				break;
			}
		}
		int is_file = strcmp(json_string_value(type), "roster_file") == 0;
		int may_file = is_file || strcmp(json_string_value(type), "holidays") == 0;
		if (may_file && !is_file && !path == !url)
			diags_add(
			    d, file, here,
			    "sources[%zu]: a holidays source needs \"url\" (an API or a feed) or "
			    "\"path\" (a table), one of them",
			    i);
		if (is_file && !path == !url)
			diags_add(d, file, here,
			          "sources[%zu]: a roster_file source needs \"path\" (a file) or "
			          "\"url\" (a published sheet), one of them",
			          i);
		if (!may_file && !url)
			diags_add(d, file, here, "sources[%zu]: a %s source needs \"url\"", i,
			          json_string_value(type));
		if (json_is_string(url) && strncmp(json_string_value(url), "http://", 7) == 0 &&
		    !is_loopback_url(json_string_value(url)))
			diags_add(d, file, jdoc_pos(doc, s, "url", 0, 0),
			          "sources[%zu].url: plain http:// is allowed only on loopback; "
			          "use https://",
			          i);
	}
}

static struct config *build(const char *path, const json_t *root, struct err *err)
{
	struct config *c = calloc(1, sizeof(*c));
	const json_t *http = json_object_get(root, "http");
	const json_t *db = json_object_get(root, "database");
	const json_t *dc = json_object_get(root, "discord");
	const json_t *sources = json_object_get(root, "sources");
	const char *api = getenv("DISCORD_API_URL");

	if (!c)
		goto oom;
	c->path = path ? strdup(path) : NULL;
	c->log_level = json_is_string(json_object_get(root, "log_level"))
	                   ? log_level_parse(json_string_value(json_object_get(root, "log_level")))
	                   : -1;
	const json_t *listen = json_object_get(http, "listen");
	if (parse_listen(json_is_string(listen) ? json_string_value(listen) : "127.0.0.1:8787",
	                 &c->http_host, &c->http_port) != 0)
		goto oom;
	c->mappings_dir_set = json_is_string(json_object_get(root, "mappings_dir"));
	char *md = dup_or(json_object_get(root, "mappings_dir"), "mappings");
	c->mappings_dir = relative_to(path, md);
	free(md);
	c->shutdown_timeout_ms = uint_or(json_object_get(root, "shutdown_timeout_ms"), 10000);
	const json_t *mig = json_object_get(db, "migrate_on_start");
	c->migrate_on_start = mig ? json_is_true(mig) : true;
	c->db_connect_timeout_ms = uint_or(json_object_get(db, "connect_timeout_ms"), 10000);
	c->db_health_interval_ms = uint_or(json_object_get(db, "health_interval_ms"), 5000);
	c->discord_api_url =
	    api && *api ? strdup(api)
	                : dup_or(json_object_get(dc, "api_url"), "https://discord.com/api/v10");
	if (!c->mappings_dir || !c->discord_api_url)
		goto oom;
	static const struct {
		const char *name;
		unsigned bit;
	} intents[] = {{"GUILDS", 1u << 0},
	               {"GUILD_MEMBERS", 1u << 1},
	               {"GUILD_MESSAGES", 1u << 9},
	               {"DIRECT_MESSAGES", 1u << 12},
	               {"MESSAGE_CONTENT", 1u << 15},
	               {"GUILD_SCHEDULED_EVENTS", 1u << 16},
	               {"GUILD_MESSAGE_POLLS", 1u << 24},
	               {"DIRECT_MESSAGE_POLLS", 1u << 25}};
	const json_t *in = json_object_get(dc, "intents");
	if (json_is_array(in)) {
		size_t i;
		const json_t *v;
		json_array_foreach(in, i, v) {
			for (size_t k = 0; k < sizeof(intents) / sizeof(intents[0]); k++)
				if (json_is_string(v) &&
				    strcmp(json_string_value(v), intents[k].name) == 0)
					c->discord_intents |= intents[k].bit;
		}
	} else {
		c->discord_intents =
		    (1u << 0) | (1u << 1) | (1u << 9) | (1u << 12) | (1u << 16) | (1u << 24);
	}
	const json_t *comp = json_object_get(dc, "compress");
	c->discord_compress = comp ? json_is_true(comp) : true;
	c->discord_global_limit = uint_or(json_object_get(dc, "global_limit"), 50);
	c->discord_global_window_ms = uint_or(json_object_get(dc, "global_window_ms"), 1000);
	c->defer_ms = uint_or(json_object_get(dc, "defer_ms"), 2000);
	const json_t *staff = json_object_get(dc, "staff_roles");
	size_t nstaff = staff ? json_array_size(staff) : 1;
	c->staff_roles = calloc(nstaff + 1, sizeof(char *));
	for (size_t i = 0; c->staff_roles && i < nstaff; i++) {
		c->staff_roles[i] =
		    strdup(staff ? json_string_value(json_array_get(staff, i)) : "Staff");
		if (!c->staff_roles[i])
			break;
	}
	const json_t *ob = json_object_get(root, "outbox");
	c->outbox_lease_ms = uint_or(json_object_get(ob, "lease_ms"), 30000);
	c->outbox_batch = uint_or(json_object_get(ob, "batch"), 100);
	if (json_array_size(sources)) {
		c->sources = calloc(json_array_size(sources), sizeof(*c->sources));
		if (!c->sources)
			goto oom;
		c->nsources = json_array_size(sources);
	}
	for (size_t i = 0; i < c->nsources; i++) {
		const json_t *s = json_array_get(sources, i);
		struct source_cfg *sc = &c->sources[i];
		sc->name = dup_or(json_object_get(s, "name"), NULL);
		sc->type = dup_or(json_object_get(s, "type"), NULL);
		sc->url = dup_or(json_object_get(s, "url"), NULL);
		char *p = dup_or(json_object_get(s, "path"), NULL);
		sc->path = relative_to(path, p);
		free(p);
		sc->token_env = dup_or(json_object_get(s, "token_env"), NULL);
		const json_t *ms = json_object_get(s, "min_share");
		sc->min_share = json_is_number(ms) ? json_number_value(ms) : 0.5;
		sc->extra = json_deep_copy(s);
	}
	return c;
oom:
	config_free(c);
	err_set(err, "out of memory");
	return NULL;
}

struct config *config_load(const char *path, struct diags *diags, struct err *err)
{
	struct jdoc *doc = NULL;
	json_t *schema = NULL;
	struct config *c = NULL;
	json_error_t je;

	if (!path) {
		json_t *empty = json_object();
		c = build(NULL, empty, err);
		json_decref(empty);
		return c;
	}
	doc = jdoc_load(path, err);
	if (!doc)
		return NULL;
	schema = json_loads(config_schema_text(), 0, &je);
	if (!schema) {
		err_set(err, "embedded config schema is invalid: %s", je.text);
		goto done;
	}
	size_t before = diags->n;
	jschema_validate(schema, doc, diags);
	semantic_checks(doc, diags);
	if (diags->n > before) {
		diags_sort(diags);
		err_set(err, "%s: %zu problem(s)", path, diags->n - before);
		goto done;
	}
	c = build(path, jdoc_root(doc), err);
done:
	json_decref(schema);
	jdoc_free(doc);
	return c;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nsources; i++) {
		free(cfg->sources[i].name);
		free(cfg->sources[i].type);
		free(cfg->sources[i].url);
		free(cfg->sources[i].path);
		free(cfg->sources[i].token_env);
		json_decref(cfg->sources[i].extra);
	}
	free(cfg->sources);
	free(cfg->path);
	free(cfg->http_host);
	free(cfg->mappings_dir);
	free(cfg->discord_api_url);
	for (size_t i = 0; cfg->staff_roles && cfg->staff_roles[i]; i++)
		free(cfg->staff_roles[i]);
	free(cfg->staff_roles);
	free(cfg);
}
