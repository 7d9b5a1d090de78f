"""The source moved (issue 17, item 2): a cursor that cannot be a position in the source is refused.

On the real PostgreSQL: a cursor ahead of the source's transaction ids (what a
dump and restore or a logical cutover leaves) and a cursor of another
database are refused with one error and ``jiancha_source_mismatch 1``, the
daemon stays up and reads nothing (so it skips nothing), and after
``jiancha db reset-cursor`` it reads the events again without a second card.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import pytest
import structlog
import trio

from exporters.metrics import Holder
from monitor import daemon, db, migrate
from monitor.cli import main
from monitor.evaluator import Evaluator
from monitor.observe import Snapshotter
from monitor.source import identity
from monitor.source.contract import Cursor
from monitor.state import position
from monitor.worker import Worker, WorkerConfig
from tests.cardkit import SUB, z
from tests.conftest import temporary_database
from tests.metricskit import scrape
from tests.sourcekit import MATTERS, REPO, last_position, write

NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)  # every case below is long overdue: red cards

BEFORE = [
    ("C1", "submitted", z("2024-02-08T01:00:00"), SUB),
    ("C1", "accepted", z("2024-02-08T02:00:00"), {}),
    ("C2", "submitted", z("2024-03-01T01:00:00"), SUB),
    ("C2", "accepted", z("2024-03-01T02:00:00"), {}),
]
AFTER = [  # written while (or after) the source moved
    ("C3", "submitted", z("2024-03-05T01:00:00"), SUB),
    ("C3", "accepted", z("2024-03-05T02:00:00"), {}),
]
DUPLICATES = """
SELECT count(*) FROM (SELECT 1 FROM jiancha.cards
                      GROUP BY case_id, clock, rule, subject, level, issued_at
                      HAVING count(*) > 1) d
"""
CARDS = "SELECT case_id, clock, rule, subject, level, issued_at, status FROM jiancha.cards"


def worker(source: str, target: str, cal, rules) -> Worker:
    config = WorkerConfig(source_dsn=source, dsn=target, poll_interval=0.05,
                          probe_interval=0.2, recheck_interval=0.1)  # fmt: skip
    return Worker(config, clock=lambda: NOW, evaluator=Evaluator(rules, cal))


async def drain(t: Worker, source: db.Connection, timeout: float = 20.0) -> None:
    """Until the worker reads and its cursor holds every visible event of ``source``."""
    end = await last_position(source)
    with trio.fail_after(timeout):
        while not (t.stats.connected and t.stats.cursor >= end):
            t.wake()
            await trio.sleep(0.02)


async def mismatch_metric(t: Worker, dsn: str) -> str:
    holder = Holder()
    async with await db.connect(dsn) as conn:
        await Snapshotter(holder, dsn, worker=t).take(conn)
    line = [x for x in scrape(holder.get()).splitlines() if x.startswith("jiancha_source_mismatch")]
    assert len(line) == 1, line
    return line[0]


def reset_cursor(source: str, target: str, since: str, *args: str, answer: str = ""
                 ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {**os.environ, "JIANCHA_LANG": "en"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "db", "reset-cursor", "--from", since,
         "--source-dsn", source, "--dsn", target, *args],
        cwd=REPO, env=env, input=answer, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


# --- the check itself -------------------------------------------------------------------


def test_check_names_what_differs() -> None:
    here = identity.SourceIdentity(7, 16384, "approval")
    probe = identity.SourceProbe(here, xmax=1000)
    assert identity.check(Cursor(999, 5), here, probe) is None
    assert identity.check(Cursor(999, 5), None, probe) is None  # no identity yet: adopted
    assert identity.check(Cursor(1000, 5), here, probe).differs == ("xid",)
    other = identity.SourceIdentity(8, 16390, "approval_new")
    moved = identity.check(Cursor(10, 5), other, probe)
    assert moved.differs == ("system_identifier", "database_oid")
    text = moved.message("en")
    assert "approval_new (system_identifier 8, oid 16390)" in text
    assert "approval (system_identifier 7, oid 16384)" in text
    assert "jiancha db reset-cursor --from" in text
    assert "jiancha db reset-cursor --from" in moved.message("zh") and "拒绝读取" in moved.message(
        "zh"
    )


async def test_reset_point_is_just_before_the_first_event_of_that_business_time(dsn) -> None:
    async with await db.connect(dsn) as conn:
        for row in BEFORE:  # one transaction each: four distinct tx
            await write(conn, [row])
        rows = await conn.fetch("SELECT tx::text::int8 AS tx, id, occurred_at FROM case_events "
                                "ORDER BY case_events.tx, case_events.id")  # fmt: skip
        point = await identity.reset_point(conn, z("2024-03-01T00:00:00"))
        c2 = rows[2]  # C2 submitted, the first at or after 2024-03-01
        assert point.cursor == Cursor(c2["tx"], c2["id"] - 1)
        assert (point.again, point.after) == (2, 2)
        # later than every event: the horizon, so nothing is read again and nothing skipped
        late = await identity.reset_point(conn, z("2030-01-01T00:00:00"))
        assert late.cursor > Cursor(rows[-1]["tx"], rows[-1]["id"]) and late.after == 0


# --- a cursor ahead of the source's transaction ids ---------------------------------------


async def test_a_rewound_source_is_refused_until_the_cursor_is_reset(dsn, cal, rules) -> None:
    async with await db.connect(dsn) as conn:
        await write(conn, BEFORE)
        t = worker(dsn, dsn, cal, rules)
        async with trio.open_nursery() as nursery:
            await nursery.start(t.run)
            await drain(t, conn)
            assert await _settled(conn, {"C1", "C2"})
            assert await mismatch_metric(t, dsn) == "jiancha_source_mismatch 0.0"
            nursery.cancel_scope.cancel()
        stored = await position.load_position(conn)
        assert stored[1] is not None  # adopted at the first start
        before = sorted(tuple(r) for r in await conn.fetch(CARDS))
        assert {r[0] for r in before} == {"C1", "C2"}

        # the source's transaction ids went backwards: the stored cursor is far ahead
        ahead = int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())"
                                        "::text::int8")) + 1_000_000  # fmt: skip
        await conn.execute("UPDATE jiancha.cursor SET tx = $1::text::xid8", str(ahead))
        await write(conn, AFTER)
        t = worker(dsn, dsn, cal, rules)
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(t.run)  # started: the daemon is up, not crash-looping
                assert t.stats.source_mismatch is not None
                assert t.stats.source_mismatch.differs == ("xid",)
                assert not t.stats.connected
                assert await mismatch_metric(t, dsn) == "jiancha_source_mismatch 1.0"
                await trio.sleep(0.5)  # several rechecks: still one error, nothing read
                errors = [e for e in logs if e["log_level"] == "error"]
                assert [e["event"] for e in errors] == ["source_mismatch"]
                assert f"transaction id {ahead} is not below" in errors[0]["error_en"]
                assert "jiancha db reset-cursor" in errors[0]["error"]
                assert not await conn.fetchval("SELECT count(*) FROM jiancha.cases "
                                               "WHERE case_id = 'C3'")  # fmt: skip
                assert (await position.load_position(conn))[0].tx == ahead  # not moved on

                planned = await trio.to_thread.run_sync(
                    lambda: reset_cursor(dsn, dsn, "2024-02-01T00:00", "--json")
                )
                plan = json.loads(planned.stdout)  # --json without --yes: the plan only
                assert planned.returncode == 0 and plan["reset"] is False
                assert plan["cursor"]["tx"] == ahead and plan["events_again"] == 6
                # without --yes it asks; "n" changes nothing
                asked = await trio.to_thread.run_sync(
                    lambda: reset_cursor(dsn, dsn, "2024-02-01T00:00", answer="n\n")
                )
                assert asked.returncode == 1, asked.stderr
                assert "the cursor will be reset" in asked.stdout and "go ahead?" in asked.stdout
                assert (await position.load_position(conn))[0].tx == ahead
                done = await trio.to_thread.run_sync(
                    lambda: reset_cursor(dsn, dsn, "2024-02-01T00:00", answer="y\n")
                )
                assert done.returncode == 0, done.stderr
                assert "6 event(s) with a business time at or after" in done.stdout

                await drain(t, conn)  # the worker resumed by itself
                assert t.stats.source_mismatch is None
                assert await mismatch_metric(t, dsn) == "jiancha_source_mismatch 0.0"
                assert await _settled(conn, {"C1", "C2", "C3"})
                nursery.cancel_scope.cancel()
        assert "source_mismatch_resolved" in [e["event"] for e in logs]
        after = sorted(tuple(r) for r in await conn.fetch(CARDS))
        assert [r for r in after if r[0] != "C3"] == before  # C1, C2: the same cards, no more
        assert {r[0] for r in after} == {"C1", "C2", "C3"}
        assert await conn.fetchval(DUPLICATES) == 0
        assert await conn.fetchval("SELECT count(*) FROM jiancha.events") == 6

        # idempotent: the same reset again, everything read a third time, the ledger unchanged
        again = await trio.to_thread.run_sync(
            lambda: reset_cursor(dsn, dsn, "2024-02-01T00:00", "--yes")
        )
        assert again.returncode == 0, again.stderr
        t = worker(dsn, dsn, cal, rules)
        async with trio.open_nursery() as nursery:
            await nursery.start(t.run)
            await drain(t, conn)
            assert t.stats.events == 6  # all read again
            nursery.cancel_scope.cancel()
        assert sorted(tuple(r) for r in await conn.fetch(CARDS)) == after


async def _settled(conn: db.Connection, cases: set[str]) -> bool:
    """Every case is stored and carded (the worker's batch and its cards commit together)."""
    with trio.fail_after(10):
        while {
            r[0] for r in await conn.fetch("SELECT DISTINCT case_id FROM jiancha.cards")
        } != cases:
            await trio.sleep(0.05)
    return True


def _database(dsn: str) -> str:
    return urllib.parse.urlsplit(dsn).path.lstrip("/")


# --- another database ------------------------------------------------------------------------


@pytest.fixture
def restored(pg_server_dsn: str) -> Iterator[str]:
    """A second database on the server, for the source's restored copy."""
    with temporary_database(pg_server_dsn, "test_source_moved_restored") as other:
        yield other


async def test_another_database_is_refused_until_the_cursor_is_reset(dsn, restored, cal,
                                                                     rules) -> None:  # fmt: skip
    async with await db.connect(dsn) as conn, await db.connect(restored) as new:
        await write(conn, BEFORE)
        t = worker(dsn, dsn, cal, rules)
        async with trio.open_nursery() as nursery:
            await nursery.start(t.run)
            await drain(t, conn)
            assert await _settled(conn, {"C1", "C2"})
            nursery.cancel_scope.cancel()
        before = sorted(tuple(r) for r in await conn.fetch(CARDS))

        # "pg_dump | pg_restore" of the source into another database, ids kept, then new events
        await migrate.install_source(new)
        await new.executemany("INSERT INTO matters (code, name, department, statutory_days, "
                              "promised_days) VALUES ($1, $2, $3, $4, $5)", MATTERS)  # fmt: skip
        rows = await conn.fetch("SELECT id, case_id, kind, occurred_at, payload FROM case_events")
        await new.executemany("INSERT INTO case_events (id, case_id, kind, occurred_at, payload) "
                              "OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)",
                              [tuple(r) for r in rows])  # fmt: skip
        await new.execute("SELECT setval(pg_get_serial_sequence('case_events', 'id'), "
                          "(SELECT max(id) FROM case_events))")  # fmt: skip
        await write(new, AFTER)

        t = worker(restored, dsn, cal, rules)  # JIANCHA_SOURCE_DSN now names the new database
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(t.run)
                assert t.stats.source_mismatch is not None
                assert "database_oid" in t.stats.source_mismatch.differs
                assert await mismatch_metric(t, dsn) == "jiancha_source_mismatch 1.0"
                error = next(e for e in logs if e["event"] == "source_mismatch")
                old_name, new_name = _database(dsn), _database(restored)
                assert old_name in error["error_en"] and new_name in error["error_en"]
                assert not await conn.fetchval("SELECT count(*) FROM jiancha.events "
                                               "WHERE case_id = 'C3'")  # fmt: skip

                done = await trio.to_thread.run_sync(
                    lambda: reset_cursor(restored, dsn, "2024-02-01T00:00+08:00", "--yes")
                )
                assert done.returncode == 0, done.stderr
                await drain(t, new)
                assert await _settled(conn, {"C1", "C2", "C3"})
                assert await mismatch_metric(t, dsn) == "jiancha_source_mismatch 0.0"
                nursery.cancel_scope.cancel()
        _, adopted = await position.load_position(conn)
        assert adopted is not None and adopted.database == new_name
        after = sorted(tuple(r) for r in await conn.fetch(CARDS))
        assert [r for r in after if r[0] != "C3"] == before
        assert await conn.fetchval(DUPLICATES) == 0


# --- an upgraded schema, the daemon and the one-shot evaluation --------------------------------


async def test_a_cursor_without_identity_adopts_the_source_once(dsn, cal, rules) -> None:
    async with await db.connect(dsn) as conn:
        await write(conn, BEFORE)
        await conn.execute("INSERT INTO jiancha.cursor (source, tx, event_id) VALUES "
                           "('default', '5'::xid8, 0)")  # as left by version 7  # fmt: skip
        t = worker(dsn, dsn, cal, rules)
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(t.run)
                await drain(t, conn)
                nursery.cancel_scope.cancel()
        assert [e["event"] for e in logs].count("source_identity_adopted") == 1
        _, adopted = await position.load_position(conn)
        probe = await identity.probe(conn)
        assert adopted is not None and adopted.same(probe.identity)
        # a stored identity is never overwritten by adoption
        other = identity.SourceIdentity(1, 2, "elsewhere")
        assert not await position.adopt_identity(conn, other, NOW)
        assert (await position.load_position(conn))[1] == adopted


async def test_the_daemon_stays_up_and_serves_the_metric(dsn) -> None:
    import urllib.request

    async with await db.connect(dsn) as conn:
        await write(conn, BEFORE)
        await conn.execute("INSERT INTO jiancha.cursor (source, tx, event_id) VALUES "
                           "('default', '9000000000'::xid8, 0)")  # fmt: skip
    config = daemon.DaemonConfig(source_dsn=dsn, dsn=dsn, metrics_address="127.0.0.1:0",
                                 recheck_interval=0.1)  # fmt: skip
    async with trio.open_nursery() as nursery:
        running = await nursery.start(daemon.serve, config)
        url = f"http://{running.metrics}/metrics"
        body = await trio.to_thread.run_sync(lambda: urllib.request.urlopen(url, timeout=10).read())
        assert b"\njiancha_source_mismatch 1.0\n" in body
        assert daemon.status_line(running, 0.0).startswith("STATUS=拒绝读取")
        nursery.cancel_scope.cancel()


def test_evaluate_refuses_a_moved_source(sync_dsn: str, capsys, monkeypatch) -> None:
    import asyncio

    from tests.conftest import admin

    asyncio.run(
        admin(
            sync_dsn,
            "INSERT INTO jiancha.cursor (source, tx, event_id, "
            "system_identifier, database_oid) VALUES ('default', '3'::xid8, 0, 1, 1)",
        )
    )
    monkeypatch.setenv("JIANCHA_LANG", "en")
    code = main(["evaluate", "--now", "2024-04-01T00:00Z", "--source-dsn", sync_dsn,
                 "--dsn", sync_dsn])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "the cursor was stored for" in err and "(system_identifier 1, oid 1)" in err


async def test_a_reset_makes_the_saved_clock_table_unusable(dsn, tmp_path) -> None:
    """After a reset, events may carry transaction ids below the checkpoint's cursor."""
    from monitor.clocks.checkpoint import Checkpointer

    async with await db.connect(dsn) as conn:
        ck = Checkpointer(tmp_path)
        saved = await ck.meta(conn, "rules", "cal", Cursor(900, 9))
        assert saved.matches(await ck.meta(conn, "rules", "cal", Cursor(0, 0))) is None
        probe = await identity.probe(conn)
        await position.reset_cursor(conn, Cursor(5, 0), probe.identity, z("2024-03-01T00:00:00"),
                                    NOW)  # fmt: skip
        assert (
            saved.matches(await ck.meta(conn, "rules", "cal", Cursor(0, 0))) == "identity_changed"
        )
