#!/usr/bin/python3
"""Runs Debian's discord.py, unmodified, against discord-sim.

usage: discordpy_check.py PORT [TOKEN]

Connects, receives the guild and its members through chunking, adds and removes a role, sends
a message, answers a slash command, survives a dropped connection with a RESUME, and exits 0
printing "discord.py: OK". Any failure exits 1 with the reason.
"""
import asyncio
import json
import sys
import traceback

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

PORT = int(sys.argv[1])
TOKEN = sys.argv[2] if len(sys.argv) > 2 else "sim-token"
BASE = f"http://127.0.0.1:{PORT}"

# The two places discord.py keeps Discord's addresses.
Route.BASE = f"{BASE}/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{PORT}/")


async def control(session, method, path, body=None):
    async with session.request(method, BASE + path, json=body) as r:
        text = await r.text()
        return r.status, (json.loads(text) if text else None)


class Check(discord.Client):
    def __init__(self):
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
        super().__init__(intents=intents)
        self.result = None
        self.answered = asyncio.Event()
        self.resumed = asyncio.Event()

    async def on_interaction(self, interaction: discord.Interaction):
        await interaction.response.send_message("pong from discord.py", ephemeral=True)
        self.answered.set()

    async def on_resumed(self):
        self.resumed.set()

    async def on_ready(self):
        try:
            await self.run_checks()
            self.result = "OK"
        except Exception as e:  # report, do not hang
            traceback.print_exc()
            self.result = f"FAILED: {type(e).__name__}: {e}"
        await self.close()

    async def run_checks(self):
        async with aiohttp.ClientSession() as s:
            _, state = await control(s, "GET", "/_sim/state")
            want_members = len(state["guilds"][0]["members"])
            guild = self.guilds[0]
            for _ in range(100):
                if guild.chunked:
                    break
                await asyncio.sleep(0.05)
            assert guild.chunked, "guild never finished chunking"
            assert len(guild.members) == want_members, f"{len(guild.members)} members, want {want_members}"

            learner = discord.utils.get(guild.roles, name="Learner")
            member = next(m for m in guild.members if not m.bot and learner not in m.roles and m.id != guild.owner_id)
            await member.add_roles(learner, reason="discord.py check")
            _, state = await control(s, "GET", "/_sim/state")
            roles = {m["user"]["id"]: m["roles"] for m in state["guilds"][0]["members"]}
            assert str(learner.id) in roles[str(member.id)], "role was not added in the simulator"
            await member.remove_roles(learner)
            _, state = await control(s, "GET", "/_sim/state")
            roles = {m["user"]["id"]: m["roles"] for m in state["guilds"][0]["members"]}
            assert str(learner.id) not in roles[str(member.id)], "role was not removed"

            channel = next(c for c in guild.text_channels)
            sent = await channel.send("hello from discord.py")
            _, state = await control(s, "GET", "/_sim/state")
            assert any(m["id"] == str(sent.id) for m in state["messages"][str(channel.id)]), "message not stored"

            status, created = await control(s, "POST", "/_sim/interactions", {
                "type": "command", "name": "ping", "user_id": str(member.id), "channel_id": str(channel.id)})
            assert status == 200, f"interaction create: {status}"
            await asyncio.wait_for(self.answered.wait(), 5)
            for _ in range(50):
                _, seen = await control(s, "GET", f"/_sim/interactions/{created['id']}")
                if seen["callbacks"]:
                    break
                await asyncio.sleep(0.05)
            assert seen["callbacks"] and seen["callbacks"][0]["type"] == 4, f"callback: {seen['callbacks']}"

            before = self.ws.sequence
            await control(s, "POST", "/_sim/gateway/drop", {})
            # something happens while the client is away; RESUME must replay it
            await control(s, "POST", "/_sim/members", {"username": "latecomer"})
            await asyncio.wait_for(self.resumed.wait(), 15)
            _, stats = await control(s, "GET", "/_sim/stats")
            assert stats["gateway"]["resumes"] >= 1, f"no resume: {stats['gateway']}"
            for _ in range(50):
                if discord.utils.get(guild.members, name="latecomer"):
                    break
                await asyncio.sleep(0.05)
            assert discord.utils.get(guild.members, name="latecomer"), "missed event was not replayed"
            assert self.ws.sequence > before


async def main():
    client = Check()
    try:
        await asyncio.wait_for(client.start(TOKEN), 60)
    except asyncio.TimeoutError:
        client.result = client.result or "FAILED: timed out"
    if client.result != "OK":
        print(f"discord.py: {client.result}")
        return 1
    print("discord.py: OK")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
