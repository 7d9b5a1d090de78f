"""Shared test helpers: a source database with the contract, jiancha's schema, matters."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from monitor import db, migrate

MATTERS = [
    ("M1", "建筑工程施工许可", "住建局", 20, 5),
    ("M2", "食品经营许可", "市场监管局", 20, 10),
    ("M0", "个体工商户登记", "市场监管局", 20, 0),
]
T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)
SUBMITTED = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}


async def prepare(dsn: str) -> None:
    """Install the source contract, migrate jiancha's schema, load the matters."""
    async with await db.connect(dsn) as conn:
        await migrate.install_source(conn)
        await migrate.migrate(conn)
        await conn.executemany(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
            MATTERS,
        )


async def reset(dsn: str) -> None:
    """Empty the source events and everything jiancha derived from them."""
    async with await db.connect(dsn) as conn, conn.transaction():
        # The ledger refuses TRUNCATE (append-only); a test server's superuser may
        # switch triggers off for this transaction.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "TRUNCATE case_events, jiancha.events, jiancha.cases, jiancha.dead_letters, "
            "jiancha.cursor, jiancha.outbox_attempts, jiancha.outbox, jiancha.card_events, "
            "jiancha.cards RESTART IDENTITY"
        )


async def write(
    conn: db.Connection, rows: Sequence[tuple[str, str, dt.datetime, dict[str, Any]]]
) -> None:
    """Insert (case_id, kind, occurred_at, payload) rows in one statement."""
    await conn.execute(
        "INSERT INTO case_events (case_id, kind, occurred_at, payload) "
        "SELECT c, k, o, p::jsonb FROM unnest($1::text[], $2::text[], $3::timestamptz[], "
        "$4::text[]) AS u(c, k, o, p)",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [json.dumps(r[3], ensure_ascii=False) for r in rows],
    )


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)
