"""Level times over arrays equal the Python walk's, period by period (a property).

`level_times_set` computes the periods without pauses over arrays and hands
the others to `level_times`; for random mixes of periods (every clock rule
of rules/cards.toml, limits 0-30 working days with extensions, starts at any
hour around holidays, stopped or running, deemed accepted later, with and
without pauses) both must give the same `LevelTimes`. `used_days_set` of
many periods must give each period's `used_days`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.calendar import load_calendar
from monitor.clocks.arrays import level_times_set
from monitor.clocks.timing import Period, level_times, used_days, used_days_set
from monitor.rules.load import load_rules
from monitor.rules.model import ClockRule

CAL = load_calendar("cn")
CLOCK_RULES = [r for r in load_rules("cards").rules if isinstance(r, ClockRule)]
T0 = int(dt.datetime(2024, 9, 20, 0, 0, tzinfo=dt.UTC).timestamp())  # National Day ahead
HOUR = 3600


@st.composite
def period(draw: st.DrawFn) -> Period:
    start = T0 + draw(st.integers(0, 24 * 40)) * HOUR + draw(st.sampled_from([0, 1, 1799]))
    stop = start + draw(st.integers(0, 24 * 60)) * HOUR if draw(st.booleans()) else None
    pauses: list[tuple[int, int | None]] = []
    if draw(st.integers(0, 3)) == 0:
        at = start
        for _ in range(draw(st.integers(1, 2))):
            at += draw(st.integers(1, 24 * 10)) * HOUR
            end = at + draw(st.integers(1, 24 * 10)) * HOUR if draw(st.booleans()) else None
            pauses.append((at, end))
            if end is None:
                break
            at = end
    not_before = start + draw(st.integers(0, 24 * 10)) * HOUR if draw(st.booleans()) else None
    extension = draw(st.sampled_from([0, 0, 5, 10]))
    return Period(f"C{draw(st.integers(0, 9))}", draw(st.sampled_from(CLOCK_RULES)), "", start,
                  stop, draw(st.integers(0, 30)), extension, tuple(pauses),
                  not_before)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ps=st.lists(period(), min_size=1, max_size=12), after=st.integers(0, 24 * 80))
def test_level_times_over_arrays_equal_the_walk(ps: list[Period], after: int) -> None:
    now = T0 + after * HOUR
    assert level_times_set(CAL, ps, now) == level_times(CAL, ps, now)


@settings(max_examples=100, deadline=None)
@given(ps=st.lists(period(), min_size=1, max_size=8), after=st.integers(0, 24 * 80))
def test_used_days_of_many_are_each_periods(ps: list[Period], after: int) -> None:
    nows = [T0 + (after + 7 * i) * HOUR for i in range(len(ps))]
    got = used_days_set(CAL, ps, nows).tolist()
    assert got == [used_days(CAL, p, now) for p, now in zip(ps, nows, strict=True)]


@settings(max_examples=100, deadline=None)
@given(ps=st.lists(period(), min_size=1, max_size=8), after=st.integers(0, 24 * 80))
def test_level_times_at_an_instant_each_are_each_periods(ps: list[Period], after: int) -> None:
    """One instant per period (cards judged each at its own, `decide._were_right`): one
    call answers as one call per period, the instants as a list or an array."""
    nows = [T0 + (after + 7 * i) * HOUR for i in range(len(ps))]
    each = [level_times(CAL, [p], now)[0] for p, now in zip(ps, nows, strict=True)]
    assert level_times(CAL, ps, nows) == each
    assert level_times(CAL, ps, np.asarray(nows, dtype=np.int64)) == each  # type: ignore[arg-type]


def test_the_mix_has_due_levels_and_crossings_ahead() -> None:
    """Not vacuous: on plain periods some levels are due, some ahead, some not yet known."""
    rule = next(r for r in CLOCK_RULES if r.rule == "decision_time")
    ps = [Period("A", rule, "", T0, None, 5, 0), Period("B", rule, "", T0 + 86400 * 9, None, 5, 0),
          Period("C", rule, "", T0, T0 + HOUR, 5, 0)]  # fmt: skip
    now = T0 + 86400 * 10
    got = level_times_set(CAL, ps, now)
    assert got == level_times(CAL, ps, now)
    assert got[0].due and got[1].upcoming is not None and not got[2].due
