"""``jiancha demo``: a county centre and the daemon carding it, on an embedded PostgreSQL."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from monitor.cli._common import FMT, UsageError, examples, h
from monitor.paths import DEMO_DIR
from monitor.wallclock import Clock
from monitor.whatif.simulate import DEFAULT_PER_DAY

DEFAULT_WEB = "127.0.0.1:9732"
DEMO_USER = "demo"
HEAD_USER = "demo-head"
_BUSIEST_WINDOW = """
SELECT "window" FROM jiancha.cards WHERE status = ANY($1) AND "window" IS NOT NULL
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
"""
LIVE_SPEED = 600.0  # an hour in 6 s: the view can be followed
HEADLESS_SPEED = 3000.0  # a day in about 30 s; faster, a busy machine commits events late

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha demo``."""
    p = sub.add_parser(
        "demo",
        formatter_class=FMT,
        help=h("一条命令看到 jiancha 在工作：内嵌数据库 + 模拟中心 + 守护进程",
                "see jiancha at work: embedded database + simulated centre + the daemon"),
        description=h(
            "在本地文件夹（默认 .jiancha-demo）启动内嵌 PostgreSQL，建立审批库约定与 jiancha\n"
            "模式，装入县级政务服务中心的事项目录（rules/matters-county.toml），先写入此前\n"
            "--history 个工作日的办件作为积压，再以 --speed 倍速的虚拟时钟模拟 --days 个\n"
            "工作日（每日约 560 件，约 55% 即办，含补正、特别程序、延期、超期与差评）。\n"
            "真正的守护进程在同一虚拟时钟上运行：读取事件、计时、亮牌、输出指标。\n"
            "终端实时显示各部门在办件的牌级、最新亮牌与当日数据；Ctrl-C 全部停止。\n"
            "--headless 不显示实时画面，运行到期末后打印期间数据（--json 供脚本使用）。\n"
            "守护进程日志写入 .jiancha-demo/jiancha.log。",
            "Starts an embedded PostgreSQL in a local folder (default .jiancha-demo), builds\n"
            "the source contract and schema jiancha, loads a county centre's matter catalogue\n"
            "(rules/matters-county.toml), writes the cases of the --history working days\n"
            "before as a backlog, then simulates --days working days on a virtual clock\n"
            "running --speed times faster (about 560 cases a day, 55% immediate, with\n"
            "supplements, special procedures, extensions, late cases and bad ratings).\n"
            "The real daemon runs on the same clock: it tails, times, cards and serves\n"
            "metrics. The terminal shows open cases by card level per department, the\n"
            "latest cards and the day's figures; Ctrl-C stops everything. --headless runs\n"
            "to the end without the view and prints the period's figures (--json for\n"
            "scripts). The daemon's log goes to .jiancha-demo/jiancha.log.",
        ),
        epilog=examples("jiancha demo", "jiancha demo --speed 1200 --days 3",
                        "jiancha demo --headless --web",
                        "jiancha demo --headless --speed 3000 --json"),
    )  # fmt: skip
    p.add_argument(
        "--speed",
        type=float,
        metavar="N",
        help=h(
            "虚拟时钟倍速（默认 600：一小时六秒；--headless 默认 3000，一天约半分钟）",
            "virtual seconds per real second (default 600: an hour in 6 s; with --headless"
            " 3000: a day in about half a minute)",
        ),
    )
    p.add_argument(
        "--days",
        type=int,
        default=1,
        metavar="D",
        help=h("模拟的工作日数（默认 1）", "working days to simulate (default 1)"),
    )
    p.add_argument(
        "--history",
        type=int,
        default=10,
        metavar="D",
        help=h(
            "此前作为积压写入的工作日数（默认 10）",
            "working days written as a backlog first (default 10)",
        ),
    )
    p.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help=h(
            "第一个模拟日（默认下一个工作日）", "first simulated day (default the next working day)"
        ),
    )
    p.add_argument(
        "--per-day",
        type=int,
        default=DEFAULT_PER_DAY,
        metavar="N",
        help=h("每个工作日的办件数（默认 560）", "cases per working day (default 560)"),
    )
    p.add_argument("--seed", type=int, default=2024, help=h("随机种子", "random seed"))
    p.add_argument(
        "--dir",
        type=Path,
        default=DEMO_DIR,
        metavar="PATH",
        help=h(
            "数据库与日志所在文件夹（默认 .jiancha-demo）",
            "folder of the database and the log (default .jiancha-demo)",
        ),
    )
    p.add_argument(
        "--metrics-address",
        default="127.0.0.1:9731",
        metavar="HOST:PORT",
        help=h("指标地址（被占用时自动另选端口）", "metrics address (another port when taken)"),
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help=h(
            "不显示实时画面，运行到期末并打印数据",
            "no live view: run to the end and print the figures",
        ),
    )
    p.add_argument(
        "--web",
        nargs="?",
        const=DEFAULT_WEB,
        metavar="HOST:PORT",
        help=h(
            f"同时启动网页控制台（默认 {DEFAULT_WEB}），建演示账号 demo（纪检监察员、管理员）"
            "并打印其密码；期末后时钟停住，控制台继续运行，Ctrl-C 结束",
            f"also serve the web console (default {DEFAULT_WEB}) with an account demo "
            "(officer, admin) whose password is printed; at the period's end the clock holds "
            "and the console stays up until Ctrl-C",
        ),
    )
    p.add_argument(
        "--json",
        action="store_true",
        help=h("与 --headless 一起：输出 JSON", "with --headless: print JSON"),
    )
    p.set_defaults(func=cmd_demo)  # fmt: skip


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    headless = args.headless or args.json
    if args.speed is None:  # nobody watches a headless run: it waits only for its figures
        args.speed = HEADLESS_SPEED if headless else LIVE_SPEED
    if args.speed <= 0 or not math.isfinite(args.speed):
        raise UsageError(h("--speed 应为正数", "--speed must be positive"))
    if args.days < 1 or args.history < 0 or args.per_day < 1:
        raise UsageError(
            h(
                "--days、--per-day 应至少为 1，--history 不能为负",
                "--days and --per-day must be at least 1, --history not negative",
            )
        )
    from monitor.whatif.demo import DemoOptions, DemoUnavailable, check_available, main

    try:
        check_available()  # checked here: a clear message, not a traceback
    except DemoUnavailable as exc:
        raise UsageError(str(exc)) from None
    opts = DemoOptions(speed=args.speed, days=args.days, history=args.history,
                       headless=headless, directory=args.dir, seed=args.seed,
                       per_day=args.per_day, start=args.start,
                       metrics_address=args.metrics_address, json=args.json)  # fmt: skip
    beside = None if args.web is None else console_beside(args.web, args.dir, out, args.json)
    return main(opts, out, beside)


def console_beside(address: str, directory: Path, out: TextIO, quiet: bool) -> Any:
    """The web console as a service beside the demo's daemon (`run_demo`'s ``beside``): on
    its database and virtual clock, with an account ``demo`` made for the occasion."""
    import secrets
    from functools import partial

    import trio

    from monitor import db
    from monitor.accounts import add_user, hash_password
    from monitor.i18n import current_lang
    from monitor.vocab import OPEN_STATUSES
    from monitor.web import load_secret, serve
    from monitor.whatif.demo import free_address

    async def start(dsn: str, clock: Clock,
                    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
                    ) -> None:  # fmt: skip
        password = secrets.token_urlsafe(9)
        async with await db.connect(dsn, application_name="jiancha-demo") as conn:
            await add_user(conn, DEMO_USER, roles=["officer", "admin"],
                           display_name=h("演示监察员", "demo officer"),
                           password_hash=hash_password(password))  # fmt: skip
        secret = load_secret(directory / "web-secret")
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(
                serve, free_address(address), dsn, secret, lang=current_lang(), clock=clock,
                own_loop=False))  # fmt: skip
            where = " ".join(binds)
            say(h(f"控制台：{where}（用户 {DEMO_USER}，密码 {password}）\n",
                  f"console: {where} (user {DEMO_USER}, password {password})\n"))  # fmt: skip
            task_status.started(partial(window_head, dsn, password))

    async def window_head(dsn: str, password: str) -> None:
        """Once the period is over: a window head's account for the window with the most
        open cards, to see the console as a window head does on a phone."""
        async with await db.connect(dsn, application_name="jiancha-demo") as conn:
            window = await conn.fetchval(_BUSIEST_WINDOW, list(OPEN_STATUSES))
            if window is None:
                return
            await add_user(conn, HEAD_USER, roles=["window_head"], windows=[window],
                           display_name=h("演示窗口负责人", "demo window head"),
                           password_hash=hash_password(password))  # fmt: skip
        say(h(f"窗口负责人：用户 {HEAD_USER}，密码同上（{window}，未结的牌最多）\n",
              f"a window head: user {HEAD_USER}, the same password ({window}: the most open "
              "cards)\n"))  # fmt: skip

    def say(text: str) -> None:
        stream = sys.stderr if quiet else out  # --json keeps stdout for the figures
        stream.write(text)
        stream.flush()

    return start
