"""``jiancha db``: the source contract in the approval database, and schema ``jiancha``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from monitor.cli._common import (
    FMT,
    CommandFailed,
    colon,
    db_dsn,
    dsn_option,
    dump,
    h,
    json_option,
    paren,
    with_connection,
)
from monitor.i18n import t

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.migrate import Migration

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

    dsn = db_dsn(args.dsn, "source")
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha db`` and its subcommands."""
    dbp = sub.add_parser(
        "db",
        help=h("数据库：源数据约定与 jiancha 模式", "database: source contract and schema jiancha"),
        formatter_class=FMT,
        description=h(
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
