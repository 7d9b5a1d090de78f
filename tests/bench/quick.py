"""``make bench-quick``: every benchmark at its small size, two at a time.

Run from the repository root::

    python -m tests.bench.quick [--lanes N] [--only bench_tailer,...]

The quick run is a smoke test (CI runs it so that no benchmark rots), not a
measurement: no figure it prints is compared with anything. So the
benchmarks run side by side, as many as ``--lanes`` (default 2, the cores
CI has), each in its own process with its own embedded PostgreSQL and
ephemeral ports; the longest start first so the lanes end together. Each
benchmark's output is printed whole when it ends, under its command, so
the log reads as if they had run one after the other. Exit status 1 if any
failed, after all have run: one broken benchmark does not hide another.
For figures, run a benchmark alone (``make bench-cards``, ...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Longest first (seconds on the 2-core CI machine, run alone), so two lanes end together.
QUICK: tuple[tuple[str, ...], ...] = (
    ("tests.bench.bench_cards", "--quick"),
    ("tests.bench.bench_startup", "--quick"),
    ("tests.bench.bench_calendar", "--quick"),
    ("tests.bench.bench_report", "--quick"),
    ("tests.bench.bench_failover", "--quick"),
    ("tests.bench.bench_poison", "--quick"),
    ("tests.bench.bench_tailer", "--quick"),
    ("tests.bench.bench_ledger", "--quick"),
    ("tests.bench.ab_tailer", "HEAD", "--runs", "1", "--events", "2000"),
    ("tests.bench.ab_live", "HEAD", "--runs", "1", "--events", "500"),
    ("tests.bench.bench_catchup", "--quick"),
    ("tests.bench.bench_chatty", "--quick"),
    ("tests.bench.bench_web", "--quick"),
    ("tests.bench.bench_metrics", "--quick"),
)


def run_all(commands: Sequence[Sequence[str]], lanes: int) -> list[tuple[str, int, float]]:
    """Run ``commands`` (module and arguments) ``lanes`` at a time; their outcomes in order."""
    pending = list(enumerate(commands))
    outcomes: dict[int, tuple[str, int, float]] = {}
    lock = threading.Lock()

    def lane() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i, cmd = pending.pop(0)
            shown = "python -m " + " ".join(cmd)
            t0 = time.monotonic()
            done = subprocess.run([sys.executable, "-m", *cmd], cwd=REPO, capture_output=True,
                                  text=True, check=False)  # fmt: skip
            took = time.monotonic() - t0
            with lock:  # one benchmark's output at a time, whole
                print(f"\n=== {shown}  ({took:.0f} s, exit {done.returncode})", flush=True)
                sys.stdout.write(done.stdout)
                sys.stdout.flush()
                if done.stderr:
                    sys.stderr.write(done.stderr)
                    sys.stderr.flush()
                outcomes[i] = (shown, done.returncode, took)

    threads = [threading.Thread(target=lane) for _ in range(max(1, lanes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [outcomes[i] for i in range(len(commands))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=2, help="benchmarks run at once (default 2)")
    ap.add_argument("--only", default="", help="comma-separated benchmark modules, e.g. bench_web")
    args = ap.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    commands = [c for c in QUICK if not wanted or c[0].rsplit(".", 1)[1] in wanted]
    unknown = wanted - {c[0].rsplit(".", 1)[1] for c in QUICK}
    if unknown:
        ap.error(f"unknown benchmark: {', '.join(sorted(unknown))}")
    t0 = time.monotonic()
    outcomes = run_all(commands, args.lanes)
    print(f"\n=== bench-quick: {len(outcomes)} benchmarks in {time.monotonic() - t0:.0f} s "
          f"({args.lanes} at a time)")  # fmt: skip
    for shown, code, took in outcomes:
        print(f"  {'ok    ' if code == 0 else 'FAILED'} {took:5.0f} s  {shown}")
    return 1 if any(code for _, code, _ in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
