"""The schedule's work: build, store and queue a bulletin, exactly once per version and channel.

For a due period the ``Publisher`` builds the centre's bulletin and each
configured department's, stores each through ``publish`` (a new version
only when the figures changed) and, in the same transaction, queues one
outbox row per channel keyed ``report:KIND:PERIOD:SCOPE:vN:CHANNEL``: a
restart, a second leader or a replay finds the key and queues nothing. The
e-mail channels attach the PDF and the workbook at delivery (the sender
reads them from ``jiancha.report_files``); the robots get a short summary
with a link to the bulletin in the web console (``[web] base_url``).
It also looks again at the period before (the last one that had a
bulletin): late events there make a revision, delivered the same way.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from monitor import db
from monitor.log import get_logger
from monitor.outbox import escape
from monitor.outbox.message import Message
from monitor.outbox.render import payload
from monitor.report.build import build_report
from monitor.report.html import KIND_TITLES, title
from monitor.report.schedule import previous_due
from monitor.report.store import Stored, publish

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.config import NotifyConfig, ReportSchedule, ReportsConfig
    from monitor.report.model import Report
    from monitor.report.period import Period
    from monitor.rules.model import RuleSet

__all__ = ["Publisher", "delivery_key", "report_link", "report_message"]

log = get_logger(__name__)

_ENQUEUE = """
INSERT INTO jiancha.outbox (key, channel, kind, report_id, routed, payload, created_at,
                            not_before, next_attempt_at, give_up_at)
VALUES ($1, $2, 'report', $3, true, $4, $5::timestamptz, $5, $5, $5::timestamptz + $6::interval)
ON CONFLICT (key) DO NOTHING
"""
_STORED = "SELECT 1 FROM jiancha.reports WHERE kind = $1 AND period = $2 AND scope = $3"


def delivery_key(kind: str, period: str, scope: str, version: int, channel: str) -> str:
    """One delivery per bulletin version and channel, whoever queues it and how often."""
    return f"report:{kind}:{period}:{scope or '-'}:v{version}:{channel}"


def report_link(base_url: str, report_id: int) -> str:
    """The bulletin's page in the web console ('' without ``[web] base_url``)."""
    return f"{base_url}/reports/{report_id}" if base_url else ""


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def report_message(r: Report, report_id: int, link: str, lang: str = "zh",
                   to: tuple[str, ...] = ()) -> Message:  # fmt: skip
    """The short summary every channel sends; e-mails add the documents."""
    f = r.figures
    head = title(r, lang)
    changed = r.revision.changed if r.revision is not None else ()
    if lang == "en":
        head += f" (revision, version {r.version})" if r.revision else ""
        lines = [
            f"{f.accepted:,} accepted, {f.completed:,} completed; on time {_pct(f.on_time_rate)}, "
            f"early {_pct(f.early_rate)}; {f.overdue_open:,} overdue at the period's end.",
            f"Cards: {f.cards['red']} red, {f.cards['yellow']} yellow, {f.cards['blue']} blue; "
            f"satisfaction {_pct(f.satisfaction_rate)}.",
        ]
        if changed:
            lines.append(f"Late events changed {len(changed)} figure(s) of version "
                         f"{r.version - 1}; the documents list them.")  # fmt: skip
        more = f"The bulletin: {link}" if link else "The PDF and workbook are attached."
    else:
        head += f"（修订版·第 {r.version} 版）" if r.revision else ""
        lines = [
            f"受理 {f.accepted:,} 件，办结 {f.completed:,} 件，按期办结率 {_pct(f.on_time_rate)}，"
            f"提前办结率 {_pct(f.early_rate)}，期末超期 {f.overdue_open:,} 件。",
            f"发牌：红牌 {f.cards['red']} 张、黄牌 {f.cards['yellow']} 张、蓝牌 "
            f"{f.cards['blue']} 张；满意率 {_pct(f.satisfaction_rate)}。",
        ]
        if changed:
            lines.append(f"迟到的办件数据使第 {r.version - 1} 版中 {len(changed)} 项数字有变化，"
                         "详见报告中的修订说明。")  # fmt: skip
        more = f"查看报告：{link}" if link else "报告（PDF、Excel）见附件。"
    # Centre and department names are the configuration's or the source's: escaped
    text = "\n".join([escape.plain(head), *lines, more])
    md = "\n".join([f"### {escape.markdown(head)}", *lines,
                    f"[{'The bulletin' if lang == 'en' else '查看报告'}]({link})" if link
                    else more])  # fmt: skip
    body = "".join(f"<p>{html.escape(x)}</p>" for x in [*lines])
    if link:
        body += f'<p><a href="{html.escape(link)}">{html.escape(more)}</a></p>'
    fields = {"report_id": report_id, "kind": r.period.kind, "period": r.period.key,
              "scope": r.scope, "version": r.version, "link": link,
              "changed": len(changed)}  # fmt: skip
    return Message(key="", kind="report", title=escape.plain(head), text=text,
                   html=f"<h3>{html.escape(head)}</h3>{body}", fields=fields,
                   recipients=to, markdown=md)  # fmt: skip


class Publisher:
    """Builds, stores and queues the bulletins of a due period (the ``Bulletins``' work)."""

    def __init__(self, dsn: str, reports: ReportsConfig, notify: NotifyConfig, cal: Calendar,
                 rules: RuleSet, *, base_url: str = "", session: db.Session = db.OWN_SESSION,
                 matter_names: Callable[[], Mapping[str, str]] | None = None,
                 on_queued: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self.dsn = dsn
        self.reports = reports
        self.notify = notify
        self.cal = cal
        self.rules = rules
        self.base_url = base_url
        self.session = session
        self.matter_names = matter_names
        self.on_queued = on_queued
        self.queued = 0  # outbox rows queued by this publisher

    async def __call__(self, schedule: ReportSchedule, period: Period, now: dt.datetime,
                       catching_up: bool = False) -> None:  # fmt: skip
        """The bulletins of ``period``; catching up (a new term), only those never stored."""
        async with await db.connect(self.dsn, application_name="jiancha-reports",
                                    session=self.session) as conn:  # fmt: skip
            for scope in (None, *self.reports.departments):
                if catching_up and await conn.fetchval(_STORED, schedule.kind, period.key,
                                                       scope or ""):  # fmt: skip
                    continue
                await self.one(conn, schedule, period, scope, now)
                before = previous_due(schedule.kind, period, self.cal)  # type: ignore[arg-type]
                if await conn.fetchval(_STORED, schedule.kind, before.key, scope or ""):
                    await self.one(conn, schedule, before, scope, now)  # late events: a revision
        self.on_queued()

    async def one(self, conn: db.Connection, schedule: ReportSchedule, period: Period,
                  scope: str | None, now: dt.datetime) -> Stored:  # fmt: skip
        """One bulletin: stored if its figures are new, queued on each channel once."""
        lang = self.notify.language
        names = dict(self.matter_names()) if self.matter_names is not None else None
        r = await build_report(conn, schedule.kind, period, scope, now, cal=self.cal,  # type: ignore[arg-type]
                               rules=self.rules, centre=self.reports.centre, lang=lang,
                               matter_names=names)  # fmt: skip

        async def queue(c: db.Connection, s: Stored) -> None:
            assert s.report is not None
            message = report_message(s.report, s.id, report_link(self.base_url, s.id), lang,
                                     schedule.to)  # fmt: skip
            data = payload(message)
            for channel in schedule.channels:
                key = delivery_key(s.kind, s.period, s.scope, s.version, channel)
                done = await c.execute(_ENQUEUE, key, channel, s.id, data, now,
                                       self.notify.give_up_after)  # fmt: skip
                self.queued += int(done.split()[-1])

        stored = await publish(conn, r, lang=lang, formats=self.reports.formats, on_stored=queue)
        log.info("report.published", kind=schedule.kind, period=period.key,
                 scope=scope or "centre", version=stored.version, new=stored.new,
                 words=KIND_TITLES[schedule.kind][0])  # fmt: skip
        return stored
