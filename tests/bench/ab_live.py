"""The daemon's live batch in two code revisions, on the same events: what a batch costs alone.

Run from the repository root::

    python -m tests.bench.ab_live BASE [OTHER] [--runs N] [--batch-size B] [--events E]
                                  [--profile N]

``make bench-tailer``'s daemon row times a live event from its writer's COMMIT,
with 16 writers in two other processes on the same two cores: its p99 moves
by a third between runs of one tree, more than most changes to the batch
itself. Here the live traffic of that row (``tests.torture --live-days 30``:
submissions up to 30 days back, every later event when written) is loaded
once, then each revision, in a fresh process and a fresh copy of the database
(``CREATE DATABASE ... TEMPLATE``), takes it in batches of ``B`` events one
after the other, as `jiancha run` takes a caught-up batch: ``apply_batch`` with
the evaluator deciding its cases at the batch's instant (``live``), then the
tick when one is due. Nothing else runs. Every batch is judged at the same
instant (one second after the last event), so both revisions decide the same
cards. The leader's fence is left out (one round trip a batch in the daemon).

Figures per revision (median over its runs): a batch's wall time (p50, p90,
p99, mean), its round trips to PostgreSQL, and the cards issued (equal, or the
revisions decide differently). Nothing is asserted; not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

from monitor import db
from monitor.log import configure_logging
from tests.bench.ab_tailer import revisions
from tests.bench.bench_tailer import SEED, new_database
from tests.torture import WorkloadConfig, run_workload

# Run in a child process against one revision's code: APIs both sides of issue 21's
# live path have (apply_batch's evaluator, cache, from_source and live).
_CHILD = r"""
import datetime as dt, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import trio
from monitor import db
from monitor.calendar import load_calendar
from monitor.daemon import configure_gc
from monitor.evaluator import Evaluator
from monitor.log import configure_logging
from monitor.pipeline import apply_batch
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.source.contract import START
from monitor.source.tailer import read_batch
from monitor.state.store import FoldCache

configure_gc()
configure_logging("WARNING")
dsn, batch, now = sys.argv[2], int(sys.argv[3]), dt.datetime.fromisoformat(sys.argv[4])
top = int(sys.argv[5])  # > 0: the batches under cProfile, its top functions printed
trips = [0]
call = db.Connection._call

async def counted(self, method, *args, **kw):
    trips[0] += 1
    return await call(self, method, *args, **kw)

async def main():
    async with db.open_loop(), await db.connect(dsn) as conn:
        ev = Evaluator(load_rules("cards"), load_calendar("cn"))
        ev.warm(now)
        matters = await load_matters(conn)
        await ev.start(conn, matters, now)
        cache, cursor, times, rounds = FoldCache(), START, [], []
        db.Connection._call = counted
        if top:
            import cProfile
            profile = cProfile.Profile()
            profile.enable()
        while events := await read_batch(conn, cursor, batch):
            trips[0] = 0
            t0 = time.perf_counter()
            result = await apply_batch(conn, events, matters, cursor, now, evaluator=ev,
                                       cache=cache, from_source=True, live=now)
            if ev.due(now):
                await ev.tick(conn, matters, now)
            times.append(time.perf_counter() - t0)
            rounds.append(trips[0])
            cursor = result.cursor
        cards = await conn.fetchval("SELECT count(*) FROM jiancha.cards")
    if top:
        import pstats
        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(top)
    ms = np.asarray(times) * 1e3
    print(json.dumps({"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
                      "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()),
                      "batches": len(times), "trips": sum(rounds) / len(rounds),
                      "cards": int(cards)}))

trio.run(main)
"""

FIGURES = ("p50", "p90", "p99", "mean", "trips")


TEMPLATE = "bench_live"


async def prepare(admin_dsn: str, events: int) -> tuple[str, int]:
    """The live traffic in the template database; the instant every batch is judged at."""
    async with db.open_loop():
        dsn = await new_database(admin_dsn, TEMPLATE)
        ledger = await run_workload(dsn, WorkloadConfig(writers=8, events=events, max_hold=0.002,
                                                        seed=SEED, live_days=30.0))  # fmt: skip
        async with await db.connect(dsn) as conn:
            await conn.execute("VACUUM ANALYZE case_events")
            last = await conn.fetchval("SELECT max(occurred_at) FROM case_events")
    now = (last.replace(microsecond=0) + dt.timedelta(seconds=1)).isoformat()
    return now, len(ledger.committed)


async def fresh_copy(admin_dsn: str, name: str) -> str:
    """A new database copied from the loaded one (the ledger cannot be truncated)."""
    async with db.open_loop(), await db.connect(admin_dsn) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return admin_dsn.replace("/postgres?", f"/{name}?")


def one_run(code: Path, dsn: str, batch: int, now: str, top: int = 0) -> dict[str, float]:
    cmd = [sys.executable, "-c", _CHILD, str(code), dsn, str(batch), now, str(top)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=code, timeout=900)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        raise SystemExit(f"run failed in {code}:\n{run.stderr[-3000:]}")
    if top:
        print(run.stdout[: run.stdout.rindex("{")])
    figures: dict[str, float] = json.loads(lines[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git revision to compare against, e.g. HEAD~3")
    parser.add_argument("other", nargs="?", help="git revision (default: the working tree)")
    parser.add_argument("--runs", type=int, default=3, help="alternations (one run each)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="events a batch (bench_tailer's daemon row: about 16)")  # fmt: skip
    parser.add_argument("--events", type=int, default=5_000, help="events of live traffic")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="one more run of the other revision, profiled: top N")  # fmt: skip
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    with revisions(args.base, args.other, "jiancha-ablive-") as rev:
        codes, other, admin = rev.codes, rev.other, rev.admin
        now, n = trio.run(prepare, admin, args.events)
        print(f"live traffic: {n:,} events (seed {SEED}, submissions up to 30 days back), "
              f"batches of {args.batch_size}, judged at {now}; {args.runs} alternations, "
              "each run in a fresh copy of the database, after an untimed one")  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
        for code in codes.values():  # numba's cache of a new worktree: not timed
            one_run(code, trio.run(fresh_copy, admin, "bench_live_warm"), args.batch_size, now)
        for i in range(args.runs):
            for name, code in codes.items():
                dsn = trio.run(fresh_copy, admin, f"bench_live_{i}")
                runs[name].append(one_run(code, dsn, args.batch_size, now))
            print(f"  round {i + 1}: " + "; ".join(
                f"{name} p50 {r[-1]['p50']:.2f} ms, {r[-1]['trips']:.2f} trips"
                for name, r in runs.items()))  # fmt: skip
        print(f"{'revision':<22} " + " ".join(f"{f:>8}" for f in FIGURES) + "  batches  cards")
        med = {name: {f: statistics.median(r[f] for r in rs) for f in FIGURES}
               for name, rs in runs.items()}  # fmt: skip
        for name, rs in runs.items():
            print(f"{name:<22} " + " ".join(f"{med[name][f]:>8.2f}" for f in FIGURES)
                  + f"  {rs[0]['batches']:>7,}  {rs[0]['cards']:,}")  # fmt: skip
        print(
            "  ms a batch (apply_batch and the tick when due; median of the runs' figures), "
            "round trips a batch"
        )
        ratio = med[other]["mean"] / med[args.base]["mean"]
        print(f"{other} / {args.base}, mean batch: {ratio:.2f}x")
        if args.profile:
            print(f"\ncProfile of {other}'s batches (one more run; profiler overhead included):")
            dsn = trio.run(fresh_copy, admin, "bench_live_profile")
            one_run(codes[other], dsn, args.batch_size, now, args.profile)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"(ran {time.perf_counter() - started:.0f} s)")
    sys.exit(code)
