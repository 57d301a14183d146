/* The roster_file connector: a roster file at path, read again only when its bytes change (a
 * fingerprint in the cursor), or a published sheet at url, asked for with If-None-Match /
 * If-Modified-Since so that an unchanged one costs a 304. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "connector.h"
#include "fetch.h"
#include "roster_file.h"

#define MAX_FILE (50u * 1024 * 1024)

struct rf {
	const struct source_env *env;
	char *path;        /* a file, or */
	struct fetcher *f; /* the published sheet at env->cfg->url */
	connector_done done;
	void *ud;
};

static void *rf_init(const struct source_env *env, struct err *err)
{
	if (!env->cfg->path == !env->cfg->url) {
		err_set(err, "a roster_file source needs \"path\" or \"url\"");
		return NULL;
	}
	struct rf *r = calloc(1, sizeof(*r));
	if (r && env->cfg->url)
		r->f = fetcher_new(env, env->token ? FETCH_AUTH_BEARER : FETCH_AUTH_NONE, NULL);
	else if (r)
		r->path = strdup(env->cfg->path);
	if (!r || (!r->path && !r->f)) {
		free(r);
		err_set(err, "out of memory");
		return NULL;
	}
	r->env = env;
	return r;
}

/* The sheet's answer: 304 (unchanged), or a CSV or JSON roster */
static void on_sheet(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct rf *r = ud;
	connector_done done = r->done;
	r->done = NULL;
	if (err) {
		done(r->ud, NULL, err);
		return;
	}
	if (resp->status == 304) {
		done(r->ud, NULL, NULL);
		return;
	}
	struct err e = {0};
	char ct[128] = "", label[300];
	httpc_header(resp, "Content-Type", ct, sizeof(ct));
	const char *url = r->env->cfg->url;
	/* in messages the address without its query, which may hold a key */
	snprintf(label, sizeof(label), "%.*s", (int)strcspn(url, "?#"), url);
	if (strstr(ct, "html")) {
		err_set(
		    &e,
		    "%s: answered with a web page (Content-Type %s), not a roster: is the sheet "
		    "published as CSV, and the url its export link?",
		    label, ct);
		done(r->ud, NULL, &e);
		return;
	}
	int format = strstr(ct, "json") ? 2 : (strstr(ct, "csv") || strstr(ct, "tab-sep")) ? 1 : 0;
	if (!format) {
		const char *dot = strrchr(label, '.'), *slash = strrchr(label, '/');
		format = dot && dot > slash ? (strcmp(dot, ".json") == 0 ? 2 : 1) : 0;
	}
	const char *data = resp->body ? resp->body : "";
	char fp[32];
	snprintf(fp, sizeof(fp), "%016llx",
	         (unsigned long long)roster_fingerprint(data, resp->body_len));
	const char *was = json_string_value(json_object_get(r->env->cursor, "fingerprint"));
	if (was && strcmp(was, fp) == 0) {
		done(r->ud, NULL, NULL);
		return;
	}
	json_t *snap = roster_snapshot_as(data, resp->body_len, label, format, &e);
	if (snap)
		fetch_keep_validators(resp, json_object_get(snap, "cursor"));
	done(r->ud, snap, snap ? NULL : &e);
}

static void rf_sync(void *c, connector_done done, void *ud)
{
	struct rf *r = c;
	if (r->f) {
		struct fetch_req rq = {.url = r->env->cfg->url};
		fetch_if_changed(&rq, r->env->cursor);
		r->done = done;
		r->ud = ud;
		if (fetch(r->f, &rq, on_sheet, r) != 0) {
			struct err e;
			r->done = NULL;
			err_set(&e, "%s: cannot start a request", r->env->cfg->name);
			done(ud, NULL, &e);
		}
		return;
	}
	struct err err = {0};
	json_t *snap = NULL;
	char *data = NULL;
	FILE *f = fopen(r->path, "rb");
	struct stat st;
	if (!f) {
		err_set(&err, "%s: %s", r->path, strerror(errno));
	} else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(&err, "%s: not a regular file", r->path);
	} else if ((size_t)st.st_size > MAX_FILE) {
		err_set(&err, "%s: %lld bytes; a roster file may have at most %u MB", r->path,
		        (long long)st.st_size, MAX_FILE / (1024 * 1024));
	} else if (!(data = malloc((size_t)st.st_size + 1))) {
		err_set(&err, "out of memory");
	} else if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		err_set(&err, "%s: could not read the whole file", r->path);
	} else {
		size_t len = (size_t)st.st_size;
		data[len] = '\0';
		char fp[32];
		snprintf(fp, sizeof(fp), "%016llx",
		         (unsigned long long)roster_fingerprint(data, len));
		const char *was = json_string_value(json_object_get(r->env->cursor, "fingerprint"));
		if (!was || strcmp(was, fp) != 0)
			snap = roster_snapshot(data, len, r->path, &err);
	}
	if (f)
		fclose(f);
	free(data);
	done(ud, snap, err.msg[0] ? &err : NULL);
}

static void rf_describe(void *c, char *buf, size_t size)
{
	const struct rf *r = c;
	if (r->path)
		snprintf(buf, size, "roster file %s", r->path);
	else
		snprintf(buf, size, "roster sheet %.*s", (int)strcspn(r->env->cfg->url, "?#"),
		         r->env->cfg->url);
}

static void rf_free(void *c)
{
	struct rf *r = c;
	if (r) {
		free(r->path);
		fetcher_free(r->f);
	}
	free(r);
}

const struct connector_ops roster_file_connector = {
    .type = "roster_file",
    .init = rf_init,
    .sync = rf_sync,
    .describe = rf_describe,
    .free = rf_free,
};
