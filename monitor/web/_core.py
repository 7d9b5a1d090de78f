"""What every page shares: the console's state, the language, the signed-in user, rendering."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.accounts import ROLE_NAMES, User
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from monitor.directory import LdapSettings
from monitor.report.fetch import fetch_matter_names
from monitor.rules.model import RuleSet
from monitor.signins import session_user
from monitor.vocab import Lang, local_text, word
from monitor.wallclock import utc_now
from monitor.web._pool import Pool
from monitor.web._text import text
from monitor.web._throttle import Throttle

__all__ = [
    "SESSION_LIFETIME",
    "Console",
    "Refusal",
    "check_csrf",
    "console",
    "lang_of",
    "page",
    "render",
    "signed_in",
]

log = structlog.get_logger("jiancha.web")

TIMEZONE: Final = "Asia/Shanghai"
SESSION_LIFETIME: Final = dt.timedelta(hours=8)
"""A working day: a session signed in in the morning lasts until the evening."""
_HERE = Path(__file__).resolve().parent

# The pages are the console's own: no framing, no foreign scripts, no caching of a card.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """The console's shared state: its connections, templates, login throttle and language."""

    pool: Pool
    lang: Lang = "zh"
    throttle: Throttle = field(default_factory=Throttle)
    ldap: LdapSettings | None = None  # [web.ldap]: directory accounts sign in against it
    # the calendars of [daemon] calendar and region_calendars: working time left, counted live
    regions: Regions = field(default_factory=lambda: Regions.of(load_calendar("cn")))
    clock: Callable[[], dt.datetime] = utc_now
    rules: RuleSet | None = None  # the daemon's rules: the case page's clocks
    rule_titles: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule -> (zh, en)
    # the approval database's catalogue: a matter's name where its code alone meant nothing
    # to a window head (`matter_names`); empty, the codes are shown
    matter_names: dict[str, str] = field(default_factory=dict)
    names_read_at: float | None = None  # time.monotonic() of the last read
    env: jinja2.Environment = field(default_factory=lambda: templates(_HERE / "templates"))


def templates(folder: Path) -> jinja2.Environment:
    """The console's pages, every one compiled at start and never read again: an upgrade
    that replaces the files under a running console must not pair the new pages with the
    old code (a 500 on each page the release changed, until the restart)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,  # a case id or window name with HTML in it renders as text
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        cache_size=-1,  # every page kept
    )
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


class Refusal(Exception):
    """A request the console refuses: rendered as a page in the user's language, never a trace."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.detail = detail


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


NAMES_FOR: Final = 300.0  # seconds the catalogue's names are used before they are read again


async def matter_names(request: Request) -> dict[str, str]:
    """The source catalogue's matter names by code, read again every `NAMES_FOR` seconds.

    jiancha's schema sits in the approval database by default, where ``matters`` is; a
    console that may not read it (another database, a role without the grant) shows the
    codes, as before, and says so in its log at each read (``report.matters_unreadable``).
    """
    state = console(request)
    now = time.monotonic()
    if state.names_read_at is None or now - state.names_read_at > NAMES_FOR:
        state.names_read_at = now
        async with state.pool.connection() as conn:
            state.matter_names = await fetch_matter_names(conn)
    return state.matter_names


def lang_of(request: Request) -> Lang:
    """``?lang=`` (remembered in the session), else the session's, else the console's default."""
    asked = request.query_params.get("lang")
    if asked in ("zh", "en"):
        request.session["lang"] = asked
        return "en" if asked == "en" else "zh"
    kept = request.session.get("lang")
    if kept in ("zh", "en"):
        return "en" if kept == "en" else "zh"
    return console(request).lang


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> dict[str, str]:
    """The posted form, if it carries this session's CSRF token; else a 403 refusal."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = request.session.get("csrf")
    given = values.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise Refusal(403, "e403_csrf")
    return values


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    user = request.scope.get("jiancha.user")

    def t(key: str, **values: object) -> str:
        return text(key, lang, **values)

    titles = console(request).rule_titles

    def rule_name(code: str) -> str:
        """A rule's title (承诺时限) rather than its code (decision_time)."""
        found = titles.get(code)
        return code if found is None else found[0 if lang == "zh" else 1]

    def when(moment: dt.datetime | None, deadline: bool = False) -> str:
        return local_text(moment, TIMEZONE, deadline=deadline, missing="—")

    catalogue = console(request).matter_names

    def matter_name(code: str | None) -> str:
        """The matter's name in the catalogue, or "" (the page shows the code)."""
        return catalogue.get(code or "", "")

    html = console(request).env.get_template(name).render(
        t=t, w=lambda names, code: word(names, code, lang), when=when, lang=lang, user=user,
        csrf=csrf_token(request), matter_name=matter_name,
        rule_name=rule_name, path=request.url.path,
        role_names=[ROLE_NAMES[r][lang] for r in (user.roles if user else ())],
        **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


async def signed_in(request: Request) -> User:
    """The session's user, read afresh from its row: revoked, expired or disabled is refused."""
    token = request.session.get("sid")
    if isinstance(token, str):
        async with console(request).pool.connection() as conn:
            user = await session_user(conn, token, dt.datetime.now(dt.UTC))
        if user is not None:
            request.scope["jiancha.user"] = user
            return user
        request.session.pop("sid", None)
    raise Refusal(401, "login")


Handler = Callable[[Request], Awaitable[Response]]


def _carries_nul(request: Request) -> bool:
    """Whether the path or a query parameter holds a NUL character, which no text column
    of PostgreSQL can take (it failed as a 500 at the first query)."""
    if "\x00" in request.scope.get("path", ""):
        return True
    return any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items())


# PostgreSQL's refusals of a character a text value cannot hold (NUL in a form field):
# the request's fault, answered as such
_BAD_CHARACTER: Final = ("22021", "22P05")  # character_not_in_repertoire, untranslatable


def page(handler: Handler) -> Handler:
    """Wrap an endpoint: a refusal becomes its page, any other error a logged 500 page."""

    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        try:
            if _carries_nul(request):
                raise Refusal(400, "e400", text("nul", lang_of(request)))
            return await handler(request)
        except Refusal as exc:
            return refusal_page(request, exc)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) in _BAD_CHARACTER:
                log.warning("web.bad_character", path=request.url.path, method=request.method)
                return refusal_page(request, Refusal(400, "e400", text("nul", lang_of(request))))
            log.exception("web.error", path=request.url.path, method=request.method,
                          seconds=round(time.monotonic() - started, 3))  # fmt: skip
            return refusal_page(request, Refusal(500, "e500"))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def refusal_page(request: Request, exc: Refusal) -> Response:
    if exc.status == 401:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        exc = Refusal(403, "e403_csrf")
    return render(request, "error.html", status=exc.status, key=exc.key, detail=exc.detail,
                  code=exc.status)  # fmt: skip
