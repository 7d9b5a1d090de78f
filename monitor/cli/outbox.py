"""``jiancha outbox``: the notifications waiting, delivered or given up on, and a retry."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any, TextIO

from monitor.cli._common import (
    FMT,
    UsageError,
    commands,
    db_dsn,
    dsn_option,
    dump,
    h,
    json_option,
    load_config,
    not_found_ids,
    number,
    with_connection,
)
from monitor.cli._format import format_table
from monitor.i18n import current_lang
from monitor.vocab import STATE_NAMES, word

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["register"]


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


def cmd_outbox_list(args: argparse.Namespace, out: TextIO) -> int:

    dsn = args.dsn or db_dsn(None, "jiancha")
    state = None if args.state == "all" else args.state

    async def work(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_OUTBOX, state, args.channel, args.limit)]

    rows = with_connection(dsn, work)
    if args.json:
        doc = [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()}
               for r in rows]  # fmt: skip
        dump(doc, out)
        return 0
    head = (
        ["编号", "通道", "类型", "牌", "状态", "尝试", "下次尝试 (UTC)", "最后错误"]
        if current_lang() != "en"
        else ["id", "channel", "kind", "card", "state", "tries", "next try (UTC)", "last error"]
    )
    table = [
        [str(r["id"]), r["channel"], r["kind"], str(r["card_id"] or "—"),
         word(STATE_NAMES, r["state"], current_lang()),
         str(r["attempts"]), f"{r['next_attempt_at']:%Y-%m-%d %H:%M:%S}"
         if r["state"] == "pending" else "—", (r["last_error"] or "")[:60]]
        for r in rows
    ]  # fmt: skip
    for line in format_table(head, table):
        out.write(line + "\n")
    return 0


def cmd_outbox_retry(args: argparse.Namespace, out: TextIO) -> int:

    if not args.ids and not args.all_failed:
        raise UsageError(h("请给出编号，或用 --all-failed", "give ids, or --all-failed"))
    dsn = args.dsn or db_dsn(None, "jiancha")
    window = load_config(args.config).notify.give_up_after
    now = dt.datetime.now(dt.UTC)

    async def work(conn: Connection) -> list[int]:
        ids = None if args.all_failed else list(args.ids)
        return [int(r["id"]) for r in await conn.fetch(_RETRY, now, window, ids)]

    done = with_connection(dsn, work)
    missing = [] if args.all_failed else not_found_ids(args.ids, done)
    if missing and not done:
        raise UsageError(h(f"没有这些编号的失败通知：{missing}（只有失败的通知可重新排队）",
                           f"no failed notification has these ids: {missing}"))  # fmt: skip
    if missing:
        out.write(h(f"未重新排队（不存在或不是失败状态）：{missing}\n",
                    f"not requeued (no such id, or not failed): {missing}\n"))  # fmt: skip
    out.write(h(f"已重新排队 {len(done)} 条通知：{done}\n", f"requeued {len(done)}: {done}\n"))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    box = sub.add_parser(
        "outbox", formatter_class=FMT,
        help=h("通知发件箱：查看、重试失败的通知", "the notification outbox: list, retry"),
        description=h(
            "每张牌的通知与牌在同一事务中写入发件箱，由守护进程投递（退避重试、限速）。\n"
            "超过 give_up_after 仍未送达的通知标记为失败，不会静默丢弃：用 list 查看，\n"
            "修好通道后用 retry 重新排队。",
            "Every card's notification is queued in the card's own transaction and delivered\n"
            "by the daemon (backoff, rate limits). One still undelivered after give_up_after\n"
            "is marked failed, never dropped silently: list shows it, retry requeues it.",
        ),
    )  # fmt: skip
    bsub = commands(box, "outbox_command")
    p = bsub.add_parser("list", help=h("列出通知（最新的在前）", "list notifications"))
    p.add_argument("--state", choices=["pending", "delivered", "failed", "all"], default="all")
    p.add_argument("--channel", metavar="NAME")
    p.add_argument("--limit", type=number(int, 1), default=100, metavar="N",
                   help=h("最多列出条数（默认 100）", "at most this many"))  # fmt: skip
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_outbox_list)
    p = bsub.add_parser("retry", help=h("重新投递失败的通知", "requeue failed notifications"))
    p.add_argument("ids", nargs="*", metavar="ID", type=number(int, 1, h("通知编号", "an id")),
                   help=h("通知编号", "notification ids"))  # fmt: skip
    p.add_argument("--all-failed", action="store_true", help=h("全部失败的通知", "every failed"))
    p.add_argument("--config", metavar="PATH", help=h("配置文件", "configuration file"))
    dsn_option(p)
    p.set_defaults(func=cmd_outbox_retry)
