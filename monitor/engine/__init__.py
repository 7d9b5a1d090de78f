"""The fourth stage: which cards each case is due, as a pure function of data and ``now``.

``decide`` issues, closes and revokes clock cards; ``checks`` finds the
procedural ones; ``outcomes`` says how a finished case ended; ``cards`` is
the plain data all of them return. Nothing here does I/O: the ledger
(``monitor.cards``) persists what this decides.
"""

from monitor.engine.cards import CaseDecision, Closing, ExistingCard, NewCard, Outcome
from monitor.engine.checks import check_cards
from monitor.engine.decide import decide_case, decide_cases
from monitor.engine.outcomes import outcome_of, outcomes_of

__all__ = [
    "CaseDecision",
    "Closing",
    "ExistingCard",
    "NewCard",
    "Outcome",
    "check_cards",
    "decide_case",
    "decide_cases",
    "outcome_of",
    "outcomes_of",
]
