"""Which source a cursor is a position in, and whether it still can be.

A cursor is a position in one database's ``(tx, id)`` order. Transaction ids
belong to a cluster: after a dump and restore, a logical cutover or a DSN
pointed at another database, the new rows carry ids *behind* the stored
cursor, the tailer reads nothing and the lag reads 0. That loss is silent,
so it is checked before every session: the cluster's ``system_identifier``
and the database's oid must be the ones stored with the cursor, and the
cursor's transaction must lie below the source's ``pg_snapshot_xmax`` (the
first id not yet assigned; a read transaction is always below it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor import db
from monitor.i18n import Lang, t
from monitor.source.contract import Cursor

__all__ = [
    "FIX",
    "Mismatch",
    "ResetPoint",
    "SourceIdentity",
    "SourceProbe",
    "check",
    "probe",
    "reset_point",
]

FIX = "jiancha db reset-cursor --from <business time>"

_PROBE = """
SELECT (SELECT system_identifier FROM pg_control_system()) AS system_identifier,
       (SELECT oid FROM pg_database WHERE datname = current_database())::int8 AS database_oid,
       current_database() AS database,
       pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS xmax
"""

# The first row of a business time at or after $1 among the rows below the horizon
# (those above it are ahead of any cursor set below the horizon anyway).
_FIRST_SINCE = """
SELECT tx::text::int8 AS tx, id FROM case_events
WHERE occurred_at >= $1 AND tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY case_events.tx, case_events.id LIMIT 1
"""
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8"
_COUNTS = """
SELECT count(*) FILTER (WHERE occurred_at >= $3) AS again, count(*) AS after
FROM case_events WHERE (tx, id) > ($1::text::xid8, $2::bigint)
"""
_LAST_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """A source database: its cluster and its oid there (the name is for people only)."""

    system_identifier: int
    database_oid: int
    database: str = ""

    def same(self, other: SourceIdentity) -> bool:
        return (self.system_identifier, self.database_oid) == (
            other.system_identifier,
            other.database_oid,
        )

    def text(self) -> str:
        ids = f"system_identifier {self.system_identifier}, oid {self.database_oid}"
        return f"{self.database} ({ids})"


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """The source as it is now."""

    identity: SourceIdentity
    xmax: int  # pg_snapshot_xmax: the first transaction id not yet assigned


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Why the stored cursor cannot be a position in the source as it is now."""

    cursor: Cursor
    stored: SourceIdentity | None
    now: SourceProbe
    differs: tuple[str, ...]  # "system_identifier", "database_oid", "xid"

    def message(self, lang: Lang | None = None) -> str:
        """One error for people: what differs and the command that fixes it."""
        parts: list[str] = []
        if self.stored is not None and not self.stored.same(self.now.identity):
            parts.append(t("source.moved_identity", lang, stored=self.stored.text(),
                           now=self.now.identity.text()))  # fmt: skip
        if "xid" in self.differs:
            parts.append(t("source.moved_xid", lang, tx=self.cursor.tx, xmax=self.now.xmax))
        return t("source.moved", lang, what="; ".join(parts))


def check(cursor: Cursor, stored: SourceIdentity | None, now: SourceProbe) -> Mismatch | None:
    """None when ``cursor`` (stored with ``stored``) can be a position in the source ``now``.

    A cursor without an identity (a schema from before version 9, or none
    yet) is checked on its transaction id only; the caller then adopts the
    current identity.
    """
    differs: list[str] = []
    if stored is not None:
        if stored.system_identifier != now.identity.system_identifier:
            differs.append("system_identifier")
        if stored.database_oid != now.identity.database_oid:
            differs.append("database_oid")
    if cursor.tx >= now.xmax:  # a transaction that was read is always below xmax
        differs.append("xid")
    return Mismatch(cursor, stored, now, tuple(differs)) if differs else None


async def probe(conn: db.Connection) -> SourceProbe:
    """The source's identity and its next transaction id: one round trip, any role."""
    row = await conn.fetchrow(_PROBE)
    assert row is not None
    identity = SourceIdentity(int(row["system_identifier"]), int(row["database_oid"]),
                              str(row["database"]))  # fmt: skip
    return SourceProbe(identity, int(row["xmax"]))


@dataclass(frozen=True, slots=True)
class ResetPoint:
    """Where a cursor must stand so that the events of a business time on are read again."""

    cursor: Cursor
    again: int  # events with occurred_at >= since after the cursor (read again)
    after: int  # every event after the cursor


async def reset_point(conn: db.Connection, since: dt.datetime) -> ResetPoint:
    """Just before the first event at or after ``since``, and never past the horizon.

    A cursor past a transaction still running would skip its rows when it
    commits, so the point is at most the horizon's ``(xmin - 1, last id)``.
    Events before ``since`` that sort after the point are read again too:
    that is harmless, the event table and the card keys take them once.
    """
    horizon = Cursor(int(await conn.fetchval(_HORIZON)) - 1, _LAST_ID)
    first = await conn.fetchrow(_FIRST_SINCE, since)
    point = horizon
    if first is not None:
        point = min(point, Cursor(int(first["tx"]), int(first["id"]) - 1))
    row = await conn.fetchrow(_COUNTS, str(point.tx), point.event_id, since)
    assert row is not None
    return ResetPoint(point, int(row["again"]), int(row["after"]))
