"""Made-up cases of every kind, decided once at a start so no real one waits for numba.

numba loads each compiled calendar kernel from its cache at its first call,
one signature at a time (a deadline with or without provisional flags, 32- or
64-bit day counts, ...): the first is about 0.15 s (its typing registries),
each other a few ms. Left to the traffic, the first case of a kind after a
start (a deemed acceptance, a pause, a late completion) held the event loop
for them mid-batch. Deciding these cases before the first batch takes the
cost while nothing waits; they are never stored.
"""

from __future__ import annotations

import datetime as dt

from monitor.engine.cards import ExistingCard
from monitor.source.contract import Matter, SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView

__all__ = ["warm_cases"]

_MATTERS = {
    "jiancha-warm": Matter("jiancha-warm", "warm", "warm", 20, 5, pause_max_days={"survey": 3},
                           step_days={"审核": 2}),
    "jiancha-warm-now": Matter("jiancha-warm-now", "warm", "warm", 20, 0),
    "jiancha-warm-fee": Matter("jiancha-warm-fee", "warm", "warm", 20, 10, free=False),
}  # fmt: skip

_DAY = dt.timedelta(days=1)
_SUB = {"window": "jiancha-warm", "region": "", "channel": "window"}

# (matter, [(kind, days before now, payload)]): one history per path of the engine
# fmt: off
_HISTORIES: tuple[tuple[str, list[tuple[str, float, dict[str, object]]]], ...] = (
    ("jiancha-warm", [("submitted", 30, {})]),  # never accepted: deemed, overdue
    ("jiancha-warm", [("submitted", 12, {}), ("accepted", 11.9, {}),
                      ("suspended", 6, {"type": "survey", "notified_days": 2})]),  # paused
    ("jiancha-warm", [("submitted", 60, {}), ("supplement_requested", 59, {"items": ["图纸"]}),
                      ("supplement_received", 50, {}), ("accepted", 49, {}),
                      ("suspended", 45, {"type": "survey", "notified_days": 2}),
                      ("resumed", 40, {"type": "survey"}),
                      ("extended", 30, {"days": 10, "approver": "warm"}),
                      ("step_started", 29.5, {"step": "审核"}),
                      ("step_finished", 20, {"step": "审核"}),
                      ("decided", 1.5, {"result": "approve"}), ("rated", 0.5, {"level": 1}),
                      ("completed", 1, {})]),
    ("jiancha-warm-now", [("submitted", 2, {}), ("completed", 0.5, {})]),  # immediate, late
    ("jiancha-warm-fee", [("submitted", 3, {}), ("accepted", 2.9, {}),
                          ("fee_charged", 2, {"amount": 10.0})]),
)
# fmt: on


def warm_cases(now: dt.datetime) -> list[tuple[CaseView, Matter | None, list[ExistingCard]]]:
    """The made-up cases as `decide_cases` takes them, the first with a card it did not
    earn at its instant (so the judging of cards in doubt loads too)."""
    out: list[tuple[CaseView, Matter | None, list[ExistingCard]]] = []
    # each twice, an hour apart: a kernel's argument types differ for one element and
    # for several (a lone value broadcast against a scalar stays read-only)
    for n, (matter, history) in enumerate(_HISTORIES * 2):
        case_id = f"jiancha-warm-{n}"
        shift = _DAY / 24 if n >= len(_HISTORIES) else dt.timedelta(0)
        events = [
            SourceEvent(i, i, case_id, kind, now - days * _DAY - shift,
                        {**_SUB, "matter": matter, **p} if kind == "submitted" else p)
            for i, (kind, days, p) in enumerate(history, 1)
        ]  # fmt: skip
        view = CaseView.from_state(reduce_case(case_id, events, _MATTERS))
        out.append((view, _MATTERS[matter], []))
    first = out[0][0]
    moved = int((now - 3 * _DAY).timestamp())
    out[0][2].append(ExistingCard(-1, first.case_id, "decision", "decision_time", 3, "issued",
                                  moved))  # fmt: skip
    return out
