"""The source contract: every way an event can break it has a typed reason, none raises."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.source.contract import (
    LIMITS,
    DeadReason,
    Limits,
    SourceEvent,
    Unreadable,
    payload_of,
    validate,
)
from tests.state.test_reduce import MATTERS, SUBMITTED, T0, ev, lifecycle

UTC = dt.UTC
NOW = T0 + dt.timedelta(days=10)


@pytest.mark.parametrize(
    ("event", "reason", "detail"),
    [
        (ev(1, "teleported", 0), DeadReason.UNKNOWN_KIND, "teleported"),
        (ev(1, "submitted", 0, matter="M1", window="W1", region="R1"),
         DeadReason.MISSING_KEY, "channel"),
        (ev(1, "extended", 0, days="5", approver="x"), DeadReason.BAD_TYPE, "days"),
        (ev(1, "extended", 0, days=True, approver="x"), DeadReason.BAD_TYPE, "days"),
        (ev(1, "extended", 0, days=0, approver="x"), DeadReason.BAD_VALUE, "days=0"),
        (ev(1, "submitted", 0, **{**SUBMITTED, "matter": "NOPE"}),
         DeadReason.UNKNOWN_MATTER, "NOPE"),
        (ev(1, "submitted", 0, **{**SUBMITTED, "channel": "fax"}), DeadReason.BAD_VALUE, "fax"),
        (ev(1, "suspended", 0, type="nap", notified_days=1), DeadReason.BAD_VALUE, "nap"),
        (ev(1, "resumed", 0, type="nap"), DeadReason.BAD_VALUE, "nap"),
        (ev(1, "resumed", 0, type=3), DeadReason.BAD_TYPE, "type"),
        (ev(1, "decided", 0, result="maybe"), DeadReason.BAD_VALUE, "maybe"),
        (ev(1, "rated", 0, level=6), DeadReason.BAD_VALUE, "level=6"),
        (ev(1, "fee_charged", 0, amount=-1), DeadReason.BAD_VALUE, "amount"),
        (ev(1, "supplement_requested", 0, items=[1]), DeadReason.BAD_TYPE, "items"),
        (ev(1, "completed", 24 * 12), DeadReason.FUTURE_TIMESTAMP, "occurred_at"),
    ],
)  # fmt: skip
def test_validation_reasons(event, reason, detail):
    rejection = validate(event, MATTERS, NOW)
    assert rejection is not None
    assert rejection.reason is reason
    assert detail in rejection.detail


def test_payload_not_an_object():
    bad = SourceEvent(1, 1, "C1", "completed", T0, [1, 2])  # type: ignore[arg-type]
    rejection = validate(bad, MATTERS, NOW)
    assert rejection is not None and rejection.reason is DeadReason.BAD_TYPE


def test_valid_events_pass_and_optional_keys_may_be_absent():
    for event in lifecycle():
        assert validate(event, MATTERS, NOW) is None, event
    assert validate(ev(1, "refused", 0), MATTERS, NOW) is None  # reason missing: a card, not bad
    assert validate(ev(1, "resumed", 0, type="hearing"), MATTERS, NOW) is None
    assert validate(ev(1, "completed", 24 * 10 + 23), MATTERS, NOW) is None  # within tolerance


# --- the limits: every value fits jiancha's schema (issue 17) ---------------------------

L = LIMITS


@pytest.mark.parametrize(
    ("key", "kind", "at_limit", "past_limit", "reason"),
    [
        ("promised_days", "accepted", {"promised_days": L.days},
         {"promised_days": L.days + 1}, DeadReason.VALUE_OUT_OF_RANGE),
        ("pledged_days", "accepted", {"pledged_days": L.days},
         {"pledged_days": 2**31}, DeadReason.VALUE_OUT_OF_RANGE),
        ("days", "extended", {"days": L.days, "approver": "a" * L.id_chars},
         {"days": 2**31, "approver": "a"}, DeadReason.VALUE_OUT_OF_RANGE),
        ("approver", "extended", {"days": 1, "approver": "a" * L.id_chars},
         {"days": 1, "approver": "a" * (L.id_chars + 1)}, DeadReason.TEXT_TOO_LONG),
        ("notified_days", "suspended", {"type": "survey", "notified_days": L.days},
         {"type": "survey", "notified_days": L.days + 1}, DeadReason.VALUE_OUT_OF_RANGE),
        ("amount", "fee_charged", {"amount": L.amount}, {"amount": L.amount * 1.01},
         DeadReason.VALUE_OUT_OF_RANGE),
        ("amount", "fee_charged", {"amount": 10**12}, {"amount": float("inf")},
         DeadReason.VALUE_OUT_OF_RANGE),
        ("window", "submitted", {**SUBMITTED, "window": "窗" * L.id_chars},
         {**SUBMITTED, "window": "窗" * (L.id_chars + 1)}, DeadReason.TEXT_TOO_LONG),
        ("region", "submitted", {**SUBMITTED, "region": "1" * L.id_chars},
         {**SUBMITTED, "region": "1" * 8192}, DeadReason.TEXT_TOO_LONG),
        ("step", "step_started", {"step": "审" * L.id_chars}, {"step": "审" * 8192},
         DeadReason.TEXT_TOO_LONG),
        ("reason", "terminated", {"reason": "因" * L.text_chars},
         {"reason": "因" * (L.text_chars + 1)}, DeadReason.TEXT_TOO_LONG),
        ("comment", "rated", {"level": 3, "comment": "x" * L.text_chars},
         {"level": 3, "comment": "x" * (L.text_chars + 1)}, DeadReason.TEXT_TOO_LONG),
        ("items", "supplement_requested", {"items": ["证"] * L.items},
         {"items": ["证"] * (L.items + 1)}, DeadReason.LIST_TOO_LONG),
        ("items", "supplement_requested", {"items": ["证" * L.text_chars]},
         {"items": ["证" * (L.text_chars + 1)]}, DeadReason.TEXT_TOO_LONG),
        # compact JSON: {"note":"…"} is 11 bytes around the text; 中 is 3 bytes in UTF-8
        ("payload", "completed", {"note": "x" * (L.payload_bytes - 11)},
         {"note": "x" * (L.payload_bytes - 10)}, DeadReason.PAYLOAD_TOO_LARGE),
        ("payload", "completed", {"note": "中" * ((L.payload_bytes - 11) // 3)},
         {"note": "中" * ((L.payload_bytes - 11) // 3 + 1)}, DeadReason.PAYLOAD_TOO_LARGE),
        ("payload", "completed", {"x": [[1]] * 100},
         {"x": [["y" * 1000]] * 100}, DeadReason.PAYLOAD_TOO_LARGE),
        ("x", "completed", {"x": 1e308}, {"x": float("inf")}, DeadReason.VALUE_OUT_OF_RANGE),
        ("payload", "completed", {"x": [1e308]}, {"x": [[float("inf")]]},
         DeadReason.VALUE_OUT_OF_RANGE),
    ],
)  # fmt: skip
def test_each_limit_is_inclusive_and_one_past_it_is_its_reason(
    key, kind, at_limit, past_limit, reason
):
    assert validate(ev(1, kind, 0, **at_limit), MATTERS, NOW) is None
    rejection = validate(ev(1, kind, 0, **past_limit), MATTERS, NOW)
    assert rejection is not None and rejection.reason is reason
    assert key in rejection.detail


def test_case_id_is_bounded_like_every_identifier():
    at_limit = ev(1, "submitted", 0, **SUBMITTED)._replace(case_id="C" * LIMITS.id_chars)
    assert validate(at_limit, MATTERS, NOW) is None
    past = at_limit._replace(case_id="C" * 8192)
    rejection = validate(past, MATTERS, NOW)
    assert rejection is not None and rejection.reason is DeadReason.TEXT_TOO_LONG
    assert rejection.detail == f"case_id: 8192 chars > {LIMITS.id_chars}"


def test_limits_are_a_parameter():
    event = ev(1, "accepted", 0, promised_days=2**31)
    assert validate(event, MATTERS, NOW, limits=Limits(days=2**40)) is None
    assert validate(ev(1, "accepted", 0, promised_days=11), MATTERS, NOW,
                    limits=Limits(days=10)) is not None  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ('{"amount": 1' + "0" * 5000 + "}", DeadReason.VALUE_OUT_OF_RANGE, "4300 digits"),
        ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", DeadReason.PAYLOAD_TOO_LARGE, "nested"),
    ],
)
def test_a_payload_python_cannot_read_is_a_reason_not_a_crash(text, reason, detail):
    payload = payload_of(text)
    assert isinstance(payload, Unreadable) and len(payload) <= 1100
    rejection = validate(ev(1, "fee_charged", 0)._replace(payload=payload), MATTERS, NOW)
    assert rejection is not None and rejection.reason is reason and detail in rejection.detail
    assert payload_of('{"amount": 1e308}') == {"amount": 1e308}
