-- jiancha schema, version 12: the leader lease (docs/operating.md, "High availability").
--
-- Any number of `jiancha run` share one schema; the one whose row this is tails,
-- evaluates and sends, the others stand by. The holder renews expires_at every
-- couple of seconds; once it has passed, a standby takes the row and the token
-- goes up by one. Every transaction of the leader runs, first and right before
-- its COMMIT,
--   SELECT 1 FROM jiancha.leader WHERE id = 1 AND token = $1 [FOR KEY SHARE]
-- and aborts without the row: a paused ex-leader can never commit. token is
-- UNIQUE so that a takeover (which changes it) waits for the FOR KEY SHARE lock
-- of a commit in flight, while a renewal (expires_at only) does not.
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

-- Per-row delivery leases: the token of the leader that claimed a pending row. A
-- row claimed under an older token was abandoned by a leader that lost the lease
-- and is taken at once; the row is marked sent only by the claim's own leader.
ALTER TABLE jiancha.outbox ADD COLUMN claim_token bigint;
