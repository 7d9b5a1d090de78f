"""A TCP forwarder in front of PostgreSQL that a test can cut: a database outage on demand.

``Proxy`` listens on 127.0.0.1 (port 0) and forwards every connection to the
server's Unix socket (or TCP address). ``cut()`` closes every forwarded
connection at once and closes each new one as soon as it is accepted, which
is what a client sees of a server that restarts or fails over; ``restore()``
forwards again. While the proxy is cut, the test can still write to the
database directly (the unproxied DSN): events written during the outage.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import trio

__all__ = ["Proxy", "proxied"]


def _target(dsn: str) -> tuple[str, int | None]:
    """Where the server listens: (unix socket path, None) or (host, port)."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qs(parts.query)
    port = parts.port or int(query.get("port", ["5432"])[0])
    host = query.get("host", [parts.hostname or ""])[0]
    if host.startswith("/"):
        return f"{host.rstrip('/')}/.s.PGSQL.{port}", None
    return host or "127.0.0.1", port


def proxied(dsn: str, port: int) -> str:
    """``dsn`` through the proxy on 127.0.0.1:``port`` (same user, password, database)."""
    parts = urllib.parse.urlsplit(dsn)
    query = {k: v for k, v in urllib.parse.parse_qs(parts.query).items()
             if k not in ("host", "port")}  # fmt: skip
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    return urllib.parse.urlunsplit(
        parts._replace(netloc=netloc, query=urllib.parse.urlencode(query, doseq=True))
    )


@dataclass
class Proxy:
    """Forwards 127.0.0.1:port to the server of ``dsn``; ``cut()`` and ``restore()``."""

    dsn: str
    port: int = 0
    up: bool = True
    accepted: int = 0
    refused: int = 0
    _scopes: set[trio.CancelScope] = field(default_factory=set)

    def url(self) -> str:
        return proxied(self.dsn, self.port)

    def cut(self) -> None:
        """Close every forwarded connection; refuse new ones until ``restore``."""
        self.up = False
        for scope in list(self._scopes):
            scope.cancel()

    def restore(self) -> None:
        self.up = True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _open(self) -> trio.abc.Stream:
        path, port = _target(self.dsn)
        if port is None:
            return await trio.open_unix_socket(path)
        return await trio.open_tcp_stream(path, port)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if not self.up:
                self.refused += 1
                return
            self.accepted += 1
            with trio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    async with await self._open() as server, trio.open_nursery() as nursery:
                        nursery.start_soon(_pipe, client, server, nursery.cancel_scope)
                        nursery.start_soon(_pipe, server, client, nursery.cancel_scope)
                except OSError:
                    pass
                finally:
                    self._scopes.discard(scope)


async def _pipe(src: trio.abc.Stream, dst: trio.abc.Stream, done: trio.CancelScope) -> None:
    """Copy until either side closes; then end both directions."""
    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        done.cancel()
