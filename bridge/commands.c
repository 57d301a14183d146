/* Every slash command, button, select and modal the bridge answers, in one table. Features add
 * their rows here; the router (interact.c) registers the commands and routes to the handlers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "discord.h"
#include "log.h"
#include "registration.h"
#include "staff.h"
#include "version.h"

static void about(struct ix *ix)
{
	char text[1024];
	size_t n = (size_t)snprintf(text, sizeof(text),
	                            "**cohortbridge %s** connects this server with the programme's "
	                            "systems.\nCommands:",
	                            CB_VERSION);
	for (size_t i = 0; i < commands_count && n < sizeof(text); i++)
		if (commands[i].type == IX_COMMAND && !(commands[i].flags & IX_STAFF))
			n += (size_t)snprintf(text + n, sizeof(text) - n, "\n`/%s` %s",
			                      commands[i].name, commands[i].description);
	ix_reply(ix, json_pack("{s:s}", "content", text));
}

/* /status reads the outbox's backlog from PostgreSQL: it may take a while under load, and the
 * router defers it when it does. */
static void on_outbox_counts(PGresult *res, const struct err *err, void *ud)
{
	struct ix *ix = ud;
	if (err) {
		ix_fail(ix, err->msg);
		return;
	}
	struct cache *c = ix_cache(ix);
	size_t members = 0;
	for (size_t i = 0; i < cache_guild_count(c); i++)
		members += cache_member_count(c, cache_guild_id(c, i));
	char text[512];
	snprintf(text, sizeof(text),
	         "**cohortbridge %s**\nGateway: %s\nCached: %zu members in %zu server(s)\n"
	         "Outbox: %s pending, %s parked; the oldest pending action is %s s old",
	         CB_VERSION, discord_state(ix_ud(ix)), members, cache_guild_count(c),
	         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	ix_reply(ix, json_pack("{s:s}", "content", text));
}

static void status(struct ix *ix)
{
	struct err e = {0};
	if (db_query(ix_db(ix),
	             "SELECT count(*) FILTER (WHERE state = 'pending'), "
	             "count(*) FILTER (WHERE state = 'parked'), "
	             "coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = "
	             "'pending'))::bigint, 0) FROM outbox",
	             0, NULL, on_outbox_counts, ix, &e) != 0)
		ix_fail(ix, e.msg);
}

const struct ix_def commands[] = {
    {IX_COMMAND, "about", "What this bridge is and what it can do for you", NULL, IX_EPHEMERAL,
     about},
    {IX_COMMAND, "status", "The bridge's health: gateway, cache and pending actions", NULL,
     IX_STAFF | IX_EPHEMERAL, status},
    /* registration (bridge/registration.c) */
    {IX_COMPONENT, "reg:start", NULL, NULL, IX_EPHEMERAL, reg_ix_start},
    {IX_COMPONENT, "reg:pick", NULL, NULL, IX_EPHEMERAL | IX_UPDATE, reg_ix_pick},
    {IX_COMPONENT, "reg:go", NULL, NULL, IX_MODAL, reg_ix_go},
    {IX_MODAL_SUBMIT, "reg:ident", NULL, NULL, IX_EPHEMERAL, reg_ix_ident},
    {IX_COMPONENT, "reg:code", NULL, NULL, IX_MODAL, reg_ix_code},
    {IX_MODAL_SUBMIT, "reg:codesub", NULL, NULL, IX_EPHEMERAL, reg_ix_code_submit},
    {IX_COMPONENT, "reg:decide", NULL, NULL, IX_STAFF | IX_UPDATE, reg_ix_decide},
    /* held role removals (bridge/staff.c) */
    {IX_COMPONENT, "rm:ok", NULL, NULL, IX_STAFF | IX_UPDATE, staff_ix_confirm},
    {IX_COMMAND, "link", "Link a member to a roster entry",
     "[{\"type\": 6, \"name\": \"user\", \"description\": \"The member\", \"required\": true},"
     " {\"type\": 3, \"name\": \"entry\", \"description\": \"source:id, id or e-mail\","
     " \"required\": true}]",
     IX_STAFF | IX_EPHEMERAL, reg_cmd_link},
    {IX_COMMAND, "unlink", "Release a member's roster entry",
     "[{\"type\": 6, \"name\": \"user\", \"description\": \"The member\", \"required\": true}]",
     IX_STAFF | IX_EPHEMERAL, reg_cmd_unlink},
    {IX_COMMAND, "approve", "Approve a member's pending registration",
     "[{\"type\": 6, \"name\": \"user\", \"description\": \"The member\", \"required\": true}]",
     IX_STAFF | IX_EPHEMERAL, reg_cmd_approve},
    {IX_COMMAND, "lookup", "Who holds a roster entry, or which entry a member holds",
     "[{\"type\": 3, \"name\": \"who\", \"description\": \"A member (id or mention) or an "
     "entry\", \"required\": true}]",
     IX_STAFF | IX_EPHEMERAL, reg_cmd_lookup},
};
const size_t commands_count = sizeof(commands) / sizeof(commands[0]);
