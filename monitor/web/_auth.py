"""Signing in and out: local accounts, a throttle per username, a fresh session on success."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.accounts import authenticate
from monitor.web._core import check_csrf, console, log, page, render

__all__ = ["login", "login_form", "logout"]


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/cards"


@page
async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_next(request.query_params.get("next")), error="")


@page
async def login(request: Request) -> Response:
    form = await check_csrf(request)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    target = _next(form.get("next"))
    throttle = console(request).throttle
    if throttle.blocked(username):
        log.warning("web.login_throttled", username=username)
        return render(request, "login.html", status=429, next=target, error="throttled")
    async with console(request).pool.connection() as conn:
        user = await authenticate(conn, username, password) if username and password else None
    if user is None:
        throttle.failed(username)
        log.info("web.login_failed", username=username)
        return render(request, "login.html", status=401, next=target, error="bad_login")
    throttle.succeeded(username)
    lang = request.session.get("lang")
    request.session.clear()  # a new session: nothing planted before sign-in survives it
    request.session.update(user=user.username, since=user.updated_at.timestamp(),
                           csrf=secrets.token_urlsafe(32))  # fmt: skip
    if lang in ("zh", "en"):
        request.session["lang"] = lang
    log.info("web.login", username=user.username)
    return RedirectResponse(target, status_code=303)


@page
async def logout(request: Request) -> Response:
    await check_csrf(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
