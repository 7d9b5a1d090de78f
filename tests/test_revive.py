"""Dead letters come back (`monitor.revive`): when what they lacked turns up, or on request."""

from __future__ import annotations

import datetime as dt
import io
import json

import trio

from monitor import db
from monitor.cli import main
from monitor.evaluator import Evaluator
from monitor.pipeline import apply_batch
from monitor.revive import revive
from monitor.source.catalogue import load_matters
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from monitor.worker import Worker, WorkerConfig
from tests.sourcekit import SUBMITTED, at, write

NOW = dt.datetime(2024, 3, 5, 2, tzinfo=dt.UTC)  # Tue 10:00 Beijing; at(0) is Mon 10:00
M9 = ("M9", "道路运输经营许可", "交通运输局", 20, 5)  # each test its own code: the
M8 = ("M8", "出租汽车经营许可", "交通运输局", 20, 5)  # catalogue outlives a test


async def ingest(conn: db.Connection, now: dt.datetime, ev: Evaluator | None = None) -> None:
    matters = await load_matters(conn)
    cursor = await state_store.load_cursor(conn)
    while events := await read_batch(conn, cursor, 1000):
        cursor = (await apply_batch(conn, events, matters, cursor, now, evaluator=ev)).cursor


async def letters(conn: db.Connection) -> list[tuple]:
    rows = await conn.fetch("SELECT event_id, reason, retries, resolved_at IS NOT NULL AS taken "
                            "FROM jiancha.dead_letters ORDER BY event_id")  # fmt: skip
    return [tuple(r) for r in rows]


async def add_matter(conn: db.Connection, matter: tuple = M9) -> None:
    await conn.execute("INSERT INTO matters (code, name, department, statutory_days, "
                       "promised_days) VALUES ($1, $2, $3, $4, $5)", *matter)  # fmt: skip


async def test_a_matter_catalogued_late_brings_its_case_back_with_its_cards(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, [("L1", "submitted", at(0), {**SUBMITTED, "matter": "M9"}),
                           ("L1", "accepted", at(1), {})])  # fmt: skip
        ev = Evaluator(rules, cal)
        await ingest(conn, NOW, ev)
        assert await letters(conn) == [(1, "unknown_matter", 0, False)]
        status = await conn.fetchval("SELECT status FROM jiancha.cases WHERE case_id = 'L1'")
        assert status == "orphan"  # its acceptance waits for the submission
        # nothing changed: a retry pass takes nothing and counts nothing
        idle = await revive(conn, await load_matters(conn), NOW, evaluator=ev)
        assert (idle.taken, idle.still_dead) == (0, 0) and (await letters(conn))[0][2] == 0
        await add_matter(conn)
        later = NOW + dt.timedelta(days=7)  # Tue Mar 12: M9's 5 wd ended Mon Mar 11 24:00
        got = await revive(conn, await load_matters(conn), later, evaluator=ev)
        assert (got.taken, got.still_dead, got.cases) == (1, 0, ("L1",))
        assert await letters(conn) == [(1, "unknown_matter", 1, True)]  # the record stays
        row = await conn.fetchrow("SELECT status, matter, department, accepted_at "
                                  "FROM jiancha.cases WHERE case_id = 'L1'")  # fmt: skip
        assert tuple(row) == ("accepted", "M9", "交通运输局", at(1))
        await ev.tick(conn, await load_matters(conn), later)
        reds = await conn.fetch("SELECT rule, issued_at FROM jiancha.cards WHERE level = 'red'")
        assert [(r["rule"], r["issued_at"]) for r in reds] == [
            ("decision_time", dt.datetime(2024, 3, 11, 16, tzinfo=dt.UTC))]  # fmt: skip
        # again: idempotent
        again = await revive(conn, await load_matters(conn), later, evaluator=ev)
        assert (again.taken, again.still_dead) == (0, 0)
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cards") == len(
            await conn.fetch("SELECT DISTINCT case_id, rule, level FROM jiancha.cards")
        )


async def test_an_event_ahead_of_the_clock_is_taken_when_its_time_comes(dsn):
    async with await db.connect(dsn) as conn:
        await write(conn, [("F1", "submitted", at(0), SUBMITTED),
                           ("F1", "accepted", NOW + dt.timedelta(days=3), {})])  # fmt: skip
        await ingest(conn, NOW)
        assert await letters(conn) == [(2, "future_timestamp", 0, False)]
        matters = await load_matters(conn)
        assert (await revive(conn, matters, NOW + dt.timedelta(days=1))).taken == 0
        assert (await revive(conn, matters, NOW + dt.timedelta(days=2, hours=1))).taken == 1
        status = await conn.fetchval("SELECT status FROM jiancha.cases WHERE case_id = 'F1'")
        assert status == "accepted"


async def test_orphans_swept_out_come_back_when_their_submission_arrives(dsn):
    async with await db.connect(dsn) as conn:
        await write(conn, [("O1", "accepted", at(1), {}), ("O1", "completed", at(30), {})])
        await ingest(conn, NOW)
        swept = await state_store.sweep_orphans(
            conn, NOW + dt.timedelta(hours=2), dt.timedelta(hours=1)
        )
        assert swept == 2
        assert [r[1] for r in await letters(conn)] == ["never_submitted"] * 2
        await write(conn, [("O1", "submitted", at(0), SUBMITTED)])  # a week-late feed
        await ingest(conn, NOW)
        got = await revive(conn, await load_matters(conn), NOW)
        assert (got.taken, got.cases) == (2, ("O1",))
        row = await conn.fetchrow("SELECT status, accepted_at, completed_at, event_count "
                                  "FROM jiancha.cases WHERE case_id = 'O1'")  # fmt: skip
        assert tuple(row) == ("completed", at(1), at(30), 3)  # its whole history again


def run_cli(dsn: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main([*argv, "--dsn", dsn], out=out)
    return code, out.getvalue()


async def test_operators_list_show_and_retry_and_the_daemon_takes_them(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, [("B1", "submitted", at(0), SUBMITTED),
                           ("B1", "rated", at(2), {"level": 7}),
                           ("L2", "submitted", at(0), {**SUBMITTED, "matter": "M8"})])  # fmt: skip
        await ingest(conn, NOW)
    code, text = await trio.to_thread.run_sync(run_cli, dsn, "dead-letters", "list")
    assert code == 0 and "字段取值不合理" in text and "事项不在目录中" in text
    code, text = await trio.to_thread.run_sync(run_cli, dsn, "dead-letters", "show", "2",
                                               "--json")  # fmt: skip
    doc = json.loads(text)
    assert (doc["reason"], doc["raw"]["payload"]) == ("bad_value", {"level": 7})
    code, text = await trio.to_thread.run_sync(run_cli, dsn, "dead-letters", "retry", "999")
    assert code == 2  # no such dead letter: refused, nothing requested
    code, text = await trio.to_thread.run_sync(run_cli, dsn, "dead-letters", "retry",
                                               "--reason", "bad_value")  # fmt: skip
    assert code == 0 and "已请求重试 1 条死信" in text
    async with await db.connect(dsn) as conn:
        # the daemon's worker: its sweep takes what can be taken, by itself or as asked
        w = Worker(WorkerConfig(dsn, dsn, poll_interval=0.05, probe_interval=0.2,
                                sweep_interval=0.2), clock=lambda: NOW,
                   evaluator=Evaluator(rules, cal))  # fmt: skip
        w.tailer.matters_every = 0.1
        async with trio.open_nursery() as nursery:
            await nursery.start(w.run)
            with trio.fail_after(15):  # the operator's request first
                while (await letters(conn))[0][2] == 0:
                    await trio.sleep(0.05)
            assert (await letters(conn))[1] == (3, "unknown_matter", 0, False)
            await add_matter(conn, M8)  # catalogued while the daemon runs
            with trio.fail_after(15):  # revived, and counted (after the sweep's last round)
                while not (await letters(conn))[1][3] or not w.stats.revived:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        # the rating is still impossible: still dead, tried once more, no longer requested
        assert await letters(conn) == [(2, "bad_value", 1, False), (3, "unknown_matter", 1, True)]
        assert await conn.fetchval("SELECT retry_requested_at FROM jiancha.dead_letters "
                                   "WHERE event_id = 2") is None  # fmt: skip
        assert w.stats.revived == 1
    code, _ = await trio.to_thread.run_sync(run_cli, dsn, "dead-letters", "retry")
    assert code == 2  # nothing chosen: a usage error, nothing requested


async def test_a_letter_the_database_refuses_again_stays_dead_and_the_others_come_back(dsn):
    from tests.poisonkit import TRAP, trap, untrap

    async with await db.connect(dsn) as conn:
        # two submissions of a matter not catalogued yet; one case the database will refuse
        await write(conn, [(f"{TRAP}9", "submitted", at(0), {**SUBMITTED, "matter": "M7"}),
                           ("G9", "submitted", at(0), {**SUBMITTED, "matter": "M7"})])  # fmt: skip
        await ingest(conn, NOW)
        assert [r[1] for r in await letters(conn)] == ["unknown_matter"] * 2
        await add_matter(conn, ("M7", "网约车经营许可", "交通运输局", 20, 5))
        await trap(conn)
        try:
            got = await revive(conn, await load_matters(conn), NOW)
        finally:
            await untrap(conn)
        assert (got.taken, got.still_dead, got.cases) == (1, 1, ("G9",))
        row = await conn.fetchrow(
            "SELECT reason, detail, retries, resolved_at FROM jiancha.dead_letters "
            "WHERE case_id = $1",
            f"{TRAP}9",
        )
        assert (row["reason"], row["retries"], row["resolved_at"]) == ("apply_failed", 1, None)
        assert "SQLSTATE P0001" in row["detail"]
        # it no longer waits for its matter: an operator's retry brings it in, now it can
        assert (await revive(conn, await load_matters(conn), NOW)).taken == 0
        await conn.execute("UPDATE jiancha.dead_letters SET retry_requested_at = $1", NOW)
        assert (await revive(conn, await load_matters(conn), NOW)).taken == 1


def test_every_dead_letter_reason_has_a_name_in_both_languages():
    from monitor.source.contract import DeadReason
    from monitor.vocab import DEAD_REASON_NAMES

    assert set(DEAD_REASON_NAMES) == {str(r) for r in DeadReason}
    assert all(set(n) == {"zh", "en"} for n in DEAD_REASON_NAMES.values())


async def test_a_huge_payload_is_never_fetched_and_a_retry_keeps_its_reason(dsn):
    import secrets

    from monitor.source.tailer import STORED_MAX

    big = secrets.token_hex(STORED_MAX)  # incompressible: stored past the bound
    async with await db.connect(dsn) as conn:
        await write(conn, [("H1", "submitted", at(0), {**SUBMITTED, "note": big}),
                           ("H2", "submitted", at(0), SUBMITTED)])  # fmt: skip
        events = await read_batch(conn, await state_store.load_cursor(conn), 10)
        assert [str(e.payload)[:1] for e in events] == ["", "{"]  # H1's text never came over
        await ingest(conn, NOW)
        row = await conn.fetchrow("SELECT reason, detail, raw FROM jiancha.dead_letters")
        assert row["reason"] == "payload_too_large" and "stored, not read" in row["detail"]
        assert row["raw"]["payload"] is None and "payload_left_out" in row["raw"]
        await conn.execute("UPDATE jiancha.dead_letters SET retry_requested_at = $1", NOW)
        got = await revive(conn, await load_matters(conn), NOW)
        assert (got.taken, got.still_dead) == (0, 1)
        after = await conn.fetchrow("SELECT reason, retries FROM jiancha.dead_letters")
        assert tuple(after) == ("payload_too_large", 1)
