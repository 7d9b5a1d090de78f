"""The periods of a case that its clock rules watch: the statute applied to its spans.

Which clock starts when (deemed acceptance, Art. 32), for how long (joint
handling, Art. 26; extensions, Art. 42) and with which pauses frozen (their
union, each ended at its allowance, Art. 45), and the subject each period
is carded under. Pure: typed cases in, `Period` values out; the instants
are `monitor.clocks.timing`'s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np

from monitor.calendar import Calendar
from monitor.clocks.timing import (
    DECISION_DEADLINE,
    NAT,
    Period,
    epoch,
    from_epoch,
    instants_of,
    relatives,
)
from monitor.rules.model import CheckRule, ClockRule, Rule, Statute
from monitor.source.contract import Matter
from monitor.state.case import Pause, Span
from monitor.state.view import CaseView

_K = TypeVar("_K")
_V = TypeVar("_V")

__all__ = ["Kept", "asked_in_time", "deadline_as_of", "deadlines_as_of", "deemed_acceptance",
           "deemed_for_the_set",
           "in_time_for_the_set", "pause_allowance", "periods", "split_rules",
           "subject_of"]  # fmt: skip

_STATUTE = Statute()
_SPLIT: dict[int, tuple[tuple[Rule, ...], tuple[list[ClockRule], list[CheckRule]]]] = {}


def split_rules(rules: Iterable[Rule]) -> tuple[list[ClockRule], list[CheckRule]]:
    """A case's clock rules and check rules, in their order (read only).

    Every case of a batch asks this of one of a few resolved tuples
    (`RuleSet.resolve` keeps them): remembered by the tuple's identity, checked
    on a hit, so a reload's new rules are never answered with old ones.
    """
    if not isinstance(rules, tuple):  # a list made for the call: nothing to remember
        return _split(tuple(rules))
    hit = _SPLIT.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_SPLIT) >= 4096:  # tuples of replaced rule sets: let them go
            _SPLIT.clear()
        hit = _SPLIT[id(rules)] = (rules, _split(rules))
    return hit[1]


def _split(rules: tuple[Rule, ...]) -> tuple[list[ClockRule], list[CheckRule]]:
    return ([r for r in rules if isinstance(r, ClockRule)],
            [r for r in rules if isinstance(r, CheckRule)])  # fmt: skip


def _epoch(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def subject_of(kind: str, at: dt.datetime) -> str:
    """A card's subject for the pause, rating or request that began at ``at``: ``kind@UTC``.

    Named by its instant rather than its rank, so a late-arriving earlier one
    does not renumber the others (and hand their cards to the wrong subject).
    """
    return f"{kind}@{at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def pause_allowance(p: Pause, matter: Matter | None, statute: Statute) -> int:
    """Working days a pause may last: the matter's maximum, else the notice's, else the default."""
    maxima = matter.pause_max_days if matter is not None else {}
    if p.type in maxima:
        return int(maxima[p.type])
    return p.notified_days if p.notified_days > 0 else statute.pause_default_days


def _capped_pauses(
    cal: Calendar, items: Sequence[Pause], matter: Matter | None, statute: Statute
) -> tuple[tuple[int, int | None], ...]:
    """The union of the pauses, each ended at its allowance: the clocks' frozen intervals.

    Overlapping pauses freeze the clock once (it runs again when the last one
    closes), and a pause past its allowance counts as running time, so a
    pause never resumed still lets the case go red in the end.
    """
    if not items:
        return ()
    spans = [(epoch(p.start), _epoch(p.end), pause_allowance(p, matter, statute)) for p in items]
    # only a pause longer than its allowance in calendar days can be past it in working days
    need = [i for i, (a, b, days) in enumerate(spans) if b is None or b - a > (days - 1) * 86400]
    caps: dict[int, int] = {}
    if need:
        got = cal.deadline(np.asarray([spans[i][0] for i in need], dtype="datetime64[s]"),
                           np.asarray([spans[i][2] for i in need], dtype=np.int64),
                           errors="nat").astype(np.int64)  # fmt: skip
        caps = {i: int(v) for i, v in zip(need, got.tolist(), strict=True) if v != NAT}
    ends: list[tuple[int, int | None]] = []
    for i, (a, b, _) in enumerate(spans):
        cap = caps.get(i)
        end = b if cap is None else (cap if b is None else min(b, cap))
        ends.append((a, end))
    ends.sort(key=lambda x: x[0])
    merged: list[tuple[int, int | None]] = []
    for a, b in ends:
        if merged:
            pa, pb = merged[-1]
            if pb is None or a <= pb:
                merged[-1] = (pa, None if pb is None or b is None else max(pb, b))
                continue
        merged.append((a, b))
    return tuple(merged)


def deadline_as_of(cal: Calendar, period: Period, at: int) -> int | None:
    """The period's deadline as it stood at ``at``: pauses begun by then, clipped to it."""
    return deadlines_as_of(cal, [period], [at])[0]


def deadlines_as_of(
    cal: Calendar, periods_: Sequence[Period], ats: Sequence[int]
) -> list[int | None]:
    """`deadline_as_of` for many periods, each at its own instant, in two calendar calls.

    The deadline is where `level_times` puts it: the limit plus every pause
    so far, in working days from the start, to the end of that day.
    """
    if not periods_:
        return []
    clipped = [
        replace(p, stop=None,
                pauses=tuple((s, e if e is not None and e <= at else at) for s, e in p.pauses
                             if s < at))
        for p, at in zip(periods_, ats, strict=True)
    ]  # fmt: skip
    rels = relatives(cal, clipped, ats)
    got = instants_of(
        cal,
        np.array([p.start for p in clipped], dtype=np.int64),
        np.array([float(p.allowed) + sum(b - a for a, b, _ in rel)
                  for p, rel in zip(clipped, rels, strict=True)], dtype=np.float64),
        np.ones(len(clipped), dtype=np.bool_),
    )  # fmt: skip
    return [None if v == NAT else int(v) for v in got.tolist()]


def _extensions(
    cal: Calendar,
    case: CaseView,
    start: int,
    promised: int,
    pauses: tuple[tuple[int, int | None], ...],
    mode: str,
) -> tuple[tuple[int, int], ...]:
    """The extensions that also extend the promised limit, as (asked at, days)."""
    exts = sorted(case.clocks.extensions, key=lambda e: e.at)
    if mode == "never" or not exts:
        return ()
    asked = tuple((epoch(e.at), e.days) for e in exts)
    if mode == "always":
        return asked
    return _in_time(cal, start, promised, pauses, asked)


class Kept(dict[_K, _V]):
    """Calendar answers kept per their inputs, for cases decided again and again (every
    batch and tick that touches them). Past ``most`` they are all let go: a replaced
    calendar or rule set leaves only keys that never come back."""

    def __init__(self, most: int = 1 << 16) -> None:
        super().__init__()
        self.most = most

    def keep(self, keys: Sequence[_K], got: list[_V]) -> list[_V]:
        """``got``, the answers for ``keys``, kept; returned."""
        if len(self) + len(keys) > self.most:
            self.clear()
        self.update(zip(keys, got, strict=True))
        return got


def _in_time(
    cal: Calendar,
    start: int,
    promised: int,
    pauses: tuple[tuple[int, int | None], ...],
    asked: tuple[tuple[int, int], ...],
) -> tuple[tuple[int, int], ...]:
    """`asked_in_time` of one case: kept, or collected for its set (`in_time_for_the_set`)."""
    key: _InTimeKey = (cal, start, promised, pauses, asked)
    got = _IN_TIME.get(key)
    if got is not None:
        return got
    collecting: list[_InTimeKey] | None = getattr(_collecting, "keys", None)
    if collecting is not None:  # a pass to learn the checks a set needs: thrown away
        collecting.append(key)
        return asked
    return _settle([key])[0]


# (calendar, start, promised days, pauses, extensions asked as (at, days))
_InTimeKey = tuple[Calendar, int, int, tuple[tuple[int, int | None], ...],
                   tuple[tuple[int, int], ...]]  # fmt: skip
# Kept: a case is decided in every batch that touches it and at every tick, and each
# time this was a calendar call per extension (a fifth of a catch-up's deciding).
_IN_TIME: Kept[_InTimeKey, tuple[tuple[int, int], ...]] = Kept()
_collecting = threading.local()  # .keys while this thread runs a collecting pass


def asked_in_time(keys: Sequence[_InTimeKey]) -> list[tuple[tuple[int, int], ...]]:
    """The extensions of each key asked before the promised deadline as it then stood.

    Set-wise: the k-th extension of every key in one `deadlines_as_of` call
    (k = 1, 2, ...: a later one's deadline counts the earlier ones in time).
    """
    outs: list[list[tuple[int, int]]] = [[] for _ in keys]
    k = 0
    while todo := [i for i, key in enumerate(keys) if k < len(key[4])]:
        for cal in {keys[i][0] for i in todo}:  # a region's own calendar apart
            mine = [i for i in todo if keys[i][0] is cal]
            ps = [Period("", DECISION_DEADLINE, "", keys[i][1], None, keys[i][2],
                         sum(d for _, d in outs[i]), keys[i][3]) for i in mine]  # fmt: skip
            ats = [keys[i][4][k][0] for i in mine]
            for i, at, deadline in zip(mine, ats, deadlines_as_of(cal, ps, ats), strict=True):
                if deadline is not None and at < deadline:  # in time: the promise moves too
                    outs[i].append(keys[i][4][k])
        k += 1
    return [tuple(o) for o in outs]


def _settle(keys: Sequence[_InTimeKey]) -> list[tuple[tuple[int, int], ...]]:
    return _IN_TIME.keep(keys, asked_in_time(keys))


@contextlib.contextmanager
def in_time_for_the_set() -> Iterator[None]:
    """Around `periods` of a set of cases, run once first: the extensions' in-time checks
    they miss are collected, then answered set-wise and kept, so the real pass finds
    them all. (The periods of that first pass are provisional: throw them away.)"""
    keys: list[_InTimeKey] = []
    _collecting.keys = keys
    try:
        yield
    finally:
        _collecting.keys = None
    if keys:
        _settle(list(dict.fromkeys(keys)))


def _deemed(cal: Calendar, case: CaseView, statute: Statute) -> tuple[int, int] | None:
    """(receipt, deemed at) when the application counts as accepted from receipt (Art. 32).

    Neither accepted, refused nor sent a 补正 notice within the acceptance
    limit: acceptance is deemed from the receipt of the materials, and what
    comes after the limit (a late acceptance, a late notice or refusal) does
    not undo it. A timely notice restarts the period when the materials come;
    a timely acceptance or refusal ends it. Each acceptance period in turn.
    """
    days = statute.acceptance_days
    for span, stop, last in _acceptance_periods(case):
        start = epoch(span.start)  # type: ignore[arg-type]  # periods have a start
        limit: int | None = None
        if stop is None or stop - start >= (days - 1) * 86400:
            limit = _DEEMED.get((cal, start, days))
            if limit is None:  # not asked for its set (a case decided alone): its periods now
                deemed_for_the_set([case], cal, statute)
                limit = _DEEMED[(cal, start, days)]
        # (else it ended within fewer calendar days than the limit's working days)
        if limit is not None and limit != NAT and (stop is None or stop > limit):
            return start, limit
        if last or span.stop is None:
            return None
    return None


def deemed_acceptance(
    case: CaseView, cal: Calendar, statute: Statute
) -> tuple[dt.datetime, dt.datetime] | None:
    """(receipt, the acceptance limit that passed) when the case counts as accepted from
    receipt (Art. 32): what an officer reads on the case page beside its status."""
    got = _deemed(cal, case, statute)
    return None if got is None else (from_epoch(got[0]), from_epoch(got[1]))


def _unaccepted_end(case: CaseView) -> dt.datetime | None:
    """Where the clocks of a case deemed accepted, never accepted, stop: its refusal or
    withdrawal (a late one: the deeming stands, and so do the cards it earned)."""
    ends = [t for t in (case.facts.refused_at, case.closed_at, case.completed_at) if t is not None]
    return min(ends, default=None)


def _acceptance_periods(case: CaseView) -> list[tuple[Span, int | None, bool]]:
    """The case's acceptance periods in order: each, where it ended (the last one, left
    open, where the case ended unaccepted) and whether it is the last."""
    c = case.clocks
    acc = c.acceptance
    if acc is None or acc.start is None:
        return []
    spans = [s for s in c.acceptance_earlier if s.start is not None] + [acc]
    ended = _unaccepted_end(case) if acc.stop is None else None
    return [(s, _epoch(s.stop if s.stop is not None or i < len(spans) - 1 else ended),
             i == len(spans) - 1) for i, s in enumerate(spans)]  # fmt: skip


def _acceptance_clock(case: CaseView, deemed: tuple[int, int] | None) -> Span | None:
    """The acceptance clock: the period acceptance was deemed in, if it was (the case
    counts as accepted from then: a later period is not clocked), else the latest."""
    if deemed is not None:
        for span, _, _ in _acceptance_periods(case):
            if _epoch(span.start) == deemed[0]:
                return span
    return case.clocks.acceptance


# (calendar, receipt, acceptance days) -> the acceptance limit (NAT: none): a case waiting
# for acceptance asked the calendar at every batch and tick that decided it (a quarter
# of a live batch's deciding, bench_tailer 2026-12-07)
_DEEMED: Kept[tuple[Calendar, int, int], int] = Kept()


def deemed_for_the_set(cases: Sequence[CaseView], cal: Calendar, statute: Statute) -> list[int]:
    """The acceptance limits `_deemed` may ask of these cases, in one calendar call, kept."""
    days = statute.acceptance_days
    short = (days - 1) * 86400  # a period ended sooner asks nothing (`_deemed`)
    starts = [start for case in cases for span, stop, _ in _acceptance_periods(case)
              if (start := epoch(span.start)) is not None  # type: ignore[arg-type]
              and (stop is None or stop - start >= short)]  # fmt: skip
    keys = [(cal, s, days) for s in dict.fromkeys(starts) if (cal, s, days) not in _DEEMED]
    if keys:
        got = cal.deadline(np.asarray([k[1] for k in keys], dtype="datetime64[s]"), days,
                           errors="nat").astype(np.int64).tolist()  # fmt: skip
        _DEEMED.keep(keys, got)
    return [_DEEMED[(cal, s, days)] for s in starts]


_PLANS: dict[int, tuple[tuple[Rule, ...], tuple[list[ClockRule], bool, bool]]] = {}


def _plan(rules: Iterable[Rule]) -> tuple[list[ClockRule], bool, bool]:
    """A rule tuple's clock rules, whether they watch pauses, whether acceptance can be deemed.

    Remembered by the tuple's identity like `split_rules` (every case of a batch
    asks it of one of a few tuples).
    """
    if not isinstance(rules, tuple):
        return _plan_of(split_rules(rules)[0])
    hit = _PLANS.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        hit = _PLANS[id(rules)] = (rules, _plan_of(split_rules(rules)[0]))
    return hit[1]


def _plan_of(clock_rules: list[ClockRule]) -> tuple[list[ClockRule], bool, bool]:
    ons = {r.on for r in clock_rules}
    return (
        clock_rules,
        bool(ons & {"decision", "statutory", "step"}),
        bool(ons & {"decision", "statutory"}),
    )


def periods(
    case: CaseView,
    matter: Matter | None,
    rules: Iterable[Rule],
    cal: Calendar,
    statute: Statute = _STATUTE,
) -> list[Period]:
    """The periods of a case that its clock rules watch, running or stopped."""
    clock_rules, decision_like, may_deem = _plan(rules)
    if not clock_rules:
        return []
    out: list[Period] = []
    c = case.clocks
    case_id = case.case_id
    closed = _epoch(case.closed_at)
    pauses = _capped_pauses(cal, c.pauses, matter, statute) if decision_like else ()
    deemed = _deemed(cal, case, statute) if may_deem else None

    def add(
        rule: ClockRule,
        start_at: dt.datetime | int | None,
        stop_at: dt.datetime | None,
        limit: int | None,
        *,
        subject: str = "",
        extension: int = 0,
        pz: tuple[tuple[int, int | None], ...] = (),
        stops_on_close: bool = True,
        not_before: int | None = None,
        exts: tuple[tuple[int, int], ...] = (),
    ) -> None:
        if start_at is None or limit is None:
            return
        stop = None if stop_at is None else int(stop_at.timestamp())
        if stop is None and stops_on_close:
            stop = closed
        start = start_at if isinstance(start_at, int) else int(start_at.timestamp())
        out.append(Period(case_id, rule, subject, start, stop, int(limit), extension, pz,
                          not_before, exts))  # fmt: skip

    for rule in clock_rules:
        on = rule.on
        if on in _SPANS:
            clock = _acceptance_clock(case, deemed) if on == "acceptance" else getattr(c, on)
            if clock is not None:
                add(rule, clock.start, clock.stop, rule.limit_days)
        elif on == "supplement":
            s = c.supplement
            if s is not None:
                add(rule, s.start, s.stop, s.limit_days)
        elif on in ("decision", "statutory"):
            if on == "decision" and c.immediate is not None:
                # an immediate case's promised limit (0 days) is its immediate clock, which the
                # rule book (§4) cards yellow; a red supervision order on top was a double card
                continue
            _decision_period(add, rule, case, matter, cal, statute, pauses, deemed)
        elif on == "step":
            limits = matter.step_days if matter is not None else {}
            for name, step in sorted(c.steps.items()):
                if name in limits:
                    add(rule, step.start, step.stop, int(limits[name]), subject=name, pz=pauses)
        elif on == "pause":
            for p in c.pauses:
                add(rule, p.start, p.end, pause_allowance(p, matter, statute),
                    subject=subject_of(p.type, p.start))  # fmt: skip
        elif on in ("review_visit", "review"):
            for r in c.reviews:
                add(rule, r.start, r.visited if on == "review_visit" else r.stop, rule.limit_days,
                    stops_on_close=False, subject=subject_of("rating", r.start))  # fmt: skip
    return out


_SPANS = frozenset({"acceptance", "delivery", "immediate"})


def _decision_period(
    add: Callable[..., None],
    rule: ClockRule,
    case: CaseView,
    matter: Matter | None,
    cal: Calendar,
    statute: Statute,
    pauses: tuple[tuple[int, int | None], ...],
    deemed: tuple[int, int] | None,
) -> None:
    """The promised or statutory period: deemed acceptance, joint handling, extensions."""
    c = case.clocks
    clock = c.decision if rule.on == "decision" else c.statutory
    if clock is not None:
        start: int | None = epoch(clock.start) if clock.start is not None else None
        stop, limit = clock.stop, clock.limit_days
    elif deemed is not None and matter is not None:  # not accepted: deemed from receipt
        start, stop = None, _unaccepted_end(case)
        limit = matter.promised_days if rule.on == "decision" else matter.statutory_days
        if limit == 0:  # an immediate matter: its promise is the immediate clock (see periods)
            return
    else:
        return
    if rule.on == "statutory" and matter is not None and matter.joint:
        limit = statute.joint_statutory_days
    not_before = None
    if deemed is not None:
        start, not_before = deemed[0], deemed[1]
    if start is None or limit is None:
        return
    if rule.on == "statutory":
        exts = tuple((epoch(e.at), e.days) for e in c.extensions)
    else:
        exts = _extensions(cal, case, start, int(limit), pauses,
                           statute.extension_extends_promised)  # fmt: skip
    add(rule, start, stop, limit, extension=sum(d for _, d in exts), pz=pauses,
        not_before=not_before, exts=exts)  # fmt: skip
