"""The wheel ships what an installed jiancha needs beside the code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from monitor.migrate import load_migrations

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_rules_sql_and_console_script(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("jiancha-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    shipped = {p.relative_to(ROOT / "rules").as_posix() for p in (ROOT / "rules").rglob("*.toml")}
    assert shipped, "rules/ has calendar files"
    assert {f"monitor/_rules/{name}" for name in shipped} <= names
    assert "monitor/calendar/_kernel.py" in names and "exporters/__init__.py" in names
    assert "jiancha = monitor.cli:main" in scripts
    # the SQL that `jiancha db migrate` and `jiancha db install-source` run
    migrations = {f"monitor/sql/migrations/{m.path.name}" for m in load_migrations()}
    assert migrations <= names
    assert {"monitor/sql/schema.sql", "monitor/sql/bootstrap.sql"} <= names
    assert "monitor/_deploy/sql/source.sql" in names


def test_rules_dir_prefers_installed_copy(tmp_path, monkeypatch):
    from monitor import paths

    assert paths.rules_dir() == ROOT / "rules"  # source checkout
    monkeypatch.setenv("JIANCHA_RULES_DIR", str(tmp_path))
    assert paths.rules_dir() == tmp_path
