"""Versions of a bulletin in jiancha.reports: idempotent, and revised when late events arrive.

Three simulated days go through the daemon's path into a real PostgreSQL,
with the completions of a few cases of the middle day held back. The daily
bulletin of that day is stored (version 1); stored again with the same
figures it is the same version. Then the held-back events arrive, two days
late, and the next run stores version 2: a revision whose changed figures
(in the table, the JSON, the HTML and the workbook) are exactly those the
late completions moved.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
import trio

from monitor import db
from monitor.evaluator import Evaluator
from monitor.report import build_report, parse_period, publish
from monitor.report.versions import changes, digest, flatten, label
from tests.cardkit import Driver
from tests.report.history import build_days, completed_on
from tests.sourcekit import write

FIRST = dt.date(2024, 3, 5)  # Tuesday to Thursday
DAY = "2024-03-06"
UNTIL = dt.datetime(2024, 3, 7, 12, tzinfo=dt.UTC)
LATE_AT = dt.datetime(2024, 3, 9, 2, tzinfo=dt.UTC)  # Saturday: the period closed long ago


def test_the_figures_flatten_to_stable_keys() -> None:
    doc: dict[str, Any] = {
        "figures": {"completed": 3, "on_time_rate": 2 / 3, "cards": {"red": 1}},
        "departments": [{"department": "税务局", "rank": 1, "completed": 3}],
        "red_cards": [{"card_id": 7, "case_id": "C1", "at": "x"}],
    }
    flat = flatten(doc)
    assert flat["figures.cards.red"] == 1
    assert flat["departments.税务局.completed"] == 3
    assert flat["red_cards.7"] == "C1"
    later = {**doc, "figures": {"completed": 4, "on_time_rate": 3 / 4, "cards": {"red": 1}}}
    diff = changes(flat, flatten(later))
    assert [c.key for c in diff] == ["figures.completed", "figures.on_time_rate"]
    assert label("figures.completed") == "本期 · 办结件"
    assert label("departments.税务局.cards.red") == "部门 税务局 · 红牌"
    assert digest(flat) == digest(dict(reversed(list(flat.items()))))
    assert digest(flat) != digest(flatten(later))


@pytest.fixture(scope="module")
def late_world(pg_dsn: str, cal: Any, rules: Any) -> tuple[str, list[Any]]:
    """Three days ingested, with three completions of the middle day held back."""
    period = parse_period("daily", DAY)
    held = set(completed_on(cal, FIRST, 3, UNTIL, period.lo, period.hi)[:3])
    assert len(held) == 3

    async def run() -> list[Any]:
        async with db.open_loop():
            return await build_days(pg_dsn, cal, rules, FIRST, 3, UNTIL, hold=held)

    late = trio.run(run)
    assert {e.case_id for e in late} == held
    return pg_dsn, late


async def _publish(dsn: str, cal: Any, rules: Any, now: dt.datetime) -> Any:
    async with await db.connect(dsn) as conn:
        period = parse_period("daily", DAY)
        r = await build_report(conn, "daily", period, None, now, cal=cal, rules=rules)
        return await publish(conn, r, formats=("json", "html", "xlsx"))


async def test_late_events_make_version_2_listing_the_changed_figures(
    late_world: tuple[str, list[Any]], cal: Any, rules: Any
) -> None:
    async with db.open_loop():
        await _late_events(late_world, cal, rules)


async def _late_events(late_world: tuple[str, list[Any]], cal: Any, rules: Any) -> None:
    dsn, late = late_world
    first = await _publish(dsn, cal, rules, UNTIL)
    assert (first.version, first.new, first.changed) == (1, True, ())
    again = await _publish(dsn, cal, rules, UNTIL + dt.timedelta(hours=1))
    assert (again.id, again.version, again.new) == (first.id, 1, False)  # same figures

    async with await db.connect(dsn) as conn:
        before = await conn.fetchval("SELECT content FROM jiancha.reports WHERE id = $1", first.id)
        driver = Driver(conn, Evaluator(rules, cal))
        await driver.start(LATE_AT)
        await write(conn, [tuple(e) for e in late])
        while await driver.ingest(LATE_AT):
            pass

    second = await _publish(dsn, cal, rules, LATE_AT)
    assert (second.version, second.new) == (2, True)
    keys = {c.key: (c.was, c.now) for c in second.changed}
    was = before["figures"]["completed"]
    assert keys["figures.completed"] == (was, was + 3)
    assert all(k.split(".")[0] in {"figures", "departments", "windows", "previous",
                                   "year_ago", "overdue", "red_cards", "cards_by_rule"}
               for k in keys)  # fmt: skip
    async with await db.connect(dsn) as conn:
        rows = await conn.fetch(
            "SELECT version, changed, content, files FROM jiancha.reports "
            "WHERE kind = 'daily' AND period = $1 ORDER BY version", DAY,
        )  # fmt: skip
        files = {
            r["format"]: (r["name"], bytes(r["content"]))
            for r in await conn.fetch(
                "SELECT format, name, content FROM jiancha.report_files WHERE report_id = $1",
                second.id,
            )
        }
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[0]["changed"] == []
    assert {"key": "figures.completed", "was": was, "now": was + 3} in rows[1]["changed"]
    doc = rows[1]["content"]
    assert doc["version"] == 2
    assert doc["figures"]["completed"] == was + 3
    assert doc["revision"]["previous_generated_at"] == before["generated_at"]
    assert {"key": "figures.completed", "label": "本期 · 办结件", "was": was,
            "now": was + 3} in doc["revision"]["changed"]  # fmt: skip
    assert rows[1]["files"]["html"]["name"] == "jiancha-daily-2024-03-06-v2.html"
    html = files["html"][1].decode()
    assert "修订版（第 2 版）" in html and "本期 · 办结件" in html
    book = openpyxl.load_workbook(io.BytesIO(files["xlsx"][1]))
    assert book.sheetnames[0] == "修订说明"
    sheet = {row[0]: row[1:] for row in book["修订说明"].iter_rows(values_only=True) if row[0]}
    assert sheet["本期 · 办结件"] == (was, was + 3)
    third = await _publish(dsn, cal, rules, LATE_AT + dt.timedelta(days=1))
    assert (third.id, third.version, third.new) == (second.id, 2, False)
