"""The webhook's timestamped signature, checked by a real receiver with the documented code.

The receiver runs the very function ``docs/alerts.md`` gives receivers (taken
from the page, so the page cannot drift from what jiancha sends) and answers
401 when it fails: a fresh request gets through, the same bytes replayed
later, a stale timestamp or the old body-only signature are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from monitor.notify.webhook import WebhookChannel
from monitor.outbox.message import Message
from tests import httpkit
from tests.httpkit import Receiver, Reply, Request

receiver = httpkit.receiver

SECRET = "hmac-密钥-0123456789"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def documented_check() -> Callable[..., bool]:
    """``verify_jiancha`` as docs/alerts.md shows it to receivers."""
    page = DOCS.read_text(encoding="utf-8")
    [code] = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "verify_jiancha" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    check: Callable[..., bool] = namespace["verify_jiancha"]
    return check


class Verifier:
    """What a receiver does: 200 when the check passes at its own ``now``, else 401."""

    def __init__(self) -> None:
        self.check = documented_check()
        self.now: float | None = None  # None: the real clock
        self.verdicts: list[bool] = []

    def __call__(self, request: Request) -> Reply:
        ok = self.check(SECRET.encode(), request.body, request.headers.get("x-jiancha-timestamp"),
                        request.headers.get("x-jiancha-signature"), self.now)  # fmt: skip
        self.verdicts.append(ok)
        return Reply(200, json={"ok": True}) if ok else Reply(401, json={"error": "signature"})


def message() -> Message:
    return Message(key="card:7:ops", kind="card", title="红牌", text="承诺时限已到",
                   level="red", fields={"card_id": 7, "case": "C-7"})  # fmt: skip


async def test_fresh_requests_pass_and_replays_are_refused(receiver: Receiver) -> None:
    verifier = Verifier()
    receiver.respond = verifier
    hook = WebhookChannel("ops", receiver.url("/hook"), secret=SECRET)
    try:
        delivered = await hook.send(message())
    finally:
        await hook.aclose()
    assert delivered.ok, delivered
    [sent] = receiver.requests
    names = ("content-type", "idempotency-key", "x-jiancha-timestamp", "x-jiancha-signature")
    headers = {k: sent.headers[k] for k in names}
    sent_at = int(headers["x-jiancha-timestamp"])
    old = "sha256=" + hmac.new(SECRET.encode(), sent.body, hashlib.sha256).hexdigest()
    url = receiver.url("/hook")
    async with httpx.AsyncClient() as client:

        async def replay(now: float, body: bytes = sent.body, **changed: str) -> int:
            verifier.now = now
            response = await client.post(url, content=body, headers={**headers, **changed})
            return response.status_code

        # Captured and replayed at once: inside the 5 minutes (the Idempotency-Key drops it).
        assert await replay(sent_at + 299) == 200
        # The same bytes six minutes later: refused.
        assert await replay(sent_at + 360) == 401
        # A timestamp moved to look fresh breaks the signature.
        assert await replay(sent_at + 400, **{"x-jiancha-timestamp": str(sent_at + 400)}) == 401
        # So does a changed body.
        assert await replay(sent_at, sent.body.replace(b"C-7", b"C-8")) == 401
        # The old scheme (the HMAC of the body alone) is not accepted any more.
        assert await replay(sent_at, **{"x-jiancha-signature": old}) == 401
    assert verifier.verdicts == [True, True, False, False, False, False]


async def test_a_sender_with_a_stale_clock_is_refused_and_not_retried(receiver: Receiver) -> None:
    verifier = Verifier()
    receiver.respond = verifier
    stale = WebhookChannel("ops", receiver.url("/hook"), secret=SECRET,
                           clock=lambda: time.time() - 600)  # fmt: skip
    try:
        refused = await stale.send(message())
    finally:
        await stale.aclose()
    assert (refused.ok, refused.retry) == (False, False)
    assert "401" in refused.detail and SECRET not in refused.detail
    assert verifier.verdicts == [False]


def test_the_documented_check_refuses_malformed_headers_without_failing() -> None:
    check = documented_check()
    body, now = b'{"case":"C-7"}', 1_710_000_000
    mac = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    good = f"sha256={mac}"
    assert check(SECRET.encode(), body, str(now), good, now)
    for timestamp, signature in [(None, good), (str(now), None), ("", good), ("²", good),
                                 ("1e9", good), (f"-{now}", good), (str(now), "sha256=签名"),
                                 (str(now), good.upper()), (str(now), good[:-1])]:  # fmt: skip
        assert check(SECRET.encode(), body, timestamp, signature, now) is False
    assert check(SECRET.encode(), body, str(now), good, now - 301) is False  # from the future
