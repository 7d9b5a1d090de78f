"""Procedural rules: facts of a case's history that are cards whenever they hold (rule book §4).

A second 补正 request, a pause of a type the matter does not allow, an
irregular extension, a fee on a free matter, a refusal without a reason.
Each check is a pure function of the case; the rule file sets its level and
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monitor.calendar import Calendar
from monitor.clocks.timing import DECISION_DEADLINE, Period, epoch, level_times, pause_spans
from monitor.engine.cards import NewCard
from monitor.rules.model import CheckRule, Rule
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import FINISHED

__all__ = ["check_cards"]

Found = tuple[int | None, dict[str, Any]]  # (the instant the fact arose, what the card records)


def _repeated_supplement_request(case: CaseView, m: Matter | None, rule: CheckRule,
                                 cal: Calendar) -> Found:  # fmt: skip
    allowed = int(rule.params.get("max_requests", 1))
    requests = case.facts.supplement_requests
    if len(requests) > allowed:
        return epoch(requests[allowed]), {"requests": len(requests)}
    return None, {}


def _pause_type_not_allowed(case: CaseView, m: Matter | None, rule: CheckRule,
                            cal: Calendar) -> Found:  # fmt: skip
    allowed = set(m.pause_max_days) if m is not None else set()
    for p in case.clocks.pauses:
        if allowed and p.type not in allowed:
            return epoch(p.start), {"type": p.type}
    return None, {}


def _fee_on_free_matter(case: CaseView, m: Matter | None, rule: CheckRule,
                        cal: Calendar) -> Found:  # fmt: skip
    fees = case.facts.fees
    if m is not None and m.free and fees:
        return epoch(fees[0].at), {"amount": sum(f.amount for f in fees)}
    return None, {}


def _refusal_without_reason(case: CaseView, m: Matter | None, rule: CheckRule,
                            cal: Calendar) -> Found:  # fmt: skip
    f = case.facts
    if f.refused_at is not None and not f.refusal_reason:
        return epoch(f.refused_at), {}
    return None, {}


def _irregular_extension(case: CaseView, m: Matter | None, rule: CheckRule,
                         cal: Calendar) -> Found:  # fmt: skip
    """An extension beyond the allowed days, a second one, or one asked after the deadline."""
    c = case.clocks
    dec = c.decision
    exts = sorted(c.extensions, key=lambda e: e.at)
    if not exts or dec is None or dec.start is None or dec.limit_days is None:
        return None, {}
    start = epoch(dec.start)
    max_days = int(rule.params.get("max_days", 10))
    max_count = int(rule.params.get("max_count", 1))
    pauses = pause_spans(c.pauses)
    total = 0
    for n, ext in enumerate(exts, 1):
        at = epoch(ext.at)
        # the deadline as it stood when the extension was asked (earlier extensions in)
        before = [(s, e if e is not None and e <= at else at) for s, e in pauses if s < at]
        period = Period(case.case_id, DECISION_DEADLINE, "", start, None, int(dec.limit_days),
                        total, tuple(before))  # fmt: skip
        deadline = level_times(cal, [period], at)[0].deadline
        total += ext.days
        reasons = []
        if total > max_days:
            reasons.append("too_many_days")
        if n > max_count:
            reasons.append("repeated")
        if deadline is not None and at >= deadline:
            reasons.append("after_deadline")
        if reasons:
            return at, {"reasons": reasons, "days": total, "extensions": n}
    return None, {}


_CHECKS: dict[str, Callable[[CaseView, Matter | None, CheckRule, Calendar], Found]] = {
    "repeated_supplement_request": _repeated_supplement_request,
    "pause_type_not_allowed": _pause_type_not_allowed,
    "irregular_extension": _irregular_extension,
    "fee_on_free_matter": _fee_on_free_matter,
    "refusal_without_reason": _refusal_without_reason,
}


def check_cards(
    case: CaseView,
    matter: Matter | None,
    rules: Sequence[Rule],
    cal: Calendar,
    now: int,
    highest: dict[str, int],
) -> list[NewCard]:
    """The procedural cards ``case`` is due by ``now``; ``highest`` is updated with them."""
    finished = case.status in FINISHED
    out = []
    for rule in rules:
        if not isinstance(rule, CheckRule) or highest.get(rule.rule, 0) >= rule.level:
            continue
        at, detail = _CHECKS[rule.check](case, matter, rule, cal)
        if at is None or at > now:
            continue
        out.append(NewCard(case.case_id, rule.clock, rule.rule, rule.level, at, None, detail,
                           close="case_finished" if finished else None))  # fmt: skip
        highest[rule.rule] = rule.level
    return out
