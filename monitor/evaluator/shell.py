"""`Evaluator`: decides the cases of a batch, a tick, a start or a backlog through the pure
engine, writes the ledger and the outbox in the caller's transaction, and tells the
scheduler once it committed."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial

import trio

from monitor.calendar import Calendar
from monitor.calendar.regions import Regions
from monitor.cards.ledger import DbStore
from monitor.cards.store import CardRecord, Store, Written
from monitor.clocks.scheduler import Scheduler
from monitor.clocks.table import ClockTable
from monitor.db import Connection
from monitor.engine.apart import DecideError, decide_apart
from monitor.engine.cards import CaseDecision, Decided, ExistingCard
from monitor.engine.decide import decide_cases
from monitor.engine.warm import warm_cases
from monitor.evaluator.deferred import Chunk, DeferredViews, decide_in_thread
from monitor.evaluator.parts import (
    CardStats,
    Pending,
    collector_paused,
    highest_levels,
    rows_of,
)
from monitor.i18n import t
from monitor.log import get_logger
from monitor.outbox.enqueue import Notifier, card_facts, escalation_facts
from monitor.rules.model import RuleSet
from monitor.source.contract import Matter
from monitor.state import store as state_store
from monitor.state.case import CaseState
from monitor.state.view import CaseView
from monitor.vocab import level_name

__all__ = ["Evaluator"]

_Decided = tuple[list[CaseDecision | None], Pending]


class Evaluator:
    """Decides on every batch and at every crossing instant; one per daemon (or replay)."""

    def __init__(
        self,
        ruleset: RuleSet,
        cal: Calendar,
        *,
        notifier: Notifier | None = None,
        regions: Regions | None = None,
    ):
        self.ruleset = ruleset
        self.cal = cal
        self.regions = regions if regions is not None else Regions(cal)
        self.scheduler = Scheduler()
        self.stats = CardStats()
        self.notifier = notifier  # queues notifications in the same transactions
        self._next: tuple[RuleSet, Calendar, Regions] | None = None  # validated, to take over
        self._why: str | None = None  # revocation reason while recomputing after a change
        # cases may be stored undecided (a backlog's batches; a crash before they were
        # decided): unknown at a start, so looked for once
        self.undecided = True
        self.deferred = DeferredViews()  # what a backlog's batches stored undecided
        self.beat: Callable[[], None] = lambda: None  # the owner's heartbeat, for long passes
        # cases marked with the engine's error (`DecideError`), as stored; read once
        self.errors: dict[str, str] | None = None
        self.log = get_logger("monitor.evaluator")

    @property
    def table(self) -> ClockTable:
        return self.scheduler.table

    def _store(self, store: Store | Connection) -> Store:
        return DbStore(store) if isinstance(store, Connection) else store

    # --- deciding for a set of cases ----------------------------------------------

    @collector_paused()  # a decorator: each call pauses the collector anew
    def _decide(
        self,
        views: Sequence[CaseView],
        matters: Mapping[str, Matter],
        cards: Mapping[str, list[ExistingCard]],
        now: int,
        running: bool,
        figures: bool,
    ) -> tuple[list[CaseDecision | None], Pending]:
        """Each case's decision, None for one the engine raised on (`Pending.failed`): it
        leaves the table (nothing is judged on rows its decision did not make)."""
        pending = Pending({}, now)
        inputs = [(v, matters.get(v.matter) if v.matter is not None else None,
                   cards.get(v.case_id, [])) for v in views]  # fmt: skip
        decided: list[CaseDecision | None] = [None] * len(views)
        # each case on its region's calendar: one calendar pass per calendar
        groups: dict[str, list[int]] = {}
        for i, v in enumerate(views):
            key = self.regions.key_of(v.region)
            groups.setdefault(key, []).append(i)
            if key:
                pending.where[v.case_id] = key
        for key, idx in groups.items():
            cal = self.regions.for_region(key) if key else self.cal
            # a batch: every case's part in the figures too (deadline, outcome); a tick
            # brings no new fact, so no case's part in them changed (``figures``)
            got, failed = decide_apart([inputs[i] for i in idx], self.ruleset, cal, now,
                                       running=running, figures=figures)  # fmt: skip
            pending.failed += failed
            for i, d in zip(idx, got, strict=True):
                decided[i] = d
        for (view, _matter, existing), d in zip(inputs, decided, strict=True):
            if d is None:
                pending.rows[view.case_id] = ([], {})
                pending.wakes[view.case_id] = None
                continue
            if self._why is not None:  # say what took the basis away
                d.revoke = [replace(c, reason=self._why) for c in d.revoke]
            pending.rows[view.case_id] = (rows_of(d, now), highest_levels(existing, d))
            pending.wakes[view.case_id] = d.wake_at
        return decided, pending

    async def _write(
        self,
        store: Store,
        decisions: Sequence[CaseDecision],
        views: Sequence[CaseView],
        matters: Mapping[str, Matter],
        now: dt.datetime,
        undecided: bool = False,
    ) -> Written:
        decided = Decided.of(decisions, views)
        written = await store.write(decided, self.ruleset, self.cal, now, undecided=undecided)
        if written.issued and self.notifier is not None and store.conn is not None:
            lang = self.notifier.cfg.language
            facts = card_facts(written.issued, decided, self.ruleset, matters, lang, self.cal, now)
            await self.notifier.enqueue(store.conn, [(f, "card") for f in facts], now)
        return written

    async def _escalate(self, store: Store, matters: Mapping[str, Matter],
                        now: dt.datetime) -> list[CardRecord]:  # fmt: skip
        escalated = await store.escalate(now)
        if escalated and self.notifier is not None and store.conn is not None:
            facts = escalation_facts(escalated, self.ruleset, matters, self.notifier.cfg.language)
            await self.notifier.enqueue(store.conn, [(f, "escalation") for f in facts], now)
        return escalated

    def warm(self, now: dt.datetime) -> float:
        """Decide made-up cases of every kind on every calendar (`monitor.engine.warm`), so
        numba loads its kernels now rather than in a real case's batch; ms taken."""
        started = time.perf_counter()
        at = int(now.timestamp())
        inputs = warm_cases(now)
        regional = dict(self.regions.regional())
        with collector_paused():
            for cal in (self.cal, *regional.values()):
                got = decide_cases(inputs, self.ruleset, cal, at, running=True, figures=True)
                none: dict[tuple[str, str], int] = {}  # no level issued yet
                rows = {v.case_id: (rows_of(d, at), none)
                        for (v, _, _), d in zip(inputs, got, strict=True)}  # fmt: skip
                scratch = Scheduler()  # the table's own pass, never the real table
                scratch.put_settled(rows, {}, {}, cal, at)
                scratch.rising(cal, at)
        return (time.perf_counter() - started) * 1000

    def publish(self, pending: Pending | None) -> None:
        """After commit: the decided rows and levels go into the scheduler's table."""
        if pending is None:
            return
        if pending.settle:
            self.scheduler.put_settled(pending.rows, pending.where, pending.wakes, self.cal,
                                       pending.now, dict(self.regions.regional()))  # fmt: skip
        else:
            self.scheduler.put(pending.rows, pending.where, pending.wakes)
        if pending.failed or pending.cleared:
            self._errors_published(pending.failed, pending.cleared)
        w = pending.written
        if w is None:
            return
        self.stats.cards_issued += len(w.issued)
        self.stats.last_card_id = max([self.stats.last_card_id, *(c.card_id for c in w.issued)])
        self.stats.cards_closed += w.closed
        self.stats.cards_revoked += w.revoked
        log = self.log.bind()  # once: the proxy binds again at every call (15 µs a card)
        for card in w.issued:
            name = level_name(card.level)
            self.stats.issued_by_level[name] = self.stats.issued_by_level.get(name, 0) + 1
            log.info("card_issued", case=card.case_id, clock=card.clock, rule=card.rule,
                     level=card.level, card=card.card_id)  # fmt: skip

    def _errors_published(self, failed: Sequence[DecideError], cleared: Sequence[str]) -> None:
        """One line for the cases a transaction could not decide (not one per case: a defect
        every case meets is thousands at a start), one for those decided again."""
        errors = self.errors if self.errors is not None else {}  # read by `_mark_errors`
        for cid in cleared:
            errors.pop(cid, None)
        errors.update((f.case_id, f.text) for f in failed)
        self.errors = errors
        self.stats.not_decided = len(errors)
        if cleared:
            self.log.info("cases_decided_again", cases=len(cleared), case_ids=list(cleared[:20]))
        if failed:
            kinds = Counter(type(f.exc).__name__ for f in failed)
            first = failed[0]
            self.log.error("cases_not_decided", cases=len(failed),
                           case_ids=[f.case_id for f in failed[:20]], errors=dict(kinds),
                           message=t("engine.not_decided", "zh", cases=len(failed),
                                     case=first.case_id, error=first.text),
                           message_en=t("engine.not_decided", "en", cases=len(failed),
                                        case=first.case_id, error=first.text),
                           exc_info=first.exc)  # fmt: skip

    async def on_batch(
        self,
        store: Store | Connection,
        states: Sequence[CaseState],
        matters: Mapping[str, Matter],
        now: dt.datetime,
        *,
        live: dt.datetime | None = None,
    ) -> Pending:
        """Inside the batch's transaction: the cards its cases are due now.

        A batch in a backlog leaves the levels of running periods to the tick after
        the catch-up (its cases' stop may be in the next batch). ``live``: the batch
        took everything visible when its read began, at ``live``; its cases are
        decided as the tick right after it would, at that instant, and the tick does
        not read them back (it did every one, twice a batch).
        """
        views = [CaseView.from_state(s) for s in states if str(s.status) != "orphan"]
        if live is None:
            return await self.decide_views(self._store(store), views, matters, now, running=False)
        pending = await self.decide_views(self._store(store), views, matters, live, running=True,
                                          figures=True)  # fmt: skip
        pending.settle = True
        return pending

    async def decide_views(
        self,
        store: Store,
        views: Sequence[CaseView],
        matters: Mapping[str, Matter],
        now: dt.datetime,
        *,
        running: bool,
        figures: bool | None = None,
        undecided: bool = False,
    ) -> Pending:
        """Decide and write the cards of these cases (inside the caller's transaction).

        ``figures``: their part in the figures too (default: when not ``running``,
        i.e. for new facts). ``undecided``: cases a backlog stored undecided, whose
        mark the write of their figures clears.
        """
        cards = await store.cards_of([v.case_id for v in views])
        got, pending = self._decide(views, matters, cards, int(now.timestamp()), running,
                                    not running if figures is None else figures)  # fmt: skip
        await self._commit(store, views, got, pending, matters, now, undecided)
        return pending

    async def _commit(
        self,
        store: Store,
        views: Sequence[CaseView],
        got: Sequence[CaseDecision | None],
        pending: Pending,
        matters: Mapping[str, Matter],
        now: dt.datetime,
        undecided: bool,
    ) -> None:
        """The cards of decided cases and the marks of those the engine raised on."""
        done = [(v, d) for v, d in zip(views, got, strict=True) if d is not None]
        pending.written = await self._write(store, [d for _, d in done], [v for v, _ in done],
                                            matters, now, undecided)  # fmt: skip
        await self._mark_errors(store, pending, [v.case_id for v, _ in done], now)

    async def _mark_errors(
        self, store: Store, pending: Pending, done: Sequence[str], now: dt.datetime
    ) -> None:
        """The rows of cases the engine raised on say so; those decided again, no longer."""
        errors = self.errors if self.errors is not None else await self._load_errors(store)
        pending.cleared = [cid for cid in done if cid in errors] if errors else []
        failed = {f.case_id: f.text for f in pending.failed}
        if failed or pending.cleared:
            await store.record_decide_errors(failed, pending.cleared, now)

    async def _load_errors(self, store: Store) -> dict[str, str]:
        """The cases marked with the engine's error, as stored: read once a process (and at a
        resume, whose saved table holds none of them)."""
        self.errors = await store.decide_errors()
        self.stats.not_decided = len(self.errors)
        return self.errors

    async def decide_undecided(
        self, conn: Connection, matters: Mapping[str, Matter], now: dt.datetime,
        chunk: int = 5000, *, caught_up: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> int:  # fmt: skip
        """Once caught up: the cases a backlog's batches left undecided, each decided once.

        Chunk by chunk, each its own transaction: the cards written and the mark
        cleared together, then published. Returns how many cases were decided.
        Not ``caught_up`` (a long backlog), as a batch decides: running levels
        are left to the tick, since a later event may still stop their period.
        A heartbeat (``beat``) after each chunk: a day's backlog of a city is
        minutes of deciding, longer than the watchdog waits for one; ``progress``
        hears how many are decided so far (a command's progress bar).
        """
        done, started, st = 0, time.perf_counter(), DbStore(conn)
        # caught up: no later event can stop a period, so running levels are decided now
        # too (the tick that follows finds them issued)
        decide = partial(self._decide, matters=matters, now=int(now.timestamp()),
                         running=caught_up, figures=True)  # fmt: skip
        nxt = await self.deferred.chunk(st, chunk, "")
        got = decide(nxt.views, cards=nxt.cards)
        while nxt.ids:
            cur, (decided, pending) = nxt, got
            more = len(cur.ids) == chunk
            nxt = await self.deferred.chunk(st, chunk, cur.ids[-1]) if more else Chunk()
            async with trio.open_nursery() as nursery:
                # the next chunk decided in a thread (pure code on its own data) while
                # the server writes this one's cards: a backlog's deciding was half
                # spent waiting for those statements
                ahead: list[_Decided] = []
                if nxt.views:
                    nursery.start_soon(decide_in_thread, decide, nxt, ahead)
                async with conn.transaction():
                    await self._commit(st, cur.views, decided, pending, matters, now, True)
                    await state_store.mark_decided(conn, cur.ids)  # those the figures did not
            got = ahead[0] if ahead else decide(nxt.views, cards=nxt.cards)
            self.publish(pending)
            self.beat()
            done += len(cur.ids)
            if progress is not None:
                progress(done)
        self.undecided = False
        if done:  # an operator watching a catch-up sees its cases decided
            self.log.info("backlog_decided", cases=done, caught_up=caught_up,
                          ms=round((time.perf_counter() - started) * 1000, 1))  # fmt: skip
        return done

    async def reload_cases(
        self,
        store: Store | Connection,
        case_ids: Sequence[str],
        matters: Mapping[str, Matter],
        now: dt.datetime,
        running: bool = True,
    ) -> Pending:
        """Re-decide cases as stored, in the caller's transaction."""
        st = self._store(store)
        views = await st.cases(case_ids)
        return await self.decide_views(st, views, matters, now, running=running)

    # --- the scheduler's side -------------------------------------------------------

    async def start(
        self, store: Store | Connection, matters: Mapping[str, Matter], now: dt.datetime,
        chunk: int = 5000,
    ) -> None:  # fmt: skip
        """Build the table from every open case (recomputed on the rules and calendar in force).

        Levels that came due while the daemon was away are issued by the first
        tick, once the tailer has caught up with the events of that time. One
        transaction (a new rule set's revocations all or none), decided ``chunk``
        cases at a time with a heartbeat after each: a province's open cases are
        minutes of deciding, and without beats the watchdog stopped the daemon
        at every start, for good.
        """
        self.scheduler.reset()
        st = self._store(store)
        pendings = []
        async with st.transaction():
            ids = await st.open_case_ids()
            for i in range(0, len(ids), chunk):
                part = ids[i : i + chunk]
                pendings.append(await self.reload_cases(st, part, matters, now, running=False))
                self.beat()
        for pending in pendings:
            self.publish(pending)
        self.scheduler.reset(self.scheduler.table)

    async def resume(
        self,
        store: Store | Connection,
        matters: Mapping[str, Matter],
        now: dt.datetime,
        table: ClockTable,
        changed: Sequence[str],
        wakes: Mapping[str, int] | None = None,
    ) -> None:
        """Take a saved table and re-decide only the cases changed since it was saved."""
        self.scheduler.reset(table)
        self.scheduler.wakes.update(wakes or {})
        st = self._store(store)
        pending = None
        marked = await self._load_errors(st)  # decided again: a new release may have fixed it
        seen = set(changed)
        changed = [*changed, *(cid for cid in marked if cid not in seen)]
        if changed:
            async with st.transaction():
                pending = await self.reload_cases(st, list(changed), matters, now, running=False)
            self.scheduler.drop(set(changed) - set(pending.rows))  # gone from jiancha.cases
        self.publish(pending)
        self.scheduler.reset(self.scheduler.table)

    async def tick(
        self, store: Store | Connection, matters: Mapping[str, Matter], now: dt.datetime
    ) -> None:
        """One kernel pass at ``now``: issue what came due, escalate missed replies."""
        t0 = time.perf_counter()
        st = self._store(store)
        if self._next is not None:
            await self._swap(st, matters, now)
        n = int(now.timestamp())
        regional = dict(self.regions.regional())
        cases = self.scheduler.rising(self.cal, n, regional)
        async with st.transaction():
            pending = await self.reload_cases(st, cases, matters, now) if cases else None
            escalated = await self._escalate(st, matters, now)
            reply = await st.next_reply_due()
        self.publish(pending)
        self.scheduler.settle(cases, self.cal, n, regional)
        self.scheduler.ticked(reply)
        self.stats.escalated += len(escalated)
        if escalated:
            self.log.warning("supervision_escalated", cards=len(escalated))
        self.stats.took(time.perf_counter() - t0)

    def pending_reload(self) -> bool:
        """New rules or a new calendar wait for the next tick (the table is about to go)."""
        return self._next is not None

    def request_reload(
        self, ruleset: RuleSet, cal: Calendar, regions: Regions | None = None
    ) -> bool:
        """Take already-validated rules and calendars at the next tick; False if unchanged.

        A changed mapping of regions to calendars is a calendar change: every
        open case is recomputed on the calendar it now counts on.
        """
        regions = regions if regions is not None else Regions(cal)
        if (ruleset.fingerprint, regions.fingerprint) == (self.ruleset.fingerprint,
                                                          self.regions.fingerprint):  # fmt: skip
            return False
        self._next = (ruleset, cal, regions)
        return True

    async def _swap(self, store: Store, matters: Mapping[str, Matter], now: dt.datetime) -> None:
        """Recompute every open clock on the new rules or calendar; revoke what lost its basis."""
        assert self._next is not None
        old = (self.ruleset.fingerprint, self.regions.fingerprint)
        self.ruleset, self.cal, self.regions = self._next
        self._next = None
        self._why = "calendar_changed" if old[0] == self.ruleset.fingerprint else "rules_changed"
        try:
            await self.start(store, matters, now)
        finally:
            self._why = None
        self.log.info("rules_reloaded", rules=self.ruleset.name,
                      rules_hash=self.ruleset.fingerprint, calendar=self.cal.name,
                      calendar_hash=self.regions.fingerprint,
                      open_clocks=self.scheduler.rows())  # fmt: skip

    def wake_at(self) -> int | None:
        """UTC seconds of the next instant something comes due, if any."""
        return self.scheduler.wake_at()

    def due(self, now: dt.datetime) -> bool:
        """Whether a tick has work at ``now``."""
        return self._next is not None or self.scheduler.due(now)
