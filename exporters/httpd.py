"""The metrics endpoint's HTTP(S) server: a fixed pool of workers, and a deadline per connection.

Prometheus must be able to scrape while anything else is connected. One
thread accepts and watches connections until their first byte arrives, so an
idle socket costs no worker and no TLS handshake; a fixed pool of workers does
the handshake (never the accepting thread) and answers one request per
connection; every connection is cut when its deadline (handshake plus
request) passes, so a slow client holds a worker for at most that long.
Connections waiting for their first byte are capped too: past the cap, the
oldest is closed.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

__all__ = ["DEADLINE", "MAX_WAITING", "WORKERS", "BoundedServer"]

WORKERS: Final = 8  # threads answering requests; a scrape needs one for milliseconds
DEADLINE: Final = 10.0  # seconds from accept to the last byte of the answer
MAX_WAITING: Final = 256  # accepted connections that have not sent a byte yet
_READY_MAX: Final = 64  # connections with data queued for a worker; past it, refused
_TICK: Final = 0.5  # how often the watcher looks for overdue connections at most


class _QuietHandler(WSGIRequestHandler):
    timeout = None  # the server sets the socket's timeout from the connection's deadline

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class BoundedServer(WSGIServer):
    """A WSGI server whose threads and connection lifetimes are bounded.

    ``serve_forever``, ``shutdown`` and ``server_close`` keep the meaning they
    have on socketserver's servers, so callers treat it like one.
    """

    request_queue_size = 128

    def __init__(self, host: str, port: int, app: Any, *, tls: ssl.SSLContext | None = None,
                 workers: int = WORKERS, deadline: float = DEADLINE,
                 max_waiting: int = MAX_WAITING) -> None:  # fmt: skip
        # IPv6 when the host is one ("[::]:9731"), as prometheus_client's server does.
        self.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        super().__init__((host, port), _QuietHandler)
        self.set_app(app)
        self.socket.setblocking(False)
        self.tls = tls
        self.workers = workers
        self.deadline = deadline
        self.max_waiting = max_waiting
        self.refused = 0  # connections closed unanswered (deadline, overflow)
        self._ready: queue.Queue[tuple[socket.socket, Any, float] | None] = queue.Queue(_READY_MAX)
        self._waiting: OrderedDict[socket.socket, float] = OrderedDict()
        self._busy: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._running = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"jiancha-metrics-{i}", daemon=True)
            for i in range(workers)
        ]

    def serve_forever(self, poll_interval: float = _TICK) -> None:
        """Accept and watch connections until ``shutdown``; the workers run alongside."""
        for t in self._threads:
            t.start()
        sel = selectors.DefaultSelector()
        sel.register(self.socket, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running.set()
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(min(poll_interval, self._next_due())):
                    if key.data == "accept":
                        self._accept(sel)
                    elif key.data == "wake":
                        self._wake_r.recv(64)
                    else:
                        self._hand_over(sel, key.fileobj)  # type: ignore[arg-type]
                self._reap(sel)
        finally:
            sel.close()
            for conn in list(self._waiting):
                _close(conn)
            self._waiting.clear()
            self._cut(self._busy_sockets())
            with contextlib.suppress(queue.Empty):  # queued but not taken: closed unanswered
                while True:
                    item = self._ready.get_nowait()
                    if item is not None:
                        self._drop(item[0])
            for _ in self._threads:
                self._ready.put(None)
            self._stopped.set()

    def wait_running(self, timeout: float = 10.0) -> bool:
        """Block until ``serve_forever`` has started its workers (False: not in time)."""
        return self._running.wait(timeout)

    def shutdown(self) -> None:
        """Stop accepting, close what waits, cut what is answered; returns once stopped."""
        self._stop.set()
        self._wake_w.send(b"x")
        self._stopped.wait(self.deadline + _TICK)  # not forever if the loop died
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=self.deadline)

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def _next_due(self) -> float:
        """Seconds until the earliest waiting connection is overdue (the loop's timeout)."""
        if not self._waiting:
            return _TICK
        first = next(iter(self._waiting.values()))
        return max(0.0, first - time.monotonic())

    def _accept(self, sel: selectors.BaseSelector) -> None:
        for _ in range(64):  # a burst at most per turn, so the other sockets get a look
            try:
                conn, _addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. EMFILE: let the backlog hold them; try again next turn
                return
            conn.setblocking(False)
            self._waiting[conn] = time.monotonic() + self.deadline
            sel.register(conn, selectors.EVENT_READ, "conn")
            if len(self._waiting) > self.max_waiting:
                oldest, _ = self._waiting.popitem(last=False)
                sel.unregister(oldest)
                self._drop(oldest)

    def _hand_over(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        """First bytes arrived: a worker takes it from here (TLS handshake included)."""
        sel.unregister(conn)
        due = self._waiting.pop(conn)
        try:
            self._ready.put_nowait((conn, conn.getpeername(), due))
        except (queue.Full, OSError):
            self._drop(conn)

    def _reap(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        while self._waiting:
            conn, due = next(iter(self._waiting.items()))
            if due > now:
                break
            del self._waiting[conn]
            sel.unregister(conn)
            self._drop(conn)
        with self._lock:
            overdue = [c for c, due in self._busy.items() if due <= now]
        self._cut(overdue)

    def _busy_sockets(self) -> list[socket.socket]:
        with self._lock:
            return list(self._busy)

    def _cut(self, conns: list[socket.socket]) -> None:
        """Wake a worker blocked on these sockets: its read or write fails at once."""
        for conn in conns:
            with contextlib.suppress(OSError):  # the raw socket's shutdown, under TLS too
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def _drop(self, conn: socket.socket) -> None:
        self._count_refused()
        _close(conn)

    def _count_refused(self) -> None:
        with self._lock:
            self.refused += 1

    def _work(self) -> None:
        while True:
            item = self._ready.get()
            if item is None:
                return
            conn, addr, due = item
            if self._stop.is_set():
                self._drop(conn)
                continue
            with self._lock:
                self._busy[conn] = due
            try:
                self._answer(conn, addr, due)
            finally:
                with self._lock:
                    self._busy.pop(conn, None)
                _close(conn)

    def _answer(self, conn: socket.socket, addr: Any, due: float) -> None:
        left = due - time.monotonic()
        if left <= 0:
            self._count_refused()
            return
        conn.setblocking(True)
        conn.settimeout(left)  # per operation; the watcher enforces the total
        stream: socket.socket = conn
        try:
            if self.tls is not None:
                stream = self.tls.wrap_socket(conn, server_side=True,
                                              do_handshake_on_connect=False)  # fmt: skip
                with self._lock:  # from here on the watcher cuts the TLS socket
                    self._busy[stream] = self._busy.pop(conn, due)
                stream.do_handshake()  # in this worker, never in the accepting thread
            self.finish_request(stream, addr)
        except Exception:  # timeouts, resets, TLS errors, cut sockets: never cost a worker
            self._count_refused()
        finally:
            if stream is not conn:
                with self._lock:
                    self._busy.pop(stream, None)
                _close(stream)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
