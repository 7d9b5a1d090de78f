"""The periods a case's clock rules watch, and when each level of each falls due.

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
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from monitor.calendar import Calendar
from monitor.rules.model import ClockRule, Rule
from monitor.source.contract import Matter
from monitor.state.case import Pause, Span
from monitor.state.view import CaseView

__all__ = [
    "DECISION_DEADLINE",
    "EPS",
    "NAT",
    "LevelTimes",
    "Pauses",
    "Period",
    "crossing_position",
    "epoch",
    "from_epoch",
    "level_times",
    "pause_spans",
    "periods",
    "threshold_row",
    "thresholds",
    "used_days",
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
    subject: str  # the step or pause it is about; "" for the case's own clocks
    start: int  # UTC seconds
    stop: int | None
    limit: int  # working days
    extension: int
    pauses: tuple[tuple[int, int | None], ...] = ()  # (start, end) UTC seconds

    @property
    def allowed(self) -> int:
        return self.limit + self.extension


DECISION_DEADLINE = ClockRule("deadline", "decision", "decision", "", "", {})
"""A rule with no levels on the decision clock: for its deadline alone (outcomes, checks)."""


def pause_spans(items: Iterable[Pause]) -> tuple[tuple[int, int | None], ...]:
    """Pauses as (start, end) UTC seconds, in order of start."""
    return tuple(sorted(((epoch(p.start), _epoch(p.end)) for p in items), key=lambda x: x[0]))


def periods(case: CaseView, matter: Matter | None, rules: Iterable[Rule]) -> list[Period]:
    """The periods of a case that its clock rules watch, running or stopped."""
    out: list[Period] = []
    c = case.clocks
    pauses = pause_spans(c.pauses)
    ext = c.extension_days
    closed = _epoch(case.closed_at)

    def add(
        rule: ClockRule,
        start_at: dt.datetime | None,
        stop_at: dt.datetime | None,
        limit: int | None,
        *,
        subject: str = "",
        extension: int = 0,
        pz: tuple[tuple[int, int | None], ...] = (),
        stops_on_close: bool = True,
    ) -> None:
        if start_at is None or limit is None:
            return
        stop = _epoch(stop_at)
        if stop is None and stops_on_close and closed is not None:
            stop = closed
        out.append(Period(case.case_id, rule, subject, epoch(start_at), stop, int(limit),
                          extension, pz))  # fmt: skip

    def span(rule: ClockRule, clock: Span | None, limit: int | None, **kw: object) -> None:
        if clock is not None:
            add(rule, clock.start, clock.stop, limit, **kw)  # type: ignore[arg-type]

    for rule in rules:
        if not isinstance(rule, ClockRule):
            continue
        on = rule.on
        if on in ("acceptance", "delivery", "immediate"):
            span(rule, getattr(c, on), rule.limit_days)
        elif on == "supplement":
            span(rule, c.supplement, c.supplement.limit_days if c.supplement else None)
        elif on in ("decision", "statutory"):
            clock = c.decision if on == "decision" else c.statutory
            if on == "decision" and c.immediate is not None:
                # an immediate case's promised limit (0 days) is its immediate clock, which the
                # rule book (§4) cards yellow; a red supervision order on top was a double card
                continue
            span(rule, clock, clock.limit_days if clock else None, extension=ext, pz=pauses)
        elif on == "step":
            limits = matter.step_days if matter is not None else {}
            for name, step in sorted(c.steps.items()):
                if name in limits:
                    span(rule, step, int(limits[name]), subject=name, pz=pauses)
        elif on == "pause":
            maxima = matter.pause_max_days if matter is not None else {}
            for i, p in enumerate(c.pauses):
                if p.type in maxima:
                    add(rule, p.start, p.end, int(maxima[p.type]), subject=f"{p.type}#{i + 1}")
        elif on == "review_visit" and c.review is not None:
            add(rule, c.review.start, c.review.visited, rule.limit_days, stops_on_close=False)
        elif on == "review" and c.review is not None:
            add(rule, c.review.start, c.review.stop, rule.limit_days, stops_on_close=False)
    return out


# --- thresholds and instants -------------------------------------------------------


def thresholds(rule: ClockRule, allowed: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Working days consumed at which blue, yellow, red are due: shape (..., 3), NaN none."""
    a = np.asarray(allowed, dtype=np.float64)
    out = np.full((*a.shape, 3), np.nan)
    for level, th in rule.thresholds.items():
        out[..., level - 1] = th.consumed_at(a)
    return out


_ROWS: dict[tuple[int, float], tuple[ClockRule, npt.NDArray[np.float64]]] = {}


def threshold_row(rule: ClockRule, allowed: float) -> npt.NDArray[np.float64]:
    """`thresholds` of one limit, remembered (read only).

    A start asks for the same few hundred (rule, limit) pairs thousands of times,
    and each answer is a dozen numpy calls on scalars. Keyed by the rule's
    identity, checked on a hit, so a reload's new rules are never answered with
    an old rule's row.
    """
    key = (id(rule), allowed)
    hit = _ROWS.get(key)
    if hit is None or hit[0] is not rule:
        if len(_ROWS) >= 4096:  # rules replaced by reloads: let the old ones go
            _ROWS.clear()
        row = thresholds(rule, allowed)
        row.flags.writeable = False
        hit = _ROWS[key] = (rule, row)
    return hit[1]


def _relative(cal: Calendar, period: Period, end: int) -> Pauses:
    """The period's pauses up to ``end`` as working-day positions since its start.

    Each is (start, end, still open); an open pause is measured up to ``end``.
    """
    return _relatives(cal, [period], [end])[0]


def _relatives(cal: Calendar, periods_: Sequence[Period], ends: Sequence[int]) -> list[Pauses]:
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
        for ps, pe in kept:
            starts += (period.start, period.start)
            edges += (ps, end if pe is None or pe > end else pe)
    if not edges:
        return [[] for _ in kept_of]
    rel = cal.working_days_between(
        np.asarray(starts, dtype="datetime64[s]"),
        np.asarray(edges, dtype="datetime64[s]"),
        errors="nat",
    ).tolist()
    out: list[Pauses] = []
    k = 0
    for kept, end in zip(kept_of, ends, strict=True):
        mine: Pauses = []
        for _, pe in kept:
            a, b = rel[k], rel[k + 1]
            k += 2
            mine.append((a, max(a, b), pe is None or pe > end))
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
    """UTC seconds at which each position is reached (deadline-like: end of that day)."""
    if not starts:
        return []
    s = np.asarray(starts, dtype="datetime64[s]")
    x = np.asarray(positions, dtype=np.float64)
    like = np.asarray(deadline_like)
    whole = np.ceil(np.maximum(x - EPS, 0.0)).astype(np.int64)
    ends = cal.deadline(s, whole, errors="nat").astype(np.int64)
    exact = cal.instant_at(s, x, errors="nat").astype(np.int64)
    got = np.where(like, ends, exact)
    return [None if v == NAT else int(v) for v in got]


@dataclass(slots=True)  # not frozen: a start builds one per period, tens of thousands
class LevelTimes:
    """When each level of a period is, or would be, due."""

    due: dict[int, int]  # level -> instant it became due (≤ now, or ≤ stop)
    upcoming: int | None  # next instant a higher level comes due, if the clock runs
    deadline: int | None
    consumed_at: dict[int, float]
    pauses: Pauses = field(default_factory=list)  # at ``now`` (or the stop), as `_relative`


def level_times(cal: Calendar, periods_: Sequence[Period], now: int) -> list[LevelTimes]:
    """For each period: which levels are due at ``now`` (or at its stop) and since when."""
    starts: list[int] = []
    pos: list[float] = []
    like: list[bool] = []
    owner: list[tuple[int, int]] = []
    per: list[dict[int, float]] = []
    frozen: list[bool] = []
    rels = _relatives(cal, periods_, [now if p.stop is None else min(now, p.stop)
                                      for p in periods_])  # fmt: skip
    for i, p in enumerate(periods_):
        rel = rels[i]
        xs = threshold_row(p.rule, p.allowed)
        per.append({})
        frozen.append(any(still_open for _, _, still_open in rel))
        # the deadline itself (red at the limit), for display and the card's record
        levels = [(0, float(p.allowed))]
        levels += [(lv, float(xs[lv - 1])) for lv in (1, 2, 3) if not math.isnan(xs[lv - 1])]
        for lv, x in levels:
            if lv:
                per[i][lv] = x
            if lv == 0:  # the deadline: every pause so far counts (docs/rule-book.md §3)
                r: float | None = float(p.allowed) + sum(b - a for a, b, _ in rel)
            else:
                r = crossing_position(x, rel)
            if r is None:
                continue
            starts.append(p.start)
            pos.append(r)
            like.append(x >= p.allowed - 1e-6)
            owner.append((i, lv))
    got = _instants(cal, starts, pos, like)
    out = [LevelTimes({}, None, None, per[i], rels[i]) for i in range(len(periods_))]
    for (i, lv), instant in zip(owner, got, strict=True):
        p = periods_[i]
        if instant is None:
            continue
        if lv == 0:
            out[i].deadline = instant
            continue
        limit = now if p.stop is None else min(now, p.stop)
        if instant <= limit:
            out[i].due[lv] = instant
        elif p.stop is None and not frozen[i]:
            up = out[i].upcoming
            out[i].upcoming = instant if up is None else min(up, instant)
    return out


def used_days(cal: Calendar, p: Period, now: int) -> float:
    """Working days a period has consumed by ``now`` (or its stop), pauses taken out."""
    end = now if p.stop is None else min(now, p.stop)
    elapsed = float(
        cal.working_days_between(
            np.asarray([p.start], dtype="datetime64[s]"),
            np.asarray([end], dtype="datetime64[s]"),
            errors="nat",
        )[0]
    )
    return max(0.0, elapsed - sum(b - a for a, b, _ in _relative(cal, p, end)))
