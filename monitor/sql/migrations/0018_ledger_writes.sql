-- jiancha schema, version 18: the ledger's writes made cheaper, its rules kept.
--
-- 1. That a card's step (jiancha.card_events) or notification (jiancha.outbox, whose
-- card_id is NULL for a digest or a bulletin) names an existing card, checked once per
-- statement. The foreign keys to cards.id were checked row by row: a lookup and a FOR KEY
-- SHARE lock of the card for every row, about 35 µs of the server's 75 µs per card issued,
-- and as much again per notification (tests/bench/bench_ledger.py). Of what the keys
-- guarded, the ledger's other rules already hold all but one: a card cannot be deleted
-- (cards_no_delete_v1, cards_no_truncate_v1) nor its id changed (GENERATED ALWAYS,
-- cards_identity_v2), a step cannot be changed (card_events_append_only_v1), and a
-- notification's card is never changed (outbox_card_kept_v1 below; the sender changes
-- its state only). What is left, that a new row names a card that exists, is one
-- anti-join over the rows the statement inserted, refused with the foreign key's SQLSTATE
-- (23503), as before.
CREATE OR REPLACE FUNCTION jiancha.names_a_card_v1() RETURNS trigger
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

CREATE OR REPLACE FUNCTION jiancha.outbox_card_kept_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jiancha.outbox: the card of notification % cannot change', OLD.id
        USING ERRCODE = 'foreign_key_violation';
END
$$;

DROP TRIGGER IF EXISTS card_step_names_a_card_v1 ON jiancha.card_events;
CREATE TRIGGER card_step_names_a_card_v1
    AFTER INSERT ON jiancha.card_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.names_a_card_v1();

DROP TRIGGER IF EXISTS outbox_names_a_card_v1 ON jiancha.outbox;
CREATE TRIGGER outbox_names_a_card_v1
    AFTER INSERT ON jiancha.outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jiancha.names_a_card_v1();

DROP TRIGGER IF EXISTS outbox_card_kept_v1 ON jiancha.outbox;
CREATE TRIGGER outbox_card_kept_v1
    BEFORE UPDATE OF card_id ON jiancha.outbox
    FOR EACH ROW WHEN (OLD.card_id IS DISTINCT FROM NEW.card_id)
    EXECUTE FUNCTION jiancha.outbox_card_kept_v1();

ALTER TABLE jiancha.card_events DROP CONSTRAINT IF EXISTS card_events_card_id_fkey;
ALTER TABLE jiancha.outbox DROP CONSTRAINT IF EXISTS outbox_card_id_fkey;

-- 2. cards_case_idx (case_id) is the first column of cards_crossing_idx (case_id, clock,
-- rule, subject, level, issued_at), which every lookup of a case's cards can use: one
-- index fewer to write for every card (about 8% of the insert, bench_ledger).
DROP INDEX IF EXISTS jiancha.cards_case_idx;
