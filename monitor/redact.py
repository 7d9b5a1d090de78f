"""One redaction for every error text jiancha stores or logs: no secret leaves in it.

Error texts come from libraries and servers that echo what they were given:
a robot's URL with its ``key=`` in the query, a DSN with its password, a
proxy's page quoting an ``Authorization`` header. What goes into
``jiancha.outbox_attempts``, ``jiancha.outbox.last_error`` and the logs passes
through here: ``mask`` knows the shapes of secrets, ``redact_text`` adds the
configured channels' own secret values and makes the text one short line.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Final

__all__ = ["MASK", "TEXT_MAX", "mask", "redact_text"]

MASK: Final = "***"
TEXT_MAX: Final = 300  # characters of an error text kept in a stored record

# scheme://user:password@host: the password only; user and host stay.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<val>[^@\s/]+)(?=@)"
)
# ?key=… / &access_token=… / &sign=… (WeCom and DingTalk robots carry their key there)
_QUERY_SECRET: Final = re.compile(
    r"(?P<head>[?&;](?:[a-z_\-]*(?:password|passwd|pwd|secret|token|key|signature|sign)"
    r"[a-z_\-]*)=)(?P<val>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
# libpq keyword DSNs: "host=db password=x dbname=y"
_KV_PASSWORD: Final = re.compile(
    r"(?P<head>\b(?:ssl)?password\s*=\s*)(?P<val>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)
# "Authorization: Bearer x", authorization='Basic x', "Proxy-Authorization": "x"
_AUTH_HEADER: Final = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<val>(?:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s\"',;}]+)",
    re.IGNORECASE,
)
# A bare credential scheme and its token, wherever it is quoted.
_AUTH_TOKEN: Final = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<val>[A-Za-z0-9._~+/\-]{8,}=*)")
_SUB: Final = rf"\g<head>{MASK}"


def mask(text: str) -> str:
    """Mask the shapes of secrets: URL and DSN passwords, secret query keys, credentials."""
    if "://" in text:
        text = _URL_PASSWORD.sub(_SUB, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(_SUB, text)
        if "password" in text.lower():
            text = _KV_PASSWORD.sub(_SUB, text)
    if "uthorization" in text or "UTHORIZATION" in text:
        text = _AUTH_HEADER.sub(_SUB, text)
    if "Bearer" in text or "Basic" in text:
        text = _AUTH_TOKEN.sub(_SUB, text)
    return text


def secret_forms(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets and their URL-encoded forms (an error may quote a URL), longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update((secret, urllib.parse.quote(secret, safe=""),
                          urllib.parse.quote_plus(secret)))  # fmt: skip
    return tuple(sorted(forms, key=len, reverse=True))


def redact_text(text: str, secrets: Iterable[str | None] = (), *, limit: int = TEXT_MAX) -> str:
    """``text`` as it may be stored: known secrets and secret shapes masked, one line, short.

    ``secrets`` are the configured values to hide (channel keys, HMAC secrets,
    passwords), in plain and URL-encoded form.
    """
    for form in secret_forms(secrets):
        text = text.replace(form, MASK)
    text = " ".join(mask(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
