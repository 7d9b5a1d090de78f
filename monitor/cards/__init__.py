"""The fifth stage: the audited ledger of every card, and what people may do to one.

``ledger`` writes what the engine decided (issue, close, revoke, escalate)
inside the pipeline's transactions; ``lifecycle`` is a person's step
(acknowledge, appeal, decide, revoke), with its pure `transition`; ``query``
reads cards back; ``store`` is the interface the pipeline decides through,
``memory`` its in-memory form for replays.
"""

from monitor.cards.errors import BadInput, CardError, CardNotFound
from monitor.cards.lifecycle import (
    ACTION_NAMES,
    ACTIONS,
    RESULTS,
    SYSTEM_ACTOR,
    Acted,
    Action,
    Result,
    TransitionRefused,
    act,
    allowed_actions,
    transition,
)
from monitor.cards.query import CardFilter, list_cards, show_card
from monitor.cards.store import CardRecord, Store, Written

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "RESULTS",
    "SYSTEM_ACTOR",
    "Acted",
    "Action",
    "BadInput",
    "CardError",
    "CardFilter",
    "CardNotFound",
    "CardRecord",
    "Result",
    "Store",
    "TransitionRefused",
    "Written",
    "act",
    "allowed_actions",
    "list_cards",
    "show_card",
    "transition",
]
