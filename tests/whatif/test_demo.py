"""`jiancha demo` as a newcomer runs it: a real process, its own embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEMO = [sys.executable, "-m", "monitor", "demo", "--start", "2024-03-04", "--history", "2",
        "--metrics-address", "127.0.0.1:0"]  # fmt: skip


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIANCHA_")}
    return {**clean, "JIANCHA_LANG": "en"}


def postgres_stopped(folder: Path) -> bool:
    return not (folder / "pg" / "postmaster.pid").exists()


def test_headless_demo_runs_a_day_and_prints_what_jiancha_saw(tmp_path):
    folder = tmp_path / "demo"
    done = subprocess.run([*DEMO, "--headless", "--json", "--speed", "20000", "--dir", str(folder)],
                          env=env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    seen, simulated = doc["jiancha"], doc["simulated_cases_of_the_period"]
    assert doc["first_day"] == doc["last_day"] == "2024-03-04"
    # every case the simulator submitted in the live day reached jiancha.cases, no event was bad
    assert seen["submitted"] == simulated["cases"] and 500 <= seen["submitted"] <= 650
    assert seen["dead_letters"] == 0
    assert 0.45 <= seen["immediate_share"] <= 0.65
    # the figures by the one definition (jiancha.figures_v1): on-time over judged completions
    assert seen["accepted"] > 0 and seen["completed"] > 0 and seen["overdue"] >= 0
    assert seen["on_time_rate"] == round(seen["on_time"] / (seen["on_time"] + seen["late"]), 4)
    # cards: the backlog's overdue cases are carded whatever the machine's speed; how many
    # warnings the live day gets depends on when its ticks ran against its events
    assert set(seen["cards"]) == {"blue", "yellow", "red"}
    assert seen["cards_total"] > 0 and seen["cards_total"] >= sum(seen["cards"].values())
    assert seen["cards_revoked"] < seen["cards_total"]  # a late-committed event's, not a storm
    assert postgres_stopped(folder)  # nothing left running
    log = [json.loads(line) for line in (folder / "jiancha.log").read_text().splitlines()
           if line.startswith("{")]  # fmt: skip
    assert any(r.get("event") == "ready" for r in log)
    assert any(r.get("event") == "card_issued" for r in log)


def test_live_demo_serves_metrics_and_stops_everything_on_ctrl_c(tmp_path):
    folder = tmp_path / "demo"
    proc = subprocess.Popen([*DEMO, "--speed", "60", "--dir", str(folder)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        ready = None
        while ready is None and time.monotonic() < deadline and proc.poll() is None:
            log = folder / "jiancha.log"
            if log.exists():
                for line in log.read_text().splitlines():
                    if '"event": "ready"' in line:
                        ready = json.loads(line)
            time.sleep(0.2)
        assert ready is not None, proc.stderr.read() if proc.poll() is not None else "no ready"
        url = f"http://{ready['metrics']}/metrics"
        text = ""
        while "jiancha_open_cases{" not in text and time.monotonic() < deadline:
            text = httpx.get(url, timeout=5).text  # the first snapshot comes within 5 s
            time.sleep(0.2)
        assert "jiancha_database_up 1.0" in text and "jiancha_open_cases{" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        out = proc.stdout.read() if proc.stdout else ""
        assert "Stopped: the daemon, the simulator and the database have exited." in out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert postgres_stopped(folder)
    try:
        httpx.get(url, timeout=2)
        raise AssertionError("the metrics server is still up")
    except httpx.ConnectError:
        pass


def _login(client: httpx.Client, password: str, user: str = "demo") -> None:
    form = client.get("/login")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    signed = client.post("/login", data={"username": user, "password": password, "csrf": token})
    assert signed.status_code == 303, signed.text[:500]


def test_demo_with_the_console_shows_the_cards_at_the_periods_end_until_ctrl_c(tmp_path):
    """An officer trying jiancha wants the console on the demo's cards: ``--web`` serves it
    on the demo's database with an account made for the occasion, on the demo's clock (held
    at the period's end, so the time left is 2024's, not two years overdue)."""
    folder = tmp_path / "demo"
    proc = subprocess.Popen([*DEMO, "--headless", "--speed", "20000", "--dir", str(folder),
                             "--web", "127.0.0.1:0"], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while not any(line.startswith("a window head: ") for line in lines):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines) + proc.stderr.read()
            lines.append(line)
        found = re.search(r"console: (http://\S+) \(user demo, password (\S+)\)", "".join(lines))
        assert found is not None, "".join(lines)
        base, password = found.groups()
        assert any(line.startswith("Demo period 2024-03-04 to 2024-03-04") for line in lines)
        with httpx.Client(base_url=base, timeout=10) as client:
            _login(client, password)
            page = client.get("/cards?status=all")
            assert page.status_code == 200
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
            shown = int(re.search(r"(\d+) in all", text).group(1))  # type: ignore[union-attr]
            assert shown > 0, text[:2000]
            # counted at the held instant (2024-03-05 00:00 Beijing): days, not years
            days = [float(d) for d in re.findall(r"([\d.]+) working days?", text)]
            assert days and max(days) < 30, days
            assert "2024-03-0" in text
            # the English page in English punctuation, not （、）
            assert "demo officer (inspection officer, administrator)" in text
            # the live day's daily bulletin, stored as the daemon's schedule would
            bulletins = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/reports").text))
            assert "daily monitoring sheet 2024-03-04 accepted " in bulletins
            assert "generated 2024-03-05 00:00 PDF XLSX" in bulletins  # on the demo's clock
        # a window head's account for the window with the most open cards: theirs alone
        head = re.search(r"a window head: user demo-head, the same password \((.+?): the most",
                         "".join(lines))  # fmt: skip
        assert head is not None, "".join(lines)
        with httpx.Client(base_url=base, timeout=10) as client:
            _login(client, password, "demo-head")
            mine = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/cards").text))
        windows = set(re.findall(r"\d{2}:\d{2} · (\S+窗口) · ", mine))
        assert windows == {head.group(1)}, windows
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # after the period, Ctrl-C is the demo's end
        assert "Stopped." in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert postgres_stopped(folder)


def test_demo_without_the_embedded_postgresql_says_what_to_install(tmp_path):
    shim = tmp_path / "shim" / "pgserver"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('not installed')\n", encoding="utf-8")
    done = subprocess.run([*DEMO, "--headless", "--dir", str(tmp_path / "demo")],
                          env={**env(), "PYTHONPATH": str(shim.parent)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'jiancha[demo]'" in done.stderr
    assert not (tmp_path / "demo").exists()  # refused before touching anything
