-- The roles of schema jiancha (issue 17): who owns the card ledger, and who may only use it.
--
-- Run once in jiancha's database (JIANCHA_DSN) as a superuser, before the first
-- `jiancha db migrate` or when upgrading an installation from before schema
-- version 10; safe to rerun:
--
--   psql -v ON_ERROR_STOP=1 -1 -f deploy/sql/roles.sql "postgresql://postgres@db/approval"
--
-- jiancha_owner      owns schema jiancha and everything in it; `jiancha db migrate`
--                    runs as it. NOLOGIN here: give it a login of its own that only
--                    the operator holds (never in jiancha.env):
--                      ALTER ROLE jiancha_owner LOGIN PASSWORD '...';
-- jiancha_daemon     the daemon's rights (migration 0010): read the schema, write its
--                    working tables, INSERT cards and card_events, UPDATE only the
--                    cards' state columns, always with a card_events row; it owns
--                    nothing, so it cannot DROP, ALTER or TRUNCATE the ledger. Grant it
--                    to the daemon's login, with the source's read-only role:
--                      CREATE ROLE jiancha LOGIN PASSWORD '...' IN ROLE jiancha_daemon, jiancha_reader;
--                      GRANT jiancha_daemon TO jiancha;   -- an existing login (upgrade)
-- jiancha_console    the web console's rights (migration 0014): read cards, ledger, cases,
--                    events and accounts; append ledger steps and attachments; move a
--                    card's status and reply time; its sessions and the accounts. Grant
--                    it to the console's own login (jiancha web --dsn / [database] dsn):
--                      CREATE ROLE jiancha_web LOGIN PASSWORD '...' IN ROLE jiancha_console, jiancha_reader;
--                    (jiancha_reader, the source's: the matters' names on its pages)
-- jiancha_dashboard  read-only, for Grafana (migration 0005).
--
-- An existing schema jiancha (before version 10 it belonged to the daemon's login)
-- is handed to jiancha_owner with every table, sequence and function in it.

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['jiancha_owner', 'jiancha_daemon', 'jiancha_console'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently from another database
            END;
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS jiancha AUTHORIZATION jiancha_owner;
DO $$
BEGIN  -- `jiancha db migrate` starts with CREATE SCHEMA IF NOT EXISTS, which asks for it
    EXECUTE format('GRANT CREATE ON DATABASE %I TO jiancha_owner', current_database());
END
$$;

DO $$
DECLARE
    r record;
BEGIN
    ALTER SCHEMA jiancha OWNER TO jiancha_owner;
    FOR r IN
        SELECT c.relname FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jiancha' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        EXECUTE format('ALTER TABLE jiancha.%I OWNER TO jiancha_owner', r.relname);
    END LOOP;
    FOR r IN  -- sequences of no column (an identity sequence follows its table)
        SELECT c.relname FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jiancha' AND c.relkind = 'S'
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                          WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER SEQUENCE jiancha.%I OWNER TO jiancha_owner', r.relname);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS fn FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'jiancha'
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO jiancha_owner', r.fn);
    END LOOP;
END
$$;

-- The grants, made by the owner (so that its default privileges cover the tables
-- later migrations add): the daemon's once migration 0010 is in, the dashboards'.
SET ROLE jiancha_owner;
DO $$
BEGIN
    IF to_regprocedure('jiancha.grant_daemon_v1()') IS NOT NULL THEN
        PERFORM jiancha.grant_daemon_v1();
    END IF;
    IF to_regprocedure('jiancha.grant_console_v1()') IS NOT NULL THEN
        PERFORM jiancha.grant_console_v1();  -- the console's (migration 0014)
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        GRANT USAGE ON SCHEMA jiancha TO jiancha_dashboard;
        GRANT SELECT ON ALL TABLES IN SCHEMA jiancha TO jiancha_dashboard;
        ALTER DEFAULT PRIVILEGES IN SCHEMA jiancha GRANT SELECT ON TABLES TO jiancha_dashboard;
    END IF;
    -- the console's accounts (migration 0011): password hashes stay with the owner
    IF to_regclass('jiancha.users') IS NOT NULL THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
            REVOKE ALL ON jiancha.users FROM jiancha_daemon;
        END IF;
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
            REVOKE ALL ON jiancha.users FROM jiancha_dashboard;
        END IF;
    END IF;
    -- the console's sessions, failures and attachments (migration 0014): the console's only
    IF to_regclass('jiancha.web_sessions') IS NOT NULL THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_daemon') THEN
            REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments
                FROM jiancha_daemon;
        END IF;
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
            REVOKE ALL ON jiancha.web_sessions, jiancha.login_failures, jiancha.attachments
                FROM jiancha_dashboard;
        END IF;
    END IF;
END
$$;
RESET ROLE;
