"""``jiancha web``: the console on Hypercorn's trio worker, inside one trio-asyncio loop."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve as hyper_serve

from monitor import db
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from monitor.directory import LdapSettings
from monitor.rules.model import RuleSet
from monitor.vocab import Lang
from monitor.wallclock import Clock, utc_now
from monitor.web._app import create_app
from monitor.web._core import Console
from monitor.web._pool import Pool

__all__ = ["load_secret", "serve"]

log = structlog.get_logger("jiancha.web")


def load_secret(path: Path) -> str:
    """The key that signs session cookies: read from ``path``, made there (mode 0600) if absent.

    Kept in a file so that a restart does not sign everyone out; replacing the
    file signs everyone out.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        log.info("web.secret_created", path=str(path))
    if len(text) < 32:
        raise ValueError(f"{path}: the session secret must be at least 32 characters")
    return text


def _rules(name: str) -> RuleSet | None:
    from monitor.rules.load import load_rules

    try:
        return load_rules(name)
    except Exception:  # the console still works: rule codes for titles, no clocks on cases
        log.warning("web.rules_unreadable", rules=name, exc_info=True)
        return None


async def serve(address: str, dsn: str, secret: str, *, lang: Lang = "zh",
                secure_cookie: bool = False, ldap: LdapSettings | None = None,
                regions: Regions | None = None, rules_name: str = "cards",
                shutdown: Callable[[], Awaitable[None]] | None = None,
                clock: Clock = utc_now, own_loop: bool = True,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                ) -> None:  # fmt: skip
    """Serve the console on ``address`` (HOST:PORT) until ``shutdown`` returns (or, without
    one, until cancelled). ``clock``: the demo's virtual time, so "working time left now"
    agrees with the daemon's; ``own_loop`` False: the caller has a trio-asyncio loop open."""
    config = HyperConfig()
    config.bind = [address]
    config.accesslog = None
    config.errorlog = None
    config.server_names = []
    async with db.open_loop() if own_loop else contextlib.nullcontext():
        pool = Pool(dsn)
        rules = _rules(rules_name)
        titles = {r.rule: (r.title("zh"), r.title("en")) for r in (rules.rules if rules else ())}
        if regions is None:
            regions = Regions.of(load_calendar("cn"))
        state = Console(pool=pool, lang=lang, rule_titles=titles, ldap=ldap, rules=rules,
                        regions=regions, clock=clock)  # fmt: skip
        app = create_app(state, secret, secure_cookie=secure_cookie)
        try:
            # Starlette's ASGI types are looser than Hypercorn's; it is an ASGI 3 app.
            await hyper_serve(
                app,  # type: ignore[arg-type]
                config,
                shutdown_trigger=shutdown,
                task_status=task_status,
            )
        finally:
            with trio.CancelScope(shield=True):
                await pool.close()
