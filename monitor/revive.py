"""Dead letters come back: events that could not be taken then, taken once they can be.

Most dead letters are not bad data but early data: a ``submitted`` naming a
matter the catalogue gets one batch later, an event stamped ahead of the
clock, a case whose ``submitted`` arrives after the orphan sweep moved its
other events out. Left dead, each of those silently loses a case's history.
A letter is retried when what it lacked turns up, or when an operator asks
(``jiancha dead-letters retry``), through the same stages as a batch from the
source: validated again, stored, its case rebuilt and decided, in one
transaction. Its row stays, with ``resolved_at``: the record that it was dead
once. Retrying is idempotent: rows are locked while retried, events keyed by
their id, cards by theirs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.db import Connection, data_error
from monitor.evaluator import Evaluator
from monitor.log import get_logger
from monitor.redact import redact_text
from monitor.source.contract import START, DeadReason, Matter, SourceEvent, split
from monitor.state import store as state_store

__all__ = ["RETRIED_AUTOMATICALLY", "Revived", "event_from_raw", "revive"]

RETRIED_AUTOMATICALLY = (DeadReason.UNKNOWN_MATTER, DeadReason.FUTURE_TIMESTAMP,
                         DeadReason.NEVER_SUBMITTED)  # fmt: skip
"""The reasons that can stop being true on their own; the others wait for an operator."""

_DUE = """
SELECT d.event_id, d.reason, d.detail, d.raw FROM jiancha.dead_letters d
WHERE d.resolved_at IS NULL
  AND (d.retry_requested_at IS NOT NULL
       OR (d.reason = 'unknown_matter' AND d.raw->'payload'->>'matter' = ANY($1::text[]))
       OR (d.reason = 'future_timestamp'
           AND jsonb_typeof(d.raw->'occurred_at') = 'string'
           AND (d.raw->>'occurred_at')::timestamptz <= $2)
       OR (d.reason = 'never_submitted' AND EXISTS (
             SELECT FROM jiancha.cases c WHERE c.case_id = d.case_id AND c.status <> 'orphan')))
  AND ($4::bigint IS NULL OR d.event_id = $4)
ORDER BY d.event_id
LIMIT $3
FOR UPDATE OF d SKIP LOCKED
"""
_DUE_IDS = _DUE.replace("d.event_id, d.reason, d.detail, d.raw", "d.event_id").replace(
    "($4::bigint IS NULL OR d.event_id = $4)", "true"
)
_STILL_DEAD = """
UPDATE jiancha.dead_letters d SET reason = u.r, detail = u.t, retries = d.retries + 1,
    retry_requested_at = NULL
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(e, r, t)
WHERE d.event_id = u.e
"""
_RESOLVED = """
UPDATE jiancha.dead_letters SET resolved_at = $2, retries = retries + 1,
    retry_requested_at = NULL
WHERE event_id = ANY($1::bigint[])
"""


@dataclass(frozen=True, slots=True)
class Revived:
    """What one pass did: letters taken in, and letters that failed again."""

    taken: int = 0
    still_dead: int = 0
    cases: tuple[str, ...] = ()

    def __add__(self, other: Revived) -> Revived:
        return Revived(self.taken + other.taken, self.still_dead + other.still_dead,
                       tuple(sorted({*self.cases, *other.cases})))  # fmt: skip


def event_from_raw(raw: Mapping[str, Any]) -> SourceEvent | None:
    """The source row a dead letter keeps (``SourceEvent.raw``); None if it is not one."""
    if "payload_left_out" in raw:
        return None
    try:
        at = dt.datetime.fromisoformat(str(raw["occurred_at"]))
        # a payload too large to keep was left out of the letter: never rebuild it as {}
        return SourceEvent(int(raw["id"]), int(raw["tx"]), str(raw["case_id"]), str(raw["kind"]),
                           at, raw["payload"])  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


async def revive(
    conn: Connection,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    *,
    evaluator: Evaluator | None = None,
    cache: state_store.FoldCache | None = None,
    future_tolerance: dt.timedelta = dt.timedelta(days=1),
    limit: int = 1000,
    rounds: int = 3,
) -> Revived:
    """Retry every letter due a retry; a case revived may free its own orphans (rounds)."""
    done = Revived()
    for _ in range(rounds):
        try:
            got = await _pass(conn, matters, now, evaluator, cache, future_tolerance, limit)
        except Exception as exc:
            if data_error(exc) is None:
                raise
            # a letter the database refuses again: one at a time, the failing ones stay dead
            got = await _one_by_one(conn, matters, now, evaluator, cache, future_tolerance, limit)
        done += got
        if not got.taken:
            break
    if done.taken or done.still_dead:
        get_logger("monitor.revive").info("dead_letters_retried", taken=done.taken,
                                          still_dead=done.still_dead,
                                          cases=len(done.cases))  # fmt: skip
    return done


async def _one_by_one(
    conn: Connection,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    evaluator: Evaluator | None,
    cache: state_store.FoldCache | None,
    tolerance: dt.timedelta,
    limit: int,
) -> Revived:
    """Each due letter in a transaction of its own; one the database refuses stays dead."""
    ids = [r["event_id"] for r in await conn.fetch(_DUE_IDS, sorted(matters), now + tolerance,
                                                   limit)]  # fmt: skip
    done = Revived()
    for event_id in ids:
        try:
            got = await _pass(conn, matters, now, evaluator, cache, tolerance, 1, event_id)
        except Exception as exc:
            error = data_error(exc)
            if error is None:
                raise
            detail = redact_text(error, limit=1000)
            await conn.execute(_STILL_DEAD, [event_id], [str(DeadReason.APPLY_FAILED)], [detail])
            got = Revived(still_dead=1)
        done += got
    return done


async def _pass(
    conn: Connection,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    evaluator: Evaluator | None,
    cache: state_store.FoldCache | None,
    tolerance: dt.timedelta,
    limit: int,
    only: int | None = None,
) -> Revived:
    pending = taken = None
    async with conn.transaction():
        rows = await conn.fetch(_DUE, sorted(matters), now + tolerance, limit, only)
        if not rows:
            return Revived()
        events: list[SourceEvent] = []
        unreadable: list[tuple[int, str, str]] = []  # kept as they are: their reason stands
        for r in rows:
            e = event_from_raw(r["raw"]) if isinstance(r["raw"], Mapping) else None
            if e is None:
                unreadable.append((r["event_id"], r["reason"], r["detail"]))
            else:
                events.append(e)
        valid, dead = split(events, matters, now, tolerance)
        await _still_dead(conn, dead, unreadable)
        if valid:
            taken = await state_store.take(conn, valid, [], START, START, matters, now,
                                           cache=cache, copy="send")  # fmt: skip
            if evaluator is not None:
                pending = await evaluator.on_batch(conn, taken.states, matters, now)
            await conn.execute(_RESOLVED, [e.event_id for e in valid], now)
    if taken is not None:  # committed: publish, as a batch from the source does
        taken.publish(cache)
    if evaluator is not None:
        evaluator.publish(pending)
    return Revived(
        len(valid), len(dead) + len(unreadable), tuple(sorted({e.case_id for e in valid}))
    )


async def _still_dead(
    conn: Connection, dead: Sequence[Any], unreadable: Sequence[tuple[int, str, str]]
) -> None:
    """Letters that failed again: their newest reason, one more retry counted.

    A letter whose payload was left out (too large to keep) cannot be rebuilt from
    itself: it keeps its reason; the source row still has the payload.
    """
    ids = [r.event.event_id for r in dead] + [u[0] for u in unreadable]
    if not ids:
        return
    reasons = [str(r.reason) for r in dead] + [u[1] for u in unreadable]
    details = [r.detail for r in dead] + [u[2] for u in unreadable]
    await conn.execute(_STILL_DEAD, ids, reasons, details)
