"""The daemon's writes to the ledger on a real PostgreSQL: once each, closed and revoked once.

The engine is not involved: the ledger is given what the engine would decide
(`Decided`) and asked to persist it, twice where a replay would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from monitor import db
from monitor.calendar import Calendar
from monitor.cards.ledger import DbStore, cards_of, escalate, next_reply_due, reply_deadlines
from monitor.engine.cards import Closing, Decided, ExistingCard, NewCard
from monitor.rules.model import RuleSet
from monitor.state.view import CaseView
from tests.cardkit import ACCEPTED_FEB8, z
from tests.sourcekit import write


def card(level: int = 1, *, issued: str = "2024-02-19T04:00:00", close: str | None = None,
         supervision: bool = False, case: str = "C1") -> NewCard:  # fmt: skip
    return NewCard(case, "decision", "decision_time", level, int(z(issued).timestamp()),
                   int(z("2024-02-21T16:00:00").timestamp()), {"used_days": 2.5},
                   supervision=supervision, close=close)  # fmt: skip


async def view_of(conn: db.Connection, case_id: str = "C1") -> CaseView:
    [v] = await DbStore(conn).cases([case_id])
    return v


async def steps(conn: db.Connection) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        "SELECT c.level, e.kind, coalesce(e.reason, '') AS reason FROM jiancha.card_events e "
        "JOIN jiancha.cards c ON c.id = e.card_id ORDER BY e.id"
    )
    return [(r["level"], r["kind"], r["reason"]) for r in rows]


async def ingested(conn: db.Connection) -> None:
    """C1 accepted on Feb 8, as a row of jiancha.cases (the ledger copies its facts)."""
    from monitor.pipeline import apply_batch
    from monitor.source.catalogue import load_matters
    from monitor.source.contract import START
    from monitor.source.tailer import read_batch

    await write(conn, ACCEPTED_FEB8)
    events = await read_batch(conn, START, 100)
    await apply_batch(conn, events, await load_matters(conn), START, z("2024-02-08T03:00:00"))


async def test_a_card_is_issued_once_however_often_it_is_written(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await ingested(conn)
        v = await view_of(conn)
        decided = Decided([card(1), card(2, issued="2024-02-20T16:00:00")], [], [], {"C1": v})
        store = DbStore(conn)
        async with conn.transaction():
            first = await store.write(decided, rules, cal, z("2024-02-21T00:00:00"))
        async with conn.transaction():
            again = await store.write(decided, rules, cal, z("2024-02-21T01:00:00"))
        assert [c.level for c in first.issued] == [1, 2] and again.issued == []
        assert await steps(conn) == [("blue", "issued", ""), ("yellow", "issued", "")]
        row = await conn.fetchrow("SELECT * FROM jiancha.cards WHERE level = 'blue'")
        # the case's facts as they were, the rules and calendar it was judged on
        assert (row["matter"], row["department"], row["window"]) == ("M1", "住建局", "W1")
        assert (row["ruleset"], row["calendar"]) == (rules.fingerprint, cal.fingerprint)
        assert row["issued_at"] == z("2024-02-19T04:00:00")
        assert row["recorded_at"] == z("2024-02-21T00:00:00")
        assert row["detail"] == {"used_days": 2.5}
        got = await cards_of(conn, ["C1", "C9"])
        assert [c.level for c in got["C1"]] == [1, 2] and got["C9"] == []


async def one_card(conn: db.Connection, cal: Calendar, rules: RuleSet) -> ExistingCard:
    """C1 ingested and its blue card issued, as the daemon writes it."""
    await ingested(conn)
    decided = Decided([card(1)], [], [], {"C1": await view_of(conn)})
    async with conn.transaction():
        written = await DbStore(conn).write(decided, rules, cal, z("2024-02-21T00:00:00"))
    [issued] = written.issued
    return issued


async def test_a_step_must_name_a_card_that_exists(dsn, cal, rules):
    """Checked once per statement (migration 0018), not by a foreign key per row: a
    statement with one step of a card that does not exist writes none of its steps."""
    async with await db.connect(dsn) as conn:
        issued = await one_card(conn, cal, rules)
        steps_of = "SELECT count(*) FROM jiancha.card_events"
        before = await conn.fetchval(steps_of)
        insert = ("INSERT INTO jiancha.card_events (card_id, kind, at, actor) "
                  "SELECT unnest($1::bigint[]), 'notified', now(), 'jiancha'")  # fmt: skip
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="card 987654 does not"):
            await conn.execute(insert, [issued.card_id, 987654, issued.card_id])
        assert await conn.fetchval(steps_of) == before
        await conn.execute(insert, [issued.card_id, issued.card_id])
        assert await conn.fetchval(steps_of) == before + 2


async def test_a_notification_must_name_a_card_that_exists_and_keep_it(dsn, cal, rules):
    """jiancha.outbox.card_id as the foreign key held it (migration 0018: per statement):
    a card that exists or none (a digest); never another card afterwards."""
    async with await db.connect(dsn) as conn:
        issued = await one_card(conn, cal, rules)
        insert = """
            INSERT INTO jiancha.outbox (key, channel, kind, card_id, payload, created_at,
                                        not_before, next_attempt_at, give_up_at)
            SELECT 'k' || coalesce(i, 0), 'wecom', 'card', i, '{}', now(), now(), now(), now()
            FROM unnest($1::bigint[]) i"""
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="card 424242 does not"):
            await conn.execute(insert, [issued.card_id, 424242])
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox") == 0
        await conn.execute(insert, [issued.card_id, None])
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox") == 2
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="cannot change"):
            await conn.execute("UPDATE jiancha.outbox SET card_id = NULL WHERE card_id = $1",
                               issued.card_id)  # fmt: skip
        await conn.execute("UPDATE jiancha.outbox SET state = 'delivered', attempts = 1")
        assert await conn.fetchval(
            "SELECT count(*) FROM jiancha.outbox WHERE card_id = $1 AND state = 'delivered'",
            issued.card_id) == 1  # fmt: skip


async def test_a_late_finish_is_issued_and_closed_at_once(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await ingested(conn)
        late = card(3, issued="2024-02-23T02:00:00", close="period_finished")
        # the same crossing twice (two decisions of the case in one write): one card, closed once
        decided = Decided([late, late], [], [], {"C1": await view_of(conn)})
        written = await DbStore(conn).write(decided, rules, cal, z("2024-02-23T03:00:00"))
        assert len(written.issued) == 1 and written.closed == 1
        assert await steps(conn) == [("red", "issued", ""), ("red", "closed", "period_finished")]
        effective = await conn.fetchval(
            "SELECT detail->>'effective_at' FROM jiancha.card_events WHERE kind = 'closed'"
        )
        assert dt.datetime.fromisoformat(effective) == z("2024-02-23T02:00:00")  # the stop
        assert await conn.fetchval("SELECT status FROM jiancha.cards") == "closed"


async def test_only_open_cards_close_a_closed_one_may_be_revoked_and_each_once(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await ingested(conn)
        store = DbStore(conn)
        v = {"C1": await view_of(conn)}
        written = await store.write(Decided([card(1), card(2)], [], [], v), rules, cal,
                                    z("2024-02-21T00:00:00"))  # fmt: skip
        blue, yellow = (c.card_id for c in written.issued)
        at = int(z("2024-02-21T00:00:00").timestamp())
        now = z("2024-02-21T01:00:00")
        done = await store.write(Decided([], [Closing(blue, "period_finished", at)],
                                         [Closing(yellow, "threshold_not_reached", at)], v),
                                 rules, cal, now)  # fmt: skip
        assert (done.closed, done.revoked) == (1, 1)
        again = await store.write(Decided([], [Closing(blue, "period_finished", at)],
                                          [Closing(blue, "threshold_not_reached", at),
                                           Closing(yellow, "threshold_not_reached", at)], v),
                                  rules, cal, now)  # fmt: skip
        # closing is for open cards; a closed card found wrong (a late event before its
        # crossing) is still revoked, once; revoked is final
        assert (again.closed, again.revoked) == (0, 1)
        third = await store.write(Decided([], [], [Closing(blue, "threshold_not_reached", at)], v),
                                  rules, cal, now)  # fmt: skip
        assert (third.closed, third.revoked) == (0, 0)
        kinds = [s[1:] for s in await steps(conn)]
        assert kinds.count(("closed", "period_finished")) == 1
        assert kinds.count(("revoked", "threshold_not_reached")) == 2


def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first word of every statement sent from now on."""
    calls: list[str] = []
    call = db.Connection._call

    async def counted(self: db.Connection, method: object, *args: object, **kw: object) -> object:
        calls.append(str(args[0]).split()[0] if args else "")
        return await call(self, method, *args, **kw)

    monkeypatch.setattr(db.Connection, "_call", counted)
    return calls


async def blue_and_yellow(conn: db.Connection, cal: Calendar, rules: RuleSet) -> tuple[Any, ...]:
    """C1 ingested, its blue and yellow cards issued, the case marked undecided (as a
    backlog stores it): the views, both cards."""
    await ingested(conn)
    v = {"C1": await view_of(conn)}
    first = await DbStore(conn).write(Decided([card(1), card(2)], [], [], v), rules, cal,
                                      z("2024-02-21T00:00:00"))  # fmt: skip
    await conn.execute("UPDATE jiancha.cases SET undecided = true WHERE case_id = 'C1'")
    return v, *first.issued


async def figures(conn: db.Connection) -> tuple[Any, ...]:
    row = await conn.fetchrow("SELECT decision_deadline, outcome, undecided "
                              "FROM jiancha.cases WHERE case_id = 'C1'")  # fmt: skip
    return tuple(row)


async def test_a_write_is_two_statements_when_a_revoked_key_is_issued_again(
    dsn, cal, rules, monkeypatch
):
    """Revocations, closings and the figure columns first, the new cards second: the
    revoked card's key is free for the crossing issued with it. A card both revoked and
    closed is revoked (as when the revocation was written first), a late finish is issued
    closed, and a backlog's undecided mark goes with its figures."""
    async with await db.connect(dsn) as conn:
        v, blue_card, yellow_card = await blue_and_yellow(conn, cal, rules)
        blue, yellow = blue_card.card_id, yellow_card.card_id
        store = DbStore(conn)
        calls = statements(monkeypatch)
        at = int(z("2024-02-21T00:00:00").timestamp())
        deadline = int(z("2024-02-21T16:00:00").timestamp())
        again = card(2, issued="2024-02-21T02:00:00")  # yellow's key, a new crossing
        late = card(3, issued="2024-02-21T03:00:00", close="period_finished")
        decided = Decided([again, late], [Closing(blue, "period_finished", at),
                                          Closing(yellow, "period_finished", at)],
                          [Closing(yellow, "threshold_not_reached", at, yellow_card.key)], v,
                          {"C1": (deadline, "")})  # fmt: skip
        written = await store.write(decided, rules, cal, z("2024-02-21T04:00:00"),
                                    undecided=True)  # fmt: skip
        assert calls == ["WITH", "WITH"]
        assert [c.level for c in written.issued] == [2, 3]
        assert (written.closed, written.revoked) == (2, 1)  # blue and the late red; yellow
        assert [s for s in await steps(conn)][2:] == [
            ("yellow", "revoked", "threshold_not_reached"), ("blue", "closed", "period_finished"),
            ("yellow", "issued", ""), ("red", "issued", ""), ("red", "closed", "period_finished"),
        ]  # fmt: skip
        statuses = await conn.fetch("SELECT level, status FROM jiancha.cards ORDER BY id")
        assert [tuple(r) for r in statuses] == [
            ("blue", "closed"), ("yellow", "revoked"), ("yellow", "issued"), ("red", "closed"),
        ]  # fmt: skip
        assert await figures(conn) == (z("2024-02-21T16:00:00"), None, False)
        calls.clear()
        nothing = await store.write(Decided([], [], [], v, {"C1": (deadline, "")}), rules, cal,
                                    z("2024-02-21T05:00:00"))  # fmt: skip
        assert calls == ["WITH"] and (nothing.closed, nothing.revoked) == (0, 0)
        calls.clear()
        await store.write(Decided([], [], [], v), rules, cal, z("2024-02-21T05:00:00"))
        assert calls == []


async def test_a_write_is_one_statement_when_no_revoked_key_is_issued_again(
    dsn, cal, rules, monkeypatch
):
    """The same parts in one round trip, where their order changes nothing: a closed card
    keeps its key, so a new crossing of it is not a card whichever part runs first."""
    async with await db.connect(dsn) as conn:
        v, blue_card, yellow_card = await blue_and_yellow(conn, cal, rules)
        calls = statements(monkeypatch)
        at = int(z("2024-02-21T00:00:00").timestamp())
        deadline = int(z("2024-02-21T16:00:00").timestamp())
        red = card(3, issued="2024-02-21T03:00:00")
        blue_again = card(1, issued="2024-02-21T03:00:00")  # the closed blue's key
        written = await DbStore(conn).write(
            Decided([red, blue_again], [Closing(blue_card.card_id, "period_finished", at)],
                    [Closing(yellow_card.card_id, "threshold_not_reached", at,
                             yellow_card.key)], v, {"C1": (deadline, "")}),
            rules, cal, z("2024-02-21T04:00:00"), undecided=True,
        )  # fmt: skip
        assert calls == ["WITH"]
        assert [c.level for c in written.issued] == [3]
        assert (written.closed, written.revoked) == (1, 1)
        assert sorted((await steps(conn))[2:]) == [
            ("blue", "closed", "period_finished"), ("red", "issued", ""),
            ("yellow", "revoked", "threshold_not_reached"),
        ]  # fmt: skip
        statuses = await conn.fetch("SELECT level, status FROM jiancha.cards ORDER BY id")
        assert [tuple(r) for r in statuses] == [
            ("blue", "closed"), ("yellow", "revoked"), ("red", "issued"),
        ]  # fmt: skip
        assert await figures(conn) == (z("2024-02-21T16:00:00"), None, False)
        calls.clear()
        nothing = await DbStore(conn).write(
            Decided([card(3, issued="2024-02-21T05:00:00")], [], [], v, {"C1": (deadline, "")}),
            rules, cal, z("2024-02-21T05:00:00"),
        )  # fmt: skip
        assert calls == ["WITH"] and nothing.issued == [] and nothing.closed == 0


async def test_a_supervision_order_escalates_once_when_its_reply_is_late(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await ingested(conn)
        red = card(3, issued="2024-02-21T16:00:00", supervision=True)
        now = z("2024-02-22T02:00:00")  # Thu Feb 22 10:00 Beijing
        written = await DbStore(conn).write(Decided([red], [], [], {"C1": await view_of(conn)}),
                                            rules, cal, now)  # fmt: skip
        due = await next_reply_due(conn)
        # 5 working days counted from when the order was written (Feb 22): Feb 23, 26-29
        assert due == z("2024-02-29T16:00:00")
        assert await escalate(conn, due - dt.timedelta(seconds=1)) == []
        [late] = await escalate(conn, due)
        assert (late.card_id, late.level, late.reply_due) == (written.issued[0].card_id, "red", due)
        assert (late.matter, late.window) == ("M1", "W1")
        assert await escalate(conn, due + dt.timedelta(days=3)) == []
        assert [s for s in await steps(conn) if s[1] == "escalated"] == [
            ("red", "escalated", "supervision_reply_missed")
        ]
        assert await next_reply_due(conn) is None


def test_the_reply_period_counts_from_when_the_order_is_written(cal, rules):
    """A red caught up after downtime gets its full reply period, not the days it lost."""
    long_ago = card(3, issued="2024-02-21T16:00:00", supervision=True)
    no_order = card(2, issued="2024-02-21T16:00:00")
    finished = card(3, issued="2024-02-21T16:00:00", supervision=True, close="period_finished")
    dues = reply_deadlines([long_ago, no_order, finished], rules, cal, z("2024-03-04T02:00:00"))
    # written Mon Mar 4: Mar 5, 6, 7, 8, 11 -> Mar 11 24:00 Beijing
    assert dues == [z("2024-03-11T16:00:00"), None, None]


async def test_outcomes_and_the_open_cases_the_scheduler_reloads(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await ingested(conn)
        await write(conn, [("C2", "submitted", z("2024-02-08T01:00:00"),
                            {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}),
                           ("C2", "accepted", z("2024-02-08T02:00:00"), {}),
                           ("C2", "completed", z("2024-02-09T02:00:00"), {})])  # fmt: skip
        from monitor.pipeline import apply_batch
        from monitor.source.catalogue import load_matters
        from monitor.source.tailer import read_batch
        from monitor.state.store import load_cursor

        cursor = await load_cursor(conn)
        events = await read_batch(conn, cursor, 100)
        await apply_batch(conn, events, await load_matters(conn), cursor, z("2024-02-09T03:00:00"))
        store = DbStore(conn)
        assert await store.open_case_ids() == ["C1"]  # C2 is finished
        deadline = int(z("2024-02-15T16:00:00").timestamp())
        await store.write(Decided([], [], [], {}, {"C2": (deadline, "early")}), rules, cal,
                          z("2024-02-09T03:00:00"))  # fmt: skip
        row = await conn.fetchrow("SELECT outcome, decision_deadline FROM jiancha.cases "
                                  "WHERE case_id = 'C2'")  # fmt: skip
        assert tuple(row) == ("early", z("2024-02-15T16:00:00"))
        # a finished case with an open card is still the scheduler's: the card may close
        c2 = (await store.cases(["C2"]))[0]
        await store.write(Decided([card(1, case="C2")], [], [], {"C2": c2}), rules, cal,
                          z("2024-02-09T03:00:00"))  # fmt: skip
        assert sorted(await store.open_case_ids()) == ["C1", "C2"]
