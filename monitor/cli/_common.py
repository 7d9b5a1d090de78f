"""What every ``jiancha`` command shares: errors and exit codes, instants, options, one connection.

Commands print for people (Chinese by default, ``--lang en`` or
``JIANCHA_LANG=en`` for English) or, with ``--json``, one JSON document for
scripts. Exit status: 0 done, 1 the command could not do its job (database
unreachable, schema refused), 2 bad input (nothing was done).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO, TypeVar

import numpy as np

from monitor.i18n import current_lang, h, t

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.db import Connection

__all__ = [
    "FMT",
    "CommandFailed",
    "UsageError",
    "as_datetime",
    "calendar_option",
    "colon",
    "day_or_instant",
    "db_dsn",
    "dsn_option",
    "dump",
    "examples",
    "h",
    "jiancha_connection",
    "json_option",
    "load_config",
    "local_moment",
    "number",
    "one_line",
    "paren",
    "parse_day",
    "parse_instant",
    "rules_option",
    "source_dsn_option",
    "utc_text",
    "with_connection",
]

_T = TypeVar("_T")

FMT = argparse.RawDescriptionHelpFormatter

Subcommands = argparse._SubParsersAction  # typeshed's name for add_subparsers()' result


def commands(parser: argparse.ArgumentParser, dest: str) -> Subcommands[argparse.ArgumentParser]:
    """``parser``'s subcommands. Given none, its help (what the group does, which commands
    it has, examples) and exit 2, as ``git`` does: argparse alone said only that COMMAND
    was missing, which tells an operator trying ``jiancha db`` nothing."""
    parser.set_defaults(func=partial(_help_of, parser))
    return parser.add_subparsers(dest=dest, metavar="COMMAND")


def _help_of(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    from monitor.cli._argparse_zh import argparse_in_language

    with argparse_in_language():  # "usage:", "options:" in the user's language
        out.write(parser.format_help())
    return 2


def examples(*commands: str | tuple[str, str], zh: str = "", en: str = "") -> str:
    """An epilog of example commands, in the language in force.

    A command is one text, or a (zh, en) pair where the example itself differs;
    ``zh`` / ``en`` end it with a note.
    """

    def pick(c: str | tuple[str, str], i: int) -> str:
        return c if isinstance(c, str) else c[i]

    zh_lines = "".join(f"\n  {pick(c, 0)}" for c in commands)
    en_lines = "".join(f"\n  {pick(c, 1)}" for c in commands)
    return h(f"示例：{zh_lines}{zh}", f"examples:{en_lines}{en}")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class CommandFailed(Exception):
    """The command could not do its job (database unreachable, schema refused): exit status 1."""


def colon() -> str:
    return ": " if current_lang() == "en" else "："


def paren(text: str | None) -> str:
    if not text:
        return ""
    return f" ({text})" if current_lang() == "en" else f"（{text}）"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def dump(doc: Any, out: TextIO) -> None:
    """One JSON document for scripts: Chinese stays readable."""
    json.dump(doc, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


# --- instants ---------------------------------------------------------------------------


def local_moment(text: str, tz: str) -> dt.datetime:
    """An ISO instant; without a UTC offset, local time in ``tz``. ValueError if it is none."""
    moment = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zoneinfo.ZoneInfo(tz))


def day_or_instant(text: str, tz: str, *, end: bool = False) -> dt.datetime:
    """A date (its local start; with ``end``, the next day's: the date included) or an instant."""
    raw = text.strip()
    if len(raw) == 10:
        day = dt.date.fromisoformat(raw) + dt.timedelta(days=int(end))
        return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(tz))
    return local_moment(raw, tz)


def parse_instant(text: str, tz: str) -> np.datetime64:
    """An ISO instant as UTC; without a UTC offset it is the calendar's local time."""
    try:
        moment = local_moment(text, tz)
    except ValueError:
        raise UsageError(t("cli.bad_instant", value=text)) from None
    return np.datetime64(int(moment.timestamp()), "s")


def parse_day(text: str) -> np.datetime64:
    try:
        return np.datetime64(dt.date.fromisoformat(text.strip()), "D")
    except ValueError:
        raise UsageError(t("cli.bad_day", value=text)) from None


def as_datetime(instant: np.datetime64) -> dt.datetime:
    """A ``datetime64`` instant as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(int(instant.astype("datetime64[s]").astype(np.int64)), dt.UTC)


def utc_text(instant: np.datetime64) -> str:
    return f"{np.datetime_as_string(instant, unit='s')}Z"


_BIGINT_MAX: Final = 2**63 - 1


def not_found_ids(asked: Sequence[int], done: Sequence[int]) -> list[int]:
    """The ids asked for that a command's statement did not act on, in the order given."""
    found = set(done)
    return [i for i in dict.fromkeys(asked) if i not in found]


def number(
    kind: type[int] | type[float], minimum: float, what: str = "", *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind``, at least ``minimum`` (``above``: greater than
    it), ``what`` naming it. A size, rate or interval of 0 (or less) would run and do
    nothing (a batch of 0 events reads none, and says it is done): refused here."""
    prefix = f"{what}{colon()}" if what else ""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                prefix + h(f"无效的数值：{text!r}", f"invalid number: {text!r}")
            ) from None
        if kind is float and not math.isfinite(value):  # (an int of 400 digits overflows it)
            raise argparse.ArgumentTypeError(
                prefix + h(f"应为有限的数：{text!r}", f"must be a finite number: {text!r}")
            )
        if kind is int and value > _BIGINT_MAX:  # every integer ends in a bigint parameter
            raise argparse.ArgumentTypeError(
                prefix + h(f"数值过大：{text!r}", f"too large: {text!r}")
            )
        if above and value <= minimum:
            raise argparse.ArgumentTypeError(
                prefix + h(f"应大于 {minimum:g}：{text!r}", f"must be above {minimum:g}: {text!r}")
            )
        if value < minimum:
            raise argparse.ArgumentTypeError(
                prefix
                + h(f"应不小于 {minimum:g}：{text!r}", f"must be at least {minimum:g}: {text!r}")
            )
        return value

    return parse


# --- options ----------------------------------------------------------------------------


def json_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--json", action="store_true",
                   help=h("输出 JSON", "print JSON") + (f" {what}" if what else ""))  # fmt: skip


def calendar_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--calendar",
        default=os.environ.get("JIANCHA_CALENDAR", "cn"),
        metavar="NAME",
        help=h(
            "日历名称或 TOML 文件路径（默认 cn；`jiancha calendar list` 列出可用日历）",
            "calendar name or TOML path (default cn; see `jiancha calendar list`)",
        ),
    )


def dsn_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help=h(
            "jiancha 模式所在数据库（默认 JIANCHA_DSN，否则 JIANCHA_SOURCE_DSN）",
            "database of schema jiancha (default JIANCHA_DSN, else JIANCHA_SOURCE_DSN)",
        ),
    )


def source_dsn_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-dsn",
        metavar="DSN",
        help=h("审批数据库（默认 JIANCHA_SOURCE_DSN）", "approval database (default env)"),
    )


def rules_option(p: argparse.ArgumentParser, default: Any = "") -> None:
    """``--rules``; ``default=None`` lets `jiancha run` see whether it was given."""
    p.add_argument(
        "--rules",
        default=os.environ.get("JIANCHA_RULES", "cards") if default == "" else default,
        metavar="NAME|PATH",
        help=h(
            "规则集名称或 TOML 文件路径（默认 cards，即 rules/cards.toml；环境变量 JIANCHA_RULES）",
            "rule set name or TOML path (default cards = rules/cards.toml; env JIANCHA_RULES)",
        ),
    )


# --- the database and the configuration -----------------------------------------------


def db_dsn(
    explicit: str | None, kind: Literal["source", "jiancha"], flag: str | None = None
) -> str:
    """The DSN given on the command line, else from the environment, else a usage error
    naming ``flag``, the option the command takes it by (default: ``--source-dsn`` for the
    approval database, ``--dsn`` for jiancha's)."""
    from monitor import db

    if explicit:
        return explicit
    dsn = db.dsn_from_env(kind)
    if dsn is None:
        env = db.SOURCE_DSN_ENV
        if kind == "jiancha":
            env = f"{db.DSN_ENV}{h('（或 ', ' (or ')}{db.SOURCE_DSN_ENV}{h('）', ')')}"
        flag = flag or ("--source-dsn" if kind == "source" else "--dsn")
        raise UsageError(t("db.no_dsn", flag=flag, env=env))
    return dsn


def _db_failure(exc: BaseException) -> str:
    """The message key for a statement that failed: a missing table says what to run (the
    schema migrated, the source contract installed) rather than only PostgreSQL's words;
    its name says whose it is (a missing column would not)."""
    import asyncpg

    if not isinstance(exc, asyncpg.UndefinedTableError):
        return "db.failed"
    return "db.no_schema" if "jiancha." in str(exc) else "db.no_source"


def with_connection(dsn: str, work: Callable[[Connection], Awaitable[_T]]) -> _T:
    """Run ``work`` on one connection in a fresh trio run; errors become `CommandFailed`."""
    import asyncpg
    import trio

    from monitor import db
    from monitor.migrate import MigrationError

    db_errors = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
    result: list[_T] = []
    failure: list[Exception] = []

    # Errors are caught inside the loop: leaving trio-asyncio's nursery would
    # wrap them in exception groups.
    async def session() -> None:
        async with db.open_loop():
            try:
                conn = await db.connect(dsn, application_name="jiancha-cli")
            except (*db_errors, ValueError) as exc:
                failure.append(CommandFailed(t("db.connect_failed", detail=one_line(exc))))
                return
            try:
                async with conn:
                    result.append(await work(conn))
            except MigrationError as exc:
                failure.append(CommandFailed(str(exc)))
            except CommandFailed as exc:  # the work's own refusal
                failure.append(exc)
            except db_errors as exc:
                failure.append(CommandFailed(t(_db_failure(exc), detail=one_line(exc))))

    trio.run(session)
    if failure:
        raise failure[0]
    return result[0]


@asynccontextmanager
async def jiancha_connection(src: Connection, source_dsn: str, dsn: str | None
                             ) -> AsyncIterator[Connection]:  # fmt: skip
    """A connection to jiancha's database: the source's own when it is the same one."""
    from monitor import db

    target = dsn or db.dsn_from_env("jiancha") or source_dsn
    if target == source_dsn:
        yield src
        return
    async with await db.connect(target) as conn:
        yield conn


def load_config(path: str | None) -> Config:
    """``jiancha.toml`` as the daemon reads it; a bad file is a usage error."""
    from monitor.config import ConfigError
    from monitor.config import load_config as load

    try:
        return load(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
