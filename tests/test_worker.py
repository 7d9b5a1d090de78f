"""The worker against a real PostgreSQL: the tailer's batches taken, cards at their instants."""

from __future__ import annotations

import datetime as dt

import structlog
import trio

from monitor import db
from monitor.evaluator import Evaluator
from monitor.source.contract import Cursor
from monitor.worker import Worker, WorkerConfig
from tests.cardkit import ACCEPTED_FEB8, UTC, z
from tests.sourcekit import SUBMITTED, at, last_position, run_until, write
from tests.test_resilience import prepare_source

NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)


def tailer(dsn: str, **overrides) -> Worker:
    config = WorkerConfig(source_dsn=dsn, dsn=dsn, poll_interval=0.05, probe_interval=0.2,
                          **overrides)  # fmt: skip
    return Worker(config, clock=lambda: NOW)


async def drain(t: Worker, conn: db.Connection, timeout: float = 10.0) -> None:
    """Wait until the tailer's cursor has every visible event."""
    with trio.fail_after(timeout):
        while True:
            last = await conn.fetchrow(
                "SELECT tx::text AS tx, id FROM case_events "
                "ORDER BY case_events.tx DESC, case_events.id DESC LIMIT 1"
            )
            if last is None or t.stats.cursor >= Cursor(int(last["tx"]), last["id"]):
                return
            t.wake()
            await trio.sleep(0.02)


async def test_tail_builds_cases_and_dead_letters(dsn):
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        t = tailer(dsn)
        await nursery.start(t.run)
        await write(conn, [
            ("C1", "submitted", at(0), SUBMITTED),
            ("C1", "accepted", at(1), {}),
            ("C2", "submitted", at(0), {**SUBMITTED, "matter": "M2", "window": "W2"}),
            ("C2", "teleported", at(1), {}),
            ("C3", "submitted", at(0), {**SUBMITTED, "matter": "NOPE"}),
        ])  # fmt: skip
        await drain(t, conn)
        cases = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM jiancha.cases")}
        assert set(cases) == {"C1", "C2"}
        assert cases["C1"]["status"] == "accepted" and cases["C1"]["department"] == "住建局"
        assert (
            cases["C1"]["window"] == "W1" and cases["C1"]["clocks"]["decision"]["limit_days"] == 5
        )
        assert cases["C2"]["status"] == "submitted" and cases["C2"]["department"] == "市场监管局"
        dead = {r["reason"]: r for r in await conn.fetch("SELECT * FROM jiancha.dead_letters")}
        assert set(dead) == {"unknown_kind", "unknown_matter"}
        assert dead["unknown_matter"]["raw"]["payload"]["matter"] == "NOPE"
        assert t.stats.events == 3 and t.stats.dead_letters == 2
        # copied inside the server from case_events: the valid events only, payload intact
        kept = await conn.fetch("SELECT case_id, kind, payload FROM jiancha.events ORDER BY 1, 2")
        assert [(r["case_id"], r["kind"]) for r in kept] == [
            ("C1", "accepted"), ("C1", "submitted"), ("C2", "submitted"),
        ]  # fmt: skip
        assert kept[1]["payload"] == SUBMITTED
        # exported later as metrics: caught up a moment ago, so the lag is small
        await trio.sleep(0.2)
        assert t.stats.connected and t.stats.caught_up_at is not None
        assert 0.0 <= t.stats.lag(trio.current_time()) < 1.0
        assert t.stats.lag(t.stats.caught_up_at + 5.0) == 5.0
        nursery.cancel_scope.cancel()


async def test_open_transaction_holds_the_tailer_back(dsn):
    """A transaction that started early and commits late is not skipped."""
    async with (
        await db.connect(dsn, application_name="writer") as conn,
        await db.connect(dsn, application_name="writer") as slow,
        trio.open_nursery() as nursery,
    ):
        t = tailer(dsn)
        await nursery.start(t.run)
        held = trio.Event()
        release = trio.Event()

        async def late_writer():
            async with slow.transaction():
                await write(slow, [("LATE", "submitted", at(0), SUBMITTED)])
                held.set()
                await release.wait()

        nursery.start_soon(late_writer)
        await held.wait()
        for i in range(5):  # later transactions commit first
            await write(conn, [(f"E{i}", "submitted", at(0), SUBMITTED)])
        await trio.sleep(0.3)
        t.wake()
        await trio.sleep(0.3)
        ids = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM jiancha.cases")}
        assert "LATE" not in ids
        assert ids == set(), "rows behind the open transaction wait for it"
        assert t.tailer.stats.blocking_tx_age > 0
        release.set()
        await trio.sleep(0.1)
        await drain(t, conn)
        ids = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM jiancha.cases")}
        assert ids == {"LATE", "E0", "E1", "E2", "E3", "E4"}
        nursery.cancel_scope.cancel()


async def test_out_of_order_across_batches_equals_in_order(dsn):
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        t = tailer(dsn, batch_size=1)  # every event its own batch and transaction
        await nursery.start(t.run)
        pause = {"type": "survey", "notified_days": 3}
        # delivered: resumed, accepted, suspended, submitted (business time says otherwise)
        for row in [
            ("C1", "resumed", at(30), {}),
            ("C1", "accepted", at(1), {}),
            ("C1", "suspended", at(5), pause),
            ("C1", "submitted", at(0), SUBMITTED),
        ]:
            await write(conn, [row])  # fmt: skip
        for row in [
            ("C2", "submitted", at(0), SUBMITTED),
            ("C2", "accepted", at(1), {}),
            ("C2", "suspended", at(5), pause),
            ("C2", "resumed", at(30), {}),
        ]:
            await write(conn, [row])  # fmt: skip
        await drain(t, conn)
        rows = {
            r["case_id"]: r
            for r in await conn.fetch(
                "SELECT case_id, status, accepted_at, pauses, clocks FROM jiancha.cases"
            )
        }
        assert rows["C1"]["pauses"] == rows["C2"]["pauses"] != []
        assert rows["C1"]["clocks"] == rows["C2"]["clocks"]
        assert rows["C1"]["status"] == rows["C2"]["status"] == "accepted"
        nursery.cancel_scope.cancel()


async def test_tailer_issues_a_card_within_a_second_of_its_instant(dsn, cal, rules):
    """The live daemon path: no event arrives, the card comes from the scheduler's sleep."""
    deadline = z("2024-02-21T16:00:00")
    offset = deadline.timestamp() - 1.5 - trio.current_time()

    def clock() -> dt.datetime:  # wall time 1.5 s before C1's deadline, running at real speed
        return dt.datetime.fromtimestamp(offset + trio.current_time(), UTC)

    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        await conn.execute(
            "INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, "
            "ruleset, calendar, updated_at) VALUES ('C1', 'decision', 'decision_time', 'yellow',"
            " $1, $1, 'x', 'x', $1)",
            z("2024-02-20T16:00:00"),
        )
        config = WorkerConfig(source_dsn=dsn, dsn=dsn, poll_interval=30.0, probe_interval=30.0)
        t = Worker(config, clock=clock, evaluator=Evaluator(rules, cal))
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(t.run)
                with trio.fail_after(10):
                    while not await conn.fetchval(
                        "SELECT count(*) FROM jiancha.cards WHERE level = 'red'"
                    ):
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        # the kernels were loaded once, before the first batch (`Evaluator.warm`)
        assert [e["event"] for e in logs].count("kernels_loaded") == 1
        row = await conn.fetchrow(
            "SELECT issued_at, recorded_at FROM jiancha.cards WHERE level = 'red'"
        )
        assert row["issued_at"] == deadline
        late = (row["recorded_at"] - deadline).total_seconds()
        assert 0 <= late < 1.0, late


async def test_a_live_batch_decides_its_cases_once_and_the_tick_reads_none_back(dsn, cal, rules):
    """A batch that took all that was visible decides its cases as the tick after it would
    (running levels included, in its own transaction), and the ticks read none of them
    back: they did every case twice, and a level the engine declined (a step while the
    case is overdue) came back after every batch that touched the case. With nothing due,
    no tick follows the batch at all."""
    await prepare_source(dsn)
    reloaded: list[str] = []
    ev = Evaluator(rules, cal)
    reload = ev.reload_cases

    async def spy(store, case_ids, *args, **kw):  # type: ignore[no-untyped-def]
        reloaded.extend(case_ids)
        return await reload(store, case_ids, *args, **kw)

    ev.reload_cases = spy  # type: ignore[method-assign]
    ticks: list[dt.datetime] = []
    tick = ev.tick

    async def counting(store, matters, now):  # type: ignore[no-untyped-def]
        ticks.append(now)
        return await tick(store, matters, now)

    ev.tick = counting  # type: ignore[method-assign]
    config = WorkerConfig(source_dsn=dsn, dsn=dsn, poll_interval=0.05, probe_interval=0.2)
    t = Worker(config, clock=lambda: NOW, evaluator=ev)
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        await nursery.start(t.run)
        with trio.fail_after(10):  # the pass after the start (its table is new)
            while not ticks:
                await trio.sleep(0.01)
        await write(conn, [  # both long overdue at NOW; CS's step too, which is declined
            *ACCEPTED_FEB8,
            ("CS", "submitted", z("2024-02-08T01:00:00"), {**SUBMITTED, "matter": "MS"}),
            ("CS", "accepted", z("2024-02-08T02:00:00"), {}),
            ("CS", "step_started", z("2024-02-08T03:00:00"), {"step": "审核"}),
        ])  # fmt: skip
        await drain(t, conn)
        await write(conn, [("CS", "step_started", z("2024-02-09T03:00:00"), {"step": "复核"})])
        await drain(t, conn)
        await trio.sleep(0.5)  # ticks go on meanwhile
        cards = await conn.fetch("SELECT case_id, rule, level, xmin::text AS tx FROM jiancha.cards"
                                 " ORDER BY case_id")  # fmt: skip
        accepted = await conn.fetch(
            "SELECT case_id, xmin::text AS tx FROM jiancha.events WHERE kind = 'accepted'"
        )
        events = {r["case_id"]: r["tx"] for r in accepted}
        nursery.cancel_scope.cancel()
    assert sorted((r["case_id"], r["rule"], r["level"]) for r in cards) == [
        ("C1", "decision_time", "red"), ("C1", "statutory_time", "red"),
        ("CS", "decision_time", "red"), ("CS", "statutory_time", "red"),
    ]  # fmt: skip
    # issued by the batch that brought the case, in its transaction, not by a tick after it
    assert all(r["tx"] == events[r["case_id"]] for r in cards), (cards, events)
    assert reloaded == []
    # nor does a tick follow each batch: nothing came due (the clock stands still here)
    assert len(ticks) == 1, ticks


async def test_a_live_batch_holds_what_committed_while_the_worker_took_the_last(dsn, monkeypatch):
    """The worker's stream is paced: the batch after a slow one is read when the worker is
    free, with every event committed meanwhile, not read ahead at the slow one's start."""
    import monitor.source.tailer
    import monitor.worker

    calls: list[list[str]] = []
    reads: list[list[str]] = []  # what each read of the tailer found
    release = trio.Event()
    original, read = monitor.worker.apply_batch, monitor.source.tailer.read_batch

    async def reading(*args, **kw):  # type: ignore[no-untyped-def]
        got = await read(*args, **kw)
        reads.append([e.case_id for e in got])
        return got

    async def slow_first(conn, events, *args, **kw):  # type: ignore[no-untyped-def]
        calls.append([e.case_id for e in events])
        if len(calls) == 1:
            await release.wait()
        return await original(conn, events, *args, **kw)

    monkeypatch.setattr(monitor.worker, "apply_batch", slow_first)
    monkeypatch.setattr(monitor.source.tailer, "read_batch", reading)
    config = WorkerConfig(source_dsn=dsn, dsn=dsn, poll_interval=10.0, probe_interval=10.0)
    t = Worker(config, clock=lambda: NOW)  # reads on wake-ups only
    async with await db.connect(dsn) as conn, trio.open_nursery() as nursery:
        await nursery.start(t.run)
        await write(conn, [("A", "submitted", at(0), SUBMITTED)])
        t.wake()
        with trio.fail_after(10):
            while not calls:
                await trio.sleep(0.01)
        for case in ("B", "C"):  # committed while the worker takes A's batch
            await write(conn, [(case, "submitted", at(1), SUBMITTED)])
            t.wake()
            await trio.sleep(0.2)
        # no read while the worker is busy (read ahead, one was made at once, and waited)
        assert reads[reads.index(["A"]) + 1 :] == []
        release.set()
        await drain(t, conn)
        nursery.cancel_scope.cancel()
    assert [c for c in calls if c] == [["A"], ["B", "C"]], calls


async def test_a_failing_warm_up_stops_nothing(dsn, cal, rules, monkeypatch):
    """Loading the kernels early is a speed-up: should it fail (a rule file the made-up
    cases trip on), the worker says so and takes its batches all the same."""

    def broken(self, now):  # type: ignore[no-untyped-def]
        raise ValueError("made-up case refused")

    monkeypatch.setattr(Evaluator, "warm", broken)
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        end = await last_position(conn)
    config = WorkerConfig(source_dsn=dsn, dsn=dsn, poll_interval=0.05, probe_interval=0.2)
    t = Worker(config, clock=lambda: z("2024-04-01T00:00:00"), evaluator=Evaluator(rules, cal))
    with structlog.testing.capture_logs() as logs:
        await run_until(t, end, timeout=20)
    [line] = [e for e in logs if e["event"] == "kernels_not_loaded"]
    assert line["log_level"] == "warning" and "made-up case refused" in line["error"]
    assert t.stats.events == len(ACCEPTED_FEB8)
