"""The words of a notification: a card's facts rendered by the templates of ``templating``.

Pure: the same facts give the same message, in the configured language and
the channel's markup, with deadlines written as the Civil Code reads them
(24:00) and the time left as people say it ("超期 1 个工作日", never "剩余：-1.0").
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.calendar import Calendar
from monitor.cards.store import CardRecord
from monitor.config import NotifyConfig
from monitor.outbox import escape
from monitor.outbox.message import Message
from monitor.outbox.templating import MARKDOWN, Markup, render_template
from monitor.vocab import CLOCK_TITLES, LEVEL_NAMES, Lang, local_text, subject_text, word

__all__ = [
    "ACTIONS",
    "COLOURS",
    "CardFacts",
    "action_text",
    "card_link",
    "context",
    "due_text",
    "mentions",
    "message_of",
    "payload",
    "render",
    "render_group",
    "window_suffix",
]

# WeCom's three colours: red is ``warning``; yellow has no match, so ``comment`` keeps it apart.
COLOURS = {"red": "warning", "yellow": "comment", "blue": "info"}

ACTIONS = {
    "zh": {
        "blue": "提醒：请关注办理进度，确保在时限内办结。",
        "yellow": "预警：即将超期，请立即督办，当日内说明情况{how}。",
        "red": "违规：已超期或违反程序，请在督办期限内书面说明并整改{how}。",
    },
    "en": {
        "blue": "Reminder: keep an eye on this case so it finishes in time.",
        "yellow": "Warning: about to be overdue; act now and explain today{how}.",
        "red": "Violation: overdue or against procedure; reply and rectify within the "
        "supervision order's period{how}.",
    },
}
# Where the explanation is given: the card's page when the console has an address (a window
# head reads this on a phone, the link right below), else the command an operator runs.
HOW = {
    "zh": ("（打开下方督办卡签收说明）", "（jiancha cards ack）"),
    "en": (" (acknowledge on the card's page, linked below)", " (jiancha cards ack)"),
}


def action_text(level: str, lang: Lang, linked: bool) -> str:
    """What the window head is asked to do, and where."""
    return ACTIONS[lang].get(level, "").format(how=HOW[lang][0 if linked else 1])


@dataclass(frozen=True)
class CardFacts:
    """What a notification says about a card: its ledger record, with the words for it."""

    card: CardRecord
    rule_title: str = ""
    matter_name: str = ""


def _provisional(detail: Mapping[str, Any], lang: Lang) -> str:
    """The note on a deadline counted on a year whose holiday notice is not published."""
    if not detail.get("provisional"):
        return ""
    if lang == "zh":
        return "（暂定：该年度放假安排尚未公布，按《全国年节及纪念日放假办法》推定）"
    return " (provisional: that year's holiday notice is not published; inferred from the law)"


def _deemed(detail: Mapping[str, Any], tz: str, lang: Lang) -> str:
    """Why a case nobody accepted has decision clocks: acceptance deemed (Art. 32)."""
    at = detail.get("deemed_accepted_at")
    if not at:
        return ""
    when = local_text(dt.datetime.fromisoformat(str(at)), tz, deadline=True, missing="")
    if lang == "zh":
        return (f"视为受理：受理期限 {when} 届满未作决定（《行政许可法》第三十二条），"
                "自收到材料起计时")  # fmt: skip
    return (f"Deemed accepted: the acceptance limit passed on {when} with no decision "
            "(Administrative Licensing Law, Art. 32); counted from receipt")  # fmt: skip


def due_text(remaining: float | None, lang: Lang) -> str:
    """ "超期 0.4 个工作日" or "剩余 2 个工作日": never a negative remainder, never "-0.0"."""
    if remaining is None:
        return ""
    if remaining < 0:  # rounded away from zero: overdue is never "0"
        n = _number(math.ceil(round(-remaining * 10, 6)) / 10)
        return f"超期 {n} 个工作日" if lang == "zh" else f"overdue by {n} {_days(n)}"
    n = _number(math.floor(round(remaining * 10, 6)) / 10)
    return f"剩余 {n} 个工作日" if lang == "zh" else f"{n} {_days(n)} left"


def _days(n: str) -> str:
    return "working day" if n == "1" else "working days"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def card_link(base_url: str, card_id: int | None) -> str:
    """The console's page of the card (``[web] base_url``), or nothing when unset."""
    if not base_url or card_id is None:
        return ""
    return f"{base_url}/cards/{urllib.parse.quote(str(card_id), safe='')}"


def window_suffix(window: str, lang: Lang) -> str:
    """ " 窗口" after a window's name, unless the name already says so (综合受理1号窗口)."""
    if lang == "en":
        return ""
    return "" if window.endswith("窗口") or window == "—" else " 窗口"


_USERID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def mentions(cfg: NotifyConfig, window: str | None, flavour: str) -> tuple[str, ...]:
    """Whom the robot @-mentions: the window head's configured id (never with redact_staff)."""
    if cfg.redact_staff or flavour not in MARKDOWN:
        return ()
    found = cfg.head_ids.get(f"window:{window}", {}).get(flavour)
    return (found,) if found and _USERID.match(found) else ()


def staff_name(cfg: NotifyConfig, heads: Mapping[str, str], key: str, flavour: str) -> str:
    """A head's name as configured; none to a third-party robot under ``redact_staff``."""
    if cfg.redact_staff and flavour in MARKDOWN:
        return ""
    return heads.get(key, "")


def context(facts: CardFacts, kind: str, cfg: NotifyConfig, cal: Calendar,
            heads: Mapping[str, str], flavour: str) -> dict[str, Any]:  # fmt: skip
    """What a template may say of a card; jiancha's own words and numbers are ``Markup``."""
    lang: Lang = "en" if cfg.language == "en" else "zh"
    tz = cal.timezone
    card = facts.card
    d = card.detail
    ext = int(d.get("extension_days") or 0)
    remaining = float(d["remaining_days"]) if "remaining_days" in d else None
    ours = {
        "level_name": word(LEVEL_NAMES, card.level, lang),
        "limit": str(d.get("limit_days", "")),
        "extension": str(ext or ""),
        "used": _number(float(d["used_days"])) if "used_days" in d else "",
        "due": due_text(remaining, lang),
        "deadline": local_text(card.deadline, tz, missing="") + _provisional(d, lang),
        "issued": local_text(card.issued_at, tz, missing=""),
        "reply_due": local_text(card.reply_due, tz, missing=""),
        "action": action_text(card.level, lang, bool(card_link(cfg.base_url, card.card_id))),
        "link": card_link(cfg.base_url, card.card_id),
        "base_url": cfg.base_url,
        "card_id": str(card.card_id),
        "colour": COLOURS.get(card.level, "comment"),
        "window_suffix": window_suffix(card.window or "—", lang),
        "deemed": _deemed(d, tz, lang),
    }
    return {
        **{k: Markup(v) for k, v in ours.items()},
        "kind": kind, "level": card.level, "lang": lang, "overdue": (remaining or 0) < 0,
        "window": card.window or "—",
        "department": card.department or "—",
        "head": staff_name(cfg, heads, f"window:{card.window}", flavour),
        "case": card.case_id,
        "matter": facts.matter_name or card.matter or "—",
        "rule": facts.rule_title or card.rule,
        "clock": word(CLOCK_TITLES, card.clock, lang)
        + (f"·{subject_text(d['subject'], tz, lang)}" if d.get("subject") else ""),
    }  # fmt: skip


def render(facts: CardFacts, kind: str, cfg: NotifyConfig, cal: Calendar,
           heads: Mapping[str, str], flavour: str = "text") -> Message:  # fmt: skip
    """The message of a card or escalation for one channel flavour, in the configured language."""
    lang = "en" if cfg.language == "en" else "zh"
    card = facts.card
    text_ctx = context(facts, kind, cfg, cal, heads, "text")
    text = render_template(kind, "text", card.level, text_ctx, lang, cfg.templates)
    ctx = text_ctx if flavour == "text" else context(facts, kind, cfg, cal, heads, flavour)
    body = None
    if flavour in MARKDOWN:
        body = render_template(kind, flavour, card.level, ctx, lang, cfg.templates)
    item = render_template("item", flavour, card.level, ctx, lang, cfg.templates)
    fields = {
        "card_id": card.card_id, "case": card.case_id, "matter": card.matter,
        "department": card.department, "window": card.window, "clock": card.clock,
        "rule": card.rule, "level": card.level,
        "deadline": None if card.deadline is None else card.deadline.isoformat(),
        "issued_at": card.issued_at.isoformat(), "message": text,
        "link": card_link(cfg.base_url, card.card_id) or None,
        "matter_name": facts.matter_name or None,
    }  # fmt: skip
    html_body = "<br>".join(html.escape(line) for line in text.splitlines())
    return Message(key="", kind=kind, title=text.splitlines()[0], text=text,
                   html=f"<p>{html_body}</p>", level=card.level, fields=fields,
                   recipients=mentions(cfg, card.window, flavour), markdown=body,
                   flavour=flavour, item=item)  # fmt: skip


def render_group(items: Sequence[Message], flavour: str, cfg: NotifyConfig) -> Message:
    """One message listing several notifications for one recipient (the rows' own lines)."""
    lang = "en" if cfg.language == "en" else "zh"
    levels = [m.level for m in items]
    esc = escape.markdown if flavour in MARKDOWN else escape.plain
    ctx = {
        # a row queued before templates has no item line: its title, escaped for the markup
        "items": [Markup(m.item or esc(m.title)) for m in items],
        "count": len(items), "reds": levels.count("red"), "yellows": levels.count("yellow"),
        "escalations": sum(m.kind == "escalation" for m in items),
        "base_url": Markup(cfg.base_url), "lang": lang,
    }  # fmt: skip
    top = "red" if "red" in levels else "yellow" if "yellow" in levels else "blue"
    text_ctx = {**ctx, "items": [Markup(escape.plain(m.title)) for m in items]}
    text = render_template("group", "text", None, text_ctx if flavour != "text" else ctx, lang,
                           cfg.templates)  # fmt: skip
    body = render_template("group", flavour, None, ctx, lang, cfg.templates)
    who = tuple(dict.fromkeys(r for m in items for r in m.recipients))
    return Message(key=",".join(m.key for m in items), kind="group",
                   title=text.splitlines()[0], text=text,
                   html="<p>" + "<br>".join(html.escape(x) for x in text.splitlines()) + "</p>",
                   level=top, fields={"cards": [m.fields.get("card_id") for m in items]},
                   recipients=who, markdown=body if flavour in MARKDOWN else None,
                   flavour=flavour)  # fmt: skip


def payload(message: Message) -> dict[str, Any]:
    return {"kind": message.kind, "title": message.title, "text": message.text,
            "html": message.html, "level": message.level, "fields": dict(message.fields),
            "recipients": list(message.recipients), "markdown": message.markdown,
            "flavour": message.flavour, "item": message.item}  # fmt: skip


def message_of(key: str, data: Mapping[str, Any]) -> Message:
    return Message(key=key, kind=data["kind"], title=data["title"], text=data["text"],
                   html=data.get("html"), level=data.get("level"),
                   fields=data.get("fields") or {},
                   recipients=tuple(data.get("recipients") or ()),
                   markdown=data.get("markdown"), flavour=data.get("flavour"),
                   item=data.get("item"))  # fmt: skip
