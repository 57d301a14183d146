/* The compact cache: events applied, members added, changed and removed (against a plain map
 * as the reference), roles deleted under members, and its size per member. */
#include <errno.h>
#include <math.h>
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

/* --- jtok against the rules and against jansson --------------------------------------------- */

struct jcase {
	const char *doc;
	int ok;
};

/* Every rule of RFC 8259 jtok holds to, each way it can be broken. */
static const struct jcase jtok_rules[] = {
    {"0", 1},
    {"-0", 1},
    {"123", 1},
    {"-1.5e+3", 1},
    {"1E-2", 1},
    {"0.0", 1},
    {"1e5", 1},
    {"123456789012345678901234567890", 1},
    {"true", 1},
    {"false", 1},
    {"null", 1},
    {"\"\"", 1},
    {"[]", 1},
    {"{}", 1},
    {" \t\r\n[ 1 , { \"a\" : [ ] } ]\n\r\t ", 1},
    {"[1,2,3]", 1},
    {"{\"a\":1,\"a\":2}", 1},
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u12aB\"", 1},
    {"\"\\u0000\"", 1},
    {"\"\\ud83d\\ude00\"", 1},
    {"\"\\ud800\"", 1}, /* a lone surrogate: the grammar allows it, jtok_str refuses it */
    {"\"\x7f\"", 1},
    {"\"\xc2\x80\"", 1},
    {"\"caf\xc3\xa9\"", 1},
    {"\"\xe2\x82\xac\"", 1},
    {"\"\xed\x9f\xbf\"", 1},
    {"\"\xee\x80\x80\"", 1},
    {"\"\xef\xbf\xbf\"", 1},
    {"\"\xf0\x90\x80\x80\"", 1},
    {"\"\xf0\x9f\x98\x80\"", 1},
    {"\"\xf4\x8f\xbf\xbf\"", 1},
    {"", 0},
    {" ", 0},
    {" \t\r\n", 0},
    {"01", 0},
    {"-01", 0},
    {"00", 0},
    {"1.", 0},
    {".5", 0},
    {"-", 0},
    {"-a", 0},
    {"+1", 0},
    {"1e", 0},
    {"1e+", 0},
    {"1.e5", 0},
    {"1.5e", 0},
    {"0x10", 0},
    {"1 2", 0},
    {"NaN", 0},
    {"Infinity", 0},
    {"-Infinity", 0},
    {"tru", 0},
    {"truex", 0},
    {"True", 0},
    {"nul", 0},
    {"nulll", 0},
    {"fals", 0},
    {"[1,]", 0},
    {"[1,]x", 0},
    {"[,1]", 0},
    {"[1,,2]", 0},
    {"[1 2]", 0},
    {"[1;2]", 0},
    {"[1:2]", 0},
    {"{\"a\":1;\"b\":2}", 0},
    {"{\"a\",1}", 0},
    {"{\"a\"::1}", 0},
    {"[", 0},
    {"]", 0},
    {"[1}", 0},
    {"[]]", 0},
    {"{}}", 0},
    {"{", 0},
    {"{\"a\" 1}", 0},
    {"{\"a\":1", 0},
    {"{\"a\":1,}", 0},
    {"{\"a\":1]", 0},
    {"{\"a\":1 \"b\":2}", 0},
    {"{\"a\"}", 0},
    {"{\"a\":}", 0},
    {"{,}", 0},
    {"{1:2}", 0},
    {"{a:1}", 0},
    {"{'a':1}", 0},
    {"{\"a\":1}x", 0},
    {"[1]x", 0},
    {"[1]\f", 0},
    {"[1,\v2]", 0},
    {"\"abc", 0},
    {"\"\\\"", 0},
    {"\"\\u12G4\"", 0},
    {"\"\\u12\"", 0},
    {"\"\\u\"", 0},
    {"\"\\x41\"", 0},
    {"\"\\'\"", 0},
    {"\"\\U0041\"", 0},
    {"\"\\", 0},
    {"\"a\tb\"", 0},
    {"\"a\nb\"", 0},
    {"\"\x01\"", 0},
    {"\"\x1f\"", 0},
    {"\"\x80\"", 0},
    {"\"\xbf\"", 0},
    {"\"\xc0\xaf\"", 0},
    {"\"\xc1\xbf\"", 0},
    {"\"\xe0\x80\xaf\"", 0},
    {"\"\xe0\x9f\xbf\"", 0},
    {"\"\xf0\x80\x80\xaf\"", 0},
    {"\"\xf0\x8f\xbf\xbf\"", 0},
    {"\"\xed\xa0\x80\"", 0},
    {"\"\xed\xbf\xbf\"", 0},
    {"\"\xf4\x90\x80\x80\"", 0},
    {"\"\xf5\x80\x80\x80\"", 0},
    {"\"\xfe\"", 0},
    {"\"\xff\"", 0},
    {"\"\xc3\"", 0},
    {"\"\xc3\xc3\xa9\"", 0},
    {"\"\xe2\x82\"", 0},
    {"\"\xf0\x9f\x98\"", 0},
    {"\"\xc3", 0},
    {"\"\xe2\x82\xac", 0},
    {"\xef\xbb\xbf{}", 0},
    {"'a'", 0},
};

/* Printable for a failure message (static buffer). */
static const char *shown(const char *s, size_t len)
{
	static char out[400];
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* Parses from an allocation of exactly len bytes: a read past the end is the sanitizers' to
 * catch. */
static int jtok_parse_exact(struct jtok *j, char **copy, const char *doc, size_t len)
{
	free(*copy);
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, doc, len);
	return jtok_parse(j, *copy, len);
}

static void jtok_expect(struct jtok *j, char **copy, const char *doc, size_t len, int ok)
{
	int r = jtok_parse_exact(j, copy, doc, len);
	if (ok && r != 0)
		fail_msg("jtok refused '%s'", shown(doc, len));
	if (!ok && r == 0)
		fail_msg("jtok took '%s' for JSON", shown(doc, len));
	if (ok)
		assert_int_equal(jtok_skip(j, 0), j->n);
	else
		assert_int_equal(jtok_get(j, 0, "a"), -1);
}

/* The \u escapes of a valid document: a NUL among them (in a key: *nul 2), a surrogate without
 * its pair. */
static void escapes(const char *s, size_t len, int *nul, int *lone)
{
	*nul = *lone = 0;
	int in = 0, here = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' && in) {
			in = 0;
			size_t k = i + 1;
			while (k < len && strchr(" \t\r\n", s[k]))
				k++;
			if (here && k < len && s[k] == ':')
				*nul = 2;
			else if (here && !*nul)
				*nul = 1;
		} else if (s[i] == '"') {
			in = 1;
			here = 0;
		} else if (in && s[i] == '\\') {
			if (s[i + 1] != 'u') {
				i++;
				continue;
			}
			unsigned cp = (unsigned)strtoul(
			    (char[]){s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0}, NULL, 16);
			i += 5;
			if (cp == 0)
				here = 1;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < len && s[i + 1] == '\\' &&
			    s[i + 2] == 'u') {
				unsigned lo = (unsigned)strtoul(
				    (char[]){s[i + 3], s[i + 4], s[i + 5], s[i + 6], 0}, NULL, 16);
				if (lo >= 0xDC00 && lo < 0xE000) {
					i += 6;
					continue;
				}
			}
			if (cp >= 0xD800 && cp < 0xE000)
				*lone = 1;
		}
	}
}

/* How deep a valid document nests. */
static int depth_of(const char *s, size_t len)
{
	int in = 0, d = 0, max = 0;
	for (size_t i = 0; i < len; i++) {
		if (in && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			in = !in;
		else if (!in && (s[i] == '[' || s[i] == '{') && ++d > max)
			max = d;
		else if (!in && (s[i] == ']' || s[i] == '}'))
			d--;
	}
	return max;
}

/* A number as jansson holds it: an integer unless written with a fraction or an exponent. NULL
 * when it overflows what jansson can hold. */
static json_t *number(const char *raw, size_t n)
{
	char buf[512];
	if (n >= sizeof(buf))
		return NULL;
	memcpy(buf, raw, n);
	buf[n] = '\0';
	errno = 0;
	if (!strpbrk(buf, ".eE")) {
		long long v = strtoll(buf, NULL, 10);
		return errno == ERANGE ? NULL : json_integer(v);
	}
	double v = strtod(buf, NULL);
	return errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL) ? NULL : json_real(v);
}

static int overflows(const struct jtok *j, int i)
{
	if (jtok_is_object(j, i) || jtok_is_array(j, i)) {
		int e = jtok_first(j, i);
		for (int k = 0; k < jtok_size(j, i); k++, e = jtok_skip(j, e))
			if (overflows(j, e))
				return 1;
		return 0;
	}
	size_t n;
	const char *raw = jtok_raw(j, i, &n);
	if (jtok_is_string(j, i) || *raw == 't' || *raw == 'f' || *raw == 'n')
		return 0;
	json_t *v = number(raw, n);
	json_decref(v);
	return v == NULL;
}

/* jtok_u64 against strtoull: digits only, at most 20 of them, and no overflow. */
static void check_u64(const struct jtok *j, int i)
{
	size_t n;
	const char *raw = jtok_raw(j, i, &n);
	char buf[32];
	uint64_t want = 0;
	if (n && n <= 20) {
		memcpy(buf, raw, n);
		buf[n] = '\0';
	}
	if (n && n <= 20 && strspn(buf, "0123456789") == n) {
		errno = 0;
		unsigned long long v = strtoull(buf, NULL, 10);
		want = errno == ERANGE ? 0 : v;
	}
	if (jtok_u64(j, i) != want)
		fail_msg("jtok_u64 of '%s' is not %llu", shown(raw, n), (unsigned long long)want);
}

/* A jansson tree built through jtok's readers alone. A string jtok_str does not give (one with
 * a \u0000, kept from C strings) sets *nul and reads as null. */
static json_t *walk(const struct jtok *j, int i, int *nul)
{
	size_t n;
	const char *raw = jtok_raw(j, i, &n);
	if (jtok_is_object(j, i) || jtok_is_array(j, i)) {
		int obj = jtok_is_object(j, i);
		json_t *v = obj ? json_object() : json_array();
		int e = jtok_first(j, i);
		for (int k = 0; k < jtok_size(j, i); k++) {
			if (!obj) {
				json_array_append_new(v, walk(j, e, nul));
				e = jtok_skip(j, e);
				continue;
			}
			assert_true(jtok_is_string(j, e));
			/* a key counts its value, as in jsmn */
			assert_int_equal(jtok_size(j, e), 1);
			int val = jtok_skip(j, e);
			assert_int_equal(val, e + 1);
			char *key = jtok_strdup(j, e);
			size_t kn;
			const char *kraw = jtok_raw(j, e, &kn);
			if (key && !memchr(kraw, '\\', kn)) {
				/* jtok_get gives the value of the first key written the same way */
				int first = jtok_first(j, i);
				for (;;) {
					size_t fn;
					const char *fraw = jtok_raw(j, first, &fn);
					if (fn == kn && memcmp(fraw, kraw, kn) == 0)
						break;
					first = jtok_skip(j, first + 1);
				}
				assert_int_equal(jtok_get(j, i, key), first + 1);
			}
			if (!key)
				*nul = 1;
			json_object_set_new(v, key ? key : "", walk(j, val, nul));
			free(key);
			e = jtok_skip(j, val);
		}
		assert_int_equal(e, jtok_skip(j, i));
		assert_true(n >= 2 && raw[0] == (obj ? '{' : '[') &&
		            raw[n - 1] == (obj ? '}' : ']'));
		return v;
	}
	check_u64(j, i);
	assert_int_equal(jtok_size(j, i), 0);
	if (jtok_is_string(j, i)) {
		char *s = jtok_strdup(j, i);
		if (!s) {
			*nul = 1;
			return json_null();
		}
		json_t *v = json_string(s); /* NULL unless valid UTF-8 */
		assert_non_null(v);
		free(s);
		return v;
	}
	assert_int_equal(jtok_is_true(j, i), *raw == 't');
	assert_int_equal(jtok_is_null(j, i), *raw == 'n');
	if (*raw == 't')
		return json_true();
	if (*raw == 'f')
		return json_false();
	if (*raw == 'n')
		return json_null();
	json_t *v = number(raw, n);
	assert_non_null(v);
	json_int_t iv = json_integer_value(v);
	if (json_is_integer(v) && iv > -(1ll << 53) && iv < (1ll << 53))
		assert_true(jtok_int(j, i, 7) == json_integer_value(v));
	if (n < 64)
		assert_true(jtok_real(j, i, 0.5) == json_number_value(v));
	return v;
}

static uint64_t jrng = 0x9E3779B97F4A7C15u;

static unsigned rn(unsigned n)
{
	jrng ^= jrng >> 12;
	jrng ^= jrng << 25;
	jrng ^= jrng >> 27;
	return (unsigned)((jrng * 0x2545F4914F6CDD1Du) >> 33) % n;
}

static void put_utf8(FILE *m, unsigned cp)
{
	if (cp < 0x80)
		fputc((int)cp, m);
	else if (cp < 0x800)
		fprintf(m, "%c%c", 0xC0 | cp >> 6, 0x80 | (cp & 0x3F));
	else if (cp < 0x10000)
		fprintf(m, "%c%c%c", 0xE0 | cp >> 12, 0x80 | (cp >> 6 & 0x3F), 0x80 | (cp & 0x3F));
	else
		fprintf(m, "%c%c%c%c", 0xF0 | cp >> 18, 0x80 | (cp >> 12 & 0x3F),
		        0x80 | (cp >> 6 & 0x3F), 0x80 | (cp & 0x3F));
}

static void gen_ws(FILE *m)
{
	if (rn(6) == 0)
		for (unsigned k = rn(3) + 1; k; k--)
			fputc(" \t\r\n"[rn(4)], m);
}

static void gen_string(FILE *m)
{
	fputc('"', m);
	if (rn(8) == 0) { /* a snowflake, or a number of digits near what a u64 holds */
		const char *big[] = {"18446744073709551615", "18446744073709551616",
		                     "99999999999999999999", "1844674407370955161", "0"};
		if (rn(3) == 0)
			fputs(big[rn(5)], m);
		else
			for (unsigned k = rn(20) + 1; k; k--)
				fputc('0' + (int)rn(10), m);
		fputc('"', m);
		return;
	}
	unsigned len = rn(4) == 0 ? rn(70) : rn(12);
	for (unsigned k = 0; k < len; k++) {
		unsigned r = rn(20), cp;
		if (r == 0) {
			fprintf(m, "\\%c", "\"\\/bfnrt"[rn(8)]);
		} else if (r == 1) {
			cp = rn(8) == 0 ? rn(0x80) : rn(0x10000);
			if (rn(100) == 0)
				cp = 0;
			if (cp >= 0xD800 && cp < 0xE000 && rn(10)) { /* a pair, mostly */
				fprintf(m, "\\u%04x", 0xD800 + rn(0x400));
				cp = 0xDC00 + rn(0x400);
			}
			fprintf(m, rn(2) ? "\\u%04x" : "\\u%04X", cp);
		} else if (r < 5) {
			do
				cp = rn(4) == 0 ? 0x10000 + rn(0x100000) : 0x80 + rn(0xFF80);
			while (cp >= 0xD800 && cp < 0xE000);
			put_utf8(m, cp);
		} else {
			do
				cp = 0x20 + rn(0x5F);
			while (cp == '"' || cp == '\\');
			fputc((int)cp, m);
		}
	}
	fputc('"', m);
}

static void gen_digits(FILE *m, unsigned n)
{
	while (n--)
		fputc('0' + (int)rn(10), m);
}

static void gen_number(FILE *m)
{
	if (rn(3) == 0)
		fputc('-', m);
	if (rn(4) == 0) {
		fputc('0', m);
	} else {
		fputc('1' + (int)rn(9), m);
		gen_digits(m, rn(18));
	}
	if (rn(3) == 0) {
		fputc('.', m);
		gen_digits(m, rn(8) + 1);
	}
	if (rn(4) == 0) {
		fputc("eE"[rn(2)], m);
		if (rn(2))
			fputc("+-"[rn(2)], m);
		gen_digits(m, rn(2) + 1);
	}
}

static void gen_value(FILE *m, int depth)
{
	gen_ws(m);
	unsigned r = rn(depth < 7 ? 10 : 6);
	if (rn(300) == 0) { /* a deep chain */
		int d = (int)rn(60) + 1;
		for (int k = 0; k < d; k++)
			fputs(k % 2 ? "{\"k\":" : "[", m);
		gen_value(m, 99);
		for (int k = d - 1; k >= 0; k--)
			fputs(k % 2 ? "}" : "]", m);
	} else if (r < 4) {
		gen_string(m);
	} else if (r == 4) {
		gen_number(m);
	} else if (r == 5) {
		fputs((const char *[]){"true", "false", "null"}[rn(3)], m);
	} else {
		int obj = r >= 8;
		unsigned n = rn(6);
		fputc(obj ? '{' : '[', m);
		gen_ws(m);
		for (unsigned k = 0; k < n; k++) {
			if (k)
				fputc(',', m);
			if (obj) {
				gen_ws(m);
				/* duplicates, now and then */
				if (rn(3) == 0)
					fprintf(m, "\"%c\"", 'a' + (int)rn(3));
				else
					gen_string(m);
				gen_ws(m);
				fputc(':', m);
			}
			gen_value(m, depth + 1);
		}
		fputc(obj ? '}' : ']', m);
	}
	gen_ws(m);
}

/* A byte changed, added, removed, or the end cut off. */
static size_t mutate(char *s, size_t len, size_t cap)
{
	static const char some[] = "{}[],:\"\\ \t\n0123456789-+.eEtfnu\x00\x01\x1f\x7f\x80\xbf"
	                           "\xc0\xc2\xe0\xed\xf0\xf4\xf5\xff";
	char c = rn(4) ? some[rn(sizeof(some) - 1)] : (char)rn(256);
	size_t at = len ? rn((unsigned)len) : 0;
	switch (rn(4)) {
	case 0:
		if (len)
			s[at] = c;
		return len;
	case 1:
		if (len + 1 > cap)
			return len;
		memmove(s + at + 1, s + at, len - at);
		s[at] = c;
		return len + 1;
	case 2:
		if (len)
			memmove(s + at, s + at + 1, len - at - 1);
		return len ? len - 1 : 0;
	default:
		return at;
	}
}

struct jtally {
	int both, neither, lone, nulkey, overflow, deep, nulbyte;
};

static void jtok_vs_jansson(struct jtok *j, char **copy, const char *doc, size_t len,
                            struct jtally *t)
{
	int ours = jtok_parse_exact(j, copy, doc, len) == 0;
	json_error_t err;
	json_t *ref = json_loadb(*copy, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	int nul = 0, lone = 0;
	if (ours)
		escapes(*copy, len, &nul, &lone);
	if (ours && !ref) {
		/* jansson refuses lone surrogates, a \u0000 in a key (even with JSON_ALLOW_NUL)
		 * and numbers beyond its int64 and double; jtok takes the grammar as it is and
		 * leaves the numbers to their readers */
		if (lone)
			t->lone++;
		else if (nul == 2)
			t->nulkey++;
		else if (overflows(j, 0))
			t->overflow++;
		else
			fail_msg("jtok took what jansson refuses (%s): '%s'", err.text,
			         shown(doc, len));
	} else if (!ours && ref) {
		/* jansson nests up to 2048 levels, jtok 512; and jansson passes over a NUL byte
		 * right after a number or a literal ("[1\0]" reads as [1]) */
		if (memchr(doc, 0, len))
			t->nulbyte++;
		else if (depth_of(doc, len) > 512)
			t->deep++;
		else
			fail_msg("jtok refused what jansson takes: '%s'", shown(doc, len));
	} else if (!ours) {
		t->neither++;
	} else {
		int saw_nul = 0;
		json_t *mine = walk(j, 0, &saw_nul);
		assert_int_equal(saw_nul, nul != 0);
		if (!nul && !json_equal(mine, ref))
			fail_msg("jtok reads '%s' differently", shown(doc, len));
		/* jtok_json asks jansson without JSON_ALLOW_NUL: a \u0000 gives no tree */
		json_t *whole = jtok_json(j, 0);
		if (nul ? whole != NULL : !json_equal(whole, ref))
			fail_msg("jtok_json of '%s'", shown(doc, len));
		json_decref(whole);
		json_decref(mine);
		t->both++;
	}
	json_decref(ref);
}

/* jtok against a table of rules, then against jansson on seeded random documents and their
 * mutants: the same verdict, and when both take one, the same tree. */
static void test_jtok_differential(void **state)
{
	struct jtok j = {0};
	char *copy = NULL;
	for (size_t i = 0; i < sizeof(jtok_rules) / sizeof(*jtok_rules); i++)
		jtok_expect(&j, &copy, jtok_rules[i].doc, strlen(jtok_rules[i].doc),
		            jtok_rules[i].ok);
	/* a \u0000 tokenizes, but is not for C strings */
	jtok_expect(&j, &copy, "\"a\\u0000b\"", 10, 1);
	char buf[16];
	assert_int_equal(jtok_str(&j, 0, buf, sizeof(buf)), -1);
	assert_null(jtok_strdup(&j, 0));
	/* what a C string cannot hold: NUL bytes in and after a value */
	jtok_expect(&j, &copy, "\"a\0b\"", 5, 0);
	jtok_expect(&j, &copy, "[1]\0", 4, 0);
	jtok_expect(&j, &copy, "\0", 1, 0);

	/* 512 levels are allowed, 513 are not; nor is an endless opening */
	size_t cap = 4 * 2048;
	char *deep = malloc(cap);
	assert_non_null(deep);
	for (int d = 510; d <= 514; d++) {
		memset(deep, '[', (size_t)d);
		memset(deep + d, ']', (size_t)d);
		jtok_expect(&j, &copy, deep, 2 * (size_t)d, d <= 512);
		size_t o = 0;
		for (int k = 0; k < d; k++)
			o += (size_t)snprintf(deep + o, cap - o, "{\"a\":");
		deep[o++] = '1';
		memset(deep + o, '}', (size_t)d);
		jtok_expect(&j, &copy, deep, o + (size_t)d, d <= 512);
	}
	memset(deep, '[', cap);
	jtok_expect(&j, &copy, deep, cap, 0);

	/* a string's special byte at every place of the 16-byte blocks, at the end of the text
	 * and far from it */
	static const struct jcase special[] = {
	    {"\t", 0},   {"\\n", 1},          {"\\u00e9", 1}, {"\\u00g9", 0}, {"\xc3\xa9", 1},
	    {"\xc3", 0}, {"\xed\xa0\x80", 0}, {"\\", 0},      {"\x7f", 1},
	};
	for (size_t s = 0; s < sizeof(special) / sizeof(*special); s++)
		for (int at = 0; at < 40; at++)
			for (int pad = 0; pad < 2; pad++) {
				int o = snprintf(deep, cap, "[\"%.*s%s%.*s\"%s]", at,
				                 "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
				                 special[s].doc, 5, "vwxyz",
				                 pad ? ",1234567890123456789" : "");
				jtok_expect(&j, &copy, deep, (size_t)o, special[s].ok);
			}

	free(deep);

	/* many tokens: the array grows, and is reused smaller */
	char *big = NULL;
	size_t blen = 0;
	FILE *m = open_memstream(&big, &blen);
	fputc('[', m);
	for (int k = 0; k < 5000; k++)
		fprintf(m, "%s{\"id\":\"%d\",\"r\":[%d]}", k ? "," : "", k, k);
	fputc(']', m);
	fclose(m);
	jtok_expect(&j, &copy, big, blen, 1);
	assert_int_equal(j.n, 1 + 5000 * 6);
	assert_int_equal(jtok_size(&j, 0), 5000);
	int last = jtok_first(&j, 0);
	for (int k = 1; k < 5000; k++)
		last = jtok_skip(&j, last);
	assert_true(jtok_u64(&j, jtok_get(&j, last, "id")) == 4999);
	free(big);

	struct jtally t = {0};
	int docs = 4000;
	for (int d = 0; d < docs; d++) {
		char *doc = NULL;
		size_t len = 0;
		m = open_memstream(&doc, &len);
		gen_value(m, 0);
		fclose(m);
		jtok_vs_jansson(&j, &copy, doc, len, &t);
		char *mut = malloc(len + 8);
		assert_non_null(mut);
		for (int k = 0; k < 3; k++) {
			memcpy(mut, doc, len);
			size_t ml = len;
			for (unsigned x = rn(3) + 1; x; x--)
				ml = mutate(mut, ml, len + 8);
			jtok_vs_jansson(&j, &copy, mut, ml, &t);
		}
		free(mut);
		free(doc);
	}
	print_message("jtok vs jansson: %d documents, %d taken by both, %d refused by both; set "
	              "aside: %d lone surrogates, %d \\u0000 in keys, %d numbers beyond jansson, "
	              "%d NUL bytes after a value, %d deeper than 512\n",
	              docs * 4, t.both, t.neither, t.lone, t.nulkey, t.overflow, t.nulbyte, t.deep);
	assert_int_equal(t.both + t.neither + t.lone + t.nulkey + t.overflow + t.nulbyte + t.deep,
	                 docs * 4);
	assert_true(t.both > docs && t.neither > docs);
	free(copy);
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
	    cmocka_unit_test(test_jtok_differential),
	    cmocka_unit_test(test_cache_through_the_bridge),
	};
	return RUN_GROUP(tests);
}
