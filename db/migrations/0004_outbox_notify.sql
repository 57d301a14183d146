-- Wakes the outbox executors (bridge/outbox.c LISTENs on channel "outbox") at commit when
-- actions are enqueued, and when a row becomes ready again early: given back by a process that
-- stopped, or set back to pending by hand. Only a hint: executors still poll, slowly.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_enqueued AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TRIGGER outbox_ready_again AFTER UPDATE OF state, claimed_until ON outbox
    FOR EACH ROW
    WHEN (NEW.state = 'pending' AND NEW.claimed_until IS NULL AND NEW.next_at <= now()
          AND (OLD.state <> 'pending' OR OLD.claimed_until IS NOT NULL))
    EXECUTE FUNCTION outbox_notify();
