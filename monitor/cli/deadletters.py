"""``jiancha dead-letters``: the events jiancha could not take, and taking them after all."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any, TextIO

from monitor.cli._common import (
    FMT,
    UsageError,
    commands,
    day_or_instant,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    json_option,
    not_found_ids,
    number,
    with_connection,
)
from monitor.cli._format import format_table
from monitor.cli.cards import TIMEZONE
from monitor.i18n import current_lang
from monitor.vocab import DEAD_REASON_NAMES, word

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["register"]

_COLUMNS = ("id, event_id, case_id, kind, reason, detail, raw, created_at, retries, "
            "retry_requested_at, resolved_at")  # fmt: skip
_LIST = f"""
SELECT {_COLUMNS} FROM jiancha.dead_letters
WHERE ($1::text IS NULL OR reason = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)
  AND ($3 OR resolved_at IS NULL)
ORDER BY id DESC LIMIT $4
"""
_SHOW = f"SELECT {_COLUMNS} FROM jiancha.dead_letters WHERE id = $1 OR event_id = $1"
_REQUEST = """
UPDATE jiancha.dead_letters SET retry_requested_at = $1
WHERE resolved_at IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
  AND ($3::text IS NULL OR reason = $3) AND ($4::timestamptz IS NULL OR created_at >= $4)
RETURNING id
"""
_REASONS = """
SELECT reason, count(*) FILTER (WHERE resolved_at IS NULL) AS open,
       count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved
FROM jiancha.dead_letters GROUP BY reason ORDER BY reason
"""


def _since(args: argparse.Namespace) -> dt.datetime | None:
    if args.since is None:
        return None
    try:
        return day_or_instant(args.since, TIMEZONE)
    except ValueError:
        zh = f"--since 应为日期或时刻：{args.since!r}"
        raise UsageError(h(zh, f"--since must be a date or an instant: {args.since!r}")) from None


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in dict(row).items()}


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    dsn = args.dsn or db_dsn(None, "jiancha")
    since = _since(args)

    async def work(conn: Connection) -> tuple[list[Any], list[Any]]:
        rows = await conn.fetch(_LIST, args.reason, since, args.all, args.limit)
        return list(rows), list(await conn.fetch(_REASONS))

    rows, reasons = with_connection(dsn, work)
    if args.json:
        dump([_plain(r) for r in rows], out)
        return 0
    lang = current_lang()
    zh = ["编号", "事件", "办件", "类型", "原因", "重试", "状态", "记录时间 (UTC)"]
    en = ["id", "event", "case", "kind", "reason", "retries", "state", "at (UTC)"]
    head = en if lang == "en" else zh
    table = [[str(r["id"]), str(r["event_id"]), r["case_id"] or "—", r["kind"] or "—",
              word(DEAD_REASON_NAMES, r["reason"], lang), str(r["retries"]), _state(r),
              f"{r['created_at']:%Y-%m-%d %H:%M:%S}"] for r in rows]  # fmt: skip
    for line in format_table(head, table):
        out.write(line + "\n")
    totals = "，".join(f"{word(DEAD_REASON_NAMES, r['reason'], lang)} {r['open']}" for r in reasons
                      if r["open"])  # fmt: skip
    out.write(h(f"未解决：{totals or '无'}（--all 含已重新接收的）\n",
                f"open: {totals or 'none'} (--all shows those taken in too)\n"))  # fmt: skip
    return 0


def _state(r: Any) -> str:
    if r["resolved_at"] is not None:
        return h("已重新接收", "taken in")
    if r["retry_requested_at"] is not None:
        return h("待重试", "retry requested")
    return h("未解决", "open")


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    dsn = args.dsn or db_dsn(None, "jiancha")

    async def work(conn: Connection) -> Any:
        return await conn.fetchrow(_SHOW, args.id)

    row = with_connection(dsn, work)
    if row is None:
        raise UsageError(h(f"没有编号（或事件编号）为 {args.id} 的死信",
                           f"no dead letter with id (or event id) {args.id}"))  # fmt: skip
    if args.json:
        dump(_plain(row), out)
        return 0
    lang = current_lang()
    out.write(h(
        f"死信 {row['id']}：事件 {row['event_id']}，办件 {row['case_id'] or '—'}，"
        f"类型 {row['kind'] or '—'}\n原因：{word(DEAD_REASON_NAMES, row['reason'], lang)}"
        f"（{row['reason']}）{row['detail']}\n状态：{_state(row)}，已重试 {row['retries']} 次\n",
        f"dead letter {row['id']}: event {row['event_id']}, case {row['case_id'] or '—'}, "
        f"kind {row['kind'] or '—'}\nreason: {row['reason']} {row['detail']}\n"
        f"state: {_state(row)}, retried {row['retries']} times\n",
    ))  # fmt: skip
    out.write(h("原始事件：\n", "the event as sent:\n"))
    out.write(json.dumps(row["raw"], ensure_ascii=False, indent=2) + "\n")
    return 0


def cmd_retry(args: argparse.Namespace, out: TextIO) -> int:
    if not args.ids and args.reason is None and args.since is None and not args.all:
        raise UsageError(h("请给出编号，或用 --reason / --since / --all 选出要重试的死信",
                           "give ids, or choose with --reason, --since or --all"))  # fmt: skip
    dsn = args.dsn or db_dsn(None, "jiancha")
    since = _since(args)
    now = dt.datetime.now(dt.UTC)

    async def work(conn: Connection) -> list[int]:
        ids = list(args.ids) if args.ids else None
        return [int(r["id"]) for r in await conn.fetch(_REQUEST, now, ids, args.reason, since)]

    done = with_connection(dsn, work)
    missing = not_found_ids(args.ids, done)
    if missing and not done:
        raise UsageError(h(f"没有这些编号的未解决死信：{missing}",
                           f"no open dead letter has these ids: {missing}"))  # fmt: skip
    if missing:  # the others were asked for: said, not taken as done
        out.write(h(f"未找到（或已解决）的编号：{missing}\n",
                    f"not found (or resolved already): {missing}\n"))  # fmt: skip
    out.write(h(
        f"已请求重试 {len(done)} 条死信：{done[:20]}{' …' if len(done) > 20 else ''}\n"
        "运行中的守护进程会在一分钟内重新校验并接收它们（仍不合格的保留并更新原因）；\n"
        "未运行守护进程时，jiancha evaluate --now … 会处理。\n",
        f"retry requested for {len(done)}: {done[:20]}{' …' if len(done) > 20 else ''}\n"
        "A running daemon validates and takes them within a minute (those still bad stay,\n"
        "with their newest reason); without a daemon, jiancha evaluate --now … does.\n",
    ))  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    box = sub.add_parser(
        "dead-letters", formatter_class=FMT,
        help=h("死信：无法接收的事件，查看与重试", "events jiancha could not take: list, retry"),
        description=h(
            "不符合数据契约的事件不会丢失：它们连同原因进入 jiancha.dead_letters。\n"
            "事项随后进入目录（unknown_matter）、业务时间到达（future_timestamp）、\n"
            "办件的申报事件迟到（never_submitted）时，守护进程会自动重新接收；\n"
            "其他原因修正源数据后用 retry 重试。重试是幂等的：不会重复发牌。",
            "An event that breaks the data contract is not lost: it goes to\n"
            "jiancha.dead_letters with its reason. When its matter reaches the catalogue\n"
            "(unknown_matter), its time comes (future_timestamp) or its case's `submitted`\n"
            "turns up (never_submitted), the daemon takes it in by itself; for the other\n"
            "reasons, fix the source and retry. Retrying is idempotent: no card twice.",
        ),
        epilog=examples(
            "jiancha dead-letters list --reason unknown_matter",
            "jiancha dead-letters show 42",
            "jiancha dead-letters retry --reason bad_value --since 2024-03-01",
            "jiancha dead-letters retry 42 43",
        ),
    )  # fmt: skip
    bsub = commands(box, "dead_letters_command")
    reasons = sorted(DEAD_REASON_NAMES)
    p = bsub.add_parser("list", help=h("列出死信（最新的在前）", "list dead letters, newest first"))
    p.add_argument("--reason", choices=reasons, help=h("只列此原因", "only this reason"))
    p.add_argument("--since", metavar="DATE|INSTANT",
                   help=h("只列此后记录的", "only those recorded since"))  # fmt: skip
    p.add_argument("--all", action="store_true",
                   help=h("包括已重新接收的", "include those taken in after all"))  # fmt: skip
    p.add_argument("--limit", type=number(int, 1), default=100, metavar="N",
                   help=h("最多列出条数（默认 100）", "at most this many"))  # fmt: skip
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_list)
    p = bsub.add_parser("show", help=h("一条死信的原因与原始事件", "one dead letter, as sent"))
    p.add_argument("id", type=int, metavar="ID", help=h("死信编号或事件编号", "id or event id"))
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_show)
    p = bsub.add_parser("retry", help=h("请求重试死信", "ask for dead letters to be retried"))
    p.add_argument("ids", nargs="*", metavar="ID", type=number(int, 1, h("死信编号", "an id")),
                   help=h("死信编号", "dead letter ids"))  # fmt: skip
    p.add_argument("--reason", choices=reasons, help=h("此原因的全部", "every one of this reason"))
    p.add_argument("--since", metavar="DATE|INSTANT",
                   help=h("此后记录的", "those recorded since"))  # fmt: skip
    p.add_argument("--all", action="store_true", help=h("全部未解决的", "every open one"))
    dsn_option(p)
    p.set_defaults(func=cmd_retry)
