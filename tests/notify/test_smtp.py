"""The e-mail channel against a real SMTP server (aiosmtpd in its own thread).

The server is real so the tests see what a mail relay sees: the SMTP
dialogue, STARTTLS, AUTH, refusals, and the bytes of the message, which are
parsed back with the standard library to check the Chinese text survives.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from monitor.notify import ChannelError
from monitor.notify.smtp import SmtpChannel, message_id_for
from monitor.outbox.message import Message

PASSWORD = "s3cret-口令-9f8e"  # non-ASCII: smtplib.login cannot send it
ASCII_PASSWORD = "s3cret-9f8e"
SENDER = "政务服务中心电子监察 <jiancha@example.gov.cn>"
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)

MESSAGE = Message(
    key="card:42:issued",
    kind="card",
    title="【黄牌】不动产登记窗口 超时预警",
    text="案件 2025-0001 已超过承诺时限。\n请及时办理。\n\n<窗口> & 部门",
    level="yellow",
    fields={"card_id": 42, "case": "2025-0001", "department": "不动产登记中心"},
)


class _Handler:
    """Stores every accepted envelope; refuses some recipients on purpose."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.gov.cn>: recipient unknown"
        if address.startswith("later@"):
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"jiancha"
        and auth_data.password in (PASSWORD.encode(), ASCII_PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


class _Controller(Controller):
    """Listens on port 0: learns the real port before aiosmtpd's self-test connects."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _start(handler: _Handler, **kwargs: Any) -> _Controller:
    # A plain asyncio loop of its own: once trio-asyncio has run in this process its
    # event-loop policy would hand the server thread a loop it cannot run there.
    kwargs.setdefault("loop", asyncio.SelectorEventLoop())
    controller = _Controller(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def handler() -> _Handler:
    return _Handler()


@pytest.fixture
def server(handler: _Handler) -> Iterator[_Controller]:
    """Plain SMTP with AUTH allowed without TLS (only acceptable on a test loopback)."""
    controller = _start(
        handler, authenticator=_authenticator, auth_require_tls=False, auth_required=False
    )
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl; cryptography is not installed)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("TLS tests need the openssl command (Debian package openssl)")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def _channel(port: int, tmp_path: Path, **table: Any) -> SmtpChannel:
    secret = tmp_path / "smtp.secret"
    secret.write_text(PASSWORD + "\n")
    config: dict[str, Any] = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": SENDER,
        "to": ["duty@example.gov.cn"],
        "timeout": 5,
    }
    config.update(table)
    if config.get("username") is not None:
        config.setdefault("password_file", str(secret))
    channel = SmtpChannel.from_config("mail", config, lambda path: Path(path).read_text())
    channel.clock = lambda: NOW
    return channel


def _parse(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.original_content, bytes)
    parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sends_chinese_multipart_mail(
    server: _Controller, handler: _Handler, tmp_path: Path
) -> None:
    channel = _channel(server.port, tmp_path)
    message = Message(**{**MESSAGE.__dict__, "recipients": ("head@example.gov.cn", "13800000000")})
    delivery = await channel.send(message)
    assert delivery.ok, delivery
    (envelope,) = handler.envelopes
    assert envelope.mail_from == "jiancha@example.gov.cn"
    # The message's e-mail recipients are added; the mobile number is not an address.
    assert envelope.rcpt_tos == ["duty@example.gov.cn", "head@example.gov.cn"]

    mail = _parse(envelope)
    assert mail["Subject"] == MESSAGE.title
    assert str(mail["From"]) == SENDER
    assert mail["From"].addresses[0].display_name == "政务服务中心电子监察"
    assert mail["Message-ID"] == message_id_for(MESSAGE.key, "example.gov.cn")
    assert mail["X-Jiancha-Key"] == MESSAGE.key
    assert parsedate_to_datetime(mail["Date"]) == NOW
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    rich = mail.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == MESSAGE.text
    html = rich.get_content()
    assert "案件 2025-0001 已超过承诺时限。<br>" in html
    assert "&lt;窗口&gt; &amp; 部门" in html  # escaped, not markup
    assert "<pre>" not in html


async def test_html_alternative_given_and_message_id_stable(
    server: _Controller, handler: _Handler, tmp_path: Path
) -> None:
    channel = _channel(server.port, tmp_path)
    message = Message(**{**MESSAGE.__dict__, "html": "<p><b>黄牌</b> 预警</p>"})
    assert (await channel.send(message)).ok
    assert (await channel.send(message)).ok  # a retry: same Message-ID, receivers deduplicate
    first, second = (_parse(e) for e in handler.envelopes)
    rich = first.get_body(("html",))
    assert rich is not None and rich.get_content().strip() == "<p><b>黄牌</b> 预警</p>"
    assert first["Message-ID"] == second["Message-ID"]
    other = Message(**{**MESSAGE.__dict__, "key": "card:42:escalated"})
    assert message_id_for(other.key, "example.gov.cn") != first["Message-ID"]


@pytest.mark.parametrize("password", [PASSWORD, ASCII_PASSWORD])
async def test_login_with_password_from_secret_file(
    server: _Controller, handler: _Handler, tmp_path: Path, password: str
) -> None:
    secret = tmp_path / "other.secret"
    secret.write_text(password + "\n")
    channel = _channel(server.port, tmp_path, username="jiancha", password_file=str(secret))
    assert channel.password == password  # read from the file, newline stripped
    assert password not in repr(channel)
    delivery = await channel.send(MESSAGE)
    assert delivery.ok, delivery
    assert len(handler.envelopes) == 1


async def test_wrong_password_is_permanent_and_not_in_detail(
    server: _Controller, handler: _Handler, tmp_path: Path
) -> None:
    channel = _channel(server.port, tmp_path, username="jiancha")
    channel.password = "wrong-" + PASSWORD
    delivery = await channel.send(MESSAGE)
    assert not delivery.ok and not delivery.retry
    assert "535" in delivery.detail
    assert PASSWORD not in delivery.detail
    assert handler.envelopes == []


async def test_refused_recipient_is_permanent(server: _Controller, tmp_path: Path) -> None:
    channel = _channel(server.port, tmp_path, to=["nobody@example.gov.cn"])
    delivery = await channel.send(MESSAGE)
    assert not delivery.ok and not delivery.retry
    assert "550" in delivery.detail and "nobody@example.gov.cn" in delivery.detail


async def test_greylisted_recipient_is_retried(server: _Controller, tmp_path: Path) -> None:
    channel = _channel(server.port, tmp_path, to=["later@example.gov.cn"])
    delivery = await channel.send(MESSAGE)
    assert not delivery.ok and delivery.retry
    assert "451" in delivery.detail


async def test_partly_refused_counts_as_sent(
    server: _Controller, handler: _Handler, tmp_path: Path
) -> None:
    channel = _channel(server.port, tmp_path, to=["duty@example.gov.cn", "nobody@example.gov.cn"])
    delivery = await channel.send(MESSAGE)
    assert delivery.ok and "nobody@example.gov.cn" in delivery.detail
    assert handler.envelopes[0].rcpt_tos == ["duty@example.gov.cn"]


async def test_server_down_is_retried(tmp_path: Path) -> None:
    channel = _channel(_free_port(), tmp_path, username="jiancha")
    delivery = await channel.send(MESSAGE)
    assert not delivery.ok and delivery.retry
    assert PASSWORD not in delivery.detail


async def test_starttls_trusting_the_configured_ca(
    handler: _Handler, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    controller = _start(
        handler,
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticator,
    )
    try:
        channel = _channel(
            controller.port, tmp_path, security="starttls", username="jiancha",
            ca_file=str(certificate[0]),
        )  # fmt: skip
        delivery = await channel.send(MESSAGE)
        assert delivery.ok, delivery
        (envelope,) = handler.envelopes
        assert _parse(envelope)["Subject"] == MESSAGE.title

        # Without ca_file the self-signed certificate is not trusted: retrying cannot help.
        untrusting = _channel(controller.port, tmp_path, security="starttls")
        delivery = await untrusting.send(MESSAGE)
        assert not delivery.ok and not delivery.retry
        assert "certificate" in delivery.detail
    finally:
        controller.stop()


async def test_implicit_tls(
    handler: _Handler, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    controller = _start(handler, ssl_context=_server_context(certificate))
    try:
        channel = _channel(controller.port, tmp_path, security="tls", ca_file=str(certificate[0]))
        delivery = await channel.send(MESSAGE)
        assert delivery.ok, delivery
        assert len(handler.envelopes) == 1
    finally:
        controller.stop()


def test_default_ports() -> None:
    def port(security: str) -> int:
        table = {"host": "mail", "security": security, "from": "a@b.cn", "to": ["c@d.cn"]}
        return SmtpChannel.from_config("m", table, lambda _: "").port

    assert (port("starttls"), port("tls"), port("none")) == (587, 465, 25)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"from": "a@b.cn"}, "host"),
        ({"host": "mail"}, "from"),
        ({"host": "mail", "from": "not an address"}, "from"),
        ({"host": "mail", "from": "a@b.cn", "security": "ssl"}, "security"),
        ({"host": "mail", "from": "a@b.cn", "port": "25"}, "port"),
        ({"host": "mail", "from": "a@b.cn", "to": "c@d.cn"}, "to"),
        ({"host": "mail", "from": "a@b.cn", "username": "u"}, "password_file"),
        ({"host": "mail", "from": "a@b.cn", "timeout": 0}, "timeout"),
        ({"host": "mail", "from": "a@b.cn", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"host": "mail", "from": "a@b.cn", "pasword_file": "/x"}, "pasword_file"),
    ],
)
def test_bad_config_names_channel_and_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ChannelError) as raised:
        SmtpChannel.from_config("mail", table, lambda _: "pw")
    text = str(raised.value)
    assert "mail" in text and key in text
    assert "通知渠道" in text and "channel" in text  # zh + en


def test_unreadable_password_file() -> None:
    def secrets(path: str) -> str:
        raise FileNotFoundError(2, "No such file or directory", path)

    table = {"host": "mail", "from": "a@b.cn", "username": "u", "password_file": "/no/such"}
    with pytest.raises(ChannelError, match="password_file"):
        SmtpChannel.from_config("mail", table, secrets)
