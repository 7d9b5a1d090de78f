"""The periods a bulletin covers: a local day, ISO week, month or year of the centre.

Officers name periods the way they write them (``2026-12-02``, ``2026-W49``,
``2026-11``, ``2026``); the figures need the UTC instants [lo, hi) of the
local period, and the bulletin compares it with the one before (环比) and the
same one a year earlier (同比). All of it is pure date arithmetic.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "KINDS",
    "Kind",
    "Period",
    "PeriodError",
    "containing",
    "last_complete",
    "parse_period",
]

Kind = Literal["daily", "weekly", "monthly", "yearly"]
KINDS: Final[tuple[Kind, ...]] = ("daily", "weekly", "monthly", "yearly")

_EXAMPLES: Final[dict[Kind, str]] = {
    "daily": "2026-12-02",
    "weekly": "2026-W49",
    "monthly": "2026-11",
    "yearly": "2026",
}
_PATTERNS: Final[dict[Kind, re.Pattern[str]]] = {
    "daily": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "weekly": re.compile(r"(\d{4})-?[Ww](\d{1,2})"),
    "monthly": re.compile(r"(\d{4})-(\d{1,2})"),
    "yearly": re.compile(r"(\d{4})"),
}


class PeriodError(ValueError):
    """A period text that does not name a period of its kind; ``str()`` says how to write one."""


@dataclass(frozen=True, slots=True)
class Period:
    """A local period [first, after) of the centre, in days; ``lo``/``hi`` are its instants."""

    kind: Kind
    first: dt.date
    after: dt.date  # the day after the last one
    tz: str = "Asia/Shanghai"

    @property
    def key(self) -> str:
        """The period as written on the command line (and in the JSON)."""
        if self.kind == "daily":
            return self.first.isoformat()
        if self.kind == "weekly":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "monthly":
            return f"{self.first.year}-{self.first.month:02d}"
        return str(self.first.year)

    @property
    def last(self) -> dt.date:
        return self.after - dt.timedelta(days=1)

    def label(self, lang: str = "zh", *, short: bool = False) -> str:
        """The period as an officer writes it in a title: 2024年3月, 2026年第49周（…）.

        ``short``: a week without its days, for a table's column head.
        """
        f = self.first
        if short and self.kind == "weekly":
            year, week, _ = f.isocalendar()
            return f"week {self.key}" if lang == "en" else f"{year}年第{week}周"
        if lang == "en":
            return {
                "daily": f.isoformat(),
                "weekly": f"week {self.key} ({f.isoformat()} – {self.last.isoformat()})",
                "monthly": f.strftime("%B %Y"),
                "yearly": str(f.year),
            }[self.kind]
        if self.kind == "daily":
            return f"{f.year}年{f.month}月{f.day}日"
        if self.kind == "weekly":
            year, week, _ = f.isocalendar()
            return (
                f"{year}年第{week}周（{f.month}月{f.day}日至{self.last.month}月{self.last.day}日）"
            )
        if self.kind == "monthly":
            return f"{f.year}年{f.month}月"
        return f"{f.year}年"

    def _instant(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(self.tz)).astimezone(dt.UTC)

    @property
    def lo(self) -> dt.datetime:
        return self._instant(self.first)

    @property
    def hi(self) -> dt.datetime:
        return self._instant(self.after)

    def previous(self) -> Period:
        """The period just before (环比)."""
        return _containing(self.kind, self.first - dt.timedelta(days=1), self.tz)

    def year_earlier(self) -> Period:
        """The same period a year earlier (同比): ISO week 53 falls back to week 52."""
        f = self.first
        if self.kind == "weekly":
            year, week, _ = f.isocalendar()
            week = min(week, dt.date(year - 1, 12, 28).isocalendar()[1])
            return _containing("weekly", dt.date.fromisocalendar(year - 1, week, 1), self.tz)
        day = (
            f.replace(year=f.year - 1)
            if (f.month, f.day) != (2, 29)
            else f.replace(year=f.year - 1, day=28)
        )
        return _containing(self.kind, day, self.tz)


def _containing(kind: Kind, day: dt.date, tz: str) -> Period:
    """The period of ``kind`` that holds local ``day``."""
    if kind == "daily":
        return Period(kind, day, day + dt.timedelta(days=1), tz)
    if kind == "weekly":
        first = day - dt.timedelta(days=day.weekday())
        return Period(kind, first, first + dt.timedelta(days=7), tz)
    if kind == "monthly":
        first = day.replace(day=1)
        after = (first + dt.timedelta(days=32)).replace(day=1)
        return Period(kind, first, after, tz)
    return Period(kind, dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1), tz)


def containing(kind: Kind, day: dt.date, tz: str = "Asia/Shanghai") -> Period:
    """The period of ``kind`` that holds local ``day``."""
    return _containing(kind, day, tz)


def parse_period(kind: Kind, text: str, tz: str = "Asia/Shanghai") -> Period:
    """The period ``text`` names; `PeriodError` (in the language in force) if none."""
    from monitor.i18n import h

    raw = text.strip()
    m = _PATTERNS[kind].fullmatch(raw)
    try:
        if m is None:
            raise ValueError(raw)
        nums = [int(g) for g in m.groups()]
        if kind == "daily":
            day = dt.date(nums[0], nums[1], nums[2])
        elif kind == "weekly":
            day = dt.date.fromisocalendar(nums[0], nums[1], 1)
        elif kind == "monthly":
            day = dt.date(nums[0], nums[1], 1)
        else:
            day = dt.date(nums[0], 1, 1)
        if day.year < 1901:
            raise ValueError(raw)
    except ValueError:
        names = {
            "daily": ("日", "day"),
            "weekly": ("周", "week"),
            "monthly": ("月", "month"),
            "yearly": ("年", "year"),
        }[kind]
        raise PeriodError(
            h(
                f"无效的{names[0]}报期间：{text!r}（{kind} 的期间应写作 {_EXAMPLES[kind]}）",
                f"invalid {names[1]} period {text!r} ({kind} periods are written "
                f"{_EXAMPLES[kind]})",
            )
        ) from None
    return _containing(kind, day, tz)


def last_complete(kind: Kind, now: dt.datetime, tz: str = "Asia/Shanghai") -> Period:
    """The last period of ``kind`` that has ended by ``now`` in the centre's time zone."""
    today = now.astimezone(zoneinfo.ZoneInfo(tz)).date()
    return _containing(kind, today, tz).previous()
