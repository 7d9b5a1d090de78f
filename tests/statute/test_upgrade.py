"""An existing ledger upgrades to card subjects without a second card or notification.

A database at schema 5 holds the cards the engine issued before subjects
(a pause's card named "survey#1" in its detail, a pause-type card with the
type only, a review card). Migration 0006 gives each the subject today's
engine uses, so the first evaluation after the upgrade issues nothing and
revokes nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from monitor import db, migrate
from monitor.engine.decide import decide_case
from monitor.source.contract import SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from monitor.vocab import level_name
from tests.conftest import temporary_database
from tests.sourcekit import MATTERS as SOURCE_MATTERS

NOW = dt.datetime(2024, 4, 10, 2, tzinfo=dt.UTC)
SUB = {"window": "W1", "region": "R1", "channel": "window"}
EVENTS = [
    ("U1", "submitted", "2024-03-04T01:00:00", {**SUB, "matter": "M1"}),
    ("U1", "accepted", "2024-03-04T02:00:00", {}),
    ("U1", "suspended", "2024-03-05T02:00:00", {"type": "survey", "notified_days": 2}),
    ("U1", "resumed", "2024-03-12T02:00:00", {}),
    ("U1", "completed", "2024-03-20T02:00:00", {}),
    ("U1", "rated", "2024-03-21T02:00:00", {"level": 1}),
]


@pytest.fixture
def v5_dsn(pg_dsn: str) -> Iterator[str]:
    with temporary_database(pg_dsn, "test_upgrade") as dsn:
        yield dsn


def _old_detail(subject: str, detail: dict, pauses: list) -> dict:
    """The detail the engine before subjects wrote: "survey#1" for a pause, none for a check."""
    out = dict(detail)
    out.pop("subject", None)
    kind, _, at = subject.partition("@")
    if at and kind != "rating" and "limit_days" in detail:  # a pause's own clock
        n = 1 + [p["start"] for p in pauses].index(
            dt.datetime.fromisoformat(at.replace("Z", "+00:00")).isoformat()
        )
        out["subject"] = f"{kind}#{n}"
    return out


def test_a_schema_5_ledger_keeps_its_cards_through_the_upgrade(v5_dsn: str, cal, rules):
    from monitor.cli import main  # the public path for the evaluation after the upgrade

    issued, before = trio.run(_schema_5_ledger, v5_dsn, cal, rules)
    # the evaluation after the upgrade: it takes the events and finds every card in place
    out = io.StringIO()
    code = main(["evaluate", "--now", NOW.isoformat(), "--source-dsn", v5_dsn, "--json"], out=out)
    assert code == 0, out.getvalue()
    doc = json.loads(out.getvalue())
    assert (doc["cards_issued"], doc["cards_revoked"]) == (0, 0)
    assert before and len(before) == len(issued)


async def _schema_5_ledger(v5_dsn: str, cal: Any, rules: Any) -> tuple[list[Any], set[Any]]:
    async with db.open_loop(), await db.connect(v5_dsn) as conn:
        await migrate.install_source(conn)
        await migrate.migrate(conn, migrate.load_migrations()[:5])
        await conn.executemany(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days) "
            "VALUES ($1, $2, $3, $4, $5)", SOURCE_MATTERS)  # fmt: skip
        await conn.executemany(
            "INSERT INTO case_events (case_id, kind, occurred_at, payload) "
            "VALUES ($1, $2, $3, $4::jsonb)",
            [(c, k, dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC), p)
             for c, k, t, p in EVENTS],
        )  # fmt: skip
        # the state stage as it ran then: jiancha.cases (the migration reads the pauses there),
        # written by today's state stage, which also writes the mark of schema 16 (its
        # migration adds the column only where it is missing)
        await conn.execute("ALTER TABLE jiancha.cases ADD COLUMN undecided boolean NOT NULL "
                           "DEFAULT false")  # fmt: skip
        from monitor.pipeline import apply_batch
        from monitor.source.catalogue import load_matters
        from monitor.source.tailer import read_batch
        from monitor.state.store import load_cursor

        batch = await read_batch(conn, await load_cursor(conn), 100)
        await apply_batch(conn, batch, await load_matters(conn), await load_cursor(conn), NOW)
        # the ledger as the engine before subjects left it: what today's engine issues, with
        # the old key and details
        from monitor.source.contract import Matter

        matters = {m[0]: Matter(*m) for m in SOURCE_MATTERS}
        events = [SourceEvent(i, i, c, k, dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC), p)
                  for i, (c, k, t, p) in enumerate(EVENTS, 1)]  # fmt: skip
        view = CaseView.from_state(reduce_case("U1", events, matters))
        now = int(NOW.timestamp())
        issued = decide_case(view, matters["M1"], rules, cal, now, []).issue
        assert {c.subject for c in issued} >= {"survey@2024-03-05T02:00:00Z",
                                               "rating@2024-03-21T02:00:00Z"}  # fmt: skip
        pauses = view.clocks.as_json()["decision"]["pauses"]
        for c in issued:
            await conn.execute(
                "INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, "
                "deadline, ruleset, calendar, detail, status, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9::jsonb, $10, $5)",
                c.case_id, c.clock, c.rule, level_name(c.level),
                dt.datetime.fromtimestamp(c.issued_at, dt.UTC),
                None if c.deadline is None else dt.datetime.fromtimestamp(c.deadline, dt.UTC),
                rules.fingerprint, cal.fingerprint, _old_detail(c.subject, dict(c.detail), pauses),
                "closed" if c.close else "issued",
            )  # fmt: skip
        before = {(r[0], r[1]) for r in await conn.fetch("SELECT rule, level FROM jiancha.cards")}
        await migrate.migrate(conn)
        subjects = {tuple(r) for r in await conn.fetch("SELECT rule, subject FROM jiancha.cards")}
        assert subjects == {(c.rule, c.subject) for c in issued}
    return list(issued), before
