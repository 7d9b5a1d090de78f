"""The default mode's level kernel (``_levels24``) against the generic ``clock_kernel``.

``Calendar.levels`` sends calendars with one UTC offset, days counted to 24:00 and no
office hours to the specialised kernel; every other calendar to ``clock_kernel``. The
two must agree exactly (level and next-rise instant of every clock), on random tables
with every kind of threshold rules/cards.toml can express.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.calendar import (
    Calendar,
    CalendarSpec,
    _kernel,
    _levels24,
    build_calendar,
    load_calendar,
)

NAT = np.iinfo(np.int64).min
CN = load_calendar("cn")
OFFICE = load_calendar("example-centre")  # office hours: the generic kernel's
# the example centre's own days (its closing day), counted to 24:00: the default mode
CENTRE = build_calendar(
    (*OFFICE.specs, CalendarSpec(name="centre-24h", office_hours=())), base="national"
)
UTC_WEEKDAYS = build_calendar((CalendarSpec(name="utc", timezone="UTC"),), base="weekdays")
DEFAULT_MODE = [CN, CENTRE, UTC_WEEKDAYS]


def utc(local: str) -> int:
    """A Beijing wall-clock time as UTC seconds."""
    return int((np.datetime64(local, "s") - np.timedelta64(8, "h")).astype(np.int64))


# holidays, adjusted working weekends (2024-02-04, 2024-02-18, 2025-09-28, 2025-10-11,
# 2026-01-04) and the example centre's closing day (2025-12-31)
ANCHORS = [utc(d) for d in ("2024-02-01", "2024-02-15", "2025-09-25", "2025-10-09",
                            "2025-12-29", "2026-01-02", "2026-02-10", "2025-04-28")]  # fmt: skip
near = st.builds(lambda a, d: a + d, st.sampled_from(ANCHORS), st.integers(-20 * 86400, 20 * 86400))
anywhere = st.integers(utc("2002-01-01"), utc("2096-01-01"))
DAY = 86400


def thresholds(kind: int, allowed: float) -> float:
    """One threshold of each kind rules/cards.toml can write (rules/model.py)."""
    table = [
        np.nan,  # none
        0.5 * allowed,  # "50%"
        min(0.9 * allowed, max(allowed - 1.0, 0.0)),  # ["90%", "1wd left"]
        allowed,  # "deadline"
        allowed + 5.0,  # "deadline+5wd"
        min(3.0, allowed),  # "3wd" (capped like a ladder would be)
        3.0,  # "3wd" beyond a short limit
        max(allowed - 1.0, 0.0),  # "1wd left"
        0.9 * allowed,  # "90%": fractional
        allowed + 0.5,  # beyond the limit, fractional
        # crossings 8.6 µs after and before a whole second: the kernels' check of the
        # second before (when pauses are whole seconds, as most of the strategy's are)
        np.floor(0.37 * allowed * DAY) / DAY + 1e-6 + 1e-10,
        np.floor(0.37 * allowed * DAY) / DAY + 1e-6 - 1e-10,
    ]
    return table[kind]


clock = st.tuples(
    st.integers(-40 * DAY, 40 * DAY),  # start, relative to now (after now too)
    st.integers(0, 20),  # limit
    st.integers(0, 10),  # extension
    st.sampled_from([0.0, 0.0, 1.0, 2.0, 0.25, 1.75]) | st.floats(0.0, 4.0),  # closed pauses
    st.integers(0, 2),  # 0 running, 1 paused now, 2 pause set to start after now
    st.integers(0, 45 * DAY),  # where the open pause begins, from the start
    st.integers(0, 11),
    st.integers(0, 11),
    st.integers(0, 11),
)


def columns(now: int, rows: list[tuple[Any, ...]]) -> dict[str, npt.NDArray[Any]]:
    """The scheduler's columns (ClockTable dtypes) for ``rows`` of the ``clock`` strategy."""
    starts = np.array([now + r[0] for r in rows], dtype=np.int64)
    limits = np.array([r[1] for r in rows], dtype=np.int32)
    ext = np.array([r[2] for r in rows], dtype=np.int32)
    allowed = (limits + ext).astype(np.float64)
    since = np.full(len(rows), NAT, dtype=np.int64)
    for i, r in enumerate(rows):
        if r[4] == 1:
            since[i] = starts[i] + r[5]
        elif r[4] == 2:
            since[i] = now + 1 + r[5]
    th = np.array([[thresholds(k, a) for k in r[6:9]] for r, a in zip(rows, allowed, strict=True)])
    return {
        "starts": starts, "limits": limits, "extensions": ext,
        "paused": np.array([r[3] for r in rows], dtype=np.float64), "paused_since": since,
        "blue_at": np.ascontiguousarray(th[:, 0]), "yellow_at": np.ascontiguousarray(th[:, 1]),
        "red_at": np.ascontiguousarray(th[:, 2]),
    }  # fmt: skip


def generic(cal: Calendar, c: dict[str, Any], now: int, red: bool) -> tuple[Any, ...]:
    """``clock_kernel``'s level outputs (the reference) and its count of bad clocks."""
    n = c["starts"].shape[0]
    level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    tb = cal._t
    bad = _kernel.sized(_kernel.clock_kernel, n)(
        c["starts"], c["limits"], c["extensions"], c["paused"], c["paused_since"], now,
        None, None, None, None, tb.t0, tb.day_start_or_none, tb.trans, tb.shift,
        tb.oh_start, tb.oh_end, tb.oh_total, tb.cum, tb.pcum, tb.nth_end, tb.nth_pcum,
        tb.nth_day, c["blue_at"], c["yellow_at"], c["red_at"] if red else None, level, nxt,
    )  # fmt: skip
    return bad, level, nxt


def special(cal: Calendar, c: dict[str, Any], now: int) -> tuple[Any, ...]:
    """``_levels24``'s outputs (the parallel kernel, red explicit: its only compilation).

    Its two reductions are checked here, so every test of the outputs checks them too:
    the count of levels above an ``issued`` column (every value of it occurs) and the
    earliest next rise, against numpy over the outputs."""
    n = c["starts"].shape[0]
    level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    issued = (np.arange(n) % 4).astype(np.int8)
    tb = cal._t
    bad, rose, low = _levels24.levels24_kernel(
        c["starts"], c["limits"], c["extensions"], c["paused"], c["paused_since"], now,
        tb.t0, tb.ltab, tb.nth_day, c["blue_at"], c["yellow_at"], c["red_at"], issued,
        level, nxt,
    )  # fmt: skip
    assert rose == np.count_nonzero(level > issued)
    np.testing.assert_array_equal(
        _levels24.rows_above(level, issued, rose), np.flatnonzero(level > issued)
    )
    assert low == nxt.view(np.uint64).min()  # NaT (none) is 2**63 there
    return bad, level, nxt


def assert_same(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(DEFAULT_MODE),
    st.one_of(near, anywhere),
    st.lists(clock, min_size=1, max_size=40),
)
def test_specialised_kernel_is_the_generic_kernel(cal, now, rows):
    """Identical levels, next-rise instants and count of bad clocks (red at the deadline
    is one of the threshold kinds)."""
    c = columns(now, rows)
    assert_same(special(cal, c, now), generic(cal, c, now, True))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(DEFAULT_MODE),
    st.one_of(near, anywhere),
    st.lists(clock, min_size=1, max_size=20),
)
def test_levels_agrees_with_evaluate(cal, now, rows):
    """Through ``Calendar.levels`` (the scheduler's entry): the same as ``evaluate``'s levels,
    which always take the generic kernel."""
    c = columns(now, rows)
    n = len(rows)
    level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    bad = cal.levels(**c, now=now, level_out=level, next_out=nxt).bad
    assert_same((bad, level, nxt), generic(cal, c, now, True))
    state = cal.evaluate(
        c["starts"], c["limits"], c["extensions"], c["paused"],
        c["paused_since"].view("datetime64[s]"), np.datetime64(now, "s"), errors="nat",
        blue_at=c["blue_at"], yellow_at=c["yellow_at"], red_at=c["red_at"],
    )  # fmt: skip
    assert state.level is not None and state.next_change is not None
    np.testing.assert_array_equal(state.level, level)
    np.testing.assert_array_equal(state.next_change.view(np.int64), nxt)


def random_columns(rng: np.random.Generator, n: int, now: int) -> dict[str, npt.NDArray[Any]]:
    """A parallel-sized table: the bench's mix, with more pauses and every threshold kind."""
    starts = now - rng.integers(-5 * DAY, 40 * DAY, n)
    limits = rng.integers(0, 21, n).astype(np.int32)
    ext = np.where(rng.random(n) < 0.15, rng.integers(1, 11, n), 0).astype(np.int32)
    paused = np.where(rng.random(n) < 0.1, rng.uniform(0.05, 3.0, n), 0.0)
    since = np.full(n, NAT, dtype=np.int64)
    m = rng.random(n) < 0.1
    since[m] = starts[m] + rng.integers(0, 30 * DAY, int(m.sum()))
    allowed = (limits + ext).astype(np.float64)
    kinds = rng.integers(0, 12, (n, 3))
    th = np.array([[thresholds(int(k), a) for k in ks] for ks, a in zip(kinds, allowed,
                                                                         strict=True)])  # fmt: skip
    return {
        "starts": starts, "limits": limits, "extensions": ext, "paused": paused,
        "paused_since": since, "blue_at": np.ascontiguousarray(th[:, 0]),
        "yellow_at": np.ascontiguousarray(th[:, 1]), "red_at": np.ascontiguousarray(th[:, 2]),
    }  # fmt: skip


def test_parallel_kernels_agree() -> None:
    """Above SERIAL_BELOW both kernels run in parallel: still identical, at many nows."""
    rng = np.random.default_rng(24)
    n = _kernel.SERIAL_BELOW + 4_000
    for cal in DEFAULT_MODE:
        for now in (utc("2026-01-04T09:30"), utc("2025-10-01T00:00"), utc("2025-12-31T23:59:59")):
            c = random_columns(rng, n, now)
            want = generic(cal, c, now, True)
            assert_same(special(cal, c, now), want)
            assert len(np.unique(want[1])) == 4  # every level occurs: the mix is no corner


def test_out_of_range_clocks_are_unknown_in_both() -> None:
    """Starts outside the calendar, NaT starts, deadlines past 2100 and a ``now`` outside
    it: level -1, no next rise, counted as bad, exactly as the generic kernel does."""
    now = utc("2025-06-02T10:00")
    rows = [(-10 * DAY, 5, 0, 0.0, 0, 0, 1, 2, 3)] * 4  # red, when evaluable
    c = columns(now, rows)
    c["starts"][0] = NAT
    c["starts"][1] = utc("1999-06-01")
    c["limits"][2] = 2_000_000_000  # the deadline lies beyond 2100
    for cal in DEFAULT_MODE:
        got, want = special(cal, c, now), generic(cal, c, now, True)
        assert_same(got, want)
        assert got[0] == 3 and list(got[1]) == [-1, -1, -1, 3]
        late = utc("2101-01-02")
        assert_same(special(cal, c, late), generic(cal, c, late, True))
        assert special(cal, c, late)[0] == 4


def twin_calls(monkeypatch: Any) -> list[int]:
    """The sizes ``_levels24.levels24_kernel`` is called with from now on."""
    calls: list[int] = []
    kernel = _levels24.levels24_kernel

    def spy(*args: Any) -> Any:
        calls.append(args[0].shape[0])
        return kernel(*args)

    monkeypatch.setattr(_levels24, "levels24_kernel", spy)
    return calls


def test_dispatch_only_in_the_default_mode(monkeypatch: Any) -> None:
    """``Calendar.levels`` takes the specialised kernel for a parallel-sized pass in the
    default mode where it vectorises; office hours and offset changes keep the generic
    one, and so does a CPU without fast gathers (``vectorises`` False)."""
    assert OFFICE.office_hours and not CENTRE.office_hours and CENTRE._t.fixed
    berlin = build_calendar((CalendarSpec(name="b", timezone="Europe/Berlin"),), base="national")
    assert not berlin._t.fixed
    calls = twin_calls(monkeypatch)
    now = utc("2025-12-31T10:00")
    n = _kernel.SERIAL_BELOW
    c = random_columns(np.random.default_rng(5), n, now)
    for fast in (True, False):
        monkeypatch.setattr(_levels24, "vectorises", lambda fast=fast: fast)
        for cal in (CN, CENTRE, OFFICE, berlin):
            level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
            bad = cal.levels(**c, now=now, level_out=level, next_out=nxt).bad
            assert_same((bad, level, nxt), generic(cal, c, now, True))
        small = {k: v[:100] for k, v in c.items()}
        CN.levels(**small, now=now, level_out=level[:100], next_out=nxt[:100])
    assert calls == [n, n]  # CN and CENTRE, with fast gathers only
    monkeypatch.setattr(_levels24, "vectorises", lambda: True)
    level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    bad = CN.levels(**{**c, "red_at": None}, now=now, level_out=level, next_out=nxt).bad
    assert_same((bad, level, nxt), generic(CN, c, now, False))
    assert calls == [n, n]  # red at the deadline (no explicit red): the generic kernel
    # the example centre's own days: its office hours move the next rises
    level, nxt = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    OFFICE.levels(**c, now=now, level_out=level, next_out=nxt)
    assert not np.array_equal(nxt, special(CENTRE, c, now)[2])


def test_levels_counts_what_rose_and_finds_the_earliest(monkeypatch: Any) -> None:
    """``Calendar.levels`` given ``issued``: the same outputs, how many levels are above the
    ones issued and the earliest next rise, whichever kernel runs (the twin counts as it
    goes, the generic kernel's outputs are counted after); none when nothing will rise."""
    now = utc("2025-12-31T10:00")
    n = _kernel.SERIAL_BELOW
    c = random_columns(np.random.default_rng(7), n, now)
    rng = np.random.default_rng(8)
    for fast in (True, False):
        monkeypatch.setattr(_levels24, "vectorises", lambda fast=fast: fast)
        for cal in (CN, OFFICE):
            want_level, want_next = np.empty(n, np.int8), np.empty(n, np.int64)
            want = cal.levels(**c, now=now, level_out=want_level, next_out=want_next)
            for issued in (rng.integers(0, 4, n).astype(np.int8), np.full(n, 3, np.int8)):
                level, nxt = np.empty(n, np.int8), np.empty(n, np.int64)
                scan = cal.levels(**c, now=now, issued=issued, level_out=level, next_out=nxt)
                np.testing.assert_array_equal(level, want_level)
                np.testing.assert_array_equal(nxt, want_next)
                assert scan.bad == want.bad and want.rose.size == 0  # nothing issued given
                np.testing.assert_array_equal(scan.rose, np.flatnonzero(level > issued))
                assert scan.earliest == int(nxt[nxt != NAT].min()) > now
            assert scan.rose.size == 0  # red issued everywhere: nothing can rise above it
            late = utc("2101-01-02")  # beyond the calendar: nothing evaluable, nothing ahead
            scan = cal.levels(**c, now=late, issued=issued, level_out=level, next_out=nxt)
            assert (scan.bad, scan.rose.size, scan.earliest) == (n, 0, None)
            assert (level == -1).all()


def test_parallel_kernels_are_launched_from_the_main_thread_only(monkeypatch: Any) -> None:
    """A worker thread (the evaluator deciding a backlog's next chunk) takes the serial
    twins, so two threads never launch parallel kernels at once (numba's workqueue
    layer aborts the process then); the answers are the same."""
    import threading

    monkeypatch.setattr(_levels24, "vectorises", lambda: True)
    calls = twin_calls(monkeypatch)
    now = utc("2025-12-31T10:00")
    n = _kernel.SERIAL_BELOW
    c = random_columns(np.random.default_rng(9), n, now)
    got: dict[str, Any] = {}

    def run(key: str) -> None:
        level, nxt = np.empty(n, np.int8), np.empty(n, np.int64)
        bad = CN.levels(**c, now=now, level_out=level, next_out=nxt).bad
        got[key] = (bad, level, nxt)
        got[key + " kernel"] = _kernel.sized(_kernel.clock_kernel, n)

    worker = threading.Thread(target=run, args=("worker",))
    worker.start()
    worker.join()
    assert calls == [] and got["worker kernel"] is not _kernel.clock_kernel
    run("main")
    assert calls == [n] and got["main kernel"] is _kernel.clock_kernel
    assert_same(got["worker"], got["main"])


def test_the_level_kernel_computes_with_the_generic_kernels_tolerances() -> None:
    """``_levels24`` keeps copies of ``_kernel``'s tolerances (numba's cache would keep
    an imported one as it was when compiled, whatever ``_kernel`` says now): the copies
    must be ``_kernel``'s values, or the two kernels would round levels differently."""
    for name in ("_EPS", "_LEVEL_EPS", "_LEVEL_TOL", "_JUST_AFTER"):
        assert getattr(_levels24, name) == getattr(_kernel, name), name
    # and no number comes from _kernel but the fixed NaT and a size read in Python
    numbers = {n: v for n, v in vars(_levels24).items() if isinstance(v, (int, float, np.number))}
    taken = {n for n, v in numbers.items() if getattr(_kernel, n, None) is v}
    assert taken == {"NAT", "SERIAL_BELOW"}, taken
