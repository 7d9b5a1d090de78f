"""``jiancha web``: serve the console for officers and window heads (docs/console.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor.cli._common import FMT, UsageError, db_dsn, dsn_option, examples, h, load_config
from monitor.i18n import current_lang

if TYPE_CHECKING:
    from monitor.calendar.regions import Regions
    from monitor.config import Config

__all__ = ["DEFAULT_ADDRESS", "register"]

DEFAULT_ADDRESS = "127.0.0.1:9732"


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            h(f"地址应为 HOST:PORT：{text!r}", f"the address must be HOST:PORT: {text!r}")
        )
    return text


def _secret_path(given: str | None) -> Path:
    """``--secret-file``, else ``web-secret`` in systemd's state directory or the user's."""
    if given:
        return Path(given)
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path.home() / ".local" / "state" / "jiancha"
    return base / "web-secret"


def _regions(config: Config) -> Regions:
    """The daemon's calendars (``[daemon] calendar``, ``region_calendars``): time left uses them."""
    from monitor.calendar import CalendarError, load_calendar
    from monitor.calendar.regions import load_regions

    settings = config.daemon
    try:
        return load_regions(load_calendar(settings.calendar), settings.region_calendars)
    except CalendarError as exc:
        raise UsageError(h(f"日历不可用：{exc}", f"calendar unusable: {exc}")) from None


def cmd_web(args: argparse.Namespace, out: TextIO) -> int:
    import trio

    from monitor.config import ConfigError
    from monitor.directory import ldap_settings
    from monitor.log import configure_logging
    from monitor.web import load_secret, serve

    # a service's logs: JSON lines on stderr (journald) unless it is a terminal
    configure_logging(args.log_level, stream=sys.stderr)
    config = load_config(args.config)
    try:
        ldap = ldap_settings(config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    dsn = db_dsn(args.dsn, "jiancha") if args.dsn or not config.daemon.dsn else config.daemon.dsn
    regions = _regions(config)
    try:
        secret = load_secret(_secret_path(args.secret_file))
    except (OSError, ValueError) as exc:
        raise UsageError(h(f"会话密钥不可用：{exc}", f"session secret unusable: {exc}")) from None

    async def until_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                return

    async def main() -> None:
        async def started(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
                          ) -> None:  # fmt: skip
            await serve(args.address, dsn, secret, lang=current_lang(),
                        secure_cookie=args.secure_cookie, ldap=ldap, regions=regions,
                        rules_name=config.daemon.rules,
                        shutdown=until_signal,
                        task_status=task_status)  # fmt: skip

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(started)
            out.write(h(f"控制台已启动：{' '.join(binds)}", f"console serving on {' '.join(binds)}")
                      + "\n")  # fmt: skip
            out.flush()

    trio.run(main)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha web``."""
    p = sub.add_parser(
        "web", formatter_class=FMT,
        help=h("网页控制台（窗口负责人、纪检监察员）", "the web console (window heads, officers)"),
        description=h(
            "网页控制台：查看牌与办件，签收说明、申诉、撤销、裁决。用户由 jiancha users 管理。\n"
            "默认只监听本机；对外请放在带 TLS 的反向代理（nginx）之后，并加 --secure-cookie。",
            "The web console: cards and cases; acknowledge, appeal, revoke, decide. Accounts\n"
            "are managed with jiancha users. Listens on localhost by default; put it behind\n"
            "a TLS reverse proxy (nginx) for others, with --secure-cookie."),
        epilog=examples("jiancha web", "jiancha web --address 0.0.0.0:9732 --secure-cookie"),
    )  # fmt: skip
    p.add_argument("--address", type=_address, default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                   help=h(f"监听地址（默认 {DEFAULT_ADDRESS}）",
                          f"address to listen on (default {DEFAULT_ADDRESS})"))  # fmt: skip
    p.add_argument("--secret-file", metavar="PATH", help=h(
        "签名会话 Cookie 的密钥文件（不存在则生成；默认 $STATE_DIRECTORY/web-secret）",
        "the key signing session cookies\n"
        "(made if absent; default $STATE_DIRECTORY/web-secret)"))  # fmt: skip
    p.add_argument("--secure-cookie", action="store_true",
                   help=h("会话 Cookie 仅经 HTTPS 发送（TLS 代理之后）",
                          "send the session cookie over HTTPS only (behind TLS)"))  # fmt: skip
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help=h("日志级别（默认 INFO）", "log level (default INFO)"))  # fmt: skip
    p.add_argument("--config", metavar="PATH",
                   help=h("配置文件（[web.ldap]、[database] dsn）",
                          "configuration file ([web.ldap], [database] dsn)"))  # fmt: skip
    dsn_option(p)
    p.set_defaults(func=cmd_web)
