"""The trio ⇄ asyncpg boundary against a real PostgreSQL, and the log setup."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
import structlog
import trio

from monitor import db, log

BEIJING = timezone(timedelta(hours=8))


async def test_round_trip_jsonb_and_timestamptz(pg_dsn: str) -> None:
    async with db.open_loop():
        async with await db.connect(pg_dsn) as conn:
            database = await conn.fetchval("SELECT current_database()")
            assert database != "postgres"
            assert database.startswith("test_db_")

            await conn.execute(
                "CREATE TEMP TABLE ev (id int PRIMARY KEY, payload jsonb NOT NULL,"
                " occurred_at timestamptz NOT NULL)"
            )
            rows = [
                (
                    1,
                    {"matter": "营业执照", "items": ["身份证", "章程"]},
                    datetime(2024, 2, 8, 2, tzinfo=UTC),
                ),
                (2, {"amount": 12.5, "free": False}, datetime(2024, 2, 8, 10, tzinfo=BEIJING)),
                (3, {}, datetime(2024, 12, 31, 23, 59, 59, 123456, tzinfo=UTC)),
            ]
            await conn.executemany("INSERT INTO ev VALUES ($1, $2, $3)", rows)

            got = await conn.fetch("SELECT id, payload, occurred_at FROM ev ORDER BY id")
            assert [tuple(r) for r in got] == rows  # aware datetimes compare as instants
            for record in got:
                assert isinstance(record["payload"], dict)
                assert isinstance(record["occurred_at"], datetime)
                assert record["occurred_at"].utcoffset() == timedelta(0)
            # Beijing 10:00 is the same instant as 02:00 UTC.
            assert got[1]["occurred_at"] == got[0]["occurred_at"]

            # Stored as jsonb proper, not as a JSON string, and Chinese intact.
            assert await conn.fetchval("SELECT jsonb_typeof(payload) FROM ev WHERE id = 1") == (
                "object"
            )
            assert await conn.fetchval("SELECT payload->>'matter' FROM ev WHERE id = 1") == (
                "营业执照"
            )
            row = await conn.fetchrow("SELECT count(*) AS n, max(id) AS top FROM ev")
            assert row is not None
            assert (row["n"], row["top"]) == (3, 3)
            assert await conn.fetchrow("SELECT 1 FROM ev WHERE id = 99") is None
            assert await conn.execute("DELETE FROM ev WHERE id = 3") == "DELETE 1"
        assert conn.is_closed()


async def test_transaction_commits_or_rolls_back(pg_dsn: str) -> None:
    async with db.open_loop(), await db.connect(pg_dsn) as conn:
        await conn.execute("CREATE TEMP TABLE t (n int)")

        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                _ = 1 / 0
        assert [r["n"] for r in await conn.fetch("SELECT n FROM t")] == [1]


async def test_trio_cancellation_cancels_the_query_and_rolls_back(pg_dsn: str) -> None:
    async with db.open_loop(), await db.connect(pg_dsn) as conn:
        await conn.execute("CREATE TEMP TABLE t (n int)")
        start = trio.current_time()
        with trio.move_on_after(0.3) as scope:
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (1)")
                await conn.execute("SELECT pg_sleep(30)")
        assert scope.cancelled_caught
        assert trio.current_time() - start < 10
        # The connection is still usable, and the insert did not survive.
        assert await conn.fetchval("SELECT count(*) FROM t") == 0


async def test_connect_needs_an_open_loop(pg_dsn: str) -> None:
    with pytest.raises(RuntimeError, match="open_loop"):
        await db.connect(pg_dsn)


def test_dsn_from_env_falls_back_to_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)
    assert db.dsn_from_env("source") is None
    assert db.dsn_from_env("jiancha") is None

    monkeypatch.setenv(db.SOURCE_DSN_ENV, "postgresql://ro@approval/sp")
    assert db.dsn_from_env("source") == "postgresql://ro@approval/sp"
    assert db.dsn_from_env("jiancha") == "postgresql://ro@approval/sp"

    monkeypatch.setenv(db.DSN_ENV, "")  # `JIANCHA_DSN=` in an EnvironmentFile means unset
    assert db.dsn_from_env("jiancha") == "postgresql://ro@approval/sp"

    monkeypatch.setenv(db.DSN_ENV, "postgresql://jc@own/jiancha")
    assert db.dsn_from_env("jiancha") == "postgresql://jc@own/jiancha"
    assert db.dsn_from_env("source") == "postgresql://ro@approval/sp"


def test_dsn_from_env_accepts_a_mapping() -> None:
    assert db.dsn_from_env("jiancha", {"JIANCHA_SOURCE_DSN": "postgresql://h/d"}) == (
        "postgresql://h/d"
    )


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_log_json_lines_keep_chinese_readable() -> None:
    out = io.StringIO()  # not a TTY, so JSON by default
    log.configure_logging(stream=out)
    log.get_logger("monitor.cards").info("亮黄牌", case="2024-0001", level="yellow")

    raw = out.getvalue()
    assert "亮黄牌" in raw
    assert "\\u" not in raw
    (line,) = _lines(out)
    assert line["event"] == "亮黄牌"
    assert line["logger"] == "monitor.cards"
    assert line["level"] == "info"
    assert line["case"] == "2024-0001"
    stamp = datetime.fromisoformat(str(line["timestamp"]))
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


@pytest.mark.usefixtures("restore_logging")
def test_log_redacts_secrets() -> None:
    out = io.StringIO()
    log.configure_logging(stream=out)
    log.get_logger("t").warning(
        "connecting",
        dsn="postgresql://jiancha:hunter2@db.example:5432/jiancha",
        secret="s3cr3t",
        api_token="t0k3n",
        url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key",
        secret_file="/etc/jiancha/ops.secret",
        idempotency_key="card-7:yellow",
    )
    raw = out.getvalue()
    for leaked in ("hunter2", "s3cr3t", "t0k3n", "wecom-key"):
        assert leaked not in raw
    (line,) = _lines(out)
    assert line["dsn"] == "postgresql://jiancha:***@db.example:5432/jiancha"
    assert line["secret"] == "***"
    assert line["api_token"] == "***"
    assert line["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
    # Where a secret is kept, and the outbox's idempotency key, are not secrets.
    assert line["secret_file"] == "/etc/jiancha/ops.secret"
    assert line["idempotency_key"] == "card-7:yellow"


def test_redact_secrets_is_a_plain_processor() -> None:
    event = {
        "event": "retry postgresql://u:pw@h/d",
        "password": "x",
        "conninfo": "host=db password=x dbname=y",
        "channels": {"ops": {"secret": "x", "kind": "webhook"}},
        "none_key": None,
    }
    assert log.redact_secrets(None, "info", event) == {
        "event": "retry postgresql://u:***@h/d",
        "password": "***",
        "conninfo": "host=db password=*** dbname=y",
        "channels": {"ops": {"secret": "***", "kind": "webhook"}},
        "none_key": None,
    }


@pytest.mark.usefixtures("restore_logging")
def test_log_level_stdlib_records_and_idempotence() -> None:
    out = io.StringIO()
    log.configure_logging("warning", stream=out)
    log.configure_logging("WARNING", stream=out)  # again: no second handler
    ours = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is out]
    assert len(ours) == 1

    logger = log.get_logger("t")
    logger.info("dropped")
    logger.warning("kept")
    logging.getLogger("asyncpg.pool").warning("lost %s", "postgresql://u:pw@h/d")
    assert [(x["event"], x["logger"], x["level"]) for x in _lines(out)] == [
        ("kept", "t", "warning"),
        ("lost postgresql://u:***@h/d", "asyncpg.pool", "warning"),
    ]

    with pytest.raises(ValueError, match="unknown log level"):
        log.configure_logging("LOUD", stream=out)


@pytest.mark.usefixtures("restore_logging")
def test_console_renderer_when_asked() -> None:
    out = io.StringIO()
    log.configure_logging(json=False, stream=out)
    log.get_logger("t").info("受理", password="pw1")
    raw = out.getvalue()
    assert "受理" in raw
    assert "pw1" not in raw
    assert "\x1b[" not in raw  # no colours on a non-terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_format_follows_the_stream_json_for_journald_readable_on_a_terminal() -> None:
    """`jiancha run` under systemd writes JSON lines; on an operator's terminal, text."""
    piped, tty = io.StringIO(), _Terminal()
    log.configure_logging(stream=piped)
    log.get_logger("monitor.evaluator").info("card_issued", case="C1", card=7, took_ms=1.5)
    record = _lines(piped)[0]
    assert (record["event"], record["case"], record["card"], record["took_ms"]) == (
        "card_issued", "C1", 7, 1.5
    )  # fmt: skip
    log.configure_logging(stream=tty)
    log.get_logger("monitor.evaluator").info("card_issued", case="C1", card=7)
    raw = tty.getvalue()
    assert "\x1b[" in raw  # colours for people
    plain = re.sub(r"\x1b\[[0-9;]*m", "", raw)
    assert "card_issued" in plain and "case=C1" in plain and "card=7" in plain
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


def test_only_finds_one_kind_of_error_even_inside_groups():
    key = asyncpg.UniqueViolationError("dup")
    key.constraint_name = "events_pkey"  # as asyncpg sets it from the server's message
    other_key = asyncpg.UniqueViolationError("dup")
    other_key.constraint_name = "cards_once"
    assert db.only(key, asyncpg.UniqueViolationError, constraint="events_pkey") is key
    assert db.only(other_key, asyncpg.UniqueViolationError, constraint="events_pkey") is None
    nested = BaseExceptionGroup("n", [ExceptionGroup("inner", [key])])
    assert db.only(nested, asyncpg.UniqueViolationError, constraint="events_pkey") is key
    mixed = ExceptionGroup("m", [key, ValueError("x")])
    assert db.only(mixed, asyncpg.UniqueViolationError) is None
    assert db.only(ValueError("x"), (OSError, ValueError)) is not None


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (asyncpg.NumericValueOutOfRangeError("integer out of range"),
         "SQLSTATE 22003: integer out of range"),
        (asyncpg.ProgramLimitExceededError("index row size 8224 exceeds btree maximum"),
         "SQLSTATE 54000"),
        (asyncpg.RaiseError("refused by a trigger"), "SQLSTATE P0001: refused by a trigger"),
        (asyncpg.CheckViolationError("violates check constraint"), "SQLSTATE 23514"),
        # asyncpg refusing to send a value is the same class, 22000
        (asyncpg.DataError("value out of int32 range"), "SQLSTATE 22000: value out of int32"),
        (OverflowError("int too large to convert to float"), "OverflowError"),
        (ExceptionGroup("nursery", [ValueError("bad")]), "ValueError: bad"),
        # the server's state, the driver, the loop, cancellation: no row is to blame
        (asyncpg.InsufficientPrivilegeError("permission denied"), None),
        (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), None),
        (asyncpg.DiskFullError("no space left"), None),
        (asyncpg.SerializationError("could not serialize"), None),
        (asyncpg.DeadlockDetectedError("deadlock"), None),
        (asyncpg.AdminShutdownError("terminating connection"), None),
        (asyncpg.ConnectionDoesNotExistError("closed"), None),
        (asyncpg.InterfaceError("another operation is in progress"), None),
        (ConnectionResetError(), None),
        (RuntimeError("Event loop is closed"), None),
        (MemoryError(), None),
        (KeyboardInterrupt(), None),
        (ExceptionGroup("nursery", [ValueError("bad"), KeyError("k")]), "ValueError: bad"),
        (BaseExceptionGroup("nursery", [ValueError("bad"), KeyboardInterrupt()]), None),
    ],
)  # fmt: skip
def test_data_error_blames_the_data_only_for_what_the_data_causes(exc, says):
    got = db.data_error(exc)
    if says is None:
        assert got is None
    else:
        assert got is not None and got.startswith(says), got


@pytest.mark.usefixtures("restore_logging")
def test_a_terminals_traceback_shows_no_locals() -> None:
    """On a terminal (the console renderer) a logged exception's traceback is plain: rich's,
    the default where it is installed, prints each frame's locals past every redaction."""
    out = io.StringIO()
    log.configure_logging(stream=out, json=False)

    def connect() -> None:
        dsn = "postgresql://jiancha:hunter2@db.example/jiancha"  # a local, never logged
        raise IndexError(f"list index out of range ({len(dsn)})")

    try:
        connect()
    except IndexError as exc:
        log.get_logger("t").error("cases_not_decided", exc_info=exc)
    raw = out.getvalue()
    assert "Traceback (most recent call last)" in raw and "IndexError: list index" in raw
    assert "hunter2" not in raw
