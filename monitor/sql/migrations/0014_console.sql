-- jiancha schema, version 14: the console's sessions, sign-in failures and appeal
-- attachments (issue 18, docs/console.md).
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

-- Neither is the dashboards' or the daemon's business.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments FROM jiancha_dashboard;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments FROM jiancha_daemon;
    END IF;
END
$$;
