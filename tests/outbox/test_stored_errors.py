"""No stored error text holds a secret, whichever channel failed and however.

Real channels built from a real configuration fail against a real receiver
(a robot echoing its key, Alertmanager echoing the credentials it was sent),
a refused port, and a channel whose bug raises with its URL, key and a DSN in
the message (the path that used to be stored verbatim). Then the rows of
``jiancha.outbox_attempts`` and ``jiancha.outbox`` are read back.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import tomllib
from pathlib import Path
from typing import Any

from monitor import db
from monitor.config import parse
from monitor.notify import build_channels
from monitor.notify.webhook import WebhookChannel
from monitor.outbox.message import Delivery, Message
from monitor.outbox.send import Sender
from monitor.secrets import read_secret
from tests import httpkit
from tests.httpkit import Receiver, Reply, Request

receiver = httpkit.receiver

ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
HOOK_TOKEN = "tok-9f8e7d6c5b4a"
HMAC_SECRET = "hmac-签名-s3cret"
AM_PASSWORD = "am-Pa55-word"
BUG_KEY = "bugkey-0123456789"
DSN_PASSWORD = "DbPa55word"
NOW = dt.datetime(2024, 3, 11, 2, 0, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BuggyHook(WebhookChannel):
    """A channel with a bug: it raises, quoting its URL (with its key) and a DSN."""

    async def send(self, message: Message) -> Delivery:
        dsn = f"postgresql://jiancha:{DSN_PASSWORD}@db/approval"
        raise RuntimeError(f"cannot post {message.key} to {self.url} (cache at {dsn})")


def echo(request: Request) -> Reply:
    """What careless servers do: quote the request, credentials and all, in the error."""
    if request.path.startswith("/cgi-bin"):
        return Reply(200, json={"errcode": 93000,
                                "errmsg": f"invalid webhook url {request.path}?{request.query}, "
                                          f"key {request.params.get('key')}"})  # fmt: skip
    auth = request.headers.get("authorization", "")
    return Reply(401, body=f"unauthorized: Authorization: {auth} for {AM_PASSWORD}".encode())


def channels(tmp_path: Path, receiver: Receiver) -> tuple[Any, dict[str, Any]]:
    (tmp_path / "hook.secret").write_text(HMAC_SECRET, encoding="utf-8")
    (tmp_path / "am.password").write_text(AM_PASSWORD, encoding="utf-8")
    text = f"""
[channels.robot]
kind = "wecom"
url = "{receiver.url("/cgi-bin/webhook/send")}?key={ROBOT_KEY}"
[channels.hook]
kind = "webhook"
url = "http://127.0.0.1:{free_port()}/hook?access_token={HOOK_TOKEN}"
secret_file = "{tmp_path / "hook.secret"}"
[channels.am]
kind = "alertmanager"
url = "{receiver.url("/am")}"
username = "jiancha"
password_file = "{tmp_path / "am.password"}"
"""
    cfg = parse(tomllib.loads(text))
    built: dict[str, Any] = dict(build_channels(cfg, read_secret))
    built["buggy"] = BuggyHook("buggy", receiver.url(f"/bug?key={BUG_KEY}"), secret=HMAC_SECRET)
    return cfg, built


async def queue(conn: db.Connection, names: list[str]) -> None:
    payload = {"kind": "card", "title": "红牌", "text": "承诺时限已到", "level": "red",
               "fields": {"case": "C-1"}}  # fmt: skip
    for name in names:
        await conn.execute(
            "INSERT INTO jiancha.outbox (key, channel, kind, payload, created_at, not_before, "
            "next_attempt_at, give_up_at) VALUES ($1, $2, 'card', $3, $4::timestamptz, $4, $4, "
            "$4::timestamptz + interval '1 day')", f"card:1:{name}", name, payload, NOW,
        )  # fmt: skip


async def test_stored_error_texts_hold_no_secret(dsn: str, receiver: Receiver, tmp_path) -> None:
    receiver.respond = echo
    cfg, built = channels(tmp_path, receiver)
    sender = Sender(dsn, built, cfg, clock=lambda: NOW)
    basic = base64.b64encode(f"jiancha:{AM_PASSWORD}".encode()).decode()
    secrets = [ROBOT_KEY, HOOK_TOKEN, HMAC_SECRET, AM_PASSWORD, basic, BUG_KEY, DSN_PASSWORD]
    async with await db.connect(dsn) as conn:
        await queue(conn, sorted(built))
        assert await sender.step(conn) == 4
        rows = await conn.fetch(
            "SELECT o.channel, o.last_error, a.detail, a.ok FROM jiancha.outbox o "
            "JOIN jiancha.outbox_attempts a ON a.outbox_id = o.id ORDER BY o.channel"
        )
    for channel in built.values():
        await channel.aclose()
    # Every secret really was put in front of the sender (else the test proves nothing).
    assert ROBOT_KEY in receiver.requests[0].query or ROBOT_KEY in receiver.requests[1].query
    assert any(r.headers.get("authorization") == f"Basic {basic}" for r in receiver.requests)
    stored = {r["channel"]: (r["last_error"], r["detail"]) for r in rows}
    assert sorted(stored) == ["am", "buggy", "hook", "robot"]
    assert not any(r["ok"] for r in rows)
    for channel, texts in stored.items():
        for text in texts:
            assert text, channel  # a failure always says why
            for secret in secrets:
                assert secret not in text, (channel, text)
    # ... and the reasons are still there to read.
    assert "errcode 93000" in stored["robot"][1]
    assert "connection failed" in stored["hook"][1]
    assert stored["am"][1].startswith("HTTP 401") and "Authorization: ***" in stored["am"][1]
    bug = stored["buggy"][1]
    assert bug.startswith("RuntimeError: cannot post card:1:buggy to http://127.0.0.1:")
    assert "key=***" in bug and "postgresql://jiancha:***@db/approval" in bug
