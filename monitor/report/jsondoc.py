"""The bulletin as one JSON document: the keys are a contract (shared/CONTRACT.md).

``period``, ``scope``, ``figures`` {accepted, completed, immediate,
immediate_share, on_time_rate, early_rate, overdue_open, cards {blue, yellow,
red}, satisfaction_rate, rectification_rate, mean_working_days_used} and
``departments`` stay; more keys may be added. Rates are fractions (0.9731),
null when nothing was there to divide; instants are ISO 8601 UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitor.report.model import Figures, Listed, Report, Scoped
from monitor.report.versions import label

__all__ = ["figures_json", "report_json"]


def figures_json(f: Figures) -> dict[str, Any]:
    """One scope's figures: the contract's keys, then the counts behind the rates."""
    return {
        "accepted": f.accepted,
        "completed": f.completed,
        "immediate": f.immediate,
        "immediate_share": f.immediate_share,
        "on_time_rate": f.on_time_rate,
        "early_rate": f.early_rate,
        "overdue_open": f.overdue_open,
        "cards": dict(f.cards),
        "satisfaction_rate": f.satisfaction_rate,
        "rectification_rate": f.rectification_rate,
        "mean_working_days_used": f.mean_working_days_used,
        "mean_promised_days": f.mean_promised_days,
        "mean_statutory_days": f.mean_statutory_days,
        "on_time": f.on_time,
        "early": f.early,
        "late": f.late,
        "cards_revoked": f.cards_revoked,
        "ratings": f.ratings,
        "satisfied": f.satisfied,
        "bad_reviews": f.bad_reviews,
        "rectified": f.rectified,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _scoped(s: Scoped, *, rank: bool) -> dict[str, Any]:
    head: dict[str, Any] = {"department": s.department}
    if rank:
        head["rank"] = s.rank
    else:
        head["window"] = s.window
    return {**head, **figures_json(s.figures)}


def _listed(x: Listed) -> dict[str, Any]:
    out: dict[str, Any] = {
        "case_id": x.case_id,
        "matter": x.matter,
        "department": x.department,
        "window": x.window,
        "at": _iso(x.at),
        "reason": x.reason,
    }
    if x.card_id is not None:
        out["card_id"] = x.card_id
    return out


def report_json(r: Report) -> dict[str, Any]:
    p = r.period
    return {
        "period": p.key,
        "kind": p.kind,
        "scope": r.scope,
        "centre": r.centre,
        "department": r.department,
        "from": _iso(p.lo),
        "to": _iso(p.hi),
        "timezone": p.tz,
        "generated_at": _iso(r.generated_at),
        "figures": figures_json(r.figures),
        "departments": [_scoped(s, rank=True) for s in r.departments],
        "windows": [_scoped(s, rank=False) for s in r.windows],
        "compared": {
            "previous": {"period": p.previous().key, "figures": figures_json(r.previous)},
            "year_ago": {"period": p.year_earlier().key, "figures": figures_json(r.year_ago)},
        },
        "cards_by_rule": [
            {"rule": c.rule, "title": c.title, **c.levels, "revoked": c.revoked} for c in r.by_rule
        ],
        "red_cards": [_listed(x) for x in r.red_cards],
        "overdue": [_listed(x) for x in r.overdue],
        "notes": list(r.notes),
        "version": r.version,
        "revision": _revision(r),
    }


def _revision(r: Report) -> dict[str, Any] | None:
    """A revision's number, the version it corrects and the figures that changed."""
    v = r.revision
    if v is None:
        return None
    return {
        "version": v.version,
        "previous_generated_at": v.previous_generated_at,
        "changed": [
            {"key": c.key, "label": label(c.key), "was": c.was, "now": c.now} for c in v.changed
        ],
    }
