"""The working-day calendar against the rule book (docs/rule-book.md §3) and real schedules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import chinese_calendar
import numpy as np
import pytest

from monitor.calendar import CalendarError, CalendarSpec, build_calendar, load_calendar
from monitor.calendar._spec import DateRule

NAT = np.datetime64("NaT", "s")


def utc(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[s]")


def days(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]")


@pytest.fixture(scope="module")
def cn():
    return load_calendar("cn")


@pytest.fixture(scope="module")
def office():
    # 09:00-12:00, 13:30-17:30 Beijing time: 7 working hours a day
    return load_calendar("example-centre")


# --- docs/rule-book.md and docs/contract.md worked examples ---------------------------------


def test_contract_example_spring_festival_2024(cn):
    # accepted Thu 2024-02-08 10:00 Beijing, 5 wd -> Feb 9, 18, 19, 20, 21 -> 2024-02-21 24:00
    start = utc("2024-02-08T02:00:00")
    assert cn.deadline(start, [5])[0] == np.datetime64("2024-02-21T16:00:00")
    # the counted days, one by one
    ends = cn.deadline(np.repeat(start, 5), np.arange(1, 6))
    local_days = (ends - np.timedelta64(8, "h") - np.timedelta64(1, "s")).astype("datetime64[D]")
    assert list(local_days.astype(str)) == [
        "2024-02-09",
        "2024-02-18",
        "2024-02-19",
        "2024-02-20",
        "2024-02-21",
    ]


def test_submitted_on_saturday_counts_working_sunday(cn):
    # submitted Sat 2024-02-03 (Beijing), acceptance clock 1 wd -> Sun Feb 4 (working) 24:00
    start = utc("2024-02-03T01:00:00")
    assert cn.deadline(start, [1])[0] == np.datetime64("2024-02-04T16:00:00")


def test_late_evening_utc_is_already_next_day_in_beijing(cn):
    # 2024-02-07 17:00 UTC is Thu 2024-02-08 01:00 in Beijing: the starting day is Feb 8
    late = utc("2024-02-07T17:00:00")
    assert cn.deadline(late, [5])[0] == np.datetime64("2024-02-21T16:00:00")
    # one hour earlier it is still Wed Feb 7 in Beijing: Feb 8 itself is the first counted day
    earlier = utc("2024-02-07T15:59:59")
    assert cn.deadline(earlier, [5])[0] == np.datetime64("2024-02-20T16:00:00")


def test_deadline_and_count_are_exact_at_the_example(cn):
    start = utc("2024-02-08T02:00:00")
    ends = utc(
        "2024-02-08T15:59:59",  # still the starting day: nothing counted
        "2024-02-09T04:00:00",  # Feb 9 12:00: half of the first counted day
        "2024-02-17T12:00:00",  # holiday: still 1
        "2024-02-18T16:00:00",  # end of the working Sunday: 2
        "2024-02-21T16:00:00",  # the deadline: 5
    )
    got = cn.working_days_between(np.repeat(start, ends.size), ends)
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 2.0, 5.0])


# --- real schedules, including the amended ones ----------------------------------


def test_2020_spring_festival_extension(cn):
    # The State Council extended the 2020 holiday to Feb 2: Sat Feb 1, first announced
    # as an adjusted working day, was not worked.
    assert not cn.is_workday(days("2020-02-01"))[0]
    assert not cn.is_workday(days("2020-01-31"))[0]
    assert not cn.is_workday(days("2020-02-02"))[0]
    assert cn.is_workday(days("2020-02-03"))[0]
    # accepted Thu 2020-01-23, 1 wd -> Mon Feb 3
    assert cn.deadline(utc("2020-01-23T02:00:00"), [1])[0] == np.datetime64("2020-02-03T16:00:00")


def test_2019_amended_labour_day(cn):
    # Amended in March 2019: May 1-4 off, Sun Apr 28 and Sun May 5 worked.
    assert list(cn.is_workday(days("2019-04-28", "2019-05-02", "2019-05-03", "2019-05-05"))) == [
        True,
        False,
        False,
        True,
    ]
    # accepted Tue 2019-04-30, 1 wd -> Sun May 5
    assert cn.deadline(utc("2019-04-30T02:00:00"), [1])[0] == np.datetime64("2019-05-05T16:00:00")


def test_is_workday_matches_chinese_calendar_every_day_2004_2026(cn):
    all_days = np.arange("2004-01-01", "2027-01-01", dtype="datetime64[D]")
    expected = np.array([chinese_calendar.is_workday(d.item()) for d in all_days])
    got = cn.is_workday(all_days)
    mismatched = all_days[got != expected]
    assert mismatched.size == 0, mismatched[:10]
    assert not cn.is_provisional(all_days).any()


# --- office hours, pauses, extensions -------------------------------------------


def test_office_hours_deadline_is_close_of_business(office):
    # 5 wd from Thu 2024-02-08 -> Wed 2024-02-21 17:30 Beijing = 09:30 UTC
    assert office.deadline(utc("2024-02-08T02:00:00"), [5])[0] == np.datetime64(
        "2024-02-21T09:30:00"
    )


def test_office_hours_count_only_office_time(office):
    start = utc("2024-02-08T02:00:00")
    ends = utc(
        "2024-02-09T00:30:00",  # 08:30: before opening
        "2024-02-09T02:30:00",  # 10:30: 1.5 of 7 hours
        "2024-02-09T05:00:00",  # 13:00: lunch, 3 of 7
        "2024-02-09T07:30:00",  # 15:30: 5 of 7
        "2024-02-09T11:00:00",  # 19:00: closed, the whole day
    )
    got = office.working_days_between(np.repeat(start, ends.size), ends)
    np.testing.assert_allclose(got, [0.0, 1.5 / 7, 3 / 7, 5 / 7, 1.0])


def test_pause_across_weekend_and_holiday_moves_deadline(cn):
    # accepted Mon 2024-02-05 10:00, limit 5 wd: Feb 6, 7, 8, 9, 18 -> deadline Feb 18 24:00.
    start = utc("2024-02-05T02:00:00")
    assert cn.deadline(start, [5])[0] == np.datetime64("2024-02-18T16:00:00")
    # suspended Fri Feb 9 12:00 until Mon Feb 19 12:00 (weekend + Spring Festival inside):
    # working time inside the pause = Feb 9 pm 0.5 + Feb 18 1.0 + Feb 19 am 0.5 = 2.0
    pause = cn.working_days_between(start, utc("2024-02-19T04:00:00")) - cn.working_days_between(
        start, utc("2024-02-09T04:00:00")
    )
    np.testing.assert_allclose(pause, [2.0])
    now = utc("2024-02-20T04:00:00")  # Tue Feb 20 12:00
    state = cn.evaluate(start, [5], [0], pause, [NAT], now[0])
    # used: Feb 6, 7, 8, Feb 9 am, Feb 19 pm, Feb 20 am = 3.5 + 0.5 + 0.5
    np.testing.assert_allclose(state.consumed, [4.5])
    np.testing.assert_allclose(state.remaining, [0.5])
    # deadline pushed out by 2 wd: Feb 20 24:00
    assert state.deadline[0] == np.datetime64("2024-02-20T16:00:00")
    assert not state.provisional[0]


def test_open_pause_freezes_the_clock(cn):
    start = utc("2024-03-04T02:00:00")  # Mon
    since = utc("2024-03-06T04:00:00")  # Wed 12:00: 1.5 wd used
    early = cn.evaluate(start, [10], [0], [0.0], since, "2024-03-08T04:00:00")  # Fri 12:00
    later = cn.evaluate(start, [10], [0], [0.0], since, "2024-03-12T04:00:00")  # Tue 12:00
    np.testing.assert_allclose(early.consumed, [1.5])
    np.testing.assert_allclose(later.consumed, [1.5])
    # paused 2.0 wd by Friday noon -> 12 wd from Mar 4 = Mar 20; by next Tue 4.0 -> Mar 22
    assert early.deadline[0] == np.datetime64("2024-03-20T16:00:00")
    assert later.deadline[0] == np.datetime64("2024-03-22T16:00:00")


def test_fractional_pause_rounds_deadline_up_to_end_of_day(cn):
    start = utc("2024-03-04T02:00:00")
    state = cn.evaluate(start, [3], [0], [0.25], [NAT], "2024-03-05T00:00:00")
    # 3 wd = Mar 7; a quarter day paused pushes into Mar 8, which ends at 24:00
    assert state.deadline[0] == np.datetime64("2024-03-08T16:00:00")


def test_extension_adds_working_days(cn):
    start = utc("2024-03-04T02:00:00")
    plain = cn.evaluate(start, [20], [0], [0.0], [NAT], "2024-03-05T00:00:00")
    extended = cn.evaluate(start, [20], [10], [0.0], [NAT], "2024-03-05T00:00:00")
    assert extended.deadline[0] == cn.deadline(start, [30])[0]
    assert plain.deadline[0] == cn.deadline(start, [20])[0]
    np.testing.assert_allclose(extended.remaining - plain.remaining, [10.0])


def test_overdue_clock_has_negative_remaining(cn):
    start = utc("2024-03-04T02:00:00")
    state = cn.evaluate(start, [2], [0], [0.0], [NAT], "2024-03-08T04:00:00")  # Fri 12:00
    np.testing.assert_allclose(state.consumed, [3.5])
    np.testing.assert_allclose(state.remaining, [-1.5])
    assert state.deadline[0] == np.datetime64("2024-03-06T16:00:00")


def test_zero_workdays_is_end_of_same_or_next_working_day(cn):
    got = cn.deadline(utc("2024-03-05T02:00:00", "2024-03-09T02:00:00"), [0, 0])
    # Tue -> Tue 24:00; Sat -> Mon 24:00
    assert list(got) == list(utc("2024-03-05T16:00:00", "2024-03-11T16:00:00"))


# --- provisional years ---------------------------------------------------------


def test_provisional_year_is_counted_on_order_795_holidays_and_flagged(cn):
    # 2027 has no schedule in the data: New Year's Day 2027 (a Friday) is inferred from
    # Order 795 (tests/calendar/test_provisional.py), the Monday after is worked
    assert cn.is_provisional(days("2027-01-01"))[0]
    assert not cn.is_workday(days("2027-01-01"))[0]
    assert not cn.is_workday(days("2027-01-02"))[0]
    assert cn.is_workday(days("2027-01-04"))[0]
    starts = utc("2026-12-21T02:00:00", "2026-12-21T02:00:00")
    ends, prov = cn.deadline(starts, [5, 9], provisional=True)
    assert list(prov) == [False, True]
    assert ends[1] == np.datetime64("2027-01-04T16:00:00")
    _, cprov = cn.working_days_between(
        starts, utc("2026-12-25T00:00:00", "2027-01-04T00:00:00"), provisional=True
    )
    assert list(cprov) == [False, True]
    state = cn.evaluate(starts, [5, 5], [0, 0], [0.0, 0.0], [NAT, NAT], "2027-01-02T00:00:00")
    assert state.provisional.all()  # consumed time already reaches into 2027
    assert str(cn.published_through("2026-11-22")) == "2026-12-31"
    assert cn.published_through("2027-03-01") is None


def test_a_notice_in_toml_publishes_the_year(tmp_path: Path):
    (tmp_path / "next.toml").write_text(
        'base = "cn"\n'
        "[years.2027]\n"
        'source = "test notice"\n'
        'holidays = ["2027-01-01..2027-01-03"]\n'
        'workdays = ["2027-01-09"]\n',
        encoding="utf-8",
    )
    cal = load_calendar("next", search_path=[tmp_path, *_rules_path()])
    assert not cal.is_provisional(days("2027-06-01"))[0]
    assert list(cal.is_workday(days("2027-01-01", "2027-01-04", "2027-01-09"))) == [
        False,
        True,
        True,
    ]
    ends, prov = cal.deadline(utc("2026-12-21T02:00:00"), [9], provisional=True)
    assert ends[0] == np.datetime64("2027-01-04T16:00:00") and not prov[0]
    assert str(cal.published_through("2026-11-22")) == "2027-12-31"
    assert cal.fingerprint != load_calendar("cn").fingerprint


def _rules_path() -> list[Path]:
    from monitor.calendar import calendar_search_path

    return calendar_search_path()


# --- local calendars and time zones ---------------------------------------------


def test_local_annual_holiday():
    yb = load_calendar("yanbian")
    assert list(yb.is_workday(days("2025-09-03", "2025-09-04"))) == [False, True]
    assert yb.holiday_name("2025-09-03") == "自治州成立纪念日"
    assert yb.holiday_name("2024-02-12") == "春节"
    # Tue 2025-09-02 + 1 wd skips the local holiday
    assert yb.deadline(utc("2025-09-02T02:00:00"), [1])[0] == np.datetime64("2025-09-04T16:00:00")


def test_daylight_saving_time_zone():
    berlin = build_calendar(
        (CalendarSpec(name="berlin", base="weekdays", timezone="Europe/Berlin"),), base="weekdays"
    )
    # DST begins Sun 2024-03-31, ends Sun 2024-10-27.
    starts = utc("2024-03-29T09:00:00", "2024-10-25T08:00:00", "2024-03-30T23:30:00")
    ends = berlin.deadline(starts, [1, 1, 1])
    # Mon 24:00 CEST = 22:00 UTC; Mon 24:00 CET = 23:00 UTC;
    # Sat 23:30 UTC is already Sun 01:30 CET -> Mon 24:00 CEST
    assert list(ends) == list(
        utc("2024-04-01T22:00:00", "2024-10-28T23:00:00", "2024-04-01T22:00:00")
    )
    np.testing.assert_allclose(berlin.working_days_between(starts, ends), [1, 1, 1])
    # a 23-hour and a 25-hour Sunday do not count; Monday noon is half a day in local time
    monday_noon = utc("2024-04-01T10:00:00", "2024-10-28T11:00:00")
    np.testing.assert_allclose(berlin.working_days_between(starts[:2], monday_noon), [0.5, 0.5])


def test_dst_with_office_hours():
    spec = CalendarSpec(
        name="berlin-office",
        base="weekdays",
        timezone="Europe/Berlin",
        office_hours=((9 * 3600, 17 * 3600),),
    )
    cal = build_calendar((spec,), base="weekdays")
    # Monday after the spring change: 13:00 CEST = 11:00 UTC is half of 09:00-17:00
    got = cal.working_days_between(utc("2024-03-29T09:00:00"), utc("2024-04-01T11:00:00"))
    np.testing.assert_allclose(got, [0.5])
    assert cal.deadline(utc("2024-03-29T09:00:00"), [1])[0] == np.datetime64("2024-04-01T15:00:00")


# --- inputs and errors ----------------------------------------------------------


def test_nat_in_nat_out_and_range_errors(cn):
    got = cn.deadline(utc("NaT", "2024-02-08T02:00:00"), [5, 5])
    assert np.isnat(got[0]) and not np.isnat(got[1])
    assert np.isnan(cn.working_days_between(utc("NaT"), utc("2024-01-01T00:00:00"))[0])
    with pytest.raises(CalendarError, match="2000-01-01"):
        cn.deadline(utc("1999-06-01T00:00:00"), [1])
    with pytest.raises(CalendarError):
        cn.deadline(utc("2100-12-30T00:00:00"), [30])
    with pytest.raises(CalendarError):
        cn.is_workday(days("2101-01-01"))
    with pytest.raises(CalendarError):
        cn.deadline(utc("2024-01-01T00:00:00"), [-1])
    lenient = cn.deadline(utc("1999-06-01T00:00:00", "2024-02-08T02:00:00"), [1, 5], errors="nat")
    assert np.isnat(lenient[0]) and lenient[1] == np.datetime64("2024-02-21T16:00:00")


def test_broadcasting_and_preallocated_output(cn):
    start = np.datetime64("2024-02-08T02:00:00", "s")
    out = np.empty(3, dtype="datetime64[s]")
    got = cn.deadline(start, np.array([1, 2, 5]), out=out)
    assert got is out
    assert out[2] == np.datetime64("2024-02-21T16:00:00")
    grid = cn.working_days_between(start, utc("2024-02-09T16:00:00", "2024-02-19T16:00:00"))
    np.testing.assert_allclose(grid, [1.0, 3.0])
    with pytest.raises(CalendarError):
        cn.working_days_between(
            utc("2024-01-01", "2024-01-02"), utc("2024-01-01", "2024-01-02", "2024-01-03")
        )


def test_int32_workdays_and_millisecond_instants(cn):
    starts = np.array(["2024-02-08T02:00:00.500"], dtype="datetime64[ms]")
    assert cn.deadline(starts, np.array([5], dtype=np.int32))[0] == np.datetime64(
        "2024-02-21T16:00:00"
    )


# --- calendar files: errors name file, line and problem --------------------------


def _load_text(tmp_path: Path, text: str):
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    return load_calendar("bad", search_path=[tmp_path, *_rules_path()])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('base = "cn"\n\n[[holidays]]\nname = "x"\ndates = ["2025-02-30"]\n', 5, "2025-02-30"),
        ('base = "cn"\ntimezone = "Mars/Olympus"\n', 2, "Mars/Olympus"),
        ('base = "cn"\nholidyas = []\n', 2, "holidyas"),
        ('base = "cn"\noffice_hours = ["09:00-12:00", "11:00-17:00"]\n', 2, "11:00-17:00"),
        ('base = "cn"\n[years.2027]\nholidays = ["2028-01-01"]\n', 3, "2028-01-01"),
        ('base = "cn"\n[years.2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n',
         4, "2027-01-01"),
        ('base = "cn"\n[years.1999]\n', 2, "1999"),
        ('base = "cn"\n[[holidays]]\nannual = ["13-01"]\n', 3, "13-01"),
        ('base = "cn"\nname = [1,\n', 3, "TOML"),
        ('base = "nowhere"\n', 1, "nowhere"),
    ],
)  # fmt: skip
def test_file_errors_name_file_line_and_problem(tmp_path, text, line, fragment):
    with pytest.raises(CalendarError) as info:
        _load_text(tmp_path, text)
    err = info.value
    assert err.path is not None and err.path.name == "bad.toml"
    assert err.line == line, str(err)
    assert fragment in str(err)
    assert str(err).startswith(f"{err.path}:{line}: ")


def test_errors_speak_english_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANCHA_LANG", "en")
    with pytest.raises(CalendarError, match="invalid date"):
        _load_text(tmp_path, 'base = "cn"\n[[holidays]]\ndates = ["2025-13-01"]\n')
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    with pytest.raises(CalendarError, match="日期无效"):
        _load_text(tmp_path, 'base = "cn"\n[[holidays]]\ndates = ["2025-13-01"]\n')


def test_base_cycle_and_unknown_calendar(tmp_path):
    (tmp_path / "a.toml").write_text('base = "b"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('base = "a"\n', encoding="utf-8")
    with pytest.raises(CalendarError, match="a → b → a"):
        load_calendar("a", search_path=[tmp_path])
    with pytest.raises(CalendarError, match="cn"):  # lists what is available
        load_calendar("no-such-calendar")


def test_local_rules_apply_after_a_year_notice(tmp_path):
    spec = CalendarSpec(
        name="x",
        base="national",
        holidays=(DateRule("closure", days=((dt.date(2024, 3, 5) - dt.date(1970, 1, 1)).days,)),),
    )
    cal = build_calendar((spec,))
    assert not cal.is_workday(days("2024-03-05"))[0]
    assert cal.is_workday(days("2024-03-06"))[0]


# --- threshold crossings (the inverse of the count) ------------------------------------


def test_instant_at_threshold_crossings(cn, office):
    start = utc("2024-02-08T02:00:00")  # Thu 10:00, 5 wd: Feb 9, 18, 19, 20, 21
    # 50% of 5 wd = 2.5 wd: noon of Mon Feb 19 (the Spring Festival and a weekend in between)
    assert cn.instant_at(start, [2.5])[0] == np.datetime64("2024-02-19T04:00:00")
    # 90% = 4.5 wd: noon of Feb 21; 5 wd: its end, the deadline
    assert cn.instant_at(start, [4.5])[0] == np.datetime64("2024-02-21T04:00:00")
    assert cn.instant_at(start, [5])[0] == cn.deadline(start, [5])[0]
    # office hours: 3 of 7 hours is reached at 12:00, not after lunch
    assert office.instant_at(start, [3 / 7])[0] == np.datetime64("2024-02-09T04:00:00")
    # a clock started on a Saturday: nothing counts before Monday
    saturday = utc("2024-03-09T02:00:00")
    assert cn.instant_at(saturday, [0.0])[0] == np.datetime64("2024-03-09T16:00:00")
    assert cn.instant_at(saturday, [1e-12])[0] == np.datetime64("2024-03-09T16:00:00")
    assert cn.instant_at(saturday, [0.5])[0] == np.datetime64("2024-03-11T04:00:00")
    _, prov = cn.instant_at(utc("2026-12-21T02:00:00"), [2.0, 9.5], provisional=True)
    assert list(prov) == [False, True]
    assert np.isnat(cn.instant_at(utc("NaT"), [1.0])[0])


# --- levels and the next crossing (docs/rule-book.md §4 default thresholds) ------------------


def default_thresholds(allowed):
    allowed = np.asarray(allowed, dtype=np.float64)
    return 0.5 * allowed, np.minimum(0.9 * allowed, allowed - 1.0)


def test_levels_and_next_crossing_through_the_spring_festival(cn):
    start = utc("2024-02-08T02:00:00")  # accepted Thu 10:00, promised 5 wd
    blue, yellow = default_thresholds([5])  # 2.5 wd; min(4.5, 4) = 4 wd

    def at(now):
        st = cn.evaluate(start, [5], [0], [0.0], [NAT], now, blue_at=blue, yellow_at=yellow)
        return int(st.level[0]), st.next_change[0]

    # Feb 9 noon: nothing yet; blue comes at noon of Mon Feb 19 (holiday and weekend skipped)
    assert at("2024-02-09T04:00:00") == (0, np.datetime64("2024-02-19T04:00:00"))
    # blue from that second on; yellow when 4 wd are used: the end of Tue Feb 20
    assert at("2024-02-19T03:59:59")[0] == 0
    assert at("2024-02-19T04:00:00") == (1, np.datetime64("2024-02-20T16:00:00"))
    # yellow; red at the deadline, 2024-02-21 24:00 Beijing
    assert at("2024-02-20T16:00:00") == (2, np.datetime64("2024-02-21T16:00:00"))
    level, nxt = at("2024-02-21T16:00:00")
    assert level == 3 and np.isnat(nxt)


def test_paused_clock_has_no_next_crossing_and_resume_shifts_it(cn):
    start = utc("2024-03-04T02:00:00")  # Mon, limit 10 wd: blue at 5, yellow at 9
    blue, yellow = default_thresholds([10])
    since = utc("2024-03-06T04:00:00")  # suspended Wed noon (1.5 wd used)
    paused = cn.evaluate(start, [10], [0], [0.0], since, "2024-03-08T04:00:00",
                         blue_at=blue, yellow_at=yellow)  # fmt: skip
    assert paused.level[0] == 0 and np.isnat(paused.next_change[0])
    # counting starts Tue: without the pause blue (5 wd used) is due at the end of Mon
    # Mar 11; resumed Fri noon after 2 wd paused, it moves to the end of Wed Mar 13
    plain = cn.evaluate(start, [10], [0], [0.0], [NAT], "2024-03-05T00:00:00",
                        blue_at=blue, yellow_at=yellow)  # fmt: skip
    assert plain.next_change[0] == np.datetime64("2024-03-11T16:00:00")
    resumed = cn.evaluate(start, [10], [0], [2.0], [NAT], "2024-03-08T05:00:00",
                          blue_at=blue, yellow_at=yellow)  # fmt: skip
    assert resumed.level[0] == 0
    assert resumed.next_change[0] == np.datetime64("2024-03-13T16:00:00")


def test_no_thresholds_means_red_only(cn):
    start = utc("2024-03-04T02:00:00")
    st = cn.evaluate(start, [3], [0], [0.0], [NAT], "2024-03-05T00:00:00",
                     blue_at=[np.nan], yellow_at=[np.nan])  # fmt: skip
    assert st.level[0] == 0 and st.next_change[0] == cn.deadline(start, [3])[0]
    assert cn.evaluate(start, [3], [0], [0.0], [NAT], "2024-03-05T00:00:00").level is None


def test_equal_inputs_reach_the_kernels_as_broadcast_ones_do():
    """Equal 1-D inputs skip numpy's broadcasting (most of a small call's cost) but must
    reach the kernels as the broadcasting made them, read-only views: another array type
    would be another compiled signature, compiled at run time in the middle of a batch."""
    import numba

    from monitor.calendar._inputs import _broadcast, _flat

    a, b = np.arange(3), np.arange(3)
    shape, fast = _flat(a, b)
    assert (shape, [numba.typeof(x) for x in fast]) == (
        _broadcast(a, b)[0], [numba.typeof(x) for x in _broadcast(a, b)[1]])  # fmt: skip
    assert all(not x.flags.writeable for x in fast)
    assert np.shares_memory(fast[0], a) and np.shares_memory(fast[1], b)  # no copy
    assert a.flags.writeable and b.flags.writeable  # the caller's arrays as they were
    strided = np.arange(6)[::2]
    shape, (fs, _) = _flat(strided, a)  # not contiguous: broadcast and copied, as before
    assert fs.flags.c_contiguous and (fs == strided).all()
    cal = load_calendar("cn")
    starts = np.array(["2024-02-08T02:00", "2024-02-09T02:00"], dtype="datetime64[s]")
    assert (cal.deadline(starts, np.array([5, 5])) == cal.deadline(starts, 5)).all()
