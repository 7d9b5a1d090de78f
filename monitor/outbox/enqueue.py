"""Notifications into the outbox, in the transaction that issued or escalated the card.

Deciding *who* hears *what* and *when* is pure (``route``, ``quiet``,
``render``); the rows are keyed by an idempotency key
(``card:<id>:<channel>``), so a replay or a restart never queues a second
one. The ``Sender`` (``monitor.outbox.send``) delivers them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from monitor import db
from monitor.calendar import Calendar
from monitor.cards.ledger import reply_deadlines
from monitor.cards.store import CardRecord
from monitor.clocks.timing import from_epoch
from monitor.config import NotifyConfig
from monitor.db import json_dumps
from monitor.engine.cards import Decided, ExistingCard
from monitor.log import get_logger
from monitor.outbox.message import Message
from monitor.outbox.quiet import hold_until
from monitor.outbox.render import CardFacts, payload, render
from monitor.outbox.route import recipients
from monitor.outbox.templating import GROUPED, TemplateProblem, flavour_of
from monitor.rules.model import RuleSet
from monitor.source.contract import Matter
from monitor.vocab import level_name

__all__ = ["Notifier", "card_facts", "escalation_facts"]

_log = get_logger("monitor.outbox")


def _title(ruleset: RuleSet, rule: str, lang: str) -> str:
    found = ruleset.by_name().get(rule)
    return found.title(lang) if found is not None else rule


def _matter_name(matters: Mapping[str, Matter], code: str | None) -> str:
    m = matters.get(code or "")
    return m.name if m is not None else ""


def card_facts(
    issued: Sequence[ExistingCard],
    decided: Decided,
    ruleset: RuleSet,
    matters: Mapping[str, Matter],
    lang: str,
    cal: Calendar | None = None,
    now: dt.datetime | None = None,
) -> list[CardFacts]:
    """What the notification of each newly issued card says (with ``cal`` and ``now``, the
    supervision order's reply deadline of a red card, as the ledger wrote it)."""
    by_key = {c.key: c for c in decided.issue}
    news = [by_key[card.key] for card in issued]
    replies: list[dt.datetime | None] = [None] * len(news)
    if cal is not None and now is not None:
        replies = reply_deadlines(news, ruleset, cal, now)
    out = []
    for card, new, reply_due in zip(issued, news, replies, strict=True):
        view = decided.cases.get(card.case_id)
        record = CardRecord(
            card.card_id, card.case_id, card.clock, card.rule, level_name(card.level),
            from_epoch(new.issued_at), None if new.deadline is None else from_epoch(new.deadline),
            view.matter if view else None, view.department if view else None,
            view.window if view else None, dict(new.detail), reply_due=reply_due,
        )  # fmt: skip
        out.append(CardFacts(record, _title(ruleset, card.rule, lang),
                             _matter_name(matters, record.matter)))  # fmt: skip
    return out


def escalation_facts(
    escalated: Sequence[CardRecord], ruleset: RuleSet, matters: Mapping[str, Matter], lang: str
) -> list[CardFacts]:
    """What the notification of each escalated supervision order says."""
    return [
        CardFacts(e, _title(ruleset, e.rule, lang), _matter_name(matters, e.matter))
        for e in escalated
    ]


_ENQUEUE = """
INSERT INTO jiancha.outbox (key, channel, kind, card_id, routed, payload, created_at,
                            not_before, next_attempt_at, give_up_at)
SELECT k, c, t, i, r, p::jsonb, $9, n, n, n + $10::interval
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bool[], $6::text[],
            $7::timestamptz[], $8::text[]) AS u(k, c, t, i, r, p, n, x)
ON CONFLICT (key) DO NOTHING
"""


@dataclass
class Notifier:
    """Turns ledger steps into outbox rows, in the transactions that made the steps."""

    cfg: NotifyConfig
    cal: Calendar
    unrouted: int = 0  # notifications that matched no route (sent to the fallback)
    dropped: int = 0  # ... and had no fallback either (logged, counted)

    def rows(
        self, items: Iterable[tuple[CardFacts, str]], now: dt.datetime
    ) -> list[tuple[Any, ...]]:
        """(key, channel, kind, card_id, routed, payload JSON, not_before) per delivery."""
        out = []
        for facts, kind in items:
            card = facts.card
            chans, routed = recipients(self.cfg, kind, card.level, card.department or "",
                                       card.window or "")  # fmt: skip
            if not routed:
                self.unrouted += 1
                if not chans:
                    self.dropped += 1
                    _log.warning("notification_unrouted", card=card.card_id, kind=kind,
                                 department=card.department, window=card.window)  # fmt: skip
            if not chans:
                continue
            when = now if kind == "escalation" else hold_until(card.level, now, self.cal, self.cfg)
            rendered: dict[str, str] = {}  # one rendering per flavour of markup
            for channel in chans:
                ckind = str(self.cfg.channels[channel].get("kind", ""))
                flavour = flavour_of(ckind)
                if flavour not in rendered:
                    rendered[flavour] = json_dumps(payload(self._render(facts, kind, flavour)))
                # what comes for one recipient within the window goes as one message
                wait = self.cfg.group_window if ckind in GROUPED and when == now else 0.0
                due = when + dt.timedelta(seconds=wait)
                out.append((f"{kind}:{card.card_id}:{channel}", channel, kind, card.card_id,
                            routed, rendered[flavour], due))  # fmt: skip
        return out

    def _render(self, facts: CardFacts, kind: str, flavour: str) -> Message:
        """The centre's templates, or (one fails at render) the built-in ones: never lost."""
        try:
            return render(facts, kind, self.cfg, self.cal, self.cfg.heads, flavour)
        except TemplateProblem as exc:
            if not self.cfg.templates:
                raise
            _log.error("template_failed", card=facts.card.card_id, error=str(exc))
            return render(facts, kind, replace(self.cfg, templates=""), self.cal,
                          self.cfg.heads, flavour)  # fmt: skip

    async def enqueue(self, conn: db.Connection, items: Sequence[tuple[CardFacts, str]],
                      now: dt.datetime) -> int:  # fmt: skip
        rows = self.rows(items, now)
        if not rows:
            return 0
        cols = list(zip(*rows, strict=True))
        await conn.execute(_ENQUEUE, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]),
                           list(cols[4]), list(cols[5]), list(cols[6]), [""] * len(rows), now,
                           self.cfg.give_up_after)  # fmt: skip
        return len(rows)
