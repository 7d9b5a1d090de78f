-- jiancha schema, version 14: the console's sessions and sign-in failures (issue 18,
-- docs/console.md).
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

-- Neither is the dashboards' or the daemon's business.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures FROM jiancha_dashboard;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
        REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures FROM jiancha_daemon;
    END IF;
END
$$;
