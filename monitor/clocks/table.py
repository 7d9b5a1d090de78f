"""The open clocks as columns: what the kernel evaluates in one pass.

Every running period of every open case is one row. One pass of the
calendar kernel evaluates all rows at ``now`` and returns, per row, the
level due now and the next instant its level would rise; no timer polls
every case. Slots are reused as cases change.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from monitor.calendar import Calendar, earliest
from monitor.clocks.timing import NAT, Period, threshold_row

__all__ = ["ClockRow", "ClockTable"]

_GROW = 1.5
_EMPTY, _GONE = -1, -2  # index buckets: never used, and a dropped case (probing goes on)

ClockRow = tuple[Period, float, int, int]
"""(period, closed pause days, open pause start or NaT, level seen)."""


class _Owners(Sequence[tuple[str, str] | None]):
    """``table.owner[slot]``: (case, rule) of a slot, None when free; built on demand."""

    def __init__(self, table: ClockTable) -> None:
        self._t = table

    def __len__(self) -> int:
        return int(self._t.case_ix.shape[0])

    @overload
    def __getitem__(self, slot: int) -> tuple[str, str] | None: ...
    @overload
    def __getitem__(self, slot: slice) -> list[tuple[str, str] | None]: ...
    def __getitem__(self, slot: int | slice) -> Any:
        if isinstance(slot, slice):
            return [self._t.owner_of(s) for s in range(*slot.indices(len(self)))]
        return self._t.owner_of(slot)


class _CaseSlots(Mapping[str, list[int]]):
    """``table.by_case[case_id]``: the slots of a case's rows, in the order they were put."""

    def __init__(self, table: ClockTable) -> None:
        self._t = table

    def __getitem__(self, case_id: str) -> list[int]:
        ix = self._t._find(case_id)
        if ix < 0:
            raise KeyError(case_id)
        return self._t._chain(ix)

    def __len__(self) -> int:
        return self._t.cases()

    def __iter__(self) -> Iterator[str]:
        return (c for c in self._t._ids if c is not None)


class ClockTable:
    """Running periods as columns for the kernel; slots are reused as cases change.

    The bookkeeping is compact because a centre keeps millions of clocks open:
    per slot a case number and a rule number (int32, int16) and the next slot
    of the same case (int32, a chain); per case its id (the caller's string,
    kept once), its first slot, and a bucket of an open-addressing index
    (int32 case numbers, probed by the id's hash and checked against the id).
    A dict of id -> list of slots cost ~200 B per case in Python objects.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0  # high-water mark of used slots
        self._alloc(capacity)
        self.free: list[int] = []  # free slots below ``size``
        self.rows = 0  # slots in use (len(self)), kept rather than summed per snapshot
        self._ids: list[str | None] = []  # case number -> case id (None: number free)
        self._head = array("i")  # case number -> its first slot
        self._free_ids: list[int] = []
        self._index = array("i", [_EMPTY]) * 1024  # buckets: case number, _EMPTY or _GONE
        self._taken = 0  # buckets not _EMPTY (live and _GONE): probing ends at _EMPTY
        self._live = 0
        self._rules: list[str] = []  # rule number -> rule name
        self._rule_ix: dict[str, int] = {}
        self.owner = _Owners(self)
        self.by_case = _CaseSlots(self)

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
        self.case_ix = np.full(n, -1, dtype=np.int32)  # the slot's case number; -1: free
        self.rule_ix = np.zeros(n, dtype=np.int16)  # the slot's rule number
        self.next_slot = np.full(n, -1, dtype=np.int32)  # the case's next slot; -1: last

    def _arrays(self) -> tuple[npt.NDArray[Any], ...]:
        return (self.start, self.limit, self.ext, self.paused, self.since, self.th, self.issued,
                self.level, self.due, self.case_ix, self.rule_ix, self.next_slot)  # fmt: skip

    def _grow(self, need: int) -> None:
        cap = self.start.shape[0]
        if need <= cap:
            return
        new = max(need, int(cap * _GROW) + 16)
        old = self._arrays()
        self._alloc(new)
        for dst, src in zip(self._arrays(), old, strict=True):
            dst[..., : src.shape[-1]] = src

    def __len__(self) -> int:
        return self.rows

    def cases(self) -> int:
        return self._live

    # --- case id -> case number: open addressing, linear probing ---------------------

    def _find(self, case_id: str) -> int:
        """The case number of ``case_id``, -1 when it has no rows."""
        index, ids = self._index, self._ids
        mask = len(index) - 1
        b = hash(case_id) & mask
        while (ix := index[b]) != _EMPTY:
            if ix >= 0 and ids[ix] == case_id:
                return ix
            b = (b + 1) & mask
        return -1

    def _insert(self, case_id: str) -> int:
        """A new case number for ``case_id`` (known to be absent), indexed."""
        if (self._taken + 1) * 2 > len(self._index):
            self._rehash()
        if self._free_ids:
            ix = self._free_ids.pop()
            self._ids[ix] = case_id
        else:
            ix = len(self._ids)
            self._ids.append(case_id)
            self._head.append(-1)
        index = self._index
        mask = len(index) - 1
        b = hash(case_id) & mask
        while index[b] >= 0:  # a _GONE bucket is reused
            b = (b + 1) & mask
        if index[b] == _EMPTY:
            self._taken += 1
        index[b] = ix
        self._live += 1
        return ix

    def _remove(self, case_id: str, ix: int) -> None:
        index = self._index
        mask = len(index) - 1
        b = hash(case_id) & mask
        while index[b] != ix:
            b = (b + 1) & mask
        index[b] = _GONE
        self._ids[ix] = None
        self._head[ix] = -1
        self._free_ids.append(ix)
        self._live -= 1

    def _rehash(self) -> None:
        """Rebuild the index without _GONE buckets, at most a third full after (4-12 B a case)."""
        size = 1024
        while size < 3 * (self._live + 1):
            size *= 2
        index = array("i", [_EMPTY]) * size
        mask = size - 1
        for ix, case_id in enumerate(self._ids):
            if case_id is not None:
                b = hash(case_id) & mask
                while index[b] != _EMPTY:
                    b = (b + 1) & mask
                index[b] = ix
        self._index, self._taken = index, self._live

    # --- slots ---------------------------------------------------------------------------

    def _chain(self, ix: int) -> list[int]:
        out, slot, nxt = [], self._head[ix], self.next_slot
        while slot >= 0:
            out.append(slot)
            slot = int(nxt[slot])
        return out

    def owner_of(self, slot: int) -> tuple[str, str] | None:
        """(case, rule) of ``slot``; None when it is free."""
        ix = int(self.case_ix[slot])
        if ix < 0:
            return None
        case_id = self._ids[ix]
        assert case_id is not None
        return case_id, self._rules[int(self.rule_ix[slot])]

    def case_ids(self, slots: npt.NDArray[np.intp]) -> set[str]:
        """The cases owning ``slots`` (free slots ignored)."""
        ids = self._ids
        return {c for ix in np.unique(self.case_ix[slots]).tolist()
                if ix >= 0 and (c := ids[ix]) is not None}  # fmt: skip

    def owner_columns(self) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]:
        """(case, rule) of every slot below ``size`` as string arrays, "" for a free slot."""
        n = self.size
        ids = np.asarray([c or "" for c in self._ids] + [""], dtype=str)  # [-1]: a free slot
        rules = np.asarray([*self._rules, ""], dtype=str)
        cix = self.case_ix[:n]
        return ids[cix], np.where(cix >= 0, rules[self.rule_ix[:n]], "")

    def _rule_number(self, rule: str) -> int:
        n = self._rule_ix.get(rule)
        if n is None:
            n = self._rule_ix[rule] = len(self._rules)
            self._rules.append(rule)
        return n

    def _clear(self, slot: int) -> None:
        self.case_ix[slot] = -1
        self.next_slot[slot] = -1
        self.th[:, slot] = np.nan  # a free slot never comes due
        self.since[slot] = NAT
        self.issued[slot] = 0
        self.due[slot] = NAT
        self.free.append(slot)

    def _release(self, ix: int) -> None:
        """Free the slots of case number ``ix`` (the number stays the case's)."""
        for slot in self._chain(ix):
            self._clear(slot)
            self.rows -= 1
        self._head[ix] = -1

    def drop(self, case_id: str) -> None:
        ix = self._find(case_id)
        if ix >= 0:
            self._release(ix)
            self._remove(case_id, ix)

    def _slot(self) -> int:
        if self.free:
            return self.free.pop()
        self._grow(self.size + 1)
        self.size += 1
        return self.size - 1

    def attach(self, slot: int, case_id: str, rule: str) -> None:
        """Give ``slot`` (its columns already written, e.g. from a checkpoint) to a case."""
        ix = self._find(case_id)
        if ix < 0:
            ix = self._insert(case_id)
        self.case_ix[slot] = ix
        self.rule_ix[slot] = self._rule_number(rule)
        self.next_slot[slot] = self._head[ix]
        self._head[ix] = slot
        self.size = max(self.size, slot + 1)
        self.rows += 1

    def put(
        self,
        case_id: str,
        rows: Sequence[ClockRow],
        highest: Mapping[tuple[str, str], int],
    ) -> None:
        """Replace a case's rows: (period, closed pause days, open pause start, level seen).

        ``highest`` is the live level per (rule, subject).
        """
        ix = self._find(case_id)
        if not rows:
            if ix >= 0:
                self._release(ix)
                self._remove(case_id, ix)
            return
        if ix >= 0:
            self._release(ix)  # the case keeps its number and its bucket
        else:
            ix = self._insert(case_id)
        prev = -1
        for period, paused, since, seen in rows:
            slot = self._slot()
            rule = period.rule
            self.case_ix[slot] = ix
            self.rule_ix[slot] = self._rule_number(rule.rule)
            if prev < 0:  # next_slot is -1 already: a new or a cleared slot
                self._head[ix] = slot
            else:
                self.next_slot[prev] = slot
            prev = slot
            self.start[slot] = period.start
            self.limit[slot] = period.limit
            self.ext[slot] = period.extension
            self.paused[slot] = paused
            self.since[slot] = since
            self.th[:, slot] = threshold_row(rule, period.allowed)
            self.issued[slot] = max(highest.get((rule.rule, period.subject), 0), seen)
            self.due[slot] = 0  # new or changed: evaluated by the next pass, full or not
        self.rows += len(rows)

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
            scan = cal.levels(
                self.start[:n], self.limit[:n], self.ext[:n], self.paused[:n], self.since[:n],
                now, self.th[0, :n], self.th[1, :n], self.th[2, :n], self.level[:n],
                self.due[:n], issued=self.issued[:n],
            )  # fmt: skip
            return scan.rose, scan.earliest
        # NaT (int64 minimum) read as uint64 is the largest value: never due
        slots = np.flatnonzero(self.due[:n].view(np.uint64) <= np.uint64(now))
        level, nxt = self._levels_of(slots, cal, now)
        self.level[slots] = level
        self.due[slots] = nxt
        return slots[level > self.issued[slots]], earliest(self.due[:n])

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
        """The columns' bytes (per slot of capacity): what the kernel reads and the owners."""
        return sum(a.nbytes for a in self._arrays())

    def bookkeeping_bytes(self) -> int:
        """The case index's bytes beyond the columns (the id strings are the caller's)."""
        return (self._index.itemsize * len(self._index) + self._head.itemsize * len(self._head)
                + 8 * len(self._ids))  # fmt: skip
