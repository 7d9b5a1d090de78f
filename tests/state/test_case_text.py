"""A case row's JSON documents written directly are the very text json makes of them.

`CaseClocks.as_text`, `CaseFacts.as_text` and `pauses_text` write the
``clocks``, ``facts`` and ``pauses`` columns without building the dicts
(`as_json`) and encoding them. They must give `monitor.db.json_dumps(as_json())`
byte for byte, on any content: instants in UTC and at other offsets, with and
without microseconds, names that need escaping, every optional part.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.calendar import load_calendar
from monitor.db import json_dumps
from monitor.source.contract import SourceEvent
from monitor.state.case import (
    CaseClocks,
    CaseFacts,
    Extension,
    Fee,
    Pause,
    Review,
    Span,
    pauses_text,
)
from monitor.state.reduce import reduce_case
from monitor.whatif.simulate import generate, load_catalogue

zones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8)),
                         dt.timezone(dt.timedelta(hours=-3, minutes=-30))])  # fmt: skip
instants = st.builds(
    lambda d, zone: d.replace(tzinfo=zone),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    zones,
)
maybe = st.none() | instants
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["科长", 'a"b', "back\\slash", "tab\there", "\u2028", ""]
)
days = st.none() | st.integers(-(2**40), 2**40)
spans = st.builds(Span, maybe, maybe, days)
pauses = st.lists(st.builds(Pause, texts, instants, maybe, st.integers(0, 400)), max_size=3)
reviews = st.builds(Review, instants, maybe, maybe)
extensions = st.builds(Extension, st.integers(0, 60), texts, instants)
clocks = st.builds(
    CaseClocks,
    acceptance=st.none() | spans,
    decision=st.none() | spans,
    statutory=st.none() | spans,
    immediate=st.none() | spans,
    supplement=st.none() | spans,
    delivery=st.none() | spans,
    review=st.none() | reviews,
    steps=st.dictionaries(texts, spans, max_size=3),
    pauses=pauses.map(tuple),
    extensions=st.lists(extensions, max_size=2).map(tuple),
    extension_days=st.integers(0, 60),
    later_reviews=st.lists(reviews, max_size=2).map(tuple),
    acceptance_earlier=st.lists(spans, max_size=2).map(tuple),
)
amounts = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)
facts = st.builds(
    CaseFacts,
    supplement_requests=st.lists(instants, max_size=3).map(tuple),
    fees=st.lists(st.builds(Fee, instants, amounts), max_size=3).map(tuple),
    refused_at=maybe,
    refusal_reason=texts,
    late_supplement_requests=st.lists(instants, max_size=2).map(tuple),
    refused_after_acceptance=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(clocks)
def test_the_clocks_text_is_jsons(c: CaseClocks) -> None:
    assert c.as_text() == json_dumps(c.as_json())


@settings(max_examples=300, deadline=None)
@given(facts)
def test_the_facts_text_is_jsons(f: CaseFacts) -> None:
    assert f.as_text() == json_dumps(f.as_json())


@settings(max_examples=200, deadline=None)
@given(pauses)
def test_the_pauses_text_is_jsons(ps: list[Pause]) -> None:
    assert pauses_text(ps) == json_dumps([p.as_json() for p in ps])


def test_a_simulated_months_cases_write_the_same_text() -> None:
    """Cases as the reducer makes them (every kind of the simulator's events)."""
    catalogue = load_catalogue()
    events = generate(catalogue, load_calendar("cn"), dt.date(2024, 3, 1), 31, per_day=40,
                      seed=5)  # fmt: skip
    by_case: dict[str, list[SourceEvent]] = defaultdict(list)
    for i, e in enumerate(events, 1):
        by_case[e.case_id].append(SourceEvent(i, i, e.case_id, e.kind, e.occurred_at, e.payload))
    states = [reduce_case(c, es, catalogue.matters) for c, es in by_case.items()]
    assert len(states) > 500
    assert sum(1 for s in states if s.pauses) > 10 and sum(1 for s in states if s.facts.fees) > 10
    for s in states:
        assert s.clocks.as_text() == json_dumps(s.clocks.as_json())
        assert s.facts.as_text() == json_dumps(s.facts.as_json())
        assert pauses_text(s.pauses) == json_dumps([p.as_json() for p in s.pauses])
