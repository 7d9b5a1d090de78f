"""Delivering the outbox: every notification reaches its channel exactly once, through outages.

The ``Sender`` claims due rows one at a time, each under a delivery lease
that carries the leader's fencing token, tries each once on its channel,
records every attempt, and backs off with capped, jittered exponential
delays and per-channel rate limits; a notification it gives up
on is marked failed, never dropped silently. Alertmanager forgets an alert
that is not re-sent, so open cards' alerts are re-fired and closed ones
resolved.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from monitor import db
from monitor.config import NotifyConfig
from monitor.health import pause
from monitor.log import get_logger
from monitor.outbox.message import Attachment, Channel, Delivery, Message
from monitor.outbox.render import message_of, render_group
from monitor.outbox.templating import GROUPED, flavour_of
from monitor.redact import redact_text
from monitor.wallclock import real_seconds

__all__ = ["RateLimit", "Sender", "SenderStats"]


# One row per claim, each under a delivery lease of its own carrying the claimer's
# fencing token (monitor.lease): a row claimed under an older token was abandoned by
# a leader that lost the lease (killed, frozen) and is taken at once, not after the lease.
_CLAIM = """
UPDATE jiancha.outbox SET next_attempt_at = $1 + $2::interval, claim_token = $3
WHERE id = (
    SELECT id FROM jiancha.outbox
    WHERE state = 'pending' AND not_before <= $1
      AND (next_attempt_at <= $1 OR claim_token < $3)
    ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, key, channel, kind, card_id, report_id, payload, attempts, give_up_at, not_before
"""
# The rest of a group: what else is pending for the same recipient (channel) within the
# group window, claimed in the same transaction under the same lease. Only rows due now
# or never tried (next_attempt_at is still not_before): one under a live claim (its
# lease ahead) or backing off waits for its own turn.
_CLAIM_GROUP = """
UPDATE jiancha.outbox SET next_attempt_at = $1::timestamptz + $2::interval, claim_token = $3
WHERE id IN (
    SELECT id FROM jiancha.outbox
    WHERE state = 'pending' AND channel = $4 AND kind IN ('card', 'escalation') AND id <> $5
      AND not_before <= $1::timestamptz + $6::interval
      AND (next_attempt_at <= greatest(not_before, $1::timestamptz) OR claim_token < $3)
    ORDER BY not_before, id LIMIT $7 FOR UPDATE SKIP LOCKED)
RETURNING id, key, channel, kind, card_id, report_id, payload, attempts, give_up_at, not_before
"""
# A bulletin's documents, for the e-mail channels (migration 0015).
_ATTACHMENTS = """
SELECT name, format, content FROM jiancha.report_files
WHERE report_id = $1 AND format = ANY($2::text[]) ORDER BY array_position($2::text[], format)
"""
ATTACHED = ("pdf", "xlsx")  # what a bulletin's e-mail carries
_MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
GROUP_MAX = 10  # notifications in one message: a phone screen or two, within 4096 bytes
# Only the claim's own leader marks it (and its transaction is fenced as well).
_DONE = """
WITH a AS (INSERT INTO jiancha.outbox_attempts (outbox_id, at, ok, detail, ms)
           VALUES ($1, $2, $3, $4, $5))
UPDATE jiancha.outbox SET attempts = attempts + 1, state = $6, next_attempt_at = $7,
       delivered_at = CASE WHEN $3 THEN $2 ELSE delivered_at END, last_error = $8,
       claim_token = NULL
WHERE id = $1 AND claim_token IS NOT DISTINCT FROM $9
"""
_REQUEUE = """
UPDATE jiancha.outbox SET next_attempt_at = $2, claim_token = NULL
WHERE id = $1 AND claim_token IS NOT DISTINCT FROM $3
"""
_NOTIFIED = """
INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason, detail)
VALUES ($1, 'notified', $2, 'jiancha', '', jsonb_build_object('channel', $3::text))
"""
_NEXT = (
    "SELECT min(greatest(next_attempt_at, not_before)) FROM jiancha.outbox WHERE state = 'pending'"
)


# Alertmanager forgets an alert that is not re-sent: while its card is open, a card's
# delivered alert goes out again every resend period; when the card closes or is
# revoked, one `resolved` notification ends it.
_REFIRE = """
UPDATE jiancha.outbox o SET state = 'pending', next_attempt_at = $1,
       give_up_at = $1::timestamptz + $3::interval
FROM jiancha.cards c
WHERE o.card_id = c.id AND o.kind = 'card' AND o.state = 'delivered'
  AND o.channel = ANY($2::text[]) AND c.status IN ('issued', 'acknowledged', 'appealed')
  AND o.delivered_at <= $1::timestamptz - $4::interval
"""
_RESOLVE = """
INSERT INTO jiancha.outbox (key, channel, kind, card_id, routed, payload, created_at,
                            not_before, next_attempt_at, give_up_at)
SELECT 'resolved:' || o.card_id || ':' || o.channel, o.channel, 'resolved', o.card_id, o.routed,
       jsonb_set(o.payload, '{kind}', '"resolved"'), $1, $1, $1, $1::timestamptz + $3::interval
FROM jiancha.outbox o JOIN jiancha.cards c ON c.id = o.card_id
WHERE o.kind = 'card' AND o.channel = ANY($2::text[]) AND o.delivered_at IS NOT NULL
  AND c.status IN ('closed', 'revoked')
ON CONFLICT (key) DO NOTHING
"""


class RateLimit:
    """At most N messages in any 60 seconds per channel (the robots count a sliding minute:
    a token bucket would let a full bucket and its refill, 2N, through in the first one)."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self.sent: collections.deque[float] = collections.deque()

    def take(self, now: float) -> float:
        """0 when a message may go now (and counts it), else seconds to wait."""
        if not self.per_minute:
            return 0.0
        while self.sent and self.sent[0] <= now - 60.0:
            self.sent.popleft()
        if len(self.sent) < self.per_minute:
            self.sent.append(now)
            return 0.0
        return self.sent[0] + 60.0 - now


@dataclass
class SenderStats:
    delivered: int = 0
    failed: int = 0
    attempts: int = 0
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)


class Sender:
    """Delivers due outbox rows; one instance per daemon."""

    def __init__(self, dsn: str, channels: Mapping[str, Channel], cfg: NotifyConfig, *,
                 clock: Callable[[], dt.datetime] | None = None,
                 rng: random.Random | None = None, batch: int = 50,
                 lease: dt.timedelta | None = None,
                 idle: float = 1.0, session: db.Session = db.OWN_SESSION,
                 token: Callable[[], int | None] = lambda: None,
                 may_send: Callable[[], bool] = lambda: True) -> None:  # fmt: skip
        self.dsn = dsn
        self.token = token  # the leader's fencing token (None: no lease)
        self.may_send = may_send  # False once the lease is no longer surely ours
        self.session = session
        self.configure(channels, cfg)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.rng = rng or random.Random()
        self.batch = batch
        self.lease = lease or dt.timedelta(seconds=cfg.lease)
        self.idle = idle
        self.stats = SenderStats()
        self.beat: Callable[[], None] = lambda: None  # each turn, each retry (the heartbeat)
        self.lost = False  # disconnected since the last connection (across runs: terms)
        self.log = get_logger("monitor.outbox")
        self._wake = trio.Event()

    def wake(self) -> None:
        self._wake.set()

    def configure(self, channels: Mapping[str, Channel], cfg: NotifyConfig) -> None:
        """The channels and settings in force (at start, and on a reload)."""
        self.channels = dict(channels)
        self.cfg = cfg
        self.limits = {n: RateLimit(c.per_minute) for n, c in self.channels.items()}
        # Every configured secret (a channel may offer ``secrets``): no stored text holds one.
        self.secrets = tuple(s for c in self.channels.values() for s in getattr(c, "secrets", ()))

    def _delay(self, attempts: int) -> float:
        ceiling = min(self.cfg.backoff_max, self.cfg.backoff_initial * 2 ** max(attempts, 0))
        return self.rng.uniform(ceiling / 2, ceiling)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled; started once connected.

        A lost database is waited out, never fatal: the sender reconnects with capped,
        jittered backoff. A notification whose attempt was not recorded when the
        connection went is still claimed; it is tried again once its lease runs out,
        under the same idempotency key (at least once, never lost).
        """
        status: trio.TaskStatus[None] | None = task_status
        delays = db.backoff_delays(0.2, 30.0, self.rng)
        while True:
            self.beat()
            try:
                async with await db.connect(self.dsn, application_name="jiancha-sender",
                                            session=self.session) as conn:  # fmt: skip
                    if status is not None:
                        status.started()
                        status = None
                    if self.lost:
                        self.log.info("outbox_connected")
                        self.lost = False
                        delays = db.backoff_delays(0.2, 30.0, self.rng)
                    await self._serve(conn)
            except db.DISCONNECTS as exc:
                self.lost = True
                delay = delays()
                self.log.warning("outbox_disconnected", error=f"{type(exc).__name__}: {exc}",
                                 retry_in_s=round(delay, 2))  # fmt: skip
                await pause(delay, self.beat)

    async def _serve(self, conn: db.Connection) -> None:
        """The delivery loop on one connection, until it fails."""
        refreshed = -1e9
        while True:
            self.beat()
            if trio.current_time() - refreshed >= min(30.0, self.cfg.resend_firing_every):
                await self.refresh(conn)
                refreshed = trio.current_time()
            sent = await self.step(conn)
            if sent:
                continue
            nxt: dt.datetime | None = await conn.fetchval(_NEXT)
            wait = self.idle
            if nxt is not None:
                ahead = (nxt - self.clock()).total_seconds()
                wait = min(wait, max(0.0, real_seconds(self.clock, ahead)))
            self._wake = trio.Event()
            with trio.move_on_after(max(wait, 0.01)):
                await self._wake.wait()

    async def refresh(self, conn: db.Connection) -> None:
        """Re-send open cards' alerts to Alertmanager and resolve closed ones."""
        names = [n for n, c in self.channels.items() if c.kind == "alertmanager"]
        if not names:
            return
        now = self.clock()
        every = dt.timedelta(seconds=self.cfg.resend_firing_every)
        async with conn.transaction():
            await conn.execute(_REFIRE, now, names, self.cfg.give_up_after, every)
            await conn.execute(_RESOLVE, now, names, self.cfg.give_up_after)

    async def step(self, conn: db.Connection) -> int:
        """Claim due rows (a group per recipient) and try each once; returns how many were tried."""
        tried = 0
        while tried < self.batch and self.may_send():
            async with conn.transaction():  # fenced: an ex-leader claims nothing
                rows = await self._claim(conn)
            if not rows:
                break
            await self._deliver(conn, rows)
            tried += len(rows)
            self.beat()
        return tried

    async def _claim(self, conn: db.Connection) -> list[Any]:
        """The next due row and, for a channel that groups, the rest of its group."""
        now = self.clock()
        row = await conn.fetchrow(_CLAIM, now, self.lease, self.token())
        if row is None:
            return []
        channel = self.channels.get(row["channel"])
        if (channel is None or channel.kind not in GROUPED or self.cfg.group_window <= 0
                or row["kind"] not in ("card", "escalation")):  # fmt: skip
            return [row]
        more = await conn.fetch(_CLAIM_GROUP, now, self.lease, self.token(), row["channel"],
                                row["id"], dt.timedelta(seconds=self.cfg.group_window),
                                GROUP_MAX - 1)  # fmt: skip
        return [row, *sorted(more, key=lambda r: (r["not_before"], r["id"]))]

    def _message(self, rows: list[Any]) -> Message:
        """The one message for the claimed rows: a row's own, or the group's list."""
        messages = [message_of(r["key"], r["payload"]) for r in rows]
        if len(messages) == 1:
            return messages[0]
        flavour = messages[0].flavour or flavour_of(self.channels[rows[0]["channel"]].kind)
        return render_group(messages, flavour, self.cfg)

    async def _attempt(self, conn: db.Connection, rows: list[Any]) -> tuple[Delivery, float] | None:
        """One delivery attempt of the rows' message; None when the rate limit defers them."""
        name = rows[0]["channel"]
        channel = self.channels.get(name)
        if channel is None:
            return Delivery(ok=False, retry=True, detail=f"no channel {name!r} configured"), 0.0
        wait = self.limits[name].take(trio.current_time())
        if wait > 0:  # over the channel's rate: back in the queue, not an attempt
            later = self.clock() + dt.timedelta(seconds=wait)
            async with conn.transaction():
                for row in rows:
                    await conn.execute(_REQUEUE, row["id"], later, self.token())
            return None
        if not self.may_send():  # the lease may be gone: the next leader sends it
            return None
        started = trio.current_time()
        message = self._message(rows)
        if rows[0]["report_id"] is not None and channel.kind == "smtp":  # a bulletin: its files
            files = await conn.fetch(_ATTACHMENTS, rows[0]["report_id"], list(ATTACHED))
            message = replace(message, attachments=tuple(
                Attachment(f["name"], _MEDIA[f["format"]], bytes(f["content"])) for f in files
            ))  # fmt: skip
        try:
            result = await channel.send(message)
        except Exception as exc:  # a channel bug must not stop the others
            result = Delivery(ok=False, retry=True, detail=f"{type(exc).__name__}: {exc}")
        return result, (trio.current_time() - started) * 1000

    async def _deliver(self, conn: db.Connection, rows: list[Any]) -> None:
        name = rows[0]["channel"]
        now = self.clock()
        per = self.stats.by_channel.setdefault(name, {"delivered": 0, "failed": 0, "pending": 0})
        outcome = await self._attempt(conn, rows)
        if outcome is None:
            return
        result, ms = outcome
        # The one gate of every stored error text: whatever a channel or library put in it.
        result = replace(result, detail=redact_text(result.detail, self.secrets, limit=500))
        async with conn.transaction():  # the group is recorded together, or not at all
            states = [await self._record(conn, row, result, ms, now) for row in rows]
        for row, (state, attempts, nxt) in zip(rows, states, strict=True):
            self.stats.attempts += 1
            if state == "delivered":
                self.stats.delivered += 1
                per["delivered"] += 1
            elif state == "failed":
                self.stats.failed += 1
                per["failed"] += 1
                self.log.error("notification_failed", key=row["key"], channel=name,
                               attempts=attempts, error=result.detail)  # fmt: skip
            else:
                self.log.warning("notification_retry", key=row["key"], channel=name,
                                 attempts=attempts, error=result.detail,
                                 retry_in_s=round((nxt - now).total_seconds(), 1))  # fmt: skip

    async def _record(self, conn: db.Connection, row: Any, result: Delivery, ms: float,
                      now: dt.datetime) -> tuple[str, int, dt.datetime]:  # fmt: skip
        attempts = int(row["attempts"]) + 1
        if result.ok:
            state, nxt = "delivered", now
        elif result.retry and now < row["give_up_at"]:
            delay = max(self._delay(attempts - 1), result.retry_after or 0.0)
            state, nxt = "pending", now + dt.timedelta(seconds=delay)
        else:
            state, nxt = "failed", now
        await conn.execute(_DONE, row["id"], now, result.ok, result.detail, ms, state,
                           nxt, "" if result.ok else result.detail, self.token())  # fmt: skip
        if result.ok and row["card_id"] is not None and row["kind"] == "card":
            await conn.execute(_NOTIFIED, row["card_id"], now, row["channel"])
        return state, attempts, nxt
