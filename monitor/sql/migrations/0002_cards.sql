-- jiancha schema, version 2: the card ledger.
--
-- A card is one (case, clock, rule, level): the database refuses a second
-- one, whatever a replay or a restart does. What happens to a card is told
-- by jiancha.card_events, which the database keeps append-only: UPDATE,
-- DELETE and TRUNCATE are refused by triggers, so an audit can trust it.
-- Only the card's state columns (status, supervision order) may change.

-- What procedural rules look at: 补正 requests, fees, the refusal and its reason.
ALTER TABLE jiancha.cases ADD COLUMN facts jsonb NOT NULL DEFAULT '{}';

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
    UNIQUE (case_id, clock, rule, level)
);
CREATE INDEX cards_open_idx ON jiancha.cards (department, "window", level)
    WHERE status IN ('issued', 'acknowledged', 'appealed');
CREATE INDEX cards_issued_idx ON jiancha.cards (issued_at);
CREATE INDEX cards_reply_due_idx ON jiancha.cards (reply_due)
    WHERE reply_due IS NOT NULL AND replied_at IS NULL AND escalated_at IS NULL;

CREATE TABLE jiancha.card_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id   bigint NOT NULL REFERENCES jiancha.cards (id),
    kind      text NOT NULL CHECK (kind IN ('issued', 'notified', 'acknowledged', 'closed',
                  'revoked', 'appealed', 'appeal_decided', 'escalated')),
    at        timestamptz NOT NULL,
    actor     text NOT NULL,                         -- 'jiancha' or the person who acted
    reason    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}'
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

CREATE FUNCTION jiancha.card_identity_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.case_id, NEW.clock, NEW.rule, NEW.level, NEW.issued_at, NEW.recorded_at,
        NEW.deadline, NEW.ruleset, NEW.calendar, NEW.detail)
       IS DISTINCT FROM
       (OLD.id, OLD.case_id, OLD.clock, OLD.rule, OLD.level, OLD.issued_at, OLD.recorded_at,
        OLD.deadline, OLD.ruleset, OLD.calendar, OLD.detail) THEN
        RAISE EXCEPTION 'jiancha.cards: the identity of card % cannot change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER cards_identity_v1
    BEFORE UPDATE ON jiancha.cards
    FOR EACH ROW EXECUTE FUNCTION jiancha.card_identity_v1();

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
    PRIMARY KEY (run_id, case_id, clock, rule, level)
);
