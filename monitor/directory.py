"""Signing in against the centre's directory (LDAP or Active Directory) with ldap3.

Only the password is checked there: who the person is in jiancha — roles,
windows, departments, disabled or not — stays in ``jiancha.users``, where a
directory account has no password hash (``jiancha users add --directory``).
The settings are ``[web.ldap]`` of jiancha.toml (docs/console.md): either a
DN template (``uid={username},ou=people,...``; AD: ``{username}@corp.example``)
or a search for the user's entry under a service account, and TLS by
``ldaps://`` or StartTLS, verified against the system's or a given CA.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import ldap3
import structlog
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from monitor.config import Config, ConfigError
from monitor.tomlpos import TomlLines

__all__ = ["DirectoryUnavailable", "LdapSettings", "ldap_settings"]

log = structlog.get_logger("jiancha.directory")

_KEYS: Final = {"url", "bind_dn", "search_base", "search_filter", "service_dn",
                "service_password_file", "start_tls", "ca_file", "timeout"}  # fmt: skip


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, TLS refused, service account refused)."""


@dataclass(frozen=True)
class LdapSettings:
    """How to check a password against the directory; see the module's docstring."""

    url: str
    bind_dn: str | None = None  # a template with {username}
    search_base: str | None = None
    search_filter: str = "(uid={username})"
    service_dn: str | None = None
    service_password: str | None = None
    start_tls: bool = False
    ca_file: str | None = None
    timeout: float = 5.0

    def _server(self) -> ldap3.Server:
        secure = self.url.lower().startswith("ldaps://") or self.start_tls
        tls = (ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file,
                         version=ssl.PROTOCOL_TLS_CLIENT) if secure else None)  # fmt: skip
        return ldap3.Server(self.url, tls=tls, connect_timeout=self.timeout, get_info=ldap3.NONE)

    def _open(self, server: ldap3.Server, dn: str | None, password: str | None
              ) -> ldap3.Connection:  # fmt: skip
        conn = ldap3.Connection(server, user=dn, password=password, read_only=True,
                                receive_timeout=max(1, round(self.timeout)),
                                raise_exceptions=False)  # fmt: skip
        conn.open()
        if self.start_tls and not conn.start_tls():
            raise DirectoryUnavailable(f"StartTLS refused: {conn.result}")
        return conn

    def _dn_of(self, server: ldap3.Server, username: str) -> str | None:
        if self.bind_dn is not None:
            return self.bind_dn.format(username=escape_rdn(username))
        service = self._open(server, self.service_dn, self.service_password)
        try:
            if not service.bind():
                raise DirectoryUnavailable(f"service account refused: {service.result}")
            query = self.search_filter.format(username=escape_filter_chars(username))
            service.search(self.search_base or "", query, attributes=[], size_limit=2)
            found = [e.entry_dn for e in service.entries]
        finally:
            service.unbind()
        return found[0] if len(found) == 1 else None  # none, or not one person: no

    def check(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s in the directory (blocking: run in a thread).

        An empty password is refused here: LDAP would take it as an anonymous
        bind and answer "success".
        """
        if not password or not username:
            return False
        try:
            server = self._server()
            dn = self._dn_of(server, username)
            if dn is None:
                return False
            conn = self._open(server, dn, password)
            try:
                return bool(conn.bind())
            finally:
                conn.unbind()
        except (LDAPException, OSError, ssl.SSLError) as exc:
            log.warning("directory.unavailable", url=self.url, error=str(exc))
            raise DirectoryUnavailable(str(exc)) from None


_Fail = Callable[[str, str, str], ConfigError]


def _texts(table: Mapping[str, Any], fail: _Fail) -> dict[str, str]:
    """The table's text keys, checked: a URL, a DN template or a search, each with {username}."""
    for key in table:
        if key not in _KEYS:
            raise fail(key, "未知的配置项", f"unknown key (allowed: {', '.join(sorted(_KEYS))})")
    text: dict[str, str] = {}
    for key in _KEYS - {"start_tls", "timeout"}:
        if key in table:
            if not isinstance(table[key], str) or not table[key].strip():
                raise fail(key, "应为非空字符串", "must be a non-empty string")
            text[key] = table[key].strip()
    if not text.get("url", "").lower().startswith(("ldap://", "ldaps://")):
        raise fail("url", "应为 ldap:// 或 ldaps:// 地址", "must be an ldap:// or ldaps:// URL")
    if ("bind_dn" in text) == ("search_base" in text):
        raise fail("bind_dn", "bind_dn 与 search_base 须设置其一",
                   "set either bind_dn (a template) or search_base (a search)")  # fmt: skip
    text.setdefault("search_filter", "(uid={username})")
    for key in ("bind_dn", "search_filter"):
        if key in text and "{username}" not in text[key]:
            raise fail(key, "须含 {username}", "must contain {username}")
    return text


def _password(text: Mapping[str, str], fail: _Fail,
              read_secret: Callable[[str], str] | None) -> str | None:  # fmt: skip
    """The service account's password, from its file or credential."""
    password = None
    if "service_password_file" in text:
        if read_secret is None:
            from monitor.secrets import read_secret as default_reader

            read_secret = default_reader
        try:
            password = read_secret(text["service_password_file"])
        except OSError as exc:
            raise fail("service_password_file", "无法读取",
                       f"cannot read: {exc.strerror}") from None  # fmt: skip
    if ("service_dn" in text) != (password is not None):
        raise fail("service_dn", "service_dn 与 service_password_file 须同时设置",
                   "service_dn and service_password_file go together")  # fmt: skip
    return password


def ldap_settings(config: Config, read_secret: Callable[[str], str] | None = None
                  ) -> LdapSettings | None:  # fmt: skip
    """``[web.ldap]`` of ``config``, checked; None when there is none.

    A mistake is a `ConfigError` naming the file, the line and the key.
    """
    web: Mapping[str, Any] = config.data.get("web") or {}
    table = web.get("ldap")
    where = str(config.path) if config.path else "jiancha.toml"
    if table is None:
        return None
    raw = config.path.read_text(encoding="utf-8") if config.path else ""
    lines = TomlLines(raw)

    def fail(key: str, zh: str, en: str) -> ConfigError:
        line = lines.key(key, lines.table("web.ldap")) if raw else None
        at = f"{where}:{line}: [web.ldap] {key}" if line else f"{where}: [web.ldap] {key}"
        return ConfigError(f"{at}: {zh} / {en}")

    if not isinstance(table, dict):
        raise fail("ldap", "应为表", "must be a table")
    text = _texts(table, fail)
    start_tls = table.get("start_tls", False)
    if not isinstance(start_tls, bool):
        raise fail("start_tls", "应为 true 或 false", "must be true or false")
    if start_tls and text["url"].lower().startswith("ldaps://"):
        raise fail("start_tls", "ldaps:// 已是 TLS，不能再 StartTLS",
                   "ldaps:// is TLS already: no StartTLS on it")  # fmt: skip
    timeout = table.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise fail("timeout", "应为 0 至 60 秒", "seconds, more than 0 and at most 60")
    return LdapSettings(url=text["url"], bind_dn=text.get("bind_dn"),
                        search_base=text.get("search_base"), search_filter=text["search_filter"],
                        service_dn=text.get("service_dn"),
                        service_password=_password(text, fail, read_secret), start_tls=start_tls,
                        ca_file=text.get("ca_file"), timeout=float(timeout))  # fmt: skip
