-- jiancha schema, version 16: a case decided once per change while a backlog is read.
--
-- A batch taken while more events are visible (a backlog after an outage, a catch-up with
-- `jiancha evaluate`) writes its cases with undecided = true and decides none of them: the
-- same case would otherwise be decided again in every batch that touches it. Once the
-- reader has caught up, the marked cases are decided, their cards written and the mark
-- cleared in one transaction; a crash in between leaves them marked, and the next start
-- decides them. A case taken in a caught-up batch is decided in that batch, mark cleared.
ALTER TABLE jiancha.cases ADD COLUMN IF NOT EXISTS undecided boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS cases_undecided_idx ON jiancha.cases (case_id) WHERE undecided;
