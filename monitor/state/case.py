"""What jiancha knows about one case: its status, its clocks' spans and the facts rules read.

The state stage hands these forward as typed values (aware datetimes, not
text). They are stored as one ``jiancha.cases`` row, whose ``clocks``,
``facts`` and ``pauses`` columns are JSON documents of ISO instants that
dashboards and operators read; ``as_json`` / ``from_json`` convert at that
boundary only, both ways, and agree to the microsecond.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from monitor.db import json_dumps

__all__ = [
    "CaseClocks",
    "CaseFacts",
    "CaseState",
    "Extension",
    "Fee",
    "Pause",
    "Review",
    "Span",
    "Status",
]


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


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not _UTC:  # another offset is written as given
        return value.isoformat()
    # Kept: an aware datetime's isoformat costs 2 us, a lookup 0.06, and a case's row
    # repeats its instants (acceptance starts four clocks) in every batch that touches it
    # (a tenth of a catch-up's reducing). Only UTC ones (every instant the database
    # hands over), so an equal instant at another offset never comes back in UTC.
    text = _ISO.get(value)
    if text is None:
        if len(_ISO) >= _ISO_MAX:
            _ISO.clear()
        text = _ISO[value] = value.isoformat()
    return text


_UTC = dt.UTC
_ISO: dict[dt.datetime, str] = {}
_ISO_MAX = 1 << 17


# The documents' JSON text written directly (`CaseClocks.as_text` and the others), the
# very text `monitor.db.json_dumps` makes of `as_json` (tests/state/test_case_text.py):
# a case's row is written at every batch that touches it, and building the dicts and
# encoding them took 15 us a case, a quarter of a drain's Python (bench_tailer, py-spy).
def _t(value: dt.datetime | None) -> str:
    """An instant as a JSON value (an ISO text has nothing to escape)."""
    return "null" if value is None else f'"{_iso(value)}"'


def _n(value: float | None) -> str:
    """A number (or None) as json writes it: ints and finite floats without the encoder."""
    kind: type = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return float.__repr__(value)
    return "null" if value is None else json_dumps(value)  # NaN, a bool: as json itself


@functools.lru_cache(maxsize=1 << 16)
def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _at(value: Any) -> dt.datetime | None:
    # Cached: a row's clocks repeat their instants (decision, statutory, immediate and
    # supplement start at acceptance), and a start of the daemon reads every open row.
    return None if value is None else _parse(value)


class Pause(NamedTuple):
    """A suspension of the decision clocks (Art. 45 special procedures, survey, notice)."""

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

    def as_text(self) -> str:
        return (f'{{"type":{encode_basestring(self.type)},"start":{_t(self.start)},'
                f'"end":{_t(self.end)},"notified_days":{_n(self.notified_days)}}}')  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Pause:
        start = _at(d["start"])
        assert start is not None
        return cls(d["type"], start, _at(d.get("end")), int(d.get("notified_days") or 0))


class Span(NamedTuple):
    """When one clock started and stopped (None: not yet), with the limit the case sets."""

    start: dt.datetime | None
    stop: dt.datetime | None = None
    limit_days: int | None = None  # decision, statutory and supplement clocks only

    def as_json(self, *, limit: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"start": _iso(self.start), "stop": _iso(self.stop)}
        if limit:
            out["limit_days"] = self.limit_days
        return out

    def as_text(self, *, limit: bool = False) -> str:
        if limit:
            return (f'{{"start":{_t(self.start)},"stop":{_t(self.stop)},'
                    f'"limit_days":{_n(self.limit_days)}}}')  # fmt: skip
        return f'{{"start":{_t(self.start)},"stop":{_t(self.stop)}}}'

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Span | None:
        return _span(d)


def _span(d: Mapping[str, Any] | None) -> Span | None:
    # A start of the daemon reads every open case's spans: built without the named
    # tuple's keyword-handling __new__ (a third of the time of reading a case's clocks).
    if not d:
        return None
    start, stop, limit = d.get("start"), d.get("stop"), d.get("limit_days")
    return _new_tuple(Span, (None if start is None else _parse(start),
                             None if stop is None else _parse(stop),
                             None if limit is None else int(limit)))  # fmt: skip


_new_tuple = tuple.__new__


class Review(NamedTuple):
    """The rectification of a bad rating: rated, visited back, rectified."""

    start: dt.datetime
    visited: dt.datetime | None = None
    stop: dt.datetime | None = None


class Extension(NamedTuple):
    """An extension of the statutory limit (Art. 42), as approved."""

    days: int
    approver: str
    at: dt.datetime


class Fee(NamedTuple):
    at: dt.datetime
    amount: float


@dataclass(frozen=True, slots=True)
class CaseClocks:
    """The spans of a case's clocks (docs/rule-book.md §2, docs/contract.md's clock names).

    Limits that come from the catalogue ride along; thresholds and the
    statutory defaults (5 wd acceptance, 10 wd delivery, ...) belong to the
    rules, which read these facts.
    """

    acceptance: Span | None = None
    decision: Span | None = None  # the promised limit
    statutory: Span | None = None  # same start, stop and pauses; the statutory limit
    immediate: Span | None = None  # immediate cases only
    supplement: Span | None = None  # accepted with pledged materials (容缺)
    delivery: Span | None = None  # decided, approved
    review: Review | None = None  # the first bad rating
    steps: Mapping[str, Span] = field(default_factory=dict)
    pauses: tuple[Pause, ...] = ()  # of the decision and statutory clocks
    extensions: tuple[Extension, ...] = ()
    extension_days: int = 0
    later_reviews: tuple[Review, ...] = ()  # each further bad rating has its own clocks
    # the acceptance periods before ``acceptance``, each ended by a 补正 notice and restarted
    # when the materials came: the earliest one past its limit is where acceptance is deemed
    acceptance_earlier: tuple[Span, ...] = ()

    @property
    def reviews(self) -> tuple[Review, ...]:
        """Every bad rating's rectification, in order."""
        return self.later_reviews if self.review is None else (self.review, *self.later_reviews)

    def as_json(self) -> dict[str, Any]:
        """The ``jiancha.cases.clocks`` document."""
        out: dict[str, Any] = {}
        if self.acceptance is not None:
            out["acceptance"] = self.acceptance.as_json()
        if self.acceptance_earlier:
            out["acceptance_earlier"] = [s.as_json() for s in self.acceptance_earlier]
        if self.decision is not None:
            pauses = [p.as_json() for p in self.pauses]
            out["decision"] = {
                **self.decision.as_json(limit=True),
                "extension_days": self.extension_days,
                "extensions": [
                    {"days": e.days, "approver": e.approver, "at": _iso(e.at)}
                    for e in self.extensions
                ],
                "pauses": pauses,
            }
            if self.statutory is not None:
                out["statutory"] = {**self.statutory.as_json(limit=True), "pauses": pauses}
            if self.immediate is not None:
                out["immediate"] = self.immediate.as_json()
            if self.supplement is not None:
                out["supplement"] = self.supplement.as_json(limit=True)
        if self.delivery is not None:
            out["delivery"] = self.delivery.as_json()
        if self.steps:
            out["step"] = {name: span.as_json() for name, span in self.steps.items()}
        if self.review is not None:
            out["review"] = _review_json(self.review)
            if self.later_reviews:
                out["reviews"] = [_review_json(r) for r in self.reviews]
        return out

    def as_text(self) -> str:
        """`as_json`'s document as its JSON text."""
        out: list[str] = []
        if self.acceptance is not None:
            out.append(f'"acceptance":{self.acceptance.as_text()}')
        if self.acceptance_earlier:
            earlier = ",".join(s.as_text() for s in self.acceptance_earlier)
            out.append(f'"acceptance_earlier":[{earlier}]')
        if self.decision is not None:
            pauses = pauses_text(self.pauses)
            extensions = ",".join(
                f'{{"days":{_n(e.days)},"approver":{encode_basestring(e.approver)},"at":{_t(e.at)}}}'
                for e in self.extensions
            )
            # the span's own text without its closing brace: the clock's keys follow
            out.append(f'"decision":{self.decision.as_text(limit=True)[:-1]},'
                       f'"extension_days":{_n(self.extension_days)},"extensions":[{extensions}],'
                       f'"pauses":{pauses}}}')  # fmt: skip
            if self.statutory is not None:
                out.append(f'"statutory":{self.statutory.as_text(limit=True)[:-1]},'
                           f'"pauses":{pauses}}}')  # fmt: skip
            if self.immediate is not None:
                out.append(f'"immediate":{self.immediate.as_text()}')
            if self.supplement is not None:
                out.append(f'"supplement":{self.supplement.as_text(limit=True)}')
        if self.delivery is not None:
            out.append(f'"delivery":{self.delivery.as_text()}')
        if self.steps:
            steps = ",".join(f"{encode_basestring(name)}:{span.as_text()}"
                             for name, span in self.steps.items())  # fmt: skip
            out.append(f'"step":{{{steps}}}')
        if self.review is not None:
            out.append(f'"review":{_review_text(self.review)}')
            if self.later_reviews:
                out.append(f'"reviews":[{",".join(_review_text(r) for r in self.reviews)}]')
        return "{" + ",".join(out) + "}"

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> CaseClocks:
        """From a stored ``clocks`` document (a missing one: no clocks)."""
        if not d:
            return cls()
        get = d.get
        decision = get("decision") or {}
        review, steps = get("review"), get("step")
        pauses, extensions = decision.get("pauses"), decision.get("extensions")
        start = _at(review.get("start")) if review else None
        return cls(
            _span(get("acceptance")), _span(decision), _span(get("statutory")),
            _span(get("immediate")), _span(get("supplement")), _span(get("delivery")),
            None if review is None or start is None
            else Review(start, _at(review.get("visited")), _at(review.get("stop"))),
            {name: Span(_at(s.get("start")), _at(s.get("stop"))) for name, s in steps.items()}
            if steps else {},
            tuple(Pause.from_json(p) for p in pauses) if pauses else (),
            tuple(
                Extension(int(e.get("days") or 0), str(e.get("approver") or ""), at)
                for e in extensions if (at := _at(e.get("at"))) is not None
            ) if extensions else (),
            int(decision.get("extension_days") or 0),
            tuple(r for d in (get("reviews") or ())[1:] if (r := _review(d)) is not None),
            tuple(s for d in (get("acceptance_earlier") or ()) if (s := _span(d)) is not None),
        )  # fmt: skip


def _review_json(r: Review) -> dict[str, Any]:
    return {"start": _iso(r.start), "visited": _iso(r.visited), "stop": _iso(r.stop)}


def _review_text(r: Review) -> str:
    return f'{{"start":{_t(r.start)},"visited":{_t(r.visited)},"stop":{_t(r.stop)}}}'


def pauses_text(pauses: Sequence[Pause]) -> str:
    """The ``pauses`` document (and the decision clock's) as JSON text."""
    return "[" + ",".join(p.as_text() for p in pauses) + "]" if pauses else "[]"


def _review(d: Mapping[str, Any]) -> Review | None:
    start = _at(d.get("start"))
    return None if start is None else Review(start, _at(d.get("visited")), _at(d.get("stop")))


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the procedural rules look at (docs/rule-book.md §4)."""

    supplement_requests: tuple[dt.datetime, ...] = ()  # every 补正 request before acceptance
    fees: tuple[Fee, ...] = ()
    refused_at: dt.datetime | None = None
    refusal_reason: str = ""
    # 补正 requests after acceptance without pledged materials (容缺): irregular (§4)
    late_supplement_requests: tuple[dt.datetime, ...] = ()
    refused_after_acceptance: bool = False

    def as_json(self) -> dict[str, Any]:
        """The ``jiancha.cases.facts`` document."""
        refusal: dict[str, Any] = {}
        if self.refused_at is not None:
            refusal = {"at": _iso(self.refused_at), "reason": self.refusal_reason}
        if self.refused_after_acceptance:
            refusal["after_acceptance"] = True
        out = {
            "supplement_requests": [_iso(r) for r in self.supplement_requests],
            "fees": [{"at": _iso(f.at), "amount": f.amount} for f in self.fees],
            "refusal": refusal,
        }
        if self.late_supplement_requests:
            out["late_supplement_requests"] = [_iso(r) for r in self.late_supplement_requests]
        return out

    def as_text(self) -> str:
        """`as_json`'s document as its JSON text."""
        if self is _NO_FACTS:  # most cases
            return _NO_FACTS_TEXT
        refusal: list[str] = []
        if self.refused_at is not None:
            refusal += [f'"at":{_t(self.refused_at)}',
                        f'"reason":{encode_basestring(self.refusal_reason)}']  # fmt: skip
        if self.refused_after_acceptance:
            refusal.append('"after_acceptance":true')
        requests = ",".join(_t(r) for r in self.supplement_requests)
        fees = ",".join(f'{{"at":{_t(f.at)},"amount":{_n(f.amount)}}}' for f in self.fees)
        text = (f'{{"supplement_requests":[{requests}],"fees":[{fees}],'
                f'"refusal":{{{",".join(refusal)}}}')  # fmt: skip
        if self.late_supplement_requests:
            late = ",".join(_t(r) for r in self.late_supplement_requests)
            text += f',"late_supplement_requests":[{late}]'
        return text + "}"

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> CaseFacts:
        if not d or not any(d.values()):
            return _NO_FACTS  # most cases: frozen, so one instance serves them all
        refusal = d.get("refusal") or {}
        return cls(
            supplement_requests=tuple(
                at for r in d.get("supplement_requests") or () if (at := _at(r)) is not None
            ),
            fees=tuple(
                Fee(at, float(f.get("amount") or 0))
                for f in d.get("fees") or () if (at := _at(f.get("at"))) is not None
            ),
            refused_at=_at(refusal.get("at")),
            refusal_reason=str(refusal.get("reason") or ""),
            late_supplement_requests=tuple(
                at for r in d.get("late_supplement_requests") or () if (at := _at(r)) is not None
            ),
            refused_after_acceptance=bool(refusal.get("after_acceptance")),
        )  # fmt: skip


_NO_FACTS = CaseFacts()
_NO_FACTS_TEXT = '{"supplement_requests":[],"fees":[],"refusal":{}}'


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
    clocks: CaseClocks = field(default_factory=CaseClocks)
    facts: CaseFacts = field(default_factory=CaseFacts)
    event_count: int = 0
    last_event_id: int = 0

    @property
    def paused_since(self) -> dt.datetime | None:
        """The start of the earliest pause still open (pauses may overlap)."""
        return min((p.start for p in self.pauses if p.end is None), default=None)
