-- jiancha schema, version 6: a card per subject, and a revoked card frees its key.
--
-- One rule watches several periods of a case (the n-th pause, each named
-- step, the n-th rating): `subject` tells them apart ('' for the case's own
-- clocks), taken for existing cards from detail->>'subject' where the engine
-- recorded it. A card is unique among the *live* cards of its (case, clock,
-- rule, subject, level): when a late event or a calendar correction revoked
-- it and the moved threshold is crossed again, the new crossing is a new card.
-- One crossing (the same issued_at) is still carded once, revoked or not, so a
-- card an officer revoked is never issued again by a replay. The ledger stays
-- append-only: nothing is deleted, the subject joins the card's identity.

ALTER TABLE jiancha.cards ADD COLUMN subject text NOT NULL DEFAULT '';
-- a step by its name; the n-th pause ("survey#2") and the rating by the instant they
-- began ("survey@2024-03-08T22:00:00Z"), which a late-arriving earlier one cannot renumber
UPDATE jiancha.cards SET subject = detail->>'subject'
WHERE coalesce(detail->>'subject', '') <> '' AND detail->>'subject' !~ '#[0-9]+$';
UPDATE jiancha.cards k
SET subject = split_part(k.detail->>'subject', '#', 1) || '@' || to_char(
        ((c.clocks->'decision'->'pauses'->(split_part(k.detail->>'subject', '#', 2)::int - 1)
          ->>'start')::timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM jiancha.cases c
WHERE c.case_id = k.case_id AND k.detail->>'subject' ~ '^[a-z_]+#[0-9]+$'
  AND c.clocks->'decision'->'pauses'->(split_part(k.detail->>'subject', '#', 2)::int - 1)
      ? 'start';
-- a pause-type card (detail.type, no clock figures) by the first pause of that type
UPDATE jiancha.cards k
SET subject = (k.detail->>'type') || '@' || to_char((jsonb_path_query_first(c.clocks,
        '$.decision.pauses[*] ? (@.type == $t).start',
        jsonb_build_object('t', k.detail->>'type')) #>> '{}')::timestamptz AT TIME ZONE 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM jiancha.cases c
WHERE c.case_id = k.case_id AND k.subject = '' AND k.detail ? 'type'
  AND NOT k.detail ? 'limit_days'
  AND jsonb_path_exists(c.clocks, '$.decision.pauses[*] ? (@.type == $t)',
                        jsonb_build_object('t', k.detail->>'type'));
UPDATE jiancha.cards k
SET subject = 'rating@' || to_char(((c.clocks->'review'->>'start')::timestamptz)
                                   AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM jiancha.cases c
WHERE c.case_id = k.case_id AND k.clock = 'review' AND c.clocks->'review' ? 'start';

DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT con.conname FROM pg_catalog.pg_constraint con
        WHERE con.conrelid = 'jiancha.cards'::regclass AND con.contype = 'u'
    LOOP
        EXECUTE format('ALTER TABLE jiancha.cards DROP CONSTRAINT %I', name);
    END LOOP;
END
$$;

CREATE UNIQUE INDEX cards_live_key_idx ON jiancha.cards (case_id, clock, rule, subject, level)
    WHERE status <> 'revoked';
CREATE UNIQUE INDEX cards_crossing_idx
    ON jiancha.cards (case_id, clock, rule, subject, level, issued_at);
CREATE INDEX cards_case_idx ON jiancha.cards (case_id);

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

DROP TRIGGER cards_identity_v1 ON jiancha.cards;
DROP FUNCTION jiancha.card_identity_v1();
CREATE TRIGGER cards_identity_v2
    BEFORE UPDATE ON jiancha.cards
    FOR EACH ROW EXECUTE FUNCTION jiancha.card_identity_v2();

-- a replay's ledger keeps every crossing too (revoked ones beside the live ones)
ALTER TABLE jiancha.replay_cards ADD COLUMN subject text NOT NULL DEFAULT '';
ALTER TABLE jiancha.replay_cards DROP CONSTRAINT replay_cards_pkey;
ALTER TABLE jiancha.replay_cards
    ADD PRIMARY KEY (run_id, case_id, clock, rule, subject, level, issued_at);
