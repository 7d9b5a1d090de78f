"""The working-day calendar: China's statutory counting of days, made fast.

Every card jiancha issues rests on this arithmetic (docs/rule-book.md §3): weekends
and holidays do not count, adjusted working weekends (调休上班) do, the
starting day is not counted, a deadline ends at 24:00 (or close of business)
of its last working day, and a date whose year has no published schedule is
counted on weekends and the holidays the national regulation itself fixes
(State Council Order 795 from 2025, with lunar dates computed; no adjusted
working weekends) and reported as ``provisional``.

Instants are UTC (numpy ``datetime64``); days are the centre's local dates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from monitor.i18n import t

from . import _kernel, _levels24
from ._inputs import _clock_inputs, _flat, _flat_or_none, _instants, _ints
from ._spec import FIRST_YEAR, LAST_YEAR, CalendarError, CalendarSpec
from ._tables import D0, N_DAYS, DayModel, Tables

__all__ = [
    "BUILTIN_CALENDARS",
    "Calendar",
    "CalendarError",
    "CalendarSpec",
    "ClockState",
    "LevelScan",
    "available_calendars",
    "build_calendar",
    "calendar_search_path",
    "earliest",
    "load_calendar",
]

BUILTIN_CALENDARS = {
    "national": "国务院节假日安排（chinese-calendar 数据），其余年份按放假办法推定（暂定）",
    "weekdays": "周一至周五，无节假日（参照日历）",
}

Errors = Literal["raise", "nat"]
Instants = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]
F64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClockState:
    """One clock evaluation per case (working days as float64)."""

    consumed: F64Array
    remaining: F64Array
    deadline: Instants  # datetime64[s], UTC
    provisional: BoolArray
    level: npt.NDArray[np.int8] | None = None  # with thresholds: 0 none .. 3 red; -1 unknown
    next_change: Instants | None = None  # with thresholds: when the level would next rise

    @classmethod
    def empty(cls, shape: tuple[int, ...], *, levels: bool) -> ClockState:
        """Outputs for ``shape`` clocks, with the level outputs only when asked for."""
        return cls(
            consumed=np.empty(shape, dtype=np.float64),
            remaining=np.empty(shape, dtype=np.float64),
            deadline=np.empty(shape, dtype="datetime64[s]"),
            provisional=np.empty(shape, dtype=np.bool_),
            level=np.empty(shape, dtype=np.int8) if levels else None,
            next_change=np.empty(shape, dtype="datetime64[s]") if levels else None,
        )


def _day_index(day: object) -> int:
    """Table index of a local date given as datetime64, date or ISO text."""
    return int(np.asarray(day, dtype="datetime64[D]").astype(np.int64)) - D0


class Calendar:
    """A named working-day calendar with its time zone and office hours."""

    def __init__(
        self,
        name: str,
        tables: Tables,
        *,
        timezone: str,
        office_hours: tuple[tuple[int, int], ...],
        model: DayModel,
        specs: tuple[CalendarSpec, ...] = (),
        description: str = "",
    ) -> None:
        self.name = name
        self.timezone = timezone
        self.office_hours = office_hours
        self.description = description
        self.specs = specs
        self._t = tables
        self._names = model.names
        self.sources = dict(model.sources)
        h = hashlib.sha256(f"{name}|{timezone}|{office_hours}".encode())
        h.update(tables.work.tobytes())
        h.update(tables.provisional.tobytes())
        self.fingerprint = h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Calendar({self.name!r}, tz={self.timezone!r}, office_hours={self.office_hours})"

    # --- range and provisional data ----------------------------------------

    first_day = np.datetime64(f"{FIRST_YEAR}-01-01", "D")
    last_day = np.datetime64(f"{LAST_YEAR}-12-31", "D")

    def published_through(self, day: np.datetime64 | str) -> np.datetime64 | None:
        """Last day before the first provisional one on or after ``day``.

        This is how far ahead the holiday data reaches: a deadline beyond it
        is provisional. ``None`` when ``day`` itself is provisional.
        """
        i = _day_index(day)
        ahead = np.flatnonzero(self._t.provisional[i:])
        if ahead.size and ahead[0] == 0:
            return None
        last = i + int(ahead[0]) - 1 if ahead.size else N_DAYS - 1
        return np.datetime64(D0 + last, "D")

    def holiday_name(self, day: np.datetime64 | str) -> str | None:
        """Name of the holiday or adjusted working day, if the day has one."""
        return self._names.get(_day_index(day))

    # --- arithmetic ---------------------------------------------------------

    def _raise_bad(self, bad: int) -> None:
        raise CalendarError(
            t("cal.out_of_range", count=bad, name=self.name, lo=self.first_day, hi=self.last_day)
        )

    def is_workday(self, days: npt.ArrayLike, *, errors: Errors = "raise") -> BoolArray:
        """Whether each local date (``datetime64[D]``) is a working day."""
        arr = np.asarray(days, dtype="datetime64[D]")
        flat = np.ascontiguousarray(arr.reshape(-1)).view(np.int64)
        out = np.empty(flat.shape[0], dtype=np.bool_)
        bad = _kernel.sized(_kernel.workday_kernel, flat.shape[0])(flat, out, D0, self._t.work)
        if bad and errors == "raise":
            self._raise_bad(bad)
        return out.reshape(arr.shape)

    def is_provisional(self, days: npt.ArrayLike) -> BoolArray:
        """Whether each local date lies in a year with no published schedule."""
        arr = np.asarray(days, dtype="datetime64[D]")
        idx = arr.astype(np.int64) - D0
        if np.any((idx < 0) | (idx >= N_DAYS)):
            self._raise_bad(int(np.count_nonzero((idx < 0) | (idx >= N_DAYS))))
        return self._t.provisional[idx]

    @overload
    def deadline(
        self,
        starts: npt.ArrayLike,
        workdays: npt.ArrayLike,
        *,
        out: Instants | None = ...,
        provisional: Literal[False] = ...,
        errors: Errors = ...,
    ) -> Instants: ...

    @overload
    def deadline(
        self,
        starts: npt.ArrayLike,
        workdays: npt.ArrayLike,
        *,
        out: Instants | None = ...,
        provisional: Literal[True],
        errors: Errors = ...,
    ) -> tuple[Instants, BoolArray]: ...

    def deadline(
        self,
        starts: npt.ArrayLike,
        workdays: npt.ArrayLike,
        *,
        out: Instants | None = None,
        provisional: bool = False,
        errors: Errors = "raise",
    ) -> Instants | tuple[Instants, BoolArray]:
        """The instant the N-th working day after each start's local day ends (UTC).

        ``workdays`` = 0 gives the end of the start day itself, or of the next
        working day when it is a rest day (an immediate case). With
        ``provisional=True`` also says which results rest on unpublished years.
        """
        shape, (s, n) = _flat(_instants(np.asarray(starts)), _ints(np.asarray(workdays)))
        if out is None:
            out = np.empty(shape, dtype="datetime64[s]")
        prov = np.empty(shape, dtype=np.bool_) if provisional else None
        tb = self._t
        bad = _kernel.sized(_kernel.deadline_kernel, s.shape[0])(
            s, n, out.reshape(-1).view(np.int64), _flat_or_none(prov),
            tb.t0, tb.day_start_or_none, tb.cum_pad, tb.pcum, tb.nth_end, tb.nth_pcum,
        )  # fmt: skip
        if bad and errors == "raise":
            if np.any(n < 0):
                raise CalendarError(t("cal.negative_workdays"))
            self._raise_bad(bad)
        return (out, prov) if prov is not None else out

    @overload
    def working_days_between(
        self,
        starts: npt.ArrayLike,
        ends: npt.ArrayLike,
        *,
        out: F64Array | None = ...,
        provisional: Literal[False] = ...,
        errors: Errors = ...,
    ) -> F64Array: ...

    @overload
    def working_days_between(
        self,
        starts: npt.ArrayLike,
        ends: npt.ArrayLike,
        *,
        out: F64Array | None = ...,
        provisional: Literal[True],
        errors: Errors = ...,
    ) -> tuple[F64Array, BoolArray]: ...

    def working_days_between(
        self,
        starts: npt.ArrayLike,
        ends: npt.ArrayLike,
        *,
        out: F64Array | None = None,
        provisional: bool = False,
        errors: Errors = "raise",
    ) -> F64Array | tuple[F64Array, BoolArray]:
        """Working time (in working days) from each clock start to each end.

        The clock starts at 00:00 after the start's local day; an end before
        that counts 0. Partial days count by the share of the day (or of its
        office hours) elapsed, so a deadline from ``deadline`` counts exactly N.
        """
        shape, (s, e) = _flat(_instants(np.asarray(starts)), _instants(np.asarray(ends)))
        if out is None:
            out = np.empty(shape, dtype=np.float64)
        prov = np.empty(shape, dtype=np.bool_) if provisional else None
        tb = self._t
        if tb.fixed and not self.office_hours:
            bad = _kernel.sized(_kernel.count_kernel_24h, s.shape[0])(
                s, e, out.reshape(-1), _flat_or_none(prov), tb.t0, tb.ctab, tb.pcum
            )
        else:
            bad = _kernel.sized(_kernel.count_kernel, s.shape[0])(
                s, e, out.reshape(-1), _flat_or_none(prov),
                tb.t0, tb.day_start_or_none, tb.trans, tb.shift,
                tb.oh_start, tb.oh_end, tb.oh_total, tb.cum, tb.pcum,
            )  # fmt: skip
        if bad and errors == "raise":
            self._raise_bad(bad)
        return (out, prov) if prov is not None else out

    @overload
    def instant_at(
        self,
        starts: npt.ArrayLike,
        working_days: npt.ArrayLike,
        *,
        out: Instants | None = ...,
        provisional: Literal[False] = ...,
        errors: Errors = ...,
    ) -> Instants: ...

    @overload
    def instant_at(
        self,
        starts: npt.ArrayLike,
        working_days: npt.ArrayLike,
        *,
        out: Instants | None = ...,
        provisional: Literal[True],
        errors: Errors = ...,
    ) -> tuple[Instants, BoolArray]: ...

    def instant_at(
        self,
        starts: npt.ArrayLike,
        working_days: npt.ArrayLike,
        *,
        out: Instants | None = None,
        provisional: bool = False,
        errors: Errors = "raise",
    ) -> Instants | tuple[Instants, BoolArray]:
        """The first whole second at which the working time since each start reaches x.

        The inverse of ``working_days_between``: when a running clock crosses
        a threshold (give it x plus the working time it spent paused). A whole
        x gives exactly ``deadline(starts, x)``; x up to 1e-7 working days
        (9 ms: float noise) gives the clock's start.
        """
        shape, (s, x) = _flat(
            _instants(np.asarray(starts)), np.asarray(working_days, dtype=np.float64)
        )
        if out is None:
            out = np.empty(shape, dtype="datetime64[s]")
        prov = np.empty(shape, dtype=np.bool_) if provisional else None
        tb = self._t
        bad = _kernel.sized(_kernel.instant_kernel, s.shape[0])(
            s, x, out.reshape(-1).view(np.int64), _flat_or_none(prov),
            tb.t0, tb.day_start_or_none, tb.trans, tb.shift,
            tb.oh_start, tb.oh_end, tb.oh_total, tb.cum, tb.pcum, tb.nth_day, tb.nth_pcum,
        )  # fmt: skip
        if bad and errors == "raise":
            self._raise_bad(bad)
        return (out, prov) if prov is not None else out

    def evaluate(
        self,
        starts: npt.ArrayLike,
        limits: npt.ArrayLike,
        extensions: npt.ArrayLike,
        paused: npt.ArrayLike,
        paused_since: npt.ArrayLike,
        now: np.datetime64 | str,
        *,
        out: ClockState | None = None,
        errors: Errors = "raise",
        blue_at: npt.ArrayLike | None = None,
        yellow_at: npt.ArrayLike | None = None,
        red_at: npt.ArrayLike | None = None,
    ) -> ClockState:
        """Evaluate running clocks at ``now`` (docs/rule-book.md §3).

        Per clock: its start instant, limit and extension in working days,
        working days spent in closed pauses, and the start of the open pause
        (NaT when the clock runs; a pause is "paused now" exactly when this
        is set). Returns consumed and remaining working time, the deadline
        pushed out by all pauses so far, and whether any of it rests on an
        unpublished year.

        With ``blue_at`` and ``yellow_at`` (working days consumed at which
        those levels are due; NaN where a clock has none) it also returns,
        in the same pass, the level due now and the next instant the level
        would rise, so a caller can sleep until then. Red is due at the
        deadline unless ``red_at`` says otherwise (NaN: no red). A threshold
        at or beyond the limit counts like a deadline: it is reached at the
        end of the working day in which consumed time gets there.
        """
        with_levels = blue_at is not None or yellow_at is not None or red_at is not None
        shape, flat = _flat(*_clock_inputs(starts, limits, extensions, paused, paused_since,
                                           blue_at, yellow_at, red_at))  # fmt: skip
        s, lim, ext, pz, since = flat[:5]
        blue, yellow = flat[5:7] if with_levels else (None, None)
        red = flat[7] if red_at is not None else None
        if out is None:
            out = ClockState.empty(shape, levels=with_levels)
        now_s = int(np.asarray(now, dtype="datetime64[s]").astype(np.int64))
        tb = self._t
        bad = _kernel.sized(_kernel.clock_kernel, s.shape[0])(
            s, lim, ext, pz, since, now_s,
            out.consumed.reshape(-1), out.remaining.reshape(-1),
            out.deadline.reshape(-1).view(np.int64), out.provisional.reshape(-1),
            tb.t0, tb.day_start_or_none, tb.trans, tb.shift,
            tb.oh_start, tb.oh_end, tb.oh_total, tb.cum, tb.pcum, tb.nth_end, tb.nth_pcum,
            tb.nth_day, blue, yellow, red,
            _flat_or_none(out.level if with_levels else None),
            None if not with_levels or out.next_change is None
            else out.next_change.reshape(-1).view(np.int64),
        )  # fmt: skip
        if bad and errors == "raise":
            self._raise_bad(bad)
        return out

    def levels(
        self,
        starts: npt.NDArray[np.int64],
        limits: npt.NDArray[np.integer[Any]],
        extensions: npt.NDArray[np.integer[Any]],
        paused: F64Array,
        paused_since: npt.NDArray[np.int64],
        now: int,
        blue_at: F64Array,
        yellow_at: F64Array,
        red_at: F64Array | None,
        level_out: npt.NDArray[np.int8],
        next_out: npt.NDArray[np.int64],
        *,
        issued: npt.NDArray[np.int8] | None = None,
    ) -> LevelScan:
        """``evaluate``'s level pass alone, for the scheduler: no other outputs are written.

        Every array is 1-D of one length, instants are UTC seconds (int64, NaT
        as its minimum), and the outputs are the caller's. Returns how many
        clocks could not be evaluated (level -1) and, given ``issued`` (the level
        already issued), what a scheduler asks of the outputs next: the clocks
        whose level is above it and the earliest next rise. In the default mode
        the kernel counts and finds those as it goes (no second pass over 90 MB
        at 10M clocks); otherwise numpy reads the outputs.
        """
        tb = self._t
        if (red_at is not None and tb.fixed and not self.office_hours
                and _levels24.worth_it(starts.shape[0])):  # fmt: skip
            # the default mode, where its SIMD twin is faster (see _levels24); red
            # explicit, as the scheduler's table has it. Without ``issued`` the kernel
            # compares the levels with themselves: one compilation, nothing rises.
            bad, rose, low = _levels24.levels24_kernel(
                starts, limits, extensions, paused, paused_since, now, tb.t0, tb.ltab,
                tb.nth_day, blue_at, yellow_at, red_at,
                level_out if issued is None else issued, level_out, next_out,
            )  # fmt: skip
            rows = _levels24.rows_above(level_out, issued, rose) if issued is not None else _NO_ROWS
            return LevelScan(int(bad), rows, _instant_or_none(int(low)))
        bad = _kernel.sized(_kernel.clock_kernel, starts.shape[0])(
            starts, limits, extensions, paused, paused_since, now,
            None, None, None, None,
            tb.t0, tb.day_start_or_none, tb.trans, tb.shift,
            tb.oh_start, tb.oh_end, tb.oh_total, tb.cum, tb.pcum, tb.nth_end, tb.nth_pcum,
            tb.nth_day, blue_at, yellow_at, red_at, level_out, next_out,
        )  # fmt: skip
        if issued is None:
            return LevelScan(int(bad), _NO_ROWS, None)
        return LevelScan(int(bad), np.flatnonzero(level_out > issued), earliest(next_out))


_NAT_U64 = 1 << 63  # NaT (the int64 minimum) read as uint64: after every instant
_NO_ROWS: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
_NO_ROWS.flags.writeable = False


def _instant_or_none(low: int) -> int | None:
    """An instant as a uint64 minimum gives it (NaT: after every instant), or None."""
    return None if low >= _NAT_U64 else low


def earliest(instants: npt.NDArray[np.int64]) -> int | None:
    """The smallest instant (UTC seconds), NaT (int64 minimum) ignored; None for none."""
    if instants.size == 0:
        return None
    return _instant_or_none(int(instants.view(np.uint64).min()))


class LevelScan(NamedTuple):
    """``Calendar.levels``' summary of its outputs."""

    bad: int  # clocks that could not be evaluated (level -1)
    rose: npt.NDArray[np.intp]  # the clocks whose level is above the one issued, in order
    earliest: int | None  # the earliest next rise (UTC seconds); None: no clock will rise


from ._load import (  # noqa: E402  (they build Calendar objects)
    available_calendars,
    build_calendar,
    calendar_search_path,
    load_calendar,
)
