"""The tailer alone, on a real PostgreSQL: what it hands forward, in which order, and when."""

from __future__ import annotations

import itertools
from functools import partial

import trio

from monitor import db
from monitor.source.contract import START
from monitor.source.tailer import Batch, Tailer
from tests.sourcekit import SUBMITTED, at, write


async def receive(channel: trio.MemoryReceiveChannel[Batch], timeout: float = 10.0) -> Batch:
    with trio.fail_after(timeout):
        return await channel.receive()


async def events_until(
    channel: trio.MemoryReceiveChannel[Batch], n: int, timeout: float = 10.0
) -> list[Batch]:
    """Batches received until ``n`` events have come (caught-up empty ones included)."""
    got: list[Batch] = []
    with trio.fail_after(timeout):
        while sum(len(b.events) for b in got) < n:
            got.append(await channel.receive())
    return got


async def test_batches_chain_and_say_whether_the_reader_caught_up(dsn):
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        await write(conn, [(f"C{i}", "submitted", at(0), SUBMITTED) for i in range(5)])
        send, batches = trio.open_memory_channel[Batch](0)
        tailer = Tailer(dsn, batch_size=2, poll_interval=0.05, probe_interval=10)
        await nursery.start(tailer.stream, START, send)
        got = await events_until(batches, 5)
        assert [len(b.events) for b in got] == [2, 2, 1]
        assert [b.caught_up for b in got] == [False, False, True]  # a short batch: caught up
        assert got[0].before == START
        assert all(b.before == a.after for a, b in itertools.pairwise(got))
        assert [e.case_id for b in got for e in b.events] == [f"C{i}" for i in range(5)]
        assert "M1" in got[0].matters
        # nothing more to read: caught-up batches with no events, at each poll
        idle = await receive(batches)
        assert (idle.events, idle.caught_up, idle.before) == ([], True, got[-1].after)
        nursery.cancel_scope.cancel()


async def test_an_open_transaction_holds_every_later_commit_back(dsn):
    """A transaction that wrote early and commits late is never skipped: rows are handed
    forward only once every transaction older than them has ended."""
    async with (
        await db.connect(dsn, application_name="writer") as conn,
        await db.connect(dsn, application_name="writer") as slow,
        trio.open_nursery() as nursery,
    ):
        held, release = trio.Event(), trio.Event()

        async def late_writer() -> None:
            async with slow.transaction():
                await write(slow, [("LATE", "submitted", at(0), SUBMITTED)])
                held.set()
                await release.wait()

        nursery.start_soon(late_writer)
        await held.wait()
        for i in range(3):  # later transactions commit first
            await write(conn, [(f"E{i}", "submitted", at(0), SUBMITTED)])
        send, batches = trio.open_memory_channel[Batch](0)
        tailer = Tailer(dsn, poll_interval=0.05, probe_interval=0.1)
        await nursery.start(tailer.stream, START, send)
        for _ in range(5):
            assert (await receive(batches)).events == []
        with trio.fail_after(5):
            while tailer.stats.blocking_tx_age <= 0:  # the probe sees who holds it back
                await trio.sleep(0.05)
        release.set()
        got = await events_until(batches, 4)
        # in commit order of the transactions: the one that began first, first
        assert [e.case_id for b in got for e in b.events] == ["LATE", "E0", "E1", "E2"]
        nursery.cancel_scope.cancel()


async def test_a_batch_naming_a_new_matter_carries_the_reloaded_catalogue(dsn):
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        send, batches = trio.open_memory_channel[Batch](0)
        tailer = Tailer(dsn, poll_interval=0.05, probe_interval=10)
        await nursery.start(tailer.stream, START, send)
        first = await receive(batches)
        assert "M9" not in first.matters
        await conn.execute(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days) "
            "VALUES ('M9', '新设事项', '数据局', 20, 3)"
        )
        await write(conn, [("N1", "submitted", at(0), {**SUBMITTED, "matter": "M9"})])
        tailer.wake()
        [batch] = [b for b in await events_until(batches, 1) if b.events]
        assert batch.matters["M9"].name == "新设事项" and batch.matters["M9"].promised_days == 3
        assert first.matters is not batch.matters  # a batch keeps the catalogue it was read with
        nursery.cancel_scope.cancel()


async def test_a_paced_stream_reads_a_live_batch_when_the_receiver_is_ready(dsn):
    """Caught up, a paced stream reads once the receiver says it took the last batch, so
    the batch holds every event committed meanwhile; read ahead (unpaced), the events
    committed after the read's first moment waited for the batch after it."""
    for paced in (True, False):
        async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
            await conn.execute("TRUNCATE case_events")
            await write(conn, [("A", "submitted", at(0), SUBMITTED)])
            send, batches = trio.open_memory_channel[Batch](0)
            tailer = Tailer(dsn, poll_interval=10, probe_interval=10)  # reads on wake-ups only
            await nursery.start(partial(tailer.stream, START, send, paced=paced))
            first = await receive(batches)  # the receiver takes it; it is busy now ...
            assert [e.case_id for e in first.events] == ["A"]
            await write(conn, [("B", "submitted", at(1), SUBMITTED)])
            tailer.wake()
            await trio.sleep(0.3)  # ... while more commits
            await write(conn, [("C", "submitted", at(2), SUBMITTED)])
            tailer.wake()
            tailer.ready(1)  # it took one batch and waits for the next
            nxt = await receive(batches)
            got = [e.case_id for e in nxt.events]
            assert got == (["B", "C"] if paced else ["B"]), (paced, got)
            nursery.cancel_scope.cancel()
