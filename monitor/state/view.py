"""What the later stages read of a case: a fresh `CaseState` or a stored ``jiancha.cases`` row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.state.case import CaseClocks, CaseFacts, CaseState

__all__ = ["VIEW_COLUMNS", "CaseView"]

VIEW_COLUMNS = (
    'case_id, matter, department, "window", region, status, clocks, facts, closed_at, completed_at'
)
"""The ``jiancha.cases`` columns `CaseView.from_row` reads, no more."""


@dataclass(frozen=True, slots=True)
class CaseView:
    """One case as the clocks and the engine see it, however it was obtained."""

    case_id: str
    matter: str | None
    department: str | None
    window: str | None
    region: str | None
    status: str
    clocks: CaseClocks
    facts: CaseFacts
    closed_at: dt.datetime | None = None  # withdrawn or terminated: every period but review stops
    completed_at: dt.datetime | None = None  # a decision (approve, deny) reached the applicant

    @classmethod
    def from_state(cls, st: CaseState) -> CaseView:
        return cls(st.case_id, st.matter, st.department, st.window, st.region, str(st.status),
                   st.clocks, st.facts, st.closed_at, st.completed_at)  # fmt: skip

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CaseView:
        """From a row of `VIEW_COLUMNS`: the stored JSON is parsed here, once."""
        return cls(row["case_id"], row["matter"], row["department"], row["window"], row["region"],
                   row["status"], CaseClocks.from_json(row["clocks"]),
                   CaseFacts.from_json(row["facts"]), row["closed_at"],
                   row["completed_at"])  # fmt: skip
