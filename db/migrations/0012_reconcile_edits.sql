-- Reconciling edits what the bridge owns in place: a role or channel the mappings now name
-- otherwise is renamed (and a role recoloured, a channel moved to its category) through
-- role_edit and channel_edit rows, keeping its id.

-- owned_objects.name is the name the bridge last gave an object: a plan renames only when the
-- mappings' name differs from it. An edit row carries that name as "owned_name"; it is
-- recorded when the row is done, in the statement that marks it done.
CREATE FUNCTION cb_owned_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE owned_objects SET name = NEW.payload->>'owned_name', updated_at = now()
     WHERE guild_id = NEW.payload->>'guild_id'
       AND discord_id = coalesce(NEW.payload->>'role_id', NEW.payload->>'channel_id');
    RETURN NEW;
END;
$$;
CREATE TRIGGER outbox_owned_renamed AFTER UPDATE OF state ON outbox
    FOR EACH ROW WHEN (NEW.state = 'done' AND NEW.kind IN ('role_edit', 'channel_edit')
                       AND NEW.payload ? 'owned_name')
    EXECUTE FUNCTION cb_owned_renamed();

-- cb_reconcile_enqueue as in 0009, and "rekey": {"kind", "from", "to"}: an owned object moves
-- to another key. A category's key is its name; a category the mappings renamed keeps its
-- row, under the new name's key, unless that key is taken. Done before the action's "own" and
-- "outbox".
CREATE OR REPLACE FUNCTION cb_reconcile_enqueue(p_guild text, p_actions jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    a  jsonb;
    n  integer := 0;
    c  integer;
BEGIN
    FOR a IN SELECT e FROM jsonb_array_elements(p_actions) e LOOP
        IF a ? 'rekey' THEN
            UPDATE owned_objects o SET key = a->'rekey'->>'to', updated_at = now()
             WHERE o.guild_id = p_guild AND o.kind = a->'rekey'->>'kind'
               AND o.key = a->'rekey'->>'from'
               AND NOT EXISTS (SELECT 1 FROM owned_objects t WHERE t.guild_id = p_guild
                                  AND t.kind = a->'rekey'->>'kind'
                                  AND t.key = a->'rekey'->>'to');
        END IF;
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
