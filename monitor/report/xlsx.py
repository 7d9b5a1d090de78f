"""The bulletin as a workbook (XlsxWriter): one sheet per table, native Excel charts.

Officers re-cut the numbers in Excel, so cells hold numbers (rates as
fractions in a percent format), never formatted text; lists are complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from monitor.report.html import ROWS, change, revision_note, title, value
from monitor.report.model import Listed, Report, Scoped, empty
from monitor.report.versions import label
from monitor.vocab import LEVEL_WORDS, LEVELS, local_text

__all__ = ["SHEETS", "write_xlsx"]

SHEETS: Final = {
    "overview": ("总体指标", "overview"),
    "departments": ("部门排名", "departments"),
    "windows": ("窗口明细", "windows"),
    "rules": ("按规则发牌", "cards by rule"),
    "red": ("红牌清单", "red cards"),
    "overdue": ("超期件清单", "overdue cases"),
    "revision": ("修订说明", "revision"),
}
# (key, zh, en, kind) of the scope tables' columns
_COLUMNS: Final = (
    ("accepted", "受理", "accepted", "n"),
    ("completed", "办结", "completed", "n"),
    ("immediate", "即办件", "immediate", "n"),
    ("immediate_share", "即办件占比", "immediate share", "r"),
    ("on_time_rate", "按期办结率", "on-time rate", "r"),
    ("early_rate", "提前办结率", "early rate", "r"),
    ("overdue_open", "超期件", "overdue", "n"),
    ("red", "红牌", "red", "n"),
    ("yellow", "黄牌", "yellow", "n"),
    ("blue", "蓝牌", "blue", "n"),
    ("satisfaction_rate", "满意率", "satisfaction", "r"),
    ("rectification_rate", "差评整改率", "rectification", "r"),
    ("mean_working_days_used", "平均办理用时（工作日）", "mean working days used", "d"),
)


class _Book:
    """The workbook and its formats."""

    def __init__(self, path: Path, lang: str) -> None:
        import xlsxwriter

        self.en = lang == "en"
        self.wb = xlsxwriter.Workbook(str(path))
        font = {"font_name": "Microsoft YaHei", "font_size": 10}
        self.head = self.wb.add_format(
            {**font, "bold": True, "bg_color": "#F1ECE4", "border": 1, "text_wrap": True}
        )
        self.title = self.wb.add_format(
            {**font, "bold": True, "font_size": 14, "font_color": "#B0201A"}
        )
        self.text = self.wb.add_format({**font, "border": 1})
        self.num = {
            "n": self.wb.add_format({**font, "border": 1, "num_format": "#,##0"}),
            "r": self.wb.add_format({**font, "border": 1, "num_format": "0.00%"}),
            "d": self.wb.add_format({**font, "border": 1, "num_format": "0.0"}),
        }

    def word(self, zh: str, en: str) -> str:
        return en if self.en else zh

    def sheet(self, key: str, headers: list[str], widths: list[int]) -> Any:
        ws = self.wb.add_worksheet(SHEETS[key][1 if self.en else 0])
        for col, (h, w) in enumerate(zip(headers, widths, strict=True)):
            ws.set_column(col, col, w)
            ws.write(0, col, h, self.head)
        ws.freeze_panes(1, 0)
        return ws

    def cell(self, ws: Any, row: int, col: int, x: Any, kind: str = "t") -> None:
        if x is None:
            ws.write_blank(row, col, None, self.text)
        elif kind == "t":
            ws.write(row, col, x, self.text)
        else:
            ws.write_number(row, col, x, self.num[kind])


def _overview(b: _Book, r: Report) -> None:
    p, lang = r.period, "en" if b.en else "zh"
    headers = [b.word("指标", "figure"), b.word("本期", "this period") + f" {p.key}",
               b.word("上期", "previous") + f" {p.previous().key}",
               b.word("去年同期", "a year earlier") + f" {p.year_earlier().key}",
               b.word("环比", "change"), b.word("同比", "year on year")]  # fmt: skip
    ws = b.sheet("overview", headers, [26, 18, 18, 18, 16, 16])
    compared = [g if not empty(g) else None for g in (r.previous, r.year_ago)]
    for i, (key, zh, en, kind) in enumerate(ROWS, 1):
        b.cell(ws, i, 0, b.word(zh, en))
        for col, f in enumerate((r.figures, r.previous, r.year_ago), 1):
            b.cell(ws, i, col, value(f, key), kind)
        for col, g in enumerate(compared, 4):  # a period without data is no comparison
            now = value(r.figures, key)
            b.cell(ws, i, col, "—" if g is None else change(now, value(g, key), kind, lang))
    ws.write(len(ROWS) + 2, 0, title(r, "en" if b.en else "zh"), b.title)
    for i, note in enumerate(r.notes):
        ws.write(len(ROWS) + 3 + i, 0, note)
    chart = b.wb.add_chart({"type": "column"})
    rows = {key: i for i, (key, *_rest) in enumerate(ROWS, 1)}
    name = SHEETS["overview"][1 if b.en else 0]
    chart.add_series(
        {
            "name": b.word("本期发牌", "cards issued"),
            "categories": [name, rows["red"], 0, rows["blue"], 0],
            "values": [name, rows["red"], 1, rows["blue"], 1],
            "points": [{"fill": {"color": c}} for c in ("#C8281E", "#E0A800", "#2F6FD0")],
            "data_labels": {"value": True},
        }
    )
    chart.set_title({"name": b.word("本期发牌（按等级）", "Cards issued by level")})
    chart.set_legend({"none": True})
    ws.insert_chart(1, 7, chart)


def _scoped(b: _Book, key: str, scopes: tuple[Scoped, ...]) -> None:
    lead = [b.word("部门", "department")]
    lead = (
        [b.word("名次", "rank"), *lead]
        if key == "departments"
        else [*lead, b.word("窗口", "window")]
    )
    headers = lead + [b.word(zh, en) for _, zh, en, _k in _COLUMNS]
    ws = b.sheet(key, headers, [8 if key == "departments" else 22, 22] + [11] * len(_COLUMNS))
    for i, s in enumerate(scopes, 1):
        head: list[Any] = (
            [s.rank, s.department] if key == "departments" else [s.department, s.window]
        )
        b.cell(ws, i, 0, head[0], "n" if key == "departments" else "t")
        b.cell(ws, i, 1, head[1])
        for col, (k, _zh, _en, kind) in enumerate(_COLUMNS, 2):
            b.cell(ws, i, col, value(s.figures, k), kind)
    if key == "departments" and scopes:
        name = SHEETS[key][1 if b.en else 0]
        col = 2 + [k for k, *_ in _COLUMNS].index("on_time_rate")
        chart = b.wb.add_chart({"type": "bar"})
        chart.add_series(
            {
                "name": b.word("按期办结率", "on-time rate"),
                "categories": [name, 1, 1, len(scopes), 1],
                "values": [name, 1, col, len(scopes), col],
                "fill": {"color": "#2F6FD0"},
                "data_labels": {"value": True, "num_format": "0.0%"},
            }
        )
        chart.set_title({"name": b.word("各部门按期办结率", "On-time rate by department")})
        chart.set_y_axis({"reverse": True})
        chart.set_x_axis({"num_format": "0%", "max": 1})
        chart.set_legend({"none": True})
        chart.set_size({"width": 640, "height": max(260, 26 * len(scopes) + 80)})
        ws.insert_chart(len(scopes) + 3, 1, chart)


def _rules(b: _Book, r: Report) -> None:
    words = [LEVEL_WORDS[k]["en" if b.en else "zh"] for k in LEVELS]
    ws = b.sheet(
        "rules",
        [b.word("规则", "rule"), b.word("规则名称", "title"), *words, b.word("已撤销", "revoked")],
        [24, 30, 10, 10, 10, 10],
    )
    for i, c in enumerate(r.by_rule, 1):
        b.cell(ws, i, 0, c.rule)
        b.cell(ws, i, 1, c.title)
        for col, level in enumerate(LEVELS, 2):
            b.cell(ws, i, col, c.levels.get(level, 0), "n")
        b.cell(ws, i, 5, c.revoked, "n")


def _listed(b: _Book, key: str, rows: tuple[Listed, ...], tz: str) -> None:
    at = b.word("发牌时间", "issued") if key == "red" else b.word("承诺期限", "deadline")
    headers = [
        b.word("办件编号", "case"),
        b.word("事项名称", "matter"),
        b.word("部门", "department"),
        b.word("窗口", "window"),
        at,
        b.word("原因", "reason"),
    ]
    ws = b.sheet(key, headers, [22, 34, 18, 18, 18, 50])
    for i, x in enumerate(rows, 1):
        when = local_text(x.at, tz, deadline=key != "red")
        for col, v in enumerate((x.case_id, x.matter, x.department, x.window, when, x.reason)):
            b.cell(ws, i, col, v)


def _revision(b: _Book, r: Report) -> None:
    """A revision's sheet, first: the figures late events changed since the version before."""
    v = r.revision
    if v is None:
        return
    lang = "en" if b.en else "zh"
    ws = b.sheet("revision", [b.word("指标", "figure"), b.word("上一版", "was"),
                              b.word("本版", "now")], [52, 18, 18])  # fmt: skip
    for i, c in enumerate(v.changed, 1):
        b.cell(ws, i, 0, label(c.key, lang))
        for col, x in ((1, c.was), (2, c.now)):
            b.cell(ws, i, col, x, "n" if isinstance(x, int | float) else "t")
    ws.write(len(v.changed) + 2, 0, revision_note(r, lang), b.title)


def write_xlsx(r: Report, path: Path, lang: str = "zh") -> Path:
    """Write the workbook to ``path``."""
    b = _Book(path, lang)
    _revision(b, r)
    _overview(b, r)
    _scoped(b, "departments", r.departments)
    _scoped(b, "windows", r.windows)
    _rules(b, r)
    _listed(b, "red", r.red_cards, r.period.tz)
    _listed(b, "overdue", r.overdue, r.period.tz)
    b.wb.close()
    return path
