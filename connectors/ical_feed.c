/* iCal feeds: coaching sessions (per coach or per cohort) and events, expanded into instances
 * over a rolling window (past_days back, future_days ahead of today) and stored with their
 * organizer and attendees, so that a session can be tied to its coach and learners by e-mail.
 * The feed is asked for with If-None-Match / If-Modified-Since: an unchanged feed is a 304 and
 * nothing more, unless the window has moved on by a day since it was last expanded (then the
 * feed is read again, to find the instances that came into the window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connector.h"
#include "fetch.h"
#include "ical.h"
#include "log.h"

#define DAY 86400

struct icf {
	const struct source_env *env;
	struct fetcher *f;
	connector_done done;
	void *ud;
	time_t from, to;
	unsigned warnings;
};

static long days(const struct source_cfg *cfg, const char *key, long def)
{
	const json_t *v = json_object_get(cfg->extra, key);
	return json_is_number(v) ? (long)json_number_value(v) : def;
}

static void iso(time_t t, char *buf, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void *icf_init(const struct source_env *env, struct err *err)
{
	if (!env->cfg->url) {
		err_set(err, "an ical source needs \"url\"");
		return NULL;
	}
	struct icf *c = calloc(1, sizeof(*c));
	if (c)
		c->f = fetcher_new(env, env->token ? FETCH_AUTH_BEARER : FETCH_AUTH_NONE, NULL);
	if (!c || !c->f) {
		free(c);
		err_set(err, "out of memory");
		return NULL;
	}
	c->env = env;
	return c;
}

static void on_warning(const char *feed, int line, const char *msg, void *ud)
{
	struct icf *c = ud;
	/* a feed with a thousand broken events says so a few times, not a thousand */
	if (c->warnings++ < 20) {
		char ln[16];
		log_warn("ical", msg, "source", feed, "line", LOG_NUM(ln, "%d", line));
	}
}

/* an expanded instance as the calendar model stores it: all-day dates start at midnight UTC */
static json_t *stored(const json_t *in)
{
	json_t *o = json_deep_copy(in);
	if (json_is_true(json_object_get(o, "all_day"))) {
		const char *keys[] = {"start", "end"};
		for (size_t i = 0; i < 2; i++) {
			char t[32];
			snprintf(t, sizeof(t), "%.10sT00:00:00Z",
			         json_string_value(json_object_get(o, keys[i])));
			json_object_set_new(o, keys[i], json_string(t));
		}
	}
	json_object_del(o, "description");
	return o;
}

static void on_feed(void *ud, const struct httpc_response *resp, const struct err *err)
{
	struct icf *c = ud;
	connector_done done = c->done;
	c->done = NULL;
	if (err) {
		done(c->ud, NULL, err);
		return;
	}
	if (resp->status == 304) {
		done(c->ud, NULL, NULL);
		return;
	}
	const char *name = c->env->cfg->name;
	struct err e = {0};
	char ct[128] = "";
	httpc_header(resp, "Content-Type", ct, sizeof(ct));
	if (strstr(ct, "html")) {
		err_set(
		    &e,
		    "%s: answered with a web page (Content-Type %s), not a calendar: is the url "
		    "the feed's own (often ending in .ics)?",
		    name, ct);
		done(c->ud, NULL, &e);
		return;
	}
	c->warnings = 0;
	struct ical_opts o = {
	    .feed = name,
	    .from = c->from,
	    .to = c->to,
	    .default_tz = json_string_value(json_object_get(c->env->cfg->extra, "time_zone")),
	    .warn = on_warning,
	    .ud = c};
	json_t *all = ical_expand(resp->body ? resp->body : "", resp->body_len, &o, &e);
	if (!all) {
		struct err named;
		err_set(&named, "%s: %s", name, e.msg);
		done(c->ud, NULL, &named);
		return;
	}
	json_t *instances = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(all, i, x)
		json_array_append_new(instances, stored(x));
	json_decref(all);
	char from[32], to[32];
	iso(c->from, from, sizeof(from));
	iso(c->to, to, sizeof(to));
	json_t *cursor = json_pack("{s:s}", "window_to", to);
	fetch_keep_validators(resp, cursor);
	json_t *snap =
	    json_pack("{s:o, s:{s:s, s:s}, s:o, s:i}", "instances", instances, "window", "from",
	              from, "to", to, "cursor", cursor, "warnings", (int)c->warnings);
	done(c->ud, snap, NULL);
}

static void icf_sync(void *p, connector_done done, void *ud)
{
	struct icf *c = p;
	const struct source_cfg *cfg = c->env->cfg;
	time_t today = time(NULL) / DAY * DAY;
	c->from = today - days(cfg, "past_days", 30) * DAY;
	c->to = today + (days(cfg, "future_days", 365) + 1) * DAY;
	/* validators only while the stored expansion still reaches the window's end */
	const json_t *cur = c->env->cursor;
	char to[32];
	iso(c->to, to, sizeof(to));
	const char *was_to = json_string_value(json_object_get(cur, "window_to"));
	struct fetch_req rq = {.url = cfg->url};
	if (was_to && strcmp(was_to, to) >= 0)
		fetch_if_changed(&rq, cur);
	c->done = done;
	c->ud = ud;
	if (fetch(c->f, &rq, on_feed, c) != 0) {
		struct err e;
		c->done = NULL;
		err_set(&e, "%s: cannot start a request", cfg->name);
		done(ud, NULL, &e);
	}
}

static void icf_describe(void *p, char *buf, size_t size)
{
	const struct icf *c = p;
	snprintf(buf, size, "iCal feed %.*s", (int)strcspn(c->env->cfg->url, "?#"),
	         c->env->cfg->url);
}

static void icf_free(void *p)
{
	struct icf *c = p;
	if (c)
		fetcher_free(c->f);
	free(c);
}

const struct connector_ops ical_connector = {
    .type = "ical",
    .init = icf_init,
    .sync = icf_sync,
    .describe = icf_describe,
    .free = icf_free,
};
