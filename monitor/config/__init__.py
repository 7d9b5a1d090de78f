"""``jiancha.toml``: the daemon's settings, and who hears about which card.

Every key is documented in ``deploy/jiancha.example.toml``. Precedence, low to
high: built-in defaults, the environment defaults of docs/contract.md
(``JIANCHA_SOURCE_DSN``, ``JIANCHA_DSN``), the file, ``JIANCHA__SECTION__KEY``
environment overrides, command-line options. A bad file is refused whole
with the file and the key, so a running daemon keeps its last good one.
The checks of single values are in ``_values``, the notification part (channels,
routes, heads, quiet hours) in ``notify``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config._values import (
    ConfigError,
    _at,
    _clock,
    _duration,
    _int,
    _keys,
    _located,
    _names,
    _positive,
    _text,
)
from monitor.config.notify import (
    CHANNEL_KINDS,
    DEFAULT_ROUTES,
    KINDS,
    ROLES,
    NotifyConfig,
    QuietHours,
    Route,
    parse,
)
from monitor.tomlpos import TomlLines, syntax_line

__all__ = [
    "BATCH_SIZE",
    "CHANNEL_KINDS",
    "CONFIG_ENV",
    "DEFAULT_PATH",
    "DEFAULT_ROUTES",
    "KINDS",
    "OVERRIDE_PREFIX",
    "RETENTION_KEYS",
    "ROLES",
    "Config",
    "ConfigError",
    "DaemonSettings",
    "NotifyConfig",
    "QuietHours",
    "ReportSchedule",
    "ReportsConfig",
    "Retention",
    "Route",
    "apply_overrides",
    "config_path",
    "load_config",
    "parse",
]

CONFIG_ENV = "JIANCHA_CONFIG"
OVERRIDE_PREFIX = "JIANCHA__"  # JIANCHA__METRICS__ADDRESS=0.0.0.0:9731 overrides [metrics] address
DEFAULT_PATH = Path("/etc/jiancha/jiancha.toml")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("auto", "json", "console")

# Events a batch reads at most. A backlog's case is rewritten once per batch that
# touches it, about 100 us each with its reduction (2026-12-07, ninth session), so
# larger batches write each case fewer times: over bench_catchup's 200,000 events of
# 25,000 cases, 60,283 case rows at 20,000 a batch and 28,941 at 100,000. `jiancha run`
# caught up in 10.6-12.7 s against 13.6-16.3 s, its peak memory 383 MB against 344-350;
# `jiancha evaluate` in 9.4-11.5 s against 12.5-16.0 (docs/performance.md). A live
# batch holds only what became visible, far below this.
BATCH_SIZE = 100_000


@dataclass(frozen=True)
class DaemonSettings:
    """``[database]``, ``[daemon]`` and ``[log]``: what `jiancha run` needs besides routing."""

    source_dsn: str | None = None  # else JIANCHA_SOURCE_DSN
    dsn: str | None = None  # else JIANCHA_DSN, else the source DSN
    batch_size: int = BATCH_SIZE
    poll_interval: float = 1.0
    orphan_grace: dt.timedelta = dt.timedelta(days=7)
    rules: str = "cards"
    calendar: str = "cn"
    # region-code prefix -> calendar: cases of those regions count on it (延边: "2224")
    region_calendars: Mapping[str, str] = field(default_factory=dict)
    state_dir: str | None = None  # the clock table's checkpoint; else $STATE_DIRECTORY
    checkpoint_every: float = 300.0
    stuck_after: float = 60.0  # a task without a heartbeat this long stops the watchdog's pings
    lease_ttl: float = 6.0  # the leader lease: unless renewed, a standby takes over after this
    lease_renew: float = 2.0  # how often the leader renews it
    log_level: str = "INFO"
    log_format: str = "auto"  # auto: JSON unless stdout is a terminal
    source_statement_timeout: float = 60.0  # seconds a statement on the source may run; 0: none
    keepalives_idle: int = 60  # TCP keepalives of every session (seconds, seconds, probes)
    keepalives_interval: int = 10
    keepalives_count: int = 6


RETENTION_KEYS = ("outbox", "outbox_attempts", "dead_letters")


@dataclass(frozen=True)
class Retention:
    """``[retention]``: how long finished rows of the working tables stay (0: forever).

    ``monitor.retention`` says what "finished" means for each; cards and
    card_events are the record and are never pruned.
    """

    outbox: dt.timedelta = dt.timedelta(days=180)
    outbox_attempts: dt.timedelta = dt.timedelta(days=30)
    dead_letters: dt.timedelta = dt.timedelta(days=180)


def _retention(data: Mapping[str, Any], where: str) -> Retention:
    section = data.get("retention") or {}
    _keys(section, set(RETENTION_KEYS), f"{where}: [retention]")
    return Retention(**{k: _duration(section[k], f"{where}: [retention] {k}")
                        for k in RETENTION_KEYS if k in section})  # fmt: skip


REPORT_KINDS = ("daily", "weekly", "monthly", "yearly")
REPORT_FORMATS = ("html", "xlsx", "pdf", "json")
# When each bulletin is due (local time): the daily after close of business on each working
# day, the others on the first working day of the next period, in the morning.
REPORT_TIMES = {"daily": dt.time(18, 0), "weekly": dt.time(8, 30), "monthly": dt.time(8, 30),
                "yearly": dt.time(8, 30)}  # fmt: skip


@dataclass(frozen=True)
class ReportSchedule:
    """``[reports.KIND]``: when the bulletin is made and who receives it."""

    kind: str
    at: dt.time
    channels: tuple[str, ...] = ()  # named channels; e-mail ones attach the PDF and XLSX
    to: tuple[str, ...] = ()  # e-mail addresses added to the e-mail channels' own


@dataclass(frozen=True)
class ReportsConfig:
    """``[reports]``: the daemon's bulletins (docs/reports.md); no schedules, none made."""

    schedules: tuple[ReportSchedule, ...] = ()
    departments: tuple[str, ...] = ()  # a bulletin of its own for each, beside the centre's
    formats: tuple[str, ...] = REPORT_FORMATS
    centre: str | None = None  # the name in the title (default: the region most cases name)


def _reports(data: Mapping[str, Any], where: str, lines: TomlLines | None) -> ReportsConfig:
    """``[reports]`` and its ``[reports.KIND]`` tables, each error with file, line and key."""
    section = data.get("reports") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: [reports] 应为表 / must be a table")
    _keys(section, {"departments", "formats", "centre", *REPORT_KINDS}, f"{where}: [reports]")
    formats = _names(section.get("formats", list(REPORT_FORMATS)),
                     _at(where, lines, "reports", "formats"))  # fmt: skip
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad or not formats:
        at = _at(where, lines, "reports", "formats")
        raise ConfigError(f"{at}: 应为 {' | '.join(REPORT_FORMATS)} 中的若干项 / some of them: "
                          f"{bad}")  # fmt: skip
    schedules = []
    for kind in REPORT_KINDS:
        table = section.get(kind)
        if table is None:
            continue
        name = f"reports.{kind}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [{name}] 应为表 / must be a table")
        _keys(table, {"at", "channels", "to"}, f"{where}: [{name}]")
        when = _clock(table.get("at", REPORT_TIMES[kind].strftime("%H:%M")),
                    _at(where, lines, name, "at"))  # fmt: skip
        channels = _names(table.get("channels", []), _at(where, lines, name, "channels"))
        for c in channels:
            if c not in (data.get("channels") or {}):
                raise ConfigError(f"{_at(where, lines, name, 'channels')}: 未定义的通道 {c!r} / "
                                  f"no [channels.{c}]")  # fmt: skip
        to = _names(table.get("to", []), _at(where, lines, name, "to"))
        for addr in to:
            if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
                raise ConfigError(f"{_at(where, lines, name, 'to')}: 不是有效的邮件地址 / "
                                  f"not an e-mail address: {addr!r}")  # fmt: skip
        schedules.append(ReportSchedule(kind, when, channels, to))
    centre = section.get("centre")
    return ReportsConfig(
        schedules=tuple(schedules),
        departments=_names(section.get("departments", []),
                           _at(where, lines, "reports", "departments")),
        formats=tuple(dict.fromkeys(formats)),
        centre=None if centre is None else _text(centre, _at(where, lines, "reports", "centre")),
    )  # fmt: skip


@dataclass(frozen=True)
class Config:
    path: Path | None
    notify: NotifyConfig
    fingerprint: str
    metrics_address: str = "127.0.0.1:9731"  # docs/contract.md; `[metrics] address`
    metrics_username: str | None = None  # basic auth on /metrics, with the password file
    metrics_password_file: str | None = None
    metrics_tls_cert_file: str | None = None  # TLS on /metrics
    metrics_tls_key_file: str | None = None
    daemon: DaemonSettings = DaemonSettings()
    data: Mapping[str, Any] = field(default_factory=dict)  # the merged tables, for config check
    retention: Retention = Retention()
    overridden: tuple[str, ...] = ()  # keys set by JIANCHA__ variables
    reports: ReportsConfig = ReportsConfig()

    @property
    def web_base_url(self) -> str:
        """``[web] base_url``: the console, for links in messages and bulletins ('': none)."""
        return self.notify.base_url


def _lease(daemon: Mapping[str, Any], where: str) -> tuple[float, float]:
    """``lease_ttl`` and ``lease_renew``: a renewal must fit at least twice into the TTL."""
    ttl = _positive(daemon.get("lease_ttl", "6s"), f"{where}: [daemon] lease_ttl")
    renew = _positive(daemon.get("lease_renew", "2s"), f"{where}: [daemon] lease_renew")
    if renew * 2 > ttl:
        raise ConfigError(f"{where}: [daemon] lease_renew 应不超过 lease_ttl 的一半 / "
                          "must be at most half of lease_ttl")  # fmt: skip
    return ttl, renew


def config_path(explicit: str | None = None) -> Path | None:
    """The file in force: the argument, ``JIANCHA_CONFIG``, the default path if present."""
    given = explicit or os.environ.get(CONFIG_ENV)
    if given:
        return Path(given)
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def _override_value(text: str) -> Any:
    """A TOML value when the text is one (42, 1.5, true, ["a"]), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], environ: Mapping[str, str]
                    ) -> tuple[dict[str, Any], tuple[str, ...]]:  # fmt: skip
    """``JIANCHA__SECTION__KEY=value`` variables laid over the parsed file."""
    merged: dict[str, Any] = dict(data)
    done = []
    for name in sorted(environ):
        if not name.startswith(OVERRIDE_PREFIX):
            continue
        path = [p.lower() for p in name[len(OVERRIDE_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(f"${name}: 应为 / must be JIANCHA__SECTION__KEY")
        table = merged
        for part in path[:-1]:
            inner = table.get(part)
            if inner is None:
                inner = {}
            elif not isinstance(inner, dict):
                raise ConfigError(f"${name}: {part!r} 不是表 / is not a table")
            table[part] = inner = dict(inner)
            table = inner
        table[path[-1]] = _override_value(environ[name])
        done.append(".".join(path))
    return merged, tuple(done)


def _region_calendars(value: Any, where: str) -> dict[str, str]:
    """``"2224" = "yanbian"``: a region-code prefix and the calendar its cases count on."""
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where}: 应为表 / must be a table of "前缀" = "日历"')
    out = {}
    for prefix, name in value.items():
        if not str(prefix).strip():
            raise ConfigError(f"{where}: 区划代码前缀不能为空 / an empty region prefix")
        out[str(prefix)] = _text(name, f"{where} {prefix}")
    return out


_SESSION_KEYS = {"source_statement_timeout", "keepalives_idle", "keepalives_interval",
                 "keepalives_count"}  # fmt: skip


def _sessions(database: Mapping[str, Any], where: str, lines: TomlLines | None) -> dict[str, Any]:
    """``[database]`` settings of the sessions: the source's statement timeout, keepalives."""
    key = "source_statement_timeout"
    timeout = _duration(database.get(key, "60s"), _at(where, lines, "database", key))
    if timeout.total_seconds() < 0:
        raise ConfigError(f"{_at(where, lines, 'database', key)}: 应不小于 0（0 为不限）"
                          " / must be >= 0 (0: no limit)")  # fmt: skip
    out: dict[str, Any] = {key: timeout.total_seconds()}
    for key, default in (("keepalives_idle", "60s"), ("keepalives_interval", "10s")):
        at = _at(where, lines, "database", key)
        seconds = _duration(database.get(key, default), at).total_seconds()
        if not 1 <= seconds <= 86400 or seconds != int(seconds):
            raise ConfigError(f"{at}: 应为 1 至 86400 的整秒数 / whole seconds, 1 to 86400: "
                              f"{database.get(key)!r}")  # fmt: skip
        out[key] = int(seconds)
    key = "keepalives_count"
    out[key] = _int(database.get(key, 6), _at(where, lines, "database", key))
    return out


def _daemon(data: Mapping[str, Any], where: str, environ: Mapping[str, str],
            secrets: Any, lines: TomlLines | None = None) -> DaemonSettings:  # fmt: skip
    database = data.get("database") or {}
    _keys(database, {"source_dsn", "source_dsn_file", "dsn", "dsn_file", *_SESSION_KEYS},
          f"{where}: [database]")  # fmt: skip
    daemon = data.get("daemon") or {}
    _keys(daemon, {"batch_size", "poll_interval", "orphan_grace", "rules", "calendar",
                   "region_calendars", "state_dir", "checkpoint_every", "stuck_after",
                   "lease_ttl", "lease_renew"},
          f"{where}: [daemon]")  # fmt: skip
    log = data.get("log") or {}
    _keys(log, {"level", "format"}, f"{where}: [log]")

    def dsn(key: str, env: str) -> str | None:
        if f"{key}_file" in database:
            path = _text(database[f"{key}_file"], f"{where}: [database] {key}_file")
            try:
                return str(secrets(path))
            except OSError as exc:
                raise ConfigError(f"{where}: [database] {key}_file: 无法读取 / cannot read "
                                  f"{path}: {exc.strerror}") from None  # fmt: skip
        if key in database:
            return _text(database[key], f"{where}: [database] {key}")
        return environ.get(env) or None

    level = str(log.get("level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{where}: [log] level 应为 {' | '.join(LOG_LEVELS)}")
    fmt = str(log.get("format", "auto"))
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"{where}: [log] format 应为 {' | '.join(LOG_FORMATS)}")
    poll = _duration(daemon.get("poll_interval", 1.0), f"{where}: [daemon] poll_interval")
    if poll.total_seconds() <= 0:
        raise ConfigError(f"{where}: [daemon] poll_interval 应大于 0 / must be positive")
    return DaemonSettings(
        source_dsn=dsn("source_dsn", "JIANCHA_SOURCE_DSN"),
        dsn=dsn("dsn", "JIANCHA_DSN"),
        batch_size=_int(daemon.get("batch_size", BATCH_SIZE), f"{where}: [daemon] batch_size"),
        poll_interval=poll.total_seconds(),
        orphan_grace=_duration(daemon.get("orphan_grace", "7d"), f"{where}: [daemon] orphan_grace"),
        rules=_text(daemon.get("rules", environ.get("JIANCHA_RULES", "cards")),
                    f"{where}: [daemon] rules"),
        calendar=_text(daemon.get("calendar", environ.get("JIANCHA_CALENDAR", "cn")),
                       f"{where}: [daemon] calendar"),
        region_calendars=_region_calendars(daemon.get("region_calendars", {}),
                                           f"{where}: [daemon.region_calendars]"),
        # systemd's StateDirectory= sets $STATE_DIRECTORY (a list when several are named)
        state_dir=(_text(daemon["state_dir"], f"{where}: [daemon] state_dir")
                   if "state_dir" in daemon
                   else (environ.get("STATE_DIRECTORY") or "").split(":")[0] or None),
        checkpoint_every=_duration(daemon.get("checkpoint_every", "5m"),
                                   f"{where}: [daemon] checkpoint_every").total_seconds(),
        stuck_after=_positive(daemon.get("stuck_after", "60s"), f"{where}: [daemon] stuck_after"),
        lease_ttl=_lease(daemon, where)[0],
        lease_renew=_lease(daemon, where)[1],
        log_level=level,
        log_format=fmt,
        **_sessions(database, where, lines),
    )  # fmt: skip


def load_config(explicit: str | None = None, environ: Mapping[str, str] | None = None,
                secrets: Any = None) -> Config:  # fmt: skip
    """The configuration in force (built-in defaults when there is no file)."""
    path = config_path(explicit)
    try:
        return _load_config(path, environ, secrets)
    except ConfigError as exc:  # every error about a key of the file: its line too
        try:
            raw = path.read_bytes() if path is not None else b""
        except OSError:
            raise exc from None
        raise _located(exc, path, raw) from None


def _load_config(path: Path | None, environ: Mapping[str, str] | None, secrets: Any) -> Config:
    if environ is None:
        environ = os.environ
    if secrets is None:
        from monitor.secrets import read_secret as secrets
    raw = b""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: 无法读取 / cannot read: {exc.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: 不是 UTF-8 文本 / not UTF-8: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            line = syntax_line(exc, raw.decode("utf-8"))
            at = f"{path}:{line}" if line else str(path)
            raise ConfigError(f"{at}: TOML 语法错误 / syntax error: {exc}") from None
    data, overridden = apply_overrides(data, environ)
    where = str(path) if path else "jiancha.toml"
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(f"{where}: 未知的配置节 [{section}] / unknown section "
                              f"(allowed: {', '.join(_SECTIONS)})")  # fmt: skip
    metrics = data.get("metrics") or {}
    _keys(metrics, {"address", "username", "password_file", "tls_cert_file", "tls_key_file"},
          f"{where}: [metrics]")  # fmt: skip
    if ("username" in metrics) != ("password_file" in metrics):
        raise ConfigError(f"{where}: [metrics] username 与 password_file 须同时设置 / go together")
    if ("tls_cert_file" in metrics) != ("tls_key_file" in metrics):
        raise ConfigError(f"{where}: [metrics] tls_cert_file 与 tls_key_file 须同时设置")
    address = str(metrics.get("address", "127.0.0.1:9731"))
    if not re.match(r"^[\w.\-\[\]:]*:\d+$", address):
        raise ConfigError(f"{where}: [metrics] address 应为 HOST:PORT / must be HOST:PORT")
    if path is None and not overridden:
        digest = "default"
    else:
        env_part = "".join(f"{k}={environ[k]}\n" for k in sorted(environ)
                           if k.startswith(OVERRIDE_PREFIX))  # fmt: skip
        digest = hashlib.sha256(raw + env_part.encode()).hexdigest()[:16]
    lines = TomlLines(raw.decode("utf-8")) if raw else None
    notify = parse(data, path)
    return Config(path, notify, digest, address,
                  metrics.get("username"), metrics.get("password_file"),
                  metrics.get("tls_cert_file"), metrics.get("tls_key_file"),
                  daemon=_daemon(data, where, environ, secrets, lines), data=data,
                  retention=_retention(data, where), overridden=overridden,
                  reports=_reports(data, where, lines))  # fmt: skip


_SECTIONS = ("database", "daemon", "log", "metrics", "notify", "channels", "windows",
             "departments", "routes", "retention", "reports", "web")  # fmt: skip
