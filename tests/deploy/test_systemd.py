"""The systemd unit is valid and hardened; the daemon speaks sd_notify (READY, WATCHDOG)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import dsn, start, wait_for  # noqa: F401 (dsn: the fixture)

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "jiancha.service"
WEB_UNIT = UNIT.with_name("jiancha-web.service")  # the console (docs/console.md)


@pytest.fixture(scope="module")
def analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze missing: Debian package systemd (CI installs it)"
    return found


@pytest.mark.parametrize("source", [UNIT, WEB_UNIT], ids=lambda p: p.name)
def test_unit_verifies(analyze, tmp_path, source):
    # the unit names /opt/jiancha's binary; verify a copy pointing at this checkout's
    jiancha = Path(sys.executable).with_name("jiancha")
    unit = tmp_path / source.name
    unit.write_text(source.read_text("utf-8").replace("/opt/jiancha/venv/bin/jiancha",
                                                      str(jiancha)), "utf-8")  # fmt: skip
    run = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert source.name not in run.stdout + run.stderr  # no complaint about it


def test_unit_dumps_no_core():
    """A core of the daemon can hold DSNs, passwords and robot keys: the unit forbids one,
    and a watchdog abort (SIGABRT) leaves none."""
    service = UNIT.read_text("utf-8").split("[Service]", 1)[1].split("\n[", 1)[0]
    settings = [line.strip() for line in service.splitlines()]
    assert "LimitCORE=0" in settings
    assert "WatchdogSec=30s" in settings and "Type=notify" in settings


@pytest.mark.parametrize("source", [UNIT, WEB_UNIT], ids=lambda p: p.name)
def test_unit_security_rating_is_ok(analyze, source):
    run = subprocess.run([analyze, "security", "--offline=true", str(source)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    name = re.escape(source.name)
    m = re.search(rf"Overall exposure level for {name}: ([\d.]+) (\w+)", run.stdout)
    assert m, run.stdout + run.stderr
    assert float(m[1]) <= 2.5 and m[2] == "OK", m[0]


async def test_daemon_notifies_ready_pings_the_watchdog_and_says_stopping(dsn, tmp_path):  # noqa: F811
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "1000000"  # pings every 0.5 s
    try:
        proc = start(dsn)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        wait_for(proc, "ready")
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while (seen.count("WATCHDOG=1") < 3 or not any("延迟" in m for m in seen)) and (
            time.monotonic() < deadline
        ):
            seen.extend(sock.recv(4096).decode().splitlines())
        assert "READY=1" in seen and any(m.startswith("STATUS=") for m in seen)
        # then kept current: lag, open clocks, events, cards
        status = [m for m in seen if m.startswith("STATUS=运行中：延迟")]
        assert status and "在办时钟 2 个" in status[-1] and "已发牌 2 张" in status[-1], seen
        assert seen.count("WATCHDOG=1") >= 3
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in seen:
            seen.extend(sock.recv(4096).decode().splitlines())
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
