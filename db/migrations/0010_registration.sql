-- Registration: where each learner is in the flow, the proofs under way (one-time codes,
-- staff approvals), and every attempt, so that the limits hold across restarts and processes.

-- The choices a learner has made so far (City, Program, Cohort) and, once they gave an
-- identifier, the roster entry it named. One row per person registering; a new start resets it.
CREATE TABLE reg_flows (
    guild_id    text NOT NULL,
    user_id     text NOT NULL,
    city        text,
    program     text,
    cohort      text,   -- the mappings' cohort name
    source      text,
    person      text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);

-- Every proof tried, good or bad. The limits count the bad ones within the mappings' window,
-- per user and per roster entry (person NULL: the identifier named no entry).
CREATE TABLE reg_attempts (
    id         bigserial PRIMARY KEY,
    guild_id   text NOT NULL,
    user_id    text NOT NULL,
    source     text,
    person     text,
    method     text NOT NULL,
    ok         boolean NOT NULL,
    reason     text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reg_attempts_user ON reg_attempts (guild_id, user_id, at) WHERE NOT ok;
CREATE INDEX reg_attempts_entry ON reg_attempts (guild_id, source, person, at) WHERE NOT ok;

-- A one-time code sent through the source's messaging. Only its hash is kept (with a salt of
-- its own), so a copy of the database reveals no usable code. A new code replaces the old one.
CREATE TABLE reg_codes (
    guild_id    text NOT NULL,
    user_id     text NOT NULL,
    source      text NOT NULL,
    person      text NOT NULL,
    cohort      text,
    salt        text NOT NULL,
    code_hash   text NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);

-- A request waiting for staff (Approve/Deny buttons in the approval channel).
CREATE TABLE reg_approvals (
    id          bigserial PRIMARY KEY,
    guild_id    text NOT NULL,
    user_id     text NOT NULL,
    source      text NOT NULL,
    person      text NOT NULL,
    cohort      text,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied')),
    decided_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz
);
CREATE UNIQUE INDEX reg_approvals_open ON reg_approvals (guild_id, user_id) WHERE state = 'pending';

-- Claims a roster entry for a user, in one transaction with everything that follows from it:
-- the cohort role (when the reconcile has created it: owned_objects 'cohort:<name>'; when it
-- has not, the reconcile hands the role to every registered member once it exists), the
-- nickname, the audit line and, when p_dm is given, a direct message to the learner. The
-- unique keys of registrations decide a race: the loser's insert waits for the winner's commit
-- and then does nothing.
-- outcome: 'ok', 'same' (this user already holds this entry: nothing new), 'taken' (another
-- account holds it) or 'other' (this user already holds another entry); role_name: the cohort
-- role's name when it exists.
CREATE FUNCTION cb_reg_claim(p_guild text, p_user text, p_source text, p_person text,
                             p_cohort text, p_method text, p_nick text,
                             p_audit_channel text, p_audit_text text, p_dm text)
RETURNS TABLE (outcome text, role_name text) LANGUAGE plpgsql AS $$
DECLARE
    n      integer;
    held   record;
    v_role text;
    v_name text;
    stamp  text := to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS');
BEGIN
    SELECT o.discord_id, o.name INTO v_role, v_name FROM owned_objects o
     WHERE o.guild_id = p_guild AND o.kind = 'role' AND o.key = 'cohort:' || p_cohort
       AND o.discord_id IS NOT NULL;
    INSERT INTO registrations (guild_id, user_id, source, person, cohort, method)
    VALUES (p_guild, p_user, p_source, p_person, p_cohort, p_method)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        SELECT r.source, r.person INTO held FROM registrations r
         WHERE r.guild_id = p_guild AND r.user_id = p_user;
        IF FOUND THEN
            IF held.source = p_source AND held.person = p_person THEN
                RETURN QUERY SELECT 'same'::text, v_name;
            ELSE
                RETURN QUERY SELECT 'other'::text, v_name;
            END IF;
            RETURN;
        END IF;
        RETURN QUERY SELECT 'taken'::text, v_name;
        RETURN;
    END IF;
    IF v_role IS NOT NULL THEN
        INSERT INTO outbox (guild_id, kind, key, payload)
        VALUES (p_guild::bigint, 'role_add',
                format('reg-role:%s:%s:%s:%s', p_guild, p_user, v_role, stamp),
                jsonb_build_object('guild_id', p_guild, 'user_id', p_user, 'role_id', v_role,
                                   'reason', 'registered'))
        ON CONFLICT (key) DO NOTHING;
    END IF;
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
        INSERT INTO outbox (guild_id, kind, key, payload)
        VALUES (p_guild::bigint, 'dm', format('reg-dm:%s:%s:%s', p_guild, p_user, stamp),
                jsonb_build_object('user_id', p_user,
                                   'body', jsonb_build_object('content', left(p_dm, 2000))))
        ON CONFLICT (key) DO NOTHING;
    END IF;
    PERFORM cb_reg_audit(p_guild, p_audit_channel, p_audit_text);
    INSERT INTO reg_attempts (guild_id, user_id, source, person, method, ok)
    VALUES (p_guild, p_user, p_source, p_person, p_method, true);
    DELETE FROM reg_flows f WHERE f.guild_id = p_guild AND f.user_id = p_user;
    DELETE FROM reg_codes c WHERE c.guild_id = p_guild AND c.user_id = p_user;
    RETURN QUERY SELECT 'ok'::text, v_name;
END;
$$;

-- One line in the audit channel, through the outbox (nothing when the guild has no audit
-- channel). Each call is a line of its own.
CREATE FUNCTION cb_reg_audit(p_guild text, p_channel text, p_text text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox (guild_id, kind, key, payload)
    SELECT p_guild::bigint, 'message_create',
           format('reg-audit:%s:%s', p_guild, gen_random_uuid()),
           jsonb_build_object('channel_id', p_channel,
                              'body', jsonb_build_object('content', left(p_text, 2000)))
     WHERE p_channel IS NOT NULL AND p_channel <> '' AND p_text IS NOT NULL;
$$;

-- A member who joins again gets back the cohort role of the entry they registered.
CREATE FUNCTION cb_reg_rejoin(p_guild text, p_user text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO outbox (guild_id, kind, key, payload)
    SELECT p_guild::bigint, 'role_add',
           format('reg-rejoin:%s:%s:%s:%s', p_guild, p_user, o.discord_id,
                  to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS')),
           jsonb_build_object('guild_id', p_guild, 'user_id', p_user, 'role_id', o.discord_id,
                              'reason', 'registered member rejoined')
      FROM registrations r
      JOIN owned_objects o ON o.guild_id = r.guild_id AND o.kind = 'role'
                          AND o.key = 'cohort:' || r.cohort AND o.discord_id IS NOT NULL
     WHERE r.guild_id = p_guild AND r.user_id = p_user
    ON CONFLICT (key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- The persistent Register message: one per guild, recorded in owned_objects (kind 'message',
-- key 'register', name = the hash of its body, parent_id = its channel). Posted once through
-- the outbox; its id lands in owned_objects when the outbox has posted it (the trigger below);
-- edited when the body changed; moved (posted anew) only when the channel changed.
-- Returns 'posted', 'edited', 'unchanged' or 'waiting' (the first post is still under way).
CREATE FUNCTION cb_reg_message(p_guild text, p_channel text, p_body jsonb, p_hash text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o      record;
    have   boolean;
    v_key  text := format('reg-message:%s:%s', p_guild, p_channel);
BEGIN
    SELECT * INTO o FROM owned_objects
     WHERE guild_id = p_guild AND kind = 'message' AND key = 'register' FOR UPDATE;
    have := FOUND;
    IF have AND o.discord_id IS NULL AND o.parent_id = p_channel THEN
        -- posted before its id could be recorded?
        UPDATE owned_objects ob SET discord_id = x.result->>'message_id', updated_at = now()
          FROM outbox x
         WHERE x.key = v_key AND x.state = 'done' AND x.result ? 'message_id'
           AND ob.guild_id = p_guild AND ob.kind = 'message' AND ob.key = 'register';
        IF NOT FOUND THEN
            RETURN 'waiting';
        END IF;
        SELECT * INTO o FROM owned_objects
         WHERE guild_id = p_guild AND kind = 'message' AND key = 'register';
    END IF;
    IF NOT have OR o.parent_id IS DISTINCT FROM p_channel THEN
        INSERT INTO owned_objects (guild_id, kind, key, discord_id, name, parent_id)
        VALUES (p_guild, 'message', 'register', NULL, p_hash, p_channel)
        ON CONFLICT (guild_id, kind, key) DO UPDATE
           SET discord_id = NULL, name = p_hash, parent_id = p_channel, updated_at = now();
        -- a channel used before has its old post done: post again
        DELETE FROM outbox x WHERE x.key = v_key AND x.state <> 'pending';
        INSERT INTO outbox (guild_id, kind, key, payload)
        VALUES (p_guild::bigint, 'message_create', v_key,
                jsonb_build_object('channel_id', p_channel, 'body', p_body))
        ON CONFLICT (key) DO NOTHING;
        RETURN 'posted';
    END IF;
    IF o.name = p_hash THEN
        RETURN 'unchanged';
    END IF;
    UPDATE owned_objects SET name = p_hash, updated_at = now()
     WHERE guild_id = p_guild AND kind = 'message' AND key = 'register';
    INSERT INTO outbox (guild_id, kind, key, payload)
    VALUES (p_guild::bigint, 'message_edit',
            format('reg-message-edit:%s:%s:%s', p_guild, p_hash,
                   to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS')),
            jsonb_build_object('channel_id', p_channel, 'message_id', o.discord_id,
                               'body', p_body));
    RETURN 'edited';
END;
$$;

-- Records the Register message's id as soon as the outbox has posted it.
CREATE FUNCTION cb_reg_message_posted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE owned_objects SET discord_id = NEW.result->>'message_id', updated_at = now()
     WHERE guild_id = split_part(NEW.key, ':', 2) AND kind = 'message' AND key = 'register'
       AND parent_id = split_part(NEW.key, ':', 3) AND discord_id IS NULL;
    RETURN NEW;
END;
$$;
CREATE TRIGGER outbox_reg_message_posted AFTER UPDATE OF state ON outbox
    FOR EACH ROW WHEN (NEW.state = 'done' AND NEW.kind = 'message_create'
                       AND NEW.key LIKE 'reg-message:%' AND NEW.result ? 'message_id')
    EXECUTE FUNCTION cb_reg_message_posted();
