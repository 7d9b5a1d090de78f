"""What the console's tests share: the app on a real PostgreSQL, accounts, cards, a client."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import httpx

from monitor import db
from monitor.accounts import add_user, hash_password
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from monitor.directory import LdapSettings
from monitor.rules.load import load_rules
from monitor.rules.model import RuleSet
from monitor.web import Console, Pool, Throttle, create_app

T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Beijing
DAY = dt.timedelta(days=1)
PASSWORD = "correct horse battery"
SECRET = "s" * 48

_INSERT_CARD = """
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, deadline,
    matter, department, "window", region, ruleset, calendar, detail, status, updated_at,
    reply_due)
VALUES ($1, $10, $2, $3, $4, $4, $5, $6, $7, $8, $11, 'rules-abc', 'cn-2024',
    $9, $12, $4, $13)
RETURNING id
"""


async def add_card(
    conn: db.Connection,
    case_id: str = "C1",
    *,
    window: str = "W1",
    department: str = "住建局",
    level: str = "yellow",
    rule: str = "decision.yellow",
    deadline: dt.datetime = T0 + 5 * DAY,
    matter: str = "建筑工程施工许可",
    detail: dict | None = None,
    clock: str = "decision",
    region: str = "R1",
    status: str = "issued",
    reply_due: dt.datetime | None = None,
) -> int:
    """A card as the engine leaves it: the row and its ``issued`` step."""
    facts = {"limit_days": 5, "used_days": 4.0, "remaining_days": 1.0} if detail is None else detail
    async with conn.transaction():
        card_id: int = await conn.fetchval(
            _INSERT_CARD,
            case_id,
            rule,
            level,
            T0,
            deadline,
            matter,
            department,
            window,
            facts,
            clock,
            region,
            status,
            reply_due,
        )
        await conn.execute(
            "INSERT INTO jiancha.card_events (card_id, kind, at, actor) "
            "VALUES ($1, 'issued', $2, 'jiancha')",
            card_id,
            T0,
        )
    return card_id


async def add_account(
    conn: db.Connection,
    username: str,
    roles: Sequence[str],
    *,
    windows: Sequence[str] = (),
    departments: Sequence[str] = (),
    display_name: str = "",
    directory: bool = False,
) -> None:
    """An account with the password `PASSWORD`, or a directory (LDAP) one without a hash."""
    await add_user(
        conn,
        username,
        roles=roles,
        windows=windows,
        departments=departments,
        display_name=display_name,
        password_hash=None if directory else hash_password(PASSWORD),
    )


@functools.cache
def _rules() -> RuleSet:
    return load_rules("cards")


@asynccontextmanager
async def console_client(
    dsn: str,
    throttle: Throttle | None = None,
    ldap: LdapSettings | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    regions: Regions | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The console app over ``dsn``, and an HTTP client talking ASGI to it (inside open_loop)."""
    pool = Pool(dsn)
    state = Console(
        pool=pool,
        throttle=throttle or Throttle(),
        ldap=ldap,
        regions=regions or Regions.of(load_calendar("cn")),
        rules=_rules(),
        clock=clock or (lambda: T0),
        rule_titles={
            "decision.yellow": ("办结时限黄牌", "decision yellow"),
        },
    )
    app = create_app(state, SECRET)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await pool.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf": csrf_of(form.text),
            "next": "/cards",
        },
    )
