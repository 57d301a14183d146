-- Registration hands out every role the mappings give an entry, not only its cohort's: the
-- roles of the role rules its memberships match (pretix items and variations), at the claim
-- and again when a registered member rejoins. A staff decision taken by command closes the
-- request's message in the approval channel.

-- The roles an entry earns, as the bridge holds them (owned_objects with a Discord id): the
-- cohort's ('cohort:<name>') first, then the rules' in name order. p_rules is the mappings'
-- role rules as [{"source", "items": [...], "variations": [...], "roles": ["role:<key>" or
-- "staff:<key>", ...]}]; an entry earns a rule's roles when one of its active memberships in
-- the rule's source is one of the items or variations.
CREATE FUNCTION cb_reg_roles(p_guild text, p_source text, p_person text, p_cohort text,
                             p_rules jsonb)
RETURNS TABLE (role_id text, role_name text) LANGUAGE sql STABLE AS $$
    SELECT o.discord_id, o.name FROM owned_objects o
     WHERE o.guild_id = p_guild AND o.kind = 'role' AND o.discord_id IS NOT NULL
       AND (o.key = 'cohort:' || p_cohort
            OR o.key IN (SELECT k.value
                           FROM jsonb_array_elements(coalesce(p_rules, '[]'::jsonb)) AS r (rule)
                          CROSS JOIN jsonb_array_elements_text(r.rule->'roles') AS k (value)
                          WHERE EXISTS (
                                SELECT 1 FROM memberships m
                                 WHERE m.source = p_source AND m.person = p_person
                                   AND m.status = 'active' AND m.source = r.rule->>'source'
                                   AND ((m.kind = 'item' AND r.rule->'items' ? m.group_id)
                                        OR (m.kind = 'variation'
                                            AND r.rule->'variations' ? m.group_id)))))
     ORDER BY o.key = 'cohort:' || p_cohort DESC, o.name;
$$;

-- As in 0010, with the rules: every role the entry earns is added, and role_name lists their
-- names ("Web Berlin, Speaker"), NULL when none exists yet.
DROP FUNCTION cb_reg_claim(text, text, text, text, text, text, text, text, text, text);
CREATE FUNCTION cb_reg_claim(p_guild text, p_user text, p_source text, p_person text,
                             p_cohort text, p_method text, p_nick text,
                             p_audit_channel text, p_audit_text text, p_dm text,
                             p_rules jsonb, p_dm_fallback text)
RETURNS TABLE (outcome text, role_name text) LANGUAGE plpgsql AS $$
DECLARE
    n       integer;
    held    record;
    v_names text;
    stamp   text := to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS');
BEGIN
    SELECT string_agg(x.role_name, ', ') INTO v_names
      FROM cb_reg_roles(p_guild, p_source, p_person, p_cohort, p_rules) x;
    INSERT INTO registrations (guild_id, user_id, source, person, cohort, method)
    VALUES (p_guild, p_user, p_source, p_person, p_cohort, p_method)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        SELECT r.source, r.person INTO held FROM registrations r
         WHERE r.guild_id = p_guild AND r.user_id = p_user;
        IF FOUND THEN
            IF held.source = p_source AND held.person = p_person THEN
                RETURN QUERY SELECT 'same'::text, v_names;
            ELSE
                RETURN QUERY SELECT 'other'::text, v_names;
            END IF;
            RETURN;
        END IF;
        RETURN QUERY SELECT 'taken'::text, v_names;
        RETURN;
    END IF;
    INSERT INTO outbox (guild_id, kind, key, payload)
    SELECT p_guild::bigint, 'role_add',
           format('reg-role:%s:%s:%s:%s', p_guild, p_user, x.role_id, stamp),
           jsonb_build_object('guild_id', p_guild, 'user_id', p_user, 'role_id', x.role_id,
                              'reason', 'registered')
      FROM cb_reg_roles(p_guild, p_source, p_person, p_cohort, p_rules) x
    ON CONFLICT (key) DO NOTHING;
    IF p_nick IS NOT NULL AND p_nick <> '' THEN
        INSERT INTO outbox (guild_id, kind, key, payload)
        VALUES (p_guild::bigint, 'member_edit',
                format('reg-nick:%s:%s:%s', p_guild, p_user, stamp),
                jsonb_build_object('guild_id', p_guild, 'user_id', p_user,
                                   'body', jsonb_build_object('nick', left(p_nick, 32)),
                                   'reason', 'registered'))
        ON CONFLICT (key) DO NOTHING;
    END IF;
    IF p_dm IS NOT NULL THEN
        PERFORM cb_reg_dm(p_guild, p_user, format('reg-dm:%s:%s:%s', p_guild, p_user, stamp),
                          p_dm, p_dm_fallback);
    END IF;
    PERFORM cb_reg_audit(p_guild, p_audit_channel, p_audit_text);
    INSERT INTO reg_attempts (guild_id, user_id, source, person, method, ok)
    VALUES (p_guild, p_user, p_source, p_person, p_method, true);
    DELETE FROM reg_flows f WHERE f.guild_id = p_guild AND f.user_id = p_user;
    DELETE FROM reg_codes c WHERE c.guild_id = p_guild AND c.user_id = p_user;
    RETURN QUERY SELECT 'ok'::text, v_names;
END;
$$;

-- A direct message to a learner under its outbox key; when they take no direct messages from
-- the server, the text goes to p_fallback_channel (when given) mentioning them.
CREATE FUNCTION cb_reg_dm(p_guild text, p_user text, p_key text, p_text text,
                          p_fallback_channel text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox (guild_id, kind, key, payload)
    VALUES (p_guild::bigint, 'dm', p_key,
            jsonb_build_object('user_id', p_user,
                               'body', jsonb_build_object('content', left(p_text, 2000)))
            || CASE WHEN coalesce(p_fallback_channel, '') = '' THEN '{}'::jsonb
                    ELSE jsonb_build_object('fallback', jsonb_build_object(
                             'channel_id', p_fallback_channel,
                             'body', jsonb_build_object('content',
                                 left(format('<@%s> %s', p_user, p_text), 2000))))
               END)
    ON CONFLICT (key) DO NOTHING;
$$;

-- A member who joins again gets back every role of the entry they registered.
DROP FUNCTION cb_reg_rejoin(text, text);
CREATE FUNCTION cb_reg_rejoin(p_guild text, p_user text, p_rules jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO outbox (guild_id, kind, key, payload)
    SELECT p_guild::bigint, 'role_add',
           format('reg-rejoin:%s:%s:%s:%s', p_guild, p_user, x.role_id,
                  to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS')),
           jsonb_build_object('guild_id', p_guild, 'user_id', p_user, 'role_id', x.role_id,
                              'reason', 'registered member rejoined')
      FROM registrations r
     CROSS JOIN LATERAL cb_reg_roles(r.guild_id, r.source, r.person, r.cohort, p_rules) x
     WHERE r.guild_id = p_guild AND r.user_id = p_user
    ON CONFLICT (key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- Closes an approval request's message (once it has been posted): its text becomes p_text and
-- its buttons go. Used when the decision came by command rather than by the buttons (with
-- the buttons, the answer itself edits the message); nothing when p_text is NULL.
CREATE FUNCTION cb_reg_approval_close(p_guild text, p_id bigint, p_text text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox (guild_id, kind, key, payload)
    SELECT p_guild::bigint, 'message_edit', 'reg-approval-close:' || p_id,
           jsonb_build_object('channel_id', x.payload->>'channel_id',
                              'message_id', x.result->>'message_id',
                              'body', jsonb_build_object('content', left(p_text, 2000),
                                                         'components', '[]'::jsonb))
      FROM outbox x
     WHERE x.key = 'reg-approval:' || p_id AND x.state = 'done' AND x.result ? 'message_id'
       AND p_text IS NOT NULL
    ON CONFLICT (key) DO NOTHING;
$$;
