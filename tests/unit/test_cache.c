/* The compact cache: events applied, members added, changed and removed (against a plain map
 * as the reference), roles deleted under members, and its size per member. */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#include "cache.h"
#include "jtok.h"

static json_t *member(unsigned long long id, const char *name, json_t *roles)
{
	char ids[32];
	snprintf(ids, sizeof(ids), "%llu", id);
	return json_pack("{s:{s:s, s:s}, s:o, s:n}", "user", "id", ids, "username", name, "roles",
	                 roles ? roles : json_array(), "nick");
}

static json_t *guild(void)
{
	return json_pack(
	    "{s:s, s:[{s:s, s:s, s:i}, {s:s, s:s, s:i}, {s:s, s:s, s:i}], s:[{s:s, s:i, "
	    "s:s}], s:[]}",
	    "id", "100", "roles", "id", "100", "name", "@everyone", "position", 0, "id", "201",
	    "name", "Learner", "position", 1, "id", "202", "name", "Coach", "position", 2,
	    "channels", "id", "300", "type", 0, "name", "general", "members");
}

static void test_cache_events(void **state)
{
	struct cache *c = cache_new();
	json_t *g = guild();
	assert_int_equal(cache_apply_json(c, "GUILD_CREATE", g), 1);
	json_decref(g);
	assert_int_equal(cache_guild_count(c), 1);
	assert_int_equal(cache_role_count(c, 100), 3);
	assert_int_equal(cache_channel_count(c, 100), 1);
	assert_int_equal(cache_role_by_name(c, 100, "Coach"), 202);

	json_t *chunk = json_pack("{s:s, s:[o, o], s:i, s:i}", "guild_id", "100", "members",
	                          member(1, "ada", json_pack("[s]", "201")),
	                          member(2, "alan", NULL), "chunk_index", 0, "chunk_count", 1);
	cache_apply_json(c, "GUILD_MEMBERS_CHUNK", chunk);
	json_decref(chunk);
	assert_true(cache_members_complete(c, 100));
	struct cache_member m;
	assert_int_equal(cache_member(c, 100, 1, &m), 0);
	assert_string_equal(m.username, "ada");
	assert_int_equal(m.nroles, 1);
	assert_int_equal(m.roles[0], 201);

	json_t *up = member(1, "ada", json_pack("[s, s]", "201", "202"));
	json_object_set_new(up, "guild_id", json_string("100"));
	json_object_set_new(up, "nick", json_string("Ada L."));
	cache_apply_json(c, "GUILD_MEMBER_UPDATE", up);
	json_decref(up);
	assert_int_equal(cache_member(c, 100, 1, &m), 0);
	assert_int_equal(m.nroles, 2);
	assert_string_equal(m.nick, "Ada L.");

	/* deleting a role takes it off its members and keeps the others right */
	json_t *del = json_pack("{s:s, s:s}", "guild_id", "100", "role_id", "201");
	cache_apply_json(c, "GUILD_ROLE_DELETE", del);
	json_decref(del);
	assert_int_equal(cache_member(c, 100, 1, &m), 0);
	assert_int_equal(m.nroles, 1);
	assert_int_equal(m.roles[0], 202);

	json_t *rm = json_pack("{s:s, s:{s:s}}", "guild_id", "100", "user", "id", "2");
	cache_apply_json(c, "GUILD_MEMBER_REMOVE", rm);
	json_decref(rm);
	assert_int_equal(cache_member(c, 100, 2, &m), -1);
	assert_int_equal(cache_member_count(c, 100), 1);

	json_t *ch = json_pack("{s:s, s:s, s:i, s:s}", "guild_id", "100", "id", "301", "type", 2,
	                       "name", "voice");
	cache_apply_json(c, "CHANNEL_CREATE", ch);
	assert_int_equal(cache_channel_count(c, 100), 2);
	cache_apply_json(c, "CHANNEL_DELETE", ch);
	json_decref(ch);
	assert_int_equal(cache_channel_count(c, 100), 1);
	cache_free(c);
}

static void random_name(char *buf, int maxlen)
{
	int n = 3 + rand() % maxlen;
	for (int i = 0; i < n; i++)
		buf[i] = (char)('a' + rand() % 26);
	buf[n] = '\0';
}

/* Thousands of adds, updates and removes in random order agree with a plain map; names that
 * change length all the time do not make the cache grow without end; a member costs bytes,
 * not kilobytes. */
static void test_cache_members_random(void **state)
{
	struct cache *c = cache_new(), *fresh = cache_new();
	json_t *g = guild(), *ref = json_object();
	cache_apply_json(c, "GUILD_CREATE", g);
	cache_apply_json(fresh, "GUILD_CREATE", g);
	json_decref(g);
	srand(7);
	for (int i = 0; i < 200000; i++) {
		unsigned long long id = 1000 + (unsigned long long)(rand() % 20000);
		char key[32], name[40], nick[40];
		snprintf(key, sizeof(key), "%llu", id);
		if (rand() % 4 == 0) {
			json_t *rm =
			    json_pack("{s:s, s:{s:s}}", "guild_id", "100", "user", "id", key);
			cache_apply_json(c, "GUILD_MEMBER_REMOVE", rm);
			json_decref(rm);
			json_object_del(ref, key);
		} else {
			random_name(name, 28);
			random_name(nick, 20);
			json_t *roles = rand() % 3 ? json_pack("[s]", rand() % 2 ? "201" : "202")
			                           : json_pack("[s,s]", "201", "202");
			json_t *m = member(id, name, roles);
			if (rand() % 2)
				json_object_set_new(m, "nick", json_string(nick));
			json_object_set_new(m, "guild_id", json_string("100"));
			cache_apply_json(c, rand() % 2 ? "GUILD_MEMBER_ADD" : "GUILD_MEMBER_UPDATE",
			                 m);
			json_object_set_new(ref, key, m);
		}
	}
	assert_int_equal(cache_member_count(c, 100), json_object_size(ref));
	const char *k;
	json_t *v;
	struct cache_member m;
	json_object_foreach(ref, k, v) {
		if (cache_member(c, 100, strtoull(k, NULL, 10), &m) != 0)
			fail_msg("member %s missing", k);
		json_t *roles = json_object_get(v, "roles");
		assert_int_equal(m.nroles, json_array_size(roles));
		char role[32];
		snprintf(role, sizeof(role), "%llu", (unsigned long long)m.roles[0]);
		assert_string_equal(role, json_string_value(json_array_get(roles, 0)));
		assert_string_equal(m.username, json_string_value(json_object_get(
		                                    json_object_get(v, "user"), "username")));
		const char *nick = json_string_value(json_object_get(v, "nick"));
		if (nick)
			assert_string_equal(m.nick, nick);
		else
			assert_null(m.nick);
		cache_apply_json(fresh, "GUILD_MEMBER_ADD", v);
	}
	for (unsigned long long id = 1000; id < 21000; id++) {
		char key[32];
		snprintf(key, sizeof(key), "%llu", id);
		assert_int_equal(cache_member(c, 100, id, &m) == 0,
		                 json_object_get(ref, key) != NULL);
	}
	/* the garbage of 150,000 rewrites is compacted away */
	size_t used = cache_bytes(c), need = cache_bytes(fresh);
	if (used > 2 * need + 200000)
		fail_msg("the cache holds %zu bytes where %zu would do", used, need);
	json_decref(ref);
	cache_free(c);
	cache_free(fresh);
}

/* The in-place reader: values, escapes, nesting, and what is not JSON. */
static void test_jtok(void **state)
{
	struct jtok j = {0};
	const char *doc =
	    "{\"op\":0,\"d\":{\"a\":[1,{\"x\":[2,3]},\"s\"],\"name\":\"caf\\u00e9 "
	    "\\ud83d\\ude00 \\\"q\\\"\\n\",\"id\":\"18446744073709551615\","
	    "\"big\":\"18446744073709551616\",\"t\":true,\"n\":null,\"r\":2.5,\"e\":-1.5e+3},"
	    "\"s\":42}";
	assert_int_equal(jtok_parse(&j, doc, strlen(doc)), 0);
	assert_int_equal(jtok_int(&j, jtok_get(&j, 0, "s"), -1), 42);
	int d = jtok_get(&j, 0, "d");
	assert_true(jtok_is_object(&j, d));
	int a = jtok_get(&j, d, "a");
	assert_int_equal(jtok_size(&j, a), 3);
	int e = jtok_skip(&j, jtok_first(&j, a)); /* past 1 */
	e = jtok_skip(&j, e);                     /* past the object */
	char buf[64];
	assert_int_equal(jtok_str(&j, e, buf, sizeof(buf)), 1);
	assert_int_equal(jtok_str(&j, jtok_get(&j, d, "name"), buf, sizeof(buf)),
	                 (int)strlen("caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n"));
	assert_string_equal(buf, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n");
	assert_int_equal(jtok_str(&j, jtok_get(&j, d, "name"), buf, 5), -1);
	assert_true(jtok_u64(&j, jtok_get(&j, d, "id")) == UINT64_MAX);
	assert_true(jtok_u64(&j, jtok_get(&j, d, "big")) == 0);
	assert_true(jtok_is_true(&j, jtok_get(&j, d, "t")));
	assert_true(jtok_is_null(&j, jtok_get(&j, d, "n")));
	assert_true(jtok_real(&j, jtok_get(&j, d, "r"), 0) == 2.5);
	assert_true(jtok_real(&j, jtok_get(&j, d, "e"), 0) == -1500.0);
	assert_int_equal(jtok_get(&j, d, "missing"), -1);
	assert_int_equal(jtok_get(&j, -1, "a"), -1);
	json_t *tree = jtok_json(&j, a);
	assert_int_equal(json_array_size(tree), 3);
	json_decref(tree);
	const char *bad[] = {"",          "{",           "{\"a\":1}x",         "{\"a\" 1}",
	                     "[1,]x",     "{\"a\":tru}", "{\"a\":01}",         "{\"a\":1.}",
	                     "{\"a\":-}", "{1:2}",       "{\"a\":\"\\ud800\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int r = jtok_parse(&j, bad[i], strlen(bad[i]));
		if (r == 0 &&
		    i == 10) /* a lone surrogate tokenizes, but does not read as a string */
			assert_int_equal(jtok_str(&j, jtok_get(&j, 0, "a"), buf, sizeof(buf)), -1);
		else if (r == 0)
			fail_msg("'%s' was taken for JSON", bad[i]);
	}
	jtok_free(&j);
}

/* The bridge fills its cache from the simulator's 2,502 members through chunks. */
static void test_cache_through_the_bridge(void **state)
{
	char sdir[96], dir[96], db[1024], envdb[1100], envapi[128];
	int sim_port;
	const char *args[] = {"--ratelimits", "fast", "--world", "tests/sim/worlds/large.json",
	                      NULL};
	pid_t sim = th_sim_start(args, &sim_port, sdir, sizeof(sdir));
	th_fresh_db(db, sizeof(db));
	snprintf(envdb, sizeof(envdb), "DATABASE_URL=%s", db);
	snprintf(envapi, sizeof(envapi), "DISCORD_API_URL=http://127.0.0.1:%d/api/v10", sim_port);
	const char *cfg =
	    th_write_file(0, "cohortbridge.json", "{\"http\": {\"listen\": \"127.0.0.1:0\"}}");
	const char *a[] = {"", "--config", cfg, "run", NULL};
	pid_t pid = th_spawn(a, (const char *[]){envdb, "DISCORD_TOKEN=sim-token", envapi, NULL},
	                     dir, sizeof(dir));
	int port = th_listen_port(dir, 10000);
	assert_true(port > 0);
	char *body = NULL;
	int found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		usleep(50000);
		free(body);
		body = NULL;
		th_http_get(port, "/metrics", &body);
		found = body && strstr(body, "cohortbridge_cache_members 2502\n") != NULL;
	}
	if (!found)
		fail_msg("the cache never held 2502 members:\n%s", body ? body : "");
	const char *b = strstr(body, "\ncohortbridge_cache_bytes ");
	unsigned long long bytes = b ? strtoull(b + 26, NULL, 10) : 0;
	free(body);
	/* bytes, not kilobytes, per member (hash slack and role tables included) */
	if (!(bytes > 0 && bytes / 2502 < 200))
		fail_msg("%llu bytes for 2502 members", bytes);
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);

	/* a restarted bridge resumes (no GUILD_CREATE then) and still fills its cache */
	pid = th_spawn(a, (const char *[]){envdb, "DISCORD_TOKEN=sim-token", envapi, NULL}, dir,
	               sizeof(dir));
	port = th_listen_port(dir, 10000);
	assert_true(th_wait_for(dir, "stderr", "mod=gateway msg=resumed", 10000));
	found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		usleep(50000);
		body = NULL;
		th_http_get(port, "/metrics", &body);
		found = body && strstr(body, "cohortbridge_cache_members 2502\n") != NULL;
		free(body);
	}
	assert_true(found);
	kill(pid, SIGTERM);
	assert_int_equal(th_wait(pid, 10000), 0);
	th_sim_stop(sim);
}

GROUP(group_cache)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_events),
	    cmocka_unit_test(test_cache_members_random),
	    cmocka_unit_test(test_jtok),
	    cmocka_unit_test(test_cache_through_the_bridge),
	};
	return RUN_GROUP(tests);
}
