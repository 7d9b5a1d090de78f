"""When each level of a period falls due (the periods themselves: ``monitor.clocks.periods``).

A clock rule watches a *period* of a case (its decision period, a step, a
pause, ...). A level is due once the period's working time reaches the
level's threshold, measured on the case's calendar with pauses taken out;
thresholds at or beyond the limit count like deadlines (end of that working
day). The instant a level became due is found by walking the period's
pauses, so a pause that began after the crossing does not move it, and the
same events give the same instants however they were batched.

Pure: typed cases in, epoch seconds out, every instant of many periods from
one calendar call.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from monitor.calendar import Calendar
from monitor.rules.model import ClockRule
from monitor.state.case import Pause

__all__ = [
    "DECISION_DEADLINE",
    "EPS",
    "NAT",
    "STATUTORY_DEADLINE",
    "LevelTimes",
    "Pauses",
    "Period",
    "crossing_position",
    "epoch",
    "from_epoch",
    "instants_of",
    "level_times",
    "pause_spans",
    "relatives",
    "threshold_row",
    "thresholds",
    "used_days",
    "used_days_set",
]

NAT = np.iinfo(np.int64).min
EPS = 1e-7  # working days: float noise (one second is 1.2e-5)


def epoch(value: dt.datetime) -> int:
    """UTC seconds of an aware instant (whole seconds, as the calendar kernel counts)."""
    return int(value.timestamp())


def _epoch(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def from_epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


Pauses = list[tuple[float, float, bool]]  # (start, end, still open) in working days


@dataclass(frozen=True)
class Period:
    """One running period a clock rule watches (a clock of docs/rule-book.md §2)."""

    case_id: str
    rule: ClockRule
    subject: str  # the step, pause or rating it is about; "" for the case's own clocks
    start: int  # UTC seconds
    stop: int | None
    limit: int  # working days
    extension: int
    pauses: tuple[tuple[int, int | None], ...] = ()  # (start, end) UTC seconds
    # no card of this period is dated before it: the instant acceptance was deemed (Art. 32)
    not_before: int | None = None
    extensions: tuple[tuple[int, int], ...] = ()  # (asked at, days) making up ``extension``

    @property
    def allowed(self) -> int:
        return self.limit + self.extension

    def as_of(self, at: int) -> Period:
        """The period judged on the facts of ``at`` only: extensions asked and stop by then."""
        ext = sum(days for when, days in self.extensions if when <= at)
        stop = self.stop if self.stop is not None and self.stop <= at else None
        return replace(self, extension=ext if self.extensions else self.extension, stop=stop)


DECISION_DEADLINE = ClockRule("deadline", "decision", "decision", "", "", {})
"""A rule with no levels on the decision clock: for its deadline alone (outcomes, checks)."""
STATUTORY_DEADLINE = ClockRule("deadline", "statutory", "statutory", "", "", {})
"""The same on the statutory clock (the irregular-extension check)."""


def pause_spans(items: Iterable[Pause]) -> tuple[tuple[int, int | None], ...]:
    """Pauses as (start, end) UTC seconds, in order of start."""
    return tuple(sorted(((epoch(p.start), _epoch(p.end)) for p in items), key=lambda x: x[0]))


# --- thresholds and instants -------------------------------------------------------


def thresholds(rule: ClockRule, allowed: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Working days consumed at which blue, yellow, red are due: shape (..., 3), NaN none."""
    a = np.asarray(allowed, dtype=np.float64)
    out = np.full((*a.shape, 3), np.nan)
    for level, th in rule.thresholds.items():
        out[..., level - 1] = th.consumed_at(a)
    return out


_ROWS: dict[tuple[int, float], tuple[ClockRule, npt.NDArray[np.float64], dict[int, float]]] = {}


def threshold_row(rule: ClockRule, allowed: float) -> npt.NDArray[np.float64]:
    """`thresholds` of one limit, remembered (read only).

    A start asks for the same few hundred (rule, limit) pairs thousands of times,
    and each answer is a dozen numpy calls on scalars. Keyed by the rule's
    identity, checked on a hit, so a reload's new rules are never answered with
    an old rule's row.
    """
    return _threshold(rule, allowed)[1]


def threshold_consumed(rule: ClockRule, allowed: float) -> dict[int, float]:
    """`threshold_row` as {level: position} of the levels the rule has (read only)."""
    return _threshold(rule, allowed)[2]


def _threshold(rule: ClockRule, allowed: float) -> tuple[ClockRule, npt.NDArray[np.float64],
                                                          dict[int, float]]:  # fmt: skip
    key = (id(rule), allowed)
    hit = _ROWS.get(key)
    if hit is None or hit[0] is not rule:
        if len(_ROWS) >= 4096:  # rules replaced by reloads: let the old ones go
            _ROWS.clear()
        row = thresholds(rule, allowed)
        row.flags.writeable = False
        consumed = {lv: float(x) for lv, x in zip((1, 2, 3), row.tolist(), strict=True)
                    if x == x}  # fmt: skip  # NaN: the rule has no such level
        hit = _ROWS[key] = (rule, row, consumed)
    return hit


def _relative(cal: Calendar, period: Period, end: int, *, clip: bool = False) -> Pauses:
    """The period's pauses begun before ``end`` as working-day positions since its start.

    Each is (start, end, still open). A pause whose end is known is a closed
    interval even when that end is still ahead (a resume within the allowed
    clock skew, or a pause's allowance), so no threshold waits on it; an open
    one is measured up to ``end``. ``clip`` measures every pause up to ``end``
    (the time actually spent paused by then).
    """
    return relatives(cal, [period], [end], clip=clip)[0]


def relatives(
    cal: Calendar, periods_: Sequence[Period], ends: Sequence[int], *, clip: bool = False
) -> list[Pauses]:
    """`_relative` for many periods in one calendar call (one per period costs ~µs each)."""
    kept_of: list[list[tuple[int, int | None]]] = []
    starts: list[int] = []
    edges: list[int] = []
    for period, end in zip(periods_, ends, strict=True):
        if not period.pauses:  # most periods: nothing to measure
            kept_of.append([])
            continue
        kept = [(ps, pe) for ps, pe in period.pauses if ps < end]
        kept_of.append(kept)
        stop = period.stop
        for ps, pe in kept:
            if pe is None or (clip and pe > end):
                pe = end
            elif stop is not None and pe > stop:
                pe = max(ps, stop)
            starts += (period.start, period.start)
            edges += (ps, pe)
    if not edges:
        return [[] for _ in kept_of]
    rel = cal.working_days_between(
        np.asarray(starts, dtype="datetime64[s]"),
        np.asarray(edges, dtype="datetime64[s]"),
        errors="nat",
    ).tolist()
    out: list[Pauses] = []
    k = 0
    for kept in kept_of:
        mine: Pauses = []
        for _, pe in kept:
            a, b = rel[k], rel[k + 1]
            k += 2
            mine.append((a, max(a, b), pe is None and not clip))
        out.append(mine)
    return out


def crossing_position(x: float, pauses: Sequence[tuple[float, float, bool]]) -> float | None:
    """Working-day position since the start at which consumed time reaches ``x``.

    None when an open pause began before that: the clock is frozen short of it.
    """
    paused = 0.0
    for a, b, still_open in pauses:
        if a >= x + paused - EPS:
            break  # this pause began after the crossing
        if still_open:
            return None
        paused += b - a
    return x + paused


def _instants(
    cal: Calendar, starts: list[int], positions: list[float], deadline_like: list[bool]
) -> list[int | None]:
    """`instants_of` for lists, None where there is no instant."""
    if not starts:
        return []
    got = instants_of(
        cal,
        np.asarray(starts, dtype=np.int64),
        np.asarray(positions, dtype=np.float64),
        np.asarray(deadline_like, dtype=np.bool_),
    )
    return [None if v == NAT else int(v) for v in got.tolist()]


def instants_of(
    cal: Calendar,
    starts: npt.NDArray[np.int64],
    positions: npt.NDArray[np.float64],
    deadline_like: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    """UTC seconds at which each position is reached (deadline-like: end of that day); NAT none.

    A 0-day limit counted from after the close of business (即办 accepted at
    19:00) ends at the close of the next working day, never before its start.
    """
    s = starts.view("datetime64[s]")
    x = positions
    like = deadline_like
    whole = np.ceil(np.maximum(x - EPS, 0.0)).astype(np.int64)
    ends = cal.deadline(s, whole, errors="nat").astype(np.int64)
    early = like & (ends != NAT) & (ends <= starts)
    if early.any():
        ends[early] = cal.deadline(s[early], whole[early] + 1, errors="nat").astype(np.int64)
    exact = cal.instant_at(s, x, errors="nat").astype(np.int64)
    return np.where(like, ends, exact)


@dataclass(slots=True)  # not frozen: a start builds one per period, tens of thousands
class LevelTimes:
    """When each level of a period is, or would be, due."""

    due: dict[int, int]  # level -> instant it became due (≤ now, or ≤ stop)
    upcoming: int | None  # next instant a higher level comes due, if the clock runs
    deadline: int | None  # as it stands at ``now``: every pause so far counted
    consumed_at: dict[int, float]
    pauses: Pauses = field(default_factory=list)  # at ``now`` (or the stop), as `_relative`
    deadline_at: dict[int, int] = field(default_factory=dict)  # per level: as of its crossing

    def deadline_of(self, level: int) -> int | None:
        """The deadline a card of ``level`` records: as it stood when the level was crossed."""
        return self.deadline_at.get(level, self.deadline)


def _paused_before(pos: float, rel: Pauses) -> float:
    return sum(b - a for a, b, _ in rel if a < pos - EPS)


def level_times(
    cal: Calendar, periods_: Sequence[Period], now: int | Sequence[int]
) -> list[LevelTimes]:
    """For each period: which levels are due at ``now`` (or at its stop) and since when.

    ``now`` may be one instant per period (cards judged each at its own instant,
    in one calendar call). No level is dated before its period's start or its
    ``not_before``.
    """
    starts: list[int] = []
    pos: list[float] = []
    like: list[bool] = []
    owner: list[tuple[int, int]] = []  # (period, level); level -n: the deadline as of n
    per: list[dict[int, float]] = []
    frozen: list[bool] = []
    nows = [now] * len(periods_) if isinstance(now, int | np.integer) else list(now)
    limits = [n if p.stop is None else min(n, p.stop) for p, n in zip(periods_, nows, strict=True)]
    rels = relatives(cal, periods_, limits)
    for i, p in enumerate(periods_):
        rel = rels[i]
        xs = threshold_row(p.rule, p.allowed)
        per.append({})
        frozen.append(any(still_open for _, _, still_open in rel))
        total = sum(b - a for a, b, _ in rel)
        # the deadline itself (red at the limit), for display and the card's record
        levels = [(0, float(p.allowed))]
        levels += [(lv, float(xs[lv - 1])) for lv in (1, 2, 3) if not math.isnan(xs[lv - 1])]
        for lv, x in levels:
            if lv:
                per[i][lv] = x
            if lv == 0:  # the deadline: every pause so far counts (docs/rule-book.md §3)
                r: float | None = float(p.allowed) + total
            else:
                r = crossing_position(x, rel)
            if r is None:
                continue
            starts.append(p.start)
            pos.append(r)
            like.append(x >= p.allowed - 1e-6)
            owner.append((i, lv))
            if lv and rel and (before := _paused_before(r, rel)) < total - EPS:
                # pauses begun after this crossing do not move the deadline its card records
                starts.append(p.start)
                pos.append(float(p.allowed) + before)
                like.append(True)
                owner.append((i, -lv))
    got = _instants(cal, starts, pos, like)
    out = [LevelTimes({}, None, None, per[i], rels[i]) for i in range(len(periods_))]
    for (i, lv), instant in zip(owner, got, strict=True):
        p = periods_[i]
        if instant is None:
            continue
        if lv == 0:
            out[i].deadline = instant
            continue
        if lv < 0:
            out[i].deadline_at[-lv] = instant
            continue
        floor = p.start if p.not_before is None else max(p.start, p.not_before)
        instant = max(instant, floor)
        if instant <= limits[i]:
            out[i].due[lv] = instant
        elif p.stop is None and not frozen[i]:
            up = out[i].upcoming
            out[i].upcoming = instant if up is None else min(up, instant)
    return out


def used_days(cal: Calendar, p: Period, now: int) -> float:
    """Working days a period has consumed by ``now`` (or its stop), pauses taken out."""
    return float(used_days_set(cal, [p], [now])[0])


def used_days_set(
    cal: Calendar, periods_: Sequence[Period], nows: Sequence[int]
) -> npt.NDArray[np.float64]:
    """`used_days` of each period at its ``now``: one calendar call for the spans, one for
    the pauses (a card's detail in a batch of many)."""
    ends = [now if p.stop is None else min(now, p.stop)
            for p, now in zip(periods_, nows, strict=True)]  # fmt: skip
    elapsed = cal.working_days_between(
        np.asarray([p.start for p in periods_], dtype="datetime64[s]"),
        np.asarray(ends, dtype="datetime64[s]"),
        errors="nat",
    )
    rels = relatives(cal, periods_, ends, clip=True)
    paused = np.fromiter((sum(b - a for a, b, _ in rel) for rel in rels), np.float64,
                         len(rels))  # fmt: skip
    used = elapsed - paused
    return np.where(used > 0.0, used, 0.0)  # as max(0.0, used): none (NaN) is 0
