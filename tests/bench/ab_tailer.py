"""Backlog drain of two code revisions, interleaved: the comparison the VM's drift allows.

Run from the repository root::

    python -m tests.bench.ab_tailer BASE [OTHER] [--runs N] [--batch-size B] [--events E]

BASE and OTHER are git revisions (OTHER defaults to the working tree). The
CPU speed of the project's VM drifts by up to 1.5x over minutes, so two
separate ``make bench-tailer`` runs cannot tell a 20% change from noise.
Here one backlog is loaded once (the workload of tests/torture.py), then
drains alternate between the two revisions, each in a fresh process with
that revision's ``monitor`` on its path (and its own collector settings, as
its ``jiancha run`` would set them), and the medians are compared. Both
revisions must share the schema the current tree migrates to.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from monitor import db
from monitor.log import configure_logging
from tests.bench.bench_tailer import SEED, last_position, load_backlog, new_database

REPO = Path(__file__).resolve().parents[2]

# Run in a child process against one revision's code. Only APIs every revision
# since the tailer landed has: the tailing component (Tailer before the pipeline
# moved into its folders, Worker since) with .run and .stats.cursor, its config
# (source_dsn, dsn, batch_size), db.connect, db.open_loop.
_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import trio
from monitor import db
from monitor.log import configure_logging
try:
    from monitor.worker import Worker as Tailer, WorkerConfig as TailerConfig
except ImportError:  # before the pipeline moved into its folders
    from monitor.source import Tailer, TailerConfig
try:
    from monitor.daemon import configure_gc  # as this revision's `jiancha run` does
except ImportError:
    configure_gc = None
if configure_gc is not None:
    configure_gc()
configure_logging("WARNING")
dsn, batch, end_tx, end_id = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
RESET = "TRUNCATE jiancha.events, jiancha.cases, jiancha.dead_letters, jiancha.cursor"

async def drain():
    async with await db.connect(dsn) as conn:
        await conn.execute(RESET)
        await conn.execute("VACUUM ANALYZE jiancha.events, jiancha.cases")
    t = Tailer(TailerConfig(source_dsn=dsn, dsn=dsn, batch_size=batch))
    async with trio.open_nursery() as nursery:
        await nursery.start(t.run)
        t0 = time.perf_counter()
        while (t.stats.cursor.tx, t.stats.cursor.event_id) < (end_tx, end_id):
            await trio.sleep(0.001)
        seconds = time.perf_counter() - t0
        nursery.cancel_scope.cancel()
    return seconds

async def main():
    async with db.open_loop():
        await drain()  # warm-up: caches, plans
        print(json.dumps([await drain() for _ in range(2)]))

trio.run(main)
"""


@dataclass(frozen=True)
class Revisions:
    """The server's admin DSN, each revision's code by name, and the other's name."""

    admin: str
    codes: dict[str, Path]
    other: str


def checkout(rev: str, into: Path) -> Path:
    """A detached worktree of ``rev`` (removed by the caller)."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(into), rev],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return into


@contextlib.contextmanager
def revisions(base: str, other: str | None, prefix: str) -> Iterator[Revisions]:
    """An embedded server in a temporary directory and the code of both revisions (a
    worktree each; the working tree for ``other`` None), removed after."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        codes = {base: checkout(base, tmp / "base")}
        name = other or "working tree"
        codes[name] = checkout(other, tmp / "other") if other else REPO
        yield Revisions(server.get_uri(), codes, name)
    finally:
        server.cleanup()
        for worktree in (tmp / "base", tmp / "other"):
            if worktree.exists():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(worktree)], capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


def drains(code: Path, dsn: str, batch: int, end: tuple[int, int]) -> list[float]:
    cmd = [sys.executable, "-c", _CHILD, str(code), dsn, str(batch), str(end[0]), str(end[1])]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=code, timeout=600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("[")]
    if run.returncode != 0 or not lines:
        raise SystemExit(f"drain failed in {code}:\n{run.stderr[-3000:]}")
    return [float(s) for s in json.loads(lines[-1])]


async def prepare(admin_dsn: str, events: int) -> tuple[str, tuple[int, int], int]:
    async with db.open_loop():
        dsn = await new_database(admin_dsn, "bench_ab")
        load = await load_backlog(dsn, events)
        async with await db.connect(dsn) as conn:
            end = await last_position(conn)
    return dsn, (end.tx, end.event_id), int(load["events"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git revision to compare against, e.g. HEAD~3")
    parser.add_argument("other", nargs="?", help="git revision (default: the working tree)")
    parser.add_argument("--runs", type=int, default=5, help="alternations; 2 drains each")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--events", type=int, default=50_000, help="backlog size")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    with revisions(args.base, args.other, "jiancha-ab-") as rev:
        codes, other = rev.codes, rev.other
        dsn, end, n = trio.run(prepare, rev.admin, args.events)
        print(f"backlog: {n:,} events (seed {SEED}); batch {args.batch_size:,}; "
              f"{args.runs} alternations of 2 drains each")  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in codes}
        for i in range(args.runs):
            for name, code in codes.items():
                rates[name] += [n / s for s in drains(code, dsn, args.batch_size, end)]
            print(f"  round {i + 1}: " + ", ".join(
                f"{name} {statistics.median(r):,.0f}" for name, r in rates.items()
            ))  # fmt: skip
        medians = {name: statistics.median(r) for name, r in rates.items()}
        for name, r in rates.items():
            print(f"{name}: median {medians[name]:,.0f} events/s "
                  f"({min(r):,.0f}-{max(r):,.0f}, {len(r)} drains)")  # fmt: skip
        print(f"{other} / {args.base}: {medians[other] / medians[args.base]:.2f}x")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"(ran {time.perf_counter() - started:.0f} s)")
    sys.exit(code)
