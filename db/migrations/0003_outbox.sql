-- The outbox: every Discord side effect the bridge decides on, written in the same transaction
-- as the decision and carried out by the executor (bridge/outbox.c). key is the caller's
-- idempotency key: deciding the same thing twice inserts nothing the second time.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    guild_id       bigint,
    kind           text NOT NULL,
    key            text NOT NULL UNIQUE,
    payload        jsonb NOT NULL,
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'parked')),
    attempts       integer NOT NULL DEFAULT 0,
    next_at        timestamptz NOT NULL DEFAULT now(),
    claimed_until  timestamptz,
    result         jsonb,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    done_at        timestamptz
);
CREATE INDEX outbox_ready ON outbox (next_at, id) WHERE state = 'pending';
