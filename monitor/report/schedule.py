"""When the daemon makes each bulletin (``[reports.KIND] at``), on the working-day calendar.

The daily after close of business on each working day (its own day); the
weekly on the first working day of the ISO week (the week before); the
monthly on the first working day of the month (the month before); the
yearly on the first working day of the year. "Working day" is the
calendar's (monitor.calendar): a Sunday made a working day by the holiday
notice gets its daily, a Golden Week moves the monthly to the 8th.

The timing is pure (``due_on``, ``runs_between``, ``next_run``);
``Bulletins`` is the thin loop the leader runs beside its other tasks: it
sleeps on the injected clock until the next run, hands each due (schedule,
period) to its ``work`` (``monitor.report.deliver.Publisher``), and on start
catches up the latest run of each kind that may have been missed while no
daemon led (``work`` is idempotent: a stored bulletin is not stored again).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import trio

from monitor import db
from monitor.health import pause
from monitor.log import get_logger
from monitor.report.apart import RenderFailed
from monitor.report.period import Kind, Period, containing
from monitor.wallclock import Clock, real_seconds

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.config import ReportSchedule

__all__ = ["Bulletins", "Run", "due_on", "next_run", "previous_due", "runs_between"]

Run = tuple[dt.datetime, "ReportSchedule", Period]  # when, what, which period
# (schedule, period, now, catching_up): catching up, a bulletin already stored is left alone
Work = Callable[["ReportSchedule", Period, dt.datetime, bool], Awaitable[None]]

log = get_logger(__name__)
_HORIZON = 400  # days searched for the next run (a year, and Spring Festival to spare)
RETRY = 60.0  # seconds before a failed run is tried again
RENDER_TRIES = 3  # a child that failed to make the documents: tried this often in all


def _working(cal: Calendar, day: dt.date) -> bool:
    """The calendar's answer; outside its years, Monday to Friday."""
    from monitor.calendar import CalendarError

    try:
        return bool(cal.is_workday(np.datetime64(day.isoformat(), "D")))
    except CalendarError:
        return day.weekday() < 5


def _first_working(cal: Calendar, p: Period) -> dt.date:
    """The first working day of a period (its first day if it has none)."""
    day = p.first
    while day < p.after:
        if _working(cal, day):
            return day
        day += dt.timedelta(days=1)
    return p.first


def due_on(kind: Kind, day: dt.date, cal: Calendar, tz: str) -> Period | None:
    """The period whose bulletin is due on local ``day``, if any."""
    if kind == "daily":
        return containing("daily", day, tz) if _working(cal, day) else None
    here = containing(kind, day, tz)
    return here.previous() if _first_working(cal, here) == day else None


def previous_due(kind: Kind, p: Period, cal: Calendar) -> Period:
    """The period of the bulletin due before ``p``'s: for the daily, the last working day."""
    before = p.previous()
    if kind == "daily":
        for _ in range(_HORIZON):
            if _working(cal, before.first):
                break
            before = before.previous()
    return before


def _instant(day: dt.date, at: dt.time, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, at, zoneinfo.ZoneInfo(tz)).astimezone(dt.UTC)


def runs_between(
    schedules: Sequence[ReportSchedule],
    since: dt.datetime,
    until: dt.datetime,
    cal: Calendar,
    tz: str,
) -> list[Run]:
    """The runs due in (since, until], in order."""
    out: list[Run] = []
    zone = zoneinfo.ZoneInfo(tz)
    day = since.astimezone(zone).date()
    last = until.astimezone(zone).date()
    while day <= last:
        for s in schedules:
            p = due_on(s.kind, day, cal, tz)  # type: ignore[arg-type]
            when = _instant(day, s.at, tz)
            if p is not None and since < when <= until:
                out.append((when, s, p))
        day += dt.timedelta(days=1)
    return sorted(out, key=lambda r: (r[0], r[1].kind))


def next_run(
    schedules: Sequence[ReportSchedule], after: dt.datetime, cal: Calendar, tz: str
) -> dt.datetime | None:
    """The first run after ``after`` (None: no schedules)."""
    zone = zoneinfo.ZoneInfo(tz)
    day = after.astimezone(zone).date()
    for _ in range(_HORIZON):
        found = runs_between(schedules, after, _instant(day + dt.timedelta(days=1),
                                                        dt.time(), tz), cal, tz)  # fmt: skip
        if found:
            return found[0][0]
        day += dt.timedelta(days=1)
    return None


def latest_runs(
    schedules: Sequence[ReportSchedule], now: dt.datetime, cal: Calendar, tz: str
) -> list[Run]:
    """Each schedule's last run at or before ``now``: what a daemon just come to lead owes."""
    out = []
    zone = zoneinfo.ZoneInfo(tz)
    for s in schedules:
        day = now.astimezone(zone).date()
        for _ in range(_HORIZON):
            p = due_on(s.kind, day, cal, tz)  # type: ignore[arg-type]
            if p is not None and _instant(day, s.at, tz) <= now:
                out.append((_instant(day, s.at, tz), s, p))
                break
            day -= dt.timedelta(days=1)
    return sorted(out, key=lambda r: (r[0], r[1].kind))


class Bulletins:
    """The leader's bulletin schedule: sleep to the next run, do it, never twice in a term."""

    def __init__(self, schedules: Sequence[ReportSchedule], cal: Calendar, work: Work, *,
                 clock: Clock, tz: str = "Asia/Shanghai", step: float = 1.0) -> None:  # fmt: skip
        self.schedules = tuple(schedules)
        self.cal = cal
        self.work = work
        self.clock = clock
        self.tz = tz
        self.step = step  # the heartbeat's period while sleeping
        self.beat: Callable[[], None] = lambda: None
        self.done: list[tuple[str, str]] = []  # (kind, period) run in this term, in order
        self._render_failures: dict[tuple[str, str], int] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled: catch up, then each run at its time; a failed run is retried."""
        task_status.started()
        now = self.clock()
        pending = [(*run, True) for run in latest_runs(self.schedules, now, self.cal, self.tz)]
        last = now
        while True:
            self.beat()
            failed = []
            for run in pending:
                if not await self._do(run[:3], catching_up=run[3]):
                    failed.append(run)
            pending = failed
            nxt = next_run(self.schedules, last, self.cal, self.tz)
            wait = None if nxt is None else (nxt - self.clock()).total_seconds()
            if failed:
                wait = RETRY if wait is None else min(wait, RETRY)
            if wait is None:  # no schedules (yet: a reload may add some)
                wait = RETRY
            await pause(real_seconds(self.clock, max(0.0, wait or 0.0)), self.beat, self.step)
            now = self.clock()
            pending += [(*run, False) for run in runs_between(self.schedules, last, now,
                                                              self.cal, self.tz)]  # fmt: skip
            last = now

    async def _do(self, run: Run, *, catching_up: bool) -> bool:
        """One run; False if it must be tried again (the database away)."""
        _, s, p = run
        try:
            await self._beating(s, p, catching_up)
        except db.DISCONNECTS as exc:
            log.warning("report.run_failed", kind=s.kind, period=p.key,
                        error=f"{type(exc).__name__}: {exc}", retry_in_s=RETRY)  # fmt: skip
            return False
        except RenderFailed as exc:  # killed for memory, stopped hanging: may pass next time
            key = (s.kind, p.key)
            tries = self._render_failures[key] = self._render_failures.get(key, 0) + 1
            if tries < RENDER_TRIES:
                log.warning("report.render_failed", kind=s.kind, period=p.key, error=str(exc),
                            tries=tries, retry_in_s=RETRY)  # fmt: skip
                return False
            log.error("report.render_gave_up", kind=s.kind, period=p.key, error=str(exc),
                      tries=tries)  # fmt: skip
            return True
        except Exception as exc:  # a bulletin's bug must not stop the daemon's other work
            log.error("report.run_error", kind=s.kind, period=p.key,
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return True
        self.done.append((s.kind, p.key))
        return True

    async def _beating(self, s: ReportSchedule, p: Period, catching_up: bool) -> None:
        """The work, beating meanwhile: a city's monthly takes longer than the watchdog's bound."""
        failure: Exception | None = None

        async def beat() -> None:
            while True:
                self.beat()
                await trio.sleep(self.step)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(beat)
            try:
                await self.work(s, p, self.clock(), catching_up)
            except Exception as exc:  # re-raised below, not wrapped in an exception group
                failure = exc
            finally:
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
