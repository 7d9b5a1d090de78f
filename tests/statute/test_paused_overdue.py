"""A clock paused after its deadline stays red through the pause (docs/rule-book.md §3, §4):
the scheduler's kernel agrees with the engine's reference (`level_times`), on the
real cn calendar across the 2026 New Year holiday and its adjusted working Sunday."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.calendar import load_calendar
from monitor.clocks.scheduler import Scheduler
from monitor.clocks.timing import Period, level_times, threshold_row
from monitor.rules.load import load_rules
from monitor.rules.model import ClockRule

CN = load_calendar("cn")
CLOCK_RULES = [r for r in load_rules("cards").rules if isinstance(r, ClockRule)]
ACCEPTANCE = next(r for r in CLOCK_RULES if r.rule == "acceptance_time")
NAT = np.iinfo(np.int64).min


def utc(local: str) -> int:
    """A Beijing wall-clock time as UTC seconds."""
    return int(np.datetime64(local, "s").astype(np.int64)) - 8 * 3600


# acceptance_time 3 + 5 wd, started Thu 2025-12-18, overdue since 2025-12-30 24:00,
# paused at 00:57:36 on Wed 2025-12-31 with 8.04 wd used.
START = utc("2025-12-18T10:00")
PAUSE = utc("2025-12-31T00:57:36")
PERIOD = Period("C1", ACCEPTANCE, "", START, None, 3, 5, pauses=((PAUSE, None),))
DAYS = ["2025-12-31T12:00", "2026-01-01T12:00", "2026-01-03T12:00", "2026-01-04T12:00",
        "2026-01-05T12:00"]  # fmt: skip


def kernel_level(period: Period, closed: float, since: int, now: int) -> int:
    th = threshold_row(period.rule, period.allowed)
    level = np.empty(1, dtype=np.int8)
    nxt = np.empty(1, dtype=np.int64)
    CN.levels(
        np.array([period.start]), np.array([period.limit]), np.array([period.extension]),
        np.array([closed]), np.array([since]), now, th[:1], th[1:2], th[2:], level, nxt,
    )  # fmt: skip
    return int(level[0])


def test_reference_and_kernel_read_red_on_every_day_of_the_pause() -> None:
    for local in DAYS:
        now = utc(local)
        times = level_times(CN, [PERIOD], now)[0]
        assert times.due[3] == utc("2025-12-31T00:00")  # the deadline, before the pause
        assert times.upcoming is None
        assert (local, kernel_level(PERIOD, 0.0, PAUSE, now)) == (local, 3)


def test_scheduler_full_pass_wakes_on_a_red_not_yet_recorded_whatever_the_day() -> None:
    """A start's full pass hands the engine the case whose red is due but not recorded
    (highest level 2), on a working day as on a holiday; with red recorded, on none."""
    for highest, woken in ((2, ["C1"]), (3, [])):
        for local in DAYS:
            sched = Scheduler()
            sched.put({"C1": ([(PERIOD, 0.0, PAUSE, 0)], {(ACCEPTANCE.rule, ""): highest})})
            assert (local, sched.rising(CN, utc(local))) == (local, woken)
            assert sched.next_due is None  # paused: nothing to wake for


# Clocks started in the weeks before the 2026 New Year and Spring Festival, or anywhere.
starts = st.one_of(
    st.integers(utc("2025-12-01T00:00"), utc("2026-01-06T00:00")),
    st.integers(utc("2026-01-20T00:00"), utc("2026-03-01T00:00")),
    st.integers(utc("2005-01-01T00:00"), utc("2026-11-01T00:00")),
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CLOCK_RULES),
    starts,
    st.integers(0, 3 * 86400),  # a closed pause from the start, this long
    st.integers(1, 15),
    st.integers(0, 5),
    st.booleans(),  # the open pause begins near the deadline, or anywhere
    st.integers(-3 * 86400, 3 * 86400),  # how near
    st.integers(0, 40 * 86400),  # or this long after the start
    st.lists(st.integers(0, 30 * 86400), min_size=1, max_size=8),  # nows into the pause
)
def test_kernel_agrees_with_reference_during_a_pause(rule, start, closed_for, limit, ext,
                                                     near, delta, after, offsets):  # fmt: skip
    closed_end = start + closed_for
    edges = CN.working_days_between(
        np.array([start, start], dtype="datetime64[s]"),
        np.array([start, closed_end], dtype="datetime64[s]"),
    )
    if near:  # overdue by less than a day (or not yet): where the pushed deadline misled
        deadline = CN.deadline(np.datetime64(start, "s"),
                               int(np.ceil(limit + ext + edges[1] - 1e-7)))  # fmt: skip
        pause = max(int(deadline.astype(np.int64)) + delta, closed_end)
    else:
        pause = max(start + after, closed_end)
    period = Period("C1", rule, "", start, None, limit, ext,
                    pauses=((start, closed_end), (pause, None)))  # fmt: skip
    closed = float(edges[1] - edges[0])
    # before 00:00 after the start day the kernel counts a 0-wd threshold as reached and
    # the reference does not (a running clock's difference, not a pause's): from then on
    clock_start = int(CN.instant_at(np.datetime64(start, "s"), 0.0).astype(np.int64))
    for off in offsets:
        now = max(pause + off, clock_start)
        due = level_times(CN, [period], now)[0].due
        assert kernel_level(period, closed, pause, now) == max(due, default=0)
