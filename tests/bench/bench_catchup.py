"""Benchmark of the catch-up after an outage: ``jiancha evaluate --now`` over a backlog.

Run from the repository root::

    python -m tests.bench.bench_catchup [--quick] [--base REV] [--json PATH]

A PostgreSQL of its own (pgserver, removed afterwards) holds the source and
jiancha's schema (the default deployment: one database). The backlog is
200,000 events of 25,000 cases (``--quick``: 20,000 of 2,500), eight a case
(submitted, accepted, a step, a fee, decided, completed, delivered, rated),
interleaved in business time as a busy centre writes them; a fifth of the
cases stay open instead (paused, resumed, extended), many of them late, and
the command issues cards. Each run starts from empty jiancha tables and times the whole
command, a process of its own (`python -m monitor evaluate --now ...`).

The anchor, measured in the same run, is the read floor: one client merely
fetching and decoding the same rows (payload to dict) in keyset batches of
5,000. The target (issue 21): the command at >= 0.5x the floor's rate.
``--base REV`` also times REV's command (a detached git worktree) on the same
backlog, alternating with this tree's. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import trio

from monitor import db
from monitor.log import configure_logging
from tests.bench.bench_calendar import describe_code, finish, fmt, table, verdict
from tests.bench.bench_tailer import CpuMeter, machine_info, new_database
from tests.sourcekit import write

REPO = Path(__file__).resolve().parents[2]
SEED = 20261206
SIZES = {"cases": 25_000, "rounds": 2}
QUICK = {"cases": 2_500, "rounds": 1}
TARGET = 0.5  # of the read floor
BATCH = 5000
FROM = dt.datetime(2025, 9, 1, 1, 0, tzinfo=dt.UTC)
SPREAD_DAYS = 90
NOW = "2025-12-15T11:00"  # Beijing; every case's limits have passed or run

_READ = """
SELECT id, tx::text AS tx, case_id, kind, occurred_at, payload
FROM case_events WHERE id > $1 ORDER BY id LIMIT $2
"""
_RESET = (
    "TRUNCATE jiancha.events, jiancha.cases, jiancha.dead_letters, jiancha.cursor, "
    "jiancha.outbox_attempts, jiancha.outbox, jiancha.attachments, jiancha.card_events, "
    "jiancha.cards RESTART IDENTITY"
)


def backlog(cases: int) -> list[tuple[str, str, dt.datetime, dict[str, Any]]]:
    """Eight events a case, a fifth left open (paused, extended); sorted by business time."""
    rng = np.random.default_rng(SEED)
    rows: list[tuple[str, str, dt.datetime, dict[str, Any]]] = []
    start = rng.uniform(0, SPREAD_DAYS * 86400, size=cases)
    steps = rng.uniform(3600, 4 * 86400, size=(cases, 7)).cumsum(axis=1)
    for i in range(cases):
        cid = f"B{i:07d}"
        t = [FROM + dt.timedelta(seconds=float(start[i]))]
        t += [t[0] + dt.timedelta(seconds=float(s)) for s in steps[i]]
        sub = {"matter": "M1" if i % 2 else "M2", "window": f"W{i % 7}", "region": "R1",
               "channel": "window" if i % 3 else "online"}  # fmt: skip
        rows += [
            (cid, "submitted", t[0], sub),
            (cid, "accepted", t[1], {}),
            (cid, "step_started", t[2], {"step": "review"}),
            (cid, "fee_charged", t[3], {"amount": 12.5 if i % 4 else 20}),
        ]
        if i % 5 == 0:  # open: the clocks run on
            rows += [
                (cid, "suspended", t[4], {"type": "hearing", "notified_days": 10}),
                (cid, "resumed", t[5], {"type": "hearing"}),
                (cid, "extended", t[6], {"days": 5, "approver": "局长"}),
                (cid, "step_finished", t[7], {"step": "review"}),
            ]
            continue
        rows += [
            (cid, "decided", t[4], {"result": "approve"}),
            (cid, "completed", t[5], {}),
            (cid, "delivered", t[6], {}),
            (cid, "rated", t[7], {"level": 5 if i % 9 else 2, "comment": "好"}),
        ]
    rows.sort(key=lambda r: r[2])
    return rows


async def load(dsn: str, cases: int) -> int:
    rows = backlog(cases)
    async with await db.connect(dsn) as conn:
        for i in range(0, len(rows), 20_000):
            await write(conn, rows[i : i + 20_000])
        await conn.execute("VACUUM ANALYZE case_events")
    return len(rows)


async def read_floor(dsn: str) -> tuple[int, float]:
    """Fetch and decode every row in keyset batches: what any catch-up must do at least."""
    async with await db.connect(dsn) as conn:
        t0 = time.perf_counter()
        last, n = 0, 0
        while rows := await conn.fetch(_READ, last, BATCH):
            n += len(rows)
            last = rows[-1]["id"]
        return n, time.perf_counter() - t0


async def reset(dsn: str) -> None:
    async with await db.connect(dsn) as conn:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # the ledger
            await conn.execute(_RESET)
        await conn.execute("VACUUM ANALYZE jiancha.events, jiancha.cases")


async def outcome(dsn: str) -> dict[str, int]:
    async with await db.connect(dsn) as conn:
        return {
            t: int(await conn.fetchval(f"SELECT count(*) FROM jiancha.{t}"))
            for t in ("events", "cases", "cards", "dead_letters")
        }


def command(code: Path, dsn: str, server_pid: int, profile: Path | None = None) -> dict[str, Any]:
    """The whole `jiancha evaluate --now` of the tree at ``code``, timed from outside
    (with ``profile``, under cProfile, its statistics written there)."""
    trio.run(_in_loop, reset, dsn)
    env = {**os.environ, db.SOURCE_DSN_ENV: dsn, "JIANCHA_LANG": "en"}
    env.pop(db.DSN_ENV, None)
    prof = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    cmd = [sys.executable, *prof, "-m", "monitor", "evaluate", "--now", NOW, "--json"]
    meter = CpuMeter(server_pid)
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"evaluate failed in {code}:\n{run.stderr[-3000:]}")
    cpu = meter.read()
    return {"seconds": seconds, "cpu": cpu, "outcome": trio.run(_in_loop, outcome, dsn)}


async def _in_loop(fn: Any, *args: Any) -> Any:
    async with db.open_loop():
        return await fn(*args)


def checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force",
                    str(into), rev], check=True, capture_output=True, text=True)  # fmt: skip
    return into


async def _prepare(
    admin_dsn: str, cases: int, server_pid: int
) -> tuple[str, int, list[float], dict[str, float]]:
    """The backlog's database, its event count, the floor's two rates and the server's
    major version, and the CPU of the faster floor read."""
    async with db.open_loop():
        dsn = await new_database(admin_dsn, "bench_catchup")
        n = await load(dsn, cases)
        floors, cpus = [], []
        for _ in range(2):  # the second warm, as the command's reads are
            meter = CpuMeter(server_pid)
            count, seconds = await read_floor(dsn)
            cpus.append(meter.read())
            assert count == n
            floors.append(n / seconds)
        async with await db.connect(admin_dsn) as conn:
            version = await conn.fetchval("SHOW server_version")
    cpu = cpus[floors.index(max(floors))]
    return dsn, n, [*floors, float(version.split()[0].split(".")[0])], cpu


def cpu_bound(cpu: dict[str, float], events: int, floor: float) -> dict[str, float]:
    """What the command's CPU lets 2 cores (or this machine's) do at best: its own and the
    server's CPU spread over every core all the time, and the server's alone (a command
    that cost nothing), each as the seconds and the share of the floor's rate."""
    cores = float(os.cpu_count() or 1)
    both = (cpu["children_cpu_s"] + cpu["postgres_cpu_s"]) / cores
    server = cpu["postgres_cpu_s"] / cores
    return {"cores": cores, "all_s": both, "all_ratio": events / both / floor,
            "server_s": server, "server_ratio": events / server / floor}  # fmt: skip


def run(args: argparse.Namespace, admin_dsn: str, server_pid: int, tmp: Path) -> dict:
    size = QUICK if args.quick else SIZES
    dsn, n, prep, floor_cpu = trio.run(_prepare, admin_dsn, size["cases"], server_pid)
    floor = max(prep[:2])
    info = machine_info(f"{prep[2]:.0f}")
    # the whole command's code: its batch size is the CLI's, its cards the engine's
    info["code"] = describe_code(sorted((REPO / "monitor").rglob("*.py")), "monitor/**/*.py")
    head = "jiancha catch-up benchmark" + (" (--quick: small sizes)" if args.quick else "")
    print(head)
    print("=" * len(head))
    print(f"machine: {info['cpu']}, {info['cores']} cores; code {info['code']}")
    print(f"backlog: {n:,} events of {size['cases']:,} cases in one database (source + jiancha)")
    print(f"read floor (keyset batches of {BATCH:,}, rows decoded): {floor:,.0f} events/s; "
          f"CPU s client / server {floor_cpu['python_cpu_s']:.1f} / "
          f"{floor_cpu['postgres_cpu_s']:.1f}")  # fmt: skip
    codes = {"this tree": REPO}
    if args.base:
        codes[args.base] = checkout(args.base, tmp / "base")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    for code in codes.values():  # untimed: numba compiles into a fresh tree's cache
        command(code, dsn, server_pid)
    for _ in range(size["rounds"]):
        for name, code in codes.items():
            runs[name].append(command(code, dsn, server_pid))
    rows, results = [], {}
    for name, rs in runs.items():
        s = statistics.median(r["seconds"] for r in rs)
        rate = n / s
        out = rs[-1]["outcome"]
        cpu = rs[-1]["cpu"]
        results[name] = {"seconds": s, "events_per_s": rate, "ratio": rate / floor,
                         "outcome": out, "runs": rs, "bound": cpu_bound(cpu, n, floor)}  # fmt: skip
        rows.append([name, f"{n:,}", fmt(s, 1), fmt(rate, 0), f"{rate / floor:.2f}x",
                     f">= {TARGET}x", verdict(rate / floor >= TARGET),
                     f"{out['cases']:,} / {out['cards']:,} / {out['events']:,}",
                     f"{cpu['children_cpu_s']:.1f} / {cpu['postgres_cpu_s']:.1f}"])  # fmt: skip
    print(table(["jiancha evaluate --now", "events", "s", "events/s", "of floor", "target", "",
                 "cases / cards / events", "CPU s cmd / pg"], rows))  # fmt: skip
    print(f"  median of {size['rounds']} run(s) each after an untimed one (numba's cache), the "
          "runs alternating; whole command:")  # fmt: skip
    print("  start-up, catalogue, cursor, every batch (events, cases, cards), revive, the tick.")
    for name, r in results.items():
        b = r["bound"]
        print(f"  what its CPU allows ({name}), every one of the {b['cores']:.0f} cores busy all "
              f"the time: {b['all_s']:.1f} s ({b['all_ratio']:.2f}x of the floor); the server's "
              f"part alone, for a command costing nothing: {b['server_s']:.1f} s "
              f"({b['server_ratio']:.2f}x)")  # fmt: skip
    if args.profile:
        stats = tmp / "evaluate.prof"
        command(REPO, dsn, server_pid, stats)
        print("\ncProfile of this tree's command (a separate run, profiler overhead included):")
        pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(args.profile)
    return {"events": n, "floor_events_per_s": floor, "floor_cpu": floor_cpu, "runs": results,
            "machine": info, "quick": args.quick}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--base", metavar="REV", help="also time this git revision's command")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="profile this tree's command once more: its top N functions",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configure_logging("WARNING")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-catchup-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        pid = server.get_pid()
        assert pid is not None
        results = run(args, server.get_uri(), pid, tmp)
    finally:
        server.cleanup()
        if (tmp / "base").exists():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(tmp / "base")], capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(results, started, args.json)


if __name__ == "__main__":
    sys.exit(main())
