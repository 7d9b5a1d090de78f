"""The set-wise decisions equal the reference's, case by case: a property over random batches.

`decide_cases` times the periods of every case of a batch together (over
arrays where a period has no pause) and fills every card's detail in one
calendar call; `decide_case` walks one case in Python. For random batches
of random case histories (every clock rule of rules/cards.toml: acceptance,
补正, decision with pauses, extensions, deemed acceptance and 即办,
statutory, steps, pauses, reviews; withdrawals; procedural facts) and the
cards those cases already have (the reference's own cards of an earlier
instant, some revoked or closed, some moved to another instant so they are
wrong), both must decide exactly the same: cards with their details,
closings, revocations, running periods with their pauses, wake-ups; and
the figures `decide_cases` builds with the decisions (``figures=True``)
must be `case_figures`'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.calendar import load_calendar
from monitor.engine import checks
from monitor.engine.cards import CaseDecision, ExistingCard
from monitor.engine.decide import decide_case, decide_cases, provisional_at, provisional_set
from monitor.engine.figures import case_figures
from monitor.rules.load import load_rules
from monitor.source.contract import Matter, SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView

CAL = load_calendar("cn")
RULES = load_rules("cards")
MATTERS = {
    "M1": Matter("M1", "建筑工程施工许可", "住建局", 20, 5),
    "M2": Matter("M2", "食品经营许可", "市场监管局", 20, 10, pause_max_days={"survey": 3}),
    "M0": Matter("M0", "个体工商户登记", "市场监管局", 20, 0),
    "S": Matter(
        "S",
        "采矿许可",
        "自然资源局",
        20,
        10,
        pause_max_days={"survey": 3},
        step_days={"审核": 2},
        joint=True,
    ),
    "P": Matter("P", "收费事项", "市场监管局", 20, 10, free=False),
}
# Thu 2024-09-26 09:00 Beijing: National Day's week of rest is ahead; a case of October
# 2027 counts on a year whose holidays are not published yet (its cards' details say so)
T0 = dt.datetime(2024, 9, 26, 1, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
SUB = {"window": "W1", "region": "R1", "channel": "window"}

Hist = list[tuple[str, int, dict[str, Any]]]


@st.composite
def history(draw: st.DrawFn) -> Hist:
    """(kind, hours after T0, payload) of one case, in business order."""
    t = draw(st.sampled_from([0, 3, 17, 40, 200, 27_000]))  # 27,000 h: 2027
    out: Hist = [("submitted", t, {**SUB, "matter": draw(st.sampled_from(sorted(MATTERS)))})]
    if draw(st.booleans()):
        t += draw(st.integers(1, 30))
        out.append(("supplement_requested", t, {"items": ["图纸"]}))
        if draw(st.integers(0, 3)) == 0:
            t += draw(st.integers(1, 30))
            out.append(("supplement_requested", t, {"items": ["证明"]}))
        t += draw(st.integers(1, 60))
        out.append(("supplement_received", t, {}))
    if draw(st.integers(0, 9)) < 8:
        t += draw(st.integers(1, 200))  # sometimes past the acceptance limit: deemed
        out.append(("accepted", t, draw(st.sampled_from([{}, {"pledged_days": 2}]))))
        if draw(st.booleans()):
            t += draw(st.integers(0, 30))
            out.append(("step_started", t, {"step": "审核"}))
            if draw(st.booleans()):
                t += draw(st.integers(1, 90))
                out.append(("step_finished", t, {"step": "审核"}))
        for _ in range(draw(st.integers(0, 2))):
            t += draw(st.integers(0, 60))
            kind = draw(st.sampled_from(["survey", "hearing"]))
            out.append(("suspended", t, {"type": kind, "notified_days": draw(st.integers(0, 4))}))
            if draw(st.booleans()):
                t += draw(st.integers(0, 100))
                out.append(("resumed", t, {}))
        for _ in range(draw(st.integers(0, 2))):
            t += draw(st.integers(1, 150))
            out.append(("extended", t, {"days": draw(st.integers(1, 15)), "approver": "局长"}))
        if draw(st.integers(0, 5)) == 0:
            t += draw(st.integers(1, 10))
            out.append(("fee_charged", t, {"amount": 100}))
        if draw(st.booleans()):
            t += draw(st.integers(1, 300))
            out.append(("completed", t, {}))
            if draw(st.booleans()):
                t += draw(st.integers(1, 50))
                out.append(("rated", t, {"level": draw(st.integers(1, 5))}))
                if draw(st.booleans()):
                    out.append(("review_visited", t + draw(st.integers(1, 100)), {}))
    elif draw(st.booleans()):
        out.append(("refused", t + draw(st.integers(1, 100)), {"reason": draw(st.sampled_from(
            ["", "材料不符"]))}))  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        out.append(("withdrawn", t + draw(st.integers(1, 100)), {}))
    return out


def view_of(case_id: str, hist: Hist) -> CaseView:
    events = [SourceEvent(i, i, case_id, kind, T0 + h * HOUR, p)
              for i, (kind, h, p) in enumerate(hist, 1)]  # fmt: skip
    return CaseView.from_state(reduce_case(case_id, events, MATTERS))


def had(d: CaseDecision, fate: list[int], first_id: int) -> list[ExistingCard]:
    """The reference's cards of an earlier instant as the ledger holds them, some changed
    since: 0 as issued, 1 closed, 2 revoked, 3 moved an hour (so wrong at its instant),
    4 of a rule the rule file no longer has, 5 a level lower (a higher one is then due)."""
    out = []
    for n, c in enumerate(d.issue):
        what = fate[n % len(fate)]
        status = {1: "closed", 2: "revoked"}.get(what, "issued")
        at = c.issued_at + (3600 if what == 3 else 0)
        rule = "retired_rule" if what == 4 else c.rule
        level = max(1, c.level - 1) if what == 5 else c.level
        out.append(ExistingCard(first_id + n, c.case_id, c.clock, rule, level, status, at,
                                c.subject))  # fmt: skip
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hists=st.lists(history(), min_size=1, max_size=8),
    before=st.integers(0, 400),
    after=st.integers(0, 2000),
    fate=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    running=st.booleans(),
)
def test_setwise_decides_as_the_reference(
    hists: list[Hist], before: int, after: int, fate: list[int], running: bool
) -> None:
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    views = [v for v in views if v.status != "orphan"]
    inputs = []
    for i, v in enumerate(views):
        m = MATTERS.get(v.matter or "")
        earlier = int((T0 + (hists[i][0][1] + before) * HOUR).timestamp())
        old = decide_case(v, m, RULES, CAL, earlier, [], running=True)
        inputs.append((v, m, had(old, fate, 1000 * i)))
    now = int((T0 + (hists[0][0][1] + before + after) * HOUR).timestamp())
    want = [decide_case(v, m, RULES, CAL, now, ex, running=running) for v, m, ex in inputs]
    checks._AS_ASKED.clear()  # the set answers its extensions' checks itself
    got = decide_cases(inputs, RULES, CAL, now, running=running)
    assert got == want
    # the details are plain data, equal key by key (a NaN would not be equal to itself)
    assert [[c.detail for c in d.issue] for d in got] == [[c.detail for c in d.issue]
                                                          for d in want]  # fmt: skip
    assert decide_cases(inputs, RULES, CAL, now, running=running, setwise=False) == want
    # the same cases with no cards yet: those without pauses are decided off the columns
    fresh = [(v, m, []) for v, m, _ in inputs]
    assert decide_cases(fresh, RULES, CAL, now, running=running) == [
        decide_case(v, m, RULES, CAL, now, [], running=running) for v, m, _ in fresh
    ]
    # the figures built with the decisions' periods are `case_figures`'s, nothing else moves
    with_figures = decide_cases(inputs, RULES, CAL, now, running=running, figures=True)
    figs = case_figures([(v, m) for v, m, _ in inputs], CAL, RULES.statute)
    assert [d.outcome for d in with_figures] == [(f.deadline, f.outcome or "") for f in figs]
    assert [replace(d, outcome=None) for d in with_figures] == want


def test_a_batch_issues_cards_with_every_detail() -> None:
    """The property above is not vacuous: a batch where cards are due, with their details."""
    hists: list[Hist] = [
        [("submitted", 0, {**SUB, "matter": "M1"}), ("accepted", 2, {})],
        [
            ("submitted", 0, {**SUB, "matter": "M2"}),
            ("accepted", 2, {}),
            ("suspended", 20, {"type": "survey", "notified_days": 0}),
        ],
        [("submitted", 27_000, {**SUB, "matter": "M1"}), ("accepted", 27_002, {})],
    ]
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    inputs = [(v, MATTERS.get(v.matter or ""), []) for v in views]
    now = int((T0 + 28_000 * HOUR).timestamp())
    got = decide_cases(inputs, RULES, CAL, now)
    assert got == [decide_case(v, m, RULES, CAL, now, ex) for v, m, ex in inputs]
    by_case = {d.issue[0].case_id: d.issue for d in got if d.issue}
    assert set(by_case) == {"C0", "C1", "C2"}
    red = next(c for c in by_case["C0"] if c.rule == "decision_time")
    assert red.level == 3 and red.detail["used_days"] > red.detail["limit_days"]
    paused = [c for c in by_case["C1"] if c.rule == "pause_overlong"]
    assert paused and paused[0].detail["subject"].startswith("survey@")
    assert "provisional" not in red.detail
    assert all(c.detail["provisional"] for c in by_case["C2"])  # 2027: not published
    assert provisional_at(CAL, by_case["C2"][0].deadline or 0)


def test_a_batch_closes_and_revokes_as_the_reference() -> None:
    """Not vacuous either: cards of an earlier instant closed, revoked, superseded, both ways.

    Issued at the earlier instant: the cards of a case completed since (closed with
    its period), cards moved off their instant (revoked: wrong at their instant),
    cards of a rule the rule file no longer has (revoked).
    """
    hists: list[Hist] = [
        [("submitted", 0, {**SUB, "matter": "M1"}), ("accepted", 2, {}), ("completed", 600, {})],
        [("submitted", 0, {**SUB, "matter": "M1"}), ("accepted", 2, {})],
        [("submitted", 0, {**SUB, "matter": "P"}), ("accepted", 2, {}),
         ("fee_charged", 5, {"amount": 100})],
    ]  # fmt: skip
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    earlier = int((T0 + 450 * HOUR).timestamp())
    now = int((T0 + 700 * HOUR).timestamp())
    inputs = []
    for i, (v, fate) in enumerate(zip(views, ([0], [3], [4]), strict=True)):
        m = MATTERS.get(v.matter or "")
        old = decide_case(v, m, RULES, CAL, earlier, [], running=True)
        assert old.issue
        inputs.append((v, m, had(old, fate, 1000 * i)))
    want = [decide_case(v, m, RULES, CAL, now, ex) for v, m, ex in inputs]
    assert decide_cases(inputs, RULES, CAL, now) == want
    assert decide_cases(inputs, RULES, CAL, now, setwise=False) == want
    closed = {c.reason for c in want[0].close}
    revoked = {c.reason for d in want[1:] for c in d.revoke}
    assert "period_finished" in closed or "case_finished" in closed
    assert {"threshold_moved", "rule_removed"} <= revoked


def test_provisional_outside_the_calendar_is_true() -> None:
    inside = int(T0.timestamp())
    far = int(dt.datetime(2300, 1, 1, tzinfo=dt.UTC).timestamp())
    assert provisional_set(CAL, [inside, far, inside]) == [False, True, False]
    assert provisional_set(CAL, []) == []


def test_periods_sharing_a_subject_are_walked_as_the_reference() -> None:
    """Two ratings at one instant: two periods per review rule with one subject, no pause.

    Off the columns each period would card alone; the walk merges their levels
    and cards the subject once. Both paths must give that one card.
    """
    hists: list[Hist] = [
        [("submitted", 0, {**SUB, "matter": "M1"}), ("accepted", 2, {}), ("completed", 50, {}),
         ("rated", 60, {"level": 1}), ("rated", 60, {"level": 2})],
    ]  # fmt: skip
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    inputs = [(v, MATTERS.get(v.matter or ""), []) for v in views]
    now = int((T0 + 2000 * HOUR).timestamp())
    want = [decide_case(v, m, RULES, CAL, now, ex) for v, m, ex in inputs]
    assert decide_cases(inputs, RULES, CAL, now) == want
    reviews = [c for c in want[0].issue if c.rule.startswith("review")]
    assert reviews and len({(c.rule, c.subject) for c in reviews}) == len(reviews)


def test_a_sets_extension_checks_take_one_calendar_call(monkeypatch) -> None:
    """The irregular-extension check of every case of a set: their deadlines as asked in
    one call, each case's card as decided alone (after the deadline, too many days)."""
    ext = {"approver": "局长"}
    hists: list[Hist] = [
        [("submitted", 0, {**SUB, "matter": m}), ("accepted", 2, {}),
         ("suspended", 30, {"type": "survey", "notified_days": 2}), ("resumed", 80, {}),
         ("extended", at, {**ext, "days": days}), ("extended", at + 24, {**ext, "days": 5})]
        for m, at, days in (("M1", 100, 5), ("M2", 900, 5), ("S", 200, 12), ("M1", 50, 11))
    ]  # fmt: skip
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    inputs = [(v, MATTERS.get(v.matter or ""), []) for v in views]
    now = int((T0 + 1200 * HOUR).timestamp())
    want = []
    for v, m, ex in inputs:
        checks._AS_ASKED.clear()
        want.append(decide_case(v, m, RULES, CAL, now, ex))
    calls: list[int] = []
    real = checks.deadlines_as_of

    def counting(cal, ps, ats):  # type: ignore[no-untyped-def]
        calls.append(len(ps))
        return real(cal, ps, ats)

    monkeypatch.setattr(checks, "deadlines_as_of", counting)
    checks._AS_ASKED.clear()
    assert decide_cases(inputs, RULES, CAL, now) == want
    assert calls == [8]  # two extensions of each of the four cases
    irregular = {c.case_id: c.detail["reasons"] for d in want for c in d.issue
                 if c.rule == "extension_irregular"}  # fmt: skip
    assert irregular == {"C0": ["repeated"], "C1": ["after_deadline"],  # its first already
                         "C2": ["too_many_days", "repeated"],  # joint (Art. 26): 15 days
                         "C3": ["too_many_days"]}  # fmt: skip


def test_a_sets_deemed_acceptances_take_one_calendar_call(monkeypatch) -> None:
    """Cases waiting for acceptance (Art. 32): the acceptance limit of each asked of the
    calendar for the set at once and kept, each case decided as alone."""
    from monitor.clocks import periods as periods_mod

    hists: list[Hist] = [
        [("submitted", h, {**SUB, "matter": "M1"})] for h in (0, 30, 30, 400)
    ] + [[("submitted", 0, {**SUB, "matter": "M2"}), ("accepted", 300, {})],  # late: deemed
         [("submitted", 0, {**SUB, "matter": "M2"}), ("accepted", 20, {})]]  # fmt: skip
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    inputs = [(v, MATTERS.get(v.matter or ""), []) for v in views]
    now = int((T0 + 1200 * HOUR).timestamp())
    want = []
    for v, m, ex in inputs:
        periods_mod._DEEMED.clear()
        want.append(decide_case(v, m, RULES, CAL, now, ex))
    kept: list[int] = []
    real = periods_mod._DEEMED.keep

    def counting(keys, got):  # type: ignore[no-untyped-def]
        kept.append(len(keys))
        return real(keys, got)

    monkeypatch.setattr(periods_mod._DEEMED, "keep", counting)
    periods_mod._DEEMED.clear()
    assert decide_cases(inputs, RULES, CAL, now) == want
    assert kept == [3]  # receipts at 0, 30 and 400; one accepted within a day asks nothing
    deemed = {c.case_id for d in want for c in d.issue if c.rule == "decision_time"}
    assert {"C0", "C4"} <= deemed  # never accepted, accepted late: both deemed
    assert decide_cases(inputs, RULES, CAL, now) == want  # kept: no call at all
    assert kept == [3]


def test_a_case_decided_alone_is_deemed_in_its_first_late_acceptance_period() -> None:
    """Decided alone, a case asks the calendar for its own acceptance periods: the one
    past its limit (a late 补正, then the materials) is where acceptance is deemed, as for
    its set, not the period the materials restarted."""
    from monitor.clocks import periods as periods_mod

    hist: Hist = [("submitted", 0, {**SUB, "matter": "M1"}),
                  ("supplement_requested", 400, {"items": ["图纸"]}),
                  ("supplement_received", 420, {})]  # fmt: skip
    view = view_of("C0", hist)
    now = int((T0 + 1200 * HOUR).timestamp())
    periods_mod._DEEMED.clear()
    alone = decide_case(view, MATTERS["M1"], RULES, CAL, now, [])
    periods_mod._DEEMED.clear()
    assert [alone] == decide_cases([(view, MATTERS["M1"], [])], RULES, CAL, now)
    receipt = int(T0.timestamp())
    got = periods_mod._deemed(CAL, view, RULES.statute)
    assert got is not None and got[0] == receipt  # the first period's receipt
    assert [c.rule for c in alone.issue if c.rule == "decision_time"] == ["decision_time"]


def test_a_sets_cards_in_doubt_are_judged_in_one_calendar_call(monkeypatch) -> None:
    """Cards no longer due at their instant are judged on the facts of that instant
    (`_was_right`): for the set at once, each at its own instant, as one by one.

    Of each case's cards from an earlier instant, some moved an hour (wrong: revoked),
    some a level lower (right at their own instant: kept, the higher one issued)."""
    from monitor.engine import decide as decide_mod

    hists: list[Hist] = [
        [("submitted", 0, {**SUB, "matter": m}), ("accepted", 2, {})] for m in ("M1", "M2", "S")
    ] + [[("submitted", 0, {**SUB, "matter": "M2"}), ("accepted", 2, {}),
          ("suspended", 30, {"type": "survey", "notified_days": 2}),
          ("resumed", 60, {"type": "survey"})]]  # fmt: skip
    views = [view_of(f"C{i}", h) for i, h in enumerate(hists)]
    earlier = int((T0 + 450 * HOUR).timestamp())
    now = int((T0 + 700 * HOUR).timestamp())
    inputs = []
    for i, v in enumerate(views):
        m = MATTERS.get(v.matter or "")
        old = decide_case(v, m, RULES, CAL, earlier, [], running=True)
        inputs.append((v, m, had(old, [3, 5, 0], 1000 * i)))
    want = [decide_case(v, m, RULES, CAL, now, ex) for v, m, ex in inputs]
    judged: list[int] = []
    real = decide_mod._were_right

    def counting(checks, cal):  # type: ignore[no-untyped-def]
        judged.append(len(checks))
        return real(checks, cal)

    monkeypatch.setattr(decide_mod, "_were_right", counting)
    assert decide_cases(inputs, RULES, CAL, now) == want
    in_doubt = sum(1 for d in want for _ in d.revoke)
    assert len(judged) == 1 and judged[0] >= in_doubt >= len(views)
    reasons = {c.reason for d in want for c in d.revoke}
    assert "threshold_moved" in reasons
