"""Who sees what and may do what (docs/console.md): one place for every page and POST.

Officers and admins see every card; a department head the cards of their
departments, read only; a window head the cards of their windows, which they
may acknowledge or appeal. Officers revoke and decide appeals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from monitor.accounts import User
from monitor.cards.lifecycle import Action

__all__ = ["ACTING_ROLE", "ALL_SEEING", "may", "sees"]

# The role in which a person takes each step.
ACTING_ROLE: Final[Mapping[Action, str]] = {
    "ack": "window_head", "appeal": "window_head", "revoke": "officer", "decide": "officer",
}  # fmt: skip
ALL_SEEING: Final = ("officer", "admin")


def sees(user: User, window: str | None, department: str | None) -> bool:
    """Whether ``user`` may read a card or case of ``window`` in ``department``."""
    if any(user.has(r) for r in ALL_SEEING):
        return True
    if user.has("window_head") and window is not None and window in user.windows:
        return True
    return user.has("department_head") and department is not None and department in user.departments


def may(user: User, action: Action, window: str | None) -> bool:
    """Whether ``user`` may take ``action`` on a card of ``window``."""
    role = ACTING_ROLE[action]
    if not user.has(role):
        return False
    return role != "window_head" or (window is not None and window in user.windows)
