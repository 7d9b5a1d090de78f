-- jiancha schema, version 11: the console's accounts (issue 18, docs/console.md).
--
-- One row per person who may sign in to `jiancha web`: their roles, the windows and
-- departments they answer for (a window head sees only their windows' cards), and an
-- argon2 hash of their password, or NULL for a directory (LDAP) account. An account is
-- disabled, never deleted: the card ledger names its users for good.

CREATE TABLE jiancha.users (
    username text PRIMARY KEY
        CHECK (username <> '' AND username !~ '\s' AND length(username) <= 64),
    display_name text NOT NULL DEFAULT '',
    password_hash text,  -- argon2id (argon2-cffi); NULL: a directory account
    roles text[] NOT NULL
        CHECK (cardinality(roles) > 0
               AND roles <@ ARRAY['window_head', 'officer', 'department_head', 'admin']),
    windows text[] NOT NULL DEFAULT '{}',      -- the windows a window head heads
    departments text[] NOT NULL DEFAULT '{}',  -- the departments a department head heads
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Password hashes are no business of the dashboards or the daemon, whatever default
-- privileges migrations 0005 and 0010 gave them on new tables (deploy/sql/roles.sql
-- revokes them again after its grants).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        REVOKE ALL ON jiancha.users FROM jiancha_dashboard;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
        REVOKE ALL ON jiancha.users FROM jiancha_daemon;
    END IF;
END
$$;
