"""``jiancha replay``: a period of history re-run on a virtual clock, into a ledger of its own.

"What if every promised limit were 20% shorter?": the daemon's own engine
and scheduler answer it, fed the events in business-time order; the real
ledger is never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, TextIO

from monitor.cli._common import (
    FMT,
    UsageError,
    calendar_option,
    colon,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    jiancha_connection,
    json_option,
    rules_option,
    source_dsn_option,
    with_connection,
)
from monitor.cli._progress import Bar
from monitor.cli.evaluate import instant_arg
from monitor.cli.rules import ruleset_of
from monitor.i18n import current_lang
from monitor.vocab import LEVEL_WORDS, LEVELS, word

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.whatif import replay

__all__ = ["register"]


def _level(name: str) -> str:
    return word(LEVEL_WORDS, name, current_lang())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _print(fig: replay.Figures, args: argparse.Namespace, run_id: int | None, out: TextIO) -> None:
    scale = ""
    if args.promised_scale != 1.0:
        scale = h(f"（承诺时限 × {args.promised_scale:g}）",
                  f" (promised limits × {args.promised_scale:g})")  # fmt: skip
    out.write(h(f"回放 {args.period_from} — {args.period_to}{scale}\n",
                f"replay {args.period_from} — {args.period_to}{scale}\n"))  # fmt: skip
    rows = [
        (h("受理", "accepted"), str(fig.accepted)),
        (h("办结", "completed"), str(fig.completed)),
        (h("按期办结率", "on-time rate"), _pct(fig.on_time_rate)),
        (h("提前办结率", "early rate"), _pct(fig.early_rate)),
        (h("超期未办结", "overdue open"), str(fig.overdue_open)),
        (h("督办升级", "escalated"), str(fig.escalated)),
    ]
    rows += [(_level(name), str(fig.cards_by_level.get(name, 0))) for name in LEVELS]
    for label, value in rows:
        out.write(f"  {label}{colon()}{value}\n")
    if fig.cards_by_rule:
        out.write(h("  按规则：\n", "  by rule:\n"))
        for rule, levels in sorted(fig.cards_by_rule.items()):
            parts = "，".join(f"{_level(k)} {v}" for k, v in levels.items())
            out.write(f"    {rule}{colon()}{parts}\n")
    if fig.not_decided:  # their cards are missing from the counts above
        out.write(h(f"  无法判定的案件 {fig.not_decided} 个（程序缺陷，以上未计其牌；"
                    "见日志 cases_not_decided）\n",
                    f"  {fig.not_decided} case(s) could not be decided (a defect; their "
                    "cards are not counted above: see the log's cases_not_decided)\n"))  # fmt: skip
    if run_id is not None:
        out.write(h(f"回放结果已保存：jiancha.replay_runs id={run_id}\n",
                    f"saved as jiancha.replay_runs id={run_id}\n"))  # fmt: skip


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.calendar import load_calendar
    from monitor.source.catalogue import load_matters
    from monitor.whatif import replay

    rs = ruleset_of(args)
    cal = load_calendar(args.calendar)
    lo, hi = instant_arg(args.period_from, cal), instant_arg(args.period_to, cal)
    if hi <= lo:
        raise UsageError(h("--to 必须晚于 --from", "--to must be after --from"))
    if not 0 < args.promised_scale <= 10:
        raise UsageError(
            h("--promised-scale 应在 (0, 10] 之间", "--promised-scale must be in (0, 10]")
        )
    source = db_dsn(args.source_dsn, "source")

    async def work(src: Connection) -> tuple[replay.Figures, int | None]:
        matters = await load_matters(src)
        events = await replay.load_events(src, hi)
        with Bar(len(events), h("回放事件", "replaying events")) as bar:
            result = await replay.run(
                events, matters, rs, cal, lo, hi, promised_scale=args.promised_scale,
                progress=bar.update,
            )  # fmt: skip
        if args.no_save:
            return result.figures, None
        async with jiancha_connection(src, source, args.dsn) as target:
            return result.figures, await replay.save(target, result, rs, cal,
                                                     dt.datetime.now(dt.UTC))  # fmt: skip

    fig, run_id = with_connection(source, work)
    if args.json:
        dump({**fig.as_json(), "run_id": run_id}, out)
    else:
        _print(fig, args, run_id, out)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha replay``."""
    p = sub.add_parser(
        "replay",
        formatter_class=FMT,
        help=h(
            "按虚拟时钟回放历史并统计（可压缩承诺时限）",
            "re-run history on a virtual clock and report the period",
        ),
        description=h(
            "按业务时间顺序重放审批数据库的事件（虚拟时钟，在每个阈值时刻唤醒），写入独立台账\n"
            "（jiancha.replay_runs / replay_cards，不影响正式台账），输出期间的按期办结率、\n"
            "提前办结率、各级各规则发牌数。--promised-scale 0.8 回答“承诺时限再压缩 20% 会怎样”\n"
            "（时限乘以系数后向下取整）。",
            "Re-run the approval database's events in business-time order on a virtual clock\n"
            "(waking at every threshold instant) into a separate ledger (jiancha.replay_runs /\n"
            "replay_cards; the real ledger is untouched) and print the period's on-time rate,\n"
            'early rate and cards by level and rule. --promised-scale 0.8 answers "what if\n'
            'every promised limit were 20% shorter?" (limits scaled, rounded down).',
        ),
        epilog=examples(
            "jiancha replay --from 2024-01-01 --to 2024-07-01",
            "jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8",
        ),
    )
    p.add_argument(
        "--from",
        dest="period_from",
        required=True,
        metavar="ISO",
        help=h("期间起点（含）", "start of the period (inclusive)"),
    )
    p.add_argument(
        "--to",
        dest="period_to",
        required=True,
        metavar="ISO",
        help=h("期间终点（不含）", "end of the period (exclusive)"),
    )
    p.add_argument(
        "--promised-scale",
        type=float,
        default=1.0,
        metavar="X",
        help=h("承诺时限乘以此系数（默认 1）", "multiply promised limits (default 1)"),
    )
    p.add_argument(
        "--no-save", action="store_true", help=h("不保存回放台账", "do not save the replay ledger")
    )
    rules_option(p)
    calendar_option(p)
    json_option(p)
    source_dsn_option(p)
    dsn_option(p)
    p.set_defaults(func=cmd_replay)
