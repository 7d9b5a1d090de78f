"""The wheel ships what an installed jiancha needs beside the code, and a fresh machine gets
the Debian packages the suite needs (deploy/dev-deps.sh, run by ``make test``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from monitor.migrate import load_migrations

ROOT = Path(__file__).resolve().parents[2]
DEV_DEPS = ROOT / "deploy" / "dev-deps.sh"
IS_ROOT = os.geteuid() == 0

# deploy/ folders and files a wheel carries as monitor/_deploy/... (deploy/install.sh and
# deploy/dev-deps.sh stay in the checkout: they install jiancha, they are not part of it)
DEPLOY_DATA = ("sql", "prometheus", "systemd", "grafana", "jiancha.example.toml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (found,) = dist.glob("jiancha-*.whl")
    return found


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_wheel_carries_rules_sql_dashboards_deploy_and_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    shipped = {p.relative_to(ROOT / "rules").as_posix() for p in (ROOT / "rules").rglob("*.toml")}
    assert shipped, "rules/ has calendar files"
    assert {f"monitor/_rules/{name}" for name in shipped} <= names
    assert "monitor/calendar/_kernel.py" in names and "exporters/__init__.py" in names
    assert "jiancha = monitor.cli:main" in scripts
    assert "monitor/__main__.py" in names  # python -m monitor
    # the SQL that `jiancha db migrate` and `jiancha db install-source` run
    migrations = {f"monitor/sql/migrations/{m.path.name}" for m in load_migrations()}
    assert migrations <= names
    assert {"monitor/_deploy/sql/schema.sql", "monitor/sql/bootstrap.sql"} <= names
    assert "monitor/_deploy/sql/source.sql" in names
    assert "monitor/report/templates/bulletin.html.j2" in names  # jiancha report's HTML and PDF
    alerts = ROOT / "monitor" / "outbox" / "templates"  # the messages' built-in templates
    shipped_alerts = {f"monitor/outbox/templates/{p.relative_to(alerts).as_posix()}"
                      for p in alerts.rglob("*.j2")}  # fmt: skip
    assert len(shipped_alerts) >= 24 and shipped_alerts <= names
    # every generated dashboard (pyproject.toml lists them one by one), not their generator
    boards = sorted(p.name for p in (ROOT / "dashboards").glob("*.json"))
    assert len(boards) >= 3
    assert {n for n in names if n.startswith("monitor/_dashboards/")} == {
        f"monitor/_dashboards/{b}" for b in boards
    }
    assert not {n for n in names if n.startswith("dashboards/")}
    # the operator's files, all of them, and nothing else of deploy/
    expected = set()
    for item in DEPLOY_DATA:
        path = ROOT / "deploy" / item
        found = {f"{item}/{f}" for f in _files(path)} if path.is_dir() else {item}
        assert found, item
        expected |= found
    assert {n.removeprefix("monitor/_deploy/") for n in names
            if n.startswith("monitor/_deploy/")} == expected  # fmt: skip
    assert {"systemd/jiancha.service", "prometheus/prometheus.yml",
            "grafana/provisioning/datasources/jiancha.yml"} <= expected  # fmt: skip


def test_paths_in_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor import paths

    assert paths.rules_dir() == ROOT / "rules"  # source checkout
    assert paths.dashboards_dir() == ROOT / "dashboards"
    assert paths.deploy_dir() == ROOT / "deploy"
    assert paths.deploy_sql_dir() == ROOT / "deploy" / "sql"
    assert paths.prometheus_dir() == ROOT / "deploy" / "prometheus"
    assert paths.grafana_provisioning_dir() == ROOT / "deploy" / "grafana" / "provisioning"
    assert paths.systemd_unit() == ROOT / "deploy" / "systemd" / "jiancha.service"
    assert paths.example_config() == ROOT / "deploy" / "jiancha.example.toml"
    for found in (paths.systemd_unit(), paths.example_config(), paths.source_sql()):
        assert found.is_file(), found
    assert (paths.prometheus_dir() / "jiancha.rules.yml").is_file()
    assert (paths.grafana_provisioning_dir() / "dashboards" / "jiancha.yml").is_file()
    monkeypatch.setenv("JIANCHA_RULES_DIR", str(tmp_path))
    assert paths.rules_dir() == tmp_path


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No PYTHONPATH, no venv of ours, no JIANCHA_* (JIANCHA_CONFIG above all), Chinese."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "JIANCHA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "JIANCHA_LANG": "zh", "HOME": str(tmp_path / "home")}


_CHECK_PATHS = """
import json, monitor
from monitor import paths
files = (paths.systemd_unit(), paths.example_config(), paths.source_sql(),
         paths.prometheus_dir() / "prometheus.yml", paths.prometheus_dir() / "jiancha.rules.yml",
         paths.grafana_provisioning_dir() / "datasources" / "jiancha.yml")
print(json.dumps({"monitor": monitor.__file__, "rules": str(paths.rules_dir()),
    "dashboards": sorted(p.name for p in paths.dashboards_dir().glob("*.json")),
    "dashboards_dir": str(paths.dashboards_dir()), "deploy": str(paths.deploy_dir()),
    "files": [str(p) for p in files if p.is_file()]}))
"""


@pytest.mark.slow
def test_installed_wheel_works_without_a_checkout(wheel: Path, tmp_path: Path) -> None:
    """The wheel in a real fresh venv, run where no checkout is visible.

    A plain ``python -m venv`` (no ``--system-site-packages``) and ``pip install`` of the
    wheel with its dependencies from the index pip is configured with (about 20 s here:
    pip unpacks numba, llvmlite and numpy). Borrowing the project venv's site-packages
    instead would be faster but fragile: its editable install of jiancha (a ``.pth`` that
    puts the checkout on ``sys.path``) could answer in place of the wheel. Every command
    runs with cwd in tmp_path, without PYTHONPATH or JIANCHA_*, and the test asserts
    that ``monitor`` and its data come from the new venv.
    """
    venv = tmp_path / "venv"
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(tmp_path)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, cwd=work,
                   capture_output=True, timeout=300)  # fmt: skip
    pip = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(wheel)],
        env=env, cwd=work, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert pip.returncode == 0, "pip install of the wheel and its dependencies:\n" + pip.stderr
    print(f"fresh venv with the wheel: {time.monotonic() - t0:.1f} s")
    site = venv / "lib"

    def run(*argv: str | Path, code: int = 0) -> str:
        proc = subprocess.run([str(a) for a in argv], env=env, cwd=work, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == code, f"{argv}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc.stdout

    found = json.loads(run(venv / "bin" / "python", "-c", _CHECK_PATHS))
    for key in ("monitor", "rules", "dashboards_dir", "deploy"):
        assert Path(found[key]).is_relative_to(site), (key, found[key])
    assert Path(found["rules"]).name == "_rules" and Path(found["deploy"]).name == "_deploy"
    assert found["dashboards"] == sorted(p.name for p in (ROOT / "dashboards").glob("*.json"))
    assert len(found["files"]) == 6, found["files"]

    jiancha = venv / "bin" / "jiancha"
    config = work / "jiancha.toml"
    config.write_text('[database]\nsource_dsn = "postgresql://jiancha@127.0.0.1/approval"\n')
    out = run(jiancha, "config", "check", "--config", config)
    assert 'rules = "cards"' in out and 'calendar = "cn"' in out  # loaded from the wheel
    assert "# 配置有效" in out

    out = run(jiancha, "grafana", "push", "--check")
    assert out.startswith(f"仪表盘目录 {found['dashboards_dir']}（{len(found['dashboards'])} 个）")
    assert all(name in out for name in found["dashboards"]) and "检查通过" in out

    out = run(jiancha, "calendar", "deadline", "--start", "2024-02-08T10:00", "--workdays", "5")
    assert "2024-02-21 24:00" in out
    out = run(venv / "bin" / "python", "-m", "monitor", "calendar", "is-workday", "2024-02-04")
    assert out.startswith("2024-02-04 星期日：工作日"), out
    assert run(venv / "bin" / "python", "-m", "monitor", "--version").startswith("jiancha ")


# --- deploy/dev-deps.sh -------------------------------------------------------------------


def _dev_deps(*args: str, script: Path = DEV_DEPS,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([*prefix, str(script), *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_dev_deps_lists_what_the_suite_runs() -> None:
    from tests.notify.test_alertmanager import APT_PACKAGE

    assert os.access(DEV_DEPS, os.X_OK), "make test runs it directly: keep it executable"
    listed = _dev_deps("--list")
    assert listed.returncode == 0 and listed.stderr == ""
    packages = listed.stdout.split()
    assert len(listed.stdout.splitlines()) == 1
    for needed in (
        APT_PACKAGE,
        "prometheus",
        "shellcheck",
        "openssl",
        "systemd",
        "python3-venv",
        "postgresql-15",  # tests/faults/test_failover.py
        "fonts-noto-cjk",  # tests/report
        "poppler-utils",
    ):
        assert needed in packages
    if shutil.which("dpkg-query"):  # on this machine everything is there: silent, quick
        t0 = time.monotonic()
        for args in ((), ("--check",)):
            done = _dev_deps(*args)
            assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), done
        assert time.monotonic() - t0 < 5
    bad = _dev_deps("--install")
    assert bad.returncode == 2 and "unknown argument: --install" in bad.stderr


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs dpkg (Debian)")
def test_dev_deps_names_what_is_missing(tmp_path: Path) -> None:
    script = tmp_path / "dev-deps.sh"
    text = DEV_DEPS.read_text("utf-8")
    assert text.count("\nPACKAGES=(") == 1
    script.write_text(text.replace("\nPACKAGES=(", "\nPACKAGES=(jiancha-no-such-package "))
    script.chmod(0o755)
    line = "缺少 Debian 软件包 / missing Debian packages: jiancha-no-such-package — "
    done = _dev_deps("--check", script=script)  # never installs, root or not
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == line + ("" if IS_ROOT else "sudo ") + f"{script}\n"
    if IS_ROOT:  # as nobody, from a folder nobody can reach (pytest's tmp_path is root's)
        nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
        scratch = Path(tempfile.mkdtemp(prefix="jiancha-dev-deps-"))
        try:
            scratch.chmod(0o755)
            shared = Path(shutil.copy2(script, scratch / "dev-deps.sh"))
            done = _dev_deps(script=shared, prefix=nobody)
            assert done.returncode == 1 and done.stderr == line + f"sudo {shared}\n", done
        finally:
            shutil.rmtree(scratch)


def test_scripts_are_shellcheck_clean() -> None:
    found = shutil.which("shellcheck")
    assert found, "shellcheck missing: Debian package shellcheck (deploy/dev-deps.sh)"
    scripts = [DEV_DEPS, ROOT / ".ci" / "run"]
    proc = subprocess.run([found, "--shell=bash", *map(str, scripts)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_commands_only() -> None:
    """.ci/run is the README's commands, so CI proves what a newcomer types."""
    lines = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    commands = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    assert commands[:3] == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]
    assert 'make demo DEMO_ARGS="--headless"' in commands and "make bench-quick" in commands
    readme = (ROOT / "README.md").read_text("utf-8")
    for command in commands[2:]:  # each one as the README writes it, at the start of a line
        assert re.search(rf"^{re.escape(command)}(\s|$)", readme, re.MULTILINE), command
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert dry.returncode == 0 and dry.stdout.splitlines()[0] == "deploy/dev-deps.sh"
