"""The statutory situations where the daemon's timing matters: its ticks, not one evaluation."""

from __future__ import annotations

from pathlib import Path

from monitor import db
from monitor.evaluator import Evaluator
from monitor.rules.load import load_rules
from tests.cardkit import Driver, z
from tests.sourcekit import write

SUB = {"matter": "M2", "window": "W1", "region": "R1", "channel": "window"}  # 10 wd promised


async def test_the_daemon_wakes_when_acceptance_is_deemed(dsn: str, cal, tmp_path: Path) -> None:
    # no acceptance clock to wake it: the deemed decision period asks for its own look
    quiet = tmp_path / "quiet.toml"
    quiet.write_text('extends = "cards"\n[[override]]\nmatters = ["M2"]\nrule = "acceptance_time"\n'
                     'enabled = false\n', encoding="utf-8")  # fmt: skip
    async with await db.connect(dsn) as conn:
        await write(conn, [("N1", "submitted", z("2024-03-04T01:00:00"), SUB)])
        d = Driver(conn, Evaluator(load_rules(str(quiet)), cal))
        now = z("2024-03-04T02:00:00")
        await d.start(now)
        await d.ingest(now)
        await d.run_until(z("2024-03-20T00:00:00"), now)
        rows = await conn.fetch("SELECT rule, level, issued_at FROM jiancha.cards "
                                "WHERE rule = 'decision_time' ORDER BY issued_at")  # fmt: skip
    # deemed accepted at Mar 11 24:00 (5 wd); 10 wd from receipt end Mar 18 24:00. Blue (half)
    # came due before the deeming: dated when it was deemed
    assert [tuple(r) for r in rows] == [
        ("decision_time", "blue", z("2024-03-11T16:00:00")),
        ("decision_time", "yellow", z("2024-03-15T16:00:00")),
        ("decision_time", "red", z("2024-03-18T16:00:00")),
    ]
