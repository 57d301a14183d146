#!/usr/bin/python3
"""Checks discord-sim's REST API: validation, permissions, limits, idempotency, interactions,
rate limits and the record file, as Discord documents them.

usage: rest_check.py PORT RECORD_FILE
The simulator must run on the sample world (no --world) with --ratelimits discord and
--record RECORD_FILE. Prints "rest: OK" and exits 0, or names the failed check and exits 1.
"""
import asyncio
import json
import sys
import time

import aiohttp

PORT = int(sys.argv[1])
RECORD = sys.argv[2]
BASE = f"http://127.0.0.1:{PORT}"
API = BASE + "/api/v10"
AUTH = {"Authorization": "Bot sim-token"}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def call(s, method, path, body=None, auth=True, base=API, headers=None):
    h = dict(AUTH) if auth else {}
    h.update(headers or {})
    async with s.request(method, base + path, json=body, headers=h) as r:
        t = await r.text()
        try:
            data = json.loads(t) if t else None
        except ValueError:
            data = t
        return r.status, data, r.headers


async def paced(s, method, path, body=None):
    """A well-behaved client: waits out a 429 and tries again."""
    while True:
        st, data, h = await call(s, method, path, body)
        if st != 429:
            return st, data, h
        await asyncio.sleep(data["retry_after"])


async def main():
    async with aiohttp.ClientSession() as s:
        st, state, _ = await call(s, "GET", "/_sim/state", base=BASE, auth=False)
        g = state["guilds"][0]
        gid = g["id"]
        roles = {r["name"]: r for r in g["roles"]}
        bot_id = state["bot"]["id"]
        text = next(c for c in g["channels"] if c["type"] == 0)
        category = next(c for c in g["channels"] if c["type"] == 4)
        humans = [m for m in g["members"] if not m["user"].get("bot") and m["user"]["id"] != g["owner_id"]]
        member = humans[-1]["user"]["id"]

        st, body, _ = await call(s, "GET", "/users/@me", auth=False)
        check(st == 401 and body["code"] == 0, f"no token: {st} {body}")
        st, body, _ = await call(s, "GET", "/guilds/1")
        check(st == 404 and body["code"] == 10004, f"unknown guild: {st} {body}")
        st, body, _ = await call(s, "GET", f"/guilds/{gid}/members/1")
        check(st == 404 and body["code"] == 10007, "unknown member")
        st, body, _ = await call(s, "GET", "/channels/1/messages/2")
        check(st == 404 and body["code"] == 10003, "unknown channel")

        # roles: the hierarchy decides
        st, body, _ = await call(s, "PUT", f"/guilds/{gid}/members/{member}/roles/{roles['Owner']['id']}")
        check(st == 403 and body["code"] == 50013, f"role above the bot: {st} {body}")
        st, body, _ = await call(s, "PUT", f"/guilds/{gid}/members/{member}/roles/{roles['Learner']['id']}",
                                 headers={"X-Audit-Log-Reason": "registered"})
        check(st == 204, f"add role: {st}")
        st, body, _ = await call(s, "PUT", f"/guilds/{gid}/members/{member}/roles/{roles['Learner']['id']}")
        check(st == 204, "adding twice is fine")
        st, m, _ = await call(s, "GET", f"/guilds/{gid}/members/{member}")
        check(m["roles"].count(roles["Learner"]["id"]) == 1, "idempotent role add")
        st, newrole, _ = await call(s, "POST", f"/guilds/{gid}/roles", {"name": "Cohort 7", "permissions": "0"})
        check(st == 200 and newrole["name"] == "Cohort 7", f"role create: {st} {newrole}")
        st, body, _ = await call(s, "PATCH", f"/guilds/{gid}/roles/{roles['Owner']['id']}", {"name": "x"})
        check(st == 403 and body["code"] == 50013, "modify a role above the bot")
        st, body, _ = await call(s, "POST", f"/guilds/{gid}/roles", {"name": "x" * 101})
        check(st == 400 and body["code"] == 50035 and "name" in body["errors"], f"long role name: {body}")

        # members list paging
        st, page, _ = await call(s, "GET", f"/guilds/{gid}/members?limit=5")
        st, page2, _ = await call(s, "GET", f"/guilds/{gid}/members?limit=5&after={page[-1]['user']['id']}")
        check(len(page) == 5 and page2 and int(page2[0]["user"]["id"]) > int(page[-1]["user"]["id"]), "member paging")

        # channels: private category channel, the 50-per-category limit
        ow = [{"id": gid, "type": 0, "deny": str(1 << 10)}, {"id": newrole["id"], "type": 0, "allow": str(1 << 10)}]
        st, cat, _ = await call(s, "POST", f"/guilds/{gid}/channels", {"name": "Cohort 7", "type": 4, "permission_overwrites": ow})
        check(st == 201 and cat["permission_overwrites"][0]["deny"] == str(1 << 10), f"category: {st} {cat}")
        for i in range(50):
            st, ch, _ = await paced(s, "POST", f"/guilds/{gid}/channels", {"name": f"c{i}", "parent_id": cat["id"]})
            check(st == 201, f"channel {i}: {st} {ch}")
        st, body, _ = await paced(s, "POST", f"/guilds/{gid}/channels", {"name": "c50", "parent_id": cat["id"]})
        check(st == 400 and "parent_id" in body.get("errors", {}), f"51st channel in a category: {st} {body}")
        st, body, _ = await call(s, "POST", f"/guilds/{gid}/channels", {"name": "bad", "type": 99})
        check(st == 400 and "type" in body["errors"], "bad channel type")

        # messages: validation, nonces, mentions, DMs
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", {"content": "x" * 2001})
        check(st == 400 and "content" in body["errors"], "2001 characters")
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", {})
        check(st == 400 and body["code"] == 50006, "empty message")
        rows = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": f"b{i}"} for i in range(6)]}]
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", {"content": "x", "components": rows})
        check(st == 400, "six buttons in a row")
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/messages",
                                 {"content": "x", "embeds": [{"description": "d" * 4096}, {"description": "d" * 2000}]})
        check(st == 400 and "embeds" in body["errors"], "embeds over 6000 characters")
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/messages",
                                 {"content": "x", "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": "y" * 101}]}]})
        check(st == 400, "custom_id over 100")
        msg = {"content": f"hi @everyone <@&{newrole['id']}> <@{member}>", "nonce": "row-17", "enforce_nonce": True,
               "allowed_mentions": {"parse": [], "users": [member]}}
        st, m1, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", msg)
        check(st == 200 and not m1["mention_everyone"] and m1["mention_roles"] == [] and
              [u["id"] for u in m1["mentions"]] == [member], f"allowed_mentions: {m1}")
        st, m2, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", msg)
        check(m2["id"] == m1["id"], "enforce_nonce returns the first message")
        st, body, _ = await paced(s, "PATCH", f"/channels/{text['id']}/messages/{m1['id']}", {"content": "edited"})
        check(st == 200 and body["content"] == "edited" and body["edited_timestamp"], "edit")
        st, dm, _ = await call(s, "POST", "/users/@me/channels", {"recipient_id": member})
        await call(s, "POST", f"/_sim/users/{member}/dms", {"open": False}, base=BASE, auth=False)
        st, body, _ = await paced(s, "POST", f"/channels/{dm['id']}/messages", {"content": "hello"})
        check(st == 403 and body["code"] == 50007, f"closed DMs: {st} {body}")

        # polls
        poll = {"question": {"text": "How was your week?"}, "answers": [{"poll_media": {"text": "Great"}}, {"poll_media": {"text": "Hard"}}], "duration": 24}
        st, pm, _ = await paced(s, "POST", f"/channels/{text['id']}/messages", {"poll": poll})
        check(st == 200 and pm["poll"]["answers"][0]["answer_id"] == 1, f"poll: {st} {pm}")
        await call(s, "POST", f"/_sim/polls/{pm['id']}/votes", {"user_id": member, "answer_id": 2}, base=BASE, auth=False)
        st, voters, _ = await call(s, "GET", f"/channels/{text['id']}/polls/{pm['id']}/answers/2")
        check([u["id"] for u in voters["users"]] == [member], "poll voters")
        st, body, _ = await paced(s, "POST", f"/channels/{text['id']}/polls/{pm['id']}/expire")
        check(st == 200 and body["poll"]["results"]["is_finalized"], f"poll expire: {st} {body}")

        # threads
        st, th, _ = await paced(s, "POST", f"/channels/{text['id']}/threads", {"name": "ticket-1", "type": 12})
        check(st == 201 and th["type"] == 12, f"private thread: {st} {th}")
        st, _, _ = await call(s, "PUT", f"/channels/{th['id']}/thread-members/{member}")
        check(st == 204, "thread member")
        st, tm, _ = await call(s, "GET", f"/channels/{th['id']}/thread-members")
        check({x["user_id"] for x in tm} == {bot_id, member}, "thread members")

        # commands
        app = state["application"]["id"]
        cmds = [{"name": "ticket", "description": "Open a ticket"}, {"name": "stats", "description": "Stats", "default_member_permissions": "32"}]
        st, out, _ = await call(s, "PUT", f"/applications/{app}/guilds/{gid}/commands", cmds)
        check(st == 200 and len(out) == 2, f"commands: {st} {out}")
        st, again, _ = await call(s, "PUT", f"/applications/{app}/guilds/{gid}/commands", cmds)
        check({c["id"] for c in again} == {c["id"] for c in out}, "bulk overwrite keeps ids")
        st, body, _ = await call(s, "PUT", f"/applications/{app}/guilds/{gid}/commands", [{"name": "Bad Name", "description": "x"}])
        check(st == 400, "invalid command name")

        # interactions: answer, follow-up, @original; modal rules; the 3-second rule
        async def interact(**kw):
            st, body, _ = await call(s, "POST", "/_sim/interactions", kw, base=BASE, auth=False)
            check(st == 200, f"interaction create: {body}")
            return body

        i1 = await interact(type="command", name="ticket", user_id=member, channel_id=text["id"])
        cb = f"/interactions/{i1['id']}/{i1['token']}/callback"
        st, _, _ = await call(s, "POST", cb, {"type": 5}, auth=False)
        check(st == 204, "deferred")
        st, body, _ = await call(s, "POST", cb, {"type": 4, "data": {"content": "again"}}, auth=False)
        check(st == 400 and body["code"] == 40060, "answered twice")
        st, body, _ = await call(s, "POST", cb, {"type": 9, "data": {}}, auth=False)
        check(st == 400, "modal after a deferral")
        st, orig, _ = await call(s, "PATCH", f"/webhooks/{app}/{i1['token']}/messages/@original", {"content": "done"}, auth=False)
        check(st == 200 and orig["content"] == "done", f"edit @original: {st} {orig}")
        st, fu, _ = await call(s, "POST", f"/webhooks/{app}/{i1['token']}", {"content": "follow-up", "flags": 64}, auth=False)
        check(st == 200, f"follow-up: {st}")
        st, seen, _ = await call(s, "GET", f"/_sim/interactions/{i1['id']}", base=BASE, auth=False)
        check(seen["original"]["content"] == "done" and len(seen["followups"]) == 1, f"interaction record: {seen}")

        i2 = await interact(type="modal", custom_id="checkin", fields={"mood": "ok"}, user_id=member, channel_id=text["id"])
        modal = {"type": 9, "data": {"custom_id": "m", "title": "t", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "A"}]}]}}
        st, body, _ = await call(s, "POST", f"/interactions/{i2['id']}/{i2['token']}/callback", modal, auth=False)
        check(st == 400, "a modal cannot answer a modal submit")
        i3 = await interact(type="button", custom_id="register", user_id=member, channel_id=text["id"])
        st, _, _ = await call(s, "POST", f"/interactions/{i3['id']}/{i3['token']}/callback", modal, auth=False)
        check(st == 204, "a modal answers a button")
        i4 = await interact(type="command", name="ticket", user_id=member, channel_id=text["id"])
        await asyncio.sleep(3.1)
        st, body, _ = await call(s, "POST", f"/interactions/{i4['id']}/{i4['token']}/callback", {"type": 4, "data": {"content": "late"}}, auth=False)
        check(st == 404 and body["code"] == 10062, f"after 3 s: {st} {body}")

        # scheduled events
        start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86400))
        end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 90000))
        ev = {"name": "Coaching", "privacy_level": 2, "scheduled_start_time": start, "scheduled_end_time": end,
              "entity_type": 3, "entity_metadata": {"location": "Room 1"}}
        st, e, _ = await call(s, "POST", f"/guilds/{gid}/scheduled-events", ev)
        check(st == 200 and e["status"] == 1, f"event: {st} {e}")
        bad = dict(ev, entity_metadata={})
        st, body, _ = await call(s, "POST", f"/guilds/{gid}/scheduled-events", bad)
        check(st == 400, "external event without a location")

        # rate limits: 5 messages per 5 s per channel, with every header
        await asyncio.sleep(1.1)
        st, c2, _ = await call(s, "POST", f"/guilds/{gid}/channels", {"name": "ratelimited"})
        statuses = []
        for i in range(6):
            st, body, h = await call(s, "POST", f"/channels/{c2['id']}/messages", {"content": f"m{i}"})
            statuses.append(st)
        check(statuses == [200] * 5 + [429], f"message bucket: {statuses}")
        check(h["X-RateLimit-Scope"] == "user" and float(h["Retry-After"]) >= 1 and body["retry_after"] > 0 and body["global"] is False,
              f"429 shape: {dict(h)} {body}")
        for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"):
            check(k in h, f"missing {k}")
        # another channel is another bucket
        st, _, _ = await call(s, "POST", f"/channels/{text['id']}/messages", {"content": "other channel"})
        check(st == 200, "major parameter")
        # the global limit: 50 per second across routes
        paths = ["/users/@me", "/gateway/bot", f"/guilds/{gid}", f"/guilds/{gid}/roles", f"/guilds/{gid}/channels"]
        got429 = None
        for i in range(60):
            st, body, h = await call(s, "GET", paths[i % 5])
            if st == 429:
                got429 = (body, h)
                break
        check(got429 and got429[0]["global"] is True and got429[1]["X-RateLimit-Global"] == "true" and
              got429[1]["X-RateLimit-Scope"] == "global", f"global limit: {got429}")
        await asyncio.sleep(1.1)
        # interaction callbacks are exempt from the global limit
        for i in range(55):
            await call(s, "GET", paths[i % 5])
        i5 = await interact(type="command", name="ticket", user_id=member, channel_id=text["id"])
        st, _, _ = await call(s, "POST", f"/interactions/{i5['id']}/{i5['token']}/callback", {"type": 4, "data": {"content": "x"}}, auth=False)
        check(st == 204, f"callback during the global limit: {st}")

        # faults
        await asyncio.sleep(1.1)
        await call(s, "POST", "/_sim/faults", {"fail_share": 1.0, "fail_status": 502}, base=BASE, auth=False)
        st, _, _ = await call(s, "GET", "/users/@me")
        check(st == 502, "fault injection")
        await call(s, "DELETE", "/_sim/faults", base=BASE, auth=False)

        _, stats, _ = await call(s, "GET", "/_sim/stats", base=BASE, auth=False)
        check(stats["ratelimits"]["429_user"] >= 1 and stats["ratelimits"]["429_global"] >= 1 and
              stats["ratelimits"]["invalid_requests"] >= 3, f"stats: {stats['ratelimits']}")

    with open(RECORD) as f:
        lines = [json.loads(l) for l in f]
    check(any(l["kind"] == "rest" and l["method"] == "PUT" and "/roles/" in l["path"] for l in lines), "record has REST requests")
    check(all("sim-token" not in json.dumps(l) for l in lines), "a token leaked into the record")
    check(any(l.get("body") and l["body"].get("nonce") == "row-17" for l in lines if l["kind"] == "rest" and isinstance(l.get("body"), dict)),
          "record has request bodies")
    print("rest: OK")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"rest: FAILED: {e}")
        sys.exit(1)
