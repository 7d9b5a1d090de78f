"""The one place a bulletin reads the database: rows in, no judgement.

Every count comes from the one definition of the figures
(``jiancha.figures_v1`` / ``jiancha.overdue_v1``, migration 0007, rule-book
§5); the rest (cards, ratings, reviews, completions' times) are plain reads
of ``jiancha.cards``, ``jiancha.events`` and ``jiancha.cases``. The pure
``monitor.report.model.assemble`` turns the rows into a report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.log import get_logger

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["Rows", "fetch_centre_name", "fetch_matter_names", "fetch_rows"]

log = get_logger(__name__)

_FIGURES = """
SELECT dept, win, accepted, immediate, completed, on_time, early, late, overdue_open
FROM jiancha.figures_v1($1, $2, $2)
"""
# Cards issued in the period, by scope, level and rule; revoked ones counted apart.
_CARDS = """
SELECT coalesce(department, '') AS dept, coalesce("window", '') AS win, level, rule,
       status = 'revoked' AS revoked, count(*) AS n
FROM jiancha.cards WHERE issued_at >= $1 AND issued_at < $2
GROUP BY 1, 2, 3, 4, 5
"""
_RED_CARDS = """
SELECT id, case_id, matter, coalesce(department, '') AS dept, coalesce("window", '') AS win,
       clock, rule, issued_at, deadline, status
FROM jiancha.cards
WHERE level = 'red' AND status <> 'revoked' AND issued_at >= $1 AND issued_at < $2
ORDER BY issued_at, id
"""
# 超期件 at the period's end: the one definition.
_OVERDUE = """
SELECT case_id, matter, coalesce(department, '') AS dept, coalesce("window", '') AS win,
       accepted_at, decision_deadline, promised_days
FROM jiancha.cases c WHERE jiancha.overdue_v1(c, $1)
ORDER BY decision_deadline, case_id
"""
# Each case's latest rating given in the period (jiancha.cases.rating keeps the latest
# of all time; the events say when each was given).
_RATINGS = """
SELECT coalesce(c.department, '') AS dept, coalesce(c."window", '') AS win, r.level,
       count(*) AS n
FROM (SELECT DISTINCT ON (case_id) case_id, (payload->>'level')::int AS level
      FROM jiancha.events
      WHERE kind = 'rated' AND occurred_at >= $1 AND occurred_at < $2
      ORDER BY case_id, occurred_at DESC, event_id DESC) r
JOIN jiancha.cases c USING (case_id)
GROUP BY 1, 2, 3
"""
# Bad ratings given in the period (each its own review clock, as monitor/observe.py
# reads them), and how many of them were rectified by the period's end.
_REVIEWS = """
SELECT dept, win, count(*) AS bad, count(*) FILTER (WHERE stop < $2) AS rectified
FROM (SELECT coalesce(c.department, '') AS dept, coalesce(c."window", '') AS win,
             (r->>'start')::timestamptz AS start, (r->>'stop')::timestamptz AS stop
      FROM jiancha.cases c,
           jsonb_array_elements(CASE WHEN c.clocks ? 'reviews' THEN c.clocks->'reviews'
                                     ELSE jsonb_build_array(c.clocks->'review') END) r
      WHERE c.clocks ? 'review') x
WHERE start >= $1 AND start < $2
GROUP BY 1, 2
"""
# Completions of the period with a promised limit, by scope, as columns of epoch
# seconds: a city's month is 100,000 of them, and rows of datetimes cost seconds.
_COMPLETIONS = """
SELECT coalesce(department, '') AS dept, coalesce("window", '') AS win,
       array_agg(floor(extract(epoch FROM accepted_at))::int8) AS accepted_s,
       array_agg(floor(extract(epoch FROM completed_at))::int8) AS completed_s,
       array_agg(promised_days) AS promised_days,
       array_agg(coalesce(statutory_days, 0)) AS statutory_days
FROM jiancha.cases
WHERE completed_at >= $1 AND completed_at < $2 AND accepted_at IS NOT NULL
  AND accepted_at <= completed_at AND (closed_at IS NULL OR closed_at > completed_at)
  AND promised_days IS NOT NULL
GROUP BY 1, 2
"""
_CENTRE = """
SELECT region FROM jiancha.cases WHERE region IS NOT NULL AND region <> ''
GROUP BY region ORDER BY count(*) DESC, region LIMIT 1
"""


@dataclass(frozen=True)
class Rows:
    """What the database says about one period [lo, hi); lists only when asked for."""

    lo: dt.datetime
    hi: dt.datetime
    figures: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    ratings: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    completions: list[dict[str, Any]]  # by scope: columns (see _COMPLETIONS)
    red_cards: list[dict[str, Any]] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)


async def fetch_rows(
    conn: Connection, lo: dt.datetime, hi: dt.datetime, *, lists: bool = True
) -> Rows:
    """The period's rows; ``lists`` adds the red cards and the overdue cases by name."""

    async def rows(sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(sql, *args)]

    return Rows(
        lo,
        hi,
        await rows(_FIGURES, lo, hi),
        await rows(_CARDS, lo, hi),
        await rows(_RATINGS, lo, hi),
        await rows(_REVIEWS, lo, hi),
        await rows(_COMPLETIONS, lo, hi),
        await rows(_RED_CARDS, lo, hi) if lists else [],
        await rows(_OVERDUE, hi) if lists else [],
    )


async def fetch_matter_names(conn: Connection) -> dict[str, str]:
    """The source catalogue's names by code; empty (codes shown) when it cannot be read."""
    import asyncpg

    try:
        async with conn.transaction():  # a failed read must not spoil the caller's session
            found = await conn.fetch("SELECT code, name FROM matters")
    except (asyncpg.PostgresError, OSError) as exc:
        log.info("report.matters_unreadable", detail=str(exc))
        return {}
    return {str(r["code"]): str(r["name"]) for r in found}


async def fetch_centre_name(conn: Connection) -> str | None:
    """The region most cases name: the centre a bulletin speaks for, unless told."""
    found = await conn.fetchval(_CENTRE)
    return None if found is None else str(found)
