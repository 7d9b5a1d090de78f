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
from tests.sourcekit import SUBMITTED, at, prepare, reset, write


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
        [sys.executable, "-m", "monitor.cli", "run", "--poll-interval", "0.1", *extra],
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
        [sys.executable, "-m", "monitor.cli", "run"], env={**env, "JIANCHA_LANG": "en"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "JIANCHA_SOURCE_DSN" in result.stderr
