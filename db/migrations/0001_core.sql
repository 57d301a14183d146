-- The core every feature builds on.

-- The Discord servers this bridge serves. Every other table's key carries guild_id, so one
-- bridge can serve several servers.
CREATE TABLE guilds (
    guild_id   bigint PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    added_at   timestamptz NOT NULL DEFAULT now()
);

-- What the bridge did and why: process starts and stops, configuration reloads, and (later)
-- every change it makes in Discord. Staff see it in the audit channel.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    guild_id   bigint REFERENCES guilds (guild_id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_guild_at ON audit_log (guild_id, at);
