"""A long database outage under systemd's watchdog (issue 17, item 3): 5 minutes by default.

Run from the repository root::

    python -m tests.bench.bench_outage [--seconds 300]

The same check as ``tests/test_outage.py``'s 30 s test (too long for the suite):
a ``jiancha run`` process reaches its own PostgreSQL (pgserver, in a temporary
directory) through a TCP forwarder that is cut for the whole outage, with
``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` set as systemd sets them. It fails
(exit 1) if the pings stop for as long as the watchdog's period, the process
exits, ``jiancha_database_up`` is not 0 during the outage, or an event written
during it is not applied afterwards; it prints what it measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import trio

from monitor import db
from tests.proxykit import Proxy
from tests.sourcekit import prepare, reset
from tests.test_outage import NotifySocket, ride_out


async def _main(seconds: float, tmp: Path) -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        dsn = str(server.get_uri())
        async with db.open_loop(), trio.open_nursery() as nursery:
            await prepare(dsn)
            await reset(dsn)
            proxy = Proxy(dsn)
            await nursery.start(proxy.serve)
            ns = NotifySocket(str(tmp / "notify.sock"))
            await nursery.start(ns.run)
            figures = await ride_out(dsn, proxy, ns, tmp, seconds)
            nursery.cancel_scope.cancel()
        return figures
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="the outage (300)")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jc-outage-") as tmp:
        figures = trio.run(_main, args.seconds, Path(tmp))
    print(f"{figures}; {time.monotonic() - began:.1f} s in all")


if __name__ == "__main__":
    main()
