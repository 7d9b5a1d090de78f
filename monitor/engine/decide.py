"""Which cards a case is due, as a pure function of the case, its cards and ``now``.

The clocks stage says when each level of each period falls due; this
decides what that means for the ledger: issue, close or revoke, and which
periods still run (for the scheduler). Procedural rules are in
``monitor.engine.checks``. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.calendar import Calendar
from monitor.clocks.arrays import PlainLevels
from monitor.clocks.periods import deemed_for_the_set, in_time_for_the_set, periods, split_rules
from monitor.clocks.timing import LevelTimes, Period, from_epoch, level_times, used_days_set
from monitor.engine.cards import CaseDecision, Closing, ExistingCard, NewCard
from monitor.engine.checks import Findings, check_cards, extensions_for_the_set, findings
from monitor.engine.figures import JUDGED, figures_of
from monitor.rules.model import Rule, RuleSet
from monitor.source.contract import Matter
from monitor.state.view import CaseView
from monitor.vocab import FINISHED

__all__ = ["decide_case", "decide_cases", "provisional_at", "provisional_set"]


Key = tuple[str, str]  # (rule, subject): the periods and facts a rule cards separately


Detail = tuple[dict[str, Any], Period, LevelTimes, int]
"""A card's detail to fill in, with the period, its level times and the card's level."""


def _fill_details(cal: Calendar, now: int, todo: Sequence[Detail]) -> None:
    """What each card records and its notification shows: limit, used, remaining.

    Filled in after the cards are decided, so the working days used and
    whether a deadline is provisional take one calendar call for all of them.
    """
    if not todo:
        return
    used_all = used_days_set(cal, [p for _, p, _, _ in todo], [now] * len(todo)).tolist()
    deadlines = [tm.deadline_of(lv) for _, _, tm, lv in todo]
    known = [d for d in deadlines if d is not None]
    prov = iter(provisional_set(cal, known))
    for (d, p, tm, lv), used, deadline in zip(todo, used_all, deadlines, strict=True):
        d["limit_days"] = p.limit
        d["extension_days"] = p.extension
        d["threshold_days"] = round(tm.consumed_at.get(lv, math.nan), 6)
        d["threshold"] = p.rule.thresholds[lv].text
        d["start"] = from_epoch(p.start).isoformat()
        d["used_days"] = round(used, 3)
        d["remaining_days"] = round(p.allowed - used, 3)
        if p.subject:
            d["subject"] = p.subject
        if p.not_before is not None:
            d["deemed_accepted_at"] = from_epoch(p.not_before).isoformat()
        if deadline is not None and next(prov):
            d["provisional"] = True  # counted on a year whose holidays are not published yet


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def provisional_at(cal: Calendar, instant: int) -> bool:
    """Whether the local day of ``instant`` lies in a year with no published schedule."""
    return provisional_set(cal, [instant])[0]


def provisional_set(cal: Calendar, instants: Sequence[int]) -> list[bool]:
    """`provisional_at` of each instant; outside the calendar's range nothing is published."""
    if not instants:
        return []
    zone = _zone(cal.timezone)
    days = np.asarray([from_epoch(t).astimezone(zone).date() for t in instants],
                      dtype="datetime64[D]")  # fmt: skip
    inside = (days >= cal.first_day) & (days <= cal.last_day)
    out = np.ones(days.shape, dtype=np.bool_)
    out[inside] = cal.is_provisional(days[inside])
    return [bool(v) for v in out.tolist()]


@dataclass
class _Seen:
    """Per (rule, subject): each level's due instant, its period, whether it runs."""

    due: dict[Key, dict[int, int]] = field(default_factory=dict)
    period: dict[Key, Period] = field(default_factory=dict)
    running: set[Key] = field(default_factory=set)

    @classmethod
    def of(cls, ps: Sequence[Period], times: Sequence[LevelTimes]) -> _Seen:
        """What the periods of a case saw (only asked when the case has cards to judge)."""
        seen = cls()
        due_of, period, running = seen.due, seen.period, seen.running
        for p, tm in zip(ps, times, strict=True):
            key = (p.rule.rule, p.subject)
            merged = due_of.get(key)
            if merged is None:
                due_of[key] = dict(tm.due)
            else:
                for lv, at in tm.due.items():
                    merged[lv] = min(at, merged.get(lv, at))
            period[key] = p
            if p.stop is None:
                running.add(key)
        return seen


def _decision_overdue(ps: Sequence[Period], times: Sequence[LevelTimes]) -> bool:
    """The running decision clock is past its red level: a step is then not carded."""
    for p, tm in zip(ps, times, strict=True):
        if p.stop is None and 3 in tm.due and p.rule.on == "decision":
            return True
    return False


def _clock_card(
    p: Period,
    tm: LevelTimes,
    highest: Mapping[Key, int],
    crossed: set[tuple[str, str, int, int]],
    details: list[Detail],
) -> NewCard | None:
    """The card one period is due, if any: only above the highest live one, only the top one.

    Its detail is filled in later (`_fill_details`), with those of the other cards.
    """
    rule = p.rule
    due = tm.due
    if p.stop is not None:  # no warning on a finished period: only a missed limit
        due = {lv: at for lv, at in due.items() if tm.consumed_at[lv] >= p.allowed - 1e-6}
    top = max(due, default=0)
    if top <= highest.get((rule.rule, p.subject), 0):
        return None
    # dated when the threshold was crossed, a late finish too (closed at once)
    issued_at = due[top]
    if (rule.rule, p.subject, top, issued_at) in crossed:
        return None  # this very crossing was carded and revoked: not again
    detail: dict[str, Any] = {}
    details.append((detail, p, tm, top))
    return NewCard(
        p.case_id,
        rule.clock,
        rule.rule,
        top,
        issued_at,
        tm.deadline_of(top),
        detail,
        supervision=rule.supervision == top,
        close=None if p.stop is None else "period_finished",
        subject=p.subject,
    )


def _was_right(card: ExistingCard, p: Period | None, cal: Calendar) -> bool:
    """Whether the card's level was crossed at its very instant, on the facts of that instant.

    Facts with a later business time (an extension asked after it, the
    completion) cannot make a card wrong; a late-arriving earlier one (a pause
    that began before the crossing, the real acceptance of a case deemed
    accepted), a calendar or a rule change can.
    """
    return p is not None and _were_right([(card, p)], cal)[0]


def _were_right(checks: Sequence[tuple[ExistingCard, Period]], cal: Calendar) -> list[bool]:
    """`_was_right` of many cards, each at its own instant, in one calendar call: a batch
    of late events can put hundreds of cards in doubt, and one call each costs ~0.3 ms."""
    if not checks:
        return []
    ats = [card.issued_at for card, _ in checks]
    times = level_times(cal, [p.as_of(at) for (_, p), at in zip(checks, ats, strict=True)], ats)
    return [
        # a late finish, dated at its completion by jiancha before 0.6
        card.level in tm.due if card.issued_at == p.stop
        else tm.due.get(card.level) == card.issued_at
        for (card, p), tm in zip(checks, times, strict=True)
    ]  # fmt: skip


def _in_doubt(existing: Sequence[ExistingCard], seen: _Seen) -> list[tuple[ExistingCard, Period]]:
    """The cards `_ends` will ask `_was_right` about: not due at their instant now."""
    out = []
    for card in existing:
        key = (card.rule, card.subject)
        p = seen.period.get(key)
        if (card.status != "revoked" and p is not None
                and seen.due.get(key, {}).get(card.level) != card.issued_at):  # fmt: skip
            out.append((card, p))
    return out


def _ends(
    case: CaseView,
    rules: Sequence[Rule],
    existing: Sequence[ExistingCard],
    seen: _Seen,
    found: Findings,
    cal: Calendar,
    now: int,
    decision: CaseDecision,
    right: Mapping[int, bool],
) -> None:
    """Close the open cards of finished periods; revoke those that were wrong.

    ``right``: `_was_right` answered already, by ``id()`` of the card (the set's).
    """
    clocks, checks = split_rules(rules)
    clock_rules = {r.rule for r in clocks}
    check_rules = {r.rule for r in checks}
    finished = case.status in FINISHED
    for card in existing:
        if card.status == "revoked":
            continue
        name = card.rule
        if name not in clock_rules:
            fact = found.get((name, card.subject))
            if name in check_rules and (fact is None or fact[1] != card.issued_at):
                # the fact is gone or began elsewhere (a late event before it)
                decision.revoke.append(Closing(card.card_id, "fact_not_found", now, card.key))
            elif not card.is_open:
                continue
            elif name not in check_rules:
                decision.revoke.append(Closing(card.card_id, "rule_removed", now, card.key))
            elif finished:
                decision.close.append(Closing(card.card_id, "case_finished", now))
            continue
        key = (name, card.subject)
        due = seen.due.get(key, {})
        p = seen.period.get(key)
        if due.get(card.level) != card.issued_at and not (
            right[id(card)] if id(card) in right else _was_right(card, p, cal)
        ):
            # wrong at its own instant: revoked, closed or not; a new crossing is a new card
            why = "threshold_not_reached" if card.level not in due else "threshold_moved"
            decision.revoke.append(Closing(card.card_id, why, now, card.key))
        elif not card.is_open:
            continue
        elif card.level not in due and not any(lv > card.level for lv in due):
            decision.close.append(Closing(card.card_id, "extended", now))  # asked after it
        elif key not in seen.running and p is not None and p.stop is not None:
            decision.close.append(Closing(card.card_id, "period_finished", p.stop))


def decide_case(
    case: CaseView,
    matter: Matter | None,
    ruleset: RuleSet,
    cal: Calendar,
    now: int,
    existing: Sequence[ExistingCard],
    *,
    running: bool = True,
) -> CaseDecision:
    """The cards ``case`` is due at ``now``, given the cards it already has.

    The reference: one case, its periods and level times walked in Python
    (`decide_cases` decides many at once and is held to the same answers).

    With ``running=False`` levels of running periods are left for later (the
    scheduler's tick once the tailer has caught up): a stop event may be in
    the next batch, and cards must not depend on where batches split.

    - a level is issued only above the highest live one of its rule and
      subject (levels never fall), and after downtime only the highest due;
    - a revoked card does not block a later crossing, only its own instant;
    - a stopped period gets no warning; a late one gets its red card, dated when
      its limit was crossed and closed at once;
    - a step is carded only while the case as a whole is on time;
    - a card that was wrong on the facts of its instant (a late event before
      it, a rule or calendar change) is revoked, even if closed; one whose
      level later facts took away (an extension asked after it) is closed;
    - cards of a stopped period close when it stops; procedural cards when
      the case has finished.
    """
    rules = ruleset.resolve(case.region, case.department, case.matter)
    ps = periods(case, matter, rules, cal, ruleset.statute)
    details: list[Detail] = []
    decision = _decide(case, matter, ruleset, rules, cal, now, existing, running,
                       ps, level_times(cal, ps, now), details)  # fmt: skip
    _fill_details(cal, now, details)
    return decision


def _decide(
    case: CaseView,
    matter: Matter | None,
    ruleset: RuleSet,
    rules: Sequence[Rule],
    cal: Calendar,
    now: int,
    existing: Sequence[ExistingCard],
    running: bool,
    ps: Sequence[Period],
    times: Sequence[LevelTimes],
    details: list[Detail],
    right: Mapping[int, bool] | None = None,
    seen: _Seen | None = None,
) -> CaseDecision:
    """`decide_case` on the case's periods timed already; card details left in ``details``.

    ``right``: the cards' `_was_right` answered for the set (`_ends`); ``seen``: what the
    periods saw (`_Seen.of`), when the set made it already.
    """
    decision = CaseDecision()
    found = findings(case, matter, rules, cal, ruleset.statute)
    highest: dict[Key, int] = {}
    crossed: set[tuple[str, str, int, int]] = set()
    if existing:  # most cases of a batch have none: nothing to close, revoke or hold up
        # what was wrong goes first: a revoked card no longer holds its level up
        seen = seen or _Seen.of(ps, times)
        _ends(case, rules, existing, seen, found, cal, now, decision, right or {})
        revoked = {c.card_id for c in decision.revoke}
        for card in existing:
            crossed.add((card.rule, card.subject, card.level, card.issued_at))
            if card.status != "revoked" and card.card_id not in revoked:
                key = (card.rule, card.subject)
                highest[key] = max(highest.get(key, 0), card.level)
    overdue = _decision_overdue(ps, times)
    for p, tm in zip(ps, times, strict=True):
        if p.stop is None:
            if p.not_before is None or p.not_before <= now:
                decision.running.append(p)
                decision.running_pauses.append(tm.pauses)
                if not running and max(tm.due, default=0) > highest.get(
                    (p.rule.rule, p.subject), 0
                ):
                    # due now and left to the tick: make sure it looks, whatever the table
                    # row says (a pause whose end is still ahead counts whole in the row)
                    decision.wake_at = (
                        now if decision.wake_at is None else min(decision.wake_at, now)
                    )
            else:  # deemed accepted later: no row before then, a look at that instant
                at = decision.wake_at
                decision.wake_at = p.not_before if at is None else min(at, p.not_before)
            if not running:
                continue
        if p.rule.on == "step" and overdue:
            continue
        new = _clock_card(p, tm, highest, crossed, details)
        if new is not None:
            decision.issue.append(new)
            highest[(new.rule, new.subject)] = new.level
    if found:
        decision.issue += check_cards(case, found, now, highest, crossed)
    return decision


_WITH_JUDGED: dict[int, tuple[tuple[Rule, ...], tuple[Rule, ...]]] = {}


def _with_judged(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """A case's resolved rules and the figures' (`JUDGED`), one tuple per resolved tuple."""
    hit = _WITH_JUDGED.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_WITH_JUDGED) >= 4096:  # tuples of replaced rule sets: let them go
            _WITH_JUDGED.clear()
        hit = _WITH_JUDGED[id(rules)] = (rules, rules + JUDGED)
    return hit[1]


def decide_cases(
    cases: Sequence[tuple[CaseView, Matter | None, Sequence[ExistingCard]]],
    ruleset: RuleSet,
    cal: Calendar,
    now: int,
    *,
    running: bool = True,
    setwise: bool = True,
    figures: bool = False,
) -> list[CaseDecision]:
    """`decide_case` for many cases: the same decisions, computed set-wise.

    The periods of every case are timed together (those without pauses over
    arrays, `PlainLevels`; the rest in one calendar pass); a case with no
    cards yet whose periods have no pause is decided from those arrays
    (`_decide_plain`), the others walked; the details of every card issued
    take one calendar call. ``setwise=False``
    times them with the Python walk instead (the reference, for benchmarks
    and tests). ``figures``: each decision's ``outcome`` too, the case's
    period for the figures built with its others (`figures.case_figures`'s
    answer, the statute applied once).
    """
    spans: list[tuple[int, int]] = []
    every: list[Period] = []
    judged: list[Period | None] = []
    details: list[Detail] = []
    out: list[CaseDecision] = []
    resolved = [ruleset.resolve(c.region, c.department, c.matter) for c, _, _ in cases]
    deemed_for_the_set([c for c, _, _ in cases], cal, ruleset.statute)  # one calendar call
    extended = [i for i, (case, _, _) in enumerate(cases) if case.clocks.extensions]
    if len(extended) > 1:  # their extensions' in-time checks answered together
        with in_time_for_the_set():
            for i in extended:
                periods(cases[i][0], cases[i][1], _with_judged(resolved[i]), cal, ruleset.statute)
        extensions_for_the_set([cases[i][:2] for i in extended], cal, ruleset.statute)
    for (case, matter, _), rules in zip(cases, resolved, strict=True):
        if figures:
            ps = periods(case, matter, _with_judged(rules), cal, ruleset.statute)
            mine = [p for p in ps if p.rule is JUDGED[0] or p.rule is JUDGED[1]]
            judged.append(mine[0] if mine else None)
            if mine:
                ps = ps[: len(ps) - len(mine)]  # the figures' rules come last
        else:
            ps = periods(case, matter, rules, cal, ruleset.statute)
        spans.append((len(every), len(ps)))
        every.extend(ps)
    if setwise:
        out = _decide_set(cases, ruleset, resolved, cal, now, running, every, spans, details)
    else:
        times = level_times(cal, every, now)
        for (case, matter, existing), rules, (i, k) in zip(cases, resolved, spans, strict=True):
            out.append(_decide(case, matter, ruleset, rules, cal, now, existing, running,
                               every[i:i + k], times[i:i + k], details))  # fmt: skip
            _fill_details(cal, now, details)  # card by card, as the reference does
            details = []
    _fill_details(cal, now, details)
    if figures:
        got = figures_of([(case, matter) for case, matter, _ in cases], judged, cal)
        for d, f in zip(out, got, strict=True):
            d.outcome = (f.deadline, f.outcome or "")
    return out


def _decide_set(
    cases: Sequence[tuple[CaseView, Matter | None, Sequence[ExistingCard]]],
    ruleset: RuleSet,
    resolved: Sequence[Sequence[Rule]],
    cal: Calendar,
    now: int,
    running: bool,
    every: Sequence[Period],
    spans: Sequence[tuple[int, int]],
    details: list[Detail],
) -> list[CaseDecision]:
    """`decide_cases`' set-wise path: the decisions, the details left in ``details``."""
    slot: list[int] = []  # each period's row in the plain columns, -1: it has pauses
    plain: list[Period] = []
    paused: list[Period] = []
    for p in every:
        if p.pauses:
            slot.append(-1 - len(paused))
            paused.append(p)
        else:
            slot.append(len(plain))
            plain.append(p)
    cols = PlainLevels(cal, plain, now)
    walked = level_times(cal, paused, now) if paused else []
    timed: dict[int, tuple[list[LevelTimes], _Seen]] = {}  # the cases with cards
    doubts: list[tuple[ExistingCard, Period]] = []
    for n, ((_, _, existing), (i, k)) in enumerate(zip(cases, spans, strict=True)):
        if existing:
            times = [cols.times(j) if j >= 0 else walked[-1 - j] for j in slot[i : i + k]]
            timed[n] = (times, _Seen.of(every[i : i + k], times))
            doubts += _in_doubt(existing, timed[n][1])
    right = {id(card): ok for (card, _), ok in zip(doubts, _were_right(doubts, cal), strict=True)}
    out = []
    for n, ((case, matter, existing), rules, (i, k)) in enumerate(
        zip(cases, resolved, spans, strict=True)
    ):
        mine = slot[i : i + k]
        ps = every[i : i + k]
        got = None
        if not existing and all(j >= 0 for j in mine):
            got = _decide_plain(case, matter, ruleset, rules, cal, now, running, ps, cols, mine,
                                details)  # fmt: skip
        if got is None:
            times, seen = timed.get(n) or (
                [cols.times(j) if j >= 0 else walked[-1 - j] for j in mine],
                None,
            )
            got = _decide(case, matter, ruleset, rules, cal, now, existing, running, ps, times,
                          details, right, seen)  # fmt: skip
        out.append(got)
    return out


def _decide_plain(
    case: CaseView,
    matter: Matter | None,
    ruleset: RuleSet,
    rules: Sequence[Rule],
    cal: Calendar,
    now: int,
    running: bool,
    ps: Sequence[Period],
    cols: PlainLevels,
    rows: Sequence[int],
    details: list[Detail],
) -> CaseDecision | None:
    """`_decide` of a case with no cards whose periods have no pause, read off the columns.

    With nothing to close, revoke or hold a level up, a period's card is the
    highest level it may be carded at (`PlainLevels.card`); a `LevelTimes` is
    made only for a card issued. None when two periods share a rule and
    subject (the walk merges their levels).
    """
    if len({(p.rule.rule, p.subject) for p in ps}) != len(ps):
        return None
    decision = CaseDecision()
    top, card = cols.top, cols.card
    overdue = False
    for p, j in zip(ps, rows, strict=True):
        if p.stop is None and top[j] == 3 and p.rule.on == "decision":
            overdue = True
    highest: dict[Key, int] = {}
    for p, j in zip(ps, rows, strict=True):
        if p.stop is None:
            if p.not_before is None or p.not_before <= now:
                decision.running.append(p)
                decision.running_pauses.append([])
                if not running and top[j]:  # due now and left to the tick: it must look
                    decision.wake_at = now
            else:  # deemed accepted later: no row before then, a look at that instant
                at = decision.wake_at
                decision.wake_at = p.not_before if at is None else min(at, p.not_before)
            if not running:
                continue
        if not card[j] or (p.rule.on == "step" and overdue):
            continue
        rule, level = p.rule, card[j]
        detail: dict[str, Any] = {}
        details.append((detail, p, cols.times(j), level))
        decision.issue.append(NewCard(p.case_id, rule.clock, rule.rule, level, cols.card_at[j],
                                      cols.deadline[j], detail,
                                      supervision=rule.supervision == level,
                                      close=None if p.stop is None else "period_finished",
                                      subject=p.subject))  # fmt: skip
        highest[(rule.rule, p.subject)] = level
    found = findings(case, matter, rules, cal, ruleset.statute)
    if found:
        decision.issue += check_cards(case, found, now, highest, set())
    return decision
