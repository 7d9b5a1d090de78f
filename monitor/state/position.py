"""The cursor with the source it is a position in (``jiancha.cursor``, migration 0009).

``store.save_cursor`` moves the position inside each batch's transaction and
leaves the identity alone; here the identity is read, adopted once for a
cursor from before version 9, and set together with a position chosen by an
operator (``jiancha db reset-cursor``).
"""

from __future__ import annotations

import datetime as dt

from monitor.db import Connection
from monitor.source.contract import START, Cursor
from monitor.source.identity import SourceIdentity
from monitor.state.store import SOURCE

__all__ = ["adopt_identity", "load_position", "reset_cursor"]

_LOAD = """
SELECT tx::text AS tx, event_id, system_identifier, database_oid::int8 AS database_oid,
       coalesce(database_name, '') AS database_name
FROM jiancha.cursor WHERE source = $1
"""

# Only a cursor without an identity adopts one: a stored identity is never overwritten
# here (that takes reset_cursor, an operator's decision).
_ADOPT = """
INSERT INTO jiancha.cursor (source, tx, event_id, system_identifier, database_oid,
                            database_name, updated_at)
VALUES ($1, '0'::xid8, 0, $2, $3::int8::oid, $4, $5)
ON CONFLICT (source) DO UPDATE
SET system_identifier = EXCLUDED.system_identifier, database_oid = EXCLUDED.database_oid,
    database_name = EXCLUDED.database_name
WHERE jiancha.cursor.system_identifier IS NULL
"""

_RESET = """
INSERT INTO jiancha.cursor (source, tx, event_id, system_identifier, database_oid,
                            database_name, reset_from, reset_at, updated_at)
VALUES ($1, $2::text::xid8, $3, $4, $5::int8::oid, $6, $7, $8, $8)
ON CONFLICT (source) DO UPDATE
SET tx = EXCLUDED.tx, event_id = EXCLUDED.event_id,
    system_identifier = EXCLUDED.system_identifier, database_oid = EXCLUDED.database_oid,
    database_name = EXCLUDED.database_name, reset_from = EXCLUDED.reset_from,
    reset_at = EXCLUDED.reset_at, updated_at = EXCLUDED.updated_at
"""


async def load_position(
    conn: Connection, source: str = SOURCE
) -> tuple[Cursor, SourceIdentity | None]:
    """The stored cursor and the source it was stored for (None: not known yet)."""
    row = await conn.fetchrow(_LOAD, source)
    if row is None:
        return START, None
    cursor = Cursor(int(row["tx"]), int(row["event_id"]))
    if row["system_identifier"] is None:
        return cursor, None
    identity = SourceIdentity(int(row["system_identifier"]), int(row["database_oid"]),
                              row["database_name"])  # fmt: skip
    return cursor, identity


async def adopt_identity(
    conn: Connection, identity: SourceIdentity, now: dt.datetime, source: str = SOURCE
) -> bool:
    """Record ``identity`` for a cursor that has none (the first start after 0009, or a new
    schema); True when it did."""
    status = await conn.execute(_ADOPT, source, identity.system_identifier,
                                identity.database_oid, identity.database, now)  # fmt: skip
    return status.endswith(" 1")


async def reset_cursor(
    conn: Connection,
    cursor: Cursor,
    identity: SourceIdentity,
    since: dt.datetime,
    now: dt.datetime,
    source: str = SOURCE,
) -> None:
    """Set the cursor and its source by an operator's decision (``jiancha db reset-cursor``)."""
    await conn.execute(_RESET, source, str(cursor.tx), cursor.event_id,
                       identity.system_identifier, identity.database_oid, identity.database,
                       since, now)  # fmt: skip
