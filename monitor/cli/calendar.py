"""``jiancha calendar``: working-day arithmetic on the command line, as the daemon counts it."""

from __future__ import annotations

import argparse
import datetime as dt
import zoneinfo
from typing import Any, TextIO

import numpy as np

from monitor.cli._common import (
    FMT,
    UsageError,
    calendar_option,
    colon,
    commands,
    dump,
    h,
    json_option,
    paren,
    parse_day,
    parse_instant,
    utc_text,
)
from monitor.i18n import current_lang, t
from monitor.vocab import WEEKDAYS, local_text

__all__ = ["register"]


def _local(instant: np.datetime64, tz: str) -> dt.datetime:
    seconds = int(instant.astype("datetime64[s]").astype(np.int64))
    return dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone(zoneinfo.ZoneInfo(tz))


def _local_text(instant: np.datetime64, tz: str) -> str:
    """Local time; a day ending at midnight is written 24:00 of that day (Civil Code art. 203)."""
    return local_text(_local(instant, tz), tz)


def _calendar(args: argparse.Namespace) -> Any:
    from monitor.calendar import load_calendar

    return load_calendar(args.calendar)


def cmd_calendar_is_workday(args: argparse.Namespace, out: TextIO) -> int:
    cal = _calendar(args)
    days = np.array([parse_day(d) for d in args.dates], dtype="datetime64[D]")
    work = cal.is_workday(days)
    prov = cal.is_provisional(days)
    lang = current_lang()
    rows = []
    for day, w, p in zip(days, work, prov, strict=True):
        weekday = int((day.astype(np.int64) + 3) % 7)
        rows.append(
            {
                "date": str(day),
                "weekday": WEEKDAYS["en"][weekday],
                "workday": bool(w),
                "provisional": bool(p),
                "name": cal.holiday_name(day),
            }
        )
    if args.json:
        dump({"calendar": cal.name, "days": rows}, out)
        return 0
    for row, day in zip(rows, days, strict=True):
        label = WEEKDAYS[lang][int((day.astype(np.int64) + 3) % 7)]
        status = t("cli.workday") if row["workday"] else t("cli.restday")
        note = t("cli.provisional") if row["provisional"] else ""
        out.write(f"{row['date']} {label}{colon()}{status}{paren(row['name'])}{note}\n")
    return 0


def cmd_calendar_deadline(args: argparse.Namespace, out: TextIO) -> int:
    cal = _calendar(args)
    if args.workdays < 0:
        raise UsageError(t("cal.negative_workdays"))
    start = parse_instant(args.start, cal.timezone)
    ends, prov = cal.deadline(np.array([start]), np.array([args.workdays]), provisional=True)
    end = ends[0]
    counted: list[str] = []
    if args.explain and args.workdays > 0:
        steps = cal.deadline(np.repeat(start, args.workdays), np.arange(1, args.workdays + 1))
        # "2024-02-09 24:00" or "2024-02-09 17:30": the day is the first ten characters
        counted = [_local_text(s, cal.timezone)[:10] for s in steps]
    if args.json:
        doc: dict[str, Any] = {
            "calendar": cal.name,
            "timezone": cal.timezone,
            "start": utc_text(start),
            "workdays": args.workdays,
            "deadline": utc_text(end),
            "deadline_local": _local(end, cal.timezone).isoformat(),
            "provisional": bool(prov[0]),
        }
        if args.explain:
            doc["counted_days"] = counted
        dump(doc, out)
        return 0
    note = t("cli.provisional") if prov[0] else ""
    out.write(
        f"{t('cli.deadline')}{colon()}{_local_text(end, cal.timezone)}{paren(cal.timezone)}"
        f" = {utc_text(end)}{note}\n"
    )
    if counted:
        label = "计入的工作日" if current_lang() == "zh" else "counted working days"
        names = [d + paren(cal.holiday_name(d)) for d in counted]
        out.write(f"{label}{colon()}{', '.join(names)}\n")
    return 0


def cmd_calendar_count(args: argparse.Namespace, out: TextIO) -> int:
    cal = _calendar(args)
    start = parse_instant(args.start, cal.timezone)
    end = parse_instant(args.end, cal.timezone)
    value, prov = cal.working_days_between(np.array([start]), np.array([end]), provisional=True)
    if args.json:
        doc = {
            "calendar": cal.name,
            "timezone": cal.timezone,
            "start": utc_text(start),
            "end": utc_text(end),
            "working_days": float(value[0]),
            "provisional": bool(prov[0]),
        }
        dump(doc, out)
        return 0
    note = t("cli.provisional") if prov[0] else ""
    out.write(f"{t('cli.count')}{colon()}{float(value[0]):.4g}{note}\n")
    return 0


def cmd_calendar_list(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.calendar import available_calendars, calendar_search_path

    found = available_calendars()
    if args.json:
        doc = {"calendars": found, "search_path": [str(p) for p in calendar_search_path()]}
        dump(doc, out)
        return 0
    width = max(len(n) for n in found)
    for name, description in found.items():
        out.write(f"{name.ljust(width)}  {description}\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha calendar`` and its subcommands."""
    cal = sub.add_parser(
        "calendar",
        help=h("工作日历计算", "working-day calendar arithmetic"),
        formatter_class=FMT,
        description=h(
            "按法定工作日计算：周末与法定节假日不计，调休上班日计入；起算当日不计，\n"
            "期限届满为最后一个工作日的 24:00（设置办公时间的日历为下班时间）。\n"
            "时间可写作 2024-02-08T10:00（日历所在时区的本地时间）、\n"
            "2024-02-08T02:00Z 或 2024-02-08T10:00+08:00（绝对时间）。",
            "Working days per the Administrative Licensing Law: weekends and holidays do\n"
            "not count, adjusted working weekends do; the starting day is not counted; a\n"
            "deadline ends at 24:00 of its last working day (close of business when the\n"
            "calendar sets office hours). Instants: 2024-02-08T10:00 (the calendar's local\n"
            "time), 2024-02-08T02:00Z or 2024-02-08T10:00+08:00 (absolute).",
        ),
    )
    csub = commands(cal, "calendar_command")

    p = csub.add_parser(
        "is-workday",
        help=h("某日是否为工作日", "is a date a working day"),
        description=h("判断日期是否为工作日。", "Tell whether dates are working days."),
    )
    p.add_argument("dates", nargs="+", metavar="DATE", help="YYYY-MM-DD")
    calendar_option(p)
    json_option(p)
    p.set_defaults(func=cmd_calendar_is_workday)

    p = csub.add_parser(
        "deadline",
        help=h("计算期限届满时间", "compute a deadline"),
        formatter_class=FMT,
        description=h(
            "从起算时间起，第 N 个工作日结束的时刻。\n"
            "例：2024-02-08（星期四）10:00 受理，5 个工作日 → 2024-02-21 24:00。",
            "The instant the N-th working day after the start ends.\n"
            "e.g. accepted Thu 2024-02-08 10:00, 5 working days -> 2024-02-21 24:00.",
        ),
    )
    p.add_argument("--start", required=True, metavar="ISO", help=h("起算时间", "start instant"))
    p.add_argument(
        "--workdays", required=True, type=int, metavar="N", help=h("工作日数", "working days")
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help=h("列出计入的每个工作日", "list every counted working day"),
    )
    calendar_option(p)
    json_option(p)
    p.set_defaults(func=cmd_calendar_deadline)

    p = csub.add_parser(
        "count",
        help=h("计算已用工作日", "working days elapsed"),
        description=h(
            "从起算时间（次日零时起算）到结束时间经过的工作日数，可为小数。",
            "Working days from the clock start (00:00 after the start day) to the end; "
            "may be fractional.",
        ),
    )
    p.add_argument("--start", required=True, metavar="ISO", help=h("起算时间", "start instant"))
    p.add_argument("--end", required=True, metavar="ISO", help=h("结束时间", "end instant"))
    calendar_option(p)
    json_option(p)
    p.set_defaults(func=cmd_calendar_count)

    p = csub.add_parser("list", help=h("列出可用日历", "list available calendars"))
    json_option(p)
    p.set_defaults(func=cmd_calendar_list)
