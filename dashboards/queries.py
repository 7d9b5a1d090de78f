"""The dashboards' SQL, against schema jiancha as the role jiancha_dashboard reads it.

Grafana fills the variables: ``${name:sqlstring}`` quotes each selected value as an
SQL string (a multi-value one as a list, so ``IN (${department:sqlstring})``), and
``$__timeFrom()`` / ``$__timeTo()`` are the dashboard's time range. The figures come
from the one definition the bulletins use (``jiancha.figures_v1``, migration 0007);
the remaining working time from the calendar the daemon keeps in the database
(``jiancha.remaining_days_v1``, migration 0013), computed at the moment of the query.
"""

from __future__ import annotations

OPEN_CARD = "('issued', 'acknowledged', 'appealed')"
DEPARTMENTS = "coalesce(c.department, '') IN (${department:sqlstring})"
IN_WINDOW = "coalesce(c.\"window\", '') IN (${window:sqlstring})"
MATTERS = "c.matter IN (${matter:sqlstring})"
RANGE = "$__timeFrom(), $__timeTo(), now()"

# --- variables ----------------------------------------------------------------------------

DEPARTMENT_VALUES = """\
SELECT DISTINCT coalesce(department, '') AS department FROM jiancha.cases ORDER BY 1"""

WINDOW_VALUES = f"""\
SELECT DISTINCT coalesce("window", '') FROM jiancha.cases c
WHERE {DEPARTMENTS} ORDER BY 1"""

MATTER_VALUES = f"""\
SELECT DISTINCT coalesce(m.name, c.matter) AS __text, c.matter AS __value
FROM jiancha.cases c LEFT JOIN jiancha.matters m ON m.code = c.matter
WHERE c.matter IS NOT NULL AND {IN_WINDOW}
ORDER BY 1"""

RULE_VALUES = """\
SELECT DISTINCT rule FROM jiancha.cards ORDER BY 1"""

# --- 电子监察总览: the centre, by department and window ------------------------------------

# 受理, 办结, 即办件占比, 按期办结率, 超期在办: jiancha.figures_v1 over the dashboard's range.
DEPARTMENT_FIGURES = f"""\
SELECT f.dept AS "部门",
       sum(f.accepted) AS "受理",
       sum(f.completed) AS "办结",
       sum(f.immediate)::float8 / nullif(sum(f.accepted), 0) AS "即办件占比",
       sum(f.on_time)::float8 / nullif(sum(f.on_time) + sum(f.late), 0) AS "按期办结率",
       sum(f.overdue_open) AS "超期在办"
FROM jiancha.figures_v1({RANGE}) f
WHERE f.dept IN (${{department:sqlstring}})
GROUP BY f.dept
ORDER BY 5 ASC NULLS LAST, 1"""

# Working days completions used, from acceptance (pauses not taken out), and those
# promised: the bulletins' mean_working_days_used (monitor/report), per window; and the
# share of what their deadlines allowed (pauses and lawful extensions moved those).
_USED = """\
SELECT dept, win, avg(used) AS used, avg(promised)::float8 AS promised,
       sum(used) / nullif(sum(allowed), 0) AS share
FROM (SELECT coalesce(c.department, '') AS dept, coalesce(c."window", '') AS win,
             c.promised_days AS promised,
             jiancha.working_days_between_v1(c.accepted_at, c.completed_at) AS used,
             jiancha.working_days_between_v1(c.accepted_at, c.decision_deadline) AS allowed
      FROM jiancha.cases c
      WHERE c.completed_at >= $__timeFrom() AND c.completed_at < $__timeTo()
        AND c.accepted_at IS NOT NULL AND c.accepted_at <= c.completed_at
        AND (c.closed_at IS NULL OR c.closed_at > c.completed_at)
        AND c.promised_days IS NOT NULL) x
GROUP BY 1, 2"""

WINDOW_RANKING = f"""\
SELECT f.win AS "窗口",
       f.dept AS "部门",
       f.accepted AS "受理",
       f.completed AS "办结",
       f.immediate::float8 / nullif(f.accepted, 0) AS "即办件占比",
       f.on_time::float8 / nullif(f.on_time + f.late, 0) AS "按期办结率",
       f.overdue_open AS "超期在办",
       u.used AS "平均用时（工作日）",
       u.promised AS "平均承诺（工作日）",
       u.share AS "用时占承诺"
FROM jiancha.figures_v1({RANGE}) f
LEFT JOIN ({_USED}) u ON u.dept = f.dept AND u.win = f.win
WHERE f.dept IN (${{department:sqlstring}}) AND (f.accepted > 0 OR f.completed > 0
                                              OR f.overdue_open > 0)
ORDER BY 6 ASC NULLS LAST, 7 DESC, 1"""

# 超期件 of the chosen departments now (jiancha.overdue_v1, the figures' one definition),
# the longest overdue first, overdue by the working days counted now.
OVERDUE_CASES = f"""\
SELECT c.case_id AS "办件编号",
       coalesce(c.department, '') AS "部门",
       coalesce(c."window", '') AS "窗口",
       coalesce(m.name, c.matter) AS "事项",
       c.decision_deadline AS "期限",
       round(-jiancha.remaining_days_v1(c.decision_deadline, now(), c.accepted_at)::numeric, 1)
           AS "超期工作日"
FROM jiancha.cases c
LEFT JOIN jiancha.matters m ON m.code = c.matter
WHERE {DEPARTMENTS} AND c.completed_at IS NULL AND c.closed_at IS NULL
  AND jiancha.overdue_v1(c, now())
ORDER BY c.decision_deadline, c.case_id
LIMIT 500"""

CARDS_BY_RULE = f"""\
SELECT c.rule AS "规则", c.level AS "牌级", count(*) AS "发牌数",
       count(*) FILTER (WHERE c.status IN {OPEN_CARD}) AS "未关闭"
FROM jiancha.cards c
WHERE $__timeFilter(c.issued_at) AND {DEPARTMENTS}
  AND c.level IN (${{level:sqlstring}}) AND c.rule IN (${{rule:sqlstring}})
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2"""

# 好差评 of the range: each case's latest rating given in it, and the bad ratings given in
# it with how many were rectified by its end (as the bulletins count them).
RATINGS = f"""\
WITH rated AS (
    SELECT DISTINCT ON (e.case_id) e.case_id, (e.payload->>'level')::int AS stars
    FROM jiancha.events e
    WHERE e.kind = 'rated' AND e.occurred_at >= $__timeFrom() AND e.occurred_at < $__timeTo()
    ORDER BY e.case_id, e.occurred_at DESC, e.event_id DESC
), bad AS (
    SELECT coalesce(c.department, '') AS dept, count(*) AS n,
           count(*) FILTER (WHERE (r->>'stop')::timestamptz < $__timeTo()) AS fixed
    FROM jiancha.cases c,
         jsonb_array_elements(CASE WHEN c.clocks ? 'reviews' THEN c.clocks->'reviews'
                                   ELSE jsonb_build_array(c.clocks->'review') END) r
    WHERE c.clocks ? 'review' AND (r->>'start')::timestamptz >= $__timeFrom()
      AND (r->>'start')::timestamptz < $__timeTo() AND {DEPARTMENTS}
    GROUP BY 1
), given AS (
    SELECT coalesce(c.department, '') AS dept, count(*) AS n,
           count(*) FILTER (WHERE r.stars >= 3) AS satisfied
    FROM rated r JOIN jiancha.cases c USING (case_id)
    WHERE {DEPARTMENTS}
    GROUP BY 1
)
SELECT coalesce(g.dept, b.dept) AS "部门",
       coalesce(g.n, 0) AS "评价数",
       g.satisfied::float8 / nullif(g.n, 0) AS "满意率",
       coalesce(b.n, 0) AS "差评",
       coalesce(b.fixed, 0) AS "已整改",
       b.fixed::float8 / nullif(b.n, 0) AS "整改率"
FROM given g FULL JOIN bad b ON b.dept = g.dept
ORDER BY 3 ASC NULLS LAST, 1"""

# --- 窗口办件: a window, its cases, the console --------------------------------------------

WINDOW_FIGURES = f"""\
SELECT sum(f.accepted) AS "受理",
       sum(f.completed) AS "办结",
       sum(f.immediate)::float8 / nullif(sum(f.accepted), 0) AS "即办件占比",
       sum(f.on_time)::float8 / nullif(sum(f.on_time) + sum(f.late), 0) AS "按期办结率",
       sum(f.overdue_open) AS "超期在办"
FROM jiancha.figures_v1({RANGE}) f
WHERE f.win IN (${{window:sqlstring}})"""

# Every open case of the window with its highest open card, soonest deadline first; the
# remaining working days are counted now, from the calendar, whenever Grafana asks.
OPEN_CASES = f"""\
SELECT c.case_id AS "办件编号",
       coalesce(m.name, c.matter) AS "事项",
       coalesce(k.level, 'none') AS "最高牌级",
       k.rule AS "规则",
       c.decision_deadline AS "期限",
       round(jiancha.remaining_days_v1(c.decision_deadline, now(), c.accepted_at)::numeric, 1)
           AS "剩余工作日",
       k.status AS "牌状态"
FROM jiancha.cases c
LEFT JOIN jiancha.matters m ON m.code = c.matter
LEFT JOIN LATERAL (
    SELECT level, rule, status
    FROM jiancha.cards
    WHERE cards.case_id = c.case_id AND cards.status IN {OPEN_CARD}
    ORDER BY CASE level WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC,
             issued_at DESC
    LIMIT 1
) k ON true
WHERE {IN_WINDOW} AND {MATTERS}
  AND c.accepted_at IS NOT NULL AND c.completed_at IS NULL AND c.closed_at IS NULL
  AND c.refused_at IS NULL
  AND coalesce(k.level, 'none') IN (${{level:sqlstring}})
  AND (k.rule IS NULL OR k.rule IN (${{rule:sqlstring}}))
ORDER BY c.decision_deadline ASC NULLS LAST, c.case_id
LIMIT 1000"""

OPEN_BY_LEVEL = f"""\
SELECT c.level AS "牌级", count(*) AS "未关闭"
FROM jiancha.cards c
WHERE {IN_WINDOW} AND c.status IN {OPEN_CARD}
GROUP BY c.level
ORDER BY CASE c.level WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC"""

WINDOW_CARDS = f"""\
SELECT c.issued_at AS "发牌时间",
       c.case_id AS "办件编号",
       coalesce(m.name, c.matter) AS "事项",
       c.clock AS "时钟",
       c.rule AS "规则",
       c.level AS "牌级",
       c.status AS "状态",
       c.reply_due AS "督办回复期限",
       c.replied_at AS "回复时间",
       c.escalated_at AS "升级时间"
FROM jiancha.cards c
LEFT JOIN jiancha.matters m ON m.code = c.matter
WHERE {IN_WINDOW} AND $__timeFilter(c.issued_at)
  AND c.level IN (${{level:sqlstring}}) AND c.rule IN (${{rule:sqlstring}})
  AND (c.matter IS NULL OR {MATTERS})
ORDER BY c.issued_at DESC, c.id DESC
LIMIT 500"""

WINDOW_OUTCOMES = f"""\
SELECT CASE c.outcome WHEN 'early' THEN '提前办结' WHEN 'on_time' THEN '按期办结'
                      ELSE '超期办结' END AS "办结情况",
       count(*) AS "办件数"
FROM jiancha.cases c
WHERE {IN_WINDOW} AND c.outcome IS NOT NULL AND $__timeFilter(c.completed_at)
GROUP BY c.outcome
ORDER BY c.outcome"""
