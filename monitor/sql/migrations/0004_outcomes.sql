-- jiancha schema, version 4: how each case's decision clock ended, for the figures
-- the inspectors report (按期办结率, 提前办结率).

ALTER TABLE jiancha.cases
    ADD COLUMN decision_deadline timestamptz,           -- the promised deadline, pauses in
    ADD COLUMN outcome text CHECK (outcome IN ('early', 'on_time', 'late'));
CREATE INDEX cases_outcome_idx ON jiancha.cases (department, outcome) WHERE outcome IS NOT NULL;
