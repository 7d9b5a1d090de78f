"""The bulletin as data: a pure function of the period's rows (``fetch``) and nothing else.

``assemble`` sums the per-window rows into windows, departments and the
centre, ranks the departments and names the red cards and overdue cases.
The renderers (JSON, HTML, XLSX, PDF) only lay this out, so every document
of one bulletin carries the same numbers, and the next increment (the
schedule, ``jiancha.reports``) stores exactly this.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from monitor.engine.figures import Counts
from monitor.report.versions import Revision
from monitor.vocab import LEVELS

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.report.fetch import Rows
    from monitor.report.period import Period

__all__ = [
    "Context",
    "Figures",
    "Listed",
    "Report",
    "RuleCount",
    "Scoped",
    "assemble",
    "empty",
]


@dataclass
class Figures(Counts):
    """One scope's figures over one period (rule-book §5); the rates are None without a base.

    The counts and their rates are the engine's (``monitor.engine.figures.Counts``):
    one definition with the metrics and replay; a bulletin adds cards, ratings and time.
    """

    cards: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    cards_revoked: int = 0
    ratings: int = 0
    satisfied: int = 0  # ratings 3 to 5
    bad_reviews: int = 0
    rectified: int = 0
    timed: int = 0  # completions whose working days used are measured
    working_days_used: float = 0.0  # their sum
    promised_days: float = 0.0  # the sum of their promised limits
    statutory_days: float = 0.0

    @staticmethod
    def _ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    @property
    def satisfaction_rate(self) -> float | None:
        return self._ratio(self.satisfied, self.ratings)

    @property
    def rectification_rate(self) -> float | None:
        return self._ratio(self.rectified, self.bad_reviews)

    @property
    def mean_working_days_used(self) -> float | None:
        return self._ratio(self.working_days_used, self.timed)

    @property
    def mean_promised_days(self) -> float | None:
        return self._ratio(self.promised_days, self.timed)

    @property
    def mean_statutory_days(self) -> float | None:
        return self._ratio(self.statutory_days, self.timed)

    @property
    def cards_total(self) -> int:
        return sum(self.cards.values())


@dataclass(frozen=True)
class Scoped:
    """A department's or a window's figures; ``rank`` for departments (1 = best)."""

    department: str
    window: str
    figures: Figures
    rank: int = 0


@dataclass(frozen=True)
class RuleCount:
    rule: str
    title: str
    levels: Mapping[str, int]
    revoked: int


@dataclass(frozen=True)
class Listed:
    """A red card or an overdue case, as the bulletin names it."""

    case_id: str
    matter: str  # the catalogue's name, else the code
    department: str
    window: str
    at: dt.datetime | None  # the card's issue, or the overdue case's deadline
    reason: str
    card_id: int | None = None


@dataclass(frozen=True)
class Report:
    """A bulletin: the centre's (or one department's) figures, compared and broken down."""

    period: Period
    centre: str
    department: str | None  # None: the whole centre
    generated_at: dt.datetime
    figures: Figures
    previous: Figures  # 环比
    year_ago: Figures  # 同比
    departments: tuple[Scoped, ...]  # ranked
    windows: tuple[Scoped, ...]
    by_rule: tuple[RuleCount, ...]
    red_cards: tuple[Listed, ...]
    overdue: tuple[Listed, ...]
    notes: tuple[str, ...] = ()
    revision: Revision | None = None  # a later version: what late events changed

    @property
    def scope(self) -> str:
        return self.department or self.centre

    @property
    def version(self) -> int:
        return 1 if self.revision is None else self.revision.version


def _scopes(rows: Rows, cal: Calendar) -> dict[tuple[str, str], Figures]:
    """Each (department, window)'s figures from the period's rows."""
    out: dict[tuple[str, str], Figures] = {}

    def at(r: Mapping[str, Any]) -> Figures:
        key = (str(r["dept"]), str(r["win"]))
        f = out.get(key)
        if f is None:
            f = out[key] = Figures()
        return f

    for r in rows.figures:
        f = at(r)
        for name in (
            "accepted",
            "immediate",
            "completed",
            "on_time",
            "early",
            "late",
            "overdue_open",
        ):
            setattr(f, name, getattr(f, name) + int(r[name]))
    for r in rows.cards:
        f = at(r)
        if r["revoked"]:
            f.cards_revoked += int(r["n"])
        else:
            f.cards[r["level"]] = f.cards.get(r["level"], 0) + int(r["n"])
    for r in rows.ratings:
        f = at(r)
        f.ratings += int(r["n"])
        f.satisfied += int(r["n"]) if int(r["level"]) >= 3 else 0
    for r in rows.reviews:
        f = at(r)
        f.bad_reviews += int(r["bad"])
        f.rectified += int(r["rectified"])
    _working_days(rows.completions, cal, at)
    return out


def _naive(moments: Iterable[dt.datetime]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    return np.asarray(
        [m.astimezone(dt.UTC).replace(tzinfo=None) for m in moments], dtype="datetime64[s]"
    )


def _working_days(completions: Sequence[Mapping[str, Any]], cal: Calendar, at: Any) -> None:
    """Working days from acceptance to completion (pauses not taken out), with the limits:
    one calendar call for every completion of the period, summed by scope."""
    sizes = [len(r["accepted_s"]) for r in completions]
    if not sum(sizes):
        return

    def column(key: str) -> npt.NDArray[np.int64]:
        values = itertools.chain.from_iterable(r[key] for r in completions)
        return np.fromiter(values, dtype=np.int64, count=sum(sizes))

    used = cal.working_days_between(
        column("accepted_s").astype("datetime64[s]"),
        column("completed_s").astype("datetime64[s]"),
        errors="nat",  # outside the calendar: NaN, left out
    )
    promised, statutory = column("promised_days"), column("statutory_days")
    ends = np.cumsum(sizes)
    for r, hi, n in zip(completions, ends, sizes, strict=True):
        part = slice(hi - n, hi)
        timed = np.isfinite(used[part])
        if not timed.any():
            continue
        f = at(r)
        f.timed += int(timed.sum())
        f.working_days_used += float(used[part][timed].sum())
        f.promised_days += int(promised[part][timed].sum())
        f.statutory_days += int(statutory[part][timed].sum())


def _centre(scopes: Mapping[tuple[str, str], Figures], department: str | None) -> Figures:
    total = Figures()
    for (dept, _), f in scopes.items():
        if department is None or dept == department:
            total.add(f)
    return total


def _natural(key: tuple[str, ...]) -> list[tuple[int, int | str]]:
    """2号窗口 before 10号窗口."""
    import re

    return [
        (0, int(part)) if part.isdigit() else (1, part)
        for text in key
        for part in [*re.split(r"(\d+)", text), "\x00"]
    ]


def _rank(departments: dict[str, Figures]) -> tuple[Scoped, ...]:
    """By on-time rate (best first; none last), then fewer overdue, more completed, name."""

    def key(item: tuple[str, Figures]) -> tuple[int, float, int, int, str]:
        name, f = item
        rate = f.on_time_rate
        return (rate is None, -(rate or 0.0), f.overdue_open, -f.completed, name)

    ranked = sorted(departments.items(), key=key)
    return tuple(Scoped(name, "", f, i) for i, (name, f) in enumerate(ranked, 1))


def empty(f: Figures) -> bool:
    """Nothing at all happened in the scope: no cases, cards or ratings."""
    return not any(
        (
            f.accepted,
            f.completed,
            f.overdue_open,
            f.cards_total,
            f.cards_revoked,
            f.ratings,
            f.bad_reviews,
        )
    )


# Cards of these clocks are about a subject of their own (a pause, a step, a rating):
# their rule's title says it.
_TIMED = frozenset({"step", "review", "supplement"})


def _listed(
    rows: Rows,
    matters: Mapping[str, str],
    titles: Mapping[str, str],
    clock_rules: frozenset[str],
    department: str | None,
    cal: Calendar,
    lang: str,
) -> tuple[tuple[Listed, ...], ...]:
    """The red cards issued in the period and the cases overdue at its end, by name."""

    def mine(r: Mapping[str, Any]) -> bool:
        return department is None or r["dept"] == department

    def name(code: str | None) -> str:
        return "" if code is None else matters.get(code, code)

    def why(r: Mapping[str, Any]) -> str:
        """A clock's card: past which limit (its instant is the issue's); a check's: its name."""
        title = str(titles.get(r["rule"], r["rule"]))
        if r["rule"] not in clock_rules or r["clock"] in _TIMED:
            return title
        return f"超过{title}" if lang != "en" else f"past the {title}"

    red = tuple(
        Listed(r["case_id"], name(r["matter"]), r["dept"], r["win"], r["issued_at"], why(r),
               int(r["id"]))
        for r in rows.red_cards
        if mine(r)
    )  # fmt: skip
    mine_overdue = [r for r in rows.overdue if mine(r)]
    past = cal.working_days_between(
        # from the deadline's own day: the day a count starts on is not counted
        _naive(r["decision_deadline"] - dt.timedelta(seconds=1) for r in mine_overdue),
        _naive(rows.hi for _ in mine_overdue),
        errors="nat",
    )
    overdue = []
    for r, days in zip(mine_overdue, past, strict=True):
        late = f"{round(float(days), 1):g}" if np.isfinite(days) else "?"
        reason = (
            f"承诺 {r['promised_days']} 个工作日，期末已超期 {late} 个工作日"
            if lang != "en"
            else f"promised {r['promised_days']} working days, {late} past at the period's end"
        )
        overdue.append(Listed(r["case_id"], name(r["matter"]), r["dept"], r["win"],
                              r["decision_deadline"], reason))  # fmt: skip
    return red, tuple(overdue)


def _by_rule(
    rows: Rows, titles: Mapping[str, str], department: str | None
) -> tuple[RuleCount, ...]:
    counts: dict[str, dict[str, int]] = {}
    revoked: dict[str, int] = {}
    for r in rows.cards:
        if department is not None and r["dept"] != department:
            continue
        if r["revoked"]:
            revoked[r["rule"]] = revoked.get(r["rule"], 0) + int(r["n"])
            counts.setdefault(r["rule"], dict.fromkeys(LEVELS, 0))
        else:
            levels = counts.setdefault(r["rule"], dict.fromkeys(LEVELS, 0))
            levels[r["level"]] += int(r["n"])
    order = sorted(counts, key=lambda k: (-counts[k]["red"], -sum(counts[k].values()), k))
    return tuple(RuleCount(k, titles.get(k, k), counts[k], revoked.get(k, 0)) for k in order)


@dataclass(frozen=True)
class Context:
    """What a bulletin needs beside the rows: names, the calendar, the clock."""

    centre: str
    cal: Calendar
    generated_at: dt.datetime
    matters: Mapping[str, str] = field(default_factory=dict)
    rule_titles: Mapping[str, str] = field(default_factory=dict)
    clock_rules: frozenset[str] = frozenset()  # rules of a time limit (the rest: checks)
    lang: str = "zh"


def assemble(
    period: Period,
    department: str | None,
    current: Rows,
    previous: Rows,
    year_ago: Rows,
    ctx: Context,
) -> Report:
    """The bulletin of ``period`` for the centre or one ``department`` (pure)."""
    scopes = _scopes(current, ctx.cal)
    depts: dict[str, Figures] = {}
    for (dept, _), f in scopes.items():
        if department is None or dept == department:
            depts.setdefault(dept, Figures()).add(f)
    windows = tuple(
        Scoped(dept, win, f)
        for (dept, win), f in sorted(scopes.items(), key=lambda kv: _natural(kv[0]))
        if (department is None or dept == department) and not empty(f)
    )
    ranked = _rank({k: v for k, v in depts.items() if not empty(v)})
    red, overdue = _listed(current, ctx.matters, ctx.rule_titles, ctx.clock_rules, department,
                           ctx.cal, ctx.lang)  # fmt: skip
    notes = (
        "平均办理用时为受理至办结的工作日数，未扣除特别程序（暂停）时间，与承诺时限、法定时限对照。"
        if ctx.lang != "en"
        else "Mean working days used run from acceptance to completion, pauses not "
        "taken out, against the promised and statutory limits.",
    )
    return Report(
        period=period,
        centre=ctx.centre,
        department=department,
        generated_at=ctx.generated_at,
        figures=_centre(scopes, department),
        previous=_centre(_scopes(previous, ctx.cal), department),
        year_ago=_centre(_scopes(year_ago, ctx.cal), department),
        departments=ranked,
        windows=windows,
        by_rule=_by_rule(current, ctx.rule_titles, department),
        red_cards=red,
        overdue=overdue,
        notes=notes,
    )
