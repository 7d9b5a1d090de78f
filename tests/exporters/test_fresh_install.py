"""A fresh install: the real daemon on an empty source, scraped by a real Prometheus (Debian's,
on loopback), and every PromQL query of the dashboards answered with series, at zero where
nothing happened yet, for exactly the departments and channels the configuration names."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from dashboards import build
from monitor import db
from tests.sourcekit import Daemon

ROOT = Path(__file__).resolve().parents[2]
DEPARTMENTS = ("住建局", "民政局")
CONFIG = """\
[channels.w1]
kind = "webhook"
url = "http://127.0.0.1:9/never"

[departments."住建局"]
head = "李明"
channels = ["w1"]

[departments."民政局"]
head = "赵强"
channels = ["w1"]

[windows."综合受理1号窗口"]
head = "王芳"
channels = ["w1"]
"""
# What a user picks in the variables: every department, level and rule ("All").
CHOSEN = {
    "${department:regex}": "|".join(DEPARTMENTS),
    "${level:regex}": "blue|yellow|red",
    "${rule:regex}": ".+",
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
}
# Empty by design: no card is scheduled on an empty source, and a rate of no completions is
# undefined, not 0 (the recording rule drops NaN); the panels say 无数据.
UNDEFINED = ("min(jiancha_next_crossing_timestamp_seconds > 0) - time()",
             "sort(department:jiancha_on_time_rate:ratio_7d")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exprs() -> list[str]:
    out = []
    for board in build.dashboards().values():
        for p in board["panels"]:
            for t in p["targets"]:
                if "expr" in t:
                    expr = t["expr"]
                    for var, value in CHOSEN.items():
                        expr = expr.replace(var, value)
                    out.append(expr)
    return out


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Debian's Prometheus on a free loopback port, with jiancha's recording rules every second;
    the test writes its scrape target into the returned file."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "prometheus missing: Debian package prometheus"
    rules = tmp_path / "jiancha.rules.yml"
    text = (ROOT / "deploy/prometheus/jiancha.rules.yml").read_text("utf-8")
    rules.write_text(text.replace("interval: 1m", "interval: 1s"), "utf-8")
    targets = tmp_path / "targets.json"
    targets.write_text("[]", "utf-8")
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "jiancha", "file_sd_configs": [
            {"files": [str(targets)], "refresh_interval": "1s"}]}],
    }), "utf-8")  # fmt: skip
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", targets
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


async def query(client: httpx.AsyncClient, url: str, expr: str) -> list[dict[str, Any]]:
    answer = (await client.get(f"{url}/api/v1/query", params={"query": expr})).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


async def test_every_dashboard_series_exists_from_the_first_scrapes(dsn, tmp_path, prometheus):
    url, targets = prometheus
    conf = tmp_path / "jiancha.toml"
    conf.write_text(CONFIG, "utf-8")
    async with await db.connect(dsn) as conn:  # a catalogue (one more matter), no event yet
        await conn.execute(
            "INSERT INTO matters (code, name, department, statutory_days, "
            "promised_days) VALUES ('JS01', '建设工程规划许可', '住建局', 20, 10)"
        )
    daemon = Daemon(dsn, tmp_path / "daemon.log", ("-m", "monitor", "run", "--poll-interval",
                    "0.2", "--metrics-address", "127.0.0.1:0", "--config", str(conf)))  # fmt: skip
    try:
        ready = await daemon.wait_for("ready", timeout=60)
        targets.write_text(json.dumps([{"targets": [ready["metrics"]]}]), "utf-8")
        async with httpx.AsyncClient(timeout=10) as client:
            with trio.fail_after(90):  # Prometheus starting, finding the target, two scrapes
                while True:
                    try:
                        up = await query(client, url, 'up{job="jiancha"} == 1')
                        rated = await query(
                            client, url, "department_level:jiancha_cards:per_day_7d"
                        )
                    except httpx.TransportError:
                        up = rated = []
                    if up and rated:
                        break
                    await trio.sleep(0.5)
            empty = []
            for expr in exprs():
                if not await query(client, url, expr) and not expr.startswith(UNDEFINED):
                    empty.append(expr)
            assert not empty, "no series for:\n" + "\n".join(empty)
            # the labels are the configuration's, each at zero
            overdue = await query(client, url, "jiancha_overdue_cases")
            assert sorted(s["metric"]["department"] for s in overdue) == sorted(DEPARTMENTS)
            assert {s["value"][1] for s in overdue} == {"0"}
            cards = await query(client, url, "jiancha_cards_total")
            assert {s["metric"]["department"] for s in cards} == set(DEPARTMENTS)
            assert {s["metric"]["level"] for s in cards} == {"blue", "yellow", "red"}
            assert {s["value"][1] for s in cards} == {"0"}
            completions = await query(client, url, "jiancha_completions_total")
            assert len(completions) == len(DEPARTMENTS) * 3  # early, on_time, late: the rates'
            ratings = await query(client, url, "jiancha_ratings")
            assert len(ratings) == len(DEPARTMENTS) * 5
            outbox = await query(client, url, "jiancha_outbox_notifications")
            assert {(s["metric"]["channel"], s["metric"]["state"]) for s in outbox} == {
                ("w1", "pending"), ("w1", "delivered"), ("w1", "failed")}  # fmt: skip
            for name in (
                "jiancha_bad_reviews_total",
                "jiancha_bad_reviews_rectified_total",
                "jiancha_notifications_failed_total",
                "process_resident_memory_bytes",
            ):
                assert await query(client, url, name), name
            # the department variable's values: the configured departments
            values = (
                await client.get(
                    f"{url}/api/v1/label/department/values",
                    params={"match[]": "jiancha_overdue_cases"},
                )
            ).json()
            assert sorted(values["data"]) == sorted(DEPARTMENTS)  # fmt: skip
        # the tables the dashboards' SQL reads, written by the daemon
        async with await db.connect(dsn) as conn:
            copied = await conn.fetch("SELECT code, name FROM jiancha.matters ORDER BY 1")
            source = await conn.fetch("SELECT code, name FROM matters ORDER BY 1")
            assert [tuple(r) for r in copied] == [tuple(r) for r in source]
            assert ("JS01", "建设工程规划许可") in [tuple(r) for r in copied]
            assert await conn.fetchval("SELECT count(*) FROM jiancha.working_time") > 2000
    finally:
        daemon.stop()
