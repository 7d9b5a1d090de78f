"""The outbox: every card reaches the right people exactly once, even through outages.

Deciding *who* hears *what* and *when* is pure (``recipients``, ``hold_until``,
``render``); the rows are written by ``enqueue`` inside the transaction that
issued the card, keyed by an idempotency key (``card:<id>:<channel>``), so a
replay or a restart never queues a second one. The ``Sender`` loop delivers
them with capped, jittered exponential backoff and per-channel rate limits,
records every attempt, and marks a notification failed once it gives up:
never silently.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import random
import string
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trio

from monitor import db
from monitor.calendar import Calendar
from monitor.clock import real_seconds
from monitor.config import NotifyConfig
from monitor.log import get_logger
from monitor.notify import Channel, Delivery, Message
from monitor.paths import rules_dir

LEVEL_NAMES = {
    "zh": {"blue": "蓝牌", "yellow": "黄牌", "red": "红牌"},
    "en": {"blue": "blue card", "yellow": "yellow card", "red": "red card"},
}
CLOCK_NAMES = {
    "zh": {"acceptance": "受理", "decision": "办结（承诺时限）", "statutory": "法定时限",
           "delivery": "送达", "immediate": "即办", "step": "环节", "review": "差评整改",
           "supplement": "容缺补齐"},
    "en": {"acceptance": "acceptance", "decision": "decision (promised limit)",
           "statutory": "statutory limit", "delivery": "delivery", "immediate": "immediate",
           "step": "step", "review": "bad-rating rectification", "supplement": "pledged materials"},
}  # fmt: skip
ACTIONS = {
    "zh": {
        "blue": "提醒：请关注办理进度，确保在时限内办结。",
        "yellow": "预警：即将超期，请立即督办，当日内说明情况（jiancha cards ack）。",
        "red": "违规：已超期或违反程序，请在督办期限内书面说明并整改（jiancha cards ack）。",
    },
    "en": {
        "blue": "Reminder: keep an eye on this case so it finishes in time.",
        "yellow": "Warning: about to be overdue; act now and explain today (jiancha cards ack).",
        "red": "Violation: overdue or against procedure; reply and rectify within the "
        "supervision order's period (jiancha cards ack).",
    },
}


@dataclass(frozen=True)
class CardFacts:
    """What a notification says about a card (from the ledger row and its detail)."""

    card_id: int
    case_id: str
    clock: str
    rule: str
    level: str
    issued_at: dt.datetime
    deadline: dt.datetime | None
    matter: str | None
    department: str | None
    window: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    rule_title: str = ""
    matter_name: str = ""
    reply_due: dt.datetime | None = None


# --- who, when, what (pure) ---------------------------------------------------------


def recipients(
    cfg: NotifyConfig, kind: str, level: str | None, department: str, window: str
) -> tuple[list[str], bool]:
    """The channels a notification goes to, and whether a route matched (else: fallback)."""
    found: list[str] = []
    for route in cfg.routes:
        if not route.matches(kind, level, department, window):
            continue
        found.extend(route.channels)
        for role in route.to:
            if role == "window":
                found.extend(cfg.windows.get(window, ()))
            elif role == "department":
                found.extend(cfg.departments.get(department, ()))
            elif role == "inspectors":
                found.extend(cfg.inspectors)
            elif role == "fallback":
                found.extend(cfg.fallback)
    unique = list(dict.fromkeys(c for c in found if c in cfg.channels))
    if unique:
        return unique, True
    return list(cfg.fallback), False


def hold_until(
    level: str | None, now: dt.datetime, cal: Calendar, cfg: NotifyConfig
) -> dt.datetime:
    """When a notification may go out: blue and yellow wait out quiet hours and rest days."""
    quiet = cfg.quiet
    if not quiet.enabled or level is None or level not in quiet.levels:
        return now
    tz = zoneinfo.ZoneInfo(cal.timezone)
    local = now.astimezone(tz)

    def working(day: dt.date) -> bool:
        return not quiet.non_working_days or bool(cal.is_workday(np.datetime64(day, "D")))

    t = local.time()
    overnight = quiet.start > quiet.end  # e.g. 18:00 - 08:30
    inside = (t >= quiet.start or t < quiet.end) if overnight else (quiet.start <= t < quiet.end)
    if working(local.date()) and not inside:
        return now
    return next_morning(now, cal, quiet.end, workdays_only=quiet.non_working_days)


def next_morning(
    now: dt.datetime, cal: Calendar, at: dt.time, *, workdays_only: bool = True
) -> dt.datetime:
    """The first working day's ``at`` (local) after ``now``, as UTC: end of quiet hours, digest."""
    tz = zoneinfo.ZoneInfo(cal.timezone)
    local = now.astimezone(tz)
    day = local.date()
    if local.time() >= at:
        day += dt.timedelta(days=1)
    for _ in range(60):  # the longest run of rest days is far shorter
        if not workdays_only or bool(cal.is_workday(np.datetime64(day, "D"))):
            break
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tz).astimezone(dt.UTC)


def _template(kind: str, lang: str) -> string.Template:
    path = rules_dir() / "templates" / lang / f"{kind}.md"
    return string.Template(path.read_text(encoding="utf-8"))


def _local(value: dt.datetime | None, tz: str, lang: str) -> str:
    if value is None:
        return "—"
    local = value.astimezone(zoneinfo.ZoneInfo(tz))
    if local.time() == dt.time(0) and local.second == 0:  # the end of a day reads 24:00
        prev = local - dt.timedelta(days=1)
        return f"{prev:%Y-%m-%d} 24:00"
    return f"{local:%Y-%m-%d %H:%M}"


def render(facts: CardFacts, kind: str, cfg: NotifyConfig, cal: Calendar,
           heads: Mapping[str, str]) -> Message:  # fmt: skip
    """The message of a card or escalation, in the configured language."""
    lang = cfg.language
    d = facts.detail
    ext = int(d.get("extension_days") or 0)
    extension = ""
    if ext:
        extension = f"（含延期 {ext} 个工作日）" if lang == "zh" else f" (incl. {ext} extended)"
    link = ""
    if cfg.dashboard_url:
        link = f"\n{cfg.dashboard_url}?var-window={facts.window or ''}&var-case={facts.case_id}"
    head = heads.get(f"window:{facts.window}", "—")
    values = {
        "level_name": LEVEL_NAMES[lang].get(facts.level, facts.level),
        "window": facts.window or "—",
        "department": facts.department or "—",
        "head": head,
        "case": facts.case_id,
        "matter_name": facts.matter_name or facts.matter or "—",
        "rule": facts.rule_title or facts.rule,
        "clock": CLOCK_NAMES[lang].get(facts.clock, facts.clock)
        + (f"·{d['subject']}" if d.get("subject") else ""),
        "limit": d.get("limit_days", "—"),
        "extension": extension,
        "used": f"{float(d['used_days']):.1f}" if "used_days" in d else "—",
        "remaining": f"{float(d['remaining_days']):.1f}" if "remaining_days" in d else "—",
        "deadline": _local(facts.deadline, cal.timezone, lang),
        "issued": _local(facts.issued_at, cal.timezone, lang),
        "reply_due": _local(facts.reply_due, cal.timezone, lang),
        "action": ACTIONS[lang].get(facts.level, ""),
        "link": link,
        "card_id": facts.card_id,
    }
    text = _template(kind, lang).safe_substitute(values).strip()
    title = text.splitlines()[0]
    fields = {
        "card_id": facts.card_id, "case": facts.case_id, "matter": facts.matter,
        "department": facts.department, "window": facts.window, "clock": facts.clock,
        "rule": facts.rule, "level": facts.level,
        "deadline": None if facts.deadline is None else facts.deadline.isoformat(),
        "issued_at": facts.issued_at.isoformat(), "message": text,
    }  # fmt: skip
    body = "<br>".join(html.escape(line) for line in text.splitlines())
    return Message(key="", kind=kind, title=title, text=text, html=f"<p>{body}</p>",
                   level=facts.level, fields=fields)  # fmt: skip


def payload(message: Message) -> dict[str, Any]:
    return {"kind": message.kind, "title": message.title, "text": message.text,
            "html": message.html, "level": message.level, "fields": dict(message.fields),
            "recipients": list(message.recipients)}  # fmt: skip


def message_of(key: str, data: Mapping[str, Any]) -> Message:
    return Message(key=key, kind=data["kind"], title=data["title"], text=data["text"],
                   html=data.get("html"), level=data.get("level"),
                   fields=data.get("fields") or {},
                   recipients=tuple(data.get("recipients") or ()))  # fmt: skip


# --- writing (inside the card's transaction) --------------------------------------------

_ENQUEUE = """
INSERT INTO jiancha.outbox (key, channel, kind, card_id, routed, payload, created_at,
                            not_before, next_attempt_at, give_up_at)
SELECT k, c, t, i, r, p::jsonb, $9, n, n, n + $10::interval
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bool[], $6::text[],
            $7::timestamptz[], $8::text[]) AS u(k, c, t, i, r, p, n, x)
ON CONFLICT (key) DO NOTHING
"""


@dataclass
class Notifier:
    """Turns ledger steps into outbox rows; shared by the evaluator's transactions."""

    cfg: NotifyConfig
    cal: Calendar
    rule_titles: Mapping[str, str] = field(default_factory=dict)
    matter_names: Mapping[str, str] = field(default_factory=dict)
    unrouted: int = 0  # notifications that matched no route (sent to the fallback)
    dropped: int = 0  # ... and had no fallback either (logged, counted)

    def rows(
        self, items: Iterable[tuple[CardFacts, str]], now: dt.datetime
    ) -> list[tuple[Any, ...]]:
        """(key, channel, kind, card_id, routed, payload JSON, not_before) per delivery."""
        import json

        out = []
        log = get_logger("monitor.outbox")
        for facts, kind in items:
            level = facts.level
            chans, routed = recipients(self.cfg, kind, level, facts.department or "",
                                       facts.window or "")  # fmt: skip
            if not routed:
                self.unrouted += 1
                if not chans:
                    self.dropped += 1
                    log.warning("notification_unrouted", card=facts.card_id, kind=kind,
                                department=facts.department, window=facts.window)  # fmt: skip
            if not chans:
                continue
            message = render(facts, kind, self.cfg, self.cal, self.cfg.heads)
            data = json.dumps(payload(message), ensure_ascii=False)
            when = now if kind == "escalation" else hold_until(level, now, self.cal, self.cfg)
            for channel in chans:
                out.append((f"{kind}:{facts.card_id}:{channel}", channel, kind, facts.card_id,
                            routed, data, when))  # fmt: skip
        return out

    async def enqueue(self, conn: db.Connection, items: Sequence[tuple[CardFacts, str]],
                      now: dt.datetime) -> int:  # fmt: skip
        rows = self.rows(items, now)
        if not rows:
            return 0
        cols = list(zip(*rows, strict=True))
        await conn.execute(_ENQUEUE, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]),
                           list(cols[4]), list(cols[5]), list(cols[6]), [""] * len(rows), now,
                           self.cfg.give_up_after)  # fmt: skip
        return len(rows)


# --- delivering ------------------------------------------------------------------------

CHANNEL_MODULES = {
    "webhook": ("monitor.notify.webhook", "WebhookChannel"),
    "wecom": ("monitor.notify.wecom", "WeComChannel"),
    "dingtalk": ("monitor.notify.dingtalk", "DingTalkChannel"),
    "smtp": ("monitor.notify.smtp", "SmtpChannel"),
    "alertmanager": ("monitor.notify.alertmanager", "AlertmanagerChannel"),
}


def read_secret(path: str) -> str:
    """A secret from a file; a bare name is looked up in systemd's $CREDENTIALS_DIRECTORY."""
    import os

    p = Path(path)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if not p.is_absolute() and creds and (Path(creds) / path).is_file():
        p = Path(creds) / path
    return p.read_text(encoding="utf-8").strip()


def build_channels(cfg: NotifyConfig, secrets: Callable[[str], str] = read_secret
                   ) -> dict[str, Channel]:  # fmt: skip
    out: dict[str, Channel] = {}
    for name, table in cfg.channels.items():
        module, cls = CHANNEL_MODULES[str(table["kind"])]
        factory = getattr(importlib.import_module(module), cls)
        out[name] = factory.from_config(name, table, secrets)
    return out


_CLAIM = """
UPDATE jiancha.outbox SET next_attempt_at = $1 + $3::interval
WHERE id IN (
    SELECT id FROM jiancha.outbox
    WHERE state = 'pending' AND next_attempt_at <= $1 AND not_before <= $1
    ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, key, channel, kind, card_id, payload, attempts, give_up_at
"""
_DONE = """
WITH a AS (INSERT INTO jiancha.outbox_attempts (outbox_id, at, ok, detail, ms)
           VALUES ($1, $2, $3, $4, $5))
UPDATE jiancha.outbox SET attempts = attempts + 1, state = $6, next_attempt_at = $7,
       delivered_at = CASE WHEN $3 THEN $2 ELSE delivered_at END, last_error = $8
WHERE id = $1
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
    """A token bucket per channel: N messages a minute, spread out."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self.tokens = float(per_minute or 0)
        self.at = 0.0

    def take(self, now: float) -> float:
        """0 when a message may go now, else seconds to wait."""
        if not self.per_minute:
            return 0.0
        self.tokens = min(float(self.per_minute),
                          self.tokens + (now - self.at) * self.per_minute / 60.0)  # fmt: skip
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60.0 / self.per_minute


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
                 idle: float = 1.0) -> None:  # fmt: skip
        self.dsn = dsn
        self.configure(channels, cfg)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.rng = rng or random.Random()
        self.batch = batch
        self.lease = lease or dt.timedelta(seconds=cfg.lease)
        self.idle = idle
        self.stats = SenderStats()
        self.log = get_logger("monitor.outbox")
        self._wake = trio.Event()

    def wake(self) -> None:
        self._wake.set()

    def configure(self, channels: Mapping[str, Channel], cfg: NotifyConfig) -> None:
        """The channels and settings in force (at start, and on a reload)."""
        self.channels = dict(channels)
        self.cfg = cfg
        self.limits = {n: RateLimit(c.per_minute) for n, c in self.channels.items()}

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
        lost = False
        delays = db.backoff_delays(0.2, 30.0, self.rng)
        while True:
            try:
                async with await db.connect(self.dsn, application_name="jiancha-sender") as conn:
                    if status is not None:
                        status.started()
                        status = None
                    if lost:
                        self.log.info("outbox_connected")
                        lost = False
                        delays = db.backoff_delays(0.2, 30.0, self.rng)
                    await self._serve(conn)
            except db.DISCONNECTS as exc:
                lost = True
                delay = delays()
                self.log.warning("outbox_disconnected", error=f"{type(exc).__name__}: {exc}",
                                 retry_in_s=round(delay, 2))  # fmt: skip
                await trio.sleep(delay)

    async def _serve(self, conn: db.Connection) -> None:
        """The delivery loop on one connection, until it fails."""
        refreshed = -1e9
        while True:
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
        """Claim what is due and try each once; returns how many were tried."""
        now = self.clock()
        rows = await conn.fetch(_CLAIM, now, self.batch, self.lease)
        for row in rows:
            await self._deliver(conn, row)
        return len(rows)

    async def _deliver(self, conn: db.Connection, row: Any) -> None:
        name = row["channel"]
        channel = self.channels.get(name)
        now = self.clock()
        per = self.stats.by_channel.setdefault(name, {"delivered": 0, "failed": 0, "pending": 0})
        if channel is None:
            result = Delivery(ok=False, retry=True, detail=f"no channel {name!r} configured")
            ms = 0.0
        else:
            wait = self.limits[name].take(trio.current_time())
            if wait > 0:  # over the channel's rate: back in the queue, not an attempt
                await conn.execute("UPDATE jiancha.outbox SET next_attempt_at = $2 WHERE id = $1",
                                   row["id"], now + dt.timedelta(seconds=wait))  # fmt: skip
                return
            started = trio.current_time()
            try:
                result = await channel.send(message_of(row["key"], row["payload"]))
            except Exception as exc:  # a channel bug must not stop the others
                result = Delivery(ok=False, retry=True, detail=f"{type(exc).__name__}: {exc}")
            ms = (trio.current_time() - started) * 1000
        attempts = int(row["attempts"]) + 1
        if result.ok:
            state, nxt = "delivered", now
        elif result.retry and now < row["give_up_at"]:
            delay = max(self._delay(attempts - 1), result.retry_after or 0.0)
            state, nxt = "pending", now + dt.timedelta(seconds=delay)
        else:
            state, nxt = "failed", now
        async with conn.transaction():
            await conn.execute(_DONE, row["id"], now, result.ok, result.detail[:500], ms, state,
                               nxt, "" if result.ok else result.detail[:500])  # fmt: skip
            if result.ok and row["card_id"] is not None and row["kind"] == "card":
                await conn.execute(_NOTIFIED, row["card_id"], now, name)
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
