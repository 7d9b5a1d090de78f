"""The generic webhook: one signed JSON object per notification (docs/contract.md).

For receivers jiancha does not know (a ticket system, a duty bot): the body
carries the machine-readable facts rather than rendered text, the
``Idempotency-Key`` header lets the receiver drop the duplicates that
at-least-once delivery produces, and the optional HMAC lets it trust the body.
The HMAC covers the sending time (``X-Jiancha-Timestamp``) with the body, as
Stripe's and Slack's do, so a captured request cannot be replayed later than
the receiver's tolerance (docs/alerts.md shows the check).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Self

import httpx

from monitor.notify._config import check_keys, positive, rate_limit, require_url, secret_file
from monitor.notify._http import HttpChannel
from monitor.outbox.message import Delivery, Message

__all__ = ["FIELDS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookChannel", "body_of", "sign"]

# Always present in the body (null when the notification has no such fact), so
# receivers can rely on one schema for cards, escalations and digests alike.
FIELDS: Final = (
    "card_id",
    "case",
    "matter",
    "department",
    "window",
    "clock",
    "rule",
    "level",
    "deadline",
    "issued_at",
    "message",
    "link",  # the card's page in the console ([web] base_url), null when unset
    "matter_name",  # the matter's name in the catalogue
)
SIGNATURE_HEADER: Final = "X-Jiancha-Signature"
TIMESTAMP_HEADER: Final = "X-Jiancha-Timestamp"  # unix seconds when the request was signed
KEYS: Final = frozenset({"url", "secret_file", "timeout", "per_minute"})


def body_of(message: Message) -> bytes:
    """The exact bytes POSTed (and signed): the facts plus ``key`` and ``kind``."""
    obj: dict[str, Any] = dict.fromkeys(FIELDS)
    obj.update(message.fields)
    if obj.get("level") is None:
        obj["level"] = message.level
    if obj.get("message") is None:
        obj["message"] = message.text
    obj["key"] = message.key
    obj["kind"] = message.kind
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Jiancha-Signature``: ``sha256=`` and the hex HMAC of ``"<timestamp>.<body>"``."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class WebhookChannel(HttpChannel):
    """POSTs ``body_of(message)``; any 2xx is a delivery, the reply body is ignored."""

    kind = "webhook"

    def __init__(self, name: str, url: str, *, secret: str | None = None, timeout: float = 10.0,
                 per_minute: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        # A token in the URL's query (?token=...) is as secret as the HMAC key.
        tokens = [v for _, v in httpx.URL(url).params.multi_items() if len(v) >= 8]
        super().__init__(name, timeout, per_minute, [secret, *tokens])
        self.url = url
        self._secret = secret
        self.clock = clock  # wall time: receivers compare the timestamp with their own clock

    @classmethod
    def from_config(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> Self:
        """Keys: ``url`` (required), ``secret_file``, ``timeout`` (s, 10), ``per_minute``."""
        check_keys(name, table, KEYS)
        return cls(name, require_url(name, table),
                   secret=secret_file(name, table, "secret_file", secrets),
                   timeout=positive(name, table, "timeout", 10.0),
                   per_minute=rate_limit(name, table))  # fmt: skip

    async def send(self, message: Message) -> Delivery:
        body = body_of(message)
        headers = {"Idempotency-Key": message.key}
        if self._secret is not None:  # signed at each attempt: a retry carries a fresh time
            timestamp = int(self.clock())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        response = await self._http.exchange(self.url, body, headers)
        if isinstance(response, Delivery):
            return response
        return Delivery(ok=True, retry=False, detail=f"HTTP {response.status_code}")
