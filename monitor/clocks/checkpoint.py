"""A checkpoint of the scheduler's clock table, so a restart need not re-decide every case.

Building the table re-decides every open case in Python (~140 µs each): 4 s
for a large city's 15k cases. The table is a pure function of the ledger and
the case rows under given rules and calendar, so a saved copy stays right for
every case that has not changed since; a restart loads it and re-decides only
the cases with an event after the saved cursor or a card event after the saved
card-event id. That set is a superset of what changed, whatever the order of
saves, commits and kills, so a stale checkpoint costs time, never correctness.
A checkpoint of other rules, another calendar, another database or another
format is ignored (and said so in the log); the full build runs instead. So
is one ahead of the database (its cursor or its card events: a restored
backup, a failover that lost the primary's last transactions), which would
keep the clocks of cases the database no longer has.

Saved atomically (temporary file, then rename) as ``.npz`` of plain arrays:
no pickle, nothing executable is read back.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from monitor import db
from monitor.clocks.table import ClockTable
from monitor.log import get_logger
from monitor.source.contract import Cursor

FORMAT = 2  # 2: the scheduler's wake-ups are saved with the table
FILENAME = "clock-table.npz"

# A reset cursor (`jiancha db reset-cursor`) changes it too: the events taken after a
# reset may carry transaction ids below the saved cursor's, which _CHANGED cannot see.
_IDENTITY = """
SELECT current_database() || '/' ||
       coalesce((SELECT applied_at::text FROM jiancha.schema_migrations WHERE version = 1), '')
       || coalesce('/reset ' || (SELECT max(reset_at)::text FROM jiancha.cursor), '')
"""
_LAST_CARD_EVENT = "SELECT coalesce(max(id), 0) FROM jiancha.card_events"
# Whether the database's cursor stands before the saved one (no cursor: before any).
_BEHIND = """
SELECT coalesce((SELECT tx < $1::text::xid8 OR (tx = $1::text::xid8 AND event_id < $2)
                 FROM jiancha.cursor WHERE source = 'default'),
                $1::text::int8 > 0 OR $2 > 0)
"""
# Cases a saved table may be wrong about: an event taken after its cursor, or a card
# event (issued, revoked, ...) after its last card event.
_CHANGED = """
SELECT case_id FROM jiancha.events
WHERE tx > $1::text::xid8 OR (tx = $1::text::xid8 AND event_id > $2)
UNION
SELECT c.case_id FROM jiancha.card_events e JOIN jiancha.cards c ON c.id = e.card_id
WHERE e.id > $3
"""


@dataclass(frozen=True)
class Meta:
    format: int
    identity: str  # the database and its schema's first migration
    rules: str  # fingerprints the table was built with
    calendar: str
    cursor_tx: int
    cursor_id: int
    card_event: int  # last card event id reflected

    def matches(self, other: Meta) -> str | None:
        """Why a saved table cannot be used with ``other`` (None: it can)."""
        for key in ("format", "identity", "rules", "calendar"):
            if getattr(self, key) != getattr(other, key):
                return f"{key}_changed"
        return None


_COLUMNS = ("start", "limit", "ext", "paused", "since", "th", "issued", "level", "due")


def _arrays(table: ClockTable) -> dict[str, np.ndarray[Any, Any]]:
    """The table's used slots as named arrays (views: copy them to keep them)."""
    n = table.size
    out = {name: getattr(table, name)[..., :n] for name in _COLUMNS}
    out["case"], out["rule"] = table.owner_columns()
    return out


def save(path: Path, arrays: dict[str, np.ndarray[Any, Any]], meta: Meta) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".clock-table-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            named: dict[str, Any] = {"meta": np.asarray(json.dumps(meta.__dict__)), **arrays}
            np.savez(fh, **named)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wake_arrays(wakes: dict[str, int]) -> dict[str, np.ndarray[Any, Any]]:
    """The instants the engine asked to look at a case again (a deeming, a pause's end):
    no row of the table says them, so a resumed table without them would never look."""
    return {"wake_case": np.asarray(list(wakes), dtype=str),
            "wake_at": np.asarray(list(wakes.values()), dtype=np.int64)}  # fmt: skip


def load(path: Path) -> tuple[ClockTable, Meta, dict[str, int]] | None:
    """The saved table, what it was built from and its wake-ups; None when unusable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = Meta(**json.loads(str(z["meta"])))
            n = int(z["start"].shape[0])
            table = ClockTable(max(n, 1024))
            for name in _COLUMNS:
                getattr(table, name)[..., :n] = z[name]
            cases, rules = z["case"].tolist(), z["rule"].tolist()
            wakes = dict(zip(z["wake_case"].tolist(), z["wake_at"].tolist(), strict=True))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log = get_logger("monitor.clocks.checkpoint")
            log.warning(
                "checkpoint_unreadable", path=str(path), error=f"{type(exc).__name__}: {exc}"
            )
        return None
    table.size = n
    for slot, (case, rule) in enumerate(zip(cases, rules, strict=True)):
        if case:
            table.attach(slot, case, rule)
        else:
            table.free.append(slot)
    return table, meta, wakes


class Checkpointer:
    """Saves the scheduler's table now and then and at a clean stop; hands it back at start."""

    def __init__(self, directory: Path, every: float = 300.0) -> None:
        self.path = directory / FILENAME
        self.every = every  # seconds (real) between saves while running
        self.saved_at: float | None = None  # trio clock of the last save
        self.log = get_logger("monitor.clocks.checkpoint")

    async def meta(self, conn: db.Connection, rules: str, calendar: str, cursor: Cursor) -> Meta:
        identity = str(await conn.fetchval(_IDENTITY))  # read each time: a reset changes it
        card_event = int(await conn.fetchval(_LAST_CARD_EVENT))
        return Meta(FORMAT, identity, rules, calendar, cursor.tx, cursor.event_id, card_event)

    async def resume(self, conn: db.Connection, rules: str, calendar: str
                     ) -> tuple[ClockTable, list[str], dict[str, int]] | None:  # fmt: skip
        """The saved table, the cases to re-decide and the wake-ups, or None (build it whole)."""
        got = load(self.path)
        if got is None:
            return None
        table, saved, wakes = got
        now = await self.meta(conn, rules, calendar, Cursor(0, 0))
        why = saved.matches(now)
        if why is None and now.card_event < saved.card_event:
            why = "ledger_older"  # a restored backup: the saved table is ahead of it
        if why is None and await conn.fetchval(_BEHIND, str(saved.cursor_tx), saved.cursor_id):
            # The events after the database's cursor are gone (a failover that lost the
            # primary's last transactions, a backup): their cases' clocks must not stay.
            why = "cursor_older"
        if why is not None:
            self.log.info("checkpoint_ignored", reason=why, path=str(self.path))
            return None
        rows = await conn.fetch(_CHANGED, str(saved.cursor_tx), saved.cursor_id, saved.card_event)
        return table, sorted(r["case_id"] for r in rows), wakes

    async def save(self, conn: db.Connection, table: ClockTable, rules: str, calendar: str,
                   cursor: Cursor, now: float, wakes: dict[str, int] | None = None,
                   ) -> None:  # fmt: skip
        # The ids are read first, then the table copied without an await in between:
        # anything committed meanwhile is after the ids, so it is re-decided at a resume.
        meta = await self.meta(conn, rules, calendar, cursor)
        snapshot = {k: np.array(v) for k, v in _arrays(table).items()}  # the thread's own copy
        snapshot.update(_wake_arrays(dict(wakes or {})))
        await trio.to_thread.run_sync(save, self.path, snapshot, meta)
        self.saved_at = now
        self.log.info("checkpoint_saved", path=str(self.path), clocks=len(table),
                      cursor_tx=cursor.tx, cursor_id=cursor.event_id)  # fmt: skip

    def due(self, now: float) -> bool:
        return self.saved_at is None or now - self.saved_at >= self.every


__all__ = ["Checkpointer", "Meta", "load", "save"]
