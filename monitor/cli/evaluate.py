"""``jiancha evaluate``: one shot of the daemon's work at a given instant, then exit.

Ingests every visible event, evaluates every open clock at ``--now`` and
persists the cards, through the daemon's own cursor, pipeline and ledger:
rerunning it never issues a card twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
from typing import TYPE_CHECKING, Any, TextIO

from monitor.cli._common import (
    FMT,
    CommandFailed,
    UsageError,
    as_datetime,
    calendar_option,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    jiancha_connection,
    json_option,
    number,
    parse_instant,
    rules_option,
    source_dsn_option,
    with_connection,
)
from monitor.cli.rules import ruleset_of
from monitor.config import BATCH_SIZE
from monitor.i18n import current_lang
from monitor.vocab import LEVEL_WORDS, LEVELS, local_text, word

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.cli._progress import Bar
    from monitor.db import Connection
    from monitor.evaluator import Evaluator
    from monitor.source.contract import Cursor

__all__ = ["instant_arg", "register"]


def _level(name: str) -> str:
    return word(LEVEL_WORDS, name, current_lang())


def instant_arg(text: str, cal: Calendar) -> dt.datetime:
    """An instant on the command line: the calendar's local time unless it has an offset."""
    return as_datetime(parse_instant(text, cal.timezone))


def _summary(
    ev: Evaluator, now: dt.datetime, taken: int, dead: int, batches: int
) -> dict[str, Any]:
    s = ev.stats
    due = ev.wake_at()
    return {
        "now": now.isoformat(),
        "events": taken,
        "dead_letters": dead,
        "batches": batches,  # transactions the backlog took (revived events aside)
        "open_clocks": ev.scheduler.rows(),
        "cases": ev.table.cases(),
        "cards_issued": s.cards_issued,
        "issued_by_level": s.issued_by_level,
        "cards_closed": s.cards_closed,
        "cards_revoked": s.cards_revoked,
        "escalated": s.escalated,
        "cases_not_decided": s.not_decided,
        "rules": ev.ruleset.fingerprint,
        "calendar": ev.cal.fingerprint,
        "next_due": None if due is None else dt.datetime.fromtimestamp(due, dt.UTC).isoformat(),
    }


def _print(doc: dict[str, Any], args: argparse.Namespace, out: TextIO, tz: str) -> None:
    by_level = doc["issued_by_level"]
    levels = h("，", ", ").join(f"{_level(k)} {by_level[k]}" for k in LEVELS if by_level.get(k))
    out.write(
        h(
            f"评估时刻 {args.now}：读取事件 {doc['events']} 条，分 {doc['batches']} 批"
            f"（死信 {doc['dead_letters']}），在办时钟 {doc['open_clocks']} 个\n"
            f"发牌 {doc['cards_issued']} 张（{levels or '无'}），销号 {doc['cards_closed']}，"
            f"撤销 {doc['cards_revoked']}，督办升级 {doc['escalated']}\n",
            f"evaluated at {args.now}: {doc['events']} events in {doc['batches']} batch(es) "
            f"({doc['dead_letters']} dead letters), {doc['open_clocks']} open clocks\n"
            f"{doc['cards_issued']} cards issued ({levels or 'none'}),"
            f" {doc['cards_closed']} closed, {doc['cards_revoked']} revoked, "
            f"{doc['escalated']} escalated\n",
        )
    )
    if doc["next_due"]:  # on the calendar's clock, as the instant evaluated was given
        local = local_text(dt.datetime.fromisoformat(doc["next_due"]), tz)
        out.write(h(f"下一次到期：{local}（{tz}）\n", f"next due: {local} ({tz})\n"))
    if n := doc["cases_not_decided"]:  # the others are decided; these wait for a fix
        out.write(h(f"无法判定的案件 {n} 个（程序缺陷，暂不发牌；见日志 cases_not_decided，"
                    "jiancha.cases.decide_error）\n",
                    f"{n} case(s) could not be decided (a defect; no cards for them yet: see "
                    "the log's cases_not_decided, jiancha.cases.decide_error)\n"))  # fmt: skip


def _regions(args: argparse.Namespace, cal: Any) -> Any:
    """``--region-calendar 2224=yanbian``: the calendars of regions that have their own."""
    from monitor.calendar import CalendarError
    from monitor.calendar.regions import load_regions

    mapping = {}
    for item in args.region_calendar or ():
        prefix, sep, name = item.partition("=")
        if not sep or not prefix or not name:
            raise UsageError(h(f"--region-calendar 应为 区划前缀=日历：{item!r}",
                               f"--region-calendar must be PREFIX=CALENDAR: {item!r}"))  # fmt: skip
        mapping[prefix] = name
    try:
        return load_regions(cal, mapping)
    except CalendarError as exc:
        raise UsageError(str(exc)) from None


async def _checked_cursor(src: Connection, target: Connection, now: dt.datetime) -> Cursor:
    """The stored cursor, refused like the daemon's when the source moved (issue 17)."""
    from monitor.source import identity
    from monitor.state import position

    cursor, stored = await position.load_position(target)
    probed = await identity.probe(src)
    mismatch = identity.check(cursor, stored, probed)
    if mismatch is not None:
        raise CommandFailed(mismatch.message())
    if stored is None:
        await position.adopt_identity(target, probed.identity, now)
    return cursor


class _Progress:
    """A catch-up's bar on a terminal: how far through the backlog, then through deciding.

    How far by source ids: counting a large backlog would cost a scan, and ids are not
    quite the tailer's (tx, id) order, so it is an estimate. Without a terminal it asks
    the database nothing.
    """

    def __init__(self, bar: Bar, first: int) -> None:
        self.bar, self.first, self.span, self.todo = bar, first, 1, 1

    async def reading(self, src: Connection) -> None:
        from monitor.source.tailer import last_event_id  # as cmd_evaluate: not at parse time

        if self.bar.shown:
            self.span = max(await last_event_id(src) - self.first, self.span)

    def taken(self, at: int, events: int, batches: int) -> None:
        self.bar.update(min(max(at - self.first, 0), self.span), self.span,
                        h(f"已处理事件 {events:,} 条（{batches} 批）",
                          f"{events:,} events taken ({batches} batches)"))  # fmt: skip

    async def deciding(self, target: Connection) -> None:
        from monitor.state.store import undecided_count

        if self.bar.shown:
            self.todo = max(await undecided_count(target), 1)
        self.decided(0)

    def decided(self, done: int) -> None:
        self.bar.update(min(done, self.todo), self.todo,
                        h(f"判定积压办件、发牌：{done:,} / {self.todo:,}",
                          f"deciding the backlog's cases: {done:,} of {self.todo:,}"))  # fmt: skip

    def ticking(self) -> None:
        self.bar.update(self.todo, self.todo, h("到期检查", "the tick"))


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.calendar import load_calendar
    from monitor.cli._progress import Bar
    from monitor.db import only
    from monitor.evaluator import Evaluator, configure_gc
    from monitor.pipeline import CodeFault, apply_batch
    from monitor.revive import revive
    from monitor.source.catalogue import load_matters
    from monitor.source.tailer import read_batch
    from monitor.state.store import FoldCache

    rs = ruleset_of(args)
    cal = load_calendar(args.calendar)
    now = instant_arg(args.now, cal)
    source = db_dsn(args.source_dsn, "source")
    evaluator = Evaluator(rs, cal, regions=_regions(args, cal))

    async def work(src: Connection) -> dict[str, Any]:
        async with jiancha_connection(src, source, args.dsn) as target:
            matters = await load_matters(src)
            cursor = await _checked_cursor(src, target, now)
            await evaluator.start(target, matters, now)
            taken = dead = batches = 0
            # As the daemon: the events copied inside the server when jiancha's schema is
            # in the source database, and each case's fold kept from batch to batch (not
            # re-read and re-walked from its stored history for every batch it is in).
            cache = FoldCache()
            with Bar(None, h("读取事件", "reading events")) as bar:
                shown = _Progress(bar, cursor.event_id)
                await shown.reading(src)
                shown.taken(cursor.event_id, 0, 0)
                while events := await read_batch(src, cursor, args.batch_size):
                    # a full batch: more follows, so its cases are decided once, at the end
                    full = len(events) == args.batch_size
                    result = await apply_batch(target, events, matters, cursor, now,
                                               evaluator=evaluator, cache=cache,
                                               from_source=target is src, defer=full)  # fmt: skip
                    cursor = result.cursor
                    taken, dead, batches = taken + result.events, dead + result.dead, batches + 1
                    if full:  # more follows: how far, again
                        await shown.reading(src)
                    shown.taken(cursor.event_id, taken + dead, batches)
                await shown.deciding(target)
                await evaluator.decide_undecided(target, matters, now, progress=shown.decided)
                # dead letters whose cause is gone, or that an operator asked to retry
                revived = await revive(target, matters, now, evaluator=evaluator)
                taken += revived.taken
                shown.ticking()
                await evaluator.tick(target, matters, now)
            return _summary(evaluator, now, taken, dead, batches)

    was = configure_gc()  # the daemon's collector settings: the same batches, the same garbage
    try:
        doc = with_connection(source, work)
    except Exception as exc:  # sorted below: a fault of the code is said, not dumped
        fault = only(exc, CodeFault)
        if not isinstance(fault, CodeFault):
            raise
        raise CommandFailed(fault.message()) from None
    finally:
        gc.set_threshold(*was)  # `main` may run inside another program (the tests)
    if args.json:
        dump(doc, out)
    else:
        _print(doc, args, out, cal.timezone)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha evaluate``."""
    p = sub.add_parser(
        "evaluate",
        formatter_class=FMT,
        help=h(
            "一次性评估：读取全部事件、在给定时刻评估并发牌",
            "one shot: ingest, evaluate at an instant, persist cards",
        ),
        description=h(
            "读取审批数据库中所有可见事件，在 --now 时刻评估全部在办时钟，\n"
            "把应发的牌写入台账后退出（0）。\n"
            "与守护进程使用同一游标和台账：重复执行不会重复发牌。",
            "Ingest every visible event, evaluate every open clock at --now, persist the cards\n"
            "and exit 0. Shares the daemon's cursor and ledger: rerunning never issues twice.",
        ),
        epilog=examples(
            "jiancha evaluate --now 2024-02-22T09:00",
            "jiancha evaluate --now 2024-02-22T01:00:00Z --json",
        ),
    )
    p.add_argument(
        "--now",
        required=True,
        metavar="ISO-INSTANT",
        help=h(
            "评估时刻（无时区时按日历时区）", "instant (calendar's local time without an offset)"
        ),
    )
    rules_option(p)
    calendar_option(p)
    p.add_argument(
        "--region-calendar",
        action="append",
        metavar="PREFIX=CALENDAR",
        help=h(
            "区划代码以 PREFIX 开头的办件按该日历计时（可重复；配置文件中为 "
            "[daemon.region_calendars]），例如 2224=yanbian",
            "cases whose region code starts with PREFIX count on CALENDAR (repeatable; "
            "[daemon.region_calendars] in the configuration), e.g. 2224=yanbian",
        ),
    )
    json_option(p)
    source_dsn_option(p)
    dsn_option(p)
    p.add_argument(
        "--batch-size",
        type=number(int, 1),
        default=BATCH_SIZE,
        metavar="N",
        help=h(
            f"每批事件数（默认 {BATCH_SIZE}，同 daemon.batch_size；一批一个事务，批越大，"
            "每个办件重写次数越少，内存越多）",
            f"events per batch (default {BATCH_SIZE}, as daemon.batch_size; one transaction "
            "each: larger batches rewrite each case fewer times and take more memory)",
        ),
    )
    p.set_defaults(func=cmd_evaluate)
