/* Conference schedules: pretalx's API (the event's talks, paged, with a token) or a published
 * export at url (frab JSON, frab XML, or an iCal feed), into schedule slots. An export is
 * asked for with If-None-Match / If-Modified-Since, so an unchanged one is a 304. A talk
 * without a slot (not scheduled yet) has no place in the schedule and is left out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connector.h"
#include "fetch.h"
#include "ical.h"
#include "schedule.h"

struct ptx {
	const struct source_env *env;
	struct fetcher *f;
	connector_done done;
	void *ud;
	int api;
};

static void finish(struct ptx *p, json_t *slots, json_t *cursor, const struct err *err)
{
	connector_done done = p->done;
	p->done = NULL;
	if (!slots) {
		json_decref(cursor);
		done(p->ud, NULL, err);
		return;
	}
	/* unscheduled talks: no start, no slot */
	json_t *kept = json_array();
	size_t i;
	json_t *s;
	json_array_foreach(slots, i, s) {
		if (json_is_string(json_object_get(s, "start")) &&
		    json_is_string(json_object_get(s, "end")))
			json_array_append(kept, s);
	}
	json_decref(slots);
	json_t *snap = json_pack("{s:o}", "slots", kept);
	if (cursor)
		json_object_set_new(snap, "cursor", cursor);
	done(p->ud, snap, NULL);
}

static void on_talks(void *ud, json_t *items, unsigned pages, const struct err *err)
{
	struct ptx *p = ud;
	if (err) {
		finish(p, NULL, NULL, err);
		return;
	}
	struct err e = {0};
	json_t *slots = schedule_parse_pretalx(items, p->env->cfg->name, &e);
	json_decref(items);
	finish(p, slots, NULL, &e);
}

/* an iCal export's events as slots: the uid (and recurrence id) names each */
static json_t *ical_slots(const struct ptx *p, const char *data, size_t len, struct err *err)
{
	time_t now = time(NULL);
	struct ical_opts o = {
	    .feed = p->env->cfg->name, .from = now - 366L * 86400, .to = now + 3 * 366L * 86400};
	json_t *all = ical_expand(data, len, &o, err);
	if (!all)
		return NULL;
	json_t *slots = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(all, i, x) {
		if (strcmp(json_string_value(json_object_get(x, "status")), "CANCELLED") == 0 ||
		    json_is_true(json_object_get(x, "all_day")))
			continue;
		char id[512];
		const json_t *rid = json_object_get(x, "recurrence_id");
		snprintf(id, sizeof(id), "%s%s%s", json_string_value(json_object_get(x, "uid")),
		         json_is_string(rid) ? "/" : "",
		         json_is_string(rid) ? json_string_value(rid) : "");
		json_array_append_new(
		    slots,
		    json_pack("{s:s, s:O, s:O, s:O, s:O, s:n, s:n, s:n, s:O, s:O, s:[], s:n}", "id",
		              id, "title", json_object_get(x, "summary"), "start",
		              json_object_get(x, "start"), "end", json_object_get(x, "end"), "room",
		              json_object_get(x, "location"), "track", "type", "language", "url",
		              json_object_get(x, "url"), "abstract",
		              json_object_get(x, "description"), "speakers", "status"));
	}
	json_decref(all);
	return slots;
}

static void on_export(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct ptx *p = ud;
	if (err) {
		finish(p, NULL, NULL, err);
		return;
	}
	if (resp->status == 304) {
		connector_done done = p->done;
		p->done = NULL;
		done(p->ud, NULL, NULL);
		return;
	}
	struct err e = {0};
	char ct[128] = "";
	httpc_header(resp, "Content-Type", ct, sizeof(ct));
	const char *data = resp->body ? resp->body : "";
	if (strstr(ct, "html")) {
		err_set(&e, "%s: answered with a web page (Content-Type %s), not a schedule",
		        p->env->cfg->name, ct);
		finish(p, NULL, NULL, &e);
		return;
	}
	const char *q = data;
	while (q < data + resp->body_len && strchr(" \t\r\n", *q))
		q++;
	json_t *slots = strstr(ct, "calendar") || strncmp(q, "BEGIN:VCALENDAR", 15) == 0
	                    ? ical_slots(p, data, resp->body_len, &e)
	                    : schedule_parse(data, resp->body_len, p->env->cfg->name, &e);
	json_t *cursor = json_object();
	fetch_keep_validators(resp, cursor);
	if (!slots && strncmp(e.msg, p->env->cfg->name, strlen(p->env->cfg->name)) != 0) {
		struct err named;
		err_set(&named, "%s: %s", p->env->cfg->name, e.msg);
		finish(p, NULL, cursor, &named);
		return;
	}
	finish(p, slots, cursor, &e);
}

static void *ptx_init(const struct source_env *env, struct err *err)
{
	const char *event = json_string_value(json_object_get(env->cfg->extra, "event"));
	const char *format = json_string_value(json_object_get(env->cfg->extra, "format"));
	if (!env->cfg->url) {
		err_set(err, "a pretalx source needs \"url\"");
		return NULL;
	}
	struct ptx *p = calloc(1, sizeof(*p));
	if (!p) {
		err_set(err, "out of memory");
		return NULL;
	}
	p->env = env;
	p->api = format ? strcmp(format, "api") == 0 : event != NULL;
	if (p->api && !event) {
		free(p);
		err_set(err, "a pretalx source read through the API needs \"event\"");
		return NULL;
	}
	p->f = fetcher_new(env, env->token ? FETCH_AUTH_TOKEN : FETCH_AUTH_NONE, NULL);
	if (!p->f) {
		free(p);
		err_set(err, "out of memory");
		return NULL;
	}
	return p;
}

static void ptx_sync(void *c, connector_done done, void *ud)
{
	struct ptx *p = c;
	const struct source_cfg *cfg = p->env->cfg;
	struct err e = {0};
	int rc;
	p->done = done;
	p->ud = ud;
	if (p->api) {
		char url[1024], ev[256];
		size_t n = strlen(cfg->url);
		while (n && cfg->url[n - 1] == '/')
			n--;
		fetch_escape(ev, sizeof(ev),
		             json_string_value(json_object_get(cfg->extra, "event")));
		snprintf(url, sizeof(url), "%.*s/api/events/%s/talks/?limit=100", (int)n, cfg->url,
		         ev);
		struct fetch_list l = {
		    .url = url, .items_key = "results", .next_key = "next", .what = "talks"};
		rc = fetch_list(p->f, &l, on_talks, p);
	} else {
		struct fetch_req rq = {.url = cfg->url};
		fetch_if_changed(&rq, p->env->cursor);
		rc = fetch(p->f, &rq, on_export, p);
	}
	if (rc != 0) {
		p->done = NULL;
		err_set(&e, "%s: cannot start a request", cfg->name);
		done(ud, NULL, &e);
	}
}

static void ptx_describe(void *c, char *buf, size_t size)
{
	const struct ptx *p = c;
	snprintf(buf, size, "pretalx %s %.*s", p->api ? "API" : "export",
	         (int)strcspn(p->env->cfg->url, "?#"), p->env->cfg->url);
}

static void ptx_free(void *c)
{
	struct ptx *p = c;
	if (p)
		fetcher_free(p->f);
	free(p);
}

const struct connector_ops pretalx_connector = {
    .type = "pretalx",
    .init = ptx_init,
    .sync = ptx_sync,
    .describe = ptx_describe,
    .free = ptx_free,
};
