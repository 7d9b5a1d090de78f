"""The source contract: what an approval database's events and matters are, and when one is bad.

Every row of ``case_events`` becomes a `SourceEvent`; `validate` says, as a
typed reason, why one breaks the contract (docs/contract.md's kinds and payload
keys), without raising: a bad event goes to the dead-letter table and the
daemon carries on. A `Cursor` is a position in the order the tailer reads
in. Everything here is pure data and pure functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "PAUSE_TYPES",
    "START",
    "Cursor",
    "DeadReason",
    "Matter",
    "Rejection",
    "SourceEvent",
    "event_from_row",
    "split",
    "validate",
]


class DeadReason(StrEnum):
    """Why an event went to ``jiancha.dead_letters``."""

    UNKNOWN_KIND = "unknown_kind"
    MISSING_KEY = "missing_key"
    BAD_TYPE = "bad_type"
    BAD_VALUE = "bad_value"
    UNKNOWN_MATTER = "unknown_matter"
    FUTURE_TIMESTAMP = "future_timestamp"
    NEVER_SUBMITTED = "never_submitted"


PAUSE_TYPES = frozenset(
    {"hearing", "bidding", "auction", "inspection", "testing", "quarantine", "appraisal",
     "expert_review", "survey", "public_notice"}
)  # fmt: skip


class SourceEvent(NamedTuple):
    """One row of the source's ``case_events``.

    A named tuple, not a frozen dataclass: the tailer makes one per event read,
    and a tuple is built in a third of the time.
    """

    event_id: int
    tx: int
    case_id: str
    kind: str
    occurred_at: dt.datetime  # timezone-aware
    payload: Mapping[str, Any]

    def raw(self) -> dict[str, Any]:
        """The row as JSON, for the dead-letter table."""
        return {
            "id": self.event_id,
            "tx": str(self.tx),
            "case_id": self.case_id,
            "kind": self.kind,
            "occurred_at": self.occurred_at.isoformat(),
            # whatever JSON the source sent: a contract breach may be a list or a string
            "payload": dict(self.payload) if isinstance(self.payload, Mapping) else self.payload,
        }


@dataclass(frozen=True, slots=True)
class Matter:
    """A catalogued service item (the source's ``matters``)."""

    code: str
    name: str
    department: str
    statutory_days: int
    promised_days: int
    free: bool = True
    joint: bool = False
    step_days: Mapping[str, int] = field(default_factory=dict)
    pause_max_days: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, m: Mapping[str, Any]) -> Matter:
        """From a ``matters`` row or a catalogue file's table: the keys are the column names."""
        return cls(
            m["code"],
            m["name"],
            m["department"],
            int(m["statutory_days"]),
            int(m["promised_days"]),
            bool(m.get("free", True)),
            bool(m.get("joint", False)),
            dict(m.get("step_days") or {}),
            dict(m.get("pause_max_days") or {}),
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    event: SourceEvent
    reason: DeadReason
    detail: str


# --- validation ------------------------------------------------------------------

# kind -> {key: (expected type(s), required)}
_STR = (str,)
_INT = (int,)
_NUM = (int, float)
_LIST = (list,)
_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "submitted": {
        "matter": (_STR, True),
        "window": (_STR, True),
        "region": (_STR, True),
        "channel": (_STR, True),
    },
    "supplement_requested": {"items": (_LIST, True)},
    "supplement_received": {},
    "accepted": {"promised_days": (_INT, False), "pledged_days": (_INT, False)},
    "refused": {"reason": (_STR, False)},  # a missing reason is a card (rule book §4), not bad data
    "step_started": {"step": (_STR, True)},
    "step_finished": {"step": (_STR, True)},
    "suspended": {"type": (_STR, True), "notified_days": (_INT, True)},
    "resumed": {},
    "extended": {"days": (_INT, True), "approver": (_STR, True)},
    "decided": {"result": (_STR, True)},
    "completed": {},
    "delivered": {},
    "withdrawn": {},
    "terminated": {"reason": (_STR, True)},
    "fee_charged": {"amount": (_NUM, True)},
    "rated": {"level": (_INT, True), "comment": (_STR, False)},
    "review_visited": {},
    "review_rectified": {},
}


def validate(
    event: SourceEvent,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    future_tolerance: dt.timedelta = dt.timedelta(days=1),
) -> Rejection | None:
    """Why ``event`` breaks the source contract, or None when it is fine."""
    schema = _SCHEMA.get(event.kind)
    if schema is None:
        return Rejection(event, DeadReason.UNKNOWN_KIND, f"kind={event.kind!r}")
    if event.occurred_at > now + future_tolerance:
        detail = f"occurred_at={event.occurred_at.isoformat()} now={now.isoformat()}"
        return Rejection(event, DeadReason.FUTURE_TIMESTAMP, detail)
    payload: object = event.payload  # typed as a mapping, but it is whatever the source sent
    if type(payload) is not dict and not isinstance(payload, Mapping):  # abc check is slow
        return Rejection(event, DeadReason.BAD_TYPE, "payload is not a JSON object")
    for key, (types, required) in schema.items():
        if key not in payload or payload[key] is None:
            if required:
                return Rejection(event, DeadReason.MISSING_KEY, key)
            continue
        value = payload[key]
        if not isinstance(value, types) or isinstance(value, bool):
            expected = "/".join(t.__name__ for t in types)
            detail = f"{key}: expected {expected}, got {type(value).__name__}"
            return Rejection(event, DeadReason.BAD_TYPE, detail)
    problem = _bad_value(event.kind, payload, matters)
    if problem is not None:
        reason, detail = problem
        return Rejection(event, reason, detail)
    return None


def _bad_value(
    kind: str, p: Mapping[str, Any], matters: Mapping[str, Matter]
) -> tuple[DeadReason, str] | None:
    bad = DeadReason.BAD_VALUE
    if kind == "submitted":
        if p["matter"] not in matters:
            return DeadReason.UNKNOWN_MATTER, f"matter={p['matter']!r}"
        if p["channel"] not in ("window", "online"):
            return bad, f"channel={p['channel']!r}"
    elif kind == "supplement_requested":
        if not all(isinstance(i, str) for i in p["items"]):
            return DeadReason.BAD_TYPE, "items: expected list of str"
    elif kind == "accepted":
        for key in ("promised_days", "pledged_days"):
            if key in p and p[key] is not None and p[key] < 0:
                return bad, f"{key}={p[key]}"
    elif kind == "suspended":
        if p["type"] not in PAUSE_TYPES:
            return bad, f"type={p['type']!r}"
        if p["notified_days"] < 0:
            return bad, f"notified_days={p['notified_days']}"
    elif kind == "extended":
        if p["days"] <= 0:
            return bad, f"days={p['days']}"
    elif kind == "decided":
        if p["result"] not in ("approve", "deny"):
            return bad, f"result={p['result']!r}"
    elif kind == "fee_charged":
        if p["amount"] < 0:
            return bad, f"amount={p['amount']}"
    elif kind == "rated" and not 1 <= p["level"] <= 5:
        return bad, f"level={p['level']}"
    return None


def split(
    events: Sequence[SourceEvent],
    matters: Mapping[str, Matter],
    now: dt.datetime,
    future_tolerance: dt.timedelta,
) -> tuple[list[SourceEvent], list[Rejection]]:
    """Valid events and rejections, in input order."""
    valid: list[SourceEvent] = []
    dead: list[Rejection] = []
    for event in events:
        rejection = validate(event, matters, now, future_tolerance)
        if rejection is None:
            valid.append(event)
        else:
            dead.append(rejection)
    return valid, dead


def event_from_row(row: Any) -> SourceEvent:
    """A row with the columns of ``case_events`` (``id`` as ``event_id``, ``tx`` as text)."""
    return SourceEvent(
        int(row["event_id"]),
        int(row["tx"]),
        row["case_id"],
        row["kind"],
        row["occurred_at"],
        row["payload"],
    )


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A position in the source's (tx, id) order: everything up to it is taken."""

    tx: int
    event_id: int

    @classmethod
    def after(cls, events: Sequence[SourceEvent], current: Cursor) -> Cursor:
        if not events:
            return current
        last = events[-1]
        return cls(last.tx, last.event_id)


START = Cursor(0, 0)
