"""Benchmark of the daemon's cold start: process spawn to READY, with a warm numba cache.

Run from the repository root::

    python -m tests.bench.bench_startup [--quick] [--json PATH] [--profile]

A PostgreSQL of its own (pgserver, in a temporary directory, removed
afterwards) gets the source contract, the example matters and N open cases
(submitted and accepted in the last weeks; a fifth of them suspended once and
resumed), ingested by the real tailer. Then ``jiancha run`` is started as a
process R times per size and timed from ``Popen`` to its ``ready`` log line
(READY=1 is sent at the same point). The numba cache is warmed by one run first.

The anchor, measured in the same run, is a process that only imports what the
daemon imports (``python -c "import monitor.daemon"``): the part of a start that
does not depend on the database. Target (issue 7): READY in <= 2 s.
``--profile`` adds a cProfile of one start at the largest size.
"""

from __future__ import annotations

import argparse
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

from monitor import db, ingest
from monitor.calendar import load_calendar
from monitor.log import configure_logging
from monitor.rules import load_rules

SIZES = [10_000, 100_000]
QUICK_SIZES = [1_000]
ROUNDS = 5

# N open cases of the example matters, submitted over the last 30 days (wall clock):
# so their clocks are live, some near or past a threshold, some paused.
_EVENTS = """
INSERT INTO case_events (case_id, kind, occurred_at, payload)
SELECT 'S' || g, k.kind, now() - interval '30 days' * (g::float8 / $1) + k.off, k.payload
FROM generate_series(1, $1::int) AS g,
LATERAL (VALUES
  ('submitted', interval '0', jsonb_build_object(
       'matter', (ARRAY['M1', 'M2', 'M0'])[1 + g % 3], 'window', 'W' || (g % 12),
       'region', 'R1', 'channel', 'window')),
  ('accepted', interval '1 hour', '{}'::jsonb),
  ('suspended', CASE WHEN g % 5 = 0 THEN interval '1 day' END,
       '{"type": "survey", "notified_days": 3}'::jsonb),
  ('resumed', CASE WHEN g % 5 = 0 THEN interval '3 days' END, '{}'::jsonb)
) AS k(kind, off, payload)
WHERE k.off IS NOT NULL
ORDER BY g, k.off
"""


async def load(dsn: str, n: int) -> dict[str, Any]:
    from monitor.evaluator import Evaluator
    from monitor.source import Tailer, TailerConfig
    from tests.sourcekit import prepare

    t0 = time.perf_counter()
    await prepare(dsn)
    async with await db.connect(dsn) as conn:
        await conn.execute(_EVENTS, n)
        await conn.execute("VACUUM ANALYZE case_events")
        last = await conn.fetchrow("SELECT tx, id FROM case_events ORDER BY tx DESC, id DESC")
    end = ingest.Cursor(int(str(last["tx"])), int(last["id"]))
    tailer = Tailer(TailerConfig(dsn, dsn, batch_size=5000, poll_interval=0.05),
                    evaluator=Evaluator(load_rules(), load_calendar()))  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(tailer.run)
        while tailer.stats.cursor < end:
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    async with await db.connect(dsn) as conn:
        await conn.execute("VACUUM ANALYZE jiancha.cases, jiancha.cards")
        open_cases = await conn.fetchval(
            "SELECT count(*) FROM jiancha.cases WHERE completed_at IS NULL"
        )
        cards = await conn.fetchval("SELECT count(*) FROM jiancha.cards")
    return {"open_cases": open_cases, "cards": cards, "load_s": time.perf_counter() - t0}


def start_once(dsn: str, cache: str, profile: str | None = None) -> dict[str, float]:
    """Spawn `jiancha run`, wait for `ready`, stop it; seconds from Popen to ready."""
    env = {**os.environ, "JIANCHA_SOURCE_DSN": dsn, "NUMBA_CACHE_DIR": cache}
    env.pop("JIANCHA_DSN", None)
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *prof, "-m", "monitor.cli", "run", "--metrics-address", "127.0.0.1:0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line).get("event") == "ready":
                break
        else:
            raise RuntimeError(f"no ready line: {proc.stderr.read() if proc.stderr else ''}")
        took = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGINT)  # (cProfile writes its file on a clean exit)
        proc.wait(timeout=20)
    return {"ready_s": took}


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
                    help="open cases per size, e.g. 10000,100000")  # fmt: skip
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
            runs = [start_once(dsn, cache)["ready_s"] for _ in range(rounds)]
            med = statistics.median(runs)
            row = {"cases": n, **loaded, "ready_s_median": med, "ready_s_min": min(runs),
                   "ratio_to_anchor": med / anchor}  # fmt: skip
            results["sizes"].append(row)
            verdict = "OK" if med <= 2.0 else "over target"
            print(f"{n:>9,} cases ({loaded['open_cases']:,} open, {loaded['cards']:,} cards; "
                  f"loaded in {loaded['load_s']:.1f} s): READY in {med * 1e3:.0f} ms median "
                  f"(min {min(runs) * 1e3:.0f}) = {med / anchor:.1f}x the anchor; "
                  f"target <= 2000 ms: {verdict}")  # fmt: skip
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
