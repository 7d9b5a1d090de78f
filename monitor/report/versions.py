"""A bulletin's versions: which figures a late event changed (pure).

A closed period's bulletin is not overwritten when late events change it:
the next version is a revision that lists what changed. "What changed" is a
comparison of the figures of the two JSON documents, flattened to one value
per stable key (``figures.completed``, ``departments.税务局.on_time_rate``,
``red_cards.1234``); the digest of that flat mapping decides whether a
period's figures changed at all, so the time of generation, a centre's name
or a note never make a version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Change", "Revision", "changes", "digest", "flatten", "label", "shown"]

# Rates are compared at this many decimals: float noise is no revision.
_DECIMALS: Final = 9
# The figures' own words for the keys of a change (rule-book §5; as in the documents).
_WORDS: Final = {
    "accepted": ("受理件", "accepted"),
    "completed": ("办结件", "completed"),
    "immediate": ("即办件", "immediate cases"),
    "immediate_share": ("即办件占比", "immediate share"),
    "on_time_rate": ("按期办结率", "on-time rate"),
    "early_rate": ("提前办结率", "early rate"),
    "overdue_open": ("期末超期件", "overdue at period end"),
    "cards.red": ("红牌", "red cards"),
    "cards.yellow": ("黄牌", "yellow cards"),
    "cards.blue": ("蓝牌", "blue cards"),
    "satisfaction_rate": ("满意率", "satisfaction rate"),
    "rectification_rate": ("差评整改率", "rectification rate"),
    "mean_working_days_used": ("平均办理用时", "mean working days used"),
    "mean_promised_days": ("平均承诺时限", "mean promised limit"),
    "mean_statutory_days": ("平均法定时限", "mean statutory limit"),
    "on_time": ("按期办结数", "completed on time"),
    "early": ("提前办结数", "completed early"),
    "late": ("超期办结数", "completed late"),
    "cards_revoked": ("撤销的牌", "cards revoked"),
    "ratings": ("评价数", "ratings"),
    "satisfied": ("满意数", "satisfied"),
    "bad_reviews": ("差评数", "bad reviews"),
    "rectified": ("已整改差评", "rectified"),
    "rank": ("排名", "rank"),
    "revoked": ("撤销", "revoked"),
    "red": ("红牌", "red"),
    "yellow": ("黄牌", "yellow"),
    "blue": ("蓝牌", "blue"),
}
_SECTIONS: Final = {
    "figures": ("本期", "this period"),
    "previous": ("上期（环比）", "previous period"),
    "year_ago": ("上年同期（同比）", "a year earlier"),
    "departments": ("部门", "department"),
    "windows": ("窗口", "window"),
    "cards_by_rule": ("按规则发牌", "cards by rule"),
    "red_cards": ("红牌清单", "red card list"),
    "overdue": ("超期件清单", "overdue list"),
}


@dataclass(frozen=True)
class Change:
    """One figure that differs from the version before (None: absent there, or no rate)."""

    key: str
    was: Any
    now: Any


@dataclass(frozen=True)
class Revision:
    """What makes a version after the first a revision: its number and what it changed."""

    version: int
    previous_generated_at: str | None  # ISO UTC, as the earlier version's JSON says
    changed: tuple[Change, ...]


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, _DECIMALS)
    return v


def _figures(prefix: str, figures: Mapping[str, Any], out: dict[str, Any]) -> None:
    for k, v in figures.items():
        if isinstance(v, Mapping):
            for level, n in v.items():
                out[f"{prefix}.{k}.{level}"] = _value(n)
        else:
            out[f"{prefix}.{k}"] = _value(v)


def flatten(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document's figures, one value per stable key (names and times left out)."""
    out: dict[str, Any] = {}
    _figures("figures", doc["figures"], out)
    compared = doc.get("compared") or {}
    for side in ("previous", "year_ago"):
        if side in compared:
            _figures(side, compared[side]["figures"], out)
    for d in doc.get("departments") or []:
        _figures(f"departments.{d['department']}", {k: v for k, v in d.items()
                                                     if k != "department"}, out)  # fmt: skip
    for w in doc.get("windows") or []:
        rest = {k: v for k, v in w.items() if k not in ("department", "window")}
        _figures(f"windows.{w['department']}/{w['window']}", rest, out)
    for c in doc.get("cards_by_rule") or []:
        for k in ("red", "yellow", "blue", "revoked"):
            out[f"cards_by_rule.{c['rule']}.{k}"] = c.get(k, 0)
    for x in doc.get("red_cards") or []:
        out[f"red_cards.{x.get('card_id', x['case_id'])}"] = x["case_id"]
    for x in doc.get("overdue") or []:
        out[f"overdue.{x['case_id']}"] = x["at"]
    return out


def digest(flat: Mapping[str, Any]) -> str:
    """The figures' fingerprint: equal digests, equal figures."""
    text = json.dumps(flat, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """The keys whose value differs, the document's own figures first, then by key."""

    def order(key: str) -> tuple[int, str]:
        section = key.split(".", 1)[0]
        return (list(_SECTIONS).index(section) if section in _SECTIONS else 99, key)

    keys = sorted(set(before) | set(after), key=order)
    return tuple(
        Change(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)
    )


def label(key: str, lang: str = "zh") -> str:
    """A change's key as an officer reads it: 「部门 税务局 · 办结件」."""
    i = 1 if lang == "en" else 0
    section, _, rest = key.partition(".")
    head = _SECTIONS.get(section, (section, section))[i]
    if section in ("figures", "previous", "year_ago"):
        return f"{head} · {_WORDS.get(rest, (rest, rest))[i]}"
    if section in ("departments", "windows", "cards_by_rule"):
        name, _, figure = rest.rpartition(".")
        if figure in ("red", "yellow", "blue") and name.endswith(".cards"):
            name, figure = name[: -len(".cards")], f"cards.{figure}"
        return f"{head} {name} · {_WORDS.get(figure, (figure, figure))[i]}"
    return f"{head} · {rest}"


def shown(x: Any) -> str:
    """A changed value as the documents and the console print it (rates as fractions)."""
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 1 else f"{x:,.2f}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)
