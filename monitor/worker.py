"""The daemon's working loop: the tailer's batches through the pipeline, and the scheduler's ticks.

One session holds the source's tailer and a connection to jiancha's schema.
The cursor comes from the database at the start of every session (a COMMIT
whose answer was lost may have happened), the tailer streams batches after
it, each becomes one transaction (`monitor.pipeline.apply_batch`), and once
the visible backlog is taken the scheduler's due crossings are ticked (a
card must not depend on where batches split). A lost connection ends the
session; the next starts after a capped, jittered backoff. The orphan
sweep and the checkpoint run between batches, on the same connection.

Before a session reads, the stored cursor is checked against the source
(`monitor.source.identity`): a cursor of another cluster or database, or
one ahead of the source's transaction ids, would read nothing and report
no lag. Such a session refuses with one error, keeps the daemon (and its
metrics) alive, and checks again every ``recheck_interval`` until an
operator resets the cursor. So does a session whose events keep failing
alone with one error of jiancha's own code (`monitor.pipeline.CodeFault`): it
reads again every ``recheck_interval`` (an upgrade, or a fault of the host
that passed), and reads on once a batch goes through.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import asyncpg
import trio

from monitor import db
from monitor.clocks.checkpoint import Checkpointer
from monitor.config import BATCH_SIZE, Retention
from monitor.db import DISCONNECTS, backoff_delays
from monitor.evaluator import Evaluator
from monitor.health import pause
from monitor.log import get_logger
from monitor.pipeline import CodeFault, apply_batch
from monitor.retention import prune
from monitor.revive import revive
from monitor.source import identity
from monitor.source.contract import START, Cursor, Matter
from monitor.source.tailer import Batch, Tailer, known_by
from monitor.state import position
from monitor.state import store as state_store
from monitor.wallclock import Clock, real_seconds, utc_now

# Card ids past the highest this process committed, when the database has lost it: the
# ledger is append-only, so a lower max(id) means transactions were lost.
_IDS_AHEAD = """
SELECT setval(pg_get_serial_sequence('jiancha.cards', 'id'), $1::bigint)
WHERE (SELECT coalesce(max(id), 0) FROM jiancha.cards) < $1::bigint
"""
_IDS_FIX = "SELECT setval(pg_get_serial_sequence('jiancha.cards', 'id'), {last});  -- as the owner"

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Worker", "WorkerConfig", "WorkerStats"]


PRUNE_EVERY = 86_400.0  # seconds between retention passes (monitor.retention)
DEFERRED_EVERY = 10.0  # seconds: a backlog's deferred cases decided at least this often


@dataclass
class WorkerConfig:
    source_dsn: str
    dsn: str
    batch_size: int = BATCH_SIZE
    poll_interval: float = 1.0
    probe_interval: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0  # after an outage, back within 10 s of the database
    future_tolerance: dt.timedelta = dt.timedelta(days=1)
    orphan_grace: dt.timedelta = dt.timedelta(days=7)
    sweep_interval: float = 60.0
    cache_cases: int = 20_000  # case folds kept in memory between batches
    source_session: db.Session = db.SOURCE_SESSION  # read-only, statements time out
    session: db.Session = db.OWN_SESSION  # jiancha's own: writable, keepalives
    recheck_interval: float = 30.0  # while the source does not match the cursor
    retention: Retention | None = None  # pruned once a day by the sweep (None: never)


@dataclass
class WorkerStats:
    """What the loop has done, for logs, ``systemctl status`` and the metrics."""

    events: int = 0
    dead_letters: int = 0
    isolated: int = 0  # of the dead letters: events that failed alone when applied
    orphans_swept: int = 0
    revived: int = 0  # dead letters taken in after all (monitor.revive)
    batches: int = 0
    reconnects: int = 0
    connected: bool = False
    caught_up_at: float | None = None  # trio clock when the visible backlog was last empty
    cursor: Cursor = field(default_factory=lambda: START)
    source_mismatch: identity.Mismatch | None = None  # refusing to read: the source moved
    code_fault: CodeFault | None = None  # not reading on: every event fails alike (a bug)

    def lag(self, now: float) -> float:
        """Seconds since the loop last had nothing visible left to take."""
        return 0.0 if self.caught_up_at is None else max(0.0, now - self.caught_up_at)


class Worker:
    """Tails one source into jiancha's schema and runs the cards; one per daemon."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        evaluator: Evaluator | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.config = config
        self.evaluator = evaluator
        self.checkpointer = checkpointer  # saves and resumes the clock table
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = WorkerStats()
        self.tailer = self._tailer()
        self.cache = state_store.FoldCache(config.cache_cases)
        self.beat: Callable[[], None] = lambda: None  # each turn, each retry (the heartbeat)
        if evaluator is not None:  # its long passes (a start, new rules, a backlog) beat too
            evaluator.beat = lambda: self.beat()
        self.connected_once = trio.Event()  # a session first got going (or refused a moved source)
        self.table_from = ""  # "checkpoint" or "rebuilt", for the ready line
        self._deferred_since: float | None = None  # trio time the current backlog began
        self.redecided = 0  # cases re-decided at the last start
        self._next_prune = 0.0  # trio clock of the next retention pass
        self._warmed = False  # numba's kernels loaded (`Evaluator.warm`)
        self.log = get_logger("monitor.worker")

    def _tailer(self) -> Tailer:
        cfg = self.config
        return Tailer(cfg.source_dsn, batch_size=cfg.batch_size, poll_interval=cfg.poll_interval,
                      probe_interval=cfg.probe_interval, session=cfg.source_session,
                      clock=self.clock)  # fmt: skip

    def configure(self, **settings: object) -> None:
        """Take new settings (a reload): the tailer's apply from its next session."""
        for key, value in settings.items():
            setattr(self.config, key, value)
        self.tailer.batch_size = self.config.batch_size
        self.tailer.poll_interval = self.config.poll_interval

    def wake(self) -> None:
        """Read now (a test, a reload) rather than at the next poll."""
        self.tailer.wake()

    def matters(self) -> Mapping[str, Matter]:
        """The matter catalogue as last loaded from the source."""
        return self.tailer.matters

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Work forever, reconnecting after any connection loss; started once connected."""
        cfg = self.config
        delays = backoff_delays(cfg.backoff_initial, cfg.backoff_max, self.rng)
        status: trio.TaskStatus[None] | None = task_status
        while True:
            self.beat()
            try:
                await self._session(status)
                status = None  # refused (the source moved) after reporting started
            except BaseException as exc:  # sorted below: only connection loss is ours
                if self.stats.connected:  # this session got going: started() was called
                    status = None
                    delays = backoff_delays(cfg.backoff_initial, cfg.backoff_max, self.rng)
                fault = db.only(exc, CodeFault)
                if isinstance(fault, CodeFault):
                    await self._halted(fault)
                    continue
                # A statement past the source's statement_timeout is retried like a loss.
                lost = db.only(exc, (*DISCONNECTS, asyncpg.QueryCanceledError))
                if lost is None:
                    raise
                self.stats.connected = False
                self.stats.reconnects += 1
                delay = delays()
                self.log.warning("source_disconnected", error=f"{type(lost).__name__}: {lost}",
                                 retry_in_s=round(delay, 2), cursor_tx=self.stats.cursor.tx,
                                 cursor_id=self.stats.cursor.event_id)  # fmt: skip
                await pause(delay, self.beat)

    async def _warm(self) -> None:
        """Once a process: numba's kernels loaded before the first batch, not in it."""
        if self.evaluator is None or self._warmed:
            return
        self._warmed = True
        try:  # in a thread: the event loop (the ready line's first snapshot) goes on meanwhile
            ms = await trio.to_thread.run_sync(self.evaluator.warm, self.clock())
        except Exception as exc:  # a speed-up only: the batches load what they need
            self.log.warning("kernels_not_loaded", error=f"{type(exc).__name__}: {exc}")
            return
        self.log.info("kernels_loaded", ms=round(ms, 1))

    async def _halted(self, fault: CodeFault) -> None:
        """Every event fails alike: one error (not a flood), then a new try now and then."""
        self.stats.connected = False
        was, self.stats.code_fault = self.stats.code_fault, fault
        if was is None or was.error != fault.error:
            self.log.error("code_fault", error=fault.message("zh"), error_en=fault.message("en"),
                           event_id=fault.event_id, cause=fault.error,
                           cursor_tx=self.stats.cursor.tx,
                           cursor_id=self.stats.cursor.event_id)  # fmt: skip
        await self._idle(self.config.recheck_interval)

    async def _session(self, task_status: trio.TaskStatus[None] | None) -> None:
        cfg = self.config
        target: db.Connection | None = None
        try:
            target = await db.connect(cfg.dsn, session=cfg.session)
            # A COMMIT whose answer was lost may have happened: trust only the database.
            self.cache = state_store.FoldCache(cfg.cache_cases)
            if self.evaluator is not None:  # so may cases stored undecided
                self.evaluator.undecided = True
            cursor = await self._checked_cursor(target)
            if cursor is None:
                self.connected_once.set()
                if task_status is not None:  # alive and serving metrics, not reading
                    task_status.started()
                await self._idle(cfg.recheck_interval)
                return
            await self._went_back(target, cursor)
            self.stats.cursor = cursor
            send, receive = trio.open_memory_channel[Batch](0)
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(self.tailer.stream, cursor, send, paced=True))
                if self.evaluator is not None:  # catch up on what came due while we were away
                    await self._start_table(target)
                self.stats.connected = True
                self.log.info("source_connected", cursor_tx=cursor.tx, cursor_id=cursor.event_id)
                self.connected_once.set()
                if task_status is not None:
                    task_status.started()
                await self._warm()
                await self._loop(target, receive)
        finally:
            with trio.CancelScope(shield=True):
                if target is not None:
                    await target.close()
                if self.stats.connected:  # a clean stop: the next start resumes from here
                    await self._save_on_exit()

    async def _went_back(self, target: db.Connection, cursor: Cursor) -> None:
        """The database lost transactions this process saw commit (a failover to a replica
        they had not reached, a restored backup). Their events are read again if the new
        primary has them; but the notifications of their cards went out, so no card id of
        theirs may be handed out again: its key would name another card."""
        was = self.stats.cursor
        if cursor < was:
            self.log.error("database_went_back", cursor_tx=cursor.tx, cursor_id=cursor.event_id,
                           was_tx=was.tx, was_id=was.event_id)  # fmt: skip
        last = self.evaluator.stats.last_card_id if self.evaluator is not None else 0
        if not last:
            return
        try:
            if await target.fetchval(_IDS_AHEAD, last) is not None:
                self.log.error("card_ids_moved_past_lost_cards", last_card_id=last)
        except asyncpg.InsufficientPrivilegeError as exc:  # jiancha_daemon may not: say how
            self.log.error("card_ids_not_moved", last_card_id=last, error=str(exc),
                           fix=_IDS_FIX.format(last=last))  # fmt: skip

    async def _idle(self, seconds: float) -> None:
        """Wait, still beating the heart: a refusing daemon is alive, not hung."""
        await pause(seconds, self.beat)

    async def _checked_cursor(self, target: db.Connection) -> Cursor | None:
        """The stored cursor, or None when it cannot be a position in the source as it is."""
        cursor, stored = await position.load_position(target)
        async with await db.connect(self.config.source_dsn, application_name="jiancha-tailer") as s:
            now = await identity.probe(s)
        mismatch = identity.check(cursor, stored, now)
        reported, self.stats.source_mismatch = self.stats.source_mismatch, mismatch
        if mismatch is not None:
            if reported is None or reported.differs != mismatch.differs:  # one error, not a flood
                self.log.error("source_mismatch", error=mismatch.message("zh"),
                               error_en=mismatch.message("en"), differs=list(mismatch.differs),
                               cursor_tx=cursor.tx, cursor_id=cursor.event_id,
                               source_xmax=now.xmax, fix=identity.FIX)  # fmt: skip
            return None
        if reported is not None:
            self.log.info("source_mismatch_resolved", cursor_tx=cursor.tx,
                          cursor_id=cursor.event_id)  # fmt: skip
        if stored is None and await position.adopt_identity(target, now.identity, self.clock()):
            self.log.info("source_identity_adopted", database=now.identity.database,
                          system_identifier=now.identity.system_identifier,
                          database_oid=now.identity.database_oid)  # fmt: skip
        return cursor

    async def _loop(self, target: db.Connection, batches: trio.MemoryReceiveChannel[Batch]) -> None:
        cfg = self.config
        next_sweep = trio.current_time() + cfg.sweep_interval
        caught_up = False
        received = 0
        while True:
            self.beat()  # the heartbeat: a hung loop stops the watchdog's pings
            if trio.current_time() >= next_sweep:
                await self._sweep(target)
                next_sweep = trio.current_time() + cfg.sweep_interval
            batch: Batch | None = None
            with trio.move_on_after(self._wait(caught_up)):
                self.tailer.ready(received)  # a live batch is read now, not ahead
                batch = await batches.receive()
                received += 1
            if batch is None:
                if caught_up:  # a card may be due: what is visible by now is read first
                    caught_up = False
                    self.tailer.wake()
                continue
            if batch.events:
                await self._apply(target, batch)
                if not batch.caught_up:
                    await self._in_backlog(target)
            caught_up = batch.caught_up
            if caught_up:
                self.stats.caught_up_at = trio.current_time()
                await self._when_caught_up(target, known_by(batch, self.clock()))

    async def _in_backlog(self, target: db.Connection) -> None:
        """A long backlog (or a source faster than jiancha): its deferred cases decided every
        ``DEFERRED_EVERY`` seconds anyway, as batches once decided them, so a late
        completion's red card does not wait for the end of the backlog."""
        ev = self.evaluator
        now = trio.current_time()
        if self._deferred_since is None:
            self._deferred_since = now
        elif ev is not None and ev.undecided and now - self._deferred_since >= DEFERRED_EVERY:
            await ev.decide_undecided(target, self.tailer.matters, self.clock(), caught_up=False)
            self._deferred_since = None

    def _wait(self, caught_up: bool) -> float:
        """How long to wait for a batch: no longer than until the next card comes due."""
        wait = self.config.poll_interval
        ev = self.evaluator
        due = ev.wake_at() if ev is not None and caught_up else None
        if due is not None:
            wait = min(wait, max(0.0, real_seconds(self.clock, due - self.clock().timestamp())))
        return wait

    async def _when_caught_up(self, target: db.Connection, at: dt.datetime) -> None:
        """The ticks and the checkpoint, which must see the whole visible backlog taken.

        The tick is at ``at``, when the read that caught up began (`known_by`).
        """
        ev, ck = self.evaluator, self._checkpointer()
        if ev is None:
            return
        if ev.undecided:  # the cases a backlog's batches stored, each decided once
            await ev.decide_undecided(target, self.tailer.matters, at)
        self._deferred_since = None
        if ev.due(at):
            await ev.tick(target, self.tailer.matters, at)
        if ck is not None and ck.due(trio.current_time()) and not ev.pending_reload():
            await ck.save(target, ev.table, ev.ruleset.fingerprint, ev.cal.fingerprint,
                          self.stats.cursor, trio.current_time(), ev.scheduler.wakes)  # fmt: skip

    async def _apply(self, target: db.Connection, batch: Batch) -> None:
        started = trio.current_time()
        result = await apply_batch(
            target, batch.events, batch.matters, batch.before, self.clock(),
            evaluator=self.evaluator, cache=self.cache,
            from_source=self.config.dsn == self.config.source_dsn,
            future_tolerance=self.config.future_tolerance,
            defer=not batch.caught_up,
            live=known_by(batch, self.clock()) if batch.caught_up else None,
        )  # fmt: skip
        self.stats.cursor = result.cursor
        if self.stats.code_fault is not None:  # the fault passed: one line that says so
            self.log.info("code_fault_resolved", event_id=self.stats.code_fault.event_id)
            self.stats.code_fault = None
        self.stats.events += result.events
        self.stats.dead_letters += result.dead
        self.stats.batches += 1
        self.log.debug("batch_applied", events=result.events, dead=result.dead,
                       cases=result.cases,
                       ms=round((trio.current_time() - started) * 1000, 1))  # fmt: skip
        self.stats.isolated += result.isolated
        if result.dead:
            self.log.warning("dead_letters", count=result.dead, isolated=result.isolated,
                             batch_events=len(batch.events))  # fmt: skip

    def _checkpointer(self) -> Checkpointer | None:
        """None when regions count on calendars of their own: their tables are always rebuilt."""
        ev = self.evaluator
        if ev is not None and ev.regions.prefixes:
            return None
        return self.checkpointer

    async def _start_table(self, target: db.Connection) -> None:
        """The scheduler's table: from the checkpoint when it is usable, else built whole."""
        ev = self.evaluator
        assert ev is not None
        ck = self._checkpointer()
        got = None
        if ck is not None:
            got = await ck.resume(target, ev.ruleset.fingerprint, ev.cal.fingerprint)
        if got is None:
            await ev.start(target, self.tailer.matters, self.clock())
            self.table_from, self.redecided = "rebuilt", len(ev.table.by_case)
            return
        table, changed, wakes = got
        await ev.resume(target, self.tailer.matters, self.clock(), table, changed, wakes)
        self.table_from, self.redecided = "checkpoint", len(changed)
        self.log.info("checkpoint_resumed", clocks=len(ev.table), redecided=len(changed))

    async def _save_on_exit(self) -> None:
        """Best effort, on a connection of its own (the loop's may be mid-query)."""
        ev, ck = self.evaluator, self._checkpointer()
        if ev is None or ck is None or ev.pending_reload() or not self.table_from:
            return
        cursor = self.stats.cursor  # consistent with the table: both change together
        try:
            with trio.move_on_after(5):
                async with await db.connect(self.config.dsn, application_name="jiancha",
                                            session=self.config.session) as c:  # fmt: skip
                    await ck.save(c, ev.table, ev.ruleset.fingerprint, ev.cal.fingerprint,
                                  cursor, trio.current_time(), ev.scheduler.wakes)  # fmt: skip
        except (*DISCONNECTS, asyncpg.PostgresError) as exc:
            self.log.warning("checkpoint_not_saved", error=f"{type(exc).__name__}: {exc}")

    async def _sweep(self, target: db.Connection) -> None:
        """Now and then: dead letters whose cause is gone come back; long orphans go out."""
        revived = await revive(target, self.tailer.matters, self.clock(),
                               evaluator=self.evaluator, cache=self.cache,
                               future_tolerance=self.config.future_tolerance)  # fmt: skip
        self.stats.revived += revived.taken
        if self.config.retention is not None and trio.current_time() >= self._next_prune:
            self._next_prune = trio.current_time() + PRUNE_EVERY
            await prune(target, self.config.retention, self.clock())
        moved = await state_store.sweep_orphans(
            target, self.clock(), self.config.orphan_grace, cache=self.cache
        )
        if moved:
            self.stats.orphans_swept += moved
            self.stats.dead_letters += moved
            self.log.warning("orphans_dead_lettered", events=moved)
