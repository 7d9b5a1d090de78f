"""Signing in and out: local accounts or the directory, a throttle per username, a session row."""

from __future__ import annotations

import datetime as dt
import secrets

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.accounts import User, authenticate, get_user
from monitor.directory import DirectoryUnavailable
from monitor.signins import open_session, revoke_session
from monitor.web._core import SESSION_LIFETIME, check_csrf, console, log, page, render

__all__ = ["login", "login_form", "logout"]


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/cards"


@page
async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_next(request.query_params.get("next")), error="")


async def _check(request: Request, username: str, password: str) -> User | None:
    """The account if the password is right: its local hash, else the directory (LDAP)."""
    state = console(request)
    async with state.pool.connection() as conn:
        user = await authenticate(conn, username, password)
        if user is not None or state.ldap is None:
            return user
        account = await get_user(conn, username)
    if account is None or account.local or account.disabled:
        return None
    ldap = state.ldap
    right = await trio.to_thread.run_sync(ldap.check, username, password)
    return account if right else None


@page
async def login(request: Request) -> Response:
    form = await check_csrf(request)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    target = _next(form.get("next"))
    state = console(request)
    throttle = state.throttle
    async with state.pool.connection() as conn:
        blocked = await throttle.blocked(conn, username)
    if blocked:
        log.warning("web.login_throttled", username=username)
        return render(request, "login.html", status=429, next=target, error="throttled")
    try:
        user = await _check(request, username, password) if username and password else None
    except DirectoryUnavailable:
        return render(request, "login.html", status=503, next=target, error="ldap_down")
    async with state.pool.connection() as conn:
        if user is None:
            await throttle.failed(conn, username)
            log.info("web.login_failed", username=username)
            return render(request, "login.html", status=401, next=target, error="bad_login")
        await throttle.succeeded(conn, username)
        agent = request.headers.get("user-agent", "")
        token = await open_session(conn, user.username, dt.datetime.now(dt.UTC),
                                   SESSION_LIFETIME, agent)  # fmt: skip
    lang = request.session.get("lang")
    request.session.clear()  # a new session: nothing planted before sign-in survives it
    request.session.update(sid=token, csrf=secrets.token_urlsafe(32))
    if lang in ("zh", "en"):
        request.session["lang"] = lang
    log.info("web.login", username=user.username, local=user.local)
    return RedirectResponse(target, status_code=303)


@page
async def logout(request: Request) -> Response:
    await check_csrf(request)
    token = request.session.get("sid")
    if isinstance(token, str):
        async with console(request).pool.connection() as conn:
            await revoke_session(conn, token, dt.datetime.now(dt.UTC), "logout")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
