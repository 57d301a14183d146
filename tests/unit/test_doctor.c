/* `cohortbridge doctor` through the binary against the simulator: a healthy server passes and
 * gets the invite URL with exactly the permissions its mappings need; a wrong token, an
 * application without the GUILD_MEMBERS intent, the bot's role below a managed role and an
 * overwrite that keeps the bot from sending in the registration channel are each reported as a
 * problem with exit status 1. No database is involved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define GUILD "934567890123456789"

/* MANAGE_CHANNELS, VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY,
 * MANAGE_NICKNAMES (set_nickname), MANAGE_ROLES; no voice channel, so no CONNECT. */
#define NEEDED "402721808"

struct world_opts {
	const char *intents;     /* the application's privileged_intents, as JSON */
	int coach_position;      /* the bot's role is at 3 */
	const char *register_ow; /* extra overwrites of #register, as JSON array items */
};

struct outcome {
	int rc;
	char *out;
};

static struct outcome doctor(const struct world_opts *w, const char *token,
                             const char *const *extra)
{
	char world[2048], sdir[96], dir[96], cfg[1024], envcfg[600], envtok[200];
	snprintf(
	    world, sizeof(world),
	    "{\"application\": {\"name\": \"Academy bot\", \"privileged_intents\": %s}, "
	    "\"guilds\": [{\"id\": \"" GUILD "\", \"name\": \"Doctor Academy\", "
	    "\"roles\": [{\"name\": \"@everyone\", \"permissions\": \"0\"}, "
	    "{\"id\": \"9001\", \"name\": \"Learner\", \"position\": 1}, "
	    "{\"id\": \"9002\", \"name\": \"Coach\", \"position\": %d}, "
	    "{\"id\": \"9003\", \"name\": \"cohortbridge\", \"position\": 3, "
	    "\"permissions\": \"" NEEDED "\", \"bot\": true}], "
	    "\"channels\": [{\"name\": \"register\", \"type\": 0, \"permission_overwrites\": "
	    "[{\"id\": \"" GUILD "\", \"type\": 0, \"allow\": \"1024\", \"deny\": \"2048\"}%s]}, "
	    "{\"name\": \"help\", \"type\": 0, \"permission_overwrites\": []}, "
	    "{\"name\": \"audit\", \"type\": 0, \"permission_overwrites\": [{\"id\": \"" GUILD
	    "\", \"type\": 0, \"allow\": \"0\", \"deny\": \"1024\"}, {\"id\": \"9003\", "
	    "\"type\": 0, \"allow\": \"3072\", \"deny\": \"0\"}]}], "
	    "\"members\": [{\"user\": {\"id\": \"501\", \"username\": \"ada\"}, \"roles\": [], "
	    "\"owner\": true}]}]}",
	    w->intents ? w->intents : "[\"GUILD_MEMBERS\"]", w->coach_position,
	    w->register_ow ? w->register_ow : "");
	char wpath[600];
	snprintf(wpath, sizeof(wpath), "%s", th_write_file(0, "world.json", world));
	const char *args[] = {"--world", wpath, "--ratelimits", "off", NULL};
	int port = 0;
	pid_t sim = th_sim_start(args, &port, sdir, sizeof(sdir));

	char mpath[512];
	snprintf(mpath, sizeof(mpath), "%s",
	         th_write_file(1, "academy.json",
	                       "{\"guild\": \"" GUILD "\", \"label\": \"Doctor Academy\", "
	                       "\"staff_roles\": {\"coach\": {\"name\": \"Coach\"}}, "
	                       "\"cohorts\": [{\"name\": \"Web A\", \"match\": {\"source\": "
	                       "\"roster\", \"groups\": [\"1\"]}, \"role\": \"Learner\", "
	                       "\"channels\": {\"category\": \"Web A\", \"text\": \"web-a\", "
	                       "\"voice\": false}, \"time_zone\": \"UTC\", \"staff\": "
	                       "[\"coach\"]}], \"registration\": {\"sources\": [\"roster\"], "
	                       "\"proof\": \"staff_approval\", \"channels\": {\"registration\": "
	                       "\"register\", \"help\": \"help\", \"approval\": \"audit\", "
	                       "\"audit\": \"audit\"}, \"set_nickname\": true}}"));
	*strrchr(mpath, '/') = '\0';
	snprintf(cfg, sizeof(cfg),
	         "{\"mappings_dir\": \"%s\", \"discord\": {\"api_url\": "
	         "\"http://127.0.0.1:%d/api/v10\"}, \"sources\": [{\"name\": \"roster\", "
	         "\"type\": \"roster_file\", \"path\": \"/nonexistent/roster.csv\"}]}",
	         mpath, port);
	snprintf(envcfg, sizeof(envcfg), "COHORTBRIDGE_CONFIG=%s",
	         th_write_file(2, "config.json", cfg));
	snprintf(envtok, sizeof(envtok), "DISCORD_TOKEN=%s", token);
	const char *env[] = {envcfg, envtok, "DATABASE_URL", NULL};
	const char *argv[8] = {"", "doctor"};
	for (int i = 0; extra && extra[i] && i < 5; i++)
		argv[2 + i] = extra[i];
	struct outcome o;
	o.rc = th_run(argv, env, dir, sizeof(dir));
	o.out = th_read(dir, "stdout");
	th_sim_stop(sim);
	return o;
}

static void test_doctor_healthy_setup_passes(void **state)
{
	/* The bot is above every managed role, holds exactly what is needed, and #register's
	 * @everyone overwrite (no sending) does not reach it: its role has SEND_MESSAGES
	 * through a role overwrite below. #audit hides from @everyone; the bot's role sees it. */
	struct world_opts w = {.coach_position = 2,
	                       .register_ow = ", {\"id\": \"9003\", \"type\": 0, \"allow\": "
	                                      "\"3072\", \"deny\": \"0\"}"};
	struct outcome o = doctor(&w, "sim-token", NULL);
	if (o.rc != 0)
		fprintf(stderr, "%s", o.out);
	assert_int_equal(o.rc, 0);
	assert_null(strstr(o.out, "problem  "));
	assert_non_null(strstr(o.out, "\n0 problem(s) found\n"));
	assert_non_null(strstr(o.out, "ok       token: works"));
	assert_non_null(strstr(o.out, "ok       intents: GUILD_MEMBERS is enabled"));
	assert_non_null(strstr(o.out, "the bot's highest role \"cohortbridge\" is above the 2"));
	assert_non_null(strstr(o.out, "the bot can view and send in #register"));
	assert_non_null(strstr(o.out, "the bot can view and send in #audit"));
	assert_non_null(
	    strstr(o.out, "&scope=bot%20applications.commands&permissions=" NEEDED "\n"));
	assert_non_null(strstr(o.out, "https://discord.com/oauth2/authorize?client_id="));
	assert_non_null(strstr(o.out, "MANAGE_NICKNAMES"));
	assert_null(strstr(o.out, "CONNECT"));
	free(o.out);
}

static void test_doctor_wrong_token(void **state)
{
	struct world_opts w = {.coach_position = 2};
	struct outcome o = doctor(&w, "not-the-token", NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.out, "problem  token: Discord refused it (401"));
	assert_null(strstr(o.out, "not-the-token"));
	free(o.out);
}

static void test_doctor_missing_members_intent(void **state)
{
	struct world_opts w = {.intents = "[\"MESSAGE_CONTENT\"]",
	                       .coach_position = 2,
	                       .register_ow = ", {\"id\": \"9003\", \"type\": 0, \"allow\": "
	                                      "\"3072\", \"deny\": \"0\"}"};
	struct outcome o = doctor(&w, "sim-token", NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.out, "problem  intents: GUILD_MEMBERS is not enabled"));
	assert_non_null(strstr(o.out, "Server Members Intent"));
	assert_non_null(strstr(o.out, "1 problem(s) found"));
	free(o.out);
}

static void test_doctor_bot_role_below_managed_role(void **state)
{
	struct world_opts w = {.coach_position = 4,
	                       .register_ow = ", {\"id\": \"9003\", \"type\": 0, \"allow\": "
	                                      "\"3072\", \"deny\": \"0\"}"};
	struct outcome o = doctor(&w, "sim-token", NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.out, "problem  guild " GUILD " (Doctor Academy): the bot's "
	                              "highest role \"cohortbridge\" is not above \"Coach\""));
	assert_null(strstr(o.out, "\"Learner\""));
	assert_non_null(strstr(o.out, "1 problem(s) found"));
	free(o.out);
}

static void test_doctor_overwrite_denies_send_in_registration(void **state)
{
	/* No role overwrite lifts @everyone's deny of SEND_MESSAGES in #register. */
	struct world_opts w = {.coach_position = 2};
	struct outcome o = doctor(&w, "sim-token", NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.out, "problem  guild " GUILD " (Doctor Academy): in #register "
	                              "(registration channel) the bot lacks SEND_MESSAGES: the "
	                              "channel's overwrite for @everyone denies it"));
	assert_non_null(strstr(o.out, "the bot can view and send in #help"));
	assert_non_null(strstr(o.out, "1 problem(s) found"));
	free(o.out);

	/* The bot's own role denied in the channel, though @everyone is allowed. */
	w.register_ow = ", {\"id\": \"9003\", \"type\": 0, \"allow\": \"0\", \"deny\": \"2048\"}";
	o = doctor(&w, "sim-token", NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(
	    strstr(o.out, "the channel's overwrite for @everyone, cohortbridge denies"));
	free(o.out);
}

static void test_doctor_usage_errors(void **state)
{
	struct world_opts w = {.coach_position = 2};
	const char *bogus[] = {"--bogus", NULL};
	struct outcome o = doctor(&w, "sim-token", bogus);
	assert_int_equal(o.rc, 2);
	free(o.out);
	const char *other[] = {"--guild", "1", NULL};
	o = doctor(&w, "sim-token", other);
	assert_int_equal(o.rc, 2);
	free(o.out);
}

GROUP(group_doctor)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doctor_healthy_setup_passes),
	    cmocka_unit_test(test_doctor_wrong_token),
	    cmocka_unit_test(test_doctor_missing_members_intent),
	    cmocka_unit_test(test_doctor_bot_role_below_managed_role),
	    cmocka_unit_test(test_doctor_overwrite_denies_send_in_registration),
	    cmocka_unit_test(test_doctor_usage_errors),
	};
	return RUN_GROUP(tests);
}
