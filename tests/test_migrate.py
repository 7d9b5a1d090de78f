"""Schema ``jiancha`` by migrations, its snapshot, and the source contract, on a real PostgreSQL.

Every test that changes a database gets one of its own (``fresh_dsn``,
``other_dsn``), made on the server of ``pg_dsn`` and dropped afterwards,
so the tests do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
import trio
import trio_asyncio

from monitor import db, paths
from monitor.cli import main
from monitor.migrate import (
    MIGRATION_LOCK_KEY,
    Migration,
    MigrationError,
    applied_migrations,
    install_source,
    load_migrations,
    migrate,
    problems,
    schema_status,
)
from tests.conftest import admin, temporary_database

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "jiancha_events_v1"


# --- databases ----------------------------------------------------------------


@pytest.fixture
def fresh_dsn(pg_dsn: str) -> Iterator[str]:
    with temporary_database(pg_dsn, "test_migrate_x") as dsn:
        yield dsn


@pytest.fixture
def other_dsn(pg_dsn: str) -> Iterator[str]:
    with temporary_database(pg_dsn, "test_migrate_x") as dsn:
        yield dsn


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    return folder


# --- catalog comparison ---------------------------------------------------------

# What makes two schemas "the same" for jiancha: every query reads the catalogs
# of schema jiancha only. Column order is compared by rank, not attnum, so a
# column dropped by a migration does not count as a difference.
_CATALOG: dict[str, str] = {
    "tables": """
        SELECT table_name, table_type FROM information_schema.tables
        WHERE table_schema = 'jiancha' ORDER BY 1""",
    "columns": """
        SELECT table_name,
               row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position) AS position,
               column_name, data_type, udt_name, column_default, is_nullable, is_identity,
               identity_generation, is_generated, generation_expression,
               character_maximum_length, numeric_precision, numeric_scale, collation_name
        FROM information_schema.columns
        WHERE table_schema = 'jiancha' ORDER BY table_name, position""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'jiancha' ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'jiancha' ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'jiancha' AND NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": r"""
        SELECT p.proname, pg_get_function_identity_arguments(p.oid),
               regexp_replace(pg_get_functiondef(p.oid), '\s+', ' ', 'g')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'jiancha' AND p.prokind IN ('f', 'p') ORDER BY 1, 2""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, minimum_value, maximum_value,
               increment, cycle_option
        FROM information_schema.sequences WHERE sequence_schema = 'jiancha' ORDER BY 1""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'jiancha' ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype, e.enumsortorder, e.enumlabel
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = 'jiancha' AND t.typtype IN ('e', 'd') ORDER BY 1, 3""",
}


async def _catalog(conn: db.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in _CATALOG.items()}


async def test_snapshot_equals_the_migrations(fresh_dsn: str, other_dsn: str) -> None:
    migrated_dsn, snapshot_dsn = fresh_dsn, other_dsn
    snapshot = paths.schema_snapshot().read_text(encoding="utf-8")
    async with db.open_loop():
        async with await db.connect(migrated_dsn) as conn:
            await migrate(conn)
            by_migrations = await _catalog(conn)
        async with await db.connect(snapshot_dsn) as conn:
            await conn.execute(snapshot)
            by_snapshot = await _catalog(conn)

    tables = {row[0] for row in by_migrations["tables"]}
    assert {"schema_migrations", "cursor", "events", "cases", "dead_letters"} <= tables
    assert by_migrations["indexes"] and by_migrations["constraints"]
    for part in _CATALOG:
        assert by_snapshot[part] == by_migrations[part], f"schema.sql differs in {part}"


async def test_catalog_comparison_sees_a_difference(fresh_dsn: str, other_dsn: str) -> None:
    """The comparison is not vacuous: a changed default or index shows up."""
    one, two = fresh_dsn, other_dsn
    ddl = "CREATE SCHEMA jiancha; CREATE TABLE jiancha.t (a int NOT NULL DEFAULT {d}, b text);"
    async with db.open_loop():
        async with await db.connect(one) as conn:
            await conn.execute(ddl.format(d=1))
            first = await _catalog(conn)
        async with await db.connect(two) as conn:
            await conn.execute(ddl.format(d=2) + "CREATE INDEX t_b ON jiancha.t (b);")
            second = await _catalog(conn)
    assert first["tables"] == second["tables"]
    assert first["columns"] != second["columns"]
    assert first["indexes"] != second["indexes"]


# --- migrations -------------------------------------------------------------------


def test_shipped_migrations_load_in_order() -> None:
    known = load_migrations()
    assert [m.version for m in known] == list(range(1, len(known) + 1))
    assert known[0].label == "0001_initial"
    assert all(re.fullmatch(r"[0-9a-f]{64}", m.checksum) for m in known)


def test_load_migrations_rejects_bad_folders(tmp_path: Path) -> None:
    good = _write(tmp_path / "good", {"0001_a.sql": "SELECT 1;\n", "README": "not sql"})
    assert [m.label for m in load_migrations(good)] == ["0001_a"]

    for files in (
        {"1_a.sql": ""},  # not NNNN_name.sql
        {"0001_a.sql": "", "0001_b.sql": ""},  # duplicate version
        {"0001_a.sql": "", "0003_c.sql": ""},  # 0002 lost
        {"0002_b.sql": ""},  # does not start at 1
    ):
        folder = _write(tmp_path / secrets.token_hex(4), files)
        with pytest.raises(MigrationError):
            load_migrations(folder)


def test_checksum_ignores_crlf_line_ends(tmp_path: Path) -> None:
    lf = _write(tmp_path / "lf", {"0001_a.sql": "SELECT 1;\nSELECT 2;\n"})
    crlf = _write(tmp_path / "crlf", {"0001_a.sql": "SELECT 1;\r\nSELECT 2;\r\n"})
    assert load_migrations(lf)[0].checksum == load_migrations(crlf)[0].checksum


async def test_migrate_builds_the_schema_and_a_rerun_applies_nothing(fresh_dsn: str) -> None:
    known = load_migrations()
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        status = await schema_status(conn)
        assert not status.initialised and status.current is None
        assert [m.version for m in status.pending] == [m.version for m in known]

        assert await migrate(conn) == [m.version for m in known]
        ledger = await applied_migrations(conn)
        assert [(a.version, a.name, a.checksum) for a in ledger] == [
            (m.version, m.name, m.checksum) for m in known
        ]
        assert await conn.fetchval("SELECT to_regclass('jiancha.cases') IS NOT NULL")

        assert await migrate(conn) == []
        assert await applied_migrations(conn) == ledger  # same rows, same applied_at
        status = await schema_status(conn)
        assert status.current == status.newest_known == known[-1].version
        assert status.pending == () and status.problems == ()


async def test_migrate_applies_only_the_new_migrations(tmp_path: Path, fresh_dsn: str) -> None:
    folder = _write(tmp_path, {"0001_a.sql": "CREATE TABLE jiancha.a (n int);"})
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        assert await migrate(conn, load_migrations(folder)) == [1]
        _write(
            folder,
            {
                "0002_b.sql": "CREATE TABLE jiancha.b (n int);",
                "0003_c.sql": "INSERT INTO jiancha.b VALUES (3);",
            },
        )
        assert await migrate(conn, load_migrations(folder)) == [2, 3]
        assert await conn.fetchval("SELECT n FROM jiancha.b") == 3


async def test_a_database_newer_than_known_is_refused(fresh_dsn: str) -> None:
    known = load_migrations()
    newest = known[-1].version
    newer = 9999
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO jiancha.schema_migrations (version, name, checksum)"
            " VALUES ($1, 'from_the_future', 'x')",
            newer,
        )
        with pytest.raises(MigrationError) as caught:
            await migrate(conn)
        message = str(caught.value)
        assert str(newer) in message and str(newest) in message

        status = await schema_status(conn)
        assert status.current == newer
        assert len(status.problems) == 1 and str(newer) in status.problems[0]


async def test_an_edited_migration_is_refused(tmp_path: Path, fresh_dsn: str) -> None:
    folder = _write(tmp_path, {"0001_first.sql": "CREATE TABLE jiancha.a (n int);"})
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        assert await migrate(conn, load_migrations(folder)) == [1]
        _write(
            folder,
            {
                "0001_first.sql": "CREATE TABLE jiancha.a (n bigint);",  # edited after release
                "0002_second.sql": "CREATE TABLE jiancha.b (n int);",
            },
        )
        with pytest.raises(MigrationError, match="0001_first"):
            await migrate(conn, load_migrations(folder))
        # Nothing was applied, not even the new migration.
        assert await conn.fetchval("SELECT to_regclass('jiancha.b')") is None
        assert [a.version for a in await applied_migrations(conn)] == [1]


def test_problems_is_a_pure_check() -> None:
    import datetime as dt

    def known(version: int, checksum: str) -> Migration:
        return Migration(
            version, f"m{version}", Path(f"{version:04d}_m{version}.sql"), "", checksum
        )

    def applied(version: int, checksum: str) -> Any:
        from monitor.migrate import AppliedMigration

        return AppliedMigration(version, f"m{version}", checksum, dt.datetime.now(dt.UTC))

    files = [known(1, "a"), known(2, "b")]
    assert problems([], files) == []
    assert problems([applied(1, "a")], files) == []
    assert len(problems([applied(1, "a"), applied(2, "b"), applied(3, "c")], files)) == 1
    assert len(problems([applied(1, "edited")], files)) == 1


async def test_a_failing_migration_rolls_back_alone(tmp_path: Path, fresh_dsn: str) -> None:
    folder = _write(
        tmp_path,
        {
            "0001_ok.sql": "CREATE TABLE jiancha.a (n int);",
            "0002_broken.sql": "CREATE TABLE jiancha.b (n int);\nSELECT 1 / 0;",
        },
    )
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        with pytest.raises(MigrationError, match="0002_broken") as caught:
            await migrate(conn, load_migrations(folder))
        assert isinstance(caught.value.__cause__, asyncpg.DivisionByZeroError)
        assert [a.version for a in await applied_migrations(conn)] == [1]
        assert await conn.fetchval("SELECT to_regclass('jiancha.a') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('jiancha.b')") is None


async def test_concurrent_migrations_apply_each_once(fresh_dsn: str) -> None:
    known = [m.version for m in load_migrations()]
    results: list[list[int]] = []

    async def run(conn: db.Connection) -> None:
        results.append(await migrate(conn))

    async with db.open_loop():
        holder = await db.connect(fresh_dsn)
        first = await db.connect(fresh_dsn)
        second = await db.connect(fresh_dsn)
        async with holder, first, second:
            # Hold the lock so that both runs are provably waiting on it at once.
            await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run, first)
                nursery.start_soon(run, second)
                with trio.fail_after(20):
                    while (
                        await holder.fetchval(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND NOT granted AND database ="
                            " (SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                        < 2
                    ):
                        await trio.sleep(0.02)
                await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
            # each migration applied by exactly one of the two (they may take turns)
            assert sorted(v for r in results for v in r) == known
            assert await holder.fetchval("SELECT count(*) FROM jiancha.schema_migrations") == len(
                known
            )


# --- the source contract ----------------------------------------------------------


async def _insert_events(conn: db.Connection, case_id: str, kinds: list[str]) -> None:
    for kind in kinds:
        await conn.execute(
            "INSERT INTO case_events (case_id, kind, occurred_at) VALUES ($1, $2, now())",
            case_id,
            kind,
        )


async def test_install_source_is_idempotent_and_read_only_for_jiancha(fresh_dsn: str) -> None:
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        await install_source(conn)
        await conn.execute(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days)"
            " VALUES ('m1', '营业执照', '市场监管局', 20, 5)"
        )
        await install_source(conn)  # again: nothing lost, nothing duplicated
        assert await conn.fetchval("SELECT count(*) FROM matters") == 1

        triggers = await conn.fetch(
            "SELECT tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger"
            " WHERE tgrelid = 'case_events'::regclass AND NOT tgisinternal ORDER BY tgname"
        )
        assert [t["tgname"] for t in triggers] == ["jiancha_notify_v1", "jiancha_tx_v1"]
        assert "AFTER INSERT" in triggers[0]["def"] and "FOR EACH STATEMENT" in triggers[0]["def"]
        index = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'case_events_tx_id_idx'"
        )
        assert index.endswith("(tx, id)")
        columns = await conn.fetch(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = 'case_events' ORDER BY ordinal_position"
        )
        assert [tuple(c) for c in columns] == [
            ("id", "bigint", "NO"),
            ("tx", "xid8", "NO"),
            ("case_id", "text", "NO"),
            ("kind", "text", "NO"),
            ("occurred_at", "timestamp with time zone", "NO"),
            ("payload", "jsonb", "NO"),
        ]

        role = await conn.fetchrow(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'jiancha_reader'"
        )
        assert role is not None and role["rolcanlogin"] is False
        for table in ("case_events", "matters"):
            assert await conn.fetchval(
                "SELECT has_table_privilege('jiancha_reader', $1, 'SELECT')", table
            )
            for write in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                assert not await conn.fetchval(
                    "SELECT has_table_privilege('jiancha_reader', $1, $2)", table, write
                )
        assert await conn.fetchval(
            "SELECT has_schema_privilege('jiancha_reader', current_schema(), 'USAGE')"
        )


async def test_one_notification_per_writing_transaction(fresh_dsn: str) -> None:
    got: list[str] = []

    def on_notify(_conn: object, _pid: int, channel: str, payload: str) -> None:
        # Runs in asyncio; the test polls the list from trio.
        assert channel == CHANNEL
        got.append(payload)

    async def wait_for(count: int) -> None:
        with trio.fail_after(10):
            while len(got) < count:
                await trio.sleep(0.02)
        await trio.sleep(0.3)  # time for a second notification, were there one

    async with db.open_loop():
        listener = await db.connect(fresh_dsn)
        writer = await db.connect(fresh_dsn)
        async with listener, writer:
            await install_source(writer)
            await trio_asyncio.aio_as_trio(listener.raw.add_listener)(CHANNEL, on_notify)

            # Three single-row statements in one transaction: one notification.
            async with writer.transaction():
                await _insert_events(writer, "c1", ["submitted", "accepted", "completed"])
                tx = await writer.fetchval("SELECT pg_current_xact_id()::text")
            await wait_for(1)
            assert got == [tx]

            # An insert of no rows says nothing; a three-row statement says it once.
            async with writer.transaction():
                await writer.execute(
                    "INSERT INTO case_events (case_id, kind, occurred_at)"
                    " SELECT 'c0', 'submitted', now() WHERE false"
                )
            async with writer.transaction():
                await writer.execute(
                    "INSERT INTO case_events (case_id, kind, occurred_at)"
                    " SELECT 'c2', k, now() FROM unnest(ARRAY['submitted', 'accepted',"
                    " 'refused']) AS k"
                )
                tx2 = await writer.fetchval("SELECT pg_current_xact_id()::text")
            await wait_for(2)
            assert got == [tx, tx2]
            assert await writer.fetchval("SELECT count(*) FROM case_events") == 6


async def test_writers_cannot_forge_tx(fresh_dsn: str) -> None:
    async with db.open_loop(), await db.connect(fresh_dsn) as conn:
        await install_source(conn)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO case_events (tx, case_id, kind, occurred_at)"
                " VALUES ('1'::xid8, 'c1', 'submitted', now()),"
                " ('99999999999'::xid8, 'c1', 'accepted', now())"
            )
            mine = await conn.fetchval("SELECT pg_current_xact_id()::text")
        rows = await conn.fetch("SELECT id, tx::text AS tx FROM case_events ORDER BY id")
        assert [r["tx"] for r in rows] == [mine, mine]

        await conn.execute("UPDATE case_events SET tx = '1'::xid8")
        assert await conn.fetchval("SELECT array_agg(DISTINCT tx::text) FROM case_events") == [mine]
        with pytest.raises(asyncpg.GeneratedAlwaysError):
            await conn.execute(
                "INSERT INTO case_events (id, case_id, kind, occurred_at)"
                " VALUES (1000, 'c1', 'completed', now())"
            )


# --- command line -----------------------------------------------------------------


@pytest.fixture
def no_dsn_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No DSN in the environment, Chinese messages, and logging put back afterwards.

    main() points the process-wide log configuration at the sys.stderr of the
    moment, which under capsys is closed when the test ends; later tests that
    log must not write there.
    """
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_cli_db_needs_a_dsn(
    no_dsn_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for command, names in (
        ("migrate", ["JIANCHA_DSN", "JIANCHA_SOURCE_DSN"]),  # the fallback is named too
        ("status", ["JIANCHA_DSN", "JIANCHA_SOURCE_DSN"]),
        ("install-source", ["JIANCHA_SOURCE_DSN"]),
    ):
        code, out = _run("db", command)
        err = capsys.readouterr().err
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "--dsn" in err
        assert all(name in err for name in names)


def test_cli_db_migrate_status_and_install_source(
    fresh_dsn: str, no_dsn_env: pytest.MonkeyPatch
) -> None:
    known = load_migrations()
    newest = known[-1].version

    code, out = _run("db", "status", "--dsn", fresh_dsn)
    assert code == 0
    assert "未初始化" in out and known[0].label in out

    code, out = _run("db", "migrate", "--dsn", fresh_dsn)
    assert code == 0
    assert "已应用迁移" in out and known[0].label in out

    # JIANCHA_DSN falls back to JIANCHA_SOURCE_DSN.
    no_dsn_env.setenv(db.SOURCE_DSN_ENV, fresh_dsn)
    code, out = _run("db", "migrate", "--json")
    assert code == 0
    assert json.loads(out) == {"applied": [], "current": newest}
    code, out = _run("db", "migrate")
    assert code == 0 and "已是最新版本" in out

    code, out = _run("db", "status", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["initialised"] is True
    assert doc["current"] == doc["newest_known"] == newest
    assert [a["version"] for a in doc["applied"]] == [m.version for m in known]
    assert doc["pending"] == [] and doc["problems"] == []

    code, out = _run("--lang", "en", "db", "install-source")
    assert code == 0 and "source contract installed" in out
    code, _ = _run("db", "install-source", "--dsn", fresh_dsn)
    assert code == 0


def test_cli_db_refuses_a_newer_database(
    fresh_dsn: str, no_dsn_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("db", "migrate", "--dsn", fresh_dsn)[0] == 0
    asyncio.run(
        admin(
            fresh_dsn,
            "INSERT INTO jiancha.schema_migrations (version, name, checksum)"
            " VALUES (9999, 'from_the_future', 'x')",
        )
    )
    capsys.readouterr()
    code, out = _run("db", "migrate", "--dsn", fresh_dsn)
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "9999" in err

    code, out = _run("db", "status", "--dsn", fresh_dsn)
    assert code == 1 and "9999" in out


def test_cli_db_unreachable_server_is_one_line(
    no_dsn_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run("db", "migrate", "--dsn", "postgresql://nobody:secret@127.0.0.1:1/none")
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert err.startswith("jiancha: 错误: 无法连接数据库") and err.count("\n") == 1
    assert "secret" not in err


# --- packaging ----------------------------------------------------------------------


def test_source_sql_is_found_in_a_checkout() -> None:
    assert paths.source_sql() == ROOT / "deploy" / "sql" / "source.sql"
    assert paths.source_sql().is_file()


# --- a schema that is not this jiancha's -----------------------------------------


def _run_daemon(dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JIANCHA_SOURCE_DSN": dsn, "JIANCHA_LANG": "zh"}
    env.pop("JIANCHA_DSN", None)
    env.pop("JIANCHA_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "monitor", "run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_daemon_refuses_a_schema_absent_or_behind_in_one_line(fresh_dsn: str) -> None:
    """It started, and its first statement failed inside a component: a 112-line
    traceback at every restart systemd made, naming no remedy."""
    got = _run_daemon(fresh_dsn)
    assert got.returncode == 1
    assert "jiancha: 错误: 数据库中还没有 jiancha 模式：请先运行 jiancha db migrate" in got.stderr
    assert "Traceback" not in got.stderr and '"event": "schema_not_ready"' in got.stdout
    known = load_migrations()

    async def to_five() -> None:
        async with db.open_loop(), await db.connect(fresh_dsn) as conn:
            await migrate(conn, known[:5])

    trio.run(to_five)
    got = _run_daemon(fresh_dsn)
    assert got.returncode == 1 and "Traceback" not in got.stderr
    assert f"jiancha 模式的版本为 5，本程序需要 {len(known)}" in got.stderr


def test_a_command_on_a_missing_table_says_what_to_run(
    fresh_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv("JIANCHA_DSN", raising=False)
    monkeypatch.setenv("JIANCHA_SOURCE_DSN", fresh_dsn)
    assert main(["cards", "list"], out=io.StringIO()) == 1
    assert "jiancha 模式未建立或版本过旧：请先运行 jiancha db migrate" in capsys.readouterr().err
    assert main(["evaluate", "--now", "2024-02-22T09:00"], out=io.StringIO()) == 1
    assert "审批数据库中没有源数据约定的表" in capsys.readouterr().err
