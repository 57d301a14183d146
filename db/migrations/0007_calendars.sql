-- What the calendar sources say: coaching sessions and events from iCal feeds (expanded into
-- instances over a rolling window), conference schedules (pretalx, frab), public holidays.

-- One occurrence of an event. recurrence_id is '' for a single event, and for an instance of a
-- recurring one its original start as the feed expander prints it (UTC "…Z", or the date of an
-- all-day instance): with uid it names the instance across syncs, moved or not. All-day
-- instances start and end at midnight UTC of their dates (end exclusive); whose midnight they
-- mean is the reader's cohort's.
CREATE TABLE calendar_instances (
    source         text NOT NULL,
    uid            text NOT NULL,
    recurrence_id  text NOT NULL DEFAULT '',
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    all_day        boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'CONFIRMED',
    summary        text,
    location       text,
    url            text,
    organizer      text,            -- an e-mail address, lower case
    attendees      text[] NOT NULL DEFAULT '{}', -- e-mail addresses, lower case
    sequence       integer NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, uid, recurrence_id)
);
CREATE INDEX calendar_instances_start ON calendar_instances (start_at);
CREATE INDEX calendar_instances_people ON calendar_instances USING gin (attendees);
CREATE INDEX calendar_instances_organizer ON calendar_instances (organizer);

-- A talk, workshop or session in a conference schedule.
CREATE TABLE schedule_slots (
    source      text NOT NULL,
    id          text NOT NULL,
    title       text,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz NOT NULL,
    room        text,
    track       text,
    type        text,
    language    text,
    url         text,
    abstract    text,
    speakers    jsonb NOT NULL DEFAULT '[]', -- [{"id", "name"}]
    status      text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);
CREATE INDEX schedule_slots_start ON schedule_slots (start_at);

CREATE TABLE holidays (
    source      text NOT NULL,
    day         date NOT NULL,
    name        text NOT NULL,
    country     text,
    region      text,
    types       text[] NOT NULL DEFAULT '{}',
    note        text,  -- why the day is kept, when known
    note_from   text,  -- where the note comes from, with its attribution
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, day, name)
);
CREATE INDEX holidays_day ON holidays (day);

-- Applies one snapshot of a calendar source, all or nothing (one statement), the way
-- cb_sync_apply does for rosters:
--   {"instances": [{"uid", "recurrence_id", "start", "end", "all_day", "status", "summary",
--                   "location", "url", "organizer", "attendees", "sequence"}],
--    "window": {"from", "to"},
--    "slots": [{"id", "title", "start", "end", "room", "track", "type", "language", "url",
--               "abstract", "speakers", "status"}],
--    "holidays": [{"date", "name", "country", "region", "types", "note", "note_from"}],
--    "cursor": {...}}
-- Instances are the truth from window.from on (earlier ones stay, as history); slots and
-- holidays are the whole truth. The guard: fewer rows in all than p_min_share of the last good
-- sync's is refused as a failed sync (a feed that suddenly holds nothing is broken, not
-- empty). Returns the report; with p_dry_run nothing changes.
CREATE FUNCTION cb_calendar_apply(p_source text, p_started timestamptz, p_snapshot jsonb,
                                  p_min_share real, p_dry_run boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    s        jsonb := p_snapshot;
    total    integer := coalesce(jsonb_array_length(p_snapshot->'instances'), 0)
                      + coalesce(jsonb_array_length(p_snapshot->'slots'), 0)
                      + coalesce(jsonb_array_length(p_snapshot->'holidays'), 0);
    last_ok  integer;
    rep      jsonb := '{}';
    n_ins    integer;
    n_upd    integer;
    n        integer;
    w_from   timestamptz := coalesce((p_snapshot->'window'->>'from')::timestamptz, '-infinity');
    msg      text;
BEGIN
    SELECT last_ok_active INTO last_ok FROM source_state WHERE source = p_source;
    IF last_ok > 0 AND total < p_min_share * last_ok THEN
        msg := format('the calendar shrank from %s to %s entries (below %s%% of the last good sync); nothing changed',
                      last_ok, total, round((p_min_share * 100)::numeric));
        IF NOT p_dry_run THEN
            PERFORM cb_sync_failed(p_source, p_started, msg);
        END IF;
        RETURN jsonb_build_object('ok', false, 'error', msg);
    END IF;
    BEGIN
        IF s ? 'instances' THEN
            WITH x AS (
                SELECT e->>'uid' AS uid, coalesce(e->>'recurrence_id', '') AS rid,
                       (e->>'start')::timestamptz AS st, (e->>'end')::timestamptz AS en,
                       coalesce((e->>'all_day')::boolean, false) AS ad,
                       coalesce(e->>'status', 'CONFIRMED') AS status, e->>'summary' AS summary,
                       e->>'location' AS location, e->>'url' AS url,
                       lower(e->>'organizer') AS organizer,
                       coalesce(ARRAY(SELECT lower(a) FROM jsonb_array_elements_text(
                                   coalesce(e->'attendees', '[]')) a ORDER BY 1), '{}') AS att,
                       coalesce((e->>'sequence')::integer, 0) AS seq
                  FROM jsonb_array_elements(s->'instances') e
            ), up AS (
                INSERT INTO calendar_instances AS c (source, uid, recurrence_id, start_at, end_at,
                       all_day, status, summary, location, url, organizer, attendees, sequence)
                SELECT p_source, uid, rid, st, en, ad, status, summary, location, url,
                       organizer, att, seq FROM x
                ON CONFLICT (source, uid, recurrence_id) DO UPDATE
                   SET start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
                       all_day = EXCLUDED.all_day, status = EXCLUDED.status,
                       summary = EXCLUDED.summary, location = EXCLUDED.location,
                       url = EXCLUDED.url, organizer = EXCLUDED.organizer,
                       attendees = EXCLUDED.attendees, sequence = EXCLUDED.sequence,
                       updated_at = now()
                 WHERE (c.start_at, c.end_at, c.all_day, c.status, c.summary, c.location,
                        c.url, c.organizer, c.attendees, c.sequence) IS DISTINCT FROM
                       (EXCLUDED.start_at, EXCLUDED.end_at, EXCLUDED.all_day, EXCLUDED.status,
                        EXCLUDED.summary, EXCLUDED.location, EXCLUDED.url, EXCLUDED.organizer,
                        EXCLUDED.attendees, EXCLUDED.sequence)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            WITH keep AS (
                SELECT e->>'uid' AS uid, coalesce(e->>'recurrence_id', '') AS rid
                  FROM jsonb_array_elements(s->'instances') e
            ), gone AS (
                DELETE FROM calendar_instances c
                 WHERE c.source = p_source AND c.start_at >= w_from
                   AND (c.uid, c.recurrence_id) NOT IN (SELECT uid, rid FROM keep)
                RETURNING 1
            )
            SELECT count(*) INTO n FROM gone;
            rep := rep || jsonb_build_object('instances', jsonb_build_object(
                'fetched', jsonb_array_length(s->'instances'), 'new', n_ins,
                'changed', n_upd, 'removed', n));
        END IF;

        IF s ? 'slots' THEN
            WITH x AS (
                SELECT e->>'id' AS id, e->>'title' AS title,
                       (e->>'start')::timestamptz AS st, (e->>'end')::timestamptz AS en,
                       e->>'room' AS room, e->>'track' AS track, e->>'type' AS type,
                       e->>'language' AS language, e->>'url' AS url, e->>'abstract' AS abstract,
                       coalesce(e->'speakers', '[]') AS speakers, e->>'status' AS status
                  FROM jsonb_array_elements(s->'slots') e
            ), up AS (
                INSERT INTO schedule_slots AS c (source, id, title, start_at, end_at, room,
                       track, type, language, url, abstract, speakers, status)
                SELECT p_source, id, title, st, en, room, track, type, language, url, abstract,
                       speakers, status FROM x
                ON CONFLICT (source, id) DO UPDATE
                   SET title = EXCLUDED.title, start_at = EXCLUDED.start_at,
                       end_at = EXCLUDED.end_at, room = EXCLUDED.room, track = EXCLUDED.track,
                       type = EXCLUDED.type, language = EXCLUDED.language, url = EXCLUDED.url,
                       abstract = EXCLUDED.abstract, speakers = EXCLUDED.speakers,
                       status = EXCLUDED.status, updated_at = now()
                 WHERE (c.title, c.start_at, c.end_at, c.room, c.track, c.type, c.language,
                        c.url, c.abstract, c.speakers, c.status) IS DISTINCT FROM
                       (EXCLUDED.title, EXCLUDED.start_at, EXCLUDED.end_at, EXCLUDED.room,
                        EXCLUDED.track, EXCLUDED.type, EXCLUDED.language, EXCLUDED.url,
                        EXCLUDED.abstract, EXCLUDED.speakers, EXCLUDED.status)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            WITH gone AS (
                DELETE FROM schedule_slots c
                 WHERE c.source = p_source
                   AND c.id NOT IN (SELECT e->>'id' FROM jsonb_array_elements(s->'slots') e)
                RETURNING 1
            )
            SELECT count(*) INTO n FROM gone;
            rep := rep || jsonb_build_object('slots', jsonb_build_object(
                'fetched', jsonb_array_length(s->'slots'), 'new', n_ins, 'changed', n_upd,
                'removed', n));
        END IF;

        IF s ? 'holidays' THEN
            WITH x AS (
                SELECT DISTINCT ON ((e->>'date')::date, e->>'name')
                       (e->>'date')::date AS day, e->>'name' AS name, e->>'country' AS country,
                       e->>'region' AS region,
                       coalesce(ARRAY(SELECT jsonb_array_elements_text(
                                   coalesce(e->'types', '[]'))), '{}') AS types,
                       e->>'note' AS note, e->>'note_from' AS note_from
                  FROM jsonb_array_elements(s->'holidays') e
            ), up AS (
                INSERT INTO holidays AS c (source, day, name, country, region, types, note,
                                           note_from)
                SELECT p_source, day, name, country, region, types, note, note_from FROM x
                ON CONFLICT (source, day, name) DO UPDATE
                   SET country = EXCLUDED.country, region = EXCLUDED.region,
                       types = EXCLUDED.types, note = EXCLUDED.note,
                       note_from = EXCLUDED.note_from, updated_at = now()
                 WHERE (c.country, c.region, c.types, c.note, c.note_from) IS DISTINCT FROM
                       (EXCLUDED.country, EXCLUDED.region, EXCLUDED.types, EXCLUDED.note,
                        EXCLUDED.note_from)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
              INTO n_ins, n_upd FROM up;
            WITH gone AS (
                DELETE FROM holidays c
                 WHERE c.source = p_source
                   AND (c.day, c.name) NOT IN (SELECT (e->>'date')::date, e->>'name'
                                                 FROM jsonb_array_elements(s->'holidays') e)
                RETURNING 1
            )
            SELECT count(*) INTO n FROM gone;
            rep := rep || jsonb_build_object('holidays', jsonb_build_object(
                'fetched', jsonb_array_length(s->'holidays'), 'new', n_ins,
                'changed', n_upd, 'removed', n));
        END IF;

        rep := rep || jsonb_build_object('ok', true, 'entries', total);
        IF p_dry_run THEN
            RAISE EXCEPTION USING ERRCODE = 'CBDRY';
        END IF;
        INSERT INTO source_syncs (source, started_at, ok, report)
        VALUES (p_source, p_started, true, rep);
        INSERT INTO source_state AS st (source, cursor, last_ok_at, last_ok_active, failing)
        VALUES (p_source, coalesce(s->'cursor', '{}'), now(), total, false)
        ON CONFLICT (source) DO UPDATE
           SET cursor = coalesce(s->'cursor', st.cursor), last_ok_at = now(),
               last_ok_active = total, failing = false;
    EXCEPTION WHEN SQLSTATE 'CBDRY' THEN
        rep := rep || '{"dry_run": true}';
    END;
    RETURN rep;
END;
$$;

COMMENT ON COLUMN source_state.last_ok_active IS
    'active memberships (a roster source) or entries (a calendar source) after the last good sync';
