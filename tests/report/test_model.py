"""The bulletin's pure core: rows in, a `Report` out, no database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitor.report.fetch import Rows
from monitor.report.jsondoc import report_json
from monitor.report.model import Context, assemble
from monitor.report.period import parse_period

P = parse_period("daily", "2024-03-20")
UTC = dt.UTC


def figures(dept: str, win: str, **n: int) -> dict[str, Any]:
    keys = ("accepted", "immediate", "completed", "on_time", "early", "late", "overdue_open")
    return {"dept": dept, "win": win, **{k: n.get(k, 0) for k in keys}}


def rows(**kw: Any) -> Rows:
    base: dict[str, Any] = {"figures": [], "cards": [], "ratings": [], "reviews": [],
                            "completions": [], "red_cards": [], "overdue": []}  # fmt: skip
    return Rows(P.lo, P.hi, **{**base, **kw})


def card(dept: str, level: str, rule: str, n: int, revoked: bool = False) -> dict[str, Any]:
    return {"dept": dept, "win": f"{dept}1号窗口", "level": level, "rule": rule,
            "revoked": revoked, "n": n}  # fmt: skip


CURRENT = rows(
    figures=[
        figures("公安局", "公安局1号窗口", accepted=10, immediate=6, completed=8, on_time=7,
                early=2, late=1, overdue_open=1),
        figures("公安局", "公安局2号窗口", accepted=5, completed=4, on_time=4),
        figures("税务局", "税务局1号窗口", accepted=3, completed=2, on_time=2, early=2),
        figures("民政局", "民政局1号窗口", accepted=2),
        figures("文旅局", "文旅局1号窗口"),  # nothing at all: not shown
    ],
    cards=[card("公安局", "red", "decision_time", 2), card("公安局", "yellow", "decision_time", 1),
           card("公安局", "red", "fee_on_free", 1, revoked=True)],
    ratings=[{"dept": "公安局", "win": "公安局1号窗口", "level": lv, "n": n}
             for lv, n in ((5, 6), (3, 1), (2, 1), (1, 2))],
    reviews=[{"dept": "公安局", "win": "公安局1号窗口", "bad": 3, "rectified": 1}],
    completions=[{"dept": "税务局", "win": "税务局1号窗口", "promised_days": [5],
                  "statutory_days": [20],
                  # Monday 10:00 in Beijing to the next Monday
                  "accepted_s": [int(dt.datetime(2024, 3, 11, 2, tzinfo=UTC).timestamp())],
                  "completed_s": [int(dt.datetime(2024, 3, 18, 2, tzinfo=UTC).timestamp())]}],
    red_cards=[{"id": 7, "case_id": "C1", "matter": "M-KNOWN", "dept": "公安局",
                "win": "公安局1号窗口", "clock": "decision", "rule": "decision_time",
                "issued_at": P.lo, "deadline": P.lo, "status": "issued"},
               {"id": 8, "case_id": "C2", "matter": "M-GONE", "dept": "公安局",
                "win": "公安局2号窗口", "clock": "decision", "rule": "fee_on_free",
                "issued_at": P.lo, "deadline": None, "status": "issued"}],
)  # fmt: skip


def context() -> Context:
    from monitor.calendar import load_calendar

    return Context(
        centre="县政务服务中心",
        cal=load_calendar("cn"),
        generated_at=P.hi,
        matters={"M-KNOWN": "居民身份证换领"},
        rule_titles={"decision_time": "承诺时限", "fee_on_free": "免费事项收费"},
        clock_rules=frozenset({"decision_time"}),
    )


def test_the_centre_departments_and_windows_add_up() -> None:
    r = assemble(P, None, CURRENT, rows(), rows(), context())
    f = r.figures
    assert (f.accepted, f.immediate, f.completed, f.overdue_open) == (20, 6, 14, 1)
    assert f.on_time_rate == 13 / 14 and f.early_rate == 4 / 14
    assert f.cards == {"blue": 0, "yellow": 1, "red": 2} and f.cards_revoked == 1
    assert f.satisfaction_rate == 7 / 10 and f.rectification_rate == 1 / 3
    # Mon 11 Mar 10:00 to Mon 18 Mar 10:00, the first day not counted: 4 days + 10/24
    assert f.mean_working_days_used == 4 + 10 / 24 and f.mean_promised_days == 5
    # 税务局 100% before 公安局 92.3%; 民政局 has nothing to judge: last
    assert [(d.rank, d.department) for d in r.departments] == [
        (1, "税务局"), (2, "公安局"), (3, "民政局")]  # fmt: skip
    assert [w.window for w in r.windows] == ["公安局1号窗口", "公安局2号窗口", "民政局1号窗口",
                                             "税务局1号窗口"]  # fmt: skip
    # matter names from the catalogue, else the code; a check's reason is its name
    assert [(x.matter, x.reason) for x in r.red_cards] == [
        ("居民身份证换领", "超过承诺时限"), ("M-GONE", "免费事项收费")]  # fmt: skip
    assert [(c.rule, c.levels["red"], c.revoked) for c in r.by_rule] == [
        ("decision_time", 2, 0), ("fee_on_free", 0, 1)]  # fmt: skip


def test_one_department_and_the_json_contract() -> None:
    r = assemble(P, "税务局", CURRENT, CURRENT, rows(), context())
    doc = report_json(r)
    assert (doc["period"], doc["scope"]) == ("2024-03-20", "税务局")
    assert set(doc["figures"]) >= {
        "accepted", "completed", "immediate", "immediate_share", "on_time_rate", "early_rate",
        "overdue_open", "cards", "satisfaction_rate", "rectification_rate",
        "mean_working_days_used"}  # fmt: skip
    assert set(doc["figures"]["cards"]) == {"blue", "yellow", "red"}
    assert doc["figures"]["accepted"] == 3 and doc["red_cards"] == []
    assert [d["department"] for d in doc["departments"]] == ["税务局"]
    assert doc["compared"]["previous"] == {"period": "2024-03-19",
                                           "figures": doc["figures"]}  # fmt: skip
    assert doc["compared"]["year_ago"]["figures"]["satisfaction_rate"] is None


def test_the_html_in_both_languages() -> None:
    from monitor.report.html import render_html

    r = assemble(P, None, CURRENT, rows(), rows(), context())
    zh = render_html(r)
    assert "<h1>县政务服务中心 2024年3月20日 政务服务电子监察日监测</h1>" in zh
    assert "2024年3月19日（无数据）" in zh  # nothing the day before: no comparison
    en = render_html(r, "en")
    assert "<h1>县政务服务中心: e-supervision daily monitoring sheet, 2024-03-20</h1>" in en
    assert "On-time rate 92.86%" in en


def test_a_long_list_is_cut_in_the_document_and_says_where_the_rest_is(monkeypatch) -> None:
    """A city's month has a thousand red cards: the HTML and PDF show the first ones and
    name the workbook's sheet, which has them all."""
    from monitor.report import html

    r = assemble(P, None, CURRENT, rows(), rows(), context())
    assert len(r.red_cards) == 2
    monkeypatch.setattr(html, "LIST_LIMIT", 1)
    zh = html.render_html(r)
    assert zh.count('<td class="k">C1</td>') == 1 and '<td class="k">C2</td>' not in zh
    assert "……此处列出前 1 张，共 2 张，完整清单见 XLSX 附表《红牌清单》。" in zh
    en = html.render_html(r, "en")
    assert "… the first 1 of 2; the sheet “red cards” of the workbook lists all." in en
    monkeypatch.setattr(html, "LIST_LIMIT", 2)
    assert "此处列出前" not in html.render_html(r)


def test_no_cjk_font_is_named_not_drawn_as_boxes(monkeypatch) -> None:
    import pytest
    from matplotlib import font_manager

    from monitor.report.charts import FontMissing, cjk_font

    cjk_font.cache_clear()
    others = [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", others)
    try:
        with pytest.raises(FontMissing, match="fonts-noto-cjk"):
            cjk_font()
    finally:
        cjk_font.cache_clear()
