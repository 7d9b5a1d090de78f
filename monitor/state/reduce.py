"""Case state as a pure function of a case's events.

Events arrive late and out of order across and within cases (DOMAIN.md §6),
so a case's state is never updated incrementally: it is rebuilt from the
case's whole event history, sorted by business time (then source id). The
same set of events therefore gives the same state whatever order they were
delivered in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from operator import itemgetter
from typing import Any

from monitor.source.contract import Matter, SourceEvent
from monitor.state.case import (
    CaseClocks,
    CaseFacts,
    CaseState,
    Extension,
    Fee,
    Pause,
    Review,
    Span,
    Status,
)

__all__ = ["reduce_case"]

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


class _Seen:
    """What the walk over one case's events collects besides the state's own fields."""

    __slots__ = ("acceptance", "extensions", "fees", "refusal", "requests", "review", "steps",
                 "supplement_stop")  # fmt: skip

    def __init__(self) -> None:
        self.acceptance: list[dt.datetime | None] | None = None  # [start, stop]
        self.steps: dict[str, list[dt.datetime | None]] = {}  # name -> [start, stop]
        self.extensions: list[Extension] = []
        self.review: list[dt.datetime | None] | None = None  # [start, visited, stop]
        self.supplement_stop: dt.datetime | None = None
        self.requests: list[dt.datetime] = []
        self.fees: list[Fee] = []
        self.refusal: tuple[dt.datetime, str] | None = None

    def stop_acceptance(self, at: dt.datetime) -> None:
        if self.acceptance is not None and self.acceptance[1] is None:
            self.acceptance[1] = at


def reduce_case(
    case_id: str, events: Iterable[SourceEvent], matters: Mapping[str, Matter]
) -> CaseState:
    """The state of one case from its valid events, in any order (duplicates ignored)."""
    unique = {e.event_id: e for e in events}
    ordered = sorted(unique.values(), key=_ORDER)
    st = CaseState(case_id)
    seen = _Seen()
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
            seen.acceptance = [at, None]
        elif kind == "accepted":
            if st.accepted_at is not None:
                continue
            st.accepted_at = at
            if p.get("promised_days") is not None:
                st.promised_days = int(p["promised_days"])
            if p.get("pledged_days") is not None:
                st.pledged_days = int(p["pledged_days"])
            seen.stop_acceptance(at)
        elif kind == "rated":
            st.rating = int(p["level"])
            if st.rating <= 2:
                seen.review = [at, None, None]
        elif kind == "decided":
            st.decided_at = st.decided_at or at
            st.decision = st.decision or p["result"]
        elif kind == "completed":
            st.completed_at = st.completed_at or at
            if st.paused_since is not None:
                st.pauses[-1] = replace(st.pauses[-1], end=at)  # completion ends any open pause
        elif kind == "delivered":
            st.delivered_at = st.delivered_at or at
        elif kind == "fee_charged":
            st.fees += float(p["amount"])
            seen.fees.append(Fee(at, float(p["amount"])))
        elif kind == "step_started" or kind == "step_finished":
            step = seen.steps.setdefault(p["step"], [None, None])
            slot = 0 if kind == "step_started" else 1
            if step[slot] is None:
                step[slot] = at
        elif kind == "review_visited":
            if seen.review is not None and seen.review[1] is None:
                seen.review[1] = at
        elif kind == "review_rectified":
            if seen.review is not None and seen.review[2] is None:
                seen.review[2] = at
        elif kind == "suspended":
            if st.paused_since is None:
                st.pauses.append(Pause(p["type"], at, None, int(p["notified_days"])))
        elif kind == "resumed":
            if st.paused_since is not None:
                st.pauses[-1] = replace(st.pauses[-1], end=at)
            # a resume with no open pause waits for its late `suspended`: ignored
        elif kind == "supplement_requested":
            st.supplement_requests += 1
            seen.requests.append(at)
            seen.stop_acceptance(at)
        elif kind == "supplement_received":
            if st.accepted_at is None:
                seen.acceptance = [at, None]  # the acceptance period restarts
            elif seen.supplement_stop is None:
                seen.supplement_stop = at  # pledged (容缺) materials supplied
        elif kind == "withdrawn" or kind == "terminated":
            st.closed_at = st.closed_at or at
        elif kind == "extended":
            st.extension_days += int(p["days"])
            st.extensions += 1
            seen.extensions.append(Extension(int(p["days"]), p["approver"], at))
        elif kind == "refused":
            if st.refused_at is None:
                seen.refusal = (at, str(p.get("reason") or "").strip())
            st.refused_at = st.refused_at or at
            seen.stop_acceptance(at)
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
    st.clocks = _clocks(st, seen)
    refusal = seen.refusal
    st.facts = CaseFacts(
        tuple(seen.requests),
        tuple(seen.fees),
        refusal[0] if refusal else None,
        refusal[1] if refusal else "",
    )
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


def _clocks(st: CaseState, seen: _Seen) -> CaseClocks:
    """Start, stop and pauses of each clock (DOMAIN.md §2)."""
    kw: dict[str, Any] = {}
    if seen.acceptance is not None:
        kw["acceptance"] = Span(seen.acceptance[0], seen.acceptance[1])
    if st.accepted_at is not None:
        start, stop = st.accepted_at, st.completed_at or st.closed_at
        kw["decision"] = Span(start, stop, st.promised_days)
        kw["statutory"] = Span(start, stop, st.statutory_days)
        if st.immediate:
            kw["immediate"] = Span(start, stop)
        if st.pledged_days:
            kw["supplement"] = Span(start, seen.supplement_stop, st.pledged_days)
    if st.decided_at is not None and st.decision == "approve":
        kw["delivery"] = Span(st.decided_at, st.delivered_at)
    if seen.steps:
        kw["steps"] = {name: Span(a, b) for name, (a, b) in seen.steps.items()}
    if seen.review is not None:
        rated, visited, rectified = seen.review
        assert rated is not None
        kw["review"] = Review(rated, visited, rectified)
    return CaseClocks(
        **kw,
        pauses=tuple(st.pauses) if st.accepted_at is not None else (),
        extensions=tuple(seen.extensions) if st.accepted_at is not None else (),
        extension_days=st.extension_days if st.accepted_at is not None else 0,
    )
