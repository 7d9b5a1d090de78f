"""The console's server-side sessions and sign-in failures (migration 0014).

A signed cookie alone cannot be taken back: a copy stays good until it
expires. So the cookie carries a random token and ``jiancha.web_sessions``
keeps its SHA-256; signing out, disabling an account, a new password or an
administrator revoke the row and the cookie is refused at the next request.
Failed sign-ins are rows too, so the throttle survives a restart and holds
across several console processes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from monitor.accounts import USER_COLUMNS, User, user_from_row

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = [
    "THROTTLE_LIMIT",
    "THROTTLE_WINDOW",
    "Session",
    "clear_failures",
    "failures",
    "list_sessions",
    "open_session",
    "record_failure",
    "revoke_session",
    "revoke_sessions",
    "session_user",
]

THROTTLE_LIMIT: Final = 10
"""Wrong passwords for one username within `THROTTLE_WINDOW` before it is refused (issue 18)."""
THROTTLE_WINDOW: Final = dt.timedelta(minutes=15)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Session:
    """A signed-in browser as an administrator sees it (the token itself is never stored)."""

    ref: str  # the first 12 hex digits of the token's hash: enough to name it on a page
    username: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    user_agent: str


async def open_session(conn: Connection, username: str, now: dt.datetime,
                       lifetime: dt.timedelta, user_agent: str = "") -> str:  # fmt: skip
    """A new session of ``username``: the token for the cookie (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO jiancha.web_sessions (token_sha256, username, created_at, expires_at,"
        " user_agent) VALUES ($1, $2, $3, $4, $5)",
        _digest(token), username, now, now + lifetime, user_agent[:200],
    )  # fmt: skip
    return token


async def session_user(conn: Connection, token: str, now: dt.datetime) -> User | None:
    """The enabled user of a live (unrevoked, unexpired) session ``token``, else None."""
    row = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM jiancha.web_sessions s"
        " JOIN jiancha.users u USING (username)"
        " WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        " AND NOT u.disabled",
        _digest(token), now,
    )  # fmt: skip
    return None if row is None else user_from_row(row)


async def revoke_session(conn: Connection, token: str, now: dt.datetime, by: str) -> bool:
    """Revoke the session ``token`` (signing out); False if it was not live."""
    done = await conn.execute(
        "UPDATE jiancha.web_sessions SET revoked_at = $2, revoked_by = $3"
        " WHERE token_sha256 = $1 AND revoked_at IS NULL",
        _digest(token), now, by,
    )  # fmt: skip
    return bool(done.endswith(" 1"))


async def revoke_sessions(conn: Connection, username: str, now: dt.datetime, by: str,
                          ref: str | None = None) -> int:  # fmt: skip
    """Revoke every live session of ``username`` (or the one named ``ref``); how many."""
    done = await conn.execute(
        "UPDATE jiancha.web_sessions SET revoked_at = $2, revoked_by = $3"
        " WHERE username = $1 AND revoked_at IS NULL"
        " AND ($4::text IS NULL OR encode(token_sha256, 'hex') LIKE $4 || '%')",
        username, now, by, ref,
    )  # fmt: skip
    return int(done.rsplit(" ", 1)[-1])


def _session(row: Any) -> Session:
    return Session(row["ref"], row["username"], row["created_at"], row["expires_at"],
                   row["revoked_at"], row["revoked_by"], row["user_agent"])  # fmt: skip


async def list_sessions(conn: Connection, now: dt.datetime, username: str | None = None,
                        limit: int = 200) -> list[Session]:  # fmt: skip
    """The live sessions, newest first (of ``username`` only when given)."""
    rows = await conn.fetch(
        "SELECT substr(encode(token_sha256, 'hex'), 1, 12) AS ref, username, created_at,"
        " expires_at, revoked_at, revoked_by, user_agent FROM jiancha.web_sessions"
        " WHERE revoked_at IS NULL AND expires_at > $1 AND ($2::text IS NULL OR username = $2)"
        " ORDER BY created_at DESC LIMIT $3",
        now, username, limit,
    )  # fmt: skip
    return [_session(r) for r in rows]


def _name(username: str) -> str:
    return username.strip().casefold()[:200]


async def failures(conn: Connection, username: str, now: dt.datetime,
                   window: dt.timedelta = THROTTLE_WINDOW) -> int:  # fmt: skip
    """Wrong passwords for ``username`` within ``window`` before ``now``."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM jiancha.login_failures WHERE username = $1 AND at > $2",
        _name(username), now - window,
    )  # fmt: skip
    return count


async def record_failure(conn: Connection, username: str, now: dt.datetime,
                         window: dt.timedelta = THROTTLE_WINDOW) -> None:  # fmt: skip
    """Count a wrong password; failures older than ``window`` are forgotten as it goes."""
    async with conn.transaction():
        await conn.execute("DELETE FROM jiancha.login_failures WHERE at <= $1", now - window)
        await conn.execute("INSERT INTO jiancha.login_failures (username, at) VALUES ($1, $2)",
                           _name(username), now)  # fmt: skip


async def clear_failures(conn: Connection, username: str) -> None:
    """A right password forgets the username's failures."""
    await conn.execute("DELETE FROM jiancha.login_failures WHERE username = $1", _name(username))
