"""Where a batch becomes one transaction: state → clocks → engine → cards → outbox.

`apply_batch` takes the tailer's events: their dead letters, the events and
the rebuilt rows of the cases they touch (``monitor.state.store``), the cards
those cases are due now (`monitor.evaluator.Evaluator`, the engine's I/O
shell), the notifications of those cards, and the cursor past the batch all
commit together, so a crash at any instant resumes exactly at the last commit
and a replay changes nothing. The stages are called in flow order and hand
plain data forward; none of them calls another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import asyncpg

from monitor.db import Connection, code_error, data_error, only
from monitor.evaluator import Evaluator, Pending
from monitor.i18n import Lang, t
from monitor.log import get_logger, redact
from monitor.source.contract import (
    LIMITS,
    Cursor,
    DeadReason,
    Limits,
    Matter,
    Rejection,
    SourceEvent,
    clip,
    split,
)
from monitor.state import store as state_store

__all__ = ["CODE_FAULT_STREAK", "BatchResult", "CodeFault", "apply_batch"]

_log = get_logger("monitor.pipeline")


# --- a batch of source events ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchResult:
    events: int
    dead: int
    cases: int
    cursor: Cursor
    pending: Pending | None = None  # what the evaluator decided (published already)
    isolated: int = 0  # of `dead`: valid events that failed alone (``apply_failed``)


CODE_FAULT_STREAK = 3
"""Cases in a row whose events fail alone with one Python error: a fault of the code.

An event that passed validation and still makes jiancha's own code raise is a
bug met by that input. Met by one case (every event of it, since each rebuilds
the case), its events are set aside and the rest go on; met by every case, it
would set the whole stream aside, and cases whose decisions are set aside
would earn wrong red cards. So once events of this many cases in a row fail
alone alike (no event stored between them), the next one is not
dead-lettered: `CodeFault` is raised and the worker stops reading until it is
fixed.
"""


class CodeFault(Exception):
    """Events keep failing alone with the same error of jiancha's code (see above)."""

    def __init__(self, event_id: int, error: str, kept: int) -> None:
        super().__init__(f"events of {CODE_FAULT_STREAK} cases in a row failed alone with: "
                         f"{error}")  # fmt: skip
        self.event_id = event_id
        self.error = error
        self.kept = kept  # the events set aside before it was recognised

    def message(self, lang: Lang | None = None) -> str:
        """For people: what happened, that nothing is lost, and what to do."""
        return t("pipeline.code_fault", lang, streak=CODE_FAULT_STREAK, error=self.error,
                 event_id=self.event_id, kept=self.kept)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Fault:
    """Why a transaction failed for the data's sake: the error's text, and the type of
    the error jiancha's code raised over the data (None: the database refused a value)."""

    error: str
    code: str | None


@dataclass(frozen=True, slots=True)
class _Batch:
    """What every transaction of one batch shares (several, once it is split)."""

    conn: Connection
    matters: Mapping[str, Matter]
    now: dt.datetime
    evaluator: Evaluator | None
    cache: state_store.FoldCache | None
    from_source: bool
    future_tolerance: dt.timedelta
    source: str
    limits: Limits
    defer: bool
    live: dt.datetime | None  # decide as the tick would at this instant (`Evaluator.on_batch`)


async def apply_batch(
    conn: Connection,
    events: Sequence[SourceEvent],
    matters: Mapping[str, Matter],
    cursor: Cursor,
    now: dt.datetime,
    *,
    evaluator: Evaluator | None = None,
    cache: state_store.FoldCache | None = None,
    from_source: bool = False,
    future_tolerance: dt.timedelta = dt.timedelta(days=1),
    source: str = state_store.SOURCE,
    limits: Limits = LIMITS,
    defer: bool = False,
    live: dt.datetime | None = None,
) -> BatchResult:
    """Take ``events`` (in source order, right after ``cursor``) in one transaction.

    ``defer``: more events are visible (a backlog): the cases are stored
    undecided and decided once, after catching up (`Evaluator.decide_undecided`),
    not again in every batch that touches them. ``live``: the batch holds all
    that was visible when its read began, at ``live`` (`known_by`): its cases
    are decided as the tick after it would, once (see `Evaluator.on_batch`).

    ``from_source``: ``conn`` also reads ``case_events`` and ``events`` are
    exactly its rows after ``cursor`` up to the last of them, as the tailer
    reads them; the events are then copied inside the server. Otherwise they
    are streamed with a binary COPY. Should one of them be stored already (a
    second tailer, a cursor set back by hand), the event table's key stops
    the copy, and the batch is taken again skipping the stored events.

    Should the transaction fail for the data's sake (`monitor.db.data_error`:
    a value the database refuses, an error raised over it), one bad event
    must not hold up the others forever: the batch is split in halves, each
    its own transaction, down to the event that fails alone, which is
    dead-lettered as ``apply_failed`` with the error; the others commit and
    the cursor passes them all. Any other error (a lost connection) propagates.
    """
    b = _Batch(conn, matters, now, evaluator, cache, from_source, future_tolerance, source,
               limits, defer and evaluator is not None, live)  # fmt: skip
    return await _attempt(b, events, cursor)


async def _attempt(b: _Batch, events: Sequence[SourceEvent], cursor: Cursor) -> BatchResult:
    """``events`` in one transaction or, when that fails for the data's sake, bisected."""
    try:
        return await _take(b, events, cursor)
    except BaseException as exc:  # sorted below: only the data's fault is handled here
        error = data_error(exc)
        if error is None or not events:
            raise
        fault = _Fault(error, code_error(exc))
    return await _isolate(b, events, cursor, fault)


async def _take(b: _Batch, events: Sequence[SourceEvent], cursor: Cursor) -> BatchResult:
    """``events`` in one transaction (again, skipping stored events: see apply_batch)."""
    valid, dead = split(events, b.matters, b.now, b.future_tolerance, b.limits)
    first: state_store.EventCopy = "copy" if b.from_source else "stream"
    again: state_store.EventCopy = "copy_new" if b.from_source else "send"
    try:
        return await _apply(b, events, valid, dead, cursor, copy=first)
    except BaseException as exc:  # sorted below: only the event table's key is ours
        if only(exc, asyncpg.UniqueViolationError, constraint="events_pkey") is None:
            raise
    _log.warning("batch_retaken_skipping_stored_events", cursor_tx=cursor.tx,
                 cursor_id=cursor.event_id, events=len(events))  # fmt: skip
    return await _apply(b, events, valid, dead, cursor, copy=again)


async def _isolate(
    b: _Batch, events: Sequence[SourceEvent], cursor: Cursor, fault: _Fault
) -> BatchResult:
    """Halves of events that failed together, each its own transaction, down to the one
    that fails alone; it is dead-lettered, and only once it failed alone.

    When the first half commits, the second most likely holds what failed: it is
    split without being tried whole. A bad event among n then costs about
    log2(n) failed transactions of halving size.
    """
    if len(events) == 1:
        return await _dead_alone(b, events[0], fault)
    # a part does not hold all that was visible: its running levels are the tick's
    b = replace(b, live=None)
    mid = len(events) // 2
    one = await _attempt(b, events[:mid], cursor)
    rest = events[mid:]
    if one.isolated or len(rest) == 1:  # the first half held a bad one: the rest may be good
        two = await _attempt(b, rest, one.cursor)
    else:
        two = await _isolate(b, rest, one.cursor, fault)
    return BatchResult(one.events + two.events, one.dead + two.dead, one.cases + two.cases,
                       two.cursor, two.pending or one.pending,
                       one.isolated + two.isolated)  # fmt: skip


async def _dead_alone(b: _Batch, event: SourceEvent, fault: _Fault) -> BatchResult:
    """The event that fails alone: dead-lettered with the error, the cursor past it;
    unless the code failed alike on the events before it (`CODE_FAULT_STREAK`)."""
    detail = clip(redact({"error": fault.error})["error"], 1000)  # no secrets
    after = Cursor(event.tx, event.event_id)
    if fault.code is not None:  # the dead letters' detail starts with the error's type
        cases, kept = await state_store.failed_alike(b.conn, event.event_id, f"{fault.code}:",
                                                     event.case_id)  # fmt: skip
        if cases >= CODE_FAULT_STREAK:
            raise CodeFault(event.event_id, detail, kept)
    async with b.conn.transaction():
        rejection = Rejection(event, DeadReason.APPLY_FAILED, detail)
        await state_store.write_dead(b.conn, [rejection], b.now)
        await state_store.save_cursor(b.conn, after, 1, b.now, b.source)
    _log.error("event_isolated", event_id=event.event_id, reason=str(DeadReason.APPLY_FAILED),
               error=detail)  # fmt: skip
    return BatchResult(0, 1, 0, after, isolated=1)


async def _apply(
    b: _Batch,
    events: Sequence[SourceEvent],
    valid: Sequence[SourceEvent],
    dead: Sequence[Rejection],
    cursor: Cursor,
    *,
    copy: state_store.EventCopy,
) -> BatchResult:
    conn, now, cache, evaluator = b.conn, b.now, b.cache, b.evaluator
    after = Cursor.after(events, cursor)
    taken = None
    pending = None
    async with conn.transaction():
        await state_store.write_dead(conn, dead, now)
        if valid:
            taken = await state_store.take(conn, valid, dead, cursor, after, b.matters, now,
                                           cache=cache, copy=copy, undecided=b.defer,
                                           cursor=(b.source, len(events)))  # fmt: skip
            if evaluator is not None and not b.defer:
                pending = await evaluator.on_batch(conn, taken.states, b.matters, now,
                                                   live=b.live)  # fmt: skip
        elif events:
            await state_store.save_cursor(conn, after, len(events), now, b.source)
    if taken is not None:  # committed: publish
        taken.publish(cache)
    if evaluator is not None:
        evaluator.publish(pending)
        evaluator.undecided |= b.defer and taken is not None
        if taken is not None:
            if b.defer:
                evaluator.deferred.keep(taken.states)
            else:
                evaluator.deferred.forget(taken.states)
    cases = len(taken.states) if taken is not None else 0
    return BatchResult(len(valid), len(dead), cases, after, pending)
