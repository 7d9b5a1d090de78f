"""The ledger as evidence (issue 17, item 8): roles, and a card that changes only with a step.

On a database of its own, set up as docs/operating.md says: a superuser runs
``deploy/sql/roles.sql``, the migrations run as ``jiancha_owner`` (a login
that is a member, with ``role=jiancha_owner`` in its DSN), and the daemon
logs in with ``jiancha_daemon`` and ``jiancha_reader``. As that role the
normal lifecycle works (``jiancha evaluate``, ``jiancha cards ...``) and the
ledger cannot be rewritten.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from monitor import paths
from monitor.cli import main
from tests.conftest import temporary_database
from tests.sourcekit import MATTERS, SUBMITTED, at


@dataclass(frozen=True)
class Logins:
    superuser: str  # the test server's superuser, in the ledger's database
    owner: str  # a member of jiancha_owner, acting as it (role=jiancha_owner)
    daemon: str  # in jiancha_daemon and jiancha_reader
    daemon_name: str
    admin_name: str


def login(dsn: str, user: str, password: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    netloc = f"{user}:{urllib.parse.quote(password)}@{host}"
    return urllib.parse.urlunsplit(
        parts._replace(netloc=netloc, query=urllib.parse.urlencode(query))
    )


def run_sql(dsn: str, *statements: str) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            rows: list[Any] = []
            for statement in statements:
                if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    rows = list(await conn.fetch(statement))
                else:  # a script, or a statement whose rows nobody reads
                    await conn.execute(statement)
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def roles_sql() -> str:
    return (paths.source_sql().parent / "roles.sql").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def logins(pg_server_dsn: str) -> Iterator[Logins]:
    tag = secrets.token_hex(3)
    admin, daemon, password = (
        f"jiancha_t_admin_{tag}",
        f"jiancha_t_daemon_{tag}",
        secrets.token_hex(8),
    )
    with temporary_database(pg_server_dsn, "test_ledger_roles") as su:
        run_sql(
            su,
            roles_sql(),
            f"CREATE ROLE {admin} LOGIN PASSWORD '{password}' IN ROLE jiancha_owner",
            f"CREATE ROLE {daemon} LOGIN PASSWORD '{password}'",
            paths.source_sql().read_text(encoding="utf-8"),  # the approval platform's side
            f"GRANT jiancha_daemon, jiancha_reader TO {daemon}",
        )
        owner = login(su, admin, password, role="jiancha_owner")
        code, text = cli("db", "migrate", "--dsn", owner)
        assert code == 0, text
        yield Logins(su, owner, login(su, daemon, password), daemon, admin)
    run_sql(pg_server_dsn, f"DROP ROLE IF EXISTS {admin}", f"DROP ROLE IF EXISTS {daemon}")


def events_source(su: str) -> None:
    """The platform writes two long overdue cases (as its own, privileged role)."""
    run_sql(
        su,
        "INSERT INTO matters (code, name, department, statutory_days, promised_days) VALUES "
        + ", ".join(f"('{m[0]}', '{m[1]}', '{m[2]}', {m[3]}, {m[4]})" for m in MATTERS)
        + " ON CONFLICT DO NOTHING",
        "INSERT INTO case_events (case_id, kind, occurred_at, payload) VALUES "
        f"('K1', 'submitted', '{at(0).isoformat()}', '{json.dumps(SUBMITTED)}'), "
        f"('K1', 'accepted', '{at(1).isoformat()}', '{{}}'), "
        f"('K2', 'submitted', '{at(0).isoformat()}', '{json.dumps(SUBMITTED)}'), "
        f"('K2', 'accepted', '{at(1).isoformat()}', '{{}}')",
    )


def test_migrations_ran_as_the_owner(logins: Logins) -> None:
    owners = run_sql(
        logins.superuser,
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'jiancha'",
    )
    assert [r[0] for r in owners] == ["jiancha_owner"]
    schema = run_sql(logins.superuser, "SELECT nspowner::regrole::text FROM pg_namespace "
                     "WHERE nspname = 'jiancha'")  # fmt: skip
    assert schema[0][0] == "jiancha_owner"
    applied = run_sql(logins.daemon, "SELECT max(version) FROM jiancha.schema_migrations")
    assert applied[0][0] >= 9


def test_the_lifecycle_works_as_the_daemon_role(logins: Logins) -> None:
    events_source(logins.superuser)
    d = logins.daemon
    code, text = cli("evaluate", "--now", "2024-04-01T00:00Z", "--source-dsn", d, "--dsn", d,
                     "--json")  # fmt: skip
    assert code == 0, text
    cards = run_sql(d, "SELECT id, case_id, rule FROM jiancha.cards ORDER BY id")
    assert {r["case_id"] for r in cards} == {"K1", "K2"}
    one, two = cards[0]["id"], cards[1]["id"]
    for argv in (
        ("ack", str(one), "--by", "王芳", "--reason", "申请人补正延误"),
        ("revoke", str(one), "--by", "李明", "--reason", "系统误判"),
        ("appeal", str(two), "--by", "王芳", "--reason", "踏勘未扣除"),
        ("decide", str(two), "--result", "upheld", "--by", "李明", "--reason", "维持"),
    ):
        code, text = cli("cards", *argv, "--dsn", d)
        assert code == 0, text
    steps = run_sql(d, "SELECT card_id, kind, actor, db_role FROM jiancha.card_events "
                    f"WHERE card_id IN ({one}, {two}) ORDER BY id")  # fmt: skip
    human = [(r["card_id"], r["kind"], r["actor"], r["db_role"]) for r in steps
             if r["actor"] != "jiancha"]  # fmt: skip
    assert human == [
        (one, "acknowledged", "王芳", logins.daemon_name),
        (one, "revoked", "李明", logins.daemon_name),
        (two, "appealed", "王芳", logins.daemon_name),
        (two, "appeal_decided", "李明", logins.daemon_name),
    ]
    assert {r["db_role"] for r in steps if r["kind"] == "issued"} == {logins.daemon_name}
    status = dict(run_sql(d, f"SELECT id, status FROM jiancha.cards WHERE id IN ({one}, {two})"))
    assert status == {one: "revoked", two: "issued"}
    code, text = cli("cards", "show", str(one), "--dsn", d)
    assert code == 0 and logins.daemon_name in text
    # the daemon's own steps again: a re-evaluation adds nothing and is allowed
    code, text = cli("evaluate", "--now", "2024-04-02T00:00Z", "--source-dsn", d, "--dsn", d)
    assert code == 0, text


REFUSED = [
    # no step recorded with the change (checked at commit, for every role)
    ("UPDATE jiancha.cards SET status = 'closed' WHERE id = {card}", "no card_events row"),
    ("UPDATE jiancha.cards SET escalated_at = now() WHERE id = {card}", "no card_events row"),
    ("UPDATE jiancha.cards SET updated_at = now() WHERE id = {card}", "no card_events row"),
    # not the daemon's to change
    ("UPDATE jiancha.cards SET level = 'blue' WHERE id = {card}", "permission denied"),
    ("DELETE FROM jiancha.cards WHERE id = {card}", "permission denied"),
    ("UPDATE jiancha.card_events SET reason = 'edited' WHERE card_id = {card}",
     "permission denied"),
    ("DELETE FROM jiancha.card_events WHERE card_id = {card}", "permission denied"),
    ("INSERT INTO jiancha.card_events (card_id, kind, at, actor) VALUES "
     "({card} + 1000, 'notified', now(), 'jiancha')", "card \\d+ does not exist"),
    ("TRUNCATE jiancha.card_events", "permission denied"),
    ("ALTER TABLE jiancha.cards DISABLE TRIGGER cards_change_recorded_v1", "must be owner"),
    ("ALTER TABLE jiancha.card_events DISABLE TRIGGER USER", "must be owner"),
    ("DROP TABLE jiancha.cards", "must be owner"),
    ("DROP TABLE jiancha.card_events", "must be owner"),
    ("DROP FUNCTION jiancha.card_change_recorded_v1() CASCADE", "must be owner"),
    ("CREATE TABLE jiancha.shadow (id int)", "permission denied"),
    ("SET session_replication_role = replica", "permission denied"),
    ("SET ROLE jiancha_owner", "permission denied"),
]  # fmt: skip


@pytest.mark.parametrize(("statement", "why"), REFUSED, ids=[s for s, _ in REFUSED])
def test_the_daemon_role_cannot_rewrite_the_ledger(logins: Logins, statement: str,
                                                   why: str) -> None:  # fmt: skip
    card = _a_live_card(logins)
    before = _ledger(logins.superuser)
    with pytest.raises(asyncpg.PostgresError, match=why):
        run_sql(logins.daemon, statement.format(card=card))
    assert _ledger(logins.superuser) == before


def _ledger(dsn: str) -> tuple[list[Any], list[Any]]:
    return (run_sql(dsn, "SELECT c::text FROM jiancha.cards c ORDER BY id"),
            run_sql(dsn, "SELECT e::text FROM jiancha.card_events e ORDER BY id"))  # fmt: skip


def test_a_change_needs_the_step_that_explains_it(logins: Logins) -> None:
    d = logins.daemon
    card = _a_live_card(logins)
    wrong = (f"INSERT INTO jiancha.card_events (card_id, kind, at, actor) VALUES "
             f"({card}, 'notified', now(), 'jiancha')")  # fmt: skip
    close = f"UPDATE jiancha.cards SET status = 'closed', updated_at = now() WHERE id = {card}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"status \w+ -> closed"):
        run_sql(d, "BEGIN", wrong, close, "COMMIT")
    assert run_sql(d, f"SELECT status FROM jiancha.cards WHERE id = {card}")[0][0] != "closed"
    # the step, with a forged role and transaction: stamped with the real ones
    right = (f"INSERT INTO jiancha.card_events (card_id, kind, at, actor, db_role, tx, tx_at) "
             f"VALUES ({card}, 'closed', now(), 'jiancha', 'someone_else', '1'::xid8, "
             "'2024-01-01T00:00Z')")  # fmt: skip
    run_sql(d, "BEGIN", close, right, "COMMIT")  # the step may follow the change
    row = run_sql(d, f"SELECT db_role, tx::text, tx_at FROM jiancha.card_events "
                  f"WHERE card_id = {card} AND kind = 'closed'")[0]  # fmt: skip
    assert row["db_role"] == logins.daemon_name and row["tx"] != "1"
    assert row["tx_at"].year > 2024
    assert run_sql(d, f"SELECT status FROM jiancha.cards WHERE id = {card}")[0][0] == "closed"
    # a restored step whose tx comes round again in another cluster does not count
    restored = (f"INSERT INTO jiancha.card_events (card_id, kind, at, actor, tx, tx_at) "
                f"VALUES ({card}, 'revoked', now(), 'jiancha', pg_current_xact_id(), "
                "'2024-01-01T00:00Z')")  # fmt: skip
    revoke = f"UPDATE jiancha.cards SET status = 'revoked' WHERE id = {card}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no card_events row"):
        run_sql(logins.superuser, "BEGIN", "SET LOCAL session_replication_role = replica",
                restored, "SET LOCAL session_replication_role = origin", revoke,
                "COMMIT")  # fmt: skip
    # the superuser too is held to it (the trigger is not a privilege)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no card_events row"):
        run_sql(logins.superuser, f"UPDATE jiancha.cards SET status = 'revoked' WHERE id = {card}")


def test_a_member_acting_as_the_owner_is_recorded_as_such(logins: Logins) -> None:
    card = _a_live_card(logins)
    run_sql(logins.owner, f"INSERT INTO jiancha.card_events (card_id, kind, at, actor) VALUES "
            f"({card}, 'notified', now(), 'jiancha')")  # fmt: skip
    row = run_sql(logins.superuser, "SELECT db_role FROM jiancha.card_events "
                  "ORDER BY id DESC LIMIT 1")[0]  # fmt: skip
    assert row["db_role"] == f"{logins.admin_name} as jiancha_owner"


def _a_live_card(logins: Logins) -> int:
    """A card of its own for a test, issued as the engine does (the row and its step)."""
    rows = run_sql(
        logins.daemon,
        "WITH c AS (INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, "
        "recorded_at, ruleset, calendar, updated_at, subject) VALUES ('X', 'decision', "
        "'decision_time', 'red', now(), now(), 'x', 'x', now(), gen_random_uuid()::text) "
        "RETURNING id), e AS (INSERT INTO jiancha.card_events (card_id, kind, at, actor) "
        "SELECT id, 'issued', now(), 'jiancha' FROM c) SELECT id FROM c",
    )
    return int(rows[0][0])


# --- an installation from before version 10 ----------------------------------------------------


@pytest.fixture
def legacy(pg_server_dsn: str) -> Iterator[tuple[str, str]]:
    """A schema migrated by the daemon's own login, which owned it (the old instructions)."""
    name, password = f"jiancha_t_legacy_{secrets.token_hex(3)}", secrets.token_hex(8)
    with temporary_database(pg_server_dsn, "test_ledger_legacy") as su:
        database = urllib.parse.urlsplit(su).path.lstrip("/")
        run_sql(su, f"CREATE ROLE {name} LOGIN PASSWORD '{password}'",
                f"CREATE SCHEMA jiancha AUTHORIZATION {name}",
                f'GRANT CREATE ON DATABASE "{database}" TO {name}')  # fmt: skip
        yield su, login(su, name, password)
    run_sql(pg_server_dsn, f"DROP ROLE IF EXISTS {name}")


def test_roles_sql_takes_an_existing_schema_from_the_daemons_login(legacy) -> None:
    su, old = legacy
    code, text = cli("db", "migrate", "--dsn", old)
    assert code == 0, text
    run_sql(old, "CREATE TABLE jiancha.scratch (n int)")  # the owner could; after, nobody else
    run_sql(su, roles_sql(), roles_sql())  # rerunnable
    name = urllib.parse.urlsplit(old).username
    run_sql(su, f"GRANT jiancha_daemon TO {name}")
    owners = run_sql(su, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'jiancha'")
    assert [r[0] for r in owners] == ["jiancha_owner"]
    functions = run_sql(
        su,
        "SELECT DISTINCT proowner::regrole::text FROM pg_proc p JOIN "
        "pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'jiancha'",
    )
    assert [r[0] for r in functions] == ["jiancha_owner"]
    for statement in ("DROP TABLE jiancha.cards", "ALTER TABLE jiancha.cards DISABLE TRIGGER ALL",
                      "TRUNCATE jiancha.card_events"):  # fmt: skip
        with pytest.raises(asyncpg.PostgresError, match=r"must be owner|permission denied"):
            run_sql(old, statement)
    # its working tables it still writes
    run_sql(old, "INSERT INTO jiancha.cursor (source, tx, event_id) VALUES ('t', '1', 0)",
            "DELETE FROM jiancha.cursor WHERE source = 't'")  # fmt: skip


@pytest.mark.parametrize("copy_min", [None, 1])
async def test_the_daemon_runs_as_its_role(
    logins: Logins, copy_min: int | None, monkeypatch: pytest.MonkeyPatch, copied_tables: list[str]
) -> None:
    """`jiancha run` as the daemon's login: every component starts, cards are issued.
    ``copy_min`` 1: the case rows go the backlog's way too, through a temporary table
    (and not in a live batch's one statement)."""
    import trio

    from monitor import daemon, db
    from monitor.state import store as state_store

    if copy_min is not None:
        monkeypatch.setattr(state_store, "COPY_MIN_CASES", copy_min)
        monkeypatch.setattr(state_store, "ONE_STATEMENT_MAX_EVENTS", 0)
    d = logins.daemon
    config = daemon.DaemonConfig(source_dsn=d, dsn=d, metrics_address="", poll_interval=0.05)
    async with db.open_loop(), await db.connect(d) as conn, trio.open_nursery() as nursery:
        async with await db.connect(logins.superuser) as platform:  # the platform writes
            await platform.executemany(
                "INSERT INTO matters (code, name, department, statutory_days, promised_days) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", MATTERS,
            )  # fmt: skip
            await platform.execute(
                "INSERT INTO case_events (case_id, kind, occurred_at, payload) VALUES "
                "('K9', 'submitted', $1, $2::jsonb), ('K9', 'accepted', $3, '{}')",
                at(0), SUBMITTED, at(1),
            )  # fmt: skip
        await nursery.start(daemon.serve, config)
        query = "SELECT count(*) FROM jiancha.cards WHERE case_id = 'K9'"
        with trio.fail_after(20):
            while not await conn.fetchval(query):
                await trio.sleep(0.05)
        roles = await conn.fetch("SELECT DISTINCT e.db_role FROM jiancha.card_events e "
                                 "JOIN jiancha.cards c ON c.id = e.card_id "
                                 "WHERE c.case_id = 'K9'")  # fmt: skip
        assert [r[0] for r in roles] == [logins.daemon_name]
        # the dashboards' calendar, written by the daemon's role (schema 17 recorded it)
        assert await conn.fetchval("SELECT count(*) FROM jiancha.working_time_source") == 1
        assert await conn.fetchval("SELECT count(*) FROM jiancha.working_time") > 2000
        nursery.cancel_scope.cancel()
    assert ("jiancha_case_rows" in copied_tables) == (copy_min is not None)


async def test_the_daemon_role_cannot_move_card_ids_and_says_how(logins: Logins) -> None:
    """After a failover that lost cards this worker issued, their ids must not be handed
    out again (monitor.worker); jiancha_daemon may not setval the ledger's sequence, so
    the worker logs the owner's command and carries on reading."""
    import structlog
    import trio

    from monitor import db
    from monitor.calendar import load_calendar
    from monitor.evaluator import Evaluator
    from monitor.rules.load import load_rules
    from monitor.worker import Worker, WorkerConfig

    d = logins.daemon
    ev = Evaluator(load_rules("cards"), load_calendar("cn"))
    ev.stats.last_card_id = 10**9  # committed on a primary that is gone
    worker = Worker(WorkerConfig(d, d, poll_interval=0.05), evaluator=ev)
    with structlog.testing.capture_logs() as logs:
        async with db.open_loop(), trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            assert worker.stats.connected
            nursery.cancel_scope.cancel()
    refused = [e for e in logs if e["event"] == "card_ids_not_moved"]
    assert len(refused) == 1 and refused[0]["log_level"] == "error"
    assert "setval" in refused[0]["fix"] and "1000000000" in refused[0]["fix"]
    assert not any(e["event"] == "card_ids_moved_past_lost_cards" for e in logs)
