"""The ledger in memory: same keys and steps as ``jiancha.cards``, for a replay."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.calendar import Calendar
from monitor.cards.ledger import reply_deadlines
from monitor.cards.store import CardRecord, Written
from monitor.clocks.timing import epoch, from_epoch
from monitor.engine.cards import CardKey, Closing, Decided, ExistingCard
from monitor.rules.model import RuleSet
from monitor.state.view import CaseView
from monitor.vocab import OPEN_STATUSES, level_name

__all__ = ["MemCard", "MemoryStore"]


@dataclass
class MemCard:
    card_id: int
    case_id: str
    clock: str
    rule: str
    level: int
    issued_at: dt.datetime
    subject: str = ""
    status: str = "issued"
    reply_due: dt.datetime | None = None
    escalated_at: dt.datetime | None = None
    events: list[tuple[str, dt.datetime, str]] = field(default_factory=list)

    def existing(self) -> ExistingCard:
        return ExistingCard(self.card_id, self.case_id, self.clock, self.rule, self.level,
                            self.status, epoch(self.issued_at), self.subject)  # fmt: skip


class MemoryStore:
    """The ledger a replay writes to: same keys and steps as ``jiancha.cards``."""

    conn = None  # no database: nothing is queued for delivery

    def __init__(self) -> None:
        self.views: dict[str, CaseView] = {}
        self.cards: dict[int, MemCard] = {}  # by card id, revoked ones too
        self._live: dict[CardKey, MemCard] = {}  # the unique keys of jiancha.cards
        self._crossings: set[tuple[CardKey, int]] = set()
        self.errors: dict[str, str] = {}  # cases the engine could not decide

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def cases(self, case_ids: Sequence[str]) -> list[CaseView]:
        return [self.views[c] for c in case_ids if c in self.views]

    async def open_case_ids(self) -> list[str]:
        ended = ("withdrawn", "terminated", "orphan")
        return [c for c, v in self.views.items() if v.status not in ended or c in self.errors]

    async def cards_of(self, case_ids: Sequence[str]) -> dict[str, list[ExistingCard]]:
        wanted = set(case_ids)
        out: dict[str, list[ExistingCard]] = {c: [] for c in case_ids}
        for c in self.cards.values():
            if c.case_id in wanted:
                out[c.case_id].append(c.existing())
        return out

    async def write(
        self,
        decided: Decided,
        ruleset: RuleSet,
        cal: Calendar,
        now: dt.datetime,
        *,
        undecided: bool = False,
    ) -> Written:
        """The cards only: the replay computes its own figures from the final state."""
        issue = decided.issue
        issued = []
        revoked = self._move(decided.revoke, "revoked", now)  # first: frees the keys
        dues = reply_deadlines(issue, ruleset, cal, now)
        at_once = []
        for new, due in zip(issue, dues, strict=True):
            if new.key in self._live or new.crossing in self._crossings:
                continue
            card = MemCard(
                len(self.cards) + 1,
                new.case_id,
                new.clock,
                new.rule,
                new.level,
                from_epoch(new.issued_at),
                new.subject,
                reply_due=due,
            )
            card.events.append(("issued", now, ""))
            self.cards[card.card_id] = card
            self._live[new.key] = card
            self._crossings.add(new.crossing)
            issued.append(card.existing())
            if new.close is not None:
                at_once.append(Closing(card.card_id, new.close, new.issued_at))
        closed = self._move([*decided.close, *at_once], "closed", now)
        return Written(issued, closed, revoked)

    def _move(self, items: Sequence[Closing], status: str, now: dt.datetime) -> int:
        n = 0
        for item in items:
            card = self.cards.get(item.card_id)
            movable = (*OPEN_STATUSES, "closed") if status == "revoked" else OPEN_STATUSES
            if card is not None and card.status in movable:
                card.status = status
                if status == "revoked":
                    self._live.pop(card.existing().key, None)
                card.events.append((status, now, item.reason))
                n += 1
        return n

    async def escalate(self, now: dt.datetime) -> list[CardRecord]:
        out = []
        for card in self.cards.values():
            due = card.reply_due
            if (
                due is not None
                and due <= now
                and card.escalated_at is None
                and card.status in ("issued", "appealed")
            ):
                card.escalated_at = now
                card.events.append(("escalated", now, "supervision_reply_missed"))
                out.append(CardRecord(card.card_id, card.case_id, card.clock, card.rule,
                                      level_name(card.level), card.issued_at, None, None, None,
                                      None, {}, due))  # fmt: skip
        return out

    async def next_reply_due(self) -> dt.datetime | None:
        dues = [
            c.reply_due
            for c in self.cards.values()
            if c.reply_due is not None
            and c.escalated_at is None
            and c.status in ("issued", "appealed")
        ]
        return min(dues) if dues else None

    async def decide_errors(self) -> dict[str, str]:
        return dict(self.errors)

    async def record_decide_errors(
        self, failed: Mapping[str, str], cleared: Sequence[str], now: dt.datetime
    ) -> None:
        self.errors.update(failed)
        for case_id in cleared:
            self.errors.pop(case_id, None)
