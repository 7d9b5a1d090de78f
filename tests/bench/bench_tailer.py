"""Benchmark of the source tailer: backlog drain, the naive reader it replaces, live latency.

Run from the repository root::

    python -m tests.bench.bench_tailer [--quick] [--json PATH]

Everything runs against a PostgreSQL of its own (pgserver, in a temporary
directory, removed afterwards), with the workload of tests/torture.py: eight
writers, transactions of 1–5 events held open 0–20 ms, 5% rolled back.

1. Backlog drain: the events are loaded first with no tailer, then the Tailer
   runs in this process and the clock runs until its cursor reaches the last
   row, once per batch size. The anchor, measured in the same run, is the naive
   reader (``WHERE id > $1 ORDER BY id LIMIT n`` in a loop, reading only).
2. Where the time of a drain goes: ``apply_batch`` called directly, with the
   connection's statements, the commit and the pure stages timed.
3. Live against the writers: the naive ``id > last_seen`` reader and the Tailer
   run side by side while the writers commit out of id order; how many events
   each never saw.
4. Live latency: 16 writers in two other processes at steady rates; per event,
   the time from its writer's COMMIT returning to the COMMIT of the tailer's
   batch that took it (and, as a lower bound, to ``jiancha.events.ingested_at``,
   which is stamped when the batch starts).

Targets are printed beside the figures; nothing here asserts a timing, and the
module is not collected by pytest. ``--quick`` runs every section small (a
smoke test, well under 30 s).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import gc
import json
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psutil
import trio

import monitor.evaluator
import monitor.evaluator.parts
import monitor.evaluator.shell
import monitor.pipeline
import monitor.source.tailer
import monitor.state.reduce
import monitor.state.store
import monitor.worker
from monitor import db
from monitor.calendar import load_calendar
from monitor.config import BATCH_SIZE
from monitor.evaluator import Evaluator, configure_gc
from monitor.lease import Lease
from monitor.log import configure_logging
from monitor.pipeline import apply_batch
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Cursor, SourceEvent
from monitor.source.tailer import read_batch
from monitor.state import statements
from monitor.state import store as state_store
from monitor.worker import Worker, WorkerConfig
from tests.bench import bench_calendar
from tests.bench.bench_calendar import finish, fmt, table, verdict
from tests.sourcekit import prepare
from tests.torture import Ledger, WorkloadConfig, run_workload

REPO = Path(__file__).resolve().parents[2]
SEED = 20240308

SIZES = {
    "backlog": 50_000,  # section 1 and 2
    "batch_sizes": (1000, 5000, 20000, BATCH_SIZE),  # the last one batch: the default's
    "live_events": 10_000,  # section 3
    "latency_rates": (500.0, 1_000.0, 2_000.0),  # section 4, events/s over all writers
    "latency_seconds": 10.0,
    "latency_writers": 16,
    "writer_processes": 2,
}
QUICK = {
    "backlog": 5_000,
    "batch_sizes": (1000, 5000),
    "live_events": 1_500,
    "latency_rates": (1_000.0,),
    "latency_seconds": 2.0,
    "latency_writers": 16,
    "writer_processes": 2,
}
# Issue 21: p99 <= 50 ms at 1,000 events/s asked; of 2,000 asked, >= 1,900 achieved.
LIVE_DAYS = 30.0  # the daemon's live run: cases submitted up to this many days ago
TARGETS = {
    "drain_events_per_s": 100_000.0,
    "latency_p99_ms": 50.0,
    "latency_rate": 1_000.0,
    "achieved_of_2000": 1_900.0,
}

_NAIVE = """
SELECT id, tx::text AS tx, case_id, kind, occurred_at, payload
FROM case_events WHERE id > $1 ORDER BY id LIMIT $2
"""
_LAST = (
    "SELECT tx::text AS tx, id FROM case_events "
    "ORDER BY case_events.tx DESC, case_events.id DESC LIMIT 1"
)
_RESET = "TRUNCATE jiancha.events, jiancha.cases, jiancha.dead_letters, jiancha.cursor"


# --- machine and server ------------------------------------------------------------


def machine_info(server_version: str) -> dict[str, Any]:
    info = bench_calendar.machine_info()  # CPU, cores, memory, Python, numpy, numba
    info["asyncpg"] = asyncpg.__version__
    info["trio"] = trio.__version__
    info["postgresql"] = server_version
    info["code"] = code_hash()
    return info


def code_hash() -> str:
    mods = (monitor.source.tailer, monitor.pipeline, monitor.evaluator.shell,
            monitor.evaluator.parts, monitor.worker,
            monitor.state.reduce, monitor.state.store, monitor.state.statements, db)  # fmt: skip
    files = [Path(m.__file__ or "") for m in mods]
    return bench_calendar.describe_code(
        files, "monitor/{source,pipeline,evaluator/*,worker,state,db}"
    )


class CpuMeter:
    """CPU seconds of this process and of the PostgreSQL server since creation."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.t = time.perf_counter()
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for: writer processes
        pg = 0.0
        try:
            root = psutil.Process(self.server_pid)
            t = root.cpu_times()  # children_*: backends that have exited (reaped)
            pg = t.user + t.system + t.children_user + t.children_system
            for proc in root.children(recursive=True):
                try:
                    t = proc.cpu_times()
                    pg += t.user + t.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        return me.ru_utime + me.ru_stime, pg, kids.ru_utime + kids.ru_stime

    def read(self) -> dict[str, float]:
        me, pg, kids = self._now()
        wall = time.perf_counter() - self.t
        return {
            "wall_s": wall,
            "python_cpu_s": me - self.start[0],
            "postgres_cpu_s": pg - self.start[1],
            "children_cpu_s": kids - self.start[2],
        }


def cpu_budget(run: dict[str, Any], events: int) -> dict[str, float]:
    """CPU microseconds per event, and the rate the machine's cores allow at that cost.

    The drain is CPU-bound on both sides, so (Python + PostgreSQL) CPU per event
    against the core count is a ceiling no scheduling can beat.
    """
    py = run["cpu"]["python_cpu_s"] * 1e6 / events
    pg = run["cpu"]["postgres_cpu_s"] * 1e6 / events
    cores = float(os.cpu_count() or 1)
    return {
        "python_us": py,
        "postgres_us": pg,
        "total_us": py + pg,
        "cores": cores,
        "ceiling": cores * 1e6 / (py + pg),
    }


def cpu_note(c: dict[str, float]) -> str:
    return (
        f"[{c['wall_s']:.1f} s wall: this Python process {c['python_cpu_s']:.1f} s CPU, "
        f"PostgreSQL server {c['postgres_cpu_s']:.1f} s CPU]"
    )


def title(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


@asynccontextmanager
async def tailing(dsn: str, *, daemon: bool = False, **overrides: Any) -> AsyncIterator[Worker]:
    """A worker on ``dsn``; ``daemon``: as `jiancha run` has it, with the evaluator (the
    example rules, the cn calendar; no channels) and the leader's fence in every transaction."""
    config = WorkerConfig(source_dsn=dsn, dsn=dsn, **overrides)
    async with trio.open_nursery() as nursery:
        evaluator = None
        if daemon:
            evaluator = Evaluator(load_rules("cards"), load_calendar("cn"))
            lease = Lease(dsn, trio.sleep_forever, holder="bench")
            nursery.start_soon(lease.run)
            with trio.fail_after(30):
                while not lease.leading:
                    await trio.sleep(0.01)
            config = dataclasses.replace(
                config, session=dataclasses.replace(config.session, fence=lease.fence)
            )
        t = Worker(config, evaluator=evaluator)
        await nursery.start(t.run)
        yield t
        nursery.cancel_scope.cancel()


async def last_position(conn: db.Connection) -> Cursor:
    row = await conn.fetchrow(_LAST)
    return START if row is None else Cursor(int(row["tx"]), int(row["id"]))


async def new_database(admin_dsn: str, name: str) -> str:
    async with await db.connect(admin_dsn) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.replace("/postgres?", f"/{name}?")
    await prepare(dsn)
    return dsn


# --- section 1: backlog drain -------------------------------------------------------


async def load_backlog(dsn: str, events: int) -> dict[str, Any]:
    # Transactions are held 0–2 ms here (not 0–20 ms): only the loading is
    # faster, the rows and their commit order are the same kind.
    t0 = time.perf_counter()
    ledger = await run_workload(
        dsn, WorkloadConfig(writers=8, events=events, max_hold=0.002, seed=SEED)
    )
    async with await db.connect(dsn) as conn:
        await conn.execute("VACUUM ANALYZE case_events")
    return {
        "events": len(ledger.committed),
        "transactions": ledger.transactions,
        "cases": len(ledger.case_ids()),
        "rolled_back_events": len(ledger.rolled_back),
        "load_s": time.perf_counter() - t0,
    }


async def drain_once(dsn: str, batch_size: int, end: Cursor, n: int) -> dict[str, Any]:
    async with await db.connect(dsn) as conn:
        await conn.execute(_RESET)
        await conn.execute("VACUUM ANALYZE jiancha.events, jiancha.cases")
    async with tailing(dsn, batch_size=batch_size) as t:
        t0 = time.perf_counter()
        while t.stats.cursor < end:
            await trio.sleep(0.001)
        seconds = time.perf_counter() - t0
        batches = t.stats.batches
    return {
        "batch_size": batch_size,
        "seconds": seconds,
        "events_per_s": n / seconds,
        "batches": batches,
    }


async def naive_read_all(dsn: str, batch_size: int) -> tuple[int, float]:
    async with await db.connect(dsn) as conn:
        t0 = time.perf_counter()
        last, n = 0, 0
        while rows := await conn.fetch(_NAIVE, last, batch_size):
            n += len(rows)
            last = rows[-1]["id"]
        return n, time.perf_counter() - t0


async def tailer_read_all(dsn: str, batch_size: int) -> tuple[int, float]:
    async with await db.connect(dsn) as conn:
        t0 = time.perf_counter()
        cursor, n = START, 0
        while events := await read_batch(conn, cursor, batch_size):
            n += len(events)
            cursor = Cursor(events[-1].tx, events[-1].event_id)
        return n, time.perf_counter() - t0


async def bench_drain(dsn: str, size: dict[str, Any], server_pid: int) -> dict[str, Any]:
    load = await load_backlog(dsn, size["backlog"])
    n = load["events"]
    print(
        f"backlog: {n:,} events in {load['transactions']:,} committed transactions, "
        f"{load['cases']:,} cases ({load['rolled_back_events']:,} more rows rolled back); "
        f"loaded by 8 writers in {load['load_s']:.1f} s"
    )
    async with await db.connect(dsn) as conn:
        end = await last_position(conn)
    runs = []
    for bs in size["batch_sizes"]:
        meter = CpuMeter(server_pid)
        r = await drain_once(dsn, bs, end, n)
        r["cpu"] = meter.read()
        runs.append(r)
    # anchors: reading only, same batch size as the daemon's default
    naive_n, naive_s = await naive_read_all(dsn, 5000)
    naive_n, naive_s2 = await naive_read_all(dsn, 5000)  # warm, like the drains
    read_n, read_s = await tailer_read_all(dsn, 5000)
    naive_s = min(naive_s, naive_s2)
    target = TARGETS["drain_events_per_s"]
    rows = [
        [
            f"Tailer, batch {r['batch_size']:,}",
            f"{n:,}",
            r["batches"],
            fmt(r["seconds"], 2),
            fmt(r["events_per_s"], 0),
            f">= {target:,.0f}",
            verdict(r["events_per_s"] >= target),
            f"{r['cpu']['python_cpu_s']:.1f} / {r['cpu']['postgres_cpu_s']:.1f}",
        ]
        for r in runs
    ]
    for name, count, secs in (
        ("anchor: naive id > $1 reader (read only)", naive_n, naive_s),
        ("Tailer's read_batch alone (read only)", read_n, read_s),
    ):
        rows.append([name, f"{count:,}", "", fmt(secs, 2), fmt(count / secs, 0), "", "", ""])
    print(
        table(
            ["reader", "events", "batches", "s", "events/s", "target", "", "CPU s py / pg"],
            rows,
        )
    )
    print("  Tailer: in this process, source = jiancha database, clock from start (connected,")
    print("  cursor loaded) until its cursor reaches the last (tx, id); events, cases and cursor")
    print("  committed per batch. Readers: LIMIT 5000, rows decoded (jsonb payload to dict).")
    best = max(r["events_per_s"] for r in runs)
    budget = cpu_budget(max(runs, key=lambda r: r["events_per_s"]), n)
    print(
        f"  CPU per event (best run): Python {budget['python_us']:.1f} us + PostgreSQL "
        f"{budget['postgres_us']:.1f} us = {budget['total_us']:.1f} us. With all "
        f"{budget['cores']:.0f} cores busy that allows at most {budget['ceiling']:,.0f} events/s;"
    )
    print(
        f"  {target:,.0f} events/s needs <= {budget['cores'] * 1e6 / target:.0f} us of CPU "
        "per event in all, and the Python process itself runs on one core."
    )
    return {
        "cpu_budget": budget,
        "load": load,
        "runs": runs,
        "naive_read_events_per_s": naive_n / naive_s,
        "tailer_read_events_per_s": read_n / read_s,
        "best_events_per_s": best,
        "target": target,
        "met": best >= target,
    }


# --- section 2: where the time goes ------------------------------------------------


class TimedConnection:
    """A ``db.Connection`` stand-in that adds up the time of each statement."""

    def __init__(self, conn: db.Connection, stages: dict[str, float]) -> None:
        self.conn = conn
        self.stages = stages
        self.names = {
            **{sql: "insert events" for sql in statements.EVENTS_SQL.values()},
            **{sql: "events, cases, cursor in one" for sql in statements.BATCH_WRITES.values()},
            statements.INSERT_DEAD: "insert dead letters",
            statements.STARTS: "load first sight and histories",
            statements.UPSERT_CASES: "upsert cases",
            statements.CREATE_CASE_ROWS: "upsert cases",
            statements.UPSERT_CASE_ROWS: "upsert cases",
            statements.SAVE_CURSOR: "save cursor",
        }

    def _add(self, query: str, t0: float) -> None:
        name = self.names.get(query, "other SQL")
        self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    async def execute(self, query: str, *args: Any, **kw: Any) -> str:
        t0 = time.perf_counter()
        try:
            return await self.conn.execute(query, *args, **kw)
        finally:
            self._add(query, t0)

    async def fetch(self, query: str, *args: Any, **kw: Any) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return await self.conn.fetch(query, *args, **kw)
        finally:
            self._add(query, t0)

    async def copy_records(self, table: str, records: Any, **kw: Any) -> str:
        t0 = time.perf_counter()
        try:
            return await self.conn.copy_records(table, records, **kw)
        finally:  # a batch's case rows, or (jiancha in another database) its events
            name = "upsert cases" if table == statements.CASE_ROWS_TABLE else "insert events"
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    @asynccontextmanager
    async def transaction(self, **kw: Any) -> AsyncIterator[None]:
        t0 = time.perf_counter()
        async with self.conn.transaction(**kw):
            self.stages["begin"] = self.stages.get("begin", 0.0) + time.perf_counter() - t0
            yield
            t1 = time.perf_counter()
        self.stages["commit"] = self.stages.get("commit", 0.0) + time.perf_counter() - t1


def _timed(fn: Callable[..., Any], name: str, stages: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


OTHER = "other Python in apply_batch (rows to events, json dumps, ...)"
STAGE_ORDER = (
    "read (read_batch)", "validate (split)", "begin", "insert dead letters", "insert events",
    "load first sight and histories", "reduce", "build case rows", "upsert cases",
    "save cursor", "events, cases, cursor in one", "commit", "other SQL", OTHER,
)  # fmt: skip


async def stage_run(
    dsn: str,
    batch_size: int,
    server_pid: int,
    *,
    cache: state_store.FoldCache | None = None,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Drain the backlog with read_batch + apply_batch, timing each stage."""
    stages: dict[str, float] = {}
    patched = {
        (monitor.pipeline, "split"): "validate (split)",
        (monitor.state.store, "fold"): "reduce",
        (monitor.state.store, "advance"): "reduce",
        (monitor.state.store, "finish"): "reduce",
        (monitor.state.store, "_case_rows"): "build case rows",
    }
    saved = {(mod, name): getattr(mod, name) for mod, name in patched}
    # Stages one after the other: with the reduction overlapping the event copy in a
    # thread, their times would overlap too (and cProfile sees one thread only).
    # And each statement alone, not a small batch's one statement for all.
    overlap = (monitor.state.store, "OVERLAP_MIN_EVENTS")
    one = (monitor.state.store, "ONE_STATEMENT_MAX_EVENTS")
    saved[overlap] = monitor.state.store.OVERLAP_MIN_EVENTS
    saved[one] = monitor.state.store.ONE_STATEMENT_MAX_EVENTS
    monitor.state.store.OVERLAP_MIN_EVENTS = 1 << 62
    monitor.state.store.ONE_STATEMENT_MAX_EVENTS = 0
    async with await db.connect(dsn) as conn:
        await conn.execute(_RESET)
        await conn.execute("VACUUM ANALYZE jiancha.events, jiancha.cases")
        matters = await load_matters(conn)
        timed = TimedConnection(conn, stages)
        if profile is None:
            for (mod, name), label in patched.items():
                setattr(mod, name, _timed(saved[(mod, name)], label, stages))
        apply_s = 0.0
        meter = CpuMeter(server_pid)
        try:
            t0 = time.perf_counter()
            cursor, batches, n = START, 0, 0
            while True:
                t1 = time.perf_counter()
                events = await read_batch(conn, cursor, batch_size)
                stages["read (read_batch)"] = stages.get("read (read_batch)", 0.0) + (
                    time.perf_counter() - t1
                )
                if not events:
                    break
                t2 = time.perf_counter()
                if profile is not None:
                    profile.enable()
                result = await apply_batch(
                    timed,  # type: ignore[arg-type]
                    events,
                    matters,
                    cursor,
                    dt.datetime.now(dt.UTC),
                    cache=cache,
                    from_source=True,  # as the Tailer does when jiancha lives in the source
                )
                if profile is not None:
                    profile.disable()
                apply_s += time.perf_counter() - t2
                cursor = result.cursor
                batches += 1
                n += len(events)
            total = time.perf_counter() - t0
            cpu = meter.read()
        finally:
            for (mod, name), fn in saved.items():
                setattr(mod, name, fn)
    accounted = sum(v for k, v in stages.items() if k != "read (read_batch)")
    stages[OTHER] = apply_s - accounted
    return {"stages_s": stages, "total_s": total, "batches": batches, "events": n, "cpu": cpu}


async def bench_stages(dsn: str, batch_size: int, server_pid: int) -> dict[str, Any]:
    plain = await stage_run(dsn, batch_size, server_pid)
    cached = await stage_run(dsn, batch_size, server_pid, cache=state_store.FoldCache())
    n = plain["events"]
    rows = []
    for name in (*STAGE_ORDER, "total"):
        cells = [name]
        for run in (plain, cached):
            v = run["total_s"] if name == "total" else run["stages_s"].get(name)
            if v is None:
                cells += ["", "", ""]
            else:
                cells += [fmt(v * 1e3, 0), f"{100 * v / run['total_s']:.1f}%", fmt(v / n * 1e6, 2)]
        rows.append(cells)
    print(
        f"read_batch + apply_batch called directly in a loop, batch {batch_size:,}, {n:,} events, "
        f"{plain['batches']} batches:"
    )
    print(
        f"  no read-ahead, no overlap; no cache: {n / plain['total_s']:,.0f} events/s; "
        f"with cache=FoldCache() (as the Tailer): {n / cached['total_s']:,.0f} events/s"
    )
    print(
        table(
            ["stage", "ms", "share", "us/event", "cache: ms", "share", "us/event"],
            rows,
        )
    )
    print("  SQL stages are wall time of the round trip through the trio-asyncio bridge (server")
    print("  work + transfer + encoding/decoding); Python stages are this process's time.")
    print("  Stages run one after the other here; the Tailer reduces a batch of")
    print(f"  {state_store.OVERLAP_MIN_EVENTS:,} valid events or more in a worker thread while the")
    print("  server stores its events ('insert events'), so the two overlap there.")
    print("  no cache: " + cpu_note(plain["cpu"]))
    print("  cache:    " + cpu_note(cached["cpu"]))

    profile = cProfile.Profile()
    await stage_run(dsn, batch_size, server_pid, profile=profile)
    stats = pstats.Stats(profile)
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]  # type: ignore[attr-defined]
    prof_rows = [
        [f"{Path(f).name}:{line}({fn})", f"{cc:,}", fmt(tt * 1e3, 0), fmt(ct * 1e3, 0)]
        for (f, line, fn), (cc, _nc, tt, ct, _callers) in top
    ]
    print("\ncProfile of apply_batch (no cache; a separate run, profiler overhead included):")
    print(table(["function", "calls", "own ms", "cumulative ms"], prof_rows))
    return {
        "batch_size": batch_size,
        "no_cache": {**plain, "events_per_s": n / plain["total_s"]},
        "history_cache": {**cached, "events_per_s": n / cached["total_s"]},
        "profile_top": [r[0] for r in prof_rows],
    }


# The floor's first-sight read as the drain made it when issue 21 was filed (the drain now
# reads first sight and history together, statements.STARTS): the anchor stays the same.
_FIRST_SEEN = "SELECT case_id, first_seen_at FROM jiancha.cases WHERE case_id = ANY($1::text[])"


async def bench_write_floor(dsn: str, batch_size: int, server_pid: int) -> dict[str, Any]:
    """The writes of a drain alone: every batch's statements, all Python results precomputed.

    One writer connection commits the batches one after the other, so this is
    the fastest any drain can go with these statements, however fast the
    Python work before them (reading, validating, reducing) became.
    """
    async with await db.connect(dsn) as conn:
        matters = await load_matters(conn)
        plan: list[tuple[Cursor, Cursor, int, list[str], list[list[Any]]]] = []
        histories: dict[str, list[SourceEvent]] = {}
        cursor, now = START, dt.datetime.now(dt.UTC)
        while events := await read_batch(conn, cursor, batch_size):
            new = Cursor.after(events, cursor)
            touched = sorted({e.case_id for e in events})
            for e in events:
                histories.setdefault(e.case_id, []).append(e)
            states = [monitor.state.reduce.reduce_case(c, histories[c], matters) for c in touched]
            columns = state_store._case_columns(state_store._case_rows(states, {}, now))
            plan.append((cursor, new, len(events), touched, columns))
            cursor = new
        await conn.execute(_RESET)
        await conn.execute("VACUUM ANALYZE jiancha.events, jiancha.cases")
        meter = CpuMeter(server_pid)
        n = 0
        for old, new, count, touched, columns in plan:
            async with conn.transaction():
                await conn.execute(statements.COPY_EVENTS, str(old.tx), old.event_id,
                                   str(new.tx), new.event_id, [], now)  # fmt: skip
                await conn.fetch(_FIRST_SEEN, touched)
                await conn.execute(statements.UPSERT_CASES, *columns, False)
                await conn.execute(statements.SAVE_CURSOR, state_store.SOURCE, str(new.tx),
                                   new.event_id, count, now)  # fmt: skip
            n += count
        cpu = meter.read()
    rate = n / cpu["wall_s"]
    print(
        f"\nThe writes alone (event copy, first_seen_at, case upsert, cursor, commit per batch of "
        f"{batch_size:,}),\nwith every case reduced beforehand: {rate:,.0f} events/s; "
        f"server {cpu['postgres_cpu_s'] * 1e6 / n:.1f} us/event, this process "
        f"{cpu['python_cpu_s'] * 1e6 / n:.1f} us/event (encoding the parameters)."
    )
    print("  No drain with these statements can beat this rate on this machine.")
    return {"events": n, "events_per_s": rate, "cpu": cpu}


class _Rollback(Exception):
    """Ends a timed transaction without keeping its rows."""


async def bench_event_write(dsn: str, batch_size: int, server_pid: int) -> dict[str, Any]:
    """jiancha in another database: the events sent as unnest arrays (INSERT ... ON
    CONFLICT, the fallback) against a binary COPY (the first try), alternating, each
    batch in a transaction rolled back."""
    async with await db.connect(dsn) as conn:
        await conn.execute(_RESET)
        batches, cursor = [], START
        while events := await read_batch(conn, cursor, batch_size):
            batches.append((cursor, Cursor.after(events, cursor), events))
            cursor = batches[-1][1]
        n = sum(len(b[2]) for b in batches)
        now = dt.datetime.now(dt.UTC)
        modes: tuple[state_store.EventCopy, ...] = ("send", "stream")
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for _ in range(4):  # the first round warms up and is dropped
            for mode in modes:
                meter = CpuMeter(server_pid)
                for before, after, events in batches:
                    try:
                        async with conn.transaction():
                            await state_store._store_events(conn, events, [], before, after,
                                                            now, mode)  # fmt: skip
                            raise _Rollback
                    except _Rollback:
                        pass
                runs[mode].append(meter.read())
    rows, out = [], {}
    for mode, label in (("send", "INSERT ... unnest ... ON CONFLICT (before; the fallback)"),
                        ("stream", "binary COPY (copy_records_to_table)")):  # fmt: skip
        rs = runs[mode][1:]
        rate = statistics.median(n / r["wall_s"] for r in rs)
        py = statistics.median(r["python_cpu_s"] * 1e6 / n for r in rs)
        pg = statistics.median(r["postgres_cpu_s"] * 1e6 / n for r in rs)
        out[mode] = {"events_per_s": rate, "python_us": py, "postgres_us": pg}
        rows.append([label, fmt(rate, 0), fmt(py, 1), fmt(pg, 1)])
    print(f"\nThe events' write when jiancha is in another database, {n:,} events in batches of "
          f"{batch_size:,}\n(median of 3 rounds, alternating; rolled back):")  # fmt: skip
    print(table(["statement", "events/s", "Python us/event", "PostgreSQL us/event"], rows))
    ratio = out["stream"]["events_per_s"] / out["send"]["events_per_s"]
    print(f"  binary COPY / unnest: {ratio:.2f}x")
    out["ratio"] = ratio
    return out


# --- section 3: live, against out-of-order commits -----------------------------------


async def bench_live_loss(admin_dsn: str, events: int, server_pid: int) -> dict[str, Any]:
    dsn = await new_database(admin_dsn, "bench_live")
    meter = CpuMeter(server_pid)
    seen: set[int] = set()
    done = trio.Event()
    polls = 0

    async def naive() -> None:
        nonlocal polls
        async with await db.connect(dsn, application_name="naive") as conn:
            last = 0
            while True:
                rows = await conn.fetch(_NAIVE, last, 5000)
                polls += 1
                for r in rows:
                    seen.add(r["id"])
                if rows:
                    last = rows[-1]["id"]
                elif done.is_set():
                    return
                else:
                    await trio.sleep(0.005)

    async with tailing(dsn, batch_size=5000) as t, trio.open_nursery() as nursery:
        nursery.start_soon(naive)
        ledger = await run_workload(dsn, WorkloadConfig(writers=8, events=events, seed=SEED + 3))
        async with await db.connect(dsn) as conn:
            end = await last_position(conn)
            while t.stats.cursor < end:
                await trio.sleep(0.01)
            await trio.sleep(0.2)
            done.set()
            taken = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM jiancha.events")}
    committed = {w.event_id for w in ledger.committed}
    naive_lost = len(committed - seen)
    tailer_lost = len(committed - taken)
    print(
        table(
            ["reader", "committed", "seen", "lost", "lost %"],
            [
                [
                    "naive WHERE id > last_seen",
                    f"{len(committed):,}",
                    f"{len(seen & committed):,}",
                    f"{naive_lost:,}",
                    f"{100 * naive_lost / len(committed):.2f}%",
                ],
                [
                    "Tailer ((tx, id) below the xmin horizon)",
                    f"{len(committed):,}",
                    f"{len(taken & committed):,}",
                    f"{tailer_lost:,}",
                    f"{100 * tailer_lost / len(committed):.2f}%",
                ],
            ],
        )
    )
    print(
        f"  8 writers, {ledger.transactions:,} transactions held open 0-20 ms, "
        f"{ledger.rollbacks} rolled back, in {ledger.seconds:.1f} s; the naive reader polled "
        f"{polls:,} times (every 5 ms when idle) and then read to the end"
    )
    print("  " + cpu_note(meter.read()))
    return {
        "committed": len(committed),
        "naive_lost": naive_lost,
        "tailer_lost": tailer_lost,
        "naive_polls": polls,
        "write_s": ledger.seconds,
    }


# --- section 4: live latency ----------------------------------------------------------


async def warm_up(t: Worker, dsn: str, tmp: Path) -> None:
    """300 events of other cases through the worker first, so that the measured run finds
    the numba kernels loaded, as in a daemon that has been running."""
    cmd = [sys.executable, "-m", "tests.torture", "--dsn", dsn, "--events", "300",
           "--rate", "300", "--writers", "4", "--seed", str(SEED + 99),
           "--out", str(tmp / "warm.json")]  # fmt: skip
    await trio.run_process(cmd, cwd=REPO, check=True)
    async with await db.connect(dsn) as conn:
        end = await last_position(conn)
    with trio.fail_after(120):
        while t.stats.cursor < end:
            await trio.sleep(0.01)


async def run_writers(
    dsn: str, rate: float, size: dict[str, Any], out: Sequence[Path], live_days: float = 0.0
) -> None:
    """The writer processes of a latency run, side by side, each writing its ledger to its
    ``out`` path (`writers_ledger` reads them)."""
    writers, processes = size["latency_writers"], size["writer_processes"]
    events = int(rate * size["latency_seconds"])
    # A writer holding each transaction open 0-20 ms manages ~80 a second
    # (~240 events), and one Python process of writers ~1,200 events/s on
    # this machine: hence 16 writers over two processes.
    async with trio.open_nursery() as spawn:
        for p in range(processes):
            cmd = [sys.executable, "-m", "tests.torture", "--dsn", dsn,
                   "--events", str(events // processes), "--rate", str(rate / processes),
                   "--writers", str(writers // processes), "--seed", str(SEED + 4 + p),
                   "--live-days", str(live_days), "--out", str(out[p])]  # fmt: skip
            spawn.start_soon(partial(trio.run_process, cmd, cwd=REPO, check=True))


def writers_ledger(out: Sequence[Path]) -> tuple[Ledger, float]:
    """The writer processes' ledgers as one, and the seconds they wrote for."""
    parts = [Ledger.from_json(json.loads(path.read_text())) for path in out]
    ledger = Ledger()
    for part in parts:
        ledger.absorb(part)
    return ledger, max(part.seconds for part in parts)  # they ran side by side


async def writers_alone(
    admin_dsn: str, rate: float, size: dict[str, Any], server_pid: int, tmp: Path
) -> dict[str, Any]:
    """The anchor of the rate achieved: the same writers with nothing reading behind them.

    What they achieve alone is what the machine lets them; the runs with a tailer are
    judged against it (on 2 cores the writers, PostgreSQL and the tailer share the CPU).
    """
    name = f"bench_writers_alone_{int(rate)}"
    dsn = await new_database(admin_dsn, name)
    out = [tmp / f"{name}-{p}.json" for p in range(size["writer_processes"])]
    meter = CpuMeter(server_pid)
    await run_writers(dsn, rate, size, out)
    cpu = meter.read()
    ledger, seconds = writers_ledger(out)
    return {"rate_asked": rate, "rate_achieved": len(ledger.committed) / seconds,
            "events": len(ledger.committed), "write_s": seconds, "cpu": cpu}  # fmt: skip


async def latency_run(
    admin_dsn: str,
    rate: float,
    size: dict[str, Any],
    server_pid: int,
    tmp: Path,
    daemon: bool = False,
    live_days: float = 0.0,
) -> dict[str, Any]:
    """One steady-rate run; per-event latencies and what the machine was doing.

    ``live_days``: the writers' submissions are dated up to that many days back, every
    other event when written (`tests.torture`); 0: every case dates from 2024.
    """
    writers, processes = size["latency_writers"], size["writer_processes"]
    name = f"bench_latency_{int(rate)}{'_daemon' * daemon}{'_live' * bool(live_days)}"
    dsn = await new_database(admin_dsn, name)
    committed_at: dict[int, float] = {}  # event id -> wall time the tailer's batch committed
    began_at: dict[int, float] = {}  # event id -> wall time its batch's apply_batch began
    read_at: dict[int, tuple[float, float]] = {}  # event id -> its read's start and end
    original = monitor.worker.apply_batch
    original_read = monitor.source.tailer.read_batch

    async def recording(*args: Any, **kw: Any) -> Any:
        began = time.time()
        result = await original(*args, **kw)
        now = time.time()
        for e in args[1]:
            began_at[e.event_id] = began
            committed_at[e.event_id] = now
        return result

    async def reading(*args: Any, **kw: Any) -> Any:
        began = time.time()
        events = await original_read(*args, **kw)
        now = time.time()
        for e in events:
            read_at[e.event_id] = (began, now)
        return events

    out = [tmp / f"{name}-{p}.json" for p in range(processes)]
    meter = CpuMeter(server_pid)
    monitor.worker.apply_batch = recording  # the worker calls apply_batch
    monitor.source.tailer.read_batch = reading  # and the tailer read_batch
    try:
        # the daemon's defaults: batch BATCH_SIZE, poll 1 s, NOTIFY
        async with tailing(dsn, daemon=daemon) as t:
            warm = 0
            if daemon:  # the kernels load at the evaluator's first cases: before the clock
                await warm_up(t, dsn, tmp)
                warm, meter = t.stats.batches, CpuMeter(server_pid)
            await run_writers(dsn, rate, size, out, live_days)
            async with await db.connect(dsn) as conn:
                end = await last_position(conn)
                while t.stats.cursor < end:
                    await trio.sleep(0.01)
                ingested = {
                    r["event_id"]: r["ingested_at"].timestamp()
                    for r in await conn.fetch("SELECT event_id, ingested_at FROM jiancha.events")
                }
            batches = t.stats.batches - warm
    finally:
        monitor.worker.apply_batch = original
        monitor.source.tailer.read_batch = original_read
    cpu = meter.read()
    ledger, seconds = writers_ledger(out)
    ids = [w.event_id for w in ledger.committed]
    commit = np.array([w.committed_at for w in ledger.committed], dtype=np.float64)
    state_ms = (np.array([committed_at[i] for i in ids]) - commit) * 1e3
    start_ms = (np.array([ingested[i] for i in ids]) - commit) * 1e3
    p = np.percentile(state_ms, [50, 90, 99])
    read0, read1 = (np.array([read_at[i][k] for i in ids]) for k in (0, 1))
    began, done = np.array([began_at[i] for i in ids]), np.array([committed_at[i] for i in ids])
    legs = {  # where an event's latency went, one after the other
        "horizon, wake-up, hand-over (COMMIT to the read that found it)": read0 - commit,
        "the read": read1 - read0,
        "waiting for the batch before (read to apply_batch)": began - read1,
        "apply_batch (one transaction)": done - began,
    }
    return {
        "rate_asked": rate,
        "daemon": daemon,
        "live_days": live_days,
        "rate_achieved": len(ids) / seconds,
        "events": len(ids),
        "transactions": ledger.transactions,
        "rollbacks": ledger.rollbacks,
        "write_s": seconds,
        "batches": batches,
        "writers": writers,
        "writer_processes": processes,
        "to_state_ms": {
            "p50": float(p[0]),
            "p90": float(p[1]),
            "p99": float(p[2]),
            "max": float(state_ms.max()),
        },
        "to_ingested_at_ms": {
            "p50": float(np.percentile(start_ms, 50)),
            "p99": float(np.percentile(start_ms, 99)),
            "max": float(start_ms.max()),
        },
        "cpu": cpu,
        "parts_ms": {
            name: {q: float(np.percentile(v * 1e3, pct)) for q, pct in (("p50", 50), ("p99", 99))}
            for name, v in legs.items()
        },
    }


async def bench_latency(
    admin_dsn: str, size: dict[str, Any], server_pid: int, tmp: Path
) -> dict[str, Any]:
    target = TARGETS["latency_p99_ms"]
    runs = [await latency_run(admin_dsn, r, size, server_pid, tmp) for r in size["latency_rates"]]
    # the product's own path at the judged rate: cards decided in every batch, the fence;
    # a centre's live traffic, then the worst case (every case long overdue on arrival)
    for days in (LIVE_DAYS, 0.0):
        runs.append(await latency_run(admin_dsn, TARGETS["latency_rate"], size, server_pid, tmp,
                                      daemon=True, live_days=days))  # fmt: skip
    # the anchor of the rate achieved: the fastest rate asked, the writers with no reader
    alone = (await writers_alone(admin_dsn, max(size["latency_rates"]), size, server_pid, tmp)
             if len(size["latency_rates"]) > 1 else None)  # fmt: skip
    cores = os.cpu_count() or 1
    rows = []
    for r in runs:
        judged = r["rate_asked"] == TARGETS["latency_rate"]
        st, ia, c = r["to_state_ms"], r["to_ingested_at_ms"], r["cpu"]
        busy = (c["python_cpu_s"] + c["postgres_cpu_s"] + c["children_cpu_s"]) / c["wall_s"]
        rows.append([
            _rate_label(r), f"{r['rate_achieved']:,.0f}", f"{r['events']:,}",
            f"{r['batches']:,}", fmt(st["p50"], 1), fmt(st["p90"], 1), fmt(st["p99"], 1),
            fmt(st["max"], 1), fmt(ia["p99"], 1), f"{busy:.1f} of {cores}",
            f"{c['python_cpu_s'] / c['wall_s']:.2f}", f"{c['children_cpu_s'] / c['wall_s']:.2f}",
            f"<= {target:.0f}" if judged else "", verdict(st["p99"] <= target) if judged else "",
        ])  # fmt: skip
    print(
        table(
            [
                "events/s asked",
                "achieved",
                "events",
                "batches",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "p99 to ingested_at",
                "cores busy",
                "tailer cores",
                "writer cores",
                "p99 target",
                "",
            ],
            rows,
        )
    )
    r = runs[-1]
    if alone is not None:
        c = alone["cpu"]
        print(f"  anchor: the same writers alone at {alone['rate_asked']:,.0f} asked, nothing "
              f"reading: {alone['rate_achieved']:,.0f} achieved ({alone['events']:,} events in "
              f"{alone['write_s']:.1f} s; writer cores {c['children_cpu_s'] / c['wall_s']:.2f}, "
              f"PostgreSQL {c['postgres_cpu_s'] / c['wall_s']:.2f})")  # fmt: skip
    print("  latency = the tailer's batch COMMIT (when apply_batch returned) - the writer's COMMIT")
    print("  (when it returned; the row was visible a little earlier), same wall clock; the")
    print("  'to ingested_at' column ends when the batch started instead (a lower bound).")
    print(
        f"  {r['writers']} writers in {r['writer_processes']} other processes, each transaction "
        "held open 0-20 ms,"
    )
    print("  5% rolled back on top of the rate asked (a rollback gives its slot back: the rate")
    print(f"  is of committed events); the Tailer in this process with the daemon's defaults "
          f"(batch {BATCH_SIZE},")  # fmt: skip
    print("  poll 1 s, woken by NOTIFY). cores busy = CPU of this process, the writer processes")
    print("  and PostgreSQL over the wall time; tailer / writer cores = this process's / the")
    print("  writers' alone. Near 2 of 2 the writers (Python, through the same trio-asyncio")
    print("  bridge) and the tailer queue for the CPU, and the latency measures that too.")
    print()
    print(
        table(
            ["where an event's latency went (each part alone)",
             *(f"{_rate_label(r)}/s p50 | p99 ms" for r in runs)],
            [[name, *(f"{fmt(r['parts_ms'][name]['p50'], 1)} | {fmt(r['parts_ms'][name]['p99'], 1)}"
                      for r in runs)] for name in runs[0]["parts_ms"]],
        )
    )  # fmt: skip
    print("  The horizon: a row is read once every transaction older than its own has ended")
    print("  (snapshot-safe reading; the writers hold theirs open 0-20 ms); the hand-over: once")
    print("  caught up, the tailer reads the next batch when the worker is free for it, so an")
    print("  event committed while the worker takes a batch waits for the end of that batch.")
    print("  The percentiles of the parts do not add up to the total's.")
    print("  'daemon': the worker as `jiancha run` runs it, the evaluator deciding every batch's")
    print("  cases (rules/cards.toml, the cn calendar, no channels) and the leader's fence.")
    print(f"  'live': a centre's traffic: submissions dated up to {LIVE_DAYS:.0f} days back (some "
          "cases")  # fmt: skip
    print("  overdue at once), every later event when it is written; 'overdue': the cases date")
    print("  from 2024, so each is long overdue when it arrives and each of its events, two years")
    print("  late, revokes the cards the one before implied: a worst case for the path.")
    print("  300 events of other cases go first, untimed: the kernels load at the first cases.")
    judged = next(r for r in runs if r["rate_asked"] == TARGETS["latency_rate"])
    p99 = judged["to_state_ms"]["p99"]
    live, overdue = (r["to_state_ms"]["p99"] for r in runs[-2:])
    return {"runs": runs, "writers_alone": alone, "target_p99_ms": target, "p99_ms": p99,
            "met": p99 <= target,
            "daemon_p99_ms": live, "daemon_met": live <= target,
            "daemon_overdue_p99_ms": overdue, "daemon_overdue_met": overdue <= target}  # fmt: skip


def _rate_label(run: dict[str, Any]) -> str:
    kind = ""
    if run["daemon"]:
        kind = " daemon live" if run["live_days"] else " daemon overdue"
    return f"{run['rate_asked']:,.0f}{kind}"


# --- main ------------------------------------------------------------------------------


async def run(args: argparse.Namespace, admin_dsn: str, server_pid: int, tmp: Path) -> dict:
    size = QUICK if args.quick else SIZES
    results: dict[str, Any] = {"quick": args.quick, "sizes": size}
    async with db.open_loop():
        async with await db.connect(admin_dsn) as conn:
            version = await conn.fetchval("SHOW server_version")
        info = machine_info(version)
        results["machine"] = info
        head = "jiancha tailer benchmark" + (" (--quick: small sizes)" if args.quick else "")
        print(head)
        print("=" * len(head))
        print(
            table(
                ["machine", ""],
                [
                    ["CPU", info["cpu"]],
                    ["cores (os / usable)", f"{info['cores']} / {info['cores_usable']}"],
                    ["memory", f"{info['memory_gib']} GiB"],
                    ["python", info["python"]],
                    ["asyncpg / trio", f"{info['asyncpg']} / {info['trio']}"],
                    ["PostgreSQL", f"{info['postgresql']} (pgserver, own data dir, same host)"],
                    ["code", info["code"]],
                    ["gc thresholds", f"{gc.get_threshold()} (as `jiancha run` sets them)"],
                ],
                left=2,
            )
        )

        dsn = await new_database(admin_dsn, "bench_backlog")
        title("1. backlog drain: the Tailer against the naive id reader")
        results["drain"] = await bench_drain(dsn, size, server_pid)

        title("2. where a drain's time goes (apply_batch stages)")
        results["stages"] = await bench_stages(dsn, 5000, server_pid)
        results["write_floor"] = await bench_write_floor(dsn, 5000, server_pid)
        results["event_write"] = await bench_event_write(dsn, 5000, server_pid)

        title("3. live, 8 writers committing out of id order: events never seen")
        results["live"] = await bench_live_loss(admin_dsn, size["live_events"], server_pid)

        title("4. live latency: writer COMMIT to case state committed")
        results["latency"] = await bench_latency(admin_dsn, size, server_pid, tmp)

    title("targets")
    d, lat = results["drain"], results["latency"]
    floor_ratio = d["best_events_per_s"] / results["write_floor"]["events_per_s"]
    summary = [
        ["backlog drain, best batch size", f"{d['best_events_per_s']:,.0f} events/s",
         f">= {TARGETS['drain_events_per_s']:,.0f}", d["met"]],
        [f"live latency p99 at {TARGETS['latency_rate']:,.0f} events/s asked",
         f"{lat['p99_ms']:.1f} ms",
         f"<= {TARGETS['latency_p99_ms']:.0f} ms", lat["met"]],
        ["the same, the daemon's path (cards, fence), live traffic",
         f"{lat['daemon_p99_ms']:.1f} ms",
         f"<= {TARGETS['latency_p99_ms']:.0f} ms", lat["daemon_met"]],
        ["the same, every case two years overdue on arrival (worst case)",
         f"{lat['daemon_overdue_p99_ms']:.1f} ms", f"<= {TARGETS['latency_p99_ms']:.0f} ms",
         lat["daemon_overdue_met"]],
        ["events lost live (Tailer)", str(results["live"]["tailer_lost"]), "0",
         results["live"]["tailer_lost"] == 0],
        ["backlog drain / the writes alone, same run (issue 21)", f"{floor_ratio:.2f}x",
         ">= 1.00x", floor_ratio >= 1.0],
    ]  # fmt: skip
    at_2000 = [r for r in lat["runs"] if r["rate_asked"] == 2_000.0]
    if at_2000:  # not in --quick
        got = at_2000[0]["rate_achieved"]
        summary.append(["events/s achieved of 2,000 asked (writers in other processes)",
                        f"{got:,.0f}", f">= {TARGETS['achieved_of_2000']:,.0f}",
                        got >= TARGETS["achieved_of_2000"]])  # fmt: skip
    results["targets_met"] = {r[0]: bool(r[3]) for r in summary}
    print(
        table(["target", "value", "wanted", ""], [[*r[:3], verdict(bool(r[3]))] for r in summary])
    )
    alone = lat["writers_alone"]
    if alone is not None:
        print(f"  the rate achieved, anchor: the same writers alone at {alone['rate_asked']:,.0f} "
              f"asked, nothing reading: {alone['rate_achieved']:,.0f}")  # fmt: skip
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configure_logging("WARNING")  # the tailer's and the migrations' info lines are noise here
    configure_gc()  # the Tailer runs here as in `jiancha run`, collector settings included
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-bench-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        pid = server.get_pid()
        assert pid is not None
        results = trio.run(run, args, server.get_uri(), pid, tmp)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(results, started, args.json)


if __name__ == "__main__":
    sys.exit(main())
