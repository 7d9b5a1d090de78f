"""jiancha's daemon: calendar, clocks, rules, cards, notifications."""

__version__ = "0.1.0.dev0"
