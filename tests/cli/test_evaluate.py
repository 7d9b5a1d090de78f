"""``jiancha evaluate --now`` against a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
import trio

from monitor import db
from monitor.cli import main
from tests.sourcekit import write

UTC = dt.UTC
SUB = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}  # 5 wd promised


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)


def put(dsn: str, rows: list[tuple[str, str, dt.datetime, dict[str, Any]]]) -> None:
    async def go() -> None:
        async with db.open_loop(), await db.connect(dsn) as conn:
            await write(conn, rows)

    trio.run(go)


def query(dsn: str, sql: str) -> list[Any]:
    async def go() -> list[Any]:
        async with db.open_loop(), await db.connect(dsn) as conn:
            return [tuple(r) for r in await conn.fetch(sql)]

    return trio.run(go)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def case(cid: str, accepted: str, completed: str | None = None) -> list[tuple]:
    rows = [(cid, "submitted", z(accepted) - dt.timedelta(hours=1), SUB),
            (cid, "accepted", z(accepted), {})]  # fmt: skip
    if completed:
        rows.append((cid, "completed", z(completed), {}))
    return rows


def test_evaluate_now_issues_the_cards_due_once(sync_dsn: str) -> None:
    put(sync_dsn, case("C1", "2024-02-08T02:00:00") + case("C2", "2024-02-19T02:00:00"))
    code, out = run("evaluate", "--now", "2024-02-22T13:00", "--source-dsn", sync_dsn)
    assert code == 0 and "发牌 2 张" in out
    # on the calendar's clock, as --now was given (it was UTC's ISO text): C2's yellow, one
    # working day left (4 of 5 used at the end of Friday the 23rd)
    assert "下一次到期：2024-02-23 24:00（Asia/Shanghai）" in out
    cards = query(sync_dsn, "SELECT case_id, rule, level, issued_at FROM jiancha.cards "
                            "ORDER BY case_id")  # fmt: skip
    # C1: overdue since Feb 21 24:00 -> only the red (catch-up); C2 (accepted Feb 19):
    # 2.5 of 5 wd at Feb 22 12:00 (Feb 20, 21, half of 22)
    assert cards == [("C1", "decision_time", "red", z("2024-02-21T16:00:00")),
                     ("C2", "decision_time", "blue", z("2024-02-22T04:00:00"))]  # fmt: skip
    code, out = run("evaluate", "--now", "2024-02-22T13:00", "--source-dsn", sync_dsn, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["cards_issued"] == 0 and doc["events"] == 0
    assert doc["open_clocks"] >= 2 and doc["next_due"] is not None


def test_evaluate_needs_a_valid_instant_and_rules(sync_dsn: str, capsys) -> None:
    assert run("evaluate", "--now", "yesterday", "--source-dsn", sync_dsn)[0] == 2
    assert run("evaluate", "--now", "2024-02-22", "--rules", "nope", "--source-dsn",
               sync_dsn)[0] == 2  # fmt: skip
    assert "nope" in capsys.readouterr().err


def test_evaluate_runs_with_the_daemons_collector_settings_and_restores_them(
    sync_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up allocates like the daemon's batches: the daemon's thresholds while it
    works (a fifth of its time with Python's defaults), the caller's again afterwards."""
    import gc

    from monitor.cli import evaluate as evaluate_cli
    from monitor.evaluator import GC_THRESHOLDS

    seen: list[tuple[int, ...]] = []
    real = evaluate_cli.with_connection

    def spying(dsn, work):  # type: ignore[no-untyped-def]
        async def watched(conn):  # type: ignore[no-untyped-def]
            seen.append(gc.get_threshold())
            return await work(conn)

        return real(dsn, watched)

    monkeypatch.setattr(evaluate_cli, "with_connection", spying)
    before = (700, 10, 10)
    old = gc.get_threshold()
    gc.set_threshold(*before)
    try:
        put(sync_dsn, case("G1", "2024-02-19T02:00:00"))
        code, _ = run("evaluate", "--now", "2024-02-22T13:00", "--source-dsn", sync_dsn)
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*old)
    assert code == 0 and seen == [GC_THRESHOLDS]
    assert after == before


def test_a_catch_up_counts_its_batches_of_the_default_size(
    sync_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jiancha evaluate` takes a backlog in batches of the daemon's default size (a case
    is rewritten once a batch), and says how many it took."""
    from monitor.cli import evaluate as evaluate_cli

    monkeypatch.setattr(evaluate_cli, "BATCH_SIZE", 3)
    put(sync_dsn, case("B1", "2024-02-19T02:00:00", "2024-02-20T02:00:00")
        + case("B2", "2024-02-19T03:00:00") + case("B3", "2024-02-19T04:00:00"))  # fmt: skip
    code, out = run("evaluate", "--now", "2024-02-22T13:00", "--source-dsn", sync_dsn, "--json")
    doc = json.loads(out)
    assert code == 0 and (doc["events"], doc["batches"]) == (7, 3)
    put(sync_dsn, case("B4", "2024-02-19T05:00:00") + case("B5", "2024-02-19T06:00:00"))
    code, out = run("evaluate", "--now", "2024-02-22T13:00", "--source-dsn", sync_dsn,
                    "--batch-size", "10")  # fmt: skip
    assert code == 0 and "读取事件 4 条，分 1 批" in out
    assert query(sync_dsn, "SELECT count(*) FROM jiancha.cases") == [(5,)]
