"""The bulletin schedule on trio's MockClock: each bulletin at its time, on the working days.

April 2024 has Qingming: the 4th to the 6th off, Sunday the 7th a working
day. The schedule starts on Wednesday the 3rd at noon (a daemon that has
just come to lead), catches up what was due before (March's monthly and
week 13's weekly from Monday, Tuesday's daily), then runs each bulletin at
its configured local time: no daily on the holidays, one on the working
Sunday, week 14's weekly on Monday the 8th. The work it hands out is
recorded with the instant it was handed out; the clock is trio's, so the
five virtual days take a moment.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Any

import trio

from monitor.config import ReportSchedule
from monitor.report.apart import RenderFailed
from monitor.report.period import Period
from monitor.report.schedule import Bulletins, due_on, next_run

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
START = dt.datetime(2024, 4, 3, 12, 0, tzinfo=TZ)
SCHEDULES = (
    ReportSchedule("daily", dt.time(18, 0)),
    ReportSchedule("weekly", dt.time(8, 30)),
    ReportSchedule("monthly", dt.time(8, 30)),
)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 4, day, hour, minute, tzinfo=TZ)


async def test_each_bulletin_at_its_time_on_the_working_days(autojump_clock: Any, cal: Any
                                                             ) -> None:  # fmt: skip
    done: list[tuple[str, str, dt.datetime]] = []
    failures = {"daily 2024-04-07": 2}  # the database away twice: tried again a minute later

    def clock() -> dt.datetime:
        return START.astimezone(dt.UTC) + dt.timedelta(seconds=trio.current_time())

    async def work(s: ReportSchedule, p: Period, now: dt.datetime, catching_up: bool) -> None:
        assert catching_up == (now == START)
        key = f"{s.kind} {p.key}"
        if failures.get(key):
            failures[key] -= 1
            raise OSError("connection refused")
        done.append((s.kind, p.key, now.astimezone(TZ)))
        if s.kind == "weekly" and p.key == "2024-W14":
            await trio.sleep(600)  # a city's bulletin takes its time: the schedule beats on

    bulletins = Bulletins(SCHEDULES, cal, work, clock=clock, step=60.0)
    beats: list[float] = []
    bulletins.beat = lambda: beats.append(trio.current_time())
    with trio.move_on_after((local(8, 20) - START).total_seconds()):
        await bulletins.run()
    assert done == [
        ("monthly", "2024-03", START),  # catching up, at once
        ("weekly", "2024-W13", START),
        ("daily", "2024-04-02", START),
        ("daily", "2024-04-03", local(3, 18)),
        ("daily", "2024-04-07", local(7, 18, 2)),  # two failures, a minute apart each
        ("weekly", "2024-W14", local(8, 8, 30)),
        ("daily", "2024-04-08", local(8, 18)),
    ]
    assert bulletins.done == [(k, p) for k, p, _ in done]
    # alive all along, for the watchdog: a beat at least every step, sleeping or working
    assert max(b - a for a, b in itertools.pairwise(beats)) <= 60.0


def test_the_first_working_day_moves_with_the_holidays(cal: Any) -> None:
    tz = "Asia/Shanghai"
    # October 2024: National Day the 1st to the 7th; the monthly of September on the 8th
    assert due_on("monthly", dt.date(2024, 10, 1), cal, tz) is None
    p = due_on("monthly", dt.date(2024, 10, 8), cal, tz)
    assert p is not None and p.key == "2024-09"
    # Week 40 (30 Sep – 6 Oct): its first working day is Monday the 30th
    w = due_on("weekly", dt.date(2024, 9, 30), cal, tz)
    assert w is not None and w.key == "2024-W39"
    # the yearly of 2024 on Thursday 2 January 2025 (New Year's Day off)
    assert due_on("yearly", dt.date(2025, 1, 1), cal, tz) is None
    y = due_on("yearly", dt.date(2025, 1, 2), cal, tz)
    assert y is not None and y.key == "2024"
    # Sunday 29 September 2024 is a working day (made up for National Day): it has a daily;
    # the Saturday before it has none
    assert due_on("daily", dt.date(2024, 9, 29), cal, tz) is not None
    assert due_on("daily", dt.date(2024, 9, 28), cal, tz) is None
    after = dt.datetime(2024, 10, 1, 12, tzinfo=TZ)
    assert next_run(SCHEDULES, after, cal, tz) == dt.datetime(2024, 10, 8, 8, 30, tzinfo=TZ)


async def test_documents_that_failed_are_tried_again_then_given_up(autojump_clock: Any, cal: Any
                                                                   ) -> None:  # fmt: skip
    """A child that failed (killed for memory, stopped hanging) is tried again a minute
    later, three times in all; then the bulletin is given up, and the others go on."""
    tries: dict[str, list[dt.datetime]] = {}

    def clock() -> dt.datetime:
        return START.astimezone(dt.UTC) + dt.timedelta(seconds=trio.current_time())

    async def work(s: ReportSchedule, p: Period, now: dt.datetime, catching_up: bool) -> None:
        key = f"{s.kind} {p.key}"
        tries.setdefault(key, []).append(now.astimezone(TZ))
        if key == "monthly 2024-03" or (key == "daily 2024-04-02" and len(tries[key]) < 3):
            raise RenderFailed("report documents: exit -9: no message")

    bulletins = Bulletins(SCHEDULES, cal, work, clock=clock, step=60.0)
    with trio.move_on_after((local(3, 19) - START).total_seconds()):
        await bulletins.run()
    assert tries["monthly 2024-03"] == [START, local(3, 12, 1), local(3, 12, 2)]  # given up
    assert tries["daily 2024-04-02"] == [START, local(3, 12, 1), local(3, 12, 2)]  # third time
    assert bulletins.done == [("weekly", "2024-W13"), ("daily", "2024-04-02"),
                              ("daily", "2024-04-03")]  # fmt: skip
