/* Canvas request mocks under /canvas/mocks/api/v1: maps of {name: {method, endpoint, data,
 * headers, status_code}} as test suites of Canvas clients keep them (one file per API area),
 * loaded from a directory with --canvas-mocks. A request finds the mock whose endpoint equals
 * its path and query, else the one with its path and no query (so that a client's own
 * per_page does not matter); links to the mocks' site (https://example.com/api/v1/) in
 * headers and bodies are rewritten to this server, so that pages follow one another, unless
 * the request asks keep_links=1 (a client must then refuse to take its token there). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sources.h"

#define MOCK_SITE "https://example.com/api/v1/"

static json_t *mocks; /* endpoint -> mock, GET and ANY only */

int canvas_mocks_load(const char *dir, char *err, size_t errsize)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errsize, "cannot open the mocks directory %s", dir);
		return -1;
	}
	mocks = json_object();
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		json_error_t je;
		json_t *file = json_load_file(path, 0, &je);
		if (!json_is_object(file)) {
			snprintf(err, errsize, "%s: line %d: %s", path, je.line, je.text);
			json_decref(file);
			closedir(d);
			return -1;
		}
		const char *name;
		json_t *m;
		json_object_foreach(file, name, m) {
			const char *method = json_string_value(json_object_get(m, "method"));
			const char *ep = json_string_value(json_object_get(m, "endpoint"));
			if (ep && method &&
			    (strcmp(method, "GET") == 0 || strcmp(method, "ANY") == 0))
				json_object_set(mocks, ep, m);
		}
		json_decref(file);
	}
	closedir(d);
	return 0;
}

void canvas_mocks_free(void)
{
	json_decref(mocks);
	mocks = NULL;
}

/* text with every MOCK_SITE replaced by this server's mocks root (a new string) */
static char *relink(struct src_req *r, const char *text)
{
	if (srcp_get(&r->q, "keep_links"))
		return strdup(text);
	struct sbuf b = {0};
	const char *p = text, *hit;
	while ((hit = strstr(p, MOCK_SITE))) {
		sb_add(&b, p, (size_t)(hit - p));
		sb_fmt(&b, "%s/canvas/mocks/api/v1/", r->base);
		p = hit + strlen(MOCK_SITE);
	}
	sb_str(&b, p);
	return sb_take(&b);
}

void canvas_mocks_handle(struct src_req *r, const char *endpoint)
{
	char key[1024];
	snprintf(key, sizeof(key), "%s%s%s", endpoint, r->rq->query ? "?" : "",
	         r->rq->query ? r->rq->query : "");
	json_t *m = mocks ? json_object_get(mocks, key) : NULL;
	if (!m && mocks)
		m = json_object_get(mocks, endpoint);
	if (!m) {
		src_json(r, 404,
		         json_pack("{s:[{s:s}]}", "errors", "message",
		                   mocks ? "no mock for this endpoint"
		                         : "no mocks loaded (--canvas-mocks DIR)"),
		         0);
		return;
	}
	const char *hname;
	json_t *hv;
	json_object_foreach(json_object_get(m, "headers"), hname, hv) {
		if (!json_is_string(hv))
			continue;
		char *v = relink(r, json_string_value(hv));
		src_header(r, "%s: %s\r\n", hname, v);
		free(v);
	}
	json_t *data = json_object_get(m, "data");
	char *body = json_dumps(data ? data : json_null(), JSON_ENCODE_ANY);
	json_int_t status = json_integer_value(json_object_get(m, "status_code"));
	src_text(r, status ? (int)status : 200, "application/json; charset=utf-8",
	         relink(r, body ? body : "null"));
	free(body);
}
