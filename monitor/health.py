"""The daemon's own health, which feeds systemd's watchdog.

Every long-running task holds a ``Heart`` and beats it at each turn of its
loop, including while it waits out a lost database with backoff. The
supervisor pings ``WATCHDOG=1`` only while every heart has beaten within its
bound: a task that hangs (a query that never returns, a loop that stopped
turning) stops the pings and systemd restarts the service; an outage, where
the tasks are alive and retrying, does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import trio

from monitor.log import get_logger
from monitor.systemd import Watchdog, notify

__all__ = ["Health", "Heart", "pause"]


async def pause(seconds: float, beat: Callable[[], None], step: float = 1.0) -> None:
    """Sleep (a backoff, a wait for the next digest) while beating: a waiting task is alive.

    It beats first too: the work before it may have ended just before its own beat was
    due (two wake-ups at one instant run in either order), and a step's sleep on top
    of that would leave twice the step between beats.
    """
    until = trio.current_time() + seconds
    beat()
    while (left := until - trio.current_time()) > 0:
        await trio.sleep(min(left, step))
        beat()


@dataclass(eq=False)
class Heart:
    """One task's heartbeat: the trio time it last beat, and how long it may go without."""

    name: str
    bound: float
    last: float = field(default_factory=trio.current_time)

    def beat(self) -> None:
        self.last = trio.current_time()

    def late(self, now: float) -> float:
        """Seconds past its bound (0 or less: alive)."""
        return now - self.last - self.bound


class Health:
    """The hearts of the running tasks; one per daemon."""

    def __init__(self) -> None:
        self.hearts: set[Heart] = set()
        self.stuck: list[str] = []  # names of the tasks last found stuck
        self.log = get_logger("monitor.health")

    @contextmanager
    def watch(self, name: str, bound: float) -> Iterator[Heart]:
        """A heart for the task running in this block (a stopped task is not a stuck one)."""
        heart = Heart(name, bound)
        self.hearts.add(heart)
        try:
            yield heart
        finally:
            self.hearts.discard(heart)

    def check(self, now: float) -> list[str]:
        """The names of the tasks that missed their bound, sorted."""
        return sorted(h.name for h in self.hearts if h.late(now) > 0)

    async def supervise(self, watchdog: Watchdog) -> None:
        """Ping the watchdog while every task is alive; say which are not when they stop."""
        interval = watchdog.interval
        if interval is None:
            return
        while True:
            stuck = self.check(trio.current_time())
            if stuck != self.stuck:
                if stuck:
                    self.log.error("task_stuck", tasks=stuck, watchdog="pings stopped")
                else:
                    self.log.info("tasks_alive", tasks=sorted(h.name for h in self.hearts))
                self.stuck = stuck
            if not stuck:
                notify("WATCHDOG=1")
            await trio.sleep(interval)
