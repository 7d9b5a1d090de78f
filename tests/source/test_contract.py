"""The source contract: every way an event can break it has a typed reason, none raises."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.source.contract import DeadReason, SourceEvent, validate
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
    assert validate(ev(1, "completed", 24 * 10 + 23), MATTERS, NOW) is None  # within tolerance
