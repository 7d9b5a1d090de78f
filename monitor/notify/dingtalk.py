"""钉钉自定义机器人 (DingTalk custom robot): markdown, optionally signed, with @mobiles.

DingTalk robots protected by 加签 need ``timestamp`` and ``sign`` in the
query, computed from the current time in milliseconds and the robot's secret
exactly as DingTalk documents it; the clock is an attribute so a test can
pin it. Like WeCom, the robot answers HTTP 200 and the verdict is ``errcode``:
0 delivered, 130101 (sending too fast) and -1 (busy) retried after a minute,
anything else (310000 bad signature or keyword, 300001 bad token) permanent.

An @ in DingTalk shows only when the mobile number also appears in the text,
so the numbers being @-ed are appended to the text as ``@138...``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Self

from monitor.notify import ChannelError
from monitor.notify._config import check_keys, positive, rate_limit, secret_file
from monitor.notify._http import RobotChannel
from monitor.notify.wecom import LABELS, truncate_utf8
from monitor.outbox.escape import markdown_lines
from monitor.outbox.message import Delivery, Message

__all__ = ["DingTalkChannel", "markdown_of", "mobiles_of", "signature"]

TEXT_MAX_BYTES: Final = 20000
RETRY_ERRCODES: Final = {130101: "sending too fast", -1: "system busy"}
KEYS: Final = frozenset({"url", "token_file", "secret_file", "at_mobiles", "timeout", "per_minute"})
_MOBILE = re.compile(r"^\+?\d[\d-]{4,19}$")


def signature(timestamp_ms: int, secret: str) -> str:
    """DingTalk's ``sign``: url-encoded base64 of HMAC-SHA256(secret, "ts\\nsecret")."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def mobiles_of(recipients: Iterable[str]) -> list[str]:
    """The recipients that are mobile numbers (a route may also list e-mail addresses)."""
    return [r.strip() for r in recipients if _MOBILE.match(r.strip())]


def markdown_of(message: Message, at_mobiles: Iterable[str] = ()) -> tuple[str, str]:
    """``(title, text)``: the title is what the chat list previews.

    DingTalk's markdown runs lines joined by one newline together: each line of
    the message is a paragraph of its own (a blank line between).
    """
    if message.flavour == "dingtalk" and message.markdown is not None:
        text = message.markdown  # as its template rendered it
    else:  # a row queued before templates: laid out here, values escaped
        heading, body = markdown_lines(message.markdown, message.text, message.title)
        lines = [f"## {heading}"]
        if message.level in LABELS:
            lines.append(f"**【{LABELS[message.level]}】**")
        lines.extend(body)
        text = "\n\n".join(lines)
    mentions = " ".join(f"@{m}" for m in at_mobiles)
    if mentions:
        # Keep the mentions whole even when the text must be cut.
        room = TEXT_MAX_BYTES - len(mentions.encode()) - 2
        return message.title, truncate_utf8(text, room) + "\n\n" + mentions
    return message.title, truncate_utf8(text, TEXT_MAX_BYTES)


class DingTalkChannel(RobotChannel):
    """POSTs ``{"msgtype": "markdown", ..., "at": ...}`` to the robot, signed when configured."""

    kind = "dingtalk"
    token_param = "access_token"
    token_file = "token_file"
    retry_errcodes = RETRY_ERRCODES

    def __init__(self, name: str, url: str, *, token: str | None = None,
                 secret: str | None = None, at_mobiles: Iterable[str] = (),
                 timeout: float = 10.0, per_minute: int | None = 20) -> None:  # fmt: skip
        super().__init__(name, url, token=token, timeout=timeout, per_minute=per_minute,
                         secrets=[secret])  # fmt: skip
        self.at_mobiles = tuple(at_mobiles)
        self.clock: Callable[[], float] = time.time
        self._secret = secret

    @classmethod
    def from_config(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> Self:
        """Keys: ``url`` (with ``?access_token=``, or) plus ``token_file``; ``secret_file``
        (加签), ``at_mobiles`` (list, @-ed on every message), ``timeout``, ``per_minute`` (20).
        """
        check_keys(name, table, KEYS)
        url, token = cls.url_and_token(name, table, secrets)
        at = table.get("at_mobiles", [])
        if not isinstance(at, list | tuple) or not all(
            isinstance(m, str) and _MOBILE.match(m) for m in at
        ):
            raise ChannelError(
                f"通知渠道 {name} 的配置项 at_mobiles 必须是手机号列表 "
                f"(channel {name!r}: at_mobiles must be a list of mobile numbers)"
            )
        return cls(name, url, token=token, secret=secret_file(name, table, "secret_file", secrets),
                   at_mobiles=at, timeout=positive(name, table, "timeout", 10.0),
                   per_minute=rate_limit(name, table, 20))  # fmt: skip

    def signed_url(self) -> str:
        """The robot URL, with ``timestamp`` and ``sign`` when a secret is set."""
        if self._secret is None:
            return self._url
        timestamp = round(self.clock() * 1000)
        joiner = "&" if "?" in self._url else "?"
        return f"{self._url}{joiner}timestamp={timestamp}&sign={signature(timestamp, self._secret)}"

    async def send(self, message: Message) -> Delivery:
        mobiles = list(dict.fromkeys([*self.at_mobiles, *mobiles_of(message.recipients)]))
        title, text = markdown_of(message, mobiles)
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }
        return await self.post(self.signed_url(), payload)
