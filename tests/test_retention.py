"""`jiancha db prune` and ``[retention]``: what is finished goes after its retention."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
import trio

from monitor import db
from monitor.cli import main
from monitor.config import ConfigError, Retention, load_config
from monitor.retention import prune
from tests.sourcekit import SUBMITTED, at, write

NOW = dt.datetime(2024, 9, 1, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=200)


async def fill(conn: db.Connection) -> dict[str, int]:
    """Two cards (one open, one closed), notifications and attempts, dead letters."""
    await write(conn, [("C1", "submitted", at(0), SUBMITTED)])
    ids = {}
    for name, status in (("open", "issued"), ("closed", "closed")):
        ids[name] = await conn.fetchval(
            "INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at,"
            " ruleset, calendar, status, updated_at) VALUES ($1, 'decision', 'decision_time',"
            " 'red', $2, $2, 'r', 'c', 'issued', $2) RETURNING id", f"C-{name}", OLD)  # fmt: skip
        await conn.execute("INSERT INTO jiancha.card_events (card_id, at, kind, actor, reason) "
                           "VALUES ($1, $2, 'issued', 'jiancha', '')", ids[name], OLD)  # fmt: skip
        if status == "closed":
            async with conn.transaction():
                await conn.execute("UPDATE jiancha.cards SET status = 'closed' WHERE id = $1",
                                   ids[name])  # fmt: skip
                await conn.execute("INSERT INTO jiancha.card_events (card_id, at, kind, actor, "
                                   "reason) VALUES ($1, $2, 'closed', 'jiancha', "
                                   "'period_finished')", ids[name], OLD)  # fmt: skip
    for key, card_id, state, created in (
        ("n-open", ids["open"], "delivered", OLD),  # its card is open: kept
        ("n-closed", ids["closed"], "delivered", OLD),  # pruned
        ("n-pending", None, "pending", OLD),  # pending: kept
        ("n-recent", None, "delivered", NOW),  # recent: kept
    ):
        oid = await conn.fetchval(
            "INSERT INTO jiancha.outbox (key, channel, kind, card_id, payload, created_at,"
            " not_before, state, next_attempt_at, give_up_at) VALUES ($1, 'ops', 'card', $2,"
            " '{}', $3, $3, $4, $3, $3) RETURNING id", key, card_id, created, state)  # fmt: skip
        for i in range(3):  # three attempts each, 200 days old
            await conn.execute("INSERT INTO jiancha.outbox_attempts (outbox_id, at, ok, ms) "
                               "VALUES ($1, $2, $3, 1.0)", oid, OLD + dt.timedelta(minutes=i),
                               i == 2)  # fmt: skip
        ids[key] = oid
    for event_id, resolved in ((101, OLD), (102, None)):
        await conn.execute("INSERT INTO jiancha.dead_letters (event_id, reason, raw, created_at,"
                           " resolved_at) VALUES ($1, 'unknown_matter', '{}', $2, $3)",
                           event_id, OLD, resolved)  # fmt: skip
    return ids


async def test_prune_keeps_the_record_and_what_is_not_finished(dsn):
    async with await db.connect(dsn) as conn:
        ids = await fill(conn)
        dry = await prune(conn, Retention(), NOW, dry_run=True)
        # attempts: all but the last of each of the four notifications
        assert dry.as_json() == {"outbox": 1, "outbox_attempts": 8, "dead_letters": 1}
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox_attempts") == 12
        got = await prune(conn, Retention(), NOW, chunk=3)  # several chunks
        assert got.as_json() == {"outbox": 1, "outbox_attempts": 9, "dead_letters": 1}
        keys = {r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox")}
        assert keys == {"n-open", "n-pending", "n-recent"}
        left = await conn.fetch("SELECT outbox_id, count(*) AS n, bool_and(ok) AS ok "
                                "FROM jiancha.outbox_attempts GROUP BY 1")  # fmt: skip
        assert {r["outbox_id"]: (r["n"], r["ok"]) for r in left} == {
            ids[k]: (1, True) for k in ("n-open", "n-pending", "n-recent")}  # fmt: skip
        assert [r["event_id"] for r in await conn.fetch(
            "SELECT event_id FROM jiancha.dead_letters")] == [102]  # fmt: skip
        # the ledger is untouched
        assert await conn.fetchval("SELECT count(*) FROM jiancha.cards") == 2
        assert await conn.fetchval("SELECT count(*) FROM jiancha.card_events") == 3
        # again: nothing left to do; and 0 keeps forever
        assert (await prune(conn, Retention(), NOW)).as_json() == dict.fromkeys(
            ("outbox", "outbox_attempts", "dead_letters"), 0)  # fmt: skip
        forever = Retention(dt.timedelta(0), dt.timedelta(0), dt.timedelta(0))
        assert (await prune(conn, forever, NOW + dt.timedelta(days=9999))).as_json() == (
            dict.fromkeys(("outbox", "outbox_attempts", "dead_letters"), 0))  # fmt: skip


def test_retention_is_configured_and_checked(tmp_path: Path):
    conf = tmp_path / "jiancha.toml"
    conf.write_text('[retention]\noutbox = "30d"\ndead_letters = 0\n', encoding="utf-8")
    r = load_config(str(conf), environ={}).retention
    assert (r.outbox, r.outbox_attempts, r.dead_letters) == (
        dt.timedelta(days=30), dt.timedelta(days=30), dt.timedelta(0))  # fmt: skip
    conf.write_text('[retention]\nevents = "30d"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[retention\].*'events'"):
        load_config(str(conf), environ={})
    conf.write_text('[retention]\noutbox = "soon"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[retention\] outbox"):
        load_config(str(conf), environ={})


async def test_the_cli_counts_then_prunes(dsn, tmp_path):
    async with await db.connect(dsn) as conn:
        await fill(conn)

    def cli(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(["db", "prune", "--dsn", dsn, "--config", str(tmp_path / "none.toml"),
                     *argv], out=out), out.getvalue()  # fmt: skip

    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    # the CLI prunes as of today: the 2024 "recent" notification is old by now too
    code, text = await trio.to_thread.run_sync(cli, "--dry-run")
    assert code == 0 and "通知：可删除 2 行（保留 180 天）" in text
    code, text = await trio.to_thread.run_sync(cli, "--json")
    assert code == 0 and json.loads(text)["outbox"] == 2
    async with await db.connect(dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox") == 2


async def test_the_daemons_sweep_prunes_once_a_day(dsn, monkeypatch):
    from monitor import worker as worker_module
    from monitor.worker import Worker, WorkerConfig

    monkeypatch.setattr(worker_module, "PRUNE_EVERY", 3.0)

    async with await db.connect(dsn) as conn:
        await fill(conn)
        w = Worker(WorkerConfig(dsn, dsn, poll_interval=0.05, probe_interval=0.2,
                                sweep_interval=0.1, retention=Retention()),
                   clock=lambda: NOW)  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(w.run)
            with trio.fail_after(10):  # the outbox first, then attempts and dead letters
                while (
                    await conn.fetchval("SELECT count(*) FROM jiancha.outbox") != 3
                    or await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") != 1
                ):
                    await trio.sleep(0.05)
            pruned_at = trio.current_time()
            # another resolved dead letter as old: not pruned by the sweeps that follow (every
            # 0.1 s), only by the next pass, PRUNE_EVERY later (a day; 3 s here)
            await conn.execute("INSERT INTO jiancha.dead_letters (event_id, reason, raw, "
                               "created_at, resolved_at) VALUES (103, 'unknown_matter', '{}', "
                               "$1, $1)", OLD)  # fmt: skip
            await trio.sleep(0.5)
            assert await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") == 2
            with trio.fail_after(10):
                while await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") != 1:
                    await trio.sleep(0.05)
            assert trio.current_time() - pruned_at >= 1.5  # not at every sweep (0.1 s)
            nursery.cancel_scope.cancel()
