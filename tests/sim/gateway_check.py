#!/usr/bin/python3
"""Checks discord-sim's gateway against Discord's documented behaviour, as a raw client.

usage: gateway_check.py PORT
The simulator must run with --ratelimits fast, --heartbeat-ms 500 and a world of more than
2,000 members (tests/sim/worlds/large.json). Prints "gateway: OK" and exits 0, or names the
first check that failed and exits 1.
"""
import asyncio
import json
import sys
import zlib

import aiohttp

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"
WS = f"ws://127.0.0.1:{PORT}/?v=10&encoding=json"
TOKEN = "sim-token"
INTENTS = (1 << 0) | (1 << 1) | (1 << 9) | (1 << 15) | (1 << 16) | (1 << 24)


class Conn:
    def __init__(self, ws, compressed):
        self.ws, self.compressed = ws, compressed
        self.inflate = zlib.decompressobj()
        self.buf = b""
        self.seq = None

    async def recv(self, timeout=5):
        while True:
            m = await asyncio.wait_for(self.ws.receive(), timeout)
            if m.type == aiohttp.WSMsgType.BINARY:
                self.buf += m.data
                if not self.buf.endswith(b"\x00\x00\xff\xff"):
                    continue
                text, self.buf = self.inflate.decompress(self.buf), b""
                p = json.loads(text)
            elif m.type == aiohttp.WSMsgType.TEXT:
                p = json.loads(m.data)
            else:
                return {"closed": self.ws.close_code}
            if p.get("s") is not None:
                self.seq = p["s"]
            return p

    async def until(self, pred, timeout=5):
        while True:
            p = await self.recv(timeout)
            if "closed" in p or pred(p):
                return p

    async def send(self, op, d):
        await self.ws.send_str(json.dumps({"op": op, "d": d}))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def connect(s, compressed=False):
    url = WS + ("&compress=zlib-stream" if compressed else "")
    c = Conn(await s.ws_connect(url, autoclose=False, max_msg_size=0), compressed)
    hello = await c.recv()
    check(hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 500, f"HELLO: {hello}")
    return c


async def identify(c, intents=INTENTS, token=TOKEN, shard=None):
    d = {"token": token, "intents": intents, "properties": {"os": "linux", "browser": "t", "device": "t"}}
    if shard is not None:
        d["shard"] = shard
    await c.send(2, d)


async def control(s, method, path, body=None):
    async with s.request(method, BASE + path, json=body) as r:
        t = await r.text()
        return r.status, (json.loads(t) if t else None)


async def main():
    async with aiohttp.ClientSession() as s:
        _, gb = await control(s, "GET", "/api/v10/gateway")
        check(gb["url"].startswith("ws://127.0.0.1"), "gateway url")

        # closes that must not be retried
        for kwargs, code in [({"token": "wrong"}, 4004), ({"intents": 1 << 30}, 4013),
                             ({"intents": INTENTS | (1 << 8)}, 4014), ({"shard": [2, 2]}, 4010)]:
            c = await connect(s)
            await identify(c, **kwargs)
            p = await c.until(lambda p: False)
            check(p.get("closed") == code, f"{kwargs} closed with {p}, want {code}")
            await asyncio.sleep(0.06)

        # unknown opcode, and a payload that is not JSON
        c = await connect(s)
        await c.send(99, None)
        p = await c.until(lambda p: False)
        check(p.get("closed") == 4001, f"unknown opcode: {p}")
        c = await connect(s)
        await c.ws.send_str("{nope")
        p = await c.until(lambda p: False)
        check(p.get("closed") == 4002, f"decode error: {p}")

        # a real session over zlib-stream
        c = await connect(s, compressed=True)
        await c.send(1, None)
        ack = await c.recv()
        check(ack["op"] == 11, f"heartbeat ack: {ack}")
        await identify(c)
        ready = await c.until(lambda p: p.get("t") == "READY")
        for k in ("session_id", "resume_gateway_url", "user", "guilds", "application"):
            check(k in ready["d"], f"READY lacks {k}")
        check(ready["s"] == 1, "READY is sequence 1")
        gc = await c.until(lambda p: p.get("t") == "GUILD_CREATE")
        g = gc["d"]
        check(g["member_count"] > 2000, "world has the large guild")
        check(len(g["members"]) <= 2, f"GUILD_CREATE carries {len(g['members'])} members, want only the bot (and voice)")
        check(gc["s"] == 2, "every dispatch carries s")

        # chunking: all members, 1,000 per chunk, nonce echoed
        await c.send(8, {"guild_id": g["id"], "query": "", "limit": 0, "nonce": "n1"})
        chunks = []
        while True:
            p = await c.until(lambda p: p.get("t") == "GUILD_MEMBERS_CHUNK")
            chunks.append(p["d"])
            if p["d"]["chunk_index"] == p["d"]["chunk_count"] - 1:
                break
        total = sum(len(ch["members"]) for ch in chunks)
        check(total == g["member_count"], f"chunks hold {total} members, want {g['member_count']}")
        check(all(len(ch["members"]) <= 1000 and ch["nonce"] == "n1" for ch in chunks), "chunk size or nonce")
        check(len(chunks) == (total + 999) // 1000, "chunk_count")
        # the 30 s rule (300 ms with --ratelimits fast)
        await c.send(8, {"guild_id": g["id"], "query": "", "limit": 0, "nonce": "n2"})
        p = await c.until(lambda p: p.get("t") in ("RATE_LIMITED", "GUILD_MEMBERS_CHUNK"))
        check(p.get("t") == "RATE_LIMITED" and p["d"]["opcode"] == 8 and p["d"]["meta"]["nonce"] == "n2",
              f"second request within 30 s: {p}")
        # a query by prefix and by ids
        await c.send(8, {"guild_id": g["id"], "query": "learner1", "limit": 5, "nonce": "q"})
        p = await c.until(lambda p: p.get("t") == "GUILD_MEMBERS_CHUNK")
        check(0 < len(p["d"]["members"]) <= 5, "query limit")
        await c.send(8, {"guild_id": g["id"], "user_ids": ["1", chunks[0]["members"][0]["user"]["id"]], "nonce": "ids"})
        p = await c.until(lambda p: p.get("t") == "GUILD_MEMBERS_CHUNK")
        check(len(p["d"]["members"]) == 1 and p["d"]["not_found"] == ["1"], f"user_ids: {p['d'].get('not_found')}")

        # dispatches for changes; then a drop, changes while away, and a RESUME that replays them
        _, joined = await control(s, "POST", "/_sim/members", {"username": "newcomer"})
        p = await c.until(lambda p: p.get("t") == "GUILD_MEMBER_ADD")
        check(p["d"]["user"]["id"] == joined["user"]["id"], "GUILD_MEMBER_ADD")
        session, seq = ready["d"]["session_id"], c.seq
        await control(s, "POST", "/_sim/gateway/drop", {})
        p = await c.until(lambda p: False)
        check(p.get("closed") in (1006, None) or p.get("closed", 0) < 4000, f"a drop sends no close code: {p}")
        await control(s, "POST", "/_sim/members", {"username": "while-away-1"})
        await control(s, "POST", "/_sim/members", {"username": "while-away-2"})
        c2 = await connect(s, compressed=True)
        await c2.send(6, {"token": TOKEN, "session_id": session, "seq": seq})
        seen = []
        while True:
            p = await c2.recv()
            check("closed" not in p, f"resume closed: {p}")
            seen.append(p)
            if p.get("t") == "RESUMED":
                break
        names = [p["d"]["user"]["username"] for p in seen if p.get("t") == "GUILD_MEMBER_ADD"]
        check(names == ["while-away-1", "while-away-2"], f"replayed {names}")
        check([p["s"] for p in seen] == list(range(seq + 1, seq + 1 + len(seen))), "replay keeps sequence order")

        # op 7, and op 9 not resumable: RESUME must then be refused
        await control(s, "POST", "/_sim/gateway/reconnect", {})
        p = await c2.until(lambda p: p.get("op") == 7)
        check(p["op"] == 7, "op 7")
        await control(s, "POST", "/_sim/gateway/invalidate", {"resumable": False})
        p = await c2.until(lambda p: p.get("op") == 9)
        check(p["d"] is False, "op 9 d:false")
        await c2.ws.close()
        c3 = await connect(s)
        await c3.send(6, {"token": TOKEN, "session_id": session, "seq": c2.seq})
        p = await c3.recv()
        check(p.get("op") == 9 and p["d"] is False, f"resume of an invalidated session: {p}")
        await c3.ws.close()

        # a close with a chosen code
        c4 = await connect(s)
        await asyncio.sleep(0.06)
        await identify(c4)
        await c4.until(lambda p: p.get("t") == "READY")
        await control(s, "POST", "/_sim/gateway/drop", {"code": 4000})
        p = await c4.until(lambda p: False)
        check(p.get("closed") == 4000, f"close 4000: {p}")

        # the send limit: 120 per minute
        c5 = await connect(s)
        for _ in range(121):
            await c5.send(1, None)
        p = await c5.until(lambda p: False)
        check(p.get("closed") == 4008, f"send limit: {p}")

        # a client that stops heartbeating is closed
        c6 = await connect(s)
        await asyncio.sleep(0.06)
        await identify(c6)
        p = await c6.until(lambda p: False, timeout=5)
        check(p.get("closed") == 4009, f"no heartbeats: {p}")

        _, stats = await control(s, "GET", "/_sim/stats")
        check(stats["gateway"]["resumes"] >= 1 and stats["gateway"]["identifies"] >= 3, f"stats: {stats['gateway']}")
    print("gateway: OK")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"gateway: FAILED: {e}")
        sys.exit(1)
