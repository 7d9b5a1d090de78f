"""``jiancha rules check``, ``jiancha evaluate`` and ``jiancha replay``.

The commands an inspector runs around the engine: check a rule file before
the daemon takes it, evaluate once at a given instant, and replay a period
under other limits to see the figures it would have given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tomllib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from monitor.i18n import current_lang
from monitor.paths import rules_dir
from monitor.rules import LEVELS, CheckRule, ClockRule, RuleError, RuleSet, load_rules

if TYPE_CHECKING:
    from monitor.calendar import Calendar
    from monitor.db import Connection
    from monitor.state import Matter

LEVEL_ZH = {"blue": "蓝牌", "yellow": "黄牌", "red": "红牌"}


def _h(zh: str, en: str) -> str:
    return en if current_lang() == "en" else zh


def _level(name: str) -> str:
    return name if current_lang() == "en" else LEVEL_ZH[name]


def _ruleset(args: argparse.Namespace) -> RuleSet:
    from monitor.cli import UsageError

    try:
        return load_rules(args.rules)
    except RuleError as exc:
        raise UsageError(str(exc)) from None


def example_matters() -> dict[str, Matter]:
    """The example catalogue shipped in rules/matters-example.toml."""
    from monitor.state import Matter

    data = tomllib.loads((rules_dir() / "matters-example.toml").read_text("utf-8"))
    return {
        m["code"]: Matter(
            m["code"],
            m["name"],
            m["department"],
            int(m["statutory_days"]),
            int(m["promised_days"]),
            bool(m.get("free", True)),
            bool(m.get("joint", False)),
            dict(m.get("step_days", {})),
            dict(m.get("pause_max_days", {})),
        )
        for m in data.get("matter", [])
    }


def _limit_of(rule: ClockRule, matter: Matter) -> list[tuple[str, int]]:
    """(subject, limit) pairs the rule watches for a case of this matter."""
    if rule.limit_days is not None:
        return [("", rule.limit_days)]
    if rule.on == "decision":
        return [("", matter.promised_days)]
    if rule.on == "statutory":
        return [("", matter.statutory_days)]
    if rule.on == "step":
        return sorted((str(k), int(v)) for k, v in matter.step_days.items())
    if rule.on == "pause":
        return sorted((str(k), int(v)) for k, v in matter.pause_max_days.items())
    return [("", -1)]  # supplement: the pledge made at acceptance


def describe(rs: RuleSet, matters: dict[str, Matter], region: str | None) -> dict[str, Any]:
    """What each matter's cases get under ``rs``: levels and their thresholds in working days."""
    doc: dict[str, Any] = {
        "rules": rs.name,
        "files": [str(p) for p in rs.paths],
        "fingerprint": rs.fingerprint,
        "description": rs.description,
        "supervision_reply_days": rs.supervision_reply_days,
        "overrides": len(rs.overrides),
        "matters": [],
    }
    for code in sorted(matters):
        m = matters[code]
        entry: dict[str, Any] = {
            "code": code,
            "name": m.name,
            "department": m.department,
            "promised_days": m.promised_days,
            "statutory_days": m.statutory_days,
            "rules": [],
        }
        for rule in rs.resolve(region, m.department, code):
            if isinstance(rule, ClockRule):
                if rule.on == "immediate" and m.promised_days != 0:
                    continue
                for subject, limit in _limit_of(rule, m):
                    levels = {}
                    for lv, th in sorted(rule.thresholds.items()):
                        at = float(th.consumed_at(limit)) if limit >= 0 else None
                        levels[LEVELS[lv - 1]] = {"threshold": th.text, "working_days": at}
                    entry["rules"].append(
                        {
                            "rule": rule.rule,
                            "clock": rule.clock,
                            "name": rule.title(current_lang()),
                            "subject": subject,
                            "limit_days": limit if limit >= 0 else None,
                            "levels": levels,
                            "supervision": LEVELS[rule.supervision - 1]
                            if rule.supervision
                            else None,
                        }
                    )
            elif isinstance(rule, CheckRule):
                entry["rules"].append(
                    {
                        "rule": rule.rule,
                        "clock": rule.clock,
                        "name": rule.title(current_lang()),
                        "check": rule.check,
                        "level": LEVELS[rule.level - 1],
                        "params": dict(rule.params),
                    }
                )
        doc["matters"].append(entry)
    return doc


def cmd_rules_check(args: argparse.Namespace, out: TextIO) -> int:
    from monitor import db, ingest

    rs = _ruleset(args)
    source = args.source_dsn or db.dsn_from_env("source")
    if source:
        from monitor.cli import _with_connection

        matters = _with_connection(source, ingest.load_matters)
    else:
        matters = example_matters()
    doc = describe(rs, matters, args.region)
    if args.json:
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    files = " ← ".join(doc["files"])
    out.write(
        _h(
            f"规则集 {rs.name}（{rs.fingerprint}）有效：{files}\n",
            f"rule set {rs.name} ({rs.fingerprint}) is valid: {files}\n",
        )
    )
    if rs.description:
        out.write(f"  {rs.description}\n")
    out.write(
        _h(
            f"  督办回复期限 {rs.supervision_reply_days} 个工作日；覆盖项 {len(rs.overrides)} 条\n",
            f"  supervision reply within {rs.supervision_reply_days} working days; "
            f"{len(rs.overrides)} overrides\n",
        )
    )
    where = (
        _h("数据库事项目录", "the database's catalogue")
        if source
        else _h("示例事项目录 rules/matters-example.toml", "the example catalogue")
    )
    out.write(_h(f"各类办件适用的规则（{where}）：\n", f"what each case type gets ({where}):\n"))
    for m in doc["matters"]:
        limits = _h(
            f"承诺 {m['promised_days']} / 法定 {m['statutory_days']} 个工作日",
            f"promised {m['promised_days']} / statutory {m['statutory_days']} wd",
        )
        out.write(f"\n{m['code']} {m['name']}（{m['department']}，{limits}）\n")
        for r in m["rules"]:
            subject = f"[{r['subject']}]" if r.get("subject") else ""
            if "levels" in r:
                parts = []
                for name, lv in r["levels"].items():
                    wd = lv["working_days"]
                    amount = "" if wd is None else _h(f"={wd:g} 个工作日", f"={wd:g} wd")
                    parts.append(f"{_level(name)} {lv['threshold']}{amount}")
                sup = (
                    _h(
                        f"，{_level(r['supervision'])}附督办单",
                        f", {r['supervision']} carries a supervision order",
                    )
                    if r["supervision"]
                    else ""
                )
                out.write(f"  {r['clock']:<11}{r['name']}{subject}：{'；'.join(parts)}{sup}\n")
            else:
                out.write(f"  {r['clock']:<11}{r['name']}：{_level(r['level'])}\n")
    return 0


def _load_calendar(args: argparse.Namespace) -> Calendar:
    from monitor.calendar import load_calendar

    return load_calendar(args.calendar)


def _instant(text: str, cal: Calendar) -> dt.datetime:
    from monitor.cli import parse_instant

    seconds = int(parse_instant(text, cal.timezone).astype(np.int64))
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from monitor import db, ingest
    from monitor.cli import _db_dsn, _with_connection
    from monitor.evaluator import Evaluator
    from monitor.source import read_batch

    rs = _ruleset(args)
    cal = _load_calendar(args)
    now = _instant(args.now, cal)
    source = _db_dsn(args.source_dsn, "source")
    target_dsn = args.dsn or db.dsn_from_env("jiancha") or source
    evaluator = Evaluator(rs, cal)

    async def work(src: Connection) -> dict[str, Any]:
        target = src if target_dsn == source else await db.connect(target_dsn)
        try:
            matters = await ingest.load_matters(src)
            cursor = await ingest.load_cursor(target)
            await evaluator.start(target, matters, now)
            taken = dead = 0
            while events := await read_batch(src, cursor, args.batch_size):

                async def derive(conn: Connection, states: Sequence[Any], at: dt.datetime) -> Any:
                    return await evaluator.on_batch(conn, states, matters, at)

                result = await ingest.apply_batch(
                    target, events, matters, cursor, now, derive=derive
                )
                evaluator.publish(result.derived)
                cursor = result.cursor
                taken += result.events
                dead += result.dead
            await evaluator.tick(target, matters, now)
            s = evaluator.stats
            return {
                "now": now.isoformat(),
                "events": taken,
                "dead_letters": dead,
                "open_clocks": len(evaluator.table),
                "cases": evaluator.table.cases(),
                "cards_issued": s.cards_issued,
                "issued_by_level": s.issued_by_level,
                "cards_closed": s.cards_closed,
                "cards_revoked": s.cards_revoked,
                "escalated": s.escalated,
                "rules": rs.fingerprint,
                "calendar": cal.fingerprint,
                "next_due": None
                if evaluator.wake_at() is None
                else dt.datetime.fromtimestamp(evaluator.wake_at() or 0, dt.UTC).isoformat(),
            }
        finally:
            if target is not src:
                await target.close()

    doc = _with_connection(source, work)
    if args.json:
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    levels = "，".join(f"{_level(k)} {v}" for k, v in sorted(doc["issued_by_level"].items()))
    out.write(
        _h(
            f"评估时刻 {args.now}：读取事件 {doc['events']} 条"
            f"（死信 {doc['dead_letters']}），在办时钟 {doc['open_clocks']} 个\n"
            f"发牌 {doc['cards_issued']} 张（{levels or '无'}），销号 {doc['cards_closed']}，"
            f"撤销 {doc['cards_revoked']}，督办升级 {doc['escalated']}\n",
            f"evaluated at {args.now}: {doc['events']} events "
            f"({doc['dead_letters']} dead letters), {doc['open_clocks']} open clocks\n"
            f"{doc['cards_issued']} cards issued ({levels or 'none'}),"
            f" {doc['cards_closed']} closed, {doc['cards_revoked']} revoked, "
            f"{doc['escalated']} escalated\n",
        )
    )
    if doc["next_due"]:
        out.write(_h(f"下一次到期：{doc['next_due']}\n", f"next due: {doc['next_due']}\n"))
    return 0


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from monitor import db, ingest, replay
    from monitor.cli import UsageError, _db_dsn, _with_connection

    rs = _ruleset(args)
    cal = _load_calendar(args)
    lo, hi = _instant(args.period_from, cal), _instant(args.period_to, cal)
    if hi <= lo:
        raise UsageError(_h("--to 必须晚于 --from", "--to must be after --from"))
    if not 0 < args.promised_scale <= 10:
        raise UsageError(
            _h("--promised-scale 应在 (0, 10] 之间", "--promised-scale must be in (0, 10]")
        )
    source = _db_dsn(args.source_dsn, "source")
    target_dsn = args.dsn or db.dsn_from_env("jiancha") or source

    async def work(src: Connection) -> tuple[replay.Figures, int | None]:
        matters = await ingest.load_matters(src)
        events = await replay.load_events(src, hi)
        result = await replay.run(
            events, matters, rs, cal, lo, hi, promised_scale=args.promised_scale
        )
        run_id = None
        if not args.no_save:
            target = src if target_dsn == source else await db.connect(target_dsn)
            try:
                run_id = await replay.save(target, result, rs, cal, dt.datetime.now(dt.UTC))
            finally:
                if target is not src:
                    await target.close()
        return result.figures, run_id

    fig, run_id = _with_connection(source, work)
    doc = fig.as_json()
    doc["run_id"] = run_id
    if args.json:
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    scale = (
        ""
        if args.promised_scale == 1.0
        else _h(
            f"（承诺时限 × {args.promised_scale:g}）",
            f" (promised limits × {args.promised_scale:g})",
        )
    )
    out.write(
        _h(
            f"回放 {args.period_from} — {args.period_to}{scale}\n",
            f"replay {args.period_from} — {args.period_to}{scale}\n",
        )
    )
    rows = [
        (_h("受理", "accepted"), str(fig.accepted)),
        (_h("办结", "completed"), str(fig.completed)),
        (_h("按期办结率", "on-time rate"), _pct(fig.on_time_rate)),
        (_h("提前办结率", "early rate"), _pct(fig.early_rate)),
        (_h("超期未办结", "overdue open"), str(fig.overdue_open)),
        (_h("督办升级", "escalated"), str(fig.escalated)),
    ]
    rows += [(_level(name), str(fig.cards_by_level.get(name, 0))) for name in LEVELS]
    for label, value in rows:
        out.write(f"  {label}{_h('：', ': ')}{value}\n")
    if fig.cards_by_rule:
        out.write(_h("  按规则：\n", "  by rule:\n"))
        for rule, levels in sorted(fig.cards_by_rule.items()):
            parts = "，".join(f"{_level(k)} {v}" for k, v in levels.items())
            out.write(f"    {rule}{_h('：', ': ')}{parts}\n")
    if run_id is not None:
        out.write(
            _h(
                f"回放结果已保存：jiancha.replay_runs id={run_id}\n",
                f"saved as jiancha.replay_runs id={run_id}\n",
            )
        )
    return 0


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-dsn",
        metavar="DSN",
        help=_h("审批数据库（默认 JIANCHA_SOURCE_DSN）", "approval database"),
    )
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help=_h(
            "jiancha 模式所在数据库（默认 JIANCHA_DSN，否则同审批数据库）",
            "database of schema jiancha (default JIANCHA_DSN, else the source)",
        ),
    )


def rules_arg(p: argparse.ArgumentParser, default: Any = "") -> None:
    """``--rules``; ``default=None`` lets `jiancha run` see whether it was given."""
    p.add_argument(
        "--rules",
        default=os.environ.get("JIANCHA_RULES", "cards") if default == "" else default,
        metavar="NAME|PATH",
        help=_h(
            "规则集名称或 TOML 文件路径（默认 cards，即 rules/cards.toml；环境变量 JIANCHA_RULES）",
            "rule set name or TOML path (default cards = rules/cards.toml; env JIANCHA_RULES)",
        ),
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from monitor.cli import _common

    fmt = argparse.RawDescriptionHelpFormatter
    rules = sub.add_parser("rules", help=_h("牌规则", "card rules"), formatter_class=fmt)
    rsub = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    p = rsub.add_parser(
        "check",
        formatter_class=fmt,
        help=_h(
            "校验规则文件并列出各类办件适用的规则",
            "validate a rule set and show what each case type gets",
        ),
        description=_h(
            "校验规则文件（含其 extends 继承的文件）；有错误时给出文件、行号和原因，退出码 2。\n"
            "通过后列出每个事项的办件适用的时钟规则（阈值换算为工作日）和程序性规则。\n"
            "事项目录取自 --source-dsn / JIANCHA_SOURCE_DSN，未设置时用示例目录。",
            "Validate a rule file (and the files it extends): an error names the file, the line\n"
            "and the reason, exit status 2. Then list, for each matter, the clock rules its\n"
            "cases get (thresholds in working days) and the procedural rules. Matters come from\n"
            "--source-dsn / JIANCHA_SOURCE_DSN, else from the example catalogue.",
        ),
        epilog=_h(
            "示例：\n  jiancha rules check\n  jiancha rules check --rules cards-supervision --json",
            "examples:\n  jiancha rules check\n  jiancha rules check --rules "
            "cards-supervision --json",
        ),
    )
    rules_arg(p)
    p.add_argument(
        "--source-dsn",
        metavar="DSN",
        help=_h("读取事项目录的审批数据库", "approval database for matters"),
    )
    p.add_argument(
        "--region",
        metavar="NAME",
        help=_h("按此区域（中心）的覆盖项解析", "resolve overrides for this region"),
    )
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))
    p.set_defaults(func=cmd_rules_check)

    p = sub.add_parser(
        "evaluate",
        formatter_class=fmt,
        help=_h(
            "一次性评估：读取全部事件、在给定时刻评估并发牌",
            "one shot: ingest, evaluate at an instant, persist cards",
        ),
        description=_h(
            "读取审批数据库中所有可见事件，在 --now 时刻评估全部在办时钟，\n"
            "把应发的牌写入台账后退出（0）。\n"
            "与守护进程使用同一游标和台账：重复执行不会重复发牌。",
            "Ingest every visible event, evaluate every open clock at --now, persist the cards\n"
            "and exit 0. Shares the daemon's cursor and ledger: rerunning never issues twice.",
        ),
        epilog=_h(
            "示例：\n  jiancha evaluate --now 2024-02-22T09:00\n  jiancha evaluate --now "
            "2024-02-22T01:00:00Z --json",
            "examples:\n  jiancha evaluate --now "
            "2024-02-22T09:00\n  jiancha evaluate --now 2024-02-22T01:00:00Z --json",
        ),
    )
    p.add_argument(
        "--now",
        required=True,
        metavar="ISO-INSTANT",
        help=_h(
            "评估时刻（无时区时按日历时区）", "instant (calendar's local time without an offset)"
        ),
    )
    rules_arg(p)
    _common(p)
    _db_args(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        metavar="N",
        help=_h("每批事件数（默认 5000）", "events per batch (default 5000)"),
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "replay",
        formatter_class=fmt,
        help=_h(
            "按虚拟时钟回放历史并统计（可压缩承诺时限）",
            "re-run history on a virtual clock and report the period",
        ),
        description=_h(
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
        epilog=_h(
            "示例：\n  jiancha replay --from 2024-01-01 --to 2024-07-01\n"
            "  jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8",
            "examples:\n  jiancha replay --from 2024-01-01 --to 2024-07-01\n"
            "  jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8",
        ),
    )
    p.add_argument(
        "--from",
        dest="period_from",
        required=True,
        metavar="ISO",
        help=_h("期间起点（含）", "start of the period (inclusive)"),
    )
    p.add_argument(
        "--to",
        dest="period_to",
        required=True,
        metavar="ISO",
        help=_h("期间终点（不含）", "end of the period (exclusive)"),
    )
    p.add_argument(
        "--promised-scale",
        type=float,
        default=1.0,
        metavar="X",
        help=_h("承诺时限乘以此系数（默认 1）", "multiply promised limits (default 1)"),
    )
    p.add_argument(
        "--no-save", action="store_true", help=_h("不保存回放台账", "do not save the replay ledger")
    )
    rules_arg(p)
    _common(p)
    _db_args(p)
    p.set_defaults(func=cmd_replay)


_OUTBOX = """
SELECT id, key, channel, kind, card_id, routed, state, attempts, created_at, not_before,
       next_attempt_at, delivered_at, last_error
FROM jiancha.outbox
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR channel = $2)
ORDER BY id DESC LIMIT $3
"""
_RETRY = """
UPDATE jiancha.outbox
SET state = 'pending', next_attempt_at = $1::timestamptz,
    give_up_at = $1::timestamptz + $2::interval
WHERE state = 'failed' AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
RETURNING id
"""
STATE_ZH = {"pending": "待发送", "delivered": "已送达", "failed": "失败"}


def cmd_outbox_list(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.cards_cli import format_table
    from monitor.cli import _db_dsn, _with_connection

    dsn = args.dsn or _db_dsn(None, "jiancha")
    state = None if args.state == "all" else args.state

    async def work(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_OUTBOX, state, args.channel, args.limit)]

    rows = _with_connection(dsn, work)
    if args.json:
        doc = [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()}
               for r in rows]  # fmt: skip
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    head = (
        ["编号", "通道", "类型", "牌", "状态", "尝试", "下次尝试 (UTC)", "最后错误"]
        if current_lang() != "en"
        else ["id", "channel", "kind", "card", "state", "tries", "next try (UTC)", "last error"]
    )
    table = [
        [str(r["id"]), r["channel"], r["kind"], str(r["card_id"] or "—"),
         r["state"] if current_lang() == "en" else STATE_ZH.get(r["state"], r["state"]),
         str(r["attempts"]), f"{r['next_attempt_at']:%Y-%m-%d %H:%M:%S}"
         if r["state"] == "pending" else "—", (r["last_error"] or "")[:60]]
        for r in rows
    ]  # fmt: skip
    for line in format_table(head, table):
        out.write(line + "\n")
    return 0


def cmd_outbox_retry(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.cli import UsageError, _config, _db_dsn, _with_connection

    if not args.ids and not args.all_failed:
        raise UsageError(_h("请给出编号，或用 --all-failed", "give ids, or --all-failed"))
    dsn = args.dsn or _db_dsn(None, "jiancha")
    window = _config(args.config).notify.give_up_after
    now = dt.datetime.now(dt.UTC)

    async def work(conn: Connection) -> list[int]:
        ids = None if args.all_failed else [int(i) for i in args.ids]
        return [int(r["id"]) for r in await conn.fetch(_RETRY, now, window, ids)]

    done = _with_connection(dsn, work)
    out.write(_h(f"已重新排队 {len(done)} 条通知：{done}\n", f"requeued {len(done)}: {done}\n"))
    return 0


def register_outbox(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    box = sub.add_parser(
        "outbox", formatter_class=fmt,
        help=_h("通知发件箱：查看、重试失败的通知", "the notification outbox: list, retry"),
        description=_h(
            "每张牌的通知与牌在同一事务中写入发件箱，由守护进程投递（退避重试、限速）。\n"
            "超过 give_up_after 仍未送达的通知标记为失败，不会静默丢弃：用 list 查看，\n"
            "修好通道后用 retry 重新排队。",
            "Every card's notification is queued in the card's own transaction and delivered\n"
            "by the daemon (backoff, rate limits). One still undelivered after give_up_after\n"
            "is marked failed, never dropped silently: list shows it, retry requeues it.",
        ),
    )  # fmt: skip
    bsub = box.add_subparsers(dest="outbox_command", metavar="COMMAND", required=True)
    p = bsub.add_parser("list", help=_h("列出通知（最新的在前）", "list notifications"))
    p.add_argument("--state", choices=["pending", "delivered", "failed", "all"], default="all")
    p.add_argument("--channel", metavar="NAME")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--dsn", metavar="DSN", help=_h("jiancha 模式所在数据库", "jiancha's database"))
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))
    p.set_defaults(func=cmd_outbox_list)
    p = bsub.add_parser("retry", help=_h("重新投递失败的通知", "requeue failed notifications"))
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all-failed", action="store_true", help=_h("全部失败的通知", "every failed"))
    p.add_argument("--config", metavar="PATH", help=_h("配置文件", "configuration file"))
    p.add_argument("--dsn", metavar="DSN", help=_h("jiancha 模式所在数据库", "jiancha's database"))
    p.set_defaults(func=cmd_outbox_retry)
