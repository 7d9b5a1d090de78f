"""Leader failover, ten rounds (issue 17, item 4): ``tests/test_leader.py`` at full length.

Run from the repository root::

    python -m tests.bench.bench_leader [--rounds 10] [--seed N]

Two ``jiancha run`` processes on their own PostgreSQL (pgserver, in a
temporary directory), a webhook receiver counting Idempotency-Keys, writers
adding cases throughout; the leader is killed (SIGKILL) or frozen (SIGSTOP,
later SIGCONT) at a random instant of each round, alternately. Exits 1 if a
takeover takes more than 10 s, an event is lost, a card is issued twice, a
notification is lost, or one is sent twice that was not in flight at a kill;
prints the takeover times and the counts.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import trio

from monitor import db
from tests.httpkit import Receiver
from tests.test_leader import SEED, failover


async def _main(rounds: int, seed: int, tmp: Path) -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        dsn = str(server.get_uri())
        async with db.open_loop(), trio.open_nursery() as nursery:
            receiver = Receiver(nursery)
            await receiver.start()
            figures = await failover(dsn, receiver, tmp, rounds, seed)
            nursery.cancel_scope.cancel()
        return figures
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="kills and freezes (10)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jc-failover-") as tmp:
        print(trio.run(_main, args.rounds, args.seed, Path(tmp)))


if __name__ == "__main__":
    main()
