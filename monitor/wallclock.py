"""Injected time: the wall clock in production, a virtual clock in the demo.

Every component asks a ``Clock`` for "now" and converts its waits with
``real_seconds``, so a demo running a centre's day in minutes exercises the
same code paths as the service, only faster. Tests pass fixed or stepped
clocks the same way.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class VirtualClock:
    """Time that starts at ``start`` and runs ``rate`` times faster than the wall clock."""

    def __init__(self, start: dt.datetime, rate: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic, *,
                 running: bool = True) -> None:  # fmt: skip
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware start instant")
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.start = start.astimezone(dt.UTC)
        self.rate = float(rate)
        self._monotonic = monotonic
        self._t0 = monotonic() if running else None
        self._until: dt.datetime | None = None  # stop_at

    def run(self) -> None:
        """Start a clock made with ``running=False``: until now it stood at ``start``.

        A demo holds its clock while the daemon starts: at 20,000x, the seconds
        of a start would be hours of its day gone before anything was written.
        """
        if self._t0 is None:
            self._t0 = self._monotonic()

    def stop_at(self, instant: dt.datetime) -> None:
        """Run no further than ``instant``: a demo's period ends there exactly, and its console
        stays open on that moment (the cards and the time left as they were then)."""
        self._until = instant.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        if self._t0 is None:
            return self.start
        now = self.start + dt.timedelta(seconds=(self._monotonic() - self._t0) * self.rate)
        return now if self._until is None or now < self._until else self._until

    def timestamp(self) -> float:
        return self().timestamp()


def rate_of(clock: object) -> float:
    """Virtual seconds per real second (1 for the wall clock and plain functions)."""
    rate = getattr(clock, "rate", 1.0)
    return float(rate) if isinstance(rate, int | float) and rate > 0 else 1.0


def real_seconds(clock: object, virtual: float) -> float:
    """How long to sleep for ``virtual`` seconds to pass on ``clock``."""
    return virtual / rate_of(clock)
