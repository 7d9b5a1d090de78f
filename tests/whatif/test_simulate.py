"""The simulated county centre: deterministic, like the seed reports, valid, and ingestible."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import shutil
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import trio

from monitor import db
from monitor.calendar import Calendar, load_calendar
from monitor.cli import main
from monitor.paths import rules_dir
from monitor.source.contract import PAUSE_TYPES, Matter, SourceEvent, validate
from monitor.wallclock import VirtualClock
from monitor.whatif.figures import figures
from monitor.whatif.simulate import (
    Catalogue,
    CatalogueError,
    Event,
    Profile,
    between,
    generate,
    load_catalogue,
    parse_catalogue,
)
from monitor.whatif.source_writer import Progress, install_matters, write_events

UTC = dt.UTC
MONDAY = dt.date(2024, 3, 4)
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def cal() -> Calendar:
    return load_calendar("cn")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def week(catalogue: Catalogue, cal: Calendar) -> list[Event]:
    """Monday to Sunday: five working days and a weekend of online cases."""
    return generate(catalogue, cal, MONDAY, 7, seed=11)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


# --- the catalogue -------------------------------------------------------------------


def test_county_catalogue_is_a_real_centre_and_the_engine_loader_reads_it(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matters = catalogue.matters
    assert len(matters) >= 30
    assert len({m.department for m in matters.values()}) >= 10
    for m in matters.values():
        assert isinstance(m, Matter) and 0 <= m.promised_days <= m.statutory_days
        assert sum(m.step_days.values()) <= max(m.promised_days, 1)
        assert set(m.pause_max_days) <= PAUSE_TYPES
        assert catalogue.weights[m.code] > 0 and (m.free or catalogue.fees[m.code] > 0)
    weight = sum(catalogue.weights.values())
    immediate = sum(w for c, w in catalogue.weights.items() if matters[c].promised_days == 0)
    assert 0.5 < immediate / weight < 0.6
    assert any(not m.free for m in matters.values()) and any(m.joint for m in matters.values())
    # `weight` and `fee` do not bother the engine's own loader: same matters, same type
    from monitor.source.catalogue import example_matters

    shutil.copy(rules_dir() / "matters-county.toml", tmp_path / "matters-example.toml")
    monkeypatch.setenv("JIANCHA_RULES_DIR", str(tmp_path))
    assert example_matters() == matters


def test_catalogue_mistakes_are_named() -> None:
    good = {"code": "X1", "name": "测试事项", "department": "测试局", "statutory_days": 5,
            "promised_days": 2}  # fmt: skip
    assert parse_catalogue({"matter": [good]}).matters["X1"].promised_days == 2
    for bad, needle in [
        ({**good, "promised_days": 9}, "承诺时限"),
        ({**good, "wieght": 3}, "wieght"),
        ({**good, "pause_max_days": {"nap": 3}}, "nap"),
        ({**good, "statutory_days": -1}, "statutory_days"),
    ]:
        with pytest.raises(CatalogueError, match=needle):
            parse_catalogue({"matter": [bad]})
    with pytest.raises(CatalogueError, match="X1"):
        parse_catalogue({"matter": [good, good]})


# --- the generator -------------------------------------------------------------------


def test_generation_is_deterministic_per_seed_and_per_day(
    catalogue: Catalogue, cal: Calendar
) -> None:
    one = generate(catalogue, cal, MONDAY, 1, seed=5)
    assert one == generate(catalogue, cal, MONDAY, 1, seed=5)
    assert one != generate(catalogue, cal, MONDAY, 1, seed=6)
    # a day's cases do not depend on the period around it
    tuesday = MONDAY + dt.timedelta(days=1)
    three = generate(catalogue, cal, MONDAY, 3, seed=5)
    assert [e for e in three if e.case_id.startswith("SIM20240305-")] == generate(
        catalogue, cal, tuesday, 1, seed=5
    )
    times = [e.occurred_at for e in one]
    assert times == sorted(times) and all(t.tzinfo is UTC for t in times)
    submitted = [e.case_id for e in one if e.kind == "submitted"]
    assert len(submitted) == len(set(submitted)) == len({e.case_id for e in one})
    assert sorted(submitted)[0] == "SIM20240304-0001"
    assert all(re.fullmatch(r"SIM20240304-\d{4}", c) for c in submitted)


def test_a_week_looks_like_the_seed_reports(week: list[Event], catalogue: Catalogue, cal) -> None:
    f = figures(week, catalogue.matters, cal)
    assert (f.first_day, f.last_day, f.working_days) == ("2024-03-04", "2024-03-10", 5)
    assert 500 <= f.cases_per_working_day <= 620  # 558 a day in 三门县's report
    assert 0.50 <= f.immediate_share <= 0.60  # 54.95 % in the 2023 report
    assert 0.03 <= f.supplement_share <= 0.15
    assert 0.01 <= f.suspended_share <= 0.15
    assert 0.001 <= f.extension_share <= 0.05
    assert 0.05 <= f.online_share <= 0.25
    assert 0.005 <= f.late_share <= 0.06 and f.late >= 10 and f.statutory_late >= 1
    assert f.on_time_rate >= 0.95 and f.satisfaction >= 0.97
    assert f.bad_ratings >= 3 and f.ratings[5] > f.ratings[4] > f.ratings[1]
    assert f.fees > 0 and f.fees_total > 0 and f.withdrawn > 0
    assert len(f.by_department) >= 10
    assert json.loads(json.dumps(f.as_json(), ensure_ascii=False))["cases"] == f.cases


def test_no_late_case_unless_planned(catalogue: Catalogue, cal: Calendar) -> None:
    """Lateness is counted by the engine's arithmetic; on-time plans must stay on time."""
    calm = Profile(late=0, statutory_late=0, immediate_late=0)
    f = figures(generate(catalogue, cal, dt.date(2024, 2, 5), 14, seed=3, profile=calm),
                catalogue.matters, cal)  # fmt: skip  # over the 2024 Spring Festival
    assert (f.late, f.statutory_late, f.immediate_late) == (0, 0, 0)
    assert f.working_days == 6 and f.suspended_share > 0 and f.extension_share > 0


# One letter per kind; a case's kinds in time order must spell a word of _LIFE.
_LETTER = {
    "submitted": "S", "supplement_requested": "Q", "supplement_received": "R", "accepted": "A",
    "refused": "X", "withdrawn": "W", "terminated": "T", "step_started": "B",
    "step_finished": "F", "suspended": "P", "resumed": "U", "extended": "E", "decided": "D",
    "fee_charged": "$", "completed": "C", "delivered": "L", "rated": "G",
    "review_visited": "V", "review_rectified": "Y",
}  # fmt: skip
_LIFE = re.compile(r"S(QR)*(X|W|A[BFPUER]*(W|T|D\$?CL(G(VY)?)?))")
_STAFF = {"accepted", "refused", "step_started", "step_finished", "suspended", "resumed",
          "extended", "decided", "fee_charged", "completed", "review_visited",
          "review_rectified"}  # fmt: skip


def test_every_event_keeps_the_contract_and_every_case_its_order(
    week: list[Event], catalogue: Catalogue, cal: Calendar
) -> None:
    matters = catalogue.matters
    now = max(e.occurred_at for e in week)
    by_case: dict[str, list[Event]] = defaultdict(list)
    for i, e in enumerate(week, 1):
        assert validate(SourceEvent(i, i, *e), matters, now) is None, e  # what dead-letters
        by_case[e.case_id].append(e)
    workdays = {d.date() for d in _local_days(cal, MONDAY, 400)}
    for case_id, events in by_case.items():
        assert all(a.occurred_at < b.occurred_at for a, b in itertools.pairwise(events)), case_id
        word = "".join(_LETTER[e.kind] for e in events)
        assert _LIFE.fullmatch(word), (case_id, word)
        assert re.fullmatch(r"(PU)*", re.sub(r"[^PU]", "", word)), (case_id, word)
        m = matters[events[0].payload["matter"]]
        result = next((e.payload["result"] for e in events if e.kind == "decided"), None)
        assert ("$" in word) == (not m.free and result == "approve"), (case_id, word)
        steps = [(e.kind, e.payload["step"]) for e in events if e.kind.startswith("step_")]
        names = [s for _, s in steps]
        assert set(names) <= set(m.step_days) and len(steps) == len(set(steps))
        for (
            kind,
            s,
        ) in steps:  # a step finishes after it started; only a dropped case leaves one open
            if kind == "step_started" and ("step_finished", s) not in steps:
                assert word[-1] in "WT", (case_id, steps)
            if kind == "step_finished":
                assert steps.index(("step_started", s)) < steps.index((kind, s)), (case_id, steps)
        for e in events:
            if e.kind in _STAFF:  # the back office works on working days
                assert e.occurred_at.astimezone(SHANGHAI).date() in workdays, (case_id, e)
            if e.kind == "suspended":
                assert e.payload["type"] in m.pause_max_days
            if e.kind == "rated" and e.payload["level"] <= 2:
                assert e.payload["comment"]
        if m.promised_days == 0 and "C" in word:  # immediate: one visit, one day (mostly)
            acc = next(e for e in events if e.kind == "accepted").occurred_at
            done = next(e for e in events if e.kind == "completed").occurred_at
            assert done - acc < dt.timedelta(days=4), case_id


def _local_days(cal: Calendar, first: dt.date, n: int) -> list[dt.datetime]:
    import numpy as np

    span = np.arange(np.datetime64(first, "D"), np.datetime64(first, "D") + n)
    return [dt.datetime.fromisoformat(str(d)) for d in span[cal.is_workday(span)]]


# --- the database --------------------------------------------------------------------


def _query(dsn: str, sql: str) -> list[Any]:
    async def go() -> list[Any]:
        async with db.open_loop(), await db.connect(dsn) as conn:
            return [tuple(r) for r in await conn.fetch(sql)]

    return trio.run(go)


def test_a_simulated_day_is_ingested_without_a_dead_letter(
    sync_dsn: str, catalogue: Catalogue, cal: Calendar
) -> None:
    """Written up to an instant, evaluated there, then the rest: every case, no dead letter."""
    expected = generate(catalogue, cal, MONDAY, 1, seed=2)
    cut = dt.datetime(2024, 3, 5, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Beijing
    first = between(expected, until=cut)
    code, out = run("simulate", "--source-dsn", sync_dsn, "--start", "2024-03-04", "--speed",
                    "0", "--seed", "2", "--until", "2024-03-05T09:00", "--json")  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["written"] == doc["total"] == len(first) and not doc["stopped"]
    assert _query(sync_dsn, "SELECT count(*) FROM matters WHERE code LIKE '113713%'") == [
        (len(catalogue.matters),)
    ]
    code, out = run("evaluate", "--now", "2024-03-05T09:00", "--source-dsn", sync_dsn, "--json")
    result = json.loads(out)
    assert code == 0 and result["events"] == len(first) and result["dead_letters"] == 0
    code, out = run("simulate", "--source-dsn", sync_dsn, "--start", "2024-03-04", "--speed",
                    "0", "--seed", "2", "--since", "2024-03-05T09:00", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["written"] == len(expected) - len(first)
    now = max(e.occurred_at for e in expected) + dt.timedelta(minutes=1)
    code, out = run("evaluate", "--now", now.isoformat(), "--source-dsn", sync_dsn, "--json")
    result = json.loads(out)
    assert code == 0 and result["events"] == len(expected) - len(first)
    assert _query(sync_dsn, "SELECT count(*) FROM jiancha.dead_letters") == [(0,)]
    cases = {r[0] for r in _query(sync_dsn, "SELECT case_id FROM jiancha.cases")}
    assert cases == {e.case_id for e in expected}
    rules = {r[0] for r in _query(sync_dsn, "SELECT DISTINCT rule FROM jiancha.cards")}
    assert {"decision_time", "statutory_time"} <= rules  # the late ones got their cards


async def test_clocked_writer_writes_only_what_is_due(
    dsn: str, catalogue: Catalogue, cal: Calendar
) -> None:
    events = generate(catalogue, cal, MONDAY, 1, seed=4, per_day=80)
    now = [dt.datetime(2024, 3, 4, 2, 0, tzinfo=UTC)]  # 10:00 in Beijing
    seen: list[Progress] = []
    async with await db.connect(dsn) as writer, await db.connect(dsn) as reader:
        await install_matters(writer, catalogue.matters)

        async def settled(expected: int) -> None:
            with trio.fail_after(5):
                while not seen or seen[-1].written < expected:
                    await trio.sleep(0.01)
            await trio.sleep(0.1)  # and nothing more while the clock stands still
            count, last = (await reader.fetch(
                "SELECT count(*), max(occurred_at) FROM case_events"))[0]  # fmt: skip
            assert count == expected == seen[-1].written and last <= now[0]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: write_events(
                writer, events, clock=lambda: now[0], max_sleep=0.02, progress=seen.append
            ))  # fmt: skip
            await settled(sum(e.occurred_at <= now[0] for e in events))
            now[0] = dt.datetime(2024, 3, 4, 6, 30, tzinfo=UTC)  # 14:30
            await settled(sum(e.occurred_at <= now[0] for e in events))
            nursery.cancel_scope.cancel()  # stops cleanly, mid-period
        assert 0 < seen[-1].written < len(events)

        # a fast virtual clock: whatever is in the table is never ahead of it
        await writer.execute("TRUNCATE case_events")
        clock = VirtualClock(events[0].occurred_at, rate=3 * 3600.0)  # three hours a second
        with trio.move_on_after(0.5):
            await write_events(writer, events, clock=clock)
        count, last = (await reader.fetch("SELECT count(*), max(occurred_at) FROM case_events"))[0]
        assert 0 < count < len(events) and last <= clock()


def test_dry_run_prints_the_figures(catalogue: Catalogue) -> None:
    code, out = run("simulate", "--dry-run", "--json", "--start", "2024-03-04", "--seed", "1")
    doc = json.loads(out)
    assert code == 0 and doc["matters"] == len(catalogue.matters)
    assert doc["figures"]["working_days"] == 1 and 500 <= doc["figures"]["cases"] <= 650
    code, out = run("simulate", "--dry-run", "--start", "2024-03-04", "--per-day", "100")
    assert code == 0 and "即办件" in out and "满意率" in out
    code, out = run("--lang", "en", "simulate", "--dry-run", "--start", "2024-03-04")
    assert code == 0 and "immediate" in out


def test_simulate_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run("simulate", "--dry-run", "--start", "2024-13-01")[0] == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[[matter]]\ncode = "X"\n', "utf-8")
    assert run("simulate", "--dry-run", "--catalogue", str(bad))[0] == 2
    assert "name" in capsys.readouterr().err
    assert run("simulate", "--start", "2024-03-04")[0] == 2  # no database given
    with pytest.raises(SystemExit) as exc:
        run("simulate", "--dry-run", "--days", "0")
    assert exc.value.code == 2
