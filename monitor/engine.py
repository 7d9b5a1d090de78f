"""The rule engine: which cards a case is due, as a pure function of data and ``now``.

A clock rule watches a *period* of a case (its decision period, a step, a
pause, ...). A level is due once the period's working time reaches the
level's threshold, measured on the case's calendar with pauses taken out;
thresholds at or beyond the limit count like deadlines (end of that working
day). The instant a level became due is found by walking the period's
pauses, so a pause that began after the crossing does not move it, and the
same events give the same card and the same ``issued_at`` however they were
batched. Procedural rules are facts found in the case's history.

Nothing here does I/O: the ledger (``monitor.ledger``) persists what this
decides, and ``monitor.evaluator`` wires both to the tailer and the clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.calendar import Calendar
from monitor.rules import CheckRule, ClockRule, Rule, RuleSet
from monitor.state import CaseState, Matter

NAT = np.iinfo(np.int64).min
_EPS = 1e-7  # working days: float noise (one second is 1.2e-5)
FINISHED = frozenset({"completed", "delivered", "withdrawn", "terminated", "refused"})
OPEN_STATUSES = ("issued", "acknowledged", "appealed")


def to_epoch(value: str | dt.datetime | None) -> int | None:
    """UTC seconds of an ISO-8601 text or aware datetime (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _iso_epoch(value)
    return int(value.timestamp())


@functools.lru_cache(maxsize=1 << 16)
def _iso_epoch(text: str) -> int:
    """Cached: a case's clocks repeat their instants (decision, statutory, steps share them)."""
    return int(dt.datetime.fromisoformat(text).timestamp())


def from_epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


Pauses = list[tuple[float, float, bool]]  # (start, end, still open) in working days


@dataclass(frozen=True)
class CaseView:
    """What the engine reads of a case: a ``jiancha.cases`` row or a fresh CaseState."""

    case_id: str
    matter: str | None
    department: str | None
    window: str | None
    region: str | None
    status: str
    clocks: Mapping[str, Any]
    facts: Mapping[str, Any]
    closed_at: int | None = None  # withdrawn or terminated: every period but review stops

    @classmethod
    def from_state(cls, st: CaseState) -> CaseView:
        return cls(
            st.case_id,
            st.matter,
            st.department,
            st.window,
            st.region,
            str(st.status),
            st.clocks,
            st.facts,
            to_epoch(st.closed_at),
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CaseView:
        return cls(
            row["case_id"],
            row["matter"],
            row["department"],
            row["window"],
            row["region"],
            row["status"],
            row["clocks"] or {},
            row["facts"] or {},
            to_epoch(row["closed_at"]),
        )


@dataclass(frozen=True)
class Period:
    """One running period a clock rule watches (a clock of DOMAIN.md §2)."""

    case_id: str
    rule: ClockRule
    subject: str  # the step or pause it is about; "" for the case's own clocks
    start: int  # UTC seconds
    stop: int | None
    limit: int  # working days
    extension: int
    pauses: tuple[tuple[int, int | None], ...] = ()  # (start, end) UTC seconds

    @property
    def allowed(self) -> int:
        return self.limit + self.extension


@dataclass(frozen=True)
class NewCard:
    """A card the engine decided to issue (not yet in the ledger)."""

    case_id: str
    clock: str
    rule: str
    level: int
    issued_at: int  # UTC seconds: the instant the level became due
    deadline: int | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    supervision: bool = False
    close: str | None = None  # closed at once (a finished period), with this reason

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.case_id, self.clock, self.rule, self.level)


@dataclass(frozen=True)
class ExistingCard:
    """A card already in the ledger, as much as the engine needs."""

    card_id: int
    case_id: str
    clock: str
    rule: str
    level: int
    status: str
    issued_at: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Closing:
    card_id: int
    reason: str
    at: int


@dataclass
class CaseDecision:
    """Everything a case's new state means for the ledger."""

    issue: list[NewCard] = field(default_factory=list)
    close: list[Closing] = field(default_factory=list)
    revoke: list[Closing] = field(default_factory=list)
    running: list[Period] = field(default_factory=list)  # for the scheduler's table
    running_pauses: list[Pauses] = field(default_factory=list)  # each one's, at ``now``
    outcome: tuple[int | None, str] | None = None  # (deadline, early|on_time|late) once done


# --- periods ------------------------------------------------------------------------


def _pauses(items: Iterable[Mapping[str, Any]]) -> tuple[tuple[int, int | None], ...]:
    out = []
    for p in items:
        start = to_epoch(p.get("start"))
        if start is not None:
            out.append((start, to_epoch(p.get("end"))))
    return tuple(sorted(out, key=lambda x: x[0]))


def periods(case: CaseView, matter: Matter | None, rules: Iterable[Rule]) -> list[Period]:
    """The periods of a case that its clock rules watch, running or stopped."""
    out: list[Period] = []
    c = case.clocks
    decision = c.get("decision") or {}
    pauses = _pauses(decision.get("pauses", []))
    ext = int(decision.get("extension_days") or 0)
    closed = case.closed_at

    def add(
        rule: ClockRule,
        clock: Mapping[str, Any] | None,
        limit: int | None,
        *,
        subject: str = "",
        stop_key: str = "stop",
        extension: int = 0,
        pz: tuple[tuple[int, int | None], ...] = (),
        stops_on_close: bool = True,
    ) -> None:
        if not clock or limit is None:
            return
        start = to_epoch(clock.get("start"))
        if start is None:
            return
        stop = to_epoch(clock.get(stop_key))
        if stop is None and stops_on_close and closed is not None:
            stop = closed
        out.append(Period(case.case_id, rule, subject, start, stop, int(limit), extension, pz))

    for rule in rules:
        if not isinstance(rule, ClockRule):
            continue
        on = rule.on
        if on in ("acceptance", "delivery", "immediate", "supplement"):
            clock = c.get(on)
            limit = rule.limit_days
            if on == "supplement" and clock:
                limit = clock.get("limit_days")
            add(rule, clock, limit)
        elif on in ("decision", "statutory"):
            clock = c.get(on)
            if on == "decision" and c.get("immediate"):
                # an immediate case's promised limit (0 days) is its immediate clock, which
                # DOMAIN.md §4 cards yellow; a red supervision order on top was a double card
                continue
            add(rule, clock, clock.get("limit_days") if clock else None, extension=ext, pz=pauses)
        elif on == "step":
            limits = matter.step_days if matter is not None else {}
            for name, step in sorted((c.get("step") or {}).items()):
                if name in limits:
                    add(rule, step, int(limits[name]), subject=name, pz=pauses)
        elif on == "pause":
            maxima = matter.pause_max_days if matter is not None else {}
            for i, p in enumerate(decision.get("pauses", [])):
                if p.get("type") in maxima:
                    clock = {"start": p.get("start"), "stop": p.get("end")}
                    add(rule, clock, int(maxima[p["type"]]), subject=f"{p['type']}#{i + 1}")
        elif on == "review_visit":
            add(rule, c.get("review"), rule.limit_days, stop_key="visited", stops_on_close=False)
        elif on == "review":
            add(rule, c.get("review"), rule.limit_days, stops_on_close=False)
    return out


# --- thresholds and instants -------------------------------------------------------


def thresholds(rule: ClockRule, allowed: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Working days consumed at which blue, yellow, red are due: shape (..., 3), NaN none."""
    a = np.asarray(allowed, dtype=np.float64)
    out = np.full((*a.shape, 3), np.nan)
    for level, th in rule.thresholds.items():
        out[..., level - 1] = th.consumed_at(a)
    return out


def _relative(cal: Calendar, period: Period, end: int) -> Pauses:
    """The period's pauses up to ``end`` as working-day positions since its start.

    Each is (start, end, still open); an open pause is measured up to ``end``.
    """
    return _relatives(cal, [period], [end])[0]


def _relatives(cal: Calendar, periods_: Sequence[Period], ends: Sequence[int]) -> list[Pauses]:
    """`_relative` for many periods in one calendar call (one per period costs ~µs each)."""
    kept_of: list[list[tuple[int, int | None]]] = []
    starts: list[int] = []
    edges: list[int] = []
    for period, end in zip(periods_, ends, strict=True):
        if not period.pauses:  # most periods: nothing to measure
            kept_of.append([])
            continue
        kept = [(ps, pe) for ps, pe in period.pauses if ps < end]
        kept_of.append(kept)
        for ps, pe in kept:
            starts += (period.start, period.start)
            edges += (ps, end if pe is None or pe > end else pe)
    if not edges:
        return [[] for _ in kept_of]
    rel = cal.working_days_between(
        np.asarray(starts, dtype="datetime64[s]"),
        np.asarray(edges, dtype="datetime64[s]"),
        errors="nat",
    ).tolist()
    out: list[Pauses] = []
    k = 0
    for kept, end in zip(kept_of, ends, strict=True):
        mine: Pauses = []
        for _, pe in kept:
            a, b = rel[k], rel[k + 1]
            k += 2
            mine.append((a, max(a, b), pe is None or pe > end))
        out.append(mine)
    return out


def crossing_position(x: float, pauses: Sequence[tuple[float, float, bool]]) -> float | None:
    """Working-day position since the start at which consumed time reaches ``x``.

    None when an open pause began before that: the clock is frozen short of it.
    """
    paused = 0.0
    for a, b, still_open in pauses:
        if a >= x + paused - _EPS:
            break  # this pause began after the crossing
        if still_open:
            return None
        paused += b - a
    return x + paused


def _instants(
    cal: Calendar, starts: list[int], positions: list[float], deadline_like: list[bool]
) -> list[int | None]:
    """UTC seconds at which each position is reached (deadline-like: end of that day)."""
    if not starts:
        return []
    s = np.asarray(starts, dtype="datetime64[s]")
    x = np.asarray(positions, dtype=np.float64)
    like = np.asarray(deadline_like)
    whole = np.ceil(np.maximum(x - _EPS, 0.0)).astype(np.int64)
    ends = cal.deadline(s, whole, errors="nat").astype(np.int64)
    exact = cal.instant_at(s, x, errors="nat").astype(np.int64)
    got = np.where(like, ends, exact)
    return [None if v == NAT else int(v) for v in got]


@dataclass(slots=True)  # not frozen: a start builds one per period, tens of thousands
class LevelTimes:
    """When each level of a period is, or would be, due."""

    due: dict[int, int]  # level -> instant it became due (≤ now, or ≤ stop)
    upcoming: int | None  # next instant a higher level comes due, if the clock runs
    deadline: int | None
    consumed_at: dict[int, float]
    pauses: Pauses = field(default_factory=list)  # at ``now`` (or the stop), as `_relative`


def level_times(cal: Calendar, periods_: Sequence[Period], now: int) -> list[LevelTimes]:
    """For each period: which levels are due at ``now`` (or at its stop) and since when."""
    starts: list[int] = []
    pos: list[float] = []
    like: list[bool] = []
    owner: list[tuple[int, int]] = []
    per: list[dict[int, float]] = []
    frozen: list[bool] = []
    known: dict[tuple[int, int], npt.NDArray[np.float64]] = {}  # same rule, same allowance
    rels = _relatives(cal, periods_, [now if p.stop is None else min(now, p.stop)
                                      for p in periods_])  # fmt: skip
    for i, p in enumerate(periods_):
        rel = rels[i]
        xs = known.get((id(p.rule), p.allowed))
        if xs is None:
            xs = known[(id(p.rule), p.allowed)] = thresholds(p.rule, p.allowed)
        per.append({})
        frozen.append(any(still_open for _, _, still_open in rel))
        # the deadline itself (red at the limit), for display and the card's record
        levels = [(0, float(p.allowed))]
        levels += [(lv, float(xs[lv - 1])) for lv in (1, 2, 3) if not math.isnan(xs[lv - 1])]
        for lv, x in levels:
            if lv:
                per[i][lv] = x
            if lv == 0:  # the deadline: every pause so far counts (DOMAIN.md §3)
                r: float | None = float(p.allowed) + sum(b - a for a, b, _ in rel)
            else:
                r = crossing_position(x, rel)
            if r is None:
                continue
            starts.append(p.start)
            pos.append(r)
            like.append(x >= p.allowed - 1e-6)
            owner.append((i, lv))
    got = _instants(cal, starts, pos, like)
    out = [LevelTimes({}, None, None, per[i], rels[i]) for i in range(len(periods_))]
    for (i, lv), instant in zip(owner, got, strict=True):
        p = periods_[i]
        if instant is None:
            continue
        if lv == 0:
            out[i].deadline = instant
            continue
        limit = now if p.stop is None else min(now, p.stop)
        if instant <= limit:
            out[i].due[lv] = instant
        elif p.stop is None and not frozen[i]:
            up = out[i].upcoming
            out[i].upcoming = instant if up is None else min(up, instant)
    return out


# --- deciding ------------------------------------------------------------------------


def used_days(cal: Calendar, p: Period, now: int) -> float:
    """Working days a period has consumed by ``now`` (or its stop), pauses taken out."""
    end = now if p.stop is None else min(now, p.stop)
    elapsed = float(
        cal.working_days_between(
            np.asarray([p.start], dtype="datetime64[s]"),
            np.asarray([end], dtype="datetime64[s]"),
            errors="nat",
        )[0]
    )
    return max(0.0, elapsed - sum(b - a for a, b, _ in _relative(cal, p, end)))


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
    by_rule: dict[str, list[ExistingCard]] = {}
    for card in existing:
        by_rule.setdefault(card.rule, []).append(card)
    if timed is None:
        ps: Sequence[Period] = periods(case, matter, rules)
        times: Sequence[LevelTimes] = level_times(cal, ps, now)
    else:
        ps, times = timed
    due_by_rule: dict[str, dict[int, int]] = {}
    stop_by_rule: dict[str, int | None] = {}
    running_rules: set[str] = set()
    decision_overdue = False
    for p, tm in zip(ps, times, strict=True):
        if p.rule.on == "decision" and 3 in tm.due and p.stop is None:
            decision_overdue = True
    for p, tm in zip(ps, times, strict=True):
        rule = p.rule
        merged = due_by_rule.setdefault(rule.rule, {})
        for lv, at in tm.due.items():
            merged[lv] = min(at, merged.get(lv, at))
        if p.stop is None:
            running_rules.add(rule.rule)
            decision.running.append(p)
            decision.running_pauses.append(tm.pauses)
        else:
            prev = stop_by_rule.get(rule.rule, p.stop)
            stop_by_rule[rule.rule] = max(p.stop, prev if prev is not None else p.stop)
        due = tm.due
        if p.stop is not None:  # no warning on a finished period: only a missed limit
            due = {lv: at for lv, at in due.items() if tm.consumed_at[lv] >= p.allowed - 1e-6}
        top = max(due, default=0)
        if top <= highest.get(rule.rule, 0):
            continue
        if rule.on == "step" and decision_overdue:
            continue  # a step is carded only while the case as a whole is on time
        if p.stop is None and not running:
            continue
        # a late finish is carded at completion (DOMAIN.md §4), a running clock when due
        issued_at = p.stop if p.stop is not None else due[top]
        decision.issue.append(
            NewCard(
                case.case_id,
                rule.clock,
                rule.rule,
                top,
                int(issued_at),
                tm.deadline,
                _detail(p, tm, top, cal, now),
                supervision=rule.supervision == top,
                close=None if p.stop is None else "period_finished",
            )
        )
        highest[rule.rule] = top
    _checks(case, matter, rules, cal, now, highest, decision)
    # Close the cards of finished periods; revoke those whose basis is gone.
    clock_rules = {r.rule: r for r in rules if isinstance(r, ClockRule)}
    finished = case.status in FINISHED
    for name, cards in by_rule.items():
        for card in cards:
            if not card.is_open:
                continue
            watched = clock_rules.get(name)
            if watched is None:
                if name not in {r.rule for r in rules if isinstance(r, CheckRule)}:
                    decision.revoke.append(Closing(card.card_id, "rule_removed", now))
                elif finished:
                    decision.close.append(Closing(card.card_id, "case_finished", now))
                continue
            due = due_by_rule.get(name, {})
            if card.level not in due and not any(lv > card.level for lv in due):
                decision.revoke.append(Closing(card.card_id, "threshold_not_reached", now))
            elif name not in running_rules and name in stop_by_rule:
                stopped = stop_by_rule[name]
                decision.close.append(
                    Closing(card.card_id, "period_finished", now if stopped is None else stopped)
                )
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


def _checks(
    case: CaseView,
    matter: Matter | None,
    rules: Sequence[Rule],
    cal: Calendar,
    now: int,
    highest: dict[str, int],
    decision: CaseDecision,
) -> None:
    """Procedural rules: facts of the history that are cards whenever they hold."""
    finished = case.status in FINISHED
    facts = case.facts
    dec = case.clocks.get("decision") or {}
    for rule in rules:
        if not isinstance(rule, CheckRule) or highest.get(rule.rule, 0) >= rule.level:
            continue
        at: int | None = None
        detail: dict[str, Any] = {}
        if rule.check == "repeated_supplement_request":
            allowed = int(rule.params.get("max_requests", 1))
            requests = facts.get("supplement_requests") or []
            if len(requests) > allowed:
                at, detail = to_epoch(requests[allowed]), {"requests": len(requests)}
        elif rule.check == "pause_type_not_allowed":
            allowed_types = set(matter.pause_max_days) if matter is not None else set()
            for p in dec.get("pauses", []):
                if allowed_types and p.get("type") not in allowed_types:
                    at, detail = to_epoch(p.get("start")), {"type": p.get("type")}
                    break
        elif rule.check == "irregular_extension":
            at, detail = _irregular_extension(case, rule, cal)
        elif rule.check == "fee_on_free_matter":
            fees = facts.get("fees") or []
            if matter is not None and matter.free and fees:
                at, detail = to_epoch(fees[0]["at"]), {"amount": sum(f["amount"] for f in fees)}
        elif rule.check == "refusal_without_reason":
            refusal = facts.get("refusal") or {}
            if refusal.get("at") and not refusal.get("reason"):
                at = to_epoch(refusal["at"])
        if at is None or at > now:
            continue
        decision.issue.append(
            NewCard(
                case.case_id,
                rule.clock,
                rule.rule,
                rule.level,
                at,
                None,
                detail,
                close="case_finished" if finished else None,
            )
        )
        highest[rule.rule] = rule.level


def _irregular_extension(
    case: CaseView, rule: CheckRule, cal: Calendar
) -> tuple[int | None, dict[str, Any]]:
    """An extension beyond the allowed days, a second one, or one asked after the deadline."""
    dec = case.clocks.get("decision") or {}
    exts = sorted(dec.get("extensions") or [], key=lambda e: e.get("at") or "")
    start = to_epoch(dec.get("start"))
    if not exts or start is None or dec.get("limit_days") is None:
        return None, {}
    max_days = int(rule.params.get("max_days", 10))
    max_count = int(rule.params.get("max_count", 1))
    pauses = _pauses(dec.get("pauses", []))
    total = 0
    for n, ext in enumerate(exts, 1):
        at = to_epoch(ext.get("at"))
        if at is None:
            continue
        # the deadline as it stood when the extension was asked (earlier extensions in)
        before = [(s, e if e is not None and e <= at else at) for s, e in pauses if s < at]
        period = Period(
            case.case_id,
            _DEADLINE_RULE,
            "",
            start,
            None,
            int(dec["limit_days"]),
            total,
            tuple(before),
        )
        deadline = level_times(cal, [period], at)[0].deadline
        total += int(ext.get("days") or 0)
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


_DEADLINE_RULE = ClockRule("deadline", "decision", "decision", "", "", {})


def outcome_of(case: CaseView, matter: Matter | None, cal: Calendar) -> tuple[int | None, str]:
    """The promised deadline and how the decision clock ended: early, on_time or late.

    Early means finished before the deadline's day (提前办结); on time, before the
    deadline instant (按期办结). Independent of the card rules in force.
    """
    return outcomes_of([(case, matter)], cal)[0]


def outcomes_of(cases: Sequence[tuple[CaseView, Matter | None]], cal: Calendar
                ) -> list[tuple[int | None, str]]:  # fmt: skip
    """`outcome_of` for many cases in one calendar pass (a daemon's start has thousands)."""
    out: list[tuple[int | None, str]] = [(None, "")] * len(cases)
    stopped: list[tuple[int, Period]] = []
    for i, (case, matter) in enumerate(cases):
        ps = periods(case, matter, [_DEADLINE_RULE])
        if ps and ps[0].stop is not None:
            stopped.append((i, ps[0]))
    if not stopped:
        return out
    # one `now` past every stop: each period is measured to its own stop
    later = max(p.stop for _, p in stopped if p.stop is not None)
    times = level_times(cal, [p for _, p in stopped], later)
    tz = zoneinfo.ZoneInfo(cal.timezone)
    for (i, p), tm in zip(stopped, times, strict=True):
        deadline, stop = tm.deadline, p.stop
        if deadline is None or stop is None:
            continue
        if stop >= deadline:
            out[i] = (deadline, "late")
            continue
        last_day = (from_epoch(deadline) - dt.timedelta(seconds=1)).astimezone(tz).date()
        early = from_epoch(stop).astimezone(tz).date() < last_day
        out[i] = (deadline, "early" if early else "on_time")
    return out
