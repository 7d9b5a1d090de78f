"""``jiancha run``: the daemon, with its settings resolved from options, file and environment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from monitor.cli._common import (
    FMT,
    CommandFailed,
    UsageError,
    dsn_option,
    h,
    load_config,
    number,
    rules_option,
    source_dsn_option,
)
from monitor.config import BATCH_SIZE
from monitor.i18n import t

__all__ = ["daemon_config", "register"]


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from monitor.daemon import run
    from monitor.migrate import SchemaNotReady

    try:
        return run(daemon_config(args))
    except SchemaNotReady as exc:
        raise CommandFailed(str(exc)) from None


def daemon_config(args: argparse.Namespace, **extra: Any) -> Any:
    """The daemon's settings: options over ``jiancha.toml`` over the environment defaults."""
    from monitor.calendar import load_calendar
    from monitor.daemon import DaemonConfig
    from monitor.rules.load import load_rules
    from monitor.rules.model import RuleError

    cfg = load_config(args.config)
    d = cfg.daemon
    given = {k for k in ("source_dsn", "dsn", "batch_size", "poll_interval", "rules", "calendar",
                         "metrics_address") if getattr(args, k, None) is not None}  # fmt: skip
    source = args.source_dsn or d.source_dsn
    if not source:
        where = h(
            "JIANCHA_SOURCE_DSN（或配置文件 [database] 的 source_dsn）",
            "JIANCHA_SOURCE_DSN (or source_dsn in the config file's [database])",
        )
        raise UsageError(t("db.no_dsn", flag="--source-dsn", env=where))
    rules_name = args.rules if args.rules is not None else d.rules
    calendar_name = args.calendar if args.calendar is not None else d.calendar
    from monitor.calendar import CalendarError
    from monitor.calendar.regions import load_regions
    from monitor.config import ConfigError
    from monitor.notify import build_channels

    try:  # refused here, before the daemon starts, when invalid
        rules = load_rules(rules_name)
        build_channels(cfg.notify)  # their secret files too
        calendar = load_calendar(calendar_name)
        regions = load_regions(calendar, d.region_calendars)
    except (RuleError, ConfigError, CalendarError) as exc:
        raise UsageError(str(exc)) from None
    return DaemonConfig(
        source_dsn=source,
        dsn=args.dsn or d.dsn or source,
        batch_size=args.batch_size if args.batch_size is not None else d.batch_size,
        poll_interval=args.poll_interval if args.poll_interval is not None else d.poll_interval,
        orphan_grace=d.orphan_grace,
        rules=rules,
        calendar=calendar,
        regions=regions if regions.prefixes else None,
        rules_name=rules_name,
        calendar_name=calendar_name,
        config=cfg,
        metrics_address=args.metrics_address,
        config_file=args.config,
        pinned=frozenset(given),
        state_dir=Path(state) if (state := args.state_dir or d.state_dir) else None,
        checkpoint_every=d.checkpoint_every,
        stuck_after=d.stuck_after,
        lease_ttl=d.lease_ttl,
        lease_renew=d.lease_renew,
        **extra,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha run``."""
    p = sub.add_parser(
        "run",
        help=h("运行守护进程", "run the daemon"),
        formatter_class=FMT,
        description=h(
            "持续读取审批数据库的办件事件，维护 jiancha.cases，按规则在阈值时刻发牌。\n"
            "SIGTERM 或 Ctrl-C：回滚正在处理的批次后退出（退出码 0），重启后从上次提交处继续。\n"
            "日志为 JSON 行（终端上为易读格式），输出到标准输出。",
            "Tail the approval database's case events into jiancha.cases and issue cards\n"
            "at their threshold instants.\n"
            "SIGTERM or Ctrl-C: roll back the batch in flight and exit 0; a restart resumes\n"
            "at the last commit. Logs are JSON lines on stdout (readable on a terminal).",
        ),
    )
    source_dsn_option(p)
    dsn_option(p)
    p.add_argument(
        "--batch-size",
        type=number(int, 1),
        metavar="N",
        help=h(
            f"每批最多读取的事件数（默认配置 daemon.batch_size，即 {BATCH_SIZE}）",
            f"events per batch at most (default daemon.batch_size: {BATCH_SIZE})",
        ),
    )
    p.add_argument(
        "--poll-interval",
        type=number(float, 0, above=True),
        metavar="S",
        help=h(
            "无通知时的轮询间隔秒数（默认配置 daemon.poll_interval，即 1）",
            "fallback poll interval, s (default daemon.poll_interval: 1)",
        ),
    )
    p.set_defaults(func=cmd_run)
    rules_option(p, default=None)
    p.add_argument(
        "--config",
        metavar="PATH",
        help=h(
            "配置文件（默认 JIANCHA_CONFIG，否则 /etc/jiancha/jiancha.toml，若存在）",
            "configuration file (default JIANCHA_CONFIG, else /etc/jiancha/jiancha.toml)",
        ),
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help=h(
            "时钟表检查点所在目录，重启时只重算此后变化的办件（默认配置 daemon.state_dir，"
            "否则 systemd 的 STATE_DIRECTORY；都没有则每次重建）",
            "where the clock table's checkpoint lives, so a restart re-decides only the cases "
            "changed since (default daemon.state_dir, else systemd's $STATE_DIRECTORY; "
            "neither: rebuilt at every start)",
        ),
    )
    p.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help=h(
            "Prometheus 指标地址（默认配置 metrics.address，即 127.0.0.1:9731；空字符串关闭）",
            "Prometheus metrics address (default metrics.address: 127.0.0.1:9731; '' = off)",
        ),
    )
    p.add_argument(
        "--calendar",
        metavar="NAME",
        help=h(
            "日历名称或 TOML 文件路径（默认配置 daemon.calendar，否则 JIANCHA_CALENDAR，否则 cn）",
            "calendar name or TOML path (default daemon.calendar, else $JIANCHA_CALENDAR, else cn)",
        ),
    )
