"""Benchmark of the daemon's cold start: process spawn to READY, with a warm numba cache.

Run from the repository root::

    python -m tests.bench.bench_startup [--quick] [--json PATH] [--profile]

A PostgreSQL of its own (pgserver, in a temporary directory, removed
afterwards) gets the last 20 days of a simulated centre (`monitor.simulate`,
the demo's: N cases a working day, the county catalogue), ingested by the
real tailer. Then ``jiancha run`` is started as a
process R times per size and timed from ``Popen`` to its ``ready`` log line
(READY=1 is sent at the same point). The numba cache is warmed by one run first.

The anchor, measured in the same run, is a process that only imports what the
daemon imports (``python -c "import monitor.daemon"``): the part of a start that
does not depend on the database. Target (issue 7): READY in <= 2 s.
``--profile`` adds a cProfile of one start at the largest size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.log import configure_logging
from monitor.rules.load import load_rules
from monitor.source.contract import Cursor

SIZES = [560, 5_600]  # cases per working day: a county centre, a large city's
QUICK_SIZES = [100]
ROUNDS = 5

DAYS = 20  # calendar days of a centre's history up to now


async def load(dsn: str, per_day: int) -> dict[str, Any]:
    """A centre's last 20 days from the simulator (the demo's), ingested by the real tailer."""
    from monitor.evaluator import Evaluator
    from monitor.whatif.simulate import between, generate, load_catalogue
    from monitor.whatif.source_writer import install_matters, write_events
    from monitor.worker import Worker, WorkerConfig
    from tests.sourcekit import prepare

    t0 = time.perf_counter()
    await prepare(dsn)
    cal = load_calendar("cn")
    catalogue = load_catalogue()
    now = dt.datetime.now(dt.UTC)
    first = (now - dt.timedelta(days=DAYS)).date()
    events = between(generate(catalogue, cal, first, DAYS, seed=7, per_day=per_day), until=now)
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        await write_events(conn, events)
        await conn.execute("VACUUM ANALYZE case_events")
        last = await conn.fetchrow("SELECT tx, id FROM case_events ORDER BY tx DESC, id DESC")
    end = Cursor(int(str(last["tx"])), int(last["id"]))
    tailer = Worker(WorkerConfig(dsn, dsn, batch_size=5000, poll_interval=0.05),
                    evaluator=Evaluator(load_rules(), cal))  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(tailer.run)
        while tailer.stats.cursor < end:
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    async with await db.connect(dsn) as conn:
        await conn.execute("VACUUM ANALYZE jiancha.cases, jiancha.cards")
        open_cases = await conn.fetchval(
            "SELECT count(*) FROM jiancha.cases WHERE completed_at IS NULL AND closed_at IS NULL"
        )
        cases = await conn.fetchval("SELECT count(*) FROM jiancha.cases")
    return {"events": len(events), "cases": cases, "open_cases": open_cases,
            "load_s": time.perf_counter() - t0}  # fmt: skip


def start_once(dsn: str, cache: str, profile: str | None = None,
               state: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Spawn `jiancha run`, wait for `ready`, stop it; seconds from Popen to ready."""
    env = {**os.environ, "JIANCHA_SOURCE_DSN": dsn, "NUMBA_CACHE_DIR": cache}
    env.pop("JIANCHA_DSN", None)
    env.pop("STATE_DIRECTORY", None)
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    extra = ["--state-dir", str(state)] if state is not None else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *prof, "-m", "monitor", "run", "--metrics-address", "127.0.0.1:0",
         *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            ready = json.loads(line)
            if ready.get("event") == "ready":
                break
        else:
            raise RuntimeError(f"no ready line: {proc.stderr.read() if proc.stderr else ''}")
        took = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGINT)  # (cProfile writes its file on a clean exit)
        proc.wait(timeout=120)  # a cold numba cache compiles in the first tick
    return {"ready_s": took, "table": ready.get("table"), "redecided": ready.get("redecided")}


def anchor_once(cache: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import monitor.daemon, monitor.cli"], env=env,
                   check=True)  # fmt: skip
    return time.perf_counter() - t0


async def new_database(admin: str, name: str) -> str:
    from tests.conftest import with_database

    async with await db.connect(admin) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    return with_database(admin, name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small size (a smoke run)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--profile", action="store_true", help="cProfile one start at the largest size")
    ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")],
                    help="cases per working day, e.g. 560,5600")  # fmt: skip
    args = ap.parse_args(argv)
    configure_logging("WARNING")
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    rounds = 2 if args.quick else ROUNDS
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-bench-start-"))
    cache = str(tmp / "numba")
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs", "sizes": []}
    print("jiancha run: cold start to READY (warm numba cache)")
    try:
        anchor_once(cache)  # warms the import caches (.pyc) too
        anchors = [anchor_once(cache) for _ in range(rounds)]
        anchor = statistics.median(anchors)
        print(f"anchor: import monitor.daemon in a fresh process: {anchor * 1e3:.0f} ms")
        results["anchor_s"] = anchor
        for n in sizes:
            dsn = trio.run(_with_loop, new_database, server.get_uri(), f"start_{n}")
            loaded = trio.run(_with_loop, load, dsn, n)
            start_once(dsn, cache)  # warms numba's cache for this machine
            runs = [float(start_once(dsn, cache)["ready_s"]) for _ in range(rounds)]
            med = statistics.median(runs)
            row = {"per_day": n, **loaded, "ready_s_median": med, "ready_s_min": min(runs),
                   "ratio_to_anchor": med / anchor}  # fmt: skip
            results["sizes"].append(row)
            verdict = "OK" if med <= 2.0 else "over target"
            print(f"{n:>6,} cases a day: {loaded['cases']:,} cases, {loaded['open_cases']:,} open "
                  f"({loaded['events']:,} events, loaded in {loaded['load_s']:.1f} s): READY in "
                  f"{med * 1e3:.0f} ms median (min {min(runs) * 1e3:.0f}) = {med / anchor:.1f}x "
                  f"the anchor; target <= 2000 ms: {verdict}")  # fmt: skip
            # with a checkpoint (systemd's StateDirectory=): saved at each clean stop
            state = tmp / f"state-{n}"
            start_once(dsn, cache, state=state)  # builds the table and saves it at the stop
            resumed = [start_once(dsn, cache, state=state) for _ in range(rounds)]
            assert all(r["table"] == "checkpoint" for r in resumed), resumed
            rmed = statistics.median(r["ready_s"] for r in resumed)
            row["ready_s_median_checkpoint"] = rmed
            row["ready_s_min_checkpoint"] = min(r["ready_s"] for r in resumed)
            print(f"{'':>6}  from the checkpoint: READY in {rmed * 1e3:.0f} ms median (min "
                  f"{row['ready_s_min_checkpoint'] * 1e3:.0f}) = {rmed / anchor:.1f}x the anchor; "
                  f"target <= 2000 ms: {'OK' if rmed <= 2.0 else 'over target'}")  # fmt: skip
            if args.profile and n == sizes[-1]:
                out = tmp / "start.prof"
                start_once(dsn, cache, profile=str(out))
                text = Path(tempfile.mkstemp(suffix=".txt")[1])
                with text.open("w") as fh:
                    pstats.Stats(str(out), stream=fh).sort_stats("cumulative").print_stats(60)
                print(f"profile of one start (under cProfile): {text}")
                results["profile"] = str(text)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


async def _with_loop(fn: Any, *a: Any) -> Any:
    async with db.open_loop():
        return await fn(*a)


if __name__ == "__main__":
    sys.exit(main())
