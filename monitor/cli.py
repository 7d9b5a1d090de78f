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
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar

import numpy as np

from monitor import __version__
from monitor.i18n import current_lang, t

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.migrate import Migration

_T = TypeVar("_T")

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


class CommandFailed(Exception):
    """The command could not do its job (database unreachable, schema refused): exit status 1."""


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


# --- database commands --------------------------------------------------------


def _db_dsn(explicit: str | None, kind: Literal["source", "jiancha"]) -> str:
    """The DSN given on the command line, else from the environment, else a usage error."""
    from monitor import db

    if explicit:
        return explicit
    dsn = db.dsn_from_env(kind)
    if dsn is None:
        env = db.SOURCE_DSN_ENV
        if kind == "jiancha":
            env = f"{db.DSN_ENV}{_h('（或 ', ' (or ')}{db.SOURCE_DSN_ENV}{_h('）', ')')}"
        raise UsageError(t("db.no_dsn", env=env))
    return dsn


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.daemon import run

    return run(daemon_config(args))


def daemon_config(args: argparse.Namespace, **extra: Any) -> Any:
    """The daemon's settings: options over ``jiancha.toml`` over the environment defaults."""
    from monitor.calendar import load_calendar
    from monitor.daemon import DaemonConfig
    from monitor.rules import RuleError, load_rules

    cfg = _config(args.config)
    d = cfg.daemon
    given = {k for k in ("source_dsn", "dsn", "batch_size", "poll_interval", "rules", "calendar",
                         "metrics_address") if getattr(args, k, None) is not None}  # fmt: skip
    source = args.source_dsn or d.source_dsn
    if not source:
        raise UsageError(t("db.no_dsn", env="JIANCHA_SOURCE_DSN / [database] source_dsn"))
    rules_name = args.rules if args.rules is not None else d.rules
    calendar_name = args.calendar if args.calendar is not None else d.calendar
    from monitor.config import ConfigError
    from monitor.outbox import build_channels

    try:  # refused here, before the daemon starts, when invalid
        rules = load_rules(rules_name)
        build_channels(cfg.notify)  # their secret files too
    except (RuleError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    return DaemonConfig(
        source_dsn=source,
        dsn=args.dsn or d.dsn or source,
        batch_size=args.batch_size if args.batch_size is not None else d.batch_size,
        poll_interval=args.poll_interval if args.poll_interval is not None else d.poll_interval,
        orphan_grace=d.orphan_grace,
        rules=rules,
        calendar=load_calendar(calendar_name),
        rules_name=rules_name,
        calendar_name=calendar_name,
        config=cfg,
        metrics_address=args.metrics_address,
        config_file=args.config,
        pinned=frozenset(given),
        state_dir=Path(state) if (state := args.state_dir or d.state_dir) else None,
        checkpoint_every=d.checkpoint_every,
        **extra,
    )


def _config(path: str | None) -> Any:
    from monitor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _with_connection(dsn: str, work: Callable[[Connection], Awaitable[_T]]) -> _T:
    """Run ``work`` on one connection in a fresh trio run; errors become `CommandFailed`."""
    import asyncpg
    import trio

    from monitor import db
    from monitor.migrate import MigrationError

    db_errors = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
    result: list[_T] = []
    failure: list[Exception] = []

    # Errors are caught inside the loop: leaving trio-asyncio's nursery would
    # wrap them in exception groups.
    async def session() -> None:
        async with db.open_loop():
            try:
                conn = await db.connect(dsn, application_name="jiancha-cli")
            except (*db_errors, ValueError) as exc:
                failure.append(CommandFailed(t("db.connect_failed", detail=_one_line(exc))))
                return
            try:
                async with conn:
                    result.append(await work(conn))
            except MigrationError as exc:
                failure.append(CommandFailed(str(exc)))
            except db_errors as exc:
                failure.append(CommandFailed(t("db.failed", detail=_one_line(exc))))

    trio.run(session)
    if failure:
        raise failure[0]
    return result[0]


def _label(version: int, name: str) -> str:
    return f"{version:04d}_{name}"


def _known_migrations() -> tuple[Migration, ...]:
    from monitor.migrate import MigrationError, load_migrations

    try:
        return load_migrations()
    except MigrationError as exc:
        raise CommandFailed(str(exc)) from None


def cmd_db_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.migrate import applied_migrations, migrate

    dsn = _db_dsn(args.dsn, "jiancha")
    known = _known_migrations()

    async def work(conn: Connection) -> tuple[list[int], int | None]:
        applied = await migrate(conn, known)
        current = max((a.version for a in await applied_migrations(conn)), default=None)
        return applied, current

    applied, current = _with_connection(dsn, work)
    if args.json:
        json.dump({"applied": applied, "current": current}, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    if applied:
        names = {m.version: m.name for m in known}
        labels = ", ".join(_label(v, names[v]) for v in applied)
        out.write(t("db.migrated", versions=labels, current=current) + "\n")
    else:
        out.write(t("db.up_to_date", current=current) + "\n")
    return 0


def cmd_db_install_source(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.migrate import install_source

    dsn = _db_dsn(args.dsn, "source")
    _with_connection(dsn, install_source)
    out.write(t("db.source_installed", channel="jiancha_events_v1", role="jiancha_reader") + "\n")
    return 0


def cmd_db_status(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.migrate import schema_status

    dsn = _db_dsn(args.dsn, "jiancha")
    known = _known_migrations()
    status = _with_connection(dsn, lambda conn: schema_status(conn, known))
    code = 1 if status.problems else 0
    if args.json:
        doc = {
            "initialised": status.initialised,
            "current": status.current,
            "newest_known": status.newest_known,
            "applied": [
                {"version": a.version, "name": a.name, "applied_at": a.applied_at.isoformat()}
                for a in status.applied
            ],
            "pending": [{"version": m.version, "name": m.name} for m in status.pending],
            "problems": list(status.problems),
        }
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return code
    none = t("db.status_none")
    current = status.current if status.initialised else t("db.status_uninitialised")
    out.write(f"{t('db.status_current')}{_colon()}{none if current is None else current}\n")
    out.write(f"{t('db.status_newest')}{_colon()}{status.newest_known}\n")
    applied = [
        _label(a.version, a.name) + _paren(f"{a.applied_at:%Y-%m-%d %H:%M:%S%z}")
        for a in status.applied
    ]
    out.write(f"{t('db.status_applied')}{_colon()}{', '.join(applied) or none}\n")
    pending = [m.label for m in status.pending]
    out.write(f"{t('db.status_pending')}{_colon()}{', '.join(pending) or none}\n")
    for problem in status.problems:
        out.write(f"{t('db.status_problem')}{_colon()}{problem}\n")
    return code


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
            "  jiancha db migrate --dsn postgresql://jiancha@localhost/approval\n"
            "  jiancha rules check\n"
            "  jiancha evaluate --now 2024-02-22T09:00\n"
            "  jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8\n"
            "  jiancha cards list --level 红牌\n"
            "\n环境变量 JIANCHA_LANG=en 切换为英文。",
            "examples:\n"
            "  jiancha calendar is-workday 2024-02-04\n"
            "  jiancha calendar deadline --start 2024-02-08T10:00 --workdays 5 --explain\n"
            "  jiancha calendar count --start 2024-02-08T10:00 --end 2024-02-19T12:00\n"
            "  jiancha db migrate --dsn postgresql://jiancha@localhost/approval\n"
            "  jiancha rules check\n"
            "  jiancha evaluate --now 2024-02-22T09:00\n"
            "  jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8\n"
            "  jiancha cards list --level red\n"
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

    dbp = sub.add_parser(
        "db",
        help=_h(
            "数据库：源数据约定与 jiancha 模式", "database: source contract and schema jiancha"
        ),
        formatter_class=fmt,
        description=_h(
            "install-source 在审批数据库中建立源数据约定（case_events、matters、触发器、\n"
            "只读角色 jiancha_reader）；migrate 建立或升级 jiancha 模式；status 查看版本。\n"
            "均可重复执行。",
            "install-source creates the source contract in the approval database\n"
            "(case_events, matters, triggers, read-only role jiancha_reader); migrate\n"
            "creates or upgrades schema jiancha; status shows its version. All are safe\n"
            "to rerun.",
        ),
    )
    dsub = dbp.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    jiancha_dsn = _h(
        "PostgreSQL DSN（默认取环境变量 JIANCHA_DSN，其次 JIANCHA_SOURCE_DSN）",
        "PostgreSQL DSN (default: JIANCHA_DSN, else JIANCHA_SOURCE_DSN)",
    )

    p = dsub.add_parser(
        "migrate",
        help=_h("建立或升级 jiancha 模式", "create or upgrade schema jiancha"),
        description=_h(
            "按版本号依次应用尚未应用的迁移，每个迁移一个事务；可重复执行，多个进程同时执行也安全。"
            "数据库版本新于本程序、或已应用的迁移文件被改动时拒绝执行（退出码 1）。",
            "Apply the migrations the database lacks, in order, one transaction each; safe "
            "to rerun and to run from several processes at once. Refuses (exit status 1) a "
            "database newer than this jiancha or one whose applied migrations were edited.",
        ),
    )
    p.add_argument("--dsn", metavar="DSN", help=jiancha_dsn)
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))
    p.set_defaults(func=cmd_db_migrate)

    p = dsub.add_parser(
        "install-source",
        help=_h(
            "在审批数据库中建立源数据约定", "create the source contract in the approval database"
        ),
        description=_h(
            "执行 deploy/sql/source.sql：case_events、matters、(tx, id) 索引、"
            "NOTIFY 触发器（频道 jiancha_events_v1）与只读角色 jiancha_reader。"
            "需要建表与建角色的权限；可重复执行。",
            "Run deploy/sql/source.sql: case_events, matters, the (tx, id) index, the NOTIFY "
            "trigger (channel jiancha_events_v1) and the read-only role jiancha_reader. Needs "
            "the rights to create tables and roles; safe to rerun.",
        ),
    )
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help=_h(
            "审批数据库的 PostgreSQL DSN（默认取环境变量 JIANCHA_SOURCE_DSN）",
            "PostgreSQL DSN of the approval database (default: JIANCHA_SOURCE_DSN)",
        ),
    )
    p.set_defaults(func=cmd_db_install_source)

    p = dsub.add_parser(
        "status",
        help=_h("查看 jiancha 模式的版本", "show the version of schema jiancha"),
        description=_h(
            "列出已应用的迁移、本程序已知的最新版本与待应用的迁移；只读。"
            "数据库会被 migrate 拒绝时退出码为 1。",
            "List the applied migrations, the newest version this jiancha knows and the "
            "pending ones; reads only. Exit status 1 when migrate would refuse the database.",
        ),
    )
    p.add_argument("--dsn", metavar="DSN", help=jiancha_dsn)
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))
    p.set_defaults(func=cmd_db_status)

    p = sub.add_parser(
        "run",
        help=_h("运行守护进程", "run the daemon"),
        formatter_class=fmt,
        description=_h(
            "持续读取审批数据库的办件事件，维护 jiancha.cases，按规则在阈值时刻发牌。\n"
            "SIGTERM 或 Ctrl-C：回滚正在处理的批次后退出（退出码 0），重启后从上次提交处继续。\n"
            "日志为 JSON 行（终端上为易读格式），输出到标准输出。",
            "Tail the approval database's case events into jiancha.cases and issue cards\n"
            "at their threshold instants.\n"
            "SIGTERM or Ctrl-C: roll back the batch in flight and exit 0; a restart resumes\n"
            "at the last commit. Logs are JSON lines on stdout (readable on a terminal).",
        ),
    )
    p.add_argument(
        "--source-dsn",
        metavar="DSN",
        help=_h("审批数据库（默认 JIANCHA_SOURCE_DSN）", "approval database (default env)"),
    )
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help=_h(
            "jiancha 模式所在数据库（默认 JIANCHA_DSN，否则同审批数据库）",
            "database of schema jiancha (default JIANCHA_DSN, else the approval database)",
        ),
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help=_h(
            "每批最多读取的事件数（默认配置 daemon.batch_size，即 5000）",
            "events per batch at most (default daemon.batch_size: 5000)",
        ),
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        metavar="S",
        help=_h(
            "无通知时的轮询间隔秒数（默认配置 daemon.poll_interval，即 1）",
            "fallback poll interval, s (default daemon.poll_interval: 1)",
        ),
    )
    p.set_defaults(func=cmd_run)
    from monitor.engine_cli import rules_arg

    rules_arg(p, default=None)
    p.add_argument(
        "--config",
        metavar="PATH",
        help=_h(
            "配置文件（默认 JIANCHA_CONFIG，否则 /etc/jiancha/jiancha.toml，若存在）",
            "configuration file (default JIANCHA_CONFIG, else /etc/jiancha/jiancha.toml)",
        ),
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help=_h(
            "时钟表检查点所在目录，重启时只重算此后变化的办件（默认配置 daemon.state_dir，"
            "否则 systemd 的 STATE_DIRECTORY；都没有则每次重建）",
            "where the clock table's checkpoint lives, so a restart re-decides only the cases "
            "changed since (default daemon.state_dir, else systemd's $STATE_DIRECTORY; "
            "neither: rebuilt at every start)",
        ),
    )
    p.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help=_h(
            "Prometheus 指标地址（默认配置 metrics.address，即 127.0.0.1:9731；空字符串关闭）",
            "Prometheus metrics address (default metrics.address: 127.0.0.1:9731; '' = off)",
        ),
    )
    p.add_argument(
        "--calendar",
        metavar="NAME",
        help=_h(
            "日历名称或 TOML 文件路径（默认配置 daemon.calendar，否则 JIANCHA_CALENDAR，否则 cn）",
            "calendar name or TOML path (default daemon.calendar, else $JIANCHA_CALENDAR, else cn)",
        ),
    )
    from monitor import cards_cli, config_cli, engine_cli, grafana_cli

    config_cli.register(sub)

    cards_cli.register(sub)
    engine_cli.register(sub)
    engine_cli.register_outbox(sub)
    grafana_cli.register(sub)
    from monitor import simulate

    simulate.register(sub)
    from monitor import demo

    demo.register(sub)
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
    if argv is None:  # the console script; callers of main() keep their own logging
        configure_logging("WARNING", stream=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(args_list)
    stream = out or sys.stdout
    try:
        code: int = args.func(args, stream)
    except (UsageError, CalendarError) as exc:
        sys.stderr.write(f"jiancha: {t('cli.error')}: {exc}\n")
        return 2
    except CommandFailed as exc:
        sys.stderr.write(f"jiancha: {t('cli.error')}: {exc}\n")
        return 1
    return code


if __name__ == "__main__":
    # `python -m monitor.cli`: run the imported module, not this __main__ copy, so the
    # UsageError that subcommand modules import from monitor.cli is the one caught here.
    from monitor.cli import main as _main

    sys.exit(_main())
