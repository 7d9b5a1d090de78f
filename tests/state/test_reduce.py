"""Case state is a pure function of the event set; bad events are rejected with a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.source.contract import Matter, SourceEvent
from monitor.state.case import CaseClocks, CaseFacts, Status
from monitor.state.reduce import reduce_case

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=UTC)  # Mon 10:00 Beijing
MATTERS = {
    "M1": Matter("M1", "建筑工程施工许可", "住建局", statutory_days=20, promised_days=5),
    "M0": Matter("M0", "即办事项", "市场监管局", statutory_days=20, promised_days=0),
}


def ev(i: int, kind: str, hours: float, case: str = "C1", **payload: object) -> SourceEvent:
    return SourceEvent(i, 1000 + i, case, kind, T0 + dt.timedelta(hours=hours), payload)


SUBMITTED = {"matter": "M1", "window": "W1", "region": "R1", "channel": "window"}


def lifecycle() -> list[SourceEvent]:
    return [
        ev(1, "submitted", 0, **SUBMITTED),
        ev(2, "supplement_requested", 1, items=["身份证复印件"]),
        ev(3, "supplement_received", 20),
        ev(4, "accepted", 22, pledged_days=3),
        ev(5, "suspended", 30, type="survey", notified_days=3),
        ev(6, "resumed", 80),
        ev(7, "extended", 90, days=5, approver="局长"),
        ev(8, "supplement_received", 95),
        ev(9, "step_started", 96, step="审核"),
        ev(10, "step_finished", 100, step="审核"),
        ev(11, "decided", 120, result="approve"),
        ev(12, "fee_charged", 121, amount=0),
        ev(13, "completed", 122),
        ev(14, "delivered", 130),
        ev(15, "rated", 131, level=2, comment="等待时间长"),
        ev(16, "review_visited", 140),
        ev(17, "review_rectified", 150),
    ]


def at(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def test_full_lifecycle():
    s = reduce_case("C1", lifecycle(), MATTERS)
    assert s.status is Status.DELIVERED  # the review events do not change the status
    assert (s.matter, s.department, s.window, s.region) == ("M1", "住建局", "W1", "R1")
    assert s.promised_days == 5 and s.statutory_days == 20 and not s.immediate
    assert s.supplement_requests == 1 and s.extension_days == 5 and s.extensions == 1
    assert s.pledged_days == 3 and s.rating == 2 and s.event_count == 17
    assert [(p.type, p.start, p.end) for p in s.pauses] == [
        ("survey", T0 + dt.timedelta(hours=30), T0 + dt.timedelta(hours=80))
    ]
    assert s.paused_since is None
    c = s.clocks.as_json()  # the stored form (jiancha.cases.clocks): unchanged since 0.1
    # acceptance restarted at the supplement and stopped at acceptance
    assert c["acceptance"] == {"start": at(20), "stop": at(22)}
    assert c["decision"]["start"] == at(22) and c["decision"]["stop"] == at(122)
    assert c["decision"]["limit_days"] == 5 and c["statutory"]["limit_days"] == 20
    assert c["decision"]["extensions"] == [{"days": 5, "approver": "局长", "at": at(90)}]
    assert c["decision"]["pauses"][0]["type"] == "survey"
    assert c["delivery"] == {"start": at(120), "stop": at(130)}
    assert c["supplement"] == {"start": at(22), "stop": at(95), "limit_days": 3}
    assert c["step"] == {"审核": {"start": at(96), "stop": at(100)}}
    assert c["review"] == {"start": at(131), "visited": at(140), "stop": at(150)}
    assert "immediate" not in c
    typed = s.clocks
    assert typed.decision is not None and typed.decision.start == T0 + dt.timedelta(hours=22)
    assert typed.review is not None and typed.review.visited == T0 + dt.timedelta(hours=140)
    assert typed.steps["审核"].stop == T0 + dt.timedelta(hours=100)
    assert typed.extension_days == 5 and typed.extensions[0].approver == "局长"
    assert s.facts.as_json() == {
        "supplement_requests": [at(1)],
        "fees": [{"at": at(121), "amount": 0.0}],
        "refusal": {},
    }


def test_stored_clocks_and_facts_read_back_as_they_were():
    """A case row's JSON parses back into the very values the reduction gave."""
    s = reduce_case("C1", lifecycle(), MATTERS)
    assert CaseClocks.from_json(s.clocks.as_json()) == s.clocks
    assert CaseFacts.from_json(s.facts.as_json()) == s.facts
    refused = reduce_case(
        "C9",
        [ev(1, "submitted", 0, case="C9", **SUBMITTED), ev(2, "refused", 1, case="C9")],
        MATTERS,
    )
    assert refused.facts.refused_at == T0 + dt.timedelta(hours=1)
    assert refused.facts.refusal_reason == ""
    assert CaseFacts.from_json(refused.facts.as_json()) == refused.facts
    assert CaseClocks.from_json(None) == CaseClocks() and CaseFacts.from_json({}) == CaseFacts()


def test_an_instant_is_written_at_the_offset_it_has():
    """The stored text of an instant is its own: UTC as UTC (kept, the same text every
    time), another offset as given, even right after the equal UTC instant was written."""
    from monitor.state.case import Span

    utc = T0 + dt.timedelta(hours=3)
    cst = utc.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert cst == utc
    first = Span(utc, None).as_json()
    assert first == {"start": utc.isoformat(), "stop": None} == Span(utc, None).as_json()
    assert first["start"].endswith("+00:00")
    assert Span(cst, utc).as_json() == {"start": cst.isoformat(), "stop": utc.isoformat()}
    assert Span(cst, None).as_json()["start"].endswith("+08:00")


def canonical(state):
    return dataclasses.asdict(state)


@settings(max_examples=200, deadline=None)
@given(st.permutations(lifecycle()), st.lists(st.integers(0, 16), max_size=5))
def test_any_delivery_order_gives_the_same_state(order, repeats):
    expected = canonical(reduce_case("C1", lifecycle(), MATTERS))
    delivered = list(order) + [order[i] for i in repeats]  # duplicates too
    assert canonical(reduce_case("C1", delivered, MATTERS)) == expected


def test_resumed_before_suspended_and_submitted_after_accepted():
    in_order = [
        ev(1, "submitted", 0, **SUBMITTED),
        ev(2, "accepted", 1),
        ev(3, "suspended", 5, type="expert_review", notified_days=2),
        ev(4, "resumed", 30),
    ]
    late = [in_order[1], in_order[3], in_order[2], in_order[0]]
    assert canonical(reduce_case("C1", late, MATTERS)) == canonical(
        reduce_case("C1", in_order, MATTERS)
    )
    # the resume alone (its suspend not yet delivered) leaves no pause and no crash
    partial = reduce_case("C1", in_order[:2] + in_order[3:], MATTERS)
    assert partial.pauses == [] and partial.status is Status.ACCEPTED


def test_a_resume_without_a_type_ends_every_open_pause_a_typed_one_its_own():
    """An untyped resume resumes the case: were it to end only the latest open pause, a pause
    that arrives late but began before it would take it over, and the one it had ended
    (its card closed) would run again."""
    base = [ev(1, "submitted", 0, **SUBMITTED), ev(2, "accepted", 1),
            ev(3, "suspended", 5, type="survey", notified_days=2),
            ev(4, "suspended", 8, type="hearing", notified_days=1)]  # fmt: skip
    untyped = reduce_case("C1", [*base, ev(5, "resumed", 30)], MATTERS)
    assert [(p.type, p.end) for p in untyped.pauses] == [
        ("survey", T0 + dt.timedelta(hours=30)), ("hearing", T0 + dt.timedelta(hours=30))
    ]  # fmt: skip
    typed = reduce_case("C1", [*base, ev(5, "resumed", 30, type="survey")], MATTERS)
    assert [(p.type, p.end) for p in typed.pauses] == [
        ("survey", T0 + dt.timedelta(hours=30)), ("hearing", None)
    ]  # fmt: skip
    # the survey's end does not depend on whether the hearing had arrived yet
    early = reduce_case("C1", [*base[:3], ev(5, "resumed", 30)], MATTERS)
    assert early.pauses[0].end == untyped.pauses[0].end


def test_a_typed_resume_whose_pause_is_not_open_ends_nothing_until_that_pause_arrives():
    """Not "the latest open pause" instead: the hearing arriving late would take the resume
    back from the survey, which would run again behind its closed card."""
    base = [ev(1, "submitted", 0, **SUBMITTED), ev(2, "accepted", 1),
            ev(3, "suspended", 5, type="survey", notified_days=2)]  # fmt: skip
    resume = ev(5, "resumed", 30, type="hearing")
    before = reduce_case("C1", [*base, resume], MATTERS)
    assert [(p.type, p.end) for p in before.pauses] == [("survey", None)]
    hearing = ev(4, "suspended", 8, type="hearing", notified_days=1)
    after = reduce_case("C1", [*base, hearing, resume], MATTERS)
    assert [(p.type, p.end) for p in after.pauses] == [
        ("survey", None), ("hearing", T0 + dt.timedelta(hours=30))
    ]  # fmt: skip
    # a pause of its type at the resume's own instant (sorted after it) is ended by it ...
    same = reduce_case("C1", [*base, resume, ev(6, "suspended", 30, type="hearing",
                                                notified_days=1)], MATTERS)  # fmt: skip
    assert same.pauses[-1] == same.pauses[-1]._replace(
        type="hearing", end=T0 + dt.timedelta(hours=30)
    )
    # ... one of another type is not
    other = reduce_case("C1", [*base, resume, ev(6, "suspended", 30, type="inspection",
                                                 notified_days=1)], MATTERS)  # fmt: skip
    assert [(p.type, p.end) for p in other.pauses][-1] == ("inspection", None)


def test_open_pause_and_immediate_case():
    s = reduce_case(
        "C2",
        [
            ev(1, "submitted", 0, case="C2", **{**SUBMITTED, "matter": "M0"}),
            ev(2, "accepted", 1, case="C2"),
            ev(3, "suspended", 2, case="C2", type="inspection", notified_days=1),
        ],
        MATTERS,
    )
    assert s.immediate and s.clocks.immediate is not None and s.clocks.immediate.stop is None
    assert s.paused_since == T0 + dt.timedelta(hours=2)
    assert s.clocks.pauses[0].end is None


def test_events_without_submission_are_an_orphan():
    s = reduce_case("C3", [ev(1, "accepted", 1, case="C3")], MATTERS)
    assert s.status is Status.ORPHAN and s.department is None


def test_supplement_after_acceptance_keeps_status():
    s = reduce_case(
        "C1",
        [
            ev(1, "submitted", 0, **SUBMITTED),
            ev(2, "accepted", 1),
            ev(3, "supplement_requested", 2, items=["a"]),
            ev(4, "supplement_requested", 3, items=["b"]),
        ],
        MATTERS,
    )
    assert s.status is Status.ACCEPTED and s.supplement_requests == 2


def test_accepted_promised_days_override():
    s = reduce_case(
        "C1", [ev(1, "submitted", 0, **SUBMITTED), ev(2, "accepted", 1, promised_days=0)], MATTERS
    )
    assert s.promised_days == 0 and s.immediate
