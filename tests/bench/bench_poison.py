"""Benchmark and fault test of poison isolation: 10,000 bad events among 100,000 good ones.

Run from the repository root::

    python -m tests.bench.bench_poison [--quick] [--json PATH]

Against a PostgreSQL of its own (pgserver, in a temporary directory, removed
afterwards). Each run loads a backlog into ``case_events`` and runs the Worker
(cards on, as in ``jiancha run``) until its cursor reaches the last row:

1. clean: the good events alone, the figure to compare with;
2. rejected: the same with 10,000 bad events that validation rejects (every
   poison of tests/poisonkit.py in turn), none for the database to refuse;
3. flood: the same good events with 9,950 bad ones shuffled in (every poison
   of tests/poisonkit.py in turn: the operator's int32 day counts, 1e309 fees,
   8 KB case ids and windows, and one per limit of the contract) and 50 valid
   events a test trigger on ``jiancha.cases`` refuses, which the batches they
   fall in must bisect out.

The flood must end with 0 crashes, every good event taken, every bad one
dead-lettered with its reason and every case equal to reducing its good
events (``tests.poisonkit.check``): the process exits 1 otherwise. Timings
are printed, not asserted. ``--quick`` runs 10,000 good and 1,000 bad (a
smoke test; the same size runs in the suite, tests/test_poison.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.evaluator import Evaluator, configure_gc
from monitor.log import configure_logging
from monitor.rules.load import load_rules
from tests.bench.bench_calendar import finish, fmt, table
from tests.bench.embedded import embedded_server
from tests.poisonkit import Flood, report, run_flood
from tests.sourcekit import prepare

SIZES = {"full": (100_000, 9_950, 50), "quick": (10_000, 990, 10)}  # good, bad, traps


async def fresh(admin_dsn: str, name: str) -> str:
    async with await db.connect(admin_dsn) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.replace("/postgres?", f"/{name}?")
    await prepare(dsn)
    return dsn


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, Any]:
    good, bad, traps = SIZES["quick" if args.quick else "full"]
    rules, cal = load_rules("cards"), load_calendar("cn")
    results: dict[str, Any] = {}
    async with db.open_loop():
        for name, flood in (("clean", Flood(good=good, bad=0)),
                            ("rejected", Flood(good=good, bad=bad + traps)),
                            ("flood", Flood(good=good, bad=bad, traps=traps))):  # fmt: skip
            flood.build()
            dsn = await fresh(admin_dsn, f"bench_poison_{name}")
            f = await run_flood(dsn, flood, Evaluator(rules, cal), batch_size=args.batch_size,
                                timeout=3600)  # fmt: skip
            f["events"] = len(flood.rows)
            f["events_per_s"] = len(flood.rows) / f["seconds"]
            print(f"{name}: {report(f, len(flood.rows))}")
            if f["problems"]:
                print("PROBLEMS:\n  " + "\n  ".join(f["problems"]))
            results[name] = f
    rows = [[name, fmt(f["events"], 0), fmt(f["stored"], 0), fmt(f["dead"], 0),
             fmt(f["isolated"], 0), fmt(f["batches"], 0), fmt(f["seconds"]),
             fmt(f["events_per_s"], 0), f["reconnects"], len(f["problems"])]
            for name, f in results.items()]  # fmt: skip
    print()
    print(table(["run", "events", "stored", "dead letters", "bisected out", "batches", "s",
                 "events/s", "reconnects", "problems"], rows))  # fmt: skip
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 good and 1,000 bad events")
    parser.add_argument("--batch-size", type=int, default=5000, help="the worker's (5000)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configure_logging("ERROR")  # info and dead-letter warnings are noise; isolations are errors
    configure_gc()
    with embedded_server() as (server, _tmp):
        results = trio.run(run, args, server.get_uri())
    failed = any(f["problems"] for f in results.values())
    finish(results, started, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
