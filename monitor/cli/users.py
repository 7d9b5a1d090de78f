"""``jiancha users``: the accounts of the web console (docs/console.md).

A password never comes from the command line (it would sit in the shell's
history and in ``ps``): it is read from a prompt without echo, or from
``--password-file``. Exit status: 0 done; 2 the request cannot be done as
asked; 1 the database failed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from monitor.accounts import (
    ROLE_NAMES,
    ROLES,
    AccountError,
    User,
    add_user,
    hash_password,
    list_users,
    set_disabled,
    set_password,
)
from monitor.cli._common import (
    FMT,
    UsageError,
    commands,
    db_dsn,
    dsn_option,
    examples,
    h,
    with_connection,
)
from monitor.cli._format import format_table
from monitor.i18n import current_lang

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["register"]

_T = TypeVar("_T")


def _run(args: argparse.Namespace, work: Callable[[Connection], Awaitable[_T]]) -> _T:
    """Run ``work``; an `AccountError` (raised inside the trio run) becomes a usage error."""

    async def guarded(conn: Connection) -> _T | AccountError:
        try:
            return await work(conn)
        except AccountError as exc:
            return exc

    outcome = with_connection(db_dsn(args.dsn, "jiancha"), guarded)
    if isinstance(outcome, AccountError):
        raise UsageError(outcome.text(current_lang()))
    return outcome


def _password(args: argparse.Namespace) -> str:
    """The new password, hashed: from ``--password-file`` or typed twice at a prompt."""
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                h(f"无法读取密码文件：{exc}", f"cannot read the password file: {exc}")
            ) from None
        password = text.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError(
                h(
                    "没有终端可输入密码：请用 --password-file",
                    "no terminal to type a password on: use --password-file",
                )
            )
        password = getpass.getpass(h("密码：", "Password: "))
        if getpass.getpass(h("再输入一次：", "Again: ")) != password:
            raise UsageError(h("两次输入的密码不一致", "the passwords differ"))
    try:
        return hash_password(password)
    except AccountError as exc:
        raise UsageError(exc.text(current_lang())) from None


def _roles_text(user: User) -> str:
    return "、".join(ROLE_NAMES[r][current_lang()] for r in user.roles if r in ROLE_NAMES)


def cmd_add(args: argparse.Namespace, out: TextIO) -> int:
    hashed = None if args.directory else _password(args)
    user = _run(
        args,
        lambda conn: add_user(
            conn,
            args.username,
            roles=args.role,
            windows=args.window or (),
            departments=args.department or (),
            display_name=args.display_name or "",
            password_hash=hashed,
        ),
    )
    out.write(
        h(
            f"已添加用户 {user.username}（{_roles_text(user)}）",
            f"user {user.username} added ({_roles_text(user)})",
        )
        + "\n"
    )
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    users = _run(args, list_users)
    if not users:
        out.write(
            h("还没有用户（jiancha users add …）", "no users yet (jiancha users add ...)") + "\n"
        )
        return 0
    headers = [
        h("用户名", "username"),
        h("姓名", "name"),
        h("角色", "roles"),
        h("窗口", "windows"),
        h("部门", "departments"),
        h("登录方式", "sign-in"),
        h("状态", "state"),
    ]
    rows = [
        [
            u.username,
            u.display_name,
            _roles_text(u),
            "、".join(u.windows),
            "、".join(u.departments),
            h("本地密码", "password") if u.local else h("目录", "directory"),
            h("已停用", "disabled") if u.disabled else h("启用", "enabled"),
        ]
        for u in users
    ]
    for line in format_table(headers, rows):
        out.write(line + "\n")
    return 0


def cmd_disable(args: argparse.Namespace, out: TextIO) -> int:
    user = _run(args, lambda conn: set_disabled(conn, args.username, not args.enable))
    if user.disabled:
        out.write(h(f"已停用用户 {user.username}", f"user {user.username} disabled") + "\n")
    else:
        out.write(h(f"已启用用户 {user.username}", f"user {user.username} enabled") + "\n")
    return 0


def cmd_passwd(args: argparse.Namespace, out: TextIO) -> int:
    hashed = _password(args)
    user = _run(args, lambda conn: set_password(conn, args.username, hashed))
    out.write(h(f"已更改 {user.username} 的密码", f"password of {user.username} changed") + "\n")
    return 0


def _password_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-file",
        metavar="PATH",
        help=h(
            "从文件读取密码（首行；不给则在终端提示输入，不回显）",
            "read the password from a file (else a prompt without echo)",
        ),
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha users`` and its subcommands."""
    roles = ", ".join(f"{r}（{ROLE_NAMES[r]['zh']}）" for r in ROLES)
    parent = sub.add_parser(
        "users",
        formatter_class=FMT,
        help=h("网页控制台的用户与角色", "accounts and roles of the web console"),
        description=h(
            f"网页控制台（jiancha web）的用户。角色：{roles}。\n"
            "密码不能写在命令行上：在终端输入（不回显）或用 --password-file。",
            f"Accounts of the web console (jiancha web). Roles: {', '.join(ROLES)}.\n"
            "A password never goes on the command line: a prompt or --password-file.",
        ),
        epilog=examples(
            "jiancha users add lim --role officer --display-name 李明",
            "jiancha users add wangf --role window_head --window W1 --window W2 "
            "--password-file /run/secrets/pw",
            "jiancha users list",
            "jiancha users disable wangf",
        ),
    )
    usub = commands(parent, "users_command")

    # no abbreviations: `--password SECRET` must not pass for `--password-file`
    p = usub.add_parser("add", help=h("添加用户", "add a user"), allow_abbrev=False)
    p.add_argument("username", metavar="NAME", help=h("用户名（登录名）", "username"))
    p.add_argument(
        "--role",
        action="append",
        required=True,
        choices=ROLES,
        help=h("角色（可重复）", "role (repeatable)"),
    )
    p.add_argument(
        "--window",
        action="append",
        metavar="W",
        help=h("负责的窗口（窗口负责人；可重复）", "a window they head (repeatable)"),
    )
    p.add_argument(
        "--department",
        action="append",
        metavar="D",
        help=h("负责的部门（部门负责人；可重复）", "a department they head (repeatable)"),
    )
    p.add_argument(
        "--display-name", metavar="X", help=h("姓名（记入台账）", "name (in the ledger)")
    )
    p.add_argument(
        "--directory",
        action="store_true",
        help=h("目录（LDAP）账户，无本地密码", "a directory (LDAP) account, no password"),
    )
    _password_file(p)
    dsn_option(p)
    p.set_defaults(func=cmd_add)

    p = usub.add_parser("list", help=h("列出用户", "list users"))
    dsn_option(p)
    p.set_defaults(func=cmd_list)

    p = usub.add_parser(
        "disable", help=h("停用用户（立即失去登录）", "disable a user (signed out)")
    )
    p.add_argument("username", metavar="NAME")
    p.add_argument("--enable", action="store_true", help=h("重新启用", "enable again"))
    dsn_option(p)
    p.set_defaults(func=cmd_disable)

    # no abbreviations: `--password SECRET` must not pass for `--password-file`
    p = usub.add_parser(
        "passwd", help=h("更改用户的密码", "change a user's password"), allow_abbrev=False
    )
    p.add_argument("username", metavar="NAME")
    _password_file(p)
    dsn_option(p)
    p.set_defaults(func=cmd_passwd)
