"""The markdown the WeCom and DingTalk robots render, as checkers (docs/alerts.md lists them).

WeCom group robot, ``msgtype: markdown``: headings (``#`` to ``######``), bold
``**x**``, links ``[text](url)``, quotes ``> ``, ``<font color="info|comment|
warning">``, mentions ``<@userid>``; lines break at a single newline. DingTalk
custom robot, ``msgtype: markdown``: headings, bold, links, unordered ``- `` and
ordered ``1. `` lists, quotes; lines joined by a single newline run together, so
every line is a paragraph of its own (a blank line between). Anything else
(tables, images, code, emphasis with ``_``/``*``, HTML, strikethrough) is
outside the subset: shown raw at best, misread at worst.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["problems"]

_HEADING: Final = re.compile(r"^#{1,6} ")
_QUOTE: Final = re.compile(r"^> ")
_LIST: Final = re.compile(r"^(- |\d+\. )")
_BOLD: Final = re.compile(r"\*\*[^*\n]+?\*\*")
_LINK: Final = re.compile(r"\[[^\[\]\n]+\]\(https?://[^\s()<>]+\)")
_FONT: Final = re.compile(r'<font color="(info|comment|warning)">|</font>')
_MENTION: Final = re.compile(r"<@[A-Za-z0-9_.-]{1,64}>")
# Characters that mean markup in either dialect once our own constructs are taken out.
_ACTIVE: Final = re.compile(r"[*_`\[\]<>#|~]")


def problems(text: str, dialect: str) -> list[str]:
    """Every line (or line break) of ``text`` outside the robot's markdown subset."""
    if dialect not in ("wecom", "dingtalk"):
        raise ValueError(dialect)
    found = []
    if dialect == "dingtalk" and re.search(r"[^\n]\n[^\n]", text):
        found.append("a single newline (DingTalk runs the lines together)")
    for n, line in enumerate(text.split("\n"), 1):
        rest = _HEADING.sub("", line, count=1)
        rest = _QUOTE.sub("", rest, count=1)
        if _LIST.match(rest):
            if dialect == "wecom":
                found.append(f"line {n}: a list (not in WeCom's markdown): {line!r}")
            rest = _LIST.sub("", rest, count=1)
        if "![" in rest:
            found.append(f"line {n}: an image (not in the subset): {line!r}")
        rest = _LINK.sub("", rest)
        rest = _BOLD.sub("", rest)
        if dialect == "wecom":
            rest = _MENTION.sub("", _FONT.sub("", rest))
        bad = _ACTIVE.search(rest)
        if bad:
            found.append(f"line {n}: {bad.group()!r} outside the subset: {line!r}")
    return found
