"""Parsing of calendar override files (``rules/calendars/*.toml``).

An operator edits these by hand, often in a hurry when the State Council
notice for next year appears, so every error names the file, the line and
the problem, in the operator's language.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.i18n import t
from monitor.tomlpos import TomlLines, syntax_line

FIRST_YEAR = 2000
LAST_YEAR = 2100
_EPOCH = dt.date(1970, 1, 1)


class CalendarError(ValueError):
    """A calendar file or request is wrong; ``str()`` says where and why."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
        super().__init__(where + message)


@dataclass(frozen=True)
class DateRule:
    """A named set of local holidays or extra working days."""

    name: str
    days: tuple[int, ...] = ()  # days since 1970-01-01
    annual: tuple[tuple[int, int], ...] = ()  # (month, day), every year
    from_year: int = FIRST_YEAR
    to_year: int = LAST_YEAR


@dataclass(frozen=True)
class YearNotice:
    """A year's complete national schedule (a State Council notice)."""

    year: int
    holidays: tuple[int, ...]
    workdays: tuple[int, ...]
    source: str = ""


@dataclass(frozen=True)
class CalendarSpec:
    """Everything a calendar file says; ``None`` means "as the base calendar"."""

    name: str
    base: str = "national"
    path: Path | None = None
    description: str = ""
    timezone: str | None = None
    office_hours: tuple[tuple[int, int], ...] | None = None  # local seconds of day
    years: tuple[YearNotice, ...] = ()
    holidays: tuple[DateRule, ...] = ()
    workdays: tuple[DateRule, ...] = ()


_TOP_KEYS = {"description", "base", "timezone", "office_hours", "years", "holidays", "workdays"}
_YEAR_KEYS = {"source", "holidays", "workdays"}
_RULE_KEYS = {"name", "dates", "annual", "from_year", "to_year"}
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ANNUAL_RE = re.compile(r"^(\d{2})-(\d{2})$")
_HOURS_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.loc = TomlLines(text)

    def fail(self, message: str, needle: str | None = None, after: int = 0) -> CalendarError:
        line = self.loc.find(needle, after) if needle is not None else (after or None)
        return CalendarError(message, self.path, line)

    def check_keys(self, table: dict[str, Any], allowed: set[str], after: int) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    t("cal.unknown_key", name=key, allowed=", ".join(sorted(allowed))), key, after
                )

    def typed(self, value: Any, kind: type, key: str, expected: str, after: int) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(
                t("cal.bad_type", name=key, expected=expected, got=type(value).__name__),
                key,
                after,
            )
        return value

    def str_list(self, value: Any, key: str, after: int) -> list[str]:
        self.typed(value, list, key, "字符串列表 / list of strings", after)
        for item in value:
            self.typed(item, str, key, "字符串列表 / list of strings", after)
        return list(value)

    def dates(self, items: list[str], after: int, year: int | None = None) -> tuple[int, ...]:
        out: list[int] = []
        for item in items:
            lo, _, hi = item.partition("..")
            first = self.date(lo.strip(), item, after)
            last = self.date(hi.strip(), item, after) if hi else first
            if last < first:
                raise self.fail(t("cal.bad_date", value=item), f'"{item}"', after)
            for d in (first, last):
                if year is not None and d.year != year:
                    raise self.fail(
                        t("cal.date_outside_year", value=d.isoformat(), year=year),
                        f'"{item}"',
                        after,
                    )
            base = (first - _EPOCH).days
            out.extend(range(base, base + (last - first).days + 1))
        return tuple(out)

    def date(self, text: str, item: str, after: int) -> dt.date:
        m = _DATE_RE.match(text)
        try:
            if not m:
                raise ValueError(text)
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise self.fail(t("cal.bad_date", value=item), f'"{item}"', after) from None
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise self.fail(
                t(
                    "cal.date_out_of_range",
                    value=day.isoformat(),
                    lo=f"{FIRST_YEAR}-01-01",
                    hi=f"{LAST_YEAR}-12-31",
                ),
                f'"{item}"',
                after,
            )
        return day

    def year(self, value: Any, key: str, after: int) -> int:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(t("cal.bad_year", value=value, lo=FIRST_YEAR, hi=LAST_YEAR), key, after)
        if not FIRST_YEAR <= value <= LAST_YEAR:
            raise self.fail(
                t("cal.bad_year", value=value, lo=FIRST_YEAR, hi=LAST_YEAR), str(value), after
            )
        return value

    def rules(self, value: Any, key: str) -> tuple[DateRule, ...]:
        self.typed(value, list, key, f"表数组 / array of tables ([[{key}]])", 0)
        out = []
        for nth, entry in enumerate(value):
            after = self.loc.array_table(key, nth) or 0
            self.typed(entry, dict, key, "表 / table", after)
            self.check_keys(entry, _RULE_KEYS, after)
            name = self.typed(entry.get("name", key), str, "name", "字符串 / string", after)
            days = self.dates(self.str_list(entry.get("dates", []), "dates", after), after)
            annual = []
            for item in self.str_list(entry.get("annual", []), "annual", after):
                m = _ANNUAL_RE.match(item)
                try:
                    if not m:
                        raise ValueError(item)
                    dt.date(2000, int(m[1]), int(m[2]))  # 2000 is a leap year: 02-29 allowed
                except ValueError:
                    raise self.fail(t("cal.bad_annual", value=item), f'"{item}"', after) from None
                annual.append((int(m[1]), int(m[2])))
            lo = self.year(entry.get("from_year", FIRST_YEAR), "from_year", after)
            hi = self.year(entry.get("to_year", LAST_YEAR), "to_year", after)
            out.append(DateRule(name, days, tuple(annual), lo, hi))
        return tuple(out)

    def office_hours(self, value: Any) -> tuple[tuple[int, int], ...]:
        items = self.str_list(value, "office_hours", 0)
        periods: list[tuple[int, int]] = []
        for item in items:
            m = _HOURS_RE.match(item.strip())
            ok = m is not None
            if m:
                h1, m1, h2, m2 = (int(x) for x in m.groups())
                a, b = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
                ok = m1 < 60 and m2 < 60 and 0 <= a < b <= 86400
                ok = ok and (not periods or periods[-1][1] <= a)
            if not ok:
                raise self.fail(t("cal.bad_office_hours", value=item), f'"{item}"')
            periods.append((a, b))
        return tuple(periods)

    def parse(self, data: dict[str, Any], name: str) -> CalendarSpec:
        self.check_keys(data, _TOP_KEYS, 0)
        base = self.typed(data.get("base", "national"), str, "base", "字符串 / string", 0)
        description = self.typed(
            data.get("description", ""), str, "description", "字符串 / string", 0
        )
        tz = data.get("timezone")
        if tz is not None:
            self.typed(tz, str, "timezone", "字符串 / string", 0)
            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise self.fail(t("cal.bad_timezone", value=tz), "timezone") from None
        hours = self.office_hours(data["office_hours"]) if "office_hours" in data else None
        years: list[YearNotice] = []
        ytab = self.typed(data.get("years", {}), dict, "years", "表 / table ([years.YYYY])", 0)
        for key, body in ytab.items():
            after = self.loc.table(f"years.{key}") or 0
            year = self.year(key, f"years.{key}", after)
            self.typed(body, dict, f"years.{key}", "表 / table", after)
            self.check_keys(body, _YEAR_KEYS, after)
            hol = self.dates(
                self.str_list(body.get("holidays", []), "holidays", after), after, year
            )
            wrk = self.dates(
                self.str_list(body.get("workdays", []), "workdays", after), after, year
            )
            both = set(hol) & set(wrk)
            if both:
                day = (_EPOCH + dt.timedelta(days=min(both))).isoformat()
                wline = self.loc.find("workdays", after) or after
                raise self.fail(t("cal.holiday_and_workday", value=day), day, wline)
            source = self.typed(body.get("source", ""), str, "source", "字符串 / string", after)
            years.append(YearNotice(year, hol, wrk, source))
        return CalendarSpec(
            name=name,
            base=base,
            path=self.path,
            description=description,
            timezone=tz,
            office_hours=hours,
            years=tuple(sorted(years, key=lambda y: y.year)),
            holidays=self.rules(data.get("holidays", []), "holidays"),
            workdays=self.rules(data.get("workdays", []), "workdays"),
        )


def parse_spec_file(path: Path, name: str | None = None) -> CalendarSpec:
    """Read and validate one calendar file; raise CalendarError naming file and line."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(t("cal.unreadable", detail=exc), path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = syntax_line(exc, text)
        raise CalendarError(t("cal.toml_syntax", detail=exc), path, line) from None
    parser = _Parser(path, text)
    return parser.parse(data, name or path.stem)
