"""The console's own database role, ``jiancha_console`` (migration 0014): enough, and no more.

On a database set up as docs/operating.md says (roles.sql by a superuser,
migrations as ``jiancha_owner``, cards made by ``jiancha evaluate`` as the
daemon), the console logs in with a login in ``jiancha_console`` only. Every
page and step works through it; anything else is refused by PostgreSQL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from monitor import db
from tests.cards.test_ledger_roles import cli, events_source, login, roles_sql, run_sql
from tests.conftest import temporary_database
from tests.web.test_appeal import PNG
from tests.web.webkit import add_account, console_client, csrf_of, sign_in


@dataclass(frozen=True)
class Setup:
    superuser: str
    console: str  # a login in jiancha_console only
    name: str


@pytest.fixture(scope="module")
def setup(pg_server_dsn: str) -> Iterator[Setup]:
    tag = secrets.token_hex(3)
    admin, daemon, web = f"jiancha_t_admin_{tag}", f"jiancha_t_daemon_{tag}", f"jiancha_t_web_{tag}"
    password = secrets.token_hex(8)
    with temporary_database(pg_server_dsn, "test_console_role") as su:
        from monitor import paths

        run_sql(
            su, roles_sql(),
            f"CREATE ROLE {admin} LOGIN PASSWORD '{password}' IN ROLE jiancha_owner",
            f"CREATE ROLE {daemon} LOGIN PASSWORD '{password}'",
            f"CREATE ROLE {web} LOGIN PASSWORD '{password}' IN ROLE jiancha_console",
            paths.source_sql().read_text(encoding="utf-8"),
            f"GRANT jiancha_daemon, jiancha_reader TO {daemon}",
        )  # fmt: skip
        code, text = cli("db", "migrate", "--dsn", login(su, admin, password, role="jiancha_owner"))
        assert code == 0, text
        run_sql(su, roles_sql())  # as an upgrade does: the grants again, now with 0014 in
        events_source(su)
        d = login(su, daemon, password)
        code, text = cli("evaluate", "--now", "2024-04-01T00:00Z", "--source-dsn", d, "--dsn", d)
        assert code == 0, text
        yield Setup(su, login(su, web, password), web)
    run_sql(pg_server_dsn, *(f"DROP ROLE IF EXISTS {r}" for r in (admin, daemon, web)))


async def test_everything_the_console_does_works_as_its_role(setup: Setup) -> None:
    async with db.open_loop():
        async with await db.connect(setup.superuser) as su:
            await su.execute("DELETE FROM jiancha.users WHERE username IN ('wangf', 'lim')")
            await add_account(su, "wangf", ["window_head"], windows=["W1"], display_name="王芳")
            await add_account(su, "lim", ["officer"], display_name="李明")
            rows = await su.fetch(
                "SELECT id FROM jiancha.cards WHERE status = 'issued' ORDER BY id LIMIT 2"
            )
            one, two = (r["id"] for r in rows)
        async with console_client(setup.console) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await sign_in(client, "wangf", "wrong password")).status_code == 401
            assert (await sign_in(client, "wangf")).status_code == 303
            page = await client.get(f"/cards/{one}")
            form = {"csrf": csrf_of(page.text), "reason": "已督促"}
            ack = await client.post(f"/cards/{one}/ack", data=form)
            assert ack.status_code == 303, ack.text
            page = await client.get(f"/cards/{two}")
            form = {"csrf": csrf_of(page.text), "reason": "见照片"}
            photo = {"attachment": ("p.png", PNG, "image/png")}
            appeal = await client.post(f"/cards/{two}/appeal", data=form, files=photo)
            assert appeal.status_code == 303, appeal.text
            case = await client.get("/cases/K1")
            assert case.status_code == 200 and "办件事件" in case.text
            out = await client.post("/logout", data={"csrf": csrf_of(case.text)})
            assert out.status_code == 303
        async with console_client(setup.console) as client:
            assert (await sign_in(client, "lim")).status_code == 303
            assert (await client.get("/cards")).status_code == 200
            assert (await client.get("/cards.xlsx")).status_code == 200
            page = await client.get(f"/cards/{two}")
            decided = await client.post(f"/cards/{two}/decide", data={
                "csrf": csrf_of(page.text), "result": "revoked", "reason": "照片属实"})  # fmt: skip
            assert decided.status_code == 303, decided.text
        async with await db.connect(setup.superuser) as su:
            roles = await su.fetch("SELECT DISTINCT db_role FROM jiancha.card_events"
                                   " WHERE detail->>'channel' = 'web'")  # fmt: skip
    assert [r["db_role"] for r in roles] == [setup.name]


REFUSED = [
    "INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, ruleset,"
    " calendar, updated_at) VALUES ('X', 'decision', 'r', 'red', now(), now(), 'r', 'c', now())",
    "UPDATE jiancha.cards SET level = 'blue'",
    "UPDATE jiancha.cards SET deadline = now()",
    "DELETE FROM jiancha.cards",
    "UPDATE jiancha.card_events SET reason = 'edited'",
    "DELETE FROM jiancha.card_events",
    "DELETE FROM jiancha.attachments",
    "UPDATE jiancha.attachments SET name = 'x'",
    "SELECT * FROM jiancha.outbox",
    "SELECT * FROM jiancha.cursor",
    "UPDATE jiancha.leader SET token = token + 1",
    "INSERT INTO jiancha.events (event_id, tx, case_id, kind, occurred_at, payload, ingested_at)"
    " VALUES (1, '1', 'X', 'submitted', now(), '{}', now())",
    "UPDATE jiancha.cases SET status = 'completed'",
    "DELETE FROM jiancha.web_sessions",
    "UPDATE jiancha.users SET username = 'someone'",
    "DELETE FROM jiancha.users",
    "TRUNCATE jiancha.card_events",
    "ALTER TABLE jiancha.card_events DISABLE TRIGGER ALL",
    "DROP TABLE jiancha.attachments",
    "CREATE TABLE jiancha.mine (a int)",
    "SELECT * FROM case_events",  # the approval platform's own tables
]


@pytest.mark.parametrize("statement", REFUSED)
def test_the_console_role_cannot_do_more(setup: Setup, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        run_sql(setup.console, statement)
