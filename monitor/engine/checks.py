"""Procedural rules: facts of a case's history that are cards whenever they hold (rule book §4).

A second 补正 request, a 补正 request after acceptance with nothing pledged,
a pause of a type the matter does not allow, an irregular extension, a fee
on a free matter, a refusal without a reason, a refusal after acceptance.
Each check is a pure function of the case; the rule file sets its level and
parameters. A check may hold several times on a case (each pause, each
extension): each is its own subject, and its own card.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.calendar import Calendar
from monitor.clocks.periods import Kept, deadlines_as_of, split_rules, subject_of
from monitor.clocks.timing import STATUTORY_DEADLINE, Period, epoch, pause_spans
from monitor.engine.cards import NewCard
from monitor.rules.model import CheckRule, Rule, Statute
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import FINISHED

__all__ = ["Findings", "check_cards", "extensions_for_the_set", "findings"]

Found = list[tuple[int, dict[str, Any], str]]  # (when the fact arose, what it records, subject)
_Check = Callable[[CaseView, Matter | None, CheckRule, Calendar, Statute], Found]


def _repeated_supplement_request(case: CaseView, m: Matter | None, rule: CheckRule,
                                 cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    allowed = int(rule.params.get("max_requests", 1))
    requests = case.facts.supplement_requests
    if len(requests) > allowed:
        return [(epoch(requests[allowed]), {"requests": len(requests)}, "")]
    return []


def _supplement_after_acceptance(case: CaseView, m: Matter | None, rule: CheckRule,
                                 cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    """A 补正 request after acceptance with nothing pledged (容缺): the materials were complete."""
    late = case.facts.late_supplement_requests
    return [(epoch(at), {"request": n}, subject_of("request", at)) for n, at in enumerate(late, 1)]


def _pause_type_not_allowed(case: CaseView, m: Matter | None, rule: CheckRule,
                            cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    """A pause of a type the matter does not list (a matter that lists none allows none)."""
    if m is None:
        return []
    allowed = set(m.pause_max_days)
    return [(epoch(p.start), {"type": p.type}, subject_of(p.type, p.start))
            for p in case.clocks.pauses if p.type not in allowed]  # fmt: skip


def _fee_on_free_matter(case: CaseView, m: Matter | None, rule: CheckRule,
                        cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    fees = case.facts.fees
    if m is not None and m.free and fees:
        return [(epoch(fees[0].at), {"amount": sum(f.amount for f in fees)}, "")]
    return []


def _refusal_without_reason(case: CaseView, m: Matter | None, rule: CheckRule,
                            cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    f = case.facts
    if f.refused_at is not None and not f.refusal_reason:
        return [(epoch(f.refused_at), {}, "")]
    return []


def _refused_after_acceptance(case: CaseView, m: Matter | None, rule: CheckRule,
                              cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    """不予受理 after the case was accepted: a denial recorded as a refusal of acceptance."""
    f = case.facts
    if f.refused_after_acceptance and f.refused_at is not None:
        return [(epoch(f.refused_at), {"reason": f.refusal_reason}, "")]
    return []


def _irregular_extension(case: CaseView, m: Matter | None, rule: CheckRule,
                         cal: Calendar, statute: Statute) -> Found:  # fmt: skip
    """An extension beyond the allowed days, a second one, or one asked after the deadline.

    The deadline is the statutory one (Art. 42 extends the statutory limit);
    a joint-handling matter (Art. 26) may be extended by 15 days.
    """
    key = _as_asked_key(case, m, cal, statute)
    if key is None:
        return []
    deadlines = _AS_ASKED.get(key)
    if deadlines is None:
        deadlines = _keep([key])[0]
    joint = m is not None and m.joint
    max_days = statute.joint_extension_days if joint else int(rule.params.get("max_days", 10))
    max_count = int(rule.params.get("max_count", 1))
    total = 0
    for n, ((at, days), deadline) in enumerate(zip(key[4], deadlines, strict=True), 1):
        total += days
        reasons = []
        if total > max_days:
            reasons.append("too_many_days")
        if n > max_count:
            reasons.append("repeated")
        if deadline is not None and at >= deadline:
            reasons.append("after_deadline")
        if reasons:
            return [(at, {"reasons": reasons, "days": total, "extensions": n}, "")]
    return []


# (calendar, statutory start, statutory limit, pauses, extensions as (asked at, days)),
# each extension judged against the statutory deadline as it stood when it was asked
# (earlier ones in). Kept: a case with extensions is decided in every batch and tick
# that touches it, and this was a calendar call per extension, the dearest check by far
# (bench_catchup's profile, 2026-12-07: a sixth of deciding a backlog).
_AsAskedKey = tuple[Calendar, int, int, tuple[tuple[int, int | None], ...],
                    tuple[tuple[int, int], ...]]  # fmt: skip
_AS_ASKED: Kept[_AsAskedKey, tuple[int | None, ...]] = Kept()


def _as_asked_key(case: CaseView, m: Matter | None, cal: Calendar,
                  statute: Statute) -> _AsAskedKey | None:  # fmt: skip
    c = case.clocks
    st = c.statutory
    if not c.extensions or st is None or st.start is None or st.limit_days is None:
        return None
    limit = statute.joint_statutory_days if m is not None and m.joint else int(st.limit_days)
    asked = tuple((epoch(e.at), e.days) for e in sorted(c.extensions, key=lambda e: e.at))
    return (cal, epoch(st.start), limit, pause_spans(c.pauses), asked)


def _keep(keys: Sequence[_AsAskedKey]) -> list[tuple[int | None, ...]]:
    """The deadlines of every extension of ``keys``, one calendar call per calendar; kept."""
    out: list[list[int | None]] = [[] for _ in keys]
    for cal in {key[0] for key in keys}:
        ps, ats, owner = [], [], []
        for i, (kcal, start, limit, pauses, asked) in enumerate(keys):
            if kcal is not cal:
                continue
            total = 0
            for at, days in asked:
                ps.append(Period("", STATUTORY_DEADLINE, "", start, None, limit, total, pauses))
                ats.append(at)
                owner.append(i)
                total += days
        for i, deadline in zip(owner, deadlines_as_of(cal, ps, ats), strict=True):
            out[i].append(deadline)
    return _AS_ASKED.keep(keys, [tuple(o) for o in out])


def extensions_for_the_set(
    cases: Sequence[tuple[CaseView, Matter | None]], cal: Calendar, statute: Statute
) -> None:
    """Before the checks of a set of cases: the deadlines their extensions were asked
    against, answered together and kept, so each case's check finds its own."""
    every = [_as_asked_key(case, m, cal, statute) for case, m in cases]
    keys = [k for k in every if k is not None and k not in _AS_ASKED]
    if keys:
        _keep(list(dict.fromkeys(keys)))


_CHECKS: Mapping[str, _Check] = {
    "repeated_supplement_request": _repeated_supplement_request,
    "supplement_after_acceptance": _supplement_after_acceptance,
    "pause_type_not_allowed": _pause_type_not_allowed,
    "irregular_extension": _irregular_extension,
    "fee_on_free_matter": _fee_on_free_matter,
    "refusal_without_reason": _refusal_without_reason,
    "refused_after_acceptance": _refused_after_acceptance,
}


Findings = dict[tuple[str, str], tuple[CheckRule, int, dict[str, Any]]]
"""(rule, subject) -> (the rule, when the fact arose, what the card records)."""


def findings(
    case: CaseView, matter: Matter | None, rules: Sequence[Rule], cal: Calendar, statute: Statute
) -> Findings:
    """Every procedural fact that holds on the case, by rule and subject."""
    out: Findings = {}
    for rule in split_rules(rules)[1]:
        for at, detail, subject in _CHECKS[rule.check](case, matter, rule, cal, statute):
            out[(rule.rule, subject)] = (rule, at, detail)
    return out


def check_cards(
    case: CaseView,
    found: Findings,
    now: int,
    highest: dict[tuple[str, str], int],
    crossed: set[tuple[str, str, int, int]],
) -> list[NewCard]:
    """The procedural cards ``case`` is due by ``now``; ``highest`` is updated with them.

    ``crossed`` holds (rule, subject, level, instant) of every card the case
    ever had, revoked ones too: a fact an officer's revocation answered is
    not carded again.
    """
    finished = case.status in FINISHED
    out = []
    for key, (rule, at, detail) in found.items():
        if at > now or highest.get(key, 0) >= rule.level:
            continue
        if (rule.rule, key[1], rule.level, at) in crossed:
            continue
        out.append(NewCard(case.case_id, rule.clock, rule.rule, rule.level, at, None, detail,
                           close="case_finished" if finished else None,
                           subject=key[1]))  # fmt: skip
        highest[key] = rule.level
    return out
