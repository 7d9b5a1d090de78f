"""Poison isolation (issue 17): one bad row never stops the others, nor the daemon.

A row past what jiancha's schema stores is a dead letter with its reason
(``monitor.source.contract.Limits``); a row valid by the contract that the
database refuses all the same fails its batch, which is split until that row
is dead-lettered as ``apply_failed`` with the database's error while the
others commit. Everything against a real PostgreSQL: the refusals are the
server's own (an int32 column, a btree key, a trigger that raises).
"""

from __future__ import annotations

import secrets

import asyncpg
import pytest
import structlog

from monitor import db
from monitor.evaluator import Evaluator
from monitor.pipeline import apply_batch
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Limits
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from tests.poisonkit import (
    NOW,
    POISONS,
    TRAP,
    Flood,
    _j,
    insert,
    poison_row,
    report,
    run_flood,
    trap,
    untrap,
)
from tests.sourcekit import SUBMITTED, T0, at, last_position


def good_rows(cases: int, prefix: str = "G") -> list[tuple]:
    rows = []
    for i in range(cases):
        cid = f"{prefix}{i}"
        rows += [(cid, "submitted", at(0), _j(0, SUBMITTED)), (cid, "accepted", at(1), _j(0)),
                 (cid, "completed", at(2), _j(0))]  # fmt: skip
    return rows


async def stored(conn: db.Connection) -> tuple[set[str], dict[int, tuple[str, str]]]:
    cases = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM jiancha.cases")}
    rows = await conn.fetch("SELECT event_id, reason, detail FROM jiancha.dead_letters")
    dead = {r["event_id"]: (r["reason"], r["detail"]) for r in rows}
    return cases, dead


# --- every bound, its own reason ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(POISONS))
async def test_each_bound_dead_letters_with_its_reason(dsn, name):
    """The rows an operator found stopping the daemon, and one per bound: each is a dead
    letter with its reason, stored as jsonb takes it; the good rows around it commit."""
    async with await db.connect(dsn) as conn:
        rows = good_rows(2)
        rows.insert(3, poison_row(name, 7, "G0"))  # a late event of G0, or a case of its own
        await insert(conn, rows)
        events = await read_batch(conn, START, 100)
        result = await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                   from_source=True)  # fmt: skip
        assert (result.events, result.dead, result.isolated) == (6, 1, 0)
        assert result.cursor == await last_position(conn)
        cases, dead = await stored(conn)
        assert cases == {"G0", "G1"}
        [(reason, detail)] = dead.values()
        assert reason == POISONS[name][3], detail
        raw = await conn.fetchval("SELECT raw FROM jiancha.dead_letters")
        assert raw["id"] == events[3].event_id and len(raw["case_id"]) <= 1100
        statuses = await conn.fetch("SELECT status FROM jiancha.cases")
        assert {r["status"] for r in statuses} == {"completed"}


# --- valid, refused by the database: bisected ---------------------------------------------


BISECTED = {
    # name: (limits that let the row through, the poison row, what the error says)
    "trigger_raises": (Limits(), (f"{TRAP}1", "submitted", T0, _j(0, SUBMITTED)),
                       "SQLSTATE P0001: test trap refuses case TRAP1"),
    "btree_key_too_large": (Limits(id_chars=10**6),
                            (secrets.token_hex(4096), "submitted", T0, _j(0, SUBMITTED)),
                            "SQLSTATE 54000"),
    "int32_column": (Limits(days=2**40), ("X1", "accepted", at(1), _j(0, {"promised_days": 2**31})),
                     "int32"),
}  # fmt: skip


@pytest.mark.parametrize("from_source", [True, False], ids=["copy", "send"])
@pytest.mark.parametrize("name", sorted(BISECTED))
async def test_an_event_the_database_refuses_is_bisected_out(dsn, name, from_source):
    """The batch fails as a whole; its halves are taken down to the refused event, which is
    dead-lettered with the database's error (logged once); the rest commit in order."""
    limits, poison, says = BISECTED[name]
    async with await db.connect(dsn) as conn:
        await trap(conn)
        try:
            rows = good_rows(10)
            rows.insert(17, poison)
            await insert(conn, rows)
            events = await read_batch(conn, START, 100)
            matters = await load_matters(conn)
            with structlog.testing.capture_logs() as logs:
                result = await apply_batch(conn, events, matters, START, NOW, limits=limits,
                                           from_source=from_source)  # fmt: skip
            assert (result.events, result.dead, result.isolated) == (30, 1, 1)
            assert result.cursor == await last_position(conn) == await state_store.load_cursor(conn)
            cases, dead = await stored(conn)
            assert cases == {f"G{i}" for i in range(10)}
            assert list(dead) == [events[17].event_id]
            reason, detail = dead[events[17].event_id]
            assert reason == "apply_failed" and says in detail, detail
            assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 30
            isolated = [e for e in logs if e["event"] == "event_isolated"]
            assert [(e["event_id"], e["reason"]) for e in isolated] == [
                (events[17].event_id, "apply_failed")
            ]
            # and the next batch is taken as usual
            await insert(conn, good_rows(1, prefix="H"))
            more = await read_batch(conn, result.cursor, 100)
            again = await apply_batch(conn, more, matters, result.cursor, NOW, limits=limits,
                                      from_source=from_source)  # fmt: skip
            assert (again.events, again.dead, again.cursor) == (3, 0, await last_position(conn))
        finally:
            await untrap(conn)


async def test_values_fine_alone_that_overflow_together_keep_the_first(dsn):
    """Two extensions within a loosened bound whose sum overflows the int32 column: the
    first commits, the second fails alone on the stored one and is dead-lettered."""
    half = 2**30 + 1
    async with await db.connect(dsn) as conn:
        rows = [*good_rows(1), ("G0", "extended", at(1.5), _j(0, {"days": half, "approver": "a"})),
                ("G0", "extended", at(1.6), _j(1, {"days": half, "approver": "b"}))]  # fmt: skip
        await insert(conn, rows)
        events = await read_batch(conn, START, 100)
        result = await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                   limits=Limits(days=2**31 - 1), from_source=True)  # fmt: skip
        assert (result.events, result.dead, result.isolated) == (4, 1, 1)
        row = await conn.fetchrow("SELECT extension_days, extensions FROM jiancha.cases")
        assert (row["extension_days"], row["extensions"]) == (half, 1)
        _cases, dead = await stored(conn)
        assert list(dead) == [events[4].event_id]


async def test_an_error_raised_over_the_data_is_isolated_too(dsn, cal, rules):
    """Not only the database's refusals: with the amount limit lifted, a fee of 10^400
    passes validation and no float takes it (an OverflowError while the case is rebuilt).
    That event is dead-lettered; its case and the others are taken, cards on."""
    async with await db.connect(dsn) as conn:
        rows = good_rows(4)
        rows.insert(4, ("G1", "fee_charged", at(1.5), _j(0, raw='"amount": 1e400')))
        await insert(conn, rows)
        events = await read_batch(conn, START, 100)
        with structlog.testing.capture_logs() as logs:
            result = await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                       evaluator=Evaluator(rules, cal), from_source=True,
                                       limits=Limits(amount=float("inf")))  # fmt: skip
        assert (result.events, result.dead, result.isolated) == (12, 1, 1)
        cases, dead = await stored(conn)
        assert list(dead) == [events[4].event_id]
        assert dead[events[4].event_id][1].startswith("OverflowError"), dead
        [line] = [e for e in logs if e["event"] == "event_isolated"]
        assert line["event_id"] == events[4].event_id
        assert cases == {"G0", "G1", "G2", "G3"}
        assert await conn.fetchval("SELECT max(fees) FROM jiancha.cases") == 0


async def test_a_server_that_refuses_everything_is_not_a_poison(dsn):
    """An error of the server's state (here: missing rights) blames no row: the batch
    fails whole, nothing is dead-lettered and the cursor stays, for the worker to retry."""
    async with await db.connect(dsn) as conn:
        await trap(conn, errcode="42501")
        try:
            await insert(conn, [(f"{TRAP}1", "submitted", T0, _j(0, SUBMITTED)), *good_rows(2)])
            events = await read_batch(conn, START, 100)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await apply_batch(conn, events, await load_matters(conn), START, NOW,
                                  from_source=True)  # fmt: skip
            for table in ("events", "cases", "dead_letters", "cursor"):
                assert await conn.fetchval(f"SELECT count(*) FROM jiancha.{table}") == 0
        finally:
            await untrap(conn)


# --- the worker under a flood ---------------------------------------------------------------


async def test_a_poison_flood_stops_nothing(dsn, cal, rules):
    """1,000 bad events (every poison in turn, plus 10 the database refuses) among 10,000
    good ones, as one backlog: every good event taken, every bad one dead-lettered with its
    reason, the worker still running. The full size (10k in 100k) is
    tests/bench/bench_poison.py."""
    flood = Flood(good=10_000, bad=990, traps=10).build()
    f = await run_flood(dsn, flood, Evaluator(rules, cal), batch_size=2000)
    print(report(f, len(flood.rows)))
    assert f["problems"] == []
    assert (f["good"], f["bad"], f["stored"], f["dead"]) == (10_000, 1000, 10_000, 1000)
    assert f["isolated"] == 10 and f["worker_dead"] == 1000 and f["reconnects"] == 0
    assert set(f["reasons"]) == {p[3] for p in POISONS.values()} | {"apply_failed"}
