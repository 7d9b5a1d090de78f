"""The simulated centre written into the approval database: its matters and its events.

The writer replays the events on an injected clock, so a demo runs a day in
minutes through the daemon's real code paths.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from monitor.db import json_dumps
from monitor.log import get_logger
from monitor.source.contract import Matter
from monitor.wallclock import Clock, real_seconds

if TYPE_CHECKING:
    from monitor.db import Connection
from monitor.whatif.simulate import Event

__all__ = ["Progress", "install_matters", "write_events"]


# --- writing to the source database ----------------------------------------------------

_UPSERT_MATTERS = """
INSERT INTO matters (code, name, department, statutory_days, promised_days, free, joint,
                     step_days, pause_max_days)
SELECT c, n, d, s, p, f, j, sd::jsonb, pm::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bool[], $7::bool[],
            $8::text[], $9::text[]) AS u(c, n, d, s, p, f, j, sd, pm)
ON CONFLICT (code) DO UPDATE
SET name = EXCLUDED.name, department = EXCLUDED.department,
    statutory_days = EXCLUDED.statutory_days, promised_days = EXCLUDED.promised_days,
    free = EXCLUDED.free, joint = EXCLUDED.joint, step_days = EXCLUDED.step_days,
    pause_max_days = EXCLUDED.pause_max_days
"""

# WITH ORDINALITY: identity ids follow the array order, i.e. business time.
_INSERT_EVENTS = """
INSERT INTO case_events (case_id, kind, occurred_at, payload)
SELECT c, k, o, p::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY
     AS u(c, k, o, p, n)
ORDER BY n
"""


async def install_matters(conn: Connection, matters: Mapping[str, Matter]) -> int:
    """Load the catalogue into the source's ``matters`` (updating matters already there)."""
    rows = [matters[k] for k in sorted(matters)]
    await conn.execute(
        _UPSERT_MATTERS,
        [m.code for m in rows],
        [m.name for m in rows],
        [m.department for m in rows],
        [m.statutory_days for m in rows],
        [m.promised_days for m in rows],
        [m.free for m in rows],
        [m.joint for m in rows],
        [json_dumps(dict(m.step_days)) for m in rows],
        [json_dumps(dict(m.pause_max_days)) for m in rows],
    )
    return len(rows)


async def _insert(conn: Connection, batch: Sequence[Event]) -> None:
    await conn.execute(
        _INSERT_EVENTS,
        [e.case_id for e in batch],
        [e.kind for e in batch],
        [e.occurred_at for e in batch],
        [json_dumps(e.payload) for e in batch],
    )


@dataclass(frozen=True)
class Progress:
    written: int
    total: int
    last_occurred_at: dt.datetime | None


async def write_events(
    conn: Connection,
    events: Sequence[Event],
    *,
    clock: Clock | None = None,
    batch_size: int = 5000,
    tick: float = 0.05,
    max_sleep: float = 1.0,
    progress: Callable[[Progress], None] | None = None,
) -> int:
    """Write ``events`` (sorted by time) to ``case_events``; returns how many were written.

    With a ``clock``, each event is written once the clock reaches its
    ``occurred_at``: all events then due go in one transaction, one INSERT per
    ``batch_size`` rows, and the writer sleeps (in real seconds, at least
    ``tick``, at most ``max_sleep`` so a clock that jumps is noticed) until the
    next one. Without a clock, everything goes at once in transactions of
    ``batch_size`` (a backlog for benchmarks). Cancelling stops it between
    batches or rolls the current one back; the count so far stays true.
    """
    log = get_logger("monitor.whatif.simulate")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    times = [e.occurred_at for e in events]
    if any(b < a for a, b in itertools.pairwise(times)):
        raise ValueError("events must be sorted by occurred_at")
    total, written = len(events), 0

    def report() -> None:
        if progress is not None:
            progress(Progress(written, total, times[written - 1] if written else None))

    try:
        if clock is None:
            while written < total:
                batch = events[written : written + batch_size]
                await _insert(conn, batch)
                written += len(batch)
                report()
            return written
        while written < total:
            due = bisect.bisect_right(times, clock(), lo=written)
            if due > written:
                async with conn.transaction():
                    for k in range(written, due, batch_size):
                        await _insert(conn, events[k : min(due, k + batch_size)])
                written = due
                report()
                log.debug("simulate_batch", written=written, last=times[due - 1].isoformat())
                if written >= total:
                    break
            wait = (times[written] - clock()).total_seconds()
            await trio.sleep(min(max(real_seconds(clock, wait), tick), max_sleep))
        return written
    finally:
        log.info("simulate_written", written=written, total=total)
