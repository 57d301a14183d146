-- The shared ground of reconciling and registration, per Discord server (guild).

-- What the bridge owns in a guild: the roles, categories, channels and messages it created or
-- that the mappings name (then created_by_bridge is false). It touches nothing else. key says
-- what the object is for: 'cohort:<cohort name>', 'staff:<role key>', 'role:<role key>',
-- 'register' (the registration message) ...; discord_id is NULL until it exists.
CREATE TABLE owned_objects (
    guild_id           text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('role', 'category', 'text', 'voice', 'message')),
    key                text NOT NULL,
    discord_id         text,
    name               text,
    parent_id          text,      -- a channel's category; a message's channel
    created_by_bridge  boolean NOT NULL DEFAULT true,
    archived           boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, kind, key)
);
CREATE UNIQUE INDEX owned_objects_discord ON owned_objects (guild_id, discord_id)
    WHERE discord_id IS NOT NULL;

-- A roster entry claimed by one Discord account: checked and written in one transaction, so
-- that two people racing for the same entry cannot both win (the unique keys). A learner who
-- leaves and comes back keeps it.
CREATE TABLE registrations (
    guild_id       text NOT NULL,
    user_id        text NOT NULL,
    source         text NOT NULL,
    person         text NOT NULL,
    cohort         text,          -- the mappings' cohort name
    method         text NOT NULL, -- pretix_order, lms_code, staff_approval, staff_link
    registered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id),
    UNIQUE (guild_id, source, person),
    FOREIGN KEY (source, person) REFERENCES people (source, external_id) ON DELETE CASCADE
);
