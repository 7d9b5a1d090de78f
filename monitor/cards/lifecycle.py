"""What people do to cards: acknowledge, appeal, decide an appeal, revoke (docs/rule-book.md §4).

The decision whether a step is allowed is a pure function of the card's
status (`transition`), so it can be tested exhaustively; the I/O around it
(`act`) locks the card, asks that function, and records the step in the
append-only ``jiancha.card_events`` together with the card's new status, in
one transaction. The daemon's own steps (issue, notify, close, escalate) are
not here: the engine decides them and ``monitor.cards.ledger`` writes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from monitor.cards.errors import BadInput, CardError, CardNotFound
from monitor.cards.query import CARD_COLUMNS, EVENT_COLUMNS
from monitor.vocab import CARD_STATUSES, STATUS_NAMES, Lang

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "RESULTS",
    "SYSTEM_ACTOR",
    "Acted",
    "Action",
    "Result",
    "TransitionRefused",
    "act",
    "allowed_actions",
    "transition",
]

Action = Literal["ack", "appeal", "decide", "revoke"]
Result = Literal["upheld", "revoked"]

ACTIONS: Final[tuple[Action, ...]] = ("ack", "appeal", "decide", "revoke")
RESULTS: Final[tuple[Result, ...]] = ("upheld", "revoked")
SYSTEM_ACTOR: Final = "jiancha"
"""The actor of the daemon's own steps; a person may not act under this name."""

# The words for a person's steps (the statuses' words are in monitor.vocab).
ACTION_NAMES: Final[Mapping[str, Mapping[Lang, str]]] = {
    "ack": {"zh": "签收说明（ack）", "en": "acknowledge (ack)"},
    "appeal": {"zh": "申诉（appeal）", "en": "appeal"},
    "decide": {"zh": "申诉裁决（decide）", "en": "decide the appeal (decide)"},
    "revoke": {"zh": "撤销（revoke）", "en": "revoke"},
}

# What a person may do to a card in each status; closed and revoked are final.
_ALLOWED: Final[Mapping[str, tuple[Action, ...]]] = {
    "issued": ("ack", "appeal", "revoke"),
    "acknowledged": ("appeal", "revoke"),
    "appealed": ("decide", "revoke"),
    "closed": (),
    "revoked": (),
}
# Where each step leads; decide depends on its result (see `transition`).
_TARGET: Final[Mapping[Action, str]] = {
    "ack": "acknowledged",
    "appeal": "appealed",
    "revoke": "revoked",
}

# The ledger's word for each person's step.
_EVENT_KIND: Final[Mapping[Action, str]] = {
    "ack": "acknowledged",
    "appeal": "appealed",
    "decide": "appeal_decided",
    "revoke": "revoked",
}


class TransitionRefused(CardError):
    """The card's status does not allow the step; says what the status does allow."""

    def __init__(self, status: str, action: Action, card_id: int | None = None) -> None:
        self.status = status
        self.action = action
        self.card_id = card_id
        self.allowed = allowed_actions(status)
        zh_card = f"牌 {card_id} " if card_id is not None else "该牌"
        en_card = f"card {card_id}" if card_id is not None else "the card"
        zh_state, en_state = STATUS_NAMES[status]["zh"], STATUS_NAMES[status]["en"]
        zh_action, en_action = ACTION_NAMES[action]["zh"], ACTION_NAMES[action]["en"]
        if self.allowed:
            zh_allowed = "此状态下只能：" + "、".join(ACTION_NAMES[a]["zh"] for a in self.allowed)
            en_allowed = "allowed now: " + ", ".join(ACTION_NAMES[a]["en"] for a in self.allowed)
        else:
            zh_allowed = "此状态为终态，不能再做任何操作"
            en_allowed = "that is final: nothing more can be done to it"
        super().__init__(
            f"{zh_card}当前状态为“{zh_state}”，不能{zh_action}；{zh_allowed}",
            f"{en_card} is {en_state}; cannot {en_action}; {en_allowed}",
        )

    def for_card(self, card_id: int) -> TransitionRefused:
        """The same refusal, naming the card."""
        return TransitionRefused(self.status, self.action, card_id)


# --- the pure part -------------------------------------------------------------------


def allowed_actions(status: str) -> tuple[Action, ...]:
    """The steps a person may take on a card in ``status``, in `ACTIONS` order."""
    if status not in _ALLOWED:
        raise ValueError(f"unknown card status {status!r}")
    return _ALLOWED[status]


def transition(
    status: str,
    action: Action,
    result: Result | None = None,
    acknowledged_before: bool = False,
) -> str:
    """The status a card in ``status`` moves to when ``action`` is taken.

    An upheld appeal puts the card back where it was before the appeal:
    ``acknowledged`` if it had been acknowledged (``acknowledged_before``),
    else ``issued``. Raises `TransitionRefused` when the status does not
    allow the action (closed and revoked cards allow nothing), and
    ValueError for a call no user input can produce (unknown names, a
    decision without a result).
    """
    if status not in CARD_STATUSES:
        raise ValueError(f"unknown card status {status!r}")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action == "decide":
        if result not in RESULTS:
            raise ValueError(f"decide needs a result in {RESULTS}, got {result!r}")
    elif result is not None:
        raise ValueError(f"only decide takes a result, {action} got {result!r}")
    if action not in _ALLOWED[status]:
        raise TransitionRefused(status, action)
    if action == "decide":
        if result == "revoked":
            return "revoked"
        return "acknowledged" if acknowledged_before else "issued"
    return _TARGET[action]


@dataclass(frozen=True)
class Acted:
    """What `act` did: the card as it now is, the status it left, the rows it appended."""

    card: dict[str, Any]
    previous_status: str
    events: list[dict[str, Any]] = field(default_factory=list)


def _required(value: str, zh: str, en: str) -> str:
    text = value.strip()
    if not text:
        raise BadInput(f"{zh}不能为空", f"{en} must not be empty")
    return text


def _actor(by: str) -> str:
    actor = _required(by, "操作人（--by）", "the actor (--by)")
    if actor == SYSTEM_ACTOR:
        raise BadInput(
            f"操作人不能是 {SYSTEM_ACTOR}（该名称保留给系统自身的记录）",
            f"the actor cannot be {SYSTEM_ACTOR} (reserved for the daemon's own steps)",
        )
    return actor


def _steps(action: Action, status: str, new_status: str, result: Result | None,
           replies: bool, who: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """The ledger rows one step appends: (kind, detail); a revoking decision appends two."""
    detail: dict[str, Any] = {"from": status, "to": new_status, **who}
    if action == "decide":
        detail["result"] = result
    if replies:
        detail["replied_to_order"] = True
    steps: list[tuple[str, dict[str, Any]]] = [(_EVENT_KIND[action], detail)]
    if action == "decide" and new_status == "revoked":
        steps.append(
            ("revoked", {**who, "from": status, "to": new_status, "via": "appeal_decided"})
        )
    return steps


_LOCK = "SELECT status, reply_due, replied_at FROM jiancha.cards WHERE id = $1 FOR UPDATE"
_WAS_ACKNOWLEDGED = (
    "SELECT EXISTS (SELECT 1 FROM jiancha.card_events WHERE card_id = $1 AND kind = 'acknowledged')"
)
_APPEND = (
    "INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason, detail)"
    f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}"
)
_UPDATE = (
    "UPDATE jiancha.cards SET status = $2, updated_at = $3,"
    " replied_at = CASE WHEN $4 THEN $3 ELSE replied_at END"
    f" WHERE id = $1 RETURNING {CARD_COLUMNS}"
)


async def act(
    conn: Connection,
    card_id: int,
    action: Action,
    by: str,
    reason: str,
    now: dt.datetime,
    result: Result | None = None,
    *,
    role: str | None = None,
    channel: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Acted:
    """Take ``action`` on card ``card_id`` as person ``by``, for ``reason``, at ``now``.

    One transaction: the card row is locked (``FOR UPDATE``) so that two
    people acting at once are serialised and the second sees the first's
    outcome; the step is appended to the ledger and the card's status (and,
    for an acknowledgement of a card under a supervision order, its reply
    time) is updated. A decision that revokes also appends a ``revoked``
    step, so "was this card revoked" is one question whatever the route.

    Who acted is recorded in each step's ``detail`` as well as its ``actor``:
    ``role`` (the role the person acted in: ``officer``, ``window_head``, ...),
    ``channel`` (the door: ``web``, ``cli``) and ``extra`` (e.g. the CLI's
    operating-system user, a revocation's reason category).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware instant")
    actor = _actor(by)
    why = _required(reason, "原因或说明（--reason）", "the reason (--reason)")
    who: dict[str, Any] = dict(extra or {})
    if role is not None:
        who["role"] = role
    if channel is not None:
        who["channel"] = channel
    async with conn.transaction():
        row = await conn.fetchrow(_LOCK, card_id)
        if row is None:
            raise CardNotFound(card_id)
        status: str = row["status"]
        # Only an upheld appeal looks back: where did the card stand before it?
        acknowledged_before = action == "decide" and bool(
            await conn.fetchval(_WAS_ACKNOWLEDGED, card_id)
        )
        try:
            new_status = transition(status, action, result, acknowledged_before)
        except TransitionRefused as exc:
            raise exc.for_card(card_id) from None
        replies = action == "ack" and row["reply_due"] is not None and row["replied_at"] is None
        events: list[dict[str, Any]] = []
        for kind, detail in _steps(action, status, new_status, result, replies, who):
            inserted = await conn.fetch(_APPEND, card_id, kind, now, actor, why, detail)
            events.append(dict(inserted[0]))
        updated = await conn.fetch(_UPDATE, card_id, new_status, now, replies)
    return Acted(card=dict(updated[0]), previous_status=status, events=events)
