"""Case state as a pure function of a case's events.

Events arrive late and out of order across and within cases (DOMAIN.md §6),
so a case's state is never updated incrementally: it is rebuilt from the
case's whole event history, sorted by business time (then source id). The
same set of events therefore gives the same state whatever order they were
delivered in. Validation is per event and also pure: an event that breaks the
source contract is rejected with a typed reason, never raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import Any, NamedTuple


class Status(StrEnum):
    """Where a case stands; the last status-changing event in business time wins."""

    ORPHAN = "orphan"  # events seen, but no `submitted` yet
    SUBMITTED = "submitted"
    SUPPLEMENT = "supplement"  # 补正 requested, waiting for the applicant
    ACCEPTED = "accepted"
    REFUSED = "refused"
    DECIDED = "decided"
    COMPLETED = "completed"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"
    TERMINATED = "terminated"


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
    "refused": {"reason": (_STR, False)},  # a missing reason is a card (DOMAIN §4), not bad data
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


# --- reduction ---------------------------------------------------------------------


@dataclass(slots=True)
class Pause:
    type: str
    start: dt.datetime
    end: dt.datetime | None
    notified_days: int

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "notified_days": self.notified_days,
        }


@dataclass(slots=True)
class CaseState:
    """Everything the clocks need about one case (one ``jiancha.cases`` row)."""

    case_id: str
    status: Status = Status.ORPHAN
    matter: str | None = None
    department: str | None = None
    window: str | None = None
    region: str | None = None
    channel: str | None = None
    submitted_at: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    refused_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    decision: str | None = None
    completed_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    immediate: bool = False
    promised_days: int | None = None
    statutory_days: int | None = None
    pledged_days: int | None = None
    extension_days: int = 0
    extensions: int = 0
    supplement_requests: int = 0
    fees: float = 0.0
    rating: int | None = None
    pauses: list[Pause] = field(default_factory=list)
    clocks: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # what procedural rules look at
    event_count: int = 0
    last_event_id: int = 0

    @property
    def paused_since(self) -> dt.datetime | None:
        if self.pauses and self.pauses[-1].end is None:
            return self.pauses[-1].start
        return None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_ORDER = itemgetter(4, 0)  # a SourceEvent's (occurred_at, event_id): business time first

_SUPPLEMENT_KINDS = frozenset({"supplement_requested", "supplement_received"})


_STATUS_OF = {
    "submitted": Status.SUBMITTED,
    "supplement_requested": Status.SUPPLEMENT,
    "supplement_received": Status.SUBMITTED,
    "accepted": Status.ACCEPTED,
    "refused": Status.REFUSED,
    "decided": Status.DECIDED,
    "completed": Status.COMPLETED,
    "delivered": Status.DELIVERED,
    "withdrawn": Status.WITHDRAWN,
    "terminated": Status.TERMINATED,
}


def reduce_case(
    case_id: str, events: Iterable[SourceEvent], matters: Mapping[str, Matter]
) -> CaseState:
    """The state of one case from its valid events, in any order (duplicates ignored)."""
    unique = {e.event_id: e for e in events}
    ordered = sorted(unique.values(), key=_ORDER)
    st = CaseState(case_id)
    acceptance: dict[str, Any] = {}
    steps: dict[str, dict[str, Any]] = {}
    extensions: list[dict[str, Any]] = []
    review: dict[str, Any] = {}
    supplement_stop: dt.datetime | None = None
    requests: list[str | None] = []
    fees: list[dict[str, Any]] = []
    refusal: dict[str, Any] = {}
    st.event_count = len(ordered)
    st.last_event_id = max(0, max(unique, default=0))
    status_of = _STATUS_OF
    # The branches are exclusive and ordered by how often each kind occurs: this loop
    # runs once per event of every case a batch touches.
    for _id, _tx, _case, kind, at, p in ordered:
        if kind == "submitted":
            if st.submitted_at is not None:
                continue  # the earliest submission defines the case
            st.submitted_at = at
            st.matter, st.window = p["matter"], p["window"]
            st.region, st.channel = p["region"], p["channel"]
            acceptance = {"start": at, "stop": None}
        elif kind == "accepted":
            if st.accepted_at is not None:
                continue
            st.accepted_at = at
            if p.get("promised_days") is not None:
                st.promised_days = int(p["promised_days"])
            if p.get("pledged_days") is not None:
                st.pledged_days = int(p["pledged_days"])
            if acceptance and acceptance["stop"] is None:
                acceptance["stop"] = at
        elif kind == "rated":
            st.rating = int(p["level"])
            if st.rating <= 2:
                review = {"start": _iso(at), "visited": None, "stop": None}
        elif kind == "decided":
            st.decided_at = st.decided_at or at
            st.decision = st.decision or p["result"]
        elif kind == "completed":
            st.completed_at = st.completed_at or at
            if st.paused_since is not None:
                st.pauses[-1].end = at  # completion ends any open pause
        elif kind == "delivered":
            st.delivered_at = st.delivered_at or at
        elif kind == "fee_charged":
            st.fees += float(p["amount"])
            fees.append({"at": _iso(at), "amount": float(p["amount"])})
        elif kind == "step_started" or kind == "step_finished":
            step = steps.setdefault(p["step"], {"start": None, "stop": None})
            slot = "start" if kind == "step_started" else "stop"
            if step[slot] is None:
                step[slot] = _iso(at)
        elif kind == "review_visited":
            if review and review["visited"] is None:
                review["visited"] = _iso(at)
        elif kind == "review_rectified":
            if review and review["stop"] is None:
                review["stop"] = _iso(at)
        elif kind == "suspended":
            if st.paused_since is None:
                st.pauses.append(Pause(p["type"], at, None, int(p["notified_days"])))
        elif kind == "resumed":
            if st.paused_since is not None:
                st.pauses[-1].end = at
            # a resume with no open pause waits for its late `suspended`: ignored
        elif kind == "supplement_requested":
            st.supplement_requests += 1
            requests.append(_iso(at))
            if acceptance and acceptance["stop"] is None:
                acceptance["stop"] = at
        elif kind == "supplement_received":
            if st.accepted_at is None:
                acceptance = {"start": at, "stop": None}  # the acceptance period restarts
            elif supplement_stop is None:
                supplement_stop = at  # pledged (容缺) materials supplied
        elif kind == "withdrawn" or kind == "terminated":
            st.closed_at = st.closed_at or at
        elif kind == "extended":
            st.extension_days += int(p["days"])
            st.extensions += 1
            extensions.append({"days": int(p["days"]), "approver": p["approver"], "at": _iso(at)})
        elif kind == "refused":
            if st.refused_at is None:
                refusal = {"at": _iso(at), "reason": str(p.get("reason") or "").strip()}
            st.refused_at = st.refused_at or at
            if acceptance and acceptance["stop"] is None:
                acceptance["stop"] = at
        status = status_of.get(kind)
        # 补正 after acceptance is about pledged materials: the case stays accepted.
        if (
            status is not None
            and st.submitted_at is not None
            and (st.accepted_at is None or kind not in _SUPPLEMENT_KINDS)
        ):
            st.status = status
    if st.submitted_at is None:
        st.status = Status.ORPHAN
    _apply_matter(st, matters)
    st.clocks = _clocks(st, acceptance, steps, extensions, review, supplement_stop)
    st.facts = {"supplement_requests": requests, "fees": fees, "refusal": refusal}
    return st


def _apply_matter(st: CaseState, matters: Mapping[str, Matter]) -> None:
    matter = matters.get(st.matter) if st.matter is not None else None
    if matter is None:
        return
    st.department = matter.department
    st.statutory_days = matter.statutory_days
    if st.promised_days is None:
        st.promised_days = matter.promised_days
    st.immediate = st.promised_days == 0


def _clocks(
    st: CaseState,
    acceptance: dict[str, Any],
    steps: dict[str, dict[str, Any]],
    extensions: list[dict[str, Any]],
    review: dict[str, Any],
    supplement_stop: dt.datetime | None,
) -> dict[str, Any]:
    """Start, stop and pauses of each clock (DOMAIN.md §2, CONTRACT clock names).

    Limits that come from the catalogue ride along; thresholds and the
    statutory defaults (5 wd acceptance, 10 wd delivery, ...) belong to the
    rules, which read these facts.
    """
    clocks: dict[str, Any] = {}
    if acceptance:
        clocks["acceptance"] = {
            "start": _iso(acceptance["start"]),
            "stop": _iso(acceptance["stop"]),
        }
    if st.accepted_at is not None:
        start, stop = _iso(st.accepted_at), _iso(st.completed_at or st.closed_at)  # once each
        pauses = [pz.as_json() for pz in st.pauses]
        clocks["decision"] = {
            "start": start,
            "stop": stop,
            "limit_days": st.promised_days,
            "extension_days": st.extension_days,
            "extensions": extensions,
            "pauses": pauses,
        }
        clocks["statutory"] = {
            "start": start,
            "stop": stop,
            "limit_days": st.statutory_days,
            "pauses": pauses,
        }
        if st.immediate:
            clocks["immediate"] = {"start": start, "stop": stop}
        if st.pledged_days:
            clocks["supplement"] = {
                "start": start,
                "stop": _iso(supplement_stop),
                "limit_days": st.pledged_days,
            }
    if st.decided_at is not None and st.decision == "approve":
        clocks["delivery"] = {"start": _iso(st.decided_at), "stop": _iso(st.delivered_at)}
    if steps:
        clocks["step"] = steps
    if review:
        clocks["review"] = review
    return clocks
