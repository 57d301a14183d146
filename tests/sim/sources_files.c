/* Fake file servers under /files/NAME: a published spreadsheet (CSV), an iCal feed, a holiday
 * table, a schedule export. Files are put there with POST /_sim/sources/files (or read from
 * --files DIR at start) and served with an ETag and a Last-Modified, answering a conditional
 * GET with 304 as a web server does, so that a client's If-None-Match and If-Modified-Since
 * can be seen to work. The sources' faults apply (source "files"). */
#define _XOPEN_SOURCE 700 /* strptime */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sim.h"
#include "sources.h"

#define MAX_FILE (64u * 1024 * 1024)

static json_t *files; /* name -> {text, content_type, etag, modified (ms), token?} */
static unsigned changes;

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static const char *type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {{".csv", "text/csv; charset=utf-8"},
	             {".ics", "text/calendar; charset=utf-8"},
	             {".json", "application/json"},
	             {".xml", "application/xml"},
	             {".tsv", "text/tab-separated-values"}};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* a path below /files: printable, no "..", so that an API's paths can be files too */
static int valid_name(const char *name)
{
	if (!*name || strlen(name) > 200 || name[0] == '.' || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 127)
			return 0;
	return 1;
}

/* name now holds text (len bytes); an unchanged text keeps its ETag and Last-Modified */
static void put(const char *name, const char *text, size_t len, const char *ctype,
                const char *token)
{
	if (!files)
		files = json_object();
	char etag[40];
	snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)fnv1a(text, len));
	json_t *old = json_object_get(files, name);
	if (old && strcmp(jstr(old, "etag"), etag) == 0) {
		json_object_set_new(old, "token", token ? json_string(token) : json_null());
		return;
	}
	changes++;
	json_object_set_new(files, name,
	                    json_pack("{s:s%, s:s, s:s, s:I}", "text", text, len, "content_type",
	                              ctype ? ctype : type_of(name), "etag", etag, "modified",
	                              (json_int_t)(src_now_ms() / 1000) * 1000));
	if (token)
		json_object_set_new(json_object_get(files, name), "token", json_string(token));
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	if (f && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size <= MAX_FILE && (buf = malloc((size_t)st.st_size + 1))) {
		if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
			free(buf);
			buf = NULL;
		} else {
			buf[st.st_size] = '\0';
			*len = (size_t)st.st_size;
		}
	}
	if (f)
		fclose(f);
	return buf;
}

int files_load(const char *dir, char *err, size_t errsize)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errsize, "cannot open the files directory %s", dir);
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!valid_name(e->d_name))
			continue;
		char path[1024];
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		char *text = read_all(path, &len);
		if (text)
			put(e->d_name, text, len, NULL, NULL);
		free(text);
	}
	closedir(d);
	return 0;
}

void files_free(void)
{
	json_decref(files);
	files = NULL;
}

static void http_date(uint64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static uint64_t parse_http_date(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return end ? (uint64_t)timegm(&tm) * 1000 : 0;
}

void files_handle(struct src_req *r)
{
	const char *name = r->sub[0] == '/' ? r->sub + 1 : r->sub;
	json_t *f = files ? json_object_get(files, name) : NULL;
	if (strcmp(r->rq->method, "GET") != 0 && strcmp(r->rq->method, "HEAD") != 0) {
		src_text(r, 405, "text/plain", strdup("only GET\n"));
		return;
	}
	if (!f) {
		src_text(r, 404, "text/html",
		         strdup("<html><body><h1>404 Not Found</h1></body></html>\n"));
		return;
	}
	/* a file put with a token wants it, as an API would ("Token T" or "Bearer T") */
	const char *token = jstr(f, "token"), *auth = r->rq->auth;
	if (token && !(auth && strchr(auth, ' ') && strcmp(strchr(auth, ' ') + 1, token) == 0)) {
		src_header(r, "WWW-Authenticate: Token\r\n");
		src_text(r, 401, "application/json", strdup("{\"detail\": \"Invalid token.\"}"));
		return;
	}
	char date[64];
	uint64_t modified = (uint64_t)json_integer_value(json_object_get(f, "modified"));
	http_date(modified, date, sizeof(date));
	src_header(r, "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: max-age=0\r\n",
	           jstr(f, "etag"), date);
	const char *inm = r->rq->if_none_match, *ims = r->rq->if_modified_since;
	int fresh =
	    inm ? strstr(inm, jstr(f, "etag")) != NULL : (ims && parse_http_date(ims) >= modified);
	if (fresh) {
		src_text(r, 304, NULL, strdup(""));
		return;
	}
	json_t *t = json_object_get(f, "text");
	char *body = malloc(json_string_length(t) + 1);
	if (body) {
		memcpy(body, json_string_value(t), json_string_length(t) + 1);
	}
	src_text(r, 200, jstr(f, "content_type"), body ? body : strdup(""));
}

/* POST /_sim/sources/files {"name", "text" | "path", "content_type"?, "token"?}; DELETE with
 * {"name"};
 * GET lists them */
void files_ctl(struct http_req *rq, struct http_resp *rs)
{
	json_t *b = rq->body;
	if (strcmp(rq->method, "GET") == 0) {
		json_t *out = json_object();
		const char *name;
		json_t *f;
		json_object_foreach(files, name, f) {
			json_object_set_new(
			    out, name,
			    json_pack("{s:s, s:s, s:I}", "etag", jstr(f, "etag"), "content_type",
			              jstr(f, "content_type"), "bytes",
			              (json_int_t)json_string_length(json_object_get(f, "text"))));
		}
		rs->status = 200;
		rs->body = json_pack("{s:o, s:i}", "files", out, "changes", changes);
		return;
	}
	const char *name = json_is_object(b) ? jstr(b, "name") : NULL;
	if (!name || !valid_name(name)) {
		rs->status = 400;
		rs->body =
		    json_pack("{s:s}", "error",
		              "needs {\"name\": NAME} (printable, no spaces, no ..), and \"text\" "
		              "or \"path\" to put a file");
		return;
	}
	if (strcmp(rq->method, "DELETE") == 0) {
		if (files)
			json_object_del(files, name);
		rs->status = 204;
		return;
	}
	json_t *text = json_object_get(b, "text");
	const char *path = jstr(b, "path");
	size_t len = 0;
	char *data = NULL;
	if (json_is_string(text)) {
		put(name, json_string_value(text), json_string_length(text),
		    jstr(b, "content_type"), jstr(b, "token"));
	} else if (path && (data = read_all(path, &len))) {
		put(name, data, len, jstr(b, "content_type"), jstr(b, "token"));
		free(data);
	} else {
		rs->status = 400;
		rs->body =
		    json_pack("{s:s}", "error",
		              path ? "cannot read that path (a regular file of at most 64 MiB)"
		                   : "needs \"text\" or \"path\"");
		return;
	}
	rs->status = 200;
	rs->body = json_pack("{s:s, s:s}", "name", name, "etag",
	                     jstr(json_object_get(files, name), "etag"));
}
