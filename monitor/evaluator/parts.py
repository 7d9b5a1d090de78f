"""What the evaluator hands on and keeps: a transaction's pending decisions, the card
counters, a decision's table rows, and the collector settings of a deciding process."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from monitor.cards.store import Written
from monitor.clocks.scheduler import row_of
from monitor.clocks.table import ClockRow
from monitor.engine.apart import DecideError
from monitor.engine.cards import CaseDecision, ExistingCard

__all__ = [
    "GC_THRESHOLDS",
    "CardStats",
    "Pending",
    "collector_paused",
    "configure_gc",
    "highest_levels",
    "rows_of",
]

_KEEP_TICKS = 100_000  # tick durations kept for the metrics until they are taken


@dataclass
class CardStats:
    """What the evaluator has done since start, for logs and the metrics."""

    cards_issued: int = 0
    last_card_id: int = 0  # the highest card id this process committed (monitor.worker)
    cards_closed: int = 0
    cards_revoked: int = 0
    escalated: int = 0
    ticks: int = 0
    last_tick_ms: float = 0.0
    issued_by_level: dict[str, int] = field(default_factory=dict)
    not_decided: int = 0  # cases marked with an error of the engine (`engine.apart`)
    tick_seconds: list[float] = field(default_factory=list)  # taken by the metrics snapshot

    def took(self, seconds: float) -> None:
        self.ticks += 1
        self.last_tick_ms = seconds * 1000
        if len(self.tick_seconds) >= _KEEP_TICKS:  # nobody takes them: keep the newest
            del self.tick_seconds[: _KEEP_TICKS // 2]
        self.tick_seconds.append(seconds)


@dataclass
class Pending:
    """What a transaction decided, published to memory only once it committed."""

    rows: dict[str, tuple[list[ClockRow], dict[tuple[str, str], int]]]
    now: int
    written: Written | None = None
    where: dict[str, str] = field(default_factory=dict)  # case -> its region's table, if any
    wakes: dict[str, int | None] = field(default_factory=dict)  # case -> a look then
    # decided as a tick would at ``now`` (a live batch): what they declined stays quiet
    settle: bool = False
    failed: list[DecideError] = field(default_factory=list)  # cases the engine raised on
    cleared: list[str] = field(default_factory=list)  # decided again after an error


def rows_of(d: CaseDecision, now: int) -> list[ClockRow]:
    """The scheduler's rows of a decision's running periods."""
    return [row_of(p, rel, now) for p, rel in zip(d.running, d.running_pauses, strict=True)]


def highest_levels(existing: Sequence[ExistingCard], d: CaseDecision) -> dict[tuple[str, str], int]:
    """The highest live level per rule and subject after ``d``, as a rebuild would see it."""
    highest: dict[tuple[str, str], int] = {}
    revoked = {c.card_id for c in d.revoke}
    for old in existing:
        if old.status != "revoked" and old.card_id not in revoked:
            key = (old.rule, old.subject)
            highest[key] = max(highest.get(key, 0), old.level)
    for new in d.issue:
        key = (new.rule, new.subject)
        highest[key] = max(highest.get(key, 0), new.level)
    return highest


# CPython collects its youngest generation after every 700 net allocations of
# container objects. A batch of 5,000 events allocates a few hundred thousand
# short-lived tuples, dicts and lists, none of them cyclic (reference counting
# frees them), so the defaults collected hundreds of times a batch and cost about
# a quarter of a backlog drain (bench_tailer, interleaved runs: 34,649 -> 45,662
# events/s median). Collections ~140 times rarer leave the cycle collector to do
# its job, with at most a few MB of cycles waiting for it.
GC_THRESHOLDS = (100_000, 20, 100)


def configure_gc() -> tuple[int, ...]:
    """The collector settings of a process that runs the pipeline: `jiancha run`, `jiancha
    evaluate` (a catch-up over 200k events: 42 s with Python's defaults, 35 s with these).
    Returns the thresholds they replace, for a caller that does not own its process."""
    was = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return was


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cycle collection while a set of cases is decided (pure, no await inside).

    Deciding allocates ~100 objects per case (periods, level times, decisions,
    rows), most of them kept in the scheduler's table: with the collector on,
    their count triggers collections in the middle of the set that find
    nothing, since the decisions make no cycles. Paused, the collector sees
    them once, at its next pass (docs/performance.md: a tick ~10% less CPU).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
