"""``jiancha grafana``: install the dashboards into a Grafana, and mark red cards on them.

``push`` creates or updates the folder 电子监察, the datasources
``jiancha-prometheus`` and ``jiancha-postgres`` and the dashboards of
``dashboards/build.py``; ``annotate`` posts red cards from ``jiancha.cards``
as annotations. Both are safe to rerun. The Grafana token (a service account
token) and the PostgreSQL password are read from files only, never from the
command line: a bare name is looked up in systemd's $CREDENTIALS_DIRECTORY.

Exit status: 0 done; 2 bad arguments or an unreadable secret file; 1 Grafana
or the database failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["register"]

_T = TypeVar("_T")


def _secret(path: str, what: str) -> str:
    from monitor.cli import UsageError, _h
    from monitor.outbox import read_secret

    try:
        value = read_secret(path)
    except OSError as exc:
        raise UsageError(
            _h(f"无法读取{what}文件 {path}：", f"cannot read {what} file {path}: ")
            + (exc.strerror or str(exc))
        ) from None
    if not value:
        raise UsageError(_h(f"{what}文件 {path} 为空", f"{what} file {path} is empty"))
    return value


def _client(args: argparse.Namespace) -> Any:
    from grafana_client.api import GrafanaApi

    from monitor.cli import _h

    token = _secret(args.token_file, _h("令牌", "token"))
    return GrafanaApi.from_url(args.url.rstrip("/"), credential=token, timeout=args.timeout)


def _grafana(work: Callable[[], _T]) -> _T:
    """Run ``work``; Grafana's and the network's errors become `CommandFailed`."""
    from grafana_client.client import GrafanaException

    from monitor.cli import CommandFailed, _h, _one_line

    try:
        return work()
    except GrafanaException as exc:
        detail = exc.message if isinstance(exc.message, str) else _one_line(exc)
        raise CommandFailed(_h("Grafana 出错：", "Grafana failed: ") + detail) from None
    except OSError as exc:  # niquests' connection errors are OSErrors
        raise CommandFailed(
            _h("无法连接 Grafana：", "cannot reach Grafana: ") + _one_line(exc)
        ) from None


def _dashboards(directory: str | None) -> dict[str, Any]:
    """The dashboards: the ``*.json`` of ``directory``, else built by ``dashboards/build.py``.

    ``dashboards/`` is in the source tree, not in the wheel: an installed jiancha
    is given the directory of the released JSON files.
    """
    from pathlib import Path

    from monitor.cli import UsageError, _h

    if directory is None:
        try:
            from dashboards.build import dashboards
        except ImportError:
            raise UsageError(
                _h(
                    "找不到 dashboards 包，请用 --dashboards 指定 JSON 目录",
                    "no dashboards package here: give --dashboards DIR",
                )
            ) from None
        return dict(dashboards())
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise UsageError(_h(f"{directory} 中没有 JSON 文件", f"no JSON files in {directory}"))
    try:
        return {f.name: json.loads(f.read_text("utf-8")) for f in files}
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def cmd_grafana_push(args: argparse.Namespace, out: TextIO) -> int:
    from exporters import grafana
    from monitor.cli import _h

    boards = _dashboards(args.dashboards)

    postgres: dict[str, Any] = {
        "host": args.postgres_host,
        "port": args.postgres_port,
        "database": args.postgres_db,
        "user": args.postgres_user,
        "sslmode": args.postgres_sslmode,
    }
    if args.postgres_password_file:
        postgres["password"] = _secret(args.postgres_password_file, _h("密码", "password"))
    client = _client(args)
    result = _grafana(
        lambda: grafana.push(client, boards, args.prometheus_url, postgres, args.folder)
    )
    if args.json:
        doc = {
            "folder_uid": result.folder_uid,
            "folder_created": result.folder_created,
            "datasources": result.datasources,
            "datasource_uids": result.uids,
            "dashboards": result.dashboards,
        }
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return 0
    actions = {"created": _h("已创建", "created"), "updated": _h("已更新", "updated")}
    state = actions["created" if result.folder_created else "updated"]
    out.write(f"{_h('文件夹', 'folder')} {args.folder} ({result.folder_uid}) {state}\n")
    for name, action in result.datasources.items():
        out.write(f"{_h('数据源', 'datasource')} {name} {actions[action]}\n")
    for name, uid in result.dashboards.items():
        out.write(f"{_h('仪表盘', 'dashboard')} {name} -> {uid}\n")
    return 0


_RED_CARDS = """
SELECT id, case_id, rule, level, issued_at, matter, department, "window"
FROM jiancha.cards
WHERE level = 'red' AND status <> 'revoked' AND ($1::timestamptz IS NULL OR issued_at >= $1)
ORDER BY issued_at, id
"""


def cmd_grafana_annotate(args: argparse.Namespace, out: TextIO) -> int:
    from exporters import grafana
    from monitor.cli import UsageError, _db_dsn, _h, _with_connection

    since: dt.datetime | None = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since.strip())
        except ValueError:
            raise UsageError(_h(f"无效时间：{args.since}", f"bad instant: {args.since}")) from None
        if since.tzinfo is None:
            import zoneinfo

            since = since.replace(tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))
    dsn = _db_dsn(args.dsn, "jiancha")
    client = _client(args)

    async def fetch(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_RED_CARDS, since)]

    cards = _with_connection(dsn, fetch)
    added, skipped = _grafana(lambda: grafana.annotate(client, cards))
    if args.json:
        out.write(json.dumps({"added": added, "skipped": skipped}) + "\n")
    else:
        out.write(
            _h(
                f"新增标注 {added} 条，已存在 {skipped} 条\n",
                f"{added} annotations added, {skipped} already there\n",
            )
        )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from monitor.cli import _h

    p.add_argument(
        "--url",
        required=True,
        metavar="URL",
        help=_h(
            "Grafana 地址，如 http://127.0.0.1:3000", "Grafana URL, e.g. http://127.0.0.1:3000"
        ),
    )
    p.add_argument(
        "--token-file",
        required=True,
        metavar="FILE",
        help=_h(
            "存放 Grafana 服务账号令牌的文件（不接受命令行明文令牌）",
            "file holding the Grafana service account token",
        ),
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help=_h("请求超时秒数（默认 10）", "request timeout (default 10)"),
    )
    p.add_argument("--json", action="store_true", help=_h("输出 JSON", "print JSON"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha grafana`` and its subcommands to the main parser's subcommands."""
    from exporters.grafana import FOLDER
    from monitor.cli import _h

    fmt = argparse.RawDescriptionHelpFormatter
    parent = sub.add_parser(
        "grafana",
        help=_h("向 Grafana 安装仪表盘、标注红牌", "install dashboards into Grafana, annotate"),
        formatter_class=fmt,
        description=_h(
            "push 在 Grafana 中建立或更新文件夹、数据源 jiancha-prometheus 与\n"
            "jiancha-postgres 以及全部仪表盘；annotate 把红牌标注到时间轴上。均可重复执行。\n"
            "令牌与密码只从文件读取（裸文件名在 $CREDENTIALS_DIRECTORY 中查找）。\n"
            "退出码：0 成功；2 参数有误或无法读取密钥文件；1 Grafana 或数据库出错。",
            "push creates or updates the folder, the datasources jiancha-prometheus and\n"
            "jiancha-postgres and every dashboard; annotate marks red cards as\n"
            "annotations. Both are safe to rerun. Token and password come from files\n"
            "only (a bare name is looked up in $CREDENTIALS_DIRECTORY).\n"
            "Exit status: 0 done; 2 bad arguments or unreadable secret; 1 Grafana or\n"
            "database error.",
        ),
        epilog=_h("示例：\n", "examples:\n")
        + "  jiancha grafana push --url http://127.0.0.1:3000 --token-file grafana-token \\\n"
        "      --postgres-password-file /etc/jiancha/reader.password\n"
        "  jiancha grafana annotate --url http://127.0.0.1:3000 --token-file grafana-token \\\n"
        "      --since 2024-03-01",
    )
    gsub = parent.add_subparsers(dest="grafana_command", metavar="COMMAND", required=True)

    p = gsub.add_parser(
        "push",
        allow_abbrev=False,  # --token must not pass for --token-file
        help=_h(
            "安装或更新文件夹、数据源与仪表盘", "install or update folder, datasources, dashboards"
        ),
        description=_h(
            "按标题查找或建立文件夹，按名称建立或更新两个数据源，再以覆盖方式上传每个仪表盘，"
            "仪表盘中的 ${DS_PROMETHEUS}/${DS_POSTGRES} 替换为数据源的 uid。",
            "Find or create the folder by title, create or update the two datasources by "
            "name, then upload every dashboard with overwrite, its ${DS_PROMETHEUS} / "
            "${DS_POSTGRES} inputs replaced by the datasources' uids.",
        ),
    )
    _common(p)
    p.add_argument(
        "--folder",
        default=FOLDER,
        metavar="TITLE",
        help=_h(f"文件夹标题（默认 {FOLDER}）", f"folder title (default {FOLDER})"),
    )
    p.add_argument(
        "--dashboards",
        metavar="DIR",
        help=_h(
            "仪表盘 JSON 所在目录（默认由源码树中的 dashboards/build.py 生成）",
            "directory of dashboard JSON files (default: built by dashboards/build.py)",
        ),
    )
    p.add_argument(
        "--prometheus-url",
        default="http://127.0.0.1:9090",
        metavar="URL",
        help=_h(
            "Prometheus 地址（默认 http://127.0.0.1:9090）",
            "Prometheus URL (default http://127.0.0.1:9090)",
        ),
    )
    p.add_argument(
        "--postgres-host",
        default="127.0.0.1",
        metavar="HOST",
        help=_h("PostgreSQL 主机（默认 127.0.0.1）", "PostgreSQL host"),
    )
    p.add_argument(
        "--postgres-port",
        type=int,
        default=5432,
        metavar="PORT",
        help=_h("PostgreSQL 端口（默认 5432）", "PostgreSQL port"),
    )
    p.add_argument(
        "--postgres-db",
        default="jiancha",
        metavar="NAME",
        help=_h("数据库名（默认 jiancha）", "database name (default jiancha)"),
    )
    p.add_argument(
        "--postgres-user",
        default="grafana",
        metavar="USER",
        help=_h(
            "只读登录账号，授予 jiancha_dashboard 角色（默认 grafana）",
            "read-only login role, granted jiancha_dashboard (default grafana)",
        ),
    )
    p.add_argument(
        "--postgres-password-file",
        metavar="FILE",
        help=_h(
            "存放该账号密码的文件；不给则保留 Grafana 中已有的密码",
            "file holding that user's password; without it Grafana keeps the password it has",
        ),
    )
    p.add_argument(
        "--postgres-sslmode",
        default="disable",
        metavar="MODE",
        choices=["disable", "require", "verify-ca", "verify-full"],
        help=_h("SSL 模式（默认 disable）", "SSL mode (default disable)"),
    )
    p.set_defaults(func=cmd_grafana_push)

    p = gsub.add_parser(
        "annotate",
        allow_abbrev=False,  # --token must not pass for --token-file
        help=_h("把红牌标注到 Grafana", "post red cards as Grafana annotations"),
        description=_h(
            "读取 jiancha.cards 中未撤销的红牌，按 card:<编号> 标签去重后发为 Grafana 标注。",
            "Read the red cards of jiancha.cards that are not revoked and post each, once "
            "(deduplicated by the tag card:<id>), as a Grafana annotation.",
        ),
    )
    _common(p)
    p.add_argument(
        "--since",
        metavar="ISO",
        help=_h(
            "只标注此时刻之后签发的（无时区按北京时间）",
            "only cards issued since (Asia/Shanghai if no offset)",
        ),
    )
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help=_h(
            "PostgreSQL DSN（默认取环境变量 JIANCHA_DSN）", "PostgreSQL DSN (default: JIANCHA_DSN)"
        ),
    )
    p.set_defaults(func=cmd_grafana_annotate)
