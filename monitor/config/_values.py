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
    """An unknown key; `load_config` adds the line it stands on (`_located`)."""

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


_HEAD = re.compile(r"\[\[(?P<array>[\w.]+)\]\] #(?P<n>\d+)|\[(?P<table>[^\]]+)\]")
_KEY = re.compile(r"[.\s]?(?P<key>[A-Za-z_]\w*)")


def _located(exc: ConfigError, path: Path | None, raw: bytes) -> ConfigError:
    """``exc`` with the line it is about: ``file:line: [table] key: …``.

    Errors are raised as ``file: [table] key …`` (or ``file: [[routes]] #n.key …``);
    the line is found in the raw text here, once, for every one of them. One that
    names a line already, came from the environment or names no table is returned
    as it is; a key not in the file points at its table's header.
    """
    text, where = str(exc), str(path)
    if path is None or not raw or not text.startswith(f"{where}: "):
        return exc
    rest = text[len(where) + 2 :]
    head = _HEAD.match(rest)
    if head is None:
        return exc
    lines = TomlLines(raw.decode("utf-8"))
    if head["array"]:
        start = lines.array_table(head["array"], int(head["n"]) - 1)
    else:
        start = lines.table(head["table"])
    key = exc.key if isinstance(exc, _UnknownKey) else None
    if key is None and (found := _KEY.match(rest, head.end())) is not None:
        key = found["key"]
    line = lines.key(key, start) if key and start else start
    if line is None:
        return exc
    if isinstance(exc, _UnknownKey):  # `file: [table]: 未知的配置项 …` names its key after
        detail = text.split(": 未知的配置项", 1)[1]
        return ConfigError(f"{where}:{line}: {head[0]} {exc.key}: 未知的配置项{detail}")
    return ConfigError(f"{where}:{line}: {rest}")


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
