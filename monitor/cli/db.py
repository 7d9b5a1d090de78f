"""``jiancha db``: the source contract in the approval database, and schema ``jiancha``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any, TextIO

from monitor.cli._common import (
    FMT,
    CommandFailed,
    UsageError,
    colon,
    commands,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    jiancha_connection,
    json_option,
    local_moment,
    paren,
    source_dsn_option,
    with_connection,
)
from monitor.cli.prune import register_prune
from monitor.i18n import t

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.migrate import Migration
    from monitor.source.contract import Cursor
    from monitor.source.identity import ResetPoint, SourceIdentity, SourceProbe

TIMEZONE = "Asia/Shanghai"  # business time without an offset is Beijing time
RECHECK = 30  # seconds: WorkerConfig.recheck_interval

__all__ = ["register"]


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

    dsn = db_dsn(args.dsn, "jiancha")
    known = _known_migrations()

    async def work(conn: Connection) -> tuple[list[int], int | None]:
        applied = await migrate(conn, known)
        current = max((a.version for a in await applied_migrations(conn)), default=None)
        return applied, current

    applied, current = with_connection(dsn, work)
    if args.json:
        dump({"applied": applied, "current": current}, out)
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

    dsn = db_dsn(args.dsn, "source", "--dsn")  # this command's only database
    with_connection(dsn, install_source)
    out.write(t("db.source_installed", channel="jiancha_events_v1", role="jiancha_reader") + "\n")
    return 0


def cmd_db_status(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.migrate import schema_status

    dsn = db_dsn(args.dsn, "jiancha")
    known = _known_migrations()
    status = with_connection(dsn, lambda conn: schema_status(conn, known))
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
        dump(doc, out)
        return code
    none = t("db.status_none")
    current = status.current if status.initialised else t("db.status_uninitialised")
    out.write(f"{t('db.status_current')}{colon()}{none if current is None else current}\n")
    out.write(f"{t('db.status_newest')}{colon()}{status.newest_known}\n")
    applied = [
        _label(a.version, a.name) + paren(f"{a.applied_at:%Y-%m-%d %H:%M:%S%z}")
        for a in status.applied
    ]
    out.write(f"{t('db.status_applied')}{colon()}{', '.join(applied) or none}\n")
    pending = [m.label for m in status.pending]
    out.write(f"{t('db.status_pending')}{colon()}{', '.join(pending) or none}\n")
    for problem in status.problems:
        out.write(f"{t('db.status_problem')}{colon()}{problem}\n")
    return code


def _where(cursor: Cursor) -> str:
    return f"(tx {cursor.tx}, id {cursor.event_id})"


def _plan_doc(cursor: Cursor, stored: SourceIdentity | None, probed: SourceProbe,
              point: ResetPoint, since: dt.datetime) -> dict[str, Any]:  # fmt: skip
    def ident(i: SourceIdentity | None) -> dict[str, Any] | None:
        return None if i is None else {"database": i.database, "database_oid": i.database_oid,
                                       "system_identifier": str(i.system_identifier)}  # fmt: skip

    return {"from": since.isoformat(), "cursor": {"tx": cursor.tx, "id": cursor.event_id},
            "new_cursor": {"tx": point.cursor.tx, "id": point.cursor.event_id},
            "stored_source": ident(stored), "source": ident(probed.identity),
            "events_again": point.again, "events_after": point.after}  # fmt: skip


def cmd_db_reset_cursor(args: argparse.Namespace, out: TextIO) -> int:
    """Plan, confirm, then set: the plan is recomputed in the transaction that applies it."""
    from monitor.source import identity
    from monitor.state import position

    source = db_dsn(args.source_dsn, "source")
    try:
        since = local_moment(args.since, TIMEZONE)
    except ValueError:
        raise UsageError(t("cli.bad_instant", value=args.since)) from None

    async def plan(src: Connection) -> dict[str, Any]:
        async with jiancha_connection(src, source, args.dsn) as target:
            cursor, stored = await position.load_position(target)
            probed = await identity.probe(src)
            point = await identity.reset_point(src, since)
            return _plan_doc(cursor, stored, probed, point, since)

    doc = with_connection(source, plan)
    if not args.json:
        old, new = doc["cursor"], doc["new_cursor"]
        out.write(t("db.reset_plan", old=f"(tx {old['tx']}, id {old['id']})",
                    new=f"(tx {new['tx']}, id {new['id']})",
                    source=f"{doc['source']['database']} (system_identifier "
                           f"{doc['source']['system_identifier']}, oid "
                           f"{doc['source']['database_oid']})",
                    since=args.since, again=doc["events_again"],
                    after=doc["events_after"]) + "\n")  # fmt: skip
    if args.json and not args.yes:  # a script cannot answer: the plan only, nothing changed
        dump({**doc, "reset": False}, out)
        return 0
    if not args.yes:
        out.write(t("db.reset_ask"))
        out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes", "是"):
            out.write("\n" + t("db.reset_aborted") + "\n")
            return 1

    async def apply(src: Connection) -> dict[str, Any]:
        async with jiancha_connection(src, source, args.dsn) as target:
            probed = await identity.probe(src)
            point = await identity.reset_point(src, since)
            await position.reset_cursor(target, point.cursor, probed.identity, since,
                                        dt.datetime.now(dt.UTC))  # fmt: skip
            return {"tx": point.cursor.tx, "id": point.cursor.event_id}

    applied = with_connection(source, apply)
    if args.json:
        dump({**doc, "new_cursor": applied, "reset": True}, out)
    else:
        out.write(t("db.reset_done", new=f"(tx {applied['tx']}, id {applied['id']})",
                    recheck=RECHECK) + "\n")  # fmt: skip
    return 0


def _register_reset(dsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = dsub.add_parser(
        "reset-cursor",
        formatter_class=FMT,
        help=h(
            "源数据库迁移后，从某业务时间起重新读取事件",
            "after the source moved, read events again from a business time",
        ),
        description=h(
            "源数据库经转储恢复、逻辑切换或更换后，事务号可能倒退，守护进程会拒绝读取\n"
            "（日志 source_mismatch，指标 jiancha_source_mismatch 1）。本命令把游标设在\n"
            "业务时间不早于 --from 的第一个事件之前，并记录当前源的标识\n"
            "（system_identifier 与数据库 oid）。\n"
            "先显示将做的事并请求确认（--yes 跳过）。已入库的事件与已发的牌按键去重，\n"
            "重新读取不会重复发牌；可重复执行。守护进程至多 30 秒后自行继续读取。",
            "After a dump and restore, a logical cutover or a change of source database the\n"
            "transaction ids may go backwards, and the daemon refuses to read (log event\n"
            "source_mismatch, metric jiancha_source_mismatch 1). This sets the cursor just\n"
            "before the first event whose business time is at or after --from and records\n"
            "the source's identity (system_identifier and database oid). It shows what it\n"
            "would do and asks first (--yes skips that). Stored events and issued cards are\n"
            "keyed, so reading again issues no card twice; safe to rerun. The daemon resumes\n"
            "by itself within 30 s.",
        ),
        epilog=examples(
            "jiancha db reset-cursor --from 2024-03-01T00:00",
            "jiancha db reset-cursor --from 2024-03-01T00:00+08:00 --yes --json",
            zh="\n（--from 不带时区时按北京时间；选在迁移前最后一次正常读取之前，宁早勿晚）",
            en="\n(--from without an offset is Beijing time; pick it before the last good read "
            "ahead of the move: earlier is safe, later loses events)",
        ),
    )
    p.add_argument("--from", dest="since", required=True, metavar="ISO-INSTANT",
                   help=h("从该业务时间（occurred_at）起重新读取",
                          "read again from this business time (occurred_at)"))  # fmt: skip
    p.add_argument(
        "--yes",
        action="store_true",
        help=h(
            "不询问，直接执行（--json 而无 --yes 时只输出计划，不作改动）",
            "do not ask, do it (--json without --yes: the plan only, no change)",
        ),
    )
    json_option(p)
    source_dsn_option(p)
    dsn_option(p)
    p.set_defaults(func=cmd_db_reset_cursor)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha db`` and its subcommands."""
    dbp = sub.add_parser(
        "db",
        help=h("数据库：源数据约定与 jiancha 模式", "database: source contract and schema jiancha"),
        formatter_class=FMT,
        description=h(
            "install-source 在审批数据库中建立源数据约定（case_events、matters、触发器、\n"
            "只读角色 jiancha_reader）；migrate 建立或升级 jiancha 模式；status 查看版本；\n"
            "reset-cursor 在源数据库迁移后从某业务时间起重新读取。均可重复执行。",
            "install-source creates the source contract in the approval database\n"
            "(case_events, matters, triggers, read-only role jiancha_reader); migrate\n"
            "creates or upgrades schema jiancha; status shows its version; reset-cursor\n"
            "reads again from a business time after the source moved. All are safe to\n"
            "rerun.",
        ),
    )
    dsub = commands(dbp, "db_command")

    p = dsub.add_parser(
        "migrate",
        help=h("建立或升级 jiancha 模式", "create or upgrade schema jiancha"),
        description=h(
            "按版本号依次应用尚未应用的迁移，每个迁移一个事务；可重复执行，多个进程同时执行也安全。"
            "数据库版本新于本程序、或已应用的迁移文件被改动时拒绝执行（退出码 1）。",
            "Apply the migrations the database lacks, in order, one transaction each; safe "
            "to rerun and to run from several processes at once. Refuses (exit status 1) a "
            "database newer than this jiancha or one whose applied migrations were edited.",
        ),
    )
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_db_migrate)

    p = dsub.add_parser(
        "install-source",
        help=h(
            "在审批数据库中建立源数据约定", "create the source contract in the approval database"
        ),
        description=h(
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
        help=h(
            "审批数据库的 PostgreSQL DSN（默认取环境变量 JIANCHA_SOURCE_DSN）",
            "PostgreSQL DSN of the approval database (default: JIANCHA_SOURCE_DSN)",
        ),
    )
    p.set_defaults(func=cmd_db_install_source)

    p = dsub.add_parser(
        "status",
        help=h("查看 jiancha 模式的版本", "show the version of schema jiancha"),
        description=h(
            "列出已应用的迁移、本程序已知的最新版本与待应用的迁移；只读。"
            "数据库会被 migrate 拒绝时退出码为 1。",
            "List the applied migrations, the newest version this jiancha knows and the "
            "pending ones; reads only. Exit status 1 when migrate would refuse the database.",
        ),
    )
    dsn_option(p)
    json_option(p)
    p.set_defaults(func=cmd_db_status)

    _register_reset(dsub)
    register_prune(dsub)
