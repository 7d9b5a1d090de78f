"""A few database connections kept open for the console's requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from monitor import db

__all__ = ["Pool"]


class Pool:
    """At most ``size`` connections at once; idle ones are reused, broken ones dropped.

    asyncpg's own pool is asyncio's; this one is trio's, over `monitor.db`.
    A connection whose request failed is closed rather than handed on, so no
    half-done transaction or broken socket reaches the next request.
    """

    def __init__(self, dsn: str, size: int = 8) -> None:
        self._dsn = dsn
        self._idle: list[db.Connection] = []
        self._limit = trio.Semaphore(size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[db.Connection]:
        async with self._limit:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.is_closed():
                conn = await db.connect(self._dsn, application_name="jiancha-web")
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                if healthy and not conn.is_closed():
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()
