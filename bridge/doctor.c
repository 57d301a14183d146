/* The set-up checks behind `cohortbridge doctor`.
 *
 * Each check prints one line: "ok" with what was found, or "problem" with what to do about
 * it. The checks read; they never change anything in Discord. Answers are awaited one at a
 * time by turning the loop, which keeps the sequence of checks as plain as the list it
 * prints. */
#include "doctor.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define P_ADMINISTRATOR        (1ull << 3)
#define P_MANAGE_CHANNELS      (1ull << 4)
#define P_VIEW_CHANNEL         (1ull << 10)
#define P_SEND_MESSAGES        (1ull << 11)
#define P_EMBED_LINKS          (1ull << 14)
#define P_READ_MESSAGE_HISTORY (1ull << 16)
#define P_CONNECT              (1ull << 20)
#define P_MANAGE_NICKNAMES     (1ull << 27)
#define P_MANAGE_ROLES         (1ull << 28)

/* Application flags: an intent is usable when either its full or its _LIMITED flag is set. */
static const struct {
	unsigned intent;
	const char *name, *portal;
	long long flags;
} privileged[] = {
    {1u << 1, "GUILD_MEMBERS", "Server Members Intent", (1ll << 14) | (1ll << 15)},
    {1u << 8, "GUILD_PRESENCES", "Presence Intent", (1ll << 12) | (1ll << 13)},
    {1u << 15, "MESSAGE_CONTENT", "Message Content Intent", (1ll << 18) | (1ll << 19)},
};

static const struct {
	unsigned long long bit;
	const char *name;
} perm_names[] = {
    {P_MANAGE_CHANNELS, "MANAGE_CHANNELS"},
    {P_VIEW_CHANNEL, "VIEW_CHANNEL"},
    {P_SEND_MESSAGES, "SEND_MESSAGES"},
    {P_EMBED_LINKS, "EMBED_LINKS"},
    {P_READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY"},
    {P_CONNECT, "CONNECT"},
    {P_MANAGE_NICKNAMES, "MANAGE_NICKNAMES"},
    {P_MANAGE_ROLES, "MANAGE_ROLES"},
};

struct doctor {
	uv_loop_t *loop;
	struct rest *rest;
	FILE *out;
	int problems;
	char bot_id[32];
};

/* One REST answer, kept after the callback (which only borrows the body). */
struct answer {
	int done;
	long status;
	int code;
	json_t *body;
	char msg[512];
};

static void on_answer(const struct rest_result *res, void *ud)
{
	struct answer *a = ud;
	a->done = 1;
	a->status = res->status;
	a->code = res->code;
	a->body = json_incref(res->body);
	snprintf(a->msg, sizeof(a->msg), "%s", res->err.msg);
}

/* GETs route and waits for the answer; a->status 0 means none came. */
static void get(struct doctor *d, const char *route, const char *const *args, struct answer *a)
{
	struct err err = {0};
	memset(a, 0, sizeof(*a));
	if (rest_send(d->rest, "GET", route, args, NULL, NULL, 0, on_answer, a, &err) != 0) {
		snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
		return;
	}
	while (!a->done && uv_run(d->loop, UV_RUN_ONCE))
		;
	if (!a->done)
		snprintf(a->msg, sizeof(a->msg), "no answer");
}

static void answer_clear(struct answer *a)
{
	json_decref(a->body);
	a->body = NULL;
}

static void ok(struct doctor *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct doctor *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ok(struct doctor *d, const char *fmt, ...)
{
	va_list ap;
	fputs("ok       ", d->out);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
}

static void problem(struct doctor *d, const char *fmt, ...)
{
	va_list ap;
	d->problems++;
	fputs("problem  ", d->out);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static unsigned long long perm(const json_t *v)
{
	if (json_is_integer(v))
		return (unsigned long long)json_integer_value(v);
	const char *s = json_string_value(v);
	return s ? strtoull(s, NULL, 10) : 0;
}

/* The names of the bits in p, comma-separated, into buf. */
static const char *perm_list(unsigned long long p, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
		if (!(p & perm_names[i].bit))
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", perm_names[i].name);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

static int has_voice(const struct mappings_guild *g)
{
	for (size_t i = 0; i < g->ncohorts; i++)
		if (g->cohorts[i].voice)
			return 1;
	for (size_t i = 0; i < g->nsets; i++)
		if (g->sets[i].voice)
			return 1;
	return 0;
}

/* Roles and channels are created and edited (MANAGE_*); a channel's overwrites may only grant
 * or deny what the bot holds itself, hence VIEW_CHANNEL, SEND_MESSAGES and, with voice
 * channels, CONNECT; registration posts and finds its message; nicknames only when asked. */
unsigned long long doctor_needed(const struct mappings_guild *g)
{
	unsigned long long p = P_MANAGE_ROLES | P_MANAGE_CHANNELS | P_VIEW_CHANNEL |
	                       P_SEND_MESSAGES | P_READ_MESSAGE_HISTORY;
	if (has_voice(g))
		p |= P_CONNECT;
	if (g->registration.proof != MAPPINGS_PROOF_NONE && g->registration.set_nickname)
		p |= P_MANAGE_NICKNAMES;
	return p;
}

static const json_t *role_by_id(const json_t *roles, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(roles, i, r) {
		if (id && jstr(r, "id") && strcmp(jstr(r, "id"), id) == 0)
			return r;
	}
	return NULL;
}

static int member_has(const json_t *member, const char *role_id)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(member, "roles"), i, v) {
		if (role_id && json_string_value(v) && strcmp(json_string_value(v), role_id) == 0)
			return 1;
	}
	return 0;
}

/* @everyone's permissions and those of every role the member holds. */
static unsigned long long base_perms(const char *guild, const json_t *roles, const json_t *member)
{
	const json_t *every = role_by_id(roles, guild);
	unsigned long long p = every ? perm(json_object_get(every, "permissions")) : 0;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(member, "roles"), i, v) {
		const json_t *r = role_by_id(roles, json_string_value(v));
		if (r)
			p |= perm(json_object_get(r, "permissions"));
	}
	return p;
}

/* Discord's order: @everyone's overwrite, then all the member's roles' overwrites together,
 * then the member's own. ADMINISTRATOR overrides every overwrite. */
static unsigned long long channel_perms(const char *guild, const char *bot_id,
                                        unsigned long long base, const json_t *member,
                                        const json_t *channel)
{
	if (base & P_ADMINISTRATOR)
		return ~0ull;
	unsigned long long p = base, allow = 0, deny = 0;
	const json_t *ows = json_object_get(channel, "permission_overwrites");
	size_t i;
	json_t *o;
	json_array_foreach(ows, i, o) {
		if (jstr(o, "id") && strcmp(jstr(o, "id"), guild) == 0) {
			p &= ~perm(json_object_get(o, "deny"));
			p |= perm(json_object_get(o, "allow"));
		}
	}
	json_array_foreach(ows, i, o) {
		const char *id = jstr(o, "id");
		if (json_integer_value(json_object_get(o, "type")) == 0 && id &&
		    strcmp(id, guild) != 0 && member_has(member, id)) {
			allow |= perm(json_object_get(o, "allow"));
			deny |= perm(json_object_get(o, "deny"));
		}
	}
	p = (p & ~deny) | allow;
	json_array_foreach(ows, i, o) {
		const char *id = jstr(o, "id");
		if (json_integer_value(json_object_get(o, "type")) == 1 && id &&
		    strcmp(id, bot_id) == 0) {
			p &= ~perm(json_object_get(o, "deny"));
			p |= perm(json_object_get(o, "allow"));
		}
	}
	return p;
}

/* Who, in the channel's overwrites, denies any of bits to the bot: "@everyone", role names or
 * "the bot itself", comma-separated into buf. */
static const char *deniers(const char *guild, const char *bot_id, const json_t *roles,
                           const json_t *member, const json_t *channel, unsigned long long bits,
                           char *buf, size_t size)
{
	size_t n = 0, i;
	json_t *o;
	buf[0] = '\0';
	json_array_foreach(json_object_get(channel, "permission_overwrites"), i, o) {
		const char *id = jstr(o, "id");
		if (!id || !(perm(json_object_get(o, "deny")) & bits))
			continue;
		const char *who = NULL;
		if (strcmp(id, guild) == 0)
			who = "@everyone";
		else if (json_integer_value(json_object_get(o, "type")) == 1 &&
		         strcmp(id, bot_id) == 0)
			who = "the bot itself";
		else if (member_has(member, id))
			who = role_by_id(roles, id) ? jstr(role_by_id(roles, id), "name") : id;
		if (!who)
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", who);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* A text channel named name, or NULL. */
static const json_t *channel_named(const json_t *channels, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(channels, i, c) {
		json_int_t type = json_integer_value(json_object_get(c, "type"));
		if ((type == 0 || type == 5) && jstr(c, "name") &&
		    strcmp(jstr(c, "name"), name) == 0)
			return c;
	}
	return NULL;
}

/* Appends a role name to the list in buf once. */
static void add_name(char *buf, size_t size, const char *name)
{
	size_t n = strlen(buf);
	char quoted[300];
	snprintf(quoted, sizeof(quoted), "\"%s\"", name);
	if (strstr(buf, quoted))
		return;
	snprintf(buf + n, size - n, "%s%s", n ? ", " : "", quoted);
}

/* The managed roles that exist must sit below the bot's highest role, or Discord refuses to
 * give or take them (403, 50013). Roles the bridge creates start at the bottom, so only the
 * ones already there can be in the way. */
static void check_hierarchy(struct doctor *d, const struct mappings_guild *g, const char *gname,
                            const json_t *roles, const json_t *member)
{
	long top = 0;
	const char *top_name = NULL;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(member, "roles"), i, v) {
		const json_t *r = role_by_id(roles, json_string_value(v));
		long pos = r ? (long)json_integer_value(json_object_get(r, "position")) : 0;
		if (r && (pos > top || !top_name)) {
			top = pos;
			top_name = jstr(r, "name");
		}
	}
	const char *names[512];
	size_t nn = 0;
	for (size_t k = 0; k < g->nstaff_roles && nn < 512; k++)
		names[nn++] = g->staff_roles[k].name;
	for (size_t k = 0; k < g->nroles && nn < 512; k++)
		names[nn++] = g->roles[k].name;
	for (size_t k = 0; k < g->ncohorts && nn < 512; k++)
		names[nn++] = g->cohorts[k].role;
	char above[2048] = "";
	size_t existing = 0;
	json_array_foreach(roles, i, v) {
		const char *name = jstr(v, "name");
		if (!name || (jstr(v, "id") && strcmp(jstr(v, "id"), g->guild_id) == 0))
			continue;
		for (size_t k = 0; k < nn; k++) {
			if (!names[k] || strcmp(names[k], name) != 0)
				continue;
			existing++;
			if ((long)json_integer_value(json_object_get(v, "position")) >= top)
				add_name(above, sizeof(above), name);
			break;
		}
	}
	if (above[0])
		problem(d,
		        "%s: the bot's highest role %s%s%s is not above %s: in Server Settings → "
		        "Roles, drag %s%s%s above them",
		        gname, top_name ? "\"" : "", top_name ? top_name : "(none)",
		        top_name ? "\"" : "", above, top_name ? "\"" : "",
		        top_name ? top_name : "the bot's role", top_name ? "\"" : "");
	else
		ok(d,
		   "%s: the bot's highest role%s%s%s is above the %zu managed role(s) that exist",
		   gname, top_name ? " \"" : "", top_name ? top_name : "", top_name ? "\"" : "",
		   existing);
}

static void check_channels(struct doctor *d, const struct mappings_guild *g, const char *gname,
                           const json_t *roles, const json_t *channels, const json_t *member,
                           unsigned long long base)
{
	if (g->registration.proof == MAPPINGS_PROOF_NONE)
		return;
	const struct {
		const char *what, *name;
	} named[] = {
	    {"registration", g->registration.registration_channel},
	    {"help", g->registration.help_channel},
	    {"approval", g->registration.approval_channel},
	    {"audit", g->registration.audit_channel},
	};
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (!named[i].name)
			continue;
		const json_t *c = channel_named(channels, named[i].name);
		if (!c) {
			problem(d, "%s: the %s channel #%s does not exist: create it", gname,
			        named[i].what, named[i].name);
			continue;
		}
		unsigned long long need = P_VIEW_CHANNEL | P_SEND_MESSAGES;
		unsigned long long have = channel_perms(g->guild_id, d->bot_id, base, member, c);
		unsigned long long miss = need & ~have;
		if (!miss) {
			ok(d, "%s: the bot can view and send in #%s (%s channel)", gname,
			   named[i].name, named[i].what);
			continue;
		}
		char list[256], who[512];
		perm_list(miss, list, sizeof(list));
		deniers(g->guild_id, d->bot_id, roles, member, c, miss, who, sizeof(who));
		if (who[0])
			problem(d,
			        "%s: in #%s (%s channel) the bot lacks %s: the channel's overwrite "
			        "for %s denies it; allow %s for the bot's role in the channel's "
			        "permissions",
			        gname, named[i].name, named[i].what, list, who, list);
		else
			problem(d,
			        "%s: in #%s (%s channel) the bot lacks %s: allow it for the bot's "
			        "role in the channel's permissions",
			        gname, named[i].name, named[i].what, list);
	}
}

static void check_guild(struct doctor *d, const struct mappings_guild *g)
{
	char gname[300];
	if (g->label)
		snprintf(gname, sizeof(gname), "guild %s (%s)", g->guild_id, g->label);
	else
		snprintf(gname, sizeof(gname), "guild %s", g->guild_id);
	const char *args[] = {g->guild_id, d->bot_id, NULL};
	struct answer mem, roles, chans;
	get(d, "/guilds/{guild_id}/members/{user_id}", args, &mem);
	if (mem.status != 200 || !json_is_object(mem.body)) {
		if (mem.status == 404 || mem.status == 403)
			problem(d,
			        "%s: the bot is not in this server: invite it with the URL below",
			        gname);
		else
			problem(d, "%s: cannot read the bot's member: %s", gname,
			        mem.msg[0] ? mem.msg : "unexpected answer");
		answer_clear(&mem);
		return;
	}
	ok(d, "%s: the bot is in this server", gname);
	get(d, "/guilds/{guild_id}/roles", args, &roles);
	get(d, "/guilds/{guild_id}/channels", args, &chans);
	if (roles.status != 200 || !json_is_array(roles.body) || chans.status != 200 ||
	    !json_is_array(chans.body)) {
		problem(d, "%s: cannot read its roles and channels: %s", gname,
		        roles.msg[0]   ? roles.msg
		        : chans.msg[0] ? chans.msg
		                       : "unexpected answer");
		goto done;
	}
	check_hierarchy(d, g, gname, roles.body, mem.body);
	unsigned long long base = base_perms(g->guild_id, roles.body, mem.body);
	unsigned long long need = doctor_needed(g);
	char list[512];
	if (base & P_ADMINISTRATOR)
		ok(d, "%s: the bot has ADMINISTRATOR, which covers every permission it needs",
		   gname);
	else if (need & ~base)
		problem(d,
		        "%s: the bot lacks %s: give its role these permissions (Server Settings → "
		        "Roles), or invite it again with the URL below",
		        gname, perm_list(need & ~base, list, sizeof(list)));
	else
		ok(d, "%s: the bot has the permissions it needs (%s)", gname,
		   perm_list(need, list, sizeof(list)));
	check_channels(d, g, gname, roles.body, chans.body, mem.body, base);
done:
	answer_clear(&mem);
	answer_clear(&roles);
	answer_clear(&chans);
}

static int check_token(struct doctor *d)
{
	struct answer me;
	get(d, "/users/@me", NULL, &me);
	if (me.status == 200 && jstr(me.body, "id")) {
		snprintf(d->bot_id, sizeof(d->bot_id), "%s", jstr(me.body, "id"));
		ok(d, "token: works; the bot is %s (id %s)",
		   jstr(me.body, "username") ? jstr(me.body, "username") : "?", d->bot_id);
		answer_clear(&me);
		return 0;
	}
	if (me.status == 401)
		problem(d, "token: Discord refused it (401 Unauthorized): copy the bot's token "
		           "from the Developer Portal (Bot → Reset Token) into DISCORD_TOKEN");
	else if (me.status == 0)
		problem(d, "token: cannot reach Discord: %s", me.msg[0] ? me.msg : "no answer");
	else
		problem(d, "token: Discord answered %ld: %s", me.status,
		        me.msg[0] ? me.msg : "unexpected answer");
	answer_clear(&me);
	return -1;
}

/* The application's id for the invite URL (the bot user's id when it cannot be read). */
static void check_intents(struct doctor *d, unsigned intents, char *app_id, size_t size)
{
	struct answer app;
	snprintf(app_id, size, "%s", d->bot_id);
	get(d, "/applications/@me", NULL, &app);
	if (app.status != 200 || !json_is_object(app.body)) {
		problem(d, "intents: cannot read the application: %s",
		        app.msg[0] ? app.msg : "unexpected answer");
		answer_clear(&app);
		return;
	}
	if (jstr(app.body, "id"))
		snprintf(app_id, size, "%s", jstr(app.body, "id"));
	long long flags = json_integer_value(json_object_get(app.body, "flags"));
	for (size_t i = 0; i < sizeof(privileged) / sizeof(privileged[0]); i++) {
		if (!(intents & privileged[i].intent))
			continue;
		if (flags & privileged[i].flags)
			ok(d, "intents: %s is enabled", privileged[i].name);
		else
			problem(d,
			        "intents: %s is not enabled: in the Developer Portal, open the "
			        "application → Bot → Privileged Gateway Intents and switch on %s",
			        privileged[i].name, privileged[i].portal);
	}
	answer_clear(&app);
}

int doctor_run(uv_loop_t *loop, struct rest *rest, const struct mappings *m,
               const struct doctor_opts *o)
{
	struct doctor d = {.loop = loop, .rest = rest, .out = o->out ? o->out : stdout};
	unsigned long long need = 0;
	for (size_t i = 0; i < m->nguilds; i++)
		if (!o->guild || strcmp(o->guild, m->guilds[i].guild_id) == 0)
			need |= doctor_needed(&m->guilds[i]);
	if (!need)
		need = P_MANAGE_ROLES | P_MANAGE_CHANNELS | P_VIEW_CHANNEL | P_SEND_MESSAGES |
		       P_READ_MESSAGE_HISTORY;
	if (check_token(&d) != 0) {
		fprintf(d.out, "\nthe invite URL needs a working token\n");
		return 1;
	}
	char app_id[32];
	/* The bridge reads members and their changes: GUILD_MEMBERS whatever the config says. */
	check_intents(&d, o->intents | (1u << 1), app_id, sizeof(app_id));
	if (!m->nguilds)
		problem(&d,
		        "mappings: they describe no guild: write a mapping file for the server");
	for (size_t i = 0; i < m->nguilds; i++)
		if (!o->guild || strcmp(o->guild, m->guilds[i].guild_id) == 0)
			check_guild(&d, &m->guilds[i]);
	char list[512];
	fprintf(d.out,
	        "\ninvite URL (permissions %s):\n"
	        "https://discord.com/oauth2/"
	        "authorize?client_id=%s&scope=bot%%20applications.commands&permissions=%llu\n",
	        perm_list(need, list, sizeof(list)), app_id, need);
	fprintf(d.out, "\n%d problem(s) found\n", d.problems);
	return d.problems ? 1 : 0;
}
