"""Extensions asked in time, set-wise, equal the check one extension at a time (a property).

An extension moves the promised limit only when asked before the promised
deadline as it then stood (Art. 42; `[statute] extension_extends_promised`).
`asked_in_time` answers many cases' checks together, the k-th extension of
each in one calendar pass; it must give what the walk below gives, which is
the check as `periods` made it before (the deadline from `level_times`, one
extension and one case at a time). `deadlines_as_of` must give `level_times`'
deadline of each period clipped at its own instant.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.calendar import CalendarSpec, build_calendar, load_calendar
from monitor.clocks import periods as periods_module
from monitor.clocks.periods import asked_in_time, deadlines_as_of, in_time_for_the_set
from monitor.clocks.timing import DECISION_DEADLINE, Period, level_times
from tests.clocks.test_arrays import HOUR, T0, period

CN = load_calendar("cn")
OFFICE = load_calendar("example-centre")  # office hours: deadlines inside the day
BERLIN = build_calendar((CalendarSpec(name="b", timezone="Europe/Berlin"),), base="national")


def walk_deadline(cal, p: Period, at: int) -> int | None:
    before = tuple((s, e if e is not None and e <= at else at) for s, e in p.pauses if s < at)
    return level_times(cal, [replace(p, stop=None, pauses=before)], at)[0].deadline


def walk(cal, start, promised, pauses, asked):
    out: list[tuple[int, int]] = []
    for at, days in asked:
        p = Period("", DECISION_DEADLINE, "", start, None, promised, sum(d for _, d in out),
                   pauses)  # fmt: skip
        deadline = walk_deadline(cal, p, at)
        if deadline is not None and at < deadline:
            out.append((at, days))
    return tuple(out)


@st.composite
def check(draw: st.DrawFn):
    cal = draw(st.sampled_from([CN, OFFICE, BERLIN]))
    p = draw(period())
    at = p.start
    asked = []
    for _ in range(draw(st.integers(1, 3))):  # asked near the deadline: both answers occur
        at += draw(st.integers(0, 24 * 12)) * HOUR + draw(st.sampled_from([0, 1, 59]))
        asked.append((at, draw(st.sampled_from([5, 10, 15]))))
    return (cal, p.start, draw(st.integers(0, 12)), p.pauses, tuple(asked))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(check(), min_size=1, max_size=10))
def test_asked_in_time_set_wise_is_the_walk(keys) -> None:
    assert asked_in_time(keys) == [walk(*k) for k in keys]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ps=st.lists(period(), min_size=1, max_size=10), after=st.lists(st.integers(0, 24 * 60)))
def test_deadlines_as_of_many_are_each_periods(ps, after) -> None:
    ats = [p.start + (after[i % len(after)] if after else 0) * HOUR for i, p in enumerate(ps)]
    want = [walk_deadline(CN, p, a) for p, a in zip(ps, ats, strict=True)]
    assert deadlines_as_of(CN, ps, ats) == want


def test_both_answers_occur_and_a_set_is_answered_together(monkeypatch) -> None:
    """Not vacuous: some extensions in time, some late; and a collecting pass answers its
    checks in one call per extension rank, then the real pass finds them kept."""
    start = T0 + 10 * HOUR  # 2024-09-20, before National Day
    early, late = (start + 2 * 86400, 5), (start + 40 * 86400, 5)
    keys = [(CN, start, 5, (), (early,)), (CN, start, 5, (), (late,)),
            (CN, start + 7, 5, (), (early, late))]  # fmt: skip
    assert asked_in_time(keys) == [(early,), (), (early,)]
    calls: list[int] = []
    real = periods_module.deadlines_as_of
    monkeypatch.setattr(
        periods_module,
        "deadlines_as_of",
        lambda cal, ps, ats: calls.append(len(ps)) or real(cal, ps, ats),
    )
    periods_module._IN_TIME.clear()
    with in_time_for_the_set():
        got = [periods_module._in_time(*k) for k in keys]
    assert got == [k[4] for k in keys]  # provisional while collecting
    assert calls == [3, 1]  # the first extension of all three, then the second of one
    again = [periods_module._in_time(*k) for k in keys]
    assert again == [(early,), (), (early,)] and calls == [3, 1]  # kept: no more calls
