"""The administrator's pages: accounts and roles, the calendars and rules in force.

Accounts are managed through `monitor.accounts` (the same functions as
``jiancha users``): add, change roles and scope, disable or enable, end an
account's sessions. Nothing is deleted (the ledger names its users for good),
and an administrator cannot disable their own account from here. The
calendars are the ones this console counts working time on, with the region
prefixes mapped to them; the rules are its rule set; beside them, the
fingerprints the daemon stamped on its latest cards, to see both agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import numpy as np
import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.accounts import (
    ROLE_NAMES,
    ROLES,
    AccountError,
    User,
    add_user,
    hash_password,
    list_users,
    set_disabled,
    set_scope,
)
from monitor.signins import list_sessions, revoke_sessions
from monitor.web._core import Refusal, check_csrf, console, lang_of, log, page, render, signed_in

__all__ = ["admin_action", "admin_page"]

_STAMPS: Final = (
    "SELECT ruleset, calendar, count(*) AS cards, max(recorded_at) AS latest"
    " FROM (SELECT ruleset, calendar, recorded_at FROM jiancha.cards"
    " ORDER BY recorded_at DESC LIMIT 1000) recent"
    " GROUP BY ruleset, calendar ORDER BY latest DESC"
)


async def _admin(request: Request) -> User:
    user = await signed_in(request)
    if not user.has("admin"):
        raise Refusal(403, "e403")
    return user


def _calendars(request: Request, now: dt.datetime) -> list[dict[str, Any]]:
    regions = console(request).regions
    today = np.datetime64(now.date(), "D")
    rows = [("", regions.default), *regions.prefixes]
    return [{"prefix": prefix, "name": cal.name, "description": cal.description,
             "fingerprint": cal.fingerprint, "timezone": cal.timezone,
             "published": cal.published_through(today)} for prefix, cal in rows]  # fmt: skip


@page
async def admin_page(request: Request) -> Response:
    await _admin(request)
    state = console(request)
    now = state.clock()
    async with state.pool.connection() as conn:
        users = await list_users(conn)
        sessions = await list_sessions(conn, now, limit=10_000)
        stamps = [dict(r) for r in await conn.fetch(_STAMPS)]
    live: dict[str, int] = {}
    for s in sessions:
        live[s.username] = live.get(s.username, 0) + 1
    return render(request, "admin.html", users=users, live=live, roles=ROLES,
                  ROLE_NAMES=ROLE_NAMES, calendars=_calendars(request, now), rules=state.rules,
                  stamps=stamps, flash=request.session.pop("flash", ""),
                  problem=request.session.pop("problem", ""))  # fmt: skip


def _names(value: str) -> list[str]:
    """Windows or departments typed one a line or comma-separated."""
    return [n.strip() for n in value.replace("，", ",").replace("\n", ",").split(",") if n.strip()]


async def _add(request: Request, form: dict[str, str], roles: list[str]) -> str:
    username = form.get("username", "").strip()
    password = form.get("password", "")
    hashed = None
    if form.get("directory") != "yes":
        hashed = await trio.to_thread.run_sync(hash_password, password)
    async with console(request).pool.connection() as conn:
        await add_user(conn, username, roles=roles, windows=_names(form.get("windows", "")),
                       departments=_names(form.get("departments", "")),
                       display_name=form.get("display_name", ""), password_hash=hashed)  # fmt: skip
    return username


@page
async def admin_action(request: Request) -> Response:
    """POST /admin/users (add) and /admin/users/{username}/{scope|disable|enable|sign-out}."""
    admin = await _admin(request)
    form = await check_csrf(request)
    action = request.path_params.get("action", "add")
    username = request.path_params.get("username", "")
    roles: list[str] = [r for r in ROLES if form.get(f"role_{r}") == "yes"]
    now = console(request).clock()
    try:
        if action == "add":
            username = await _add(request, form, roles)
        elif action in ("scope", "disable", "enable", "sign-out"):
            if action == "disable" and username == admin.username:
                raise AccountError("不能停用自己的账户", "you cannot disable your own account")
            async with console(request).pool.connection() as conn:
                if action == "scope":
                    await set_scope(conn, username, roles=roles,
                                    windows=_names(form.get("windows", "")),
                                    departments=_names(form.get("departments", "")))  # fmt: skip
                elif action == "sign-out":
                    await revoke_sessions(conn, username, now, admin.username)
                else:
                    await set_disabled(conn, username, action == "disable")
        else:
            raise Refusal(404, "e404")
    except AccountError as exc:
        request.session["problem"] = exc.text(lang_of(request))
        return RedirectResponse("/admin", status_code=303)
    log.info("web.admin", by=admin.username, action=action, username=username, roles=roles)
    request.session["flash"] = "done_admin"
    return RedirectResponse(f"/admin#user-{username}", status_code=303)
