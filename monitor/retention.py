"""How long the working tables keep what is done with (``[retention]``, ``jiancha db prune``).

The outbox keeps every notification and every attempt, the dead-letter table
every letter: at a centre's volume, and with Alertmanager re-sent every few
minutes per open card, they grow without end. What is finished may go after
its retention: delivered or given-up notifications whose card is no longer
open, attempts of any notification except its last, dead letters taken in
after all. The record stays: cards and card_events are never pruned (they
are the evidence), nor open dead letters, nor a notification still pending.
A duration of 0 keeps that table forever. Deleted in chunks, each its own
short transaction, so the daemon's batches never wait long on a prune.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor.config import RETENTION_KEYS as KEYS
from monitor.config import Retention
from monitor.db import Connection
from monitor.log import get_logger

__all__ = ["Pruned", "prune"]


@dataclass(frozen=True, slots=True)
class Pruned:
    outbox: int = 0
    outbox_attempts: int = 0
    dead_letters: int = 0

    def as_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in KEYS}


# Attempts first: a notification's rows go before it does.
_ATTEMPTS = """
DELETE FROM jiancha.outbox_attempts WHERE id IN (
    SELECT a.id FROM jiancha.outbox_attempts a
    WHERE a.at < $1
      AND a.id <> (SELECT max(b.id) FROM jiancha.outbox_attempts b
                   WHERE b.outbox_id = a.outbox_id)
    LIMIT $2)
"""
_OUTBOX_ATTEMPTS = """
DELETE FROM jiancha.outbox_attempts WHERE outbox_id IN (SELECT id FROM _prune_outbox)
"""
_OUTBOX_PICK = """
CREATE TEMP TABLE _prune_outbox ON COMMIT DROP AS
SELECT o.id FROM jiancha.outbox o
WHERE o.state IN ('delivered', 'failed') AND o.created_at < $1
  AND NOT EXISTS (SELECT FROM jiancha.cards c WHERE c.id = o.card_id
                  AND c.status IN ('issued', 'acknowledged', 'appealed'))
LIMIT $2
"""
_OUTBOX = "DELETE FROM jiancha.outbox WHERE id IN (SELECT id FROM _prune_outbox)"
_DEAD = """
DELETE FROM jiancha.dead_letters WHERE id IN (
    SELECT id FROM jiancha.dead_letters WHERE resolved_at IS NOT NULL AND resolved_at < $1
    LIMIT $2)
"""
_COUNTS = {
    "outbox": """SELECT count(*) FROM jiancha.outbox o
                 WHERE o.state IN ('delivered', 'failed') AND o.created_at < $1
                   AND NOT EXISTS (SELECT FROM jiancha.cards c WHERE c.id = o.card_id
                                   AND c.status IN ('issued', 'acknowledged', 'appealed'))""",
    "outbox_attempts": """SELECT count(*) FROM jiancha.outbox_attempts a WHERE a.at < $1
                          AND a.id <> (SELECT max(b.id) FROM jiancha.outbox_attempts b
                                       WHERE b.outbox_id = a.outbox_id)""",
    "dead_letters": """SELECT count(*) FROM jiancha.dead_letters
                       WHERE resolved_at IS NOT NULL AND resolved_at < $1""",
}


def _rows(status: str) -> int:
    return int(status.split()[-1])


async def prune(
    conn: Connection,
    retention: Retention,
    now: dt.datetime,
    *,
    chunk: int = 10_000,
    dry_run: bool = False,
) -> Pruned:
    """Delete what is past its retention (``dry_run``: count it); how many rows each table lost."""
    cut = {k: now - getattr(retention, k) for k in KEYS if getattr(retention, k)}
    if dry_run:
        return Pruned(**{k: int(await conn.fetchval(_COUNTS[k], at)) for k, at in cut.items()})
    done = dict.fromkeys(KEYS, 0)
    # Each chunk in a transaction of its own: on the leader's sessions that is fenced
    # (monitor.lease), so an ex-leader deletes nothing.
    while "outbox_attempts" in cut:
        async with conn.transaction():
            n = _rows(await conn.execute(_ATTEMPTS, cut["outbox_attempts"], chunk))
        done["outbox_attempts"] += n
        if n < chunk:
            break
    while "outbox" in cut:
        async with conn.transaction():
            await conn.execute(_OUTBOX_PICK, cut["outbox"], chunk)
            done["outbox_attempts"] += _rows(await conn.execute(_OUTBOX_ATTEMPTS))
            n = _rows(await conn.execute(_OUTBOX))
        done["outbox"] += n
        if n < chunk:
            break
    while "dead_letters" in cut:
        async with conn.transaction():
            n = _rows(await conn.execute(_DEAD, cut["dead_letters"], chunk))
        done["dead_letters"] += n
        if n < chunk:
            break
    pruned = Pruned(**done)
    if any(done.values()):
        get_logger("monitor.retention").info("pruned", **done)
    return pruned
