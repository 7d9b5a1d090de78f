"""What the tests of cards share: a driver of the ingest path and the evaluator, and the ledger."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

from monitor import db
from monitor.evaluator import Evaluator
from monitor.pipeline import apply_batch
from monitor.source.catalogue import load_matters
from monitor.source.contract import START
from monitor.source.tailer import read_batch
from monitor.state import store as state_store

UTC = dt.UTC


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


SUB = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}  # M1: 5 wd promised


class Driver:
    """The tailer's ingest path and the evaluator, driven step by step on a virtual clock."""

    def __init__(self, conn: db.Connection, ev: Evaluator) -> None:
        self.conn = conn
        self.ev = ev
        self.cursor = START
        self.matters: dict = {}

    async def start(self, now: dt.datetime) -> None:
        self.matters = await load_matters(self.conn)
        self.cursor = await state_store.load_cursor(self.conn)
        await self.ev.start(self.conn, self.matters, now)

    async def ingest(self, now: dt.datetime, limit: int = 10_000) -> int:
        events = await read_batch(self.conn, self.cursor, limit)
        if not events:
            return 0

        result = await apply_batch(
            self.conn, events, self.matters, self.cursor, now, evaluator=self.ev
        )
        self.cursor = result.cursor
        return len(events)

    async def run_until(self, end: dt.datetime, now: dt.datetime) -> dt.datetime:
        """Tick at every crossing instant up to ``end``, as the daemon's sleep would."""
        await self.ev.tick(self.conn, self.matters, now)
        while True:
            due = self.ev.wake_at()
            if due is None or due > end.timestamp():
                return end
            now = dt.datetime.fromtimestamp(due, UTC)
            await self.ev.tick(self.conn, self.matters, now)

    async def live(self, events: Sequence[Any], first: dt.date, until: dt.datetime) -> None:
        """A history as the daemon lives it: each event written to the source at its business
        instant, read in, and every crossing ticked at its own instant, up to ``until``."""
        from tests.sourcekit import write

        now = dt.datetime.combine(first, dt.time(), UTC) - dt.timedelta(days=1)
        await self.start(now)
        for at, group in itertools.groupby(events, key=lambda e: e.occurred_at):
            now = await self.run_until(at, now)
            await write(self.conn, [tuple(e) for e in group])
            while await self.ingest(at):
                pass
        await self.run_until(until, now)


async def ledger(conn: db.Connection) -> list[tuple]:
    rows = await conn.fetch(
        "SELECT case_id, clock, rule, level, issued_at, status, reply_due, escalated_at "
        "FROM jiancha.cards ORDER BY case_id, clock, rule, subject, level, issued_at"
    )
    return [tuple(r) for r in rows]


async def events_of(conn: db.Connection) -> list[tuple]:
    rows = await conn.fetch(
        "SELECT c.case_id, c.rule, c.level, e.kind, e.at, e.reason FROM jiancha.card_events e "
        "JOIN jiancha.cards c ON c.id = e.card_id "
        "ORDER BY c.case_id, c.rule, c.subject, c.level, c.issued_at, e.kind, e.at, e.reason"
    )
    return [tuple(r) for r in rows]


ACCEPTED_FEB8 = [
    ("C1", "submitted", z("2024-02-08T01:00:00"), SUB),
    ("C1", "accepted", z("2024-02-08T02:00:00"), {}),
]


def counted_ticks(ev: Evaluator) -> list[int]:
    """How many ticks of ``ev`` are under way, in a list the caller polls. A tick's pass
    says nothing is due before its transaction writes the cards: a test that stops the
    worker then rolls them back."""
    running = [0]
    tick = ev.tick

    async def counted(*args: Any, **kw: Any) -> None:
        running[0] += 1
        try:
            await tick(*args, **kw)
        finally:
            running[0] -= 1

    ev.tick = counted  # type: ignore[method-assign]
    return running
