-- jiancha schema, version 19: a case the engine could not decide is marked, not a stop.
--
-- Deciding a case (its periods, cards and figures) is pure code over its stored state. A
-- defect of that code met by one case's data raised out of the tick, the start or the
-- deciding of a backlog, and took the daemon down: systemd started it again, the start
-- decided every open case, met the same case and stopped again, so one odd case ended
-- the supervision of the whole centre. Now the cases of a set that failed are decided one
-- by one; the one that fails alone is left undecided with its error here, the others are
-- decided and their cards written. The mark is cleared when the case is decided again
-- (its next event, the next start, a new release); a start decides every marked case,
-- open or not, since its completion may be what was never judged.
ALTER TABLE jiancha.cases ADD COLUMN IF NOT EXISTS decide_error text;
ALTER TABLE jiancha.cases ADD COLUMN IF NOT EXISTS decide_failed_at timestamptz;
CREATE INDEX IF NOT EXISTS cases_decide_error_idx ON jiancha.cases (case_id)
    WHERE decide_error IS NOT NULL;
