"""A simulated centre's history loaded fast, day by day, for the samples and the benchmark.

The simulator's events (the demo's catalogue and profile, N cases a working
day) are written to the source a local day at a time, read in through the
daemon's ingest path with "now" at that day's end, and the evaluator ticks
once then: cards are issued on the day their limit is crossed, at its end
(the tests that need each card at its own instant use ``Driver.live``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from monitor import db
from monitor.evaluator import Evaluator
from monitor.whatif.simulate import between, generate, load_catalogue
from monitor.whatif.source_writer import install_matters, write_events
from tests.cardkit import Driver
from tests.sourcekit import prepare

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


async def load_centre(
    dsn: str, cal: Any, rules: Any, first: dt.date, days: int, per_day: int,
    until: dt.datetime, *, seed: int = 7, progress: Callable[[dt.date], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``days`` days of a centre from ``first``, ingested and evaluated up to ``until``."""
    t0 = time.perf_counter()
    catalogue = load_catalogue()
    events = between(generate(catalogue, cal, first, days, seed=seed, per_day=per_day),
                     until=until)  # fmt: skip
    await prepare(dsn)
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        driver = Driver(conn, Evaluator(rules, cal))
        await driver.start(dt.datetime.combine(first, dt.time(), TZ) - dt.timedelta(days=1))
        for day, group in itertools.groupby(events, key=lambda e: e.occurred_at.astimezone(TZ)
                                            .date()):  # fmt: skip
            end = min(until, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), TZ)
                      - dt.timedelta(seconds=1))  # fmt: skip
            await write_events(conn, list(group))
            while await driver.ingest(end):
                pass
            await driver.ev.tick(conn, driver.matters, end)
            if progress is not None:
                progress(day)
        await conn.execute("VACUUM ANALYZE jiancha.cases, jiancha.cards, jiancha.events")
        cases = await conn.fetchval("SELECT count(*) FROM jiancha.cases")
        cards = await conn.fetchval("SELECT count(*) FROM jiancha.cards")
    return {"events": len(events), "cases": int(cases), "cards": int(cards),
            "load_s": time.perf_counter() - t0}  # fmt: skip
