"""One structlog configuration for the whole daemon.

Operators read jiancha's logs in journald, so the default is one JSON object
per line on stdout, with Chinese left readable; a human at a terminal gets
structlog's console renderer instead. Every event passes `redact_secrets`, so
a DSN or a webhook key logged by mistake never reaches the journal. Records
from libraries that use the standard `logging` module (asyncpg, trio-asyncio,
pgserver) go through the same chain and come out in the same format.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from monitor.redact import MASK, mask

__all__ = ["configure_logging", "get_logger", "redact", "redact_secrets"]


# A key is secret when one of its words (split at _, -, . and camelCase) is one
# of these; `dsn`, `url` and `uri` values are URLs whose password is masked.
_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "key", "apikey", "credential",
     "credentials", "authorization", "cookie"}
)  # fmt: skip
_URL_WORDS: Final = frozenset({"dsn", "url", "uri"})
# Where a secret lives is not the secret (`secret_file` in the channel config),
# and the outbox's idempotency key is an identifier operators need to see.
_NOT_SECRET_LAST_WORDS: Final = frozenset({"file", "path", "env"})
_NOT_SECRET_KEYS: Final = frozenset({"idempotency_key"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _words(key: str) -> list[str]:
    return [w for w in _NON_WORD.split(_CAMEL.sub("_", key).lower()) if w]


def _is_secret_key(key: str) -> bool:
    if key.lower() in _NOT_SECRET_KEYS:
        return False
    words = _words(key)
    if not words or words[-1] in _NOT_SECRET_LAST_WORDS:
        return False
    return any(w in _SECRET_WORDS for w in words)


def _redact(key: str, value: Any, depth: int) -> Any:
    if _is_secret_key(key):
        return MASK if value is not None else None
    if isinstance(value, str):
        return mask(value)
    if depth >= 4:
        return value
    if isinstance(value, Mapping):
        return {k: _redact(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(key, v, depth + 1) for v in value)
    return value


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """The same masking for anything shown to people (``jiancha config check``)."""
    return {k: _redact(str(k), v, -8) for k, v in data.items()}


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask secret-named keys and the passwords inside DSNs and URLs.

    A structlog processor: put it after the processors that add data and
    before the renderer. Keys such as ``password``, ``api_key``, ``token`` or
    ``secret`` become ``***``; in strings (``dsn=``, the event message, a
    formatted traceback) the password of ``scheme://user:password@host`` is
    masked while user and host stay, so the log still says where it went.
    """
    for key, value in event_dict.items():
        event_dict[key] = _redact(key, value, 0)
    return event_dict


def _add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", "")
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """A `WriteLogger` that remembers the name it was asked for."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else "")


def _parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    levels = logging.getLevelNamesMapping()
    try:
        return levels[level.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(levels)}") from None


class _Handler(logging.StreamHandler[TextIO]):
    """Marks the root handler we installed, so reconfiguring replaces it."""


_applied: tuple[int, bool, TextIO] | None = None


def configure_logging(
    level: str | int = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard `logging` root once for the process.

    ``stream`` defaults to the current ``sys.stdout``; ``json=None`` means JSON
    unless the stream is a terminal. Calling again with the same arguments
    does nothing; with different ones it replaces the configuration (never
    stacks handlers). Loggers are not cached, so a reconfiguration also
    reaches loggers that were created before it.
    """
    global _applied
    out = sys.stdout if stream is None else stream
    as_json = not _isatty(out) if json is None else json
    min_level = _parse_level(level)
    if _applied == (min_level, as_json, out) and structlog.is_configured():
        return

    shared, tail, renderer = _processors(as_json, out)
    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=_NamedWriteLoggerFactory(out),
        context_class=dict,
        cache_logger_on_first_use=False,
    )

    handler = _Handler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(min_level)
    # httpx logs every request's URL at INFO; a robot's URL carries its key (WeCom,
    # DingTalk), sometimes in the path where the query masking cannot see it.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(min_level, logging.WARNING))
    _applied = (min_level, as_json, out)


def _processors(as_json: bool, out: TextIO) -> tuple[list[Processor], list[Processor], Processor]:
    """The chain: what every record gets, what comes before rendering, the renderer."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        tail: list[Processor] = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
        ]
        return shared, tail, structlog.processors.JSONRenderer(ensure_ascii=False)
    tail = [structlog.processors.StackInfoRenderer(), redact_secrets]
    colors = _isatty(out) and "NO_COLOR" not in os.environ
    # a plain traceback: rich's (the default when installed) prints every frame's locals,
    # which no redaction sees (a DSN with its password, a case's data)
    return (
        shared,
        tail,
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        ),
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def get_logger(name: str, **initial_values: Any) -> FilteringBoundLogger:
    """A logger that tags its events with ``logger=name`` (use ``__name__``)."""
    return cast(FilteringBoundLogger, structlog.get_logger(name, **initial_values))
