/* The fake pretix under /pretix/api/v1: one organizer ("campus") and event ("conf2026") with
 * items, orders and check-in lists. Token authentication, Django REST framework's list
 * envelope {count, next, previous, results} with absolute links, X-Page-Generated on lists
 * for incremental syncs (modified_since), and 429 + Retry-After when a request budget is
 * set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sources.h"

#define PAGE_MAX 50

static json_t *px(const char *k)
{
	return json_object_get(json_object_get(campus.root, "pretix"), k);
}

static void detail(struct src_req *r, int status, const char *message)
{
	src_json(r, status, json_pack("{s:s}", "detail", message), 0);
}

static const char *order_key; /* the field qsort compares orders by */
static int order_sign;

static int compare_orders(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *p = jstr(x, order_key), *q = jstr(y, order_key);
	int c = strcmp(p ? p : "", q ? q : "");
	if (!c)
		c = strcmp(jstr(x, "code"), jstr(y, "code"));
	return c * order_sign;
}

/* A page of list (borrowed) in the list envelope; the items are copies. */
static void list_page(struct src_req *r, json_t *list)
{
	static const char *const skip[] = {"page", NULL};
	long page = 1, size = src_long(srcp_get(&r->q, "page_size"));
	const char *ps = srcp_get(&r->q, "page");
	if (ps) {
		page = src_long(ps);
		if (page < 1) {
			detail(r, 404, "Invalid page.");
			return;
		}
	}
	if (size < 1 || size > PAGE_MAX)
		size = PAGE_MAX;
	size_t n = json_array_size(list), from = (size_t)((page - 1) * size);
	if (page > 1 && from >= n) {
		detail(r, 404, "Invalid page.");
		return;
	}
	json_t *results = json_array();
	for (size_t i = from; i < n && i < from + (size_t)size; i++)
		json_array_append_new(results, json_deep_copy(json_array_get(list, i)));
	char query[2048], url[2400];
	srcp_encode(&r->q, skip, query, sizeof(query));
	json_t *next = json_null(), *prev = json_null();
	if (from + (size_t)size < n) {
		snprintf(url, sizeof(url), "%s%s?%s%spage=%ld", r->base, r->rq->path, query,
		         *query ? "&" : "", page + 1);
		next = json_string(url);
	}
	if (page > 1) {
		/* as Django REST framework: the link to page 1 has no page parameter */
		if (page == 2)
			snprintf(url, sizeof(url), "%s%s%s%s", r->base, r->rq->path,
			         *query ? "?" : "", query);
		else
			snprintf(url, sizeof(url), "%s%s?%s%spage=%ld", r->base, r->rq->path, query,
			         *query ? "&" : "", page - 1);
		prev = json_string(url);
	}
	char generated[40];
	src_iso(r->now, generated, sizeof(generated), 1);
	src_header(r, "X-Page-Generated: %s\r\n", generated);
	src_json(r, 200,
	         json_pack("{s:I, s:o, s:o, s:o}", "count", (json_int_t)n, "next", next, "previous",
	                   prev, "results", results),
	         0);
}

static void orders(struct src_req *r)
{
	const char *since_s = srcp_get(&r->q, "modified_since");
	const char *status = srcp_get(&r->q, "status"), *code = srcp_get(&r->q, "code");
	const char *email = srcp_get(&r->q, "email"), *ordering = srcp_get(&r->q, "ordering");
	uint64_t since = 0, t;
	if (since_s && src_parse_iso(since_s, &since) != 0) {
		src_json(r, 400, json_pack("{s:[s]}", "modified_since", "Enter a valid date/time."),
		         0);
		return;
	}
	static const char *const sortable[] = {"datetime", "code",  "last_modified",
	                                       "status",   "email", NULL};
	if (ordering) {
		const char *k = ordering[0] == '-' ? ordering + 1 : ordering;
		bool known = false;
		for (const char *const *s = sortable; *s; s++)
			known = known || strcmp(*s, k) == 0;
		if (!known)
			ordering =
			    NULL; /* Django's OrderingFilter ignores fields it does not know */
	}
	json_t *all = px("orders");
	size_t n = json_array_size(all), m = 0, i;
	json_t **v = calloc(n ? n : 1, sizeof(json_t *));
	json_t *o;
	json_array_foreach(all, i, o) {
		if (!v || (status && strcmp(status, jstr(o, "status")) != 0) ||
		    (code && strcmp(code, jstr(o, "code")) != 0) ||
		    (email && strcasecmp(email, jstr(o, "email") ? jstr(o, "email") : "") != 0))
			continue;
		if (since && (src_parse_iso(jstr(o, "last_modified"), &t) != 0 || t < since))
			continue;
		v[m++] = o;
	}
	if (v && ordering) {
		order_sign = ordering[0] == '-' ? -1 : 1;
		order_key = ordering[0] == '-' ? ordering + 1 : ordering;
		qsort(v, m, sizeof(json_t *), compare_orders);
	}
	json_t *list = json_array();
	for (i = 0; v && i < m; i++)
		json_array_append(list, v[i]);
	free(v);
	list_page(r, list);
	json_decref(list);
}

static void throttle_window(struct src_req *r, long *wait)
{
	struct src_throttle *t = &src_throttle[SRC_PRETIX];
	*wait = 0;
	if (t->limit <= 0)
		return;
	uint64_t window = (uint64_t)t->window_s * 1000, now = src_mono_ms();
	if (!t->window_start || now >= t->window_start + window) {
		t->window_start = now;
		t->window_count = 0;
	}
	if (t->window_count >= t->limit) {
		uint64_t left = t->window_start + window - now;
		*wait = (long)((left + 999) / 1000);
		return;
	}
	t->window_count++;
}

void pretix_handle(struct src_req *r)
{
	const char *auth = r->rq->auth;
	if (!auth) {
		src_header(r, "WWW-Authenticate: Token\r\n");
		detail(r, 401, "Authentication credentials were not provided.");
		return;
	}
	if (strncmp(auth, "Token ", 6) != 0 || strcmp(auth + 6, sim.opts.source_token) != 0) {
		src_header(r, "WWW-Authenticate: Token\r\n");
		detail(r, 401, "Invalid token.");
		return;
	}
	long wait;
	throttle_window(r, &wait);
	if (wait) {
		char msg[96];
		snprintf(msg, sizeof(msg),
		         "Request was throttled. Expected available in %ld second%s.", wait,
		         wait == 1 ? "" : "s");
		src_header(r, "Retry-After: %ld\r\n", wait);
		detail(r, 429, msg);
		return;
	}
	if (strcmp(r->rq->method, "GET") != 0) {
		char msg[64];
		snprintf(msg, sizeof(msg), "Method \"%s\" not allowed.", r->rq->method);
		detail(r, 405, msg);
		return;
	}
	const char *p = r->sub;
	size_t len = strlen(p);
	if (len && p[len - 1] != '/') {
		/* Django adds the slash with a redirect */
		src_header(r, "Location: %s%s/%s%s\r\n", r->base, r->rq->path,
		           r->rq->query ? "?" : "", r->rq->query ? r->rq->query : "");
		src_text(r, 301, "text/html; charset=utf-8", strdup(""));
		return;
	}
	char org[64] = "", event[64] = "", what[64] = "", id[64] = "", extra[64] = "";
	const char *orgp = "/api/v1/organizers/";
	if (strncmp(p, orgp, strlen(orgp)) != 0) {
		detail(r, 404, "Not found.");
		return;
	}
	/* organizers/ORG/events/[EVENT/[WHAT/[ID/]]] */
	const char *s = p + strlen(orgp);
	char parts[6][64];
	int np = 0;
	while (*s && np < 6) {
		const char *slash = strchr(s, '/');
		if (!slash)
			break;
		snprintf(parts[np++], sizeof(parts[0]), "%.*s", (int)(slash - s), s);
		s = slash + 1;
	}
	if (np > 0)
		snprintf(org, sizeof(org), "%s", parts[0]);
	if (np > 2)
		snprintf(event, sizeof(event), "%s", parts[2]);
	if (np > 3)
		snprintf(what, sizeof(what), "%s", parts[3]);
	if (np > 4)
		snprintf(id, sizeof(id), "%s", parts[4]);
	if (np > 5)
		snprintf(extra, sizeof(extra), "%s", parts[5]);
	json_t *ev = px("event");
	if (*s || *extra || np < 2 ||
	    strcmp(org, jstr(json_object_get(campus.root, "pretix"), "organizer")) != 0 ||
	    strcmp(parts[1], "events") != 0 || (*event && strcmp(event, jstr(ev, "slug")) != 0)) {
		detail(r, 404, "Not found.");
		return;
	}
	if (!*event) {
		json_t *list = json_pack("[O]", ev);
		list_page(r, list);
		json_decref(list);
		return;
	}
	if (!*what) {
		src_json(r, 200, json_deep_copy(ev), 0);
		return;
	}
	const char *kinds[] = {"items", "orders", "checkinlists"};
	const char *key = NULL;
	for (size_t k = 0; k < 3; k++)
		if (strcmp(what, kinds[k]) == 0)
			key = kinds[k];
	if (!key) {
		detail(r, 404, "Not found.");
		return;
	}
	if (!*id) {
		if (strcmp(key, "orders") == 0)
			orders(r);
		else
			list_page(r, px(key));
		return;
	}
	json_t *found = NULL, *o;
	size_t i;
	if (strcmp(key, "orders") == 0)
		found = json_object_get(campus.px_orders, id);
	else
		json_array_foreach(px(key), i, o)
			if (src_long(id) >= 0 && jint(o, "id") == src_long(id))
				found = o;
	if (!found)
		detail(r, 404, "Not found.");
	else
		src_json(r, 200, json_deep_copy(found), 0);
}
