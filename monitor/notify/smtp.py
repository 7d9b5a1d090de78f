"""The e-mail channel: one message per notification over SMTP.

Many centres have no chat robot on the government intranet but do have a
mail relay, so e-mail is the channel that always works. The standard
library's ``smtplib`` is blocking; it runs in a worker thread
(``trio.to_thread.run_sync`` without ``cancellable``: abandoning a thread
inside an SMTP dialogue could leave a half-sent message), and the socket
timeout bounds how long a cancellation has to wait.

Configuration (``[channels.NAME]``, ``kind = "smtp"``)::

    host = "mail.example.gov.cn"
    port = 587                 # default: 587 starttls, 465 tls, 25 none
    security = "starttls"      # starttls | tls (implicit, "SMTPS") | none
    username = "jiancha"       # optional; needs password_file
    password_file = "/etc/jiancha/smtp.secret"
    from = "政务服务中心电子监察 <jiancha@example.gov.cn>"
    to = ["duty@example.gov.cn"]   # a message's recipients are added
    timeout = 30               # seconds, per socket operation
    ca_file = "/etc/jiancha/ca.pem"  # optional: trust this CA bundle
                                     # instead of the system's (intranet CA)
    per_minute = 30            # optional rate limit for the sender

Receivers can drop duplicates: the ``Message-ID`` is derived from the
notification's idempotency key, so a retried send carries the same one, and
``X-Jiancha-Key`` carries the key itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any, Final, Self

import trio

from monitor.notify._config import (
    bad,
    check_keys,
    credentials,
    positive,
    rate_limit,
    scrub,
    string,
    tls_context,
)
from monitor.outbox.message import Delivery, Message

__all__ = ["SECURITY_MODES", "SmtpChannel", "message_id_for"]

SECURITY_MODES: Final = {"starttls": 587, "tls": 465, "none": 25}
_KEYS: Final = frozenset(
    {"kind", "name", "host", "port", "security", "username", "password_file", "from", "to",
     "timeout", "ca_file", "per_minute"}
)  # fmt: skip


def _address(channel: str, key: str, value: str) -> Address:
    """Parse ``Name <addr@domain>`` or a bare address; reject anything else."""
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise bad(
            channel, key, f"不是有效的邮件地址：{value!r}", f"not an e-mail address: {value!r}"
        )
    name, addr = pairs[0]
    user, _, domain = addr.rpartition("@")
    if not user or not domain:
        raise bad(
            channel, key, f"不是有效的邮件地址：{value!r}", f"not an e-mail address: {value!r}"
        )
    return Address(display_name=name, username=user, domain=domain)


def message_id_for(key: str, domain: str) -> str:
    """The ``Message-ID`` of a notification: the same key gives the same ID.

    The key is hashed because it may hold characters a msg-id cannot.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.jiancha@{domain}>"


def _text_to_html(text: str) -> str:
    """A minimal HTML rendering of the plain text (escaped; lines kept)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>'
    return f"{head}\n{body}\n</body></html>\n"


@dataclass
class SmtpChannel:
    """Sends each notification as one multipart (text + HTML) e-mail."""

    name: str
    host: str
    sender: Address
    to: tuple[str, ...] = ()
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    per_minute: int | None = None
    kind: str = "smtp"
    # Injectable for tests: the Date header.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)

    @classmethod
    def from_config(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> Self:
        """Build the channel from its ``[channels.NAME]`` table; ChannelError if wrong."""
        check_keys(name, table, _KEYS)
        host = string(name, table, "host", required=True)
        assert host is not None
        security = table.get("security", "starttls")
        if security not in SECURITY_MODES:
            raise bad(
                name, "security", f"应为 {sorted(SECURITY_MODES)} 之一",
                f"must be one of {sorted(SECURITY_MODES)}, got {security!r}",
            )  # fmt: skip
        port = table.get("port", SECURITY_MODES[security])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise bad(
                name, "port", "应为 1–65535 的整数", f"must be an integer 1–65535, got {port!r}"
            )
        username, password = credentials(name, table, secrets)
        from_text = string(name, table, "from", required=True)
        assert from_text is not None
        sender = _address(name, "from", from_text)
        to_value = table.get("to", [])
        if not isinstance(to_value, list) or not all(isinstance(a, str) for a in to_value):
            raise bad(
                name, "to", "应为邮件地址列表", f"must be a list of addresses, got {to_value!r}"
            )
        to = tuple(_address(name, "to", a).addr_spec for a in to_value)
        timeout = positive(name, table, "timeout", 30.0)
        ca_file = string(name, table, "ca_file")
        context = tls_context(name, ca_file) if security != "none" else None
        limit = rate_limit(name, table)
        return cls(
            name=name, host=host, sender=sender, to=to, port=port, security=security,
            username=username, password=password, timeout=timeout, ssl_context=context,
            per_minute=limit,
        )  # fmt: skip

    def recipients_for(self, message: Message) -> list[str]:
        """The configured ``to`` plus the message's e-mail recipients, without repeats."""
        extra = (r.strip() for r in message.recipients if "@" in r)
        return list(dict.fromkeys([*self.to, *extra]))

    def build(self, message: Message, recipients: Sequence[str]) -> EmailMessage:
        """The e-mail for ``message``: UTF-8 headers, text and HTML alternatives, its files."""
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = format_datetime(self.clock())
        mail["Message-ID"] = message_id_for(message.key, self.sender.domain)
        mail["X-Jiancha-Key"] = message.key
        if message.level:
            mail["X-Jiancha-Level"] = message.level
        # The subject is the title: the body does not say it again (the first screen is short).
        lines = message.text.splitlines()
        text = (
            "\n".join(lines[1:])
            if lines[:1] == [message.title] and len(lines) > 1
            else message.text
        )
        mail.set_content(text, subtype="plain", charset="utf-8")
        mail.add_alternative(
            _text_to_html(text)
            if message.flavour is not None or message.html is None
            else message.html,
            subtype="html",
            charset="utf-8",
        )
        for a in message.attachments:  # a bulletin's PDF and workbook
            maintype, _, subtype = a.media_type.partition(";")[0].strip().partition("/")
            mail.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.name)
        return mail

    async def send(self, message: Message) -> Delivery:
        """One delivery attempt; classifies failures as temporary or permanent."""
        recipients = self.recipients_for(message)
        if not recipients:
            return Delivery(ok=False, retry=False, detail="no recipients (set `to`)")
        mail = self.build(message, recipients)
        return await trio.to_thread.run_sync(self._send_blocking, mail, recipients)

    def _send_blocking(self, mail: EmailMessage, recipients: list[str]) -> Delivery:
        try:
            refused = self._dialogue(mail, recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return Delivery(
                ok=False,
                retry=any(code < 500 for code in codes),
                detail=self._clean(f"all recipients refused: {_refusals(exc.recipients)}"),
            )
        except smtplib.SMTPResponseException as exc:
            # 535 authentication failed, 550/554 refusals… are permanent; 4xx are not.
            reason = exc.smtp_error
            text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
            return Delivery(
                ok=False,
                retry=exc.smtp_code < 500,
                detail=self._clean(f"{type(exc).__name__} {exc.smtp_code} {text}"),
            )
        except smtplib.SMTPNotSupportedError as exc:
            # The server lacks STARTTLS or AUTH: a configuration problem.
            return Delivery(ok=False, retry=False, detail=self._clean(f"not supported: {exc}"))
        except ssl.SSLCertVerificationError as exc:
            # Retrying cannot make an untrusted certificate trusted; ca_file can.
            return Delivery(
                ok=False, retry=False, detail=self._clean(f"TLS certificate not trusted: {exc}")
            )
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused, timeout, disconnect, TLS handshake failure.
            return Delivery(
                ok=False, retry=True, detail=self._clean(f"{type(exc).__name__}: {exc}")
            )
        if refused:
            # The others have it; retrying would send them a second copy.
            return Delivery(
                ok=True, retry=False, detail=self._clean(f"250 sent; refused: {_refusals(refused)}")
            )
        return Delivery(ok=True, retry=False, detail=f"250 sent to {len(recipients)}")

    def _dialogue(self, mail: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self.ssl_context)
                client.ehlo()
            if self.username is not None and self.password is not None:
                _login(client, self.username, self.password)
            return client.send_message(mail, from_addr=self.sender.addr_spec, to_addrs=recipients)
        finally:
            # Not `with client`: its QUIT may raise and turn a sent mail into a failure.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    @property
    def secrets(self) -> tuple[str, ...]:
        """What the sender must never store (servers may echo it)."""
        return (self.password,) if self.password else ()

    def _clean(self, detail: str) -> str:
        """Short, one line, and never the password (servers may echo input)."""
        return scrub(detail, self.password)


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{addr} {code} {reason.decode('utf-8', 'replace')}"
        for addr, (code, reason) in refused.items()
    )


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    """``SMTP.login``, except that non-ASCII credentials go as UTF-8 AUTH PLAIN.

    ``smtplib`` encodes credentials as ASCII and fails on a Chinese password;
    RFC 4616 defines PLAIN over UTF-8, so that is sent by hand.
    """
    if username.isascii() and password.isascii():
        client.login(username, password)
        return
    if not client.has_extn("auth") or "PLAIN" not in client.esmtp_features["auth"].upper().split():
        raise smtplib.SMTPNotSupportedError("non-ASCII credentials need AUTH PLAIN")
    token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode()
    code, reply = client.docmd("AUTH", "PLAIN " + token)
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)
