"""企业微信群机器人 (WeCom group robot): a markdown message to the window's group.

The robot answers HTTP 200 even when it refuses, so the verdict is the
``errcode`` of the JSON reply: 0 is delivered, 45009 (more than 20 messages a
minute) and -1 (system busy) are worth retrying after a minute, anything else
(a wrong key 93000, bad content 40058, ...) will not get better by itself.

Mentions: ``<@userid>`` in the content (the window head's ``head_wecom_userid``),
the only @ the robot's markdown message honours.

Colours: WeCom markdown has only ``info`` (green), ``comment`` (grey) and
``warning`` (orange-red). A red card is ``warning``; yellow has no match, so it
is ``comment``, which keeps it visibly apart from red; blue is ``info``. The
level is also written out (红牌/黄牌/蓝牌), so the colour is only emphasis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Self

from monitor.notify._config import check_keys, positive, rate_limit
from monitor.notify._http import RobotChannel
from monitor.outbox.escape import markdown_lines
from monitor.outbox.message import Delivery, Message
from monitor.outbox.render import COLOURS  # one choice of colours, the templates' too
from monitor.vocab import LEVEL_WORDS

__all__ = ["COLOURS", "CONTENT_MAX_BYTES", "WeComChannel", "markdown_of", "truncate_utf8"]

CONTENT_MAX_BYTES: Final = 4096
LABELS: Final = {code: names["zh"] for code, names in LEVEL_WORDS.items()}
RETRY_ERRCODES: Final = {45009: "rate limited", -1: "system busy"}
KEYS: Final = frozenset({"url", "key_file", "timeout", "per_minute"})
ELLIPSIS: Final = "…"


def truncate_utf8(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut at a character boundary, ending in "…" if cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return data[:room].decode(errors="ignore") + ELLIPSIS


def markdown_of(message: Message) -> str:
    """The content: as its template rendered it, and the ``<@userid>`` of whom it mentions.

    A row queued before templates (no ``flavour``): the title as a heading, the
    coloured level, then the text, values escaped.
    """
    if message.flavour == "wecom" and message.markdown is not None:
        mentions = " ".join(f"<@{u}>" for u in message.recipients)
        if not mentions:
            return truncate_utf8(message.markdown, CONTENT_MAX_BYTES)
        # Keep the mentions whole even when the text must be cut.
        room = CONTENT_MAX_BYTES - len(mentions.encode()) - 1
        return truncate_utf8(message.markdown, room) + "\n" + mentions
    heading, body = markdown_lines(message.markdown, message.text, message.title)
    lines = [f"## {heading}"]
    if message.level in COLOURS:
        colour, label = COLOURS[message.level], LABELS[message.level]
        lines.append(f'<font color="{colour}">**{label}**</font>')
    lines.extend(["", *body])
    return truncate_utf8("\n".join(lines), CONTENT_MAX_BYTES)


class WeComChannel(RobotChannel):
    """POSTs ``{"msgtype": "markdown", ...}`` to the robot's webhook URL."""

    kind = "wecom"
    token_param = "key"
    token_file = "key_file"
    retry_errcodes = RETRY_ERRCODES

    def __init__(self, name: str, url: str, *, key: str | None = None, timeout: float = 10.0,
                 per_minute: int | None = 20) -> None:  # fmt: skip
        super().__init__(name, url, token=key, timeout=timeout, per_minute=per_minute)

    @classmethod
    def from_config(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> Self:
        """Keys: ``url`` (``?key=`` in it, or ``key_file``), ``timeout``, ``per_minute`` (20)."""
        check_keys(name, table, KEYS)
        url, key = cls.url_and_token(name, table, secrets)
        return cls(name, url, key=key, timeout=positive(name, table, "timeout", 10.0),
                   per_minute=rate_limit(name, table, 20))  # fmt: skip

    async def send(self, message: Message) -> Delivery:
        content = markdown_of(message)
        return await self.post(self._url, {"msgtype": "markdown", "markdown": {"content": content}})
