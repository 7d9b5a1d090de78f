"""The sessions jiancha opens: the approval database's read-only and time-limited, its own writable.

Against a real PostgreSQL: what the server says the session's settings are,
and what it does with a write or a long statement.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from monitor import db
from monitor.config import ConfigError, load_config
from monitor.daemon import DaemonConfig

KEEPALIVES = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")


async def _client_settings(conn: db.Connection) -> dict[str, str]:
    """The settings this session asked for at startup (pg_settings.source = 'client')."""
    rows = await conn.fetch("SELECT name, setting FROM pg_settings WHERE source = 'client'")
    return {r["name"]: r["setting"] for r in rows}


async def test_the_source_session_refuses_writes_and_times_out(pg_dsn: str) -> None:
    async with db.open_loop():
        async with await db.connect(pg_dsn) as own:  # jiancha's own session: writable
            await own.execute("CREATE TABLE IF NOT EXISTS approvals (n int)")
            assert await own.execute("INSERT INTO approvals VALUES (1)") == "INSERT 0 1"
            assert await own.fetchval("SHOW default_transaction_read_only") == "off"
            assert await own.fetchval("SHOW statement_timeout") == "0"
        async with await db.connect(pg_dsn, session=db.SOURCE_SESSION) as source:
            assert await source.fetchval("SHOW default_transaction_read_only") == "on"
            assert await source.fetchval("SHOW statement_timeout") == "1min"
            assert await source.fetchval("SELECT count(*) FROM approvals") == 1  # reads work
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError, match="read-only"):
                await source.execute("INSERT INTO approvals VALUES (2)")
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                async with source.transaction():
                    await source.execute("DELETE FROM approvals")
            settings = await _client_settings(source)
            # Asked for at startup; the server reads them as 0 on a Unix-domain socket.
            assert set(KEEPALIVES) <= set(settings)
            if (await source.fetchval("SELECT inet_server_addr()")) is not None:  # over TCP
                assert await source.fetchval("SHOW tcp_keepalives_idle") == "60"
        short = db.Session(read_only=True, statement_timeout=0.2)
        async with await db.connect(pg_dsn, session=short) as source:
            with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
                await source.execute("SELECT pg_sleep(5)")
            assert await source.fetchval("SELECT 1") == 1  # the session survives it
        async with await db.connect(pg_dsn) as own:
            assert await own.fetchval("SELECT count(*) FROM approvals") == 1


def _config(tmp_path: Path, text: str) -> DaemonConfig:
    path = tmp_path / "jiancha.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(str(path), environ={})
    return DaemonConfig(source_dsn="postgresql:///src", dsn="postgresql:///own", config=cfg)


async def test_configured_sessions_reach_the_tailer_and_the_server(pg_dsn, tmp_path) -> None:
    config = _config(tmp_path, '[database]\nsource_statement_timeout = "90s"\n'
                               'keepalives_idle = "2m"\nkeepalives_count = 3\n')  # fmt: skip
    worker = config.worker()
    assert worker.source_session == db.Session(
        read_only=True, statement_timeout=90.0, keepalives_idle=120, keepalives_count=3
    )
    assert worker.session.read_only is False and worker.session.statement_timeout == 0
    assert worker.session.keepalives_idle == 120
    async with db.open_loop(), await db.connect(pg_dsn, session=worker.source_session) as conn:
        settings = await _client_settings(conn)
        assert settings["statement_timeout"] == "90000"  # milliseconds
        assert settings["default_transaction_read_only"] == "on"
    # The defaults: 60 s on the source, keepalives after a minute of silence.
    default = _config(tmp_path, "").worker()
    assert default.source_session == db.SOURCE_SESSION
    assert (default.source_session.statement_timeout, default.source_session.read_only) == (
        60.0,
        True,
    )


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('[database]\nsource_statement_timeout = "soon"\n', 2, "source_statement_timeout"),
        ("[database]\n\nsource_statement_timeout = -5\n", 3, "source_statement_timeout"),
        ('[database]\nkeepalives_idle = "1.5s"\n', 2, "keepalives_idle"),
        ("[database]\nkeepalives_interval = 0\n", 2, "keepalives_interval"),
        ("[log]\nlevel = 'INFO'\n[database]\nkeepalives_count = 0\n", 4, "keepalives_count"),
    ],
)
def test_bad_session_settings_name_file_line_and_key(tmp_path, text, line, key) -> None:
    path = tmp_path / "jiancha.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), environ={})
    assert str(info.value).startswith(f"{path}:{line}: [database] {key}: "), str(info.value)


def test_our_end_of_a_tcp_session_sends_keepalives() -> None:
    """asyncpg sets none; over TCP jiancha's sessions probe a silent server (Unix sockets: no)."""
    import socket

    session = db.Session(keepalives_idle=45, keepalives_interval=7, keepalives_count=4)
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as client:
        assert client.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        session.keep_alive(client)
        assert client.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux
            got = [client.getsockopt(socket.IPPROTO_TCP, getattr(socket, name))
                   for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")]  # fmt: skip
            assert got == [45, 7, 4]
    left, right = socket.socketpair()  # a Unix-domain socket is left as it is
    with left, right:
        session.keep_alive(left)
        assert left.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


@pytest.mark.parametrize(
    ("dsn", "env", "read_only", "expected"),
    [
        ("postgresql://j@a:5432,b:5432/src?target_session_attrs=read-write", {}, True, "primary"),
        ("postgresql://j@a,b/src", {"PGTARGETSESSIONATTRS": "read-write"}, True, "primary"),
        # the DSN's own attribute wins over the environment's
        (
            "postgresql://j@a,b/src?target_session_attrs=any",
            {"PGTARGETSESSIONATTRS": "read-write"},
            True,
            None,
        ),
        ("postgresql://j@a,b/src?target_session_attrs=read-write", {}, False, None),
        ("postgresql://j@a,b/src?target_session_attrs=prefer-standby", {}, True, None),
        ("postgresql:///src", {}, True, None),
    ],
)
def test_a_read_only_session_asks_a_read_write_dsn_for_the_primary(dsn, env, read_only, expected):
    """read-write rejects a session started read-only on every host; the primary is meant.
    (A real primary and replica: tests/faults/test_failover.py.)"""
    session = db.Session(read_only=read_only)
    assert db.target_session_attrs(dsn, session, env) == expected
