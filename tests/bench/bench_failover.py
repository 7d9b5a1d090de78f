"""The failover of tests/faults/test_failover.py at full size, on demand (issue 17).

Run from the repository root::

    python -m tests.bench.bench_failover [--quick] [--cases 1200] [--lag 120]
                                         [--modes fast,immediate,lagging]

Each mode gets a fresh primary and streaming replica (Debian's postgresql-15,
in a temporary directory, removed afterwards), a real ``jiancha run`` and a
webhook receiver on 127.0.0.1. In ``lagging`` mode the replica stops
receiving WAL and the primary acknowledges ``--lag`` more cases before it
crashes: what asynchronous replication loses, and what that does to the
notifications sent from the lost transactions. Prints the figures.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import trio

from tests.faults.pgpair import make_pair
from tests.faults.test_failover import run_failover
from tests.httpkit import Receiver


async def one(mode: str, cases: int, lag: int) -> str:
    base = Path(tempfile.mkdtemp(prefix="jiancha-failover-"))
    try:
        pair = await trio.to_thread.run_sync(make_pair, base / "pg")
        try:
            async with trio.open_nursery() as nursery:
                receiver = Receiver(nursery)
                await receiver.start()
                line = await run_failover(pair, receiver, base, mode, cases_n=cases,
                                          lag=lag if mode == "lagging" else 0)  # fmt: skip
                nursery.cancel_scope.cancel()
            return line
        finally:
            await trio.to_thread.run_sync(pair.stop_all)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1200)
    parser.add_argument("--lag", type=int, default=120)
    parser.add_argument("--modes", default="fast,immediate,lagging")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="240 cases, the crash only (the suite runs the other two)",
    )
    args = parser.parse_args()
    if args.quick:
        args.cases, args.modes = 240, "immediate"
    for mode in args.modes.split(","):
        print(trio.run(one, mode, args.cases, args.lag), flush=True)


if __name__ == "__main__":
    main()
