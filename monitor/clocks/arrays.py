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
import numpy.typing as npt

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
    # the thresholds of each (rule, limit) once: a batch has a few dozen of them
    which: dict[tuple[int, int], int] = {}
    rows: list[npt.NDArray[np.float64]] = []
    consumed: list[dict[int, float]] = []
    idx = []
    for p in ps:
        key = (id(p.rule), p.allowed)
        j = which.get(key)
        if j is None:
            j = which[key] = len(rows)
            row = threshold_row(p.rule, p.allowed)
            rows.append(row)
            consumed.append({lv: float(row[lv - 1]) for lv in (1, 2, 3)
                             if not np.isnan(row[lv - 1])})  # fmt: skip
        idx.append(j)
    xs = np.vstack(rows)[np.asarray(idx, dtype=np.intp)]  # (n, 3), NaN: no level
    start = np.fromiter((p.start for p in ps), np.int64, n)
    allowed = np.fromiter((p.allowed for p in ps), np.float64, n)
    floor = np.fromiter((p.start if p.not_before is None else max(p.start, p.not_before)
                         for p in ps), np.int64, n)  # fmt: skip
    stop = np.fromiter((NAT if p.stop is None else p.stop for p in ps), np.int64, n)
    # column 0 the deadline (every level at the limit counts like one), 1-3 the levels
    pos = np.column_stack([allowed, xs])
    like = pos >= allowed[:, None] - 1e-6
    r, c = np.nonzero(~np.isnan(pos))
    got = np.full(pos.shape, NAT, dtype=np.int64)
    got[r, c] = instants_of(cal, start[r], pos[r, c], like[r, c])
    running = stop == NAT
    limit = np.where(running, now, np.minimum(now, stop))
    at = np.maximum(got[:, 1:], floor[:, None])  # no level dated before its floor
    known = got[:, 1:] != NAT
    due = known & (at <= limit[:, None])
    ahead = known & ~due & running[:, None]
    # Python objects only at the end, from lists (a numpy scalar per item costs ~10x)
    at_l = np.where(due, at, _NONE).tolist()
    some = due.any(axis=1).tolist()
    upcoming = np.where(ahead, at, _NONE).min(axis=1).tolist()
    deadline = got[:, 0].tolist()
    out = []
    for i in range(n):
        if some[i]:
            a1, a2, a3 = at_l[i]
            levels = {lv: a for lv, a in ((1, a1), (2, a2), (3, a3)) if a != _NONE}
        else:
            levels = {}
        up, dl = upcoming[i], deadline[i]
        # the consumed row is shared by the periods of one (rule, limit): nothing writes it
        out.append(LevelTimes(levels, None if up == _NONE else up, None if dl == NAT else dl,
                              consumed[idx[i]]))  # fmt: skip
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
