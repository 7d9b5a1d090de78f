"""Replays: history on a virtual clock into a ledger of its own, and the period's figures."""

from __future__ import annotations

import json

from tests.cli.test_evaluate import _env, case, put, query, run, z  # noqa: F401 (fixture)


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
