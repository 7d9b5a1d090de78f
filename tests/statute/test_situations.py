"""The statutory situations of docs/rule-book.md §8, through the public path.

Events go into the source table, ``jiancha evaluate --now`` runs, and the
cards are read back from ``jiancha.cards``, on the real 2024 calendar.
Instants are UTC; Beijing is UTC+8. Counting starts the day after the
clock starts: a case accepted Mon 2024-03-04 has its 5 promised working
days on Mar 5, 6, 7, 8 and 11, so its promised deadline is Mar 11 24:00
Beijing = 2024-03-11T16:00Z.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from monitor import db
from monitor.cli import main
from tests.sourcekit import write

SUB = {"window": "W1", "region": "R1", "channel": "window"}
# (code, name, department, statutory, promised, free, joint, step_days, pause_max_days)
EXTRA_MATTERS = [
    ("MJ", "联合审批事项", "发改委", 20, 40, True, True, {}, {}),
    ("MP", "矿产资源勘查许可", "自然资源局", 20, 5, True, False, {},
     {"survey": 10, "hearing": 1}),
]  # fmt: skip


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def dsn(sync_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.setenv(db.DSN_ENV, sync_dsn)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)

    async def go() -> None:
        async with db.open_loop(), await db.connect(sync_dsn) as conn:
            await conn.executemany(
                "INSERT INTO matters (code, name, department, statutory_days, promised_days, "
                "free, joint, step_days, pause_max_days) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb) "
                "ON CONFLICT (code) DO NOTHING",
                EXTRA_MATTERS,
            )

    trio.run(go)
    return sync_dsn


def put(dsn: str, *rows: tuple[str, str, str, dict[str, Any]]) -> None:
    async def go() -> None:
        async with db.open_loop(), await db.connect(dsn) as conn:
            await write(conn, [(c, k, z(at), p) for c, k, at, p in rows])

    trio.run(go)


def query(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        async with db.open_loop(), await db.connect(dsn) as conn:
            return [tuple(r) for r in await conn.fetch(sql, *args)]

    return trio.run(go)


def evaluate(dsn: str, now: str, *extra: str) -> dict[str, Any]:
    out = io.StringIO()
    code = main(["evaluate", "--now", now + "Z", "--source-dsn", dsn, "--json", *extra], out=out)
    assert code == 0, out.getvalue()
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def cards(dsn: str, rule: str | None = None, case: str | None = None) -> list[tuple[Any, ...]]:
    """(case, rule, subject, level, issued_at, status) ordered by case, rule, issued_at."""
    # the subject as the ledger has it (read so that the same test runs on older schemas)
    return query(
        dsn,
        "SELECT case_id, rule, coalesce(to_jsonb(c)->>'subject', '') AS subject, level, "
        "issued_at, status FROM jiancha.cards c "
        "WHERE ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR case_id = $2) "
        "ORDER BY case_id, rule, subject, issued_at, level",
        rule,
        case,
    )


def submitted(cid: str, at: str, matter: str = "M1") -> tuple[str, str, str, dict[str, Any]]:
    return (cid, "submitted", at, {**SUB, "matter": matter})


def accepted_mar4(cid: str, matter: str = "M1", **payload: Any) -> list[tuple[str, str, str, dict]]:
    """Submitted and accepted Mon 2024-03-04 (09:00 and 10:00 Beijing)."""
    return [submitted(cid, "2024-03-04T01:00:00", matter),
            (cid, "accepted", "2024-03-04T02:00:00", payload)]  # fmt: skip


PROMISED_RED = z("2024-03-11T16:00:00")  # M1 accepted Mar 4: 5 wd end Mar 11 24:00


# --- 1. revoked, then crossed again -------------------------------------------------


def test_late_pause_revokes_the_red_and_the_moved_deadline_issues_a_new_one(dsn: str) -> None:
    put(dsn, *accepted_mar4("C1"))
    evaluate(dsn, "2024-03-12T02:00:00")
    assert cards(dsn, "decision_time") == [
        ("C1", "decision_time", "", "red", PROMISED_RED, "issued")
    ]
    # reported late: a survey Wed Mar 6 10:00 - Thu Mar 7 10:00 (1 wd), before the crossing
    put(dsn, ("C1", "suspended", "2024-03-06T02:00:00", {"type": "survey", "notified_days": 5}),
        ("C1", "resumed", "2024-03-07T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-12T03:00:00")
    reds = [c for c in cards(dsn, "decision_time") if c[3] == "red"]
    assert reds == [("C1", "decision_time", "", "red", PROMISED_RED, "revoked")]
    evaluate(dsn, "2024-03-13T02:00:00")  # the moved deadline, Mar 12 24:00, has passed
    reds = [c for c in cards(dsn, "decision_time") if c[3] == "red"]
    assert reds == [
        ("C1", "decision_time", "", "red", PROMISED_RED, "revoked"),
        ("C1", "decision_time", "", "red", z("2024-03-12T16:00:00"), "issued"),
    ]


def test_a_calendar_correction_revokes_and_the_new_deadline_cards_again(
    dsn: str, tmp_path: Path
) -> None:
    corrected = tmp_path / "corrected.toml"
    corrected.write_text('description = "更正"\nbase = "cn"\n[[holidays]]\nname = "闭厅"\n'
                         'dates = ["2024-03-07"]\n', encoding="utf-8")  # fmt: skip
    put(dsn, *accepted_mar4("C1"))
    evaluate(dsn, "2024-03-12T02:00:00")
    evaluate(dsn, "2024-03-12T03:00:00", "--calendar", str(corrected))
    assert [c[4:] for c in cards(dsn, "decision_time") if c[3] == "red"] == [
        (PROMISED_RED, "revoked")
    ]
    evaluate(dsn, "2024-03-13T02:00:00", "--calendar", str(corrected))
    assert [c[4:] for c in cards(dsn, "decision_time") if c[3] == "red"] == [
        (PROMISED_RED, "revoked"), (z("2024-03-12T16:00:00"), "issued")
    ]  # fmt: skip


def test_an_officers_revocation_holds_and_a_new_crossing_is_a_new_card(dsn: str) -> None:
    put(dsn, *accepted_mar4("C1"))
    evaluate(dsn, "2024-03-12T02:00:00")
    (red_id,) = query(dsn, "SELECT id FROM jiancha.cards WHERE rule = 'decision_time'")[0]
    out = io.StringIO()
    assert main(["cards", "revoke", str(red_id), "--by", "李明", "--reason", "现场踏勘未录入"],
                out=out) == 0, out.getvalue()  # fmt: skip
    evaluate(dsn, "2024-03-12T03:00:00")  # the same crossing is not carded again
    assert [c[3:] for c in cards(dsn, "decision_time")] == [("red", PROMISED_RED, "revoked")]
    put(dsn, ("C1", "suspended", "2024-03-06T02:00:00", {"type": "survey", "notified_days": 5}),
        ("C1", "resumed", "2024-03-07T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-13T02:00:00")
    assert [c[3:] for c in cards(dsn, "decision_time") if c[3] == "red"] == [
        ("red", PROMISED_RED, "revoked"), ("red", z("2024-03-12T16:00:00"), "issued")
    ]  # fmt: skip


# --- 2. extensions ------------------------------------------------------------------


def test_an_extension_after_the_promised_deadline_does_not_cure_its_red(dsn: str) -> None:
    put(dsn, *accepted_mar4("C1"))
    evaluate(dsn, "2024-03-12T02:00:00")
    put(dsn, ("C1", "extended", "2024-03-12T02:30:00", {"days": 5, "approver": "局长"}))
    evaluate(dsn, "2024-03-12T03:00:00")
    assert cards(dsn, "decision_time") == [
        ("C1", "decision_time", "", "red", PROMISED_RED, "issued")
    ]
    # within the statutory limit (20 wd, to Apr 1): a lawful extension, no irregularity
    assert cards(dsn, "extension_irregular") == []


def test_an_extension_in_time_moves_the_promise_unless_the_centre_says_never(
    dsn: str, tmp_path: Path
) -> None:
    put(dsn, *accepted_mar4("C2"),
        ("C2", "extended", "2024-03-08T02:00:00", {"days": 5, "approver": "局长"}))  # fmt: skip
    evaluate(dsn, "2024-03-12T02:00:00")
    reds = [c for c in cards(dsn, "decision_time") if c[3] == "red"]
    assert reds == []  # promised deadline now Mar 18 24:00 (the blue, at half of 10, is due)
    never = tmp_path / "never.toml"
    never.write_text('extends = "cards"\n[statute]\nextension_extends_promised = "never"\n',
                     encoding="utf-8")  # fmt: skip
    evaluate(dsn, "2024-03-12T03:00:00", "--rules", str(never))
    assert [c[3:5] for c in cards(dsn, "decision_time") if c[3] == "red"] == [("red", PROMISED_RED)]


def test_after_deadline_means_the_statutory_deadline(dsn: str) -> None:
    # statutory 20 wd from Mar 4: Mar 5-8, 11-15, 18-22, 25-29, Apr 1 -> Apr 1 24:00
    # C4 asks on Mar 20: after the promised deadline (Mar 11), within the statutory one
    put(dsn, *accepted_mar4("C3"),
        ("C3", "extended", "2024-04-02T02:00:00", {"days": 5, "approver": "局长"}),
        *accepted_mar4("C4"),
        ("C4", "extended", "2024-03-20T02:00:00", {"days": 5, "approver": "局长"}))  # fmt: skip
    evaluate(dsn, "2024-04-02T03:00:00")
    rows = query(dsn, "SELECT case_id, detail->'reasons' FROM jiancha.cards "
                      "WHERE rule = 'extension_irregular'")  # fmt: skip
    assert rows == [("C3", ["after_deadline"])]


# --- 3. deemed acceptance -----------------------------------------------------------


def test_an_application_not_answered_in_time_is_deemed_accepted_from_receipt(dsn: str) -> None:
    # M2 (10 wd promised) submitted Mon Mar 4; the acceptance limit (5 wd) ends Mar 11 24:00
    put(dsn, submitted("LATE", "2024-03-04T01:00:00", "M2"),
        ("LATE", "accepted", "2024-03-14T02:00:00", {}),  # accepted late
        submitted("NONE", "2024-03-04T01:00:00", "M2"),  # never answered
        submitted("BUZ", "2024-03-04T01:00:00", "M2"),  # a timely 补正 notice stops it
        ("BUZ", "supplement_requested", "2024-03-06T02:00:00", {"items": ["营业执照"]}),
        ("BUZ", "supplement_received", "2024-03-13T02:00:00", {}),
        ("BUZ", "accepted", "2024-03-14T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-19T02:00:00")
    # 10 wd from receipt: Mar 5-8, 11-15, 18 -> Mar 18 24:00
    got = [(c[0], c[3], c[4]) for c in cards(dsn, "decision_time")]
    assert got == [("LATE", "red", z("2024-03-18T16:00:00")),
                   ("NONE", "red", z("2024-03-18T16:00:00"))]  # fmt: skip
    deemed = query(dsn, "SELECT min(issued_at) FROM jiancha.cards WHERE clock = 'decision'")
    assert deemed[0][0] >= z("2024-03-11T16:00:00")  # no card before acceptance was deemed
    (detail,) = query(dsn, "SELECT detail->>'deemed_accepted_at' FROM jiancha.cards "
                           "WHERE case_id = 'LATE' AND rule = 'decision_time'")[0]  # fmt: skip
    assert dt.datetime.fromisoformat(detail) == z("2024-03-11T16:00:00")


def test_a_deemed_acceptance_stands_against_what_comes_after_the_limit(dsn: str) -> None:
    """Art. 32: once the acceptance limit passed unanswered, the application counts as
    accepted from receipt. A 补正 notice, refusal or withdrawal after the limit does not
    undo that: the cards the deemed clocks earned stay, and close when the case ends
    (they were revoked as threshold_not_reached). One before the limit still stops it."""
    late = [("LN", "supplement_requested", "2024-03-19T02:00:00", {"items": ["营业执照"]}),
            ("LN", "supplement_received", "2024-03-20T02:00:00", {}),
            ("LR", "refused", "2024-03-19T02:00:00", {"reason": "材料不符合法定形式"}),
            ("LW", "withdrawn", "2024-03-19T02:00:00", {})]  # fmt: skip
    timely = [("TR", "refused", "2024-03-06T02:00:00", {"reason": "材料不符合法定形式"}),
              ("TW", "withdrawn", "2024-03-06T02:00:00", {})]  # fmt: skip
    put(dsn, *(submitted(c, "2024-03-04T01:00:00", "M2") for c in ("LN", "LR", "LW", "TR", "TW")),
        *timely)  # fmt: skip
    evaluate(dsn, "2024-03-19T01:00:00")  # the deemed decision clocks crossed on Mar 18
    before = {c[0]: c[3:5] for c in cards(dsn, "decision_time")}
    assert before == {c: ("red", z("2024-03-18T16:00:00")) for c in ("LN", "LR", "LW")}
    put(dsn, *late)
    evaluate(dsn, "2024-03-29T02:00:00")
    got = {c[0]: c[3:] for c in cards(dsn, "decision_time")}
    assert got == {"LN": ("red", z("2024-03-18T16:00:00"), "issued"),  # the case runs on
                   "LR": ("red", z("2024-03-18T16:00:00"), "closed"),
                   "LW": ("red", z("2024-03-18T16:00:00"), "closed")}  # fmt: skip
    assert query(dsn, "SELECT count(*) FROM jiancha.cards WHERE status = 'revoked'") == [(0,)]
    # LN's acceptance clock is the period acceptance was deemed in: the one its
    # materials restarted (Mar 20) is not clocked, the deemed one's red stays
    assert [c[3:] for c in cards(dsn, "acceptance_time", "LN")] == [
        ("red", z("2024-03-11T16:00:00"), "closed")
    ]


# --- 4. joint handling --------------------------------------------------------------


def test_joint_matters_have_45_days_and_a_lawful_15_day_extension(dsn: str) -> None:
    put(dsn, *accepted_mar4("J1", "MJ"),
        ("J1", "extended", "2024-04-10T02:00:00", {"days": 15, "approver": "市政府分管负责人"}),
        *accepted_mar4("N1", "M1"),
        ("N1", "extended", "2024-03-08T02:00:00", {"days": 15, "approver": "局长"}))  # fmt: skip
    evaluate(dsn, "2024-04-12T02:00:00")
    assert cards(dsn, "extension_irregular", "J1") == []
    assert cards(dsn, "statutory_time", "J1") == []  # 45 + 15 wd: far ahead
    rows = query(dsn, "SELECT case_id, detail->'reasons' FROM jiancha.cards "
                      "WHERE rule = 'extension_irregular'")  # fmt: skip
    assert rows == [("N1", ["too_many_days"])]


# --- 5. overlapping pauses ----------------------------------------------------------


def test_overlapping_pauses_freeze_the_clock_until_the_last_one_ends(dsn: str) -> None:
    # MP: survey (max 10 wd) Tue Mar 5 10:00 - Fri Mar 8 10:00, a hearing (max 1 wd) inside it
    # from Wed Mar 6 10:00 to Fri Mar 8 10:00: 3 wd frozen -> deadline Mar 14 24:00
    put(dsn, *accepted_mar4("P1", "MP"),
        ("P1", "suspended", "2024-03-05T02:00:00", {"type": "survey", "notified_days": 10}),
        ("P1", "suspended", "2024-03-06T02:00:00", {"type": "hearing", "notified_days": 1}),
        ("P1", "resumed", "2024-03-07T02:00:00", {"type": "survey"}),
        ("P1", "resumed", "2024-03-08T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-14T02:00:00")
    assert [c for c in cards(dsn, "decision_time") if c[3] == "red"] == []
    evaluate(dsn, "2024-03-15T02:00:00")
    assert [c[3:5] for c in cards(dsn, "decision_time") if c[3] == "red"] == [
        ("red", z("2024-03-14T16:00:00"))
    ]
    # each pause against its own type's maximum: only the hearing (2 wd > 1) is overlong
    assert [(c[2], c[4]) for c in cards(dsn, "pause_overlong")] == [
        ("hearing@2024-03-06T02:00:00Z", z("2024-03-07T16:00:00"))
    ]


def test_a_resume_sorted_before_its_suspend_at_the_same_instant_never_leaves_it_open(
    dsn: str,
) -> None:
    put(
        dsn,
        *accepted_mar4("P2", "MP"),
        ("P2", "resumed", "2024-03-06T02:00:00", {}),  # lower id, same instant
        ("P2", "suspended", "2024-03-06T02:00:00", {"type": "survey", "notified_days": 10}),
    )
    evaluate(dsn, "2024-03-12T02:00:00")
    assert [c[3:5] for c in cards(dsn, "decision_time")] == [("red", PROMISED_RED)]


# --- 6. a pause never resumed ---------------------------------------------------------


def test_a_pause_never_resumed_earns_its_card_and_runs_again_past_its_allowance(
    dsn: str,
) -> None:
    # M1 lists no pause type: a survey from Tue Mar 5 10:00, notified for 3 wd, never resumed.
    # Its allowance ends Mar 8 24:00; from Mar 11 the clock runs again: red Mar 15 24:00
    put(
        dsn,
        *accepted_mar4("P3"),
        ("P3", "suspended", "2024-03-05T02:00:00", {"type": "survey", "notified_days": 3}),
    )
    evaluate(dsn, "2024-03-16T02:00:00")
    assert [c[3:5] for c in cards(dsn, "decision_time")] == [("red", z("2024-03-15T16:00:00"))]
    assert [c[2:5] for c in cards(dsn, "pause_overlong")] == [
        ("survey@2024-03-05T02:00:00Z", "yellow", z("2024-03-08T16:00:00"))
    ]
    assert [c[2:5] for c in cards(dsn, "pause_not_allowed")] == [
        ("survey@2024-03-05T02:00:00Z", "yellow", z("2024-03-05T02:00:00"))
    ]


# --- 7. a resume slightly ahead of the clock --------------------------------------------


def test_a_pause_ending_just_ahead_of_now_does_not_silence_the_clock(dsn: str) -> None:
    # paused Mon Mar 11 10:00, resumed 10:05 (a source clock a little ahead): at 10:03 the
    # red still comes due, at the end of Mar 12 (the 5 minutes reach into the 6th day)
    put(dsn, *accepted_mar4("P4"),
        ("P4", "suspended", "2024-03-11T02:00:00", {"type": "survey", "notified_days": 1}),
        ("P4", "resumed", "2024-03-11T02:05:00", {}))  # fmt: skip
    doc = evaluate(dsn, "2024-03-11T02:03:00")
    assert doc["next_due"] is not None
    assert dt.datetime.fromisoformat(doc["next_due"]) == z("2024-03-12T16:00:00")


# --- 8. 即办 after close of business ------------------------------------------------------


def test_an_immediate_case_accepted_after_hours_is_due_at_next_close_of_business(
    dsn: str,
) -> None:
    # M0 (即办) accepted Mon Mar 4 19:00 Beijing; the centre closes at 17:30
    put(dsn, submitted("I1", "2024-03-04T10:30:00", "M0"),
        ("I1", "accepted", "2024-03-04T11:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-04T12:00:00", "--calendar", "example-centre")
    assert cards(dsn) == []  # nothing dated before the clock started
    evaluate(dsn, "2024-03-05T10:00:00", "--calendar", "example-centre")
    assert [c[1:5] for c in cards(dsn)] == [
        ("immediate_time", "", "yellow", z("2024-03-05T09:30:00"))  # Mar 5 17:30 Beijing
    ]


# --- 9. 补正 after acceptance -------------------------------------------------------------


def test_asking_for_pledged_materials_is_not_a_second_request(dsn: str) -> None:
    put(
        dsn,
        submitted("S1", "2024-03-04T01:00:00"),
        ("S1", "supplement_requested", "2024-03-04T03:00:00", {"items": ["图纸"]}),
        ("S1", "supplement_received", "2024-03-05T02:00:00", {}),
        ("S1", "accepted", "2024-03-05T03:00:00", {"pledged_days": 3}),
        ("S1", "supplement_requested", "2024-03-06T02:00:00", {"items": ["承诺补交的证明"]}),
        *accepted_mar4("S2"),
        ("S2", "supplement_requested", "2024-03-06T02:00:00", {"items": ["营业执照"]}),
    )
    evaluate(dsn, "2024-03-07T02:00:00")
    got = [(c[0], c[1], c[3], c[4]) for c in cards(dsn) if c[1] != "acceptance_time"]
    assert got == [("S2", "supplement_after_acceptance", "yellow", z("2024-03-06T02:00:00"))]


# --- 10. a second bad rating ------------------------------------------------------------


def test_each_bad_rating_has_its_own_visit_and_rectification_clocks(dsn: str) -> None:
    put(dsn, *accepted_mar4("R1"),
        ("R1", "completed", "2024-03-05T02:00:00", {}),
        ("R1", "rated", "2024-03-11T02:00:00", {"level": 1}),
        ("R1", "review_visited", "2024-03-11T03:00:00", {}),
        ("R1", "rated", "2024-03-18T02:00:00", {"level": 2}))  # fmt: skip
    evaluate(dsn, "2024-04-02T02:00:00")
    # the first: rectification within 15 wd of Mar 11 -> Apr 1 24:00, missed; the second:
    # no return visit within 1 wd -> Mar 19 24:00
    assert [c[1:5] for c in cards(dsn) if c[1].startswith("review")] == [
        ("review_rectify", "rating@2024-03-11T02:00:00Z", "red", z("2024-04-01T16:00:00")),
        ("review_visit", "rating@2024-03-18T02:00:00Z", "yellow", z("2024-03-19T16:00:00")),
    ]


# --- 11. refused after acceptance -------------------------------------------------------


def test_a_refusal_after_acceptance_is_a_denial_and_its_own_yellow(dsn: str) -> None:
    put(dsn, *accepted_mar4("F1"),
        ("F1", "refused", "2024-03-06T02:00:00", {"reason": "不符合条件"}))  # fmt: skip
    evaluate(dsn, "2024-03-20T02:00:00")
    assert [c[1:5] for c in cards(dsn)] == [
        ("refused_after_acceptance", "", "yellow", z("2024-03-06T02:00:00"))
    ]
    row = query(dsn, "SELECT status, decision, completed_at, clocks ? 'delivery' "
                     "FROM jiancha.cases WHERE case_id = 'F1'")  # fmt: skip
    assert row == [("refused", "deny", z("2024-03-06T02:00:00"), False)]


# --- 12. the deadline a card records ----------------------------------------------------


def test_a_card_records_the_deadline_as_of_its_crossing(dsn: str) -> None:
    # yellow (1 wd left) crossed Mar 8 24:00; a pause begun afterwards (Mar 11 10:00 - Mar 12
    # 10:00) moves the deadline, but not the one the yellow card records (Mar 11 24:00)
    put(dsn, *accepted_mar4("D1", "MP"),
        ("D1", "suspended", "2024-03-11T02:00:00", {"type": "survey", "notified_days": 3}),
        ("D1", "resumed", "2024-03-12T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-03-12T03:00:00")
    rows = query(dsn, "SELECT level, issued_at, deadline FROM jiancha.cards "
                      "WHERE rule = 'decision_time'")  # fmt: skip
    assert rows == [("yellow", z("2024-03-08T16:00:00"), PROMISED_RED)]


# --- 13. provisional years -------------------------------------------------------------


def test_a_deadline_in_an_unpublished_year_counts_the_statutory_holidays_and_says_so(
    dsn: str, tmp_path: Path
) -> None:
    # accepted Mon 2026-12-28; 2027 has no published notice: New Year's Day (Order 795) is a
    # rest day all the same -> Dec 29, 30, 31, Jan 4, 5 -> Jan 5 24:00, provisional
    put(dsn, submitted("Y1", "2026-12-28T01:00:00"), ("Y1", "accepted", "2026-12-28T02:00:00", {}))
    evaluate(dsn, "2027-01-06T02:00:00")
    rows = query(dsn, "SELECT level, issued_at, detail->'provisional' FROM jiancha.cards "
                      "WHERE rule = 'decision_time'")  # fmt: skip
    assert rows == [("red", z("2027-01-05T16:00:00"), True)]
    # the alert says so too
    from monitor.calendar import load_calendar
    from monitor.cards.store import CardRecord
    from monitor.config import NotifyConfig
    from monitor.outbox.enqueue import CardFacts
    from monitor.outbox.render import render

    (detail,) = query(dsn, "SELECT detail FROM jiancha.cards WHERE rule = 'decision_time'")[0]
    record = CardRecord(1, "Y1", "decision", "decision_time", "red", z("2027-01-05T16:00:00"),
                        z("2027-01-05T16:00:00"), "M1", "住建局", "W1", detail)  # fmt: skip
    text = render(CardFacts(record, "超过承诺时限", "建筑工程施工许可"), "card", NotifyConfig(),
                  load_calendar("cn"), {}).text  # fmt: skip
    assert "截止 2027-01-05 24:00（暂定：该年度放假安排尚未公布" in text
    # the notice is published (here: Jan 4 a rest day too): recomputed, the red moves
    notice = tmp_path / "notice.toml"
    notice.write_text('description = "2027 年通知"\nbase = "cn"\n[years.2027]\n'
                      'source = "国办发明电〔2026〕N号"\n'
                      'holidays = ["2027-01-01..2027-01-04"]\nworkdays = []\n',
                      encoding="utf-8")  # fmt: skip
    evaluate(dsn, "2027-01-07T02:00:00", "--calendar", str(notice))
    rows = query(dsn, "SELECT issued_at, status, detail ? 'provisional' FROM jiancha.cards "
                      "WHERE rule = 'decision_time' ORDER BY issued_at")  # fmt: skip
    assert rows == [(z("2027-01-05T16:00:00"), "revoked", True),
                    (z("2027-01-06T16:00:00"), "issued", False)]  # fmt: skip


# --- 14. per-region calendars ------------------------------------------------------------


def test_a_cases_region_selects_its_calendar_and_a_new_mapping_recomputes(dsn: str) -> None:
    # accepted Mon 2024-09-02 10:00; 延边 (region 2224xx) rests on Sept 3, its founding day:
    # national Sep 3-6, 9 -> Sep 9 24:00; 延边 Sep 4-6, 9, 10 -> Sep 10 24:00
    yanbian = ("--region-calendar", "2224=yanbian")
    for cid, region in (("CC", "220102"), ("YJ", "222401")):
        put(dsn, (cid, "submitted", "2024-09-02T01:00:00", {**SUB, "matter": "M1",
                                                             "region": region}),
            (cid, "accepted", "2024-09-02T02:00:00", {}))  # fmt: skip
    evaluate(dsn, "2024-09-10T02:00:00")  # before the mapping: both on the national calendar
    reds = {(c[0], c[4], c[5]) for c in cards(dsn, "decision_time") if c[3] == "red"}
    assert reds == {("CC", z("2024-09-09T16:00:00"), "issued"),
                    ("YJ", z("2024-09-09T16:00:00"), "issued")}  # fmt: skip
    evaluate(dsn, "2024-09-10T03:00:00", *yanbian)  # the mapping changes: 延边's red goes
    evaluate(dsn, "2024-09-11T02:00:00", *yanbian)
    reds = {(c[0], c[4], c[5]) for c in cards(dsn, "decision_time") if c[3] == "red"}
    assert reds == {("CC", z("2024-09-09T16:00:00"), "issued"),
                    ("YJ", z("2024-09-09T16:00:00"), "revoked"),
                    ("YJ", z("2024-09-10T16:00:00"), "issued")}  # fmt: skip


def test_region_calendars_are_configured_by_prefix(tmp_path: Path) -> None:
    from monitor.calendar import load_calendar
    from monitor.calendar.regions import load_regions
    from monitor.config import ConfigError, load_config

    good = tmp_path / "jiancha.toml"
    good.write_text('[daemon]\ncalendar = "cn"\n[daemon.region_calendars]\n"2224" = "yanbian"\n'
                    '"222403" = "cn"\n', encoding="utf-8")  # fmt: skip
    cfg = load_config(str(good), environ={})
    regions = load_regions(load_calendar("cn"), cfg.daemon.region_calendars)
    # the longest prefix wins: 222403 (敦化) back on the national calendar
    assert [regions.for_region(r).name for r in ("222401", "222403", "220102", None)] == [
        "yanbian", "cn", "cn", "cn"]  # fmt: skip
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nregion_calendars = "yanbian"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: \[daemon.region_calendars\]"):
        load_config(str(bad), environ={})


# --- the figures (docs/rule-book.md §5): overdue is past the deadline, 即办 included ------

FIELDS = ("accepted", "immediate", "completed", "on_time", "early", "late", "overdue_open")


def figures(dsn: str, lo: str, hi: str, at: str) -> dict[str, int]:
    rows = query(
        dsn,
        "SELECT sum(accepted), sum(immediate), sum(completed), sum(on_time), "
        "sum(early), sum(late), sum(overdue_open) FROM jiancha.figures_v1($1, $2, $3)",
        z(lo),
        z(hi),
        z(at),
    )
    return dict(zip(FIELDS, (int(v or 0) for v in rows[0]), strict=True))


def test_overdue_is_past_the_deadline_not_any_red_card(dsn: str) -> None:
    # C1: accepted Mon Mar 11 (M1, 5 wd: deadline Mar 18 24:00) with a fee on the free matter
    # (a red card) but not late; C2: accepted Mar 4 (deadline Mar 11 24:00), paused after
    # its deadline; C3: accepted Mar 4, withdrawn after its deadline, then "completed"
    put(
        dsn,
        submitted("C1", "2024-03-11T01:00:00"),
        ("C1", "accepted", "2024-03-11T02:00:00", {}),
        ("C1", "fee_charged", "2024-03-12T02:00:00", {"amount": 50}),
        submitted("C2", "2024-03-04T01:00:00"),
        ("C2", "accepted", "2024-03-04T02:00:00", {}),
        ("C2", "suspended", "2024-03-13T02:00:00", {"type": "survey", "notified_days": 5}),
        submitted("C3", "2024-03-04T01:00:00"),
        ("C3", "accepted", "2024-03-04T02:00:00", {}),
        ("C3", "withdrawn", "2024-03-14T02:00:00", {}),
    )
    evaluate(dsn, "2024-03-14T06:00:00")
    reds = {r[0] for r in query(dsn, "SELECT case_id FROM jiancha.cards WHERE level = 'red'")}
    assert {"C1", "C2"} <= reds  # C1's red is the fee's
    # caught up after C2's pause began: its red, crossed before the pause, at its instant
    assert [c[3:5] for c in cards(dsn, "decision_time", "C2")] == [("red", PROMISED_RED)]
    f = figures(dsn, "2024-03-01T00:00:00", "2024-03-14T06:00:00", "2024-03-14T06:00:00")
    # C2 is overdue while paused (its limit was used up before the pause); C1 has a red card
    # but time left; C3, withdrawn, is neither open nor a completion
    assert (f["accepted"], f["completed"], f["overdue_open"]) == (3, 0, 1)
    # just before Mar 11 24:00 nobody was overdue; at it, C2 and C3 (C1: time left)
    assert (
        figures(dsn, "2024-03-01T00:00:00", "2024-03-11T15:00:00", "2024-03-11T15:59:59")[
            "overdue_open"
        ]
        == 0
    )
    assert (
        figures(dsn, "2024-03-01T00:00:00", "2024-03-11T16:00:00", "2024-03-11T16:00:00")[
            "overdue_open"
        ]
        == 2
    )
    put(
        dsn,
        ("C1", "completed", "2024-03-14T07:00:00", {}),
        ("C3", "completed", "2024-03-14T07:00:00", {}),
    )
    evaluate(dsn, "2024-03-14T08:00:00")
    assert query(dsn, "SELECT case_id, outcome FROM jiancha.cases ORDER BY 1") == [
        ("C1", "early"),
        ("C2", None),
        ("C3", None),
    ]
    f = figures(dsn, "2024-03-14T00:00:00", "2024-03-15T00:00:00", "2024-03-15T00:00:00")
    assert (f["completed"], f["on_time"], f["early"], f["overdue_open"]) == (1, 1, 1, 1)


def test_immediate_cases_count_and_after_close_of_business_is_late(dsn: str) -> None:
    # M0: promised 0 (即办). D1 accepted Mon 10:00, done 16:00: early? no: same day = on time;
    # D2 accepted Mon 10:00, done Tue 10:00: late; D3 accepted Mon 20:00 (after close),
    # done Tue 10:00: on time (its limit is the next working day's close)
    put(
        dsn,
        submitted("D1", "2024-03-04T01:00:00", "M0"),
        ("D1", "accepted", "2024-03-04T02:00:00", {}),
        ("D1", "completed", "2024-03-04T08:00:00", {}),
        submitted("D2", "2024-03-04T01:00:00", "M0"),
        ("D2", "accepted", "2024-03-04T02:00:00", {}),
        ("D2", "completed", "2024-03-05T02:00:00", {}),
        submitted("D3", "2024-03-04T11:00:00", "M0"),
        ("D3", "accepted", "2024-03-04T12:00:00", {}),
        ("D3", "completed", "2024-03-05T02:00:00", {}),
    )
    evaluate(dsn, "2024-03-06T00:00:00", "--calendar", "example-centre")  # closes 17:30
    assert query(dsn, "SELECT case_id, outcome FROM jiancha.cases ORDER BY 1") == [
        ("D1", "on_time"),
        ("D2", "late"),
        ("D3", "on_time"),
    ]
    f = figures(dsn, "2024-03-03T16:00:00", "2024-03-05T16:00:00", "2024-03-05T16:00:00")
    assert (f["accepted"], f["immediate"], f["completed"], f["on_time"], f["late"]) == (
        3,
        3,
        3,
        2,
        1,
    )
