"""Which cards a case is due, as a pure function of the case, its cards and ``now``.

The clocks stage says when each level of each period falls due; this
decides what that means for the ledger: issue, close or revoke, and which
periods still run (for the scheduler). Procedural rules are in
``monitor.engine.checks``. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.calendar import Calendar
from monitor.clocks.timing import LevelTimes, Period, from_epoch, level_times, periods, used_days
from monitor.engine.cards import CaseDecision, Closing, ExistingCard, NewCard
from monitor.engine.checks import check_cards
from monitor.rules.model import CheckRule, ClockRule, Rule, RuleSet
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import FINISHED

__all__ = ["decide_case", "decide_cases"]


def _detail(p: Period, times: LevelTimes, lv: int, cal: Calendar, now: int) -> dict[str, Any]:
    """What the card records and its notification shows: limit, used, remaining."""
    used = used_days(cal, p, now)
    d: dict[str, Any] = {
        "limit_days": p.limit,
        "extension_days": p.extension,
        "threshold_days": round(times.consumed_at.get(lv, math.nan), 6),
        "threshold": p.rule.thresholds[lv].text,
        "start": from_epoch(p.start).isoformat(),
        "used_days": round(used, 3),
        "remaining_days": round(p.allowed - used, 3),
    }
    if p.subject:
        d["subject"] = p.subject
    return d


@dataclass
class _Seen:
    """Per rule: every level's earliest due instant, when its periods stopped, which run."""

    due: dict[str, dict[int, int]] = field(default_factory=dict)
    stop: dict[str, int] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)

    def add(self, p: Period, tm: LevelTimes) -> None:
        merged = self.due.setdefault(p.rule.rule, {})
        for lv, at in tm.due.items():
            merged[lv] = min(at, merged.get(lv, at))
        if p.stop is None:
            self.running.add(p.rule.rule)
        else:
            self.stop[p.rule.rule] = max(p.stop, self.stop.get(p.rule.rule, p.stop))


def _decision_overdue(ps: Sequence[Period], times: Sequence[LevelTimes]) -> bool:
    """The running decision clock is past its red level: a step is then not carded."""
    return any(
        p.rule.on == "decision" and 3 in tm.due and p.stop is None
        for p, tm in zip(ps, times, strict=True)
    )


def _clock_card(
    p: Period, tm: LevelTimes, highest: Mapping[str, int], cal: Calendar, now: int
) -> NewCard | None:
    """The card one period is due, if any: only above the highest issued, only the top one."""
    rule = p.rule
    due = tm.due
    if p.stop is not None:  # no warning on a finished period: only a missed limit
        due = {lv: at for lv, at in due.items() if tm.consumed_at[lv] >= p.allowed - 1e-6}
    top = max(due, default=0)
    if top <= highest.get(rule.rule, 0):
        return None
    # a late finish is carded at completion (docs/rule-book.md §4), a running clock when due
    issued_at = p.stop if p.stop is not None else due[top]
    return NewCard(
        p.case_id,
        rule.clock,
        rule.rule,
        top,
        int(issued_at),
        tm.deadline,
        _detail(p, tm, top, cal, now),
        supervision=rule.supervision == top,
        close=None if p.stop is None else "period_finished",
    )


def _ends(
    case: CaseView,
    rules: Sequence[Rule],
    existing: Sequence[ExistingCard],
    seen: _Seen,
    now: int,
    decision: CaseDecision,
) -> None:
    """Close the open cards of finished periods; revoke those whose basis is gone."""
    clock_rules = {r.rule for r in rules if isinstance(r, ClockRule)}
    check_rules = {r.rule for r in rules if isinstance(r, CheckRule)}
    finished = case.status in FINISHED
    by_rule: dict[str, list[ExistingCard]] = {}
    for card in existing:
        by_rule.setdefault(card.rule, []).append(card)
    for card in (c for cards in by_rule.values() for c in cards):
        if not card.is_open:
            continue
        name = card.rule
        if name not in clock_rules:
            if name not in check_rules:
                decision.revoke.append(Closing(card.card_id, "rule_removed", now))
            elif finished:
                decision.close.append(Closing(card.card_id, "case_finished", now))
            continue
        due = seen.due.get(name, {})
        if card.level not in due and not any(lv > card.level for lv in due):
            decision.revoke.append(Closing(card.card_id, "threshold_not_reached", now))
        elif name not in seen.running and name in seen.stop:
            decision.close.append(Closing(card.card_id, "period_finished", seen.stop[name]))


def decide_case(
    case: CaseView,
    matter: Matter | None,
    ruleset: RuleSet,
    cal: Calendar,
    now: int,
    existing: Sequence[ExistingCard],
    *,
    running: bool = True,
    timed: tuple[Sequence[Period], Sequence[LevelTimes]] | None = None,
) -> CaseDecision:
    """The cards ``case`` is due at ``now``, given the cards it already has.

    ``timed`` is the case's periods with their level times when the caller
    computed them for many cases in one calendar pass (`decide_cases`).

    With ``running=False`` levels of running periods are left for later (the
    scheduler's tick once the tailer has caught up): a stop event may be in
    the next batch, and cards must not depend on where batches split.

    - a level is issued only above the highest already issued for its rule
      (levels never fall), and after downtime only the highest due one;
    - a stopped period gets no warning; a late one gets its red card at its stop;
    - a step is carded only while the case as a whole is on time;
    - an open card whose basis is gone (a late event or a rule or calendar
      change moved the threshold past ``now``) is revoked with the reason;
    - cards of a stopped period close when it stops; procedural cards when
      the case has finished.
    """
    rules = ruleset.resolve(case.region, case.department, case.matter)
    decision = CaseDecision()
    highest: dict[str, int] = {}
    for card in existing:
        if card.status != "revoked":
            highest[card.rule] = max(highest.get(card.rule, 0), card.level)
    if timed is None:
        ps: Sequence[Period] = periods(case, matter, rules)
        times: Sequence[LevelTimes] = level_times(cal, ps, now)
    else:
        ps, times = timed
    seen = _Seen()
    overdue = _decision_overdue(ps, times)
    for p, tm in zip(ps, times, strict=True):
        seen.add(p, tm)
        if p.stop is None:
            decision.running.append(p)
            decision.running_pauses.append(tm.pauses)
            if not running:
                continue
        if p.rule.on == "step" and overdue:
            continue
        new = _clock_card(p, tm, highest, cal, now)
        if new is not None:
            decision.issue.append(new)
            highest[new.rule] = new.level
    decision.issue += check_cards(case, matter, rules, cal, now, highest)
    _ends(case, rules, existing, seen, now, decision)
    return decision


def decide_cases(
    cases: Sequence[tuple[CaseView, Matter | None, Sequence[ExistingCard]]],
    ruleset: RuleSet,
    cal: Calendar,
    now: int,
    *,
    running: bool = True,
) -> list[CaseDecision]:
    """`decide_case` for many cases, their level times in one calendar pass.

    The per-case path calls the calendar kernel once or twice per case; at a
    daemon's start that is most of the time spent, so the instants of every
    period are computed together.
    """
    spans = []
    every: list[Period] = []
    for case, matter, _ in cases:
        ps = periods(case, matter, ruleset.resolve(case.region, case.department, case.matter))
        spans.append((len(every), len(ps)))
        every.extend(ps)
    times = level_times(cal, every, now)
    return [
        decide_case(case, matter, ruleset, cal, now, existing, running=running,
                    timed=(every[i:i + k], times[i:i + k]))
        for (case, matter, existing), (i, k) in zip(cases, spans, strict=True)
    ]  # fmt: skip
