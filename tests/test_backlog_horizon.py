"""A tick judges open cases at the instant its read began, not when it runs.

The tailer reads the next batch while the worker writes the current one. When
that writing is slow (a large batch, a loaded machine, a demo at 20,000x), the
read that catches up began well before the tick that follows it: ticked at
the wall clock, a case whose completion was committed in between was carded,
its window head alerted, and the card revoked once the completion was read.
"""

from __future__ import annotations

import datetime as dt

import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.evaluator import Evaluator
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Cursor
from monitor.source.tailer import Batch, Tailer, known_by, read_batch
from monitor.worker import Worker, WorkerConfig
from tests.cardkit import counted_ticks, events_of, ledger
from tests.sourcekit import SUBMITTED, at, write

LATE = dt.datetime(2024, 3, 29, 2, 0, tzinfo=dt.UTC)  # weeks after: every level is due

# C1 is completed on its second working day, long before any of its levels; C2 never is.
HISTORY = [
    ("C1", "submitted", at(0), SUBMITTED),
    ("C1", "accepted", at(0.5), {}),
    ("C2", "submitted", at(1), SUBMITTED),
    ("C2", "accepted", at(1.5), {}),
    ("C1", "completed", at(24), {}),
]


async def run_loop(dsn: str, read_ats: list[dt.datetime | None]) -> list[tuple]:
    """The worker's loop fed the history as two caught-up batches (the completion in the
    second), read at ``read_ats``, while its clock already says LATE."""
    async with await db.connect(dsn) as conn:
        await write(conn, HISTORY)
        matters = await load_matters(conn)
        events = await read_batch(conn, START, 100)
        worker = Worker(WorkerConfig(dsn, dsn), clock=lambda: LATE,
                        evaluator=Evaluator(load_rules("cards"), load_calendar("cn")))  # fmt: skip
        ev = worker.evaluator
        assert ev is not None
        await ev.start(conn, matters, at(0))
        ticking = counted_ticks(ev)
        worker.tailer.matters = matters
        first = Batch(events[:4], START, matters, caught_up=True, read_at=read_ats[0])
        second = Batch(events[4:], first.after, matters, caught_up=True, read_at=read_ats[1])
        send, receive = trio.open_memory_channel[Batch](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker._loop, conn, receive)
            for batch in (first, second):
                await send.send(batch)
            with trio.fail_after(10):  # the second batch taken and ticked, the tick committed
                while worker.stats.cursor != second.after or ev.due(LATE) or ticking[0]:
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        return [(c[0], c[3], c[5]) for c in await ledger(conn)] + [
            (e[0], e[2], e[3]) for e in await events_of(conn) if e[3] != "issued"
        ]


async def test_a_tick_after_a_slow_write_cards_only_what_was_known(dsn: str) -> None:
    # the read that caught up began an hour after the acceptances: C1 still open, nothing due
    ledger = await run_loop(dsn, [at(1.6), LATE])
    assert ledger == [("C2", "red", "issued")]  # C1 carded never, so never revoked


async def test_unless_read_then_the_same_batches_card_and_revoke(dsn: str) -> None:
    """What ``known_by`` prevents, on the same batches: a batch that cannot say when it
    was read is judged at the wall clock."""
    ledger = await run_loop(dsn, [None, None])
    assert ("C1", "red", "revoked") in ledger and ("C2", "red", "issued") in ledger


def test_known_by_is_the_reads_start_and_never_past_now() -> None:
    t = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)
    batch = Batch([], Cursor(0, 0), {}, caught_up=True, read_at=t)
    assert known_by(batch, t + dt.timedelta(hours=5)) == t
    assert known_by(batch, t - dt.timedelta(seconds=1)) == t - dt.timedelta(seconds=1)
    assert known_by(Batch([], Cursor(0, 0), {}, caught_up=True), t) == t


async def test_the_tailer_dates_each_read_by_its_clock(dsn: str) -> None:
    async with await db.connect(dsn) as conn:
        await write(conn, HISTORY[:2])
    reads = iter([at(1), at(2), at(3)])
    tailer = Tailer(dsn, batch_size=1, poll_interval=0.05, probe_interval=10,
                    clock=lambda: next(reads))  # fmt: skip
    send, receive = trio.open_memory_channel[Batch](0)
    async with trio.open_nursery() as nursery:
        await nursery.start(tailer.stream, START, send)
        first = await receive.receive()
        second = await receive.receive()
        nursery.cancel_scope.cancel()
    assert ([e.kind for e in first.events], first.caught_up, first.read_at) == (
        ["submitted"], False, at(1))  # fmt: skip
    assert ([e.kind for e in second.events], second.read_at) == (["accepted"], at(2))


def test_a_held_virtual_clock_stands_at_its_start_until_run() -> None:
    """The demo holds its day while the daemon starts (see VirtualClock.run)."""
    from monitor.wallclock import VirtualClock

    real = iter([100.0, 105.0, 106.0])
    clock = VirtualClock(at(0), rate=3600.0, monotonic=lambda: next(real), running=False)
    assert clock() == at(0)  # the start, however long the daemon takes
    clock.run()  # real 100
    assert clock() == at(5)  # 5 real seconds later: five hours at 3,600x
    clock.run()  # a second run changes nothing
    assert clock() == at(6)


def test_a_virtual_clock_stopped_at_an_instant_runs_to_it_and_stays() -> None:
    """The demo with its console: the period ends exactly at its end, never past it."""
    from monitor.wallclock import VirtualClock

    real = iter([0.0, 2.0, 3.0, 9.0])
    clock = VirtualClock(at(0), rate=3600.0, monotonic=lambda: next(real))  # real 0
    clock.stop_at(at(3))
    assert clock() == at(2)  # running
    assert clock() == at(3)  # reached
    assert clock() == at(3)  # and stays, however long the console is open
