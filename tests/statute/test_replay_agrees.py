"""`replay` and the daemon agree card for card on the demo centre's history.

The demo's catalogue, calendar and rules (`make demo`), a few days of its
simulated centre: once through the daemon's own path (the source table, the
tailer's batches, the ledger in PostgreSQL, a tick at every crossing) with
each event visible at its business instant, once through `replay` (the same
pipeline on the in-memory ledger). Every card, revoked ones too, with its
subject, instant, status, reply deadline and escalation, must be the same.
"""

from __future__ import annotations

import datetime as dt

from monitor import db
from monitor.evaluator import Evaluator
from monitor.source.contract import SourceEvent
from monitor.vocab import level_name
from monitor.whatif import replay
from monitor.whatif.simulate import between, generate, load_catalogue
from monitor.whatif.source_writer import install_matters
from tests.cardkit import Driver

FIRST = dt.date(2024, 3, 4)
UNTIL = dt.datetime(2024, 3, 22, tzinfo=dt.UTC)  # some cases finished, some still open


async def test_replay_and_the_daemon_agree_card_for_card(dsn: str, cal, rules) -> None:
    catalogue = load_catalogue()
    events = between(generate(catalogue, cal, FIRST, days=5, seed=11, per_day=30), until=UNTIL)
    assert len({e.case_id for e in events}) >= 60
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        await Driver(conn, Evaluator(rules, cal)).live(events, FIRST, UNTIL)
        daemon = {
            tuple(r)
            for r in await conn.fetch(
                "SELECT case_id, clock, rule, subject, level, issued_at, status, reply_due, "
                "escalated_at FROM jiancha.cards"
            )
        }
    source = [SourceEvent(i, i, *e) for i, e in enumerate(events, 1)]
    start = dt.datetime.combine(FIRST, dt.time(), dt.UTC)
    result = await replay.run(source, catalogue.matters, rules, cal, start, UNTIL)
    replayed = {
        (c.case_id, c.clock, c.rule, c.subject, level_name(c.level), c.issued_at, c.status,
         c.reply_due, c.escalated_at)
        for c in result.store.cards.values()
    }  # fmt: skip
    assert len(daemon) >= 20 and {r[4] for r in daemon} == {"blue", "yellow", "red"}
    assert {"issued", "closed"} <= {r[6] for r in daemon}  # open cards and finished ones
    assert daemon - replayed == set() and replayed - daemon == set()
