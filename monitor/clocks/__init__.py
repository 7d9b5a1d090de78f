"""The third stage: every open case's running periods, timed on its working-day calendar.

``periods`` turns a case into the periods its clock rules watch and finds
when each level falls due; ``table`` keeps the running ones as columns for
the kernel; ``scheduler`` knows when to look next and at which cases;
``checkpoint`` saves the table so a restart need not rebuild it.
"""

from monitor.clocks.scheduler import Scheduler, row_of
from monitor.clocks.table import ClockRow, ClockTable, earliest
from monitor.clocks.timing import (
    DECISION_DEADLINE,
    EPS,
    NAT,
    LevelTimes,
    Pauses,
    Period,
    crossing_position,
    epoch,
    from_epoch,
    level_times,
    pause_spans,
    periods,
    thresholds,
    used_days,
)

__all__ = [
    "DECISION_DEADLINE",
    "EPS",
    "NAT",
    "ClockRow",
    "ClockTable",
    "LevelTimes",
    "Pauses",
    "Period",
    "Scheduler",
    "crossing_position",
    "earliest",
    "epoch",
    "from_epoch",
    "level_times",
    "pause_spans",
    "periods",
    "row_of",
    "thresholds",
    "used_days",
]
