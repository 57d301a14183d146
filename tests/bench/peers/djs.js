// discord.js peer for `make bench`: caches a 100,000-member guild from discord-sim, then counts
// how fast the firehose's GUILD_MEMBER_UPDATEs go through discord.js's cache handling.
// usage: node --expose-gc djs.js --api http://127.0.0.1:PORT/api/v10 --port PORT --events N
'use strict';
const { Client, Events, GatewayIntentBits, version } = require('discord.js');

const arg = name => process.argv[process.argv.indexOf(`--${name}`) + 1];
const port = Number(arg('port'));
const want = Number(arg('events'));
const fail = msg => { console.error(`djs.js: ${msg}`); process.exit(1); };
if (!port || !want || !arg('api')) fail('usage: djs.js --api URL --port PORT --events N');

// discord.js appends the API version itself; /gateway/bot gives it the simulator's ws:// URL.
// Compression stays off: discord.js only asks for zlib-stream when zlib-sync is installed.
const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers],
  rest: { api: arg('api').replace(/\/v\d+\/?$/, ''), version: '10' },
});

// guildMemberUpdate is only emitted when a member changes, and the firehose repeats one update,
// so count the calls of the action that applies each update to the cached member.
const action = client.actions.GuildMemberUpdate;
const handle = action.handle.bind(action);
let applied = 0, done = null;
action.handle = (data, shard) => {
  handle(data, shard);
  applied++;
  if (applied === want && done) done();
};

client.once(Events.ClientReady, async () => {
  const guild = client.guilds.cache.first();
  await guild.members.fetch(); // op 8, all members through GUILD_MEMBERS_CHUNK
  if (global.gc) global.gc();
  const rss = process.memoryUsage().rss;
  const members = guild.members.cache.size;
  const finished = new Promise(resolve => { done = resolve; });
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/_sim/gateway/firehose`, {
    method: 'POST',
    body: JSON.stringify({ events: want, type: 'GUILD_MEMBER_UPDATE' }),
  });
  if (!r.ok) fail(`firehose: HTTP ${r.status} ${await r.text()}`);
  await Promise.race([finished, new Promise(resolve => setTimeout(resolve, 120e3).unref())]);
  const seconds = (performance.now() - t0) / 1e3;
  console.log(JSON.stringify({
    client: 'discord.js', version, members, rss_bytes: rss, events: applied, seconds,
    events_per_s: applied / seconds,
  }));
  await client.destroy();
  process.exit(0);
});

setTimeout(() => fail('no result within 180 s'), 180e3).unref();
client.login('sim-token').catch(e => fail(`login: ${e.message}`));
