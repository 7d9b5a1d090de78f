"""``jiancha simulate``: a county service centre's case events, written into a source database."""

from __future__ import annotations

import argparse
import datetime as dt
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import trio

from monitor.cli._common import (
    FMT,
    UsageError,
    as_datetime,
    calendar_option,
    db_dsn,
    dump,
    examples,
    h,
    json_option,
    number,
    parse_instant,
    source_dsn_option,
    with_connection,
)
from monitor.i18n import current_lang
from monitor.whatif.figures import Workload, figures
from monitor.whatif.simulate import (
    DEFAULT_CATALOGUE,
    DEFAULT_PER_DAY,
    DEFAULT_REGION,
    Catalogue,
    CatalogueError,
    Event,
    between,
    generate,
    load_catalogue,
    next_working_day,
)
from monitor.whatif.source_writer import Progress, install_matters, write_events

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.db import Connection

__all__ = ["register"]


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


_LEVEL_NAMES = {
    "zh": {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"},
    "en": {5: "very satisfied", 4: "satisfied", 3: "fair", 2: "dissatisfied", 1: "very bad"},
}


def _print_figures(f: Workload, head: str, out: TextIO) -> None:
    lang = current_lang()
    names = _LEVEL_NAMES[lang]
    levels = h("，", ", ").join(f"{names[k]} {f.ratings.get(k, 0)}" for k in (5, 4, 3, 2, 1))
    out.write(head)
    out.write(
        h(
            f"  办件 {f.cases} 件（{f.working_days} 个工作日，每工作日 "
            f"{f.cases_per_working_day:.1f} 件），事件 {f.events} 条\n"
            f"  即办件 {_pct(f.immediate_share)}，网上申报 {_pct(f.online_share)}\n"
            f"  补正 {_pct(f.supplement_share)}，特别程序 {_pct(f.suspended_share)}，"
            f"延期 {_pct(f.extension_share)}，不予受理 {_pct(f.refused_share)}，"
            f"撤回 {f.withdrawn} 件，终止 {f.terminated} 件\n"
            f"  办结 {f.completed} 件，按期办结率 {_pct(f.on_time_rate)}；超承诺时限 {f.late} 件"
            f"（承诺件的 {_pct(f.late_share)}），超法定时限 {f.statutory_late} 件，"
            f"即办件未当日办结 {f.immediate_late} 件\n"
            f"  评价 {sum(f.ratings.values())} 次：{levels}；满意率 {_pct(f.satisfaction)}，"
            f"差评 {f.bad_ratings} 条\n"
            f"  收费 {f.fees} 笔，合计 {f.fees_total:,.0f} 元\n",
            f"  {f.cases} cases ({f.working_days} working days, "
            f"{f.cases_per_working_day:.1f} per working day), {f.events} events\n"
            f"  immediate {_pct(f.immediate_share)}, online {_pct(f.online_share)}\n"
            f"  supplements {_pct(f.supplement_share)}, special procedures "
            f"{_pct(f.suspended_share)}, extensions {_pct(f.extension_share)}, refused "
            f"{_pct(f.refused_share)}, {f.withdrawn} withdrawn, {f.terminated} terminated\n"
            f"  {f.completed} completed, on time {_pct(f.on_time_rate)}; {f.late} past the "
            f"promised limit ({_pct(f.late_share)} of promised cases), {f.statutory_late} past "
            f"the statutory limit, {f.immediate_late} immediate cases not done the same day\n"
            f"  {sum(f.ratings.values())} ratings: {levels}; satisfaction "
            f"{_pct(f.satisfaction)}, {f.bad_ratings} bad\n"
            f"  {f.fees} fees, {f.fees_total:,.0f} yuan in all\n",
        )
    )
    depts = h("，", ", ").join(f"{k} {v}" for k, v in f.by_department.items())
    out.write(h(f"  按部门：{depts}\n", f"  by department: {depts}\n"))


def _instant(text: str | None, tz: str) -> dt.datetime | None:
    if not text:
        return None
    return as_datetime(parse_instant(text, tz))


@dataclass(frozen=True)
class _Run:
    """What the command line asked for, generated: the events and the window to write."""

    catalogue: Catalogue
    cal: Calendar
    start: dt.date
    events: list[Event]
    window: list[Event]
    since: dt.datetime | None
    until: dt.datetime | None


def _generate(args: argparse.Namespace) -> _Run:
    from monitor.calendar import load_calendar

    try:
        catalogue = load_catalogue(args.catalogue)
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None
    cal = load_calendar(args.calendar)
    start = next_working_day(cal)
    if args.start:
        try:
            start = dt.date.fromisoformat(args.start.strip())
        except ValueError:
            raise UsageError(
                h(f"无效的日期：{args.start}", f"invalid date: {args.start}")
            ) from None
    try:
        events = generate(catalogue, cal, start, args.days, seed=args.seed,
                          per_day=args.per_day, region=args.region, prefix=args.prefix)  # fmt: skip
    except ValueError as exc:  # out of the calendar's range
        raise UsageError(str(exc)) from None
    since, until = (_instant(x, cal.timezone) for x in (args.since, args.until))
    if since is not None and until is not None and until <= since:
        raise UsageError(h("--until 必须晚于 --since", "--until must be after --since"))
    return _Run(catalogue, cal, start, events, between(events, since, until), since, until)


def _dry_run(run: _Run, args: argparse.Namespace, out: TextIO) -> int:
    fig = figures(run.events, run.catalogue.matters, run.cal)
    n_matters = len(run.catalogue.matters)
    if args.json:
        dump({"start": run.start.isoformat(), "days": args.days, "seed": args.seed,
              "per_day": args.per_day, "catalogue": str(run.catalogue.path),
              "matters": n_matters, "to_write": len(run.window),
              "figures": fig.as_json()}, out)  # fmt: skip
        return 0
    last = run.start + dt.timedelta(days=args.days - 1)
    _print_figures(fig, h(f"模拟 {run.start} — {last}（种子 {args.seed}，事项 {n_matters} 项）：\n",
                          f"simulated {run.start} — {last} (seed {args.seed}, {n_matters} "
                          "matters):\n"), out)  # fmt: skip
    if run.since is not None or run.until is not None:
        out.write(h(f"  时间窗内（--since/--until）的事件 {len(run.window)} 条\n",
                    f"  {len(run.window)} events within --since/--until\n"))  # fmt: skip
    return 0


def _reporter(run: _Run, args: argparse.Namespace, out: TextIO) -> Callable[[Progress], None]:
    """Progress on the terminal, every 5 s and at the end (nothing with --json)."""
    shown = [time.monotonic()]
    tz = zoneinfo.ZoneInfo(run.cal.timezone)

    def report(p: Progress) -> None:
        if args.json or (time.monotonic() - shown[0] < 5.0 and p.written != p.total):
            return
        shown[0] = time.monotonic()
        at = p.last_occurred_at.astimezone(tz) if p.last_occurred_at else None
        when = "—" if at is None else f"{at:%Y-%m-%d %H:%M}"
        out.write(h(f"已写入 {p.written}/{p.total} 条事件，业务时间到 {when}\n",
                    f"written {p.written}/{p.total} events, business time {when}\n"))  # fmt: skip
        out.flush()

    return report


async def _write(conn: Connection, run: _Run, args: argparse.Namespace,
                 report: Callable[[Progress], None]) -> dict[str, Any]:  # fmt: skip
    """The catalogue, then the window's events on the virtual clock; Ctrl-C stops between them."""
    import signal

    from monitor.wallclock import VirtualClock

    await install_matters(conn, run.catalogue.matters)
    clock = None
    window = run.window
    if float(args.speed) > 0 and window:  # simulated time starts at 08:30, or the first event
        begin = window[0].occurred_at
        if run.since is None:
            opening = dt.datetime.combine(
                run.start, dt.time(8, 30), zoneinfo.ZoneInfo(run.cal.timezone)
            )
            begin = max(begin, opening.astimezone(dt.UTC))
        clock = VirtualClock(begin, float(args.speed))
    done = [0]

    def track(p: Progress) -> None:
        done[0] = p.written
        report(p)

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        scope.cancel()
                        return

            nursery.start_soon(watch)
            await write_events(conn, window, clock=clock, batch_size=args.batch_size,
                               progress=track)  # fmt: skip
            nursery.cancel_scope.cancel()
    last = window[done[0] - 1].occurred_at.isoformat() if done[0] else None
    return {"written": done[0], "total": len(window), "matters": len(run.catalogue.matters),
            "start": run.start.isoformat(), "days": args.days, "seed": args.seed,
            "stopped": scope.cancelled_caught, "last_occurred_at": last}  # fmt: skip


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    run = _generate(args)
    if args.dry_run:
        return _dry_run(run, args, out)
    dsn = db_dsn(args.source_dsn, "source")
    report = _reporter(run, args, out)
    doc = with_connection(dsn, lambda conn: _write(conn, run, args, report))
    if args.json:
        dump(doc, out)
        return 0
    cases = len({e.case_id for e in run.window})
    out.write(
        h(
            f"{'已中止：' if doc['stopped'] else '完成：'}"
            f"写入事件 {doc['written']}/{doc['total']} 条"
            f"（{cases} 件办件，{run.start} 起 {args.days} 天），事项目录 {doc['matters']} 项\n",
            f"{'stopped: ' if doc['stopped'] else 'done: '}{doc['written']}/{doc['total']} events "
            f"({cases} cases, {args.days} days from {run.start}), {doc['matters']} matters\n",
        )
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha simulate``."""
    p = sub.add_parser(
        "simulate",
        formatter_class=FMT,
        help=h(
            "模拟县级政务服务中心：生成办件事件并写入审批数据库",
            "simulate a county service centre: write case events to the approval database",
        ),
        description=h(
            "按事项目录模拟一个县级政务服务中心的办件：每个工作日约 560 件，即办件约 55%，\n"
            "含补正、特别程序（踏勘、公示、专家评审……）、延期、不予受理、撤回、少量超期件、\n"
            "好差评和收费。先把事项目录写入审批数据库的 matters 表，再按业务时间把事件写入\n"
            "case_events：--speed 60 表示模拟时间以 60 倍速流逝（一小时一分钟），\n"
            "--speed 0 一次写完。办件的后续事件（办结、送达、整改）即使落在模拟期之后\n"
            "也会写入，--until 在某一时刻截止，--since 接着写。\n"
            "同一 --seed 总是生成同样的办件；--dry-run 只统计，不连接数据库。\n"
            "事件带的是模拟的业务时间：用 jiancha evaluate --now 评估，或用 jiancha demo。",
            "Simulate a county service centre from a matter catalogue: about 560 cases a\n"
            "working day, about 55% immediate, with supplements, special procedures (survey,\n"
            "public notice, expert review...), extensions, refusals, withdrawals, a few late\n"
            "cases, ratings and fees. Loads the catalogue into the approval database's matters,\n"
            "then writes case_events in business-time order: --speed 60 runs simulated time\n"
            "60 times faster (an hour a minute), --speed 0 writes everything at once. Later\n"
            "events of a case (completion, delivery, rectification) are written even when\n"
            "they fall after the period; --until stops at an instant, --since continues.\n"
            "One --seed always gives the same cases; --dry-run prints the figures without a\n"
            "database. Events carry simulated business times: evaluate them with\n"
            "jiancha evaluate --now, or use jiancha demo.",
        ),
        epilog=examples(
            "jiancha simulate --dry-run --start 2024-03-04 --days 7",
            "jiancha simulate --start 2024-03-04 --speed 0 --until 2024-03-05T09:00",
            "jiancha evaluate --now 2024-03-05T09:00",
            "jiancha simulate --start 2024-03-04 --speed 0 --since 2024-03-05T09:00 "
            "--until 2024-03-06T09:00",
            "jiancha simulate --speed 600 --per-day 200",
        ),
    )
    source_dsn_option(p)
    p.add_argument(
        "--catalogue",
        metavar="PATH",
        help=h(
            f"事项目录 TOML（默认 rules/{DEFAULT_CATALOGUE}；格式见该文件开头的说明）",
            f"matter catalogue TOML (default rules/{DEFAULT_CATALOGUE}; see its header)",
        ),
    )
    p.add_argument(
        "--start",
        metavar="DATE",
        help=h(
            "模拟的第一天（默认下一个工作日）", "first simulated day (default the next working day)"
        ),
    )
    p.add_argument(
        "--days",
        type=number(int, 1),
        default=1,
        metavar="D",
        help=h(
            "模拟的自然日天数（休息日只有网上申报；默认 1）",
            "calendar days to simulate (rest days have online cases only; default 1)",
        ),
    )
    p.add_argument(
        "--speed",
        type=number(float, 0),
        default=60.0,
        metavar="N",
        help=h(
            "每秒流逝的模拟秒数（默认 60；0 = 不等待，一次写完）",
            "simulated seconds per real second (default 60; 0 = no waiting, write all at once)",
        ),
    )
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="N",
        help=h("随机种子（默认 1）", "random seed (default 1)"),
    )
    p.add_argument(
        "--per-day",
        type=number(int, 0),
        default=DEFAULT_PER_DAY,
        metavar="N",
        help=h(
            f"每个工作日的办件量（默认 {DEFAULT_PER_DAY}）",
            f"cases per working day (default {DEFAULT_PER_DAY})",
        ),
    )
    p.add_argument(
        "--region",
        default=DEFAULT_REGION,
        metavar="NAME",
        help=h(
            f"办件的区域（中心）名称（默认 {DEFAULT_REGION}）",
            f"region of the cases (default {DEFAULT_REGION})",
        ),
    )
    p.add_argument(
        "--prefix",
        default="SIM",
        metavar="TEXT",
        help=h("办件编号前缀（默认 SIM，如 SIM20240304-0001）", "case id prefix (default SIM)"),
    )
    p.add_argument(
        "--until",
        metavar="ISO-INSTANT",
        help=h(
            "只写到此时刻为止的事件（无时区时按日历时区）；之后用 jiancha evaluate --now 同一时刻。"
            "jiancha 会把比其当前时刻晚一天以上的事件记为死信",
            "write events up to this instant only (calendar's local time without an offset), then "
            "evaluate at it: jiancha dead-letters events more than a day after its now",
        ),
    )
    p.add_argument(
        "--since",
        metavar="ISO-INSTANT",
        help=h(
            "只写此时刻之后的事件（同一 --seed 接着上一次 --until 继续）",
            "write events after this instant only (continue an earlier --until, same --seed)",
        ),
    )
    p.add_argument(
        "--batch-size",
        type=number(int, 1),
        default=5000,
        metavar="N",
        help=h("每条 INSERT 的事件数（默认 5000）", "events per INSERT (default 5000)"),
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=h("只生成并统计，不写数据库", "generate and print the figures; no database"),
    )
    calendar_option(p)
    json_option(p)
    p.set_defaults(func=cmd_simulate)
