"""Outages under systemd's watchdog (issue 17, item 3): real process, real NOTIFY_SOCKET.

The daemon reaches PostgreSQL through a TCP forwarder the test cuts
(``tests.proxykit``): every session drops and new ones are refused, as when the
server restarts or fails over, while the test keeps writing events directly.

- A 30 s outage with the watchdog on: the pings go on (no gap as long as
  ``WATCHDOG_USEC``), the process stays, ``jiancha_database_up`` is 0, and the
  events written during it are all applied afterwards. (5 minutes:
  ``tests/bench/bench_outage.py``.)
- Started while the database is away: READY=1 all the same, STATUS= says it
  waits for the database, metrics answer, the watchdog is fed.
- A task that hangs (its transaction waits on a lock the test holds) stops the
  pings; they come back when it moves again.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trio

from monitor import db
from monitor.state import store as state_store
from tests.proxykit import Proxy
from tests.sourcekit import SUBMITTED, Daemon, at, last_position, write

WATCHDOG_USEC = 6_000_000  # systemd's WatchdogSec=6s: a ping every 3 s, none missing


@dataclass
class NotifySocket:
    """``$NOTIFY_SOCKET`` as systemd binds it: a Unix datagram socket; what came, and when."""

    path: str
    seen: list[tuple[float, str]] = field(default_factory=list)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with sock:
            await sock.bind(self.path)
            task_status.started()
            while True:
                data = await sock.recv(65536)
                now = trio.current_time()
                self.seen.extend((now, line) for line in data.decode().splitlines())

    def lines(self, prefix: str, since: float = 0.0) -> list[tuple[float, str]]:
        return [(t, m) for t, m in self.seen if m.startswith(prefix) and t >= since]

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, _ in self.lines("WATCHDOG=1", since)]

    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}

    async def wait(self, prefix: str, timeout: float = 30.0, since: float = 0.0) -> str:
        with trio.fail_after(timeout):
            while not (got := self.lines(prefix, since)):
                await trio.sleep(0.05)
        return got[0][1]


def max_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] without a ping."""
    marks = [start, *[t for t in times if start <= t <= end], end]
    return max(b - a for a, b in itertools.pairwise(marks))


@pytest.fixture
async def source(dsn: str) -> str:
    """The module's database, emptied, with the source contract and schema jiancha."""
    return dsn


@pytest.fixture
async def proxy(source: str, nursery: trio.Nursery) -> Proxy:
    p = Proxy(source)
    await nursery.start(p.serve)
    return p


@pytest.fixture
async def notify_socket(tmp_path: Path, nursery: trio.Nursery) -> NotifySocket:
    ns = NotifySocket(str(tmp_path / "notify.sock"))
    await nursery.start(ns.run)
    return ns


def start_daemon(proxy: Proxy, ns: NotifySocket, tmp_path: Path, name: str,
                 stuck_after: str = "5s") -> Daemon:  # fmt: skip
    conf = tmp_path / f"{name}.toml"
    conf.write_text(f'[daemon]\nstuck_after = "{stuck_after}"\n', encoding="utf-8")
    command = ("-m", "monitor", "run", "--config", str(conf), "--poll-interval", "0.1",
               "--metrics-address", "127.0.0.1:0")  # fmt: skip
    return Daemon(proxy.url(), tmp_path / f"{name}.log", command, env=ns.env())


_UP = re.compile(r"^jiancha_database_up (\S+)$", re.MULTILINE)


async def database_up(http: httpx.AsyncClient, url: str, daemon: Daemon) -> float:
    assert daemon.proc.poll() is None, f"the daemon exited:\n{daemon.output()[-4000:]}"
    m = _UP.search((await http.get(url)).text)
    assert m is not None
    return float(m[1])


def cases(prefix: str, n: int) -> list[tuple[str, str, object, dict[str, str]]]:
    """n cases, each submitted and accepted (two events)."""
    rows: list[tuple[str, str, object, dict[str, str]]] = []
    for i in range(n):
        rows += [(f"{prefix}{i}", "submitted", at(0), SUBMITTED), (f"{prefix}{i}", "accepted",
                 at(1), {})]  # fmt: skip
    return rows


async def all_applied(conn: db.Connection, timeout: float) -> float:
    """Seconds until jiancha's cursor stands at the last committed event and all are stored."""
    began = trio.current_time()
    with trio.fail_after(timeout):
        while True:
            cursor = await state_store.load_cursor(conn)
            if cursor == await last_position(conn):
                break
            await trio.sleep(0.1)
    written = await conn.fetchval("SELECT count(*) FROM case_events")
    assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == written
    return trio.current_time() - began


async def ride_out(source: str, proxy: Proxy, ns: NotifySocket, tmp_path: Path,
                   outage: float) -> str:  # fmt: skip
    """The daemon through an outage of ``outage`` seconds; returns what it measured."""
    daemon = start_daemon(proxy, ns, tmp_path, "outage")
    try:
        ready = await daemon.wait_for("ready", timeout=60)
        url = f"http://{ready['metrics']}/metrics"
        async with httpx.AsyncClient(timeout=10) as http, await db.connect(source) as conn:
            await write(conn, cases("A", 20))
            await all_applied(conn, 30)
            assert await database_up(http, url, daemon) == 1.0
            mark = len(daemon.records())
            proxy.cut()
            cut_at = trio.current_time()
            with trio.fail_after(15):  # the next snapshot (every 5 s) finds it gone
                while await database_up(http, url, daemon) != 0.0:
                    await trio.sleep(0.2)
            scrapes, written = 0, 0
            while trio.current_time() - cut_at < outage:
                assert await database_up(http, url, daemon) == 0.0
                scrapes += 1
                if written < 40:  # events keep coming while jiancha cannot reach them
                    await write(conn, cases(f"B{written}-", 1))
                    written += 1
                await trio.sleep(1.0)
            down = await ns.wait("STATUS=数据库未连接", since=cut_at)
            proxy.restore()
            back_at = trio.current_time()
            caught_up = await all_applied(conn, 60)
            with trio.fail_after(15):  # the next snapshot (every 5 s) finds it back
                while await database_up(http, url, daemon) != 1.0:
                    await trio.sleep(0.2)
        gap = max_gap(ns.pings(), cut_at, back_at)
        assert gap < WATCHDOG_USEC / 1e6, f"{gap:.1f} s without a ping: systemd would abort"
        assert daemon.proc.poll() is None, "the daemon exited during the outage"
        records = daemon.records()[mark:]
        assert any(r["event"] == "source_disconnected" for r in records)
        assert not any(r["event"] == "task_stuck" for r in records), "an outage is not a hang"
        return (f"outage {outage:.0f} s: {len(ns.pings(cut_at)) - len(ns.pings(back_at))} "
                f"watchdog pings, longest gap {gap:.1f} s "
                f"(WatchdogSec {WATCHDOG_USEC / 1e6:.0f} s); {scrapes} scrapes said "
                f"jiancha_database_up 0; {written} cases written during it, all applied "
                f"{caught_up:.1f} s after it ended; {proxy.refused} connections refused; "
                f"STATUS: {down[7:]}")  # fmt: skip
    finally:
        daemon.stop()


@pytest.mark.slow
async def test_watchdog_pings_on_through_a_30_second_outage(source, proxy, notify_socket,
                                                            tmp_path):  # fmt: skip
    began = time.monotonic()
    figures = await ride_out(source, proxy, notify_socket, tmp_path, 30.0)
    print(f"\n{figures}; {time.monotonic() - began:.1f} s in all")


async def test_ready_while_the_database_is_away(source, proxy, notify_socket, tmp_path):
    """Started during an outage: READY=1, STATUS= waiting, metrics, pings; then it works."""
    proxy.cut()
    daemon = start_daemon(proxy, notify_socket, tmp_path, "startup")
    try:
        started = await daemon.wait_for("started", timeout=60)
        await notify_socket.wait("READY=1")
        status = notify_socket.lines("STATUS=")[0][1]
        assert status.startswith("STATUS=已启动，等待数据库"), status
        url = f"http://{started['metrics']}/metrics"
        async with httpx.AsyncClient(timeout=10) as http:
            assert await database_up(http, url, daemon) == 0.0
        t0 = trio.current_time()
        with trio.fail_after(20):
            while len(notify_socket.pings(t0)) < 3:
                await trio.sleep(0.1)
        assert not any(r["event"] == "ready" for r in daemon.records())
        async with await db.connect(source) as conn:
            await write(conn, cases("S", 5))
            proxy.restore()
            await daemon.wait_for("ready", timeout=30)
            await all_applied(conn, 30)
            async with httpx.AsyncClient(timeout=10) as http:
                with trio.fail_after(15):
                    while await database_up(http, url, daemon) != 1.0:
                        await trio.sleep(0.2)
    finally:
        daemon.stop()


async def test_a_stuck_task_stops_the_pings(source, proxy, notify_socket, tmp_path):
    """The worker's batch waits on a lock the test holds (a hang, not an outage): the pings
    stop and the log names the task; released, the pings come back and the batch commits."""
    daemon = start_daemon(proxy, notify_socket, tmp_path, "stuck", stuck_after="3s")
    try:
        await daemon.wait_for("ready", timeout=60)
        async with await db.connect(source) as locker, await db.connect(source) as conn:
            await locker.execute("BEGIN")
            # SHARE: writers of the cursor wait, and (unlike ACCESS EXCLUSIVE) it takes no
            # transaction id, which would hold the tailer's horizon back before the batch
            await locker.execute("LOCK TABLE jiancha.cursor IN SHARE MODE")
            await write(conn, cases("H", 3))
            stuck = await daemon.wait_for("task_stuck", timeout=30)
            assert stuck["tasks"] == ["worker"] and stuck["level"] == "error"
            stopped = trio.current_time()
            await trio.sleep(2 * WATCHDOG_USEC / 1e6)  # two ping periods: none may come
            assert notify_socket.pings(stopped + 0.5) == []  # (one may be on its way)
            assert daemon.proc.poll() is None
            await locker.execute("ROLLBACK")
            await daemon.wait_for("tasks_alive", timeout=30)
            released = trio.current_time()
            with trio.fail_after(WATCHDOG_USEC / 1e6 + 5):
                while not notify_socket.pings(released):
                    await trio.sleep(0.1)
            await all_applied(conn, 30)
    finally:
        daemon.stop()


def test_the_proxy_dsn_keeps_user_and_database():
    from tests.proxykit import _target, proxied

    dsn = "postgresql://postgres:@/jc_db?host=/tmp/pg.x/"
    assert _target(dsn) == ("/tmp/pg.x/.s.PGSQL.5432", None)
    assert proxied(dsn, 5555) == "postgresql://postgres:@127.0.0.1:5555/jc_db"
    assert _target("postgresql://u@db.example:6000/d") == ("db.example", 6000)
