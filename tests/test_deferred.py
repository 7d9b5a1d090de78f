"""A backlog's cases decided once, after catching up (migration 0016), give the same ledger.

Batches taken while more events are visible store their cases undecided; once
caught up each is decided once. The ledger must equal the one of deciding every
batch's cases in that batch, and a crash between the two (the cases stored, the
mark still set) must lose nothing: the next start decides them.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from monitor import db
from monitor import worker as worker_module
from monitor.calendar import load_calendar
from monitor.cards.ledger import DbStore
from monitor.evaluator import Evaluator
from monitor.pipeline import apply_batch
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.source.contract import START
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from monitor.whatif.simulate import Profile, generate, load_catalogue
from monitor.whatif.source_writer import install_matters, write_events
from monitor.worker import Worker, WorkerConfig
from tests.cardkit import counted_ticks, events_of, ledger
from tests.clocks.test_checkpoint import rows
from tests.sourcekit import reset
from tests.test_worker import drain

FIRST = dt.date(2024, 3, 4)
BATCH = 97  # a case's events fall in several batches
# a centre that breaks many rules: late decisions, steps and pauses, asked twice, ...
UNRULY = Profile(late=0.4, statutory_late=0.1, step_overrun=0.3, pause_overrun=0.4,
                 extended=0.3, second_supplement=0.4, refused=0.1, refused_without_reason=0.6,
                 pledged=0.3, pledge_late=0.6, suspended=0.6, review_visit_late=0.6)  # fmt: skip
HISTORY = generate(load_catalogue(), load_calendar("cn"), FIRST, 5, seed=21, per_day=40,
                   profile=UNRULY)  # fmt: skip
# a while before the last event: some cases still run (the tick cards them), none ahead
NOW = HISTORY[-1].occurred_at - dt.timedelta(days=3)


async def take_all(conn: db.Connection, ev: Evaluator, *, defer: bool, crash: bool = False) -> int:
    """Read and take every event in batches; the deferred cases decided unless ``crash``
    (then the last batch too is taken deferred: the process died before deciding)."""
    matters = await load_matters(conn)
    await ev.start(conn, matters, NOW)
    cursor, batches = START, 0
    while events := await read_batch(conn, cursor, BATCH):
        result = await apply_batch(conn, events, matters, cursor, NOW, evaluator=ev,
                                   defer=defer and (crash or len(events) == BATCH))  # fmt: skip
        cursor, batches = result.cursor, batches + 1
    if crash:
        return batches
    await ev.decide_undecided(conn, matters, NOW)
    await ev.tick(conn, matters, NOW)
    return batches


def evaluator() -> Evaluator:
    return Evaluator(load_rules("cards"), load_calendar("cn"))


async def outcome(conn: db.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    figures = await conn.fetch(
        "SELECT case_id, status, decision_deadline, outcome, undecided FROM jiancha.cases "
        "ORDER BY case_id"
    )
    events = [e[:4] for e in await events_of(conn)]  # not when (the run's own instants)
    return await ledger(conn), events, [tuple(r) for r in figures]


async def test_deciding_once_after_the_backlog_equals_deciding_every_batch(dsn: str) -> None:
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
        batches = await take_all(conn, evaluator(), defer=False)
        every_batch = await outcome(conn)
        await reset(dsn, source=False)
        with capture_logs() as logs:
            await take_all(conn, evaluator(), defer=True)
        once = await outcome(conn)
        cases = await conn.fetchval("SELECT count(*) FROM jiancha.cases")
        await reset(dsn, source=False)
        # a crash after the backlog was stored, before its cases were decided
        await take_all(conn, evaluator(), defer=True, crash=True)
        stored = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
        cards_before_restart = await conn.fetchval("SELECT count(*) FROM jiancha.cards")
        restarted = evaluator()  # a new process: it knows nothing of what was deferred
        matters = await load_matters(conn)
        await restarted.start(conn, matters, NOW)
        await restarted.decide_undecided(conn, matters, NOW)
        await restarted.tick(conn, matters, NOW)
        after_crash = await outcome(conn)
    assert batches > 10 and len(every_batch[0]) > 20  # the history is a backlog that cards
    assert once == every_batch
    said = [r for r in logs if r["event"] == "backlog_decided"]  # what an operator reads
    assert len(said) == 1 and said[0]["caught_up"] and 100 < said[0]["cases"] <= cases
    assert stored > 100 and cards_before_restart == 0  # deferred: nothing was decided
    assert after_crash == every_batch
    assert not any(row[-1] for row in after_crash[2])  # every mark cleared


async def every_batch_decided(conn: db.Connection, dsn: str) -> tuple[list[Any], ...]:
    """The reference: the history taken with every batch's cases decided in it; then
    jiancha's tables emptied, the source kept."""
    await install_matters(conn, load_catalogue().matters)
    await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
    await take_all(conn, evaluator(), defer=False)
    every_batch = await outcome(conn)
    await reset(dsn, source=False)
    return every_batch


async def test_a_backlog_decided_a_chunk_ahead_in_a_thread_gives_the_same_ledger(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 17 cases: each after the first is decided in a worker thread while the
    one before is written, read after the last case of the one before (no case twice,
    none left out). A write that fails part-way (the third chunk's) leaves that chunk and
    the rest marked; deciding again gives the ledger of deciding every batch."""
    async with await db.connect(dsn) as conn:
        every_batch = await every_batch_decided(conn, dsn)
        ev = evaluator()
        await take_all(conn, ev, defer=True, crash=True)
        matters = await load_matters(conn)
        marked = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
        where: list[tuple[bool, int]] = []  # (on the main thread, cases) of each set decided
        decide, mark = ev._decide, state_store.mark_decided

        def spy(views: Any, *args: Any, **kw: Any) -> Any:
            where.append((threading.current_thread() is threading.main_thread(), len(views)))
            return decide(views, *args, **kw)

        marks: list[int] = []

        async def third_fails(conn: db.Connection, ids: Any) -> None:
            # counted by the writes, not by ``where``: the thread deciding the fourth
            # chunk may not have begun when the third's write reaches this point
            marks.append(len(ids))
            if len(marks) == 3:
                raise RuntimeError("the server went away")
            await mark(conn, ids)

        monkeypatch.setattr(ev, "_decide", spy)
        monkeypatch.setattr(state_store, "mark_decided", third_fails)
        with pytest.raises(BaseException) as failed:
            await ev.decide_undecided(conn, matters, NOW, chunk=17)
        left = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
        first = list(where)
        monkeypatch.setattr(state_store, "mark_decided", mark)
        where.clear()
        done = await ev.decide_undecided(conn, matters, NOW, chunk=17)
        await ev.tick(conn, matters, NOW)
        got = await outcome(conn)
    assert db.only(failed.value, RuntimeError) is not None
    assert marked > 100 and left == marked - 2 * 17 and done == left
    assert got == every_batch
    assert first[0] == (True, 17) and all(not main for main, _ in first[1:]) and len(first) == 4
    cases = [n for _, n in where if n]
    assert where[0][0] and all(not main for main, n in where[1:] if n)  # a chunk ahead
    assert sum(cases) <= left and len(cases) == -(-left // 17)


@pytest.mark.parametrize("every", [worker_module.DEFERRED_EVERY, 0.0])
async def test_the_daemon_defers_its_backlog_and_decides_it_once_caught_up(
    dsn: str, every: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``every`` 0: a backlog that never ends, as far as the daemon can tell: its deferred
    cases are decided along the way too (as batches decided them), the ledger the same."""
    monkeypatch.setattr(worker_module, "DEFERRED_EVERY", every)
    along: list[bool] = []
    async with await db.connect(dsn) as conn:
        every_batch = await every_batch_decided(conn, dsn)
        ev = evaluator()
        decide = ev.decide_undecided

        async def recorded(*args: Any, caught_up: bool = True, **kw: Any) -> int:
            along.append(caught_up)
            return await decide(*args, caught_up=caught_up, **kw)

        ev.decide_undecided = recorded  # type: ignore[method-assign]
        ticking = counted_ticks(ev)
        worker = Worker(WorkerConfig(dsn, dsn, batch_size=BATCH, poll_interval=0.05),
                        clock=lambda: NOW, evaluator=ev)  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            await drain(worker, conn)
            with trio.fail_after(20):  # the pass after catching up: deferred cases, then tick
                while ev.undecided or ev.stats.ticks == 0 or ev.due(NOW) or ticking[0]:
                    worker.wake()
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        assert worker.stats.batches > 10
        assert await outcome(conn) == every_batch
    # once, when caught up; in a backlog that lasts, along the way instead
    assert along == [True] if every else along.count(False) > 5


async def test_a_long_backlog_beats_while_it_is_decided(dsn: str) -> None:
    """Chunk by chunk, with a heartbeat after each: a city's day of backlog is minutes of
    deciding, longer than the watchdog waits (`[daemon] stuck_after`)."""
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
        await take_all(conn, evaluator(), defer=True, crash=True)
        marked = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
        ev, beats = evaluator(), []
        ev.beat = lambda: beats.append(1)
        decided = await ev.decide_undecided(conn, await load_matters(conn), NOW, chunk=40)
        left = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
    assert decided == marked and left == 0
    assert len(beats) == -(-marked // 40)  # one a chunk


async def test_a_start_decides_its_open_cases_in_chunks_with_a_beat_after_each(dsn: str) -> None:
    """A start over many open cases (a province, a new rule set) is one transaction decided
    a chunk at a time: a heartbeat after each chunk, the same table and ledger as in one."""
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        mid = HISTORY[len(HISTORY) // 2].occurred_at  # the centre in mid-stream: many open
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= mid])
        await take_all(conn, evaluator(), defer=False)
        matters = await load_matters(conn)
        before = await outcome(conn)
        opened = len(await DbStore(conn).open_case_ids())
        tables = []
        for chunk in (17, 10_000):
            ev, beats = evaluator(), []
            ev.beat = lambda beats=beats: beats.append(trio.current_time())
            await ev.start(conn, matters, NOW, chunk=chunk)
            tables.append(rows(ev.table))
            assert len(beats) == -(-opened // chunk)
        worker = Worker(WorkerConfig(dsn, dsn), evaluator=(ev := evaluator()))
        heard: list[int] = []
        worker.beat = lambda: heard.append(1)  # the daemon sets it after the worker is built
        await ev.start(conn, matters, NOW, chunk=50)
        after = await outcome(conn)
    assert opened > 50
    assert tables[0] == tables[1] and len(tables[0]) > 50
    assert len(heard) == -(-opened // 50)  # the evaluator beats the worker's heart
    assert after == before  # a start on the same rules changes no card


async def test_a_deferred_case_is_written_once_when_it_is_decided(dsn: str) -> None:
    """Its figures and the clearing of its mark are one write of its row, not two: a
    backlog's cases are many, and each write of a row is a new version of it."""
    updated = "SELECT pg_stat_get_xact_tuples_updated('jiancha.cases'::regclass)"
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
        await take_all(conn, evaluator(), defer=True, crash=True)  # stored, marked, undecided
        marked = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
        ev, matters = evaluator(), await load_matters(conn)
        await ev.start(conn, matters, NOW)
        async with conn.transaction():  # decide_undecided's own become savepoints in it
            before = await conn.fetchval(updated)
            decided = await ev.decide_undecided(conn, matters, NOW)
            writes = await conn.fetchval(updated) - before
        left = await conn.fetchval("SELECT count(*) FROM jiancha.cases WHERE undecided")
    assert marked > 100 and decided == marked and left == 0
    assert writes == marked


async def test_deferred_cases_are_decided_from_the_views_their_batches_kept(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluator that deferred them keeps their views: none is read back from its row,
    except a row that moved on since (another writer) or one past what it keeps. The
    ledger is the one of a new process that reads every row."""
    read: list[str] = []
    cases = DbStore.cases

    async def counted(self: DbStore, ids: Any) -> Any:
        read.extend(ids)
        return await cases(self, ids)

    monkeypatch.setattr(DbStore, "cases", counted)
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
        matters = await load_matters(conn)
        # a new process decides them from their rows: the reference
        await take_all(conn, evaluator(), defer=True, crash=True)
        fresh = evaluator()
        await fresh.start(conn, matters, NOW)
        await fresh.decide_undecided(conn, matters, NOW)
        reference = await outcome(conn)
        results, reads = [], []
        for room in (10_000, 40):
            await reset(dsn, source=False)
            ev = evaluator()
            ev.deferred.room = room
            await take_all(conn, ev, defer=True, crash=True)
            kept = len(ev.deferred.kept)
            moved = await conn.fetchval(  # as if another writer had rewritten it
                "UPDATE jiancha.cases SET last_event_id = last_event_id + 1 WHERE case_id = "
                "(SELECT min(case_id) FROM jiancha.cases WHERE undecided) RETURNING case_id"
            )
            read.clear()
            await ev.decide_undecided(conn, matters, NOW)
            results.append(await outcome(conn))
            reads.append((kept, list(read), len(ev.deferred.kept)))
        marked = await conn.fetchval("SELECT count(*) FROM jiancha.cases")
    assert results == [reference, reference]
    (kept, got, left), (few, got_few, left_few) = reads
    assert kept > 100 and got == [moved] and left == 0  # only the one that moved on is read
    assert few == 40 and len(got_few) >= marked - 40 and left_few == 0


async def test_a_case_a_batch_decides_is_no_longer_kept_as_deferred(dsn: str) -> None:
    async with await db.connect(dsn) as conn:
        await install_matters(conn, load_catalogue().matters)
        await write_events(conn, [e for e in HISTORY if e.occurred_at <= NOW])
        ev = evaluator()
        await take_all(conn, ev, defer=True, crash=True)
        kept = set(ev.deferred.kept)
        cursor = await state_store.load_cursor(conn)
        await write_events(conn, [e for e in HISTORY if e.occurred_at > NOW])
        events = await read_batch(conn, cursor, 100_000)
        later = HISTORY[-1].occurred_at  # none of them in the future
        await apply_batch(conn, events, await load_matters(conn), cursor, later, evaluator=ev)
    touched = {e.case_id for e in events}
    assert kept & touched  # later events of deferred cases, decided in that batch
    assert not set(ev.deferred.kept) & touched and set(ev.deferred.kept) == kept - touched
