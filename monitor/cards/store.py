"""Where the pipeline reads cases and writes cards: the database, or memory for a replay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.calendar import Calendar
from monitor.db import Connection
from monitor.engine.cards import Decided, ExistingCard
from monitor.rules.model import RuleSet
from monitor.state.view import CaseView

__all__ = ["CardRecord", "Store", "Written"]


@dataclass(frozen=True)
class Written:
    """What a write did: the cards it issued (new ones only: a replay issues none)."""

    issued: list[ExistingCard]
    closed: int
    revoked: int


@dataclass(frozen=True)
class CardRecord:
    """A card as the ledger holds it: what a notification about it says."""

    card_id: int
    case_id: str
    clock: str
    rule: str
    level: str
    issued_at: dt.datetime
    deadline: dt.datetime | None
    matter: str | None
    department: str | None
    window: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    reply_due: dt.datetime | None = None  # a supervision order's reply deadline


class Store(Protocol):
    """The cases as stored and the ledger, as the pipeline decides through them."""

    @property
    def conn(self) -> Connection | None:
        """The database connection of the transaction, if the store is one (else None)."""

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    async def cases(self, case_ids: Sequence[str]) -> list[CaseView]: ...

    async def open_case_ids(self) -> list[str]:
        """The cases that may still run a period or hold an open card: what a start decides."""

    async def cards_of(self, case_ids: Sequence[str]) -> dict[str, list[ExistingCard]]: ...

    async def write(
        self,
        decided: Decided,
        ruleset: RuleSet,
        cal: Calendar,
        now: dt.datetime,
        *,
        undecided: bool = False,
    ) -> Written:
        """The cards' changes and the cases' figure columns (``Decided.outcomes``);
        ``undecided``: the cases were stored undecided, and the write clears their mark
        (`monitor.state.store.mark_decided` then finds them done)."""

    async def escalate(self, now: dt.datetime) -> list[CardRecord]: ...

    async def next_reply_due(self) -> dt.datetime | None: ...

    async def decide_errors(self) -> dict[str, str]:
        """The cases left undecided by an error of the engine, and the error."""

    async def record_decide_errors(
        self, failed: Mapping[str, str], cleared: Sequence[str], now: dt.datetime
    ) -> None:
        """Mark ``failed`` cases with their error, and clear the mark of ``cleared`` ones."""
