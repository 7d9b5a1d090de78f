"""The holidays the national regulation itself fixes, for years with no published notice.

全国年节及纪念日放假办法 fixes the days of each national holiday; the State
Council's yearly notice then arranges them into blocks, with bridge days and
adjusted working weekends (调休上班). For a year no notice has reached, the
calendar counts the fixed days alone, as the version of the regulation in
force that year has them, and the year stays provisional.

Lunar dates (除夕, 端午, 中秋) and the Qingming solar term come from
``lunar_python``, which computes them astronomically (no table that ends):
about 5 ms a year in pure Python, so each year's result is memoised and kept
on disk beside numba's compiled kernels (``NUMBA_CACHE_DIR``, else this
package's ``__pycache__``); a missing, unreadable or implausible cache is
simply recomputed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "REGULATIONS",
    "LunarDays",
    "Regulation",
    "cache_path",
    "inferred_name",
    "library_version",
    "lunar_days",
    "regulation_for",
    "source_text",
    "statutory_days",
]

_EPOCH = dt.date(1970, 1, 1)
_LIBRARY = "lunar_python"
_FORMAT = 1  # bump when the cached fields change


@dataclass(frozen=True)
class Regulation:
    """One version of 全国年节及纪念日放假办法: which days it makes national holidays."""

    order: str  # the State Council order that issued it
    first_year: int  # first calendar year it governs
    spring: tuple[int, ...]  # Spring Festival, days from 正月初一 (除夕 is -1)
    labour_days: int  # May 1 onward
    traditional: bool  # Qingming, Dragon Boat and Mid-Autumn are holidays


# The versions in force over 2000–2100. Each governs from its first year until the next.
REGULATIONS = (
    # 1999: New Year 1 day, Spring Festival 初一–初三, Labour Day May 1–3, National Day 3.
    Regulation("国务院令第270号", 1999, (0, 1, 2), 3, False),
    # 2008: Labour Day 1 day; Qingming, Dragon Boat, Mid-Autumn added; Spring Festival 除夕–初二.
    Regulation("国务院令第513号", 2008, (-1, 0, 1), 1, True),
    # 2014: Spring Festival 初一–初三 again.
    Regulation("国务院令第644号", 2014, (0, 1, 2), 1, True),
    # 2025: Spring Festival 除夕–初三, Labour Day May 1–2 (13 days in all).
    Regulation("国务院令第795号", 2025, (-1, 0, 1, 2), 2, True),
)


def regulation_for(year: int) -> Regulation:
    """The version of the regulation that governs ``year``."""
    found = REGULATIONS[0]
    for reg in REGULATIONS:
        if reg.first_year <= year:
            found = reg
    return found


@dataclass(frozen=True)
class LunarDays:
    """A Gregorian year's lunar festivals and Qingming, as days since 1970-01-01."""

    new_year: int  # 正月初一 (除夕 is the day before, whether 腊月 has 29 or 30 days)
    qingming: int  # the day of the Qingming solar term, Beijing time
    dragon_boat: int  # 五月初五
    mid_autumn: int  # 八月十五

    def plausible(self, year: int) -> bool:
        """Each day inside a window it always falls in (2000–2100: 01-21..02-19,
        04-04..04-05, 05-27..06-25, 09-07..10-06): a check on a cached value."""

        def within(day: int, lo: tuple[int, int], hi: tuple[int, int]) -> bool:
            return _ord(dt.date(year, *lo)) <= day <= _ord(dt.date(year, *hi))

        return (
            within(self.new_year, (1, 20), (2, 21))
            and within(self.qingming, (4, 3), (4, 6))
            and within(self.dragon_boat, (5, 26), (6, 27))
            and within(self.mid_autumn, (9, 6), (10, 8))
        )


def _ord(day: dt.date) -> int:
    return (day - _EPOCH).days


def _compute(year: int) -> LunarDays:
    from lunar_python import Lunar  # type: ignore[import-untyped]

    def day(solar: Any) -> int:
        return _ord(dt.date(int(solar.getYear()), int(solar.getMonth()), int(solar.getDay())))

    # Every call below reads the same lunar year, which lunar_python computes once.
    return LunarDays(
        new_year=day(Lunar.fromYmd(year, 1, 1).getSolar()),
        qingming=day(Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]),
        dragon_boat=day(Lunar.fromYmd(year, 5, 5).getSolar()),
        mid_autumn=day(Lunar.fromYmd(year, 8, 15).getSolar()),
    )


_MEMO: dict[int, LunarDays] = {}
_LOCK = threading.Lock()
_VERSION: list[str] = []


def library_version() -> str:
    """``lunar_python`` and its installed version (the disk cache's key).

    Read from the name of its ``.dist-info`` folder: importlib.metadata would
    cost a calendar load some 25 ms (it imports the email parser).
    """
    if not _VERSION:
        spec = importlib.util.find_spec(_LIBRARY)
        infos = []
        if spec is not None and spec.origin is not None:
            infos = sorted(Path(spec.origin).parent.parent.glob(f"{_LIBRARY}-*.dist-info"))
        if len(infos) == 1:
            _VERSION.append(f"{_LIBRARY} {infos[0].name[len(_LIBRARY) + 1 : -len('.dist-info')]}")
        else:
            from importlib.metadata import PackageNotFoundError, version

            try:
                _VERSION.append(f"{_LIBRARY} {version(_LIBRARY)}")
            except PackageNotFoundError:
                _VERSION.append(f"{_LIBRARY} ?")
    return _VERSION[0]


def cache_path() -> Path:
    """Where the computed years are kept between processes."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    base = Path(folder) if folder else Path(__file__).with_name("__pycache__")
    return base / f"jiancha-lunar-{library_version().replace(' ', '-')}.json"


def _read_cache(path: Path) -> dict[int, LunarDays]:
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("format") != _FORMAT or doc.get("library") != library_version():
            return {}
        out: dict[int, LunarDays] = {}
        for key, values in doc["years"].items():
            year = int(key)
            days = LunarDays(*(int(v) for v in values))
            if days.plausible(year):
                out[year] = days
        return out
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _write_cache(path: Path, memo: dict[int, LunarDays]) -> None:
    doc = {
        "format": _FORMAT,
        "library": library_version(),
        "years": {
            str(y): [d.new_year, d.qingming, d.dragon_boat, d.mid_autumn]
            for y, d in sorted(memo.items())
        },
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    except OSError:
        return  # a read-only install: the next process computes again
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.chmod(tmp, 0o644)  # public data: readable like numba's cache beside it
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def lunar_days(years: Iterable[int]) -> dict[int, LunarDays]:
    """Each year's lunar festivals and Qingming: memoised, on disk, else computed."""
    wanted = list(years)
    with _LOCK:
        missing = [y for y in wanted if y not in _MEMO]
        if missing:
            path = cache_path()
            for year, days in _read_cache(path).items():
                _MEMO.setdefault(year, days)
            todo = [y for y in missing if y not in _MEMO]
            for year in todo:
                _MEMO[year] = _compute(year)
            if todo:
                _write_cache(path, _MEMO)
        return {y: _MEMO[y] for y in wanted}


def statutory_days(year: int, lunar: LunarDays) -> dict[int, list[str]]:
    """The days (since 1970-01-01) the regulation in force makes holidays, with names."""
    reg = regulation_for(year)
    out: dict[int, list[str]] = {}

    def add(day: int, name: str) -> None:
        out.setdefault(day, []).append(name)

    add(_ord(dt.date(year, 1, 1)), "元旦")
    for offset in reg.spring:
        add(lunar.new_year + offset, "春节")
    if reg.traditional:
        add(lunar.qingming, "清明节")
    for i in range(reg.labour_days):
        add(_ord(dt.date(year, 5, 1 + i)), "劳动节")
    if reg.traditional:
        add(lunar.dragon_boat, "端午节")
        add(lunar.mid_autumn, "中秋节")
    for i in range(3):
        add(_ord(dt.date(year, 10, 1 + i)), "国庆节")
    return out


def inferred_name(names: list[str], year: int) -> str:
    """``春节（按国务院令第795号推定）``; a day two holidays share names both."""
    return f"{'、'.join(names)}（按{regulation_for(year).order}推定）"


def source_text(year: int) -> str:
    """The ``sources`` entry of an inferred year."""
    reg = regulation_for(year)
    what = "农历与清明节气" if reg.traditional else "农历"
    return f"推定：全国年节及纪念日放假办法（{reg.order}），无调休；{what}据 {library_version()}"
