"""What the SMTP and Alertmanager channels share: config checks and their one secret.

Both read a ``[channels.NAME]`` table with the same conventions — unknown keys
refused, optional ``username`` + ``password_file`` that go together, an
optional ``ca_file``, positive ``timeout`` and ``per_minute`` — and report a
wrong value with the same bilingual message, so those checks live here once.
Both also keep the password out of the attempt record the same way (``scrub``).

(The HTTP robot channels have their own, differently worded checks in
``_http``: their messages are worded differently and stay as they are.)
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from monitor.notify import ChannelError

__all__ = [
    "bad",
    "check_keys",
    "credentials",
    "positive",
    "rate_limit",
    "scrub",
    "string",
    "tls_context",
]

DETAIL_MAX: Final = 300  # characters of a reason kept in the attempt record


def bad(channel: str, key: str, zh: str, en: str) -> ChannelError:
    return ChannelError(
        f"通知渠道 {channel} 的配置项 {key}：{zh} / channel {channel}, key {key}: {en}"
    )


def check_keys(channel: str, table: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse the first (sorted) key of ``table`` that is not in ``allowed``."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise bad(
            channel, unknown[0], f"未知的配置项（可用：{sorted(allowed)}）",
            f"unknown key (allowed: {sorted(allowed)})",
        )  # fmt: skip


def string(
    channel: str, table: Mapping[str, Any], key: str, *, required: bool = False
) -> str | None:
    """A non-empty string, stripped; ``None`` when absent and not ``required``."""
    value = table.get(key)
    if value is None:
        if required:
            raise bad(channel, key, "缺失", "missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(channel, key, "应为非空字符串", f"must be a non-empty string, got {value!r}")
    return value.strip()


def positive(channel: str, table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise bad(channel, key, "应为正数", f"must be a positive number, got {value!r}")
    return float(value)


def rate_limit(channel: str, table: Mapping[str, Any]) -> int | None:
    """The optional ``per_minute`` rate limit: a positive integer or ``None``."""
    value = table.get("per_minute")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise bad(channel, "per_minute", "应为正整数", f"must be a positive integer, got {value!r}")
    return value


def credentials(
    channel: str, table: Mapping[str, Any], secrets: Callable[[str], str]
) -> tuple[str | None, str | None]:
    """``(username, password)``: both or neither; the password read from ``password_file``."""
    username = string(channel, table, "username")
    password_file = string(channel, table, "password_file")
    if (username is None) != (password_file is None):
        missing = "password_file" if password_file is None else "username"
        raise bad(
            channel, missing, "username 与 password_file 须同时设置",
            "username and password_file go together",
        )  # fmt: skip
    password = None
    if password_file is not None:
        try:
            password = secrets(password_file).strip()
        except OSError as exc:
            raise bad(
                channel, "password_file", f"{password_file} 无法读取：{exc.strerror or exc}",
                f"cannot read {password_file}: {exc.strerror or exc}",
            ) from None  # fmt: skip
        if not password:
            raise bad(channel, "password_file", "文件为空", "the file is empty")
    return username, password


def tls_context(channel: str, ca_file: str | None) -> ssl.SSLContext:
    """The default TLS context, trusting ``ca_file`` (the ``ca_file`` key) instead if given."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise bad(channel, "ca_file", f"无法加载：{exc}", f"cannot load it: {exc}") from None


def scrub(detail: str, secret: str | None) -> str:
    """Short, one line, and never the secret (servers may echo input)."""
    if secret:
        detail = detail.replace(secret, "***")
    return " ".join(detail.split())[:DETAIL_MAX]
