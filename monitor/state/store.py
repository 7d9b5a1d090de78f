"""The state stage's store: a batch's events, dead letters and case rows, inside its transaction.

The thin I/O shell around ``monitor.state.reduce``: the caller (the
pipeline) opens one transaction per batch; in it the dead letters, the
events, the rebuilt row of every case the batch touched and the cursor past
it are written, so a crash at any instant resumes exactly at the last
commit, and replaying a batch changes nothing (every insert is keyed on the
source event id).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import trio

from monitor.db import Connection, json_dumps
from monitor.source.contract import (
    RAW_CHARS,
    START,
    Cursor,
    DeadReason,
    Matter,
    Rejection,
    SourceEvent,
    clip,
    event_from_row,
)
from monitor.state.case import CaseState, pauses_text
from monitor.state.reduce import Fold, advance, finish, fold, follows
from monitor.state.statements import (
    BATCH_WRITES,
    CASE_COLUMNS,
    CASE_ROWS_TABLE,
    COPY_COLUMNS,
    CREATE_CASE_ROWS,
    EVENT_COLUMNS,
    EVENTS_SQL,
    INSERT_DEAD,
    SAVE_CURSOR,
    STARTS,
    UPSERT_CASE_ROWS,
    UPSERT_CASES,
)

__all__ = [
    "ONE_STATEMENT_MAX_EVENTS",
    "OVERLAP_MIN_EVENTS",
    "SOURCE",
    "EventCopy",
    "FoldCache",
    "Taken",
    "load_cursor",
    "save_cursor",
    "sweep_orphans",
    "take",
    "write_dead",
]

SOURCE = "default"

EventCopy = Literal["stream", "send", "copy", "copy_new"]
"""How a batch's events reach ``jiancha.events``: streamed with a binary COPY (jiancha
in another database), sent as parameters skipping stored ones (the same, should one be
stored already), copied inside the server, or copied skipping stored ones."""


class FoldCache:
    """Write-through LRU of case folds (`monitor.state.reduce.Fold`), so a batch advances
    a case by its new events alone instead of re-reading and re-walking its history.

    Sound because one tailer owns its cases: nothing else writes
    ``jiancha.events`` for them. Entries change only after the transaction
    that wrote them committed (`Taken.publish`, after the commit), so a
    rolled-back batch leaves the cache as the database is.
    """

    def __init__(self, max_cases: int = 20_000) -> None:
        self.max_cases = max_cases
        self._cases: OrderedDict[str, tuple[dt.datetime, Fold]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cases)

    def get(self, case_id: str) -> tuple[dt.datetime, Fold] | None:
        entry = self._cases.get(case_id)
        if entry is not None:
            self._cases.move_to_end(case_id)
        return entry

    def put(self, case_id: str, first_seen: dt.datetime, done: Fold) -> None:
        self._cases[case_id] = (first_seen, done)
        self._cases.move_to_end(case_id)
        while len(self._cases) > self.max_cases:
            self._cases.popitem(last=False)

    def drop(self, case_ids: Sequence[str]) -> None:
        for case_id in case_ids:
            self._cases.pop(case_id, None)


async def load_cursor(conn: Connection, source: str = SOURCE) -> Cursor:
    row = await conn.fetchrow(
        "SELECT tx::text AS tx, event_id FROM jiancha.cursor WHERE source = $1", source
    )
    return START if row is None else Cursor(int(row["tx"]), int(row["event_id"]))


def _case_rows(
    states: Sequence[CaseState], first_seen: Mapping[str, dt.datetime], now: dt.datetime
) -> list[tuple[Any, ...]]:
    """The ``jiancha.cases`` rows of ``states``, in `CASE_COLUMNS` order."""
    return [
        (
            s.case_id, s.matter, s.department, s.window, s.region, s.channel, str(s.status),
            s.submitted_at, s.accepted_at, s.refused_at, s.decided_at, s.decision,
            s.completed_at, s.delivered_at, s.closed_at, s.immediate, s.promised_days,
            s.statutory_days, s.pledged_days, s.extension_days, s.extensions,
            s.supplement_requests, s.fees, s.rating, s.paused_since,
            pauses_text(s.pauses), s.clocks.as_text(), s.facts.as_text(),
            first_seen.get(s.case_id, now), s.event_count, s.last_event_id, now,
        )
        for s in states
    ]  # fmt: skip


def _case_columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The rows as one list per column: the parameters of `UPSERT_CASES`."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in CASE_COLUMNS]


# From this many cases on (a backlog's batch), their rows go by binary COPY into a
# temporary table of the session, then one INSERT ... SELECT: asyncpg checks every element
# of an array parameter against three ABCs, and 20,000 rows as 32 arrays cost the client
# 460-800 ms against 230-340 ms, the statement 1.4-2.1 s against 1.0-1.3 s (2026-12-07).
# Live batches are far smaller: no temporary table is made for them.
COPY_MIN_CASES = 1000


async def _store_cases(conn: Connection, rows: Sequence[tuple[Any, ...]], undecided: bool) -> None:
    """The case rows into ``jiancha.cases`` (inserted, or updated in place)."""
    if len(rows) < COPY_MIN_CASES:
        await conn.execute(UPSERT_CASES, *_case_columns(rows), undecided)
        return
    # made once per session, emptied at each commit (rolled back with its transaction)
    await conn.execute(CREATE_CASE_ROWS)
    await conn.copy_records(CASE_ROWS_TABLE, rows, columns=COPY_COLUMNS, schema="pg_temp")
    await conn.execute(UPSERT_CASE_ROWS, undecided)


# json_dumps writes a non-finite float as `Infinity`, which jsonb refuses.
_STRICT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _raw_json(r: Rejection) -> str:
    """The rejected row as jsonb takes it: a payload too large or holding a non-finite
    number is left out, so the dead letter itself cannot fail (the source row keeps it)."""
    raw = r.event.raw()
    if r.reason is not DeadReason.PAYLOAD_TOO_LARGE:
        try:
            return _STRICT(raw)
        except (ValueError, RecursionError):
            pass
    raw["payload"] = None
    raw["payload_left_out"] = f"{r.reason}: see case_events id {r.event.event_id}"
    return json_dumps(raw)


async def write_dead(conn: Connection, dead: Sequence[Rejection], now: dt.datetime) -> None:
    if not dead:
        return
    await conn.execute(
        INSERT_DEAD,
        [r.event.event_id for r in dead],
        [clip(r.event.case_id, RAW_CHARS) for r in dead],  # as in the raw row: no 8 KB keys
        [clip(r.event.kind, RAW_CHARS) for r in dead],
        [str(r.reason) for r in dead],
        [r.detail for r in dead],
        [_raw_json(r) for r in dead],
        now,
    )


_FAILED_ALIKE = """
WITH since AS (  -- the last event stored before this one
    SELECT coalesce(max(event_id), 0) AS lo FROM jiancha.events WHERE event_id < $1
), alike AS (
    SELECT d.case_id FROM jiancha.dead_letters d, since
    WHERE d.event_id < $1 AND d.event_id > since.lo AND d.reason = 'apply_failed'
      AND d.resolved_at IS NULL AND starts_with(d.detail, $2)
    ORDER BY d.event_id DESC LIMIT 1000
)
SELECT (SELECT count(DISTINCT c) FROM (SELECT case_id FROM alike UNION ALL SELECT $3) u(c))
           AS cases,
       (SELECT count(*) FROM alike) AS letters
"""


async def failed_alike(conn: Connection, before: int, prefix: str, case_id: str) -> tuple[int, int]:
    """Of the events since the last one stored before event ``before`` (by id), those
    dead-lettered for an error starting ``prefix``: how many cases they and ``case_id``
    are, and how many letters."""
    rows = await conn.fetch(_FAILED_ALIKE, before, prefix, case_id)  # one row, always
    return int(rows[0]["cases"]), int(rows[0]["letters"])


OVERLAP_MIN_EVENTS = 1000  # smaller batches (live ingest) are not worth a thread hop
# Below this many events (a live batch) the events, case rows and cursor go in one
# statement (`statements.BATCH_WRITES`): one round trip instead of three, and a live
# batch's time is mostly round trips through the bridge on a busy host.
ONE_STATEMENT_MAX_EVENTS = 1000


async def _store_events(
    conn: Connection,
    valid: Sequence[SourceEvent],
    dead: Sequence[Rejection],
    before: Cursor,
    after: Cursor,
    now: dt.datetime,
    copy: EventCopy,
) -> None:
    """The valid events into ``jiancha.events``: copied inside the server, or sent."""
    if copy == "stream":  # no ON CONFLICT: a stored one fails the batch, taken again as "send"
        await conn.copy_records(
            "events",
            [(e.event_id, e.tx, e.case_id, e.kind, e.occurred_at, e.payload, now) for e in valid],
            columns=EVENT_COLUMNS,
            schema="jiancha",
        )
        return
    await conn.execute(EVENTS_SQL[copy], *_event_args(valid, dead, before, after, now, copy))


def _event_args(
    valid: Sequence[SourceEvent],
    dead: Sequence[Rejection],
    before: Cursor,
    after: Cursor,
    now: dt.datetime,
    copy: EventCopy,
) -> tuple[Any, ...]:
    """The parameters of the statement that stores the events (`statements.EVENTS_SQL`)."""
    if copy in ("copy", "copy_new"):
        return (str(before.tx), before.event_id, str(after.tx), after.event_id,
                [r.event.event_id for r in dead], now)  # fmt: skip
    return (
        [e.event_id for e in valid],
        [str(e.tx) for e in valid],
        [e.case_id for e in valid],
        [e.kind for e in valid],
        [e.occurred_at for e in valid],
        [json_dumps(dict(e.payload)) for e in valid],
        now,
    )


@dataclass(frozen=True, slots=True)
class Taken:
    """The cases a batch touched: their new states, for the stages after this one."""

    states: list[CaseState]
    first_seen: Mapping[str, dt.datetime]
    folds: Mapping[str, Fold]
    rebuilt: int = 0  # cases walked from their whole history (not advanced)

    def publish(self, cache: FoldCache | None) -> None:
        """After commit: the folds the batch made are the cache's."""
        if cache is not None:
            for st in self.states:
                cid = st.case_id
                cache.put(cid, self.first_seen[cid], self.folds[cid])


async def _starts(
    conn: Connection,
    batch: dict[str, list[SourceEvent]],
    cache: FoldCache | None,
    now: dt.datetime,
) -> Starts:
    """Where each touched case's fold starts: the cached fold, when every new event sorts
    after its last one; else the whole history (stored, plus the batch) to walk again."""
    cached: dict[str, Fold] = {}
    histories: dict[str, list[SourceEvent]] = {}
    first_seen: dict[str, dt.datetime] = {}
    misses, late = [], []
    for cid, new in batch.items():
        entry = cache.get(cid) if cache is not None else None
        if entry is None:
            misses.append(cid)
            continue
        first_seen[cid] = entry[0]
        if follows(entry[1], new):
            cached[cid] = entry[1]
        else:
            late.append(cid)  # a late arrival (or a replay): walk the history again
    if misses or late:  # their first sight and stored history, in one round trip
        stored: dict[str, list[SourceEvent]] = {}
        for row in await conn.fetch(STARTS, misses + late):
            cid = row["case_id"]
            first_seen[cid] = row["first_seen_at"]
            events = stored.setdefault(cid, [])
            if row["event_id"] is not None:
                events.append(event_from_row(row))
        for cid, events in stored.items():  # this batch's events are stored by the caller
            histories[cid] = events + batch[cid]  # fold() drops replayed duplicates
    for cid in (*misses, *late):
        # A case without a row has no events stored before this batch: its case
        # row commits with its events, and the orphan sweep deletes both.
        if cid not in histories:
            first_seen.setdefault(cid, now)
            histories[cid] = batch[cid]
    return Starts(batch, cached, histories, first_seen)


@dataclass(frozen=True, slots=True)
class Starts:
    """The batch by case, and where each case's fold starts (`_starts`)."""

    batch: dict[str, list[SourceEvent]]
    cached: dict[str, Fold]
    histories: dict[str, list[SourceEvent]]
    first_seen: dict[str, dt.datetime]

    def reduce(
        self, matters: Mapping[str, Matter], now: dt.datetime
    ) -> tuple[list[CaseState], dict[str, Fold], list[tuple[Any, ...]]]:
        """The cases' new folds, states and rows: pure code, safe in a worker thread."""
        folds: dict[str, Fold] = {}
        touched = sorted(self.batch)
        for cid in touched:
            start = self.cached.get(cid)
            if start is None:
                folds[cid] = fold(cid, self.histories[cid])
            else:  # it follows (checked by _starts): advance cannot refuse
                done = advance(start, self.batch[cid])
                assert done is not None
                folds[cid] = done
        states = [finish(folds[cid], matters) for cid in touched]
        return states, folds, _case_rows(states, self.first_seen, now)


async def take(
    conn: Connection,
    valid: Sequence[SourceEvent],
    dead: Sequence[Rejection],
    before: Cursor,
    after: Cursor,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    *,
    cache: FoldCache | None = None,
    copy: EventCopy = "send",
    undecided: bool = False,
    cursor: tuple[str, int] | None = None,
) -> Taken:
    """Inside the caller's transaction: store ``valid``, advance and store every case it
    touches, marked ``undecided`` when no decision follows in this transaction.

    ``before`` and ``after`` bound the source range the events were read
    from (``copy`` other than ``send`` copies that range inside the server,
    leaving out ``dead``). ``cursor`` (source, events taken): save the cursor at
    ``after`` too; a small batch then writes its events, cases and cursor in one
    statement (`statements.BATCH_WRITES`). Call `Taken.publish` once the transaction
    commits.
    """
    batch: dict[str, list[SourceEvent]] = {}
    for e in valid:
        batch.setdefault(e.case_id, []).append(e)
    starts = await _starts(conn, batch, cache, now)
    reduce = partial(starts.reduce, matters, now)
    store = partial(_store_events, conn, valid, dead, before, after, now, copy)
    if len(valid) >= OVERLAP_MIN_EVENTS:
        # The server stores the events while a worker thread reduces the cases (pure
        # code, on data no one else touches): the drain's CPU time was half spent
        # waiting for that statement.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            states, folds, rows = await trio.to_thread.run_sync(reduce)
    elif cursor is not None and len(valid) < ONE_STATEMENT_MAX_EVENTS:
        states, folds, rows = reduce()
        await conn.execute(
            BATCH_WRITES[copy],
            *_event_args(valid, dead, before, after, now, copy),
            *_case_columns(rows), undecided,
            cursor[0], str(after.tx), after.event_id, cursor[1], now,
        )  # fmt: skip
        return Taken(states, starts.first_seen, folds, len(starts.histories))
    else:
        await store()
        states, folds, rows = reduce()
    await _store_cases(conn, rows, undecided)
    if cursor is not None:
        await save_cursor(conn, after, cursor[1], now, cursor[0])
    return Taken(states, starts.first_seen, folds, len(starts.histories))


_UNDECIDED = (
    "SELECT case_id, last_event_id, event_count FROM jiancha.cases WHERE undecided "
    "AND case_id > $2 ORDER BY case_id LIMIT $1"
)
# (a case whose figures were written has its mark cleared by that write already)
_DECIDED = (
    "UPDATE jiancha.cases SET undecided = false WHERE case_id = ANY($1::text[]) AND undecided"
)


async def undecided_marks(
    conn: Connection, limit: int, after: str = ""
) -> list[tuple[str, int, int]]:
    """Cases a backlog's batches stored without deciding (migration 0016), ``limit`` of
    them after the case ``after``: (case, last event id, event count), what tells a kept
    view is still the row's."""
    return [(r[0], r[1], r[2]) for r in await conn.fetch(_UNDECIDED, limit, after)]


async def undecided_count(conn: Connection) -> int:
    """How many cases wait to be decided (their partial index: no scan of the cases)."""
    return int(await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided"))


async def mark_decided(conn: Connection, case_ids: Sequence[str]) -> None:
    """In the transaction that decided them."""
    await conn.execute(_DECIDED, list(case_ids))


async def save_cursor(
    conn: Connection, cursor: Cursor, events: int, now: dt.datetime, source: str = SOURCE
) -> None:
    """Where the next batch starts, in the batch's transaction."""
    await conn.execute(SAVE_CURSOR, source, str(cursor.tx), cursor.event_id, events, now)


_ORPHANS = """
SELECT case_id FROM jiancha.cases
WHERE status = 'orphan' AND first_seen_at < $1
ORDER BY case_id LIMIT $2
"""
_ORPHAN_EVENTS = """
DELETE FROM jiancha.events WHERE case_id = ANY($1::text[])
RETURNING event_id, tx::text AS tx, case_id, kind, occurred_at, payload
"""


async def sweep_orphans(
    conn: Connection,
    now: dt.datetime,
    grace: dt.timedelta,
    *,
    limit: int = 10_000,
    cache: FoldCache | None = None,
) -> int:
    """Dead-letter the events of cases never submitted within ``grace`` of first sight.

    Returns how many events moved. A ``submitted`` that turns up later starts
    the case afresh; the moved events stay visible in ``jiancha.dead_letters``.
    """
    async with conn.transaction():
        rows = await conn.fetch(_ORPHANS, now - grace, limit)
        ids = [r["case_id"] for r in rows]
        if not ids:
            return 0
        moved = [event_from_row(r) for r in await conn.fetch(_ORPHAN_EVENTS, ids)]
        detail = f"no `submitted` within {grace}"
        await write_dead(
            conn, [Rejection(e, DeadReason.NEVER_SUBMITTED, detail) for e in moved], now
        )
        await conn.execute("DELETE FROM jiancha.cases WHERE case_id = ANY($1::text[])", ids)
    if cache is not None:
        cache.drop(ids)
    return len(moved)
