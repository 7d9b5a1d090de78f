"""The bulletin as a print-friendly HTML page (Jinja2), the PDF's source as well.

Numbers are formatted the way the officers' own reports write them
(55,475 件; 54.95%; 环比 +1.20 个百分点); the charts are inline PNG.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Final

from monitor.report.charts import cards_chart, on_time_chart
from monitor.report.model import Figures, Report, empty
from monitor.report.versions import label, shown
from monitor.vocab import LEVEL_WORDS, LEVELS, local_text

__all__ = ["KIND_TITLES", "LIST_LIMIT", "render_html", "revision_note", "title"]

KIND_TITLES: Final = {
    "daily": ("日监测", "daily monitoring sheet"),
    "weekly": ("周通报", "weekly circular"),
    "monthly": ("月总结", "monthly summary"),
    "yearly": ("年度总结", "annual summary"),
}
LIST_LIMIT: Final = 100
"""Rows of a list shown in the HTML and PDF (about three printed pages); the workbook has
them all. A city's month has a thousand red cards: all of them would take 30 pages and
most of the time the PDF takes to lay out."""

# (key, zh, en, kind): kind "n" a count, "r" a rate, "d" working days
ROWS: Final = (
    ("accepted", "受理件", "accepted", "n"),
    ("completed", "办结件", "completed", "n"),
    ("immediate", "即办件", "immediate cases", "n"),
    ("immediate_share", "即办件占比", "immediate share", "r"),
    ("on_time_rate", "按期办结率", "on-time rate", "r"),
    ("early_rate", "提前办结率", "early rate", "r"),
    ("overdue_open", "期末超期件", "overdue open at period end", "n"),
    ("red", "红牌", "red cards", "n"),
    ("yellow", "黄牌", "yellow cards", "n"),
    ("blue", "蓝牌", "blue cards", "n"),
    ("satisfaction_rate", "满意率", "satisfaction rate", "r"),
    ("rectification_rate", "差评整改率", "bad-review rectification rate", "r"),
    ("mean_working_days_used", "平均办理用时（工作日）", "mean working days used", "d"),
    ("mean_promised_days", "平均承诺时限（工作日）", "mean promised limit", "d"),
    ("mean_statutory_days", "平均法定时限（工作日）", "mean statutory limit", "d"),
)


def value(f: Figures, key: str) -> float | int | None:
    if key in LEVELS:
        return f.cards.get(key, 0)
    found: float | int | None = getattr(f, key)
    return found


def fmt(x: float | int | None, kind: str) -> str:
    if x is None:
        return "—"
    if kind == "r":
        return f"{100 * x:.2f}%"
    if kind == "d":
        return f"{x:.1f}"
    return f"{int(x):,}"


def change(now: float | int | None, before: float | int | None, kind: str, lang: str) -> str:
    """环比 / 同比: a count's relative change, a rate's difference in percentage points."""
    if now is None or before is None:
        return "—"
    same = "持平" if lang != "en" else "no change"
    if kind == "r":
        pts = round(100 * (now - before), 2)
        if pts == 0:  # never "-0.00"
            return same
        return f"{pts:+.2f} 个百分点" if lang != "en" else f"{pts:+.2f} pp"
    if kind == "d":
        days = round(now - before, 1)
        return same if days == 0 else f"{days:+.1f}"
    if now == before:
        return same
    if not before:
        return "新增" if lang != "en" else "new"
    return f"{100 * (now - before) / before:+.1f}%"


def title(r: Report, lang: str = "zh") -> str:
    """「XX政务服务中心 2024年3月 政务服务电子监察月总结」."""
    zh, en = KIND_TITLES[r.period.kind]
    who = r.centre if r.department is None else f"{r.centre}{r.department}"
    if lang == "en":
        return f"{who}: e-supervision {en}, {r.period.label('en')}"
    return f"{who} {r.period.label()} 政务服务电子监察{zh}"


def revision_note(r: Report, lang: str = "zh") -> str:
    """The line that marks a revision: its number and the version it corrects."""
    v = r.revision
    if v is None:
        return ""
    when = "—"
    if v.previous_generated_at:
        moment = dt.datetime.fromisoformat(v.previous_generated_at.replace("Z", "+00:00"))
        when = local_text(moment, r.period.tz, deadline=False)
    n = len(v.changed)
    if lang == "en":
        return (
            f"Revision: version {v.version}. Late events changed {n} figure(s) of this "
            f"period after version {v.version - 1} (generated {when}); listed below."
        )
    return (
        f"修订版（第 {v.version} 版）：第 {v.version - 1} 版（生成于 {when}）发出后，"
        f"迟到的办件数据使本期 {n} 项数字发生变化，已更正如下。"
    )


def _changed_rows(r: Report, lang: str) -> list[dict[str, str]]:
    v = r.revision
    if v is None:
        return []

    return [{"label": label(c.key, lang), "was": shown(c.was), "now": shown(c.now)}
            for c in v.changed[:LIST_LIMIT]]  # fmt: skip


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def context(r: Report, lang: str = "zh") -> dict[str, Any]:
    """What the template shows, formatted."""
    en = lang == "en"
    f, tz = r.figures, r.period.tz
    words = {k: LEVEL_WORDS[k]["en" if en else "zh"] for k in LEVELS}
    # a period with no data at all (before the centre came on line) is no comparison
    prev = None if empty(r.previous) else r.previous
    ago = None if empty(r.year_ago) else r.year_ago
    no_data = " (no data)" if en else "（无数据）"

    def compared(g: Figures | None, k: str, kind: str) -> tuple[str, str]:
        if g is None:
            return "—", "—"
        return fmt(value(g, k), kind), change(value(f, k), value(g, k), kind, lang)

    rows = []
    for k, zh, en_, kind in ROWS:
        (before, mom), (earlier, yoy) = compared(prev, k, kind), compared(ago, k, kind)
        rows.append(
            {
                "label": en_ if en else zh,
                "now": fmt(value(f, k), kind),
                "previous": before,
                "mom": mom,
                "year_ago": earlier,
                "yoy": yoy,
            }
        )
    return {
        "lang": lang,
        "title": title(r, lang),
        "r": r,
        "f": f,
        "fmt": fmt,
        "rows": rows,
        "words": words,
        "levels": LEVELS,
        "local": lambda m, deadline=False: local_text(m, tz, deadline=deadline),
        "span": (local_text(r.period.lo, tz, deadline=False), local_text(r.period.hi, tz)),
        "generated": local_text(r.generated_at.astimezone(dt.UTC), tz, deadline=False),
        "previous_label": r.period.previous().label(lang, short=True) + ("" if prev else no_data),
        "year_ago_label": r.period.year_earlier().label(lang, short=True)
        + ("" if ago else no_data),
        "limit": LIST_LIMIT,
        "revision_note": revision_note(r, lang),
        "changed": _changed_rows(r, lang),
        "on_time_png": _data_uri(
            on_time_chart(
                r.departments, "各部门按期办结率" if not en else "On-time rate by department"
            )
        ),
        "cards_png": _data_uri(
            cards_chart(f, "本期发牌（按等级）" if not en else "Cards issued by level", words)
        ),
    }


def render_html(r: Report, lang: str = "zh") -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("bulletin.html.j2").render(**context(r, lang))
