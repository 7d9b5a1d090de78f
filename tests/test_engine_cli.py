"""``jiancha evaluate --now`` and ``jiancha replay`` against a real PostgreSQL."""

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


def test_replay_reports_the_period_and_what_shorter_limits_would_do(sync_dsn: str) -> None:
    put(sync_dsn, [
        # 5 wd from Mon Mar 4 10:00 -> Mar 11 24:00
        *case("A", "2024-03-04T02:00:00", "2024-03-06T02:00:00"),  # 2 wd used: early
        *case("B", "2024-03-04T02:00:00", "2024-03-11T02:00:00"),  # on the last day: on time
        *case("C", "2024-03-04T02:00:00", "2024-03-12T02:00:00"),  # late: red at completion
    ])  # fmt: skip
    code, out = run("replay", "--from", "2024-03-01", "--to", "2024-04-01", "--source-dsn",
                    sync_dsn, "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert (doc["completed"], doc["on_time"], doc["early"]) == (3, 2, 1)
    assert doc["cards_by_level"]["red"] == 1
    assert doc["cards_by_rule"]["decision_time"]["red"] == 1
    # 20% shorter: 4 wd -> Mar 8 24:00; B is late too, A still early
    code, out = run("replay", "--from", "2024-03-01", "--to", "2024-04-01", "--promised-scale",
                    "0.8", "--source-dsn", sync_dsn, "--json")  # fmt: skip
    shorter = json.loads(out)
    assert (shorter["completed"], shorter["on_time"], shorter["early"]) == (3, 1, 1)
    assert shorter["cards_by_level"]["red"] == 2
    # a separate ledger: the real one is untouched, the runs are kept
    assert query(sync_dsn, "SELECT count(*) FROM jiancha.cards") == [(0,)]
    runs = query(sync_dsn, "SELECT promised_scale, (figures->>'on_time')::int "
                           "FROM jiancha.replay_runs ORDER BY id")  # fmt: skip
    assert runs == [(1.0, 2), (0.8, 1)]
    code, out = run("--lang", "zh", "replay", "--from", "2024-03-01", "--to", "2024-04-01",
                    "--source-dsn", sync_dsn, "--no-save")  # fmt: skip
    assert code == 0 and "按期办结率：66.67%" in out and "提前办结率：33.33%" in out
