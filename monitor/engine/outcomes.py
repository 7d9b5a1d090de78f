"""How a finished case's decision clock ended: the figures' on-time and early rates."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from monitor.calendar import Calendar
from monitor.clocks.periods import periods
from monitor.clocks.timing import DECISION_DEADLINE, Period, from_epoch, level_times
from monitor.engine.cards import Outcome
from monitor.rules.model import Statute
from monitor.source.contract import Matter
from monitor.state.view import CaseView

__all__ = ["outcome_of", "outcomes_of"]

_STATUTE = Statute()


def outcome_of(
    case: CaseView, matter: Matter | None, cal: Calendar, statute: Statute = _STATUTE
) -> Outcome:
    """The promised deadline and how the decision clock ended: early, on_time or late.

    Early means finished before the deadline's day (提前办结); on time, before the
    deadline instant (按期办结). Independent of the card rules in force.
    """
    return outcomes_of([(case, matter)], cal, statute)[0]


def outcomes_of(
    cases: Sequence[tuple[CaseView, Matter | None]], cal: Calendar, statute: Statute = _STATUTE
) -> list[Outcome]:
    """`outcome_of` for many cases in one calendar pass (a daemon's start has thousands)."""
    out: list[Outcome] = [(None, "")] * len(cases)
    stopped: list[tuple[int, Period]] = []
    for i, (case, matter) in enumerate(cases):
        ps = periods(case, matter, [DECISION_DEADLINE], cal, statute)
        if ps and ps[0].stop is not None:
            stopped.append((i, ps[0]))
    if not stopped:
        return out
    # one `now` past every stop: each period is measured to its own stop
    later = max(p.stop for _, p in stopped if p.stop is not None)
    times = level_times(cal, [p for _, p in stopped], later)
    tz = zoneinfo.ZoneInfo(cal.timezone)
    for (i, p), tm in zip(stopped, times, strict=True):
        deadline, stop = tm.deadline, p.stop
        if deadline is None or stop is None:
            continue
        if stop >= deadline:
            out[i] = (deadline, "late")
            continue
        last_day = (from_epoch(deadline) - dt.timedelta(seconds=1)).astimezone(tz).date()
        early = from_epoch(stop).astimezone(tz).date() < last_day
        out[i] = (deadline, "early" if early else "on_time")
    return out
