/* REST: messages, polls, DMs, threads, application commands, interactions and their webhooks,
 * and scheduled events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rest.h"

static json_t *global_commands;
static int is_thread_channel(json_t *c);
static json_t *public_message(json_t *m);
static json_t *daily_creates; /* guild id (or "global") -> count of command creates */

/* --- message validation ---------------------------------------------------------------------- */

static size_t str_len(json_t *obj, const char *key)
{
	return utf8_len(json_string_value(json_object_get(obj, key)));
}

static int too_long(struct ctx *x, json_t *obj, const char *key, size_t max, const char *path)
{
	json_t *v = json_object_get(obj, key);
	if (v && !json_is_null(v) && !json_is_string(v)) {
		form_err(x, path, "STRING_TYPE_CONVERT", "Must be a string.");
		return 1;
	}
	if (str_len(obj, key) > max) {
		char msg[64];
		snprintf(msg, sizeof(msg), "Must be %zu or fewer in length.", max);
		form_err(x, path, "BASE_TYPE_MAX_LENGTH", msg);
		return 1;
	}
	return 0;
}

static int validate_embeds(struct ctx *x, json_t *embeds)
{
	size_t i, total = 0;
	json_t *e;
	char p[96];
	if (!json_is_array(embeds)) {
		form_err(x, "embeds", "LIST_TYPE_CONVERT", "Must be an array.");
		return -1;
	}
	if (json_array_size(embeds) > 10) {
		form_err(x, "embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.");
		return -1;
	}
	json_array_foreach(embeds, i, e) {
		struct {
			const char *key;
			size_t max;
		} lim[] = {{"title", 256}, {"description", 4096}};
		if (!json_is_object(e)) {
			snprintf(p, sizeof(p), "embeds.%zu", i);
			form_err(x, p, "MODEL_TYPE_CONVERT", "Must be an object.");
			return -1;
		}
		for (size_t k = 0; k < 2; k++) {
			snprintf(p, sizeof(p), "embeds.%zu.%s", i, lim[k].key);
			if (too_long(x, e, lim[k].key, lim[k].max, p))
				return -1;
			total += str_len(e, lim[k].key);
		}
		snprintf(p, sizeof(p), "embeds.%zu.footer.text", i);
		if (too_long(x, json_object_get(e, "footer"), "text", 2048, p))
			return -1;
		total += str_len(json_object_get(e, "footer"), "text");
		snprintf(p, sizeof(p), "embeds.%zu.author.name", i);
		if (too_long(x, json_object_get(e, "author"), "name", 256, p))
			return -1;
		total += str_len(json_object_get(e, "author"), "name");
		json_t *fields = json_object_get(e, "fields");
		if (json_array_size(fields) > 25) {
			snprintf(p, sizeof(p), "embeds.%zu.fields", i);
			form_err(x, p, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
			return -1;
		}
		size_t k;
		json_t *f;
		json_array_foreach(fields, k, f) {
			snprintf(p, sizeof(p), "embeds.%zu.fields.%zu.name", i, k);
			if (!json_is_string(json_object_get(f, "name")) ||
			    !json_is_string(json_object_get(f, "value"))) {
				form_err(x, p, "BASE_TYPE_REQUIRED", "This field is required");
				return -1;
			}
			if (too_long(x, f, "name", 256, p))
				return -1;
			snprintf(p, sizeof(p), "embeds.%zu.fields.%zu.value", i, k);
			if (too_long(x, f, "value", 1024, p))
				return -1;
			total += str_len(f, "name") + str_len(f, "value");
		}
	}
	if (total > 6000) {
		form_err(x, "embeds", "MAX_EMBED_SIZE_EXCEEDED",
		         "Embed size exceeds maximum size of 6000");
		return -1;
	}
	return 0;
}

static int bad_custom_id(json_t *c)
{
	size_t n = str_len(c, "custom_id");
	return !json_is_string(json_object_get(c, "custom_id")) || n < 1 || n > 100;
}

static int validate_components(struct ctx *x, json_t *rows)
{
	size_t i;
	json_t *row;
	char p[96];
	json_t *seen = json_object();
	int rc = -1;
	if (!json_is_array(rows)) {
		form_err(x, "components", "LIST_TYPE_CONVERT", "Must be an array.");
		goto out;
	}
	if (json_array_size(rows) > 5) {
		form_err(x, "components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.");
		goto out;
	}
	json_array_foreach(rows, i, row) {
		json_t *items = json_object_get(row, "components");
		if (json_integer_value(json_object_get(row, "type")) != 1 ||
		    !json_is_array(items) || !json_array_size(items)) {
			snprintf(p, sizeof(p), "components.%zu", i);
			form_err(x, p, "UNION_TYPE_CHOICES",
			         "Value of field \"type\" must be one of (1,).");
			goto out;
		}
		size_t k, buttons = 0, selects = 0;
		json_t *c;
		json_array_foreach(items, k, c) {
			int t = (int)json_integer_value(json_object_get(c, "type"));
			snprintf(p, sizeof(p), "components.%zu.components.%zu", i, k);
			if (t == 2) {
				int style = (int)json_integer_value(json_object_get(c, "style"));
				buttons++;
				if (style < 1 || style > 6) {
					strncat(p, ".style", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_CHOICES",
					         "Value must be one of (1, 2, 3, 4, 5, 6).");
					goto out;
				}
				if (style == 5 ? !json_is_string(json_object_get(c, "url"))
				               : bad_custom_id(c)) {
					strncat(p, style == 5 ? ".url" : ".custom_id",
					        sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_BAD_LENGTH",
					         "Must be between 1 and 100 in length.");
					goto out;
				}
				if (str_len(c, "label") > 80) {
					strncat(p, ".label", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_MAX_LENGTH",
					         "Must be 80 or fewer in length.");
					goto out;
				}
			} else if (t >= 3 && t <= 8 && t != 4) {
				selects++;
				if (bad_custom_id(c)) {
					strncat(p, ".custom_id", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_BAD_LENGTH",
					         "Must be between 1 and 100 in length.");
					goto out;
				}
				json_t *opts = json_object_get(c, "options");
				if (t == 3 && (!json_is_array(opts) || json_array_size(opts) < 1 ||
				               json_array_size(opts) > 25)) {
					strncat(p, ".options", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_BAD_LENGTH",
					         "Must be between 1 and 25 in length.");
					goto out;
				}
				size_t o;
				json_t *opt;
				json_array_foreach(opts, o, opt)
					if (str_len(opt, "label") < 1 ||
					    str_len(opt, "label") > 100 ||
					    str_len(opt, "value") < 1 ||
					    str_len(opt, "value") > 100) {
						char q[128];
						snprintf(q, sizeof(q), "%s.options.%zu.label", p,
						         o);
						form_err(x, q, "BASE_TYPE_BAD_LENGTH",
						         "Must be between 1 and 100 in length.");
						goto out;
					}
				if (str_len(c, "placeholder") > 150) {
					strncat(p, ".placeholder", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "BASE_TYPE_MAX_LENGTH",
					         "Must be 150 or fewer in length.");
					goto out;
				}
			} else {
				strncat(p, ".type", sizeof(p) - strlen(p) - 1);
				form_err(x, p, "BASE_TYPE_CHOICES",
				         "Value must be a message component type.");
				goto out;
			}
			const char *cid = json_string_value(json_object_get(c, "custom_id"));
			if (cid) {
				if (json_object_get(seen, cid)) {
					strncat(p, ".custom_id", sizeof(p) - strlen(p) - 1);
					form_err(x, p, "COMPONENT_CUSTOM_ID_DUPLICATED",
					         "Component custom id cannot be duplicated");
					goto out;
				}
				json_object_set_new(seen, cid, json_true());
			}
		}
		if (buttons > 5 || selects > 1 || (buttons && selects)) {
			snprintf(p, sizeof(p), "components.%zu.components", i);
			form_err(x, p, "BASE_TYPE_MAX_LENGTH",
			         selects ? "A select menu must be alone in its row."
			                 : "Must be 5 or fewer in length.");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(seen);
	return rc;
}

static int validate_poll(struct ctx *x, json_t *poll)
{
	json_t *q = json_object_get(poll, "question");
	if (!json_is_object(q) || str_len(q, "text") < 1 || str_len(q, "text") > 300) {
		form_err(x, "poll.question.text", "BASE_TYPE_BAD_LENGTH",
		         "Must be between 1 and 300 in length.");
		return -1;
	}
	json_t *answers = json_object_get(poll, "answers");
	if (!json_is_array(answers) || json_array_size(answers) < 1 ||
	    json_array_size(answers) > 10) {
		form_err(x, "poll.answers", "BASE_TYPE_BAD_LENGTH",
		         "Must be between 1 and 10 in length.");
		return -1;
	}
	size_t i;
	json_t *a;
	json_array_foreach(answers, i, a) {
		json_t *m = json_object_get(a, "poll_media");
		if (str_len(m, "text") < 1 || str_len(m, "text") > 55) {
			char p[64];
			snprintf(p, sizeof(p), "poll.answers.%zu.poll_media.text", i);
			form_err(x, p, "BASE_TYPE_BAD_LENGTH",
			         "Must be between 1 and 55 in length.");
			return -1;
		}
	}
	json_t *d = json_object_get(poll, "duration");
	if (d &&
	    (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 768)) {
		form_err(x, "poll.duration", "NUMBER_TYPE_MAX",
		         "int value should be between 1 and 768.");
		return -1;
	}
	return 0;
}

int validate_message(struct ctx *x, json_t *b, int require_something)
{
	if (!json_is_object(b)) {
		derr(x, 400, 50109, "The request body contains invalid JSON.");
		return -1;
	}
	if (too_long(x, b, "content", 2000, "content"))
		return -1;
	json_t *embeds = json_object_get(b, "embeds"), *comps = json_object_get(b, "components");
	json_t *poll = json_object_get(b, "poll"), *nonce = json_object_get(b, "nonce");
	if (embeds && !json_is_null(embeds) && validate_embeds(x, embeds))
		return -1;
	if (comps && !json_is_null(comps) && validate_components(x, comps))
		return -1;
	if (poll && !json_is_null(poll) && validate_poll(x, poll))
		return -1;
	if (nonce && !(json_is_integer(nonce) ||
	               (json_is_string(nonce) && strlen(json_string_value(nonce)) <= 25))) {
		form_err(x, "nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
		return -1;
	}
	json_t *am = json_object_get(b, "allowed_mentions");
	if (am && !json_is_null(am)) {
		json_t *parse = json_object_get(am, "parse");
		size_t i;
		json_t *v;
		json_array_foreach(parse, i, v) {
			const char *s = json_string_value(v);
			if (!s || (strcmp(s, "users") != 0 && strcmp(s, "roles") != 0 &&
			           strcmp(s, "everyone") != 0)) {
				form_err(x, "allowed_mentions.parse", "BASE_TYPE_CHOICES",
				         "Value must be one of ('roles', 'users', 'everyone').");
				return -1;
			}
			if ((strcmp(s, "users") == 0 && json_object_get(am, "users")) ||
			    (strcmp(s, "roles") == 0 && json_object_get(am, "roles"))) {
				form_err(x, "allowed_mentions", "ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
				         "parse:[\"users\"] and users: [ids...] are mutually "
				         "exclusive.");
				return -1;
			}
		}
	}
	if (require_something && str_len(b, "content") == 0 && !json_array_size(embeds) &&
	    !json_array_size(comps) && !json_is_object(poll) &&
	    !json_array_size(json_object_get(b, "sticker_ids"))) {
		derr(x, 400, 50006, "Cannot send an empty message");
		return -1;
	}
	return 0;
}

/* --- storing messages --------------------------------------------------------------------------
 */

static int parse_allows(json_t *am, const char *kind, const char *id)
{
	if (!am || json_is_null(am))
		return 1; /* no allowed_mentions: everything in the content pings */
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(am, "parse"), i, v)
		if (strcmp(json_string_value(v), kind) == 0)
			return 1;
	if (!id)
		return 0;
	json_array_foreach(json_object_get(am, kind), i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return 1;
	return 0;
}

/* Fills mentions, mention_roles and mention_everyone from the content, as allowed_mentions permits.
 */
static void compute_mentions(struct guild *g, json_t *m, json_t *am)
{
	const char *content = json_string_value(json_object_get(m, "content"));
	json_t *users = json_array(), *roles = json_array();
	int everyone = 0;
	for (const char *p = content; p && *p; p++) {
		if (strncmp(p, "@everyone", 9) == 0 || strncmp(p, "@here", 5) == 0) {
			everyone |= parse_allows(am, "everyone", NULL);
			continue;
		}
		if (p[0] != '<' || p[1] != '@')
			continue;
		int role = p[2] == '&';
		const char *id = p + 2 + (p[2] == '&' || p[2] == '!');
		size_t n = strspn(id, "0123456789");
		if (!n || id[n] != '>')
			continue;
		char buf[32];
		snprintf(buf, sizeof(buf), "%.*s", (int)n, id);
		if (role && g && json_object_get(g->roles, buf) && parse_allows(am, "roles", buf))
			json_array_append_new(roles, json_string(buf));
		else if (!role && world_user(buf) && parse_allows(am, "users", buf))
			json_array_append(users, world_user(buf));
	}
	json_object_set_new(m, "mentions", users);
	json_object_set_new(m, "mention_roles", roles);
	json_object_set_new(m, "mention_everyone", json_boolean(everyone));
}

static json_t *public_message(json_t *m)
{
	json_t *c = json_deep_copy(m);
	json_object_del(c, "sim_edits");
	json_object_del(c, "sim_allowed_mentions");
	return c;
}

json_t *store_message(struct guild *g, json_t *channel, json_t *author, json_t *b, json_t *extra)
{
	char idb[32], at[64];
	const char *cid = json_string_value(json_object_get(channel, "id"));
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_t *m = json_pack(
	    "{s:s, s:s, s:O, s:s, s:s, s:n, s:b, s:[], s:b, s:i, s:i}", "id",
	    sim_snowflake(idb, sizeof(idb)), "channel_id", cid, "author", author, "content",
	    json_string_value(json_object_get(b, "content"))
	        ? json_string_value(json_object_get(b, "content"))
	        : "",
	    "timestamp", at, "edited_timestamp", "tts", 0, "attachments", "pinned", 0, "type", 0,
	    "flags", (int)json_integer_value(json_object_get(b, "flags")));
	json_t *embeds = json_object_get(b, "embeds");
	json_object_set_new(m, "embeds",
	                    json_is_array(embeds) ? json_deep_copy(embeds) : json_array());
	json_object_set_new(m, "components",
	                    json_is_array(json_object_get(b, "components"))
	                        ? json_deep_copy(json_object_get(b, "components"))
	                        : json_array());
	if (g)
		json_object_set(m, "guild_id", json_object_get(g->obj, "id"));
	if (json_object_get(b, "nonce"))
		json_object_set(m, "nonce", json_object_get(b, "nonce"));
	json_t *poll = json_object_get(b, "poll");
	if (json_is_object(poll)) {
		json_t *p = json_deep_copy(poll);
		json_int_t hours = json_integer_value(json_object_get(poll, "duration"));
		char exp[64];
		sim_iso_time(sim_now_ms() + (uint64_t)(hours ? hours : 24) * 3600000, exp,
		             sizeof(exp));
		json_object_set_new(p, "expiry", json_string(exp));
		json_object_del(p, "duration");
		json_object_set_new(
		    p, "allow_multiselect",
		    json_boolean(json_is_true(json_object_get(poll, "allow_multiselect"))));
		json_object_set_new(p, "layout_type", json_integer(1));
		json_t *answers = json_object_get(p, "answers");
		size_t i;
		json_t *a;
		json_array_foreach(answers, i, a)
			json_object_set_new(a, "answer_id", json_integer((json_int_t)i + 1));
		json_object_set_new(p, "results",
		                    json_pack("{s:b, s:[]}", "is_finalized", 0, "answer_counts"));
		json_object_set_new(m, "poll", p);
	}
	if (extra)
		json_object_update(m, extra);
	json_t *am = json_object_get(b, "allowed_mentions");
	compute_mentions(g, m, am);
	if (am)
		json_object_set(m, "sim_allowed_mentions", am);
	if (!(json_integer_value(json_object_get(m, "flags")) & 64)) {
		json_t *list = json_object_get(sim.w.messages, cid);
		if (!list) {
			list = json_array();
			json_object_set_new(sim.w.messages, cid, list);
		}
		json_array_append(list, m);
		json_object_set_new(sim.w.msg_index, idb, json_string(cid));
		json_object_set_new(channel, "last_message_id", json_string(idb));
		json_t *d = public_message(m);
		if (g) {
			json_t *member = json_object_get(
			    g->members, json_string_value(json_object_get(author, "id")));
			if (member) {
				json_t *mm = json_deep_copy(member);
				json_object_del(mm, "user");
				json_object_set_new(d, "member", mm);
			}
		}
		gw_dispatch("MESSAGE_CREATE", d,
		            g ? json_string_value(json_object_get(g->obj, "id")) : NULL,
		            I_GUILD_MESSAGES);
	}
	return m; /* a new reference */
}

json_t *sim_post_message(struct guild *g, json_t *channel, json_t *author, json_t *body)
{
	json_t *m = store_message(g, channel, author, body, NULL);
	json_t *pub = public_message(m);
	json_decref(m);
	return pub;
}

static int is_thread_channel(json_t *c)
{
	int t = (int)json_integer_value(json_object_get(c, "type"));
	return t == 10 || t == 11 || t == 12;
}

static json_t *find_message(const char *channel_id, const char *message_id, size_t *index)
{
	json_t *list = json_object_get(sim.w.messages, channel_id);
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m)
		if (strcmp(json_string_value(json_object_get(m, "id")), message_id) == 0) {
			if (index)
				*index = i;
			return m;
		}
	return NULL;
}

/* --- message endpoints -------------------------------------------------------------------------
 */

static int can_post(struct ctx *x, struct guild *g, json_t *c)
{
	int t = (int)json_integer_value(json_object_get(c, "type"));
	if (t == 4) {
		derr(x, 400, 50008, "Cannot send messages in a non-text channel");
		return 0;
	}
	if (!g) {
		/* a DM: the recipient may have closed their DMs */
		json_t *rcpt = json_array_get(json_object_get(c, "recipients"), 0);
		if (json_object_get(sim.w.dm_closed,
		                    json_string_value(json_object_get(rcpt, "id")))) {
			derr(x, 403, DERR_CANNOT_DM, "Cannot send messages to this user");
			return 0;
		}
		return 1;
	}
	uint64_t need =
	    P_VIEW_CHANNEL | ((t == 11 || t == 12) ? P_SEND_IN_THREADS : P_SEND_MESSAGES);
	return need_perm(x, g, need, c) == 0;
}

void h_message_create(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g), *b = x->rq->body;
	if (!c || !can_post(x, g, c) || validate_message(x, b, 1))
		return;
	json_t *nonce = json_object_get(b, "nonce");
	char key[200] = "";
	if (nonce && json_is_true(json_object_get(b, "enforce_nonce"))) {
		char *ns = json_dumps(nonce, JSON_ENCODE_ANY);
		snprintf(key, sizeof(key), "%s:%s", param(x, "channel_id"), ns ? ns : "");
		free(ns);
		json_t *prior = json_object_get(sim.w.nonces, key);
		/* the same nonce within a few minutes returns the first message */
		if (prior &&
		    sim_now_ms() - (uint64_t)json_integer_value(json_object_get(prior, "at")) <
		        5 * 60000) {
			json_t *m =
			    find_message(param(x, "channel_id"),
			                 json_string_value(json_object_get(prior, "id")), NULL);
			if (m) {
				stat_inc("nonce", "deduplicated");
				reply(x, 200, public_message(m));
				return;
			}
		}
	}
	json_t *m = store_message(g, c, sim.w.bot, b, NULL);
	if (key[0])
		json_object_set_new(sim.w.nonces, key,
		                    json_pack("{s:O, s:I}", "id", json_object_get(m, "id"), "at",
		                              (json_int_t)sim_now_ms()));
	reply(x, 200, public_message(m));
	json_decref(m);
}

void h_messages_list(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	char b[32];
	if (!c || (g && need_perm(x, g, P_VIEW_CHANNEL | P_READ_HISTORY, c)))
		return;
	long limit = query_arg(x, "limit", b, sizeof(b)) ? strtol(b, NULL, 10) : 50;
	if (limit < 1 || limit > 100) {
		form_err(x, "limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100.");
		return;
	}
	unsigned long long before =
	    query_arg(x, "before", b, sizeof(b)) ? strtoull(b, NULL, 10) : ~0ull;
	unsigned long long after = query_arg(x, "after", b, sizeof(b)) ? strtoull(b, NULL, 10) : 0;
	json_t *list = json_object_get(sim.w.messages, param(x, "channel_id"));
	json_t *out = json_array();
	for (size_t i = json_array_size(list); i-- > 0 && (long)json_array_size(out) < limit;) {
		json_t *m = json_array_get(list, i);
		unsigned long long id =
		    strtoull(json_string_value(json_object_get(m, "id")), NULL, 10);
		if (id < before && id > after)
			json_array_append_new(out, public_message(m));
	}
	reply(x, 200, out);
}

void h_message_get(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	if (!c || (g && need_perm(x, g, P_VIEW_CHANNEL | P_READ_HISTORY, c)))
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), NULL);
	if (!m)
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
	else
		reply(x, 200, public_message(m));
}

/* Applies an edit to m (content, embeds, components, flags, allowed_mentions, attachments) and
 * dispatches MESSAGE_UPDATE. */
static void edit_message(struct guild *g, json_t *m, json_t *b)
{
	char at[64];
	json_t *hist = json_object_get(m, "sim_edits");
	if (!hist) {
		hist = json_array();
		json_object_set_new(m, "sim_edits", hist);
	}
	json_array_append_new(hist,
	                      json_pack("{s:O, s:O, s:O}", "content", json_object_get(m, "content"),
	                                "embeds", json_object_get(m, "embeds"), "components",
	                                json_object_get(m, "components")));
	const char *keys[] = {"content", "embeds", "components", "flags", "attachments"};
	for (size_t i = 0; i < 5; i++) {
		json_t *v = json_object_get(b, keys[i]);
		if (v && !json_is_null(v))
			json_object_set(m, keys[i], v);
		else if (v && i < 3)
			json_object_set_new(m, keys[i], i == 0 ? json_string("") : json_array());
	}
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_object_set_new(m, "edited_timestamp", json_string(at));
	json_t *am = json_object_get(b, "allowed_mentions");
	compute_mentions(g, m, am ? am : json_object_get(m, "sim_allowed_mentions"));
	if (!(json_integer_value(json_object_get(m, "flags")) & 64))
		gw_dispatch("MESSAGE_UPDATE", public_message(m),
		            g ? json_string_value(json_object_get(g->obj, "id")) : NULL,
		            I_GUILD_MESSAGES);
}

void h_message_edit(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g), *b = x->rq->body;
	if (!c || (g && need_perm(x, g, P_VIEW_CHANNEL, c)))
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), NULL);
	if (!m) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return;
	}
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "author"), "id")),
	           x->bot_id) != 0) {
		derr(x, 403, 50005, "Cannot edit a message authored by another user");
		return;
	}
	if (validate_message(x, b, 0))
		return;
	edit_message(g, m, b);
	reply(x, 200, public_message(m));
}

static void remove_message(struct guild *g, const char *channel_id, size_t idx, json_t *m)
{
	json_t *d =
	    json_pack("{s:O, s:s}", "id", json_object_get(m, "id"), "channel_id", channel_id);
	if (g)
		json_object_set(d, "guild_id", json_object_get(g->obj, "id"));
	json_object_del(sim.w.msg_index, json_string_value(json_object_get(m, "id")));
	json_array_remove(json_object_get(sim.w.messages, channel_id), idx);
	gw_dispatch("MESSAGE_DELETE", d,
	            g ? json_string_value(json_object_get(g->obj, "id")) : NULL, I_GUILD_MESSAGES);
}

void h_message_delete(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	size_t idx;
	if (!c)
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), &idx);
	if (!m) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return;
	}
	int own = strcmp(json_string_value(json_object_get(json_object_get(m, "author"), "id")),
	                 x->bot_id) == 0;
	if (!own && g && need_perm(x, g, P_MANAGE_MESSAGES, c))
		return;
	remove_message(g, param(x, "channel_id"), idx, m);
	reply(x, 204, NULL);
}

void h_poll_expire(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	if (!c)
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), NULL);
	json_t *poll = json_object_get(m, "poll");
	if (!m) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return;
	}
	if (!poll) {
		derr(x, 400, 50035, "Invalid Form Body");
		return;
	}
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "author"), "id")),
	           x->bot_id) != 0) {
		derr(x, 403, 50005, "Cannot edit a message authored by another user");
		return;
	}
	json_t *res = json_object_get(poll, "results");
	if (json_is_true(json_object_get(res, "is_finalized"))) {
		derr(x, 400, DERR_POLL_EXPIRED, "Poll expired");
		return;
	}
	char at[64];
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_object_set_new(poll, "expiry", json_string(at));
	json_object_set_new(res, "is_finalized", json_true());
	gw_dispatch("MESSAGE_UPDATE", public_message(m),
	            g ? json_string_value(json_object_get(g->obj, "id")) : NULL, I_GUILD_MESSAGES);
	reply(x, 200, public_message(m));
}

void h_poll_voters(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	char b[32];
	if (!c)
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), NULL);
	if (!m || !json_object_get(m, "poll")) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return;
	}
	long limit = query_arg(x, "limit", b, sizeof(b)) ? strtol(b, NULL, 10) : 25;
	unsigned long long after = query_arg(x, "after", b, sizeof(b)) ? strtoull(b, NULL, 10) : 0;
	json_t *voters = json_object_get(json_object_get(sim.w.votes, param(x, "message_id")),
	                                 param(x, "answer_id"));
	json_t *users = json_array();
	size_t i;
	json_t *uid;
	json_array_foreach(voters, i, uid) {
		if (strtoull(json_string_value(uid), NULL, 10) <= after ||
		    (long)json_array_size(users) >= limit)
			continue;
		json_t *u = world_user(json_string_value(uid));
		if (u)
			json_array_append(users, u);
	}
	reply(x, 200, json_pack("{s:o}", "users", users));
}

/* --- DMs ----------------------------------------------------------------------------------------
 */

void h_dm_create(struct ctx *x)
{
	const char *rid = json_string_value(json_object_get(x->rq->body, "recipient_id"));
	json_t *u = world_user(rid);
	char idb[32];
	if (!u) {
		form_err(x, "recipient_id", "NUMBER_TYPE_COERCE", "Value \"\" is not snowflake.");
		return;
	}
	json_t *dm = json_object_get(sim.w.dms, rid);
	if (!dm) {
		dm = json_pack("{s:s, s:i, s:n, s:[O], s:i}", "id", sim_snowflake(idb, sizeof(idb)),
		               "type", 1, "last_message_id", "recipients", u, "flags", 0);
		json_object_set_new(sim.w.dms, rid, dm);
	}
	reply(x, 200, json_deep_copy(dm));
}

/* --- threads ------------------------------------------------------------------------------------
 */

static json_t *make_thread(struct ctx *x, struct guild *g, json_t *parent, json_t *b, int type,
                           const char *id)
{
	char idb[32], at[64];
	sim_iso_time(sim_now_ms(), at, sizeof(at));
	json_t *name = json_object_get(b, "name");
	if (!json_is_string(name) || utf8_len(json_string_value(name)) < 1 ||
	    utf8_len(json_string_value(name)) > 100) {
		form_err(x, "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.");
		return NULL;
	}
	json_int_t dur = json_integer_value(json_object_get(b, "auto_archive_duration"));
	json_t *t = json_pack(
	    "{s:s, s:i, s:O, s:O, s:O, s:s, s:i, s:i, s:i, s:n, s:{s:b, s:I, s:s, s:b, s:s}}", "id",
	    id ? id : sim_snowflake(idb, sizeof(idb)), "type", type, "guild_id",
	    json_object_get(g->obj, "id"), "parent_id", json_object_get(parent, "id"), "name", name,
	    "owner_id", x->bot_id, "member_count", 1, "message_count", 0, "rate_limit_per_user", 0,
	    "last_message_id", "thread_metadata", "archived", 0, "auto_archive_duration",
	    dur ? dur : (json_int_t)4320, "archive_timestamp", at, "locked", 0, "create_timestamp",
	    at);
	if (type == 12)
		json_object_set_new(json_object_get(t, "thread_metadata"), "invitable",
		                    json_boolean(!json_is_false(json_object_get(b, "invitable"))));
	const char *tid = json_string_value(json_object_get(t, "id"));
	json_object_set(g->channels, tid, t);
	json_t *tm = json_object();
	json_object_set_new(tm, x->bot_id,
	                    json_pack("{s:s, s:s, s:s, s:i}", "id", tid, "user_id", x->bot_id,
	                              "join_timestamp", at, "flags", 0));
	json_object_set_new(sim.w.thread_members, tid, tm);
	json_t *d = json_deep_copy(t);
	json_object_set_new(d, "newly_created", json_true());
	gw_dispatch("THREAD_CREATE", d, json_string_value(json_object_get(g->obj, "id")), I_GUILDS);
	json_decref(t);
	return t;
}

void h_thread_create(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g), *b = x->rq->body;
	if (!c)
		return;
	int pt = (int)json_integer_value(json_object_get(c, "type"));
	if (!g || (pt != 0 && pt != 5)) {
		derr(x, 400, 50024, "Cannot execute action on this channel type");
		return;
	}
	int type = json_is_integer(json_object_get(b, "type"))
	               ? (int)json_integer_value(json_object_get(b, "type"))
	               : 12;
	if (type != 11 && type != 12) {
		form_err(x, "type", "BASE_TYPE_CHOICES", "Value must be one of (10, 11, 12).");
		return;
	}
	if (need_perm(x, g, type == 12 ? P_CREATE_PRIVATE_THREADS : P_SEND_MESSAGES, c))
		return;
	json_t *t = make_thread(x, g, c, b, type, NULL);
	if (t)
		reply(x, 201, json_deep_copy(t));
}

void h_thread_from_message(struct ctx *x)
{
	struct guild *g;
	json_t *c = need_channel(x, &g);
	if (!c || !g)
		return;
	json_t *m = find_message(param(x, "channel_id"), param(x, "message_id"), NULL);
	if (!m) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return;
	}
	if (json_object_get(g->channels, param(x, "message_id"))) {
		derr(x, 400, 160004, "A thread has already been created for this message");
		return;
	}
	json_t *t = make_thread(x, g, c, x->rq->body, 11, param(x, "message_id"));
	if (t)
		reply(x, 201, json_deep_copy(t));
}

static json_t *need_thread(struct ctx *x, struct guild **g)
{
	json_t *t = need_channel(x, g);
	if (t && !is_thread_channel(t)) {
		derr(x, 400, 50024, "Cannot execute action on this channel type");
		return NULL;
	}
	return t;
}

void h_thread_member_add(struct ctx *x)
{
	struct guild *g;
	json_t *t = need_thread(x, &g);
	char at[64];
	if (!t)
		return;
	const char *uid = param(x, "user_id");
	if (strcmp(uid, "@me") == 0)
		uid = x->bot_id;
	json_t *member = world_member(g, uid);
	if (!member) {
		derr(x, 404, DERR_UNKNOWN_MEMBER, "Unknown Member");
		return;
	}
	if (strcmp(uid, x->bot_id) != 0 && json_integer_value(json_object_get(t, "type")) == 12 &&
	    need_perm(x, g, P_SEND_IN_THREADS, t))
		return;
	const char *tid = json_string_value(json_object_get(t, "id"));
	json_t *tm = json_object_get(sim.w.thread_members, tid);
	if (!json_object_get(tm, uid)) {
		sim_iso_time(sim_now_ms(), at, sizeof(at));
		json_t *entry = json_pack("{s:s, s:s, s:s, s:i}", "id", tid, "user_id", uid,
		                          "join_timestamp", at, "flags", 0);
		json_object_set(tm, uid, entry);
		json_object_set_new(t, "member_count",
		                    json_integer((json_int_t)json_object_size(tm)));
		json_t *added = json_deep_copy(entry);
		json_object_set(added, "member", member);
		gw_dispatch("THREAD_MEMBERS_UPDATE",
		            json_pack("{s:s, s:O, s:I, s:[o]}", "id", tid, "guild_id",
		                      json_object_get(g->obj, "id"), "member_count",
		                      (json_int_t)json_object_size(tm), "added_members", added),
		            json_string_value(json_object_get(g->obj, "id")), I_GUILD_MEMBERS);
		json_decref(entry);
	}
	reply(x, 204, NULL);
}

void h_thread_member_remove(struct ctx *x)
{
	struct guild *g;
	json_t *t = need_thread(x, &g);
	if (!t)
		return;
	const char *uid = param(x, "user_id");
	if (strcmp(uid, "@me") == 0)
		uid = x->bot_id;
	if (strcmp(uid, x->bot_id) != 0 && need_perm(x, g, P_MANAGE_THREADS, t))
		return;
	const char *tid = json_string_value(json_object_get(t, "id"));
	json_t *tm = json_object_get(sim.w.thread_members, tid);
	if (json_object_get(tm, uid)) {
		json_object_del(tm, uid);
		json_object_set_new(t, "member_count",
		                    json_integer((json_int_t)json_object_size(tm)));
		gw_dispatch("THREAD_MEMBERS_UPDATE",
		            json_pack("{s:s, s:O, s:I, s:[s]}", "id", tid, "guild_id",
		                      json_object_get(g->obj, "id"), "member_count",
		                      (json_int_t)json_object_size(tm), "removed_member_ids", uid),
		            json_string_value(json_object_get(g->obj, "id")), I_GUILD_MEMBERS);
	}
	reply(x, 204, NULL);
}

void h_thread_members_list(struct ctx *x)
{
	struct guild *g;
	json_t *t = need_thread(x, &g);
	if (!t)
		return;
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(
	    json_object_get(sim.w.thread_members, json_string_value(json_object_get(t, "id"))), k,
	    v)
		json_array_append(out, v);
	reply(x, 200, out);
}

/* --- application commands -----------------------------------------------------------------------
 */

static int valid_command_name(const char *s, int chat)
{
	size_t n = utf8_len(s);
	if (n < 1 || n > 32)
		return 0;
	if (!chat)
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x80 && !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		                   *p == '-' || *p == '_'))
			return 0;
	return 1;
}

void h_commands_put(struct ctx *x)
{
	const char *gid = param(x, "guild_id");
	struct guild *g = NULL;
	json_t *b = x->rq->body;
	char idb[32], p[64];
	if (gid && !(g = need_guild(x)))
		return;
	if (strcmp(param(x, "application_id"),
	           json_string_value(json_object_get(sim.w.app, "id"))) != 0) {
		derr(x, 403, DERR_MISSING_ACCESS, "Missing Access");
		return;
	}
	if (!json_is_array(b) || json_array_size(b) > 110) {
		form_err(x, "_root", "BASE_TYPE_MAX_LENGTH", "Must be 110 or fewer in length.");
		return;
	}
	json_t **store = g ? &g->commands : &global_commands;
	if (!*store)
		*store = json_object();
	json_t *next = json_object(), *out = json_array();
	size_t i, chat = 0, created = 0;
	json_t *c;
	json_array_foreach(b, i, c) {
		int type = json_is_integer(json_object_get(c, "type"))
		               ? (int)json_integer_value(json_object_get(c, "type"))
		               : 1;
		const char *name = json_string_value(json_object_get(c, "name"));
		chat += type == 1;
		snprintf(p, sizeof(p), "%zu.name", i);
		if (!name || !valid_command_name(name, type == 1)) {
			form_err(x, p, "APPLICATION_COMMAND_INVALID_NAME",
			         "Command name is invalid");
			goto fail;
		}
		snprintf(p, sizeof(p), "%zu.description", i);
		size_t dl = str_len(c, "description");
		if (type == 1 && (dl < 1 || dl > 100)) {
			form_err(x, p, "BASE_TYPE_BAD_LENGTH",
			         "Must be between 1 and 100 in length.");
			goto fail;
		}
		if (json_array_size(json_object_get(c, "options")) > 25) {
			snprintf(p, sizeof(p), "%zu.options", i);
			form_err(x, p, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
			goto fail;
		}
		char key[64];
		snprintf(key, sizeof(key), "%d:%s", type, name);
		if (json_object_get(next, key)) {
			form_err(x, p, "APPLICATION_COMMANDS_DUPLICATE_NAME",
			         "Application command names must be unique");
			goto fail;
		}
		/* a command keeps its id when its name stays */
		const char *id = NULL, *k;
		json_t *old;
		json_object_foreach(*store, k, old)
			if (json_integer_value(json_object_get(old, "type")) == type &&
			    strcmp(json_string_value(json_object_get(old, "name")), name) == 0)
				id = k;
		if (!id)
			created++;
		json_t *cmd = json_deep_copy(c);
		json_object_set_new(cmd, "id",
		                    json_string(id ? id : sim_snowflake(idb, sizeof(idb))));
		json_object_set(cmd, "application_id", json_object_get(sim.w.app, "id"));
		json_object_set_new(cmd, "type", json_integer(type));
		json_object_set_new(cmd, "version", json_string(sim_snowflake(idb, sizeof(idb))));
		if (g)
			json_object_set(cmd, "guild_id", json_object_get(g->obj, "id"));
		if (!json_object_get(cmd, "default_member_permissions"))
			json_object_set_new(cmd, "default_member_permissions", json_null());
		json_object_set_new(next, key, cmd);
		json_array_append(out, cmd);
	}
	if (chat > 100) {
		form_err(x, "_root", "BASE_TYPE_MAX_LENGTH",
		         "Maximum number of application commands reached (100)");
		goto fail;
	}
	if (!daily_creates)
		daily_creates = json_object();
	const char *dkey = g ? gid : "global";
	json_int_t done = json_integer_value(json_object_get(daily_creates, dkey));
	if (done + (json_int_t)created > 200) {
		derr(x, 429, 30034,
		     "Max number of daily application command creates has been reached (200)");
		goto fail;
	}
	json_object_set_new(daily_creates, dkey, json_integer(done + (json_int_t)created));
	json_object_clear(*store);
	const char *k;
	json_t *v;
	json_object_foreach(next, k, v)
		json_object_set(*store, json_string_value(json_object_get(v, "id")), v);
	json_decref(next);
	reply(x, 200, out);
	return;
fail:
	json_decref(next);
	json_decref(out);
}

void h_commands_list(struct ctx *x)
{
	struct guild *g = NULL;
	if (param(x, "guild_id") && !(g = need_guild(x)))
		return;
	json_t *store = g ? g->commands : global_commands, *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(store, k, v)
		json_array_append(out, v);
	reply(x, 200, out);
}

/* --- interactions -------------------------------------------------------------------------------
 */

static json_t *interaction_by_token(const char *token)
{
	const char *k;
	json_t *v;
	json_object_foreach(sim.w.interactions, k, v)
		if (strcmp(json_string_value(json_object_get(v, "token")), token) == 0)
			return v;
	return NULL;
}

static int validate_modal(struct ctx *x, json_t *d)
{
	if (!json_is_string(json_object_get(d, "custom_id")) || bad_custom_id(d)) {
		form_err(x, "data.custom_id", "BASE_TYPE_BAD_LENGTH",
		         "Must be between 1 and 100 in length.");
		return -1;
	}
	if (str_len(d, "title") < 1 || str_len(d, "title") > 45) {
		form_err(x, "data.title", "BASE_TYPE_BAD_LENGTH",
		         "Must be between 1 and 45 in length.");
		return -1;
	}
	json_t *rows = json_object_get(d, "components");
	if (!json_is_array(rows) || json_array_size(rows) < 1 || json_array_size(rows) > 5) {
		form_err(x, "data.components", "BASE_TYPE_BAD_LENGTH",
		         "Must be between 1 and 5 in length.");
		return -1;
	}
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		json_t *items = json_object_get(row, "components");
		json_t *ti = json_array_get(items, 0);
		char p[64];
		snprintf(p, sizeof(p), "data.components.%zu.components.0", i);
		if (json_array_size(items) != 1 ||
		    json_integer_value(json_object_get(ti, "type")) != 4) {
			form_err(x, p, "UNION_TYPE_CHOICES",
			         "Value of field \"type\" must be one of (4,).");
			return -1;
		}
		if (bad_custom_id(ti) || str_len(ti, "label") < 1 || str_len(ti, "label") > 45) {
			form_err(x, p, "BASE_TYPE_BAD_LENGTH",
			         "Must be between 1 and 45 in length.");
			return -1;
		}
		json_int_t style = json_integer_value(json_object_get(ti, "style"));
		if (style != 1 && style != 2) {
			strncat(p, ".style", sizeof(p) - strlen(p) - 1);
			form_err(x, p, "BASE_TYPE_CHOICES", "Value must be one of (1, 2).");
			return -1;
		}
	}
	return 0;
}

void h_interaction_callback(struct ctx *x)
{
	json_t *in = json_object_get(sim.w.interactions, param(x, "interaction_id"));
	json_t *b = x->rq->body;
	if (!in ||
	    strcmp(json_string_value(json_object_get(in, "token")), param(x, "token")) != 0) {
		derr(x, 404, DERR_UNKNOWN_INTERACTION, "Unknown interaction");
		return;
	}
	uint64_t created = (uint64_t)json_integer_value(json_object_get(in, "sim_created_ms"));
	if (json_is_true(json_object_get(in, "sim_acked"))) {
		derr(x, 400, DERR_ALREADY_ACKED, "Interaction has already been acknowledged.");
		return;
	}
	if (uv_now(sim.loop) - created > 3000) {
		/* the token died after three seconds without an answer */
		derr(x, 404, DERR_UNKNOWN_INTERACTION, "Unknown interaction");
		return;
	}
	int itype = (int)json_integer_value(json_object_get(in, "type"));
	int ctype = (int)json_integer_value(json_object_get(b, "type"));
	json_t *data = json_object_get(b, "data");
	int from_component = itype == 3 || (itype == 5 && json_object_get(in, "message"));
	int ok = (ctype == 1 && itype == 1) ||
	         ((ctype == 4 || ctype == 5) && itype != 1 && itype != 4) ||
	         ((ctype == 6 || ctype == 7) && from_component) || (ctype == 8 && itype == 4) ||
	         (ctype == 9 && (itype == 2 || itype == 3));
	if (!ok) {
		char msg[96];
		snprintf(msg, sizeof(msg),
		         "Interaction callback type %d is not allowed for interaction type %d",
		         ctype, itype);
		form_err(x, "type", "INTERACTION_CALLBACK_TYPE_INVALID", msg);
		return;
	}
	if ((ctype == 4 || ctype == 7) && validate_message(x, data, ctype == 4))
		return;
	if (ctype == 9 && validate_modal(x, data))
		return;
	struct guild *g = world_guild(json_string_value(json_object_get(in, "guild_id")));
	json_t *channel = world_channel(json_string_value(json_object_get(in, "channel_id")), NULL);
	json_t *extra =
	    json_pack("{s:i, s:{s:O, s:i, s:O, s:s}, s:O}", "type",
	              json_integer_value(json_object_get(in, "type")) == 2 ? 20 : 0, "interaction",
	              "id", json_object_get(in, "id"), "type", itype, "user",
	              json_object_get(in, "sim_user"), "name",
	              json_string_value(json_object_get(json_object_get(in, "data"), "name"))
	                  ? json_string_value(json_object_get(json_object_get(in, "data"), "name"))
	                  : "",
	              "application_id", json_object_get(sim.w.app, "id"));
	if (ctype == 4 && channel) {
		json_t *m = store_message(g, channel, sim.w.bot, data, extra);
		json_object_set(in, "sim_original", json_object_get(m, "id"));
		if (json_integer_value(json_object_get(data, "flags")) & 64)
			json_object_set(in, "sim_original_message", m);
		json_decref(m);
	} else if (ctype == 5 && channel) {
		json_t *flags = json_pack(
		    "{s:s, s:I}", "content", "", "flags",
		    (json_int_t)(128 | (json_integer_value(json_object_get(data, "flags")) & 64)));
		json_t *m = store_message(g, channel, sim.w.bot, flags, extra);
		json_decref(flags);
		json_object_set(in, "sim_original", json_object_get(m, "id"));
		if (json_integer_value(json_object_get(m, "flags")) & 64)
			json_object_set(in, "sim_original_message", m);
		json_decref(m);
	} else if (ctype == 7) {
		json_t *src = json_object_get(in, "message");
		json_t *m = find_message(json_string_value(json_object_get(src, "channel_id")),
		                         json_string_value(json_object_get(src, "id")), NULL);
		if (m)
			edit_message(g, m, data);
	}
	json_decref(extra);
	json_object_set_new(in, "sim_acked", json_true());
	json_array_append(json_object_get(in, "sim_callbacks"), b);
	stat_inc("interactions", "answered");
	reply(x, 204, NULL);
}

static json_t *interaction_for_webhook(struct ctx *x)
{
	json_t *in = interaction_by_token(param(x, "token"));
	if (!in || strcmp(param(x, "application_id"),
	                  json_string_value(json_object_get(sim.w.app, "id"))) != 0) {
		derr(x, 404, DERR_UNKNOWN_WEBHOOK, "Unknown Webhook");
		return NULL;
	}
	if (uv_now(sim.loop) - (uint64_t)json_integer_value(json_object_get(in, "sim_created_ms")) >
	    15 * 60000) {
		derr(x, 401, 50027, "Invalid Webhook Token");
		return NULL;
	}
	if (!json_is_true(json_object_get(in, "sim_acked"))) {
		derr(x, 404, DERR_UNKNOWN_WEBHOOK, "Unknown Webhook");
		return NULL;
	}
	return in;
}

/* The message an interaction webhook refers to: @original or a follow-up id. */
static json_t *webhook_message(struct ctx *x, json_t *in, struct guild **g)
{
	const char *mid = param(x, "message_id");
	*g = world_guild(json_string_value(json_object_get(in, "guild_id")));
	if (strcmp(mid, "@original") == 0) {
		json_t *eph = json_object_get(in, "sim_original_message");
		if (eph)
			return eph;
		mid = json_string_value(json_object_get(in, "sim_original"));
	}
	if (!mid) {
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
		return NULL;
	}
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(in, "sim_followups"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "id")), mid) == 0)
			return f;
	const char *cid = json_string_value(json_object_get(sim.w.msg_index, mid));
	json_t *m = cid ? find_message(cid, mid, NULL) : NULL;
	if (!m)
		derr(x, 404, DERR_UNKNOWN_MESSAGE, "Unknown Message");
	return m;
}

void h_webhook_create(struct ctx *x)
{
	json_t *in = interaction_for_webhook(x), *b = x->rq->body;
	if (!in || validate_message(x, b, 1))
		return;
	struct guild *g = world_guild(json_string_value(json_object_get(in, "guild_id")));
	json_t *channel = world_channel(json_string_value(json_object_get(in, "channel_id")), NULL);
	if (!channel) {
		derr(x, 404, DERR_UNKNOWN_CHANNEL, "Unknown Channel");
		return;
	}
	json_t *extra = json_pack("{s:O, s:O}", "webhook_id", json_object_get(sim.w.app, "id"),
	                          "application_id", json_object_get(sim.w.app, "id"));
	json_t *m = store_message(g, channel, sim.w.bot, b, extra);
	json_decref(extra);
	json_array_append(json_object_get(in, "sim_followups"), m);
	reply(x, 200, public_message(m));
	json_decref(m);
}

void h_webhook_get(struct ctx *x)
{
	struct guild *g;
	json_t *in = interaction_for_webhook(x), *m;
	if (in && (m = webhook_message(x, in, &g)))
		reply(x, 200, public_message(m));
}

void h_webhook_edit(struct ctx *x)
{
	struct guild *g;
	json_t *in = interaction_for_webhook(x), *m, *b = x->rq->body;
	if (!in || !(m = webhook_message(x, in, &g)) || validate_message(x, b, 0))
		return;
	/* a deferred answer stops "thinking" when it is edited */
	json_int_t flags = json_integer_value(json_object_get(m, "flags"));
	json_object_set_new(m, "flags", json_integer(flags & ~128));
	edit_message(g, m, b);
	reply(x, 200, public_message(m));
}

void h_webhook_delete(struct ctx *x)
{
	struct guild *g;
	json_t *in = interaction_for_webhook(x), *m;
	if (!in || !(m = webhook_message(x, in, &g)))
		return;
	const char *cid = json_string_value(json_object_get(m, "channel_id"));
	size_t idx;
	if (find_message(cid, json_string_value(json_object_get(m, "id")), &idx))
		remove_message(g, cid, idx, m);
	reply(x, 204, NULL);
}

/* --- scheduled events ---------------------------------------------------------------------------
 */

/* Reads the number at *p (exactly digits long) and moves past it and one separator. */
static int field(const char **p, int digits, int *out)
{
	char buf[8];
	char *end;
	if (digits >= (int)sizeof(buf) || strspn(*p, "0123456789") < (size_t)digits)
		return -1;
	memcpy(buf, *p, (size_t)digits);
	buf[digits] = '\0';
	*out = (int)strtol(buf, &end, 10);
	*p += digits;
	return 0;
}

/* ISO 8601 as Discord takes it: 2026-05-01T09:00:00[.sss](Z|+hh:mm|-hh:mm). */
static int parse_iso(const char *s, uint64_t *ms)
{
	struct tm tm = {0};
	int v[6];
	static const char seps[] = "--T::";
	if (!s)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (field(&s, i == 0 ? 4 : 2, &v[i]))
			return -1;
		if (i < 5 && *s++ != seps[i])
			return -1;
	}
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*ms = (uint64_t)timegm(&tm) * 1000;
	if (*s == '.')
		s += 1 + strspn(s + 1, "0123456789");
	if (*s == '+' || *s == '-') {
		int oh, om;
		char sign = *s++;
		if (field(&s, 2, &oh) || *s++ != ':' || field(&s, 2, &om))
			return -1;
		uint64_t off = ((uint64_t)oh * 60 + (uint64_t)om) * 60000;
		*ms = sign == '+' ? *ms - off : *ms + off;
	}
	return 0;
}

static int check_event(struct ctx *x, struct guild *g, json_t *b, json_t *cur)
{
	json_t *v;
	int et = (int)json_integer_value(
	    (v = json_object_get(b, "entity_type")) ? v : json_object_get(cur, "entity_type"));
	if ((!cur || json_object_get(b, "name")) &&
	    (str_len(b, "name") < 1 || str_len(b, "name") > 100)) {
		form_err(x, "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.");
		return -1;
	}
	if (str_len(b, "description") > 1000) {
		form_err(x, "description", "BASE_TYPE_MAX_LENGTH",
		         "Must be 1000 or fewer in length.");
		return -1;
	}
	if (et < 1 || et > 3) {
		form_err(x, "entity_type", "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3).");
		return -1;
	}
	uint64_t start = 0, end = 0;
	const char *ss = json_string_value((v = json_object_get(b, "scheduled_start_time"))
	                                       ? v
	                                       : json_object_get(cur, "scheduled_start_time"));
	const char *es = json_string_value((v = json_object_get(b, "scheduled_end_time"))
	                                       ? v
	                                       : json_object_get(cur, "scheduled_end_time"));
	if (parse_iso(ss, &start)) {
		form_err(x, "scheduled_start_time", "DATE_TYPE_PARSE", "Could not parse date.");
		return -1;
	}
	if (!cur && start < sim_now_ms()) {
		form_err(x, "scheduled_start_time", "GUILD_SCHEDULED_EVENT_SCHEDULE_PAST",
		         "Cannot schedule event in the past.");
		return -1;
	}
	if (et == 3) {
		if (parse_iso(es, &end)) {
			form_err(x, "scheduled_end_time", "BASE_TYPE_REQUIRED",
			         "This field is required");
			return -1;
		}
		json_t *md = json_object_get(b, "entity_metadata");
		if (!cur && (str_len(md, "location") < 1 || str_len(md, "location") > 100)) {
			form_err(x, "entity_metadata.location", "BASE_TYPE_BAD_LENGTH",
			         "Must be between 1 and 100 in length.");
			return -1;
		}
	} else {
		const char *cid = json_string_value((v = json_object_get(b, "channel_id"))
		                                        ? v
		                                        : json_object_get(cur, "channel_id"));
		json_t *c = cid ? json_object_get(g->channels, cid) : NULL;
		int ct = (int)json_integer_value(json_object_get(c, "type"));
		if (!c || (et == 1 ? ct != 13 : ct != 2)) {
			form_err(x, "channel_id", "CHANNEL_TYPE_INVALID",
			         "Channel type is invalid for this entity type.");
			return -1;
		}
	}
	if (es && !parse_iso(es, &end) && end <= start) {
		form_err(x, "scheduled_end_time", "GUILD_SCHEDULED_EVENT_END_BEFORE_START",
		         "Cannot end before it starts.");
		return -1;
	}
	json_t *rr = json_object_get(b, "recurrence_rule");
	if (rr && !json_is_null(rr)) {
		json_int_t f = json_integer_value(json_object_get(rr, "frequency"));
		if (!json_is_object(rr) || f < 0 || f > 3) {
			form_err(x, "recurrence_rule.frequency", "BASE_TYPE_CHOICES",
			         "Value must be one of (0, 1, 2, 3).");
			return -1;
		}
	}
	return 0;
}

void h_event_create(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *b = x->rq->body;
	char idb[32];
	if (!g || need_perm(x, g, P_MANAGE_EVENTS, NULL) || check_event(x, g, b, NULL))
		return;
	size_t active = 0;
	const char *k;
	json_t *v;
	json_object_foreach(g->events, k, v)
		active += json_integer_value(json_object_get(v, "status")) <= 2;
	if (active >= 100) {
		derr(x, 400, 30038, "Maximum number of guild scheduled events reached (100)");
		return;
	}
	json_t *e = json_pack(
	    "{s:s, s:O, s:s, s:O, s:i, s:i, s:n, s:i, s:n}", "id", sim_snowflake(idb, sizeof(idb)),
	    "guild_id", json_object_get(g->obj, "id"), "creator_id", x->bot_id, "creator",
	    sim.w.bot, "status", 1, "privacy_level", 2, "entity_id", "user_count", 0, "image");
	const char *keys[] = {
	    "name",        "description", "scheduled_start_time", "scheduled_end_time",
	    "entity_type", "channel_id",  "entity_metadata",      "recurrence_rule"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *val = json_object_get(b, keys[i]);
		json_object_set(e, keys[i], val ? val : json_null());
	}
	json_object_set(g->events, idb, e);
	gw_dispatch("GUILD_SCHEDULED_EVENT_CREATE", json_incref(e),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILD_SCHEDULED_EVENTS);
	reply(x, 200, e);
}

static json_t *need_event(struct ctx *x, struct guild *g)
{
	json_t *e = json_object_get(g->events, param(x, "event_id"));
	if (!e)
		derr(x, 404, DERR_UNKNOWN_EVENT, "Unknown Guild Scheduled Event");
	return e;
}

void h_events_list(struct ctx *x)
{
	struct guild *g = need_guild(x);
	if (!g)
		return;
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(g->events, k, v)
		json_array_append(out, v);
	reply(x, 200, out);
}

void h_event_get(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *e;
	if (g && (e = need_event(x, g)))
		reply(x, 200, json_deep_copy(e));
}

void h_event_edit(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *e, *b = x->rq->body;
	if (!g || !(e = need_event(x, g)) || need_perm(x, g, P_MANAGE_EVENTS, NULL) ||
	    check_event(x, g, b, e))
		return;
	json_t *st = json_object_get(b, "status");
	if (st) {
		json_int_t from = json_integer_value(json_object_get(e, "status")),
		           to = json_integer_value(st);
		if (!((from == 1 && (to == 2 || to == 4)) || (from == 2 && to == 3))) {
			form_err(x, "status", "GUILD_SCHEDULED_EVENT_INVALID_STATUS_TRANSITION",
			         "Invalid status transition.");
			return;
		}
	}
	const char *keys[] = {
	    "name",           "description", "scheduled_start_time", "scheduled_end_time",
	    "entity_type",    "channel_id",  "entity_metadata",      "status",
	    "recurrence_rule"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *val = json_object_get(b, keys[i]);
		if (val)
			json_object_set(e, keys[i], val);
	}
	gw_dispatch("GUILD_SCHEDULED_EVENT_UPDATE", json_incref(e),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILD_SCHEDULED_EVENTS);
	reply(x, 200, json_deep_copy(e));
}

void h_event_delete(struct ctx *x)
{
	struct guild *g = need_guild(x);
	json_t *e;
	if (!g || !(e = need_event(x, g)) || need_perm(x, g, P_MANAGE_EVENTS, NULL))
		return;
	gw_dispatch("GUILD_SCHEDULED_EVENT_DELETE", json_deep_copy(e),
	            json_string_value(json_object_get(g->obj, "id")), I_GUILD_SCHEDULED_EVENTS);
	json_object_del(g->events, param(x, "event_id"));
	reply(x, 204, NULL);
}
