-- jiancha schema, version 14: the console's sessions, sign-in failures, appeal
-- attachments and database role (issue 18, docs/console.md).
--
-- 1. jiancha.web_sessions: one row per signed-in browser. The cookie carries a random
--    token; the row keeps only its SHA-256, so a copy of this table signs nobody in.
--    Signing out, an administrator, `jiancha users disable` and a password change set
--    revoked_at, and the cookie is refused from the next request on.
-- 2. jiancha.login_failures: the wrong passwords per username, so that the sign-in
--    throttle (10 in 15 minutes) holds across restarts and several console processes.
--    Rows older than the throttle's window are deleted as new ones come.
CREATE TABLE jiancha.web_sessions (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    username      text NOT NULL REFERENCES jiancha.users (username),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text,            -- the username, or 'logout', 'disabled', 'password'
    user_agent    text NOT NULL DEFAULT '',
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_username ON jiancha.web_sessions (username) WHERE revoked_at IS NULL;

CREATE TABLE jiancha.login_failures (
    username  text NOT NULL,       -- as typed, casefolded: unknown names are counted too
    at        timestamptz NOT NULL
);
CREATE INDEX login_failures_username_at ON jiancha.login_failures (username, at);
CREATE INDEX login_failures_at ON jiancha.login_failures (at);

-- 3. jiancha.attachments: what a window head attaches to an appeal (a photo of a paper
--    record), kept in the database with the ledger it belongs to: the appealed step's
--    card_events.detail names it ({id, name, sha256, size}), written in the same
--    transaction. Append-only like the ledger; 5 MiB at most; JPEG, PNG or PDF only
--    (the console checks the bytes, not the browser's word).
CREATE TABLE jiancha.attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id      bigint NOT NULL REFERENCES jiancha.cards (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    media_type   text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size         integer NOT NULL CHECK (size BETWEEN 1 AND 5242880),
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    data         bytea NOT NULL CHECK (length(data) = size),
    uploaded_by  text NOT NULL,    -- the console's username
    uploaded_at  timestamptz NOT NULL
);
CREATE INDEX attachments_card_id ON jiancha.attachments (card_id);
CREATE TRIGGER attachments_append_only_v1
    BEFORE UPDATE OR DELETE ON jiancha.attachments
    FOR EACH ROW EXECUTE FUNCTION jiancha.refuse_change_v1();
CREATE TRIGGER attachments_no_truncate_v1
    BEFORE TRUNCATE ON jiancha.attachments
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.refuse_change_v1();

-- The console's list reads the paused cases' cards apart (their count stands still).
CREATE INDEX cases_paused_idx ON jiancha.cases (case_id) WHERE paused_since IS NOT NULL;

-- Neither is the dashboards' or the daemon's business.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments
            FROM jiancha_dashboard;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments
            FROM jiancha_daemon;
    END IF;
END
$$;

-- 4. The console's own database role, jiancha_console (NOLOGIN; deploy/sql/roles.sql
--    and docs/console.md): what `jiancha web` does and nothing more. It reads the
--    cards, their ledger, the cases and their events, and the accounts; it appends
--    ledger steps and attachments and moves a card's status and reply time (always
--    with its step: migration 0010's trigger); it keeps its sessions and sign-in
--    failures and manages the accounts (the admin pages). It cannot issue, delete or
--    re-date a card, touch the daemon's working tables (cursor, outbox, leader, ...)
--    or the ledger's rows, and owns nothing (no DROP, ALTER, TRUNCATE).
CREATE FUNCTION jiancha.grant_console_v1() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    GRANT USAGE ON SCHEMA jiancha TO jiancha_console;
    REVOKE ALL ON ALL TABLES IN SCHEMA jiancha FROM jiancha_console;
    GRANT SELECT ON jiancha.cards, jiancha.card_events, jiancha.cases, jiancha.events,
        jiancha.users, jiancha.web_sessions, jiancha.login_failures, jiancha.attachments
        TO jiancha_console;
    GRANT INSERT ON jiancha.card_events, jiancha.attachments, jiancha.web_sessions,
        jiancha.login_failures, jiancha.users TO jiancha_console;
    GRANT UPDATE (status, updated_at, replied_at) ON jiancha.cards TO jiancha_console;
    GRANT UPDATE (revoked_at, revoked_by) ON jiancha.web_sessions TO jiancha_console;
    GRANT UPDATE (display_name, password_hash, roles, windows, departments, disabled,
        updated_at) ON jiancha.users TO jiancha_console;
    GRANT DELETE ON jiancha.login_failures TO jiancha_console;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_console') THEN
        BEGIN
            CREATE ROLE jiancha_console NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently from another database
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role jiancha_console not created (no CREATEROLE); '
                             'run deploy/sql/roles.sql as a superuser';
                RETURN;
        END;
    END IF;
    PERFORM jiancha.grant_console_v1();
END
$$;
