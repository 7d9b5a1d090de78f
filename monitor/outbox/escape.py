"""Values from the source inside a message: text, never markup.

A case id, a window, a department, a matter name, a step name all come from
the approval database, where anyone who can file an application or name a
counter writes them. Put into a robot's markdown raw, a case id holding
``\\n# 已撤销，请忽略\\n[点此登录整改系统](http://…)`` became a heading and a
link in a message carrying the supervision system's authority. Every value a
message inserts goes through one of these: ``plain`` for text channels
(line breaks and invisible controls become spaces, so a value cannot start
a line of its own, and a URL in it is no link) and ``markdown`` for the
robots' markdown (plain, then every character markdown, HTML or mentions act
on replaced by its full-width form, which reads the same to a Chinese reader).
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["markdown", "markdown_lines", "plain"]

# C0/C1 controls, line and paragraph separators, zero-width and bidirectional marks
_CONTROLS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+"
)
_MARKDOWN: Final = str.maketrans({
    "\\": "＼", "`": "｀", "*": "＊", "_": "＿", "[": "［", "]": "］", "<": "＜", ">": "＞",
    "#": "＃", "!": "！", "|": "｜", "~": "～", "&": "＆",
})  # fmt: skip


def plain(value: Any) -> str:
    """One line of text: controls and line breaks become single spaces, and no URL a mail
    client or a chat would make a link of (``://`` becomes ``：//``)."""
    return _CONTROLS.sub(" ", str(value)).strip().replace("://", "：//")


def markdown(value: Any) -> str:
    """``plain``, then inert in markdown: no emphasis, link, heading, tag or mention."""
    return plain(value).translate(_MARKDOWN)


def markdown_lines(message_markdown: str | None, text: str, title: str) -> tuple[str, list[str]]:
    """A message's heading and body lines in markdown, the title written once.

    As rendered, or (a row queued before markdown was rendered apart) its plain
    text escaped whole. A text that starts with its title (every rendered one
    does) gives that line as the heading rather than repeating it.
    """
    lines = (message_markdown.splitlines() if message_markdown is not None
             else [markdown(line) for line in text.splitlines()])  # fmt: skip
    if lines and text.splitlines()[:1] == [title]:
        return lines[0], lines[1:]
    return markdown(title), lines
