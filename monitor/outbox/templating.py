"""The message templates: Jinja2, one per kind, channel flavour and (optionally) level.

Every non-empty line a template writes is one line of the message (see
``layout``). A centre rewords its messages by pointing ``[notify] templates`` at a
directory laid out like ``monitor/outbox/templates`` (``zh/card.wecom.j2``,
``zh/card.red.wecom.j2``, ...); a file there wins over the built-in one of the
same name, and a missing one falls back to it. Templates cannot forget to
escape: every ``{{ value }}`` passes ``monitor.outbox.escape`` for the
channel's markup (the environment's ``finalize``), except what jiancha marks as
its own (``Markup``: its sentences, numbers, instants, URL-encoded links). The
filters ``plain`` and ``md`` are the same escapers for explicit use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from monitor.outbox import escape

__all__ = [
    "BUILTIN",
    "FLAVOURS",
    "GROUPED",
    "Markup",
    "TemplateProblem",
    "check_templates",
    "environment",
    "flavour_of",
    "render_template",
]

BUILTIN: Final = Path(__file__).parent / "templates"
# The markup a channel kind speaks: the robots their own markdown subsets, the rest plain text.
FLAVOURS: Final = ("text", "wecom", "dingtalk")
MARKDOWN: Final = frozenset({"wecom", "dingtalk"})
# Channel kinds whose notifications for one recipient are grouped into one message (a
# webhook's receiver wants one object per card, Alertmanager groups by itself).
GROUPED: Final = frozenset({"wecom", "dingtalk", "smtp"})


class TemplateProblem(ValueError):
    """A template that does not compile or render: names the file and line."""


def flavour_of(channel_kind: str) -> str:
    return channel_kind if channel_kind in MARKDOWN else "text"


def _finalizer(esc: Callable[[Any], str]) -> Callable[[Any], str]:
    def finalize(value: Any) -> str:
        if value is None or isinstance(value, jinja2.Undefined):
            return ""
        return value if isinstance(value, Markup) else esc(value)

    return finalize


@functools.lru_cache(maxsize=32)
def environment(lang: str, flavour: str, override: str = "") -> jinja2.Environment:
    """The templates of one language and flavour: the centre's first, then the built-in ones."""
    esc = escape.markdown if flavour in MARKDOWN else escape.plain
    folders = [Path(override) / lang] if override else []
    folders.append(BUILTIN / lang)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=False,  # not HTML: the channel's own escaping, by finalize
        finalize=_finalizer(esc),
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["plain"] = lambda v: Markup(escape.plain(v))
    env.filters["md"] = lambda v: Markup(escape.markdown(v))
    return env


def render_template(kind: str, flavour: str, level: str | None, context: Mapping[str, Any],
                    lang: str, override: str = "") -> str:  # fmt: skip
    """``kind.level.flavour.j2`` if there is one, else ``kind.flavour.j2``, rendered."""
    env = environment(lang, flavour, override)
    names = [f"{kind}.{level}.{flavour}.j2"] if level else []
    names.append(f"{kind}.{flavour}.j2")
    try:
        template = env.select_template(names)
        out = template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"{' | '.join(names)}: {type(exc).__name__}: {exc}") from None
    return layout(out, flavour)


def check_templates(override: str) -> int:
    """Compile every template of the centre's directory; TemplateProblem (file:line) if one
    does not. Run at start, so a typo stops the daemon rather than a card's transaction."""
    if not override:
        return 0
    files = sorted(Path(override).glob("*/*.j2"))
    for path in files:
        env = environment(path.parent.name, "text", override)
        try:
            env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"{path}:{exc.lineno}: {exc.message}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateProblem(f"{path}: {type(exc).__name__}: {exc}") from None
    return len(files)


def layout(rendered: str, flavour: str) -> str:
    """One line of the template, one line of the message: empty lines (a block tag's, an
    unset fact's) are dropped; DingTalk, which runs single-newline lines together, gets
    each line as a paragraph of its own."""
    lines = [line.rstrip() for line in rendered.splitlines() if line.strip()]
    return ("\n\n" if flavour == "dingtalk" else "\n").join(lines)
