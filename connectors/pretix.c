/* pretix: an event's items (with variations) and orders (with positions). Every ticket
 * holder is a person, identified as the badge prints it: order code and position
 * ("ABC12-1"); each holds memberships of kind "item" and, when the item has variations, of
 * kind "variation" ("item/variation"), add-ons included. Only paid orders are active. After a
 * first full fetch, the next ones ask only for orders modified since (X-Page-Generated of the
 * last fetch's first page, as pretix recommends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "fetch.h"
#include "pretix.h"

struct pretix {
	const struct source_env *env;
	struct fetcher *f;
	char base[768];
	connector_done done;
	void *ud;
	int step; /* 0 items, 1 orders */
	json_t *items, *orders;
	json_t **into;
	char generated[64], since[64];
};

static void fail(struct pretix *p, const struct err *err)
{
	connector_done done = p->done;
	p->done = NULL;
	if (done)
		done(p->ud, NULL, err);
}

static void fetch_orders(struct pretix *p);
static void finish(struct pretix *p);

static void on_first_page(void *ud, const struct httpc_response *resp)
{
	struct pretix *p = ud;
	char g[64];
	if (p->step == 1 && httpc_header(resp, "X-Page-Generated", g, sizeof(g)))
		snprintf(p->generated, sizeof(p->generated), "%s", g);
}

static void on_list(void *ud, json_t *items, unsigned pages, const struct err *err)
{
	struct pretix *p = ud;
	if (err) {
		fail(p, err);
		return;
	}
	*p->into = items;
	if (p->step++ == 0)
		fetch_orders(p);
	else
		finish(p);
}

static void get_list(struct pretix *p, const char *what, json_t **into)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s/%s", p->base, what);
	p->into = into;
	struct fetch_list l = {.url = url,
	                       .items_key = "results",
	                       .next_key = "next",
	                       .what = p->step ? "orders" : "items",
	                       .first = on_first_page};
	if (fetch_list(p->f, &l, on_list, p) != 0) {
		struct err e;
		err_set(&e, "%s: cannot start a request", p->env->cfg->name);
		fail(p, &e);
	}
}

static void fetch_orders(struct pretix *p)
{
	char what[160];
	if (p->since[0]) {
		/* the time is ISO 8601: its + and : must be encoded */
		char enc[128];
		fetch_escape(enc, sizeof(enc), p->since);
		snprintf(what, sizeof(what), "orders/?modified_since=%s", enc);
	} else {
		snprintf(what, sizeof(what), "orders/");
	}
	get_list(p, what, &p->orders);
}

/* a multi-language name ({"en": "...", "de": "..."}): English, else the first */
static json_t *lang(const json_t *v)
{
	if (json_is_string(v))
		return json_incref((json_t *)v);
	const json_t *en = json_object_get(v, "en");
	if (json_is_string(en))
		return json_incref((json_t *)en);
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (json_is_string(x))
			return json_incref(x);
	}
	return json_null();
}

static void add_memberships(json_t *members, const char *person, const json_t *pos,
                            const json_t *item_names, const json_t *var_names, int active)
{
	char item[32], var[64];
	json_int_t iid = json_integer_value(json_object_get(pos, "item"));
	snprintf(item, sizeof(item), "%" JSON_INTEGER_FORMAT, iid);
	json_t *name = json_object_get(item_names, item);
	json_array_append_new(members, json_pack("{s:s, s:s, s:s, s:O, s:s}", "person", person,
	                                         "kind", "item", "group", item, "group_name",
	                                         name ? name : json_null(), "status",
	                                         active ? "active" : "withdrawn"));
	const json_t *v = json_object_get(pos, "variation");
	if (json_is_integer(v)) {
		snprintf(var, sizeof(var), "%s/%" JSON_INTEGER_FORMAT, item, json_integer_value(v));
		json_t *vname = json_object_get(var_names, var);
		json_array_append_new(members,
		                      json_pack("{s:s, s:s, s:s, s:O, s:s}", "person", person,
		                                "kind", "variation", "group", var, "group_name",
		                                vname ? vname : json_null(), "status",
		                                active ? "active" : "withdrawn"));
	}
}

/* A ticket's check-ins as the position lists them: when it first entered (exits do not
 * count) and on which check-in lists. */
static void add_checkins(json_t *extra, const json_t *checkins)
{
	const char *first = NULL;
	json_t *lists = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(checkins, i, c) {
		const char *type = json_string_value(json_object_get(c, "type"));
		const char *at = json_string_value(json_object_get(c, "datetime"));
		if (type && strcmp(type, "entry") != 0)
			continue;
		if (at && (!first || strcmp(at, first) < 0))
			first = at;
		json_t *list = json_object_get(c, "list");
		if (json_is_integer(list)) {
			size_t k;
			json_t *seen;
			int dup = 0;
			json_array_foreach(lists, k, seen)
				dup |= json_equal(seen, list);
			if (!dup)
				json_array_append(lists, list);
		}
	}
	json_object_set_new(extra, "checked_in", json_boolean(first != NULL));
	json_object_set_new(extra, "checked_in_at", first ? json_string(first) : json_null());
	json_object_set_new(extra, "checkin_lists", lists);
}

json_t *pretix_snapshot(const json_t *items, const json_t *orders, int full)
{
	json_t *item_names = json_object(), *var_names = json_object();
	json_t *people = json_array(), *members = json_array();
	size_t i, k;
	json_t *o, *x;
	json_array_foreach(items, i, o) {
		char id[32];
		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(o, "id")));
		json_object_set_new(item_names, id, lang(json_object_get(o, "name")));
		json_array_foreach(json_object_get(o, "variations"), k, x) {
			char vid[64];
			snprintf(vid, sizeof(vid), "%s/%" JSON_INTEGER_FORMAT, id,
			         json_integer_value(json_object_get(x, "id")));
			json_object_set_new(var_names, vid, lang(json_object_get(x, "value")));
		}
	}
	json_array_foreach(orders, i, o) {
		const char *code = json_string_value(json_object_get(o, "code"));
		const char *status = json_string_value(json_object_get(o, "status"));
		if (!code || !status)
			continue;
		int paid = strcmp(status, "p") == 0;
		/* position id -> the person it belongs to, for add-ons */
		json_t *holder = json_object();
		json_t *positions = json_object_get(o, "positions");
		for (int pass = 0; pass < 2; pass++) {
			json_array_foreach(positions, k, x) {
				int addon = !json_is_null(json_object_get(x, "addon_to")) &&
				            json_object_get(x, "addon_to");
				if (addon != pass)
					continue;
				int active = paid && !json_is_true(json_object_get(x, "canceled"));
				char pid[32], person[64];
				if (addon) {
					snprintf(
					    pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
					    json_integer_value(json_object_get(x, "addon_to")));
					const char *h =
					    json_string_value(json_object_get(holder, pid));
					if (!h)
						continue;
					add_memberships(members, h, x, item_names, var_names,
					                active);
					continue;
				}
				snprintf(person, sizeof(person), "%s-%" JSON_INTEGER_FORMAT, code,
				         json_integer_value(json_object_get(x, "positionid")));
				snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
				         json_integer_value(json_object_get(x, "id")));
				json_object_set_new(holder, pid, json_string(person));
				json_t *email = json_object_get(x, "attendee_email");
				if (!json_is_string(email) || !*json_string_value(email))
					email = json_object_get(o, "email");
				json_t *name = json_object_get(x, "attendee_name");
				json_t *extra =
				    json_pack("{s:s, s:s}", "order", code, "order_status", status);
				add_checkins(extra, json_object_get(x, "checkins"));
				if (json_is_object(json_object_get(x, "attendee_name_parts")))
					json_object_set(extra, "name_parts",
					                json_object_get(x, "attendee_name_parts"));
				json_array_append_new(
				    people,
				    json_pack("{s:s, s:O, s:O, s:n, s:o}", "id", person, "name",
				              json_is_string(name) ? name : json_null(), "email",
				              json_is_string(email) ? email : json_null(),
				              "time_zone", "extra", extra));
				add_memberships(members, person, x, item_names, var_names, active);
			}
		}
		json_decref(holder);
	}
	json_decref(item_names);
	json_decref(var_names);
	return json_pack("{s:o, s:o, s:{s:b, s:b}}", "people", people, "memberships", members,
	                 "complete", "people", full, "memberships", full);
}

static void finish(struct pretix *p)
{
	json_t *snap = pretix_snapshot(p->items, p->orders, !p->since[0]);
	/* the next fetch asks for what changed since this one's first page was made */
	const char *cursor = p->generated[0] ? p->generated : p->since;
	if (cursor[0])
		json_object_set_new(snap, "cursor", json_pack("{s:s}", "modified_since", cursor));
	connector_done done = p->done;
	p->done = NULL;
	done(p->ud, snap, NULL);
}

static void *px_init(const struct source_env *env, struct err *err)
{
	const char *org = json_string_value(json_object_get(env->cfg->extra, "organizer"));
	const char *ev = json_string_value(json_object_get(env->cfg->extra, "event"));
	if (!env->cfg->url || !org || !ev) {
		err_set(err, "a pretix source needs \"url\", \"organizer\" and \"event\"");
		return NULL;
	}
	if (!env->token) {
		err_set(err, "a pretix source needs a token: set token_env");
		return NULL;
	}
	struct pretix *p = calloc(1, sizeof(*p));
	if (!p || !(p->f = fetcher_new(env, FETCH_AUTH_TOKEN, NULL))) {
		free(p);
		err_set(err, "out of memory");
		return NULL;
	}
	p->env = env;
	size_t n = strlen(env->cfg->url);
	while (n && env->cfg->url[n - 1] == '/')
		n--;
	int has_api = n >= 7 && strncmp(env->cfg->url + n - 7, "/api/v1", 7) == 0;
	snprintf(p->base, sizeof(p->base), "%.*s%s/organizers/%s/events/%s", (int)n, env->cfg->url,
	         has_api ? "" : "/api/v1", org, ev);
	const char *since = json_string_value(json_object_get(env->cursor, "modified_since"));
	if (since)
		snprintf(p->since, sizeof(p->since), "%s", since);
	return p;
}

static void px_sync(void *c, connector_done done, void *ud)
{
	struct pretix *p = c;
	p->done = done;
	p->ud = ud;
	p->step = 0;
	get_list(p, "items/", &p->items);
}

static void px_describe(void *c, char *buf, size_t size)
{
	snprintf(buf, size, "pretix at %s", ((struct pretix *)c)->base);
}

static void px_free(void *c)
{
	struct pretix *p = c;
	if (!p)
		return;
	fetcher_free(p->f);
	json_decref(p->items);
	json_decref(p->orders);
	free(p);
}

const struct connector_ops pretix_connector = {
    .type = "pretix",
    .init = px_init,
    .sync = px_sync,
    .describe = px_describe,
    .free = px_free,
};
