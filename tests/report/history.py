"""A simulated month of a centre, through the daemon's path into PostgreSQL, for the bulletins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitor import db
from monitor.pipeline import Evaluator
from monitor.whatif.simulate import (
    Event,
    Profile,
    between,
    generate,
    install_matters,
    load_catalogue,
)
from tests.cardkit import Driver
from tests.sourcekit import prepare, reset

FIRST = dt.date(2024, 3, 1)
DAYS = 31
UNTIL = dt.datetime(2024, 4, 8, tzinfo=dt.UTC)  # March's cases mostly done, a few still open
# More late cases and bad ratings than a real centre, so that a month of 20 cases a day
# has overdue cases at its end, bad reviews rectified and not, red cards to list.
PROFILE = Profile(late=0.15, statutory_late=0.02, rating_levels=(0.04, 0.04, 0.06, 0.1, 0.76))


async def build_history(dsn: str, cal: Any, rules: Any) -> list[Event]:
    """March 2024 at about 20 cases a day, ingested and evaluated up to ``UNTIL``."""
    catalogue = load_catalogue()
    events = between(
        generate(catalogue, cal, FIRST, days=DAYS, seed=7, per_day=20, profile=PROFILE), until=UNTIL
    )
    await prepare(dsn)
    await reset(dsn)
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        await Driver(conn, Evaluator(rules, cal)).live(events, FIRST, UNTIL)
    return events
