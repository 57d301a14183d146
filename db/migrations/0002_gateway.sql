-- The gateway session of each shard, so that a restarted process RESUMEs instead of starting a
-- new session (which would cost an IDENTIFY and miss what happened meanwhile).
CREATE TABLE gateway_sessions (
    shard_id    integer PRIMARY KEY,
    session_id  text NOT NULL,
    seq         bigint NOT NULL,
    resume_url  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
