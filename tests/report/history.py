"""A simulated month of a centre, through the daemon's path into PostgreSQL, for the bulletins."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from monitor import db
from monitor.evaluator import Evaluator
from monitor.whatif.simulate import Event, Profile, between, generate, load_catalogue
from monitor.whatif.source_writer import install_matters
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


async def build_days(dsn: str, cal: Any, rules: Any, first: dt.date, days: int,
                     until: dt.datetime, *, hold: Collection[str] = ()
                     ) -> list[Event]:  # fmt: skip
    """A few days at 25 cases a day; the events of the ``hold`` cases from their completion
    on are not written (returned: a test writes them late)."""
    catalogue = load_catalogue()
    events = between(generate(catalogue, cal, first, days=days, seed=11, per_day=25),
                     until=until)  # fmt: skip
    cut = {e.case_id: e.occurred_at for e in events if e.kind == "completed" and e.case_id in hold}
    late = [e for e in events if e.case_id in cut and e.occurred_at >= cut[e.case_id]]
    kept = [e for e in events if not (e.case_id in cut and e.occurred_at >= cut[e.case_id])]
    await prepare(dsn)
    await reset(dsn)
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        await Driver(conn, Evaluator(rules, cal)).live(kept, first, until)
    return late


def completed_on(cal: Any, first: dt.date, days: int, until: dt.datetime, lo: dt.datetime,
                 hi: dt.datetime) -> list[str]:  # fmt: skip
    """The cases ``build_days`` completes in [lo, hi), in order."""
    events = between(generate(load_catalogue(), cal, first, days=days, seed=11, per_day=25),
                     until=until)  # fmt: skip
    return [e.case_id for e in events if e.kind == "completed" and lo <= e.occurred_at < hi]
