"""``jiancha db prune``: what the working tables no longer need, after its retention."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, TextIO

from monitor.cli._common import (
    FMT,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    json_option,
    load_config,
    with_connection,
)

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.retention import Pruned

__all__ = ["register_prune"]

_NAMES = {"outbox": ("通知", "notifications"), "outbox_attempts": ("投递记录", "attempts"),
          "dead_letters": ("已重新接收的死信", "dead letters taken in")}  # fmt: skip


def cmd_db_prune(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.retention import prune

    retention = load_config(args.config).retention
    dsn = args.dsn or db_dsn(None, "jiancha")
    now = dt.datetime.now(dt.UTC)

    async def work(conn: Connection) -> Pruned:
        return await prune(conn, retention, now, dry_run=args.dry_run)

    got = with_connection(dsn, work)
    if args.json:
        dump({"dry_run": args.dry_run, **got.as_json()}, out)
        return 0
    verb = h("可删除" if args.dry_run else "已删除", "would delete" if args.dry_run else "deleted")
    for key, n in got.as_json().items():
        keep = getattr(retention, key)
        kept = (
            h(f"保留 {keep.days} 天", f"kept {keep.days} days")
            if keep
            else h("永久保留", "kept forever")
        )
        zh, en = _NAMES[key]
        out.write(h(f"{zh}：{verb} {n} 行（{kept}）\n", f"{en}: {verb} {n} rows ({kept})\n"))
    return 0


def register_prune(dsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = dsub.add_parser(
        "prune", formatter_class=FMT,
        help=h("按保留期限清理工作表", "delete finished rows past their retention"),
        description=h(
            "按 [retention] 的期限删除已完结的行：已送达或已放弃、且所属牌已关闭的通知\n"
            "（outbox，默认 180 天）；每条通知除最后一次外的投递记录（outbox_attempts，\n"
            "默认 30 天）；已重新接收的死信（dead_letters，默认 180 天）。0 表示永久保留。\n"
            "牌与牌的处理记录（cards、card_events）是证据，永不删除；未解决的死信、\n"
            "待发送的通知也不删除。守护进程每天自动执行一次。",
            "Delete finished rows past [retention]: notifications delivered or given up\n"
            "whose card is no longer open (outbox, 180 days by default); every attempt but\n"
            "a notification's last (outbox_attempts, 30 days); dead letters taken in after\n"
            "all (dead_letters, 180 days). 0 keeps forever. Cards and card_events are the\n"
            "evidence and are never pruned, nor open dead letters or pending notifications.\n"
            "The daemon runs this once a day by itself.",
        ),
        epilog=examples("jiancha db prune --dry-run", "jiancha db prune --json"),
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help=h("只统计，不删除", "count only, delete nothing"))  # fmt: skip
    p.add_argument("--config", metavar="PATH", help=h("配置文件", "configuration file"))
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_db_prune)
