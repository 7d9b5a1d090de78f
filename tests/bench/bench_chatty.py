"""Benchmark: a chatty case costs its new events, not its history (issue 17, item 6).

Run from the repository root::

    python -m tests.bench.bench_chatty [--quick] [--json PATH]

1. The reduction alone: a case whose history holds n events gets one more.
   The tailer advances its kept fold (`monitor.state.reduce.advance` +
   ``finish``); the anchor, timed in the same run, is what every batch did
   before: ``reduce_case`` over the whole history.
2. Through ``apply_batch`` against a PostgreSQL of its own (pgserver): cases
   that each get one event per batch, hundreds of batches, with the tailer's
   `FoldCache`. The time of a batch at the end against one at the start
   stays about 1 (the anchor run rebuilds every case from its stored history
   every batch, as a cache miss would). Both runs VACUUM the updated tables
   every 40 batches, outside the timing, as autovacuum would: without it the
   dead row versions of 50 rows updated 400 times cost more each batch.

Timings are printed, not asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import trio

from monitor import db
from monitor.log import configure_logging
from monitor.pipeline import apply_batch
from monitor.source.catalogue import load_matters
from monitor.source.contract import START, Matter, SourceEvent
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from monitor.state.case import CaseState
from monitor.state.reduce import Fold, advance, finish, fold, reduce_case
from tests.bench.bench_calendar import best_of, fmt, table
from tests.bench.bench_calendar import finish as finish_bench
from tests.bench.embedded import embedded_server
from tests.sourcekit import SUBMITTED, prepare, write

T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)
MATTERS = {"M1": Matter("M1", "建筑工程施工许可", "住建局", 20, 5)}


def history(n: int) -> list[SourceEvent]:
    events = [SourceEvent(1, 1, "C", "submitted", T0, SUBMITTED),
              SourceEvent(2, 2, "C", "accepted", T0 + dt.timedelta(hours=1), {})]  # fmt: skip
    for k in range(n - 2):
        at = T0 + dt.timedelta(hours=2, seconds=k)
        events.append(SourceEvent(3 + k, 3 + k, "C", "rated", at, {"level": 4 + k % 2}))
    return events


def _advanced(kept: Fold, new: list[SourceEvent]) -> CaseState:
    done = advance(kept, new)
    assert done is not None
    return finish(done, MATTERS)


def reduction(sizes: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        events = history(n + 1)
        kept, new = fold("C", events[:-1]), events[-1:]
        reps = max(3, 20_000 // n)
        adv = best_of(partial(_advanced, kept, new), reps)
        whole = best_of(partial(reduce_case, "C", events, MATTERS), max(3, reps // 10))
        out.append({"history": n, "advance_us": adv * 1e6, "rebuild_us": whole * 1e6,
                    "ratio": adv / whole})  # fmt: skip
    return out


async def through_batches(dsn: str, cases: int, batches: int, rebuild: bool) -> dict[str, Any]:
    """``batches`` batches of one event per case, timed per batch."""
    saved = state_store.FoldCache.get
    if rebuild:  # the anchor: every case a cache miss, walked again from its stored history
        state_store.FoldCache.get = lambda self, case_id: None  # type: ignore[method-assign]
    try:
        async with await db.connect(dsn) as conn:
            await conn.execute("TRUNCATE case_events, jiancha.events, jiancha.cases, "
                               "jiancha.cursor")  # fmt: skip
            matters, cache = await load_matters(conn), state_store.FoldCache()
            cursor, times = START, []
            ids = [f"K{i}" for i in range(cases)]
            await write(conn, [(c, "submitted", T0, SUBMITTED) for c in ids])
            for b in range(batches):
                at = T0 + dt.timedelta(hours=1, seconds=b)
                # a rating that replaces the last: the case's state does not grow, its history does
                await write(conn, [(c, "rated", at, {"level": 4 + b % 2}) for c in ids])
                events = await read_batch(conn, cursor, 100_000)
                t0 = time.perf_counter()
                result = await apply_batch(conn, events, matters, cursor, at, cache=cache,
                                           from_source=True)  # fmt: skip
                times.append(time.perf_counter() - t0)
                cursor = result.cursor
                if b % 40 == 39:  # what autovacuum does each minute in production: the
                    # same rows updated batch after batch leave dead versions to step over
                    await conn.execute("VACUUM jiancha.cases, jiancha.cursor")
            count = await conn.fetchval("SELECT min(event_count) FROM jiancha.cases")
    finally:
        state_store.FoldCache.get = saved  # type: ignore[method-assign]
    k = max(1, batches // 10)
    first, last = sum(times[1 : k + 1]) / k, sum(times[-k:]) / k
    return {"events_per_case": count, "first_ms": first * 1e3, "last_ms": last * 1e3,
            "last_over_first": last / first}  # fmt: skip


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, Any]:
    sizes = (10, 100, 1000) if args.quick else (10, 100, 1000, 10_000)
    red = reduction(sizes)
    print("1. One new event for a case with a history of n events (µs, best of many):")
    print(table(["history n", "advance + finish", "reduce_case (anchor)", "ratio"],
                [[fmt(r["history"], 0), fmt(r["advance_us"]), fmt(r["rebuild_us"]),
                  fmt(r["ratio"], 3)] for r in red]))  # fmt: skip
    cases, batches = (20, 60) if args.quick else (50, 400)
    async with db.open_loop():
        async with await db.connect(admin_dsn) as admin:
            await admin.execute("DROP DATABASE IF EXISTS bench_chatty WITH (FORCE)")
            await admin.execute("CREATE DATABASE bench_chatty")
        dsn = admin_dsn.replace("/postgres?", "/bench_chatty?")
        await prepare(dsn)
        kept = await through_batches(dsn, cases, batches, rebuild=False)
        anchor = await through_batches(dsn, cases, batches, rebuild=True)
    print(f"\n2. apply_batch, {cases} cases, one event each per batch, {batches} batches "
          f"(ms per batch, the first and last tenth):")  # fmt: skip
    print(table(["run", "events a case", "first ms", "last ms", "last / first"],
                [[name, fmt(r["events_per_case"], 0), fmt(r["first_ms"], 2),
                  fmt(r["last_ms"], 2), fmt(r["last_over_first"], 2)]
                 for name, r in (("kept folds", kept),
                                 ("rebuilt every batch (anchor)", anchor))]))  # fmt: skip
    return {"reduction": red, "batches": {"kept": kept, "rebuild": anchor}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller histories and runs")
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configure_logging("ERROR")
    with embedded_server() as (server, _tmp):
        results = trio.run(run, args, server.get_uri())
    return finish_bench(results, started, args.json)


if __name__ == "__main__":
    sys.exit(main())
