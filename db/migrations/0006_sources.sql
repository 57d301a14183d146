-- What the outside sources say about learners and their work, normalised. Every row belongs
-- to one configured source (its name) and carries that source's own ids: mapping groups to
-- Discord cohorts is the mappings' job, not the model's.

CREATE TABLE people (
    source       text NOT NULL,
    external_id  text NOT NULL,
    name         text,
    email        text,
    time_zone    text,
    extra        jsonb NOT NULL DEFAULT '{}', -- name parts, login, what else the source gives
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, external_id)
);
CREATE INDEX people_email ON people (lower(email));

-- A person in one of the source's groups: a Canvas section, a Moodle group or cohort, a
-- pretix item or variation, a row of a roster file. city/program/cohort when the source has
-- such fields.
CREATE TABLE memberships (
    source      text NOT NULL,
    person      text NOT NULL,
    kind        text NOT NULL,
    group_id    text NOT NULL,
    group_name  text,
    city        text,
    program     text,
    cohort      text,
    status      text NOT NULL CHECK (status IN ('active', 'withdrawn')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, person, kind, group_id),
    FOREIGN KEY (source, person) REFERENCES people ON DELETE CASCADE
);
CREATE INDEX memberships_group ON memberships (source, kind, group_id) WHERE status = 'active';

CREATE TABLE assignments (
    source       text NOT NULL,
    external_id  text NOT NULL,
    course_id    text,
    name         text,
    due_at       timestamptz, -- the base date; NULL: none
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, external_id)
);

-- Each person's effective due date after overrides and extensions (NULL: no date).
CREATE TABLE due_dates (
    source      text NOT NULL,
    assignment  text NOT NULL,
    person      text NOT NULL,
    due_at      timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, assignment, person),
    FOREIGN KEY (source, assignment) REFERENCES assignments ON DELETE CASCADE
);

CREATE TABLE submissions (
    source        text NOT NULL,
    assignment    text NOT NULL,
    person        text NOT NULL,
    state         text,
    submitted_at  timestamptz,
    late          boolean NOT NULL DEFAULT false,
    missing       boolean NOT NULL DEFAULT false,
    excused       boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, assignment, person),
    FOREIGN KEY (source, assignment) REFERENCES assignments ON DELETE CASCADE
);

-- Per source: the connector's cursor (ETag, modified_since, a file's fingerprint) and how
-- the last syncs went.
CREATE TABLE source_state (
    source            text PRIMARY KEY,
    cursor            jsonb NOT NULL DEFAULT '{}',
    last_ok_at        timestamptz,
    last_ok_active    integer, -- active memberships after the last good sync
    last_failed_at    timestamptz,
    last_error        text,
    failing           boolean NOT NULL DEFAULT false
);

CREATE TABLE source_syncs (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL,
    error        text,
    report       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX source_syncs_recent ON source_syncs (source, id DESC);

-- A failed fetch: recorded, nothing else changes.
CREATE FUNCTION cb_sync_failed(p_source text, p_started timestamptz, p_error text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO source_syncs (source, started_at, ok, error) VALUES (p_source, p_started, false, p_error);
    INSERT INTO source_state (source, last_failed_at, last_error, failing)
    VALUES (p_source, now(), p_error, true)
    ON CONFLICT (source) DO UPDATE SET last_failed_at = now(), last_error = p_error, failing = true;
$$;

-- Applies one fetched snapshot of a source, all or nothing (a call is one statement):
--   {"people": [{"id", "name", "email", "time_zone", "extra"}],
--    "memberships": [{"person", "kind", "group", "group_name", "city", "program", "cohort",
--                     "status"}],
--    "assignments": [{"id", "course", "name", "due_at"}],
--    "due_dates": [{"assignment", "person", "due_at"}],
--    "submissions": [{"assignment", "person", "state", "submitted_at", "late", "missing",
--                     "excused"}],
--    "complete": {"people": true, ...}, "cursor": {...}}
-- A list that is absent is left alone. A list marked complete (the default for a list that is
-- present) is the whole truth: active memberships missing from it are withdrawn, assignments
-- missing from it deleted. An incremental fetch marks its lists false and only upserts.
-- The guard: a complete membership list with fewer active entries than p_min_share of the
-- last good sync's is refused as a failed sync. Returns the report, {"ok": false, "error"}
-- when refused. With p_dry_run, the report says what would change and nothing does.
CREATE FUNCTION cb_sync_apply(p_source text, p_started timestamptz, p_snapshot jsonb,
                              p_min_share real, p_dry_run boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    s          jsonb := p_snapshot;
    complete   jsonb := coalesce(p_snapshot->'complete', '{}');
    last_ok    integer;
    active     integer;
    rep        jsonb := '{}';
    n_ins      integer;
    n_upd      integer;
    n          integer;
BEGIN
    IF s ? 'memberships' AND coalesce((complete->>'memberships')::boolean, true) THEN
        SELECT count(*) INTO active FROM jsonb_array_elements(s->'memberships') m
         WHERE coalesce(m->>'status', 'active') = 'active';
        SELECT last_ok_active INTO last_ok FROM source_state WHERE source = p_source;
        IF last_ok > 0 AND active < p_min_share * last_ok THEN
            IF NOT p_dry_run THEN
                PERFORM cb_sync_failed(p_source, p_started, format(
                    'the roster shrank from %s to %s active memberships (below %s%% of the last good sync); nothing changed',
                    last_ok, active, round((p_min_share * 100)::numeric)));
            END IF;
            RETURN jsonb_build_object('ok', false, 'error', format(
                'the roster shrank from %s to %s active memberships (below %s%% of the last good sync); nothing changed',
                last_ok, active, round((p_min_share * 100)::numeric)));
        END IF;
    END IF;

    BEGIN
        IF s ? 'people' THEN
            WITH x AS (
                SELECT DISTINCT ON (e->>'id') e->>'id' AS id, e->>'name' AS name,
                       e->>'email' AS email, e->>'time_zone' AS tz,
                       coalesce(e->'extra', '{}') AS extra
                  FROM jsonb_array_elements(s->'people') e WHERE e->>'id' IS NOT NULL
            ), up AS (
                INSERT INTO people AS p (source, external_id, name, email, time_zone, extra)
                SELECT p_source, id, name, email, tz, extra FROM x
                ON CONFLICT (source, external_id) DO UPDATE
                   SET name = EXCLUDED.name, email = EXCLUDED.email,
                       time_zone = EXCLUDED.time_zone, extra = EXCLUDED.extra, updated_at = now()
                 WHERE (p.name, p.email, p.time_zone, p.extra) IS DISTINCT FROM
                       (EXCLUDED.name, EXCLUDED.email, EXCLUDED.time_zone, EXCLUDED.extra)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            rep := rep || jsonb_build_object('people', jsonb_build_object(
                'fetched', jsonb_array_length(s->'people'), 'new', n_ins, 'changed', n_upd));
        END IF;

        IF s ? 'memberships' THEN
            CREATE TEMP TABLE IF NOT EXISTS cb_sync_m (person text, kind text, group_id text,
                group_name text, city text, program text, cohort text, status text)
                ON COMMIT DROP;
            TRUNCATE cb_sync_m;
            INSERT INTO cb_sync_m
            SELECT DISTINCT ON (e->>'person', coalesce(e->>'kind', 'group'), e->>'group')
                   e->>'person', coalesce(e->>'kind', 'group'), e->>'group', e->>'group_name',
                   e->>'city', e->>'program', e->>'cohort', coalesce(e->>'status', 'active')
              FROM jsonb_array_elements(s->'memberships') e
             WHERE e->>'person' IS NOT NULL AND e->>'group' IS NOT NULL;
            -- a membership needs its person; a source that lists only groups gets bare people
            INSERT INTO people (source, external_id)
            SELECT DISTINCT p_source, person FROM cb_sync_m
            ON CONFLICT DO NOTHING;
            WITH up AS (
                INSERT INTO memberships AS m (source, person, kind, group_id, group_name, city,
                                              program, cohort, status)
                SELECT p_source, person, kind, group_id, group_name, city, program, cohort,
                       status FROM cb_sync_m
                ON CONFLICT (source, person, kind, group_id) DO UPDATE
                   SET group_name = EXCLUDED.group_name, city = EXCLUDED.city,
                       program = EXCLUDED.program, cohort = EXCLUDED.cohort,
                       status = EXCLUDED.status, updated_at = now()
                 WHERE (m.group_name, m.city, m.program, m.cohort, m.status) IS DISTINCT FROM
                       (EXCLUDED.group_name, EXCLUDED.city, EXCLUDED.program, EXCLUDED.cohort,
                        EXCLUDED.status)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            n := 0;
            IF coalesce((complete->>'memberships')::boolean, true) THEN
                -- NOT IN over a subquery is a hashed lookup, whatever the (often stale)
                -- estimates of the table say; the columns are never null
                UPDATE memberships m SET status = 'withdrawn', updated_at = now()
                 WHERE m.source = p_source AND m.status = 'active'
                   AND (m.person, m.kind, m.group_id) NOT IN
                       (SELECT person, kind, group_id FROM cb_sync_m);
                GET DIAGNOSTICS n = ROW_COUNT;
            END IF;
            rep := rep || jsonb_build_object('memberships', jsonb_build_object(
                'fetched', jsonb_array_length(s->'memberships'), 'new', n_ins,
                'changed', n_upd, 'withdrawn', n));
        END IF;

        IF s ? 'assignments' THEN
            WITH x AS (
                SELECT DISTINCT ON (e->>'id') e->>'id' AS id, e->>'course' AS course,
                       e->>'name' AS name, (e->>'due_at')::timestamptz AS due_at
                  FROM jsonb_array_elements(s->'assignments') e WHERE e->>'id' IS NOT NULL
            ), up AS (
                INSERT INTO assignments AS a (source, external_id, course_id, name, due_at)
                SELECT p_source, id, course, name, due_at FROM x
                ON CONFLICT (source, external_id) DO UPDATE
                   SET course_id = EXCLUDED.course_id, name = EXCLUDED.name,
                       due_at = EXCLUDED.due_at, updated_at = now()
                 WHERE (a.course_id, a.name, a.due_at) IS DISTINCT FROM
                       (EXCLUDED.course_id, EXCLUDED.name, EXCLUDED.due_at)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            n := 0;
            IF coalesce((complete->>'assignments')::boolean, true) THEN
                DELETE FROM assignments a WHERE a.source = p_source AND a.external_id NOT IN (
                    SELECT e->>'id' FROM jsonb_array_elements(s->'assignments') e
                     WHERE e->>'id' IS NOT NULL);
                GET DIAGNOSTICS n = ROW_COUNT;
            END IF;
            rep := rep || jsonb_build_object('assignments', jsonb_build_object(
                'fetched', jsonb_array_length(s->'assignments'), 'new', n_ins,
                'changed', n_upd, 'removed', n));
        END IF;

        IF s ? 'due_dates' THEN
            WITH x AS (
                SELECT DISTINCT ON (e->>'assignment', e->>'person') e->>'assignment' AS asg,
                       e->>'person' AS person, (e->>'due_at')::timestamptz AS due_at
                  FROM jsonb_array_elements(s->'due_dates') e
                 WHERE e->>'assignment' IS NOT NULL AND e->>'person' IS NOT NULL
                   AND EXISTS (SELECT 1 FROM assignments a WHERE a.source = p_source
                                  AND a.external_id = e->>'assignment')
            ), up AS (
                INSERT INTO due_dates AS d (source, assignment, person, due_at)
                SELECT p_source, asg, person, due_at FROM x
                ON CONFLICT (source, assignment, person) DO UPDATE
                   SET due_at = EXCLUDED.due_at, updated_at = now()
                 WHERE d.due_at IS DISTINCT FROM EXCLUDED.due_at
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            n := 0;
            IF coalesce((complete->>'due_dates')::boolean, true) THEN
                DELETE FROM due_dates d WHERE d.source = p_source
                   AND (d.assignment, d.person) NOT IN (
                       SELECT e->>'assignment', e->>'person'
                         FROM jsonb_array_elements(s->'due_dates') e
                        WHERE e->>'assignment' IS NOT NULL AND e->>'person' IS NOT NULL);
                GET DIAGNOSTICS n = ROW_COUNT;
            END IF;
            rep := rep || jsonb_build_object('due_dates', jsonb_build_object(
                'fetched', jsonb_array_length(s->'due_dates'), 'new', n_ins,
                'changed', n_upd, 'removed', n));
        END IF;

        IF s ? 'submissions' THEN
            WITH x AS (
                SELECT DISTINCT ON (e->>'assignment', e->>'person') e->>'assignment' AS asg,
                       e->>'person' AS person, e->>'state' AS state,
                       (e->>'submitted_at')::timestamptz AS submitted_at,
                       coalesce((e->>'late')::boolean, false) AS late,
                       coalesce((e->>'missing')::boolean, false) AS missing,
                       coalesce((e->>'excused')::boolean, false) AS excused
                  FROM jsonb_array_elements(s->'submissions') e
                 WHERE e->>'assignment' IS NOT NULL AND e->>'person' IS NOT NULL
                   AND EXISTS (SELECT 1 FROM assignments a WHERE a.source = p_source
                                  AND a.external_id = e->>'assignment')
            ), up AS (
                INSERT INTO submissions AS u (source, assignment, person, state, submitted_at,
                                              late, missing, excused)
                SELECT p_source, asg, person, state, submitted_at, late, missing, excused
                  FROM x
                ON CONFLICT (source, assignment, person) DO UPDATE
                   SET state = EXCLUDED.state, submitted_at = EXCLUDED.submitted_at,
                       late = EXCLUDED.late, missing = EXCLUDED.missing,
                       excused = EXCLUDED.excused, updated_at = now()
                 WHERE (u.state, u.submitted_at, u.late, u.missing, u.excused) IS DISTINCT FROM
                       (EXCLUDED.state, EXCLUDED.submitted_at, EXCLUDED.late,
                        EXCLUDED.missing, EXCLUDED.excused)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            rep := rep || jsonb_build_object('submissions', jsonb_build_object(
                'fetched', jsonb_array_length(s->'submissions'), 'new', n_ins,
                'changed', n_upd));
        END IF;

        SELECT count(*) INTO active FROM memberships
         WHERE source = p_source AND status = 'active';
        rep := rep || jsonb_build_object('ok', true, 'active', active);
        IF p_dry_run THEN
            RAISE EXCEPTION USING ERRCODE = 'CBDRY';
        END IF;
        INSERT INTO source_syncs (source, started_at, ok, report)
        VALUES (p_source, p_started, true, rep);
        INSERT INTO source_state AS st (source, cursor, last_ok_at, last_ok_active, failing)
        VALUES (p_source, coalesce(s->'cursor', '{}'), now(), active, false)
        ON CONFLICT (source) DO UPDATE
           SET cursor = coalesce(s->'cursor', st.cursor), last_ok_at = now(),
               last_ok_active = active, failing = false;
    EXCEPTION WHEN SQLSTATE 'CBDRY' THEN
        rep := rep || '{"dry_run": true}';
    END;
    RETURN rep;
END;
$$;
