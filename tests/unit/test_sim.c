/* discord-sim, the local Discord every other test runs against: its command line, and three
 * checks from outside — Discord's REST rules, its gateway rules, and Debian's discord.py
 * running unmodified against it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static const char *sim_bin(void)
{
	const char *b = getenv("DISCORD_SIM_BIN");
	return b && *b ? b : "build/discord-sim";
}

/* Runs a Python check script against port; it prints its verdict. */
static void run_check(const char *script, int port, const char *extra)
{
	char portbuf[16], dir[96];
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	const char *argv[] = {"", script, portbuf, extra, NULL};
	int rc = th_wait(th_spawn_bin("/usr/bin/python3", argv, NULL, dir, sizeof(dir)), 120000);
	char *out = th_read(dir, "stdout");
	char *err = th_read(dir, "stderr");
	char verdict[4096];
	snprintf(verdict, sizeof(verdict), "%s exited %d:\n%s\n%.2000s", script, rc, out, err);
	int ok = rc == 0 && strstr(out, ": OK") != NULL;
	free(out);
	free(err);
	if (!ok)
		fail_msg("%s", verdict);
}

static void test_sim_command_line(void **state)
{
	char dir[96];
	const char *help[] = {"", "--help", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), help, NULL, dir, sizeof(dir)), 5000), 0);
	char *out = th_read(dir, "stdout");
	assert_non_null(strstr(out, "usage: discord-sim --listen"));
	free(out);
	const char *none[] = {"", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), none, NULL, dir, sizeof(dir)), 5000), 2);
	const char *bad[] = {"", "--listen", "127.0.0.1:0", "--ratelimits", "sometimes", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), bad, NULL, dir, sizeof(dir)), 5000), 2);
	const char *remote[] = {"", "--listen", "10.1.2.3:80", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), remote, NULL, dir, sizeof(dir)), 5000), 2);
	const char *world[] = {"", "--listen", "127.0.0.1:0", "--world", "/nonexistent.json", NULL};
	assert_int_equal(th_wait(th_spawn_bin(sim_bin(), world, NULL, dir, sizeof(dir)), 5000), 1);
	char *err = th_read(dir, "stderr");
	assert_non_null(strstr(err, "cannot load world"));
	free(err);

	/* seeded: the same ids every time */
	int p1, p2;
	char d1[96], d2[96], *s1, *s2;
	const char *seeded[] = {"--seed", "7", NULL};
	pid_t a = th_sim_start(seeded, &p1, d1, sizeof(d1));
	pid_t b = th_sim_start(seeded, &p2, d2, sizeof(d2));
	assert_int_equal(th_http_get(p1, "/_sim/state", &s1), 200);
	assert_int_equal(th_http_get(p2, "/_sim/state", &s2), 200);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	th_sim_stop(a);
	th_sim_stop(b);
}

static void test_sim_rest(void **state)
{
	char dir[96], rec[160];
	int port;
	snprintf(rec, sizeof(rec), "%s/record.jsonl", th_tmpdir());
	const char *args[] = {"--record", rec, NULL};
	pid_t pid = th_sim_start(args, &port, dir, sizeof(dir));
	run_check("tests/sim/rest_check.py", port, rec);
	th_sim_stop(pid);
}

static void test_sim_gateway(void **state)
{
	char dir[96];
	int port;
	const char *args[] = {"--ratelimits",
	                      "fast",
	                      "--heartbeat-ms",
	                      "500",
	                      "--world",
	                      "tests/sim/worlds/large.json",
	                      NULL};
	pid_t pid = th_sim_start(args, &port, dir, sizeof(dir));
	run_check("tests/sim/gateway_check.py", port, NULL);
	th_sim_stop(pid);
}

static void test_sim_discordpy(void **state)
{
	char dir[96];
	int port;
	pid_t pid = th_sim_start(NULL, &port, dir, sizeof(dir));
	run_check("tests/sim/discordpy_check.py", port, NULL);
	th_sim_stop(pid);
}

GROUP(group_sim)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sim_command_line),
	    cmocka_unit_test(test_sim_rest),
	    cmocka_unit_test(test_sim_gateway),
	    cmocka_unit_test(test_sim_discordpy),
	};
	return RUN_GROUP(tests);
}
