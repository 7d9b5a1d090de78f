"""Tables for a terminal and JSON for scripts: how the commands lay out what they print."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["display_width", "format_table", "jsonable", "pad"]


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: CJK wide and full-width characters take two."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of an aligned table, columns two spaces apart, no trailing blanks."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        widths = [max(w, display_width(cell)) for w, cell in zip(widths, row, strict=True)]
    return [
        "  ".join(pad(cell, w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def jsonable(value: Any) -> Any:
    """Instants as UTC ISO 8601 (``...Z``); containers converted all the way down."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
