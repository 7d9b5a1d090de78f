"""Provisional years: the holidays 全国年节及纪念日放假办法 itself fixes (issue 16).

A year with no published notice counts weekends and the regulation's own
holidays (State Council Order 795 from 2025; the version then in force
before), lunar dates and Qingming from lunar_python, no adjusted working
weekends; every such day, and the whole year, is provisional.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from chinese_calendar import constants

from monitor.calendar import _statutory, load_calendar
from monitor.calendar._statutory import (
    LunarDays,
    lunar_days,
    regulation_for,
    statutory_days,
)
from monitor.cli import main

EPOCH = dt.date(1970, 1, 1)
ORDER_795 = "（按国务院令第795号推定）"


def days(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]")


def span(first: str, last: str) -> np.ndarray:
    return np.arange(first, np.datetime64(last) + 1, dtype="datetime64[D]")


def utc(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[s]")


def date_of(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=day)


def _rules_path() -> list[Path]:
    from monitor.calendar import calendar_search_path

    return calendar_search_path()


@pytest.fixture(scope="module")
def cn():
    cal = load_calendar("cn")
    # The tests below are about 2027 as a year with no notice: the shipped data stops at 2026.
    assert str(cal.published_through("2026-11-22")) == "2026-12-31", (
        "chinese-calendar now carries 2027: move these tests to the first unpublished year"
    )
    return cal


# --- the lunar library -----------------------------------------------------------------


def test_lunar_python_gives_chuxi_when_the_twelfth_month_has_29_days():
    from lunar_python import LunarYear

    # 腊月 of lunar 2024, 2025 and 2026 has 29 days: 除夕 is 廿九, the day before 初一
    for year, chuxi in ((2025, "2025-01-28"), (2026, "2026-02-16"), (2027, "2027-02-05")):
        assert LunarYear.fromYear(year - 1).getMonth(12).getDayCount() == 29
        got = lunar_days([year])[year]
        assert date_of(got.new_year - 1).isoformat() == chuxi
    # a 30-day 腊月: 除夕 2024 was 腊月三十, Feb 9
    assert LunarYear.fromYear(2023).getMonth(12).getDayCount() == 30
    assert date_of(lunar_days([2024])[2024].new_year - 1) == dt.date(2024, 2, 9)


def test_lunar_days_of_known_years():
    got = lunar_days([2025, 2026, 2027])
    as_text = {
        y: [date_of(d).isoformat() for d in (v.new_year, v.qingming, v.dragon_boat, v.mid_autumn)]
        for y, v in got.items()
    }
    assert as_text == {
        2025: ["2025-01-29", "2025-04-04", "2025-05-31", "2025-10-06"],
        2026: ["2026-02-17", "2026-04-05", "2026-06-19", "2026-09-25"],
        2027: ["2027-02-06", "2027-04-05", "2027-06-09", "2027-09-15"],
    }


# --- a year with no notice: 2027 -------------------------------------------------------


def test_2027_spring_festival_is_inferred_and_provisional(cn):
    festival = span("2027-02-05", "2027-02-08")  # 除夕 Fri .. 初三 Mon
    assert not cn.is_workday(festival).any()
    assert cn.is_provisional(festival).all()
    assert all(cn.holiday_name(d) == "春节" + ORDER_795 for d in festival)
    # no bridge days and no adjusted working weekend: Thu before and Tue after are worked,
    # the Sunday after is not
    assert list(cn.is_workday(days("2027-02-04", "2027-02-09", "2027-02-14"))) == [
        True,
        True,
        False,
    ]


def test_2027_every_order_795_day_is_a_rest_day(cn):
    expected = {
        "2027-01-01": "元旦",
        "2027-02-05": "春节",
        "2027-02-06": "春节",
        "2027-02-07": "春节",
        "2027-02-08": "春节",
        "2027-04-05": "清明节",
        "2027-05-01": "劳动节",
        "2027-05-02": "劳动节",
        "2027-06-09": "端午节",
        "2027-09-15": "中秋节",
        "2027-10-01": "国庆节",
        "2027-10-02": "国庆节",
        "2027-10-03": "国庆节",
    }
    got = statutory_days(2027, lunar_days([2027])[2027])
    assert {date_of(d).isoformat(): "、".join(n) for d, n in got.items()} == expected
    assert not cn.is_workday(days(*expected)).any()
    assert {d: cn.holiday_name(d) for d in expected} == {
        d: n + ORDER_795 for d, n in expected.items()
    }
    # the other weekdays of 2027 are worked, and all of 2027 is provisional
    year = span("2027-01-01", "2027-12-31")
    weekday = ((year.astype(np.int64) + 3) % 7) < 5
    rest_weekdays = year[weekday & ~cn.is_workday(year)]
    assert set(rest_weekdays.astype(str)) == {
        "2027-01-01",
        "2027-02-05",
        "2027-02-08",
        "2027-04-05",
        "2027-06-09",
        "2027-09-15",
        "2027-10-01",
    }
    assert cn.is_provisional(year).all()
    assert cn.sources[2027].startswith("推定：") and "国务院令第795号" in cn.sources[2027]
    assert "lunar_python" in cn.sources[2027]


def test_2027_national_day(cn):
    assert not cn.is_workday(span("2027-10-01", "2027-10-03")).any()
    assert cn.is_workday(days("2027-10-04"))[0]  # Monday: no bridge days, no 补假


def test_deadline_across_2027_national_day_skips_it_and_is_provisional(cn):
    # accepted Wed 2027-09-29 10:00 Beijing, 3 wd: Thu Sep 30, (Oct 1-3 off), Mon Oct 4,
    # Tue Oct 5 -> 2027-10-05 24:00
    start = utc("2027-09-29T02:00:00")
    ends, prov = cn.deadline(start, [3], provisional=True)
    assert ends[0] == np.datetime64("2027-10-05T16:00:00") and prov[0]
    counted, cprov = cn.working_days_between(start, ends, provisional=True)
    assert counted[0] == 3.0 and cprov[0]


def test_deadline_from_2026_into_2027_new_year(cn):
    # Mon 2026-12-21 10:00, 9 wd: Dec 22-25, 28-31 (8), Fri 2027-01-01 is New Year's Day,
    # so the 9th is Mon Jan 4
    ends, prov = cn.deadline(utc("2026-12-21T02:00:00"), [5, 9], provisional=True)
    assert ends[1] == np.datetime64("2027-01-04T16:00:00")
    assert list(prov) == [False, True]


def test_every_unpublished_year_to_2100_has_its_order_795_days_off(cn):
    for year, lunar in lunar_days(range(2027, 2101)).items():
        fixed = statutory_days(year, lunar)
        assert len(fixed) in (12, 13), year  # 13 days; 12 when two holidays share one
        idx = np.array([date_of(d).isoformat() for d in fixed], dtype="datetime64[D]")
        assert not cn.is_workday(idx).any(), year
        assert cn.is_provisional(idx).all(), year


def test_two_holidays_on_one_day_name_both(cn):
    # 2039: Mid-Autumn falls on Oct 2 (named in the regulation's order)
    assert date_of(lunar_days([2039])[2039].mid_autumn) == dt.date(2039, 10, 2)
    assert cn.holiday_name("2039-10-02") == "中秋节、国庆节" + ORDER_795
    assert cn.is_workday(days("2039-10-04"))[0]  # Tue: no 补假 is inferred


def test_years_before_the_data_use_the_regulation_then_in_force(cn):
    # 2000-2003 have no notice in the data; the 1999 version (Order 270) governed them:
    # Spring Festival 初一-初三, Labour Day May 1-3, no Qingming, Dragon Boat, Mid-Autumn
    assert regulation_for(2003).order == "国务院令第270号"
    assert not cn.is_workday(days("2001-01-24", "2001-01-25", "2001-01-26")).any()  # 初一-初三
    assert cn.is_workday(days("2001-01-23"))[0]  # 除夕 (Tue) was worked then
    assert not cn.is_workday(days("2001-05-01", "2001-05-02", "2001-05-03")).any()
    assert cn.is_workday(days("2001-04-05"))[0]  # Qingming, a Thursday
    assert cn.holiday_name("2001-05-03") == "劳动节（按国务院令第270号推定）"
    assert cn.is_provisional(days("2001-05-03"))[0]
    assert "国务院令第270号" in cn.sources[2001]


# --- published notices against the inference -------------------------------------------


@pytest.mark.parametrize("year", [2025, 2026])
def test_order_795_days_are_holidays_in_the_2025_and_2026_notices(year):
    reg = regulation_for(year)
    assert reg.order == "国务院令第795号"
    fixed = statutory_days(year, lunar_days([year])[year])
    published = {(d - EPOCH).days for d in constants.holidays if d.year == year}
    assert len(fixed) == 13
    missing = sorted(date_of(d).isoformat() for d in fixed if d not in published)
    assert missing == []
    # the notices add bridge days: more holidays than the regulation fixes
    assert len(published) > len(fixed)


def test_older_regulations_agree_with_every_notice_2004_2024(cn):
    # The notice's holiday block holds every day the regulation then in force fixes
    # (chinese-calendar leaves out some weekend days inside a block, e.g. Sat 2012-06-23,
    # so the check is that each such day is a rest day, and a listed holiday when a weekday).
    listed = {(d - EPOCH).days for d in constants.holidays}
    for year, lunar in lunar_days(range(2004, 2025)).items():
        for day in statutory_days(year, lunar):
            date = date_of(day)
            assert not cn.is_workday(days(date.isoformat()))[0], date
            if date.weekday() < 5:
                assert day in listed, date
    assert regulation_for(2007).order == "国务院令第270号"
    assert regulation_for(2008).order == "国务院令第513号"
    assert regulation_for(2013).order == "国务院令第513号"
    assert regulation_for(2014).order == "国务院令第644号"
    assert regulation_for(2024).order == "国务院令第644号"


# --- a published [years.N] block replaces the inference ---------------------------------


def test_a_2027_notice_replaces_the_inference(tmp_path: Path):
    (tmp_path / "next.toml").write_text(
        'base = "cn"\n'
        "[years.2027]\n"
        'source = "test notice"\n'
        'holidays = ["2027-01-01..2027-01-03", "2027-02-06..2027-02-13"]\n'
        'workdays = ["2027-02-14"]\n',
        encoding="utf-8",
    )
    cal = load_calendar("next", search_path=[tmp_path, *_rules_path()])
    year = span("2027-01-01", "2027-12-31")
    assert not cal.is_provisional(year).any()
    assert cal.sources[2027] == "test notice"
    # 除夕 Fri Feb 5 is not in this notice: worked; Sun Feb 14 is a make-up working day
    assert list(cal.is_workday(days("2027-02-05", "2027-02-10", "2027-02-14"))) == [
        True,
        False,
        True,
    ]
    # nor are Qingming, Dragon Boat, Mid-Autumn or National Day: all worked
    assert cal.is_workday(days("2027-04-05", "2027-06-09", "2027-09-15", "2027-10-01")).all()
    assert cal.holiday_name("2027-02-05") is None
    assert cal.holiday_name("2027-02-14") == "调休上班"
    # a deadline over the make-up Sunday counts it and is not provisional
    ends, prov = cal.deadline(utc("2027-02-04T02:00:00"), [2], provisional=True)
    assert ends[0] == np.datetime64("2027-02-14T16:00:00")  # Feb 5, Sun Feb 14
    assert not prov[0]
    # 2028 still has no notice: inferred
    assert cal.is_provisional(days("2028-01-01"))[0]
    assert not cal.is_workday(days("2028-10-02"))[0]
    assert cal.holiday_name("2028-10-02") == "国庆节" + ORDER_795


# --- the cache -------------------------------------------------------------------------


def test_lunar_days_are_computed_once_and_cached_on_disk(tmp_path, monkeypatch):
    path = tmp_path / "lunar.json"
    monkeypatch.setattr(_statutory, "cache_path", lambda: path)
    monkeypatch.setattr(_statutory, "_MEMO", {})
    calls: list[int] = []
    compute = _statutory._compute

    def counting(year: int) -> LunarDays:
        calls.append(year)
        return compute(year)

    monkeypatch.setattr(_statutory, "_compute", counting)
    first = lunar_days([2027, 2028])
    assert calls == [2027, 2028] and path.is_file()
    assert lunar_days([2027, 2028]) == first and calls == [2027, 2028]  # memoised
    # a new process: read from disk, nothing computed
    monkeypatch.setattr(_statutory, "_MEMO", {})
    assert lunar_days([2028, 2027]) == first and calls == [2027, 2028]
    # an implausible or unreadable cache is recomputed
    doc = json.loads(path.read_text("utf-8"))
    doc["years"]["2027"] = [0, 0, 0, 0]
    path.write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setattr(_statutory, "_MEMO", {})
    assert lunar_days([2027, 2028]) == first and calls == [2027, 2028, 2027]
    path.write_text("{not json", encoding="utf-8")
    monkeypatch.setattr(_statutory, "_MEMO", {})
    assert lunar_days([2027]) == {2027: first[2027]} and calls[-1] == 2027
    # another library version's cache is not used
    doc["years"]["2027"] = [first[2027].new_year + 1, *doc["years"]["2028"][1:]]
    doc["library"] = "lunar_python 0.0.1"
    path.write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setattr(_statutory, "_MEMO", {})
    assert lunar_days([2027]) == {2027: first[2027]}


def test_unwritable_cache_still_computes(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setattr(_statutory, "cache_path", lambda: blocker / "sub" / "lunar.json")
    monkeypatch.setattr(_statutory, "_MEMO", {})
    assert date_of(lunar_days([2027])[2027].new_year) == dt.date(2027, 2, 6)


# --- what the CLI says ----------------------------------------------------------------


def test_cli_names_the_inferred_holiday_and_says_why(monkeypatch):
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    out = io.StringIO()
    assert main(["calendar", "is-workday", "2027-02-05", "2027-02-09"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("2027-02-05 星期五：休息日（春节（按国务院令第795号推定））")
    assert "暂定" in lines[0] and "国务院令第795号推定法定节假日" in lines[0]
    assert lines[1].startswith("2027-02-09 星期二：工作日") and "暂定" in lines[1]
    monkeypatch.setenv("JIANCHA_LANG", "en")
    out = io.StringIO()
    assert main(["calendar", "deadline", "--start", "2027-09-29T10:00", "--workdays", "3"],
                out=out) == 0  # fmt: skip
    text = out.getvalue()
    assert "2027-10-05" in text and "Order 795" in text and "no make-up working days" in text
