-- jiancha schema, version 8: dead letters come back.
--
-- A dead letter is an event jiancha could not take *then*: its matter was not
-- in the catalogue yet, its clock ran ahead, its case's `submitted` had not
-- arrived. Such letters are retried (monitor/revive.py): automatically when
-- what they lacked turns up, or on an operator's `jiancha dead-letters retry`.
-- A letter taken in keeps its row, with resolved_at: the record that it was
-- dead once, and why. One that fails again keeps its newest reason.
ALTER TABLE jiancha.dead_letters
    ADD COLUMN retries integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_requested_at timestamptz,   -- an operator asked (jiancha dead-letters retry)
    ADD COLUMN resolved_at timestamptz;          -- taken in: the event is in jiancha.events
CREATE INDEX dead_letters_open_idx ON jiancha.dead_letters (reason, created_at)
    WHERE resolved_at IS NULL;
