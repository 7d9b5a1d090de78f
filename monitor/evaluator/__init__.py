"""The engine's I/O shell: cases and cards in, decisions through the pure engine, the
ledger and the outbox written, the scheduler told once the transaction committed.

`Evaluator` (`shell`) reads cases and cards through a `Store` (the database, or
memory for a replay), asks the pure engine, writes the ledger and the outbox, and
publishes to the scheduler only once the transaction committed. The scheduler's
ticks (the crossing instants) go through it too. What it hands on and keeps is in
`parts`. The batch transaction that calls it is `monitor.pipeline`.
"""

from monitor.evaluator.deferred import DEFERRED_VIEWS_MAX
from monitor.evaluator.parts import (
    GC_THRESHOLDS,
    CardStats,
    Pending,
    configure_gc,
)
from monitor.evaluator.shell import Evaluator

__all__ = [
    "DEFERRED_VIEWS_MAX",
    "GC_THRESHOLDS",
    "CardStats",
    "Evaluator",
    "Pending",
    "configure_gc",
]
