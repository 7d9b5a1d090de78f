"""When the next card can come due, and which cases to look at then.

The daemon sleeps until the earliest instant any open clock's level rises
(or the next event batch), then hands only the cases whose level rose to
the engine. The scheduler owns the clock table and that timing; it decides
nothing about cards and does no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from monitor.calendar import Calendar, earliest
from monitor.clocks.table import ClockRow, ClockTable
from monitor.clocks.timing import NAT, Pauses, Period

__all__ = ["Scheduler", "row_of"]


def row_of(period: Period, pauses: Pauses, now: int) -> ClockRow:
    """A running period as a table row: its closed pauses' working days, its open pause."""
    closed = sum(b - a for a, b, still_open in pauses if not still_open)
    since = next((ps for (ps, pe) in period.pauses if pe is None and ps < now), NAT)
    return (period, closed, since, 0)


class Scheduler:
    """The clock tables and the instants they next need a look.

    ``table`` holds the cases counted on the centre's calendar; a region with
    a calendar of its own (`monitor.calendar.regions`) has a table of its own,
    evaluated on that calendar, keyed by the region prefix.
    """

    def __init__(self) -> None:
        self.table = ClockTable()
        self.regional: dict[str, ClockTable] = {}
        self.wakes: dict[str, int] = {}  # case -> an instant the engine asked to look again
        self.next_due: int | None = None  # UTC seconds of the next crossing
        self.next_reply: int | None = None  # next supervision-order reply deadline
        self.dirty = True  # rows changed since the last pass: their levels need a look
        self.full = True  # the next pass evaluates every row (after a start or a reload)

    def reset(self, table: ClockTable | None = None) -> None:
        """A new table (empty, or a checkpoint's): the next pass looks at every row."""
        self.table = table if table is not None else ClockTable()
        if table is None:
            self.regional, self.wakes = {}, {}
        self.dirty = True
        self.full = True

    def put(
        self,
        rows: Mapping[str, tuple[Sequence[ClockRow], Mapping[tuple[str, str], int]]],
        where: Mapping[str, str] | None = None,
        wakes: Mapping[str, int | None] | None = None,
    ) -> None:
        """Committed decisions: each case's running rows and the highest level per rule.

        ``where`` names the regional table of a case ("" or absent: the
        centre's). New rows wait with due = 0: the next pass (an incremental
        one) evaluates them and folds their crossings into ``next_due``.
        """
        for case_id, (case_rows, highest) in rows.items():
            key = (where or {}).get(case_id, "")
            if key or self.regional:
                self.drop([case_id])  # its region's calendar may have changed
            table = self.table if not key else self.regional.setdefault(key, ClockTable())
            table.put(case_id, case_rows, highest)
        for case_id, at in (wakes or {}).items():
            if at is None:
                self.wakes.pop(case_id, None)
            else:
                self.wakes[case_id] = at
        if rows:
            self.dirty = True

    def put_settled(
        self,
        rows: Mapping[str, tuple[Sequence[ClockRow], Mapping[tuple[str, str], int]]],
        where: Mapping[str, str],
        wakes: Mapping[str, int | None],
        cal: Calendar,
        now: int,
        regional: Mapping[str, Calendar] | None = None,
    ) -> None:
        """Decisions made as a pass would make them at ``now`` (a live batch's): put and
        settled, so no pass need look at them; the instants they ask for fold into the next.

        A pass after every live batch was a transaction of five round trips in the way of
        the next batch, with nothing to do.
        """
        dirty = self.dirty
        self.put(rows, where, wakes)
        self.settle(list(rows), cal, now, regional)
        self.dirty = dirty
        for at in wakes.values():
            if at is not None and (self.next_due is None or at < self.next_due):
                self.next_due = at

    def drop(self, case_ids: Iterable[str]) -> None:
        tables = self.tables()
        for case_id in case_ids:
            for _, table in tables:
                table.drop(case_id)
            self.wakes.pop(case_id, None)

    def tables(self) -> list[tuple[str, ClockTable]]:
        return [("", self.table), *self.regional.items()]

    def rows(self) -> int:
        """Open clocks in every table."""
        return sum(len(t) for _, t in self.tables())

    def rising(
        self, cal: Calendar, now: int, regional: Mapping[str, Calendar] | None = None
    ) -> list[str]:
        """One kernel pass at ``now``: the cases with a row whose level rose (sorted)."""
        cases: set[str] = set()
        dues: list[int] = []
        for key, table in self.tables():
            rose, nd = table.evaluate((regional or {}).get(key, cal), now, full=self.full)
            if nd is not None:
                dues.append(nd)
            cases.update(table.case_ids(rose))
        for case_id, at in list(self.wakes.items()):
            if at <= now:
                cases.add(case_id)
                del self.wakes[case_id]
            else:
                dues.append(at)
        self.next_due = min(dues, default=None)
        self.full = False
        return sorted(cases)

    def settle(
        self,
        case_ids: Sequence[str],
        cal: Calendar,
        now: int,
        regional: Mapping[str, Calendar] | None = None,
    ) -> None:
        """The engine looked at these cases: what it declined stays quiet until it rises again."""
        if not case_ids:
            return
        for key, table in self.tables():
            slots = [s for cid in case_ids for s in table.by_case.get(cid, [])]
            if slots:
                at = np.asarray(slots, dtype=np.intp)
                table.mark_seen(at, (regional or {}).get(key, cal), now)
                # rows put by this very tick (a case woken without a row) fold in their next rise
                nd = earliest(table.due[at])
                if nd is not None and (self.next_due is None or nd < self.next_due):
                    self.next_due = nd

    def ticked(self, next_reply: dt.datetime | None) -> None:
        """A pass is done; ``next_reply`` is the next supervision-order reply deadline."""
        self.next_reply = None if next_reply is None else int(next_reply.timestamp())
        self.dirty = False

    def wake_at(self) -> int | None:
        """UTC seconds of the next instant something comes due, if any."""
        times = [t for t in (self.next_due, self.next_reply) if t is not None]
        return min(times) if times else None

    def due(self, now: dt.datetime) -> bool:
        """Whether a pass has work at ``now``."""
        at = self.wake_at()
        return self.dirty or (at is not None and at <= now.timestamp())
