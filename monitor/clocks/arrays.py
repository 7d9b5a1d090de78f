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
    threshold_consumed,
    threshold_row,
)

__all__ = ["PlainLevels", "level_times_set"]

_NONE = np.iinfo(np.int64).max  # "no instant" where a minimum is taken


class PlainLevels:
    """`level_times` of periods without pauses, as columns; a `LevelTimes` only when asked.

    ``top[i]`` is the highest level of period i due (0: none), ``card[i]`` the
    highest a card may be of (a stopped period: only levels at or past its
    limit), ``card_at[i]`` that level's instant and ``deadline[i]`` the
    deadline (None: none). The engine decides from these and makes a
    `LevelTimes` (`times`) only for a card it issues.
    """

    def __init__(self, cal: Calendar, ps: Sequence[Period], now: int) -> None:
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
                rows.append(threshold_row(p.rule, p.allowed))
                consumed.append(threshold_consumed(p.rule, p.allowed))
            idx.append(j)
        xs = np.vstack(rows)[np.asarray(idx, dtype=np.intp)] if n else np.empty((0, 3))
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
        # a finished period gets no warning, only a missed limit (`_clock_card`)
        cardable = due & (running[:, None] | (xs >= allowed[:, None] - 1e-6))
        levels = np.arange(1, 4, dtype=np.int64)
        top_card = np.where(cardable, levels, 0).max(axis=1)
        self.top: list[int] = np.where(due, levels, 0).max(axis=1).tolist()
        self.card: list[int] = top_card.tolist()
        self.card_at: list[int] = np.take_along_axis(
            at, np.maximum(top_card - 1, 0)[:, None], axis=1
        )[:, 0].tolist()
        # Python objects only from lists (a numpy scalar per item costs ~10x)
        self._at = np.where(due, at, _NONE).tolist()
        self._upcoming = np.where(ahead, at, _NONE).min(axis=1).tolist()
        self.deadline: list[int | None] = [None if d == NAT else d for d in got[:, 0].tolist()]
        self._consumed = [consumed[j] for j in idx]

    def times(self, i: int) -> LevelTimes:
        """Period i's `LevelTimes`, as `timing.level_times` gives it."""
        if self.top[i]:
            a1, a2, a3 = self._at[i]
            levels = {lv: a for lv, a in ((1, a1), (2, a2), (3, a3)) if a != _NONE}
        else:
            levels = {}
        up = self._upcoming[i]
        # the consumed row is shared by the periods of one (rule, limit): nothing writes it
        return LevelTimes(levels, None if up == _NONE else up, self.deadline[i],
                          self._consumed[i])  # fmt: skip


def level_times_set(cal: Calendar, periods_: Sequence[Period], now: int) -> list[LevelTimes]:
    """`timing.level_times`, the periods without pauses over arrays: the same answers."""
    plain = [i for i, p in enumerate(periods_) if not p.pauses]
    paused = [i for i, p in enumerate(periods_) if p.pauses]
    out: list[LevelTimes | None] = [None] * len(periods_)
    if plain:
        levels = PlainLevels(cal, [periods_[i] for i in plain], now)
        for k, i in enumerate(plain):
            out[i] = levels.times(k)
    if paused:
        got = level_times(cal, [periods_[i] for i in paused], now)
        for i, tm in zip(paused, got, strict=True):
            out[i] = tm
    return out  # type: ignore[return-value]  # every slot filled above
