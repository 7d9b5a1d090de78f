"""When a notification may go out: blue and yellow wait out quiet hours and rest days.

Red never waits. The next working morning is the calendar's, so a holiday
week or an adjusted working weekend moves it as it moves the clocks.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np

from monitor.calendar import Calendar
from monitor.config import NotifyConfig

__all__ = ["hold_until", "next_morning"]


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
