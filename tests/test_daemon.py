"""`jiancha run` as an operator runs it: a real process, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import trio

from monitor import db
from monitor.evaluator import GC_THRESHOLDS
from tests import httpkit
from tests.sourcekit import SUBMITTED, at, prepare, reset, write

receiver = httpkit.receiver


@pytest.fixture
async def dsn(pg_dsn):
    async with db.open_loop():
        await prepare(pg_dsn)
        await reset(pg_dsn)
        async with await db.connect(pg_dsn, application_name="writer") as conn:
            await write(
                conn, [("D1", "submitted", at(0), SUBMITTED), ("D1", "accepted", at(1), {})]
            )
    return pg_dsn


def start(dsn: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "JIANCHA_SOURCE_DSN": dsn, "JIANCHA_LANG": "en"}
    env.pop("JIANCHA_DSN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--poll-interval", "0.1",
         "--metrics-address", "127.0.0.1:0", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(proc: subprocess.Popen[str], event: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        record = json.loads(line)  # every log line is one JSON object
        if record.get("event") == event:
            return record
    raise AssertionError(
        f"no {event!r} log line; stderr: {proc.stderr.read() if proc.stderr else ''}"
    )


async def test_run_ingests_and_stops_cleanly_on_sigterm(dsn):
    proc = start(dsn)
    try:
        ready = wait_for(proc, "ready")
        assert ready["level"] == "info" and "timestamp" in ready
        assert ready["gc_thresholds"] == list(GC_THRESHOLDS)
        query = "SELECT status FROM jiancha.cases WHERE case_id = 'D1'"
        async with db.open_loop(), await db.connect(dsn) as conn:
            with trio.fail_after(10):
                while await conn.fetchval(query) != "accepted":
                    await trio.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert wait_for(proc, "stopped")["event"] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_without_dsn_says_which_variable_to_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANCHA_")}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run"], env={**env, "JIANCHA_LANG": "en"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "JIANCHA_SOURCE_DSN" in result.stderr


async def test_run_issues_cards_and_keeps_its_rules_on_a_bad_reload(dsn, tmp_path):
    rules = tmp_path / "centre.toml"
    rules.write_text('extends = "cards"\n', encoding="utf-8")
    proc = start(dsn, "--rules", str(rules))
    try:
        ready = wait_for(proc, "ready")
        assert ready["rules"] == "centre"
        # D1 was accepted in March 2024: long overdue, so the catch-up gives its red cards
        query = "SELECT rule FROM jiancha.cards WHERE case_id = 'D1' AND level = 'red'"
        async with db.open_loop(), await db.connect(dsn) as conn:
            with trio.fail_after(20):
                while len(await conn.fetch(query)) < 2:
                    await trio.sleep(0.05)
            assert {r["rule"] for r in await conn.fetch(query)} == {
                "decision_time", "statutory_time"
            }  # fmt: skip
            rules.write_text('extends = "cards"\n[[clock]]\nrule = "x"\n', encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            failed = wait_for(proc, "reload_failed")
            assert f"{rules}:" in failed["error"] and failed["level"] == "error"
            # still running on the old rules: a new case is taken and carded
            await write(
                conn, [("D2", "submitted", at(0), SUBMITTED), ("D2", "accepted", at(1), {})]
            )
            with trio.fail_after(20):
                while len(await conn.fetch(query.replace("D1", "D2"))) < 2:
                    await trio.sleep(0.05)
            # a good edit is taken: statutory cards switched off by an override
            rules.write_text(
                'extends = "cards"\n[[override]]\ndepartments = ["住建局"]\n'
                'rule = "statutory_time"\nenabled = false\n',
                encoding="utf-8",
            )
            proc.send_signal(signal.SIGHUP)
            reloaded = wait_for(proc, "rules_reloaded")
            assert reloaded["rules"] == "centre"
            revoked = await conn.fetch(
                "SELECT c.case_id, e.reason FROM jiancha.card_events e JOIN jiancha.cards c "
                "ON c.id = e.card_id WHERE e.kind = 'revoked' ORDER BY c.case_id"
            )
            assert [(r["case_id"], r["reason"]) for r in revoked] == [
                ("D1", "rules_changed"), ("D2", "rules_changed")
            ]  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_run_delivers_each_card_to_its_window_once(dsn, tmp_path, receiver):
    conf = tmp_path / "jiancha.toml"
    conf.write_text(
        f'[channels.w1]\nkind = "webhook"\nurl = "{receiver.url("/w1")}"\n'
        '[windows.W1]\nhead = "王芳"\nchannels = ["w1"]\n',
        encoding="utf-8",
    )
    proc = start(dsn, "--config", str(conf))
    try:
        ready = wait_for(proc, "ready")
        assert ready["channels"] == ["w1"] and ready["config"] == str(conf)
        async with db.open_loop(), await db.connect(dsn) as conn:
            with trio.fail_after(20):  # D1: decision and statutory red, each to W1 once
                while (
                    await conn.fetchval(
                        "SELECT count(*) FROM jiancha.outbox WHERE state = 'delivered'"
                    )
                    < 2
                ):
                    await trio.sleep(0.05)
        assert sorted(receiver.keys()) == ["card:1:w1", "card:2:w1"]
        assert {r.json()["level"] for r in receiver.requests} == {"red"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_killed_mid_delivery_loses_nothing_and_repeats_only_the_key(dsn, tmp_path, receiver):
    """SIGKILL while a webhook request is in flight: after a restart the notification is
    sent again with the same Idempotency-Key (a receiver that honours it drops the copy)."""
    from tests.httpkit import Reply

    conf = tmp_path / "jiancha.toml"
    conf.write_text(
        f'[channels.w1]\nkind = "webhook"\nurl = "{receiver.url("/w1")}"\n'
        '[windows.W1]\nchannels = ["w1"]\n[notify]\nlease = 1\nbackoff_initial = 0.1\n',
        encoding="utf-8",
    )
    receiver.script(Reply(200, delay=30.0))  # the first delivery hangs until the kill
    proc = start(dsn, "--config", str(conf))
    try:
        wait_for(proc, "ready")
        with trio.fail_after(20):
            while not receiver.requests:
                await trio.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = start(dsn, "--config", str(conf))
    try:
        wait_for(proc, "ready")
        async with db.open_loop(), await db.connect(dsn) as conn:
            with trio.fail_after(30):
                while (
                    await conn.fetchval(
                        "SELECT count(*) FROM jiancha.outbox WHERE state = 'delivered' "
                        "AND kind = 'card'"
                    )
                    < 2
                ):
                    await trio.sleep(0.05)
            assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox "
                                       "WHERE kind = 'card'") == 2  # fmt: skip
        sent = receiver.keys()  # every Idempotency-Key received, in order
        keys = [k for k in sent if k.startswith("card:")]
        assert sorted(set(keys)) == ["card:1:w1", "card:2:w1"]  # nothing lost
        assert len(keys) <= 3  # at most the one in flight came twice, under the same key
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_metrics_pass_promtool_and_count_the_cards(dsn):
    import shutil

    import httpx

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: Debian package prometheus (CI installs it)"
    proc = start(dsn)
    try:
        ready = wait_for(proc, "ready")
        url = f"http://{ready['metrics']}/metrics"
        text = ""
        # the counters are the process's, the gauges below a query of the database: a
        # snapshot taken while the cards' batch commits has the one before the other
        open_red = ('jiancha_open_cases{department="住建局",level="red",matter="M1",'
                    'window="其他"} 1.0')  # fmt: skip  # W1 is no configured window: 其他
        async with httpx.AsyncClient() as client:
            with trio.fail_after(20):  # the snapshot is taken every 5 s
                while not ('jiancha_cards_issued_total{level="red"} 2.0' in text
                           and open_red in text):  # fmt: skip
                    text = (await client.get(url)).text
                    await trio.sleep(0.2)
        check = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)  # fmt: skip
        assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check
        assert "jiancha_database_up 1.0" in text
        assert 'jiancha_cards_issued_total{level="blue"} 0.0' in text  # every level exists
        assert 'window="W1"' not in text  # not a window of the configuration (there is none)
        assert (
            'jiancha_active_cards{department="住建局",level="red",rule="decision_time"} 1.0' in text
        )
        assert "jiancha_evaluation_duration_seconds_count" in text
        assert (
            'jiancha_cards_total{department="住建局",level="red",rule="statutory_time"} 1.0' in text
        )
        assert "D1" not in text  # never a case id in a label
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_sighup_rereads_the_configuration_and_keeps_it_on_a_bad_one(dsn, tmp_path, receiver):
    """A channel moved by an edit is used at once; a malformed edit leaves it in force."""
    import httpx

    conf = tmp_path / "jiancha.toml"

    def configure(path: str) -> None:
        conf.write_text(
            f'[channels.w1]\nkind = "webhook"\nurl = "{receiver.url(path)}"\n'
            '[windows.W1]\nchannels = ["w1"]\n',
            encoding="utf-8",
        )

    async def delivered(conn, n: int) -> None:
        with trio.fail_after(20):
            sql = "SELECT count(*) FROM jiancha.outbox WHERE state = 'delivered'"
            while await conn.fetchval(sql) < n:
                await trio.sleep(0.05)

    def paths() -> dict[str, str]:
        return {r.headers["idempotency-key"]: r.path for r in receiver.requests}

    configure("/old")
    proc = start(dsn, "--config", str(conf))
    try:
        ready = wait_for(proc, "ready")
        async with db.open_loop(), await db.connect(dsn) as conn:
            await delivered(conn, 2)  # D1's two red cards
            assert set(paths().values()) == {"/old"}
            configure("/new")
            proc.send_signal(signal.SIGHUP)
            reloaded = wait_for(proc, "reloaded")
            assert reloaded["config_hash"] != ready["config_hash"]
            await write(
                conn, [("D2", "submitted", at(0), SUBMITTED), ("D2", "accepted", at(1), {})]
            )
            await delivered(conn, 4)
            assert sorted(paths().values()) == ["/new", "/new", "/old", "/old"]
            # a malformed edit: refused whole, the running configuration stays
            conf.write_text('[channels.w1]\nkind = "webhook"\nurl = \n', encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            failed = wait_for(proc, "reload_failed")
            assert (
                failed["error"].startswith(f"{conf}:3: TOML 语法错误")
                and failed["level"] == "error"
            )
            await write(
                conn, [("D3", "submitted", at(0), SUBMITTED), ("D3", "accepted", at(1), {})]
            )
            await delivered(conn, 6)
            assert sorted(paths().values()) == ["/new"] * 4 + ["/old"] * 2
            text = ""
            async with httpx.AsyncClient() as client:
                with trio.fail_after(20):  # the snapshot is taken every 5 s
                    while "jiancha_config_reloads_failed_total 1.0" not in text:
                        text = (await client.get(f"http://{ready['metrics']}/metrics")).text
                        await trio.sleep(0.2)
            assert f'config="{reloaded["config_hash"]}"' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_the_leader_catches_up_the_last_bulletin_once_across_restarts(
    dsn, tmp_path, receiver
):
    """A daemon come to lead makes the bulletin last due; a restart does not make it again."""
    import datetime as dt

    from monitor.calendar import load_calendar
    from monitor.config import ReportSchedule
    from monitor.report.schedule import latest_runs

    conf = tmp_path / "jiancha.toml"
    conf.write_text(
        f'[channels.w1]\nkind = "webhook"\nurl = "{receiver.url("/w1")}"\n'
        '[reports.daily]\nat = "18:00"\nchannels = ["w1"]\n'
        '[web]\nbase_url = "https://jc.example.gov.cn"\n',
        encoding="utf-8",
    )
    cal = load_calendar("cn")
    ((_, _, due),) = latest_runs([ReportSchedule("daily", dt.time(18))],
                                 dt.datetime.now(dt.UTC), cal, cal.timezone)  # fmt: skip
    for _ in range(2):  # the second start finds it stored and sends nothing
        proc = start(dsn, "--config", str(conf))
        try:
            wait_for(proc, "ready")
            async with db.open_loop(), await db.connect(dsn) as conn:
                with trio.fail_after(60):
                    while not await conn.fetchval(
                        "SELECT count(*) FROM jiancha.outbox WHERE kind = 'report' "
                        "AND state = 'delivered'"
                    ):
                        await trio.sleep(0.1)
                rows = await conn.fetch("SELECT kind, period, version FROM jiancha.reports")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert [tuple(r) for r in rows] == [("daily", due.key, 1)]
    reports = [r for r in receiver.requests
               if r.headers.get("idempotency-key", "").startswith("report:")]  # fmt: skip
    assert [r.headers["idempotency-key"] for r in reports] == [f"report:daily:{due.key}:-:v1:w1"]
    assert "https://jc.example.gov.cn/reports/1" in reports[0].body.decode()
