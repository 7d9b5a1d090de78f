"""``jiancha report``: a bulletin (日监测、周通报、月总结、年度总结) as documents.

The figures come from the one definition (rule-book §5, ``jiancha.figures_v1``)
through ``monitor.report.build_report``; this module only parses the period,
writes the files and shows progress on a terminal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from monitor.cli._common import (
    FMT,
    CommandFailed,
    UsageError,
    calendar_option,
    db_dsn,
    dsn_option,
    examples,
    h,
    rules_option,
    source_dsn_option,
    with_connection,
)
from monitor.cli._progress import Bar
from monitor.i18n import current_lang
from monitor.log import get_logger
from monitor.vocab import local_text

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.report import Period, Report, Stored

__all__ = ["FORMATS", "register"]

FORMATS: Final = ("html", "xlsx", "pdf", "json")
TIMEZONE: Final = "Asia/Shanghai"
log = get_logger(__name__)

_KIND_WORDS: Final = {
    "daily": "日监测",
    "weekly": "周通报",
    "monthly": "月总结",
    "yearly": "年度总结",
}


def _formats(text: str) -> list[str]:
    found = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in found if f not in FORMATS]
    if bad or not found:
        what = ", ".join(bad) or repr(text)
        raise argparse.ArgumentTypeError(
            h(
                f"无效的格式：{what}（可选：{','.join(FORMATS)}，用逗号分隔）",
                f"invalid format {what} (choose from {','.join(FORMATS)}, comma-separated)",
            )
        )
    return list(dict.fromkeys(found))


def _period(args: argparse.Namespace, now: dt.datetime) -> Period:
    from monitor.report import PeriodError, last_complete, parse_period

    if args.period is None:
        return last_complete(args.kind, now, TIMEZONE)
    try:
        return parse_period(args.kind, args.period, TIMEZONE)
    except PeriodError as exc:
        raise UsageError(str(exc)) from None


@asynccontextmanager
async def _source(args: argparse.Namespace, dsn: str) -> AsyncIterator[Connection | None]:
    """The approval database, for the matters' names, when it is not jiancha's own.

    Unreachable, the bulletin shows the matters' codes: it is not worth failing for.
    """
    import asyncpg

    from monitor import db

    source_dsn = args.source_dsn or db.dsn_from_env("source")
    if not source_dsn or source_dsn == dsn:
        yield None
        return
    try:
        conn = await db.connect(source_dsn, application_name="jiancha-report")
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError) as exc:
        log.warning("report.source_unreachable", detail=str(exc))
        yield None
        return
    async with conn:
        yield conn


async def _unknown_department(conn: Connection, name: str) -> UsageError | None:
    """A department no case has ever named: a typo, not a bulletin of zeros."""
    known = [
        r["d"]
        for r in await conn.fetch(
            "SELECT DISTINCT department AS d FROM jiancha.cases WHERE department IS NOT NULL "
            "ORDER BY 1"
        )
    ]
    if not known or name in known:
        return None  # an empty database has no departments yet: zeros are the truth
    return UsageError(
        h(
            f"没有名为 {name!r} 的部门（已知：{'、'.join(known)}）",
            f"no department {name!r} (known: {', '.join(known)})",
        )
    )


def _build(args: argparse.Namespace, period: Period, now: dt.datetime, steps: Bar
           ) -> tuple[Report, Stored | None, dict[str, tuple[str, bytes]], str | None]:  # fmt: skip
    """The bulletin and its documents; with ``--store``, kept as a version in jiancha.reports.
    Last, the note a period with nothing in it gets (`_nothing_seen`), else None."""
    from monitor.calendar import load_calendar
    from monitor.cli.rules import ruleset_of
    from monitor.report import build_report, publish, render_files, warm_up

    cal = load_calendar(args.calendar)
    rules = ruleset_of(args)
    dsn = db_dsn(args.dsn, "jiancha")
    lang = current_lang()
    files: dict[str, tuple[str, bytes]] = {}

    warm = warm_up(args.format)

    def render(r: Report) -> dict[str, tuple[str, bytes]]:
        warm.join()
        files.update(render_files(r, args.format, lang, steps.step))
        return files

    async def work(conn: Connection) -> tuple[Report, Stored | None, str | None] | UsageError:
        if await conn.fetchval("SELECT to_regproc('jiancha.figures_v1') IS NULL"):
            raise CommandFailed(
                h(
                    "数据库中没有 jiancha 模式（先运行 jiancha db migrate）",
                    "schema jiancha is missing (run jiancha db migrate)",
                )
            )
        if args.department is not None:
            unknown = await _unknown_department(conn, args.department)
            if unknown is not None:
                return unknown  # raised out here, it would come wrapped in an exception group
        async with _source(args, dsn) as source:
            report = await build_report(
                conn, args.kind, period, args.department, now, cal=cal, rules=rules,
                centre=args.centre, source=source, lang=lang,
            )  # fmt: skip
        note = None
        if _empty(report.figures):
            latest = await conn.fetchval("SELECT max(occurred_at) FROM jiancha.events")
            note = _nothing_seen(latest, args.dsn is not None)
        if not args.store:
            return report, None, note
        stored = await publish(conn, report, lang=lang, formats=args.format, render=render)
        if not stored.new:  # the figures are stored already: that version's documents
            for row in await conn.fetch(
                "SELECT format, name, content FROM jiancha.report_files WHERE report_id = $1 "
                "AND format = ANY($2::text[])", stored.id, list(args.format),
            ):  # fmt: skip
                files[row["format"]] = (row["name"], bytes(row["content"]))
        return stored.report or report, stored, note

    steps.step(h("读取数据库", "reading the database"))
    outcome = with_connection(dsn, work)
    if isinstance(outcome, UsageError):
        raise outcome
    report, stored, note = outcome
    if stored is None:
        render(report)
    return report, stored, files, note


def _write(files: dict[str, tuple[str, bytes]], out_dir: Path) -> list[Path]:
    written = []
    try:
        for fmt in FORMATS:
            if fmt in files:
                name, data = files[fmt]
                (out_dir / name).write_bytes(data)
                written.append(out_dir / name)
    except OSError as exc:
        raise CommandFailed(h(f"无法写入文件：{exc}", f"cannot write the file: {exc}")) from None
    return written


def _stored_line(s: Stored) -> str:
    if not s.new:
        return h(f"已存储：第 {s.version} 版（数字未变，未生成新版本）\n",
                 f"stored: version {s.version} (figures unchanged, no new version)\n")  # fmt: skip
    if s.version == 1:
        return h("已存储：第 1 版\n", "stored: version 1\n")
    return h(
        f"已存储：第 {s.version} 版（修订版，{len(s.changed)} 项数字有变化）\n",
        f"stored: version {s.version} (a revision, {len(s.changed)} figures changed)\n",
    )


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.report import FontMissing

    now = dt.datetime.now(dt.UTC)
    period = _period(args, now)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(h(f"--out 不是目录：{out_dir}", f"--out is not a directory: {out_dir}"))
    steps = Bar(2 + len(args.format), h("生成报告", "building the report"))
    try:
        r, stored, files, note = _build(args, period, now, steps)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = _write(files, out_dir)
    except FontMissing as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        steps.close()
    f = r.figures
    rate = "—" if f.on_time_rate is None else f"{100 * f.on_time_rate:.2f}%"
    out.write(
        h(
            f"{r.scope} {period.label()} {_KIND_WORDS[period.kind]}：受理 {f.accepted} 件，"
            f"办结 {f.completed} 件，按期办结率 {rate}，期末超期 {f.overdue_open} 件，"
            f"红牌 {f.cards['red']} 张\n",
            f"{r.scope} {period.label('en')} {period.kind}: {f.accepted} accepted, {f.completed} "
            f"completed, on time {rate}, {f.overdue_open} overdue, {f.cards['red']} red cards\n",
        )
    )
    if stored is not None:
        out.write(_stored_line(stored))
    for path in written:
        out.write(f"  {path}\n")
    if note is not None:
        sys.stderr.write(note)
    return 0


def _empty(f: Any) -> bool:
    """A period with no case, card or rating at all: a wrong period or database, as a rule,
    not a quiet month."""
    return not (f.accepted or f.completed or f.overdue_open or f.ratings
                or any(f.cards.values()) or f.cards_revoked)  # fmt: skip


def _nothing_seen(latest: dt.datetime | None, dsn_given: bool) -> str:
    """The all-zero bulletin an officer would otherwise circulate, said so beside it."""
    where = h("--dsn 指向的数据库", "the database --dsn names") if dsn_given else h(
        "JIANCHA_DSN 指向的数据库", "the database JIANCHA_DSN names")  # fmt: skip
    if latest is None:
        return h(f"注意：本期没有任何办件、牌或评价，且 {where}中没有任何事件：请确认数据库，"
                 "以及守护进程是否在运行。\n",
                 f"note: nothing at all in this period, and no event in {where}: check the "
                 "database, and that the daemon runs.\n")  # fmt: skip
    last = local_text(latest, TIMEZONE)
    return h(f"注意：本期没有任何办件、牌或评价；{where}中最新的事件在 {last}："
             "请确认统计期间与数据库。\n",
             f"note: nothing at all in this period; the latest event in {where} is of {last}: "
             "check the period and the database.\n")  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha report``."""
    p = sub.add_parser(
        "report",
        formatter_class=FMT,
        help=h(
            "生成监察报告：日监测、周通报、月总结、年度总结",
            "a bulletin: daily, weekly, monthly or yearly",
        ),
        description=h(
            "按期间生成政务服务电子监察报告（HTML、XLSX、PDF、JSON）：受理、办结、即办件占比、\n"
            "按期办结率、提前办结率、期末超期件、发牌、满意率、差评整改率、平均办理用时，\n"
            "环比与同比，部门排名，红牌与超期件清单。口径见 docs/reports.md。\n"
            "期间按北京时间计；不给 --period 时为最近一个完整的期间（日报为昨天）。",
            "Write a bulletin of e-supervision (HTML, XLSX, PDF, JSON): accepted, completed,\n"
            "immediate share, on-time and early rates, overdue at the period's end, cards,\n"
            "satisfaction, rectification, working days used; against the previous period and\n"
            "a year earlier; departments ranked; red cards and overdue cases listed (see\n"
            "docs/reports.md). Periods are in Asia/Shanghai; without --period, the last\n"
            "complete one (yesterday for daily).",
        ),
        epilog=examples(
            "jiancha report daily",
            "jiancha report daily --period 2026-12-02 --format html,pdf",
            "jiancha report weekly --period 2026-W49 --out /srv/jiancha/reports",
            (
                "jiancha report monthly --period 2026-11 --department 市场监督管理局",
                "jiancha --lang en report monthly --period 2026-11 --department 市场监督管理局",
            ),
            "jiancha report yearly --period 2026 --format xlsx,json",
            zh="\n\n期间写法：日 2026-12-02，周 2026-W49（ISO 周），月 2026-11，年 2026。",
            en="\n\nPeriods: day 2026-12-02, week 2026-W49 (ISO week), month 2026-11, year 2026.",
        ),
    )
    p.add_argument(
        "kind",
        choices=["daily", "weekly", "monthly", "yearly"],
        help=h(
            "报告类型：daily 日监测、weekly 周通报、monthly 月总结、yearly 年度总结",
            "kind of bulletin",
        ),
    )
    p.add_argument(
        "--period",
        metavar="P",
        help=h("期间（默认最近一个完整期间）", "the period (default: the last complete one)"),
    )
    p.add_argument(
        "--department",
        metavar="NAME",
        help=h("只统计一个部门（默认全中心）", "one department only (default: the centre)"),
    )
    p.add_argument(
        "--format",
        type=_formats,
        default=list(FORMATS),
        metavar="LIST",
        help=h(
            "输出格式，逗号分隔（默认 html,xlsx,pdf,json）",
            "formats, comma-separated (default html,xlsx,pdf,json)",
        ),
    )
    p.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help=h("输出目录（默认当前目录）", "output directory (default: current)"),
    )
    p.add_argument(
        "--centre",
        metavar="NAME",
        help=h(
            "中心名称（默认取办件最多的区域名）",
            "name of the centre (default: the region most cases name)",
        ),
    )
    p.add_argument(
        "--store",
        action="store_true",
        help=h(
            "存入 jiancha.reports：数字与已存版本相同则不生成新版本，不同则生成修订版",
            "keep it in jiancha.reports: the same figures make no new version, "
            "different ones a revision",
        ),
    )
    dsn_option(p)
    source_dsn_option(p)
    calendar_option(p)
    rules_option(p)
    p.set_defaults(func=cmd_report)
