"""Where a key or a table stands in a TOML file: tomllib keeps no positions.

Calendar files, rule files and ``jiancha.toml`` are edited by hand, and a
mistake must be reported with the file and the line. The parsed data says
what is wrong; this finds the line in the raw text.
"""

from __future__ import annotations

import re
import tomllib

__all__ = ["TomlLines", "syntax_line"]

_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def syntax_line(exc: tomllib.TOMLDecodeError, text: str) -> int | None:
    """The line of a TOML syntax error (the last line for one at the end of the document)."""
    m = _POSITION.search(str(exc))
    if m is not None:
        return int(m[1])
    return text.count("\n") + 1 if "end of document" in str(exc) else None


class TomlLines:
    """A TOML text by line, for finding where things are."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()

    def section(self, pattern: str, nth: int = 0) -> int | None:
        """The line of the ``nth`` table header matching ``pattern`` (a regex)."""
        rx = re.compile(pattern)
        seen = 0
        for no, line in enumerate(self.lines, 1):
            if rx.match(line.strip()):
                if seen == nth:
                    return no
                seen += 1
        return None

    def array_table(self, name: str, nth: int = 0) -> int | None:
        """The line of the ``nth`` ``[[name]]`` header."""
        return self.section(rf"^\[\[\s*{re.escape(name)}\s*\]\]", nth)

    def table(self, dotted: str) -> int | None:
        """The line of the ``[a.b]`` header (quoted parts allowed)."""
        parts = r"\s*\.\s*".join(f'"?{re.escape(p)}"?' for p in dotted.split("."))
        return self.section(rf"^\[\s*{parts}\s*\]")

    def key(self, key: str, after: int | None = None) -> int | None:
        """The line of ``key = ...`` in the table that starts at ``after`` (default: the top).

        Not found: ``after`` itself, so an error still points at the table.
        """
        rx = re.compile(rf"^\s*{re.escape(key)}\s*=")
        start = after or 1
        for no in range(start, len(self.lines) + 1):
            line = self.lines[no - 1]
            if no > start and line.strip().startswith("["):
                break  # the next table: the key is not in this one
            if rx.match(line):
                return no
        return after

    def find(self, needle: str, after: int = 0) -> int | None:
        """The first line from ``after`` on that contains ``needle`` (else ``after``, or None)."""
        for no in range(max(after, 1), len(self.lines) + 1):
            if needle in self.lines[no - 1]:
                return no
        return after or None
