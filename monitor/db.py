"""The one place where trio code talks to PostgreSQL.

asyncpg is asyncio-only, so the daemon opens a trio-asyncio loop once
(`open_loop`) and every database call crosses into asyncio here, through
`trio_asyncio.aio_as_trio`. The rest of jiancha sees plain trio coroutines.
Callers batch (`executemany`, `fetch` of many rows) so the bridge cost is paid
per batch, not per row.
"""

from __future__ import annotations

import json
import os
import random
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self

import asyncpg
import trio
import trio_asyncio

__all__ = [
    "DSN_ENV",
    "OWN_SESSION",
    "SOURCE_DSN_ENV",
    "SOURCE_SESSION",
    "Connection",
    "Record",
    "Session",
    "code_error",
    "connect",
    "data_error",
    "dsn_from_env",
    "json_dumps",
    "only",
    "open_loop",
    "target_session_attrs",
]

SOURCE_DSN_ENV: Final = "JIANCHA_SOURCE_DSN"
DSN_ENV: Final = "JIANCHA_DSN"

# Cleanup (rollback, close) must run even in a cancelled scope, but must not
# hang shutdown on a dead server either.
_CLEANUP_SECONDS: Final = 5.0

Record = Any
"""An `asyncpg.Record`: indexable by position and by column name."""


@asynccontextmanager
async def open_loop() -> AsyncIterator[None]:
    """Run an asyncio loop inside trio for as long as the block lasts.

    Open it once, near the top of the program (or test); every `Connection`
    is bound to the loop that was current when it was made.
    """
    async with trio_asyncio.open_loop():
        yield


def dsn_from_env(
    kind: Literal["source", "jiancha"], env: Mapping[str, str] | None = None
) -> str | None:
    """The DSN for the approval database (``source``) or jiancha's own schema.

    jiancha's schema lives in the approval database unless the operator says
    otherwise, so ``JIANCHA_DSN`` falls back to ``JIANCHA_SOURCE_DSN``. An
    empty variable counts as unset (systemd ``EnvironmentFile`` lines like
    ``JIANCHA_DSN=`` are common).
    """
    environ = os.environ if env is None else env
    source = environ.get(SOURCE_DSN_ENV) or None
    if kind == "source":
        return source
    return environ.get(DSN_ENV) or source


class Connection:
    """An asyncpg connection whose methods are trio coroutines.

    Cancelling a trio scope around a call cancels the asyncio task, which
    makes asyncpg cancel the query on the server.
    """

    __slots__ = ("_loop", "_raw", "fence")

    def __init__(self, raw: Any, loop: Any, fence: Fence | None = None) -> None:
        self._raw = raw
        self._loop = loop
        self.fence = fence  # in every transaction, first and before COMMIT (the leader's token)

    @property
    def raw(self) -> Any:
        """The asyncpg connection, for asyncio-side code only."""
        return self._raw

    def is_closed(self) -> bool:
        return bool(self._raw.is_closed())

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return await trio_asyncio.aio_as_trio(method, loop=self._loop)(*args, **kwargs)

    async def fetch(self, query: str, *args: object, timeout: float | None = None) -> list[Record]:
        return list(await self._call(self._raw.fetch, query, *args, timeout=timeout))

    async def fetchrow(
        self, query: str, *args: object, timeout: float | None = None
    ) -> Record | None:
        return await self._call(self._raw.fetchrow, query, *args, timeout=timeout)

    async def fetchval(
        self, query: str, *args: object, column: int = 0, timeout: float | None = None
    ) -> Any:
        return await self._call(self._raw.fetchval, query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        """Run a statement; returns the server's status tag, e.g. ``INSERT 0 1``."""
        return str(await self._call(self._raw.execute, query, *args, timeout=timeout))

    async def executemany(
        self, query: str, args: Iterable[Sequence[object]], *, timeout: float | None = None
    ) -> None:
        """Run one statement for many argument rows in a single round of the bridge."""
        await self._call(self._raw.executemany, query, args, timeout=timeout)

    async def copy_records(
        self, table: str, records: Iterable[Sequence[object]], *, columns: Sequence[str],
        schema: str,
    ) -> str:  # fmt: skip
        """Binary COPY of ``records`` into ``schema.table``: the cheapest way many rows go in
        (no statement to plan, no arrays to unnest). Returns the status tag, ``COPY n``."""
        return str(await self._call(self._raw.copy_records_to_table, table, records=records,
                                    columns=list(columns), schema_name=schema))  # fmt: skip

    async def listen(self, channel: str, wake: Callable[[], None]) -> None:
        """Call ``wake()`` on every NOTIFY on ``channel`` (a hint: no payload is passed).

        Keep such a connection to itself: asyncpg drops listeners when a pooled
        connection is released, and a listening session must not sit inside a
        long transaction, or notifications wait for it.
        """

        def _callback(_conn: Any, _pid: int, _channel: str, _payload: str) -> None:
            wake()  # runs on the asyncio side of the same thread: only wake trio

        await self._call(self._raw.add_listener, channel, _callback)

    @asynccontextmanager
    async def transaction(self, *, isolation: str | None = None) -> AsyncIterator[None]:
        """Commit the block's statements together, or roll them all back.

        The ingest cursor, the case state it changed and the cards it issued
        must commit as one (docs/architecture.md), which is what this is for.
        """
        tx = self._raw.transaction(isolation=isolation)
        await self._call(tx.start)
        try:
            if self.fence is not None:  # an ex-leader's work stops here ...
                await self.fence(self, False)
            yield
            if self.fence is not None:  # ... and its transaction never commits
                await self.fence(self, True)
        except BaseException:
            with trio.move_on_after(_CLEANUP_SECONDS, shield=True) as scope:
                try:
                    await self._call(tx.rollback)
                except Exception:
                    # The connection is broken; the error that got us here matters more.
                    self._raw.terminate()
            if scope.cancelled_caught:
                self._raw.terminate()
            raise
        await self._call(tx.commit)

    async def close(self) -> None:
        """Close politely, or drop the socket if the server does not answer in time."""
        if self._raw.is_closed():
            return
        with trio.move_on_after(_CLEANUP_SECONDS, shield=True) as scope:
            await self._call(self._raw.close)
        if scope.cancelled_caught:
            self._raw.terminate()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# One encoder for every JSON jiancha stores: json.dumps with options builds a new
# JSONEncoder per call, which the tailer would pay three times per case.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_dumps(value: object) -> str:
    """Compact JSON; Chinese stays readable in the database and in pg_dump output."""
    return _ENCODE(value)


def _jsonb_send(value: object) -> bytes:
    return b"\x01" + _ENCODE(value).encode()  # jsonb's binary format: version 1, then text


def _jsonb_recv(data: bytes) -> Any:
    return json.loads(data[1:])  # json.loads reads UTF-8 bytes itself


async def _init_codecs(raw: Any) -> None:
    # asyncpg hands json/jsonb over as text by default; the payloads of
    # case_events and the matter catalogue are dicts everywhere else.
    await raw.set_type_codec("json", schema="pg_catalog", encoder=json_dumps, decoder=json.loads)
    # jsonb in its binary format (the same text behind a version byte), which a binary
    # COPY (Connection.copy_records) needs; a text-format codec cannot take part in one.
    await raw.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_send, decoder=_jsonb_recv, format="binary"
    )


@dataclass(frozen=True)
class Session:
    """What a session asks of the server when it starts, and the keepalives of its socket.

    The approval database is only read (docs/architecture.md), so its sessions
    are read-only and their statements time out: a bug or a bad plan cannot
    write to it or hold its locks for long. Keepalives, on both ends of the
    socket, find a peer that vanished behind a firewall or NAT in minutes
    rather than the kernel's two hours.
    """

    read_only: bool = False
    statement_timeout: float = 0.0  # seconds; 0: none (the server's own setting)
    # seconds a session may sit idle inside a transaction (0: no limit): a frozen
    # leader's session is ended, and with it the lock its fencing check holds
    idle_in_transaction_timeout: float = 0.0
    keepalives_idle: int = 60  # seconds of silence before the first probe
    keepalives_interval: int = 10  # seconds between probes
    keepalives_count: int = 6  # unanswered probes before the connection is dead
    fence: Fence | None = field(default=None, compare=False, repr=False)
    # appended to the application name: the leader's sessions carry its lease's tag, so
    # that a standby can end the transactions of a leader that froze (``monitor.lease``)
    tag: str = ""

    def server_settings(self) -> dict[str, str]:
        """The startup parameters (GUCs) that carry this to the server."""
        out = {
            # The server's end; PostgreSQL ignores them on Unix-domain sockets.
            "tcp_keepalives_idle": str(self.keepalives_idle),
            "tcp_keepalives_interval": str(self.keepalives_interval),
            "tcp_keepalives_count": str(self.keepalives_count),
        }
        if self.read_only:
            out["default_transaction_read_only"] = "on"
        if self.statement_timeout > 0:
            out["statement_timeout"] = str(max(1, round(self.statement_timeout * 1000)))
        if self.idle_in_transaction_timeout > 0:
            out["idle_in_transaction_session_timeout"] = str(
                max(1, round(self.idle_in_transaction_timeout * 1000))
            )
        return out

    def keep_alive(self, sock: Any) -> None:
        """Our end: SO_KEEPALIVE with these timings on a TCP socket (asyncpg sets none)."""
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", self.keepalives_idle),
                            ("TCP_KEEPINTVL", self.keepalives_interval),
                            ("TCP_KEEPCNT", self.keepalives_count)):  # fmt: skip
            if hasattr(socket, name):  # Linux names; others keep the system's timings
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


SOURCE_SESSION: Final = Session(read_only=True, statement_timeout=60.0)
"""The approval database's sessions unless configured otherwise (``[database]``)."""
OWN_SESSION: Final = Session()
"""jiancha's own sessions: writable, no statement timeout, keepalives."""


def target_session_attrs(dsn: str, session: Session,
                         env: Mapping[str, str] | None = None) -> str | None:  # fmt: skip
    """The host a session may use, when it must differ from what the DSN asks.

    A multi-host DSN with ``target_session_attrs=read-write`` (or
    ``PGTARGETSESSIONATTRS``) names the primary among its hosts. A read-only
    session starts with ``default_transaction_read_only = on``, and read-write
    rejects any server reporting that: the source's sessions would find no host
    at all. For them it means "not a standby", which is ``primary``.
    """
    if not session.read_only:
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query)
    given = query.get("target_session_attrs", [None])[-1]
    if given is None:
        given = (os.environ if env is None else env).get("PGTARGETSESSIONATTRS")
    return "primary" if given == "read-write" else None


async def _aio_connect(dsn: str, timeout: float, application_name: str, session: Session) -> Any:
    attrs = target_session_attrs(dsn, session)
    raw = await asyncpg.connect(
        dsn,
        timeout=timeout,
        **({} if attrs is None else {"target_session_attrs": attrs}),
        server_settings={
            "application_name": f"{application_name} {session.tag}"
            if session.tag
            else application_name,
            # Statements take `= ANY($1)` lists of very different sizes; a cached generic
            # plan (after five runs) can turn index lookups into sequential scans.
            "plan_cache_mode": "force_custom_plan",
            **session.server_settings(),
        },
    )
    try:
        # asyncpg has no keepalive option; its (private) transport holds the socket.
        transport = getattr(raw, "_transport", None)
        session.keep_alive(None if transport is None else transport.get_extra_info("socket"))
        await _init_codecs(raw)
    except BaseException:
        raw.terminate()
        raise
    return raw


async def connect(
    dsn: str,
    *,
    timeout: float = 10.0,
    application_name: str = "jiancha",
    session: Session = OWN_SESSION,
) -> Connection:
    """Open a connection on the current trio-asyncio loop.

    json and jsonb columns arrive as Python objects and are sent from them;
    ``application_name`` makes jiancha's sessions visible in
    ``pg_stat_activity``; ``session`` says whether it may write, how long a
    statement may run and how a dead peer is noticed.
    """
    loop = trio_asyncio.current_loop.get()
    if loop is None:
        raise RuntimeError(
            "monitor.db.connect() needs `async with monitor.db.open_loop()` around it"
        )
    raw = await trio_asyncio.aio_as_trio(_aio_connect, loop=loop)(
        dsn, timeout, application_name, session
    )
    return Connection(raw, loop, session.fence)


class Fenced(Exception):
    """This process no longer holds the leader lease: its transaction must not commit."""


Fence = Callable[["Connection", bool], Awaitable[None]]
"""Checks that the writer still holds the lease, first in a transaction and (``final``)
right before its COMMIT, holding it until then; raises `Fenced`."""


# What a lost or restarting server looks like from asyncpg and the bridge.
DISCONNECTS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionFailureError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # A FATAL that reaches an idle connection (e.g. a fast shutdown) leaves asyncpg's
    # protocol in an error state; a query issued before the socket's close is seen
    # fails with "cannot switch to state ...; another operation (2) is in progress".
    asyncpg.InternalClientError,
)


def only(
    exc: BaseException,
    types: type[BaseException] | tuple[type[BaseException], ...],
    *,
    constraint: str | None = None,
) -> BaseException | None:
    """The error of ``types`` that ``exc`` is, or that an exception group holds nothing but.

    trio's nurseries wrap errors in groups; a caller that handles one kind of
    error (a lost connection, a key violation) must still see everything else.
    ``constraint`` also requires asyncpg's ``constraint_name`` to match.
    """

    def matches(e: BaseException) -> bool:
        named = constraint is None or getattr(e, "constraint_name", None) == constraint
        return isinstance(e, types) and named

    if matches(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        match, rest = exc.split(matches)
        if match is not None and rest is None:
            leaf: BaseException = match
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            return leaf
    return None


# SQLSTATE classes a row's own values cause: data exception (a value out of range),
# integrity constraint violation, program limit exceeded (an index row too large),
# a PL/pgSQL RAISE (a trigger refusing the row). Everything else (a lost or
# shutting-down server, a full disk, a read-only standby, missing rights, a lock
# or serialization conflict) is the server's state, and no row is to blame.
_DATA_CLASSES: Final = frozenset({"22", "23", "54", "P0"})
_MACHINERY: Final = frozenset({"asyncpg", "asyncio", "trio", "trio_asyncio"})


def data_error(exc: BaseException) -> str | None:
    """What went wrong when ``exc`` is the data's fault: ``SQLSTATE code: message``,
    or the Python error's type and message; None when it is not (see above), and
    for cancellation, a lost connection, memory running out, or an error of the
    driver, the trio-asyncio bridge or an event loop (a RuntimeError).
    """
    leaves = _leaves(exc)  # trio's nurseries wrap errors in groups
    if not all(isinstance(e, Exception) for e in leaves):
        return None  # cancellation, an interrupt
    leaf = leaves[0]
    if isinstance(leaf, MemoryError):
        return None
    # asyncpg refusing to send a value (out of int32 range) is a DataError too, 22000
    if isinstance(leaf, asyncpg.PostgresError):
        state = str(getattr(leaf, "sqlstate", "") or "")
        return f"SQLSTATE {state}: {leaf}" if state[:2] in _DATA_CLASSES else None
    if (
        isinstance(leaf, DISCONNECTS)
        or type(leaf).__module__.partition(".")[0] in _MACHINERY
        or (isinstance(leaf, RuntimeError) and not isinstance(leaf, RecursionError))
    ):
        return None  # the driver, the bridge or the event loop in trouble: no row's fault
    return f"{type(leaf).__name__}: {leaf}"  # raised by the pipeline's code over the data


def code_error(exc: BaseException) -> str | None:
    """Of `data_error`'s cases, the type of the error jiancha's code raised over the data;
    None when the server refused a value (an SQLSTATE)."""
    leaf = _leaves(exc)[0]
    return None if isinstance(leaf, asyncpg.PostgresError) else type(leaf).__name__


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def backoff_delays(initial: float, cap: float, rng: random.Random) -> Callable[[], float]:
    """Capped exponential backoff with full jitter (each delay in [0, min(cap, 2^n·initial)])."""
    attempt = 0

    def next_delay() -> float:
        nonlocal attempt
        ceiling = min(cap, initial * 2**attempt)
        attempt += 1
        return rng.uniform(ceiling / 2, ceiling)

    return next_delay
