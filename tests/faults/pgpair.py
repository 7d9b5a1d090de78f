"""A PostgreSQL primary and its physical streaming replica, for failover tests.

Debian's ``postgresql-15`` (``deploy/dev-deps.sh``), on loopback TCP ports,
no Unix sockets. PostgreSQL refuses to run as root; as root the servers run
as the system user ``pgserver`` (created by pgserver's own helper if absent,
the same mechanism the embedded test server uses). Asynchronous replication,
as most sites run it: a commit is acknowledged before the replica has it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "pgserver"  # pgserver's own system user when the tests run as root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One data directory and the port it listens on."""

    data: Path
    port: int
    user: str | None
    running: bool = False

    def run(self, *args: str, timeout: float = 60) -> str:
        """A PostgreSQL program of ``BIN`` as the servers' user; its output, or the log's tail."""
        done = subprocess.run([str(BIN / args[0]), *args[1:]], user=self.user, check=False,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            log = self.data.parent / f"{self.data.name}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{args}: {done.returncode}\n{done.stdout}{done.stderr}\n{tail}")
        return done.stdout

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start",
                 "-o", f"-p {self.port}")  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast``: sessions ended, WAL shipped to the replica first; ``immediate``: a crash."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def sql(self, statement: str) -> str:
        """Run one statement through psql; its unaligned output."""
        return self.run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-At", "-c", statement).strip()  # fmt: skip

    def promote(self) -> None:
        """End recovery: the replica becomes a primary and accepts writes (waits for it)."""
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")


@dataclass
class Pair:
    """A primary, a replica streaming from it, and a DSN naming both."""

    primary: Server
    replica: Server
    database: str = "approval"

    def dsn(self, *servers: Server, attrs: str | None = "read-write") -> str:
        """A libpq-style multi-host URL (asyncpg takes it) over ``servers`` (both by default)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in servers or (self.primary, self.replica))
        query = f"?target_session_attrs={attrs}" if attrs else ""
        return f"postgresql://postgres@{hosts}/{self.database}{query}"

    def detach(self) -> None:
        """The replica stops receiving WAL (as behind a broken link): from now on what the
        primary commits is acknowledged to its writers but never reaches the replica."""
        self.replica.sql("ALTER SYSTEM SET primary_conninfo = ''")
        self.replica.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while self.primary.sql("SELECT count(*) FROM pg_stat_replication") != "0":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica still streams")
            time.sleep(0.05)

    def stop_all(self) -> None:
        for s in (self.primary, self.replica):
            if s.running:
                with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                    s.stop("immediate")


def _as_user(base: Path) -> str | None:
    """The user the servers run as, with ``base`` theirs (None: the caller, not root)."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

    entry = ensure_user_exists(USER)
    ensure_prefix_permissions(base)
    os.chown(base, entry.pw_uid, entry.pw_gid)
    return USER


def make_pair(base: Path) -> Pair:
    """initdb a primary, start it, pg_basebackup a replica from it and start that."""
    if not (BIN / "postgres").exists():
        pytest.fail(f"{BIN}/postgres missing: Debian package postgresql-15 (deploy/dev-deps.sh)")
    base.mkdir(parents=True, exist_ok=True)
    user = _as_user(base)
    primary = Server(base / "primary", _free_port(), user)
    replica = Server(base / "replica", _free_port(), user)
    primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
    with (primary.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        # initdb's pg_hba.conf already trusts replication from 127.0.0.1
        conf.write(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "wal_level = replica\nmax_wal_senders = 5\nwal_keep_size = '256MB'\n"
            "hot_standby = on\nfsync = off\nsynchronous_commit = on\n"
            "max_connections = 60\nshared_buffers = '32MB'\n"
        )
    primary.start()
    primary.sql("CREATE DATABASE approval")
    primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast")  # fmt: skip
    replica.start()  # the port is given on its command line; standby.signal makes it a replica
    pair = Pair(primary, replica)
    _wait_streaming(pair)
    return pair


def _wait_streaming(pair: Pair, timeout: float = 30) -> None:
    sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pair.primary.sql(sql) == "1":
            return
        time.sleep(0.1)
    raise RuntimeError("the replica never streamed")
