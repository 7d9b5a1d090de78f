"""The Alertmanager channel against a real Alertmanager and a tiny HTTP server.

The real binary checks that Alertmanager accepts the alert and that a
``resolved`` message really resolves it; the tiny server (``http.server`` in
a thread) answers with chosen status codes to check which failures are
retried. CI installs the binary from the Debian package named in
``APT_PACKAGE``; the test fails rather than skips without it, so a missing
package cannot go unnoticed.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import trio
import trio.testing

from monitor.notify import ChannelError
from monitor.notify.alertmanager import ALERTNAME, AlertmanagerChannel
from monitor.outbox.message import Message

APT_PACKAGE = "prometheus-alertmanager"  # CI's APT list must include this
BINARY_CANDIDATES = ("alertmanager", "prometheus-alertmanager")
PASSWORD = "am-口令-secret"

ISSUED = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
FIELDS = {
    "card_id": 42,
    "case": "2025-0001",
    "matter": "不动产登记",
    "department": "不动产登记中心",
    "window": "A-07",
    "clock": "acceptance",
    "rule": "overdue.acceptance",
    "level": "yellow",
    "deadline": "2025-03-05T09:00:00+00:00",
    "issued_at": ISSUED.isoformat(),
    "link": "https://jiancha.example.gov.cn/cards/42",  # [web] base_url: the console's page
}


def _message(card_id: int = 42, kind: str = "card") -> Message:
    return Message(
        key=f"card:{card_id}:{kind}",
        kind=kind,
        title="【黄牌】不动产登记窗口 超时预警" if kind == "card" else "【已销号】黄牌",
        text="案件 2025-0001 已超过承诺时限。",
        level="yellow",
        fields={**FIELDS, "card_id": card_id},
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary() -> str:
    for name in BINARY_CANDIDATES:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
        if found:
            return found
    pytest.fail(f"Alertmanager is not installed: apt-get install {APT_PACKAGE}")


EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alertmanager.yml"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a free port; yields its base URL."""
    yield from _run_alertmanager(tmp_path_factory, 'route:\n  receiver: "null"\n'
                                 'receivers:\n  - name: "null"\n')  # fmt: skip


@pytest.fixture(scope="module")
def example_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager running the configuration jiancha ships as an example."""
    yield from _run_alertmanager(tmp_path_factory, EXAMPLE.read_text(encoding="utf-8"))


def _run_alertmanager(tmp_path_factory: pytest.TempPathFactory, text: str) -> Iterator[str]:
    binary = _binary()
    directory = tmp_path_factory.mktemp("alertmanager")
    config = directory / "alertmanager.yml"
    config.write_text(text, encoding="utf-8")
    port = _free_port()
    log = (directory / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (directory / "alertmanager.log").read_text(errors="replace")
                pytest.fail(f"Alertmanager did not become ready:\n{output[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def _alerts(client: httpx.AsyncClient, url: str, card_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"{url}/api/v2/alerts", params={"active": "true"})
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return [a for a in alerts if a["labels"].get("card_id") == str(card_id)]


async def test_card_fires_and_resolves_in_real_alertmanager(alertmanager: str) -> None:
    channel = AlertmanagerChannel.from_config("am", {"url": alertmanager + "/"}, lambda _: "")
    assert channel.resend_every == 300
    async with httpx.AsyncClient() as client:
        try:
            delivery = await channel.send(_message(4201))
            assert delivery.ok, delivery
            assert (await channel.send(_message(4202))).ok  # another card: another alert

            with trio.fail_after(10):
                while True:
                    (alert,) = await _alerts(client, alertmanager, 4201)
                    if alert["status"]["state"] == "active":
                        break
                    await trio.sleep(0.1)
            assert alert["labels"] == {
                "alertname": ALERTNAME,
                "level": "yellow",
                "department": "不动产登记中心",
                "window": "A-07",
                "rule": "overdue.acceptance",
                "clock": "acceptance",
                "case": "2025-0001",
                "severity": "warning",
                "card_id": "4201",
            }
            assert alert["annotations"] == {
                "summary": "【黄牌】不动产登记窗口 超时预警",
                "description": "案件 2025-0001 已超过承诺时限。",
                "case": "2025-0001",
                "deadline": "2025-03-05T09:00:00+00:00",
            }
            assert datetime.fromisoformat(alert["startsAt"]) == ISSUED
            assert alert["generatorURL"] == "https://jiancha.example.gov.cn/cards/42"
            # Still firing well after the default resolve_timeout would have passed.
            assert datetime.fromisoformat(alert["endsAt"]) > datetime.now(UTC) + timedelta(
                minutes=15
            )

            resolved = await channel.send(_message(4201, kind="resolved"))
            assert resolved.ok, resolved
            with trio.fail_after(10):
                while await _alerts(client, alertmanager, 4201):
                    await trio.sleep(0.1)
            assert len(await _alerts(client, alertmanager, 4202)) == 1  # untouched
        finally:
            await channel.aclose()


async def test_real_alertmanager_rejects_bad_alert_permanently(alertmanager: str) -> None:
    channel = AlertmanagerChannel.from_config("am", {"url": alertmanager}, lambda _: "")
    # Issued "in 2100" (a broken clock): startsAt after endsAt, which the API refuses
    # with 400 — sending it again cannot help.
    message = _message(4203)
    message = Message(**{**message.__dict__, "fields": {**FIELDS, "issued_at": "2100-01-01"}})
    try:
        delivery = await channel.send(message)
    finally:
        await channel.aclose()
    assert not delivery.ok and not delivery.retry
    assert delivery.detail.startswith("HTTP 400")


# --- failure classification against a server that answers what it is told ----------


class _Recorder(BaseHTTPRequestHandler):
    """POST /<status>[/<seconds to stall>]/api/v2/alerts answers <status>."""

    requests: ClassVar[list[tuple[str, dict[str, str], Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, dict(self.headers), body))
        parts = self.path.strip("/").split("/")
        status = int(parts[0])
        if parts[1] != "api":
            time.sleep(float(parts[1]))
        payload = b""
        if status == 401:
            # A careless server that echoes the credentials it got.
            auth = self.headers.get("Authorization", "")
            payload = base64.b64decode(auth.removeprefix("Basic ")) if auth else b""
        try:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "7")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for access logs."""


@pytest.fixture
def stub() -> Iterator[str]:
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _stub_channel(url: str, tmp_path: Path, **table: Any) -> AlertmanagerChannel:
    secret = tmp_path / "am.secret"
    secret.write_text(PASSWORD + "\n")
    config: dict[str, Any] = {"kind": "alertmanager", "url": url, "timeout": 2, **table}
    if "username" in config:
        config["password_file"] = str(secret)
    channel = AlertmanagerChannel.from_config("am", config, lambda p: Path(p).read_text())
    channel.clock = lambda: ISSUED + timedelta(hours=2)
    return channel


@pytest.mark.parametrize(
    ("status", "ok", "retry"),
    [(200, True, False), (500, False, True), (503, False, True), (400, False, False),
     (404, False, False), (429, False, True)],
)  # fmt: skip
async def test_status_classification(
    stub: str, tmp_path: Path, status: int, ok: bool, retry: bool
) -> None:
    channel = _stub_channel(f"{stub}/{status}", tmp_path)
    try:
        delivery = await channel.send(_message())
    finally:
        await channel.aclose()
    assert (delivery.ok, delivery.retry) == (ok, retry)
    assert delivery.detail.startswith(f"HTTP {status}")
    assert delivery.retry_after == (7 if status == 429 else None)


async def test_payload_and_basic_auth(stub: str, tmp_path: Path) -> None:
    channel = _stub_channel(f"{stub}/200", tmp_path, username="jiancha", resend_every=60)
    try:
        assert (await channel.send(_message())).ok
        assert (await channel.send(_message(kind="resolved"))).ok  # same client, reused
    finally:
        await channel.aclose()
    (path, headers, firing), (_, _, resolved) = _Recorder.requests
    assert path == "/200/api/v2/alerts"
    assert headers["Authorization"] == "Basic " + base64.b64encode(
        f"jiancha:{PASSWORD}".encode()
    ).decode("ascii")
    assert headers["Content-Type"] == "application/json"
    (alert,) = firing
    assert alert["startsAt"] == "2025-03-04T01:00:00Z"
    assert alert["endsAt"] == "2025-03-04T03:04:00Z"  # now + 4 × resend_every
    assert alert["labels"]["card_id"] == "42"
    (alert,) = resolved
    assert alert["endsAt"] == "2025-03-04T03:00:00Z"  # now: resolves it
    assert alert["labels"] == firing[0]["labels"]  # the same alert


async def test_password_never_in_detail(stub: str, tmp_path: Path) -> None:
    channel = _stub_channel(f"{stub}/401", tmp_path, username="jiancha")
    try:
        delivery = await channel.send(_message())
    finally:
        await channel.aclose()
    assert not delivery.ok and not delivery.retry
    assert "jiancha:***" in delivery.detail and PASSWORD not in delivery.detail


async def test_unreachable_and_slow_servers_are_retried(stub: str, tmp_path: Path) -> None:
    down = _stub_channel(f"http://127.0.0.1:{_free_port()}", tmp_path)
    slow = _stub_channel(f"{stub}/200/5", tmp_path, timeout=0.3)
    try:
        refused = await down.send(_message())
        timed_out = await slow.send(_message())
    finally:
        await down.aclose()
        await slow.aclose()
    assert not refused.ok and refused.retry and refused.detail.startswith("ConnectError")
    assert not timed_out.ok and timed_out.retry and "Timeout" in timed_out.detail


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({}, "url"),
        ({"url": "127.0.0.1:9093"}, "url"),
        ({"url": "ftp://am"}, "url"),
        ({"url": "http://am", "username": "u"}, "password_file"),
        ({"url": "http://am", "password_file": "/x"}, "username"),
        ({"url": "http://am", "resend_every": 0}, "resend_every"),
        ({"url": "http://am", "timeout": "10"}, "timeout"),
        ({"url": "http://am", "per_minute": 1.5}, "per_minute"),
        ({"url": "http://am", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"url": "http://am", "resend": 60}, "resend"),
    ],
)
def test_bad_config_names_channel_and_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ChannelError) as raised:
        AlertmanagerChannel.from_config("am", table, lambda _: "pw")
    text = str(raised.value)
    assert "am" in text and key in text
    assert "通知渠道" in text and "channel" in text  # zh + en


async def test_open_card_refires_and_closing_resolves_through_the_outbox(
    alertmanager: str, dsn: str, mock_clock: trio.testing.MockClock
) -> None:
    """The sender keeps a card's alert alive while it is open and resolves it when it closes."""
    import datetime as dt
    import tomllib

    from monitor import db
    from monitor.calendar import load_calendar
    from monitor.config import parse
    from monitor.evaluator import Evaluator
    from monitor.notify import build_channels
    from monitor.outbox.enqueue import Notifier
    from monitor.outbox.send import Sender
    from monitor.rules.load import load_rules
    from monitor.wallclock import VirtualClock
    from tests.cardkit import ACCEPTED_FEB8, Driver, z
    from tests.sourcekit import write

    cal = load_calendar("cn")
    cfg = parse(tomllib.loads(
        f'[channels.am]\nkind = "alertmanager"\nurl = "{alertmanager}"\n'
        '[windows.W1]\nchannels = ["am"]\n[notify]\nresend_firing_every = 60\n'
    ))  # fmt: skip
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        ev = Evaluator(load_rules("cards"), cal)
        ev.notifier = Notifier(cfg, cal)
        d = Driver(conn, ev)
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-19T05:00:00"), z("2024-02-08T03:00:00"))  # the blue card
        card = await conn.fetchval("SELECT id FROM jiancha.cards")
        # Alertmanager keeps alerts by wall-clock time; business time follows trio's
        # clock from there, which only moves when the test says
        clock = VirtualClock(dt.datetime.now(dt.UTC), monotonic=trio.current_time)
        sender = Sender(dsn, build_channels(cfg), cfg, clock=clock)
        await conn.execute("UPDATE jiancha.outbox SET not_before = $1, next_attempt_at = $1",
                           clock())  # fmt: skip
        assert await sender.step(conn) == 1
        async with httpx.AsyncClient() as client:
            assert len(await _alerts(client, alertmanager, card)) == 1
            mock_clock.jump(61)  # a resend period later, the card still open
            await sender.refresh(conn)
            assert await sender.step(conn) == 1
            assert await conn.fetchval("SELECT attempts FROM jiancha.outbox") == 2
            async with conn.transaction():  # a card changes only with its recorded step
                await conn.execute("UPDATE jiancha.cards SET status = 'closed'")
                await conn.execute(
                    "INSERT INTO jiancha.card_events (card_id, kind, at, actor) "
                    "SELECT id, 'closed', now(), 'jiancha' FROM jiancha.cards"
                )
            await sender.refresh(conn)
            await sender.refresh(conn)  # once only
            assert await sender.step(conn) == 1
            keys = [
                r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox ORDER BY id")
            ]
            assert keys == [f"card:{card}:am", f"resolved:{card}:am"]
            assert await _alerts(client, alertmanager, card) == []


async def test_the_example_configuration_lets_a_red_silence_its_yellow(
    example_alertmanager: str,
) -> None:
    """deploy/prometheus/alertmanager.yml: one case, one warning (the red, not its yellow)."""
    checked = subprocess.run(["amtool", "check-config", str(EXAMPLE)], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    channel = AlertmanagerChannel.from_config("am", {"url": example_alertmanager},
                                              lambda _: "")  # fmt: skip

    def card(card_id: int, level: str, case: str) -> Message:
        fields = {**FIELDS, "card_id": card_id, "case": case, "level": level}
        return Message(key=f"card:{card_id}", kind="card", title=f"{level} {case}", text="…",
                       level=level, fields=fields)  # fmt: skip

    for m in (card(601, "yellow", "K1"), card(602, "red", "K1"), card(603, "yellow", "K2")):
        assert (await channel.send(m)).ok
    async with httpx.AsyncClient() as client:
        with trio.fail_after(15):
            while True:
                got = (await client.get(f"{example_alertmanager}/api/v2/alerts")).json()
                state = {a["labels"]["card_id"]: a["status"]["state"] for a in got
                         if a["labels"].get("card_id") in {"601", "602", "603"}}  # fmt: skip
                if state.get("601") == "suppressed":
                    break
                await trio.sleep(0.2)
    # K1's yellow is inhibited by its red; K2's yellow, another case, is not
    assert state == {"601": "suppressed", "602": "active", "603": "active"}
    await channel.aclose()
