"""The notification part of ``jiancha.toml``: channels, routes, who heads each window and
department, quiet hours, and ``[web] base_url`` for the links in messages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config._values import (
    ConfigError,
    _at,
    _clock,
    _duration,
    _keys,
    _names,
)
from monitor.tomlpos import TomlLines
from monitor.vocab import LEVELS

CHANNEL_KINDS = ("webhook", "wecom", "dingtalk", "smtp", "alertmanager")
ROLES = ("window", "department", "inspectors", "fallback")
KINDS = ("card", "escalation", "resolved", "digest")


@dataclass(frozen=True)
class Route:
    """Which notifications go where: the first matching routes all apply."""

    levels: frozenset[str] = frozenset(LEVELS)
    kinds: frozenset[str] = frozenset({"card"})
    departments: frozenset[str] = frozenset({"*"})
    windows: frozenset[str] = frozenset({"*"})
    channels: tuple[str, ...] = ()  # named channels
    to: tuple[str, ...] = ()  # roles: window, department, inspectors

    def matches(self, kind: str, level: str | None, department: str, window: str) -> bool:
        return (
            kind in self.kinds
            and (level is None or level in self.levels)
            and ("*" in self.departments or department in self.departments)
            and ("*" in self.windows or window in self.windows)
        )


@dataclass(frozen=True)
class QuietHours:
    """Blue and yellow wait for the next working morning; red never waits."""

    start: dt.time = dt.time(18, 0)
    end: dt.time = dt.time(8, 30)
    levels: frozenset[str] = frozenset({"blue", "yellow"})
    non_working_days: bool = True
    enabled: bool = True


# Who hears about a card when jiancha.toml has no [[routes]]: every card to its window's
# head, red also to the department head and the inspection officers, escalations to them,
# and each window's daily digest to the window.
DEFAULT_ROUTES = (
    Route(to=("window",)),
    Route(levels=frozenset({"red"}), to=("department", "inspectors")),
    Route(kinds=frozenset({"escalation"}), levels=frozenset(LEVELS), to=("inspectors",)),
    Route(kinds=frozenset({"digest"}), to=("window",)),
)


@dataclass(frozen=True)
class NotifyConfig:
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    routes: tuple[Route, ...] = DEFAULT_ROUTES
    windows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # window -> channels
    departments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    inspectors: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    heads: Mapping[str, str] = field(default_factory=dict)  # "window:W1" -> 张三
    # "window:W1" -> {"wecom": userid, "dingtalk": mobile}: whom the robots @-mention
    head_ids: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    base_url: str = ""  # [web] base_url: the console, for links to /cards/{id}
    templates: str = ""  # a directory of the centre's own message templates
    group_window: float = 60.0  # seconds: one message per recipient for what comes within
    redact_staff: bool = False  # no staff name or id to third-party robots at all
    quiet: QuietHours = QuietHours()
    language: str = "zh"
    dashboard_url: str = ""
    give_up_after: dt.timedelta = dt.timedelta(hours=24)
    backoff_initial: float = 5.0
    backoff_max: float = 600.0
    resend_firing_every: float = 300.0  # Alertmanager: re-send while the card is open
    lease: float = 120.0  # a claimed notification is tried again after this if unrecorded


def _web(data: Mapping[str, Any], where: str, lines: TomlLines | None) -> str:
    """``[web] base_url``: the console's address, for links in messages ('' : none)."""
    section = data.get("web") or {}
    _keys(section, {"base_url", "ldap"}, f"{where}: [web]")  # ldap: monitor.directory reads it
    url = section.get("base_url", "")
    if not isinstance(url, str) or (url and not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", url)):
        raise ConfigError(f"{_at(where, lines, 'web', 'base_url')}: 应为 http(s):// 网址 / "
                          f"an http(s) URL: {url!r}")  # fmt: skip
    return url.rstrip("/")


class _Notify:
    """The notification tables of one file, checked against the channels it defines."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.channels: dict[str, Mapping[str, Any]] = {}
        for name, table in (data.get("channels") or {}).items():
            kinds = " | ".join(CHANNEL_KINDS)
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: [channels.{name}] 应为表 / must be a table")
            if "kind" not in table:
                raise ConfigError(f"{where}: [channels.{name}] kind: 缺少通道类型 / missing "
                                  f"(kind = {kinds})")  # fmt: skip
            if table["kind"] not in CHANNEL_KINDS:
                raise ConfigError(f"{where}: [channels.{name}] kind: 无效的通道类型 "
                                  f"{table['kind']!r}，应为 / must be {kinds}")  # fmt: skip
            self.channels[name] = table
        self.head_ids: dict[str, dict[str, str]] = {}

    def known(self, names: tuple[str, ...], at: str) -> tuple[str, ...]:
        for n in names:
            if n not in self.channels:
                raise ConfigError(f"{self.where}: {at}: 未定义的通道 {n!r} / no [channels.{n}]")
        return names

    def route(self, r: Mapping[str, Any], at: str) -> Route:
        where = self.where
        _keys(r, {"levels", "kinds", "departments", "windows", "channels", "to"}, f"{where}: {at}")
        to = _names(r.get("to", []), f"{where}: {at}.to")
        for role in to:
            if role not in ROLES:
                raise ConfigError(f"{where}: {at}.to: {role!r} 应为 {' | '.join(ROLES)}")
        levels = frozenset(_names(r.get("levels", list(LEVELS)), f"{where}: {at}.levels"))
        if not levels <= set(LEVELS):
            raise ConfigError(f"{where}: {at}.levels: 应为 blue | yellow | red")
        kinds = frozenset(_names(r.get("kinds", ["card"]), f"{where}: {at}.kinds"))
        if not kinds <= set(KINDS):
            raise ConfigError(f"{where}: {at}.kinds: 应为 {' | '.join(KINDS)}")
        departments = _names(r.get("departments", ["*"]), f"{where}: {at}.departments")
        return Route(
            levels=levels, kinds=kinds,
            departments=frozenset(departments),
            windows=frozenset(_names(r.get("windows", ["*"]), f"{where}: {at}.windows")),
            channels=self.known(_names(r.get("channels", []), f"{where}: {at}.channels"), at),
            to=to,
        )  # fmt: skip

    def people(self) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, str]]:
        """The channels of each window and department, and their heads ("window:W1" -> 张三)."""
        heads: dict[str, str] = {}
        people: dict[str, dict[str, tuple[str, ...]]] = {"windows": {}, "departments": {}}
        for section in ("windows", "departments"):
            for name, table in (self.data.get(section) or {}).items():
                at = f"[{section}.{name}]"
                _keys(table, {"head", "channels", "head_wecom_userid", "head_mobile"},
                      f"{self.where}: {at}")  # fmt: skip
                got = _names(table.get("channels", []), f"{self.where}: {at} channels")
                people[section][name] = self.known(got, f"{at} channels")
                if "head" in table:
                    heads[f"{section[:-1]}:{name}"] = str(table["head"])
                ids = {
                    k: str(table[f"head_{v}"])
                    for k, v in (("wecom", "wecom_userid"), ("dingtalk", "mobile"))
                    if f"head_{v}" in table
                }
                if ids:
                    self.head_ids[f"{section[:-1]}:{name}"] = ids
        return people, heads


def _quiet(q: Mapping[str, Any], where: str) -> QuietHours:
    at = f"{where}: [notify.quiet_hours]"
    _keys(q, {"start", "end", "levels", "non_working_days", "enabled"}, at)
    return QuietHours(
        start=_clock(q.get("start", "18:00"), f"{at} start"),
        end=_clock(q.get("end", "08:30"), f"{at} end"),
        levels=frozenset(_names(q.get("levels", ["blue", "yellow"]), f"{at} levels")),
        non_working_days=bool(q.get("non_working_days", True)),
        enabled=bool(q.get("enabled", True)),
    )


def _seconds(notify: Mapping[str, Any], key: str, default: float, where: str) -> float:
    return _duration(notify.get(key, default), f"{where}: [notify] {key}").total_seconds()


def parse(data: Mapping[str, Any], path: Path | None = None) -> NotifyConfig:
    """The notification settings of a parsed ``jiancha.toml``; ConfigError when wrong."""
    where = str(path) if path else "jiancha.toml"
    tables = _Notify(data, where)
    notify = data.get("notify") or {}
    _keys(notify, {"language", "dashboard_url", "fallback", "give_up_after", "backoff_initial",
                   "backoff_max", "quiet_hours", "inspectors", "resend_firing_every", "lease",
                   "templates", "group_window", "redact_staff"},
          f"{where}: [notify]")  # fmt: skip
    lines = TomlLines(path.read_text("utf-8")) if path is not None and path.is_file() else None
    base_url = _web(data, where, lines)
    templates = str(notify.get("templates", ""))
    if templates and not Path(templates).is_dir():
        raise ConfigError(f"{where}: [notify] templates: 目录 {templates} 不存在 / not a directory")
    routes = [
        tables.route(r, f"[[routes]] #{i}") for i, r in enumerate(data.get("routes") or [], 1)
    ]
    people, heads = tables.people()
    language = str(notify.get("language", "zh"))
    if language not in ("zh", "en"):
        raise ConfigError(f"{where}: [notify] language 应为 zh | en")
    known = tables.known
    return NotifyConfig(
        channels=tables.channels,
        routes=tuple(routes) or DEFAULT_ROUTES,
        windows=people["windows"],
        departments=people["departments"],
        inspectors=known(
            _names(notify.get("inspectors", []), f"{where}: [notify] inspectors"),
            "[notify] inspectors",
        ),
        fallback=known(
            _names(notify.get("fallback", []), f"{where}: [notify] fallback"), "[notify] fallback"
        ),
        heads=heads,
        head_ids=tables.head_ids,
        base_url=base_url,
        templates=templates,
        group_window=_seconds(notify, "group_window", 60, where),
        redact_staff=bool(notify.get("redact_staff", False)),
        quiet=_quiet(notify.get("quiet_hours") or {}, where),
        language=language,
        dashboard_url=str(notify.get("dashboard_url", "")),
        give_up_after=_duration(
            notify.get("give_up_after", "24h"), f"{where}: [notify] give_up_after"
        ),
        backoff_initial=_seconds(notify, "backoff_initial", 5, where),
        backoff_max=_seconds(notify, "backoff_max", 600, where),
        lease=_seconds(notify, "lease", 120, where),
        resend_firing_every=_seconds(notify, "resend_firing_every", 300, where),
    )
