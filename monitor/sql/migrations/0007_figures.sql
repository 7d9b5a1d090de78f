-- jiancha schema, version 7: the figures the inspectors report, defined once.
--
-- monitor/engine/figures.py decides each case's part in them and stores two
-- columns: decision_deadline, now the instant the promised limit is used up
-- (pauses and lawful extensions in; an immediate case's close of business),
-- for open cases too; and outcome, set only for completions (a withdrawn or
-- terminated case is never one). The functions below count exactly what
-- figures.tally counts, so metrics, dashboards and bulletins agree with
-- replay; tests/statute/test_figures.py holds them to it.

-- Cases withdrawn or terminated used to get an outcome: they are not completions.
UPDATE jiancha.cases SET outcome = NULL
WHERE outcome IS NOT NULL
  AND (completed_at IS NULL OR (closed_at IS NOT NULL AND closed_at <= completed_at));

-- 超期件 at `at`: open then, and its promised limit used up by then.
CREATE FUNCTION jiancha.overdue_v1(c jiancha.cases, at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT c.decision_deadline <= at
       AND (c.completed_at IS NULL OR c.completed_at > at)
       AND (c.closed_at IS NULL OR c.closed_at > at)
       AND (c.refused_at IS NULL OR c.refused_at > at)
$$;

-- A period's counts per department and window: accepted and completed in [lo, hi),
-- overdue at `at`; on_time includes early; the rates divide by on_time + late.
CREATE FUNCTION jiancha.figures_v1(lo timestamptz, hi timestamptz, at timestamptz)
RETURNS TABLE (dept text, win text, accepted bigint, immediate bigint, completed bigint,
               on_time bigint, early bigint, late bigint, overdue_open bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.department, ''), coalesce(c."window", ''),
           count(*) FILTER (WHERE c.accepted_at >= lo AND c.accepted_at < hi),
           count(*) FILTER (WHERE c.accepted_at >= lo AND c.accepted_at < hi AND c.immediate),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND (c.closed_at IS NULL OR c.closed_at > c.completed_at)),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome IN ('early', 'on_time')),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome = 'early'),
           count(*) FILTER (WHERE c.completed_at >= lo AND c.completed_at < hi
                              AND c.outcome = 'late'),
           count(*) FILTER (WHERE jiancha.overdue_v1(c, at))
    FROM jiancha.cases c
    GROUP BY 1, 2
$$;

-- Open cases by their deadline: the overdue gauge every few seconds, the dashboards' lists.
CREATE INDEX cases_deadline_open_idx ON jiancha.cases (decision_deadline)
    WHERE completed_at IS NULL AND closed_at IS NULL;
