"""Re-run history on a virtual clock into a separate ledger, and report the period.

The centres ask every year "what if every promised limit were 20% shorter?"
before they compress their limits. A replay answers it with the daemon's own
pipeline and scheduler (``monitor.pipeline``), fed the approval database's
events in business-time order, writing to an in-memory ledger that can be
saved as a run in ``jiancha.replay_runs`` / ``replay_cards`` — never into the
real ledger.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.calendar import Calendar
from monitor.cards.memory import MemoryStore
from monitor.clocks.timing import from_epoch
from monitor.db import Connection
from monitor.engine.figures import case_figures, tally, total
from monitor.evaluator import Evaluator
from monitor.rules.model import RuleSet
from monitor.source.contract import Matter, SourceEvent, event_from_row, validate
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from monitor.vocab import LEVELS, level_name

__all__ = ["Figures", "ReplayResult", "load_events", "run", "save", "scaled"]


def scaled(view: CaseView, scale: float) -> CaseView:
    """The case with its promised limit multiplied by ``scale`` (rounded down)."""
    decision = view.clocks.decision
    if scale == 1.0 or decision is None or decision.limit_days is None:
        return view
    limit = math.floor(decision.limit_days * scale + 1e-9)
    decision = decision._replace(limit_days=limit)
    return replace(view, clocks=replace(view.clocks, decision=decision))


@dataclass
class Figures:
    """The period's figures (docs/rule-book.md §5)."""

    period_from: dt.datetime
    period_to: dt.datetime
    promised_scale: float
    accepted: int = 0
    completed: int = 0
    immediate: int = 0
    on_time: int = 0
    early: int = 0
    late: int = 0
    overdue_open: int = 0
    dead_letters: int = 0
    cards_by_level: dict[str, int] = field(default_factory=dict)
    cards_by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    escalated: int = 0
    not_decided: int = 0  # cases the engine raised on: their cards are missing from the above

    @property
    def on_time_rate(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None

    @property
    def early_rate(self) -> float | None:
        judged = self.on_time + self.late
        return self.early / judged if judged else None

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.period_from.isoformat(),
            "to": self.period_to.isoformat(),
            "promised_scale": self.promised_scale,
            "accepted": self.accepted,
            "completed": self.completed,
            "immediate": self.immediate,
            "on_time": self.on_time,
            "early": self.early,
            "late": self.late,
            "on_time_rate": self.on_time_rate,
            "early_rate": self.early_rate,
            "overdue_open": self.overdue_open,
            "cards_by_level": self.cards_by_level,
            "cards_by_rule": self.cards_by_rule,
            "escalated": self.escalated,
            "dead_letters": self.dead_letters,
            "not_decided": self.not_decided,
        }


@dataclass
class ReplayResult:
    figures: Figures
    store: MemoryStore


async def run(
    events: Sequence[SourceEvent],
    matters: Mapping[str, Matter],
    ruleset: RuleSet,
    cal: Calendar,
    period_from: dt.datetime,
    period_to: dt.datetime,
    *,
    promised_scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Feed events in business-time order, waking at every crossing, up to ``period_to``.

    ``progress`` hears (events fed, events in all) every thousand events and at the end.
    """
    store = MemoryStore()
    ev = Evaluator(ruleset, cal)
    todo = sorted(
        (e for e in events if e.occurred_at < period_to), key=lambda e: (e.occurred_at, e.event_id)
    )
    history: dict[str, list[SourceEvent]] = {}
    dead = 0
    i = 0
    end = int(period_to.timestamp())
    while True:
        next_event = int(todo[i].occurred_at.timestamp()) if i < len(todo) else None
        wake = ev.wake_at()
        candidates = [t for t in (next_event, wake) if t is not None and t < end]
        if not candidates:
            break
        t = min(candidates)
        now = from_epoch(t)
        if next_event == t:  # every event of this instant, then the cards they cause
            if progress is not None and i // 1000 != (i - 1) // 1000:
                progress(i, len(todo))
            touched = set()
            while i < len(todo) and int(todo[i].occurred_at.timestamp()) == t:
                e = todo[i]
                i += 1
                if validate(e, matters, now) is not None:
                    dead += 1
                    continue
                history.setdefault(e.case_id, []).append(e)
                touched.add(e.case_id)
            views = []
            for cid in sorted(touched):
                st = reduce_case(cid, history[cid], matters)
                if str(st.status) == "orphan":
                    continue
                store.views[cid] = scaled(CaseView.from_state(st), promised_scale)
                views.append(store.views[cid])
            pending = await ev.decide_views(store, views, matters, now, running=True)
            ev.publish(pending)  # their crossings: the incremental tick below
            reply = await store.next_reply_due()
            ev.scheduler.next_reply = None if reply is None else int(reply.timestamp())
        if ev.due(now):
            await ev.tick(store, matters, now)
    if progress is not None:
        progress(len(todo), len(todo))
    figures = _figures(store, matters, ruleset, cal, period_from, period_to, promised_scale)
    figures.dead_letters = dead
    figures.not_decided = len(store.errors)
    figures.escalated = sum(
        1
        for c in store.cards.values()
        if c.escalated_at is not None and period_from <= c.escalated_at < period_to
    )
    return ReplayResult(figures, store)


def _figures(
    store: MemoryStore,
    matters: Mapping[str, Matter],
    ruleset: RuleSet,
    cal: Calendar,
    lo: dt.datetime,
    hi: dt.datetime,
    scale: float,
) -> Figures:
    """The period's figures by the one definition the daemon's metrics and SQL share."""
    fig = Figures(lo, hi, scale)
    views = list(store.views.values())
    cases = [(v, matters.get(v.matter or "")) for v in views]
    n = total(tally(case_figures(cases, cal, ruleset.statute), lo, hi, hi).values())
    fig.accepted, fig.completed, fig.immediate = n.accepted, n.completed, n.immediate
    fig.on_time, fig.early, fig.late, fig.overdue_open = n.on_time, n.early, n.late, n.overdue_open
    for card in store.cards.values():
        if lo <= card.issued_at < hi:
            name = level_name(card.level)
            fig.cards_by_level[name] = fig.cards_by_level.get(name, 0) + 1
            per = fig.cards_by_rule.setdefault(card.rule, {})
            per[name] = per.get(name, 0) + 1
    for name in LEVELS:
        fig.cards_by_level.setdefault(name, 0)
    return fig


_EVENTS = """
SELECT id AS event_id, tx::text AS tx, case_id, kind, occurred_at, payload
FROM case_events WHERE occurred_at < $1 ORDER BY occurred_at, id
"""


async def load_events(conn: Connection, until: dt.datetime) -> list[SourceEvent]:
    return [event_from_row(r) for r in await conn.fetch(_EVENTS, until)]


async def save(
    conn: Connection, result: ReplayResult, ruleset: RuleSet, cal: Calendar, now: dt.datetime
) -> int:
    """Store the run and its ledger beside (never in) the real one; returns the run id."""
    fig = result.figures
    async with conn.transaction():
        run_id: int = await conn.fetchval(
            "INSERT INTO jiancha.replay_runs (created_at, period_from, period_to, promised_scale,"
            " ruleset, calendar, figures) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
            now,
            fig.period_from,
            fig.period_to,
            fig.promised_scale,
            ruleset.fingerprint,
            cal.fingerprint,
            fig.as_json(),
        )
        cards = list(result.store.cards.values())
        await conn.execute(
            "INSERT INTO jiancha.replay_cards (run_id, case_id, clock, rule, level, issued_at, "
            "status, reply_due, escalated_at, subject) SELECT $1, c, k, r, l, i, s, d, e, sj "
            "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], "
            "$7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[]) "
            "AS u(c, k, r, l, i, s, d, e, sj)",
            run_id,
            [c.case_id for c in cards],
            [c.clock for c in cards],
            [c.rule for c in cards],
            [level_name(c.level) for c in cards],
            [c.issued_at for c in cards],
            [c.status for c in cards],
            [c.reply_due for c in cards],
            [c.escalated_at for c in cards],
            [c.subject for c in cards],
        )
    return run_id
