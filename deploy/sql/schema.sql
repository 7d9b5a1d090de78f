-- Schema jiancha as it stands after every migration in monitor/sql/migrations/ (version 16).
--
-- A snapshot for reading and reviewing, not an installer: `jiancha db migrate`
-- builds and upgrades the schema, and records what it applied in
-- jiancha.schema_migrations. tests/test_migrate.py builds one database from
-- the migrations and one from this file and compares their catalogs (columns,
-- constraints, indexes, triggers, functions), so a new migration must come
-- with the matching change here.

CREATE SCHEMA IF NOT EXISTS jiancha;

-- The migration ledger (monitor/sql/bootstrap.sql).
CREATE TABLE jiancha.schema_migrations (
    version     integer PRIMARY KEY,                -- NNNN of NNNN_name.sql
    name        text NOT NULL,                      -- name of NNNN_name.sql
    checksum    text NOT NULL,                      -- sha256 of the file (LF line ends)
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Where the tailer stands in the source's (tx, id) order. One row per source.
CREATE TABLE jiancha.cursor (
    source      text PRIMARY KEY DEFAULT 'default',
    tx          xid8 NOT NULL,
    event_id    bigint NOT NULL,
    events      bigint NOT NULL DEFAULT 0,          -- events taken so far
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- which source the position is in (migration 0009): checked before every read
    system_identifier  bigint,                      -- pg_control_system() of the source's cluster
    database_oid       oid,                         -- the source database's oid in it
    database_name      text,                        -- for messages only (a rename is no move)
    reset_from         timestamptz,                 -- business time of the last reset-cursor
    reset_at           timestamptz                  -- when it ran
);

-- Every valid source event, kept so a case's state can be rebuilt from its
-- whole history whatever order the events arrived in.
CREATE TABLE jiancha.events (
    event_id     bigint PRIMARY KEY,                 -- case_events.id in the source
    tx           xid8 NOT NULL,
    case_id      text NOT NULL,
    kind         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    payload      jsonb NOT NULL,
    ingested_at  timestamptz NOT NULL
);
CREATE INDEX events_case_idx ON jiancha.events (case_id, occurred_at, event_id);

-- One row per case seen: what the clocks and the dashboards need.
CREATE TABLE jiancha.cases (
    case_id              text PRIMARY KEY,
    matter               text,
    department           text,
    "window"             text,
    region               text,
    channel              text,
    status               text NOT NULL,              -- see monitor.state.Status
    submitted_at         timestamptz,
    accepted_at          timestamptz,
    refused_at           timestamptz,
    decided_at           timestamptz,
    decision             text,                       -- approve | deny
    completed_at         timestamptz,
    delivered_at         timestamptz,
    closed_at            timestamptz,                -- withdrawn or terminated
    immediate            boolean NOT NULL DEFAULT false,
    promised_days        integer,
    statutory_days       integer,
    pledged_days         integer,
    extension_days       integer NOT NULL DEFAULT 0,
    extensions           integer NOT NULL DEFAULT 0,
    supplement_requests  integer NOT NULL DEFAULT 0,
    fees                 numeric NOT NULL DEFAULT 0,
    rating               integer,                    -- latest, 1..5
    paused_since         timestamptz,                -- start of the open pause
    pauses               jsonb NOT NULL DEFAULT '[]',  -- [{type, start, end, notified_days}]
    clocks               jsonb NOT NULL DEFAULT '{}',  -- {clock: {start, stop, ...}}
    first_seen_at        timestamptz NOT NULL,       -- ingestion time of its first event
    event_count          integer NOT NULL,
    last_event_id        bigint NOT NULL,
    updated_at           timestamptz NOT NULL,
    facts                jsonb NOT NULL DEFAULT '{}',  -- 补正 requests, fees, refusal (v2)
    decision_deadline    timestamptz,                -- promised limit used up (v4, v7)
    outcome              text CHECK (outcome IN ('early', 'on_time', 'late'))  -- (v4)
);
CREATE INDEX cases_open_idx ON jiancha.cases (department, "window") WHERE completed_at IS NULL;
CREATE INDEX cases_status_idx ON jiancha.cases (status);

-- Source events that broke the contract, with the reason and the raw row.
CREATE TABLE jiancha.dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     bigint NOT NULL UNIQUE,
    case_id      text,
    kind         text,
    reason       text NOT NULL,                      -- see monitor.state.DeadReason
    detail       text NOT NULL DEFAULT '',
    raw          jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    retries      integer NOT NULL DEFAULT 0,         -- (v8) retried, taken in or not
    retry_requested_at timestamptz,                  -- (v8) jiancha dead-letters retry
    resolved_at  timestamptz                         -- (v8) taken in after all
);
CREATE INDEX dead_letters_reason_idx ON jiancha.dead_letters (reason);
CREATE INDEX dead_letters_open_idx ON jiancha.dead_letters (reason, created_at)
    WHERE resolved_at IS NULL;

-- The card ledger (migrations 0002, 0006): a live card unique on (case, clock,
-- rule, subject, level), one crossing (with its issued_at) carded once;
-- card_events append-only, enforced by triggers.
CREATE TABLE jiancha.cards (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       text NOT NULL,
    clock         text NOT NULL CHECK (clock IN ('acceptance', 'decision', 'statutory',
                      'delivery', 'immediate', 'step', 'review', 'supplement')),
    rule          text NOT NULL,
    level         text NOT NULL CHECK (level IN ('blue', 'yellow', 'red')),
    issued_at     timestamptz NOT NULL,              -- the instant the level became due
    recorded_at   timestamptz NOT NULL,              -- when jiancha wrote it
    deadline      timestamptz,                       -- the clock's deadline when issued
    matter        text,
    department    text,
    "window"      text,
    region        text,
    ruleset       text NOT NULL,                     -- fingerprint of the rules in force
    calendar      text NOT NULL,                     -- fingerprint of the calendar in force
    detail        jsonb NOT NULL DEFAULT '{}',       -- consumed, limit, subject, ...
    status        text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'acknowledged',
                      'appealed', 'closed', 'revoked')),
    reply_due     timestamptz,                       -- supervision order (督办) of a red card
    replied_at    timestamptz,
    escalated_at  timestamptz,
    updated_at    timestamptz NOT NULL,
    subject       text NOT NULL DEFAULT ''             -- the n-th pause, a step, the n-th rating
);
CREATE UNIQUE INDEX cards_live_key_idx ON jiancha.cards (case_id, clock, rule, subject, level)
    WHERE status <> 'revoked';
CREATE UNIQUE INDEX cards_crossing_idx
    ON jiancha.cards (case_id, clock, rule, subject, level, issued_at);  -- and by case_id
CREATE INDEX cards_open_idx ON jiancha.cards (department, "window", level)
    WHERE status IN ('issued', 'acknowledged', 'appealed');
CREATE INDEX cards_issued_idx ON jiancha.cards (issued_at);
CREATE INDEX cards_reply_due_idx ON jiancha.cards (reply_due)
    WHERE reply_due IS NOT NULL AND replied_at IS NULL AND escalated_at IS NULL;

CREATE TABLE jiancha.card_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id   bigint NOT NULL,                       -- a card: card_step_names_a_card_v1
    kind      text NOT NULL CHECK (kind IN ('issued', 'notified', 'acknowledged', 'closed',
                  'revoked', 'appealed', 'appeal_decided', 'escalated')),
    at        timestamptz NOT NULL,
    actor     text NOT NULL,                         -- 'jiancha' or the person who acted
    reason    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}',
    -- set by card_events_stamp_v1 whatever the writer sent (migration 0010; NULL before)
    db_role   text,                                  -- session_user [as current_user]
    tx        xid8,                                  -- pg_current_xact_id() of the writer
    tx_at     timestamptz                            -- now() of the writer
);
CREATE INDEX card_events_card_idx ON jiancha.card_events (card_id, id);
-- The daemon's own steps happen once per card: the last line of defence for replays.
CREATE UNIQUE INDEX card_events_once_idx ON jiancha.card_events (card_id, kind)
    WHERE kind IN ('issued', 'closed', 'revoked', 'escalated');

CREATE FUNCTION jiancha.refuse_change_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jiancha.%: % refused: the card ledger is append-only', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER card_events_append_only_v1
    BEFORE UPDATE OR DELETE ON jiancha.card_events
    FOR EACH ROW EXECUTE FUNCTION jiancha.refuse_change_v1();
CREATE TRIGGER card_events_no_truncate_v1
    BEFORE TRUNCATE ON jiancha.card_events
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.refuse_change_v1();
CREATE TRIGGER cards_no_delete_v1
    BEFORE DELETE ON jiancha.cards
    FOR EACH ROW EXECUTE FUNCTION jiancha.refuse_change_v1();
CREATE TRIGGER cards_no_truncate_v1
    BEFORE TRUNCATE ON jiancha.cards
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.refuse_change_v1();

CREATE FUNCTION jiancha.card_identity_v2() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.case_id, NEW.clock, NEW.rule, NEW.subject, NEW.level, NEW.issued_at,
        NEW.recorded_at, NEW.deadline, NEW.ruleset, NEW.calendar, NEW.detail)
       IS DISTINCT FROM
       (OLD.id, OLD.case_id, OLD.clock, OLD.rule, OLD.subject, OLD.level, OLD.issued_at,
        OLD.recorded_at, OLD.deadline, OLD.ruleset, OLD.calendar, OLD.detail) THEN
        RAISE EXCEPTION 'jiancha.cards: the identity of card % cannot change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER cards_identity_v2
    BEFORE UPDATE ON jiancha.cards
    FOR EACH ROW EXECUTE FUNCTION jiancha.card_identity_v2();

-- `jiancha replay`: a re-run of history on a virtual clock, kept beside the real
-- ledger (never in it), with the period's figures.
CREATE TABLE jiancha.replay_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    period_from     timestamptz NOT NULL,
    period_to       timestamptz NOT NULL,
    promised_scale  double precision NOT NULL DEFAULT 1.0,
    ruleset         text NOT NULL,
    calendar        text NOT NULL,
    figures         jsonb NOT NULL
);
CREATE TABLE jiancha.replay_cards (
    run_id        bigint NOT NULL REFERENCES jiancha.replay_runs (id) ON DELETE CASCADE,
    case_id       text NOT NULL,
    clock         text NOT NULL,
    rule          text NOT NULL,
    level         text NOT NULL,
    issued_at     timestamptz NOT NULL,
    status        text NOT NULL,
    reply_due     timestamptz,
    escalated_at  timestamptz,
    subject       text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, case_id, clock, rule, subject, level, issued_at)
);

-- The outbox (migration 0003): notifications keyed by idempotency key, every attempt kept.
CREATE TABLE jiancha.outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL UNIQUE,              -- idempotency key
    channel          text NOT NULL,                     -- [channels.NAME] of jiancha.toml
    kind             text NOT NULL
                     CONSTRAINT outbox_kind_check
                     CHECK (kind IN ('card', 'escalation', 'digest', 'resolved', 'report')),
    card_id          bigint,                            -- a card: outbox_names_a_card_v1
    routed           boolean NOT NULL DEFAULT true,     -- false: no route matched (fallback)
    payload          jsonb NOT NULL,                    -- the rendered message
    created_at       timestamptz NOT NULL,
    not_before       timestamptz NOT NULL,              -- quiet hours hold it until then
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    give_up_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    last_error       text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due_idx ON jiancha.outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_state_idx ON jiancha.outbox (channel, state);

CREATE TABLE jiancha.outbox_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES jiancha.outbox (id),
    at          timestamptz NOT NULL,
    ok          boolean NOT NULL,
    detail      text NOT NULL DEFAULT '',
    ms          double precision NOT NULL
);
CREATE INDEX outbox_attempts_idx ON jiancha.outbox_attempts (outbox_id, id);

-- How each case's decision clock ended (migration 0004).
CREATE INDEX cases_outcome_idx ON jiancha.cases (department, outcome) WHERE outcome IS NOT NULL;

-- Read-only access for dashboards (migration 0005): a NOLOGIN role Grafana's login role
-- is granted; created only where the migrating role may create roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        BEGIN
            CREATE ROLE jiancha_dashboard NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role jiancha_dashboard not created (no CREATEROLE); see README';
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA jiancha TO jiancha_dashboard;
    GRANT SELECT ON ALL TABLES IN SCHEMA jiancha TO jiancha_dashboard;
    ALTER DEFAULT PRIVILEGES IN SCHEMA jiancha GRANT SELECT ON TABLES TO jiancha_dashboard;
END;
$$;

-- The figures, defined once (migration 0007; monitor/engine/figures.py).
-- 超期件 at `at`: open then, and its promised limit used up by then.
CREATE FUNCTION jiancha.overdue_v1(c jiancha.cases, at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT c.decision_deadline <= at
       AND (c.completed_at IS NULL OR c.completed_at > at)
       AND (c.closed_at IS NULL OR c.closed_at > at)
       AND (c.refused_at IS NULL OR c.refused_at > at)
$$;

-- A period's counts per department and window: accepted and completed in [lo, hi),
-- overdue at `at`; on_time includes early; the rates divide by on_time + late.
CREATE FUNCTION jiancha.figures_v1(lo timestamptz, hi timestamptz, at timestamptz)
RETURNS TABLE (dept text, win text, accepted bigint, immediate bigint, completed bigint,
               on_time bigint, early bigint, late bigint, overdue_open bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.department, ''), coalesce(c."window", ''),
           count(*) FILTER (WHERE c.accepted_at >= lo AND c.accepted_at < hi),
           count(*) FILTER (WHERE c.accepted_at >= lo AND c.accepted_at < hi AND c.immediate),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND (c.closed_at IS NULL OR c.closed_at > c.completed_at)),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome IN ('early', 'on_time')),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome = 'early'),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome = 'late'),
           count(*) FILTER (WHERE jiancha.overdue_v1(c, at))
    FROM jiancha.cases c
    GROUP BY 1, 2
$$;

-- Open cases by their deadline: the overdue gauge every few seconds, the dashboards' lists.
CREATE INDEX cases_deadline_open_idx ON jiancha.cases (decision_deadline)
    WHERE completed_at IS NULL AND closed_at IS NULL;

-- The ledger as evidence (migration 0010): each card_events row stamped with the role
-- and transaction that wrote it; a card changes only with a step recorded in the same
-- transaction; the daemon's rights in role jiancha_daemon (deploy/sql/roles.sql).
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

-- version 11: the console's accounts (docs/console.md); NULL password_hash: a directory account
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

-- The leader lease (migration 0012): the instance whose row this is tails, evaluates and
-- sends; every transaction of it first checks its token FOR KEY SHARE (the fence).
CREATE TABLE jiancha.leader (
    id           integer PRIMARY KEY CHECK (id = 1),
    holder       text NOT NULL,             -- host:pid:nonce of the instance that holds it
    token        bigint NOT NULL UNIQUE,    -- the fencing token: one more at every takeover
    acquired_at  timestamptz NOT NULL,
    renewed_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL       -- the database's clock, never a host's
);
INSERT INTO jiancha.leader (id, holder, token, acquired_at, renewed_at, expires_at)
VALUES (1, '', 0, '-infinity', '-infinity', '-infinity');
-- per-row delivery leases: the token of the leader that claimed a pending row
ALTER TABLE jiancha.outbox ADD COLUMN claim_token bigint;

-- The calendar as the database reads it, and the catalogue's names (migration 0013).
CREATE TABLE jiancha.working_time (
    starts_at    timestamptz PRIMARY KEY,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    before_days  double precision NOT NULL,  -- working days from the origin to starts_at
    days         double precision NOT NULL CHECK (days > 0),  -- working days in the stretch
    known_until  timestamptz NOT NULL,       -- the next stretch's start (the last: its end)
    provisional  boolean NOT NULL,           -- the year's holiday schedule is not published
    calendar     text NOT NULL,              -- fingerprint of the calendar it came from
    timezone     text NOT NULL               -- the calendar's: where its days begin
);

-- Working days elapsed by `at` since the table's origin; NULL outside the table's span.
CREATE FUNCTION jiancha.working_days_v1(at timestamptz) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN at <= w.known_until
                THEN w.before_days + w.days * least(1.0, extract(epoch FROM at - w.starts_at)
                                                   / extract(epoch FROM w.ends_at - w.starts_at))
           END
    FROM jiancha.working_time w
    WHERE w.starts_at <= at
    ORDER BY w.starts_at DESC
    LIMIT 1
$$;

-- Where a period begun at `start` starts counting: 00:00 after its local day (the day
-- of acceptance is not counted, Civil Code art. 201; docs/rule-book.md §3).
CREATE FUNCTION jiancha.count_start_v1(start timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (date_trunc('day', start AT TIME ZONE w.timezone) + interval '1 day')
           AT TIME ZONE w.timezone
    FROM (SELECT timezone FROM jiancha.working_time LIMIT 1) w
$$;

-- Working days from `start` to `stop`, as monitor.calendar's working_days_between counts
-- them (the starting day not counted; a stop before the count starts counts 0).
CREATE FUNCTION jiancha.working_days_between_v1(start timestamptz, stop timestamptz)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jiancha.working_days_v1(greatest(stop, jiancha.count_start_v1(start)))
           - jiancha.working_days_v1(jiancha.count_start_v1(start))
$$;

-- Working days left at `at` of a period begun at `since` that ends at `deadline`:
-- negative once the deadline has passed (overdue by that much).
CREATE FUNCTION jiancha.remaining_days_v1(deadline timestamptz, at timestamptz,
                                          since timestamptz)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jiancha.working_days_v1(deadline)
           - jiancha.working_days_v1(greatest(at, jiancha.count_start_v1(since)))
$$;

-- The matter catalogue's names, kept by the daemon from the source's `matters` (which
-- may live in another database than schema jiancha): the dashboards show names, not codes.
CREATE TABLE jiancha.matters (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    department  text NOT NULL
);

-- The console's sessions and sign-in failures (migration 0014): the cookie's token is kept
-- only as its SHA-256; a revoked row refuses the cookie; failures feed the sign-in throttle.
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

-- Bulletins (migration 0015): each version of (kind, period, scope), its documents beside it;
-- a revision lists the figures it changed. Delivered through the outbox (kind 'report').
CREATE TABLE jiancha.reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('daily', 'weekly', 'monthly', 'yearly')),
    period        text NOT NULL,                  -- 2026-12-02 | 2026-W49 | 2026-11 | 2026
    scope         text NOT NULL DEFAULT '',       -- '': the whole centre; else a department
    version       integer NOT NULL CHECK (version >= 1),
    generated_at  timestamptz NOT NULL,
    digest        text NOT NULL,                  -- sha256 of the figures (not of the time)
    content       jsonb NOT NULL,                 -- the JSON document of this version
    changed       jsonb NOT NULL DEFAULT '[]',    -- a revision's figures: [{key, was, now}]
    files         jsonb NOT NULL DEFAULT '{}',    -- format -> {name, bytes, sha256}
    UNIQUE (kind, period, scope, version),
    CHECK ((version = 1) = (changed = '[]'::jsonb))
);

CREATE TABLE jiancha.report_files (
    report_id  bigint NOT NULL REFERENCES jiancha.reports (id),
    format     text NOT NULL CHECK (format IN ('html', 'xlsx', 'pdf', 'json')),
    name       text NOT NULL,                     -- jiancha-monthly-2026-11-v2.pdf
    content    bytea NOT NULL,
    PRIMARY KEY (report_id, format)
);

ALTER TABLE jiancha.outbox ADD COLUMN report_id bigint REFERENCES jiancha.reports (id);

-- The console shows a bulletin (/reports/ID) and serves its documents: its role reads
-- them (the rest as migration 0014 granted it).
CREATE OR REPLACE FUNCTION jiancha.grant_console_v1() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    GRANT USAGE ON SCHEMA jiancha TO jiancha_console;
    REVOKE ALL ON ALL TABLES IN SCHEMA jiancha FROM jiancha_console;
    GRANT SELECT ON jiancha.cards, jiancha.card_events, jiancha.cases, jiancha.events,
        jiancha.users, jiancha.web_sessions, jiancha.login_failures, jiancha.attachments,
        jiancha.reports, jiancha.report_files
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
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_console') THEN
        PERFORM jiancha.grant_console_v1();
    END IF;
END
$$;

-- A case decided once per change while a backlog is read (migration 0016): marked by a
-- batch taken while more was visible, cleared by the decision after catching up.
ALTER TABLE jiancha.cases ADD COLUMN undecided boolean NOT NULL DEFAULT false;
CREATE INDEX cases_undecided_idx ON jiancha.cases (case_id) WHERE undecided;

-- What jiancha.working_time was last written from (migration 0017): a start rewrites the
-- table only when the calendar or the span of days differs.
CREATE TABLE jiancha.working_time_source (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    calendar    text NOT NULL,          -- fingerprint of the calendar the rows came from
    first_day   date NOT NULL,          -- the local days the rows cover
    last_day    date NOT NULL,
    written_at  timestamptz NOT NULL
);

-- That a card's step or notification names an existing card (migration 0018): one
-- anti-join per statement, instead of a foreign key's lookup and row lock per row. Cards
-- are never deleted nor renumbered, steps never changed, and a notification's card never
-- changes (outbox_card_kept_v1), so nothing else was left to the keys.
CREATE FUNCTION jiancha.names_a_card_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT n.card_id INTO missing FROM new_rows n
    WHERE n.card_id IS NOT NULL
      AND NOT EXISTS (SELECT FROM jiancha.cards c WHERE c.id = n.card_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'jiancha.%: row refused: card % does not exist', TG_TABLE_NAME, missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION jiancha.outbox_card_kept_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jiancha.outbox: the card of notification % cannot change', OLD.id
        USING ERRCODE = 'foreign_key_violation';
END
$$;

CREATE TRIGGER card_step_names_a_card_v1
    AFTER INSERT ON jiancha.card_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.names_a_card_v1();

CREATE TRIGGER outbox_names_a_card_v1
    AFTER INSERT ON jiancha.outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.names_a_card_v1();

CREATE TRIGGER outbox_card_kept_v1
    BEFORE UPDATE OF card_id ON jiancha.outbox
    FOR EACH ROW WHEN (OLD.card_id IS DISTINCT FROM NEW.card_id)
    EXECUTE FUNCTION jiancha.outbox_card_kept_v1();

-- A case the engine could not decide (migration 0019): its error and when, instead of a
-- daemon that stops for it; cleared once it is decided again, and decided at every start.
ALTER TABLE jiancha.cases ADD COLUMN decide_error text;
ALTER TABLE jiancha.cases ADD COLUMN decide_failed_at timestamptz;
CREATE INDEX cases_decide_error_idx ON jiancha.cases (case_id) WHERE decide_error IS NOT NULL;
