"""The open clocks as columns: what the kernel evaluates in one pass.

Every running period of every open case is one row. One pass of the
calendar kernel evaluates all rows at ``now`` and returns, per row, the
level due now and the next instant its level would rise; no timer polls
every case. Slots are reused as cases change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.calendar import Calendar
from monitor.clocks.timing import NAT, Period, threshold_row

__all__ = ["ClockRow", "ClockTable", "earliest"]

_GROW = 1.5

ClockRow = tuple[Period, float, int, int]
"""(period, closed pause days, open pause start or NaT, level seen)."""


def earliest(instants: npt.NDArray[np.int64]) -> int | None:
    """The smallest instant, NaT (int64 minimum) ignored: as uint64, NaT sorts last."""
    if instants.size == 0:
        return None
    low = int(instants.view(np.uint64).min())
    return None if low == 1 << 63 else low


class ClockTable:
    """Running periods as columns for the kernel; slots are reused as cases change."""

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0  # high-water mark of used slots
        self._alloc(capacity)
        self.owner: list[tuple[str, str] | None] = [None] * capacity  # (case, rule) per slot
        self.by_case: dict[str, list[int]] = {}
        self.free: list[int] = []
        self.rows = 0  # slots in use (len(self)), kept rather than summed per snapshot

    def _alloc(self, n: int) -> None:
        self.start = np.zeros(n, dtype=np.int64)
        self.limit = np.zeros(n, dtype=np.int32)  # working days: int32 is plenty, and
        self.ext = np.zeros(n, dtype=np.int32)  # the pass reads 8 bytes less per clock
        self.paused = np.zeros(n, dtype=np.float64)
        self.since = np.full(n, NAT, dtype=np.int64)
        self.th = np.full((3, n), np.nan)  # blue, yellow, red: working days consumed
        self.issued = np.zeros(n, dtype=np.int8)  # highest level issued for the rule
        self.level = np.zeros(n, dtype=np.int8)  # level due at the row's last evaluation
        self.due = np.full(n, NAT, dtype=np.int64)  # when it next rises; 0: look at it now

    def _arrays(self) -> tuple[npt.NDArray[Any], ...]:
        return (self.start, self.limit, self.ext, self.paused, self.since, self.th, self.issued,
                self.level, self.due)  # fmt: skip

    def _grow(self, need: int) -> None:
        cap = self.start.shape[0]
        if need <= cap:
            return
        new = max(need, int(cap * _GROW) + 16)
        old = self._arrays()
        self._alloc(new)
        for dst, src in zip(self._arrays(), old, strict=True):
            dst[..., : src.shape[-1]] = src
        self.owner.extend([None] * (new - cap))

    def __len__(self) -> int:
        return self.rows

    def cases(self) -> int:
        return len(self.by_case)

    def _clear(self, slot: int) -> None:
        self.owner[slot] = None
        self.th[:, slot] = np.nan  # a free slot never comes due
        self.since[slot] = NAT
        self.issued[slot] = 0
        self.due[slot] = NAT
        self.free.append(slot)

    def drop(self, case_id: str) -> None:
        for slot in self.by_case.pop(case_id, []):
            self._clear(slot)
            self.rows -= 1

    def put(
        self,
        case_id: str,
        rows: Sequence[ClockRow],
        highest: Mapping[tuple[str, str], int],
    ) -> None:
        """Replace a case's rows: (period, closed pause days, open pause start, level seen).

        ``highest`` is the live level per (rule, subject).
        """
        self.drop(case_id)
        if not rows:
            return
        slots = []
        for period, paused, since, seen in rows:
            if self.free:
                slot = self.free.pop()
            else:
                self._grow(self.size + 1)
                slot = self.size
                self.size += 1
            rule = period.rule
            self.owner[slot] = (case_id, rule.rule)
            self.start[slot] = period.start
            self.limit[slot] = period.limit
            self.ext[slot] = period.extension
            self.paused[slot] = paused
            self.since[slot] = since
            self.th[:, slot] = threshold_row(rule, period.allowed)
            self.issued[slot] = max(highest.get((rule.rule, period.subject), 0), seen)
            self.due[slot] = 0  # new or changed: evaluated by the next pass, full or not
            slots.append(slot)
        self.by_case[case_id] = slots
        self.rows += len(slots)

    def evaluate(
        self, cal: Calendar, now: int, *, full: bool = True
    ) -> tuple[npt.NDArray[np.intp], int | None]:
        """Slots whose level rose above what was issued, and the next instant one will.

        A full pass evaluates every row. Otherwise only the rows whose known
        next rise is due (or that changed since): without an event a row's
        level changes only at that instant, so the others cannot have risen.
        """
        n = self.size
        if n == 0:
            return np.empty(0, dtype=np.intp), None
        if full:
            cal.levels(
                self.start[:n], self.limit[:n], self.ext[:n], self.paused[:n], self.since[:n],
                now, self.th[0, :n], self.th[1, :n], self.th[2, :n], self.level[:n],
                self.due[:n],
            )  # fmt: skip
            rose = np.flatnonzero(self.level[:n] > self.issued[:n])
        else:
            # NaT (int64 minimum) read as uint64 is the largest value: never due
            slots = np.flatnonzero(self.due[:n].view(np.uint64) <= np.uint64(now))
            level, nxt = self._levels_of(slots, cal, now)
            self.level[slots] = level
            self.due[slots] = nxt
            rose = slots[level > self.issued[slots]]
        return rose, earliest(self.due[:n])

    def _levels_of(
        self, slots: npt.NDArray[np.intp], cal: Calendar, now: int
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64]]:
        level = np.empty(slots.shape[0], dtype=np.int8)
        nxt = np.empty(slots.shape[0], dtype=np.int64)
        cal.levels(
            self.start[slots], self.limit[slots], self.ext[slots], self.paused[slots],
            self.since[slots], now, self.th[0, slots], self.th[1, slots], self.th[2, slots],
            level, nxt,
        )  # fmt: skip
        return level, nxt

    def mark_seen(self, slots: npt.NDArray[np.intp], cal: Calendar, now: int) -> None:
        """Rows the engine looked at and declined stay quiet until their level rises again."""
        if slots.size == 0:
            return
        level, nxt = self._levels_of(slots, cal, now)
        self.level[slots] = level
        self.due[slots] = nxt
        self.issued[slots] = np.maximum(self.issued[slots], level)

    def memory_bytes(self) -> int:
        return sum(a.nbytes for a in self._arrays())
