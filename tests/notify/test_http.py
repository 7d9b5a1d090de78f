"""The HTTP channels (webhook, WeCom, DingTalk) against a real HTTP receiver."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.notify import ChannelError
from monitor.notify._http import parse_retry_after
from monitor.notify.dingtalk import DingTalkChannel
from monitor.notify.webhook import FIELDS, WebhookChannel
from monitor.notify.wecom import CONTENT_MAX_BYTES, WeComChannel
from monitor.outbox.message import Channel, Delivery, Message
from tests import httpkit
from tests.httpkit import Receiver, Reply

receiver = httpkit.receiver  # the fixture, by name

SECRET = "s3cr3t-签名-key"
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
FACTS = {
    "card_id": 42,
    "case": "C-2024-0001",
    "matter": "建筑工程施工许可",
    "department": "住建局",
    "window": "W1",
    "clock": "promised",
    "rule": "promised.red",
    "level": "red",
    "deadline": "2024-03-11T09:00:00Z",
    "issued_at": "2024-03-11T09:00:01Z",
    "message": "承诺时限已到，尚未办结",
}


def message(key: str = "card:42:red", **changes: Any) -> Message:
    base: dict[str, Any] = {
        "key": key,
        "kind": "card",
        "title": "红牌：建筑工程施工许可 C-2024-0001 超过承诺时限",
        "text": "住建局 · 窗口 W1\n承诺时限已到，尚未办结。",
        "level": "red",
        "fields": FACTS,
    }
    base.update(changes)
    return Message(**base)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "hook.secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


def read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def no_secrets(d: Delivery, *secrets: str) -> None:
    for s in (SECRET, ROBOT_KEY, *secrets):
        assert s not in d.detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- generic webhook -------------------------------------------------------


async def test_webhook_body_headers_and_signature(receiver: Receiver, secret_file: Path) -> None:
    hook = WebhookChannel.from_config(
        "ops",
        {"kind": "webhook", "url": receiver.url("/hook"), "secret_file": str(secret_file)},
        read,
    )
    channel: Channel = hook
    d = await channel.send(message())
    await hook.aclose()

    assert d.ok and not d.retry, d
    [req] = receiver.requests
    assert (req.method, req.path) == ("POST", "/hook")
    assert req.headers["idempotency-key"] == "card:42:red"
    assert req.headers["content-type"].startswith("application/json")
    assert req.json() == {
        **FACTS,
        "link": None,
        "matter_name": None,
        "key": "card:42:red",
        "kind": "card",
    }
    # UTF-8, not \u escapes: Chinese arrives as written.
    assert "建筑工程施工许可".encode() in req.body
    assert b"\\u" not in req.body
    timestamp = req.headers["x-jiancha-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60  # wall time, when it was signed
    signed = timestamp.encode() + b"." + req.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert req.headers["x-jiancha-signature"] == f"sha256={expected}"
    no_secrets(d)


async def test_unsigned_webhook_has_no_signature_and_full_schema(receiver: Receiver) -> None:
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    assert hook.per_minute is None
    d = await hook.send(message(key="digest:2024-03-11", kind="digest", fields={"department": "x"}))
    await hook.aclose()

    assert d.ok
    [req] = receiver.requests
    assert "x-jiancha-signature" not in req.headers
    assert "x-jiancha-timestamp" not in req.headers
    body = req.json()
    assert set(body) == {*FIELDS, "key", "kind"}
    assert body["card_id"] is None
    assert body["level"] == "red"  # from the message when the facts lack it
    assert body["kind"] == "digest"


async def test_webhook_503_three_times_then_delivered(receiver: Receiver) -> None:
    receiver.script(Reply(503), Reply(503), Reply(503), Reply(200))
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    outcomes = [await hook.send(message()) for _ in range(4)]
    await hook.aclose()

    assert [(d.ok, d.retry) for d in outcomes] == [(False, True)] * 3 + [(True, False)]
    assert "503" in outcomes[0].detail
    assert Counter(receiver.keys()) == {"card:42:red": 4}
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1  # a retry sends the same bytes


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("soon", None)],
)
async def test_429_with_retry_after(
    receiver: Receiver, header: str, expected: float | None
) -> None:
    receiver.script(Reply(429, headers={"Retry-After": header}))
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    d = await hook.send(message())
    await hook.aclose()
    assert (d.ok, d.retry, d.retry_after) == (False, True, expected)
    assert "429" in d.detail


def test_retry_after_http_date() -> None:
    now = time.time()
    later = email.utils.formatdate(now + 120, usegmt=True)
    seconds = parse_retry_after(later, now=lambda: now)
    assert seconds is not None and 119 <= seconds <= 121
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True)) == 0.0


async def test_400_is_permanent(receiver: Receiver) -> None:
    receiver.script(Reply(400, json={"error": "bad"}))
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    d = await hook.send(message())
    await hook.aclose()
    assert (d.ok, d.retry) == (False, False)
    assert "400" in d.detail


async def test_receiver_down_then_up(receiver: Receiver) -> None:
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    receiver.down()
    d = await hook.send(message())
    assert (d.ok, d.retry) == (False, True)
    assert receiver.dropped >= 1 and receiver.requests == []
    receiver.up()
    d = await hook.send(message())
    await hook.aclose()
    assert d.ok
    assert receiver.keys() == ["card:42:red"]


async def test_connection_dropped_after_request_is_retryable(receiver: Receiver) -> None:
    receiver.script(Reply(drop=True))
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook")}, read)
    d = await hook.send(message())
    await hook.aclose()
    assert (d.ok, d.retry) == (False, True)
    assert len(receiver.requests) == 1  # it may well have been received: hence the key


async def test_connection_refused_is_retryable(secret_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token={ROBOT_KEY}"
    hook = WebhookChannel.from_config("ops", {"url": url, "secret_file": str(secret_file)}, read)
    d = await hook.send(message())
    await hook.aclose()
    assert (d.ok, d.retry) == (False, True)
    assert "connection failed" in d.detail
    no_secrets(d)


async def test_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.script(Reply(delay=2.0))
    hook = WebhookChannel.from_config("ops", {"url": receiver.url("/hook"), "timeout": 0.2}, read)
    d = await hook.send(message())
    await hook.aclose()
    assert (d.ok, d.retry) == (False, True)
    assert "timeout" in d.detail


# --- WeCom -----------------------------------------------------------------


def wecom(receiver: Receiver, **table: Any) -> WeComChannel:
    url = receiver.url(f"/cgi-bin/webhook/send?key={ROBOT_KEY}")
    return WeComChannel.from_config("window-group", {"kind": "wecom", "url": url, **table}, read)


async def test_wecom_markdown(receiver: Receiver) -> None:
    robot = wecom(receiver)
    assert robot.per_minute == 20
    d = await robot.send(message())
    await robot.aclose()

    assert d.ok and not d.retry, d
    [req] = receiver.requests
    assert req.path == "/cgi-bin/webhook/send"
    assert req.params == {"key": ROBOT_KEY}
    body = req.json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith("## 红牌：建筑工程施工许可 C-2024-0001 超过承诺时限\n")
    assert '<font color="warning">**红牌**</font>' in content
    assert content.endswith("住建局 · 窗口 W1\n承诺时限已到，尚未办结。")
    assert "建筑工程".encode() in req.body


@pytest.mark.parametrize(("level", "colour"), [("yellow", "comment"), ("blue", "info")])
async def test_wecom_level_colours(receiver: Receiver, level: str, colour: str) -> None:
    robot = wecom(receiver)
    await robot.send(message(level=level))
    await robot.aclose()
    assert f'<font color="{colour}">' in receiver.requests[0].json()["markdown"]["content"]


async def test_wecom_key_file(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "wecom.key").write_text(ROBOT_KEY + "\n")
    robot = WeComChannel.from_config(
        "g",
        {
            "url": receiver.url("/cgi-bin/webhook/send"),
            "key_file": str(tmp_path / "wecom.key"),
            "per_minute": 10,
        },
        read,
    )
    assert robot.per_minute == 10
    assert (await robot.send(message())).ok
    await robot.aclose()
    assert receiver.requests[0].params == {"key": ROBOT_KEY}


async def test_wecom_content_truncated_at_utf8_boundary(receiver: Receiver) -> None:
    robot = wecom(receiver)
    await robot.send(message(text="超时" * 3000))
    await robot.aclose()
    content = receiver.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= CONTENT_MAX_BYTES
    assert content.endswith("…")
    assert content.startswith("## 红牌")


async def test_wecom_errcodes(receiver: Receiver) -> None:
    leaky = (
        f"invalid webhook url, key {ROBOT_KEY}, see https://qyapi.weixin.qq.com/x?key={ROBOT_KEY}"
    )
    receiver.script(
        Reply(json={"errcode": 45009, "errmsg": "api freq out of limit"}),
        Reply(json={"errcode": 93000, "errmsg": leaky}),
        Reply(body=b"<html>proxy</html>"),
    )
    robot = wecom(receiver)
    limited = await robot.send(message())
    refused = await robot.send(message())
    garbled = await robot.send(message())
    await robot.aclose()

    assert (limited.ok, limited.retry, limited.retry_after) == (False, True, 60.0)
    assert "45009" in limited.detail
    assert (refused.ok, refused.retry) == (False, False)
    assert "93000" in refused.detail
    no_secrets(refused)
    assert (garbled.ok, garbled.retry) == (False, True)


async def test_wecom_http_errors(receiver: Receiver) -> None:
    receiver.script(Reply(502), Reply(404))
    robot = wecom(receiver)
    bad_gateway = await robot.send(message())
    not_found = await robot.send(message())
    await robot.aclose()
    assert (bad_gateway.ok, bad_gateway.retry) == (False, True)
    assert (not_found.ok, not_found.retry) == (False, False)
    no_secrets(bad_gateway)
    no_secrets(not_found)


async def test_wecom_down_detail_has_no_key(receiver: Receiver) -> None:
    receiver.down()
    robot = wecom(receiver)
    d = await robot.send(message())
    await robot.aclose()
    assert (d.ok, d.retry) == (False, True)
    no_secrets(d)


# --- DingTalk --------------------------------------------------------------

DING_TOKEN = "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


def dingtalk(receiver: Receiver, tmp_path: Path, **table: Any) -> DingTalkChannel:
    (tmp_path / "ding.secret").write_text(DING_SECRET + "\n")
    url = receiver.url(f"/robot/send?access_token={DING_TOKEN}")
    return DingTalkChannel.from_config(
        "leaders",
        {"kind": "dingtalk", "url": url, "secret_file": str(tmp_path / "ding.secret"), **table},
        read,
    )


def dingtalk_server_accepts(query: str, secret: str, now_ms: int) -> bool:
    """What DingTalk's server does with 加签: timestamp within an hour, sign recomputed."""
    params = dict(urllib.parse.parse_qsl(query))  # decodes %2B and the like, as a server does
    timestamp = int(params["timestamp"])
    if abs(now_ms - timestamp) > 3600 * 1000:
        return False
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), params["sign"])


async def test_dingtalk_signature_and_mentions(receiver: Receiver, tmp_path: Path) -> None:
    robot = dingtalk(receiver, tmp_path, at_mobiles=["13800000000"])
    assert robot.per_minute == 20
    robot.clock = lambda: 1_700_000_000.123
    msg = message(recipients=("13900000001", "chief@example.cn", "13800000000"))
    d = await robot.send(msg)
    await robot.aclose()

    assert d.ok and not d.retry, d
    [req] = receiver.requests
    assert req.path == "/robot/send"
    params = req.params
    assert params["access_token"] == DING_TOKEN
    assert params["timestamp"] == "1700000000123"
    assert dingtalk_server_accepts(req.query, DING_SECRET, 1_700_000_000_123)
    assert not dingtalk_server_accepts(req.query, DING_SECRET + "x", 1_700_000_000_123)
    assert not dingtalk_server_accepts(req.query, DING_SECRET, 1_700_000_000_123 + 3_600_001)
    # On the wire exactly as DingTalk's sample code builds it (quote_plus of the base64).
    string_to_sign = f"1700000000123\n{DING_SECRET}".encode()
    raw = hmac.new(DING_SECRET.encode(), string_to_sign, hashlib.sha256).digest()
    assert req.query.endswith(
        f"&timestamp=1700000000123&sign={urllib.parse.quote_plus(base64.b64encode(raw))}"
    )
    body = req.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == msg.title
    text = body["markdown"]["text"]
    assert text.startswith(f"## {msg.title}\n\n**【红牌】**")  # a paragraph each: DingTalk
    assert "承诺时限已到，尚未办结。" in text
    assert text.endswith("@13800000000 @13900000001")
    assert body["at"] == {"atMobiles": ["13800000000", "13900000001"], "isAtAll": False}


async def test_dingtalk_real_clock_and_unsigned(receiver: Receiver, tmp_path: Path) -> None:
    robot = dingtalk(receiver, tmp_path)
    assert (await robot.send(message())).ok
    await robot.aclose()
    now_ms = int(time.time() * 1000)
    assert dingtalk_server_accepts(receiver.requests[0].query, DING_SECRET, now_ms)

    plain = DingTalkChannel.from_config(
        "plain", {"url": receiver.url(f"/robot/send?access_token={DING_TOKEN}")}, read
    )
    assert (await plain.send(message(recipients=()))).ok
    await plain.aclose()
    req = receiver.requests[1]
    assert set(req.params) == {"access_token"}
    assert req.json()["at"] == {"atMobiles": [], "isAtAll": False}


async def test_dingtalk_errcodes(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script(
        Reply(json={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        Reply(json={"errcode": 310000, "errmsg": f"sign not match, secret {DING_SECRET}"}),
        Reply(503, headers={"Retry-After": "30"}),
    )
    robot = dingtalk(receiver, tmp_path)
    fast = await robot.send(message())
    sign = await robot.send(message())
    busy = await robot.send(message())
    await robot.aclose()
    assert (fast.ok, fast.retry, fast.retry_after) == (False, True, 60.0)
    assert (sign.ok, sign.retry) == (False, False)
    assert "310000" in sign.detail
    assert (busy.ok, busy.retry, busy.retry_after) == (False, True, 30.0)
    for d in (fast, sign, busy):
        no_secrets(d, DING_TOKEN, DING_SECRET)


# --- configuration ---------------------------------------------------------

Factory = Callable[[str, dict[str, Any], Callable[[str], str]], Channel]
FACTORIES: list[Any] = [WebhookChannel, WeComChannel, DingTalkChannel]


@pytest.mark.parametrize("cls", FACTORIES)
def test_missing_url(cls: Any) -> None:
    with pytest.raises(ChannelError, match=r"值班.*url.*missing"):
        cls.from_config("值班", {"kind": cls.kind}, read)


@pytest.mark.parametrize("cls", FACTORIES)
@pytest.mark.parametrize("url", ["", "ftp://example.cn/x", "not a url", 42])
def test_bad_url(cls: Any, url: Any) -> None:
    with pytest.raises(ChannelError, match=r"值班.*url"):
        cls.from_config("值班", {"url": url}, read)


@pytest.mark.parametrize(
    ("cls", "key", "url"),
    [
        (WebhookChannel, "secret_file", "http://127.0.0.1:1/hook"),
        (WeComChannel, "key_file", "http://127.0.0.1:1/send"),
        (DingTalkChannel, "secret_file", "http://127.0.0.1:1/send?access_token=t"),
        (DingTalkChannel, "token_file", "http://127.0.0.1:1/send"),
    ],
)
def test_unreadable_secret(cls: Any, key: str, url: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.secret")
    with pytest.raises(ChannelError, match=rf"ops.*{key}.*nope\.secret") as info:
        cls.from_config("ops", {"url": url, key: missing}, read)
    assert "channel 'ops'" in str(info.value)


def test_empty_secret(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ChannelError, match="empty"):
        WebhookChannel.from_config(
            "ops", {"url": "http://h/x", "secret_file": str(tmp_path / "empty")}, read
        )


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"url": "http://h/x", "timeout": 0}, "timeout"),
        ({"url": "http://h/x", "timeout": "10"}, "timeout"),
        ({"url": "http://h/x", "per_minute": 0}, "per_minute"),
        ({"url": "http://h/x", "per_minute": True}, "per_minute"),
        ({"url": "http://h/x", "secret-file": "/x"}, "secret-file"),
    ],
)
def test_bad_keys(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ChannelError, match=rf"ops.*{key}"):
        WebhookChannel.from_config("ops", table, read)


def test_robot_keys_required() -> None:
    with pytest.raises(ChannelError, match=r"g.*key_file"):
        WeComChannel.from_config(
            "g", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, read
        )
    with pytest.raises(ChannelError, match=r"d.*token_file"):
        DingTalkChannel.from_config("d", {"url": "https://oapi.dingtalk.com/robot/send"}, read)
    with pytest.raises(ChannelError, match=r"d.*at_mobiles"):
        url = "https://oapi.dingtalk.com/robot/send?access_token=t"
        DingTalkChannel.from_config("d", {"url": url, "at_mobiles": "138"}, read)


def test_config_errors_never_echo_the_url() -> None:
    url = f"ftp://qyapi.weixin.qq.com/send?key={ROBOT_KEY}"
    with pytest.raises(ChannelError) as info:
        WeComChannel.from_config("g", {"url": url}, read)
    assert ROBOT_KEY not in str(info.value)


def test_body_is_stable_json() -> None:
    from monitor.notify.webhook import body_of

    raw = body_of(message())
    assert json.loads(raw) == {
        **FACTS,
        "link": None,
        "matter_name": None,
        "key": "card:42:red",
        "kind": "card",
    }
    assert body_of(message()) == raw
