"""The /metrics server under hostile clients: idle sockets, slow headers, stalled handshakes.

Real sockets on 127.0.0.1 against the real server; the deadline is shortened
to 2 s so that the cut is seen quickly. Nothing here measures speed: each
test asserts that a scrape is answered at all (within a generous client
timeout) while the bad clients are connected, and what happens to them.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.httpd import BoundedServer
from exporters.metrics import Holder, registry_for, serve
from tests.metricskit import snapshot

WORKERS = 4
DEADLINE = 2.0
CLIENT_TIMEOUT = 15.0  # a scrape that waits longer than this has been blocked


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing (CI installs it)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
            "-out", str(cert)]  # fmt: skip
    subprocess.run([openssl, *args], check=True, capture_output=True)
    return cert, key


def _start(**tls: str) -> tuple[BoundedServer, int]:
    holder = Holder()
    registry = registry_for(holder)
    holder.publish(snapshot(version="hardened", events=5))
    return serve("127.0.0.1:0", registry, holder=holder, workers=WORKERS, deadline=DEADLINE,
                 **tls)  # fmt: skip


@pytest.fixture
def plain() -> Iterator[tuple[BoundedServer, int]]:
    server, port = _start()
    yield server, port
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls(tls_files: tuple[Path, Path]) -> Iterator[tuple[BoundedServer, int]]:
    cert, key = tls_files
    server, port = _start(certfile=str(cert), keyfile=str(key))
    yield server, port
    server.shutdown()
    server.server_close()


def _scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT, context=context) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed or reset the connection without an HTTP answer."""
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return not data.startswith(b"HTTP/")


def _metrics_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jiancha-metrics")]


def test_idle_connections_do_not_block_a_tls_scrape(tls, tls_files):
    _server, port = tls
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    idle = [_connect(port) for _ in range(3 * WORKERS)]  # connected, never a byte
    stalled = [_connect(port) for _ in range(WORKERS - 1)]
    for sock in stalled:  # a ClientHello's first bytes, then nothing: a stalled handshake
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")
    try:
        text = _scrape(f"https://127.0.0.1:{port}/metrics", context)
        assert 'jiancha_build_info{version="hardened"} 1.0' in text
        assert "jiancha_events_ingested_total 5.0" in text
        # The deadline closes every one of them, idle or mid-handshake.
        assert all(_closed_by_server(sock) for sock in idle + stalled)
        _scrape(f"https://127.0.0.1:{port}/metrics", context)  # and the server still serves
    finally:
        for sock in idle + stalled:
            sock.close()


def test_slow_plain_clients_are_cut_and_threads_stay_bounded(plain):
    _server, port = plain
    url = f"http://127.0.0.1:{port}/metrics"
    stop = threading.Event()
    slow = [_connect(port) for _ in range(3 * WORKERS)]

    def drip(sock: socket.socket) -> None:
        """Slowloris: a header byte every 0.2 s, never the blank line that ends them."""
        try:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                sock.sendall(b"X")
                time.sleep(0.2)
        except OSError:
            return  # cut by the server: what the test wants to see

    drippers = [threading.Thread(target=drip, args=(s,), daemon=True) for s in slow[:1]]
    for t in drippers:
        t.start()
    before = threading.active_count()  # the server's workers and accepting thread, a dripper
    assert len(_metrics_threads()) == WORKERS + 1
    try:
        # One slow client: the other workers answer at once.
        assert "jiancha_events_ingested_total 5.0" in _scrape(url)
        # Three times as many slow clients as workers: no thread per connection ...
        for sock in slow[1:]:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)
        assert threading.active_count() <= before  # not a thread per connection
        # ... and the deadline frees the workers, so a scrape still gets through.
        assert "jiancha_events_ingested_total 5.0" in _scrape(url)
        assert all(_closed_by_server(sock) for sock in slow)
        assert threading.active_count() <= before
    finally:
        stop.set()
        for sock in slow:
            sock.close()


def test_shutdown_stops_every_thread_even_with_clients_connected(tls_files):
    cert, key = tls_files
    server, port = _start(certfile=str(cert), keyfile=str(key))
    idle = [_connect(port) for _ in range(WORKERS)]
    slow = _connect(port)
    slow.sendall(b"\x16\x03\x01")
    time.sleep(0.3)
    server.shutdown()
    server.server_close()
    try:
        assert _metrics_threads() == []
        with pytest.raises(OSError):
            _connect(port).close()
    finally:
        for sock in (*idle, slow):
            sock.close()
