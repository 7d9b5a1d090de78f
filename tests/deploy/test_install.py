"""deploy/install.sh: install, reinstall, uninstall and purge, for real, into temporary dirs.

As root (CI, the project's machines) the script creates and removes a real system user with
a name of its own (``--user jct<pid>``), so the config's group ownership is checked too; as
another user it runs with ``--no-user``. systemctl is never called (``--no-systemctl``).
One fresh install (about 20 s on a quiet machine, most of it pip unpacking ~400 MB of
numba, llvmlite, numpy and pgserver), then in-place upgrades (a few seconds each).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install.sh"
EXAMPLE = ROOT / "deploy" / "jiancha.example.toml"
IS_ROOT = os.geteuid() == 0
OPTIONS = (
    "--prefix",
    "--etc",
    "--unit-dir",
    "--from",
    "--python",
    "--pip-args",
    "--user",
    "--no-user",
    "--no-systemctl",
    "--enable",
    "--uninstall",
    "--purge",
    "--lang",
)


def run(*args: str | Path, lang: str = "zh", check: bool = True,
        prefix: list[str] | None = None,
        script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANCHA")}
    env["JIANCHA_LANG"] = lang
    cmd = [*(prefix or []), str(script), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def group_of(path: Path) -> str:
    return grp.getgrgid(path.stat().st_gid).gr_name


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def snapshot(*paths: Path) -> dict[Path, tuple[bytes, int, int, int, int]]:
    """Bytes, mode, owner, group and mtime of each file: what "changes nothing" means."""
    out = {}
    for p in paths:
        st = p.stat()
        out[p] = (p.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
    return out


def unit_keys(unit: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in unit.read_text("utf-8").splitlines():
        if line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            keys.setdefault(k, []).append(v)
    return keys


def test_install_reinstall_upgrade_from_wheel_uninstall_and_purge(tmp_path):
    prefix, etc, units = (
        tmp_path / "opt" / "jiancha",
        tmp_path / "etc" / "jiancha",
        tmp_path / "units",
    )
    user = f"jct{os.getpid()}" if IS_ROOT else None
    assert user is None or not user_exists(user)
    where = ["--prefix", prefix, "--etc", etc, "--unit-dir", units, "--no-systemctl"]
    where += ["--user", user] if user else ["--no-user"]
    venv_jiancha = prefix / "venv" / "bin" / "jiancha"
    unit = units / "jiancha.service"
    toml, env_file, secrets = etc / "jiancha.toml", etc / "jiancha.env", etc / "secrets"
    try:
        # --- a fresh install -------------------------------------------------------------
        t0 = time.monotonic()
        first = run(*where)
        print(f"fresh install: {time.monotonic() - t0:.1f} s")
        assert "[创建] 虚拟环境" in first.stdout and "[安装] jiancha" in first.stdout
        helped = subprocess.run([venv_jiancha, "--help"], capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert helped.returncode == 0 and "jiancha db migrate" in helped.stdout, helped.stderr
        assert (prefix / "venv" / "pyvenv.cfg").is_file() and (prefix / "README.md").is_file()

        assert toml.read_bytes() == EXAMPLE.read_bytes()
        env_text = env_file.read_text("utf-8")
        assert "#JIANCHA_SOURCE_DSN=" in env_text and "#JIANCHA_DSN=" in env_text
        assert not [ln for ln in env_text.splitlines() if ln and not ln.startswith("#")]
        assert (mode(etc), mode(toml), mode(env_file), mode(secrets)) == (
            0o750,
            0o640,
            0o640,
            0o750,
        )
        if user:
            for p in (etc, toml, env_file, secrets):
                assert (p.stat().st_uid, group_of(p)) == (0, user), p
            assert pwd.getpwnam(user).pw_uid < 1000  # a system user

        keys = unit_keys(unit)
        assert keys["ExecStart"] == [f"{venv_jiancha} run"]
        assert keys["EnvironmentFile"] == [f"-{env_file}"]
        assert f"JIANCHA_CONFIG={toml}" in keys["Environment"]
        assert keys["User"] == keys["Group"] == [user or "jiancha"]
        assert keys["DynamicUser"] == ["yes"] and "ConfigurationDirectory" not in keys
        assert mode(unit) == 0o644
        analyze = shutil.which("systemd-analyze")
        assert analyze, "systemd-analyze missing: Debian package systemd (CI installs it)"
        verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "jiancha.service" not in verify.stdout + verify.stderr

        # --- again, with an operator's edit: nothing but the venv is touched -------------
        with toml.open("a", encoding="utf-8") as f:
            f.write('\n[notify.quiet_hours]  # 运维修改\n# start = "19:00"\n')
        marker = prefix / "venv" / "operator-was-here"
        marker.write_text("the venv is upgraded in place, not recreated\n")
        before = snapshot(toml, env_file, unit)
        modes = [(mode(p), p.stat().st_gid) for p in (etc, secrets)]
        t0 = time.monotonic()
        second = run(*where, lang="en")
        print(f"reinstall: {time.monotonic() - t0:.1f} s")
        assert snapshot(toml, env_file, unit) == before
        assert [(mode(p), p.stat().st_gid) for p in (etc, secrets)] == modes
        assert marker.is_file()
        assert "[updated] venv" in second.stdout and "[installed] jiancha" in second.stdout
        assert f"[kept] {toml} (exists, left as it is)" in second.stdout
        assert f"[kept] {unit} (unchanged)" in second.stdout
        assert "[created]" not in second.stdout
        edited = toml.read_bytes()

        # --- upgrade from a wheel, in place, by a copy of the script outside any checkout:
        # the unit and the example configuration come from the wheel. A kept file whose
        # group is gone (removed with the user by an earlier --uninstall; a new group may
        # get another gid) gets it back
        if user:
            used = {g.gr_gid for g in grp.getgrall()}
            os.chown(env_file, 0, next(g for g in range(64000, 65000) if g not in used))
        dist = tmp_path / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "--wheel-dir", str(dist), str(ROOT)],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        (wheel,) = dist.glob("jiancha-*.whl")
        alone = Path(shutil.copy2(SCRIPT, dist / "install.sh"))
        t0 = time.monotonic()
        third = run(*where, "--from", wheel, script=alone)
        print(f"upgrade from a wheel: {time.monotonic() - t0:.1f} s")
        assert f" ← {wheel}" in third.stdout and "[更新] 虚拟环境" in third.stdout
        assert marker.is_file()
        assert toml.read_bytes() == edited and env_file.read_bytes() == before[env_file][0]
        if user:
            assert group_of(env_file) == user
            assert f"[修复] {env_file} 的属组 → {user}" in third.stdout
        assert snapshot(toml, unit) == {k: v for k, v in before.items() if k != env_file}
        version = subprocess.run([venv_jiancha, "--version"], capture_output=True, text=True,
                                 timeout=60)  # fmt: skip
        assert version.returncode == 0 and version.stdout.startswith("jiancha ")

        # --- uninstall keeps the operator's data ----------------------------------------
        gone = run("--uninstall", *where, "--lang", "en")
        assert not prefix.exists() and not unit.exists()
        assert toml.read_bytes() == edited and env_file.read_bytes() == before[env_file][0]
        assert secrets.is_dir()
        assert f"[kept] {etc} (operator data; --purge removes it)" in gone.stdout
        if user:
            assert not user_exists(user) and f"[removed] user {user}" in gone.stdout
        again = run("--uninstall", *where)  # nothing left to remove: still fine
        assert "[删除]" not in again.stdout

        # --- uninstall --purge removes the configuration too ------------------------------
        run("--uninstall", "--purge", *where)
        assert not prefix.exists() and not unit.exists() and not etc.exists()
        assert not (user and user_exists(user))
        assert units.is_dir()  # the unit directory is the system's, not jiancha's
    finally:
        if user and user_exists(user):
            subprocess.run(["userdel", user], check=False)


def test_refuses_without_root_and_changes_nothing(tmp_path):
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if IS_ROOT else []
    # defaults: /opt/jiancha, /etc/jiancha, /etc/systemd/system and the user
    proc = run(check=False, prefix=as_nobody)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "需要 root 权限" in proc.stderr and "/opt/jiancha" in proc.stderr
    assert "用户 jiancha" in proc.stderr and proc.stdout == ""
    # writable directories are not enough while a user is to be created
    scratch = Path(tempfile.mkdtemp(prefix="jiancha-install-"))  # in /tmp: nobody reaches it
    scratch.chmod(0o777)
    where = ["--prefix", scratch / "p", "--etc", scratch / "e", "--unit-dir", scratch / "u"]
    proc = run(*where, "--no-systemctl", lang="en", check=False, prefix=as_nobody)
    assert proc.returncode == 1 and "needs root (touches: user jiancha)" in proc.stderr
    proc = run("--uninstall", *where, lang="en", check=False, prefix=as_nobody)
    assert proc.returncode == 1 and "user jiancha" in proc.stderr
    assert list(scratch.iterdir()) == []
    scratch.rmdir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "未知的参数：--bogus"),
        (["--purge"], "--purge 只能与 --uninstall 同用"),
        (["--uninstall", "--enable"], "--enable 不能与 --uninstall 同用"),
        (["--enable", "--no-systemctl"], "--enable 与 --no-systemctl 互相矛盾"),
        (["--prefix", "/usr"], "--prefix 不能是系统目录 /usr"),
        (["--etc", "/tmp/a b"], "--etc 含有空白"),
        (["--user", "Bad User"], "用户名不合法"),
        (["--lang", "fr"], "--lang 只能是 zh 或 en"),
        (["--prefix"], "选项 --prefix 需要一个值"),
    ],
)
def test_bad_usage_is_refused_with_exit_2(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_help_teaches_in_both_languages():
    zh = run("--help").stdout
    en = run("--help", "--lang=en").stdout
    assert en == run("--help", lang="en").stdout
    for opt in OPTIONS:
        assert opt in zh and opt in en, opt
    assert "用法" in zh and "jiancha db migrate" in zh and "systemctl edit jiancha" in zh
    assert en.startswith("Usage:") and "0640 root:jiancha" in en and "LoadCredential=" in en


def test_script_is_shellcheck_clean():
    found = shutil.which("shellcheck")
    assert found, "shellcheck missing: Debian package shellcheck (CI installs it)"
    proc = subprocess.run([found, "--shell=bash", str(SCRIPT)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_print_unit_for_the_system_paths_changes_nothing():
    # the default layout: the configuration directory is systemd's ConfigurationDirectory=,
    # with the mode the installer gives it (else systemd warns at every start)
    unit = run("--print-unit", "--lang", "en").stdout
    assert "ExecStart=/opt/jiancha/venv/bin/jiancha run\n" in unit
    assert "EnvironmentFile=-/etc/jiancha/jiancha.env\n" in unit
    assert "ConfigurationDirectory=jiancha\n" in unit
    assert "User=jiancha\nGroup=jiancha\n" in unit and "DynamicUser=yes\n" in unit
    absent = [p for p in (Path("/srv/jc"), Path("/etc/jc")) if not p.exists()]
    other = run("--print-unit", "--prefix", "/srv/jc", "--etc", "/etc/jc", "--user", "jc").stdout
    assert not [p for p in absent if p.exists()]
    assert "ExecStart=/srv/jc/venv/bin/jiancha run\n" in other
    assert "Environment=JIANCHA_CONFIG=/etc/jc/jiancha.toml\n" in other
    assert "ConfigurationDirectory=jc\nConfigurationDirectoryMode=0750\n" in other
    assert "User=jc\nGroup=jc\n" in other and "/opt/jiancha" not in other
