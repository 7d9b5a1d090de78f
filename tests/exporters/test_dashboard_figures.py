"""The dashboards' figures for a month are the monthly bulletin's: one definition, two readers.

A simulated month of a centre goes through the daemon's path into PostgreSQL (as for the
bulletins' tests); the dashboards' SQL, with the month as Grafana's time range, must give
each department's and each window's figures exactly as `jiancha report monthly` does."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import trio

from dashboards import queries
from exporters.metrics import Holder
from monitor import db
from monitor.observe import Snapshotter
from monitor.report.build import build_report
from monitor.report.jsondoc import report_json
from monitor.report.period import parse_period
from tests.report.history import UNTIL, build_history


def in_range(query: str, lo: dt.datetime, hi: dt.datetime, departments: list[str]) -> str:
    """``query`` as Grafana sends it for the range [lo, hi) and every department chosen."""
    chosen = ", ".join("'" + d.replace("'", "''") + "'" for d in departments)
    query = query.replace("${department:sqlstring}", chosen)
    query = query.replace("$__timeFrom()", f"'{lo.isoformat()}'::timestamptz")
    query = query.replace("$__timeTo()", f"'{hi.isoformat()}'::timestamptz")
    query = re.sub(r"now\(\)", f"'{hi.isoformat()}'::timestamptz", query)
    assert "$" not in query, query
    return query


@pytest.fixture(scope="module")
def month(pg_dsn: str, cal: Any, rules: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """March 2024's bulletin (JSON) and the dashboards' rows for the same range."""
    period = parse_period("monthly", "2024-03")

    async def run() -> tuple[dict[str, Any], dict[str, list[Any]]]:
        async with db.open_loop():
            await build_history(pg_dsn, cal, rules)
            async with await db.connect(pg_dsn) as conn:
                keeper = Snapshotter(Holder(), pg_dsn, calendar=cal,
                                     clock=lambda: UNTIL.timestamp())  # fmt: skip
                await keeper.keep_tables(conn)
                report = report_json(await build_report(conn, "monthly", period, None, UNTIL,
                                                        cal=cal, rules=rules))  # fmt: skip
                departments = [d["department"] for d in report["departments"]]
                await conn.execute("SET ROLE jiancha_dashboard")
                rows = {}
                for name in ("DEPARTMENT_FIGURES", "WINDOW_RANKING", "RATINGS"):
                    sql = in_range(getattr(queries, name), period.lo, period.hi, departments)
                    rows[name] = await conn.fetch(sql)
        return report, rows

    return trio.run(run)


def test_departments_agree_with_the_bulletin(month):
    report, rows = month
    by_dept = {r["部门"]: r for r in rows["DEPARTMENT_FIGURES"]}
    assert set(by_dept) == {d["department"] for d in report["departments"]}
    assert sum(d["accepted"] for d in report["departments"]) > 300  # a real month
    for d in report["departments"]:
        got = by_dept[d["department"]]
        assert (got["受理"], got["办结"]) == (d["accepted"], d["completed"]), d["department"]
        assert got["即办件占比"] == pytest.approx(d["immediate_share"])
        assert got["按期办结率"] == pytest.approx(d["on_time_rate"])
        assert got["超期在办"] == d["overdue_open"]


def test_windows_agree_with_the_bulletin(month):
    report, rows = month
    by_window = {(r["部门"], r["窗口"]): r for r in rows["WINDOW_RANKING"]}
    assert set(by_window) == {(w["department"], w["window"]) for w in report["windows"]}
    for w in report["windows"]:
        got = by_window[(w["department"], w["window"])]
        assert (got["受理"], got["办结"], got["超期在办"]) == (
            w["accepted"], w["completed"], w["overdue_open"])  # fmt: skip
        assert got["按期办结率"] == pytest.approx(w["on_time_rate"])
        assert got["平均用时（工作日）"] == pytest.approx(w["mean_working_days_used"], abs=1e-9)
        assert got["平均承诺（工作日）"] == pytest.approx(w["mean_promised_days"], abs=1e-9)
    rates = [r["按期办结率"] for r in rows["WINDOW_RANKING"] if r["按期办结率"] is not None]
    assert rates == sorted(rates) and rates[0] < 1  # the worst window first


def test_ratings_of_the_range_agree_with_the_bulletin(month):
    report, rows = month
    by_dept = {r["部门"]: r for r in rows["RATINGS"]}
    rated = [d for d in report["departments"] if d["ratings"] or d["bad_reviews"]]
    assert rated and sum(d["bad_reviews"] for d in rated) > 0
    for d in rated:
        got = by_dept[d["department"]]
        assert (got["评价数"], got["差评"], got["已整改"]) == (
            d["ratings"], d["bad_reviews"], d["rectified"])  # fmt: skip
        assert got["满意率"] == pytest.approx(d["satisfaction_rate"])
        assert got["整改率"] == pytest.approx(d["rectification_rate"])
