-- jiancha schema, version 10: the card ledger as evidence (issue 17, item 8).
--
-- 1. Every card_events row records the database role that wrote it (`db_role`:
--    the session's login, and the role it acted as when that differs) and the
--    writing transaction (`tx`), both set by a trigger whatever the writer sent.
--    NULL in rows written before this version.
-- 2. A card changes only together with a recorded step: a deferred constraint
--    trigger refuses, at commit, an UPDATE of jiancha.cards without a
--    card_events row for that card written in the same transaction, of a kind
--    that explains the change (revoked -> 'revoked', escalated_at -> 'escalated', ...).
-- 3. The daemon's rights are a role of their own, `jiancha_daemon` (NOLOGIN):
--    it may read schema jiancha, write its working tables, INSERT cards and
--    card_events and UPDATE only the cards' state columns; it owns nothing, so
--    it cannot DROP, ALTER (DISABLE TRIGGER) or TRUNCATE the ledger. The
--    schema's owner (deploy/sql/roles.sql: jiancha_owner) runs the migrations.
--    The role is created here when the migrating role may create roles;
--    otherwise deploy/sql/roles.sql creates it (docs/operating.md, "Database roles").

ALTER TABLE jiancha.card_events ADD COLUMN db_role text;  -- session_user [as current_user]
ALTER TABLE jiancha.card_events ADD COLUMN tx xid8;       -- pg_current_xact_id() of the writer
-- ... and its start: with tx it names one transaction even across a restore into a cluster
-- whose transaction ids run lower (a tx alone could come round again there)
ALTER TABLE jiancha.card_events ADD COLUMN tx_at timestamptz;

CREATE FUNCTION jiancha.card_event_stamp_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.db_role := session_user::text
        || CASE WHEN current_user <> session_user THEN ' as ' || current_user::text ELSE '' END;
    NEW.tx := pg_current_xact_id();  -- the top-level transaction, also inside a savepoint
    NEW.tx_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER card_events_stamp_v1
    BEFORE INSERT ON jiancha.card_events
    FOR EACH ROW EXECUTE FUNCTION jiancha.card_event_stamp_v1();

CREATE FUNCTION jiancha.card_change_recorded_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kinds text[];
    what text;
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        what := format('status %s -> %s', OLD.status, NEW.status);
        kinds := CASE NEW.status
            WHEN 'acknowledged' THEN ARRAY['acknowledged', 'appeal_decided']
            WHEN 'issued' THEN ARRAY['appeal_decided']
            WHEN 'appealed' THEN ARRAY['appealed']
            WHEN 'closed' THEN ARRAY['closed']
            WHEN 'revoked' THEN ARRAY['revoked']
        END;
    ELSIF NEW.escalated_at IS DISTINCT FROM OLD.escalated_at THEN
        what := 'escalated_at';
        kinds := ARRAY['escalated'];
    ELSIF NEW.replied_at IS DISTINCT FROM OLD.replied_at THEN
        what := 'replied_at';
        kinds := ARRAY['acknowledged'];
    ELSE
        what := 'updated_at';  -- any step explains a touch
        kinds := NULL;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM jiancha.card_events e
        WHERE e.card_id = NEW.id AND e.tx = pg_current_xact_id() AND e.tx_at = now()
          AND (kinds IS NULL OR e.kind = ANY (kinds))
    ) THEN
        RAISE EXCEPTION 'jiancha.cards: change of card % (%) refused: no card_events row (%) '
                        'recorded for it in the same transaction', NEW.id, what,
                        coalesce(array_to_string(kinds, ' or '), 'any kind')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER cards_change_recorded_v1
    AFTER UPDATE ON jiancha.cards
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION jiancha.card_change_recorded_v1();

-- The daemon's rights; deploy/sql/roles.sql calls it again after moving ownership.
CREATE FUNCTION jiancha.grant_daemon_v1() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    GRANT USAGE ON SCHEMA jiancha TO jiancha_daemon;
    GRANT SELECT ON ALL TABLES IN SCHEMA jiancha TO jiancha_daemon;
    GRANT INSERT, UPDATE, DELETE ON jiancha.cursor, jiancha.events, jiancha.cases,
        jiancha.dead_letters, jiancha.outbox, jiancha.outbox_attempts, jiancha.replay_runs,
        jiancha.replay_cards TO jiancha_daemon;
    GRANT INSERT ON jiancha.cards, jiancha.card_events TO jiancha_daemon;
    GRANT UPDATE (status, updated_at, replied_at, escalated_at) ON jiancha.cards
        TO jiancha_daemon;
    -- tables later migrations add are working tables unless their migration says otherwise
    ALTER DEFAULT PRIVILEGES IN SCHEMA jiancha
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO jiancha_daemon;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
        BEGIN
            CREATE ROLE jiancha_daemon NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently from another database
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role jiancha_daemon not created (no CREATEROLE); '
                             'run deploy/sql/roles.sql as a superuser';
                RETURN;
        END;
    END IF;
    PERFORM jiancha.grant_daemon_v1();
END
$$;
