"""argparse's own words (usage, errors, the help option) in Chinese while ``jiancha`` parses.

argparse looks its messages up through ``gettext`` at the moment it writes them,
and no Chinese catalogue ships with Python: a Chinese operator read "error: the
following arguments are required" beside jiancha's own Chinese. The lookup is
swapped for this table while the parser is built and used, and put back after, so
other parsers in the same process (the tests') are untouched.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from monitor.i18n import current_lang

__all__ = ["ZH", "argparse_in_language"]

# argparse's message ids (CPython 3.11-3.13), as it passes them to gettext
ZH: dict[str, str] = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "show this help message and exit": "显示本帮助并退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s: 错误: %(message)s\n",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "one of the arguments %s is required": "须给出以下参数之一：%s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "ignored explicit argument %r": "参数 %r 不接受值",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多接受一个值",
    "expected at least one argument": "至少需要一个值",
    "ambiguous option: %(option)s could match %(matches)s": (
        "选项不明确：%(option)s 可能是 %(matches)s"
    ),
    "unexpected option string: %s": "意外的选项：%s",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 值：%(value)r",
    "invalid choice: %(value)r (choose from %(choices)s)": (
        "无效的取值：%(value)r（可选：%(choices)s）"
    ),
    "unknown parser %(parser_name)r (choices: %(choices)s)": (
        "未知的子命令 %(parser_name)r（可选：%(choices)s）"
    ),
    "can't open '%(filename)s': %(error)s": "无法打开 '%(filename)s'：%(error)s",
}
_ZH_PLURAL = {"expected %s argument": "需要 %s 个值"}


def _zh(message: str) -> str:
    return ZH.get(message, message)


def _zh_n(singular: str, plural: str, n: int) -> str:
    got = _ZH_PLURAL.get(singular)
    return got if got is not None else (singular if n == 1 else plural)


@contextmanager
def argparse_in_language() -> Iterator[None]:
    """argparse speaking the user's language (``JIANCHA_LANG``) inside the block."""
    if current_lang() != "zh":
        yield
        return
    # module globals argparse reads at each message (typeshed does not declare them)
    was = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = _zh, _zh_n  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = was  # type: ignore[attr-defined]
