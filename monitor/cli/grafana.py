"""``jiancha grafana``: install the dashboards into a Grafana, and mark red cards on them.

``push`` creates or updates the folder 电子监察, the datasources
``jiancha-prometheus`` and ``jiancha-postgres`` and the dashboards (the JSON
jiancha ships, `monitor.paths.dashboards_dir`, or ``--dashboards DIR``);
``push --check`` validates those dashboards and says what would be pushed,
without contacting Grafana. ``annotate`` posts red cards from ``jiancha.cards``
as annotations. Both are safe to rerun. The Grafana token (a service account
token) and the PostgreSQL password are read from files only, never from the
command line: a bare name is looked up in systemd's $CREDENTIALS_DIRECTORY.

Exit status: 0 done (or valid); 2 bad arguments, invalid dashboards to push or
an unreadable secret file; 1 Grafana or the database failed, or ``--check``
found a problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from monitor.cli._boards import FILLED_INPUTS, Board, load_dashboards
from monitor.cli._common import (
    CommandFailed,
    UsageError,
    colon,
    commands,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    local_moment,
    number,
    one_line,
    paren,
    with_connection,
)
from monitor.log import get_logger
from monitor.redact import mask

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["FILLED_INPUTS", "load_dashboards", "register"]

_T = TypeVar("_T")


def _secret(path: str, what: str) -> str:
    from monitor.secrets import read_secret

    try:
        value = read_secret(path)
    except OSError as exc:
        raise UsageError(
            h(f"无法读取{what}文件 {path}：", f"cannot read {what} file {path}: ")
            + (exc.strerror or str(exc))
        ) from None
    if not value:
        raise UsageError(h(f"{what}文件 {path} 为空", f"{what} file {path} is empty"))
    return value


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            h(f"应为 http(s) 地址：{text!r}", f"must be an http(s) URL: {text!r}")
        )
    return text


def _client(args: argparse.Namespace) -> Any:
    from grafana_client.api import GrafanaApi

    token = _secret(args.token_file, h("令牌", "token"))
    return GrafanaApi.from_url(args.url.rstrip("/"), credential=token, timeout=args.timeout)


def _grafana(work: Callable[[], _T], url: str) -> _T:
    """Run ``work``; Grafana's and the network's errors become `CommandFailed`."""
    from grafana_client.client import GrafanaException

    try:
        return work()
    except GrafanaException as exc:
        detail = exc.message if isinstance(exc.message, str) else one_line(exc)
        raise CommandFailed(h("Grafana 出错：", "Grafana failed: ") + detail) from None
    except OSError as exc:  # niquests' connection errors are OSErrors
        # the library's whole text, for whoever turns the log up; the operator gets the cause
        get_logger("jiancha.grafana").debug(
            "grafana_unreachable", url=mask(url), error=mask(one_line(exc))
        )
        raise CommandFailed(
            h("无法连接 Grafana", "cannot reach Grafana") + paren(mask(url)) + colon()
            + why_unreachable(exc)
        ) from None  # fmt: skip


# What an operator can act on, found in the HTTP library's text (urllib3's wraps the
# cause three deep: "HTTPConnectionPool(...): Max retries exceeded ... (Caused by ...)").
_CAUSES = (
    (("timed out", "Timeout", "ConnectTimeout", "ReadTimeout"),
     ("超时未响应（可用 --timeout 放宽）", "no answer in time (raise --timeout)")),
    (("Connection refused", "Errno 111"),
     ("连接被拒绝（地址或端口不对，或 Grafana 没有运行）",
      "connection refused (wrong address or port, or Grafana is not running)")),
    (("Failed to resolve", "Name or service not known", "NameResolutionError",
      "getaddrinfo failed", "Temporary failure in name resolution"),
     ("无法解析主机名（--url 中的主机名拼写有误，或本机 DNS 不可用）",
      "the host name does not resolve (a typo in --url, or no DNS here)")),
    (("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLError", "SSL:"),
     ("TLS 证书校验失败（Grafana 的证书不受本机信任）",
      "TLS certificate verification failed (this host does not trust Grafana's certificate)")),
    (("No route to host", "Network is unreachable", "Errno 113", "Errno 101"),
     ("网络不通（无到该主机的路由）", "network unreachable (no route to the host)")),
)  # fmt: skip


def why_unreachable(exc: BaseException) -> str:
    """The reason in one short line; the library's whole text goes to the log."""
    text = one_line(exc)
    for needles, (zh, en) in _CAUSES:
        if any(n in text for n in needles):
            return h(zh, en)
    text = mask(text)
    return text if len(text) <= 200 else text[:200] + "…"


def _postgres(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.postgres_host,
        "port": args.postgres_port,
        "database": args.postgres_db,
        "user": args.postgres_user,
        "sslmode": args.postgres_sslmode,
    }


def _check(
    args: argparse.Namespace, folder: Path, boards: list[Board], problems: list[str], out: TextIO
) -> int:
    """``push --check``: what push would install, and whether it can; Grafana is not asked."""
    from exporters import grafana

    pg = grafana.postgres_datasource(_postgres(args))
    sources = {
        grafana.PROMETHEUS_NAME: {"input": "DS_PROMETHEUS", "url": args.prometheus_url},
        grafana.POSTGRES_NAME: {"input": "DS_POSTGRES", "url": pg["url"],
                                "database": pg["database"], "user": pg["user"]},
    }  # fmt: skip
    if args.json:
        doc = {
            "valid": not problems,
            "directory": str(folder),
            "folder": args.folder,
            "datasources": sources,
            "dashboards": [{"file": b.name, "uid": b.uid or None, "title": b.title or None,
                            "inputs": b.inputs, "problems": b.problems} for b in boards],
            "problems": problems,
        }  # fmt: skip
        dump(doc, out)
        return 1 if problems else 0
    out.write(
        h(
            f"仪表盘目录 {folder}（{len(boards)} 个），推送到文件夹 {args.folder}：\n",
            f"dashboards in {folder} ({len(boards)}), to push into folder {args.folder}:\n",
        )
    )
    for b in boards:
        if b.doc is None:
            out.write(f"  {b.name}  {h('（无效）', '(invalid)')}\n")
            continue
        used = ", ".join(b.inputs) or "-"
        out.write(f"  {b.name}  uid={b.uid or '-'}  {h('标题', 'title')}={b.title or '-'}  "
                  f"{h('数据源', 'inputs')}={used}\n")  # fmt: skip
    for name, ds in sources.items():
        where = ds["url"]
        if "database" in ds:
            where += f"/{ds['database']} ({h('用户', 'user')} {ds['user']})"
        out.write(f"{h('数据源', 'datasource')} {name} (${{{ds['input']}}}) -> {where}\n")
    if problems:
        out.write(h("问题：\n", "problems:\n"))
        out.writelines(f"  - {p}\n" for p in problems)
        out.write(h("检查未通过，不可推送\n", "invalid: push would refuse these dashboards\n"))
        return 1
    out.write(h("检查通过（未连接 Grafana）\n", "valid (Grafana was not contacted)\n"))
    return 0


def cmd_grafana_push(args: argparse.Namespace, out: TextIO) -> int:
    from exporters import grafana

    if not args.check:
        lacking = [opt for opt, value in (("--url", args.url), ("--token-file", args.token_file))
                   if not value]  # fmt: skip
        if lacking:
            raise UsageError(
                h(
                    f"push 需要 {' 与 '.join(lacking)}（只检查仪表盘请用 --check）",
                    f"push needs {' and '.join(lacking)} (--check validates without Grafana)",
                )
            )
    folder, boards, problems = load_dashboards(args.dashboards)
    if args.check:
        return _check(args, folder, boards, problems, out)
    if problems:
        raise UsageError(
            h("仪表盘有误，未推送：", "invalid dashboards, nothing pushed: ")
            + h("；", "; ").join(problems)
        )
    loaded = {b.name: b.doc for b in boards if b.doc is not None}

    postgres = _postgres(args)
    if args.postgres_password_file:
        postgres["password"] = _secret(args.postgres_password_file, h("密码", "password"))
    client = _client(args)
    result = _grafana(
        lambda: grafana.push(
            client, loaded, args.prometheus_url, postgres, args.folder, console=args.console_url
        ),
        args.url,
    )
    if args.json:
        doc = {
            "folder_uid": result.folder_uid,
            "folder_created": result.folder_created,
            "datasources": result.datasources,
            "datasource_uids": result.uids,
            "dashboards": result.dashboards,
        }
        dump(doc, out)
        return 0
    actions = {"created": h("已创建", "created"), "updated": h("已更新", "updated")}
    state = actions["created" if result.folder_created else "updated"]
    out.write(f"{h('文件夹', 'folder')} {args.folder} ({result.folder_uid}) {state}\n")
    for name, action in result.datasources.items():
        out.write(f"{h('数据源', 'datasource')} {name} {actions[action]}\n")
    for name, uid in result.dashboards.items():
        out.write(f"{h('仪表盘', 'dashboard')} {name} -> {uid}\n")
    return 0


_RED_CARDS = """
SELECT id, case_id, rule, level, issued_at, matter, department, "window"
FROM jiancha.cards
WHERE level = 'red' AND status <> 'revoked' AND ($1::timestamptz IS NULL OR issued_at >= $1)
ORDER BY issued_at, id
"""


def cmd_grafana_annotate(args: argparse.Namespace, out: TextIO) -> int:
    from exporters import grafana

    since: dt.datetime | None = None
    if args.since:
        try:
            since = local_moment(args.since, "Asia/Shanghai")
        except ValueError:
            raise UsageError(h(f"无效时间：{args.since}", f"bad instant: {args.since}")) from None
    dsn = db_dsn(args.dsn, "jiancha")
    client = _client(args)

    async def fetch(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_RED_CARDS, since)]

    cards = with_connection(dsn, fetch)
    added, skipped = _grafana(lambda: grafana.annotate(client, cards), args.url)
    if args.json:
        out.write(json.dumps({"added": added, "skipped": skipped}) + "\n")
    else:
        out.write(
            h(
                f"新增标注 {added} 条，已存在 {skipped} 条\n",
                f"{added} annotations added, {skipped} already there\n",
            )
        )
    return 0


def _common(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--url``, ``--token-file``, ``--timeout``, ``--json``; push checks the first two
    itself (``required=False``) because ``push --check`` needs neither."""

    unless = "" if required else h("；除 --check 外必需", "; needed unless --check")
    p.add_argument(
        "--url",
        required=required,
        type=_http_url,
        metavar="URL",
        help=h("Grafana 地址，如 http://127.0.0.1:3000", "Grafana URL, e.g. http://127.0.0.1:3000")
        + unless,
    )
    p.add_argument(
        "--token-file",
        required=required,
        metavar="FILE",
        help=h(
            "存放 Grafana 服务账号令牌的文件（不接受命令行明文令牌）",
            "file holding the Grafana service account token",
        )
        + unless,
    )
    p.add_argument(
        "--timeout",
        type=number(float, 0, above=True),
        default=10.0,
        metavar="SECONDS",
        help=h("请求超时秒数（默认 10）", "request timeout (default 10)"),
    )
    p.add_argument("--json", action="store_true", help=h("输出 JSON", "print JSON"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha grafana`` and its subcommands to the main parser's subcommands."""
    from exporters.grafana import FOLDER

    fmt = argparse.RawDescriptionHelpFormatter
    parent = sub.add_parser(
        "grafana",
        help=h("向 Grafana 安装仪表盘、标注红牌", "install dashboards into Grafana, annotate"),
        formatter_class=fmt,
        description=h(
            "push 在 Grafana 中建立或更新文件夹、数据源 jiancha-prometheus 与\n"
            "jiancha-postgres 以及全部仪表盘；annotate 把红牌标注到时间轴上。均可重复执行。\n"
            "push --check 只校验仪表盘并列出将推送的内容，不连接 Grafana。\n"
            "令牌与密码只从文件读取（裸文件名在 $CREDENTIALS_DIRECTORY 中查找）。\n"
            "退出码：0 成功（或校验通过）；2 参数有误、仪表盘有误或无法读取密钥文件；\n"
            "1 Grafana 或数据库出错，或 --check 发现问题。",
            "push creates or updates the folder, the datasources jiancha-prometheus and\n"
            "jiancha-postgres and every dashboard; annotate marks red cards as\n"
            "annotations. Both are safe to rerun. push --check validates the dashboards\n"
            "and lists what would be pushed, without contacting Grafana. Token and\n"
            "password come from files only (a bare name is looked up in\n"
            "$CREDENTIALS_DIRECTORY).\n"
            "Exit status: 0 done (or valid); 2 bad arguments, invalid dashboards or\n"
            "unreadable secret; 1 Grafana or database error, or --check found a problem.",
        ),
        epilog=examples(
            "jiancha grafana push --check",
            "jiancha grafana push --url http://127.0.0.1:3000 --token-file grafana-token \\\n"
            "      --postgres-password-file /etc/jiancha/reader.password",
            "jiancha grafana annotate --url http://127.0.0.1:3000 --token-file grafana-token \\\n"
            "      --since 2024-03-01",
        ),
    )
    gsub = commands(parent, "grafana_command")

    p = gsub.add_parser(
        "push",
        allow_abbrev=False,  # --token must not pass for --token-file
        help=h(
            "安装或更新文件夹、数据源与仪表盘", "install or update folder, datasources, dashboards"
        ),
        description=h(
            "按标题查找或建立文件夹，按名称建立或更新两个数据源，再以覆盖方式上传每个仪表盘，"
            "仪表盘的数据源引用（jiancha-prometheus、jiancha-postgres，旧文件的 ${DS_PROMETHEUS}/"
            "${DS_POSTGRES}）指向这两个数据源的 uid。"
            "先校验仪表盘（有效 JSON、有 uid 与 title、只用这两个占位符），有误则不推送；"
            "--check 只做校验并列出将推送的内容，不连接 Grafana，此时无需 --url 与 --token-file。"
            "退出码：0 已推送（--check：校验通过）；1 Grafana 出错（--check：校验未通过）；"
            "2 参数有误，或仪表盘有误而未推送。",
            "Find or create the folder by title, create or update the two datasources by "
            "name, then upload every dashboard with overwrite, its datasource references "
            "(jiancha-prometheus, jiancha-postgres; an older file's ${DS_PROMETHEUS} / "
            "${DS_POSTGRES}) pointed at the datasources' uids. The dashboards are "
            "checked first (valid JSON, a uid and a title, only those two placeholders) and "
            "nothing is pushed if one is wrong; --check only checks and lists what would be "
            "pushed, without contacting Grafana (--url and --token-file are not needed). "
            "Exit status: 0 pushed (--check: valid); 1 Grafana failed (--check: invalid); "
            "2 bad arguments, or invalid dashboards and nothing pushed.",
        ),
    )
    _common(p, required=False)
    p.add_argument(
        "--check",
        action="store_true",
        help=h(
            "只校验仪表盘并列出将推送的内容，不连接 Grafana（有误时退出码 1）",
            "only validate the dashboards and list what would be pushed; no Grafana "
            "(exit 1 when invalid)",
        ),
    )
    p.add_argument(
        "--folder",
        default=FOLDER,
        metavar="TITLE",
        help=h(f"文件夹标题（默认 {FOLDER}）", f"folder title (default {FOLDER})"),
    )
    p.add_argument(
        "--dashboards",
        metavar="DIR",
        help=h(
            "仪表盘 JSON 所在目录（默认为 jiancha 自带的仪表盘）",
            "directory of dashboard JSON files (default: the dashboards jiancha ships)",
        ),
    )
    p.add_argument(
        "--prometheus-url",
        default="http://127.0.0.1:9090",
        metavar="URL",
        help=h(
            "Prometheus 地址（默认 http://127.0.0.1:9090）",
            "Prometheus URL (default http://127.0.0.1:9090)",
        ),
    )
    p.add_argument(
        "--postgres-host",
        default="127.0.0.1",
        metavar="HOST",
        help=h("PostgreSQL 主机（默认 127.0.0.1）", "PostgreSQL host"),
    )
    p.add_argument(
        "--postgres-port",
        type=int,
        default=5432,
        metavar="PORT",
        help=h("PostgreSQL 端口（默认 5432）", "PostgreSQL port"),
    )
    p.add_argument(
        "--postgres-db",
        default="jiancha",
        metavar="NAME",
        help=h("数据库名（默认 jiancha）", "database name (default jiancha)"),
    )
    p.add_argument(
        "--postgres-user",
        default="grafana",
        metavar="USER",
        help=h(
            "只读登录账号，授予 jiancha_dashboard 角色（默认 grafana）",
            "read-only login role, granted jiancha_dashboard (default grafana)",
        ),
    )
    p.add_argument(
        "--postgres-password-file",
        metavar="FILE",
        help=h(
            "存放该账号密码的文件；不给则保留 Grafana 中已有的密码",
            "file holding that user's password; without it Grafana keeps the password it has",
        ),
    )
    p.add_argument(
        "--postgres-sslmode",
        default="disable",
        metavar="MODE",
        choices=["disable", "require", "verify-ca", "verify-full"],
        help=h("SSL 模式（默认 disable）", "SSL mode (default disable)"),
    )
    p.add_argument(
        "--console-url",
        type=_http_url,
        metavar="URL",
        help=h(
            "监察控制台（jiancha web）的地址，办件编号链接到其办件页（默认取仪表盘生成时的地址）",
            "the console's (jiancha web) address case numbers link to "
            "(default: the one the dashboards were generated with)",
        ),
    )
    p.set_defaults(func=cmd_grafana_push)

    p = gsub.add_parser(
        "annotate",
        allow_abbrev=False,  # --token must not pass for --token-file
        help=h("把红牌标注到 Grafana", "post red cards as Grafana annotations"),
        description=h(
            "读取 jiancha.cards 中未撤销的红牌，按 card:<编号> 标签去重后发为 Grafana 标注。",
            "Read the red cards of jiancha.cards that are not revoked and post each, once "
            "(deduplicated by the tag card:<id>), as a Grafana annotation.",
        ),
    )
    _common(p)
    p.add_argument(
        "--since",
        metavar="ISO",
        help=h(
            "只标注此时刻之后签发的（无时区按北京时间）",
            "only cards issued since (Asia/Shanghai if no offset)",
        ),
    )
    dsn_option(p)
    p.set_defaults(func=cmd_grafana_annotate)
