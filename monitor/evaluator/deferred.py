"""A backlog's undecided cases: the views its batches kept, read in chunks to be decided.

Batches of a backlog store their cases undecided (`monitor.pipeline`); once caught
up, `Evaluator.decide_undecided` decides each of them once, a chunk at a time, the
next chunk decided in a worker thread while the server writes the last one's cards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import trio

from monitor.cards.ledger import DbStore
from monitor.engine.cards import ExistingCard
from monitor.state import store as state_store
from monitor.state.case import CaseState, Status
from monitor.state.view import CaseView

__all__ = ["DEFERRED_VIEWS_MAX", "Chunk", "DeferredViews", "decide_in_thread"]

# Deferred cases whose views an evaluator keeps (about 1.8 KB each: 90 MB at most); past
# this, the rest are read back from their rows when decided. Reading 25,000 back was a
# sixth of the time of deciding them (bench_catchup, 2026-12-07).
DEFERRED_VIEWS_MAX = 50_000

T = TypeVar("T")


@dataclass(frozen=True)
class Chunk:
    """Undecided cases and what deciding them reads."""

    ids: list[str] = field(default_factory=list)  # in order; orphans too (their marks clear)
    views: list[CaseView] = field(default_factory=list)
    cards: Mapping[str, list[ExistingCard]] = field(default_factory=dict)


@dataclass
class DeferredViews:
    """What a backlog's batches stored undecided, as stored, so deciding them once caught
    up need not read every row back."""

    kept: dict[str, tuple[int, int, CaseView]] = field(default_factory=dict)
    room: int = DEFERRED_VIEWS_MAX

    def keep(self, states: Sequence[CaseState]) -> None:
        """After the commit of a batch that stored ``states`` undecided: their views."""
        kept, room = self.kept, self.room
        for s in states:
            if (len(kept) < room or s.case_id in kept) and s.status is not Status.ORPHAN:
                kept[s.case_id] = (s.last_event_id, s.event_count, CaseView.from_state(s))

    def forget(self, states: Sequence[CaseState]) -> None:
        """After the commit of a batch that decided ``states``: no longer deferred."""
        if self.kept:
            for s in states:
                self.kept.pop(s.case_id, None)

    async def views(self, st: DbStore, marks: Sequence[tuple[str, int, int]]) -> list[CaseView]:
        """The views of these undecided cases, in their order: kept ones whose row is still
        the one their batch wrote (last event, count), the others read from their rows."""
        got: dict[str, CaseView] = {}
        for cid, last, count in marks:
            hit = self.kept.pop(cid, None)  # once decided, not deferred any more
            if hit is not None and hit[0] == last and hit[1] == count:
                got[cid] = hit[2]
        missing = [cid for cid, _, _ in marks if cid not in got]
        if missing:
            got.update((v.case_id, v) for v in await st.cases(missing))
        return [got[cid] for cid, _, _ in marks if cid in got]

    async def chunk(self, st: DbStore, size: int, after: str) -> Chunk:
        """The next ``size`` undecided cases after the case ``after``, with their cards."""
        marks = await state_store.undecided_marks(st.conn, size, after)
        views = [v for v in await self.views(st, marks) if v.status != "orphan"]
        cards = await st.cards_of([v.case_id for v in views]) if views else {}
        return Chunk([cid for cid, _, _ in marks], views, cards)


async def decide_in_thread(decide: Callable[..., T], chunk: Chunk, out: list[T]) -> None:
    """``decide`` (pure code, on the chunk's own data) of a chunk in a worker thread."""
    out.append(await trio.to_thread.run_sync(partial(decide, chunk.views, cards=chunk.cards)))
