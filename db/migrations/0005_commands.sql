-- The application commands registered with each guild, as a hash of the whole set: a start
-- with the same set registers nothing.
CREATE TABLE discord_commands (
    guild_id       text PRIMARY KEY,
    hash           text NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);
