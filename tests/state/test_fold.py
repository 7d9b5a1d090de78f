"""A case's fold advances by its new events alone, and ends where a rebuild ends.

The cache in ``monitor.state.store`` keeps each case's `Fold` between
batches: a batch whose events all sort after the last one applied advances
it, any other rebuilds it from the whole history. Whatever the batches and
their order, the state must equal ``reduce_case`` of every event so far, and
in-order delivery must walk each event once (not the whole history per batch).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.source.contract import Matter, SourceEvent
from monitor.state import reduce as reduce_mod
from monitor.state.reduce import Fold, advance, finish, fold, reduce_case
from tests.state.test_reduce import MATTERS, SUBMITTED, ev, lifecycle

# The same matter with another promised limit: a catalogue change between batches.
MATTERS_LATER = {**MATTERS, "M1": Matter("M1", "建筑工程施工许可", "住建局", 20, 7)}


def extra_events() -> list[SourceEvent]:
    """Kinds the lifecycle lacks, and pauses opened and closed at one instant."""
    return [
        ev(20, "resumed", 40, type="hearing"),
        ev(21, "suspended", 40, type="hearing", notified_days=2),  # closed by the resume
        ev(22, "fee_charged", 60, amount=12.5),
        ev(23, "rated", 135, level=1, comment="差"),
        ev(24, "review_visited", 136),
        ev(25, "step_started", 97, step="复核"),
        ev(26, "supplement_requested", 98, items=["图纸"]),
        ev(27, "withdrawn", 200),
        ev(28, "submitted", 5, **{**SUBMITTED, "window": "W2"}),  # a second submission
    ]


def through_batches(batches: list[list[SourceEvent]], catalogues: list[dict[str, Matter]]):
    """What the store does per batch: advance the kept fold, or rebuild from everything."""
    done: Fold | None = None
    so_far: list[SourceEvent] = []
    for batch, matters in zip(batches, catalogues, strict=True):
        so_far += batch
        advanced = advance(done, batch) if done is not None else None
        done = advanced if advanced is not None else fold("C1", so_far)
        yield finish(done, matters), reduce_case("C1", so_far, matters)


@settings(max_examples=300, deadline=None)
@given(
    st.permutations(lifecycle() + extra_events()),
    st.lists(st.integers(1, 6), min_size=1, max_size=30),
    st.lists(st.integers(0, 25), max_size=4),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_any_batches_in_any_order_end_where_a_rebuild_ends(order, sizes, repeats, later):
    events = list(order) + [order[i] for i in repeats]  # replays too
    batches, i = [], 0
    for size in sizes:
        batches.append(events[i : i + size])
        i += size
    batches.append(events[i:])
    catalogues = [MATTERS_LATER if later[k % 30] else MATTERS for k in range(len(batches))]
    for got, expected in through_batches(batches, catalogues):
        assert dataclasses.asdict(got) == dataclasses.asdict(expected)


def test_in_order_delivery_walks_each_event_once(monkeypatch):
    """A chatty case, one event a batch: the work is the new events, not the history."""
    walked: list[int] = []
    walk = reduce_mod._walk

    def counting(st, seen, ordered):
        ordered = list(ordered)
        walked.append(len(ordered))
        walk(st, seen, ordered)

    monkeypatch.setattr(reduce_mod, "_walk", counting)
    events = [ev(1, "submitted", 0, **SUBMITTED), ev(2, "accepted", 1)]
    events += [ev(3 + k, "fee_charged", 2 + k / 100, amount=1) for k in range(500)]
    batches = [[e] for e in events]
    results = list(through_batches(batches, [MATTERS] * len(batches)))
    assert results[-1][0].fees == 500 and results[-1][0].event_count == 502
    walked_by_advances = walked[0::2]  # each batch: the advance, then the test's rebuild
    assert walked_by_advances == [1] * len(batches)


def test_a_late_event_is_refused_by_advance_and_a_replay_too():
    done = fold("C1", lifecycle()[:5])
    assert advance(done, [lifecycle()[2]]) is None  # already applied
    assert advance(done, [ev(99, "fee_charged", 10, amount=1)]) is None  # sorts before
    assert advance(done, []) is done
    after = advance(done, lifecycle()[5:7])
    assert after is not None and after is not done
    # the fold it started from is unchanged: a cache may still hold it
    assert dataclasses.asdict(finish(done, MATTERS)) == dataclasses.asdict(
        reduce_case("C1", lifecycle()[:5], MATTERS)
    )
    assert dt.timedelta(0) < after.last[0] - done.last[0]
