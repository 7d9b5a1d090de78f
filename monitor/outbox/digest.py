"""The daily digest: each working morning, every window's cases at risk, most urgent first.

Window heads read one message a day rather than a stream: at 08:30 (the end
of quiet hours) on each working day of the calendar, every window with open
cards gets the list of its cases at risk, ordered by remaining working time.
The digest is queued through the outbox like any card notification, keyed
``digest:<date>:<window>:<channel>``, so a restart that morning does not send
it twice and a daemon that was down at 08:30 still sends it when it starts.
"""

from __future__ import annotations

import datetime as dt
import random
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import trio

from monitor import db
from monitor.calendar import Calendar
from monitor.clocks.periods import periods
from monitor.clocks.timing import from_epoch, level_times, used_days
from monitor.config import NotifyConfig
from monitor.health import pause
from monitor.log import get_logger
from monitor.outbox import escape
from monitor.outbox.quiet import next_morning
from monitor.outbox.render import due_text, window_suffix
from monitor.outbox.route import recipients
from monitor.rules.model import ClockRule, RuleSet
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import LEVEL_NAMES, Lang, level_name, local_text, word
from monitor.wallclock import real_seconds


def next_digest(now: dt.datetime, cal: Calendar, at: dt.time) -> dt.datetime:
    """The next working-day morning at ``at`` local time strictly after ``now`` (UTC)."""
    return next_morning(now, cal, at)


def digest_day(now: dt.datetime, cal: Calendar, at: dt.time) -> dt.date | None:
    """Today's local date when today is a working day past ``at`` (the digest is due)."""
    local = now.astimezone(zoneinfo.ZoneInfo(cal.timezone))
    if local.time() >= at and bool(cal.is_workday(np.datetime64(local.date(), "D"))):
        return local.date()
    return None


@dataclass(frozen=True)
class AtRisk:
    case_id: str
    window: str
    department: str
    matter: str
    level: str  # the highest open card
    remaining: float  # working days left on the decision clock (negative: overdue)
    deadline: dt.datetime | None


_OPEN = """
SELECT s.*, max(array_position(ARRAY['blue', 'yellow', 'red'], c.level)) AS top
FROM jiancha.cards c JOIN jiancha.cases s USING (case_id)
WHERE c.status IN ('issued', 'acknowledged', 'appealed')
GROUP BY s.case_id
"""


def at_risk(
    rows: Sequence[Mapping[str, object]],
    matters: Mapping[str, Matter],
    ruleset: RuleSet,
    cal: Calendar,
    now: dt.datetime,
) -> list[AtRisk]:
    """Cases with open cards, with the working time left on their decision clock (pure)."""
    out = []
    n = int(now.timestamp())
    for row in rows:
        view = CaseView.from_row(row)
        rules = [r for r in ruleset.resolve(view.region, view.department, view.matter)
                 if isinstance(r, ClockRule) and r.on == "decision"]  # fmt: skip
        matter = matters.get(view.matter or "")
        ps = periods(view, matter, rules[:1], cal, ruleset.statute) if rules else []
        remaining, deadline = float("inf"), None
        if ps and ps[0].stop is None:
            times = level_times(cal, [ps[0]], n)[0]
            deadline = times.deadline
            remaining = ps[0].allowed - used_days(cal, ps[0], n)
        top = row.get("top")
        out.append(AtRisk(
            view.case_id, view.window or "—", view.department or "—",
            (matter.name if matter else view.matter) or "—",
            level_name(int(top)) if isinstance(top, int) else "blue", remaining,
            None if deadline is None else from_epoch(deadline),
        ))  # fmt: skip
    out.sort(key=lambda r: (r.window, r.remaining, r.case_id))
    return out


def render_digest(window: str, day: dt.date, items: Sequence[AtRisk], cfg: NotifyConfig,
                  cal: Calendar) -> tuple[str, str, str]:  # fmt: skip
    """Title, text and markdown of one window's digest (the source's values escaped)."""

    def lines_of(esc: Callable[[Any], str]) -> list[str]:
        lang: Lang = "en" if cfg.language == "en" else "zh"
        # the markdown goes to the robots: no staff name there under redact_staff
        named = not (cfg.redact_staff and esc is escape.markdown)
        head = esc(cfg.heads.get(f"window:{window}", "")) if named else ""
        win = esc(window)
        if lang == "en":
            title = f"[Daily digest] window {win} · {day:%Y-%m-%d} · {len(items)} cases at risk"
        else:
            title = (f"【每日风险提示】{win}{window_suffix(window, lang)} · {day:%Y-%m-%d} · "
                     f"风险办件 {len(items)} 件")  # fmt: skip
        lines = [title]
        if head:
            lines.append(f"窗口负责人：{head}" if lang == "zh" else f"Window head: {head}")
        for i, r in enumerate(items, 1):
            left = due_text(None if r.remaining == float("inf") else r.remaining, lang) or "—"
            when = local_text(r.deadline, cal.timezone, with_year=False, missing="—")
            name = word(LEVEL_NAMES, r.level, lang)
            case, matter = esc(r.case_id), esc(r.matter)
            if lang == "en":
                lines.append(f"{i}. {case} ({matter}) {name}, {left}, due {when}")
            else:
                lines.append(f"{i}. {case}（{matter}）{name}，{left}，截止 {when}")
        if cfg.dashboard_url:
            lines.append(f"{cfg.dashboard_url}?{urllib.parse.urlencode({'var-window': window})}")
        return lines

    text = lines_of(escape.plain)
    return text[0], "\n".join(text), "\n".join(lines_of(escape.markdown))


_ENQUEUE = """
INSERT INTO jiancha.outbox (key, channel, kind, routed, payload, created_at, not_before,
                            next_attempt_at, give_up_at)
VALUES ($1, $2, 'digest', $3, $4::jsonb, $5::timestamptz, $5::timestamptz, $5::timestamptz,
        $5::timestamptz + $6::interval)
ON CONFLICT (key) DO NOTHING
"""


async def queue_digests(
    conn: db.Connection,
    cfg: NotifyConfig,
    cal: Calendar,
    ruleset: RuleSet,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    day: dt.date,
) -> int:
    """Queue the day's digest of every window with cases at risk; returns rows added."""
    items = at_risk(await conn.fetch(_OPEN), matters, ruleset, cal, now)
    by_window: dict[str, list[AtRisk]] = {}
    for item in items:
        by_window.setdefault(item.window, []).append(item)
    added = 0
    async with conn.transaction():
        for window, rows in sorted(by_window.items()):
            chans, routed = recipients(cfg, "digest", None, rows[0].department, window)
            title, text, md = render_digest(window, day, rows, cfg, cal)
            fields = {"window": window, "date": day.isoformat(), "message": text,
                      "cases": [r.case_id for r in rows]}  # fmt: skip
            body: dict[str, Any] = {"kind": "digest", "title": title, "text": text, "html": None,
                                    "level": None, "fields": fields, "recipients": [],
                                    "markdown": md}  # fmt: skip
            for channel in chans:
                status = await conn.execute(
                    _ENQUEUE, f"digest:{day.isoformat()}:{window}:{channel}", channel, routed,
                    body, now, cfg.give_up_after,
                )  # fmt: skip
                added += status.endswith(" 1")
    return added


class Digester:
    """Wakes each working morning and queues the digests; one per daemon."""

    def __init__(self, dsn: str, cfg: NotifyConfig, cal: Calendar, ruleset: RuleSet,
                 matters: Callable[[], Mapping[str, Matter]], *,
                 clock: Callable[[], dt.datetime] | None = None,
                 on_queued: Callable[[], None] | None = None,
                 session: db.Session = db.OWN_SESSION) -> None:  # fmt: skip
        self.dsn, self.cfg, self.cal, self.ruleset = dsn, cfg, cal, ruleset
        self.session = session
        self.matters = matters
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.on_queued = on_queued
        self.beat: Callable[[], None] = lambda: None  # each turn, each retry (the heartbeat)
        self.log = get_logger("monitor.outbox.digest")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        at = self.cfg.quiet.end
        delays = db.backoff_delays(1.0, 60.0, random.Random())
        task_status.started()
        while True:
            self.beat()
            now = self.clock()
            day = digest_day(now, self.cal, at)
            if day is not None:  # due today (or the daemon started after 08:30): queue it
                try:
                    conn = await db.connect(self.dsn, application_name="jiancha-digest",
                                            session=self.session)  # fmt: skip
                    async with conn:
                        added = await queue_digests(conn, self.cfg, self.cal, self.ruleset,
                                                    self.matters(), now, day)  # fmt: skip
                except db.DISCONNECTS as exc:  # the database is away: try again soon, not tomorrow
                    delay = delays()
                    self.log.warning("digest_postponed", day=day.isoformat(),
                                     error=f"{type(exc).__name__}: {exc}",
                                     retry_in_s=round(delay, 2))  # fmt: skip
                    await pause(delay, self.beat)
                    continue
                delays = db.backoff_delays(1.0, 60.0, random.Random())
                if added:
                    self.log.info("digest_queued", day=day.isoformat(), notifications=added)
                    if self.on_queued is not None:
                        self.on_queued()
            wake = next_digest(now, self.cal, at)
            ahead = real_seconds(self.clock, (wake - self.clock()).total_seconds())
            await pause(max(real_seconds(self.clock, 1.0), ahead), self.beat)
