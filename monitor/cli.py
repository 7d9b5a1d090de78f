"""The ``jiancha`` command line: the edge where arguments, output and exit codes live.

Commands print for people (Chinese by default, ``--lang en`` or
``JIANCHA_LANG=en`` for English) or, with ``--json``, one JSON document for
scripts. Logs go to stderr so that stdout stays clean for ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import zoneinfo
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from monitor import __version__
from monitor.i18n import current_lang, t

_WEEKDAYS = {
    "zh": ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}


def _h(zh: str, en: str) -> str:
    """Help text in the chosen language."""
    return en if current_lang() == "en" else zh


def _colon() -> str:
    return ": " if current_lang() == "en" else "："


def _paren(text: str | None) -> str:
    if not text:
        return ""
    return f" ({text})" if current_lang() == "en" else f"（{text}）"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


# --- parsing instants -------------------------------------------------------


def parse_instant(text: str, tz: str) -> np.datetime64:
    """An ISO instant as UTC; without a UTC offset it is the calendar's local time."""
    raw = text.strip()
    try:
        moment = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise UsageError(t("cli.bad_instant", value=text)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    seconds = int(moment.timestamp())
    return np.datetime64(seconds, "s")


def parse_day(text: str) -> np.datetime64:
    try:
        return np.datetime64(dt.date.fromisoformat(text.strip()), "D")
    except ValueError:
        raise UsageError(t("cli.bad_day", value=text)) from None


def _utc_text(instant: np.datetime64) -> str:
    return f"{np.datetime_as_string(instant, unit='s')}Z"


def _local(instant: np.datetime64, tz: str) -> dt.datetime:
    seconds = int(instant.astype("datetime64[s]").astype(np.int64))
    return dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone(zoneinfo.ZoneInfo(tz))


def _local_text(instant: np.datetime64, tz: str) -> str:
    """Local time; a day ending at midnight is written 24:00 of that day (Civil Code art. 203)."""
    moment = _local(instant, tz)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        day = (moment - dt.timedelta(days=1)).date()
        return f"{day.isoformat()} 24:00"
    return moment.strftime("%Y-%m-%d %H:%M")


# --- calendar commands --------------------------------------------------------


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
                "weekday": _WEEKDAYS["en"][weekday],
                "workday": bool(w),
                "provisional": bool(p),
                "name": cal.holiday_name(day),
            }
        )
    if args.json:
        json.dump({"calendar": cal.name, "days": rows}, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    for row, day in zip(rows, days, strict=True):
        label = _WEEKDAYS[lang][int((day.astype(np.int64) + 3) % 7)]
        status = t("cli.workday") if row["workday"] else t("cli.restday")
        note = t("cli.provisional") if row["provisional"] else ""
        out.write(f"{row['date']} {label}{_colon()}{status}{_paren(row['name'])}{note}\n")
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
            "start": _utc_text(start),
            "workdays": args.workdays,
            "deadline": _utc_text(end),
            "deadline_local": _local(end, cal.timezone).isoformat(),
            "provisional": bool(prov[0]),
        }
        if args.explain:
            doc["counted_days"] = counted
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    note = t("cli.provisional") if prov[0] else ""
    out.write(
        f"{t('cli.deadline')}{_colon()}{_local_text(end, cal.timezone)}{_paren(cal.timezone)}"
        f" = {_utc_text(end)}{note}\n"
    )
    if counted:
        label = "计入的工作日" if current_lang() == "zh" else "counted working days"
        names = [d + _paren(cal.holiday_name(d)) for d in counted]
        out.write(f"{label}{_colon()}{', '.join(names)}\n")
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
            "start": _utc_text(start),
            "end": _utc_text(end),
            "working_days": float(value[0]),
            "provisional": bool(prov[0]),
        }
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    note = t("cli.provisional") if prov[0] else ""
    out.write(f"{t('cli.count')}{_colon()}{float(value[0]):.4g}{note}\n")
    return 0


def cmd_calendar_list(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.calendar import available_calendars, calendar_search_path

    found = available_calendars()
    if args.json:
        doc = {"calendars": found, "search_path": [str(p) for p in calendar_search_path()]}
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    width = max(len(n) for n in found)
    for name, description in found.items():
        out.write(f"{name.ljust(width)}  {description}\n")
    return 0


# --- parser -----------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--calendar",
        default=os.environ.get("JIANCHA_CALENDAR", "cn"),
        metavar="NAME",
        help=_h(
            "日历名称或 TOML 文件路径（默认 cn；`jiancha calendar list` 列出可用日历）",
            "calendar name or TOML path (default cn; see `jiancha calendar list`)",
        ),
    )
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="jiancha",
        formatter_class=fmt,
        description=_h(
            "jiancha（监察）：政务服务办件时限电子监察。",
            "jiancha (监察): electronic supervision of statutory time limits.",
        ),
        epilog=_h(
            "示例：\n"
            "  jiancha calendar is-workday 2024-02-04\n"
            "  jiancha calendar deadline --start 2024-02-08T10:00 --workdays 5 --explain\n"
            "  jiancha calendar count --start 2024-02-08T10:00 --end 2024-02-19T12:00\n"
            "\n环境变量 JIANCHA_LANG=en 切换为英文。",
            "examples:\n"
            "  jiancha calendar is-workday 2024-02-04\n"
            "  jiancha calendar deadline --start 2024-02-08T10:00 --workdays 5 --explain\n"
            "  jiancha calendar count --start 2024-02-08T10:00 --end 2024-02-19T12:00\n"
            "\nJIANCHA_LANG=zh (default) switches to Chinese.",
        ),
    )
    parser.add_argument("--version", action="version", version=f"jiancha {__version__}")
    parser.add_argument(
        "--lang", choices=["zh", "en"], help=_h("界面语言（默认中文）", "language (default zh)")
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cal = sub.add_parser(
        "calendar",
        help=_h("工作日历计算", "working-day calendar arithmetic"),
        formatter_class=fmt,
        description=_h(
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
    csub = cal.add_subparsers(dest="calendar_command", metavar="COMMAND", required=True)

    p = csub.add_parser(
        "is-workday",
        help=_h("某日是否为工作日", "is a date a working day"),
        description=_h("判断日期是否为工作日。", "Tell whether dates are working days."),
    )
    p.add_argument("dates", nargs="+", metavar="DATE", help="YYYY-MM-DD")
    _common(p)
    p.set_defaults(func=cmd_calendar_is_workday)

    p = csub.add_parser(
        "deadline",
        help=_h("计算期限届满时间", "compute a deadline"),
        formatter_class=fmt,
        description=_h(
            "从起算时间起，第 N 个工作日结束的时刻。\n"
            "例：2024-02-08（星期四）10:00 受理，5 个工作日 → 2024-02-21 24:00。",
            "The instant the N-th working day after the start ends.\n"
            "e.g. accepted Thu 2024-02-08 10:00, 5 working days -> 2024-02-21 24:00.",
        ),
    )
    p.add_argument("--start", required=True, metavar="ISO", help=_h("起算时间", "start instant"))
    p.add_argument(
        "--workdays", required=True, type=int, metavar="N", help=_h("工作日数", "working days")
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help=_h("列出计入的每个工作日", "list every counted working day"),
    )
    _common(p)
    p.set_defaults(func=cmd_calendar_deadline)

    p = csub.add_parser(
        "count",
        help=_h("计算已用工作日", "working days elapsed"),
        description=_h(
            "从起算时间（次日零时起算）到结束时间经过的工作日数，可为小数。",
            "Working days from the clock start (00:00 after the start day) to the end; "
            "may be fractional.",
        ),
    )
    p.add_argument("--start", required=True, metavar="ISO", help=_h("起算时间", "start instant"))
    p.add_argument("--end", required=True, metavar="ISO", help=_h("结束时间", "end instant"))
    _common(p)
    p.set_defaults(func=cmd_calendar_count)

    p = csub.add_parser("list", help=_h("列出可用日历", "list available calendars"))
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))
    p.set_defaults(func=cmd_calendar_list)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``jiancha`` console script."""
    from monitor.calendar import CalendarError
    from monitor.log import configure_logging

    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--lang" in args_list:
        i = args_list.index("--lang")
        if i + 1 < len(args_list):
            os.environ["JIANCHA_LANG"] = args_list[i + 1]
    configure_logging("WARNING", stream=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(args_list)
    stream = out or sys.stdout
    try:
        code: int = args.func(args, stream)
    except (UsageError, CalendarError) as exc:
        sys.stderr.write(f"jiancha: {t('cli.error')}: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
