"""deploy/prometheus: promtool checks and unit-tests the rules; every series they use exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.metricskit import scrape, snapshot

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool missing: Debian package prometheus (CI installs it)"
    return found


@pytest.mark.parametrize(
    "args",
    [["check", "rules", "jiancha.rules.yml"], ["test", "rules", "jiancha.rules.test.yml"],
     ["check", "config", "prometheus.yml"]],
)  # fmt: skip
def test_promtool_accepts_the_files(promtool, args):
    run = subprocess.run([promtool, *args], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_amtool_accepts_the_example_alertmanager_configuration():
    amtool = shutil.which("amtool")
    assert amtool, "amtool missing: Debian package prometheus-alertmanager (CI installs it)"
    run = subprocess.run([amtool, "check-config", "alertmanager.yml"], cwd=PROM,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr
    assert "3 inhibit rules" in run.stdout


def test_every_operator_alert_has_a_runbook_that_exists():
    text = (PROM / "jiancha.rules.yml").read_text("utf-8")
    alerts = re.findall(r"- alert: (\w+)", text)
    books = re.findall(r'runbook_url: "([^"#]+)(?:#[^"]*)?"', text)
    assert len(books) == len(alerts) > 8
    assert all((PROM.parents[1] / b).is_file() for b in books), books


def test_rules_use_only_series_the_exporter_emits():
    exposed = set(re.findall(r"^(jiancha_\w+?)(?:\{| )", scrape(snapshot(
        database_up=True, notifications={("w1", "failed"): 1}, failed={"w1": 1},
        delivered={"w1": 1}, open_cases={("d", "w", "m", "red"): 1},
        active_cards={("red", "r", "d"): 1}, completions={("d", "early"): 1},
        cards_total={("d", "red", "r"): 1},
    )), re.M))  # fmt: skip
    text = (PROM / "jiancha.rules.yml").read_text("utf-8")
    # raw series only: recorded names (department:jiancha_...:ratio_1d) are the rules' own
    used = set(re.findall(r"(?<![:\w])jiancha_\w+", text))
    assert used and used <= exposed, used - exposed
