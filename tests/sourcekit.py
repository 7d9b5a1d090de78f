"""Shared test helpers: a source database with the contract, jiancha's schema, matters.

Also the pieces of the tests that run ``jiancha run`` as a child process and
stop its database under it: ``Daemon``, the ``own_server`` and
``reference_dsn`` fixtures (bind them in a test module, as with
``tests.httpkit.receiver``), and ``last_position`` of the source table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from monitor import db, migrate
from monitor.source.contract import START, Cursor

REPO = Path(__file__).resolve().parents[1]

MATTERS = [
    ("M1", "建筑工程施工许可", "住建局", 20, 5),
    ("M2", "食品经营许可", "市场监管局", 20, 10),
    ("M0", "个体工商户登记", "市场监管局", 20, 0),
]
T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)
SUBMITTED = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}


async def prepare(dsn: str) -> None:
    """Install the source contract, migrate jiancha's schema, load the matters."""
    async with await db.connect(dsn) as conn:
        await migrate.install_source(conn)
        await migrate.migrate(conn)
        await conn.executemany(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
            MATTERS,
        )


async def reset(dsn: str, *, source: bool = True) -> None:
    """Empty the source events (unless not ``source``) and everything jiancha derived."""
    async with await db.connect(dsn) as conn, conn.transaction():
        # The ledger refuses TRUNCATE (append-only); a test server's superuser may
        # switch triggers off for this transaction.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            f"TRUNCATE {'case_events, ' if source else ''}jiancha.events, jiancha.cases, "
            "jiancha.dead_letters, "
            "jiancha.cursor, jiancha.outbox_attempts, jiancha.outbox, jiancha.card_events, "
            "jiancha.cards, jiancha.web_sessions, jiancha.login_failures, jiancha.attachments, "
            "jiancha.report_files, jiancha.reports RESTART IDENTITY"
        )


async def write(
    conn: db.Connection, rows: Sequence[tuple[str, str, dt.datetime, dict[str, Any]]]
) -> None:
    """Insert (case_id, kind, occurred_at, payload) rows in one statement."""
    await conn.execute(
        "INSERT INTO case_events (case_id, kind, occurred_at, payload) "
        "SELECT c, k, o, p::jsonb FROM unnest($1::text[], $2::text[], $3::timestamptz[], "
        "$4::text[]) AS u(c, k, o, p)",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [json.dumps(r[3], ensure_ascii=False) for r in rows],
    )


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


_LAST = (
    "SELECT tx::text AS tx, id FROM case_events "
    "ORDER BY case_events.tx DESC, case_events.id DESC LIMIT 1"
)


async def last_position(conn: db.Connection) -> Cursor:
    """The largest committed (tx, id) of ``case_events``: where a caught-up cursor stands."""
    row = await conn.fetchrow(_LAST)
    return START if row is None else Cursor(int(row["tx"]), int(row["id"]))


async def run_until(worker: Any, end: Cursor, timeout: float = 30.0, poll: float = 0.02) -> None:
    """Run a `monitor.worker.Worker`, woken until its cursor reaches ``end``, then stop it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.run)
        with trio.fail_after(timeout):
            while worker.stats.cursor < end:
                worker.wake()
                await trio.sleep(poll)
        nursery.cancel_scope.cancel()


# --- the daemon as a child process, and servers to run it against ------------------------


class Daemon:
    """``jiancha run`` as a child process, its output (JSON log lines) in a file.

    ``python -m monitor run`` by default; ``command`` gives another entry point,
    e.g. ``("-m", "monitor", "run", "--config", ...)``.
    """

    def __init__(
        self, dsn: str, log: Path, command: Sequence[str] = ("-m", "monitor", "run"),
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.log = log
        env = {**os.environ, "JIANCHA_SOURCE_DSN": dsn, "JIANCHA_DSN": dsn, **(env or {})}
        env.pop("JIANCHA_CONFIG", None)  # only what the test gives
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *command],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The log lines that are JSON objects, in order (a traceback's lines are not)."""
        out = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    async def wait_for(
        self, event: str, timeout: float = 20.0, *, after: int = 0
    ) -> dict[str, Any]:
        """The first log record of ``event`` (at or after index ``after`` of ``records``)."""
        with trio.fail_after(timeout):
            while True:
                for record in self.records()[after:]:
                    if record.get("event") == event:
                        return record
                if self.proc.poll() is not None:
                    raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
                await trio.sleep(0.01)

    async def wait(self, timeout: float = 20.0) -> int:
        with trio.fail_after(timeout):
            while self.proc.poll() is None:
                await trio.sleep(0.01)
        return self.proc.returncode

    def stop(self) -> None:
        """SIGKILL (no cleanup: the transaction in flight never commits), if still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], str]]]:
    """A PostgreSQL server of the test's own, which it may stop and start: (dsn, stop, start).

    Always a pgserver, even with JIANCHA_TEST_DSN: the test must control the
    server. pgserver starts it again on the same Unix socket (the socket
    directory is derived from the data directory, the port is the default), so
    clients reconnect with the very same DSN.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    data = tmp_path / "pg"
    box: dict[str, Any] = {"server": pgserver.get_server(data, cleanup_mode="stop")}

    def stop() -> None:
        box["server"].cleanup()  # pg_ctl -w stop (fast: sessions are terminated)

    def start() -> str:
        box["server"] = pgserver.get_server(data, cleanup_mode="stop")
        return str(box["server"].get_uri())

    try:
        yield box["server"].get_uri(), stop, start
    finally:
        box["server"].cleanup()


@pytest.fixture
async def reference_dsn(dsn: str, pg_server_dsn: str) -> AsyncIterator[str]:
    """A second fresh, empty database on the test server, for an uninterrupted run."""
    from tests.conftest import with_database

    name = f"reference_{secrets.token_hex(4)}"
    async with await db.connect(pg_server_dsn) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_server_dsn, name)
    finally:
        async with await db.connect(pg_server_dsn) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
