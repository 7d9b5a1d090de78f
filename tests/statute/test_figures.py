"""The figures (docs/rule-book.md §5) have one definition, and every door agrees on it.

A simulated centre's history goes through the daemon's own path into
PostgreSQL. Then the same period is counted four ways: ``figures.tally`` over
the stored cases, the SQL function ``jiancha.figures_v1`` the dashboards and
bulletins use, ``replay`` over the raw events, and the daemon's metrics
snapshot. They must agree, and agree with a plain count made here from the
raw event rows (the cases whose limit needs no pause arithmetic are judged
from scratch with the public calendar API).
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Any

import numpy as np

from exporters.metrics import Holder
from monitor import db
from monitor.engine.figures import Counts, case_figures, tally, total
from monitor.evaluator import Evaluator
from monitor.observe import Snapshotter
from monitor.source.contract import SourceEvent
from monitor.state.view import VIEW_COLUMNS, CaseView
from monitor.whatif import replay
from monitor.whatif.simulate import between, generate, load_catalogue
from monitor.whatif.source_writer import install_matters
from tests.cardkit import Driver

FIRST = dt.date(2024, 3, 4)
UNTIL = dt.datetime(2024, 3, 20, tzinfo=dt.UTC)  # some cases finished, some still open
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
FIELDS = ("accepted", "immediate", "completed", "on_time", "early", "late", "overdue_open")


def counts_of(row: Any) -> Counts:
    return Counts(*(int(row[f]) for f in FIELDS))


def as_tuple(n: Counts) -> tuple[int, ...]:
    return tuple(getattr(n, f) for f in FIELDS)


def periods_to_check() -> list[tuple[dt.datetime, dt.datetime]]:
    """Each local day of the history, and the whole of it."""
    days = [dt.datetime.combine(FIRST + dt.timedelta(days=i), dt.time(), TZ) for i in range(17)]
    spans = [(a.astimezone(dt.UTC), b.astimezone(dt.UTC)) for a, b in itertools.pairwise(days)]
    return [*spans, (spans[0][0], UNTIL)]


def plain_count(
    events: list[Any], matters: Any, cal: Any, lo: dt.datetime, hi: dt.datetime, at: dt.datetime
) -> tuple[Counts, dict[str, tuple[dt.datetime | None, str | None]]]:
    """The figures straight from the raw rows, without jiancha's clocks.

    Accepted, immediate and completed are counted for every case. The deadline
    and outcome are judged here only for cases whose decision clock needs no
    pause, extension or deemed acceptance (the others' arithmetic is the
    statute engine's, tested in tests/statute); they are returned for those.
    """
    by_case: dict[str, list[Any]] = {}
    for e in events:
        by_case.setdefault(e[0], []).append(e)
    n = Counts()
    judged: dict[str, tuple[dt.datetime | None, str | None]] = {}
    for cid, evs in by_case.items():
        first = {}
        for _, kind, at_, payload in evs:
            first.setdefault(kind, (at_, payload))
        matter = matters[first["submitted"][1]["matter"]]
        acc = first.get("accepted")
        done = first.get("completed") or (first.get("refused") if acc else None)
        closed = first.get("withdrawn") or first.get("terminated")
        if done is not None and closed is not None and closed[0] <= done[0]:
            done = None
        promised = matter.promised_days
        if acc is not None and "promised_days" in acc[1]:
            promised = acc[1]["promised_days"]
        if acc is not None and lo <= acc[0] < hi:
            n.accepted += 1
            n.immediate += promised == 0
        if done is not None and lo <= done[0] < hi:
            n.completed += 1
        simple = acc is not None and not ({"suspended", "extended"} & set(first))
        if not simple or acc is None or acc[0] - first["submitted"][0] > dt.timedelta(days=4):
            continue
        start = np.asarray([acc[0].replace(tzinfo=None)], dtype="datetime64[s]")
        deadline = cal.deadline(start, promised)[0]
        if promised == 0 and deadline <= start[0]:  # 即办 accepted after close of business
            deadline = cal.deadline(start, 1)[0]
        limit = deadline.astype(dt.datetime).replace(tzinfo=dt.UTC)
        outcome = None
        if done is not None:
            last_day = (limit - dt.timedelta(seconds=1)).astimezone(TZ).date()
            outcome = (
                "late"
                if done[0] >= limit
                else "early"
                if done[0].astimezone(TZ).date() < last_day
                else "on_time"
            )
        judged[cid] = (limit, outcome)
    return n, judged


async def test_metrics_sql_replay_and_a_plain_count_agree(dsn: str, cal, rules) -> None:
    catalogue = load_catalogue()
    events = between(generate(catalogue, cal, FIRST, days=6, seed=1, per_day=40), until=UNTIL)
    kinds = {e.kind for e in events}
    assert {"suspended", "extended", "withdrawn", "completed", "refused"} <= kinds
    async with await db.connect(dsn) as conn:
        await install_matters(conn, catalogue.matters)
        await Driver(conn, Evaluator(rules, cal)).live(events, FIRST, UNTIL)
        views = [
            CaseView.from_row(r)
            for r in await conn.fetch(f"SELECT {VIEW_COLUMNS} FROM jiancha.cases")
        ]
        figs = case_figures(
            [(v, catalogue.matters.get(v.matter or "")) for v in views], cal, rules.statute
        )
        stored = {
            r["case_id"]: (r["decision_deadline"], r["outcome"])
            for r in await conn.fetch(
                "SELECT case_id, decision_deadline, outcome FROM jiancha.cases"
            )
        }
        sql: dict[tuple[dt.datetime, dt.datetime], dict[tuple[str, str], Counts]] = {}
        for lo, hi in periods_to_check():
            rows = await conn.fetch("SELECT * FROM jiancha.figures_v1($1, $2, $2)", lo, hi)
            sql[(lo, hi)] = {(r["dept"], r["win"]): counts_of(r) for r in rows}
        holder = Holder()
        await Snapshotter(holder, dsn, clock=lambda: UNTIL.timestamp()).take(conn)
        snap = holder.get()
        completions = await conn.fetch(
            "SELECT * FROM jiancha.figures_v1('-infinity', $1, $1)", UNTIL
        )

    # the daemon stored exactly what the one function computes
    assert {
        f.case_id: (
            None if f.deadline is None else dt.datetime.fromtimestamp(f.deadline, dt.UTC),
            f.outcome,
        )
        for f in figs
    } == stored
    raw = [(e.case_id, e.kind, e.occurred_at, e.payload) for e in events]
    source = [SourceEvent(i, i, *e) for i, e in enumerate(events, 1)]
    seen_overdue = seen_late = 0
    for lo, hi in periods_to_check():
        python = tally(figs, lo, hi, hi)
        # the SQL mirror, scope by scope
        assert {k: as_tuple(v) for k, v in python.items()} == {
            k: as_tuple(v) for k, v in sql[(lo, hi)].items()
        }, (lo, hi)
        centre = total(python.values())
        # a plain count from the raw rows
        plain, judged = plain_count(raw, catalogue.matters, cal, lo, hi, hi)
        assert (centre.accepted, centre.immediate, centre.completed) == (
            plain.accepted,
            plain.immediate,
            plain.completed,
        ), (lo, hi)
        seen_overdue += centre.overdue_open
        seen_late += centre.late
    # replay over the whole period counts the same
    lo, hi = periods_to_check()[-1]
    result = await replay.run(source, catalogue.matters, rules, cal, lo, hi)
    centre = total(tally(figs, lo, hi, hi).values())
    f = result.figures
    assert (f.accepted, f.immediate, f.completed, f.on_time, f.early, f.late, f.overdue_open) == (
        as_tuple(centre)
    )
    assert f.on_time_rate == centre.on_time_rate and f.early_rate == centre.early_rate
    # the simple cases' deadlines and outcomes, judged from scratch
    assert len(judged) >= 50
    by_id = {x.case_id: x for x in figs}
    for cid, (limit, outcome) in judged.items():
        got = by_id[cid]
        assert (dt.datetime.fromtimestamp(got.deadline, dt.UTC), got.outcome) == (limit, outcome), (
            cid
        )
    # the metrics: overdue now, and the completions counter over all time
    per_dept: dict[str, Counts] = {}
    for r in completions:
        per_dept.setdefault(r["dept"], Counts()).add(counts_of(r))
    assert {k: v for k, v in snap.overdue_cases.items() if v} == {
        k: v.overdue_open for k, v in per_dept.items() if v.overdue_open
    }
    assert {k: v for k, v in snap.completions.items() if v} == {
        (dept, o): n
        for dept, v in per_dept.items()
        for o, n in (("early", v.early), ("on_time", v.on_time - v.early), ("late", v.late))
        if n
    }
    # the history exercised what the figures tell apart
    assert seen_overdue > 0 and seen_late > 0 and centre.early > 0 and centre.immediate > 0
