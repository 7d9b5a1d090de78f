"""What the outbox hands a channel, and what a channel says back.

A channel turns a rendered ``Message`` into one delivery attempt and says
what happened (``Delivery``); it never retries, sleeps or logs secrets: the
sender loop (``monitor.outbox.send``) owns retries, backoff, rate limits and
the record of every attempt. The channels themselves are the next stage,
``monitor.notify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Attachment", "Channel", "Delivery", "Message"]


@dataclass(frozen=True)
class Attachment:
    """A file an e-mail carries (a bulletin's PDF and workbook); the robots send a link."""

    name: str
    media_type: str  # "application/pdf"
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Message:
    """One notification, rendered, as the sender hands it to a channel."""

    key: str  # idempotency key: the same key is the same notification
    kind: str  # "card" | "escalation" | "digest" | "resolved" | "group"
    title: str  # one line: e-mail subject, markdown heading
    text: str  # plain text (markdown for the robots)
    html: str | None = None  # e-mail alternative part
    level: str | None = None  # blue | yellow | red
    # The machine-readable facts: card_id, case, matter, department, window,
    # clock, rule, level, deadline (ISO UTC), issued_at (ISO UTC), message.
    fields: Mapping[str, Any] = field(default_factory=dict)
    recipients: tuple[str, ...] = ()  # e-mail addresses or mobile numbers to @, if any
    # the same for the robots' markdown, every inserted value escaped (monitor.outbox.escape);
    # None in rows queued before it existed: the channels escape ``text`` whole then
    markdown: str | None = None
    # "text" | "wecom" | "dingtalk" when rendered for that channel's markup: ``markdown`` is
    # then the whole content; None in rows queued before (the channel lays it out)
    flavour: str | None = None
    item: str | None = None  # this notification as one line of a grouped list, same markup
    # files for the e-mail channels: loaded by the sender at delivery, never in the payload
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt."""

    ok: bool
    retry: bool = True  # worth trying again (network, 5xx, 429); False: permanent refusal
    detail: str = ""  # status code and a short reason, for the attempt record (no secrets)
    retry_after: float | None = None  # seconds, when the receiver said so


class Channel(Protocol):
    """A channel may also offer ``secrets`` (its keys and passwords): the sender masks them
    in every text it stores, whatever produced the text."""

    name: str
    kind: str
    per_minute: int | None  # rate limit the sender must respect; None: none

    async def send(self, message: Message) -> Delivery: ...
