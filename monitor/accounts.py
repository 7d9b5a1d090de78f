"""The console's accounts: who may sign in to ``jiancha web``, in which roles, over what.

One implementation for the CLI (``jiancha users``) and the console. Passwords
are kept only as argon2id hashes (argon2-cffi's defaults, re-hashed when those
change); a NULL hash is a directory account, which cannot sign in with a local
password. Accounts are disabled, never deleted: the ledger names them for good.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import argon2

from monitor.vocab import Lang

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = [
    "ROLES",
    "ROLE_NAMES",
    "USER_COLUMNS",
    "AccountError",
    "Role",
    "User",
    "add_user",
    "authenticate",
    "get_user",
    "hash_password",
    "list_users",
    "set_disabled",
    "set_password",
    "set_scope",
    "user_from_row",
]

Role = Literal["window_head", "officer", "department_head", "admin"]
ROLES: Final[tuple[Role, ...]] = ("window_head", "officer", "department_head", "admin")
ROLE_NAMES: Final[Mapping[str, Mapping[Lang, str]]] = {
    "window_head": {"zh": "窗口负责人", "en": "window head"},
    "officer": {"zh": "纪检监察员", "en": "inspection officer"},
    "department_head": {"zh": "部门负责人", "en": "department head"},
    "admin": {"zh": "管理员", "en": "administrator"},
}
MIN_PASSWORD: Final = 10
"""Fewest characters of a local password."""

_HASHER: Final = argon2.PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verified against when the user is unknown, so a wrong name costs as long as a wrong
    password. Made on first use: a hash costs half a second, and every CLI command imports this."""
    return _HASHER.hash("jiancha: no such user")


class AccountError(ValueError):
    """A request about accounts that cannot be done as asked (zh and en text)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en

    def text(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class User:
    """An account as the console sees it; the hash stays in the database."""

    username: str
    display_name: str
    roles: tuple[str, ...]
    windows: tuple[str, ...]
    departments: tuple[str, ...]
    disabled: bool
    local: bool  # has a password hash (else a directory account)
    created_at: dt.datetime
    updated_at: dt.datetime

    def has(self, role: str) -> bool:
        return role in self.roles

    def label(self, lang: Lang) -> str:
        """How the ledger names this person: display name (username)."""
        name = self.display_name or self.username
        return name if name == self.username else f"{name}（{self.username}）"


_COLUMNS: Final = (
    "username, display_name, roles, windows, departments, disabled, "
    "password_hash IS NOT NULL AS local, created_at, updated_at"
)
USER_COLUMNS: Final = (
    "u.username, u.display_name, u.roles, u.windows, u.departments, u.disabled, "
    "u.password_hash IS NOT NULL AS local, u.created_at, u.updated_at"
)
"""The columns `user_from_row` reads, of ``jiancha.users u`` in a join."""


def user_from_row(row: Any) -> User:
    return User(
        username=row["username"],
        display_name=row["display_name"],
        roles=tuple(row["roles"]),
        windows=tuple(row["windows"]),
        departments=tuple(row["departments"]),
        disabled=row["disabled"],
        local=row["local"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``; refuses one shorter than `MIN_PASSWORD`."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            f"密码至少 {MIN_PASSWORD} 个字符",
            f"a password needs at least {MIN_PASSWORD} characters",
        )
    return _HASHER.hash(password)


def _validate(
    username: str, roles: Sequence[str], windows: Sequence[str], departments: Sequence[str]
) -> None:
    if not username or any(c.isspace() for c in username) or len(username) > 64:
        raise AccountError(
            "用户名不能为空、不能含空白、最长 64 个字符",
            "a username is 1-64 characters without spaces",
        )
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise AccountError(
            f"角色无效：{unknown or '无'}（可选：{', '.join(ROLES)}）",
            f"invalid roles {unknown or 'none'} (choose from {', '.join(ROLES)})",
        )
    if "window_head" in roles and not windows:
        raise AccountError(
            "窗口负责人须用 --window 指定其负责的窗口",
            "a window head needs --window: the windows they head",
        )
    if "department_head" in roles and not departments:
        raise AccountError(
            "部门负责人须用 --department 指定其负责的部门",
            "a department head needs --department: the departments they head",
        )


async def add_user(
    conn: Connection,
    username: str,
    *,
    roles: Sequence[str],
    windows: Sequence[str] = (),
    departments: Sequence[str] = (),
    display_name: str = "",
    password_hash: str | None,
) -> User:
    """Create an account; an existing username is refused (disable it, choose another)."""
    _validate(username, roles, windows, departments)
    row = await conn.fetchrow(
        "INSERT INTO jiancha.users (username, display_name, password_hash, roles, windows,"
        " departments) VALUES ($1, $2, $3, $4, $5, $6)"
        f" ON CONFLICT (username) DO NOTHING RETURNING {_COLUMNS}",
        username,
        display_name.strip(),
        password_hash,
        list(dict.fromkeys(roles)),
        list(dict.fromkeys(windows)),
        list(dict.fromkeys(departments)),
    )
    if row is None:
        raise AccountError(f"用户 {username} 已存在", f"user {username} exists already")
    return user_from_row(row)


async def get_user(conn: Connection, username: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jiancha.users WHERE username = $1", username)
    return None if row is None else user_from_row(row)


async def list_users(conn: Connection) -> list[User]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM jiancha.users ORDER BY username")
    return [user_from_row(r) for r in rows]


async def _update(conn: Connection, username: str, assignment: str, value: object,
                  sign_out: str | None) -> User:  # fmt: skip
    """Change an account; with ``sign_out``, its console sessions end (revoked_by that word)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE jiancha.users SET {assignment}, updated_at = now() WHERE username = $1"
            f" RETURNING {_COLUMNS}",
            username,
            value,
        )
        if row is None:
            raise AccountError(f"没有用户 {username}", f"no user {username}")
        if sign_out is not None:
            await conn.execute(
                "UPDATE jiancha.web_sessions SET revoked_at = now(), revoked_by = $2"
                " WHERE username = $1 AND revoked_at IS NULL",
                username,
                sign_out,
            )
    return user_from_row(row)


async def set_disabled(conn: Connection, username: str, disabled: bool = True) -> User:
    """Disable (or enable again) an account; disabling ends its console sessions."""
    return await _update(conn, username, "disabled = $2", disabled,
                         "disabled" if disabled else None)  # fmt: skip


async def set_scope(
    conn: Connection,
    username: str,
    *,
    roles: Sequence[str],
    windows: Sequence[str] = (),
    departments: Sequence[str] = (),
) -> User:
    """New roles, windows and departments (checked as `add_user` checks them).

    The console reads the account on every request, so they hold from the next one.
    """
    _validate(username, roles, windows, departments)
    async with conn.transaction():
        await conn.execute(
            "UPDATE jiancha.users SET windows = $2, departments = $3 WHERE username = $1",
            username, list(dict.fromkeys(windows)), list(dict.fromkeys(departments)),
        )  # fmt: skip
        return await _update(conn, username, "roles = $2", list(dict.fromkeys(roles)), None)


async def set_password(conn: Connection, username: str, password_hash: str) -> User:
    """A new local password; the account's console sessions end."""
    return await _update(conn, username, "password_hash = $2", password_hash, "password")


async def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The enabled local account ``username`` if ``password`` is its password, else None.

    Unknown, disabled and directory accounts take as long as a wrong password.
    """
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM jiancha.users WHERE username = $1", username
    )
    stored = row["password_hash"] if row is not None else None
    try:
        _HASHER.verify(stored or _dummy(), password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if row is None or stored is None or row["disabled"]:
        return None
    if _HASHER.check_needs_rehash(stored):
        await conn.execute(
            "UPDATE jiancha.users SET password_hash = $2 WHERE username = $1",
            username,
            _HASHER.hash(password),
        )
    return user_from_row(row)
