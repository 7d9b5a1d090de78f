"""The bulletin's charts, drawn with matplotlib in the CJK font, as PNG for HTML and PDF.

PNG at print resolution (200 dpi), not SVG: an SVG needs its text drawn as
outlines to look the same without the font, and WeasyPrint draws those
outlines slower than the rest of a page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Final

from monitor.report.model import Figures, Scoped

__all__ = ["CJK_FAMILIES", "FontMissing", "cards_chart", "cjk_font", "on_time_chart"]

CJK_FAMILIES: Final = ("Noto Sans CJK SC", "Noto Serif CJK SC")
LEVEL_COLOURS: Final = {"red": "#c8281e", "yellow": "#e0a800", "blue": "#2f6fd0"}  # as in tables
_INK = "#333333"


class FontMissing(RuntimeError):
    """No CJK font: the documents would show boxes instead of Chinese."""


@cache
def cjk_font() -> str:
    """The family name of the CJK font matplotlib (and fontconfig) can use."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in names:
            return family
    raise FontMissing(
        "找不到中文字体 Noto Sans CJK SC：请安装 Debian 软件包 fonts-noto-cjk"
        "（apt-get install fonts-noto-cjk），然后删除 matplotlib 的字体缓存 ~/.cache/matplotlib"
        " / no CJK font: install the Debian package fonts-noto-cjk"
    )


DPI: Final = 200


def _png(draw: object) -> bytes:
    from matplotlib.figure import Figure

    assert isinstance(draw, Figure)
    buf = io.BytesIO()
    draw.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _figure(width: float, height: float) -> object:
    import matplotlib

    matplotlib.rcParams.update(
        {
            "font.family": [cjk_font()],
            "axes.unicode_minus": False,
        }
    )
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def on_time_chart(departments: Sequence[Scoped], title: str) -> bytes:
    """Horizontal bars: each department's on-time rate, in rank order (best on top)."""
    from matplotlib.figure import Figure

    shown = [d for d in departments if d.figures.on_time_rate is not None]
    fig = _figure(7.0, max(1.6, 0.36 * len(shown) + 0.9))
    assert isinstance(fig, Figure)
    ax = fig.add_subplot()
    names = [d.department or "—" for d in reversed(shown)]
    rates = [100 * (d.figures.on_time_rate or 0.0) for d in reversed(shown)]
    bars = ax.barh(names, rates, color="#2f6fd0", height=0.6)
    ax.bar_label(bars, labels=[f"{r:.1f}%" for r in rates], padding=3, fontsize=8, color=_INK)
    low = min(rates, default=100.0)
    start = max(0.0, min(90.0, low - 5)) if rates else 0.0
    ax.set_xlim(start, 106)  # room for the labels of 100%; no rate is shown above 100
    ax.set_xticks([t for t in ax.get_xticks() if start <= t <= 100])
    ax.set_title(title, fontsize=11, color=_INK, loc="left")
    ax.tick_params(labelsize=8, colors=_INK)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_formatter("{x:.0f}%")
    if not shown:
        ax.text(0.5, 0.5, "本期无办结件", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def cards_chart(figures: Figures, title: str, words: dict[str, str]) -> bytes:
    """Vertical bars: cards issued in the period by level, in their colours."""
    from matplotlib.figure import Figure

    fig = _figure(4.2, 2.6)
    assert isinstance(fig, Figure)
    ax = fig.add_subplot()
    levels = list(LEVEL_COLOURS)
    counts = [figures.cards.get(k, 0) for k in levels]
    bars = ax.bar(
        [words[k] for k in levels], counts, color=list(LEVEL_COLOURS.values()), width=0.55
    )
    ax.bar_label(bars, padding=2, fontsize=9, color=_INK)
    ax.set_ylim(0, max([*counts, 1]) * 1.2)
    ax.set_title(title, fontsize=11, color=_INK, loc="left")
    ax.tick_params(labelsize=9, colors=_INK)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
