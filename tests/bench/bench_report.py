"""Benchmark of a monthly bulletin for a city-scale month: time and peak memory.

Run from the repository root (``make bench-report``, about 10 minutes, most of
it loading the month)::

    python -m tests.bench.bench_report [--quick] [--json PATH]

A PostgreSQL of its own (pgserver, removed afterwards) gets November 2025 of
a large city's centre (the simulator's city scale: 5,600 cases a working
day, the demo's catalogue and profile) through the daemon's ingest path
(``tests/report/centre.py``). Then ``jiancha report monthly --period 2025-11``
runs as a process, all four formats, R times: its wall time and its peak
resident memory (``ru_maxrss`` of the child). In-process, the same bulletin
is timed in its two halves, the database reads (``build_report``) and the
documents (``render_files``).

The anchor, measured in the same run, is the raw ``jiancha.figures_v1``
query of the month alone: the one definition every bulletin and dashboard
pays for. Targets (issue 20): <= 10 s and <= 1 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
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
from tests.report.centre import load_centre

PER_DAY = 5_600  # the simulator's city scale (docs/performance.md)
QUICK_PER_DAY = 300
FIRST = dt.date(2025, 11, 1)
DAYS = 30
UNTIL = dt.datetime(2025, 12, 3, tzinfo=dt.UTC)
ROUNDS = 3
TARGET_S = 10.0
TARGET_BYTES = 1 << 30


async def _anchor(dsn: str) -> float:
    """The raw figures of the month: the query every bulletin is built on."""
    from monitor.report import parse_period

    p = parse_period("monthly", "2025-11")
    async with db.open_loop(), await db.connect(dsn) as conn:
        t0 = time.perf_counter()
        await conn.fetch("SELECT * FROM jiancha.figures_v1($1, $2, $2)", p.lo, p.hi)
        return time.perf_counter() - t0


async def _halves(dsn: str) -> tuple[float, float, dict[str, int], dict[str, float]]:
    """In-process: the database reads, then the four documents, each timed."""
    from monitor.report import build_report, parse_period, render_files

    cal, rules = load_calendar("cn"), load_rules()
    async with db.open_loop(), await db.connect(dsn) as conn:
        t0 = time.perf_counter()
        r = await build_report(conn, "monthly", parse_period("monthly", "2025-11"), None,
                               dt.datetime.now(dt.UTC), cal=cal, rules=rules)  # fmt: skip
        t1 = time.perf_counter()
    files, each = {}, {}
    for fmt in ("html", "xlsx", "pdf", "json"):
        t = time.perf_counter()
        files.update(render_files(r, (fmt,), "zh"))
        each[fmt] = time.perf_counter() - t
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, {f: len(data) for f, (_, data) in files.items()}, each


def _process(dsn: str, out: Path) -> tuple[float, int]:
    """``jiancha report monthly`` as a process: wall seconds and the child's peak RSS (bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitor", "report", "monthly", "--period", "2025-11",
                    "--out", str(out), "--dsn", dsn], check=True, capture_output=True)  # fmt: skip
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    return took, max(peak, before) * 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small centre (a smoke run)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--data", type=Path, help="keep the loaded database in this directory and "
                    "reuse it next time (a loaded month takes minutes)")  # fmt: skip
    args = ap.parse_args(argv)
    configure_logging("WARNING")
    per_day = QUICK_PER_DAY if args.quick else PER_DAY
    rounds = 1 if args.quick else ROUNDS
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-bench-report-"))
    data = args.data or tmp / "pg"
    marker = data.parent / f"{data.name}.loaded-{per_day}.json"
    server = pgserver.get_server(data, cleanup_mode="stop")
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs", "per_day": per_day}
    try:
        dsn = server.get_uri()

        async def load() -> dict[str, Any]:
            async with db.open_loop():
                return await load_centre(dsn, load_calendar("cn"), load_rules(), FIRST, DAYS,
                                         per_day, UNTIL)  # fmt: skip

        if marker.exists():
            loaded = json.loads(marker.read_text(encoding="utf-8"))
        else:
            loaded = trio.run(load)
            if args.data:
                marker.write_text(json.dumps(loaded), encoding="utf-8")
        results.update(loaded)
        print(f"monthly bulletin of November 2025, {per_day:,} cases a working day: "
              f"{loaded['cases']:,} cases, {loaded['cards']:,} cards ({loaded['events']:,} events, "
              f"loaded in {loaded['load_s']:.0f} s)")  # fmt: skip
        anchor = statistics.median(trio.run(_anchor, dsn) for _ in range(rounds))
        reads, docs, sizes, each = trio.run(_halves, dsn)
        runs = [_process(dsn, tmp / "out") for _ in range(rounds)]
        wall = statistics.median(t for t, _ in runs)
        peak = max(m for _, m in runs)
        results.update(anchor_s=anchor, reads_s=reads, documents_s=docs, sizes=sizes,
                       documents_each_s=each,
                       process_s_median=wall, process_s_runs=[t for t, _ in runs],
                       peak_rss_bytes=peak, ratio_to_anchor=wall / anchor)  # fmt: skip
        print(f"anchor: jiancha.figures_v1 of the month alone: {anchor * 1e3:.0f} ms")
        print(
            f"in-process: database reads {reads:.2f} s, four documents {docs:.2f} s "
            f"(PDF {sizes['pdf'] / 1024:.0f} KiB, XLSX {sizes['xlsx'] / 1024:.0f} KiB; "
            + ", ".join(f"{k} {v:.2f} s" for k, v in each.items())
            + " alone, charts in each)"
        )
        print(f"jiancha report monthly (a process, all four formats): {wall:.2f} s median of "
              f"{rounds} = {wall / anchor:.1f}x the anchor; target <= {TARGET_S:.0f} s: "
              f"{'OK' if wall <= TARGET_S else 'over target'}")  # fmt: skip
        print(f"peak memory (the process's max RSS): {peak / 2**20:.0f} MiB; target <= 1024 MiB: "
              f"{'OK' if peak <= TARGET_BYTES else 'over target'}")  # fmt: skip
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
