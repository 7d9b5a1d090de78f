"""Cards at the right instant: the open clocks as columns, one numba pass, then sleep.

Every running period of every open case is one row of a columnar table. One
pass of the calendar kernel evaluates all rows at ``now`` and returns, per
row, the level due now and the next instant its level would rise. The
daemon sleeps until the earliest such instant (or the next event batch),
then hands the few rows whose level rose to the exact, pure engine
(``monitor.engine``), which decides the cards; the ledger writes them. No
timer polls every case.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from exporters.metrics import EVAL_BUCKETS
from monitor import ledger
from monitor.calendar import Calendar
from monitor.db import Connection
from monitor.engine import (
    NAT,
    CaseDecision,
    CaseView,
    Closing,
    ExistingCard,
    NewCard,
    Period,
    decide_cases,
    outcomes_of,
    thresholds,
)
from monitor.log import get_logger
from monitor.outbox import Notifier
from monitor.rules import RuleSet
from monitor.state import CaseState, Matter

_GROW = 1.5


def _earliest(instants: npt.NDArray[np.int64]) -> int | None:
    """The smallest instant, NaT (int64 minimum) ignored: as uint64, NaT sorts last."""
    if instants.size == 0:
        return None
    low = int(instants.view(np.uint64).min())
    return None if low == 1 << 63 else low


class ClockTable:
    """Running periods as columns for the kernel; slots are reused as cases change."""

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0  # high-water mark of used slots
        self._alloc(capacity)
        self.owner: list[tuple[str, str] | None] = [None] * capacity  # (case, rule) per slot
        self.by_case: dict[str, list[int]] = {}
        self.free: list[int] = []
        self.rows = 0  # slots in use (len(self)), kept rather than summed per snapshot

    def _alloc(self, n: int) -> None:
        self.start = np.zeros(n, dtype=np.int64)
        self.limit = np.zeros(n, dtype=np.int32)  # working days: int32 is plenty, and
        self.ext = np.zeros(n, dtype=np.int32)  # the pass reads 8 bytes less per clock
        self.paused = np.zeros(n, dtype=np.float64)
        self.since = np.full(n, NAT, dtype=np.int64)
        self.th = np.full((3, n), np.nan)  # blue, yellow, red: working days consumed
        self.issued = np.zeros(n, dtype=np.int8)  # highest level issued for the rule
        self.level = np.zeros(n, dtype=np.int8)  # level due at the row's last evaluation
        self.due = np.full(n, NAT, dtype=np.int64)  # when it next rises; 0: look at it now

    def _arrays(self) -> tuple[npt.NDArray[Any], ...]:
        return (self.start, self.limit, self.ext, self.paused, self.since, self.th, self.issued,
                self.level, self.due)  # fmt: skip

    def _grow(self, need: int) -> None:
        cap = self.start.shape[0]
        if need <= cap:
            return
        new = max(need, int(cap * _GROW) + 16)
        old = self._arrays()
        self._alloc(new)
        for dst, src in zip(self._arrays(), old, strict=True):
            dst[..., : src.shape[-1]] = src
        self.owner.extend([None] * (new - cap))

    def __len__(self) -> int:
        return self.rows

    def cases(self) -> int:
        return len(self.by_case)

    def _clear(self, slot: int) -> None:
        self.owner[slot] = None
        self.th[:, slot] = np.nan  # a free slot never comes due
        self.since[slot] = NAT
        self.issued[slot] = 0
        self.due[slot] = NAT
        self.free.append(slot)

    def drop(self, case_id: str) -> None:
        for slot in self.by_case.pop(case_id, []):
            self._clear(slot)
            self.rows -= 1

    def put(
        self,
        case_id: str,
        rows: Sequence[tuple[Period, float, int, int]],
        highest: Mapping[str, int],
    ) -> None:
        """Replace a case's rows: (period, closed pause days, open pause start, level seen)."""
        self.drop(case_id)
        if not rows:
            return
        slots = []
        for period, paused, since, seen in rows:
            if self.free:
                slot = self.free.pop()
            else:
                self._grow(self.size + 1)
                slot = self.size
                self.size += 1
            rule = period.rule
            self.owner[slot] = (case_id, rule.rule)
            self.start[slot] = period.start
            self.limit[slot] = period.limit
            self.ext[slot] = period.extension
            self.paused[slot] = paused
            self.since[slot] = since
            self.th[:, slot] = thresholds(rule, period.allowed)
            self.issued[slot] = max(highest.get(rule.rule, 0), seen)
            self.due[slot] = 0  # new or changed: evaluated by the next pass, full or not
            slots.append(slot)
        self.by_case[case_id] = slots
        self.rows += len(slots)

    def evaluate(
        self, cal: Calendar, now: int, *, full: bool = True
    ) -> tuple[npt.NDArray[np.intp], int | None]:
        """Slots whose level rose above what was issued, and the next instant one will.

        A full pass evaluates every row. Otherwise only the rows whose known
        next rise is due (or that changed since): without an event a row's
        level changes only at that instant, so the others cannot have risen.
        """
        n = self.size
        if n == 0:
            return np.empty(0, dtype=np.intp), None
        if full:
            cal.levels(
                self.start[:n], self.limit[:n], self.ext[:n], self.paused[:n], self.since[:n],
                now, self.th[0, :n], self.th[1, :n], self.th[2, :n], self.level[:n],
                self.due[:n],
            )  # fmt: skip
            rose = np.flatnonzero(self.level[:n] > self.issued[:n])
        else:
            # NaT (int64 minimum) read as uint64 is the largest value: never due
            slots = np.flatnonzero(self.due[:n].view(np.uint64) <= np.uint64(now))
            level, nxt = self._levels_of(slots, cal, now)
            self.level[slots] = level
            self.due[slots] = nxt
            rose = slots[level > self.issued[slots]]
        return rose, _earliest(self.due[:n])

    def _levels_of(
        self, slots: npt.NDArray[np.intp], cal: Calendar, now: int
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64]]:
        level = np.empty(slots.shape[0], dtype=np.int8)
        nxt = np.empty(slots.shape[0], dtype=np.int64)
        cal.levels(
            self.start[slots], self.limit[slots], self.ext[slots], self.paused[slots],
            self.since[slots], now, self.th[0, slots], self.th[1, slots], self.th[2, slots],
            level, nxt,
        )  # fmt: skip
        return level, nxt

    def mark_seen(self, slots: npt.NDArray[np.intp], cal: Calendar, now: int) -> None:
        """Rows the engine looked at and declined stay quiet until their level rises again."""
        if slots.size == 0:
            return
        level, nxt = self._levels_of(slots, cal, now)
        self.level[slots] = level
        self.due[slots] = nxt
        self.issued[slots] = np.maximum(self.issued[slots], level)

    def memory_bytes(self) -> int:
        return sum(a.nbytes for a in self._arrays())


@dataclass
class EngineStats:
    cards_issued: int = 0
    cards_closed: int = 0
    cards_revoked: int = 0
    escalated: int = 0
    ticks: int = 0
    last_tick_ms: float = 0.0
    issued_by_level: dict[str, int] = field(default_factory=dict)
    # cumulative histogram of tick durations: counts at or below each bound, then all
    tick_buckets: list[int] = field(default_factory=lambda: [0] * (len(EVAL_BUCKETS) + 1))
    tick_total: float = 0.0


@dataclass
class Pending:
    """What a transaction decided, published to memory only once it committed."""

    rows: dict[str, tuple[list[tuple[Period, float, int, int]], dict[str, int]]]
    now: int
    written: ledger.Written | None = None


class Store(Protocol):
    """Where cases are read and cards written: the database, or memory for a replay."""

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    async def cases(self, case_ids: Sequence[str] | None) -> list[CaseView]: ...

    async def cards_of(self, case_ids: Sequence[str]) -> dict[str, list[ExistingCard]]: ...

    async def write(
        self,
        issue: Sequence[NewCard],
        close: Sequence[Closing],
        revoke: Sequence[Closing],
        cases: Mapping[str, CaseView],
        ruleset: RuleSet,
        cal: Calendar,
        now: dt.datetime,
    ) -> ledger.Written: ...

    async def escalate(self, now: dt.datetime) -> int: ...

    async def next_reply_due(self) -> dt.datetime | None: ...

    async def record_outcomes(self, outcomes: Mapping[str, tuple[int | None, str]]) -> None: ...


class Evaluator:
    """The engine's I/O shell: decides on every batch and at every crossing instant."""

    def __init__(self, ruleset: RuleSet, cal: Calendar) -> None:
        self.ruleset = ruleset
        self.cal = cal
        self.table = ClockTable()
        self.stats = EngineStats()
        self.next_due: int | None = None  # UTC seconds of the next crossing
        self.next_reply: int | None = None  # next supervision-order reply deadline
        self.dirty = True  # rows changed since the last tick: their levels need a look
        self._full = True  # the next tick evaluates every row (after a start or a reload)
        self.notifier: Notifier | None = None  # queues notifications in the same transactions
        self._next: tuple[RuleSet, Calendar] | None = None  # validated, waiting to take over
        self._why: str | None = None  # revocation reason while recomputing after a change
        self.log = get_logger("monitor.evaluator")

    def _store(self, store: Store | Connection) -> Store:
        if isinstance(store, Connection):
            return ledger.DbStore(store, self.notifier)
        return store

    # --- deciding for a set of cases ----------------------------------------------

    def _decide(
        self,
        views: Sequence[CaseView],
        matters: Mapping[str, Matter],
        cards: Mapping[str, list[ExistingCard]],
        now: int,
        running: bool,
    ) -> tuple[list[CaseDecision], Pending]:
        decisions = []
        pending = Pending({}, now)
        inputs = [(v, matters.get(v.matter) if v.matter is not None else None,
                   cards.get(v.case_id, [])) for v in views]  # fmt: skip
        decided = decide_cases(inputs, self.ruleset, self.cal, now, running=running)
        # finished: record how, for the on-time and early rates (one calendar pass)
        done = [i for i, v in enumerate(views) if (v.clocks.get("decision") or {}).get("stop")]
        outcomes = outcomes_of([(views[i], inputs[i][1]) for i in done], self.cal)
        for i, got in zip(done, outcomes, strict=True):
            decided[i].outcome = got
        for (view, _matter, existing), d in zip(inputs, decided, strict=True):
            if self._why is not None:  # say what took the basis away
                d.revoke = [replace(c, reason=self._why) for c in d.revoke]
            decisions.append(d)
            highest: dict[str, int] = {}
            revoked = {c.card_id for c in d.revoke}  # by this decision: as a rebuild sees it
            for old in existing:
                if old.status != "revoked" and old.card_id not in revoked:
                    highest[old.rule] = max(highest.get(old.rule, 0), old.level)
            for new in d.issue:
                highest[new.rule] = max(highest.get(new.rule, 0), new.level)
            rows = []
            for p, rel in zip(d.running, d.running_pauses, strict=True):
                closed = sum(b - a for a, b, still_open in rel if not still_open)
                since = next((ps for (ps, pe) in p.pauses if pe is None and ps < now), NAT)
                rows.append((p, closed, since, 0))
            pending.rows[view.case_id] = (rows, highest)
        return decisions, pending

    async def _write(
        self,
        store: Store,
        decisions: Sequence[CaseDecision],
        views: Sequence[CaseView],
        now: dt.datetime,
    ) -> ledger.Written:
        issue = [c for d in decisions for c in d.issue]
        close = [c for d in decisions for c in d.close]
        revoke = [c for d in decisions for c in d.revoke]
        by_id = {v.case_id: v for v in views}
        written = await store.write(issue, close, revoke, by_id, self.ruleset, self.cal, now)
        outcomes = {v.case_id: d.outcome for v, d in zip(views, decisions, strict=True)
                    if d.outcome is not None and d.outcome[1]}  # fmt: skip
        if outcomes:
            await store.record_outcomes(outcomes)
        return written

    def publish(self, pending: Pending | None) -> None:
        """After commit: the decided rows and levels go into the table."""
        if pending is None:
            return
        for case_id, (rows, highest) in pending.rows.items():
            self.table.put(case_id, rows, highest)
        w = pending.written
        if w is not None:
            self.stats.cards_issued += len(w.issued)
            self.stats.cards_closed += w.closed
            self.stats.cards_revoked += w.revoked
            for card in w.issued:
                name = ("blue", "yellow", "red")[card.level - 1]
                self.stats.issued_by_level[name] = self.stats.issued_by_level.get(name, 0) + 1
            for card in w.issued:
                self.log.info(
                    "card_issued",
                    case=card.case_id,
                    clock=card.clock,
                    rule=card.rule,
                    level=card.level,
                    card=card.card_id,
                )
        # New rows wait with due = 0: the next tick (an incremental one) evaluates
        # them and folds their crossings into next_due.
        if pending.rows:
            self.dirty = True

    async def on_batch(
        self,
        store: Store | Connection,
        states: Sequence[CaseState],
        matters: Mapping[str, Matter],
        now: dt.datetime,
    ) -> Pending:
        """Inside the batch's transaction: the cards its cases are due now."""
        views = [CaseView.from_state(s) for s in states if str(s.status) != "orphan"]
        return await self.decide_views(self._store(store), views, matters, now, running=False)

    async def decide_views(
        self,
        store: Store,
        views: Sequence[CaseView],
        matters: Mapping[str, Matter],
        now: dt.datetime,
        *,
        running: bool,
    ) -> Pending:
        """Decide and write the cards of these cases (inside the caller's transaction)."""
        cards = await store.cards_of([v.case_id for v in views])
        decisions, pending = self._decide(views, matters, cards, int(now.timestamp()), running)
        pending.written = await self._write(store, decisions, views, now)
        return pending

    async def reload_cases(
        self,
        store: Store | Connection,
        case_ids: Sequence[str] | None,
        matters: Mapping[str, Matter],
        now: dt.datetime,
        running: bool = True,
    ) -> Pending:
        """Re-decide cases as stored (all open ones when None), in the caller's transaction."""
        st = self._store(store)
        views = await st.cases(case_ids)
        return await self.decide_views(st, views, matters, now, running=running)

    # --- the scheduler --------------------------------------------------------------

    async def start(
        self, store: Store | Connection, matters: Mapping[str, Matter], now: dt.datetime
    ) -> None:
        """Build the table from every open case (recomputed on the rules and calendar in force).

        Levels that came due while the daemon was away are issued by the first
        tick, once the tailer has caught up with the events of that time.
        """
        self.table = ClockTable()
        st = self._store(store)
        async with st.transaction():
            pending = await self.reload_cases(st, None, matters, now, running=False)
        self.publish(pending)
        self.dirty = True
        self._full = True

    async def resume(
        self,
        store: Store | Connection,
        matters: Mapping[str, Matter],
        now: dt.datetime,
        table: ClockTable,
        changed: Sequence[str],
    ) -> None:
        """Take a saved table and re-decide only the cases changed since it was saved."""
        self.table = table
        st = self._store(store)
        pending = None
        if changed:
            async with st.transaction():
                pending = await self.reload_cases(st, list(changed), matters, now, running=False)
            for case_id in set(changed) - set(pending.rows):  # gone from jiancha.cases
                self.table.drop(case_id)
        self.publish(pending)
        self.dirty = True
        self._full = True

    async def tick(
        self, store: Store | Connection, matters: Mapping[str, Matter], now: dt.datetime
    ) -> None:
        """One kernel pass at ``now``: issue what came due, escalate missed replies."""
        t0 = time.perf_counter()
        st = self._store(store)
        if self._next is not None:
            await self._swap(st, matters, now)
        n = int(now.timestamp())
        rose, self.next_due = self.table.evaluate(self.cal, n, full=self._full)
        self._full = False
        cases = sorted({o[0] for s in rose if (o := self.table.owner[s]) is not None})
        async with st.transaction():
            pending = await self.reload_cases(st, cases, matters, now) if cases else None
            escalated = await st.escalate(now)
            reply = await st.next_reply_due()
        self.publish(pending)  # folds the re-decided rows' next crossings into next_due
        if cases:  # anything the engine declined stays quiet until it rises again
            declined = np.asarray(
                [s for cid in cases for s in self.table.by_case.get(cid, [])], dtype=np.intp
            )
            self.table.mark_seen(declined, self.cal, n)
        self.next_reply = None if reply is None else int(reply.timestamp())
        self.stats.escalated += escalated
        if escalated:
            self.log.warning("supervision_escalated", cards=escalated)
        self.dirty = False
        self.stats.ticks += 1
        took = time.perf_counter() - t0
        self.stats.last_tick_ms = took * 1000
        self.stats.tick_total += took
        buckets = self.stats.tick_buckets
        for i, bound in enumerate(EVAL_BUCKETS):
            if took <= bound:
                buckets[i] += 1
        buckets[-1] += 1

    def pending_reload(self) -> bool:
        """New rules or a new calendar wait for the next tick (the table is about to go)."""
        return self._next is not None

    def request_reload(self, ruleset: RuleSet, cal: Calendar) -> bool:
        """Take already-validated rules and calendar at the next tick; False if unchanged."""
        if (ruleset.fingerprint, cal.fingerprint) == (
            self.ruleset.fingerprint,
            self.cal.fingerprint,
        ):
            return False
        self._next = (ruleset, cal)
        return True

    async def _swap(self, store: Store, matters: Mapping[str, Matter], now: dt.datetime) -> None:
        """Recompute every open clock on the new rules or calendar; revoke what lost its basis."""
        assert self._next is not None
        old = (self.ruleset.fingerprint, self.cal.fingerprint)
        self.ruleset, self.cal = self._next
        self._next = None
        self._why = "calendar_changed" if old[0] == self.ruleset.fingerprint else "rules_changed"
        try:
            await self.start(store, matters, now)
        finally:
            self._why = None
        self.log.info(
            "rules_reloaded",
            rules=self.ruleset.name,
            rules_hash=self.ruleset.fingerprint,
            calendar=self.cal.name,
            calendar_hash=self.cal.fingerprint,
            open_clocks=len(self.table),
        )

    def wake_at(self) -> int | None:
        """UTC seconds of the next instant something comes due, if any."""
        times = [t for t in (self.next_due, self.next_reply) if t is not None]
        return min(times) if times else None

    def due(self, now: dt.datetime) -> bool:
        """Whether a tick has work at ``now``."""
        at = self.wake_at()
        return self.dirty or self._next is not None or (at is not None and at <= now.timestamp())


__all__ = ["ClockTable", "EngineStats", "Evaluator", "Pending", "Store"]
