"""The values of ``jiancha.toml`` checked one by one, and the error that names the file,
the line and the key (`ConfigError`); shared by the daemon's settings and the notify part."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.tomlpos import TomlLines


class ConfigError(ValueError):
    """The configuration is wrong; ``str()`` names the file and the key."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


def _duration(value: Any, where: str) -> dt.timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    m = _DURATION.match(str(value))
    if m is None:
        raise ConfigError(f"{where}: 时长应为秒数或 30s/15m/24h/2d / a duration: {value!r}")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2] or "s"]
    return dt.timedelta(seconds=float(m[1]) * unit)


def _positive(value: Any, where: str) -> float:
    """A duration in seconds that must be more than 0."""
    seconds = _duration(value, where).total_seconds()
    if seconds <= 0:
        raise ConfigError(f"{where} 应大于 0 / must be positive")
    return seconds


def _clock(value: Any, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: 时间应为 HH:MM / a time of day: {value!r}") from None


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: 应为名称列表 / a list of names")
    return tuple(value)


class _UnknownKey(ConfigError):
    """An unknown key; `load_config` adds the line it stands on (`_with_line`)."""

    def __init__(self, message: str, where: str, key: str) -> None:
        super().__init__(message)
        self.where, self.key = where, key


def _keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _UnknownKey(
                f"{where}: 未知的配置项 {key!r} / unknown key "
                f"(allowed: {', '.join(sorted(allowed))})",
                where,
                str(key),
            )


def _with_line(exc: _UnknownKey, path: Path | None, raw: bytes) -> ConfigError:
    """``file:line: [table] key: …`` for an unknown key of a ``[table]`` in the file."""
    m = re.search(r"\[([^\]]+)\]", exc.where)
    line = None
    if m and path is not None and raw:
        lines = TomlLines(raw.decode("utf-8"))
        line = lines.key(exc.key, lines.table(m[1]))
    if line is None or m is None:
        return exc
    rest = str(exc).split(": 未知的配置项", 1)[1]
    return ConfigError(f"{path}:{line}: [{m[1]}] {exc.key}: 未知的配置项{rest}")


def _int(value: Any, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: 应为不小于 {low} 的整数 / an integer >= {low}: {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: 应为非空字符串 / a non-empty string: {value!r}")
    return value


def _at(where: str, lines: TomlLines | None, table: str, key: str) -> str:
    """``file:line: [table] key`` (without the line when the key came from the environment)."""
    line = lines.key(key, lines.table(table)) if lines is not None else None
    return f"{where}:{line}: [{table}] {key}" if line else f"{where}: [{table}] {key}"
