"""The Alertmanager channel: each open card is one alert.

Centres that already run Prometheus route, silence and inhibit through
Alertmanager; jiancha then only has to post alerts to its v2 API. The
``card_id`` label makes every card its own alert, so Alertmanager groups and
deduplicates them instead of jiancha.

Configuration (``[channels.NAME]``, ``kind = "alertmanager"``)::

    url = "http://127.0.0.1:9093"       # base URL; /api/v2/alerts is added
    username = "jiancha"                # optional basic auth; needs password_file
    password_file = "/etc/jiancha/am.secret"
    timeout = 10                        # seconds
    resend_every = 300                  # seconds between re-sends of a firing alert
    ca_file = "/etc/jiancha/ca.pem"     # optional: trust this CA bundle (https)
    per_minute = 60                     # optional rate limit for the sender

Alertmanager forgets an alert that is not re-sent before its ``endsAt``, so
the sender must re-send a firing card every ``resend_every`` seconds while it
is open; like Prometheus, each firing alert is sent with ``endsAt`` four
re-send periods ahead, so one lost re-send does not resolve it and a stopped
jiancha does not leave it firing for ever. A ``resolved`` message sends
``endsAt`` = now, which resolves it at once.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self

import httpx

from monitor.notify import _config
from monitor.notify._http import parse_retry_after
from monitor.outbox.message import Delivery, Message

__all__ = ["ALERTNAME", "AlertmanagerChannel"]

ALERTNAME: Final = "JianchaCard"
_KEYS: Final = frozenset(
    {"kind", "name", "url", "username", "password_file", "timeout", "resend_every", "ca_file",
     "per_minute"}
)  # fmt: skip
# Labels identify the alert (same labels: same alert); annotations describe it.
_LABELS: Final = ("level", "department", "window", "rule", "clock", "case", "card_id")
# Alertmanager's customary label, so its routes and silences read as for any alert; the
# case is a label too: deploy/prometheus/alertmanager.yml inhibits a yellow under a red
# of the same case and clock.
SEVERITY: Final = {"red": "critical", "yellow": "warning", "blue": "info"}
_ANNOTATIONS: Final = ("case", "deadline")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _moment(value: Any) -> datetime | None:
    """An aware datetime from a datetime or ISO text (naive counts as UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    """A label or annotation value; None and "" mean absent in Alertmanager."""
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text or None


@dataclass
class AlertmanagerChannel:
    """Posts each notification as one alert to Alertmanager's v2 API."""

    name: str
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    resend_every: float = 300.0
    verify: ssl.SSLContext | bool = field(default=True, repr=False)
    per_minute: int | None = None
    kind: str = "alertmanager"
    # Injectable for tests: "now" for endsAt.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(
        cls, name: str, table: Mapping[str, Any], secrets: Callable[[str], str]
    ) -> Self:
        """Build the channel from its ``[channels.NAME]`` table; ChannelError if wrong."""
        _config.check_keys(name, table, _KEYS)
        url = _config.string(name, table, "url", required=True)
        assert url is not None
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise _config.bad(name, "url", "应为 http(s):// 地址", "must be an http(s):// URL")
        username, password = _config.credentials(name, table, secrets)
        ca_file = _config.string(name, table, "ca_file")
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = _config.tls_context(name, ca_file)
        limit = _config.rate_limit(name, table)
        return cls(
            name=name, url=url.rstrip("/"), username=username, password=password,
            timeout=_config.positive(name, table, "timeout", 10.0),
            resend_every=_config.positive(name, table, "resend_every", 300.0),
            verify=verify, per_minute=limit,
        )  # fmt: skip

    def alert(self, message: Message) -> dict[str, Any]:
        """The v2 API alert object for ``message``."""
        fields = message.fields
        labels = {"alertname": ALERTNAME}
        for key in _LABELS:
            value = _text(message.level if key == "level" and message.level else fields.get(key))
            if value is not None:
                labels[key] = value
        if message.level in SEVERITY:
            labels["severity"] = SEVERITY[message.level]
        annotations = {"summary": message.title, "description": message.text}
        for key in _ANNOTATIONS:
            value = _text(fields.get(key))
            if value is not None:
                annotations[key] = value
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations}
        link = _text(fields.get("link"))
        if link is not None:  # the card's page in the console ([web] base_url)
            alert["generatorURL"] = link
        now = self.clock()
        starts_at = _moment(fields.get("issued_at"))
        if starts_at is not None:
            alert["startsAt"] = _rfc3339(starts_at)
        if message.kind == "resolved":
            # Alertmanager refuses endsAt before startsAt (clock skew): never earlier.
            alert["endsAt"] = _rfc3339(max(now, starts_at) if starts_at else now)
        else:
            alert["endsAt"] = _rfc3339(now + timedelta(seconds=4 * self.resend_every))
        return alert

    async def send(self, message: Message) -> Delivery:
        """One POST; 2xx ok, 429 and 5xx and network errors retried, other 4xx permanent."""
        if self._client is None:
            auth = None
            if self.username is not None and self.password is not None:
                auth = httpx.BasicAuth(self.username, self.password)
            self._client = httpx.AsyncClient(timeout=self.timeout, auth=auth, verify=self.verify)
        try:
            response = await self._client.post(
                f"{self.url}/api/v2/alerts", json=[self.alert(message)]
            )
        except httpx.HTTPError as exc:
            # The URL is left out: it may carry user:password.
            return Delivery(
                ok=False, retry=True, detail=self._clean(f"{type(exc).__name__}: {exc}")
            )
        status = response.status_code
        detail = self._clean(f"HTTP {status} {response.text}")
        if response.is_success:
            return Delivery(ok=True, retry=False, detail=detail)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        retry = status == 429 or status == 408 or status >= 500
        return Delivery(ok=False, retry=retry, detail=detail, retry_after=retry_after)

    async def aclose(self) -> None:
        """Close the HTTP connection pool (the daemon calls this on shutdown)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def secrets(self) -> tuple[str, ...]:
        """The password and the basic-auth token it makes: never stored (servers may echo them)."""
        if not self.password:
            return ()
        token = base64.b64encode(f"{self.username or ''}:{self.password}".encode()).decode()
        return (self.password, token)

    def _clean(self, detail: str) -> str:
        return _config.scrub(detail, *self.secrets)
