"""What the engine decides about cards, as plain data for the ledger to persist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.clocks.timing import Pauses, Period
from monitor.state.view import CaseView
from monitor.vocab import OPEN_STATUSES

__all__ = ["CardKey", "CaseDecision", "Closing", "Decided", "ExistingCard", "NewCard", "Outcome"]

Outcome = tuple[int | None, str]
"""A case's figure columns: (the instant its promised limit is used up, ``early`` |
``on_time`` | ``late`` once completed, else "") — ``monitor.engine.figures``."""


CardKey = tuple[str, str, str, str, int]
"""(case, clock, rule, subject, level): at most one live card each."""


class _Keyed:
    """A card's natural key: one live card per case, clock, rule, subject and level.

    The subject tells apart the periods one rule watches on a case (the n-th
    pause, a named step, the n-th rating); "" for the case's own clocks. A
    revoked card does not hold its key: the same threshold crossed again at
    another instant is a new card.
    """

    case_id: str
    clock: str
    rule: str
    subject: str
    level: int
    issued_at: int

    @property
    def key(self) -> CardKey:
        return (self.case_id, self.clock, self.rule, self.subject, self.level)

    @property
    def crossing(self) -> tuple[CardKey, int]:
        """The key with the instant: one crossing is never carded twice, revoked or not."""
        return (self.key, self.issued_at)


@dataclass(frozen=True)
class NewCard(_Keyed):
    """A card the engine decided to issue (not yet in the ledger)."""

    case_id: str
    clock: str
    rule: str
    level: int
    issued_at: int  # UTC seconds: the instant the level became due
    deadline: int | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    supervision: bool = False
    close: str | None = None  # closed at once (a finished period), with this reason
    subject: str = ""


@dataclass(frozen=True)
class ExistingCard(_Keyed):
    """A card already in the ledger, as much as the engine needs."""

    card_id: int
    case_id: str
    clock: str
    rule: str
    level: int
    status: str
    issued_at: int
    subject: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Closing:
    """A card to close or revoke: which, why, and the business instant it answers; for a
    revocation, the key it frees (the ledger writes a new card of that key after it)."""

    card_id: int
    reason: str
    at: int
    key: CardKey | None = None


@dataclass
class CaseDecision:
    """Everything a case's new state means for the ledger and the scheduler."""

    issue: list[NewCard] = field(default_factory=list)
    close: list[Closing] = field(default_factory=list)
    revoke: list[Closing] = field(default_factory=list)
    running: list[Period] = field(default_factory=list)  # for the scheduler's table
    running_pauses: list[Pauses] = field(default_factory=list)  # each one's, at ``now``
    outcome: Outcome | None = None  # the figure columns (monitor.engine.figures)
    wake_at: int | None = None  # look again then, whatever the table says (deemed acceptance)


@dataclass(frozen=True)
class Decided:
    """What a set of decisions asks of the ledger, with the cases it is about (by id), and
    the cases' figure columns (written with the cards: one round trip, not two)."""

    issue: Sequence[NewCard]
    close: Sequence[Closing]
    revoke: Sequence[Closing]
    cases: Mapping[str, CaseView]
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)

    @classmethod
    def of(cls, decisions: Sequence[CaseDecision], views: Sequence[CaseView]) -> Decided:
        return cls(
            [c for d in decisions for c in d.issue],
            [c for d in decisions for c in d.close],
            [c for d in decisions for c in d.revoke],
            {v.case_id: v for v in views},
            {
                v.case_id: d.outcome
                for v, d in zip(views, decisions, strict=True)
                if d.outcome is not None
            },
        )
