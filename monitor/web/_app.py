"""The console's ASGI app: routes, the signed session, error pages in the user's language."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.web._admin import admin_action, admin_page
from monitor.web._attach import attachment
from monitor.web._auth import login, login_form, logout
from monitor.web._case import case_page
from monitor.web._core import SESSION_LIFETIME, Console, Refusal, refusal_page
from monitor.web._list import card_list, card_list_xlsx
from monitor.web._pages import act_on_card, card_page, healthz
from monitor.web._reports import report_file, report_list, report_page

__all__ = ["SESSION_COOKIE", "create_app"]

SESSION_COOKIE: Final = "jiancha_session"
_STATIC = Path(__file__).resolve().parent / "static"
_HTTP_KEYS: Final = {400: "e400", 403: "e403", 404: "e404", 405: "e405"}


async def _home(request: Request) -> Response:
    return RedirectResponse("/cards", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) as the console's pages."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return refusal_page(request, Refusal(status, _HTTP_KEYS.get(status, "e400")))


def create_app(state: Console, secret: str, *, secure_cookie: bool = False) -> Starlette:
    """The console over ``state``; ``secret`` signs the session cookie (keep it stable).

    ``secure_cookie``: send the cookie over HTTPS only (behind a TLS proxy).
    """
    routes = [
        Route("/", _home),
        Route("/healthz", healthz),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/cards", card_list),
        Route("/cards.xlsx", card_list_xlsx),
        Route("/cards/{card_id}", card_page, methods=["GET"]),
        Route("/cards/{card_id}/{action}", act_on_card, methods=["POST"]),
        Route("/cases/{case_id:path}", case_page),
        Route("/attachments/{attachment_id}", attachment),
        Route("/admin", admin_page, methods=["GET"]),
        Route("/admin/users", admin_action, methods=["POST"]),
        Route("/admin/users/{username}/{action}", admin_action, methods=["POST"]),
        Route("/reports", report_list),
        Route("/reports/{report_id}", report_page),
        Route("/reports/{report_id}/{format}", report_file),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                   max_age=int(SESSION_LIFETIME.total_seconds()), same_site="lax",
                   https_only=secure_cookie),
    ]  # fmt: skip
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: _http_error})  # fmt: skip
    app.state.console = state
    return app
