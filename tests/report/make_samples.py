"""The sample bulletins under docs/samples/, made from the demo centre.

Run from the repository root (about ten minutes; ``make samples``)::

    python -m tests.report.make_samples [--out docs/samples] [--per-day 560]

A PostgreSQL of its own (pgserver, removed afterwards) gets the year 2025 of
the demo's county centre (the simulator, the county catalogue, about 560
cases a working day) through the daemon's ingest path, and ``jiancha report``
writes one bulletin of each kind: the daily of 2025-12-03, week 2025-W49, the
monthly of 2025-11 and the yearly of 2025, as PDF, with page 1 of each as a PNG
(``pdftoppm``, 60 dpi: enough to read the title and see the layout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.cli import main as cli
from monitor.log import configure_logging
from monitor.rules.load import load_rules
from tests.report.centre import load_centre

SAMPLES = (("daily", "2025-12-03"), ("weekly", "2025-W49"), ("monthly", "2025-11"),
           ("yearly", "2025"))  # fmt: skip
CENTRE = "示范县政务服务中心"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/samples"))
    ap.add_argument("--per-day", type=int, default=560)
    ap.add_argument("--days", type=int, default=365, help="days of history from 2025-01-01")
    args = ap.parse_args(argv)
    configure_logging("WARNING")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-samples-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        dsn = server.get_uri()
        first = dt.date(2025, 1, 1)
        until = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)

        def monthly(day: dt.date) -> None:
            if day.day == 1:
                print(day, flush=True)

        async def load() -> None:
            async with db.open_loop():
                done = await load_centre(
                    dsn, load_calendar("cn"), load_rules(), first, args.days, args.per_day,
                    until, progress=monthly,
                )  # fmt: skip
                print(done, flush=True)

        trio.run(load)
        args.out.mkdir(parents=True, exist_ok=True)
        for kind, period in SAMPLES:
            buf = io.StringIO()
            code = cli(["report", kind, "--period", period, "--format", "pdf", "--out",
                        str(tmp), "--dsn", dsn, "--centre", CENTRE], out=buf)  # fmt: skip
            print(buf.getvalue(), end="")
            if code:
                return code
            pdf = tmp / f"jiancha-{kind}-{period}.pdf"
            shutil.copy(pdf, args.out / pdf.name)
            subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "60", "-png", "-singlefile",
                            str(pdf), str(args.out / pdf.stem)], check=True)  # fmt: skip
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
