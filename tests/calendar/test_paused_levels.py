"""A paused clock's level holds through its pause (docs/rule-book.md §3: a pause freezes
the clock), on working days, weekends, holidays and adjusted working weekends alike."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.calendar import Calendar, load_calendar

CN = load_calendar("cn")
OFFICE = load_calendar("example-centre")
NAT = np.datetime64("NaT", "s")
HOUR = 3600


def utc(local: str) -> np.datetime64:
    """A Beijing wall-clock time as UTC seconds."""
    return np.datetime64(local, "s") - np.timedelta64(8, "h")


def defaults(allowed: int) -> tuple[float, float]:
    """rules/cards.toml's acceptance_time: blue 50%, yellow 90% or 1 wd left; red the deadline."""
    return 0.5 * allowed, min(0.9 * allowed, allowed - 1.0)


def levels_path(
    cal: Calendar,
    start: np.datetime64,
    limit: int,
    ext: int,
    paused: float,
    since: np.datetime64,
    now: np.datetime64,
) -> tuple[int, np.int64]:
    """`Calendar.levels`, the scheduler's entry, for one clock."""
    blue, yellow = defaults(limit + ext)
    level = np.empty(1, dtype=np.int8)
    nxt = np.empty(1, dtype=np.int64)
    bad = cal.levels(
        np.array([start.astype(np.int64)]), np.array([limit]), np.array([ext]),
        np.array([paused]), np.array([since.astype(np.int64)]), int(now.astype(np.int64)),
        np.array([blue]), np.array([yellow]), np.array([float(limit + ext)]), level, nxt,
    ).bad  # fmt: skip
    assert bad == 0
    return int(level[0]), nxt[0]


# The reported case: acceptance_time, 3 + 5 wd, started Thu 2025-12-18, paused at
# 00:57:36 on Wed 2025-12-31 with 8.04 wd used: overdue since 2025-12-30 24:00.
# 2026-01-01..03 is the New Year holiday, Sun 2026-01-04 an adjusted working day.
START = utc("2025-12-18T10:00")
PAUSE = utc("2025-12-31T00:57:36")
DURING = [
    "2025-12-31T00:57:36",  # the pause's first second
    "2025-12-31T12:00",  # the rest of that working day
    "2026-01-01T12:00",  # holiday
    "2026-01-03T23:59:59",  # holiday, a Saturday
    "2026-01-04T00:00:30",  # adjusted working Sunday, its first minute
    "2026-01-04T12:00",
    "2026-01-05T00:30",  # Monday, less than 0.04 wd in
    "2026-01-05T12:00",
    "2026-01-10T12:00",  # a plain Saturday
]


def test_overdue_clock_stays_red_through_its_pause() -> None:
    blue, yellow = defaults(8)
    running = CN.evaluate(START, 3, 5, 0.0, NAT, PAUSE, blue_at=blue, yellow_at=yellow)
    assert abs(float(running.consumed) - 8.04) < 1e-9
    assert int(running.level) == 3  # red since the deadline, 2025-12-30 24:00
    for local in DURING:
        now = utc(local)
        state = CN.evaluate(START, 3, 5, 0.0, PAUSE, now, blue_at=blue, yellow_at=yellow)
        assert (local, int(state.level)) == (local, 3)
        assert np.isnat(state.next_change)
        assert levels_path(CN, START, 3, 5, 0.0, PAUSE, now) == (3, np.iinfo(np.int64).min)


def test_yellow_clock_paused_stays_yellow_and_rises_after_it() -> None:
    """Paused at 7.5 wd (yellow, red at 8): no red in the pause, red once it ran 0.5 wd more."""
    pause = utc("2025-12-30T12:00")  # 7.5 wd used
    blue, yellow = defaults(8)
    for local in DURING[1:]:
        state = CN.evaluate(START, 3, 5, 0.0, pause, utc(local), blue_at=blue, yellow_at=yellow)
        assert (local, int(state.level)) == (local, 2)
        assert np.isnat(state.next_change)
    # resumed Mon 2026-01-05 00:00 with 2.5 wd paused (Dec 30 pm, Dec 31, Jan 4): the
    # deadline is the end of the working day holding 8 + 2.5 wd, Jan 5
    paused = float(CN.working_days_between(START, utc("2026-01-05T00:00"))
                   - CN.working_days_between(START, pause))  # fmt: skip
    assert abs(paused - 2.5) < 1e-9
    state = CN.evaluate(START, 3, 5, paused, NAT, utc("2026-01-05T09:00"), blue_at=blue,
                        yellow_at=yellow)  # fmt: skip
    assert int(state.level) == 2
    assert state.next_change == utc("2026-01-06T00:00")


# Pauses that begin near holidays and adjusted working weekends, and anywhere.
ANCHORS = [utc(d).astype(np.int64) for d in (
    "2024-02-01", "2024-02-15", "2025-09-25", "2025-10-09", "2025-12-25", "2026-02-10",
    "2026-02-25", "2025-04-24", "2025-06-28",
)]  # fmt: skip
anchored = st.builds(lambda a, d: int(a) + d, st.sampled_from(ANCHORS), st.integers(0, 14 * 86400))
anywhere = st.integers(int(utc("2002-01-01").astype(np.int64)),
                       int(utc("2096-01-01").astype(np.int64)))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([CN, OFFICE]),
    st.one_of(anchored, anywhere),  # the pause's start
    st.integers(0, 40 * 86400),  # the clock started this long before it
    st.integers(1, 20),
    st.integers(0, 10),
    st.integers(0, 5),  # closed pauses, whole working days
    st.lists(st.integers(0, 45 * 86400), min_size=1, max_size=30),  # nows into the pause
)
@example(CN, int(PAUSE.astype(np.int64)), 13 * 86400 - 3456 - 14 * HOUR, 3, 5, 0,
         [k * 6 * HOUR for k in range(30)])  # the reported case, every 6 hours  # fmt: skip
def test_paused_level_is_the_level_at_the_pause_start(cal, pause, before, limit, ext, closed,
                                                      offsets):  # fmt: skip
    """At every ``now`` during a pause the level is the one the running clock had when
    the pause began, and no rise is scheduled (only an event restarts the clock)."""
    p = np.datetime64(pause, "s")
    s = p - np.timedelta64(before, "s")
    blue, yellow = defaults(limit + ext)
    kw = {"blue_at": blue, "yellow_at": yellow}
    at_start = int(cal.evaluate(s, limit, ext, float(closed), NAT, p, **kw).level)
    nows = [p + np.timedelta64(o, "s") for o in offsets]
    for now in nows:
        state = cal.evaluate(s, limit, ext, float(closed), p, now, **kw)
        assert int(state.level) == at_start
        assert np.isnat(state.next_change)
        got = levels_path(cal, s, limit, ext, float(closed), p, now)
        assert got == (at_start, np.iinfo(np.int64).min)


def test_parallel_build_agrees() -> None:
    """The parallel build (16,384 clocks and more) reads the same frozen levels."""
    rng = np.random.default_rng(3)
    n = 20_000
    now = int(utc("2026-01-03T12:00").astype(np.int64))  # a holiday
    since = now - rng.integers(0, 30 * 86400, n)
    starts = since - rng.integers(0, 30 * 86400, n)
    limit = rng.integers(1, 20, n)
    ext = rng.integers(0, 6, n)
    closed = rng.integers(0, 4, n).astype(np.float64)
    allowed = (limit + ext).astype(np.float64)
    blue, yellow = 0.5 * allowed, np.minimum(0.9 * allowed, allowed - 1.0)
    args = (starts, limit, ext, closed, since)
    level = np.empty(n, dtype=np.int8)
    nxt = np.empty(n, dtype=np.int64)
    assert CN.levels(*args, now, blue, yellow, allowed, level, nxt).bad == 0
    assert (nxt == np.iinfo(np.int64).min).all()
    for i in rng.choice(n, 200, replace=False):
        s = np.datetime64(int(starts[i]), "s")
        p = np.datetime64(int(since[i]), "s")
        running = CN.evaluate(s, limit[i], ext[i], closed[i], NAT, p, blue_at=blue[i],
                              yellow_at=yellow[i])  # fmt: skip
        assert int(level[i]) == int(running.level)
    assert np.isin(level, [0, 1, 2, 3]).all() and len(np.unique(level)) == 4


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([CN, OFFICE]),
    st.one_of(anchored, anywhere),
    st.integers(0, 40 * 86400),
    st.integers(1, 20),
    st.floats(0.0, 4.0),  # closed pauses: any working time
    st.floats(0.05, 2.0),  # blue / yellow / red as shares of the limit, beyond it too
    st.floats(0.05, 2.0),
    st.floats(0.05, 2.0),
    st.lists(st.integers(0, 45 * 86400), min_size=2, max_size=20),
)
def test_paused_level_never_falls_and_rises_only_at_next_change(
    cal, pause, before, limit, closed, fb, fy, fr, offsets
):
    """With fractional pauses and thresholds beyond the limit a crossing made before the
    pause can wait for its working day's end: the level may rise then, at next_change,
    and never falls; it starts at the running clock's level."""
    p = np.datetime64(pause, "s")
    s = p - np.timedelta64(before, "s")
    b, y, r = sorted((fb * limit, fy * limit, fr * limit))
    kw = {"blue_at": b, "yellow_at": y, "red_at": r}
    at_start = cal.evaluate(s, limit, 0, closed, NAT, p, **kw)
    frozen = cal.evaluate(s, limit, 0, closed, p, p, **kw)
    assert int(frozen.level) == int(at_start.level)
    prev, nxt = int(frozen.level), frozen.next_change
    for o in sorted(offsets):
        now = p + np.timedelta64(o, "s")
        state = cal.evaluate(s, limit, 0, closed, p, now, **kw)
        level = int(state.level)
        assert level >= prev
        if level > prev:
            assert not np.isnat(nxt) and nxt <= now
            assert int(cal.evaluate(s, limit, 0, closed, p, nxt - np.timedelta64(1, "s"),
                                    **kw).level) == prev  # fmt: skip
            assert int(cal.evaluate(s, limit, 0, closed, p, nxt, **kw).level) > prev
        elif not np.isnat(nxt):
            assert nxt > now
        prev, nxt = level, state.next_change
