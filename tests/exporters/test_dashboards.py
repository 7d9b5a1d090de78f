"""dashboards/: generated JSON is current, references its datasources by the provisioned uids,
drills down centre -> department -> window -> case -> console, names codes in Chinese, and
every SQL query runs on a ledger as Grafana runs it (the PromQL runs against a real
Prometheus in test_fresh_install.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dashboards import build, parts, queries
from exporters.grafana import resolve_inputs
from monitor import db
from monitor.evaluator import Evaluator
from monitor.vocab import LEVEL_WORDS, STATUS_NAMES
from tests.cardkit import ACCEPTED_FEB8, Driver, z
from tests.sourcekit import write

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
UIDS = {parts.PROMETHEUS_UID, parts.POSTGRES_UID}
# Grafana's variables and macros, replaced by concrete values for promtool
PROM_VARS = {
    "${department:regex}": "x",
    "${level:regex}": "red|yellow",
    "${rule:regex}": ".+",
    "$__rate_interval": "5m",
    "$__interval": "5m",
    "$__range": "1d",
}


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


def variable_list(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board.get("templating", {}).get("list", []))


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in variable_list(board)}


def column_props(board: dict[str, Any], title: str, column: str) -> dict[str, Any]:
    (p,) = [p for p in panels(board) if p["title"] == title]
    for o in p["fieldConfig"]["overrides"]:
        if o["matcher"] == {"id": "byName", "options": column}:
            return {prop["id"]: prop["value"] for prop in o["properties"]}
    raise AssertionError(f"{title}: no settings for column {column}")


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


def test_datasources_are_the_provisioned_uids_with_nothing_to_fill(boards):
    provisioned = (ROOT / "deploy/grafana/provisioning/datasources/jiancha.yml").read_text()
    assert set(re.findall(r"^\s+uid: (\S+)$", provisioned, re.M)) == UIDS
    for board in boards.values():
        text = json.dumps(board, ensure_ascii=False)
        assert "${DS_" not in text and "__inputs" not in board
        datasources = [v for k, v in walk(board) if k == "datasource"]
        assert datasources
        for ds in datasources:
            assert isinstance(ds, dict) and ds["uid"] in UIDS, ds
        # push maps the uids to those of the datasources it found by name
        pushed = json.dumps(resolve_inputs(board, {"DS_PROMETHEUS": "p1", "DS_POSTGRES": "q1"}))
        assert not UIDS & set(re.findall(r'"uid": "([^"]+)"', pushed))


def test_chinese_titles_and_unique_ids(boards):
    for board in boards.values():
        assert CJK.search(board["title"])
        ids = [p["id"] for p in panels(board)]
        assert ids and len(ids) == len(set(ids))
        for p in panels(board):
            assert CJK.search(p["title"]), p["title"]
            assert CJK.search(p.get("description", "")), p["title"]
            assert p["targets"], p["title"]
        for variable in variable_list(board):
            assert CJK.search(variable["label"])


def test_drill_down_from_the_centre_to_the_console(boards, tmp_path):
    overview, window = boards["jiancha-overview.json"], boards["jiancha-window.json"]
    assert set(variables(overview)) == {"department", "level", "rule", "console"}
    assert set(variables(window)) == {"department", "window", "matter", "level", "rule", "console"}
    (dept_link,) = column_props(overview, "部门概况", "部门")["links"]
    assert dept_link["url"].startswith("/d/jiancha-overview?var-department=${__value.raw")
    (window_link,) = column_props(overview, "窗口排名", "窗口")["links"]
    assert window_link["url"].startswith("/d/jiancha-window?var-department=")
    assert "&var-window=${__value.raw:percentencode}" in window_link["url"]
    (overdue_link,) = column_props(overview, "超期在办件清单", "办件编号")["links"]
    assert overdue_link["url"] == "${console}/cases/${__value.raw:percentencode}"
    for title in ("在办件", "本窗口的牌"):
        (case_link,) = column_props(window, title, "办件编号")["links"]
        assert case_link["url"] == "${console}/cases/${__value.raw:percentencode}"
    assert variables(window)["console"]["query"] == build.CONSOLE
    # the console's address comes from [web] base_url at generation
    conf = tmp_path / "jiancha.toml"
    conf.write_text('[web]\nbase_url = "https://jiancha.example.gov.cn/"\n', "utf-8")
    assert build.main(["--config", str(conf), "--out", str(tmp_path)]) == 0
    made = json.loads((tmp_path / "jiancha-window.json").read_text("utf-8"))
    assert variables(made)["console"]["query"] == "https://jiancha.example.gov.cn"
    conf.write_text('[web]\nbase_url = "javascript:alert(1)"\n', "utf-8")
    with pytest.raises(SystemExit, match=r"\[web\] base_url"):
        build.main(["--config", str(conf), "--out", str(tmp_path)])


def test_sql_variables_are_formatted_by_grafana_never_quoted_by_hand(boards):
    sql = targets(boards, "rawSql") + [
        v["query"]
        for b in boards.values()
        for v in variable_list(b)
        if v.get("datasource", {}).get("uid") == parts.POSTGRES_UID
    ]
    used = set()
    for query in sql:
        assert not re.search(r"'\$", query), query
        for name, fmt in re.findall(r"\$\{(\w+)(?::(\w+))?\}", query):
            assert fmt == "sqlstring", (name, query)
            used.add(name)
        assert not re.search(r"\$(?!\{|__)", query), query  # no bare $window
    assert used == {"department", "window", "matter", "level", "rule"}
    for expr in targets(boards, "expr"):
        assert not re.search(r"\$(?!\{\w+:regex\}|__)", expr), expr


def test_codes_read_as_chinese_words(boards):
    window = boards["jiancha-window.json"]
    levels = column_props(window, "本窗口的牌", "牌级")["mappings"][0]["options"]
    assert {k: v["text"] for k, v in levels.items()} == {k: w["zh"] for k, w in LEVEL_WORDS.items()}
    status = column_props(window, "本窗口的牌", "状态")["mappings"][0]["options"]
    assert {k: v["text"] for k, v in status.items()} == {
        k: w["zh"] for k, w in STATUS_NAMES.items()
    }
    rules = column_props(window, "在办件", "规则")["mappings"][0]["options"]
    assert rules["decision_time"]["text"] == "承诺时限"
    assert rules["fee_on_free_matter"]["text"] == "免费事项收费"
    top = column_props(window, "在办件", "最高牌级")["mappings"][0]["options"]
    assert top["none"]["text"] == "未亮牌" and top["red"]["text"] == "红牌"
    overview = boards["jiancha-overview.json"]
    assert column_props(overview, "按规则的牌", "规则")["mappings"][0]["options"]["step_time"][
        "text"] == "环节时限"  # fmt: skip
    # matter names come from the catalogue, joined in SQL
    assert "LEFT JOIN jiancha.matters m ON m.code = c.matter" in queries.OPEN_CASES


def promql(boards: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for expr in targets(boards, "expr"):
        for var, value in sorted(PROM_VARS.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        out.append(expr)
    return out


def test_every_promql_expression_parses(boards, tmp_path):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(promtool).exists(), "promtool missing: Debian package prometheus"
    exprs = promql(boards)
    assert len(exprs) >= 12
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr_{n}", "expr": e} for n, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(json.dumps(rules, ensure_ascii=False), "utf-8")  # JSON is YAML
    run = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(exprs)} rules found" in run.stdout


def concrete_sql(query: str, values: dict[str, list[str]]) -> str:
    """``query`` as Grafana sends it, each variable with ``values`` selected."""
    for name, chosen in values.items():
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in chosen)
        query = query.replace("${" + name + ":sqlstring}", quoted)
    query = re.sub(
        r"\$__timeFilter\(([^)]*)\)",
        r"\1 BETWEEN '2024-01-01T00:00:00Z' AND '2024-12-31T00:00:00Z'",
        query,
    )
    query = query.replace("$__timeFrom()", "'2024-01-01T00:00:00Z'::timestamptz")
    query = query.replace("$__timeTo()", "'2024-12-31T00:00:00Z'::timestamptz")
    assert "$" not in query, query
    return query


async def test_every_sql_query_runs_on_a_ledger_with_cards(dsn, cal, rules):
    boards = build.dashboards()
    queries_ = targets(boards, "rawSql")
    queries_ += [v["query"] for b in boards.values() for v in variable_list(b)
                 if v.get("datasource", {}).get("uid") == parts.POSTGRES_UID]  # fmt: skip
    assert len(queries_) >= 12
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-22T00:00:00"), z("2024-02-08T03:00:00"))
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cards") == 3
        await conn.execute("INSERT INTO jiancha.matters VALUES ('M1', '建设工程规划许可', 'D')")
        from exporters.metrics import Holder
        from monitor.observe import Snapshotter

        now = dt.datetime.now(dt.UTC).timestamp()
        await Snapshotter(Holder(), dsn, calendar=cal, clock=lambda: now).keep_tables(conn)
        dept = await conn.fetchval("SELECT coalesce(department, '') FROM jiancha.cases")
        values = {"department": [dept, "其他部门"], "window": ["W1"], "matter": ["M1"],
                  "level": ["none", "blue", "yellow", "red"],
                  "rule": [r.rule for r in rules.rules]}  # fmt: skip
        # as Grafana runs them: with the rights of jiancha_dashboard (migration 0005) only
        await conn.execute("SET ROLE jiancha_dashboard")
        try:
            results = {q: await conn.fetch(concrete_sql(q, values)) for q in queries_}
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE jiancha.cards SET status = 'closed'")
        finally:
            await conn.execute("RESET ROLE")
    open_cases = results[queries.OPEN_CASES]
    assert [(r["办件编号"], r["事项"], r["最高牌级"], r["规则"]) for r in open_cases] == [
        ("C1", "建设工程规划许可", "red", "decision_time")]  # fmt: skip
    assert open_cases[0]["期限"] == z("2024-02-21T16:00:00")
    # counted now from the calendar: the deadline passed long ago, so it is overdue by far more
    # working days than any card recorded when it was issued
    assert open_cases[0]["剩余工作日"] < -100
    (overdue,) = results[queries.OVERDUE_CASES]
    assert (overdue["办件编号"], overdue["窗口"], overdue["事项"]) == (
        "C1",
        "W1",
        "建设工程规划许可",
    )
    assert overdue["超期工作日"] == -open_cases[0]["剩余工作日"]
    cards = results[queries.WINDOW_CARDS]
    assert sorted(r["牌级"] for r in cards) == ["blue", "red", "yellow"]
    assert {r["事项"] for r in cards} == {"建设工程规划许可"}
    assert [tuple(r) for r in results[queries.OPEN_BY_LEVEL]] == [
        ("red", 1), ("yellow", 1), ("blue", 1)
    ]  # fmt: skip
    (figures,) = results[queries.WINDOW_FIGURES]
    assert (figures["受理"], figures["办结"], figures["超期在办"]) == (1, 0, 1)
    (ranked,) = results[queries.WINDOW_RANKING]
    assert (ranked["窗口"], ranked["受理"], ranked["超期在办"]) == ("W1", 1, 1)
    by_rule = {(r["规则"], r["牌级"]): r["发牌数"] for r in results[queries.CARDS_BY_RULE]}
    assert by_rule == {("decision_time", "blue"): 1, ("decision_time", "yellow"): 1,
                       ("decision_time", "red"): 1}  # fmt: skip
    assert [tuple(r) for r in results[queries.WINDOW_VALUES]] == [("W1",)]
    assert [tuple(r) for r in results[queries.MATTER_VALUES]] == [("建设工程规划许可", "M1")]
