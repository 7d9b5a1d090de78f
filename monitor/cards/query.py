"""Reading the card ledger: the cards that match a filter, and one card with its history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from monitor.cards.errors import CardNotFound
from monitor.vocab import CARD_STATUSES, CLOCKS, LEVELS, OPEN_STATUSES

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["CARD_COLUMNS", "EVENT_COLUMNS", "CardFilter", "list_cards", "show_card"]

CARD_COLUMNS: Final = (
    "id, case_id, clock, rule, level, issued_at, recorded_at, deadline, matter, department, "
    '"window", region, ruleset, calendar, detail, status, reply_due, replied_at, '
    "escalated_at, updated_at"
)
EVENT_COLUMNS: Final = "id, card_id, kind, at, actor, reason, detail, db_role"


@dataclass(frozen=True)
class CardFilter:
    """Which cards `list_cards` returns; ``None`` means any.

    ``status`` is a status, ``open`` (issued, acknowledged or appealed) or
    ``all``. ``issued_from`` is inclusive, ``issued_to`` exclusive, both
    aware instants.
    """

    status: str = "open"
    level: str | None = None
    department: str | None = None
    window: str | None = None
    case_id: str | None = None
    rule: str | None = None
    clock: str | None = None
    issued_from: dt.datetime | None = None
    issued_to: dt.datetime | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if self.status not in (*CARD_STATUSES, "open", "all"):
            raise ValueError(f"unknown status filter {self.status!r}")
        if self.level is not None and self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}")
        if self.clock is not None and self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}")
        for bound in (self.issued_from, self.issued_to):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("issued_from and issued_to must be aware instants")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")


async def list_cards(conn: Connection, filters: CardFilter) -> list[dict[str, Any]]:
    """Cards matching ``filters``, newest issue first, at most ``filters.limit``."""
    where: list[str] = []
    args: list[object] = []

    def add(condition: str, value: object) -> None:
        args.append(value)
        where.append(condition.format(f"${len(args)}"))

    if filters.status == "open":
        add("status = ANY({})", list(OPEN_STATUSES))
    elif filters.status != "all":
        add("status = {}", filters.status)
    for column, value in (
        ("level", filters.level),
        ("department", filters.department),
        ('"window"', filters.window),
        ("case_id", filters.case_id),
        ("rule", filters.rule),
        ("clock", filters.clock),
    ):
        if value is not None:
            add(f"{column} = {{}}", value)
    if filters.issued_from is not None:
        add("issued_at >= {}", filters.issued_from)
    if filters.issued_to is not None:
        add("issued_at < {}", filters.issued_to)
    args.append(filters.limit)
    query = (
        f"SELECT {CARD_COLUMNS} FROM jiancha.cards"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY issued_at DESC, id DESC LIMIT ${len(args)}"
    )
    return [dict(r) for r in await conn.fetch(query, *args)]


async def show_card(conn: Connection, card_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A card and its ledger, in the order the steps were recorded."""
    row = await conn.fetchrow(f"SELECT {CARD_COLUMNS} FROM jiancha.cards WHERE id = $1", card_id)
    if row is None:
        raise CardNotFound(card_id)
    events = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM jiancha.card_events WHERE card_id = $1 ORDER BY id",
        card_id,
    )
    return dict(row), [dict(e) for e in events]
