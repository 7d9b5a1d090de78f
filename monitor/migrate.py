"""Versioned schema ``jiancha`` and the source contract, applied from ``.sql`` files.

Schema ``jiancha`` is built by numbered migrations (``monitor/sql/migrations/
NNNN_name.sql``), each applied once, in order, in its own transaction
together with its row in ``jiancha.schema_migrations``. A PostgreSQL advisory
lock serialises concurrent runs (two daemons upgrading at once, or a daemon
and an operator), so each migration is applied exactly once. A database that
is ahead of this jiancha, or whose applied migrations differ from the files,
is refused rather than guessed at. A migration runs inside that transaction,
so it must not contain BEGIN/COMMIT or ``CREATE INDEX CONCURRENTLY``.
``deploy/sql/schema.sql`` is the schema as it stands after all migrations,
kept equal to them by a test.

``install_source`` applies ``deploy/sql/source.sql`` (the source contract),
which is idempotent by construction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import trio

from monitor import db, paths
from monitor.db import Connection
from monitor.i18n import t
from monitor.log import get_logger

__all__ = [
    "MIGRATION_LOCK_KEY",
    "SOURCE_LOCK_KEY",
    "AppliedMigration",
    "Migration",
    "MigrationError",
    "SchemaNotReady",
    "SchemaStatus",
    "applied_migrations",
    "install_source",
    "load_migrations",
    "migrate",
    "not_current",
    "problems",
    "schema_problem",
    "schema_status",
]

# Advisory lock keys (bigint): "jiancha" followed by a byte naming the job. In
# pg_locks (locktype advisory) they show as classid 1785291118 with objid
# 1667784961 (migrate) or 1667784962 (install-source).
MIGRATION_LOCK_KEY: Final = int.from_bytes(b"jiancha\x01", "big")
SOURCE_LOCK_KEY: Final = int.from_bytes(b"jiancha\x02", "big")

_FILE_NAME: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_log = get_logger(__name__)


class MigrationError(Exception):
    """The schema cannot be brought to this jiancha's version safely."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One ``NNNN_name.sql`` file."""

    version: int
    name: str
    path: Path
    sql: str
    checksum: str  # sha256 hex of the text with LF line ends

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """One row of ``jiancha.schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: dt.datetime

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema ``jiancha`` stands against the known migrations."""

    applied: tuple[AppliedMigration, ...]
    known: tuple[Migration, ...]
    initialised: bool  # jiancha.schema_migrations exists

    @property
    def current(self) -> int | None:
        """The highest applied version, or None when nothing is applied."""
        return max((a.version for a in self.applied), default=None)

    @property
    def newest_known(self) -> int:
        return max((m.version for m in self.known), default=0)

    @property
    def pending(self) -> tuple[Migration, ...]:
        done = {a.version for a in self.applied}
        return tuple(m for m in self.known if m.version not in done)

    @property
    def problems(self) -> tuple[str, ...]:
        """Why ``migrate`` would refuse this database (empty when it would not)."""
        return tuple(problems(self.applied, self.known))


def not_current(status: SchemaStatus) -> str | None:
    """Why the daemon must not run on this schema (absent, behind, or one `migrate` would
    refuse), or None: its statements name tables and columns of the newest version."""
    if status.problems:
        return "; ".join(status.problems)
    if not status.pending:
        return None
    if status.current is None:
        return t("migrate.absent")
    return t("migrate.behind", current=status.current, newest=status.newest_known)


def _checksum(text: str) -> str:
    # A checkout with CRLF line ends (git autocrlf on Windows) is not an edit.
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def load_migrations(directory: Path | None = None) -> tuple[Migration, ...]:
    """The migrations in ``directory`` (default: the shipped ones), by version.

    Every ``*.sql`` file must be named ``NNNN_name.sql``; versions start at 1
    and have no gaps, so a file lost in packaging is noticed here rather than
    in a half-built schema.
    """
    folder = paths.migrations_dir() if directory is None else directory
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(t("migrate.bad_name", file=str(path)))
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                t("migrate.duplicate", version=version, a=found[version].path.name, b=path.name)
            )
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match["name"], path, sql, _checksum(sql))
    for expected, version in enumerate(sorted(found), start=1):
        if version != expected:
            raise MigrationError(t("migrate.gap", version=expected, folder=str(folder)))
    return tuple(found[v] for v in sorted(found))


def problems(applied: Sequence[AppliedMigration], known: Sequence[Migration]) -> list[str]:
    """Why a database with ``applied`` must not be migrated with ``known`` (pure).

    Refused: a database ahead of the newest known migration (an older jiancha
    must not run against a newer schema), an applied version this jiancha has
    no file for, and an applied migration whose file has changed since.
    """
    by_version = {m.version: m for m in known}
    newest = max(by_version, default=0)
    found: list[str] = []
    current = max((a.version for a in applied), default=0)
    if current > newest:
        found.append(t("migrate.too_new", db_version=current, known_version=newest))
    for row in sorted(applied, key=lambda a: a.version):
        migration = by_version.get(row.version)
        if migration is None:
            if row.version <= newest:
                found.append(t("migrate.unknown_applied", version=row.version, name=row.name))
        elif migration.checksum != row.checksum:
            found.append(t("migrate.checksum", label=migration.label, file=str(migration.path)))
    return found


async def _ledger_exists(conn: Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass('jiancha.schema_migrations') IS NOT NULL"))


async def applied_migrations(conn: Connection) -> tuple[AppliedMigration, ...]:
    """The rows of ``jiancha.schema_migrations`` (none when it does not exist)."""
    if not await _ledger_exists(conn):
        return ()
    rows = await conn.fetch(
        "SELECT version, name, checksum, applied_at FROM jiancha.schema_migrations ORDER BY version"
    )
    return tuple(
        AppliedMigration(r["version"], r["name"], r["checksum"], r["applied_at"]) for r in rows
    )


async def schema_status(
    conn: Connection, migrations: Sequence[Migration] | None = None
) -> SchemaStatus:
    """Applied, known and pending migrations; reads only, changes nothing."""
    known = tuple(load_migrations() if migrations is None else migrations)
    initialised = await _ledger_exists(conn)
    applied = await applied_migrations(conn) if initialised else ()
    return SchemaStatus(applied=applied, known=known, initialised=initialised)


async def migrate(conn: Connection, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply every migration the database lacks, in order; return their versions.

    Each migration commits with its ledger row, under a transaction-level
    advisory lock, and the ledger is re-read under that lock, so concurrent
    callers apply each migration once and a failure leaves the database at
    the last version that committed. Running it again applies nothing.
    Raises `MigrationError` (nothing applied) for a database it must refuse,
    and when a migration's SQL fails (that migration rolled back).
    """
    known = tuple(load_migrations() if migrations is None else migrations)
    done: list[int] = []
    while True:
        started = time.monotonic()
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            if not await _ledger_exists(conn):
                await conn.execute(_bootstrap_sql())
            applied = await applied_migrations(conn)
            found = problems(applied, known)
            if found:
                raise MigrationError("; ".join(found))
            status = SchemaStatus(applied=applied, known=known, initialised=True)
            if not status.pending:
                break
            step = status.pending[0]
            try:
                await conn.execute(step.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    t("migrate.failed", label=step.label, detail=_one_line(exc))
                ) from exc
            await conn.execute(
                "INSERT INTO jiancha.schema_migrations (version, name, checksum)"
                " VALUES ($1, $2, $3)",
                step.version,
                step.name,
                step.checksum,
            )
        done.append(step.version)
        _log.info(
            "schema migration applied",
            version=step.version,
            name=step.name,
            seconds=round(time.monotonic() - started, 3),
        )
    _log.info("schema up to date", version=status.current, applied=done)
    return done


async def install_source(conn: Connection, path: Path | None = None) -> None:
    """Create or refresh the source contract (``deploy/sql/source.sql``) in one transaction.

    The file is idempotent; the advisory lock only keeps two concurrent runs
    from racing on ``CREATE ... IF NOT EXISTS``.
    """
    sql_path = paths.source_sql() if path is None else path
    sql = sql_path.read_text(encoding="utf-8")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SOURCE_LOCK_KEY)
        await conn.execute(sql)
    _log.info("source contract installed", file=str(sql_path))


def _bootstrap_sql() -> str:
    return (paths.sql_dir() / "bootstrap.sql").read_text(encoding="utf-8")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class SchemaNotReady(Exception):
    """The database's jiancha schema is not the one this jiancha needs (``str``: why, and
    what to run); `jiancha run` says so in one line and exits 1."""


async def schema_problem(dsn: str, wait: float = 5.0) -> str | None:
    """Why the jiancha schema at ``dsn`` is not ready for this jiancha, or None.

    None too when the database does not answer within ``wait`` seconds: an outage is
    the daemon's to ride out, so it starts anyway and waits for the database.
    """
    async with db.open_loop():
        with trio.move_on_after(wait):
            try:
                conn = await db.connect(dsn, timeout=wait, application_name="jiancha-preflight")
            except (*db.DISCONNECTS, asyncpg.PostgresError, TimeoutError):
                return None
            async with conn:
                try:
                    return not_current(await schema_status(conn))
                except MigrationError as exc:  # the installed migrations themselves
                    return str(exc)
                except (*db.DISCONNECTS, asyncpg.PostgresError):
                    return None  # not readable here: the components say what fails, as before
    return None
