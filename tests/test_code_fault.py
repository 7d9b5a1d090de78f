"""A defect of jiancha's own code met by every event stops the reading, not the stream.

An event that passes validation and still makes jiancha's code raise is set
aside alone (``apply_failed``) and the others go on: that is poison isolation
(tests/test_poison.py). But a bug that every event meets would set the whole
stream aside, and a case whose completion was set aside earns a wrong red
card. So once ``CODE_FAULT_STREAK`` events in a row fail alone alike, the
pipeline raises `CodeFault` instead of dead-lettering the last: the worker
keeps the daemon up, says so once (log ``code_fault``, ``jiancha_code_fault 1``,
``systemctl status``), tries again now and then, and reads on once the fault
is gone. Against a real PostgreSQL; the bug is a function that raises.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
import trio

from monitor import daemon, db
from monitor.cli import main
from monitor.pipeline import CODE_FAULT_STREAK, CodeFault, apply_batch
from monitor.revive import revive
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Cursor
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from tests.metricskit import until_metric
from tests.poisonkit import NOW, _j, insert
from tests.sourcekit import SUBMITTED, at, last_position

REAL_FINISH = state_store.finish


def rows(cases: list[str], events: int = 3) -> list[tuple]:
    """Each case's events, the cases' interleaved in time (as a centre's are)."""
    per = [[(cid, "submitted", at(0), _j(0, SUBMITTED)), (cid, "accepted", at(1), _j(0)),
            (cid, "completed", at(2), _j(0))][:events] for cid in cases]  # fmt: skip
    return [case[k] for k in range(events) for case in per]


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The cases whose rebuilding raises (a TypeError of the code): "*" for every case."""
    broken: set[str] = set()

    def finish(done, matters):  # type: ignore[no-untyped-def]
        if "*" in broken or done.state.case_id in broken:
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")
        return REAL_FINISH(done, matters)

    monkeypatch.setattr(state_store, "finish", finish)
    yield broken


async def dead_letters(conn: db.Connection) -> dict[int, tuple[str, str]]:
    got = await conn.fetch("SELECT event_id, reason, detail FROM jiancha.dead_letters")
    return {r["event_id"]: (r["reason"], r["detail"]) for r in got}


async def test_a_fault_every_case_meets_sets_two_aside_then_stops(dsn, bug):
    bug.add("*")
    async with await db.connect(dsn) as conn:
        await insert(conn, rows(["G0", "G1", "G2"]))
        events = await read_batch(conn, START, 100)
        matters = await load_matters(conn)
        with pytest.raises(CodeFault) as raised:
            await apply_batch(conn, events, matters, START, NOW, from_source=True)
        kept = CODE_FAULT_STREAK - 1
        assert raised.value.event_id == events[kept].event_id
        dead = await dead_letters(conn)
        assert sorted(dead) == [e.event_id for e in events[:kept]]
        assert all(r == "apply_failed" and d.startswith("TypeError:") for r, d in dead.values())
        after = Cursor(events[kept - 1].tx, events[kept - 1].event_id)
        assert await state_store.load_cursor(conn) == after
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 0
        assert "jiancha dead-letters retry --reason apply_failed" in raised.value.message("zh")

        # a restart meets it again: nothing more is set aside, the cursor stays
        with pytest.raises(CodeFault):
            await apply_batch(conn, events[kept:], matters, after, NOW, from_source=True)
        assert sorted(await dead_letters(conn)) == sorted(dead)
        assert await state_store.load_cursor(conn) == after

        # fixed: the rest go through, and the two set aside come back when asked
        bug.clear()
        result = await apply_batch(conn, events[kept:], matters, after, NOW, from_source=True)
        assert (result.events, result.dead) == (len(events) - kept, 0)
    retry = ["dead-letters", "retry", "--reason", "apply_failed", "--dsn", dsn]
    assert await trio.to_thread.run_sync(main, retry) == 0
    async with await db.connect(dsn) as conn:
        assert (await revive(conn, await load_matters(conn), NOW)).taken == kept
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == len(events)
        statuses = await conn.fetch("SELECT status FROM jiancha.cases")
        assert [r["status"] for r in statuses] == ["completed"] * 3


async def test_one_case_whose_every_event_fails_is_set_aside_not_a_stop(dsn, bug):
    """A bug that one case's data meets fails every event of it (each rebuilds the case):
    its history written in one go is events in a row, of one case. Set aside, not a stop."""
    bug.add("B0")
    async with await db.connect(dsn) as conn:
        await insert(conn, [*rows(["B0"]), *rows(["G0"])])  # B0's three events, then G0's
        events = await read_batch(conn, START, 100)
        result = await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                   from_source=True)  # fmt: skip
        assert (result.events, result.dead, result.isolated) == (3, 3, 3)
        dead = await dead_letters(conn)
        assert {e.case_id for e in events if e.event_id in dead} == {"B0"}


async def test_faults_with_events_stored_between_them_are_each_set_aside(dsn, bug):
    """A bug only some inputs meet is poison, not a stop: good events between the bad."""
    bug.update({"B0", "B1", "B2", "B3"})
    async with await db.connect(dsn) as conn:
        await insert(conn, [*rows(["B0"], 1), *rows(["G0"]), *rows(["B1"], 1), *rows(["G1"]),
                            *rows(["B2"], 1), *rows(["B3"], 1), *rows(["G2"])])  # fmt: skip
        events = await read_batch(conn, START, 100)
        result = await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                   from_source=True)  # fmt: skip
        assert (result.events, result.dead, result.isolated) == (9, 4, 4)
        dead = await dead_letters(conn)
        assert {e.case_id for e in events if e.event_id in dead} == {"B0", "B1", "B2", "B3"}


async def test_the_daemon_stays_up_says_so_once_and_reads_on_once_fixed(dsn, bug):
    bug.add("*")
    async with await db.connect(dsn) as conn:
        await insert(conn, rows(["G0", "G1", "G2"]))
        end = await last_position(conn)
    config = daemon.DaemonConfig(source_dsn=dsn, dsn=dsn, metrics_address="127.0.0.1:0",
                                 recheck_interval=0.1)  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(daemon.serve, config)
            t = running.worker
            with trio.fail_after(20):
                while t.stats.code_fault is None:
                    await trio.sleep(0.02)
                await trio.sleep(0.5)  # several rechecks: each meets the fault again
                await until_metric(running, "jiancha_code_fault 1.0")
            assert daemon.status_line(running, 0.0).startswith("STATUS=暂停读取")
            bug.clear()
            with trio.fail_after(20):
                while t.stats.cursor < end:
                    await trio.sleep(0.02)
                await until_metric(running, "jiancha_code_fault 0.0")
            assert t.stats.code_fault is None
            assert daemon.status_line(running, 0.0).startswith("STATUS=运行中")
            nursery.cancel_scope.cancel()
    faults = [e for e in logs if e["event"] == "code_fault"]
    assert len(faults) == 1, faults  # one error, not one per recheck
    assert faults[0]["log_level"] == "error" and "程序错误" in faults[0]["error"]
    assert [e["event"] for e in logs].count("code_fault_resolved") == 1
    async with await db.connect(dsn) as conn:
        assert len(await dead_letters(conn)) == CODE_FAULT_STREAK - 1
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 9 - 2


async def test_evaluate_says_what_happened_and_loses_nothing(dsn, bug, capsys):
    """`jiancha evaluate` (a catch-up by hand) stops with the same words, exit status 1."""
    bug.add("*")
    async with await db.connect(dsn) as conn:
        await insert(conn, rows(["G0", "G1", "G2"]))
    args = ["evaluate", "--now", "2024-04-01T08:00", "--dsn", dsn, "--source-dsn", dsn]
    assert await trio.to_thread.run_sync(main, args) == 1
    err = capsys.readouterr().err
    assert "这是 jiancha 的缺陷，不是数据问题" in err and "Traceback" not in err
    async with await db.connect(dsn) as conn:
        assert len(await dead_letters(conn)) == CODE_FAULT_STREAK - 1
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 0
