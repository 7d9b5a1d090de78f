-- jiancha schema, version 3: the outbox of notifications.
--
-- A notification row is written in the same transaction as the card (or the
-- ledger step) that causes it, keyed by an idempotency key, so a replay or a
-- restart never queues it twice. The sender delivers it, records every
-- attempt, and marks it failed (never silently dropped) once it gives up.

CREATE TABLE jiancha.outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL UNIQUE,              -- idempotency key
    channel          text NOT NULL,                     -- [channels.NAME] of jiancha.toml
    kind             text NOT NULL CHECK (kind IN ('card', 'escalation', 'digest', 'resolved')),
    card_id          bigint REFERENCES jiancha.cards (id),
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
