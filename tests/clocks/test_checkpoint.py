"""The clock table's checkpoint: a restart from it equals a full build, whatever changed."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.cards.lifecycle import act
from monitor.clocks.checkpoint import FILENAME, Checkpointer
from monitor.clocks.table import ClockTable
from monitor.evaluator import Evaluator
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.worker import Worker, WorkerConfig
from tests.sourcekit import SUBMITTED, at, write
from tests.test_worker import drain

NOW = dt.datetime(2024, 3, 8, 2, 0, tzinfo=dt.UTC)  # Fri 10:00 Beijing: clocks are running
M2 = {**SUBMITTED, "matter": "M2"}


def rows(table: ClockTable) -> dict[tuple[str, str], tuple[float, ...]]:
    """The table by (case, rule), without slot numbers (they differ between builds)."""
    out = {}
    for slot, owner in enumerate(table.owner[: table.size]):
        if owner is not None:
            out[owner] = (float(table.start[slot]), float(table.limit[slot]),
                          float(table.ext[slot]), round(float(table.paused[slot]), 9),
                          float(table.since[slot]),
                          *np.nan_to_num(table.th[:, slot], nan=-1.0).tolist(),
                          float(table.issued[slot]))  # fmt: skip
    return out


def tailer(dsn: str, state: Path | None, rules: str = "cards") -> Worker:
    t = Worker(
        WorkerConfig(dsn, dsn, poll_interval=0.05, probe_interval=0.2),
        clock=lambda: NOW,
        evaluator=Evaluator(load_rules(rules), load_calendar("cn")),
    )
    if state is not None:
        t.checkpointer = Checkpointer(state, every=3600)  # saved once caught up, then at exit
    return t


async def run_tailer(dsn: str, state: Path | None, rules: str = "cards") -> Worker:
    """Start a tailer (evaluator, checkpointer), drain what is visible, stop it cleanly."""
    t = tailer(dsn, state, rules)
    async with trio.open_nursery() as nursery, await db.connect(dsn) as conn:
        await nursery.start(t.run)
        await drain(t, conn)
        await first_pass(t)
        nursery.cancel_scope.cancel()
    return t


async def first_pass(t: Worker) -> None:
    """Wait for the pass that follows catching up (it issues what came due)."""
    ev = t.evaluator
    assert ev is not None
    with trio.fail_after(10):
        while ev.stats.ticks == 0 or ev.due(NOW):
            t.wake()
            await trio.sleep(0.02)


async def full_build(dsn: str, rules: str = "cards") -> ClockTable:
    """What a start without a checkpoint has after its first pass (as the tailers above)."""
    ev = Evaluator(load_rules(rules), load_calendar("cn"))
    async with await db.connect(dsn) as conn:
        matters = await load_matters(conn)
        await ev.start(conn, matters, NOW)
        await ev.tick(conn, matters, NOW)  # levels seen and declined count as issued
    return ev.table


def table_of(t: Worker) -> dict[tuple[str, str], tuple[float, ...]]:
    assert t.evaluator is not None
    return rows(t.evaluator.table)


async def test_restart_from_the_checkpoint_equals_a_full_build(dsn, tmp_path):
    saved = tmp_path / "older.npz"
    async with await db.connect(dsn) as conn:
        await write(conn, [
            ("A", "submitted", at(0), SUBMITTED), ("A", "accepted", at(1), {}),
            ("B", "submitted", at(0), M2), ("B", "accepted", at(1), {}),
            ("B", "suspended", at(20), {"type": "inspection", "notified_days": 2}),
            ("C", "submitted", at(0), M2), ("C", "accepted", at(2), {}),
            ("E", "submitted", at(0), SUBMITTED), ("E", "accepted", at(1), {}),
        ])  # fmt: skip
        t = tailer(dsn, tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(t.run)
            await drain(t, conn)
            with trio.fail_after(10):  # the save once caught up
                while not (tmp_path / FILENAME).is_file():
                    await trio.sleep(0.02)
            shutil.copy(tmp_path / FILENAME, saved)
            # taken in while running, after that save: A finishes, B resumes, D arrives
            await write(conn, [
                ("A", "completed", at(30), {}), ("B", "resumed", at(40), {}),
                ("D", "submitted", at(41), SUBMITTED), ("D", "accepted", at(42), {}),
            ])  # fmt: skip
            await drain(t, conn)
            await first_pass(t)
            nursery.cancel_scope.cancel()
        assert t.table_from == "rebuilt"
        # a crash after the first save: the checkpoint on disk is the older one
        shutil.copy(saved, tmp_path / FILENAME)
        second = await run_tailer(dsn, tmp_path)
        assert second.table_from == "checkpoint"
        assert second.redecided == 3  # A, B, D changed after it; C and E did not
        assert table_of(second) == rows(await full_build(dsn))
        assert {case for case, _ in table_of(second)} == {"B", "C", "D", "E"}
        # an officer revokes E's blue card: a change too, so E is re-decided
        card = await conn.fetchval("SELECT id FROM jiancha.cards WHERE case_id = 'E'")
        assert card is not None
        await act(conn, card, "revoke", "王纪检", "复核撤销", NOW)
    third = await run_tailer(dsn, tmp_path)
    assert (third.table_from, third.redecided) == ("checkpoint", 1)
    assert table_of(third) == rows(await full_build(dsn))
    # events that arrive while it is down are taken by the tailer as usual after a resume
    async with await db.connect(dsn) as conn:
        await write(conn, [("C", "completed", at(50), {})])
    fourth = await run_tailer(dsn, tmp_path)
    assert fourth.table_from == "checkpoint"
    assert {case for case, _ in table_of(fourth)} == {"B", "D", "E"}
    assert table_of(fourth) == rows(await full_build(dsn))


async def test_a_resumed_table_keeps_the_engines_wake_ups(dsn, tmp_path):
    """G is submitted Mon Mar 4 and never accepted: it has no row until it is deemed accepted
    (Art. 32) at the end of its 5th working day, so the engine asked to look then; a
    restart from the checkpoint must look then too."""
    async with await db.connect(dsn) as conn:
        await write(conn, [("G", "submitted", at(0), SUBMITTED)])
    first = await run_tailer(dsn, tmp_path)
    assert first.table_from == "rebuilt" and first.evaluator is not None
    wakes = dict(first.evaluator.scheduler.wakes)
    # Mar 5, 6, 7, 8, 11: deemed accepted Mon Mar 11 24:00 Beijing
    assert wakes == {"G": int(dt.datetime(2024, 3, 11, 16, tzinfo=dt.UTC).timestamp())}
    second = await run_tailer(dsn, tmp_path)
    assert (second.table_from, second.redecided) == ("checkpoint", 0)
    assert second.evaluator is not None and second.evaluator.scheduler.wakes == wakes


async def test_a_checkpoint_of_other_rules_or_a_broken_file_is_not_used(dsn, tmp_path):
    async with await db.connect(dsn) as conn:
        await write(conn, [("A", "submitted", at(0), SUBMITTED), ("A", "accepted", at(1), {})])
    await run_tailer(dsn, tmp_path)
    other = await run_tailer(dsn, tmp_path, rules="cards-supervision")
    assert other.table_from == "rebuilt"  # rules_changed: built whole on the rules in force
    assert table_of(other) == rows(await full_build(dsn, "cards-supervision"))
    (tmp_path / FILENAME).write_bytes(b"not a checkpoint")
    broken = await run_tailer(dsn, tmp_path)
    assert broken.table_from == "rebuilt"
    assert (tmp_path / FILENAME).read_bytes()[:2] == b"PK"  # saved anew at the clean stop


async def test_a_checkpoint_ahead_of_the_database_is_not_used(dsn, tmp_path):
    """The database went back behind the checkpoint's cursor (a failover that lost the
    primary's last transactions, a restored backup) while no card event was lost: the
    saved table still holds the clocks of cases the database no longer has."""
    async with await db.connect(dsn) as conn:
        await write(conn, [("B", "submitted", at(94), SUBMITTED), ("B", "accepted", at(94.5), {})])
        await run_tailer(dsn, tmp_path)
        kept = await conn.fetchrow("SELECT * FROM jiancha.cursor")
        await write(conn, [("A", "submitted", at(95), SUBMITTED), ("A", "accepted", at(95.5), {})])
        ahead = await run_tailer(dsn, tmp_path)
        assert ("A", "decision_time") in table_of(ahead)
        assert await conn.fetchval("SELECT count(*) FROM jiancha.card_events") == 0
        async with conn.transaction():  # what the new primary has: B, and the cursor after it
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("DELETE FROM case_events WHERE case_id = 'A'")
            await conn.execute("DELETE FROM jiancha.events WHERE case_id = 'A'")
            await conn.execute("DELETE FROM jiancha.cases WHERE case_id = 'A'")
            await conn.execute("UPDATE jiancha.cursor SET tx = $1, event_id = $2, events = $3",
                               kept["tx"], kept["event_id"], kept["events"])  # fmt: skip
    behind = await run_tailer(dsn, tmp_path)
    assert behind.table_from == "rebuilt"
    assert not any(case == "A" for case, _ in table_of(behind))
    assert table_of(behind) == rows(await full_build(dsn))
