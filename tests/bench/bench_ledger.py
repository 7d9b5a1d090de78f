"""Where PostgreSQL's time goes when the daemon issues cards: the ledger's insert, taken apart.

Run from the repository root::

    python -m tests.bench.bench_ledger [--quick] [--rounds N] [--json PATH]

``make bench-cards`` (section 4) shows the card path costing about three
times ingest alone, the server's CPU most of the difference, and one
statement the largest part of it: ``monitor.cards.ledger._INSERT``, which
writes the cards and their ``issued`` steps (sent alone, or after a write's
changes to stored cards in ``_WRITE``). This benchmark takes that
statement apart on the server:

1. The parameters are captured from a real cards run (bench_cards's workload:
   cases ingested and decided through ``apply_batch`` and ``Evaluator.tick``).
2. The captured calls are replayed, in order, each round in a transaction of
   its own that is rolled back, into a freshly migrated database: as the daemon
   sends them; with the foreign key that checked each step's card before schema 18;
   with no check of the card at all; without the stamp trigger;
   without each index of the two tables in turn (dropped inside the transaction,
   so back after the rollback); and into copies of the two tables with no index,
   key, trigger or foreign key (the floor: the same rows, heap and WAL only).
3. ``EXPLAIN ANALYZE`` of the largest call gives each trigger's time as
   PostgreSQL counts it.
4. The same cards' notifications, two channels a card, enqueued as
   ``Notifier.enqueue`` does (its statement), with the outbox's check of the
   card as it is, with the foreign key it replaced, and with none.

Figures: wall milliseconds per round (median of the interleaved rounds), the
server's CPU microseconds per card, and each variant against the daemon's
statement. Nothing is asserted; the module is not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

import monitor.cards.ledger
import monitor.outbox.enqueue
from monitor import db
from monitor.calendar import load_calendar
from monitor.log import configure_logging
from monitor.rules.load import load_rules
from tests.bench import bench_calendar
from tests.bench.bench_cards import SqlTimer, ingest_run, source_database
from tests.bench.bench_tailer import CpuMeter, new_database
from tests.bench.embedded import embedded_server

INSERT = monitor.cards.ledger._INSERT
WRITE = monitor.cards.ledger._WRITE  # the insert after a write's changes, in one statement
CHANGES = 13  # _WRITE's parameters before the insert's
ENQUEUE = monitor.outbox.enqueue._ENQUEUE
CHANNELS = ("wecom", "email")  # two deliveries a card, as a centre with both configured
PAYLOAD = json.dumps({"title": "【黄牌】办件即将超期", "text": "窗口负责人：您好。" * 20,
                      "url": "https://jiancha.example/cards/1"}, ensure_ascii=False)  # fmt: skip
SIZES = {"cases": 20_000, "rounds": 5}
QUICK = {"cases": 2_000, "rounds": 2}


class Capture(SqlTimer):
    """The connection of a cards run, keeping the arguments of every ledger insert."""

    def __init__(self, conn: db.Connection) -> None:
        super().__init__(conn)
        self.inserts: list[tuple[Any, ...]] = []

    async def fetch(self, query: str, *args: object, timeout: float | None = None) -> list[Any]:
        if query == INSERT:
            self.inserts.append(args)
        elif query == WRITE:
            self.inserts.append(args[CHANGES:])
        return await super().fetch(query, *args, timeout=timeout)


async def capture(admin: str, cases: int, pid: int) -> list[tuple[Any, ...]]:
    """Run bench_cards's cards workload once; the ledger inserts it sent, in order."""
    dsn = await source_database(admin, "ledger_capture", cases)
    async with await db.connect(dsn) as plain:
        conn = Capture(plain)
        await ingest_run(conn, load_rules(), load_calendar("cn"), True, pid)
        return conn.inserts


_FLOOR_TABLES = """
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE IF NOT EXISTS floor.cards (LIKE jiancha.cards INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE IF NOT EXISTS floor.card_events
    (LIKE jiancha.card_events INCLUDING DEFAULTS INCLUDING IDENTITY);
"""

_INDEXES = """
SELECT c.relname AS tbl, i.relname AS idx
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'jiancha' AND c.relname IN ('cards', 'card_events') AND NOT x.indisprimary
ORDER BY 1, 2
"""

_FK = """
ALTER TABLE jiancha.card_events ADD CONSTRAINT card_events_card_id_fkey
    FOREIGN KEY (card_id) REFERENCES jiancha.cards (id)
"""


def variants(indexes: Sequence[tuple[str, str]]) -> dict[str, tuple[list[str], str]]:
    """Name -> (DDL run first inside the transaction, the statement)."""
    no_check = "ALTER TABLE jiancha.card_events DISABLE TRIGGER card_step_names_a_card_v1"
    out: dict[str, tuple[list[str], str]] = {
        "as the daemon sends it (schema 18: the card checked per statement)": ([], INSERT),
        "before schema 18: a foreign key, checked per step": ([no_check, _FK], INSERT),
        "no check that the card exists": ([no_check], INSERT),
        "without the stamp trigger (card_events)": (
            ["ALTER TABLE jiancha.card_events DISABLE TRIGGER card_events_stamp_v1"], INSERT),
    }  # fmt: skip
    for tbl, idx in indexes:
        out[f"without {tbl}.{idx}"] = ([f"DROP INDEX jiancha.{idx}"], INSERT)
    out["floor: copies with no index, key or trigger"] = (
        [], INSERT.replace("jiancha.cards", "floor.cards").replace(
            "jiancha.card_events", "floor.card_events"))  # fmt: skip
    return out


Calls = Sequence[tuple[Any, ...]]


async def replay(
    conn: db.Connection, ddl: list[str], statement: str, calls: Calls, pid: int
) -> tuple[float, float, int]:
    """One round, rolled back: (wall s, server CPU s, cards written)."""
    await conn.execute("BEGIN")
    try:
        for sql in ddl:
            await conn.execute(sql)
        meter = CpuMeter(pid)
        t0 = time.perf_counter()
        written = 0
        for args in calls:
            written += len(await conn.fetch(statement, *args))
        wall = time.perf_counter() - t0
        cpu = meter.read()["postgres_cpu_s"]
    finally:
        await conn.execute("ROLLBACK")
    return wall, cpu, written


async def enqueue(conn: db.Connection, ddl: list[str], calls: Calls, pid: int,
                  now: dt.datetime) -> tuple[float, float, int]:  # fmt: skip
    """The cards written (untimed), then their notifications as the notifier enqueues
    them, one statement per ledger insert; timed: the enqueues. Rolled back."""
    await conn.execute("BEGIN")
    try:
        for sql in ddl:
            await conn.execute(sql)
        ids = [[r["id"] for r in await conn.fetch(INSERT, *args)] for args in calls]
        meter = CpuMeter(pid)
        t0 = time.perf_counter()
        rows = 0
        for card_ids in ids:
            keys = [f"card:{i}:{ch}" for i in card_ids for ch in CHANNELS]
            n = len(keys)
            await conn.execute(ENQUEUE, keys, [ch for _ in card_ids for ch in CHANNELS],
                               ["card"] * n, [i for i in card_ids for _ in CHANNELS],
                               [True] * n, [PAYLOAD] * n, [now] * n, [""] * n, now,
                               dt.timedelta(days=3))  # fmt: skip
            rows += n
        wall = time.perf_counter() - t0
        cpu = meter.read()["postgres_cpu_s"]
    finally:
        await conn.execute("ROLLBACK")
    return wall, cpu, rows


_OUTBOX_FK = """
ALTER TABLE jiancha.outbox ADD CONSTRAINT outbox_card_id_fkey
    FOREIGN KEY (card_id) REFERENCES jiancha.cards (id)
"""
OUTBOX_VARIANTS = {
    "as the notifier sends them (schema 18: the card checked per statement)": [],
    "before schema 18: a foreign key, checked per notification": [
        "ALTER TABLE jiancha.outbox DISABLE TRIGGER outbox_names_a_card_v1", _OUTBOX_FK],
    "no check that the card exists": [
        "ALTER TABLE jiancha.outbox DISABLE TRIGGER outbox_names_a_card_v1"],
}  # fmt: skip


async def bench_outbox(conn: db.Connection, calls: Calls, rounds: int,
                       pid: int) -> dict[str, Any]:  # fmt: skip
    now = dt.datetime(2025, 12, 15, 3, tzinfo=dt.UTC)
    for ddl in OUTBOX_VARIANTS.values():  # warm-up
        await enqueue(conn, ddl, calls, pid, now)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in OUTBOX_VARIANTS}
    rows = 0
    for _ in range(rounds):
        for name, ddl in OUTBOX_VARIANTS.items():
            wall, cpu, rows = await enqueue(conn, ddl, calls, pid, now)
            times[name].append((wall, cpu))
    return {"rows": rows, "variants": {
        name: {"wall_ms": statistics.median(w for w, _ in v) * 1e3,
               "server_us_per_row": statistics.median(c for _, c in v) * 1e6 / rows}
        for name, v in times.items()}}  # fmt: skip


async def triggers(conn: db.Connection, calls: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the largest call, rolled back: its triggers' times."""
    largest = max(calls, key=lambda a: len(a[0]))
    await conn.execute("BEGIN")
    try:
        raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + INSERT, *largest)
    finally:
        await conn.execute("ROLLBACK")
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    return {
        "cards": len(largest[0]),
        "execution_ms": plan["Execution Time"],
        "triggers": [{"name": t["Trigger Name"], "relation": t.get("Relation", ""),
                      "ms": t["Time"], "calls": t["Calls"]} for t in plan.get("Triggers", [])],
    }  # fmt: skip


async def bench(admin: str, size: dict[str, int], pid: int) -> dict[str, Any]:
    calls = await capture(admin, size["cases"], pid)
    cards = sum(len(a[0]) for a in calls)
    dsn = await new_database(admin, "ledger_replay")
    async with await db.connect(dsn) as conn:
        await conn.execute(_FLOOR_TABLES)
        indexes = [(r["tbl"], r["idx"]) for r in await conn.fetch(_INDEXES)]
        plan = variants(indexes)
        for ddl, statement in plan.values():  # warm-up: plans, caches, the relations' files
            await replay(conn, ddl, statement, calls, pid)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in plan}
        for _ in range(size["rounds"]):  # interleaved: a slow minute of the VM hits them all
            for name, (ddl, statement) in plan.items():
                wall, cpu, written = await replay(conn, ddl, statement, calls, pid)
                if written != cards:
                    raise SystemExit(f"{name}: wrote {written} cards of {cards}")
                times[name].append((wall, cpu))
        explain = await triggers(conn, calls)
        outbox = await bench_outbox(conn, calls, size["rounds"], pid)
    rows = {name: {"wall_ms": statistics.median(w for w, _ in v) * 1e3,
                   "server_us_per_card": statistics.median(c for _, c in v) * 1e6 / cards}
            for name, v in times.items()}  # fmt: skip
    return {"calls": len(calls), "cards": cards, "variants": rows, "explain": explain,
            "outbox": outbox}  # fmt: skip


def report(res: dict[str, Any]) -> None:
    cards = res["cards"]
    print(f"{cards:,} cards in {res['calls']} ledger inserts, captured from a cards run; "
          "each variant replays them all in a transaction rolled back")  # fmt: skip
    base = next(iter(res["variants"].values()))
    rows = [[name, f"{v['wall_ms']:,.0f}", f"{v['wall_ms'] * 1e3 / cards:.1f}",
             f"{v['server_us_per_card']:.1f}", f"{v['wall_ms'] / base['wall_ms']:.2f}x"]
            for name, v in res["variants"].items()]  # fmt: skip
    print(
        bench_calendar.table(
            ["variant", "ms", "us/card", "server CPU us/card", "/ the daemon's"], rows
        )
    )
    ex = res["explain"]
    print(f"EXPLAIN ANALYZE of the largest insert ({ex['cards']:,} cards): "
          f"{ex['execution_ms']:,.0f} ms")  # fmt: skip
    print(bench_calendar.table(
        ["trigger", "on", "ms", "calls", "us/call"],
        [[t["name"], t["relation"], f"{t['ms']:,.0f}", f"{t['calls']:,}",
          f"{t['ms'] * 1e3 / max(t['calls'], 1):.1f}"] for t in ex["triggers"]]))  # fmt: skip


def report_outbox(out: dict[str, Any]) -> None:
    rows = out["rows"]
    print(f"the same cards' notifications: {rows:,} outbox rows ({len(CHANNELS)} channels a "
          "card), enqueued as the notifier does, one statement per ledger insert")  # fmt: skip
    base = next(iter(out["variants"].values()))
    print(bench_calendar.table(
        ["variant", "ms", "us/row", "server CPU us/row", "/ as sent"],
        [[name, f"{v['wall_ms']:,.0f}", f"{v['wall_ms'] * 1e3 / rows:.1f}",
          f"{v['server_us_per_row']:.1f}", f"{v['wall_ms'] / base['wall_ms']:.2f}x"]
         for name, v in out["variants"].items()]))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 cases, 2 rounds (a smoke run)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    configure_logging("WARNING")
    size = dict(QUICK if args.quick else SIZES)
    if args.rounds:
        size["rounds"] = args.rounds
    started = time.perf_counter()
    print("jiancha ledger insert, taken apart on the server")
    with embedded_server("jiancha-bench-ledger-") as (server, _tmp):
        pid = server.get_pid()
        assert pid is not None
        res = trio.run(_with_loop, bench, server.get_uri(), size, pid)
    report(res)
    report_outbox(res["outbox"])
    print(f"(benchmark ran {time.perf_counter() - started:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


async def _with_loop(fn: Callable[..., Awaitable[Any]], *a: Any) -> Any:
    async with db.open_loop():
        return await fn(*a)


if __name__ == "__main__":
    sys.exit(main())
