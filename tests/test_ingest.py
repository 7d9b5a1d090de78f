"""One batch, one transaction (``pipeline.apply_batch``): idempotent, order-free, nothing lost."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
import structlog
import trio

from monitor import db, migrate
from monitor.pipeline import apply_batch
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Cursor
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from monitor.worker import Worker, WorkerConfig
from tests.conftest import temporary_database
from tests.sourcekit import SUBMITTED, at, run_until, write

NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)


async def test_replaying_a_batch_changes_nothing(dsn):
    async with await db.connect(dsn) as conn:
        await write(conn, [("C1", "submitted", at(0), SUBMITTED), ("C1", "completed", at(5), {}),
                           ("C9", "bogus", at(1), {})])  # fmt: skip
        events = await read_batch(conn, START, 100)
        matters = await load_matters(conn)
        first = await apply_batch(conn, events, matters, START, NOW)
        before = await conn.fetch("SELECT * FROM jiancha.cases ORDER BY case_id")
        again = await apply_batch(conn, events, matters, START, NOW)
        after = await conn.fetch("SELECT * FROM jiancha.cases ORDER BY case_id")
        assert first.cursor == again.cursor
        assert [dict(r) for r in before] == [dict(r) for r in after]
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 2
        assert await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") == 1


async def test_orphans_are_dead_lettered_after_the_grace_period(dsn):
    async with await db.connect(dsn) as conn:
        await write(conn, [("ORPH", "accepted", at(1), {}), ("ORPH", "completed", at(2), {})])
        events = await read_batch(conn, START, 100)
        matters = await load_matters(conn)
        await apply_batch(conn, events, matters, START, NOW)
        status = await conn.fetchval("SELECT status FROM jiancha.cases WHERE case_id = 'ORPH'")
        assert status == "orphan"
        grace = dt.timedelta(hours=1)
        assert await state_store.sweep_orphans(conn, NOW + dt.timedelta(minutes=30), grace) == 0
        assert await state_store.sweep_orphans(conn, NOW + dt.timedelta(hours=2), grace) == 2
        reasons = await conn.fetch("SELECT reason, kind FROM jiancha.dead_letters ORDER BY kind")
        assert [(r["reason"], r["kind"]) for r in reasons] == [
            ("never_submitted", "accepted"),
            ("never_submitted", "completed"),
        ]
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cases") == 0
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 0


async def test_future_timestamp_is_dead_lettered(dsn):
    async with await db.connect(dsn) as conn:
        await write(conn, [("F1", "submitted", NOW + dt.timedelta(days=3), SUBMITTED)])
        events = await read_batch(conn, START, 100)
        result = await apply_batch(conn, events, await load_matters(conn),
                                          START, NOW)  # fmt: skip
        assert result.dead == 1
        assert await conn.fetchval("SELECT reason FROM jiancha.dead_letters") == "future_timestamp"


async def test_payloads_that_are_not_objects_are_dead_lettered_as_sent(dsn):
    """A jsonb payload may be any JSON value: the dead letter keeps it, nothing crashes."""
    async with await db.connect(dsn) as conn:
        await conn.execute(
            "INSERT INTO case_events (case_id, kind, occurred_at, payload) VALUES "
            "('N1', 'submitted', $1, '[1, \"二\"]'), ('N1', 'completed', $1, '\"完成\"'), "
            "('N1', 'resumed', $1, 'null'), ('N1', 'delivered', $1, '3.5')",
            at(1),
        )
        events = await read_batch(conn, START, 100)
        assert [e.payload for e in events] == [[1, "二"], "完成", None, 3.5]
        result = await apply_batch(conn, events, await load_matters(conn),
                                          START, NOW, from_source=True)  # fmt: skip
        assert (result.events, result.dead) == (0, 4)
        rows = await conn.fetch("SELECT reason, detail, raw FROM jiancha.dead_letters ORDER BY id")
        assert {(r["reason"], r["detail"]) for r in rows} == {
            ("bad_type", "payload is not a JSON object")
        }
        assert [r["raw"]["payload"] for r in rows] == [[1, "二"], "完成", None, 3.5]


async def test_a_large_batch_reduced_in_a_thread_equals_the_inline_path(
    dsn, monkeypatch, copied_tables
):
    """From OVERLAP_MIN_EVENTS events on, cases are reduced while the server stores the
    events; the stored state is the same as reducing them after the events are stored.
    From COPY_MIN_CASES cases on, their rows go by COPY: the same rows as the arrays'."""
    pause = {"type": "survey", "notified_days": 3}
    known = [f"K{i}" for i in range(10)]
    rows: list[tuple[str, str, dt.datetime, dict[str, object]]] = []
    for cid in known:
        rows += [(cid, "submitted", at(0), SUBMITTED), (cid, "accepted", at(1), {})]
    first = len(rows)
    threshold = state_store.OVERLAP_MIN_EVENTS
    fresh = threshold // 5 + 10
    for i in range(fresh):
        cid = f"N{i}"
        rows += [
            (cid, "completed", at(40), {}),  # delivered before its history: order is business time
            (cid, "submitted", at(0), {**SUBMITTED, "window": "窗口二"}),
            (cid, "accepted", at(2), {"promised_days": 3}),
            (cid, "suspended", at(5), pause),
            (cid, "resumed", at(9), {}),
        ]
    for cid in known:  # late events for cases whose history is already stored
        rows += [(cid, "suspended", at(3), pause), (cid, "resumed", at(7), {}),
                 (cid, "decided", at(20), {"result": "approve"})]  # fmt: skip
    rows.append(("K0", "teleported", at(4), {}))
    reduced_on: set[int] = set()
    fold = state_store.fold

    def spy(*args, **kw):
        reduced_on.add(threading.get_ident())
        return fold(*args, **kw)

    monkeypatch.setattr(state_store, "fold", spy)

    async with await db.connect(dsn) as conn:
        await write(conn, rows)
        matters = await load_matters(conn)

        async def apply_all() -> list[list[dict[str, object]]]:
            await conn.execute(
                "TRUNCATE jiancha.events, jiancha.cases, jiancha.dead_letters, jiancha.cursor"
            )
            reduced_on.clear()
            small = await read_batch(conn, START, first)
            done = await apply_batch(conn, small, matters, START, NOW,
                                            from_source=True)  # fmt: skip
            reduced_on.clear()
            big = await read_batch(conn, done.cursor, 100_000)
            assert len(big) == len(rows) - first > threshold
            result = await apply_batch(conn, big, matters, done.cursor, NOW,
                                              from_source=True)  # fmt: skip
            assert result.dead == 1 and result.cases == len(known) + fresh
            return [
                [dict(r) for r in await conn.fetch(f"SELECT * FROM jiancha.{table} ORDER BY 1")]
                for table in ("cases", "events", "dead_letters")
            ]

        monkeypatch.setattr(state_store, "COPY_MIN_CASES", 100)
        threaded = await apply_all()
        assert reduced_on and threading.get_ident() not in reduced_on
        assert copied_tables == ["jiancha_case_rows"]  # the large batch's rows, not the small one's
        monkeypatch.setattr(state_store, "OVERLAP_MIN_EVENTS", 10**9)
        monkeypatch.setattr(state_store, "COPY_MIN_CASES", 10**9)
        inline = await apply_all()
        assert reduced_on == {threading.get_ident()} and copied_tables == ["jiancha_case_rows"]
        # a second large batch in the session: the temporary table was emptied at commit
        monkeypatch.setattr(state_store, "COPY_MIN_CASES", 100)
        again = await apply_all()
        assert copied_tables == ["jiancha_case_rows"] * 2
    for table in threaded[2] + inline[2] + again[2]:
        table.pop("id")  # dead_letters' identity column moves on
    assert threaded == inline == again
    cases = {c["case_id"]: c for c in threaded[0]}
    assert cases["K3"]["status"] == "decided" and len(cases["K3"]["pauses"]) == 1
    assert cases["N7"]["status"] == "completed" and cases["N7"]["window"] == "窗口二"


@pytest.mark.parametrize("size", [3, state_store.OVERLAP_MIN_EVENTS + 5])
@pytest.mark.parametrize("from_source", [True, False], ids=["copy", "stream"])
async def test_a_batch_that_meets_stored_events_is_taken_again_skipping_them(
    dsn, size, from_source
):
    """The server-side copy and the binary COPY (jiancha in another database) have no ON
    CONFLICT (the range is past the committed cursor); if stored events turn up all the
    same (a second tailer, a cursor set back by hand), the key stops the batch and it is
    taken again: same state, nothing lost or doubled."""
    async with await db.connect(dsn) as conn:
        rows = [(f"S{i // 3}", ("submitted", "accepted", "completed")[i % 3], at(i % 3),
                 SUBMITTED if i % 3 == 0 else {}) for i in range(size)]  # fmt: skip
        await write(conn, rows)
        events = await read_batch(conn, START, 100_000)
        matters = await load_matters(conn)
        first = await apply_batch(conn, events[:-1], matters, START, NOW,
                                         from_source=from_source)  # fmt: skip
        assert first.events == size - 1
        before = await conn.fetch("SELECT * FROM jiancha.events ORDER BY event_id")
        with structlog.testing.capture_logs() as logs:
            # as if the cursor had been set back to the start: all but one are stored
            again = await apply_batch(conn, events, matters, START, NOW,
                                             from_source=from_source)  # fmt: skip
        assert [e["event"] for e in logs] == ["batch_retaken_skipping_stored_events"]
        assert again.events == size and again.cursor == Cursor.after(events, first.cursor)
        after = await conn.fetch("SELECT * FROM jiancha.events ORDER BY event_id")
        assert [dict(r) for r in after[:-1]] == [dict(r) for r in before]
        assert len(after) == size
        cases = await conn.fetch("SELECT case_id, status, event_count FROM jiancha.cases")
        assert len(cases) == (size + 2) // 3
        assert sum(c["event_count"] for c in cases) == size
        # the next batch, past the committed cursor, takes the plain copy again
        await write(conn, [("S0", "delivered", at(4), {})])
        more = await read_batch(conn, again.cursor, 100)
        with structlog.testing.capture_logs() as logs:
            await apply_batch(conn, more, matters, again.cursor, NOW, from_source=from_source)
        assert logs == []


async def test_cancelled_while_a_thread_reduces_the_batch_rolls_it_back(dsn, monkeypatch):
    """SIGTERM (a cancelled scope) in the middle of a large batch: the worker thread
    finishes its pure work, the transaction rolls back, nothing of the batch stays."""
    rows = []
    for i in range(state_store.OVERLAP_MIN_EVENTS // 2 + 5):
        rows += [(f"X{i}", "submitted", at(0), SUBMITTED), (f"X{i}", "accepted", at(1), {})]
    reducing = threading.Event()
    release = threading.Event()
    fold = state_store.fold

    def slow(*args, **kw):
        reducing.set()
        release.wait(5)  # hold the thread until the scope is cancelled
        return fold(*args, **kw)

    monkeypatch.setattr(state_store, "fold", slow)
    async with await db.connect(dsn) as conn:
        await write(conn, rows)
        events = await read_batch(conn, START, 100_000)
        matters = await load_matters(conn)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_when_reducing() -> None:
                    await trio.to_thread.run_sync(reducing.wait)
                    scope.cancel()
                    release.set()

                nursery.start_soon(cancel_when_reducing)
                await apply_batch(conn, events, matters, START, NOW,
                                         from_source=True)  # fmt: skip
        assert scope.cancelled_caught
        for table in ("events", "cases", "cursor", "dead_letters"):
            assert await conn.fetchval(f"SELECT count(*) FROM jiancha.{table}") == 0, table
        monkeypatch.setattr(state_store, "fold", fold)
        done = await apply_batch(
            conn, events, matters, START, NOW, from_source=True
        )  # the same connection, afterwards
        assert done.events == len(rows)
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cases") == len(rows) // 2


async def test_a_chatty_case_advances_by_its_new_events_and_a_late_one_rebuilds(dsn, monkeypatch):
    """With the tailer's cache, a case hit by batch after batch is advanced from its kept
    fold (its history is neither re-read nor re-walked); an event that sorts before the
    last applied one rebuilds it from the stored history. The rows equal a cold rebuild."""
    rebuilt: list[str] = []
    fold = state_store.fold

    def spy(case_id, events):
        rebuilt.append(case_id)
        return fold(case_id, events)

    monkeypatch.setattr(state_store, "fold", spy)
    cache = state_store.FoldCache()
    async with await db.connect(dsn) as conn:
        matters = await load_matters(conn)
        cursor = START
        batches = [[("CH", "submitted", at(0), SUBMITTED), ("CH", "accepted", at(1), {})]]
        batches += [[("CH", "fee_charged", at(2 + k / 10), {"amount": 1})] for k in range(40)]
        batches.append([("CH", "suspended", at(1.5), {"type": "survey", "notified_days": 3})])
        for rows in batches:
            await write(conn, rows)
            events = await read_batch(conn, cursor, 100)
            cursor = (await apply_batch(conn, events, matters, cursor, NOW, cache=cache,
                                        from_source=True)).cursor  # fmt: skip
        assert rebuilt == ["CH", "CH"]  # first sight, and the late suspension
        warm = dict(await conn.fetchrow("SELECT * FROM jiancha.cases WHERE case_id = 'CH'"))
        await conn.execute("TRUNCATE jiancha.events, jiancha.cases, jiancha.cursor")
        events = await read_batch(conn, START, 1000)
        await apply_batch(conn, events, matters, START, NOW, from_source=True)
        cold = dict(await conn.fetchrow("SELECT * FROM jiancha.cases WHERE case_id = 'CH'"))
    assert warm["event_count"] == 43 and float(warm["fees"]) == 40
    assert len(warm["pauses"]) == 1
    assert warm == cold


@pytest.fixture(scope="module")
def own_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A second database for jiancha's schema alone (the source is ``dsn``'s)."""
    with temporary_database(pg_server_dsn, "jiancha_own") as own:
        yield own


async def test_jiancha_in_another_database_takes_every_event_once(dsn, own_dsn):
    """The worker with its schema in another database: the events go by binary COPY (a
    large batch) or as parameters with their case rows (a small one), equal to the source's
    rows; a cursor set back by hand takes the batch again skipping the
    stored ones (ON CONFLICT), nothing doubled."""
    rows = [(f"D{i // 3}", ("submitted", "accepted", "completed")[i % 3], at(i % 3),
             {**SUBMITTED, "window": f"窗口{i}"} if i % 3 == 0 else {})
            for i in range(30)]  # fmt: skip
    rows.append(("D0", "bogus", at(4), {}))  # a dead letter, in jiancha's database too
    async with await db.connect(own_dsn) as own:
        await migrate.migrate(own)
        await own.execute(
            "TRUNCATE jiancha.events, jiancha.cases, jiancha.dead_letters, jiancha.cursor"
        )
    async with await db.connect(dsn) as src, await db.connect(own_dsn) as own:
        await write(src, rows)
        end = Cursor.after(await read_batch(src, START, 1000), START)

        async def run_worker(batch_size: int) -> None:
            config = WorkerConfig(source_dsn=dsn, dsn=own_dsn, batch_size=batch_size,
                                  poll_interval=0.05, probe_interval=0.5)  # fmt: skip
            await run_until(Worker(config, clock=lambda: NOW), end, poll=0.05)

        await run_worker(7)
        source = {r["id"]: r for r in await src.fetch("SELECT * FROM case_events")}
        stored = await own.fetch("SELECT *, tx::text AS tx_text FROM jiancha.events")
        assert len(stored) == 30 and await src.fetchval("SELECT count(*) FROM jiancha.events") == 0
        for r in stored:
            s = source[r["event_id"]]
            assert (r["tx_text"], r["case_id"], r["kind"], r["occurred_at"], r["payload"]) == (
                str(s["tx"]), s["case_id"], s["kind"], s["occurred_at"], s["payload"])  # fmt: skip
        assert await own.fetchval("SELECT count(*) FROM jiancha.dead_letters") == 1
        before = [dict(r) for r in await own.fetch("SELECT * FROM jiancha.cases ORDER BY 1")]
        assert [c["status"] for c in before] == ["completed"] * 10
        # set back by hand: every batch meets stored events and is taken again without them
        await own.execute("UPDATE jiancha.cursor SET tx = '0'::xid8, event_id = 0")
        with structlog.testing.capture_logs() as logs:
            await run_worker(1000)
        assert "batch_retaken_skipping_stored_events" in [e["event"] for e in logs]
        assert await own.fetchval("SELECT count(*) FROM jiancha.events") == 30
        after = [dict(r) for r in await own.fetch("SELECT * FROM jiancha.cases ORDER BY 1")]
        for row in before + after:
            row.pop("updated_at")
        assert after == before


@pytest.mark.parametrize("from_source", [True, False], ids=["copy", "stream"])
async def test_a_live_batch_is_one_statement_between_begin_and_commit(
    dsn, monkeypatch, from_source
):
    """On a busy host a live batch's latency is mostly its round trips: a small batch of
    cached cases stores its events, case rows and cursor in one statement; a batch that
    must look up cases (first sight, a late arrival) reads their first sight and history
    in one more. The rows equal the statements taken one by one (a large batch's path)."""
    calls: list[str] = []
    call = db.Connection._call

    async def spying(self: db.Connection, method, *args, **kw):
        query = args[0] if args and isinstance(args[0], str) else ""
        calls.append(method.__name__ + (" " + query.split()[0] if query else ""))
        return await call(self, method, *args, **kw)

    cache = state_store.FoldCache()
    SURVEY = {"type": "survey", "notified_days": 3}
    async with await db.connect(dsn) as conn:
        matters = await load_matters(conn)
        cursor = START
        batches = [
            [("L1", "submitted", at(0), SUBMITTED), ("L2", "submitted", at(0), SUBMITTED)],
            [("L1", "accepted", at(1), {}), ("L2", "accepted", at(1), {})],
            [("L1", "completed", at(3), {}), ("L2", "suspended", at(0.5), SURVEY)],
            [("L1", "delivered", at(4), {}), ("L1", "bogus", at(4), {})],
        ]
        seen = []
        for rows in batches:
            await write(conn, rows)
            events = await read_batch(conn, cursor, 100)
            monkeypatch.setattr(db.Connection, "_call", spying)
            done = await apply_batch(conn, events, matters, cursor, NOW, cache=cache,
                                     from_source=from_source)  # fmt: skip
            monkeypatch.setattr(db.Connection, "_call", call)
            seen.append(calls[:])
            calls.clear()
            assert done.cursor == Cursor.after(events, cursor)
            assert await state_store.load_cursor(conn) == done.cursor
            cursor = done.cursor
        assert seen == [
            ["start", "fetch SELECT", "execute WITH", "commit"],  # first sight
            ["start", "execute WITH", "commit"],  # cached, in order
            ["start", "fetch SELECT", "execute WITH", "commit"],  # L2's late suspension
            ["start", "execute INSERT", "execute WITH", "commit"],  # a dead letter first
        ]
        live = [dict(r) for r in await conn.fetch("SELECT * FROM jiancha.cases ORDER BY 1")]
        await conn.execute("TRUNCATE jiancha.events, jiancha.cases, jiancha.cursor")
        monkeypatch.setattr(state_store, "OVERLAP_MIN_EVENTS", 1)  # each statement alone
        events = await read_batch(conn, START, 100)
        await apply_batch(conn, events, matters, START, NOW, from_source=from_source)
        alone = [dict(r) for r in await conn.fetch("SELECT * FROM jiancha.cases ORDER BY 1")]
        assert await conn.fetchval("SELECT events FROM jiancha.cursor") == len(events)
    assert [(r["status"], r["event_count"]) for r in live] == [("delivered", 4), ("accepted", 3)]
    assert live == alone
