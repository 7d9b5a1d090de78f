"""Shared fixtures: a real PostgreSQL for every test that asks for one.

``pg_server_dsn`` (session) is ``JIANCHA_TEST_DSN`` when set, else one embedded
server from ``pgserver``, started the first time a test needs it and stopped
when the session ends. ``pg_dsn`` (module) is a fresh database on that server,
named after the test module, dropped after the module's last test, so modules
cannot see each other's tables and need no cleanup of their own.

With ``JIANCHA_TEST_DSN`` the role must be allowed to ``CREATE DATABASE``.

pytest-trio runs async fixtures inside the test's trio run, which lasts one
test only, so the module- and session-scoped fixtures here are synchronous
and talk to the server with ``asyncio.run`` and asyncpg directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

TEST_DSN_ENV = "JIANCHA_TEST_DSN"


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of the test server's maintenance database (not for tests to write in)."""
    given = os.environ.get(TEST_DSN_ENV)
    if given:
        yield given
        return

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (containers, CI); harmless.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver  # imported here: only sessions that need a server pay for it

    data_dir = tmp_path_factory.mktemp("pgserver") / "data"
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_database(dsn: str, database: str) -> str:
    """``dsn`` with its database replaced (URL DSNs, which is what asyncpg takes)."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"{TEST_DSN_ENV} must be a postgresql:// URL")
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))


async def admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def temporary_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """DSN of a new empty database on ``server_dsn``'s server, dropped on exit.

    Made with asyncio.run, outside any trio run, so sync fixtures can use it.
    """
    # PostgreSQL truncates identifiers at 63 bytes; keep the random suffix whole.
    name = f"{re.sub(r'[^a-z0-9]+', '_', prefix.lower())[:40]}_{secrets.token_hex(4)}"
    asyncio.run(admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_dsn, name)
    finally:
        # FORCE terminates the sessions a test left open before dropping.
        asyncio.run(admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def pg_dsn(request: pytest.FixtureRequest, pg_server_dsn: str) -> Iterator[str]:
    """DSN of a fresh, empty database that lives as long as the test module."""
    with temporary_database(pg_server_dsn, request.module.__name__.rsplit(".", 1)[-1]) as dsn:
        yield dsn


@pytest.fixture
async def dsn(pg_dsn: str) -> AsyncIterator[str]:
    """The module's database with the source contract and schema jiancha, emptied."""
    from monitor import db
    from tests.sourcekit import prepare, reset

    async with db.open_loop():
        await prepare(pg_dsn)
        await reset(pg_dsn)
        yield pg_dsn


@pytest.fixture
def sync_dsn(pg_dsn: str) -> Iterator[str]:
    """Like ``dsn``, for plain test functions (a CLI command runs its own trio run)."""
    import trio

    from monitor import db
    from tests.sourcekit import prepare, reset

    async def setup() -> None:
        async with db.open_loop():
            await prepare(pg_dsn)
            await reset(pg_dsn)

    trio.run(setup)
    yield pg_dsn


@pytest.fixture(scope="session")
def cal() -> Any:
    """The national calendar (immutable: one for the session)."""
    from monitor.calendar import load_calendar

    return load_calendar("cn")


@pytest.fixture(scope="session")
def rules() -> Any:
    """The default rule set (rules/cards.toml)."""
    from monitor.rules.load import load_rules

    return load_rules("cards")


# Modules whose tests wait on jiancha's child processes in real time with tight bounds:
# watchdog pings, outages, SIGKILL at random instants, a card within a second of its
# instant. `make test` runs them alone, after the rest ran on every core: on a busy
# machine (load 8 on 2 cores) three missed their waits beside another worker, and pass
# alone; the headless demo (12 s alone) ran past its 300 s beside another worker in CI.
# The other child-process tests (leader, failover, resilience) pass beside one.
SERIAL_MODULES = frozenset({
    "tests/deploy/test_systemd.py", "tests/test_outage.py", "tests/test_worker.py",
    "tests/test_worker_torture.py", "tests/whatif/test_demo.py",
})  # fmt: skip


@pytest.fixture
def copied_tables(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables every binary COPY of the test went into (``db.Connection.copy_records``)."""
    from monitor import db

    copied: list[str] = []
    copy = db.Connection.copy_records

    async def spying(self: db.Connection, table: str, records: Any, **kw: Any) -> str:
        copied.append(table)
        return await copy(self, table, records, **kw)

    monkeypatch.setattr(db.Connection, "copy_records", spying)
    return copied


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
