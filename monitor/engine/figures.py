"""The figures the inspectors report (docs/rule-book.md §5), defined once.

A case's part in them is fixed by its facts, not by when one looks: when it
was accepted, whether it is immediate, when it completed, the instant its
promised limit is (or was) used up, and how it finished. ``case_figures``
computes that from the clocks; ``tally`` counts a period from it. The daemon
stores the two computed columns (``decision_deadline``, ``outcome``) on
``jiancha.cases`` and the SQL functions ``jiancha.figures_v1`` /
``jiancha.overdue_v1`` (migration 0007) count exactly what ``tally`` counts,
so the metrics, the dashboards, replay and the bulletins share one
definition (tests/statute/test_figures.py holds them to it).

- 即办 cases are judged on their own limit: close of business of the day of
  acceptance (the next working day's when accepted after it);
- withdrawn and terminated cases never count as completions;
- 超期件 (overdue) are cases open at the instant and past the instant their
  promised limit was used up, pauses and lawful extensions taken into
  account; a red card of another rule does not make a case overdue.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.calendar import Calendar
from monitor.clocks.arrays import level_times_set
from monitor.clocks.periods import periods
from monitor.clocks.timing import Period, epoch, from_epoch
from monitor.rules.model import ClockRule, Statute, Threshold
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import FINISHED

__all__ = ["JUDGED", "CaseFigure", "Counts", "case_figures", "figures_of", "tally", "total"]

_STATUTE = Statute()
_AT_LIMIT = {3: Threshold(after_deadline_days=0.0, text="deadline")}
# The periods a figure judges: the promised limit, or an immediate case's same-day limit
# (the decision period of an immediate case is its immediate clock: `periods` skips it).
_PROMISED = ClockRule("figures", "decision", "decision", "", "", _AT_LIMIT)
_IMMEDIATE = ClockRule("figures", "immediate", "immediate", "", "", _AT_LIMIT, limit_days=0)
_JUDGED = (_PROMISED, _IMMEDIATE)
JUDGED: tuple[ClockRule, ...] = _JUDGED
"""The rules whose periods a figure judges (at most one per case): `figures_of`'s input."""


@dataclass(frozen=True, slots=True)
class CaseFigure:
    """One case's part in the figures; instants in UTC seconds."""

    case_id: str
    department: str
    window: str
    accepted_at: int | None
    immediate: bool
    completed_at: int | None  # never set for a withdrawn or terminated case
    ended_at: int | None  # withdrawn, terminated or refused: open no longer
    deadline: int | None  # the instant the promised limit is used up (None: never)
    outcome: str | None  # early | on_time | late, once completed

    def open_at(self, at: int) -> bool:
        return (
            self.deadline is not None
            and (self.completed_at is None or self.completed_at > at)
            and (self.ended_at is None or self.ended_at > at)
        )

    def overdue_at(self, at: int) -> bool:
        """超期件 at ``at``: open, and its promised limit used up (``jiancha.overdue_v1``)."""
        return self.open_at(at) and self.deadline is not None and self.deadline <= at


def _judge_at(p: Period) -> int:
    """An instant to measure the period at: its stop, or past every pause it has begun."""
    if p.stop is not None:
        return p.stop
    return max([p.start, *(s for s, _ in p.pauses)]) + 1


def case_figures(
    cases: Sequence[tuple[CaseView, Matter | None]], cal: Calendar, statute: Statute = _STATUTE
) -> list[CaseFigure]:
    """Each case's figure on ``cal`` (one calendar pass for all of them)."""
    found: list[Period | None] = []
    for case, matter in cases:
        ps = periods(case, matter, _JUDGED, cal, statute)
        found.append(ps[0] if ps else None)
    return figures_of(cases, found, cal)


def figures_of(
    cases: Sequence[tuple[CaseView, Matter | None]], found: Sequence[Period | None], cal: Calendar
) -> list[CaseFigure]:
    """`case_figures` with each case's period of a `JUDGED` rule built already (or None).

    The engine builds it with the case's other periods (`decide_cases(figures=True)`):
    the statute (pauses, deemed acceptance) is applied once per case.
    """
    judged = [(i, p) for i, p in enumerate(found) if p is not None]
    # one `now` per period would be a call each: measure all at the latest, each clipped
    # to its own stop, then take the crossing (due if reached, else upcoming)
    later = max((_judge_at(p) for _, p in judged), default=0)
    times = level_times_set(cal, [p for _, p in judged], later) if judged else []
    deadlines: dict[int, int | None] = {}
    for (i, p), tm in zip(judged, times, strict=True):
        crossed = tm.due.get(3)
        deadlines[i] = crossed if crossed is not None else tm.upcoming or tm.deadline
        if p.stop is None and crossed is None and tm.upcoming is None:
            deadlines[i] = None  # frozen by a pause without an allowance: not yet due
    tz = zoneinfo.ZoneInfo(cal.timezone)
    return [_figure(case, deadlines.get(i), tz) for i, (case, _matter) in enumerate(cases)]


def _figure(case: CaseView, deadline: int | None, tz: zoneinfo.ZoneInfo) -> CaseFigure:
    c = case.clocks
    accepted = c.decision.start if c.decision is not None else None
    completed, closed, refused = case.completed_at, case.closed_at, case.facts.refused_at
    if completed is not None and closed is not None and closed <= completed:
        completed = None  # withdrawn or terminated first: not a completion
    ends = [t for t in (closed, refused) if t is not None]
    ended = min(ends) if ends else None
    if completed is None and ended is None and case.status in FINISHED:
        deadline = None  # finished without the instant known (completed unaccepted)
    outcome = None
    if completed is not None and deadline is not None:
        stop = epoch(completed)
        if stop >= deadline:
            outcome = "late"
        else:
            last_day = (from_epoch(deadline) - dt.timedelta(seconds=1)).astimezone(tz).date()
            outcome = "early" if from_epoch(stop).astimezone(tz).date() < last_day else "on_time"
    return CaseFigure(
        case.case_id,
        case.department or "",
        case.window or "",
        None if accepted is None else epoch(accepted),
        c.immediate is not None,
        None if completed is None else epoch(completed),
        None if ended is None else epoch(ended),
        deadline,
        outcome,
    )


@dataclass
class Counts:
    """A period's counts for one scope (the centre, a department or a window)."""

    accepted: int = 0
    immediate: int = 0
    completed: int = 0
    on_time: int = 0  # early included
    early: int = 0
    late: int = 0
    overdue_open: int = 0

    def add(self, other: Counts) -> None:
        """Sum another scope's counts in (a subclass's counts by key too, e.g. cards)."""
        for name in other.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, dict):
                for key, n in theirs.items():
                    mine[key] = mine.get(key, 0) + n
            else:
                setattr(self, name, mine + theirs)

    @property
    def judged(self) -> int:
        """Completions with a promised limit to judge them by (the rates' denominator)."""
        return self.on_time + self.late

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率."""
        return self.on_time / self.judged if self.judged else None

    @property
    def early_rate(self) -> float | None:
        """提前办结率."""
        return self.early / self.judged if self.judged else None

    @property
    def immediate_share(self) -> float | None:
        """即办件 share of the cases accepted."""
        return self.immediate / self.accepted if self.accepted else None


def tally(
    figures: Iterable[CaseFigure], lo: dt.datetime, hi: dt.datetime, at: dt.datetime
) -> dict[tuple[str, str], Counts]:
    """Counts per (department, window): accepted and completed in [lo, hi), overdue at ``at``."""
    a, b, t = epoch(lo), epoch(hi), epoch(at)
    out: dict[tuple[str, str], Counts] = {}
    for f in figures:
        n = out.get((f.department, f.window))
        if n is None:
            n = out[(f.department, f.window)] = Counts()
        if f.accepted_at is not None and a <= f.accepted_at < b:
            n.accepted += 1
            n.immediate += f.immediate
        if f.completed_at is not None and a <= f.completed_at < b:
            n.completed += 1
            n.on_time += f.outcome in ("early", "on_time")
            n.early += f.outcome == "early"
            n.late += f.outcome == "late"
        n.overdue_open += f.overdue_at(t)
    return out


def total(counts: Iterable[Counts]) -> Counts:
    """The sum of several scopes' counts (the centre's, from its windows')."""
    out = Counts()
    for n in counts:
        out.add(n)
    return out
