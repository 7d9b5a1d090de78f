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

The tailer only reads: it hands each batch forward on a channel and knows
nothing of what is done with it. While the receiver takes one batch, the
next is read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from monitor import db
from monitor.config import BATCH_SIZE
from monitor.log import get_logger
from monitor.source.catalogue import load_matters
from monitor.source.contract import Cursor, Matter, SourceEvent, payload_of, too_large

__all__ = ["CHANNEL", "Batch", "Tailer", "TailerStats", "last_event_id", "read_batch"]

CHANNEL = "jiancha_events_v1"

# The payload comes as text and read_batch decodes a whole batch of them at once,
# not the connection's jsonb codec one row at a time. A time Python's datetime cannot
# hold (±infinity, BC, past year 9999) would stop the read: it comes as year 1, which
# `validate` rejects (contract.UNREADABLE_TIME).
# A payload whose stored size (compressed, at worst) is past this is not fetched at all:
# read, a 255 MB jsonb would cost that much memory just to be dead-lettered. Four times
# the largest payload taken (64 KiB), so compression never hides one that fits.
STORED_MAX = 4 * 64 * 1024

_READ = """
SELECT id, tx::text::int8, case_id, kind,
       CASE WHEN occurred_at BETWEEN '0002-01-01 00:00+00' AND '9998-12-31 00:00+00'
            THEN occurred_at ELSE '0001-01-01 00:00+00' END,
       CASE WHEN pg_column_size(payload) <= $4 THEN payload::text END,
       pg_column_size(payload)
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


async def last_event_id(conn: db.Connection) -> int:
    """The newest source event's id, 0 for none (the primary key's index: no scan)."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM case_events"))


async def read_batch(conn: db.Connection, cursor: Cursor, limit: int) -> list[SourceEvent]:
    """The next visible events after ``cursor``, in (tx, id) order: one round trip."""
    rows = await conn.fetch(_READ, str(cursor.tx), cursor.event_id, limit, STORED_MAX)
    # One json.loads over the whole batch: a fifth of the cost of one call per row.
    # Every payload is jsonb's own text output, so the joined text is one valid array,
    # unless one is past what Python reads (a 4,300-digit number, deep nesting): then
    # row by row, and that one becomes an `Unreadable` for `validate` to dead-letter.
    texts = [r[5] if r[5] is not None else "null" for r in rows]
    try:
        payloads = json.loads("[" + ",".join(texts) + "]")
    except (ValueError, RecursionError):
        payloads = [payload_of(t) for t in texts]
    for i, r in enumerate(rows):
        if r[5] is None:  # a batch is bounded in bytes too: a huge payload is never fetched
            payloads[i] = too_large(r[6])
    make = SourceEvent._make  # skips the keyword binding of the constructor
    return [
        make((r[0], r[1], r[2], r[3], r[4], payload))
        for r, payload in zip(rows, payloads, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Batch:
    """Source events in (tx, id) order right after ``before``, as read."""

    events: list[SourceEvent]
    before: Cursor
    matters: Mapping[str, Matter]  # the catalogue when they were read
    caught_up: bool  # nothing more was visible: the reader had reached the horizon
    read_at: dt.datetime | None = None  # the business clock when the read began

    @property
    def after(self) -> Cursor:
        return Cursor.after(self.events, self.before)


def known_by(batch: Batch, now: dt.datetime) -> dt.datetime:
    """The instant a caught-up batch's view of the source holds for: when its read began.

    A tick judges open cases at this instant, not at ``now``: an event
    committed after the read began (a completion, a pause) is not known yet,
    and a case it finished would be carded, its window head alerted, and the
    card revoked when the event is read. A daemon keeping up reads within
    milliseconds of its ticks; a read that waited while a large batch was
    written, or a demo's fast clock, is minutes or hours behind. What comes due
    after it is issued by the next tick, after the next read.
    """
    return now if batch.read_at is None else min(now, batch.read_at)


@dataclass
class TailerStats:
    """What the reading side sees, for logs and the metrics."""

    batches: int = 0
    blocking_tx_age: float = 0.0  # seconds, oldest foreign write transaction


class Tailer:
    """Reads one source database; one instance per source."""

    def __init__(
        self,
        source_dsn: str,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 1.0,
        probe_interval: float = 10.0,
        session: db.Session = db.SOURCE_SESSION,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.source_dsn = source_dsn
        self.clock = clock  # dates each read (Batch.read_at): what was known by when
        self.session = session  # read-only, with a statement timeout: the source is only read
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.probe_interval = probe_interval
        self.stats = TailerStats()
        self.matters: dict[str, Matter] = {}  # the catalogue as last loaded
        # re-read now and then too: a dead letter waiting for its matter (monitor.revive)
        # comes back only once the catalogue in hand has it
        self.matters_every = 60.0
        self._matters_at = 0.0
        self.log = get_logger("monitor.source")
        self._wake = trio.Event()
        # `stream(paced=True)`: batches sent, and how many the receiver had taken when it
        # last said it was ready for the next
        self._sent = self._taken = 0
        self._ready = trio.Event()

    def wake(self) -> None:
        """A NOTIFY arrived (or someone wants a read now)."""
        self._wake.set()

    def ready(self, taken: int) -> None:
        """The receiver took ``taken`` batches and waits for the next: a paced stream reads it.

        A count, not a flag: the receiver asked for the batch just sent before it was sent.
        """
        self._taken = max(self._taken, taken)
        self._ready.set()

    async def stream(
        self,
        cursor: Cursor,
        send: trio.MemorySendChannel[Batch],
        *,
        paced: bool = False,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Send every batch after ``cursor``, forever; started once connected.

        A batch that came back short is followed by an empty, caught-up one at
        every wake-up until more arrives, so the receiver knows it is still
        caught up. Connection errors propagate: whoever started the stream
        decides where it resumes.

        A backlog is read one batch ahead, while the receiver takes the last.
        ``paced``: once caught up, the next read waits until the receiver says it
        is `ready`, so that the batch holds all that committed while it took the
        last one. Read ahead, that batch held only what came in the read's first
        millisecond, and the rest waited for the batch after: about three
        batches' time for a live event instead of two.
        """
        opened: list[db.Connection] = []
        self._sent = self._taken = 0  # the receiver counts a new stream's batches from 0
        try:
            source = await db.connect(self.source_dsn, application_name="jiancha-tailer",
                                      session=self.session)  # fmt: skip
            opened.append(source)
            listener = await db.connect(self.source_dsn, application_name="jiancha-listener",
                                        session=self.session)  # fmt: skip
            opened.append(listener)
            await listener.listen(CHANNEL, self.wake)
            await self._load_matters(source)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._probe, listener)
                task_status.started()
                await self._read(source, cursor, send, paced)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for conn in opened:
                    await conn.close()

    async def _read(
        self, source: db.Connection, cursor: Cursor, send: trio.MemorySendChannel[Batch],
        paced: bool = False,
    ) -> None:  # fmt: skip
        while True:
            self._wake = trio.Event()
            if trio.current_time() - self._matters_at >= self.matters_every:
                await self._load_matters(source)
            read_at = self.clock() if self.clock is not None else None
            events = await read_batch(source, cursor, self.batch_size)
            if events:
                await self._refresh_matters(source, events)
                self.stats.batches += 1
            full = len(events) >= self.batch_size
            batch = Batch(events, cursor, self.matters, caught_up=not full, read_at=read_at)
            cursor = batch.after
            await send.send(batch)  # returns once taken: the next read overlaps its writing
            self._sent += 1
            if not full:
                with trio.move_on_after(self.poll_interval):
                    await self._wake.wait()
                while paced and self._taken < self._sent:
                    self._ready = trio.Event()
                    await self._ready.wait()

    async def _refresh_matters(self, source: db.Connection, events: list[SourceEvent]) -> None:
        """Reload the catalogue when a batch names a matter added since it was loaded."""
        unknown = {
            e.payload.get("matter")
            for e in events
            if e.kind == "submitted" and isinstance(e.payload, dict)
        } - set(self.matters)
        if unknown:
            await self._load_matters(source)

    async def _load_matters(self, source: db.Connection) -> None:
        self.matters = await load_matters(source)
        self._matters_at = trio.current_time()

    async def _probe(self, listener: db.Connection) -> None:
        """Liveness of the listening session, and who holds the horizon back."""
        while True:
            await trio.sleep(self.probe_interval)
            self.stats.blocking_tx_age = float(await listener.fetchval(_BLOCKING) or 0.0)
            self.wake()  # also a periodic read, in case a notification was lost
