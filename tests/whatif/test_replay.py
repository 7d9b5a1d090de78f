"""Replays: history on a virtual clock into a ledger of its own, and the period's figures."""

from __future__ import annotations

import datetime as dt
import json

from monitor.source.contract import Matter, SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from monitor.whatif import replay
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


# --- replay.run itself, on events in memory ----------------------------------------------

MATTERS_M1 = {"M1": Matter("M1", "建筑工程施工许可", "住建局", 20, 5)}
SUB = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}


def events(*cases: tuple[str, str, str | None]) -> list[SourceEvent]:
    """(case, accepted at, completed at or None) -> the case's events, ids in order."""
    out: list[SourceEvent] = []
    for cid, accepted, completed in cases:
        rows = [("submitted", z(accepted) - dt.timedelta(hours=1), SUB),
                ("accepted", z(accepted), {})]  # fmt: skip
        if completed:
            rows.append(("completed", z(completed), {}))
        for kind, when, payload in rows:
            out.append(SourceEvent(len(out) + 1, 1000 + len(out), cid, kind, when, payload))
    return out


async def test_a_replay_counts_the_period_and_never_the_events_after_it(cal, rules):
    evs = events(
        ("A", "2024-03-04T02:00:00", "2024-03-06T02:00:00"),  # early
        ("B", "2024-03-04T02:00:00", None),  # open past its Mar 11 24:00 deadline: overdue
        ("D", "2024-03-04T02:00:00", "2024-04-15T02:00:00"),  # completed after the period
    )
    evs.append(SourceEvent(99, 1099, "X", "teleported", z("2024-03-05T02:00:00"), {}))
    lo, hi = z("2024-03-01T00:00:00"), z("2024-04-01T00:00:00")
    result = await replay.run(evs, MATTERS_M1, rules, cal, lo, hi)
    fig = result.figures
    assert (fig.accepted, fig.completed, fig.early, fig.on_time) == (3, 1, 1, 1)
    assert fig.overdue_open == 2  # B, and D as it stood at the period's end
    assert fig.dead_letters == 1
    # the scheduler woke at every crossing inside the period: B's and D's reds are issued at
    # their deadline, not when the replay happened to look
    reds = sorted((c.case_id, c.issued_at) for c in result.store.cards.values() if c.level == 3)
    assert reds == [("B", z("2024-03-11T16:00:00")), ("D", z("2024-03-11T16:00:00"))]
    assert all(c.issued_at < hi for c in result.store.cards.values())


def test_a_shorter_promised_limit_is_rounded_down_and_only_the_promise_moves():
    state_view = CaseView.from_state(
        reduce_case("A", events(("A", "2024-03-04T02:00:00", None)), MATTERS_M1)
    )
    shorter = replay.scaled(state_view, 0.7)  # 5 x 0.7 = 3.5 -> 3 working days
    assert shorter.clocks.decision is not None and shorter.clocks.decision.limit_days == 3
    assert shorter.clocks.statutory == state_view.clocks.statutory  # the law does not move
    assert replay.scaled(state_view, 1.0) is state_view


async def test_a_replay_says_how_many_cases_it_could_not_decide(cal, rules, monkeypatch):
    """A case the engine raises on is left out of a replay's cards, and the figures say so
    (a what-if that silently lacked a case's cards would mislead the officer reading it)."""
    from monitor.engine import decide as engine_decide

    real = engine_decide.periods

    def periods(case, *args, **kwargs):  # type: ignore[no-untyped-def]
        if case.case_id == "B":
            raise IndexError("list index out of range")
        return real(case, *args, **kwargs)

    monkeypatch.setattr(engine_decide, "periods", periods)
    evs = events(("A", "2024-03-04T02:00:00", None), ("B", "2024-03-04T02:00:00", None))
    lo, hi = z("2024-03-01T00:00:00"), z("2024-04-01T00:00:00")
    result = await replay.run(evs, MATTERS_M1, rules, cal, lo, hi)
    assert result.figures.not_decided == 1 and result.figures.as_json()["not_decided"] == 1
    assert result.store.errors == {"B": "IndexError: list index out of range"}
    assert {c.case_id for c in result.store.cards.values()} == {"A"}


def test_the_replays_text_says_how_many_cases_it_could_not_decide(monkeypatch) -> None:
    import argparse
    import io

    from monitor.cli import replay as cli_replay

    fig = replay.Figures(z("2024-03-01T00:00:00"), z("2024-04-01T00:00:00"), 1.0, not_decided=2)
    args = argparse.Namespace(period_from="2024-03-01", period_to="2024-04-01",
                              promised_scale=1.0)  # fmt: skip
    for lang, words in (("zh", "无法判定的案件 2 个"), ("en", "2 case(s) could not be decided")):
        out = io.StringIO()
        monkeypatch.setenv("JIANCHA_LANG", lang)
        cli_replay._print(fig, args, None, out)
        assert words in out.getvalue()
    out = io.StringIO()
    cli_replay._print(replay.Figures(fig.period_from, fig.period_to, 1.0), args, None, out)
    assert "无法判定" not in out.getvalue() and "could not be decided" not in out.getvalue()
