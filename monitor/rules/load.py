"""Reading rule files: ``NAME.toml`` on the search path, with the files it extends.

A bad file is refused whole, with file, line and reason, so a running
daemon can keep its last good rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from monitor.i18n import t
from monitor.paths import rules_dir
from monitor.rules.model import (
    CHECKS,
    EXTENSION_MODES,
    SOURCES,
    CheckRule,
    ClockRule,
    Override,
    Rule,
    RuleError,
    RuleSet,
    Statute,
    Threshold,
    parse_threshold,
)
from monitor.tomlpos import TomlLines, syntax_line
from monitor.vocab import CLOCKS, LEVELS

# --- loading -------------------------------------------------------------------------

_TOP = {"description", "extends", "supervision_reply_days", "statute", "clock", "check", "override"}
_CLOCK_KEYS = {
    "rule",
    "clock",
    "on",
    "name",
    "name_en",
    "limit_days",
    "blue",
    "yellow",
    "red",
    "supervision",
    "enabled",
}
_CHECK_KEYS = {"rule", "check", "clock", "name", "name_en", "level", "enabled"}
_OVERRIDE_KEYS = {
    "regions",
    "departments",
    "matters",
    "rule",
    "enabled",
    "blue",
    "yellow",
    "red",
    "limit_days",
    "level",
    "supervision",
}
_RULE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def rules_search_path() -> list[Path]:
    """Folders searched for ``NAME.toml``: ``JIANCHA_RULES_PATH`` first, then rules/."""
    extra = os.environ.get("JIANCHA_RULES_PATH", "")
    return [*(Path(p) for p in extra.split(os.pathsep) if p), rules_dir()]


def _find(name: str, search_path: list[Path]) -> Path:
    if name.endswith(".toml") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise RuleError(t("rules.not_found", name=name, searched=str(path.parent)))
        return path
    for folder in search_path:
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    searched = ", ".join(str(p) for p in search_path)
    raise RuleError(t("rules.not_found", name=name, searched=searched))


def load_rules(name: str = "cards", *, search_path: list[Path] | None = None) -> RuleSet:
    """A rule set by name or path, with the files it extends under it."""
    path_list = search_path if search_path is not None else rules_search_path()
    chain: list[tuple[Path, dict[str, Any], TomlLines]] = []
    current: str | None = name
    while current is not None:
        path = _find(current, path_list)
        if any(p == path for p, _, _ in chain):
            raise RuleError(t("rules.cycle", name=current), path)
        data, lines = _read(path)
        chain.append((path, data, lines))
        parent = data.get("extends")
        if parent is not None and not isinstance(parent, str):
            raise RuleError(
                t("rules.bad_type", name="extends", expected="text"), path, lines.key("extends")
            )
        current = parent
    rules: dict[str, Rule] = {}
    overrides: list[Override] = []
    description = ""
    reply_days = 5
    statute = Statute()
    for path, data, lines in reversed(chain):  # base first
        parsed = _Parser(path, lines)
        for rule in parsed.rules(data):
            rules[rule.rule] = rule
        description = data.get("description", description)
        if "supervision_reply_days" in data:
            reply_days = parsed.int_value(
                data["supervision_reply_days"], "supervision_reply_days", 0, minimum=1
            )
        if "statute" in data:
            statute = parsed.statute(data["statute"], statute)
        overrides.extend(parsed.overrides(data, rules))
    digest = hashlib.sha256()
    for _, _, lines in chain:
        digest.update(lines.text.encode())
    return RuleSet(
        name=Path(name).stem,
        description=str(description),
        rules=tuple(rules.values()),
        overrides=tuple(overrides),
        supervision_reply_days=reply_days,
        statute=statute,
        paths=tuple(p for p, _, _ in chain),
        fingerprint=digest.hexdigest()[:16],
    )


def _read(path: Path) -> tuple[dict[str, Any], TomlLines]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(t("rules.unreadable", detail=str(exc)), path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(
            t("rules.toml_syntax", detail=str(exc)), path, syntax_line(exc, text)
        ) from None
    lines = TomlLines(text)
    for key in data:
        if key not in _TOP:
            raise RuleError(
                t("rules.unknown_key", name=key, allowed=", ".join(sorted(_TOP))),
                path,
                lines.key(key),
            )
    return data, lines


class _Parser:
    def __init__(self, path: Path, lines: TomlLines) -> None:
        self.path = path
        self.lines = lines

    def fail(self, message: str, key: str | None, at: int | None) -> RuleError:
        line = self.lines.key(key, at) if key is not None else at
        return RuleError(message, self.path, line)

    def entries(self, data: dict[str, Any], header: str) -> list[tuple[dict[str, Any], int]]:
        value = data.get(header, [])
        if not isinstance(value, list):
            raise self.fail(t("rules.bad_type", name=header, expected=f"[[{header}]]"), header, 0)
        out = []
        for nth, entry in enumerate(value):
            at = self.lines.array_table(header, nth) or 0
            if not isinstance(entry, dict):
                raise self.fail(
                    t("rules.bad_type", name=header, expected=f"[[{header}]]"), None, at
                )
            out.append((entry, at))
        return out

    def keys(self, entry: dict[str, Any], allowed: set[str], at: int) -> None:
        for key in entry:
            if key not in allowed:
                raise self.fail(
                    t("rules.unknown_key", name=key, allowed=", ".join(sorted(allowed))), key, at
                )

    def text(self, entry: dict[str, Any], key: str, at: int, default: str | None = None) -> str:
        value = entry.get(key, default)
        if value is None:
            raise self.fail(t("rules.missing_key", name=key), None, at)
        if not isinstance(value, str) or not value:
            raise self.fail(t("rules.bad_type", name=key, expected="text"), key, at)
        return value

    def int_value(self, value: Any, key: str, at: int, minimum: int = 0) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(t("rules.bad_int", name=key, value=value, minimum=minimum), key, at)
        return value

    def statute(self, value: Any, base: Statute) -> Statute:
        """The ``[statute]`` table: the centre's reading where the law leaves a choice."""
        at = self.lines.table("statute") or 0
        if not isinstance(value, dict):
            raise self.fail(t("rules.bad_type", name="statute", expected="[statute]"), "statute", 0)
        known = {f.name for f in fields(Statute)}
        changes: dict[str, Any] = {}
        for key, item in value.items():
            if key not in known:
                raise self.fail(t("rules.unknown_key", name=key, allowed=", ".join(sorted(known))),
                                key, at)  # fmt: skip
            if key == "extension_extends_promised":
                if item not in EXTENSION_MODES:
                    expected = " / ".join(EXTENSION_MODES)
                    raise self.fail(t("rules.bad_type", name=key, expected=expected), key, at)
                changes[key] = item
            else:
                changes[key] = self.int_value(item, key, at, minimum=1)
        return replace(base, **changes)

    def bool_value(self, value: Any, key: str, at: int) -> bool:
        if not isinstance(value, bool):
            raise self.fail(t("rules.bad_type", name=key, expected="true / false"), key, at)
        return value

    def level(self, value: Any, key: str, at: int) -> int:
        if value not in LEVELS:
            raise self.fail(t("rules.bad_level", name=key, value=value), key, at)
        return LEVELS.index(value) + 1

    def name(self, entry: dict[str, Any], at: int) -> str:
        name = self.text(entry, "rule", at)
        if not _RULE_NAME_RE.match(name):
            raise self.fail(t("rules.bad_rule_name", value=name), "rule", at)
        return name

    def thresholds(self, entry: dict[str, Any], at: int) -> dict[int, Threshold]:
        out: dict[int, Threshold] = {}
        for n, key in enumerate(LEVELS, 1):
            if key in entry:
                try:
                    out[n] = parse_threshold(entry[key])
                except ValueError:
                    raise self.fail(
                        t("rules.bad_threshold", name=key, value=entry[key]), key, at
                    ) from None
        return out

    def supervision(self, value: Any, at: int) -> int | None:
        if value is False or value == "none":
            return None
        return self.level(value, "supervision", at)

    def clock(self, entry: dict[str, Any], at: int) -> str:
        clock = self.text(entry, "clock", at)
        if clock not in CLOCKS:
            raise self.fail(
                t("rules.bad_clock", value=clock, allowed=", ".join(CLOCKS)), "clock", at
            )
        return clock

    def limit(self, entry: dict[str, Any], on: str, at: int) -> int | None:
        """The rule's own limit: required where the catalogue has none, refused where it has."""
        if "limit_days" in entry:
            if SOURCES[on] is not None:
                raise self.fail(
                    t("rules.limit_from_catalogue", on=on, source=SOURCES[on]), "limit_days", at
                )
            return self.int_value(entry["limit_days"], "limit_days", at)
        if SOURCES[on] is None:
            raise self.fail(t("rules.limit_needed", on=on), None, at)
        return None

    def clock_rule(self, entry: dict[str, Any], at: int) -> ClockRule:
        self.keys(entry, _CLOCK_KEYS, at)
        name = self.name(entry, at)
        clock = self.clock(entry, at)
        on = self.text(entry, "on", at, default=clock)
        if on not in SOURCES:
            raise self.fail(t("rules.bad_on", value=on, allowed=", ".join(SOURCES)), "on", at)
        limit = self.limit(entry, on, at)
        thresholds = self.thresholds(entry, at)
        if not thresholds:
            raise self.fail(t("rules.no_levels", rule=name), None, at)
        supervision = self.supervision(entry.get("supervision", False), at)
        if supervision is not None and supervision not in thresholds:
            raise self.fail(
                t("rules.supervision_level", level=LEVELS[supervision - 1]), "supervision", at
            )
        return ClockRule(
            rule=name,
            clock=clock,
            on=on,
            name=self.text(entry, "name", at, name),
            name_en=self.text(entry, "name_en", at, name),
            thresholds=thresholds,
            limit_days=limit,
            supervision=supervision,
            enabled=self.bool_value(entry.get("enabled", True), "enabled", at),
            line=at,
        )

    def check_rule(self, entry: dict[str, Any], at: int) -> CheckRule:
        name = self.name(entry, at)
        check = self.text(entry, "check", at)
        if check not in CHECKS:
            raise self.fail(
                t("rules.bad_check", value=check, allowed=", ".join(CHECKS)), "check", at
            )
        self.keys(entry, _CHECK_KEYS | CHECKS[check], at)
        clock = self.clock(entry, at)
        params = {k: float(self.int_value(entry[k], k, at)) for k in CHECKS[check] if k in entry}
        return CheckRule(
            rule=name,
            check=check,
            clock=clock,
            name=self.text(entry, "name", at, name),
            name_en=self.text(entry, "name_en", at, name),
            level=self.level(entry.get("level"), "level", at),
            params=params,
            enabled=self.bool_value(entry.get("enabled", True), "enabled", at),
            line=at,
        )

    def rules(self, data: dict[str, Any]) -> list[Rule]:
        out: list[Rule] = []
        seen: set[str] = set()
        for entry, at in self.entries(data, "clock"):
            out.append(self._unique(self.clock_rule(entry, at), seen, at))
        for entry, at in self.entries(data, "check"):
            out.append(self._unique(self.check_rule(entry, at), seen, at))
        return out

    def _unique(self, rule: Rule, seen: set[str], at: int) -> Rule:
        if rule.rule in seen:
            raise self.fail(t("rules.duplicate", rule=rule.rule), "rule", at)
        seen.add(rule.rule)
        return rule

    def overrides(self, data: dict[str, Any], rules: Mapping[str, Rule]) -> list[Override]:
        out = []
        for entry, at in self.entries(data, "override"):
            self.keys(entry, _OVERRIDE_KEYS, at)
            name = self.text(entry, "rule", at)
            if name not in rules:
                raise self.fail(
                    t("rules.unknown_rule", rule=name, allowed=", ".join(rules)), "rule", at
                )
            scopes: dict[str, frozenset[str]] = {}
            for key in ("regions", "departments", "matters"):
                value = entry.get(key, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise self.fail(t("rules.bad_type", name=key, expected="[text, ...]"), key, at)
                scopes[key] = frozenset(value)
            if not any(scopes.values()):
                raise self.fail(t("rules.override_scope"), None, at)
            base = rules[name]
            changes: dict[str, Any] = {}
            if "enabled" in entry:
                changes["enabled"] = self.bool_value(entry["enabled"], "enabled", at)
            if isinstance(base, ClockRule):
                for key in ("level",):
                    if key in entry:
                        raise self.fail(t("rules.override_key", name=key, rule=name), key, at)
                levels = dict(base.thresholds)
                levels.update(self.thresholds(entry, at))
                changes["thresholds"] = levels
                if "limit_days" in entry:
                    if base.limit_days is None:
                        raise self.fail(
                            t("rules.limit_from_catalogue", on=base.on, source=SOURCES[base.on]),
                            "limit_days",
                            at,
                        )
                    changes["limit_days"] = self.int_value(entry["limit_days"], "limit_days", at)
                if "supervision" in entry:
                    changes["supervision"] = self.supervision(entry["supervision"], at)
            else:
                for key in ("blue", "yellow", "red", "limit_days", "supervision"):
                    if key in entry:
                        raise self.fail(t("rules.override_key", name=key, rule=name), key, at)
                if "level" in entry:
                    changes["level"] = self.level(entry["level"], "level", at)
            out.append(
                Override(
                    scopes["regions"], scopes["departments"], scopes["matters"], name, changes, at
                )
            )
        return out
