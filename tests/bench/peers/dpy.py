#!/usr/bin/python3
"""discord.py peer for `make bench` (Debian's python3-discord, run with /usr/bin/python3).

usage: dpy.py --api http://127.0.0.1:PORT/api/v10 --port PORT --events N

Caches a 100,000-member guild from discord-sim through chunking, then counts how fast the
firehose's GUILD_MEMBER_UPDATEs go through discord.py's parser (parse_guild_member_update
dispatches on_member_update for every update of a cached member). Prints one JSON line.
"""
import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
import time

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket

ap = argparse.ArgumentParser()
ap.add_argument("--api", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--events", type=int, required=True)
args = ap.parse_args()

# discord.py's two Discord addresses; a plain Client connects to DEFAULT_GATEWAY, not /gateway/bot.
discord.http.Route.BASE = args.api
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{args.port}/")

# The firehose needs an uncompressed connection: drop zlib-stream from every connect.
_from_client = DiscordWebSocket.from_client.__func__


async def from_client(cls, client, **kw):
    return await _from_client(cls, client, **{**kw, "zlib": False})


DiscordWebSocket.from_client = classmethod(from_client)


def rss_bytes():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))


class Peer(discord.Client):
    def __init__(self):
        intents = discord.Intents.none()
        intents.guilds = intents.members = True
        super().__init__(intents=intents, chunk_guilds_at_startup=True)
        self.updates = 0
        self.done = asyncio.Event()
        self.result = None

    async def on_member_update(self, before, after):
        self.updates += 1
        if self.updates == args.events:
            self.done.set()

    async def on_ready(self):
        guild = self.guilds[0]
        gc.collect()
        rss, members = rss_bytes(), len(guild.members)
        t0 = time.perf_counter()
        async with aiohttp.ClientSession() as s:
            body = {"events": args.events, "type": "GUILD_MEMBER_UPDATE"}
            async with s.post(f"http://127.0.0.1:{args.port}/_sim/gateway/firehose", json=body) as r:
                if r.status != 200:
                    print(f"dpy.py: firehose: HTTP {r.status} {await r.text()}", file=sys.stderr)
                    return await self.close()
        try:
            await asyncio.wait_for(self.done.wait(), 120)
        except asyncio.TimeoutError:
            pass
        seconds = time.perf_counter() - t0
        self.result = {"client": "discord.py", "version": discord.__version__, "members": members,
                       "rss_bytes": rss, "events": self.updates, "seconds": seconds,
                       "events_per_s": self.updates / seconds}
        await self.close()


signal.alarm(180)  # a hung login or gateway ends the run
peer = Peer()
peer.run("sim-token", log_level=logging.WARNING)
if not peer.result:
    sys.exit("dpy.py: no result (login or gateway failed)")
print(json.dumps(peer.result, separators=(",", ":")))
