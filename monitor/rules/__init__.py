"""Card rules: when a clock's level is due, and which procedural facts are cards.

Thresholds are local practice (docs/rule-book.md §4), so they live in TOML files under
``rules/`` that inspectors edit: ``cards.toml`` is the default set, a profile
``extends`` another and replaces rules by name, and ``[[override]]`` entries
change a rule for some regions (centres), departments or matters. A bad file
is refused whole, with file, line and reason, so a running daemon can keep
its last good rules. Every stage may read a rule set; none writes one.
"""
