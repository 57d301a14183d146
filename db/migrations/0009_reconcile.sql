-- Reconciling a guild: one statement enqueues a whole round of a plan, together with the
-- ownership it implies, so that a crash leaves either all of it or none.

-- p_actions: [{"own"?: {"kind", "key", "name", "discord_id"?, "parent_id"?, "created"?},
--              "outbox"?: {"kind", "key", "payload"}}]
-- "own" records what the bridge now owns: an object found by name (discord_id given,
-- created false) or one about to be created (discord_id NULL until the executor records it).
-- "outbox" enqueues an action under its stable key. A key already done or parked is set
-- pending again with the new payload: the plan only asks for an action when Discord lacks its
-- effect, so a done row whose effect was undone since (a role taken away by hand, a channel
-- deleted) must run again; a pending row is left as it is. Returns the rows enqueued.
CREATE FUNCTION cb_reconcile_enqueue(p_guild text, p_actions jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    a  jsonb;
    n  integer := 0;
    c  integer;
BEGIN
    FOR a IN SELECT e FROM jsonb_array_elements(p_actions) e LOOP
        IF a ? 'own' THEN
            INSERT INTO owned_objects AS o (guild_id, kind, key, discord_id, name, parent_id,
                                            created_by_bridge)
            VALUES (p_guild, a->'own'->>'kind', a->'own'->>'key', a->'own'->>'discord_id',
                    a->'own'->>'name', a->'own'->>'parent_id',
                    coalesce((a->'own'->>'created')::boolean, true))
            ON CONFLICT (guild_id, kind, key) DO UPDATE
               SET discord_id = EXCLUDED.discord_id, name = EXCLUDED.name,
                   parent_id = EXCLUDED.parent_id,
                   created_by_bridge = EXCLUDED.created_by_bridge, updated_at = now();
        END IF;
        IF a ? 'outbox' THEN
            INSERT INTO outbox AS x (guild_id, kind, key, payload)
            VALUES (p_guild::bigint, a->'outbox'->>'kind', a->'outbox'->>'key',
                    a->'outbox'->'payload')
            ON CONFLICT (key) DO UPDATE
               SET state = 'pending', payload = EXCLUDED.payload, attempts = 0,
                   next_at = now(), claimed_until = NULL, result = NULL, last_error = NULL,
                   done_at = NULL
             WHERE x.state <> 'pending';
            GET DIAGNOSTICS c = ROW_COUNT;
            n := n + c;
        END IF;
    END LOOP;
    RETURN n;
END;
$$;
