/* A crowd registering at once: two hundred learners of the simulator's campus, split across
 * four servers, one per proof and source: a Canvas with codes through Canvas conversations, a
 * Moodle (XML) with codes through Moodle messages, a pretix with order codes and names (and an
 * extra role from a ticket's add-on), and a roster file with staff approval. They click, pick and
 * fill in modals together, with wrong codes, wrong names, entries others hold, identifiers no
 * roster knows, closed DMs, a slow Canvas and too many attempts (per account and per entry) among
 * them. At the end every member holds exactly the roles they earned, each cohort's channel is
 * visible to its role and hidden from everyone else, every failure got its message naming the
 * help channel, and each audit channel holds one line per outcome. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

enum { GC, GM, GP, GR, NG }; /* Canvas, Moodle, pretix, roster */

static const char *const GUILD[NG] = {"100000000000000031", "100000000000000032",
                                      "100000000000000033", "100000000000000034"};
static const char *const SOURCE[NG] = {"canvas", "moodle", "pretix", "roster"};
static const char *const METHOD[NG] = {"lms_code", "lms_code", "pretix_order", "staff_approval"};

#define STAFF     "100000000000000900"
#define LEARNERS  200
#define BLOCK     50 /* learners per server: 0-49 Canvas, 50-99 Moodle, ... */
#define EXTRAS    10
#define PER_USER  3
#define PER_ENTRY 4
#define P_VIEW    (1ull << 10)
/* the bot's role: manage channels, view, send, manage messages, history, nicknames, roles */
#define BOT_PERMS                                                                                  \
	((1ull << 4) | (1ull << 10) | (1ull << 11) | (1ull << 13) | (1ull << 16) | (1ull << 27) |  \
	 (1ull << 28))

/* One account in the crowd. */
struct who {
	int g;
	json_t *l; /* the campus learner; NULL for an account of nobody's */
	char label[48], user[32];
	char cohort[128];   /* the cohort they pick */
	char picks[3][128]; /* the values of the selects, in order */
	int npicks, picked;
	char entry[96]; /* the roster entry they are, as the audit names it ("canvas:1001") */
	char person[64];
	char ident[200], name[200]; /* what they type into the modal */
	char want[256];             /* the roles they must end with, "|A|B|" sorted */
	char nick[128];             /* the nickname they must end with ("" for none) */
	int registered, dm_closed, denied;
	char told[400]; /* what staff's decision tells them (by DM, or in #register) */
	char approval_msg[32], approve[64], deny[64];
	json_t *rec; /* the answer to their last interaction */
};

struct crowd {
	pid_t sim, bridge;
	int port;
	char simdir[96], dir[96], db[1024], cfg[512];
	json_t *campus, *orders; /* orders: pretix code -> order */
	char reg[NG][32], help[NG][32], audit[NG][32], approvals[NG][32];
	json_t *want_audit[NG]; /* the lines each audit channel must hold */
	struct who w[LEARNERS + EXTRAS];
	size_t n;
	int cohorts[NG]; /* cohort roles (and text channels) per server */
};

/* --- small helpers ------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *lstr(const json_t *l, const char *key)
{
	const char *s = json_string_value(json_object_get(l, key));
	return s ? s : "";
}

static long long lint(const json_t *l, const char *key)
{
	return (long long)json_integer_value(json_object_get(l, key));
}

static int count_sql(struct crowd *b, const char *sql)
{
	const char *v = th_sql(b->db, sql, 0);
	return v ? (int)strtol(v, NULL, 10) : -1;
}

static int wait_count(struct crowd *b, const char *sql, int want, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		if (count_sql(b, sql) >= want)
			return 1;
		usleep(100000);
	}
	return 0;
}

static void write_json(const char *dir, const char *name, json_t *j)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(json_dump_file(j, path, JSON_INDENT(1)), 0);
	json_decref(j);
}

static json_t *world_state(struct crowd *b)
{
	json_t *st = NULL;
	assert_int_equal(th_sim_call(b->port, "GET", "/_sim/state", NULL, &st), 200);
	return st;
}

static json_t *guild_in(json_t *st, int g)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(st, "guilds"), i, x)
		if (strcmp(lstr(x, "id"), GUILD[g]) == 0)
			return x;
	return NULL;
}

static json_t *by_id(json_t *list, const char *id)
{
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x)
		if (strcmp(lstr(x, "id"), id) == 0)
			return x;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A member's role names, sorted, as "|A|B|" ("|" for none; "" when not a member). */
static void roles_of(json_t *st, int g, const char *user, char *out, size_t cap)
{
	json_t *gj = guild_in(st, g), *m, *r;
	size_t i, k;
	out[0] = '\0';
	json_array_foreach(json_object_get(gj, "members"), i, m) {
		if (strcmp(lstr(json_object_get(m, "user"), "id"), user) != 0)
			continue;
		const char *names[64] = {0};
		size_t n = 0;
		json_array_foreach(json_object_get(m, "roles"), k, r) {
			json_t *role = by_id(json_object_get(gj, "roles"), json_string_value(r));
			if (role && n < 64)
				names[n++] = lstr(role, "name");
		}
		qsort(names, n, sizeof(*names), cmp_str);
		size_t len = (size_t)snprintf(out, cap, "|");
		for (size_t q = 0; q < n && len < cap; q++)
			len += (size_t)snprintf(out + len, cap - len, "%s|", names[q]);
	}
}

static const char *nick_of(json_t *st, int g, const char *user)
{
	json_t *m;
	size_t i;
	json_array_foreach(json_object_get(guild_in(st, g), "members"), i, m)
		if (strcmp(lstr(json_object_get(m, "user"), "id"), user) == 0)
			return lstr(m, "nick");
	return "";
}

/* "|" + the names sorted + "|" */
static void want_roles(struct who *w, const char *a, const char *b)
{
	if (b && strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	int n = snprintf(w->want, sizeof(w->want), "|%s|%s%s", a, b ? b : "", b ? "|" : "");
	assert_true(n > 0 && (size_t)n < sizeof(w->want));
}

/* --- the simulator, the mappings, the bridge ----------------------------------------------- */

static json_t *world_guild(int g)
{
	char bot[32];
	snprintf(bot, sizeof(bot), "%llu", (unsigned long long)BOT_PERMS);
	return json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:i}, {s:s, s:i, s:s, s:b}],"
	                 " s:[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}, {s:s, s:i}],"
	                 " s:[{s:{s:s, s:s}, s:[], s:b}]}",
	                 "id", GUILD[g], "name", SOURCE[g], "roles", "name", "@everyone",
	                 "permissions", "274879024129", "name", "Staff", "position", 20, "name",
	                 "cohortbridge", "position", 30, "permissions", bot, "bot", 1, "channels",
	                 "name", "register", "type", 0, "name", "help", "type", 0, "name",
	                 "approvals", "type", 0, "name", "audit", "type", 0, "members", "user",
	                 "id", STAFF, "username", "staffer", "roles", "owner", 1);
}

static json_t *registration(int g)
{
	json_t *r =
	    json_pack("{s:[s], s:s, s:{s:s, s:s, s:s}, s:{s:i, s:i, s:i}, s:b}", "sources",
	              SOURCE[g], "proof", METHOD[g], "channels", "registration", "register", "help",
	              "help", "audit", "audit", "attempts", "per_user", PER_USER, "per_entry",
	              PER_ENTRY, "window_minutes", 60, "set_nickname", g == GC);
	if (g == GR)
		json_object_set_new(json_object_get(r, "channels"), "approval",
		                    json_string("approvals"));
	if (g == GC || g == GM)
		json_object_set_new(r, "code_minutes", json_integer(10));
	return r;
}

/* Canvas: a cohort per course section ("Web Berlin 2026-01"); Moodle: a cohort per Moodle
 * cohort ("Web 2026-01"); pretix: a cohort per variation of the learner pass and a Workshop role
 * for the workshop add-on; the roster: a cohort set over city, program and cohort. */
static void mappings(struct crowd *b, const char *dir)
{
	json_t *cv = json_array(), *md = json_array(), *seen = json_object(), *l;
	size_t i;
	json_array_foreach(json_object_get(b->campus, "learners"), i, l) {
		char name[128], key[160], grp[16];
		snprintf(name, sizeof(name), "%s %s", lstr(l, "program"), lstr(l, "section"));
		snprintf(key, sizeof(key), "c:%s", name);
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			snprintf(grp, sizeof(grp), "%lld", lint(l, "canvas_section_id"));
			json_array_append_new(cv, json_pack("{s:s, s:{s:s, s:[s]}}", "name", name,
			                                    "match", "source", "canvas", "groups",
			                                    grp));
		}
		snprintf(key, sizeof(key), "m:%s", lstr(l, "cohort"));
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			snprintf(grp, sizeof(grp), "%lld", lint(l, "moodle_cohort_id"));
			json_array_append_new(md, json_pack("{s:s, s:{s:s, s:[s]}}", "name",
			                                    lstr(l, "cohort"), "match", "source",
			                                    "moodle", "groups", grp));
		}
	}
	json_decref(seen);
	b->cohorts[GC] = (int)json_array_size(cv);
	b->cohorts[GM] = (int)json_array_size(md);
	b->cohorts[GP] = 2;
	b->cohorts[GR] = 8;
	write_json(dir, "canvas.json",
	           json_pack("{s:s, s:o, s:o}", "guild", GUILD[GC], "cohorts", cv, "registration",
	                     registration(GC)));
	write_json(dir, "moodle.json",
	           json_pack("{s:s, s:o, s:o}", "guild", GUILD[GM], "cohorts", md, "registration",
	                     registration(GM)));
	write_json(dir, "pretix.json",
	           json_pack("{s:s, s:{s:{s:s}}, s:[{s:s, s:{s:s, s:[s]}}, {s:s, s:{s:s, s:[s]}}],"
	                     " s:[{s:s, s:[i], s:[s]}], s:o}",
	                     "guild", GUILD[GP], "roles", "workshop", "name", "Workshop", "cohorts",
	                     "name", "Pass Berlin", "match", "source", "pretix", "groups", "1/1",
	                     "name", "Pass Lisbon", "match", "source", "pretix", "groups", "1/2",
	                     "role_rules", "source", "pretix", "items", 3, "roles", "workshop",
	                     "registration", registration(GP)));
	write_json(dir, "roster.json",
	           json_pack("{s:s, s:[{s:s, s:s}], s:o}", "guild", GUILD[GR], "cohort_sets",
	                     "source", "roster", "name", "{program} {city} {cohort}",
	                     "registration", registration(GR)));
}

/* The roster file: the fourth block of learners, the withdrawn ones marked so. */
static const char *roster_csv(struct crowd *b)
{
	size_t cap = 64 * 1024, n = 0;
	char *csv = malloc(cap);
	assert_non_null(csv);
	n += (size_t)snprintf(csv + n, cap - n, "id,name,email,city,program,cohort,status\n");
	for (size_t k = 3 * BLOCK; k < 4 * BLOCK; k++) {
		json_t *l = json_array_get(json_object_get(b->campus, "learners"), k);
		n += (size_t)snprintf(csv + n, cap - n, "r%lld,\"%s\",%s,%s,%s,%s,%s\n",
		                      lint(l, "id"), lstr(l, "name"), lstr(l, "email"),
		                      lstr(l, "city"), lstr(l, "program"), lstr(l, "start"),
		                      strcmp(lstr(l, "status"), "active") == 0 ? "active"
		                                                               : "withdrawn");
	}
	const char *path = th_write_file(1, "roster.csv", csv);
	free(csv);
	return path;
}

static void run_bridge(struct crowd *b)
{
	b->bridge = th_bridge_run(b->cfg, b->db, b->port, b->dir, sizeof(b->dir));
}

static void channel_ids(struct crowd *b)
{
	json_t *st = world_state(b), *c;
	size_t i;
	for (int g = 0; g < NG; g++)
		json_array_foreach(json_object_get(guild_in(st, g), "channels"), i, c) {
			const char *name = lstr(c, "name");
			char *dst = strcmp(name, "register") == 0    ? b->reg[g]
			            : strcmp(name, "help") == 0      ? b->help[g]
			            : strcmp(name, "audit") == 0     ? b->audit[g]
			            : strcmp(name, "approvals") == 0 ? b->approvals[g]
			                                             : NULL;
			if (dst)
				snprintf(dst, 32, "%s", lstr(c, "id"));
		}
	json_decref(st);
}

static void up(struct crowd *b)
{
	memset(b, 0, sizeof(*b));
	json_t *world = json_pack("{s:[o, o, o, o]}", "guilds", world_guild(GC), world_guild(GM),
	                          world_guild(GP), world_guild(GR));
	char *wtext = json_dumps(world, JSON_COMPACT);
	json_decref(world);
	const char *wpath = th_write_file(0, "world.json", wtext);
	free(wtext);
	const char *args[] = {"--world", wpath, "--learners", "200", "--ratelimits", "fast", NULL};
	b->sim = th_sim_start(args, &b->port, b->simdir, sizeof(b->simdir));
	assert_int_equal(th_sim_call(b->port, "GET", "/_sim/sources", NULL, &b->campus), 200);
	assert_int_equal(json_array_size(json_object_get(b->campus, "learners")), LEARNERS);
	b->orders = json_object();
	json_t *o;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(b->campus, "pretix"), "orders"), i, o)
		json_object_set(b->orders, lstr(o, "code"), o);

	const char *mdir = th_tmpdir();
	mappings(b, mdir);
	const char *csv = roster_csv(b);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", b->port);
	/* no source is read again during the test: what members hold comes from registering */
	json_t *cfg = json_pack(
	    "{s:{s:s}, s:s, s:{s:[s], s:i}, s:[{s:s, s:s, s:s+, s:s, s:i}, {s:s, s:s, s:s+, s:s, "
	    "s:i, s:[i, i]}, {s:s, s:s, s:s+, s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:i}]}",
	    "http", "listen", "127.0.0.1:0", "mappings_dir", mdir, "discord", "staff_roles",
	    "Staff", "defer_ms", 2000, "sources", "name", "canvas", "type", "canvas", "url", base,
	    "/canvas", "token_env", "SRC_TOKEN", "interval_s", 3600, "name", "moodle", "type",
	    "moodle", "url", base, "/moodle", "token_env", "SRC_TOKEN", "interval_s", 3600,
	    "courses", 1, 2, "name", "pretix", "type", "pretix", "url", base, "/pretix",
	    "organizer", "campus", "event", "conf2026", "token_env", "SRC_TOKEN", "interval_s",
	    3600, "name", "roster", "type", "roster_file", "path", csv, "interval_s", 3600);
	char *ctext = json_dumps(cfg, JSON_INDENT(1));
	json_decref(cfg);
	snprintf(b->cfg, sizeof(b->cfg), "%s", th_write_file(2, "cohortbridge.json", ctext));
	free(ctext);
	th_fresh_db(b->db, sizeof(b->db));
	for (int g = 0; g < NG; g++)
		b->want_audit[g] = json_array();
	run_bridge(b);

	/* every source synced; the reconcile made every cohort's role and channels; each server
	 * has its Register message */
	int roles = b->cohorts[GC] + b->cohorts[GM] + b->cohorts[GP] + b->cohorts[GR];
	if (!wait_count(b, "SELECT count(DISTINCT source) FROM source_syncs WHERE ok", 4, 30000))
		fail_msg("the sources did not sync:\n%s", th_read(b->dir, "stderr"));
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM owned_objects WHERE kind IN ('role', 'text') AND (key LIKE "
	         "'cohort:%%' OR key = 'role:workshop') AND discord_id IS NOT NULL");
	if (!wait_count(b, sql, 2 * roles + 1, 60000))
		fail_msg(
		    "the reconcile did not make the cohorts' roles and channels (%d of %d):\n%s",
		    count_sql(b, sql), 2 * roles + 1, th_read(b->dir, "stderr"));
	assert_true(wait_count(b,
	                       "SELECT count(*) FROM owned_objects WHERE kind = 'message' AND "
	                       "key = 'register' AND discord_id IS NOT NULL",
	                       NG, 15000));
	channel_ids(b);
}

static void down(struct crowd *b)
{
	kill(b->bridge, SIGTERM);
	assert_int_equal(th_wait(b->bridge, 10000), 0);
	b->bridge = 0;
	th_sim_stop(b->sim);
	b->sim = 0;
	json_decref(b->campus);
	json_decref(b->orders);
	for (size_t i = 0; i < b->n; i++)
		json_decref(b->w[i].rec);
	for (int g = 0; g < NG; g++)
		json_decref(b->want_audit[g]);
}

/* After a failure too: the bridge and the simulator do not outlive the test. */
static int teardown(void **state)
{
	struct crowd *b = *state;
	if (!b)
		return 0;
	if (b->bridge > 0) {
		kill(b->bridge, SIGTERM);
		th_wait(b->bridge, 10000);
	}
	if (b->sim > 0) {
		kill(b->sim, SIGTERM);
		th_wait(b->sim, 10000);
	}
	free(b);
	*state = NULL;
	return 0;
}

/* --- the crowd ----------------------------------------------------------------------------- */

static struct who *enlist(struct crowd *b, int g, json_t *l, const char *label)
{
	assert_true(b->n < LEARNERS + EXTRAS);
	struct who *w = &b->w[b->n++];
	memset(w, 0, sizeof(*w));
	w->g = g;
	w->l = l;
	snprintf(w->label, sizeof(w->label), "%s", label);
	snprintf(w->want, sizeof(w->want), "|");
	char body[256];
	json_t *res = NULL;
	snprintf(body, sizeof(body), "{\"username\": \"%s\", \"guild_id\": \"%s\"}", label,
	         GUILD[g]);
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/members", body, &res), 200);
	snprintf(w->user, sizeof(w->user), "%s", lstr(json_object_get(res, "user"), "id"));
	json_decref(res);
	return w;
}

/* What a learner picks and types to be themselves on their server. */
static void as_learner(struct crowd *b, struct who *w, json_t *l, size_t k)
{
	char cohort[128];
	switch (w->g) {
	case GC:
		snprintf(cohort, sizeof(cohort), "%s %s", lstr(l, "program"), lstr(l, "section"));
		snprintf(w->person, sizeof(w->person), "%lld", lint(l, "id"));
		/* the e-mail as Canvas knows it; some type it in capitals */
		snprintf(w->ident, sizeof(w->ident), "%s", lstr(l, "email"));
		if (k % 5 == 1)
			for (char *p = w->ident; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
		break;
	case GM:
		snprintf(cohort, sizeof(cohort), "%s", lstr(l, "cohort"));
		snprintf(w->person, sizeof(w->person), "%lld", lint(l, "id"));
		/* the e-mail or the Moodle user name */
		snprintf(w->ident, sizeof(w->ident), "%s",
		         k % 2 ? lstr(l, "username") : lstr(l, "email"));
		break;
	case GP: {
		snprintf(cohort, sizeof(cohort), "Pass %s", lstr(l, "city"));
		const char *code = lstr(l, "pretix_order");
		snprintf(w->person, sizeof(w->person), "%s-1", code);
		/* the code as on the badge, in lower case, or bare; the name as written, or
		 * family name first in capitals */
		if (k % 3 == 0)
			snprintf(w->ident, sizeof(w->ident), "#%s-1", code);
		else if (k % 3 == 1)
			for (size_t q = 0; q <= strlen(code); q++)
				w->ident[q] =
				    (char)(code[q] >= 'A' && code[q] <= 'Z' ? code[q] - 'A' + 'a'
				                                            : code[q]);
		else
			snprintf(w->ident, sizeof(w->ident), "%s", code);
		if (k % 2)
			snprintf(w->name, sizeof(w->name), "%s", lstr(l, "name"));
		else {
			snprintf(w->name, sizeof(w->name), "%s, %s", lstr(l, "last_name"),
			         lstr(l, "first_name"));
			for (char *p = w->name; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
		}
		break;
	}
	default:
		snprintf(cohort, sizeof(cohort), "%s %s %s", lstr(l, "program"), lstr(l, "city"),
		         lstr(l, "start"));
		snprintf(w->person, sizeof(w->person), "r%lld", lint(l, "id"));
		if (k % 2)
			snprintf(w->ident, sizeof(w->ident), "r%lld", lint(l, "id"));
		else
			snprintf(w->ident, sizeof(w->ident), "%s", lstr(l, "email"));
		break;
	}
	snprintf(w->cohort, sizeof(w->cohort), "%s", cohort);
	snprintf(w->entry, sizeof(w->entry), "%s:%s", SOURCE[w->g], w->person);
	/* the selects each server shows: Canvas, Moodle and pretix cohorts name no city or
	 * program, so only the cohort is asked; the roster asks all three */
	w->npicks = 0;
	if (w->g == GR) {
		snprintf(w->picks[w->npicks++], 128, "%s", lstr(l, "city"));
		snprintf(w->picks[w->npicks++], 128, "%s", lstr(l, "program"));
	}
	snprintf(w->picks[w->npicks++], 128, "%s", cohort);
}

/* Whether a learner's entry is active in its source: enrolled (Canvas, Moodle), a paid order
 * (pretix), not withdrawn (the roster). */
static int active_in_source(struct crowd *b, int g, json_t *l)
{
	if (g == GP)
		return strcmp(lstr(json_object_get(b->orders, lstr(l, "pretix_order")), "status"),
		              "p") == 0;
	return strcmp(lstr(l, "status"), "active") == 0;
}

static int has_workshop(struct crowd *b, json_t *l)
{
	json_t *o = json_object_get(b->orders, lstr(l, "pretix_order")), *p;
	size_t i;
	json_array_foreach(json_object_get(o, "positions"), i, p)
		if (lint(p, "item") == 3)
			return 1;
	return 0;
}

/* --- acting: many interactions at once ----------------------------------------------------- */

struct act {
	struct who *w;
	json_t *body;
	char id[32];
	json_t *rec;
};

static json_t *interaction(struct crowd *b, struct who *w, const char *type, const char *cid)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "user_id", w->user, "guild_id",
	                 GUILD[w->g], "channel_id", b->reg[w->g], "custom_id", cid);
}

static void add_button(struct crowd *b, struct act *a, size_t *n, struct who *w, const char *cid)
{
	a[*n] = (struct act){.w = w, .body = interaction(b, w, "button", cid)};
	(*n)++;
}

static void add_select(struct crowd *b, struct act *a, size_t *n, struct who *w, const char *cid,
                       const char *value)
{
	json_t *body = interaction(b, w, "select", cid);
	json_object_set_new(body, "values", json_pack("[s]", value));
	a[*n] = (struct act){.w = w, .body = body};
	(*n)++;
}

static void add_modal(struct crowd *b, struct act *a, size_t *n, struct who *w, const char *cid,
                      json_t *fields)
{
	json_t *body = interaction(b, w, "modal", cid);
	json_object_set_new(body, "fields", fields);
	a[*n] = (struct act){.w = w, .body = body};
	(*n)++;
}

static int ephemeral(json_t *rec)
{
	json_t *d = json_object_get(json_array_get(json_object_get(rec, "callbacks"), 0), "data");
	return (json_integer_value(json_object_get(d, "flags")) & 64) != 0;
}

static int answered(json_t *rec)
{
	int t = th_ix_type(rec);
	if (t == 4 || t == 7 || t == 9)
		return 1;
	return (t == 5 || t == 6) && *th_ix_content(rec);
}

/* Sends every interaction, then waits for every answer (the acts' rec, and their account's). */
static void run(struct crowd *b, struct act *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *s = json_dumps(a[i].body, JSON_COMPACT);
		json_t *res = NULL;
		assert_int_equal(th_sim_call(b->port, "POST", "/_sim/interactions", s, &res), 200);
		snprintf(a[i].id, sizeof(a[i].id), "%s", lstr(res, "id"));
		json_decref(res);
		free(s);
	}
	size_t left = n;
	for (int t = 0; left && t < 900; t++) {
		usleep(50000);
		for (size_t i = 0; i < n; i++) {
			if (a[i].rec)
				continue;
			char path[96];
			json_t *rec = NULL;
			snprintf(path, sizeof(path), "/_sim/interactions/%s", a[i].id);
			th_sim_call(b->port, "GET", path, NULL, &rec);
			if (rec && answered(rec)) {
				a[i].rec = rec;
				left--;
			} else {
				json_decref(rec);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!a[i].rec)
			fail_msg("%zu of %zu interactions unanswered after 45 s; %s's: %s", left, n,
			         a[i].w->label, json_dumps(a[i].body, JSON_COMPACT));
		json_decref(a[i].w->rec);
		a[i].w->rec = a[i].rec;
		json_decref(a[i].body);
	}
}

/* Register, the selects, the identifier's modal: for everyone in ws at once. */
static void to_modal(struct crowd *b, struct who **ws, size_t n)
{
	struct act *a = calloc(n, sizeof(*a));
	size_t k = 0;
	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		add_button(b, a, &k, ws[i], "reg:start");
	run(b, a, k);
	for (int round = 0; round < 4; round++) {
		k = 0;
		for (size_t i = 0; i < n; i++) {
			struct who *w = ws[i];
			const char *cid = th_ix_first_cid(w->rec);
			if (!cid || strncmp(cid, "reg:pick:", 9) != 0)
				continue;
			if (w->picked >= w->npicks)
				fail_msg("%s: one select too many: %s", w->label,
				         th_ix_content(w->rec));
			char route[64];
			snprintf(route, sizeof(route), "%s", cid);
			add_select(b, a, &k, w, route, w->picks[w->picked++]);
		}
		if (!k)
			break;
		run(b, a, k);
	}
	k = 0;
	for (size_t i = 0; i < n; i++) {
		struct who *w = ws[i];
		const char *cid = th_ix_first_cid(w->rec);
		char bold[200];
		snprintf(bold, sizeof(bold), "**%s**", w->cohort);
		if (!cid || strcmp(cid, "reg:go") != 0 ||
		    strcmp(th_ix_content(w->rec), bold) != 0 || w->picked != w->npicks)
			fail_msg("%s: expected the cohort %s and its button, got %s / %s", w->label,
			         w->cohort, cid ? cid : "none", th_ix_content(w->rec));
		add_button(b, a, &k, w, "reg:go");
	}
	run(b, a, k);
	for (size_t i = 0; i < n; i++) {
		json_t *data = json_object_get(
		    json_array_get(json_object_get(ws[i]->rec, "callbacks"), 0), "data");
		if (th_ix_type(ws[i]->rec) != 9 ||
		    strcmp(lstr(data, "custom_id"), "reg:ident") != 0)
			fail_msg("%s: expected the identifier's modal", ws[i]->label);
	}
	free(a);
}

/* The identifier's modal, submitted (pretix: order code and name). */
static void add_ident(struct crowd *b, struct act *a, size_t *n, struct who *w, const char *ident,
                      const char *name)
{
	json_t *f = w->g == GP ? json_pack("{s:s, s:s}", "code", ident, "name", name)
	                       : json_pack("{s:s}", "ident", ident);
	add_modal(b, a, n, w, "reg:ident", f);
}

/* --- what the crowd must see ---------------------------------------------------------------- */

static void audit_expect(struct crowd *b, int g, const char *line)
{
	json_array_append_new(b->want_audit[g], json_string(line));
}

enum fail { F_NOT_FOUND, F_WRONG, F_TAKEN, F_TOO_MANY };

/* A refusal: the right text, privately, naming the help channel as a link; one audit line. */
static void refused(struct crowd *b, struct who *w, enum fail f, const char *reason)
{
	static const char *const needle[] = {"could not find you", "attempt(s) left",
	                                     "already linked to another Discord account",
	                                     "Too many attempts. Try again in 60 minutes"};
	const char *c = th_ix_content(w->rec);
	char help[40], line[200];
	snprintf(help, sizeof(help), "<#%s>", b->help[w->g]);
	if (!strstr(c, needle[f]) || !strstr(c, help) || !ephemeral(w->rec))
		fail_msg("%s (%s): expected a private \"%s\" naming %s, got \"%s\"", w->label,
		         reason, needle[f], help, c);
	snprintf(line, sizeof(line), "<@%s> failed to register: %s", w->user, reason);
	audit_expect(b, w->g, line);
}

/* Registered: the welcome, privately; one audit line; the roles and nickname to end with. */
static void welcomed(struct crowd *b, struct who *w)
{
	char want[200], line[400];
	snprintf(want, sizeof(want), "You are now in %s.", w->cohort);
	if (!strstr(th_ix_content(w->rec), want) || !ephemeral(w->rec))
		fail_msg("%s: expected the welcome to %s, got \"%s\"", w->label, w->cohort,
		         th_ix_content(w->rec));
	snprintf(line, sizeof(line), "<@%s> registered as %s (%s) by %s", w->user, w->entry,
	         w->cohort, METHOD[w->g]);
	audit_expect(b, w->g, line);
	w->registered = 1;
	want_roles(w, w->cohort, w->g == GP && has_workshop(b, w->l) ? "Workshop" : NULL);
	if (w->g == GC)
		snprintf(w->nick, sizeof(w->nick), "%s", lstr(w->l, "name"));
}

/* A first wrong proof (no failure before it, for the account or the entry): two left. */
static void two_left(struct who *w)
{
	if (!strstr(th_ix_content(w->rec), "That did not match. 2 attempt(s) left"))
		fail_msg("%s: expected 2 attempts left, got \"%s\"", w->label,
		         th_ix_content(w->rec));
}

/* A code sent: the text and the button that opens the code's modal. */
static void code_sent(struct who *w)
{
	if (!strstr(th_ix_content(w->rec), "We sent a code to your") || !th_ix_first_cid(w->rec) ||
	    strcmp(th_ix_first_cid(w->rec), "reg:code") != 0 || !ephemeral(w->rec))
		fail_msg("%s: expected a code sent through %s, got \"%s\"", w->label, SOURCE[w->g],
		         th_ix_content(w->rec));
}

/* The codes sent to a Canvas user or a Moodle user, from the LMS's own message log, oldest
 * first (at most max); returns how many. */
static size_t codes_to(struct crowd *b, int g, const char *person, char (*out)[8], size_t max)
{
	json_t *msgs = NULL, *m;
	char path[64];
	size_t n = 0, i;
	snprintf(path, sizeof(path), "/_sim/sources/%s/messages", SOURCE[g]);
	assert_int_equal(th_sim_call(b->port, "GET", path, NULL, &msgs), 200);
	long long id = strtoll(person, NULL, 10);
	json_array_foreach(msgs, i, m) {
		json_t *to = json_object_get(m, "recipients");
		int mine = g == GC ? json_array_size(to) == 1 &&
		                         json_integer_value(json_array_get(to, 0)) == id
		                   : lint(m, "touserid") == id;
		const char *at = strstr(lstr(m, g == GC ? "body" : "text"), "code is ");
		if (mine && at && strlen(at) >= 14 && n < max)
			snprintf(out[n++], 8, "%.6s", at + 8);
	}
	json_decref(msgs);
	return n;
}

/* The last code sent to that user. */
static void code_of(struct crowd *b, int g, const char *person, char out[8])
{
	char all[16][8];
	size_t n = codes_to(b, g, person, all, 16);
	if (!n)
		fail_msg("no code was sent to %s user %s", SOURCE[g], person);
	snprintf(out, 8, "%s", all[n - 1]);
}

/* A guess at someone else's code that is surely wrong: none of the codes sent to them. */
static void guess_for(struct crowd *b, int g, const char *person, long from, char out[8])
{
	char all[16][8];
	size_t n = codes_to(b, g, person, all, 16), k;
	for (long v = from;; v++) {
		snprintf(out, 8, "%06ld", v % 1000000);
		for (k = 0; k < n && strcmp(all[k], out) != 0; k++)
			;
		if (k == n)
			return;
	}
}

static void wrong_code(const char *code, char out[8])
{
	snprintf(out, 8, "%06ld", (strtol(code, NULL, 10) + 1) % 1000000);
}

/* The code button's modal and the code submitted, for everyone in ws (codes[i] each). */
static void enter_codes(struct crowd *b, struct who **ws, char (*codes)[8], size_t n)
{
	struct act *a = calloc(n ? n : 1, sizeof(*a));
	size_t k = 0;
	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		add_button(b, a, &k, ws[i], "reg:code");
	run(b, a, k);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (th_ix_type(ws[i]->rec) != 9)
			fail_msg("%s: expected the code's modal", ws[i]->label);
		add_modal(b, a, &k, ws[i], "reg:codesub", json_pack("{s:s}", "code", codes[i]));
	}
	run(b, a, k);
	free(a);
}

/* --- the end state ------------------------------------------------------------------------ */

/* Every account holds exactly the roles and nickname it earned. Returns the accounts that do
 * not; report: fail at the first. */
static size_t check_roles(struct crowd *b, json_t *st, int report)
{
	size_t bad = 0;
	for (size_t k = 0; k < b->n; k++) {
		struct who *w = &b->w[k];
		char got[256];
		roles_of(st, w->g, w->user, got, sizeof(got));
		const char *nick = nick_of(st, w->g, w->user);
		if (report && strcmp(got, w->want) != 0)
			fail_msg("%s (%s) holds %s, expected %s", w->label, w->user, got, w->want);
		if (report && strcmp(nick, w->nick) != 0)
			fail_msg("%s is called \"%s\", expected \"%s\"", w->label, nick, w->nick);
		bad += strcmp(got, w->want) != 0 || strcmp(nick, w->nick) != 0;
	}
	return bad;
}

/* What staff decided is told to the learner: by DM, or when their DMs are closed in the
 * registration channel, mentioning them; once, and only one way. */
static size_t check_told(struct crowd *b, json_t *st, int report)
{
	json_t *msgs = json_object_get(st, "messages"), *m;
	size_t bad = 0, i;
	for (size_t k = 0; k < b->n; k++) {
		struct who *w = &b->w[k];
		if (!w->told[0])
			continue;
		json_t *dm = json_object_get(json_object_get(st, "dm_channels"), w->user);
		char posted[600];
		size_t in_dm = 0, in_channel = 0;
		snprintf(posted, sizeof(posted), "<@%s> %s", w->user, w->told);
		json_array_foreach(json_object_get(msgs, lstr(dm, "id")), i, m)
			in_dm += strcmp(lstr(m, "content"), w->told) == 0;
		json_array_foreach(json_object_get(msgs, b->reg[w->g]), i, m)
			in_channel += strcmp(lstr(m, "content"), posted) == 0;
		int ok =
		    w->dm_closed ? in_dm == 0 && in_channel == 1 : in_dm == 1 && in_channel == 0;
		if (report && !ok)
			fail_msg("%s (DMs %s): \"%s\" %zu time(s) by DM, %zu time(s) in #register",
			         w->label, w->dm_closed ? "closed" : "open", w->told, in_dm,
			         in_channel);
		bad += !ok;
	}
	return bad;
}

/* Each audit channel holds one line per outcome, exactly the lines expected. */
static size_t check_audit(struct crowd *b, json_t *st, int report)
{
	size_t bad = 0, i;
	json_t *m;
	for (int g = 0; g < NG; g++) {
		json_t *lines = json_object_get(json_object_get(st, "messages"), b->audit[g]);
		size_t nh = 0, nw = json_array_size(b->want_audit[g]);
		const char **have = calloc(json_array_size(lines) + 1, sizeof(char *)),
		           **want = calloc(nw + 1, sizeof(char *));
		assert_true(have && want);
		json_array_foreach(lines, i, m)
			have[nh++] = lstr(m, "content");
		json_array_foreach(b->want_audit[g], i, m)
			want[i] = json_string_value(m);
		qsort(have, nh, sizeof(*have), cmp_str);
		qsort(want, nw, sizeof(*want), cmp_str);
		for (size_t q = 0; q < nh || q < nw; q++)
			if (q >= nh || q >= nw || strcmp(have[q], want[q]) != 0) {
				if (report)
					fail_msg(
					    "%s's audit channel: %zu lines, expected %zu; first "
					    "difference: \"%s\" where \"%s\" was expected",
					    SOURCE[g], nh, nw, q < nh ? have[q] : "(none)",
					    q < nw ? want[q] : "(none)");
				bad++;
				break;
			}
		free(have);
		free(want);
	}
	return bad;
}

/* Each cohort's text channel is hidden from @everyone and shown to its role, so that every
 * member sees exactly the one channel of their cohort (none when not registered). */
static void check_channels(struct crowd *b, json_t *st)
{
	for (int g = 0; g < NG; g++) {
		char sql[300], pairs[4096];
		snprintf(
		    sql, sizeof(sql),
		    "SELECT string_agg(t.discord_id || '=' || r.discord_id, ',') FROM "
		    "owned_objects t JOIN owned_objects r ON r.guild_id = t.guild_id AND r.kind "
		    "= 'role' AND r.key = t.key WHERE t.guild_id = '%s' AND t.kind = 'text'",
		    GUILD[g]);
		snprintf(pairs, sizeof(pairs), "%s", th_sql(b->db, sql, 0));
		json_t *gj = guild_in(st, g);
		int nch = 0;
		char *save = NULL;
		for (char *tok = strtok_r(pairs, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(tok, '=');
			assert_non_null(eq);
			*eq = '\0';
			const char *role = eq + 1;
			json_t *c = by_id(json_object_get(gj, "channels"), tok), *o;
			json_t *role_obj = by_id(json_object_get(gj, "roles"), role);
			size_t q;
			int hidden = 0, shown = 0;
			assert_non_null(c);
			assert_non_null(role_obj);
			nch++;
			json_array_foreach(json_object_get(c, "permission_overwrites"), q, o) {
				unsigned long long allow = strtoull(lstr(o, "allow"), NULL, 10),
				                   deny = strtoull(lstr(o, "deny"), NULL, 10);
				if (strcmp(lstr(o, "id"), GUILD[g]) == 0)
					hidden = (deny & P_VIEW) && !(allow & P_VIEW);
				else if (strcmp(lstr(o, "id"), role) == 0)
					shown = (allow & P_VIEW) != 0;
				else if (lint(o, "type") == 0 && (allow & P_VIEW))
					fail_msg("#%s is shown to another role too (%s)",
					         lstr(c, "name"), lstr(o, "id"));
			}
			if (!hidden || !shown)
				fail_msg("#%s: @everyone %s, its role %s", lstr(c, "name"),
				         hidden ? "denied" : "NOT denied",
				         shown ? "allowed" : "NOT allowed");
			char mark[160];
			snprintf(mark, sizeof(mark), "|%s|", lstr(role_obj, "name"));
			for (size_t k = 0; k < b->n; k++) {
				struct who *w = &b->w[k];
				if (w->g != g)
					continue;
				char got[256];
				roles_of(st, g, w->user, got, sizeof(got));
				int sees = strstr(got, mark) != NULL;
				int should =
				    w->registered && strcmp(w->cohort, lstr(role_obj, "name")) == 0;
				if (sees != should)
					fail_msg("%s %s #%s", w->label,
					         sees ? "sees" : "does not see", lstr(c, "name"));
			}
		}
		assert_int_equal(nch, b->cohorts[g]);
	}
}

/* --- the test ------------------------------------------------------------------------------- */

static void test_crowd_registration(void **state)
{
	struct crowd *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	*state = b;
	double t0 = now_s();
	up(b);
	double t_up = now_s();
	json_t *learners = json_object_get(b->campus, "learners");

	/* the cast: every learner on the server of their block, and ten accounts of nobody's */
	struct who *pool[NG][BLOCK];
	size_t npool[NG] = {0};
	for (size_t k = 0; k < LEARNERS; k++) {
		json_t *l = json_array_get(learners, k);
		int g = (int)(k / BLOCK);
		char label[48];
		snprintf(label, sizeof(label), "%s-%lld", SOURCE[g], lint(l, "id"));
		struct who *w = enlist(b, g, l, label);
		as_learner(b, w, l, k);
		pool[g][npool[g]++] = w;
	}
	/* the active learners of each server, in campus order, and the roles some play */
	struct who *act_[NG][BLOCK];
	size_t nact[NG] = {0};
	for (int g = 0; g < NG; g++)
		for (size_t i = 0; i < npool[g]; i++)
			if (active_in_source(b, g, pool[g][i]->l))
				act_[g][nact[g]++] = pool[g][i];
	for (int g = 0; g < NG; g++)
		assert_true(nact[g] >= 30 && nact[g] < BLOCK);
	/* Canvas: the last six answer while Canvas is slow; the first five type a wrong code
	 * first; three have closed their DMs (which changes nothing here) */
	struct who **slow = &act_[GC][nact[GC] - 6];
	struct who **cv_wrong = act_[GC];
	for (int i = 0; i < 3; i++)
		act_[GC][10 + i]->dm_closed = 1;
	/* Moodle: five type a wrong code first; the tenth is the entry two others guess codes
	 * for, until the entry is locked and its owner is refused */
	struct who **md_wrong = act_[GM];
	struct who *md_victim = act_[GM][10];
	/* pretix: five type a wrong name first; the tenth's order is guessed at by two others */
	struct who **px_wrong = act_[GP];
	struct who *px_victim = act_[GP][10];
	/* roster: staff deny three; some have their DMs closed (two approved, one denied) */
	struct who *ro_denied[3] = {act_[GR][5], act_[GR][6], act_[GR][7]};
	for (int i = 0; i < 3; i++)
		ro_denied[i]->denied = 1;
	act_[GR][7]->dm_closed = act_[GR][20]->dm_closed = act_[GR][21]->dm_closed = 1;

	struct who *cv_dup = enlist(b, GC, NULL, "canvas-dup"),
	           *cv_ghost = enlist(b, GC, NULL, "canvas-ghost"),
	           *md_att[2] = {enlist(b, GM, NULL, "moodle-guess1"),
	                         enlist(b, GM, NULL, "moodle-guess2")},
	           *px_att[2] = {enlist(b, GP, NULL, "pretix-guess1"),
	                         enlist(b, GP, NULL, "pretix-guess2")},
	           *px_dup = enlist(b, GP, NULL, "pretix-dup"),
	           *ro_dup = enlist(b, GR, NULL, "roster-dup"),
	           *ro_ghost = enlist(b, GR, NULL, "roster-ghost"),
	           *ro_twin = enlist(b, GR, NULL, "roster-twin");
	/* the extras pick the cohort of the learner whose entry they are after */
	struct {
		struct who *w, *like;
	} extra[] = {{cv_dup, act_[GC][0]},  {cv_ghost, act_[GC][1]}, {md_att[0], md_victim},
	             {md_att[1], md_victim}, {px_att[0], px_victim},  {px_att[1], px_victim},
	             {px_dup, act_[GP][1]},  {ro_dup, act_[GR][0]},   {ro_ghost, act_[GR][1]},
	             {ro_twin, act_[GR][2]}};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		struct who *w = extra[i].w, *like = extra[i].like;
		snprintf(w->cohort, sizeof(w->cohort), "%s", like->cohort);
		memcpy(w->picks, like->picks, sizeof(w->picks));
		w->npicks = like->npicks;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->w[i].dm_closed) {
			char path[96];
			snprintf(path, sizeof(path), "/_sim/users/%s/dms", b->w[i].user);
			assert_int_equal(
			    th_sim_call(b->port, "POST", path, "{\"open\": false}", NULL), 204);
		}
	double t_cast = now_s();

	/* 1. everyone at once: Register, City -> Program -> Cohort, the identifier's modal */
	struct who *all[LEARNERS + EXTRAS];
	for (size_t i = 0; i < b->n; i++)
		all[i] = &b->w[i];
	to_modal(b, all, b->n);
	double t_modal = now_s();

	/* 2. the identifiers, at once: everyone but the slow batch, the entries' owners being
	 * guessed at and the accounts after entries others are about to hold */
	struct act *a = calloc(b->n, sizeof(*a));
	size_t n = 0;
	assert_non_null(a);
	for (int g = 0; g < NG; g++)
		for (size_t i = 0; i < npool[g]; i++) {
			struct who *w = pool[g][i];
			int is_slow = 0;
			for (int s = 0; s < 6; s++)
				is_slow |= w == slow[s];
			if (is_slow || w == md_victim || w == px_victim)
				continue;
			int wrong_name = 0;
			for (int s = 0; s < 5; s++)
				wrong_name |= w == px_wrong[s];
			add_ident(b, a, &n, w, w->ident, wrong_name ? "Someone Else" : w->name);
		}
	add_ident(b, a, &n, cv_ghost, "nobody1@example.org", NULL);
	/* two accounts ask staff for one entry at the same time */
	add_ident(b, a, &n, ro_twin, act_[GR][2]->ident, NULL);
	for (int i = 0; i < 2; i++) {
		add_ident(b, a, &n, md_att[i], md_victim->ident, NULL);
		add_ident(b, a, &n, px_att[i], px_victim->ident, "Wrong Person");
	}
	run(b, a, n);
	for (size_t i = 0; i < n; i++) {
		struct who *w = a[i].w;
		int active = w->l && active_in_source(b, w->g, w->l);
		if (w == cv_ghost || (w->l && !active)) {
			refused(b, w, F_NOT_FOUND, "no such roster entry");
		} else if (w == px_att[0] || w == px_att[1] || w == px_wrong[0] ||
		           w == px_wrong[1] || w == px_wrong[2] || w == px_wrong[3] ||
		           w == px_wrong[4]) {
			refused(b, w, F_WRONG, "wrong name");
			if (w->l)
				two_left(w);
		} else if (w->g == GP) {
			welcomed(b, w);
		} else if (w->g == GR) {
			if (!strstr(th_ix_content(w->rec), "A member of staff will check") ||
			    !ephemeral(w->rec))
				fail_msg("%s: expected to wait for staff, got \"%s\"", w->label,
				         th_ix_content(w->rec));
		} else {
			code_sent(w);
		}
	}
	double t_ident = now_s();

	/* 3. Canvas is slow: each identifier is deferred, and the answer edits the deferral */
	assert_int_equal(th_sim_call(b->port, "POST", "/_sim/sources/faults",
	                             "{\"source\": \"canvas\", \"latency_ms\": 2500}", NULL),
	                 200);
	n = 0;
	for (int s = 0; s < 6; s++)
		add_ident(b, a, &n, slow[s], slow[s]->ident, NULL);
	run(b, a, n);
	assert_true(th_sim_call(b->port, "DELETE", "/_sim/sources/faults", NULL, NULL) / 100 == 2);
	for (int s = 0; s < 6; s++) {
		if (th_ix_type(slow[s]->rec) != 5)
			fail_msg("%s: a slow Canvas, but the answer was not deferred (type %d)",
			         slow[s]->label, th_ix_type(slow[s]->rec));
		code_sent(slow[s]);
	}
	double t_slow = now_s();

	/* 4. the codes from the LMS inboxes (wrong ones first for some, and the guesses), the
	 * second tries at pretix names, the ghost's second identifier */
	struct who *coders[LEARNERS + EXTRAS];
	char(*codes)[8] = calloc(b->n, sizeof(*codes));
	assert_non_null(codes);
	size_t nc = 0;
	for (int g = GC; g <= GM; g++)
		for (size_t i = 0; i < nact[g]; i++) {
			struct who *w = act_[g][i];
			if (w == md_victim)
				continue;
			code_of(b, g, w->person, codes[nc]);
			int first_wrong = 0;
			for (int s = 0; s < 5; s++)
				first_wrong |= w == (g == GC ? cv_wrong[s] : md_wrong[s]);
			if (first_wrong)
				wrong_code(codes[nc], codes[nc]);
			coders[nc++] = w;
		}
	for (int i = 0; i < 2; i++) {
		guess_for(b, GM, md_victim->person, 123456 + i, codes[nc]);
		coders[nc++] = md_att[i];
	}
	enter_codes(b, coders, codes, nc);
	for (size_t i = 0; i < nc; i++) {
		struct who *w = coders[i];
		int first_wrong = w == md_att[0] || w == md_att[1];
		for (int s = 0; s < 5; s++)
			first_wrong |= w == cv_wrong[s] || w == md_wrong[s];
		if (first_wrong) {
			refused(b, w, F_WRONG, "wrong code");
			if (w->l)
				two_left(w);
		} else {
			welcomed(b, w);
		}
	}
	/* pretix: the right name after a wrong one; the guessers' second wrong names */
	n = 0;
	for (int s = 0; s < 5; s++)
		add_ident(b, a, &n, px_wrong[s], px_wrong[s]->ident, px_wrong[s]->name);
	for (int i = 0; i < 2; i++)
		add_ident(b, a, &n, px_att[i], px_victim->ident, "Not Them");
	add_ident(b, a, &n, cv_ghost, "nobody2@example.org", NULL);
	run(b, a, n);
	for (size_t i = 0; i < n; i++) {
		struct who *w = a[i].w;
		if (w == cv_ghost)
			refused(b, w, F_NOT_FOUND, "no such roster entry");
		else if (w == px_att[0] || w == px_att[1])
			refused(b, w, F_WRONG, "wrong name");
		else
			welcomed(b, w);
	}
	double t_codes = now_s();

	/* 5. staff decide: every request has its message with Approve and Deny (the twin's
	 * waits) */
	snprintf(ro_twin->entry, sizeof(ro_twin->entry), "%s", act_[GR][2]->entry);
	struct who *asking[BLOCK + 1];
	size_t pending = 0;
	for (size_t k = 0; k < nact[GR]; k++)
		asking[pending++] = act_[GR][k];
	asking[pending++] = ro_twin;
	json_t *st = NULL;
	for (int t = 0; t < 150; t++) {
		json_decref(st);
		st = world_state(b);
		if (json_array_size(json_object_get(json_object_get(st, "messages"),
		                                    b->approvals[GR])) >= pending)
			break;
		usleep(100000);
	}
	json_t *m;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(st, "messages"), b->approvals[GR]), i,
	                   m) {
		json_t *row = json_object_get(json_array_get(json_object_get(m, "components"), 0),
		                              "components");
		for (size_t k = 0; k < pending; k++) {
			struct who *w = asking[k];
			char mention[200];
			snprintf(mention, sizeof(mention), "<@%s> asks to register as %s", w->user,
			         w->entry);
			if (!strstr(lstr(m, "content"), mention))
				continue;
			if (w->approval_msg[0])
				fail_msg("%s: two approval requests", w->label);
			snprintf(w->approval_msg, sizeof(w->approval_msg), "%s", lstr(m, "id"));
			snprintf(w->approve, sizeof(w->approve), "%s",
			         lstr(json_array_get(row, 0), "custom_id"));
			snprintf(w->deny, sizeof(w->deny), "%s",
			         lstr(json_array_get(row, 1), "custom_id"));
		}
	}
	json_decref(st);
	struct who *deciders = calloc(BLOCK + 1, sizeof(*deciders));
	assert_non_null(deciders);
	for (size_t k = 0; k < pending; k++)
		if (!asking[k]->approval_msg[0])
			fail_msg("%s: no approval request in #approvals", asking[k]->label);
	n = 0;
	for (size_t k = 0; k < nact[GR]; k++) {
		struct who *w = act_[GR][k];
		deciders[k].g = GR;
		snprintf(deciders[k].user, sizeof(deciders[k].user), "%s", STAFF);
		snprintf(deciders[k].label, sizeof(deciders[k].label), "staff on %.30s", w->label);
		json_t *body =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "button", "user_id", STAFF,
		              "guild_id", GUILD[GR], "channel_id", b->approvals[GR], "custom_id",
		              w->denied ? w->deny : w->approve, "message_id", w->approval_msg);
		a[n++] = (struct act){.w = &deciders[k], .body = body};
	}
	run(b, a, n);
	for (size_t k = 0; k < nact[GR]; k++) {
		struct who *w = act_[GR][k];
		char want[400], line[400];
		snprintf(want, sizeof(want), "%s by <@%s>: <@%s>, %s, %s",
		         w->denied ? "Denied" : "Approved", STAFF, w->user, w->entry, w->cohort);
		if (strcmp(th_ix_content(deciders[k].rec), want) != 0)
			fail_msg("deciding on %s: expected \"%s\", got \"%s\"", w->label, want,
			         th_ix_content(deciders[k].rec));
		json_decref(deciders[k].rec);
		deciders[k].rec = NULL;
		if (w->denied) {
			snprintf(line, sizeof(line), "<@%s> failed to register: denied by staff",
			         w->user);
			audit_expect(b, GR, line);
			snprintf(w->told, sizeof(w->told),
			         "Your registration was not approved. Please ask in <#%s>.",
			         b->help[GR]);
		} else {
			snprintf(w->told, sizeof(w->told), "Welcome, %s! You are now in %s.",
			         lstr(w->l, "name"), w->cohort);
			snprintf(line, sizeof(line),
			         "<@%s> registered as %s (%s) by staff_approval", w->user, w->entry,
			         w->cohort);
			audit_expect(b, GR, line);
			w->registered = 1;
			want_roles(w, w->cohort, NULL);
		}
	}
	double t_staff = now_s();

	/* 6. the right codes after the wrong ones; the guessers' second wrong codes; the ghost's
	 * third identifier */
	nc = 0;
	for (int s = 0; s < 5; s++) {
		code_of(b, GC, cv_wrong[s]->person, codes[nc]);
		coders[nc++] = cv_wrong[s];
		code_of(b, GM, md_wrong[s]->person, codes[nc]);
		coders[nc++] = md_wrong[s];
	}
	for (int x = 0; x < 2; x++) {
		guess_for(b, GM, md_victim->person, 654321 + x, codes[nc]);
		coders[nc++] = md_att[x];
	}
	enter_codes(b, coders, codes, nc);
	for (size_t k = 0; k < nc; k++) {
		if (coders[k] == md_att[0] || coders[k] == md_att[1])
			refused(b, coders[k], F_WRONG, "wrong code");
		else
			welcomed(b, coders[k]);
	}
	n = 0;
	add_ident(b, a, &n, cv_ghost, "nobody3@example.org", NULL);
	run(b, a, n);
	refused(b, cv_ghost, F_NOT_FOUND, "no such roster entry");

	/* 7. too many attempts: the ghost's fourth identifier (per account), and the owners of
	 * the entries guessed at (per entry); entries others hold, asked for by learners or
	 * approved by staff (the twin's request, now that the entry is another's); an identifier
	 * nobody has */
	n = 0;
	struct who *twin_decider = &deciders[BLOCK];
	twin_decider->g = GR;
	snprintf(twin_decider->user, sizeof(twin_decider->user), "%s", STAFF);
	snprintf(twin_decider->label, sizeof(twin_decider->label), "staff on roster-twin");
	a[n++] = (struct act){
	    .w = twin_decider,
	    .body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "button", "user_id", STAFF,
	                      "guild_id", GUILD[GR], "channel_id", b->approvals[GR], "custom_id",
	                      ro_twin->approve, "message_id", ro_twin->approval_msg)};
	add_ident(b, a, &n, cv_ghost, act_[GC][1]->ident, NULL);
	add_ident(b, a, &n, md_victim, md_victim->ident, NULL);
	add_ident(b, a, &n, px_victim, px_victim->ident, px_victim->name);
	add_ident(b, a, &n, cv_dup, act_[GC][0]->ident, NULL);
	add_ident(b, a, &n, px_dup, act_[GP][1]->ident, act_[GP][1]->name);
	add_ident(b, a, &n, ro_dup, act_[GR][0]->ident, NULL);
	add_ident(b, a, &n, ro_ghost, "r99999", NULL);
	run(b, a, n);
	refused(b, cv_ghost, F_TOO_MANY, "too many attempts");
	refused(b, md_victim, F_TOO_MANY, "too many attempts");
	refused(b, px_victim, F_TOO_MANY, "too many attempts");
	refused(b, cv_dup, F_TAKEN, "entry already taken");
	refused(b, px_dup, F_TAKEN, "entry already taken");
	refused(b, ro_dup, F_TAKEN, "entry already taken");
	refused(b, ro_ghost, F_NOT_FOUND, "no such roster entry");
	/* the twin's approval: staff see why it cannot be; the twin is told as the others */
	if (!strstr(th_ix_content(twin_decider->rec), "already linked to another Discord account"))
		fail_msg("approving the twin: \"%s\"", th_ix_content(twin_decider->rec));
	json_decref(twin_decider->rec);
	free(deciders);
	snprintf(ro_twin->told, sizeof(ro_twin->told),
	         "This registration is already linked to another Discord account. Please ask in "
	         "<#%s>.",
	         b->help[GR]);
	char twin_line[200];
	snprintf(twin_line, sizeof(twin_line), "<@%s> failed to register: entry already taken",
	         ro_twin->user);
	audit_expect(b, GR, twin_line);
	char twin_sql[200];
	snprintf(twin_sql, sizeof(twin_sql),
	         "SELECT count(*) FROM reg_approvals WHERE user_id = '%s' AND state = 'denied'",
	         ro_twin->user);
	assert_int_equal(count_sql(b, twin_sql), 1); /* the request ended, not approved */
	double t_last = now_s();

	/* --- the end state ------------------------------------------------------------------ */
	int regs[NG] = {0};
	for (size_t k = 0; k < b->n; k++)
		regs[b->w[k].g] += b->w[k].registered;
	for (int g = 0; g < NG; g++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM registrations WHERE guild_id = '%s'", GUILD[g]);
		assert_int_equal(count_sql(b, sql), regs[g]);
	}
	/* roles, nicknames, the DMs (or their fallback) and the audit lines, once the outbox
	 * has carried them out at Discord's pace (the bridge's own global limit, 50 requests a
	 * second) */
	st = NULL;
	for (int t = 0; t < 80; t++) {
		json_decref(st);
		st = world_state(b);
		if (!check_roles(b, st, 0) && !check_told(b, st, 0) && !check_audit(b, st, 0))
			break;
		usleep(500000);
	}
	double t_roles = now_s();
	check_roles(b, st, 1);
	check_told(b, st, 1);
	check_audit(b, st, 1);
	check_channels(b, st);
	json_decref(st);
	double t_end = now_s();
	printf("crowd: %zu accounts on %d servers, %d registered; setup %.1f s, cast %.1f s, "
	       "selects %.1f s, identifiers %.1f s, slow Canvas %.1f s, codes %.1f s, staff %.1f "
	       "s, retries and limits %.1f s, roles settled %.1f s, checks %.1f s; %.1f s in "
	       "all\n",
	       b->n, NG, regs[0] + regs[1] + regs[2] + regs[3], t_up - t0, t_cast - t_up,
	       t_modal - t_cast, t_ident - t_modal, t_slow - t_ident, t_codes - t_slow,
	       t_staff - t_codes, t_last - t_staff, t_roles - t_last, t_end - t_roles, t_end - t0);
	free(codes);
	free(a);
	down(b);
}

GROUP(group_crowd)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_crowd_registration, teardown),
	};
	return RUN_GROUP(tests);
}
