"""``build_report``: the one door to a bulletin, for the command line now and the schedule next.

It reads the period, the one before (环比) and the same one a year earlier
(同比) through ``fetch`` and hands the rows to the pure ``assemble``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from monitor.log import get_logger
from monitor.report.fetch import fetch_centre_name, fetch_matter_names, fetch_rows
from monitor.report.model import Context, Report, assemble
from monitor.report.period import Kind, Period
from monitor.rules.model import ClockRule

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.db import Connection
    from monitor.rules.model import RuleSet

__all__ = ["DEFAULT_CENTRE", "build_report"]

DEFAULT_CENTRE = "政务服务中心"

log = get_logger(__name__)


async def build_report(
    conn: Connection,
    kind: Kind,
    period: Period,
    scope: str | None,
    now: dt.datetime,
    *,
    cal: Calendar | None = None,
    rules: RuleSet | None = None,
    centre: str | None = None,
    source: Connection | None = None,
    lang: str = "zh",
    matter_names: Mapping[str, str] | None = None,
) -> Report:
    """The bulletin of ``period`` for the centre (``scope`` None) or one department.

    ``source`` is the approval database, for the matters' names (else ``conn``'s
    ``matters`` when it is the same database, else the codes); ``matter_names``, when
    given, are those names already (the daemon's catalogue).
    """
    from monitor.calendar import load_calendar
    from monitor.rules.load import load_rules

    if period.kind != kind:
        raise ValueError(f"period {period.key} is not {kind}")
    cal = cal or load_calendar("cn")
    rules = rules or load_rules()
    current = await fetch_rows(conn, period.lo, period.hi)
    before, earlier = period.previous(), period.year_earlier()
    previous = await fetch_rows(conn, before.lo, before.hi, lists=False)
    year_ago = await fetch_rows(conn, earlier.lo, earlier.hi, lists=False)
    ctx = Context(
        centre=centre or await fetch_centre_name(conn) or DEFAULT_CENTRE,
        cal=cal,
        generated_at=now,
        matters=(
            matter_names if matter_names is not None else await fetch_matter_names(source or conn)
        ),
        rule_titles={r.rule: r.title(lang) for r in rules.rules},
        clock_rules=frozenset(r.rule for r in rules.rules if isinstance(r, ClockRule)),
        lang=lang,
    )
    report = assemble(period, scope, current, previous, year_ago, ctx)
    log.info(
        "report.built",
        kind=kind,
        period=period.key,
        scope=report.scope,
        accepted=report.figures.accepted,
        completed=report.figures.completed,
    )
    return report
