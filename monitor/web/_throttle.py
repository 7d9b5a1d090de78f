"""Login throttling: after too many wrong passwords a username is refused for a while."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.signins import (
    THROTTLE_LIMIT,
    THROTTLE_WINDOW,
    clear_failures,
    failures,
    record_failure,
)
from monitor.wallclock import utc_now

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["Throttle"]


class Throttle:
    """At most ``limit`` failed sign-ins per username within ``window``.

    The failures are rows in ``jiancha.login_failures``: a restart does not
    forget them and several console processes share them. Unknown usernames
    count too (casefolded), so guessing names gains nothing.
    """

    def __init__(self, limit: int = THROTTLE_LIMIT, window: dt.timedelta = THROTTLE_WINDOW,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:  # fmt: skip
        self.limit = limit
        self.window = window
        self.clock = clock

    async def blocked(self, conn: Connection, name: str) -> bool:
        return await failures(conn, name, self.clock(), self.window) >= self.limit

    async def failed(self, conn: Connection, name: str) -> None:
        await record_failure(conn, name, self.clock(), self.window)

    async def succeeded(self, conn: Connection, name: str) -> None:
        await clear_failures(conn, name)
