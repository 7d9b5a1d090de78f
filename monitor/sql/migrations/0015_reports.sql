-- jiancha schema, version 15: bulletins kept, versioned and delivered (issue 20, docs/reports.md).
--
-- One row per version of a bulletin (kind, period, scope). The daemon's schedule and
-- `jiancha report --store` write a version only when the figures differ from the
-- latest one's (digest): the same figures again are no new version; late events that
-- change a closed period make the next version, a revision that lists the figures it
-- changed. Never overwritten. The documents themselves are kept beside it, so the
-- console can serve them and the outbox can attach them to e-mails.
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

-- A bulletin's delivery is an outbox row like a card's, keyed
-- report:KIND:PERIOD:SCOPE:vN:CHANNEL so that a restart or a replay never sends it twice.
ALTER TABLE jiancha.outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE jiancha.outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('card', 'escalation', 'digest', 'resolved', 'report'));
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
