"""The sixth stage: who hears about which card, in what words, and its delivery, exactly once.

``route`` picks the channels, ``quiet`` the moment, ``render`` the words;
``enqueue`` writes the rows in the card's own transaction; ``send``
delivers them with backoff and rate limits; ``digest`` queues each
window's morning summary. ``message`` is what a channel (the next stage,
``monitor.notify``) receives.
"""
