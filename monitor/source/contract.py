"""The source contract: what an approval database's events and matters are, and when one is bad.

Every row of ``case_events`` becomes a `SourceEvent`; `validate` says, as a
typed reason, why one breaks the contract (docs/contract.md's kinds and payload
keys), without raising: a bad event goes to the dead-letter table and the
daemon carries on. A `Cursor` is a position in the order the tailer reads
in. Everything here is pure data and pure functions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "LIMITS",
    "PAUSE_TYPES",
    "RAW_CHARS",
    "START",
    "UNREADABLE_TIME",
    "Cursor",
    "DeadReason",
    "Limits",
    "Matter",
    "Rejection",
    "SourceEvent",
    "Unreadable",
    "clip",
    "event_from_row",
    "payload_of",
    "split",
    "too_large",
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
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    TEXT_TOO_LONG = "text_too_long"
    LIST_TOO_LONG = "list_too_long"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    APPLY_FAILED = "apply_failed"  # valid, yet its batch failed on it alone: the error


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest values an event may carry, so that every one fits jiancha's schema.

    One value too large for a column or an index (an ``integer``, a btree key
    of at most 2,704 bytes) would fail its whole batch; bounded here, it is a
    dead letter with its reason instead (docs/source.md lists them).
    """

    id_chars: int = 200  # case_id, matter, window, region, step, approver: index keys
    text_chars: int = 4000  # free text: reason, comment, each of `items`
    items: int = 200  # entries of `items`
    # day counts: 10 years. The columns are int32 and sum a case's extensions, and the
    # calendar spans 2000-2100: a limit past it cannot be counted at all.
    days: int = 3650
    amount: float = 1e12  # yuan: summed as a float per case, so far below overflow
    payload_bytes: int = 64 * 1024  # the payload as compact UTF-8 JSON


LIMITS = Limits()


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
        """The row as JSON, for the dead-letter table; texts past 1,024 characters are cut
        (the source row keeps them whole)."""
        return {
            "id": self.event_id,
            "tx": str(self.tx),
            "case_id": clip(self.case_id, RAW_CHARS),
            "kind": clip(self.kind, RAW_CHARS),
            "occurred_at": self.occurred_at.isoformat(),
            # whatever JSON the source sent: a contract breach may be a list or a string
            "payload": dict(self.payload) if isinstance(self.payload, Mapping) else self.payload,
        }


RAW_CHARS = 1024  # of a text kept in a dead letter

# Where the tailer puts an event time Python's datetime cannot hold (±infinity, BC,
# past year 9999): `validate` rejects every time before year 2.
UNREADABLE_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def clip(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters, marked when cut."""
    return text if len(text) <= chars else f"{text[:chars]}…[{len(text)} chars]"


class Unreadable(str):
    """A payload PostgreSQL stores but Python cannot read: the start of its text, and why.

    A jsonb number of more than 4,300 digits (Python's limit for an int) or
    arrays nested past Python's recursion limit; `validate` rejects it.
    """

    reason: DeadReason
    detail: str


def payload_of(text: str) -> Any:
    """A payload from its jsonb text: the JSON value, or an `Unreadable`."""
    try:
        return json.loads(text)
    except RecursionError:
        why, detail = DeadReason.PAYLOAD_TOO_LARGE, "payload: nested too deeply to read"
    except ValueError as exc:
        why, detail = DeadReason.VALUE_OUT_OF_RANGE, f"payload: {clip(str(exc), 200)}"
    bad = Unreadable(clip(text, RAW_CHARS))
    bad.reason, bad.detail = why, detail
    return bad


def too_large(stored: int) -> Unreadable:
    """A payload not even read: its stored size alone is past any payload jiancha takes."""
    bad = Unreadable("")
    bad.reason = DeadReason.PAYLOAD_TOO_LARGE
    bad.detail = f"payload: {stored} bytes stored, not read"
    return bad


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

# kind -> {key: (expected type(s), required, the limit its value is held to)}
_STR = (str,)
_INT = (int,)
_NUM = (int, float)
_LIST = (list,)
_ID, _TEXT, _DAYS, _AMOUNT = "id", "text", "days", "amount"
_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool, str | None]]] = {
    "submitted": {
        "matter": (_STR, True, _ID),
        "window": (_STR, True, _ID),
        "region": (_STR, True, _ID),
        "channel": (_STR, True, _ID),
    },
    "supplement_requested": {"items": (_LIST, True, None)},  # counted in _bad_value
    "supplement_received": {},
    "accepted": {"promised_days": (_INT, False, _DAYS), "pledged_days": (_INT, False, _DAYS)},
    # a missing reason is a card (rule book §4), not bad data
    "refused": {"reason": (_STR, False, _TEXT)},
    "step_started": {"step": (_STR, True, _ID)},
    "step_finished": {"step": (_STR, True, _ID)},
    "suspended": {"type": (_STR, True, _ID), "notified_days": (_INT, True, _DAYS)},
    "resumed": {"type": (_STR, False, _ID)},
    "extended": {"days": (_INT, True, _DAYS), "approver": (_STR, True, _ID)},
    "decided": {"result": (_STR, True, _ID)},
    "completed": {},
    "delivered": {},
    "withdrawn": {},
    "terminated": {"reason": (_STR, True, _TEXT)},
    "fee_charged": {"amount": (_NUM, True, _AMOUNT)},
    "rated": {"level": (_INT, True, None), "comment": (_STR, False, _TEXT)},
    "review_visited": {},
    "review_rectified": {},
}


def validate(
    event: SourceEvent,
    matters: Mapping[str, Matter],
    now: dt.datetime,
    future_tolerance: dt.timedelta = dt.timedelta(days=1),
    limits: Limits = LIMITS,
) -> Rejection | None:
    """Why ``event`` breaks the source contract or ``limits``, or None when it is fine."""
    schema = _SCHEMA.get(event.kind)
    if schema is None:
        return Rejection(event, DeadReason.UNKNOWN_KIND, f"kind={clip(event.kind, 200)!r}")
    if len(event.case_id) > limits.id_chars:
        detail = f"case_id: {len(event.case_id)} chars > {limits.id_chars}"
        return Rejection(event, DeadReason.TEXT_TOO_LONG, detail)
    if event.occurred_at.year < 2:  # UNREADABLE_TIME, or as good as
        detail = f"occurred_at={event.occurred_at.isoformat()}: outside years 2-9998"
        return Rejection(event, DeadReason.VALUE_OUT_OF_RANGE, detail)
    if event.occurred_at > now + future_tolerance:
        detail = f"occurred_at={event.occurred_at.isoformat()} now={now.isoformat()}"
        return Rejection(event, DeadReason.FUTURE_TIMESTAMP, detail)
    payload: object = event.payload  # typed as a mapping, but it is whatever the source sent
    if type(payload) is not dict and not isinstance(payload, Mapping):  # abc check is slow
        if isinstance(payload, Unreadable):
            return Rejection(event, payload.reason, payload.detail)
        return Rejection(event, DeadReason.BAD_TYPE, "payload is not a JSON object")
    problem = _too_large(payload, limits.payload_bytes)
    for key, (types, required, bound) in schema.items():
        if problem is not None:
            break
        if key not in payload or payload[key] is None:
            if required:
                return Rejection(event, DeadReason.MISSING_KEY, key)
            continue
        value = payload[key]
        if not isinstance(value, types) or isinstance(value, bool):
            expected = "/".join(t.__name__ for t in types)
            detail = f"{key}: expected {expected}, got {type(value).__name__}"
            return Rejection(event, DeadReason.BAD_TYPE, detail)
        if bound is not None:
            problem = _beyond(key, value, bound, limits)
    if problem is None:
        problem = _bad_value(event.kind, payload, matters, limits)
    return None if problem is None else Rejection(event, *problem)


# Compact JSON as jiancha stores it; a non-finite float (a jsonb number past 1e308
# with a fraction reads as inf) is an error, not `Infinity`, which jsonb refuses.
_STRICT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _too_large(p: Mapping[str, Any], most: int) -> tuple[DeadReason, str] | None:
    """Whether the payload is past ``most`` bytes, or holds a number no column can take.

    Encoding every payload would cost a fifth of validation, so a flat one (the
    usual kind) is first bounded from its lengths: at most 6 bytes a character
    (a ``\\uXXXX`` escape) and 32 a number. Only a payload that may be too large,
    or nests, is encoded.
    """
    bound, flat = 2, True
    for k, v in p.items():
        t = type(v)
        if t is str:
            bound += 6 * (len(k) + len(v)) + 6
        elif t is float:
            if v - v != 0.0:  # inf (NaN cannot come from jsonb)
                return DeadReason.VALUE_OUT_OF_RANGE, f"{clip(k, 200)}: not a finite number"
            bound += 6 * len(k) + 32
        elif (t is int and -(2**63) < v < 2**63) or t is bool or v is None:
            bound += 6 * len(k) + 32
        else:
            flat = False
            break
    if flat and bound <= most:
        return None
    try:
        size = len(_STRICT(p).encode())
    except ValueError:
        return DeadReason.VALUE_OUT_OF_RANGE, "payload: holds a number that is not finite"
    except RecursionError:
        return DeadReason.PAYLOAD_TOO_LARGE, "payload: nested too deeply"
    if size > most:
        return DeadReason.PAYLOAD_TOO_LARGE, f"payload: {size} bytes > {most}"
    return None


def _beyond(key: str, value: Any, bound: str, limits: Limits) -> tuple[DeadReason, str] | None:
    """Whether ``value`` is past the limit ``bound`` names."""
    if bound in (_DAYS, _AMOUNT):
        most = limits.days if bound == _DAYS else limits.amount
        if not value <= most:  # also inf
            return DeadReason.VALUE_OUT_OF_RANGE, f"{key}={clip(str(value), 40)} > {most:g}"
        return None
    most = limits.id_chars if bound == _ID else limits.text_chars
    if len(value) > most:
        return DeadReason.TEXT_TOO_LONG, f"{key}: {len(value)} chars > {most}"
    return None


def _bad_value(
    kind: str, p: Mapping[str, Any], matters: Mapping[str, Matter], limits: Limits
) -> tuple[DeadReason, str] | None:
    bad = DeadReason.BAD_VALUE
    if kind == "submitted":
        if p["matter"] not in matters:
            return DeadReason.UNKNOWN_MATTER, f"matter={p['matter']!r}"
        if p["channel"] not in ("window", "online"):
            return bad, f"channel={p['channel']!r}"
    elif kind == "supplement_requested":
        return _bad_items(p["items"], limits)
    elif kind == "accepted":
        for key in ("promised_days", "pledged_days"):
            if key in p and p[key] is not None and p[key] < 0:
                return bad, f"{key}={p[key]}"
    elif kind == "suspended":
        if p["type"] not in PAUSE_TYPES:
            return bad, f"type={p['type']!r}"
        if p["notified_days"] < 0:
            return bad, f"notified_days={p['notified_days']}"
    elif kind == "resumed" and p.get("type") is not None and p["type"] not in PAUSE_TYPES:
        return bad, f"type={p['type']!r}"  # it would end no pause, ever
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
        return bad, f"level={clip(str(p['level']), 40)}"
    return None


def _bad_items(items: list[Any], limits: Limits) -> tuple[DeadReason, str] | None:
    if len(items) > limits.items:
        return DeadReason.LIST_TOO_LONG, f"items: {len(items)} > {limits.items}"
    if not all(isinstance(i, str) for i in items):
        return DeadReason.BAD_TYPE, "items: expected list of str"
    longest = max(map(len, items), default=0)
    if longest > limits.text_chars:
        return DeadReason.TEXT_TOO_LONG, f"items: an item of {longest} chars > {limits.text_chars}"
    return None


def split(
    events: Sequence[SourceEvent],
    matters: Mapping[str, Matter],
    now: dt.datetime,
    future_tolerance: dt.timedelta,
    limits: Limits = LIMITS,
) -> tuple[list[SourceEvent], list[Rejection]]:
    """Valid events and rejections, in input order."""
    valid: list[SourceEvent] = []
    dead: list[Rejection] = []
    for event in events:
        rejection = validate(event, matters, now, future_tolerance, limits)
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
