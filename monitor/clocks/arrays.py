"""`level_times` of many periods over arrays: the set-wise path.

``monitor.clocks.timing`` walks each period and each level in Python, which
is what a batch of thousands of cases pays for. Most periods have no pause:
for them a level's crossing is its threshold itself, the deadline is the
limit, and every instant of every level of every such period comes from one
calendar call and a few numpy operations. Periods with pauses go through
`timing.level_times` (one calendar pass for all of them). The Python walk
stays the reference: tests/clocks/test_arrays.py holds both to the same
answers, and tests/engine/test_setwise.py the decisions built on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.calendar import Calendar
from monitor.clocks.timing import (
    NAT,
    LevelTimes,
    Period,
    instants_of,
    level_times,
    threshold_row,
)

__all__ = ["level_times_set"]

_NONE = np.iinfo(np.int64).max  # "no instant" where a minimum is taken


def _plain_times(cal: Calendar, ps: Sequence[Period], now: int) -> list[LevelTimes]:
    """`level_times` of periods without pauses: the deadline and three levels per period."""
    n = len(ps)
    start = np.fromiter((p.start for p in ps), np.int64, n)
    allowed = np.fromiter((p.allowed for p in ps), np.float64, n)
    floor = np.fromiter((p.start if p.not_before is None else max(p.start, p.not_before)
                         for p in ps), np.int64, n)  # fmt: skip
    stop = np.fromiter((NAT if p.stop is None else p.stop for p in ps), np.int64, n)
    xs = np.vstack([threshold_row(p.rule, p.allowed) for p in ps])  # (n, 3), NaN: no level
    # column 0 the deadline (every level at the limit counts like one), 1-3 the levels
    pos = np.column_stack([allowed, xs])
    have = ~np.isnan(pos)
    like = pos >= allowed[:, None] - 1e-6
    rows, cols = np.nonzero(have)
    got = np.full(pos.shape, NAT, dtype=np.int64)
    got[rows, cols] = instants_of(cal, start[rows], pos[rows, cols], like[rows, cols])
    running = stop == NAT
    limit = np.where(running, now, np.minimum(now, stop))
    at = np.maximum(got[:, 1:], floor[:, None])  # no level dated before its floor
    known = got[:, 1:] != NAT
    due = known & (at <= limit[:, None])
    ahead = known & ~due & running[:, None]
    upcoming = np.where(ahead, at, _NONE).min(axis=1)
    deadline = got[:, 0].tolist()
    at_l, due_l, up_l, xs_l = at.tolist(), due.tolist(), upcoming.tolist(), xs.tolist()
    out = []
    for i in range(n):
        a, d, x = at_l[i], due_l[i], xs_l[i]
        out.append(LevelTimes(
            {lv: a[lv - 1] for lv in (1, 2, 3) if d[lv - 1]},
            None if up_l[i] == _NONE else up_l[i],
            None if deadline[i] == NAT else deadline[i],
            {lv: x[lv - 1] for lv in (1, 2, 3) if x[lv - 1] == x[lv - 1]},  # not NaN
        ))  # fmt: skip
    return out


def level_times_set(cal: Calendar, periods_: Sequence[Period], now: int) -> list[LevelTimes]:
    """`timing.level_times`, the periods without pauses over arrays: the same answers."""
    plain = [i for i, p in enumerate(periods_) if not p.pauses]
    paused = [i for i, p in enumerate(periods_) if p.pauses]
    out: list[LevelTimes | None] = [None] * len(periods_)
    if plain:
        for i, tm in zip(plain, _plain_times(cal, [periods_[i] for i in plain], now), strict=True):
            out[i] = tm
    if paused:
        got = level_times(cal, [periods_[i] for i in paused], now)
        for i, tm in zip(paused, got, strict=True):
            out[i] = tm
    return out  # type: ignore[return-value]  # every slot filled above
