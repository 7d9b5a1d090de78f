"""Card rules: when a clock's level is due, and which procedural facts are cards.

Thresholds are local practice (DOMAIN.md §4), so they live in TOML files under
``rules/`` that inspectors edit: ``cards.toml`` is the default set, a profile
``extends`` another and replaces rules by name, and ``[[override]]`` entries
change a rule for some regions (centres), departments or matters. A bad file
is refused whole, with file, line and reason, so a running daemon can keep
its last good rules. Every stage may read a rule set; none writes one.
"""

from monitor.rules._load import load_rules, rules_search_path
from monitor.rules._model import (
    CHECKS,
    SOURCES,
    CheckRule,
    ClockRule,
    Override,
    Rule,
    RuleError,
    RuleSet,
    Threshold,
    describe_threshold,
    parse_threshold,
)

__all__ = [
    "CHECKS",
    "SOURCES",
    "CheckRule",
    "ClockRule",
    "Override",
    "Rule",
    "RuleError",
    "RuleSet",
    "Threshold",
    "describe_threshold",
    "load_rules",
    "parse_threshold",
    "rules_search_path",
]
