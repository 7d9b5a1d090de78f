"""``jiancha users`` and ``jiancha web`` as an operator runs them: the real CLI, real HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from monitor import cli, db

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _chinese_no_env_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)


def sql(dsn: str, query: str, *args: object) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


@pytest.fixture
def users_dsn(sync_dsn: str) -> str:
    sql(sync_dsn, "DELETE FROM jiancha.users")
    return sync_dsn


def test_users_add_list_disable_passwd(
    users_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = users_dsn
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    code, out = run(
        "users",
        "add",
        "wangf",
        "--role",
        "window_head",
        "--window",
        "W1",
        "--window",
        "W2",
        "--display-name",
        "王芳",
        "--password-file",
        str(secret),
        "--dsn",
        d,
    )
    assert code == 0 and "已添加用户 wangf（窗口负责人）" in out
    code, out = run("users", "add", "lim", "--role", "officer", "--directory", "--dsn", d)
    assert code == 0

    row = sql(d, "SELECT * FROM jiancha.users WHERE username = 'wangf'")[0]
    assert row["roles"] == ["window_head"] and row["windows"] == ["W1", "W2"]
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    assert sql(d, "SELECT password_hash FROM jiancha.users WHERE username = 'lim'")[0][0] is None

    code, out = run("users", "list", "--dsn", d)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "用户名",
        "姓名",
        "角色",
        "窗口",
        "部门",
        "登录方式",
        "状态",
    ]
    assert lines[1].split() == ["lim", "纪检监察员", "目录", "启用"]
    assert lines[2].split() == ["wangf", "王芳", "窗口负责人", "W1、W2", "本地密码", "启用"]

    code, out = run("users", "disable", "wangf", "--dsn", d)
    assert code == 0 and "已停用用户 wangf" in out
    assert sql(d, "SELECT disabled FROM jiancha.users WHERE username = 'wangf'")[0][0] is True

    before = sql(d, "SELECT password_hash FROM jiancha.users WHERE username = 'wangf'")[0][0]
    secret.write_text("another long password")
    code, out = run("users", "passwd", "wangf", "--password-file", str(secret), "--dsn", d)
    assert code == 0
    assert (
        sql(d, "SELECT password_hash FROM jiancha.users WHERE username = 'wangf'")[0][0] != before
    )


def test_users_add_refusals(
    users_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = users_dsn
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    short = tmp_path / "short"
    short.write_text("123")
    cases = [
        (["users", "add", "w", "--role", "window_head", "--password-file", str(pw)], "--window"),
        (["users", "add", "x", "--role", "officer", "--password-file", str(short)], "至少 10"),
        (["users", "add", "a b", "--role", "officer", "--password-file", str(pw)], "空白"),
        (["users", "disable", "nobody"], "没有用户 nobody"),
    ]
    for argv, expected in cases:
        assert run(*argv, "--dsn", d)[0] == 2, argv
        assert expected in capsys.readouterr().err, argv
    assert (
        run("users", "add", "lim", "--role", "officer", "--password-file", str(pw), "--dsn", d)[0]
        == 0
    )
    assert (
        run("users", "add", "lim", "--role", "officer", "--password-file", str(pw), "--dsn", d)[0]
        == 2
    )
    assert "已存在" in capsys.readouterr().err
    # never from argv: there is no --password option
    with pytest.raises(SystemExit):
        run("users", "add", "p", "--role", "officer", "--password", PASSWORD, "--dsn", d)


def test_jiancha_web_serves_over_real_http(users_dsn: str, tmp_path: Path) -> None:
    """The command an operator runs: Hypercorn on port 0, sign-in, a page, SIGTERM to stop."""
    d = users_dsn
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    assert (
        run("users", "add", "lim", "--role", "officer", "--password-file", str(pw), "--dsn", d)[0]
        == 0
    )
    secret = tmp_path / "state" / "web-secret"
    env = {**os.environ, "JIANCHA_DSN": d, "JIANCHA_LANG": "zh"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "web",
            "--address",
            "127.0.0.1:0",
            "--secret-file",
            str(secret),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("控制台已启动：http://127.0.0.1:"), first + proc.stderr.read()
        base = first.split("：", 1)[1].split()[0]
        assert (secret.stat().st_mode & 0o777) == 0o600
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/healthz").text.strip() == "ok"
            form = client.get("/login")
            assert form.status_code == 200 and "登录" in form.text
            assert "default-src 'self'" in form.headers["content-security-policy"]
            cookie = form.headers["set-cookie"]
            assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
            token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = client.post(
                "/login", data={"username": "lim", "password": PASSWORD, "csrf": token}
            )
            assert signed.status_code == 303
            assert client.get("/cards").status_code == 200
            assert client.get("/static/console.css").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
