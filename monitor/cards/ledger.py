"""The daemon's writes to the card ledger, inside the caller's transaction.

Every write is keyed so that a replay changes nothing: a live card is unique
on (case, clock, rule, subject, level), one crossing (that key and its
issued_at) is carded once whatever happened to the card since, and the
daemon's own steps (issued, closed, revoked, escalated) are unique per card.
Human steps (acknowledge, appeal, decide) are in ``monitor.cards.lifecycle``.
`DbStore` is the `Store` the pipeline decides through when the ledger is the
database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import numpy as np

from monitor.calendar import Calendar
from monitor.cards.store import CardRecord, Written
from monitor.clocks.timing import from_epoch
from monitor.db import Connection, json_dumps
from monitor.engine.cards import Decided, ExistingCard, NewCard
from monitor.rules.model import RuleSet
from monitor.state.view import VIEW_COLUMNS, CaseView
from monitor.vocab import OPEN_STATUSES, level_name, level_number

__all__ = ["DbStore", "cards_of", "escalate", "next_reply_due", "reply_deadlines", "write"]

ACTOR = "jiancha"

# the issue time as UTC seconds, as the engine counts (epoch() truncates: so does floor)
_LOAD = """
SELECT id, case_id, clock, rule, level, status, floor(extract(epoch FROM issued_at))::int8,
       subject
FROM jiancha.cards WHERE case_id = ANY($1::text[])
"""


def _numbered_from(sql: str, first: int) -> str:
    """``sql`` with its parameters $1, $2, ... numbered from ``first``: one fragment in a
    statement of its own and after another's."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + first - 1}", sql)


# The new cards and their steps. A card for a period that already finished (a late
# completion) is inserted closed, with both steps. Instants go as UTC seconds: a
# datetime a card, made and encoded, cost more than the rest of its row.
_NEW = """
u AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[],
                         $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::timestamptz[], $16::text[], $17::text[])
         AS u(c, k, r, l, i, d, m, dp, w, rg, x, rd, s, shut)
), new AS (
    INSERT INTO jiancha.cards (case_id, clock, rule, subject, level, issued_at, recorded_at,
        deadline, matter, department, "window", region, ruleset, calendar, detail, reply_due,
        updated_at, status)
    SELECT c, k, r, s, l, to_timestamp(i), $15, to_timestamp(d), m, dp, w, rg, $13, $14,
           x::jsonb, rd, $15, CASE WHEN shut IS NULL THEN 'issued' ELSE 'closed' END
    FROM u
    ON CONFLICT DO NOTHING  -- a live card of the key, or this very crossing, is there
    RETURNING id, case_id, clock, rule, subject, level, issued_at, status
), ev AS (
    INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason, detail)
    SELECT id, 'issued', $15, 'jiancha', '', '{}'::jsonb FROM new
    UNION ALL  -- once a card, should the same crossing come twice
    SELECT DISTINCT ON (n.id) n.id, 'closed', $15, 'jiancha', u.shut,
           jsonb_build_object('effective_at', least(n.issued_at, $15))
    FROM new n JOIN u ON (u.c, u.k, u.r, u.s, u.l) = (n.case_id, n.clock, n.rule, n.subject,
                                                     n.level)
                     AND to_timestamp(u.i) = n.issued_at
    WHERE n.status = 'closed'
)"""
_ISSUED = """id, case_id, clock, rule, level, floor(extract(epoch FROM issued_at))::int8, subject,
       status"""

# Revocations and closings of stored cards, and the cases' figure columns. A step's `at`
# is when jiancha recorded it; the business instant it answers (the period's stop) rides
# in `detail`, so the ledger does not depend on batch boundaries. The parts touch
# different rows (a card both revoked and closed is only revoked, see `_changes`) or
# another table. $13: the cases were stored undecided (a backlog's), and the same write
# clears their mark.
_CHANGES = """
rv AS (
    UPDATE jiancha.cards SET status = 'revoked', updated_at = $7
    FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(card, why, at)
    WHERE id = u.card AND status = ANY($8::text[])
    RETURNING id, u.why AS why, u.at AS at
), cl AS (
    UPDATE jiancha.cards SET status = 'closed', updated_at = $7
    FROM unnest($4::bigint[], $5::text[], $6::timestamptz[]) AS u(card, why, at)
    WHERE id = u.card AND status = ANY($9::text[])
    RETURNING id, u.why AS why, u.at AS at
), steps AS (
    INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason, detail)
    SELECT id, 'revoked', $7, 'jiancha', why, jsonb_build_object('effective_at', least(at, $7))
    FROM rv
    UNION ALL
    SELECT id, 'closed', $7, 'jiancha', why, jsonb_build_object('effective_at', least(at, $7))
    FROM cl
    ON CONFLICT DO NOTHING
    RETURNING kind
), figures AS (
    UPDATE jiancha.cases SET decision_deadline = u.d, outcome = nullif(u.o, ''),
                             undecided = undecided AND NOT $13
    FROM unnest($10::text[], $11::timestamptz[], $12::text[]) AS u(c, d, o)
    WHERE case_id = u.c
      AND (($13 AND undecided)
           OR (decision_deadline, outcome) IS DISTINCT FROM (u.d, nullif(u.o, '')))
)"""
_CHANGED = """SELECT count(*) FILTER (WHERE kind = 'revoked') AS revoked,
       count(*) FILTER (WHERE kind = 'closed') AS closed
FROM steps"""

_TRANSITIONS = f"WITH {_CHANGES}\n{_CHANGED}\n"
_INSERT = f"WITH {_NEW}\nSELECT {_ISSUED} FROM new\n"
# Both in one round trip when no new card takes a key a revocation frees: then the order
# of the parts changes nothing (a closed card keeps its key, whichever the insert sees).
# One row per new card, or one of NULLs, each with the counts of the changes.
_WRITE = f"""WITH {_CHANGES},{_numbered_from(_NEW, 14)}
SELECT k.revoked, k.closed, {_ISSUED} FROM ({_CHANGED}) k LEFT JOIN new ON true
"""

_ESCALATE = """
WITH due AS (
    UPDATE jiancha.cards SET escalated_at = $1, updated_at = $1
    WHERE reply_due <= $1 AND replied_at IS NULL AND escalated_at IS NULL
      AND status = ANY($2::text[])
    RETURNING id, case_id, clock, rule, level, issued_at, deadline, matter, department,
              "window", detail, reply_due
), ev AS (
    INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason, detail)
    SELECT id, 'escalated', $1, 'jiancha', 'supervision_reply_missed',
           jsonb_build_object('reply_due', reply_due) FROM due
    ON CONFLICT DO NOTHING
)
SELECT * FROM due
"""

_NEXT_REPLY = """
SELECT min(reply_due) FROM jiancha.cards
WHERE reply_due IS NOT NULL AND replied_at IS NULL AND escalated_at IS NULL
  AND status = ANY($1::text[])
"""


def _existing(rows: Sequence[Sequence[Any]]) -> list[ExistingCard]:
    """``_LOAD``'s rows."""
    return [ExistingCard(r[0], r[1], r[2], r[3], level_number(r[4]), r[5], r[6], r[7])
            for r in rows]  # fmt: skip


async def cards_of(conn: Connection, case_ids: Sequence[str]) -> dict[str, list[ExistingCard]]:
    """The ledger's cards of these cases, by case."""
    out: dict[str, list[ExistingCard]] = {cid: [] for cid in case_ids}
    if case_ids:
        for card in _existing(await conn.fetch(_LOAD, list(case_ids))):
            out.setdefault(card.case_id, []).append(card)
    return out


async def write(
    conn: Connection,
    decided: Decided,
    ruleset: RuleSet,
    cal: Calendar,
    now: dt.datetime,
    *,
    undecided: bool = False,
) -> Written:
    """Issue, close and revoke cards and record the cases' figure columns; call inside the
    transaction that caused them. One statement, or two when a revoked card's key is
    issued again (revoked first: it frees the key); a live batch's four were a fifth of
    its round trips. ``undecided``: the cases were stored undecided; their mark goes."""
    changes, issue = _changes(decided, now, undecided), decided.issue
    revoked = closed = 0
    if not issue:
        if changes is not None:
            revoked, closed = await _changed(conn, changes)
        return Written([], closed, revoked)
    new = _new(decided, ruleset, cal, now)
    freed = {c.key for c in decided.revoke}
    if changes is None:
        rows = await conn.fetch(_INSERT, *new)
    elif None in freed or any(c.key in freed for c in issue):
        revoked, closed = await _changed(conn, changes)  # first: it frees the keys
        rows = await conn.fetch(_INSERT, *new)
    else:
        both = await conn.fetch(_WRITE, *changes, *new)
        revoked, closed = both[0][0], both[0][1]
        rows = [r[2:] for r in both if r[2] is not None]
    issued = [ExistingCard(r[0], r[1], r[2], r[3], level_number(r[4]), "issued", r[5], r[6])
              for r in rows]  # fmt: skip
    return Written(issued, closed + sum(r[7] == "closed" for r in rows), revoked)


async def _changed(conn: Connection, changes: tuple[Any, ...]) -> tuple[int, int]:
    """``_TRANSITIONS``: how many cards it revoked and closed."""
    row = await conn.fetchrow(_TRANSITIONS, *changes)
    assert row is not None  # an aggregate's one row
    return int(row[0]), int(row[1])


def _changes(decided: Decided, now: dt.datetime, undecided: bool) -> tuple[Any, ...] | None:
    """``_CHANGES``'s parameters; None when there is nothing to change."""
    revoke, outcomes = decided.revoke, decided.outcomes
    gone = {c.card_id for c in revoke}
    # a statement changes a row once: a card both revoked and closed is revoked, as when
    # the revocation came first and the closing then found no open card
    close = [c for c in decided.close if c.card_id not in gone]
    if not (revoke or close or outcomes):
        return None
    return (
        [c.card_id for c in revoke],
        [c.reason for c in revoke],
        [from_epoch(c.at) for c in revoke],
        [c.card_id for c in close],
        [c.reason for c in close],
        [from_epoch(c.at) for c in close],
        now,
        [*OPEN_STATUSES, "closed"],  # a card found wrong is revoked even once closed
        list(OPEN_STATUSES),
        list(outcomes),
        [None if d is None else from_epoch(d) for d, _ in outcomes.values()],
        [o for _, o in outcomes.values()],
        undecided,
    )


def _new(decided: Decided, ruleset: RuleSet, cal: Calendar, now: dt.datetime) -> tuple[Any, ...]:
    """``_NEW``'s parameters."""
    issue = decided.issue
    views = [decided.cases.get(c.case_id) for c in issue]
    return (
        [c.case_id for c in issue],
        [c.clock for c in issue],
        [c.rule for c in issue],
        [level_name(c.level) for c in issue],
        [c.issued_at for c in issue],
        [c.deadline for c in issue],
        [v.matter if v else None for v in views],
        [v.department if v else None for v in views],
        [v.window if v else None for v in views],
        [v.region if v else None for v in views],
        [json_dumps(dict(c.detail)) for c in issue],
        reply_deadlines(issue, ruleset, cal, now),
        ruleset.fingerprint,
        cal.fingerprint,
        now,
        [c.subject for c in issue],
        [c.close for c in issue],
    )


def reply_deadlines(
    issue: Sequence[NewCard], ruleset: RuleSet, cal: Calendar, now: dt.datetime
) -> list[dt.datetime | None]:
    """The supervision order's reply deadline of each card that carries one.

    Counted from when the order is written (a card caught up after downtime
    gets its full reply period), never from before the level became due.
    """
    out: list[dt.datetime | None] = [None] * len(issue)
    supervised = [i for i, c in enumerate(issue) if c.supervision and c.close is None]
    if supervised:
        written = int(now.timestamp())
        dues = cal.deadline(
            np.asarray(
                [max(issue[i].issued_at, written) for i in supervised], dtype="datetime64[s]"
            ),
            ruleset.supervision_reply_days,
            errors="nat",
        ).astype(np.int64)
        for i, due in zip(supervised, dues, strict=True):
            out[i] = None if due == np.iinfo(np.int64).min else from_epoch(int(due))
    return out


async def escalate(conn: Connection, now: dt.datetime) -> list[CardRecord]:
    """Escalate every open supervision order whose reply is overdue; the cards escalated."""
    return [
        CardRecord(r["id"], r["case_id"], r["clock"], r["rule"], r["level"], r["issued_at"],
                   r["deadline"], r["matter"], r["department"], r["window"], r["detail"] or {},
                   r["reply_due"])
        for r in await conn.fetch(_ESCALATE, now, ["issued", "appealed"])
    ]  # fmt: skip


async def next_reply_due(conn: Connection) -> dt.datetime | None:
    value: dt.datetime | None = await conn.fetchval(_NEXT_REPLY, ["issued", "appealed"])
    return value


_CASES = f"SELECT {VIEW_COLUMNS} FROM jiancha.cases WHERE case_id = ANY($1::text[])"
# Cases that may still have a running period, or have an open card to close or revoke:
# finished cases pile up over the years and have nothing left to schedule.
_OPEN_IDS = """
SELECT case_id FROM jiancha.cases
WHERE (status NOT IN ('withdrawn', 'terminated', 'orphan', 'refused')
       AND (completed_at IS NULL
            OR (decision = 'approve' AND delivered_at IS NULL)
            OR (clocks ? 'review' AND clocks->'review'->>'stop' IS NULL)
            OR jsonb_path_exists(clocks, '$.reviews[*] ? (@.stop == null)')))
   OR case_id IN (SELECT case_id FROM jiancha.cards
                  WHERE status IN ('issued', 'acknowledged', 'appealed'))
   OR decide_error IS NOT NULL  -- never decided since its error: maybe its completion
"""
_DECIDE_ERRORS = "SELECT case_id, decide_error FROM jiancha.cases WHERE decide_error IS NOT NULL"
_MARK_ERRORS = """
UPDATE jiancha.cases SET decide_error = u.e, decide_failed_at = $3
FROM unnest($1::text[], $2::text[]) AS u(c, e) WHERE case_id = u.c
"""
_CLEAR_ERRORS = """
UPDATE jiancha.cases SET decide_error = NULL, decide_failed_at = NULL
WHERE case_id = ANY($1::text[]) AND decide_error IS NOT NULL
"""


class DbStore:
    """The cases and the ledger in schema ``jiancha``, through one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.conn.transaction()

    async def cases(self, case_ids: Sequence[str]) -> list[CaseView]:
        return [CaseView.from_row(r) for r in await self.conn.fetch(_CASES, list(case_ids))]

    async def open_case_ids(self) -> list[str]:
        return [r["case_id"] for r in await self.conn.fetch(_OPEN_IDS)]

    async def cards_of(self, case_ids: Sequence[str]) -> dict[str, list[ExistingCard]]:
        return await cards_of(self.conn, case_ids)

    async def write(
        self,
        decided: Decided,
        ruleset: RuleSet,
        cal: Calendar,
        now: dt.datetime,
        *,
        undecided: bool = False,
    ) -> Written:
        return await write(self.conn, decided, ruleset, cal, now, undecided=undecided)

    async def escalate(self, now: dt.datetime) -> list[CardRecord]:
        return await escalate(self.conn, now)

    async def next_reply_due(self) -> dt.datetime | None:
        return await next_reply_due(self.conn)

    async def decide_errors(self) -> dict[str, str]:
        return {r["case_id"]: r["decide_error"] for r in await self.conn.fetch(_DECIDE_ERRORS)}

    async def record_decide_errors(
        self, failed: Mapping[str, str], cleared: Sequence[str], now: dt.datetime
    ) -> None:
        if failed:
            await self.conn.execute(_MARK_ERRORS, list(failed), list(failed.values()), now)
        if cleared:
            await self.conn.execute(_CLEAR_ERRORS, list(cleared))
