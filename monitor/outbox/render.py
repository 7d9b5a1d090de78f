"""The words of a notification: a card's facts rendered from the templates in ``rules/templates``.

Pure: the same facts give the same message, in the configured language,
with deadlines written as the Civil Code reads them (24:00).
"""

from __future__ import annotations

import html
import string
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.calendar import Calendar
from monitor.cards.store import CardRecord
from monitor.config import NotifyConfig
from monitor.outbox import escape
from monitor.outbox.message import Message
from monitor.paths import rules_dir
from monitor.vocab import CLOCK_TITLES, LEVEL_NAMES, Lang, local_text, subject_text, word

__all__ = ["ACTIONS", "CardFacts", "message_of", "payload", "render"]

ACTIONS = {
    "zh": {
        "blue": "提醒：请关注办理进度，确保在时限内办结。",
        "yellow": "预警：即将超期，请立即督办，当日内说明情况（jiancha cards ack）。",
        "red": "违规：已超期或违反程序，请在督办期限内书面说明并整改（jiancha cards ack）。",
    },
    "en": {
        "blue": "Reminder: keep an eye on this case so it finishes in time.",
        "yellow": "Warning: about to be overdue; act now and explain today (jiancha cards ack).",
        "red": "Violation: overdue or against procedure; reply and rectify within the "
        "supervision order's period (jiancha cards ack).",
    },
}


@dataclass(frozen=True)
class CardFacts:
    """What a notification says about a card: its ledger record, with the words for it."""

    card: CardRecord
    rule_title: str = ""
    matter_name: str = ""


# Values jiancha writes itself (numbers, instants, its own sentences, a URL-encoded link);
# everything else comes from the source or the rules and is escaped for each channel.
_OURS = frozenset({"level_name", "limit", "extension", "used", "remaining", "deadline",
                   "issued", "reply_due", "action", "link", "card_id"})  # fmt: skip


def _template(kind: str, lang: str) -> string.Template:
    path = rules_dir() / "templates" / lang / f"{kind}.md"
    return string.Template(path.read_text(encoding="utf-8"))


def _provisional(detail: Mapping[str, Any], lang: Lang) -> str:
    """The note on a deadline counted on a year whose holiday notice is not published."""
    if not detail.get("provisional"):
        return ""
    if lang == "zh":
        return "（暂定：该年度放假安排尚未公布，按《全国年节及纪念日放假办法》推定）"
    return " (provisional: that year's holiday notice is not published; inferred from the law)"


def render(facts: CardFacts, kind: str, cfg: NotifyConfig, cal: Calendar,
           heads: Mapping[str, str]) -> Message:  # fmt: skip
    """The message of a card or escalation, in the configured language."""
    lang: Lang = "en" if cfg.language == "en" else "zh"
    tz = cal.timezone
    card = facts.card
    d = card.detail
    ext = int(d.get("extension_days") or 0)
    extension = ""
    if ext:
        extension = f"（含延期 {ext} 个工作日）" if lang == "zh" else f" (incl. {ext} extended)"
    link = ""
    if cfg.dashboard_url:  # the values URL-encoded: a link is ours, never the source's markup
        query = urllib.parse.urlencode({"var-window": card.window or "", "var-case": card.case_id})
        link = f"\n{cfg.dashboard_url}?{query}"
    head = heads.get(f"window:{card.window}", "—")
    values = {
        "level_name": word(LEVEL_NAMES, card.level, lang),
        "window": card.window or "—",
        "department": card.department or "—",
        "head": head,
        "case": card.case_id,
        "matter_name": facts.matter_name or card.matter or "—",
        "rule": facts.rule_title or card.rule,
        "clock": word(CLOCK_TITLES, card.clock, lang)
        + (f"·{subject_text(d['subject'], tz, lang)}" if d.get("subject") else ""),
        "limit": d.get("limit_days", "—"),
        "extension": extension,
        "used": f"{float(d['used_days']):.1f}" if "used_days" in d else "—",
        "remaining": f"{float(d['remaining_days']):.1f}" if "remaining_days" in d else "—",
        "deadline": local_text(card.deadline, tz, missing="—") + _provisional(d, lang),
        "issued": local_text(card.issued_at, tz, missing="—"),
        "reply_due": local_text(card.reply_due, tz, missing="—"),
        "action": ACTIONS[lang].get(card.level, ""),
        "link": link,
        "card_id": card.card_id,
    }
    template = _template(kind, lang)

    def fill(esc: Callable[[Any], str]) -> str:
        return template.safe_substitute(
            {k: (v if k in _OURS else esc(v)) for k, v in values.items()}
        ).strip()

    text, md = fill(escape.plain), fill(escape.markdown)
    title = text.splitlines()[0]
    fields = {
        "card_id": card.card_id, "case": card.case_id, "matter": card.matter,
        "department": card.department, "window": card.window, "clock": card.clock,
        "rule": card.rule, "level": card.level,
        "deadline": None if card.deadline is None else card.deadline.isoformat(),
        "issued_at": card.issued_at.isoformat(), "message": text,
    }  # fmt: skip
    body = "<br>".join(html.escape(line) for line in text.splitlines())
    return Message(key="", kind=kind, title=title, text=text, html=f"<p>{body}</p>",
                   level=card.level, fields=fields, markdown=md)  # fmt: skip


def payload(message: Message) -> dict[str, Any]:
    return {"kind": message.kind, "title": message.title, "text": message.text,
            "html": message.html, "level": message.level, "fields": dict(message.fields),
            "recipients": list(message.recipients), "markdown": message.markdown}  # fmt: skip


def message_of(key: str, data: Mapping[str, Any]) -> Message:
    return Message(key=key, kind=data["kind"], title=data["title"], text=data["text"],
                   html=data.get("html"), level=data.get("level"),
                   fields=data.get("fields") or {},
                   recipients=tuple(data.get("recipients") or ()),
                   markdown=data.get("markdown"))  # fmt: skip
