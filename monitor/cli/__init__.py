"""The ``jiancha`` command line: the edge where arguments, output and exit codes live.

One module per command group registers its subcommands here; the shared
pieces (errors, instants, options, one database connection) are in
``monitor.cli._common``. Logs go to stderr so that stdout stays clean for
``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from monitor import __version__
from monitor.cli._argparse_zh import argparse_in_language
from monitor.cli._common import FMT, CommandFailed, UsageError, commands, examples, h, parse_instant
from monitor.i18n import t

__all__ = ["CommandFailed", "UsageError", "build_parser", "main", "parse_instant"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jiancha",
        formatter_class=FMT,
        description=h(
            "jiancha（监察）：政务服务办件时限电子监察。",
            "jiancha (监察): electronic supervision of statutory time limits.",
        ),
        epilog=examples(
            "jiancha calendar is-workday 2024-02-04",
            "jiancha calendar deadline --start 2024-02-08T10:00 --workdays 5 --explain",
            "jiancha calendar count --start 2024-02-08T10:00 --end 2024-02-19T12:00",
            "jiancha db migrate --dsn postgresql://jiancha@localhost/approval",
            "jiancha rules check",
            "jiancha evaluate --now 2024-02-22T09:00",
            "jiancha replay --from 2024-01-01 --to 2024-07-01 --promised-scale 0.8",
            ("jiancha cards list --level 红牌", "jiancha cards list --level red"),
            "jiancha report monthly --period 2026-11",
            zh="\n\n环境变量 JIANCHA_LANG=en 切换为英文。",
            en="\n\nJIANCHA_LANG=zh (default) switches to Chinese.",
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"jiancha {__version__}",
        help=h("显示版本号并退出", "show the version and exit"),  # argparse's is not translated
    )
    parser.add_argument(
        "--lang", choices=["zh", "en"], help=h("界面语言（默认中文）", "language (default zh)")
    )
    sub = commands(parser, "command")

    from monitor.cli import (
        calendar,
        cards,
        config,
        db,
        deadletters,
        demo,
        evaluate,
        grafana,
        outbox,
        replay,
        report,
        rules,
        run,
        simulate,
        users,
        web,
    )

    for module in (calendar, db, run, config, cards, rules, evaluate, replay, report, outbox,
                   deadletters, grafana, simulate, demo, users, web):  # fmt: skip
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``jiancha`` console script (and of ``python -m monitor``)."""
    from monitor.calendar import CalendarError
    from monitor.log import configure_logging

    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--lang" in args_list:
        i = args_list.index("--lang")
        if i + 1 < len(args_list):
            os.environ["JIANCHA_LANG"] = args_list[i + 1]
    if argv is None:  # the console script; callers of main() keep their own logging
        configure_logging("WARNING", stream=sys.stderr)
    with argparse_in_language():  # its usage, help and errors too
        parser = build_parser()
        args = parser.parse_args(args_list)
    stream = out or sys.stdout
    try:
        code: int = args.func(args, stream)
    except (UsageError, CalendarError) as exc:
        sys.stderr.write(f"jiancha: {t('cli.error')}: {exc}\n")
        return 2
    except CommandFailed as exc:
        sys.stderr.write(f"jiancha: {t('cli.error')}: {exc}\n")
        return 1
    return code
