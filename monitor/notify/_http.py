"""What the HTTP channels share: one lazy client, outcome mapping, redaction.

The webhook, WeCom and DingTalk channels differ only in the body they build
and how they read a 200 reply; timeouts, refused connections, 429 and 5xx
mean the same thing for all three, so they are mapped to a ``Delivery`` here,
once. Nothing in here logs, and every text that can reach ``Delivery.detail``
passes ``Redactor`` first: a robot's URL carries its key in the query string.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final

import httpx

from monitor.notify import ChannelError
from monitor.notify._config import DETAIL_MAX, require_url, secret_file
from monitor.outbox.message import Delivery
from monitor.redact import redact_text

__all__ = [
    "HttpChannel",
    "HttpSender",
    "Redactor",
    "RobotChannel",
    "parse_retry_after",
    "robot_verdict",
]

USER_AGENT: Final = "jiancha/0.1 (+electronic supervision)"
_URL_QUERY = re.compile(r"(?P<head>\bhttps?://[^\s?#\"'<>]*)[?#][^\s\"'<>]*", re.IGNORECASE)


class Redactor:
    """Scrubs URL queries and known secret values out of texts bound for ``detail``.

    The same ``monitor.redact.redact_text`` as every stored error text, plus
    whole URL queries dropped: a robot's reply has no use for them.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        return redact_text(_URL_QUERY.sub(r"\g<head>?…", text), self.secrets, limit=DETAIL_MAX)


def parse_retry_after(value: str | None, now: Callable[[], float] | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        current = now() if now is not None else dt.datetime.now(dt.UTC).timestamp()
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class HttpSender:
    """One ``httpx.AsyncClient`` per channel, created on first use (inside the trio run)."""

    def __init__(self, timeout: float, redact: Redactor) -> None:
        self.timeout = timeout
        self.redact = redact
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,  # a redirect could carry the body and key elsewhere
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> httpx.Response | Delivery:
        """POST once; a transport failure comes back as a retryable ``Delivery``."""
        all_headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        try:
            return await self._get_client().post(url, content=body, headers=all_headers)
        except httpx.TimeoutException as exc:
            return Delivery(
                ok=False,
                retry=True,
                detail=self.redact(f"timeout after {self.timeout:g}s ({type(exc).__name__})"),
            )
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            return Delivery(
                ok=False,
                retry=True,
                detail=self.redact(f"connection failed: {type(exc).__name__}: {reason}"),
            )

    async def exchange(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> httpx.Response | Delivery:
        """POST once: the 2xx response, or the ``Delivery`` of a transport or HTTP failure."""
        response = await self.post(url, body, headers)
        if isinstance(response, Delivery):
            return response
        failure = self.http_failure(response)
        return response if failure is None else failure

    def http_failure(self, response: httpx.Response) -> Delivery | None:
        """The outcome of a non-2xx status, or ``None`` when the status is 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        reason = response.reason_phrase or ""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or status == 408 or status >= 500:
            return Delivery(
                ok=False,
                retry=True,
                detail=self.redact(f"HTTP {status} {reason}".strip()),
                retry_after=retry_after,
            )
        return Delivery(
            ok=False, retry=False, detail=self.redact(f"HTTP {status} {reason}".strip())
        )


def robot_verdict(
    response: httpx.Response,
    retry_errcodes: Mapping[int, str],
    retry_after: float,
    redact: Redactor,
) -> Delivery:
    """Read a robot's ``{"errcode": ..., "errmsg": ...}`` reply (WeCom and DingTalk alike)."""
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("errcode"), int):
        # A proxy's page, not the robot: we cannot tell whether it was delivered.
        return Delivery(
            ok=False, retry=True, detail=f"HTTP {response.status_code}, reply is not robot JSON"
        )
    errcode: int = reply["errcode"]
    errmsg = str(reply.get("errmsg", ""))
    if errcode == 0:
        return Delivery(ok=True, retry=False, detail=f"HTTP {response.status_code} errcode 0")
    detail = redact(f"errcode {errcode}: {errmsg}")
    if errcode in retry_errcodes:
        return Delivery(ok=False, retry=True, detail=detail, retry_after=retry_after)
    return Delivery(ok=False, retry=False, detail=detail)


class HttpChannel:
    """What every HTTP channel holds: its name, its rate limit and one pooled client."""

    kind: ClassVar[str]

    def __init__(self, name: str, timeout: float, per_minute: int | None,
                 secrets: Iterable[str | None]) -> None:  # fmt: skip
        self.name = name
        self.per_minute = per_minute
        self._http = HttpSender(timeout, Redactor(secrets))
        self.secrets = self._http.redact.secrets  # for the sender's redaction of what it stores

    async def aclose(self) -> None:
        """Close the pooled connections (the daemon calls this on shutdown)."""
        await self._http.aclose()


class RobotChannel(HttpChannel):
    """A group robot (WeCom, DingTalk): its token in the URL's query, ``errcode`` replies."""

    token_param: ClassVar[str]  # the query parameter that carries the robot's token
    token_file: ClassVar[str]  # the config key of the file that holds it instead
    retry_errcodes: ClassVar[Mapping[int, str]]
    retry_after: ClassVar[float] = 60.0

    def __init__(self, name: str, url: str, *, token: str | None, timeout: float,
                 per_minute: int | None, secrets: Iterable[str | None] = ()) -> None:  # fmt: skip
        if token is not None:
            url = str(httpx.URL(url).copy_merge_params({self.token_param: token}))
        self._url = url
        # The token may also have come inside the URL; the replies may echo it.
        in_url = httpx.URL(url).params.get(self.token_param)
        super().__init__(name, timeout, per_minute, [token, in_url, *secrets])

    @classmethod
    def url_and_token(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> tuple[str, str | None]:
        """The configured URL and token file; refused when neither carries a token."""
        url = require_url(name, table)
        token = secret_file(name, table, cls.token_file, secrets)
        if token is None and not httpx.URL(url).params.get(cls.token_param):
            p, f = cls.token_param, cls.token_file
            raise ChannelError(
                f"通知渠道 {name} 缺少机器人 {p}：在 url 中写 ?{p}=… 或设置 {f} "
                f"(channel {name!r}: url has no {p}= and {f} is not set)"
            )
        return url, token

    async def post(self, url: str, payload: Mapping[str, Any]) -> Delivery:
        body = json.dumps(payload, ensure_ascii=False).encode()
        response = await self._http.exchange(url, body, {})
        if isinstance(response, Delivery):
            return response
        return robot_verdict(response, self.retry_errcodes, self.retry_after, self._http.redact)
