"""The first stage: the approval database's events as they are read, and the contract they keep.

``contract`` says what an event and a matter are and when an event is bad;
``tailer`` reads them in batches, in an order that never loses one;
``catalogue`` loads the matters. Nothing here writes anywhere.
"""

from monitor.source.catalogue import example_matters, load_matters
from monitor.source.contract import (
    PAUSE_TYPES,
    START,
    Cursor,
    DeadReason,
    Matter,
    Rejection,
    SourceEvent,
    event_from_row,
    split,
    validate,
)
from monitor.source.tailer import CHANNEL, Batch, Tailer, TailerStats, read_batch

__all__ = [
    "CHANNEL",
    "PAUSE_TYPES",
    "START",
    "Batch",
    "Cursor",
    "DeadReason",
    "Matter",
    "Rejection",
    "SourceEvent",
    "Tailer",
    "TailerStats",
    "event_from_row",
    "example_matters",
    "load_matters",
    "read_batch",
    "split",
    "validate",
]
