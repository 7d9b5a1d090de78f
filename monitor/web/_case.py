"""The case page: the timeline an officer needs to judge a card.

Every event with its business time and the time it reached jiancha; the
pauses with their type and allowance; each clock the rules watch with its
start, limit, working days consumed and deadline as they stand now (marked
provisional when counted on a year whose holidays are not published); every
card with its ledger. The clocks are the engine's own (`periods`,
`level_times`, `used_days`) on the case's region's calendar, so the page
shows what the daemon judges. The matter catalogue lives in the approval
database: the console reads only its names (`matter_names`), so a matter's own
pause maxima are not known here, and an allowance is the notice's days, else
the rules' default.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from monitor.accounts import ROLE_NAMES
from monitor.cards.query import CARD_COLUMNS, EVENT_COLUMNS
from monitor.clocks.periods import deemed_acceptance, pause_allowance, periods
from monitor.clocks.timing import epoch, from_epoch, level_times, used_days
from monitor.engine.decide import provisional_at
from monitor.rules.model import RuleSet
from monitor.state.view import VIEW_COLUMNS, CaseView
from monitor.vocab import CLOCK_TITLES, EVENT_NAMES, LEVEL_NAMES, STATUS_NAMES
from monitor.web._core import Refusal, console, log, matter_names, page, render, signed_in
from monitor.web._scope import sees
from monitor.web._text import CASE_STATUS_NAMES

__all__ = ["case_page", "case_timeline"]

EVENT_LIMIT: Final = 2000
"""Most events shown: a case's whole life is far fewer."""


def _payload(payload: Any) -> str:
    """An event's payload as short text (the page escapes it)."""
    if not payload:
        return ""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 300 else text[:299] + "…"


def case_timeline(view: CaseView, rules: RuleSet, now: dt.datetime, regions: Any
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """The case's clocks and pauses as they stand at ``now``: pure, for the page and tests."""
    cal = regions.for_region(view.region)
    at = epoch(now)
    watched = periods(view, None, rules.resolve(view.region, view.department, view.matter), cal)
    times = level_times(cal, watched, at)
    clocks = []
    for p, tm in zip(watched, times, strict=True):
        deadline = tm.deadline
        clocks.append({
            "rule": p.rule.rule, "on": p.rule.on, "subject": p.subject,
            "start": from_epoch(p.start), "stop": None if p.stop is None else from_epoch(p.stop),
            "limit": p.limit, "extension": p.extension,
            "consumed": round(used_days(cal, p, at), 2),
            "deadline": None if deadline is None else from_epoch(deadline),
            "provisional": deadline is not None and provisional_at(cal, deadline),
            "frozen": deadline is None and p.stop is None,
        })  # fmt: skip
    pauses = [{"type": p.type, "start": p.start, "end": p.end, "notified": p.notified_days,
               "allowance": pause_allowance(p, None, rules.statute)}
              for p in view.clocks.pauses]  # fmt: skip
    return clocks, pauses


def case_deemed(view: CaseView, rules: RuleSet, regions: Any) -> dict[str, dt.datetime] | None:
    """Since when the case counts as accepted though no acceptance says so (Art. 32): its
    status word (submitted, 补正) alone would tell an officer it waits for acceptance."""
    got = deemed_acceptance(view, regions.for_region(view.region), rules.statute)
    return None if got is None else {"since": got[0], "limit": got[1]}


_CASE = (
    f"SELECT {VIEW_COLUMNS}, submitted_at, accepted_at, decision_deadline, promised_days,"
    " extension_days, decide_error, decide_failed_at FROM jiancha.cases WHERE case_id = $1"
)
_EVENTS = (
    "SELECT event_id, kind, occurred_at, ingested_at, payload FROM jiancha.events"
    f" WHERE case_id = $1 ORDER BY occurred_at, event_id LIMIT {EVENT_LIMIT}"
)


@page
async def case_page(request: Request) -> Response:
    user = await signed_in(request)
    case_id = request.path_params["case_id"]
    state = console(request)
    async with state.pool.connection() as conn:
        case = await conn.fetchrow(_CASE, case_id)
        cards = [dict(r) for r in await conn.fetch(
            f"SELECT {CARD_COLUMNS} FROM jiancha.cards WHERE case_id = $1 ORDER BY issued_at, id",
            case_id)]  # fmt: skip
        if case is None and not cards:
            raise Refusal(404, "e404")
        place = dict(case) if case is not None else cards[0]
        if not sees(user, place["window"], place["department"]):
            raise Refusal(403, "e403")
        events = [dict(r) for r in await conn.fetch(_EVENTS, case_id)]
        ledger = await conn.fetch(
            f"SELECT {EVENT_COLUMNS} FROM jiancha.card_events WHERE card_id = ANY($1)"
            " ORDER BY at, id", [c["id"] for c in cards])  # fmt: skip
    await matter_names(request)  # the matter's name beside its code
    history: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in ledger:
        history[e["card_id"]].append(dict(e))
    for e in events:
        e["text"] = _payload(e["payload"])
    clocks: list[dict[str, Any]] = []
    pauses: list[dict[str, Any]] = []
    deemed = None
    if case is not None and state.rules is not None:
        view = CaseView.from_row(case)
        try:
            clocks, pauses = case_timeline(view, state.rules, state.clock(), state.regions)
            deemed = case_deemed(view, state.rules, state.regions)
        except Exception as exc:  # the engine's defect this case meets: the page says so
            if case["decide_error"] is None:
                raise
            log.warning("case_timeline_failed", case=case_id, error=f"{type(exc).__name__}: {exc}")
    return render(request, "case.html", case=None if case is None else dict(case),
                  case_id=case_id, cards=cards, history=history, events=events,
                  event_limit=EVENT_LIMIT, clocks=clocks, pauses=pauses, deemed=deemed,
                  LEVEL_NAMES=LEVEL_NAMES, STATUS_NAMES=STATUS_NAMES, EVENT_NAMES=EVENT_NAMES,
                  CLOCK_TITLES=CLOCK_TITLES, ROLE_NAMES=ROLE_NAMES,
                  CASE_STATUS_NAMES=CASE_STATUS_NAMES)  # fmt: skip
