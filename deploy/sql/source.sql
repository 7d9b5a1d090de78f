-- jiancha source contract, version 1 (docs/contract.md, "Source contract").
--
-- Run this in the approval database as its owner (or a role with CREATE on
-- the schema and CREATEROLE), e.g. `jiancha db install-source` or
-- `psql -v ON_ERROR_STOP=1 -1 -f source.sql`. It is idempotent: running it
-- again changes nothing that exists and refreshes the functions and triggers.
-- Requires PostgreSQL 13 or newer (xid8, pg_current_xact_id).
--
-- The tables are created in the first schema of search_path (normally
-- `public`). jiancha reads them unqualified, so its login role must find them
-- on its search_path.
--
-- What the approval platform must do:
--   * append one row to case_events for every business event of a case
--     (submitted, accepted, suspended, completed, ...; see docs/contract.md for the
--     kinds and their payload keys), in the same transaction as the change it
--     records. Rows are never updated or deleted; a correction is a new event.
--   * keep `matters` (the catalogue of service items and their time limits)
--     up to date.
--   * never set `id` or `tx`: both are assigned by the database.
--
-- How jiancha reads: in (tx, id) order, and only rows whose transaction is
-- older than every transaction still running (tx < pg_snapshot_xmin of its
-- snapshot). A transaction that started early but commits late therefore
-- cannot be skipped, which an order by `id` alone would allow. That is why
-- `tx` must be the id of the writing transaction and nothing else; the
-- trigger below overwrites whatever a writer puts there.
--
-- NOTIFY on channel `jiancha_events_v1` is only a wake-up hint, one per
-- writing transaction (payload: that transaction's id). jiancha also polls,
-- so a lost notification delays it by seconds, never loses an event.

CREATE TABLE IF NOT EXISTS case_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx          xid8 NOT NULL DEFAULT pg_current_xact_id(),  -- never set by writers
    case_id     text NOT NULL,
    kind        text NOT NULL,
    occurred_at timestamptz NOT NULL,                          -- business time of the event
    payload     jsonb NOT NULL DEFAULT '{}'
);

-- The tailer's scan order: WHERE (tx, id) > (cursor) ORDER BY tx, id.
CREATE INDEX IF NOT EXISTS case_events_tx_id_idx ON case_events (tx, id);

CREATE TABLE IF NOT EXISTS matters (
    code            text PRIMARY KEY,
    name            text NOT NULL,
    department      text NOT NULL,
    statutory_days  integer NOT NULL,          -- working days
    promised_days   integer NOT NULL,          -- working days; 0 = immediate case
    free            boolean NOT NULL DEFAULT true,
    joint           boolean NOT NULL DEFAULT false,
    step_days       jsonb NOT NULL DEFAULT '{}',   -- {"审核": 2, ...}
    pause_max_days  jsonb NOT NULL DEFAULT '{}'    -- {"survey": 3, ...}
);

-- `tx` is the writing transaction's id, whatever the writer sent: a forged
-- or copied value would let a row hide behind jiancha's cursor. On UPDATE the
-- old value stays (rows should not be updated at all).
CREATE OR REPLACE FUNCTION jiancha_case_events_tx_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.tx := pg_current_xact_id();
    ELSE
        NEW.tx := OLD.tx;
    END IF;
    RETURN NEW;
END;
$$;

-- One NOTIFY per writing transaction: PostgreSQL folds identical
-- notifications (same channel, same payload) sent in one transaction, and
-- the payload is the transaction's id. Statements that insert nothing stay
-- silent.
CREATE OR REPLACE FUNCTION jiancha_case_events_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jiancha_new_rows) THEN
        PERFORM pg_notify('jiancha_events_v1', pg_current_xact_id()::text);
    END IF;
    RETURN NULL;
END;
$$;

-- DROP + CREATE rather than CREATE OR REPLACE TRIGGER, which needs PostgreSQL 14.
DROP TRIGGER IF EXISTS jiancha_tx_v1 ON case_events;
CREATE TRIGGER jiancha_tx_v1
    BEFORE INSERT OR UPDATE OF tx ON case_events
    FOR EACH ROW EXECUTE FUNCTION jiancha_case_events_tx_v1();

DROP TRIGGER IF EXISTS jiancha_notify_v1 ON case_events;
CREATE TRIGGER jiancha_notify_v1
    AFTER INSERT ON case_events
    REFERENCING NEW TABLE AS jiancha_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha_case_events_notify_v1();

-- Read-only access for jiancha. The role cannot log in; the operator grants
-- it to the login role jiancha uses, e.g.
--   CREATE ROLE jiancha LOGIN PASSWORD '...';
--   GRANT jiancha_reader TO jiancha;
-- Roles belong to the whole server, so the role may already exist (another
-- database on the same server installed the contract too).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_reader') THEN
        BEGIN
            CREATE ROLE jiancha_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently from another database
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO jiancha_reader', current_schema());
END;
$$;

GRANT SELECT ON case_events, matters TO jiancha_reader;
