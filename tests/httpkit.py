"""A real HTTP/1.1 receiver for tests: trio + h11 on 127.0.0.1, no mocks.

The notification channels are tested against a socket, so what is checked is
what a robot or webhook receiver would actually see on the wire: the exact
body bytes, headers, query string. Tests script the replies (``script``),
make the receiver unreachable (``down``), count idempotency keys
(``keys``) to see duplicates, or answer each request from what it carries
(``respond``: a receiver that verifies signatures).

Use it by binding the fixture in a test module (a plain import would make
ruff see every ``receiver`` argument as a redefinition, F811)::

    from tests import httpkit
    from tests.httpkit import Receiver, Reply

    receiver = httpkit.receiver

    async def test_x(receiver):
        receiver.script(Reply(503), Reply(503), Reply(200))
        ... post to receiver.url("/hook") ...
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
import trio

__all__ = ["Receiver", "Reply", "Request", "receiver"]

ROBOT_OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}


@dataclass(frozen=True)
class Request:
    """One request as it arrived."""

    method: str
    path: str
    query: str  # raw, still percent-encoded, as on the wire
    headers: dict[str, str]  # names lower-cased; a repeated name keeps the last value
    body: bytes

    @property
    def params(self) -> dict[str, str]:
        """The query, decoded (the last value of a repeated name)."""
        return dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``drop`` closes the connection instead of answering."""

    status: int = 200
    json: Any = field(default_factory=lambda: dict(ROBOT_OK))
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body instead of ``json``
    delay: float = 0.0  # seconds before answering (to provoke client timeouts)
    drop: bool = False


class Receiver:
    """Records requests and answers them from a script, then with ``default``."""

    def __init__(self, nursery: trio.Nursery, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[Request] = []
        self.default = Reply()
        # When set (and nothing is scripted), the reply is computed from the request.
        self.respond: Callable[[Request], Reply] | None = None
        self.dropped = 0  # connections closed because the receiver was down
        self._nursery = nursery
        self._script: deque[Reply] = deque()
        self._down_for = 0.0  # connections still to drop; math.inf: until up()
        self._scope: trio.CancelScope | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then with ``default`` again."""
        self._script.extend(replies)

    def keys(self) -> list[str]:
        """The ``Idempotency-Key`` of every request received, in order."""
        return [
            r.headers["idempotency-key"] for r in self.requests if "idempotency-key" in r.headers
        ]

    def down(self, connections: int | None = None) -> None:
        """Close the next ``connections`` connections (all, until ``up``) unanswered."""
        self._down_for = math.inf if connections is None else float(connections)

    def up(self) -> None:
        self._down_for = 0.0

    async def start(self) -> None:
        self._scope = await self._nursery.start(self._serve)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _serve(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            listeners = await trio.open_tcp_listeners(self.port, host=self.host)
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started(scope)
            await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            await self._converse(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass  # the client went away or spoke nonsense; that is the client's test to fail
        finally:
            await trio.aclose_forcefully(stream)

    async def _converse(self, stream: trio.SocketStream) -> None:
        if self._down_for > 0:
            self._down_for -= 1
            self.dropped += 1
            return
        conn = h11.Connection(h11.SERVER)
        while True:
            request = await self._read_request(conn, stream)
            if request is None:
                return
            self.requests.append(request)
            if self._script:
                reply = self._script.popleft()
            else:
                reply = self.respond(request) if self.respond is not None else self.default
            if reply.delay:
                await trio.sleep(reply.delay)
            if reply.drop:
                return
            body = reply.body
            if body is None:
                body = json.dumps(reply.json, ensure_ascii=False).encode()
            headers = [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *reply.headers.items(),
            ]
            await stream.send_all(
                conn.send(h11.Response(status_code=reply.status, headers=headers))
            )
            await stream.send_all(conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                target = head.target.decode("ascii")
                path, _, query = target.partition("?")
                headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers
                }
                return Request(head.method.decode("ascii"), path, query, headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None


@pytest.fixture
async def receiver(nursery: trio.Nursery) -> AsyncIterator[Receiver]:
    """A started receiver on a free port of 127.0.0.1; answers 200 ``{"errcode": 0}``."""
    r = Receiver(nursery)
    await r.start()
    try:
        yield r
    finally:
        r.stop()
