"""A case the engine raises on is marked and left undecided; the daemon and every other case
go on, and once the defect is fixed the case's ledger is as if it had never been.

Before, the error rose out of the batch, the tick or the start: the daemon stopped,
systemd started it again, its start decided every open case, met the same one and
stopped again. Against a real PostgreSQL; the defect is `periods` raising for the
cases named (what the engine computes first for every case, on every path).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import trio

from monitor import daemon, db
from monitor.cli import main
from monitor.engine import decide as engine_decide
from monitor.evaluator import Evaluator
from tests.cardkit import SUB, Driver, ledger, z
from tests.metricskit import until_metric
from tests.sourcekit import write

REAL_PERIODS = engine_decide.periods
ERROR = "IndexError: list index out of range"


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The cases whose periods raise (an IndexError of the code)."""
    broken: set[str] = set()

    def periods(case, *args, **kwargs):  # type: ignore[no-untyped-def]
        if case.case_id in broken:
            raise IndexError("list index out of range")
        return REAL_PERIODS(case, *args, **kwargs)

    monkeypatch.setattr(engine_decide, "periods", periods)
    yield broken


def accepted(*cases: str) -> list[tuple[str, str, dt.datetime, dict[str, Any]]]:
    """Cases submitted and accepted on Feb 8 2024 (M1: 5 working days, red on Feb 21 24:00)."""
    sub, acc = z("2024-02-08T01:00:00"), z("2024-02-08T02:00:00")
    return [row for c in cases for row in ((c, "submitted", sub, SUB), (c, "accepted", acc, {}))]


def cards_of(rows: list[tuple], case_id: str) -> list[tuple]:
    """A case's cards without its id: (clock, rule, level, issued_at)."""
    return [r[1:5] for r in rows if r[0] == case_id]


async def marks(conn: db.Connection) -> dict[str, str]:
    got = await conn.fetch("SELECT case_id, decide_error FROM jiancha.cases "
                           "WHERE decide_error IS NOT NULL")  # fmt: skip
    return {r["case_id"]: r["decide_error"] for r in got}


FEB8 = z("2024-02-08T03:00:00")


async def stored(conn: db.Connection, rules: Any, cal: Any) -> Driver:
    """C1 and C2 accepted on Feb 8, read in then: the batch that stores them decides them."""
    await write(conn, accepted("C1", "C2"))
    d = Driver(conn, Evaluator(rules, cal))
    await d.start(FEB8)
    await d.ingest(FEB8)
    return d


async def test_a_case_that_raises_is_marked_and_the_others_get_their_cards(dsn, cal, rules, bug):
    bug.add("C1")
    async with await db.connect(dsn) as conn:
        with structlog.testing.capture_logs() as logs:
            d = await stored(conn, rules, cal)  # C1 raises in the batch
            await d.run_until(z("2024-02-22T00:00:00"), FEB8)  # ticks: C2's cards
        # nothing of C1 is lost or set aside: its events are stored, its row marked
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 4
        assert await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") == 0
        assert await marks(conn) == {"C1": ERROR}
        got = await ledger(conn)
        assert [r[3] for r in got if r[0] == "C2"] == ["blue", "red", "yellow"]
        assert cards_of(got, "C1") == []
        assert d.ev.stats.not_decided == 1 and d.ev.table.by_case.get("C1") is None
        said = [e for e in logs if e["event"] == "cases_not_decided"]
        assert len(said) == 1, said  # the ticks do not meet it again: its rows left the table
        assert said[0]["log_level"] == "error" and said[0]["case_ids"] == ["C1"]
        assert said[0]["errors"] == {"IndexError": 1} and "jiancha 的缺陷" in said[0]["message"]
        assert isinstance(said[0]["exc_info"], IndexError)  # the traceback for the developers


async def test_a_start_that_meets_it_goes_on_and_a_fix_gives_the_same_ledger(dsn, cal, rules, bug):
    """The crash loop: a start decides every open case. Now it marks the one, and the
    start after the fix decides it with the cards it was owed, at their own instants."""
    async with await db.connect(dsn) as conn:
        await stored(conn, rules, cal)
        assert await ledger(conn) == []
        bug.add("C1")  # a release with a defect that C1's data meets
        later = z("2024-02-22T00:00:00")
        d2 = Driver(conn, Evaluator(rules, cal))
        await d2.start(later)  # raised out of here before, at every start
        await d2.run_until(later, later)
        assert await marks(conn) == {"C1": ERROR}
        assert cards_of(await ledger(conn), "C1") == []
        # away since Feb 8: the level reached is issued at its own instant
        red = ("decision", "decision_time", "red", z("2024-02-21T16:00:00"))
        assert cards_of(await ledger(conn), "C2") == [red]
        # the case completes while it cannot be decided: the event is stored, the mark stays
        await write(conn, [("C1", "completed", z("2024-02-23T02:00:00"), {}),
                           ("C2", "completed", z("2024-02-23T02:00:00"), {})])  # fmt: skip
        done = z("2024-02-23T03:00:00")
        await d2.ingest(done)
        assert await marks(conn) == {"C1": ERROR}
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 6
        bug.clear()  # the fixed release
        d3 = Driver(conn, Evaluator(rules, cal))
        with structlog.testing.capture_logs() as logs:
            await d3.start(done)  # C1 is completed and has no open card: decided for its mark
            await d3.run_until(done, done)
        assert await marks(conn) == {}
        assert d3.ev.stats.not_decided == 0
        assert [e["case_ids"] for e in logs if e["event"] == "cases_decided_again"] == [["C1"]]
        got = await ledger(conn)
        assert cards_of(got, "C1") == cards_of(got, "C2") == [red]  # owed, at its instant
        assert {r[5] for r in got} == {"closed"}  # both cases are completed
        figures = await conn.fetch("SELECT case_id, decision_deadline, outcome "
                                   "FROM jiancha.cases ORDER BY case_id")  # fmt: skip
        assert [tuple(r)[1:] for r in figures] == [(z("2024-02-21T16:00:00"), "late")] * 2


async def test_a_resume_from_a_checkpoint_decides_the_marked_cases(dsn, cal, rules, bug):
    """A checkpoint's table holds no row of a marked case, and it has not changed since."""
    bug.add("C1")
    async with await db.connect(dsn) as conn:
        d = await stored(conn, rules, cal)
        assert await marks(conn) == {"C1": ERROR}
        bug.clear()
        ev = Evaluator(rules, cal)
        saved = d.ev.table  # what a checkpoint would hold: C2's rows only
        assert set(saved.by_case) == {"C2"}
        await ev.resume(conn, d.matters, FEB8, saved, changed=[])
        assert await marks(conn) == {} and ev.stats.not_decided == 0
        assert set(ev.table.by_case) == {"C1", "C2"}


async def test_the_daemon_says_so_in_its_metric_and_status(dsn, bug):
    bug.add("C1")
    async with await db.connect(dsn) as conn:
        await write(conn, accepted("C1", "C2"))
    config = daemon.DaemonConfig(source_dsn=dsn, dsn=dsn, metrics_address="127.0.0.1:0")
    async with trio.open_nursery() as nursery:
        running = await nursery.start(daemon.serve, config)
        with trio.fail_after(30):
            await until_metric(running, "jiancha_cases_not_decided 1.0")
        line = daemon.status_line(running, 0.0)
        assert line.startswith("STATUS=运行中") and "1 个案件无法判定" in line, line
        assert running.worker.stats.code_fault is None  # reading on, not a stop
        nursery.cancel_scope.cancel()


async def test_evaluate_by_hand_decides_the_others_and_says_how_many_it_could_not(dsn, bug, capsys):
    """`jiancha evaluate` (a catch-up by hand) raised out before; now it finishes."""
    bug.add("C1")
    async with await db.connect(dsn) as conn:
        await write(conn, accepted("C1", "C2"))
    args = ["evaluate", "--now", "2024-02-22T08:00", "--dsn", dsn, "--source-dsn", dsn]
    assert await trio.to_thread.run_sync(main, args) == 0
    out = capsys.readouterr().out
    assert "无法判定的案件 1 个（程序缺陷，暂不发牌" in out, out
    with structlog.testing.capture_logs() as logs:  # the log lines not in the way of the JSON
        assert await trio.to_thread.run_sync(main, [*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cases_not_decided"] == 1
    assert [e["case_ids"] for e in logs if e["event"] == "cases_not_decided"] == [["C1"]]
    async with await db.connect(dsn) as conn:
        assert await marks(conn) == {"C1": ERROR}
        got = await ledger(conn)
        assert {r[0] for r in got} == {"C2"} and len(got) == 1
