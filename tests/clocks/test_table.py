"""The clock table's bookkeeping: case ids to slots without a dict, against a plain model."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.calendar import load_calendar
from monitor.clocks.scheduler import Scheduler
from monitor.clocks.table import ClockRow, ClockTable
from monitor.clocks.timing import NAT, Period
from monitor.rules.load import load_rules
from monitor.rules.model import ClockRule

RULES = [r for r in load_rules("cards").rules if isinstance(r, ClockRule)][:3]
NOW = 1_735_000_000


class Colliding(str):
    """A case id whose hash collides with every other: probing must compare the ids."""

    __slots__ = ()

    def __hash__(self) -> int:
        return 7


def rows_of(case_id: str, n: int, seed: int) -> list[ClockRow]:
    return [
        (Period(case_id, RULES[(seed + k) % len(RULES)], "", NOW - 3600 * (k + 1), None,
                5 + (seed + k) % 7, k % 2), 0.0, NAT, 0)
        for k in range(n)
    ]  # fmt: skip


def check(table: ClockTable, model: dict[str, list[tuple[str, int]]]) -> None:
    """The table holds exactly the model's rows: owners, slots per case, counts."""
    assert len(table) == sum(len(v) for v in model.values())
    assert table.cases() == len(model) == len(table.by_case)
    assert {str(c) for c in table.by_case} == set(model)
    seen = set()
    for case_id, want in model.items():
        slots = table.by_case[Colliding(case_id) if int(case_id[1:]) % 3 == 0 else case_id]
        assert len(slots) == len(want)
        got = []
        for slot in slots:
            owner = table.owner[slot]
            assert owner is not None and owner[0] == case_id
            got.append((owner[1], int(table.limit[slot])))
            seen.add(slot)
        assert got == want  # in the order they were put
    free = [s for s in range(table.size) if s not in seen]
    assert all(table.owner[s] is None for s in free)
    assert np.isnan(table.th[:, free]).all()  # a free slot never comes due
    assert table.by_case.get("nobody") is None


OPS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 3), st.integers(0, 99)),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_put_and_drop_match_a_dict(ops: list[tuple[int, int, int]]) -> None:
    table = ClockTable(capacity=4)  # grows, and the index rehashes, many times
    model: dict[str, list[tuple[str, int]]] = {}
    for case, n, seed in ops:
        case_id = Colliding(f"K{case}") if case % 3 == 0 else f"K{case}"  # a third collide
        if seed % 5 == 0:
            table.drop(case_id)
            model.pop(str(case_id), None)
        else:
            rows = rows_of(case_id, n, seed)
            table.put(case_id, rows, {})
            if rows:
                model[str(case_id)] = [(p.rule.rule, p.limit) for p, *_ in rows]
            else:
                model.pop(str(case_id), None)
    check(table, model)


def test_colliding_ids_are_told_apart() -> None:
    table = ClockTable()
    ids = [Colliding(f"C{i}") for i in range(50)]
    for i, case_id in enumerate(ids):
        table.put(case_id, rows_of(case_id, 1 + i % 2, i), {})
    for case_id in ids[::2]:
        table.drop(case_id)
    for case_id in ids[1::2]:  # found past the dropped ones' buckets
        slots = table.by_case[case_id]
        assert len(slots) == 1 + ids.index(case_id) % 2
        assert {o[0] for s in slots if (o := table.owner[s]) is not None} == {case_id}
    assert table.cases() == 25
    table.put(ids[0], rows_of(ids[0], 1, 0), {})  # a dropped bucket is reused
    assert table.cases() == 26 and table.by_case[ids[0]]


def test_case_ids_and_owner_columns() -> None:
    table = ClockTable()
    table.put("A", rows_of("A", 2, 0), {})
    table.put("B", rows_of("B", 1, 1), {})
    table.put("C", rows_of("C", 1, 2), {})
    table.drop("B")
    slots = np.arange(table.size, dtype=np.intp)
    assert table.case_ids(slots) == {"A", "C"}
    cases, rules = table.owner_columns()
    assert cases.tolist() == [o[0] if o else "" for o in table.owner[: table.size]]
    assert rules.tolist() == [o[1] if o else "" for o in table.owner[: table.size]]
    # a checkpoint's columns attached again give the same owners
    again = ClockTable()
    again.size = table.size
    for slot, (case, rule) in enumerate(zip(cases.tolist(), rules.tolist(), strict=True)):
        if case:
            again.attach(slot, case, rule)
    assert sorted(again.by_case["A"]) == sorted(table.by_case["A"])
    assert again.owner[: again.size] == table.owner[: table.size]
    assert len(again) == len(table) == 3


def test_bookkeeping_per_clock_is_small() -> None:
    """The index costs bytes per case, not Python objects: well under 64 B with the columns'."""
    table = ClockTable()
    n = 20_000
    for i in range(n):
        case_id = f"C{i:09d}"
        table.put(case_id, rows_of(case_id, 1, i), {})
    assert table.bookkeeping_bytes() / n < 32
    assert table.memory_bytes() / table.start.shape[0] == 76


def test_rising_names_the_cases_the_kernel_finds() -> None:
    """Scheduler.rising through the compact index = the kernel's levels mapped by hand.

    Random rows with extensions, closed pauses and clocks paused now; cases put,
    replaced and dropped, so slots are reused; a full pass, then a tick.
    """
    cal = load_calendar("cn")
    rng = np.random.default_rng(21)
    now = 1_767_150_000  # 2025-12-31 03:00 UTC, a working day
    sched = Scheduler()
    kept: dict[str, list[ClockRow]] = {}
    for _ in range(3000):
        case_id = f"R{int(rng.integers(0, 1200))}"
        if rng.random() < 0.1:
            sched.drop([case_id])
            kept.pop(case_id, None)
            continue
        rows = []
        for _ in range(int(rng.integers(1, 4))):
            start = now - int(rng.integers(60, 30 * 86400))
            since = start + int(rng.integers(0, now - start)) if rng.random() < 0.05 else NAT
            period = Period(case_id, RULES[int(rng.integers(0, len(RULES)))], "", start, None,
                            int(rng.integers(1, 21)), int(rng.integers(0, 6)))  # fmt: skip
            paused = float(rng.uniform(0.05, 3.0)) if rng.random() < 0.1 else 0.0
            rows.append((period, paused, since, int(rng.integers(0, 3))))
        sched.put({case_id: (rows, {})})
        kept[case_id] = rows
    t = sched.table
    n = t.size
    level, nxt = np.empty(n, np.int8), np.empty(n, np.int64)
    cal.levels(t.start[:n], t.limit[:n], t.ext[:n], t.paused[:n], t.since[:n], now,
               t.th[0, :n], t.th[1, :n], t.th[2, :n], level, nxt)  # fmt: skip
    want = sorted({o[0] for s in np.flatnonzero(level > t.issued[:n])
                   if (o := t.owner[int(s)]) is not None})  # fmt: skip
    assert want and sched.rising(cal, now) == want
    assert {str(c) for c in t.by_case} == set(kept) and len(t) == sum(map(len, kept.values()))
    sched.settle(want, cal, now)  # declined: quiet until they rise again
    later = now + 3 * 86400
    level2, nxt2 = np.empty(n, np.int8), np.empty(n, np.int64)
    cal.levels(t.start[:n], t.limit[:n], t.ext[:n], t.paused[:n], t.since[:n], later,
               t.th[0, :n], t.th[1, :n], t.th[2, :n], level2, nxt2)  # fmt: skip
    rose = np.flatnonzero(level2 > t.issued[:n])
    got = set(sched.rising(cal, later))  # the tick: the rows due only
    # a clock paused now has no next rise (only an event restarts it), though its level
    # can still move: one overdue when paused reads red on rest days, when the open
    # pause stops pushing its deadline. The tick finds every running one.
    running = rose[t.since[rose] == NAT]
    assert running.size and t.case_ids(running) <= got <= t.case_ids(rose)


def test_rows_put_settled_need_no_pass_and_their_wakes_are_kept() -> None:
    """A live batch's decisions, made as a pass would at ``now``: no pass is owed for
    them (none ran after every batch for nothing), their next crossing and the instants
    they ask to be looked at again are the scheduler's next instant."""
    cal = load_calendar("cn")
    now = 1_767_150_000  # 2025-12-31 03:00 UTC, a working day
    sched = Scheduler()
    assert sched.rising(cal, now) == [] and sched.next_due is None
    sched.ticked(None)
    start = now - 3600
    rows = [(Period("A", RULES[0], "", start, None, 5, 0), 0.0, NAT, 0)]
    sched.put_settled({"A": (rows, {})}, {}, {"A": None}, cal, now)
    assert not sched.due(dt.datetime.fromtimestamp(now, dt.UTC))  # nothing owed now
    crossing = sched.next_due
    assert crossing is not None and crossing > now  # the row's next level, folded in
    assert sched.rising(cal, crossing - 1) == [] and sched.rising(cal, crossing) == ["A"]
    sched.put_settled({"B": ([], {})}, {}, {"B": now + 60}, cal, now)  # a look asked for
    assert sched.next_due == now + 60 and sched.rising(cal, now + 60) == ["B"]
