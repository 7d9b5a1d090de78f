"""Tail the approval database's ``case_events`` without losing an event.

``WHERE id > last_seen`` loses events: transactions commit out of id order,
so a row with a smaller id can become visible after a larger one was read.
Here rows are read in ``(tx, id)`` order and only from transactions older
than the oldest one still running (``tx < pg_snapshot_xmin(...)``): once such
a transaction is below the horizon, every row it will ever have is visible,
so nothing behind the cursor can appear later.

NOTIFY only wakes the loop; the table is the truth. A fallback poll covers a
lost notification, a dropped listener and rows held back by a transaction
that later rolled back (it sends no NOTIFY when it ends).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import trio

from monitor import db, ingest
from monitor.checkpoint import Checkpointer
from monitor.clock import Clock, real_seconds, utc_now
from monitor.db import DISCONNECTS, backoff_delays
from monitor.evaluator import Evaluator
from monitor.ingest import Cursor
from monitor.log import get_logger
from monitor.state import CaseState, Matter, SourceEvent

CHANNEL = "jiancha_events_v1"

# The payload comes as text and read_batch decodes a whole batch of them at once,
# not the connection's jsonb codec one row at a time.
_READ = """
SELECT id, tx::text::int8, case_id, kind, occurred_at, payload::text
FROM case_events
WHERE (tx, id) > ($1::text::xid8, $2::bigint)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY case_events.tx, case_events.id  -- qualified: a bare `tx` is the text alias above
LIMIT $3
"""

# Age of the oldest transaction that holds an xid (a writer) and so holds the
# horizon back; jiancha's own sessions are left out.
_BLOCKING = """
SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND application_name NOT LIKE 'jiancha%'
"""


@dataclass
class TailerConfig:
    source_dsn: str
    dsn: str
    batch_size: int = 5000
    poll_interval: float = 1.0
    probe_interval: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0  # after an outage, back within 10 s of the database
    future_tolerance: dt.timedelta = dt.timedelta(days=1)
    orphan_grace: dt.timedelta = dt.timedelta(hours=1)
    sweep_interval: float = 60.0
    cache_cases: int = 20_000  # case histories kept in memory between batches


@dataclass
class TailerStats:
    """What the tailer has done, for logs and (later) the metrics collector."""

    events: int = 0
    dead_letters: int = 0
    orphans_swept: int = 0
    batches: int = 0
    reconnects: int = 0
    connected: bool = False
    caught_up_at: float | None = None  # trio clock when the visible backlog was last empty
    blocking_tx_age: float = 0.0  # seconds, oldest foreign write transaction
    cursor: Cursor = field(default_factory=lambda: ingest.START)

    def lag(self, now: float) -> float:
        """Seconds since the tailer last had nothing visible left to read."""
        return 0.0 if self.caught_up_at is None else max(0.0, now - self.caught_up_at)


async def read_batch(conn: db.Connection, cursor: Cursor, limit: int) -> list[SourceEvent]:
    """The next visible events after ``cursor``, in (tx, id) order: one round trip."""
    rows = await conn.fetch(_READ, str(cursor.tx), cursor.event_id, limit)
    # One json.loads over the whole batch: a fifth of the cost of one call per row.
    # Every payload is jsonb's own text output, so the joined text is one valid array.
    payloads = json.loads("[" + ",".join([r[5] for r in rows]) + "]")
    make = SourceEvent._make  # skips the keyword binding of the constructor
    return [
        make((r[0], r[1], r[2], r[3], r[4], payload))
        for r, payload in zip(rows, payloads, strict=True)
    ]


class Tailer:
    """Reads the source and applies batches; one instance per source."""

    def __init__(
        self,
        config: TailerConfig,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        evaluator: Evaluator | None = None,
    ) -> None:
        self.config = config
        self.evaluator = evaluator
        self.snapshotter: Any = None  # the metrics snapshot task, told about reloads
        self.on_loop: Callable[[], None] | None = None  # each turn of the working loop
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = TailerStats()
        self.log = get_logger("monitor.source")
        self._wake = trio.Event()
        self._matters: dict[str, Matter] = {}
        self.cache = ingest.HistoryCache(config.cache_cases)
        self.checkpointer: Checkpointer | None = None  # saves and resumes the clock table
        self.table_from = ""  # "checkpoint" or "rebuilt", for the ready line
        self.redecided = 0  # cases re-decided at the last start

    def wake(self) -> None:
        """A NOTIFY arrived (or a test wants a read now)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tail forever, reconnecting after any connection loss; started once connected."""
        delays = backoff_delays(self.config.backoff_initial, self.config.backoff_max, self.rng)
        status: trio.TaskStatus[None] | None = task_status
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    await self._session(nursery, status)
            except BaseException as exc:  # sorted below: only connection loss is ours
                if self.stats.connected:  # this session got going: started() was called
                    status = None
                    delays = backoff_delays(
                        self.config.backoff_initial, self.config.backoff_max, self.rng
                    )
                lost = db.only(exc, DISCONNECTS)  # exception groups included
                if lost is None:
                    raise
                self.stats.connected = False
                self.stats.reconnects += 1
                delay = delays()
                self.log.warning(
                    "source_disconnected",
                    error=f"{type(lost).__name__}: {lost}",
                    retry_in_s=round(delay, 2),
                    cursor_tx=self.stats.cursor.tx,
                    cursor_id=self.stats.cursor.event_id,
                )
                await trio.sleep(delay)

    async def _session(
        self, nursery: trio.Nursery, task_status: trio.TaskStatus[None] | None
    ) -> None:
        cfg = self.config
        opened: list[db.Connection] = []  # closed on the way out, however far we got
        try:
            source = await db.connect(cfg.source_dsn, application_name="jiancha-tailer")
            opened.append(source)
            # Batches are written on a connection of their own, so the next one can be
            # read while the last one commits.
            target = await db.connect(cfg.dsn)
            opened.append(target)
            listener = await db.connect(cfg.source_dsn, application_name="jiancha-listener")
            opened.append(listener)
            await listener.listen(CHANNEL, self.wake)
            self._matters = await ingest.load_matters(source)
            self._name_matters()
            # A COMMIT whose answer was lost may have happened: trust only the database.
            self.cache = ingest.HistoryCache(cfg.cache_cases)
            cursor = await ingest.load_cursor(target)
            self.stats.cursor = cursor
            if self.evaluator is not None:  # catch up on what came due while we were away
                await self._start_table(target)
            self.stats.connected = True
            self.log.info("source_connected", cursor_tx=cursor.tx, cursor_id=cursor.event_id)
            nursery.start_soon(self._probe, listener)
            if task_status is not None:
                task_status.started()
            await self._loop(source, target)
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                for conn in opened:
                    await conn.close()
                if self.stats.connected:  # a clean stop: the next start resumes from here
                    await self._save_on_exit()

    async def _loop(self, source: db.Connection, target: db.Connection) -> None:
        cfg = self.config
        next_sweep = trio.current_time() + cfg.sweep_interval
        ahead: list[SourceEvent] = []  # the next batch, read while the last one was written
        while True:
            if self.on_loop is not None:  # the watchdog: a hung loop stops its pings
                self.on_loop()
            if trio.current_time() >= next_sweep:  # on this task: one connection, one user
                await self._sweep(target)
                next_sweep = trio.current_time() + cfg.sweep_interval
            self._wake = trio.Event()
            events = ahead or await read_batch(source, self.stats.cursor, cfg.batch_size)
            ahead = []
            if events:
                await self._refresh_matters(source, events)
                if len(events) < cfg.batch_size:
                    await self._apply(target, events)
                else:  # more is waiting: read the next batch while this one is written
                    ahead = await self._apply_reading_ahead(source, target, events)
                    continue  # no sleep
            self.stats.caught_up_at = trio.current_time()
            ev = self.evaluator
            if ev is not None and ev.due(self.clock()):  # caught up: cards may depend on it
                await ev.tick(target, self._matters, self.clock())
            ck = self.checkpointer
            if (
                ev is not None
                and ck is not None
                and ck.due(trio.current_time())
                and (not ev.pending_reload())
            ):
                await ck.save(target, ev.table, ev.ruleset.fingerprint, ev.cal.fingerprint,
                              self.stats.cursor, trio.current_time())  # fmt: skip
            wait = cfg.poll_interval
            due = ev.wake_at() if ev is not None else None
            if due is not None:  # sleep no longer than until the next card comes due
                wait = min(wait, max(0.0, real_seconds(self.clock, due - self.clock().timestamp())))
            with trio.move_on_after(wait):
                await self._wake.wait()

    async def _apply_reading_ahead(
        self, source: db.Connection, target: db.Connection, events: list[SourceEvent]
    ) -> list[SourceEvent]:
        """Apply ``events`` and read the batch after them meanwhile.

        The read starts where this batch ends, so once the batch has committed it
        is the next read exactly; if the batch fails, the read is cancelled with it.
        """
        after = Cursor.after(events, self.stats.cursor)
        ahead: list[SourceEvent] = []

        async def read() -> None:
            ahead.extend(await read_batch(source, after, self.config.batch_size))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await self._apply(target, events)
        return ahead

    async def _refresh_matters(self, source: db.Connection, events: list[SourceEvent]) -> None:
        """Reload the catalogue when a batch names a matter added since it was loaded."""
        unknown = {
            e.payload.get("matter")
            for e in events
            if e.kind == "submitted" and isinstance(e.payload, dict)
        } - set(self._matters)
        if unknown:
            self._matters = await ingest.load_matters(source)
            self._name_matters()

    async def _apply(self, target: db.Connection, events: list[SourceEvent]) -> None:
        started = trio.current_time()
        result = await ingest.apply_batch(
            target,
            events,
            self._matters,
            self.stats.cursor,
            self.clock(),
            future_tolerance=self.config.future_tolerance,
            cache=self.cache,
            derive=self._derive if self.evaluator is not None else None,
            from_source=self.config.dsn == self.config.source_dsn,
        )
        if self.evaluator is not None:  # committed: the table may learn what it decided
            self.evaluator.publish(result.derived)
        self.stats.cursor = result.cursor
        self.stats.events += result.events
        self.stats.dead_letters += result.dead
        self.stats.batches += 1
        self.log.debug(
            "batch_applied",
            events=result.events,
            dead=result.dead,
            cases=result.cases,
            ms=round((trio.current_time() - started) * 1000, 1),
        )
        if result.dead:
            self.log.warning("dead_letters", count=result.dead, batch_events=len(events))

    async def _start_table(self, target: db.Connection) -> None:
        """The scheduler's table: from the checkpoint when it is usable, else built whole."""
        ev = self.evaluator
        assert ev is not None
        ck = self.checkpointer
        got = None
        if ck is not None:
            got = await ck.resume(target, ev.ruleset.fingerprint, ev.cal.fingerprint)
        if got is None:
            await ev.start(target, self._matters, self.clock())
            self.table_from, self.redecided = "rebuilt", len(ev.table.by_case)
            return
        table, changed = got
        await ev.resume(target, self._matters, self.clock(), table, changed)
        self.table_from, self.redecided = "checkpoint", len(changed)
        self.log.info("checkpoint_resumed", clocks=len(ev.table), redecided=len(changed))

    async def _save_on_exit(self) -> None:
        """Best effort, on a connection of its own (the loop's may be mid-query)."""
        ev, ck = self.evaluator, self.checkpointer
        if ev is None or ck is None or ev.pending_reload() or not self.table_from:
            return
        cursor = self.stats.cursor  # consistent with the table: both change together
        try:
            with trio.move_on_after(5):
                async with await db.connect(self.config.dsn, application_name="jiancha") as c:
                    await ck.save(c, ev.table, ev.ruleset.fingerprint, ev.cal.fingerprint,
                                  cursor, trio.current_time())  # fmt: skip
        except (*DISCONNECTS, asyncpg.PostgresError) as exc:
            self.log.warning("checkpoint_not_saved", error=f"{type(exc).__name__}: {exc}")

    def matters(self) -> dict[str, Matter]:
        """The matter catalogue as last loaded from the source."""
        return self._matters

    def _name_matters(self) -> None:
        """Notifications say the matter's name, not only its code."""
        notifier = self.evaluator.notifier if self.evaluator is not None else None
        if notifier is not None:
            notifier.matter_names = {code: m.name for code, m in self._matters.items()}

    async def _derive(
        self, conn: db.Connection, states: Sequence[CaseState], now: dt.datetime
    ) -> object:
        assert self.evaluator is not None
        return await self.evaluator.on_batch(conn, states, self._matters, now)

    async def _probe(self, listener: db.Connection) -> None:
        """Liveness of the listening session, and who holds the horizon back."""
        while True:
            await trio.sleep(self.config.probe_interval)
            self.stats.blocking_tx_age = float(await listener.fetchval(_BLOCKING) or 0.0)
            self.wake()  # also a periodic read, in case a notification was lost

    async def _sweep(self, target: db.Connection) -> None:
        moved = await ingest.sweep_orphans(
            target, self.clock(), self.config.orphan_grace, cache=self.cache
        )
        if moved:
            self.stats.orphans_swept += moved
            self.stats.dead_letters += moved
            self.log.warning("orphans_dead_lettered", events=moved)
