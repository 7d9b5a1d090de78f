"""dashboards/: generated JSON is current, importable anywhere, and every query works."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dashboards import build
from monitor import db
from monitor.calendar import load_calendar
from monitor.pipeline import Evaluator
from monitor.rules.load import load_rules
from tests.cardkit import ACCEPTED_FEB8, Driver, z
from tests.metricskit import scrape, snapshot
from tests.sourcekit import write

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "jiancha.rules.yml"
CJK = re.compile(r"[\u4e00-\u9fff]")
DS_UIDS = {"${DS_PROMETHEUS}", "${DS_POSTGRES}"}
# Grafana's variables and macros, replaced by concrete values for promtool and PostgreSQL
PROM_VARS = {
    "$department": "x",
    "$window": "x",
    "$__rate_interval": "5m",
    "$__interval": "5m",
    "$__range": "1d",
}
SQL_MACRO = re.compile(r"\$__timeFilter\([^)]*\)")


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    return build.dashboards()


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in board["panels"]:
        yield p
        yield from p.get("panels", [])


def targets(boards: dict[str, dict[str, Any]], key: str) -> list[str]:
    return [t[key] for b in boards.values() for p in panels(b) for t in p["targets"] if key in t]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def test_committed_files_are_current(boards):
    assert set(boards) == {"jiancha-overview.json", "jiancha-window.json",
                           "jiancha-operations.json"}  # fmt: skip
    for name, board in boards.items():
        path = ROOT / "dashboards" / name
        assert path.read_text("utf-8") == build.render(board), "run python -m dashboards.build"
        assert json.loads(path.read_text("utf-8")) == board
    assert build.main(["--check"]) == 0


def test_check_reports_a_stale_file(tmp_path):
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "jiancha-window.json").write_text("{}\n", "utf-8")
    assert build.main(["--check", "--out", str(tmp_path)]) == 1


def test_chinese_titles_and_datasource_inputs(boards):
    for board in boards.values():
        assert board["schemaVersion"] == 39
        assert CJK.search(board["title"])
        assert {i["name"] for i in board["__inputs"]} == {"DS_PROMETHEUS", "DS_POSTGRES"}
        ids = [p["id"] for p in panels(board)]
        assert ids and len(ids) == len(set(ids))
        for p in panels(board):
            assert CJK.search(p["title"]), p["title"]
            assert CJK.search(p.get("description", "")), p["title"]
            assert p["targets"], p["title"]
        datasources = [v for k, v in walk(board) if k == "datasource"]
        assert datasources
        for ds in datasources:  # no uid of some particular Grafana
            assert isinstance(ds, dict) and ds["uid"] in DS_UIDS, ds
        for variable in board["templating"]["list"]:
            assert CJK.search(variable["label"])


def test_variables_drive_the_queries(boards):
    overview = boards["jiancha-overview.json"]
    (dept,) = overview["templating"]["list"]
    assert dept["name"] == "department"
    assert dept["definition"] == "label_values(jiancha_open_cases, department)"
    exprs = targets({"o": overview}, "expr")
    assert sum("$department" in e for e in exprs) >= 6
    window = boards["jiancha-window.json"]
    assert [v["name"] for v in window["templating"]["list"]] == ["window"]
    assert all("'$window'" in s for s in targets({"w": window}, "rawSql"))


def promql(boards: dict[str, dict[str, Any]]) -> list[str]:
    exprs = targets(boards, "expr")
    out = []
    for expr in exprs:
        for var, value in sorted(PROM_VARS.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        out.append(expr)
    return out


def test_every_promql_expression_parses(boards, tmp_path):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(promtool).exists(), "promtool missing: Debian package prometheus"
    exprs = promql(boards)
    assert len(exprs) >= 15
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr_{n}", "expr": e} for n, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(json.dumps(rules, ensure_ascii=False), "utf-8")  # JSON is YAML
    run = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(exprs)} rules found" in run.stdout


def test_promql_uses_only_series_that_exist(boards):
    exposed = set(re.findall(r"^(jiancha_\w+?)(?:\{| )", scrape(snapshot(
        database_up=True, notifications={("w1", "failed"): 1}, failed={"w1": 1},
        delivered={"w1": 1}, open_cases={("d", "w", "m", "red"): 1},
        active_cards={("red", "r", "d"): 1}, completions={("d", "early"): 1},
        cards_total={("d", "red", "r"): 1}, ratings={("d", 5): 1}, bad_reviews={"d": (1, 1)},
    )), re.M))  # fmt: skip
    recorded = set(re.findall(r"^\s*- record: (\S+)$", RULES.read_text("utf-8"), re.M))
    assert "department:jiancha_on_time_rate:ratio_7d" in recorded
    text = "\n".join(promql(boards))
    used = {re.sub(r"_(bucket|sum|count)$", "", n)
            for n in re.findall(r"(?<![:\w])jiancha_\w+", text)}  # fmt: skip
    exposed_bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exposed}
    assert used and used <= exposed_bases, used - exposed_bases
    used_recorded = set(re.findall(r"\b[a-z_]+:[\w:]+", text))
    assert used_recorded and used_recorded <= recorded, used_recorded - recorded
    # the template variable's series too
    variable = build.dashboards()["jiancha-overview.json"]["templating"]["list"][0]
    assert re.search(r"label_values\((\w+),", variable["definition"])[1] in exposed


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


@pytest.fixture(scope="module")
def rules():
    return load_rules("cards")


def concrete_sql(query: str) -> str:
    query = SQL_MACRO.sub("true", query).replace("$window", "W1")
    assert "$" not in query, query
    return query


async def test_every_sql_query_runs_on_a_ledger_with_cards(dsn, cal, rules):
    boards = build.dashboards()
    queries = targets(boards, "rawSql")
    queries += [v["query"] for b in boards.values() for v in b["templating"]["list"]
                if v["datasource"]["uid"] == "${DS_POSTGRES}"]  # fmt: skip
    assert len(queries) >= 5
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-22T00:00:00"), z("2024-02-08T03:00:00"))
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cards") == 3
        # as Grafana runs them: with the rights of jiancha_dashboard (migration 0005) only
        await conn.execute("SET ROLE jiancha_dashboard")
        try:
            results = {q: await conn.fetch(concrete_sql(q)) for q in queries}
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE jiancha.cards SET status = 'closed'")
        finally:
            await conn.execute("RESET ROLE")
    at_risk = results[build.AT_RISK]
    assert [(r["办件编号"], r["事项"], r["最高牌级"]) for r in at_risk] == [("C1", "M1", "red")]
    assert at_risk[0]["期限"] == z("2024-02-21T16:00:00")
    assert at_risk[0]["剩余工作日"] is not None  # from the red card's detail
    cards = results[build.WINDOW_CARDS]
    assert sorted(r["牌级"] for r in cards) == ["blue", "red", "yellow"]
    assert {r["状态"] for r in cards} == {"issued"}
    assert [tuple(r) for r in results[build.OPEN_BY_LEVEL]] == [
        ("red", 1), ("yellow", 1), ("blue", 1)
    ]  # fmt: skip
    assert [tuple(r) for r in results[build.WINDOWS]] == [("W1",)]
