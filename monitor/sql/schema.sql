-- Schema jiancha as it stands after every migration in migrations/ (version 1).
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
    updated_at  timestamptz NOT NULL DEFAULT now()
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
    updated_at           timestamptz NOT NULL
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
    created_at   timestamptz NOT NULL
);
CREATE INDEX dead_letters_reason_idx ON jiancha.dead_letters (reason);
