"""The rule engine on the real 2024 calendar: one scenario per rule of docs/rule-book.md §4.

Instants are UTC; Beijing is UTC+8, so local 24:00 of day D is 16:00Z of D.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from monitor.calendar import load_calendar
from monitor.engine.cards import ExistingCard, NewCard
from monitor.engine.decide import decide_case
from monitor.rules.load import load_rules
from monitor.source.contract import Matter, SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView

MATTERS = {
    "M1": Matter("M1", "建筑工程施工许可", "住建局", 20, 5),
    "S": Matter(
        "S", "采矿许可", "自然资源局", 20, 10, pause_max_days={"survey": 3}, step_days={"审核": 2}
    ),
    "P": Matter("P", "收费事项", "市场监管局", 20, 10, free=False),
    "M0": Matter("M0", "个体工商户登记", "市场监管局", 20, 0),
}
SUB = {"window": "W1", "region": "R1", "channel": "window"}


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


@pytest.fixture(scope="module")
def rules():
    return load_rules("cards")


def z(text: str) -> int:
    """UTC seconds of a ``...Z``-less UTC ISO text."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


def case(events: list[tuple[str, str, dict[str, Any]]], matter: str = "M1") -> CaseView:
    evs = [
        SourceEvent(
            i,
            i,
            "C",
            kind,
            dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC),
            {"matter": matter, **SUB, **p} if kind == "submitted" else p,
        )
        for i, (kind, at, p) in enumerate(events, 1)
    ]
    return CaseView.from_state(reduce_case("C", evs, MATTERS))


def decide(cal, rules, view: CaseView, now: str, existing=()) -> list[NewCard]:
    m = MATTERS.get(view.matter or "")
    return decide_case(view, m, rules, cal, z(now), list(existing)).issue


def cards(issue: list[NewCard]) -> set[tuple[str, int, str]]:
    return {
        (
            c.rule,
            c.level,
            dt.datetime.fromtimestamp(c.issued_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
        for c in issue
    }


def had(
    rule: str, level: int, clock: str = "decision", at: str = "2024-01-01T00:00:00",
    subject: str = "",
):  # fmt: skip
    return ExistingCard(1, "C", clock, rule, level, "issued", z(at), subject)


ACCEPTED_FEB8 = [("submitted", "2024-02-08T01:00:00", {}), ("accepted", "2024-02-08T02:00:00", {})]


def test_decision_clock_blue_yellow_red_across_spring_festival(cal, rules):
    # docs/rule-book.md §3: accepted Thu Feb 8 10:00, 5 wd -> Feb 9, 18, 19, 20, 21 -> Feb 21 24:00
    view = case(ACCEPTED_FEB8)
    assert decide(cal, rules, view, "2024-02-19T03:59:59") == []
    # 50% = 2.5 wd: Feb 9, Feb 18 (adjusted working Sunday), half of Feb 19
    assert cards(decide(cal, rules, view, "2024-02-19T04:00:00")) == {
        ("decision_time", 1, "2024-02-19T04:00:00")
    }
    # 90% = 4.5, 1 wd left = 4.0: the earlier, end of Feb 20
    got = decide(cal, rules, view, "2024-02-20T16:00:00", [had("decision_time", 1)])
    assert cards(got) == {("decision_time", 2, "2024-02-20T16:00:00")}
    got = decide(cal, rules, view, "2024-02-21T16:00:00", [had("decision_time", 2)])
    assert cards(got) == {("decision_time", 3, "2024-02-21T16:00:00")}
    assert got[0].deadline == z("2024-02-21T16:00:00") and got[0].supervision


def test_statutory_clock_red_at_its_own_deadline(cal, rules):
    view = case(ACCEPTED_FEB8)
    red = had("decision_time", 3, at="2024-02-21T16:00:00")
    got = decide(cal, rules, view, "2024-03-13T16:00:00", [red])
    assert cards(got) == {("statutory_time", 3, "2024-03-13T16:00:00")}
    assert decide(cal, rules, view, "2024-03-13T15:59:59", [red]) == []


def test_acceptance_clock_counts_the_working_sunday(cal, rules):
    # submitted Sat Feb 3: Feb 4 (working Sunday), 5, 6, 7, 8 -> deadline Feb 8 24:00
    view = case([("submitted", "2024-02-03T02:00:00", {})])
    assert cards(decide(cal, rules, view, "2024-02-06T04:00:00")) == {
        ("acceptance_time", 1, "2024-02-06T04:00:00")
    }
    assert cards(
        decide(cal, rules, view, "2024-02-07T16:00:00", [had("acceptance_time", 1, "acceptance")])
    ) == {("acceptance_time", 2, "2024-02-07T16:00:00")}
    # not accepted by the limit: deemed accepted from receipt (Art. 32), so M1's promised
    # 5 wd, counted from receipt too, end with it
    assert cards(
        decide(cal, rules, view, "2024-02-08T16:00:00", [had("acceptance_time", 2, "acceptance")])
    ) == {
        ("acceptance_time", 3, "2024-02-08T16:00:00"),
        ("decision_time", 3, "2024-02-08T16:00:00"),
    }


def test_catch_up_issues_only_the_highest_level(cal, rules):
    view = case(ACCEPTED_FEB8)
    got = decide(cal, rules, view, "2024-02-22T09:00:00")  # daemon was away the whole time
    assert cards(got) == {("decision_time", 3, "2024-02-21T16:00:00")}


def test_second_supplement_request_breaks_tell_once(cal, rules):
    view = case(
        [
            ("submitted", "2024-03-04T02:00:00", {}),
            ("supplement_requested", "2024-03-04T03:00:00", {"items": ["身份证"]}),
            ("supplement_received", "2024-03-05T03:00:00", {}),
            ("supplement_requested", "2024-03-05T05:00:00", {"items": ["营业执照"]}),
        ]
    )
    got = [c for c in decide(cal, rules, view, "2024-03-05T06:00:00") if c.clock == "acceptance"]
    assert cards(got) == {("supplement_twice", 2, "2024-03-05T05:00:00")}


def test_pause_longer_than_its_maximum_across_national_day(cal, rules):
    # survey max 3 wd; suspended Fri 2024-09-27 10:00: Sep 29 (working Sunday), Sep 30,
    # then Oct 1-7 holiday, Oct 8 -> over at Oct 8 24:00
    view = case(
        [
            ("submitted", "2024-09-26T01:00:00", {}),
            ("accepted", "2024-09-26T02:00:00", {}),
            ("suspended", "2024-09-27T02:00:00", {"type": "survey", "notified_days": 3}),
        ],
        matter="S",
    )
    assert not [
        c for c in decide(cal, rules, view, "2024-10-08T15:59:59") if c.rule == "pause_overlong"
    ]
    got = [c for c in decide(cal, rules, view, "2024-10-08T16:00:00") if c.rule == "pause_overlong"]
    assert cards(got) == {("pause_overlong", 2, "2024-10-08T16:00:00")}
    assert got[0].detail["subject"] == got[0].subject == "survey@2024-09-27T02:00:00Z"


def test_pause_of_a_type_not_allowed(cal, rules):
    view = case(
        [
            ("submitted", "2024-03-04T01:00:00", {}),
            ("accepted", "2024-03-04T02:00:00", {}),
            ("suspended", "2024-03-05T02:00:00", {"type": "hearing", "notified_days": 5}),
        ],
        matter="S",
    )
    got = [c for c in decide(cal, rules, view, "2024-03-05T03:00:00") if c.clock == "decision"]
    assert cards(got) == {("pause_not_allowed", 2, "2024-03-05T02:00:00")}


@pytest.mark.parametrize(
    ("extensions", "reasons", "at"),
    [
        ([("2024-03-05T02:00:00", 12)], ["too_many_days"], "2024-03-05T02:00:00"),
        (
            [("2024-03-05T02:00:00", 5), ("2024-03-06T02:00:00", 5)],
            ["repeated"],
            "2024-03-06T02:00:00",
        ),
        # statutory 20 wd from Mon Mar 4 10:00 -> Apr 1 24:00; asked Apr 2 -> too late (Art. 42)
        ([("2024-04-02T02:00:00", 5)], ["after_deadline"], "2024-04-02T02:00:00"),
        # a second one, asked past Apr 1 but before the deadline the first moved: only repeated
        (
            [("2024-03-05T02:00:00", 5), ("2024-04-03T02:00:00", 5)],
            ["repeated"],
            "2024-04-03T02:00:00",
        ),
        # after the promised deadline (Mar 11 24:00) but within the statutory one: lawful
        ([("2024-03-12T02:00:00", 5)], None, None),
        ([("2024-03-11T02:00:00", 10)], None, None),
    ],
)
def test_irregular_extension_is_red(cal, rules, extensions, reasons, at):
    events = [("submitted", "2024-03-04T01:00:00", {}), ("accepted", "2024-03-04T02:00:00", {})]
    events += [("extended", t, {"days": d, "approver": "局长"}) for t, d in extensions]
    got = [
        c
        for c in decide(cal, rules, case(events), "2024-04-03T03:00:00", [had("decision_time", 3)])
        if c.rule == "extension_irregular"
    ]
    if reasons is None:
        assert got == []
    else:
        assert cards(got) == {("extension_irregular", 3, at)}
        assert got[0].detail["reasons"] == reasons


def test_extension_moves_the_deadline(cal, rules):
    view = case(
        [*ACCEPTED_FEB8, ("extended", "2024-02-19T02:00:00", {"days": 10, "approver": "局长"})]
    )
    # 15 wd from Feb 8: Feb 9, 18-23 (6), 26-Mar 1 (5), Mar 4, 5, 6 -> Mar 6 24:00
    assert not [
        c
        for c in decide(
            cal,
            rules,
            view,
            "2024-03-06T15:59:59",
            [had("decision_time", 2, at="2024-03-05T04:00:00")],
        )
        if c.rule == "decision_time"
    ]
    got = [
        c
        for c in decide(
            cal,
            rules,
            view,
            "2024-03-06T16:00:00",
            [had("decision_time", 2, at="2024-03-05T04:00:00")],
        )
        if c.rule == "decision_time"
    ]
    assert cards(got) == {("decision_time", 3, "2024-03-06T16:00:00")}


def test_pause_across_a_holiday_pushes_the_deadline(cal, rules):
    # accepted Mon Feb 5 10:00, 5 wd -> Feb 18 24:00; paused Fri Feb 9 12:00 to Mon Feb 19
    # 12:00 = 2 wd paused (Feb 9 pm, Feb 18, Feb 19 am) -> deadline Feb 20 24:00
    view = case(
        [
            ("submitted", "2024-02-05T01:00:00", {}),
            ("accepted", "2024-02-05T02:00:00", {}),
            ("suspended", "2024-02-09T04:00:00", {"type": "inspection", "notified_days": 3}),
            ("resumed", "2024-02-19T04:00:00", {}),
        ]
    )
    got = decide(cal, rules, view, "2024-02-20T16:00:00", [had("decision_time", 2)])
    assert cards(got) == {
        ("decision_time", 3, "2024-02-20T16:00:00"),
        ("pause_not_allowed", 2, "2024-02-09T04:00:00"),  # M1 lists no pause type
    }
    assert got[0].deadline == z("2024-02-20T16:00:00")


def test_delivery_clock_past_ten_working_days(cal, rules):
    view = case(
        [
            ("submitted", "2024-03-01T01:00:00", {}),
            ("accepted", "2024-03-01T02:00:00", {}),
            ("decided", "2024-03-04T02:00:00", {"result": "approve"}),
            ("completed", "2024-03-04T03:00:00", {}),
        ]
    )
    # 10 wd from Mon Mar 4: Mar 5-8, 11-15, 18 -> Mar 18 24:00
    assert not [c for c in decide(cal, rules, view, "2024-03-18T15:59:59") if c.clock == "delivery"]
    got = [c for c in decide(cal, rules, view, "2024-03-18T16:00:00") if c.clock == "delivery"]
    assert cards(got) == {("delivery_time", 3, "2024-03-18T16:00:00")}


def test_immediate_case_not_finished_the_same_day(cal, rules):
    view = case(
        [("submitted", "2024-03-04T01:00:00", {}), ("accepted", "2024-03-04T02:00:00", {})],
        matter="M0",
    )
    got = decide(cal, rules, view, "2024-03-04T16:00:00")
    # the yellow of docs/rule-book.md §4 only: not also a red "promised limit" with a supervision
    # order (the 0-day decision clock of an immediate case is its immediate clock)
    assert cards(got) == {("immediate_time", 2, "2024-03-04T16:00:00")}
    later = decide(cal, rules, view, "2024-03-06T16:00:00")
    assert {c.rule for c in later} == {"immediate_time"}
    done = case(
        [
            ("submitted", "2024-03-04T01:00:00", {}),
            ("accepted", "2024-03-04T02:00:00", {}),
            ("completed", "2024-03-04T08:00:00", {}),
        ],
        matter="M0",
    )
    assert decide(cal, rules, done, "2024-03-05T16:00:00") == []


def test_step_past_its_limit_while_the_case_is_on_time(cal, rules):
    base = [
        ("submitted", "2024-03-04T01:00:00", {}),
        ("accepted", "2024-03-04T02:00:00", {}),
        ("step_started", "2024-03-04T03:00:00", {"step": "审核"}),
    ]
    # 审核 limit 2 wd: Mar 5, 6 -> Mar 6 24:00; the case's own limit is 10 wd
    got = [
        c for c in decide(cal, rules, case(base, "S"), "2024-03-06T16:00:00") if c.clock == "step"
    ]
    assert cards(got) == {("step_time", 1, "2024-03-06T16:00:00")}
    assert got[0].detail["subject"] == "审核"
    # the case itself overdue: the step gets no card of its own
    late = decide(cal, rules, case(base, "S"), "2024-03-19T16:00:00", [had("decision_time", 3)])
    assert not [c for c in late if c.clock == "step"]


def test_fee_on_a_free_matter_and_not_on_a_paid_one(cal, rules):
    events = [
        ("submitted", "2024-03-04T01:00:00", {}),
        ("accepted", "2024-03-04T02:00:00", {}),
        ("fee_charged", "2024-03-04T05:00:00", {"amount": 50}),
    ]
    got = [c for c in decide(cal, rules, case(events), "2024-03-04T06:00:00")]
    assert cards(got) == {("fee_on_free_matter", 3, "2024-03-04T05:00:00")}
    assert decide(cal, rules, case(events, "P"), "2024-03-04T06:00:00") == []


def test_refusal_without_a_reason(cal, rules):
    bare = case([("submitted", "2024-03-04T01:00:00", {}), ("refused", "2024-03-04T05:00:00", {})])
    got = decide(cal, rules, bare, "2024-03-04T06:00:00")
    assert cards(got) == {("refusal_without_reason", 2, "2024-03-04T05:00:00")}
    assert got[0].close == "case_finished"  # a refused case is finished: the card is a record
    why = case(
        [
            ("submitted", "2024-03-04T01:00:00", {}),
            ("refused", "2024-03-04T05:00:00", {"reason": "不属于本机关职权范围"}),
        ]
    )
    assert decide(cal, rules, why, "2024-03-04T06:00:00") == []


def test_bad_review_visit_and_rectification(cal, rules):
    events = [
        ("submitted", "2024-03-01T01:00:00", {}),
        ("accepted", "2024-03-01T02:00:00", {}),
        ("completed", "2024-03-01T03:00:00", {}),
        ("rated", "2024-03-04T02:00:00", {"level": 1}),
    ]
    # visit within 1 wd: Mar 5 24:00; rectified within 15 wd: Mar 5-8, 11-15, 18-22, 25 -> Mar 25
    got = decide(cal, rules, case(events), "2024-03-05T16:00:00")
    assert cards(got) == {("review_visit", 2, "2024-03-05T16:00:00")}
    visit = had("review_visit", 2, "review", "2024-03-05T16:00:00", "rating@2024-03-04T02:00:00Z")
    got = decide(cal, rules, case(events), "2024-03-25T16:00:00", [visit])
    assert cards(got) == {("review_rectify", 3, "2024-03-25T16:00:00")}
    visited = [
        *events,
        ("review_visited", "2024-03-05T02:00:00", {}),
        ("review_rectified", "2024-03-20T02:00:00", {}),
    ]
    assert decide(cal, rules, case(visited), "2024-03-26T16:00:00") == []


def test_pledged_materials_not_supplied(cal, rules):
    events = [
        ("submitted", "2024-03-04T01:00:00", {}),
        ("accepted", "2024-03-04T02:00:00", {"pledged_days": 3}),
    ]
    got = [
        c
        for c in decide(cal, rules, case(events), "2024-03-07T16:00:00")
        if c.clock == "supplement"
    ]
    assert cards(got) == {("supplement_time", 2, "2024-03-07T16:00:00")}
    supplied = [*events, ("supplement_received", "2024-03-06T02:00:00", {})]
    assert not [
        c
        for c in decide(cal, rules, case(supplied), "2024-03-07T16:00:00")
        if c.clock == "supplement"
    ]


def test_finished_late_gets_red_dated_at_its_deadline_and_no_warnings(cal, rules):
    # completed Feb 23, past the Feb 21 24:00 deadline: the red records that crossing
    late = case([*ACCEPTED_FEB8, ("completed", "2024-02-23T02:00:00", {})])
    got = decide(cal, rules, late, "2024-03-01T00:00:00")
    assert cards(got) == {("decision_time", 3, "2024-02-21T16:00:00")}
    assert got[0].close == "period_finished"
    on_time = case([*ACCEPTED_FEB8, ("completed", "2024-02-20T02:00:00", {})])
    assert decide(cal, rules, on_time, "2024-03-01T00:00:00") == []  # 4 of 5 used: no warning


def test_late_event_that_moves_the_deadline_revokes_the_card(cal, rules):
    # a yellow card was issued at Feb 20 24:00; a pause reported late shows the case was
    # suspended Feb 9 12:00 - Feb 19 12:00, so at Feb 21 14:00 only 2.58 wd are used: past
    # blue (2.5) but not yellow (4): the yellow card's basis is gone
    view = case(
        [
            *ACCEPTED_FEB8,
            ("suspended", "2024-02-09T04:00:00", {"type": "inspection", "notified_days": 3}),
            ("resumed", "2024-02-19T04:00:00", {}),
        ]
    )
    yellow = ExistingCard(
        7, "C", "decision", "decision_time", 2, "issued", z("2024-02-20T16:00:00")
    )
    # the blue, crossed before the yellow, holds on the pause (its instant as a fresh run has it)
    fresh = decide_case(view, MATTERS["M1"], rules, cal, z("2024-02-21T06:00:00"), [])
    blue_at = next(c.issued_at for c in fresh.issue if c.rule == "decision_time")
    blue = ExistingCard(6, "C", "decision", "decision_time", 1, "issued", blue_at)
    d = decide_case(view, MATTERS["M1"], rules, cal, z("2024-02-21T06:00:00"), [blue, yellow])
    assert [(r.card_id, r.reason) for r in d.revoke] == [(7, "threshold_not_reached")]
    # no second blue: levels never fall (M1 allows no pause type: that is its own yellow)
    assert [c.rule for c in d.issue] == ["pause_not_allowed"]


def test_supervision_profile_yellow_when_overdue_red_five_days_later(cal):
    profile = load_rules("cards-supervision")
    view = case(ACCEPTED_FEB8)
    got = [
        c
        for c in decide(cal, profile, view, "2024-02-21T16:00:00", [had("decision_time", 1)])
        if c.rule == "decision_time"
    ]
    assert cards(got) == {("decision_time", 2, "2024-02-21T16:00:00")} and got[0].supervision
    # 5 wd after the limit: Feb 22, 23, 26, 27, 28 -> Feb 28 24:00
    got = [
        c
        for c in decide(cal, profile, view, "2024-02-28T16:00:00", [had("decision_time", 2)])
        if c.rule == "decision_time"
    ]
    assert cards(got) == {("decision_time", 3, "2024-02-28T16:00:00")} and not got[0].supervision


@pytest.mark.parametrize(
    ("accepted", "blue", "yellow", "red"),
    [
        # Fri 2025-01-24 10:00: Jan 26 (working Sunday), 27, then Spring Festival Jan 28 -
        # Feb 4 (the 13-day statutory schedule from 2025), Feb 5, 6, 7 -> Feb 7 24:00
        ("2025-01-24T02:00:00", "2025-02-05T04:00:00", "2025-02-06T16:00:00",
         "2025-02-07T16:00:00"),
        # Thu 2026-02-12 10:00: Feb 13, 14 (working Saturday), then Feb 15-23, Feb 24, 25, 26
        ("2026-02-12T02:00:00", "2026-02-24T04:00:00", "2026-02-25T16:00:00",
         "2026-02-26T16:00:00"),
    ],
)  # fmt: skip
def test_decision_clock_on_the_2025_and_2026_schedules(cal, rules, accepted, blue, yellow, red):
    start = dt.datetime.fromisoformat(accepted)
    view = case([("submitted", (start - dt.timedelta(hours=1)).isoformat(), {}),
                 ("accepted", accepted, {})])  # fmt: skip
    got = [c for c in decide(cal, rules, view, "2027-01-01T00:00:00") if c.clock == "decision"]
    assert cards(got) == {("decision_time", 3, red)}  # catch-up: only the highest
    assert cards(decide(cal, rules, view, blue)) == {("decision_time", 1, blue)}
    assert cards(decide(cal, rules, view, yellow, [had("decision_time", 1)])) == {
        ("decision_time", 2, yellow)
    }
    before = (dt.datetime.fromisoformat(blue) - dt.timedelta(seconds=1)).isoformat()
    assert decide(cal, rules, view, before) == []
