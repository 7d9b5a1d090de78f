"""The source fails over to its streaming replica under a running `jiancha run` (issue 17).

A primary and a physical streaming replica (Debian's postgresql-15,
``tests/faults/pgpair.py``); jiancha's schema is in the same database, the
default deployment, so it fails over with the source. The daemon is a real
``jiancha run`` process whose DSN names both hosts with
``target_session_attrs=read-write``. A writer commits whole cases, one
transaction each, all along; mid-stream the primary stops, the replica is
promoted, and the writer carries on there.

- ``fast``: a clean stop ships every committed row to the replica first, so
  the new primary has every case the writer was told was committed.
- ``immediate``: a crash. Replication is asynchronous, so rows the primary
  acknowledged but had not shipped are gone from the new primary itself
  (counted, not asserted: on loopback it is usually none). jiancha's schema
  went with them, to the same point of the same WAL, so the cursor never
  stands past what the new primary has.
- ``lagging``: the replica stops receiving WAL, the primary acknowledges 60
  more cases and jiancha takes them and sends their cards' notifications;
  then the primary crashes. The new primary lacks those cases, and the
  cards and notifications jiancha made of them: it must say so, and hand
  none of their card ids to another card.

Every time: every event the new primary holds ends up in ``jiancha.events``
or ``jiancha.dead_letters``, the ledger is exactly the cards its events are
due, no two live cards share a natural key, every notification on the new
primary reaches the receiver, a key comes again only with the same body,
and the process never exits. The full-size run: tests/bench/bench_failover.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from monitor import db
from monitor.source.catalogue import load_matters
from tests import httpkit
from tests.faults.pgpair import Pair, make_pair
from tests.httpkit import Receiver, Reply
from tests.sourcekit import Daemon, write
from tests.test_resilience import (
    SEED,
    Case,
    committed_events,
    config_file,
    deliveries,
    expected_cards,
    index_of,
    ledger_cards,
    lost_at,
    plan,
    prepare_source,
    run_command,
    settle,
    stop_cleanly,
)

receiver = httpkit.receiver

CASES = 240  # about 1,300 events: whole 2024 histories of every profile
PACE = 0.05  # seconds between the writer's transactions: the stream spans the failover


class _RolledBack(Exception):
    pass


@dataclass
class Writes:
    """What the writer was told: committed, or lost with the connection (maybe committed)."""

    acked: list[str] = field(default_factory=list)  # case ids whose COMMIT returned
    unsure: set[str] = field(default_factory=set)
    retried: int = 0  # transactions tried again on the new primary
    errors: list[str] = field(default_factory=list)
    acked_at_stop: int = 0


async def _connect(dsn: str) -> db.Connection:
    """A session on whichever host is primary, waiting out the failover."""
    while True:
        try:
            return await db.connect(dsn, application_name="writer", timeout=2)
        except db.DISCONNECTS:
            await trio.sleep(0.05)


async def write_through(dsn: str, cases: Sequence[Case], writes: Writes) -> None:
    """Commit each case in one transaction; across a lost connection, reconnect and write
    a case again only if its transaction did not make it to the new primary."""
    conn = await _connect(dsn)
    try:
        for case in cases:
            while True:
                try:
                    if case.case_id in writes.unsure:
                        there = await conn.fetchval(
                            "SELECT count(*) FROM case_events WHERE case_id = $1", case.case_id
                        )
                        writes.unsure.discard(case.case_id)
                        if there:
                            writes.acked.append(case.case_id)
                            break
                        writes.retried += 1
                    async with conn.transaction():
                        await write(conn, case.rows)
                        if case.rollback:
                            raise _RolledBack
                    writes.acked.append(case.case_id)
                    break
                except _RolledBack:
                    break
                except db.DISCONNECTS as exc:
                    writes.errors.append(type(exc).__name__)
                    writes.unsure.add(case.case_id)
                    await conn.close()
                    conn = await _connect(dsn)
            await trio.sleep(PACE)
    finally:
        await conn.close()


async def _figures(conn: db.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM case_events) AS written, "
        "(SELECT count(*) FROM jiancha.events) AS taken, "
        "(SELECT count(*) FROM jiancha.dead_letters) AS dead, "
        "(SELECT count(*) FROM jiancha.cards) AS cards, "
        "(SELECT count(*) FROM jiancha.outbox) AS queued, "
        "(SELECT count(*) FROM jiancha.outbox WHERE state = 'delivered') AS sent"
    )
    assert row is not None
    return dict(row)


async def assert_nothing_lost_or_doubled(conn: db.Connection, receiver: Receiver,
                                         exact: bool) -> tuple[int, int, int]:  # fmt: skip
    """The new primary's events all taken, no duplicate live card, every notification
    received by its key; returns (repeated deliveries, keys the new primary never had,
    keys that came with two different bodies).

    ``exact``: the new primary has everything the old one had (a clean stop). Otherwise
    the old primary's lost transactions may have sent notifications the new primary never
    queued. A card id handed out in them must not be handed out again for another card:
    its key (card:<id>:<channel>) would reach the receiver with another body, and a
    receiver that drops a repeated key would drop the new card's message."""
    lost = await conn.fetchval(
        "SELECT count(*) FROM case_events e WHERE NOT EXISTS "
        "(SELECT 1 FROM jiancha.events j WHERE j.event_id = e.id) AND NOT EXISTS "
        "(SELECT 1 FROM jiancha.dead_letters d WHERE d.event_id = e.id)"
    )
    assert lost == 0, f"{lost} events of the new primary never taken"
    doubled = await conn.fetch(
        "SELECT case_id, clock, rule, subject, level, count(*) AS n FROM jiancha.cards "
        "WHERE status <> 'revoked' GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1"
    )
    assert doubled == [], f"duplicate cards: {doubled[:5]}"
    outbox = await conn.fetch("SELECT key, card_id, channel, state FROM jiancha.outbox")
    assert {r["state"] for r in outbox} <= {"delivered"}
    per_card = [(r["card_id"], r["channel"]) for r in outbox]
    assert len(per_card) == len(set(per_card)), "a card queued twice for a channel"
    keys = {r["key"] for r in outbox}
    got = deliveries(receiver, "/hook")
    assert keys - set(got) == set(), "notifications that never reached the receiver"
    differing = sorted(k for k, bodies in got.items() if len(set(bodies)) > 1)
    strangers = set(got) - keys
    # a card id sent from lost transactions is never handed out again (monitor.worker)
    assert not differing, f"a key sent with different bodies: {differing[:5]}"
    if exact:  # a clean stop shipped everything: nothing was sent the new primary lacks
        assert strangers == set(), f"deliveries of no notification: {sorted(strangers)[:5]}"
    return sum(len(b) - 1 for b in got.values()), len(strangers), len(differing)


async def fall_behind(pair: Pair, writes: Writes, sent: int, lag: int) -> None:
    """Cut the replica off; return once the primary has acknowledged ``lag`` more cases,
    jiancha has taken events and delivered notifications the replica will never see."""
    await trio.to_thread.run_sync(pair.detach)
    detached = len(writes.acked)
    delivered = "SELECT count(*) FROM jiancha.outbox_attempts WHERE ok"
    taken = "SELECT coalesce((SELECT events FROM jiancha.cursor), 0)"
    async with await db.connect(pair.dsn(pair.primary)) as conn:
        shipped = await conn.fetchval("SELECT count(*) FROM case_events")
        with trio.fail_after(60):
            while (len(writes.acked) < detached + lag
                   or await conn.fetchval(taken) <= shipped
                   or await conn.fetchval(delivered) <= sent + lag // 4):  # fmt: skip
                await trio.sleep(0.02)


def _stamp(record: dict[str, object]) -> float:
    return dt.datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()


async def run_failover(pair: Pair, receiver: Receiver, tmp_path: Path, mode: str, *,
                       cases_n: int = CASES, lag: int = 60) -> str:  # fmt: skip
    """The whole scenario; returns the line of figures. ``lag``: cases the primary commits
    after the replica stopped receiving (mode ``lagging``)."""
    began = time.monotonic()
    dsn = pair.dsn()
    receiver.default = Reply(200, delay=0.01)  # each delivery takes a moment
    cases = plan(cases_n, SEED + 17, "F")
    writes = Writes()
    async with db.open_loop():
        await prepare_source(dsn)
        # the clock table's checkpoint on, as under systemd (StateDirectory=)
        command = run_command(config_file(tmp_path / "jiancha.toml", receiver.url("/hook"),
                                          state=tmp_path / "state"))  # fmt: skip
        daemon = Daemon(dsn, tmp_path / "daemon.log", command)
        try:
            await daemon.wait_for("ready", timeout=60)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_through, dsn, cases, writes)
                async with await db.connect(dsn) as conn:  # until it is busy delivering
                    with trio.fail_after(60):
                        while True:
                            busy = await _figures(conn)
                            if len(writes.acked) >= cases_n // 2 and busy["sent"] > 0:
                                break
                            await trio.sleep(0.02)
                mark = len(daemon.records())
                if mode == "lagging":  # the replica falls behind, then the primary crashes
                    await fall_behind(pair, writes, busy["sent"], lag)
                writes.acked_at_stop = len(writes.acked)
                stopping = time.time()
                await trio.to_thread.run_sync(
                    pair.primary.stop, "fast" if mode == "fast" else "immediate"
                )
                stopped = time.time()
                await trio.to_thread.run_sync(pair.replica.promote)
                promoted = time.time()
            written = time.time()  # the writer is done
            async with await db.connect(dsn) as conn:
                assert await conn.fetchval("SELECT inet_server_port()") == pair.replica.port
                events = await committed_events(conn)
                expected = expected_cards(events, await load_matters(conn),
                                          dt.datetime.now(dt.UTC))  # fmt: skip
                waited = await settle(conn, daemon, expected, timeout=90)
                settled = time.time()
                there = {e.case_id for e in events}
                missing = [c for c in writes.acked if c not in there]  # lost by replication
                if mode == "fast":
                    assert missing == [], f"acknowledged cases the new primary lacks: {missing}"
                if mode == "lagging":
                    assert missing, "the replica lost nothing: the scenario did not happen"
                figures = await _figures(conn)
                assert figures["taken"] + figures["dead"] == figures["written"] == len(events)
                repeats, strangers, reused = await assert_nothing_lost_or_doubled(
                    conn, receiver, exact=mode == "fast"
                )
                assert await ledger_cards(conn) == expected, "cards missing or nobody's due"
            assert daemon.proc.poll() is None, "the daemon exited during the failover"
            records = daemon.records()
            lost = lost_at(records, mark)
            assert lost is not None, "no log line says the source was lost"
            back_at = index_of(records, "source_connected", lost)
            assert back_at is not None, "no log line says the source came back"
            reconnected = _stamp(records[back_at])
            if mode == "lagging":  # jiancha saw commits the new primary lacks, and says so
                assert index_of(records, "database_went_back", mark) is not None
            table = [f"{r['event']}({r.get('reason') or r.get('redecided', '')})"
                     for r in records[mark:] if str(r.get("event", "")).startswith("checkpoint_")
                     and r["event"] != "checkpoint_saved"]  # fmt: skip
            await stop_cleanly(daemon)
        finally:
            daemon.stop()
    return (
        f"\nfailover ({mode} stop): {len(cases)} cases planned, {len(writes.acked)} committed "
        f"({writes.acked_at_stop} before the stop, {len(writes.errors)} writer errors, "
        f"{writes.retried} transactions written again, {len(missing)} acknowledged but not on "
        f"the new primary); new primary: {figures['written']} events, jiancha took "
        f"{figures['taken']} + {figures['dead']} dead letters, 0 lost; {figures['cards']} cards, "
        f"0 duplicates; {figures['queued']} notifications delivered, {repeats} repeated under "
        f"their key, {strangers} sent from the lost timeline only, {reused} keys reused for "
        f"another card; busy at the stop: "
        f"{busy['taken']}/{busy['written']} events taken, {busy['sent']}/{busy['queued']} sent; "
        f"stop {stopped - stopping:.1f} s, promote {promoted - stopped:.1f} s, daemon "
        f"reconnected {reconnected - promoted:.1f} s after the promote, caught up "
        f"{settled - promoted:.1f} s after it "
        f"({settled - written:.1f} s after the writer's last commit, settle {waited:.1f} s); "
        f"clock table at reconnection: {', '.join(table) or 'kept'}; "
        f"{time.monotonic() - began:.1f} s in all"
    )


@pytest.mark.slow
# ``immediate`` runs in `make bench-quick` (bench_failover --quick) and `make bench-failover`:
# the suite keeps the clean stop and the lagging crash, within CI's time
@pytest.mark.parametrize("mode", ["fast", "lagging"])
async def test_failover_to_the_replica_loses_and_doubles_nothing(receiver, tmp_path, mode):
    pair = await trio.to_thread.run_sync(make_pair, tmp_path / "pg")
    try:
        print(await run_failover(pair, receiver, tmp_path, mode))
    finally:
        await trio.to_thread.run_sync(pair.stop_all)
