"""The sixth stage: who hears about which card, in what words, and its delivery, exactly once.

``route`` picks the channels, ``quiet`` the moment, ``render`` the words;
``enqueue`` writes the rows in the card's own transaction; ``send``
delivers them with backoff and rate limits; ``digest`` queues each
window's morning summary. ``message`` is what a channel (the next stage,
``monitor.notify``) receives.
"""

from monitor.outbox.digest import Digester, queue_digests
from monitor.outbox.enqueue import Notifier, card_facts, escalation_facts
from monitor.outbox.message import Channel, Delivery, Message
from monitor.outbox.quiet import hold_until, next_morning
from monitor.outbox.render import CardFacts, message_of, payload, render
from monitor.outbox.route import recipients
from monitor.outbox.send import RateLimit, Sender, SenderStats

__all__ = [
    "CardFacts",
    "Channel",
    "Delivery",
    "Digester",
    "Message",
    "Notifier",
    "RateLimit",
    "Sender",
    "SenderStats",
    "card_facts",
    "escalation_facts",
    "hold_until",
    "message_of",
    "next_morning",
    "payload",
    "queue_digests",
    "recipients",
    "render",
]
