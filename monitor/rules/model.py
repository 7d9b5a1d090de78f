"""What a card rule is: a ladder of thresholds on a period, or a procedural check.

The model the rule files are parsed into (``monitor.rules.load``) and that
the clocks and the engine read; no I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Which running period of a case a clock rule watches, and where its limit comes from.
SOURCES: dict[str, str | None] = {
    "acceptance": None,  # None: the rule's limit_days
    "decision": "promised_days",
    "statutory": "statutory_days",
    "delivery": None,
    "immediate": None,
    "step": "step_days",
    "pause": "pause_max_days",
    "review_visit": None,
    "review": None,
    "supplement": "pledged_days",
}

# Procedural checks: code decides the fact, the file its level and parameters.
CHECKS: dict[str, frozenset[str]] = {
    "repeated_supplement_request": frozenset({"max_requests"}),
    "pause_type_not_allowed": frozenset(),
    "irregular_extension": frozenset({"max_days", "max_count"}),
    "fee_on_free_matter": frozenset(),
    "refusal_without_reason": frozenset(),
    "supplement_after_acceptance": frozenset(),
    "refused_after_acceptance": frozenset(),
}


class RuleError(ValueError):
    """A rule file is wrong; ``str()`` says where and why."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)


@dataclass(frozen=True)
class Threshold:
    """When one level is due; the earliest of its parts."""

    fraction: float | None = None  # "50%": share of the limit consumed
    consumed_days: float | None = None  # "3wd"
    remaining_days: float | None = None  # "1wd left"
    after_deadline_days: float | None = None  # "deadline" = 0, "deadline+5wd" = 5
    text: str = ""

    def consumed_at(self, allowed: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Working days consumed at which the level is due, for limits ``allowed``.

        At or beyond ``allowed`` the calendar kernel treats the value like a
        deadline (end of that working day); below, as an exact instant.
        """
        a = np.asarray(allowed, dtype=np.float64)
        out = np.full(a.shape, np.inf)
        if self.fraction is not None:
            out = np.minimum(out, self.fraction * a)
        if self.consumed_days is not None:
            out = np.minimum(out, self.consumed_days)
        if self.remaining_days is not None:
            out = np.minimum(out, np.maximum(a - self.remaining_days, 0.0))
        if self.after_deadline_days is not None:
            out = np.minimum(out, a + self.after_deadline_days)
        return out


_PART_RE = re.compile(
    r"^(?:(?P<pct>\d+(?:\.\d+)?)\s*%"
    r"|(?P<wd>\d+(?:\.\d+)?)\s*wd(?P<left>\s+left)?"
    r"|deadline(?:\s*\+\s*(?P<after>\d+(?:\.\d+)?)\s*wd)?)$"
)


def parse_threshold(value: str | list[str]) -> Threshold:
    """A threshold from its text (see rules/cards.toml); ValueError when malformed."""
    parts = [value] if isinstance(value, str) else value
    if not parts or not all(isinstance(p, str) for p in parts):
        raise ValueError(repr(value))
    found: dict[str, float] = {}
    for part in parts:
        m = _PART_RE.match(part.strip())
        if m is None:
            raise ValueError(part)
        if m["pct"] is not None:
            key, number = "fraction", float(m["pct"]) / 100.0
            if not 0.0 < number <= 1.0:
                raise ValueError(part)
        elif m["wd"] is not None:
            key = "remaining_days" if m["left"] else "consumed_days"
            number = float(m["wd"])
        else:
            key, number = "after_deadline_days", float(m["after"] or 0)
        if key in found:
            raise ValueError(part)
        found[key] = number
    text = value if isinstance(value, str) else " | ".join(value)
    return Threshold(**found, text=text)


@dataclass(frozen=True)
class ClockRule:
    """A ladder of levels on one running period of a case."""

    rule: str
    clock: str
    on: str
    name: str
    name_en: str
    thresholds: Mapping[int, Threshold]  # level -> threshold
    limit_days: int | None = None
    supervision: int | None = None  # level whose card carries a supervision order
    enabled: bool = True
    line: int | None = None

    def title(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name


@dataclass(frozen=True)
class CheckRule:
    """A procedural fact that is a card whenever it holds."""

    rule: str
    check: str
    clock: str
    name: str
    name_en: str
    level: int
    params: Mapping[str, float] = field(default_factory=dict)
    enabled: bool = True
    line: int | None = None

    def title(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name


Rule = ClockRule | CheckRule


@dataclass(frozen=True)
class Override:
    regions: frozenset[str]
    departments: frozenset[str]
    matters: frozenset[str]
    rule: str
    changes: Mapping[str, Any]
    line: int | None = None

    @property
    def rank(self) -> int:
        """Specificity: matter over department over region."""
        return 3 if self.matters else 2 if self.departments else 1

    def applies(self, region: str | None, department: str | None, matter: str | None) -> bool:
        return (
            (not self.regions or region in self.regions)
            and (not self.departments or department in self.departments)
            and (not self.matters or matter in self.matters)
        )


EXTENSION_MODES = ("before_deadline", "always", "never")


@dataclass(frozen=True)
class Statute:
    """How a centre reads the statute where the law leaves it to the centre (docs/rule-book.md).

    - ``pause_default_days``: the allowance of a pause whose matter sets no
      maximum for its type and whose notice gives no days; past it the pause
      counts as running time, so a pause never resumed cannot freeze a case;
    - ``extension_extends_promised``: whether an extension (Art. 42, always
      on the statutory clock) also extends the promised limit: only when
      asked before the promised deadline, always, or never;
    - ``acceptance_days``: the limit past which an application neither
      accepted, refused nor sent a 补正 notice is deemed accepted (Art. 32);
    - ``joint_statutory_days`` / ``joint_extension_days``: joint handling
      (联合办理, Art. 26): 45 working days, extensible by 15.
    """

    pause_default_days: int = 30
    extension_extends_promised: str = "before_deadline"
    acceptance_days: int = 5
    joint_statutory_days: int = 45
    joint_extension_days: int = 15


@dataclass(frozen=True)
class RuleSet:
    """Every rule in force, and how to resolve them for one case."""

    name: str
    description: str
    rules: tuple[Rule, ...]
    overrides: tuple[Override, ...] = ()
    supervision_reply_days: int = 5
    statute: Statute = field(default_factory=Statute)
    paths: tuple[Path, ...] = ()
    fingerprint: str = ""
    _cache: dict[tuple[str | None, ...], tuple[Rule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def by_name(self) -> dict[str, Rule]:
        return {r.rule: r for r in self.rules}

    def resolve(
        self, region: str | None, department: str | None, matter: str | None
    ) -> tuple[Rule, ...]:
        """The rules a case of this region, department and matter gets (enabled only)."""
        key = (region, department, matter)
        found = self._cache.get(key)
        if found is None:
            rules = self.by_name()
            for ov in sorted(self.overrides, key=lambda o: o.rank):
                if ov.applies(region, department, matter) and ov.rule in rules:
                    rules[ov.rule] = replace(rules[ov.rule], **ov.changes)
            found = self._cache[key] = tuple(r for r in rules.values() if r.enabled)
        return found

    def clock_rules(self, resolved: Iterable[Rule]) -> list[ClockRule]:
        return [r for r in resolved if isinstance(r, ClockRule)]


def describe_threshold(th: Threshold, allowed: float) -> str:
    """A threshold as text with the working days it means for a limit (for `rules check`)."""
    x = float(th.consumed_at(allowed))
    if math.isinf(x):
        return th.text
    return f"{th.text} → {x:g}"
