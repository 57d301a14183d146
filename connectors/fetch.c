#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"

#define MAX_BODY      (16u * 1024 * 1024) /* pages are kilobytes; 16 MiB is a broken answer */
#define MAX_FAILURES  5                   /* network errors, timeouts, 5xx */
#define MAX_THROTTLES 10                  /* waits asked for by the source */
#define RETRY_BASE_MS 500

struct fetcher {
	const struct source_env *env;
	enum fetch_auth auth;
	long timeout_ms;
	char **headers; /* NULL-terminated, each "Name: value" */
	char origin[256];
	uv_timer_t timer;
	unsigned requests;
	/* the request in progress */
	int busy, inflight, freed, timer_open;
	struct fetch_req rq;
	char *url, *body, *content_type, *expect, *etag, *modified, *method;
	fetch_cb cb;
	void *ud;
	unsigned failures, throttles;
	uint64_t next_at; /* the source's own budget asks to wait until then (loop ms) */
	/* the list in progress (fetch_list) */
	void (*list_first)(void *ud, const struct httpc_response *resp);
	char *list_items_key, *list_next_key, *list_what;
	fetch_list_cb list_cb;
	void *list_ud;
	json_t *list_items;
	unsigned list_pages;
};

static double jitter(void)
{
	return (double)rand() / ((double)RAND_MAX + 1.0);
}

/* "https://host:port" of url, lower-cased scheme and host, or "" */
static void origin_of(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://");
	buf[0] = '\0';
	if (!p)
		return;
	size_t n = (size_t)(p + 3 - url);
	n += strcspn(p + 3, "/?#");
	if (n >= size)
		return;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] - 'A' + 'a' : url[i]);
	buf[n] = '\0';
}

int fetch_same_origin(const struct fetcher *f, const char *url)
{
	char o[256];
	origin_of(url, o, sizeof(o));
	return o[0] && strcmp(o, f->origin) == 0;
}

static char *strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct fetcher *fetcher_new(const struct source_env *env, enum fetch_auth auth,
                            const char *const *extra)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->env = env;
	f->auth = auth;
	const json_t *t = json_object_get(env->cfg->extra, "timeout_s");
	f->timeout_ms = json_is_number(t) ? (long)(json_number_value(t) * 1000.0) : 60000;
	origin_of(env->cfg->url ? env->cfg->url : "", f->origin, sizeof(f->origin));
	size_t n = 0;
	while (extra && extra[n])
		n++;
	f->headers = calloc(n + 2, sizeof(char *));
	if (!f->headers) {
		free(f);
		return NULL;
	}
	size_t k = 0;
	if (auth != FETCH_AUTH_NONE && env->token) {
		size_t len = strlen(env->token) + 32;
		f->headers[k] = malloc(len);
		if (f->headers[k])
			snprintf(f->headers[k++], len, "Authorization: %s %s",
			         auth == FETCH_AUTH_BEARER ? "Bearer" : "Token", env->token);
	}
	for (size_t i = 0; i < n; i++)
		if ((f->headers[k] = strdup(extra[i])))
			k++;
	uv_timer_init(env->loop, &f->timer);
	f->timer.data = f;
	f->timer_open = 1;
	return f;
}

static void clear_request(struct fetcher *f)
{
	free(f->url);
	free(f->body);
	free(f->content_type);
	free(f->expect);
	free(f->etag);
	free(f->modified);
	free(f->method);
	f->url = f->body = f->content_type = f->expect = f->etag = f->modified = f->method = NULL;
	f->busy = 0;
}

static void clear_list(struct fetcher *f)
{
	free(f->list_items_key);
	free(f->list_next_key);
	free(f->list_what);
	json_decref(f->list_items);
	f->list_items_key = f->list_next_key = f->list_what = NULL;
	f->list_items = NULL;
	f->list_cb = NULL;
}

static void release(struct fetcher *f)
{
	if (!f->freed || f->inflight || f->timer_open)
		return;
	clear_request(f);
	clear_list(f);
	for (char **h = f->headers; h && *h; h++) {
		/* the token is in here: leave no copy behind */
		memset(*h, 0, strlen(*h));
		free(*h);
	}
	free(f->headers);
	free(f);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct fetcher *f = h->data;
	f->timer_open = 0;
	release(f);
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	f->freed = 1;
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

unsigned fetcher_requests(const struct fetcher *f)
{
	return f->requests;
}

/* the URL without its query, for messages (a query may hold a token) */
static const char *shown(const char *url, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)strcspn(url, "?"), url);
	return buf;
}

static void finish(struct fetcher *f, const struct httpc_response *resp, const struct err *err)
{
	fetch_cb cb = f->cb;
	void *ud = f->ud;
	clear_request(f);
	cb(ud, resp, err);
}

static void send_now(struct fetcher *f);

static void on_timer(uv_timer_t *t)
{
	send_now(t->data);
}

static void again(struct fetcher *f, uint64_t ms)
{
	uv_timer_start(&f->timer, on_timer, ms, 0);
}

static void on_response(const struct httpc_response *resp, void *ud)
{
	struct fetcher *f = ud;
	f->inflight = 0;
	if (f->freed) {
		release(f);
		return;
	}
	char where[300], ct[128] = "", ra[32] = "", wa[8] = "";
	struct err err = {0};
	shown(f->url, where, sizeof(where));
	long st = resp->status;
	int canvas_throttle = st == 403 && resp->body && strstr(resp->body, "Rate Limit Exceeded");
	if (st == 429 || canvas_throttle) {
		if (++f->throttles <= MAX_THROTTLES) {
			double wait = 0;
			if (httpc_header(resp, "Retry-After", ra, sizeof(ra)))
				wait = strtod(ra, NULL) * 1000.0;
			/* without a Retry-After (Canvas), a second more each time: its bucket
			 * refills steadily */
			if (wait <= 0)
				wait = 1000.0 * (double)(f->throttles < 10 ? f->throttles : 10);
			wait = wait * (1.0 + 0.2 * jitter());
			char ms[32];
			log_info("fetch", "the source asks to slow down; waiting", "source",
			         f->env->cfg->name, "wait_ms", LOG_NUM(ms, "%.0f", wait));
			again(f, (uint64_t)wait);
			return;
		}
		err_set(&err, "%s: still throttled (%ld) after %d waits", where, st, MAX_THROTTLES);
		err.retryable = true;
		finish(f, NULL, &err);
		return;
	}
	if (st == 0 || st >= 500) {
		if (++f->failures < MAX_FAILURES) {
			uint64_t base = (uint64_t)RETRY_BASE_MS << (f->failures - 1);
			char code[24];
			log_warn("fetch", "retrying", "source", f->env->cfg->name, "status",
			         LOG_NUM(code, "%ld", st), "error", st ? NULL : resp->err.msg);
			again(f, base / 2 + (uint64_t)(jitter() * (double)base / 2));
			return;
		}
		if (st)
			err_set(&err, "%s: server error %ld, %d attempts", where, st, MAX_FAILURES);
		else
			err_set(&err, "%s: %s (%d attempts)", where, resp->err.msg, MAX_FAILURES);
		err.retryable = true;
		err.http_status = (int)st;
		finish(f, NULL, &err);
		return;
	}
	/* Canvas says how much of its budget is left: slow down before it refuses */
	char rem[32];
	if (httpc_header(resp, "X-Rate-Limit-Remaining", rem, sizeof(rem))) {
		double left = strtod(rem, NULL);
		/* about one request's worth of refill at Canvas's usual 10 units a second */
		uint64_t pause = left < 100 ? 150 : 0;
		f->next_at = pause ? uv_now(f->env->loop) + pause : 0;
	}
	if (st == 304 && (f->etag || f->modified)) {
		finish(f, resp, NULL);
		return;
	}
	if (st < 200 || st >= 300) {
		err.http_status = (int)st;
		/* Canvas alone answers 401 without WWW-Authenticate for a missing permission */
		if (st == 401 && (f->auth != FETCH_AUTH_BEARER ||
		                  httpc_header(resp, "WWW-Authenticate", wa, sizeof(wa))))
			err_set(
			    &err,
			    "the token was refused (401): it is wrong or has expired; put a valid "
			    "one in %s",
			    f->env->cfg->token_env ? f->env->cfg->token_env
			                           : "the source's token_env");
		else if (st == 401 || st == 403)
			err_set(&err, "%s: not allowed (%ld): the token's user lacks a permission",
			        where, st);
		else if (st == 404)
			err_set(&err, "%s: not found (404): is the source's url right?", where);
		else
			err_set(&err, "%s: HTTP %ld: %.120s", where, st,
			        resp->body ? resp->body : "");
		finish(f, NULL, &err);
		return;
	}
	if (f->expect) {
		httpc_header(resp, "Content-Type", ct, sizeof(ct));
		char lower[128];
		size_t i = 0;
		for (; ct[i] && i + 1 < sizeof(lower); i++)
			lower[i] = (char)(ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] - 'A' + 'a' : ct[i]);
		lower[i] = '\0';
		if (!strstr(lower, f->expect)) {
			char head[41];
			size_t n = 0;
			for (; n < 40 && n < resp->body_len; n++)
				head[n] = resp->body[n] >= ' ' && resp->body[n] < 127
				              ? resp->body[n]
				              : ' ';
			head[n] = '\0';
			err_set(
			    &err,
			    "%s: answered with Content-Type \"%s\", not %s (is the url right? it "
			    "begins: %s)",
			    where, ct[0] ? ct : "none", f->expect, head);
			finish(f, NULL, &err);
			return;
		}
	}
	finish(f, resp, NULL);
}

static void send_now(struct fetcher *f)
{
	if (f->freed)
		return;
	const char *hdrs[32];
	char ctype[160], inm[300], ims[160];
	size_t k = 0;
	for (char **h = f->headers; h && *h && k < 26; h++)
		hdrs[k++] = *h;
	if (f->content_type) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", f->content_type);
		hdrs[k++] = ctype;
	}
	if (f->etag) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s", f->etag);
		hdrs[k++] = inm;
	}
	if (f->modified) {
		snprintf(ims, sizeof(ims), "If-Modified-Since: %s", f->modified);
		hdrs[k++] = ims;
	}
	hdrs[k] = NULL;
	struct httpc_request q = {.method = f->method,
	                          .url = f->url,
	                          .headers = hdrs,
	                          .body = f->body,
	                          .body_len = f->body ? strlen(f->body) : 0,
	                          .timeout_ms = f->timeout_ms,
	                          .max_body = MAX_BODY};
	struct err err = {0};
	f->requests++;
	f->inflight = 1;
	if (httpc_send(f->env->http, &q, on_response, f, &err) != 0) {
		f->inflight = 0;
		finish(f, NULL, &err);
	}
}

int fetch(struct fetcher *f, const struct fetch_req *rq, fetch_cb cb, void *ud)
{
	if (f->busy || f->freed)
		return -1;
	f->busy = 1;
	f->cb = cb;
	f->ud = ud;
	f->failures = f->throttles = 0;
	f->url = strdup(rq->url);
	f->method = strdup_or_null(rq->method);
	f->body = strdup_or_null(rq->body);
	f->content_type = strdup_or_null(rq->content_type);
	f->expect = strdup_or_null(rq->expect);
	f->etag = strdup_or_null(rq->etag);
	f->modified = strdup_or_null(rq->modified);
	if (!f->url) {
		clear_request(f);
		return -1;
	}
	uint64_t now = uv_now(f->env->loop);
	if (f->next_at > now)
		again(f, f->next_at - now);
	else
		send_now(f);
	return 0;
}

int fetch_link_next(const struct fetcher *f, const struct httpc_response *resp, char *buf,
                    size_t size, struct err *err)
{
	char link[4096];
	if (!httpc_header(resp, "Link", link, sizeof(link)))
		return 0;
	/* <url>; rel="next", <url>; rel="last" ... */
	for (const char *p = link; (p = strchr(p, '<'));) {
		const char *e = strchr(p, '>');
		if (!e)
			break;
		const char *params = e + 1, *stop = strchr(params, '<');
		size_t plen = stop ? (size_t)(stop - params) : strlen(params);
		char rel[256];
		snprintf(rel, sizeof(rel), "%.*s", (int)(plen < 255 ? plen : 255), params);
		if (strstr(rel, "rel=\"next\"") || strstr(rel, "rel=next")) {
			size_t n = (size_t)(e - p - 1);
			if (n + 1 > size)
				return err_set(err, "a next-page link longer than %zu bytes", size);
			memcpy(buf, p + 1, n);
			buf[n] = '\0';
			if (!fetch_same_origin(f, buf))
				return err_set(
				    err,
				    "the next page is on another host (%s); not following it "
				    "with the source's token",
				    shown(buf, rel, sizeof(rel)));
			return 1;
		}
		p = e + 1;
	}
	return 0;
}

json_t *fetch_json(const struct fetcher *f, const struct httpc_response *resp, struct err *err)
{
	json_error_t je;
	json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &je);
	if (!j)
		err_set(err, "%s sent JSON that cannot be read (line %d, column %d: %s)",
		        f->env->cfg->name, je.line, je.column, je.text);
	return j;
}

void fetch_escape(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; *s && n + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = '\0';
}

/* --- paginated lists ------------------------------------------------------------------------ */

static const json_t *at_path(const json_t *j, const char *path)
{
	char key[64];
	while (j && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		j = json_object_get(j, key);
		path += n + (path[n] == '.');
	}
	return j;
}

static void list_end(struct fetcher *f, const struct err *err)
{
	fetch_list_cb cb = f->list_cb;
	void *ud = f->list_ud;
	json_t *items = err ? NULL : f->list_items;
	unsigned pages = f->list_pages;
	if (!err)
		f->list_items = NULL;
	clear_list(f);
	cb(ud, items, pages, err);
}

static void on_list_page(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct fetcher *f = ud;
	struct err e = {0};
	if (err) {
		list_end(f, err);
		return;
	}
	json_t *j = fetch_json(f, resp, &e);
	if (!j) {
		list_end(f, &e);
		return;
	}
	const json_t *items = f->list_items_key ? at_path(j, f->list_items_key) : j;
	if (!json_is_array(items)) {
		err_set(&e, "%s: expected a list of %s%s%s%s", f->env->cfg->name, f->list_what,
		        f->list_items_key ? " under \"" : "",
		        f->list_items_key ? f->list_items_key : "", f->list_items_key ? "\"" : "");
		json_decref(j);
		list_end(f, &e);
		return;
	}
	if (f->list_pages++ == 0 && f->list_first)
		f->list_first(f->list_ud, resp);
	json_array_extend(f->list_items, (json_t *)items);
	char next[2048];
	int rc = 0;
	if (!f->list_next_key) {
		rc = fetch_link_next(f, resp, next, sizeof(next), &e);
	} else {
		const char *u = json_string_value(at_path(j, f->list_next_key));
		if (u && strlen(u) >= sizeof(next)) {
			rc = err_set(&e, "a next-page link longer than %zu bytes", sizeof(next));
		} else if (u && !fetch_same_origin(f, u)) {
			char b[300];
			rc = err_set(&e,
			             "the next page is on another host (%s); not following it with "
			             "the source's token",
			             shown(u, b, sizeof(b)));
		} else if (u) {
			snprintf(next, sizeof(next), "%s", u);
			rc = 1;
		}
	}
	long long count = json_integer_value(json_object_get(j, "count"));
	json_decref(j);
	if (rc < 0) {
		list_end(f, &e);
		return;
	}
	if (rc == 0) {
		list_end(f, NULL);
		return;
	}
	if (f->env->progress && f->list_pages % 10 == 0) {
		char line[160];
		if (count > 0)
			snprintf(line, sizeof(line), "%zu of %lld %s",
			         json_array_size(f->list_items), count, f->list_what);
		else
			snprintf(line, sizeof(line), "%zu %s so far (%u pages)",
			         json_array_size(f->list_items), f->list_what, f->list_pages);
		f->env->progress(f->env->progress_ud, line);
	}
	struct fetch_req rq = {.url = next, .expect = "json"};
	if (fetch(f, &rq, on_list_page, f) != 0) {
		err_set(&e, "%s: cannot start a request", f->env->cfg->name);
		list_end(f, &e);
	}
}

int fetch_list(struct fetcher *f, const struct fetch_list *l, fetch_list_cb cb, void *ud)
{
	if (f->busy || f->freed || f->list_cb)
		return -1;
	f->list_first = l->first;
	f->list_items_key = strdup_or_null(l->items_key);
	f->list_next_key = strdup_or_null(l->next_key);
	f->list_what = strdup(l->what ? l->what : "items");
	f->list_items = json_array();
	f->list_pages = 0;
	f->list_cb = cb;
	f->list_ud = ud;
	struct fetch_req rq = {.url = l->url, .expect = "json"};
	if (!f->list_what || !f->list_items || (l->items_key && !f->list_items_key) ||
	    (l->next_key && !f->list_next_key) || fetch(f, &rq, on_list_page, f) != 0) {
		clear_list(f);
		return -1;
	}
	return 0;
}

void fetch_if_changed(struct fetch_req *rq, const json_t *cursor)
{
	rq->etag = json_string_value(json_object_get(cursor, "etag"));
	rq->modified = json_string_value(json_object_get(cursor, "last_modified"));
}

void fetch_keep_validators(const struct httpc_response *resp, json_t *cursor)
{
	char v[256];
	if (httpc_header(resp, "ETag", v, sizeof(v)))
		json_object_set_new(cursor, "etag", json_string(v));
	if (httpc_header(resp, "Last-Modified", v, sizeof(v)))
		json_object_set_new(cursor, "last_modified", json_string(v));
}
