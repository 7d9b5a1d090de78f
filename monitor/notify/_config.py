"""The checks of every ``[channels.NAME]`` table, whatever the kind, and one way to word them.

Unknown keys are refused (a misspelt ``secret_file`` must not silently mean
unsigned), URLs must be absolute http(s), numbers positive, secrets come from
files that can be read and are not empty. Every error names the channel and
the key, in Chinese and English, and never echoes a value that may hold a
key (a robot's URL carries its key in the query string).
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import httpx

from monitor.notify import ChannelError
from monitor.redact import redact_text

__all__ = [
    "COMMON_KEYS",
    "DETAIL_MAX",
    "bad",
    "check_keys",
    "credentials",
    "positive",
    "rate_limit",
    "require_url",
    "scrub",
    "secret_file",
    "string",
    "tls_context",
]

DETAIL_MAX: Final = 300  # characters of a reason kept in the attempt record
# Keys the config loader may leave in every [channels.NAME] table.
COMMON_KEYS: Final = frozenset({"kind", "name"})


def bad(channel: str, key: str, zh: str, en: str) -> ChannelError:
    return ChannelError(f"通知渠道 {channel} 的配置项 {key} {zh} (channel {channel!r}: {key} {en})")


def check_keys(channel: str, table: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse the first (sorted) key of ``table`` that is neither in ``allowed`` nor common."""
    unknown = sorted(set(table) - set(allowed) - COMMON_KEYS)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise bad(
            channel, str(unknown[0]), f"未知（可用：{known}）", f"is unknown (known: {known})"
        )


def string(
    channel: str, table: Mapping[str, Any], key: str, *, required: bool = False
) -> str | None:
    """A non-empty string, stripped; ``None`` when absent and not ``required``."""
    value = table.get(key)
    if value is None:
        if required:
            raise bad(channel, key, "缺失", "is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(channel, key, "必须是非空字符串", "must be a non-empty string")
    return value.strip()


def require_url(channel: str, table: Mapping[str, Any], key: str = "url") -> str:
    """An absolute http(s) URL; the error never echoes the value (it may hold a key)."""
    value = string(channel, table, key, required=True)
    try:
        url = httpx.URL(value or "")
    except (httpx.InvalidURL, ValueError, TypeError):
        raise bad(channel, key, "不是有效的 URL", "is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise bad(channel, key, "必须是 http(s):// 开头的完整 URL", "must be an http(s):// URL")
    return str(url)


def positive(channel: str, table: Mapping[str, Any], key: str, default: float) -> float:
    """A positive, finite number (``timeout`` in seconds and the like)."""
    value = table.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise bad(channel, key, "必须是正数", f"must be a positive number, got {value!r}")
    return float(value)


def rate_limit(channel: str, table: Mapping[str, Any], default: int | None = None) -> int | None:
    """The ``per_minute`` rate limit: a positive integer, or ``None`` for none."""
    value = table.get("per_minute", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise bad(
            channel, "per_minute", "必须是正整数", f"must be a positive integer, got {value!r}"
        )
    return value


def secret_file(
    channel: str, table: Mapping[str, Any], key: str, secrets: Callable[[str], str]
) -> str | None:
    """The secret in the file ``key`` names, if set; an unreadable or empty one is an error."""
    path = string(channel, table, key)
    if path is None:
        return None
    try:
        secret = secrets(path).strip()
    except (OSError, ValueError) as exc:
        # The path is not secret; the exception's text could be, so only its type.
        raise bad(
            channel, key, f"指向的文件 {path} 无法读取（{type(exc).__name__}）",
            f"names {path}, which cannot be read ({type(exc).__name__})",
        ) from None  # fmt: skip
    if not secret:
        raise bad(channel, key, f"指向的文件 {path} 为空", f"names {path}, which is empty")
    return secret


def credentials(
    channel: str, table: Mapping[str, Any], secrets: Callable[[str], str]
) -> tuple[str | None, str | None]:
    """``(username, password)``: both or neither; the password read from ``password_file``."""
    username = string(channel, table, "username")
    password_file = string(channel, table, "password_file")
    if (username is None) != (password_file is None):
        missing = "password_file" if password_file is None else "username"
        raise bad(
            channel, missing, "与 username/password_file 须同时设置",
            "goes together with username/password_file",
        )  # fmt: skip
    return username, secret_file(channel, table, "password_file", secrets)


def tls_context(channel: str, ca_file: str | None) -> ssl.SSLContext:
    """The default TLS context, trusting ``ca_file`` (the ``ca_file`` key) instead if given."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise bad(channel, "ca_file", f"无法加载：{exc}", f"cannot load it: {exc}") from None


def scrub(detail: str, *secrets: str | None) -> str:
    """Short, one line, and never a secret (servers may echo input)."""
    return redact_text(detail, secrets, limit=DETAIL_MAX)
