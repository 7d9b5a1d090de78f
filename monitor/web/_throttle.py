"""Login throttling: after too many failures a username is refused for a while."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """At most ``limit`` failed sign-ins per username in ``window`` seconds.

    Kept in memory: one console process per centre. A restart forgets the
    failures, which costs an attacker a restart they cannot cause.
    """

    def __init__(self, limit: int = 5, window: float = 15 * 60,
                 clock: Callable[[], float] = time.monotonic,
                 max_names: int = 10_000) -> None:  # fmt: skip
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_names = max_names
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, name: str) -> deque[float]:
        now = self._clock()
        times = self._failures.get(name.casefold(), deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, name: str) -> bool:
        return len(self._recent(name)) >= self.limit

    def failed(self, name: str) -> None:
        key = name.casefold()
        times = self._recent(key)
        times.append(self._clock())
        self._failures[key] = times
        if len(self._failures) > self._max_names:  # many names tried: forget the oldest
            del self._failures[next(iter(self._failures))]

    def succeeded(self, name: str) -> None:
        self._failures.pop(name.casefold(), None)
