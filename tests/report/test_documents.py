"""`jiancha report` on a simulated month: every document says what the raw rows say.

March 2024 of a simulated centre goes through the daemon's own path into a
real PostgreSQL; `jiancha report monthly --period 2024-03` writes the four
documents. The test counts the month again in plain Python from the raw
event rows (accepted, completed, immediate, ratings, bad reviews, working
days used, per department), from the ledger's rows (cards), and from
``jiancha.figures_v1`` only for what needs the clocks (on time, early,
overdue), and holds the JSON, the workbook's cells and the HTML's text to it.
The PDF is rendered, its first page rasterised with pdftoppm and read back
with pdftotext.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import zipfile
import zoneinfo
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest
import trio

from monitor import db
from monitor.cli import main
from monitor.whatif.simulate import Event, load_catalogue
from tests.report.history import build_history

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
LO = dt.datetime(2024, 3, 1, tzinfo=TZ).astimezone(dt.UTC)
HI = dt.datetime(2024, 4, 1, tzinfo=TZ).astimezone(dt.UTC)
CENTRE = "县政务服务中心"
TITLE = f"{CENTRE} 2024年3月 政务服务电子监察月总结"


@pytest.fixture(scope="module")
def history(pg_dsn: str, cal: Any, rules: Any) -> tuple[str, list[Event]]:
    async def run() -> list[Event]:
        async with db.open_loop():
            return await build_history(pg_dsn, cal, rules)

    return pg_dsn, trio.run(run)


@pytest.fixture(scope="module")
def documents(history: tuple[str, list[Event]], tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, str]:  # fmt: skip
    """The four documents of March 2024, with one red card revoked first."""
    dsn, _ = history

    async def revoke_one() -> None:
        from monitor.cards.lifecycle import act

        async with db.open_loop(), await db.connect(dsn) as conn:
            card = await conn.fetchval(
                "SELECT id FROM jiancha.cards WHERE status = 'issued' "
                "AND issued_at >= $1 AND issued_at < $2 ORDER BY id LIMIT 1", LO, HI)  # fmt: skip
            assert card is not None
            await act(
                conn, card, "revoke", "监察员", "数据错误", dt.datetime(2024, 4, 8, tzinfo=dt.UTC)
            )

    trio.run(revoke_one)
    out_dir = tmp_path_factory.mktemp("reports")
    buf = io.StringIO()
    code = main(["report", "monthly", "--period", "2024-03", "--out", str(out_dir),
                 "--dsn", dsn], out=buf)  # fmt: skip
    assert code == 0, buf.getvalue()
    return out_dir, buf.getvalue()


def plain_month(events: list[Event], cal: Any) -> dict[str, Any]:
    """March counted from the raw event rows, without jiancha's code."""
    matters = load_catalogue().matters
    by_case: dict[str, list[Event]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    n: dict[str, Any] = {"accepted": 0, "immediate": 0, "completed": 0, "ratings": 0,
                         "satisfied": 0, "bad": 0, "rectified": 0}  # fmt: skip
    depts: dict[str, dict[str, int]] = {}
    windows: dict[tuple[str, str], dict[str, int]] = {}
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for evs in by_case.values():
        first: dict[str, Event] = {}
        for e in evs:
            first.setdefault(e.kind, e)
        matter = matters[first["submitted"].payload["matter"]]
        dept = depts.setdefault(matter.department, {"accepted": 0, "completed": 0})
        window = first["submitted"].payload["window"]
        win = windows.setdefault((matter.department, window), {"accepted": 0, "completed": 0})
        acc = first.get("accepted")
        done = first.get("completed") or (first.get("refused") if acc else None)
        closed = first.get("withdrawn") or first.get("terminated")
        if done is not None and closed is not None and closed.occurred_at <= done.occurred_at:
            done = None
        promised = matter.promised_days
        if acc is not None and "promised_days" in acc.payload:
            promised = acc.payload["promised_days"]
        if acc is not None and LO <= acc.occurred_at < HI:
            n["accepted"] += 1
            n["immediate"] += promised == 0
            dept["accepted"] += 1
            win["accepted"] += 1
        if done is not None and LO <= done.occurred_at < HI:
            n["completed"] += 1
            dept["completed"] += 1
            win["completed"] += 1
            if acc is not None and acc.occurred_at <= done.occurred_at:
                spans.append((acc.occurred_at, done.occurred_at))
        rated = [e for e in evs if e.kind == "rated" and LO <= e.occurred_at < HI]
        if rated:
            n["ratings"] += 1
            n["satisfied"] += rated[-1].payload["level"] >= 3
        reviews: list[list[dt.datetime | None]] = []  # [given, rectified]
        for e in evs:
            if e.kind == "rated" and e.payload["level"] <= 2:
                reviews.append([e.occurred_at, None])
            elif e.kind == "review_rectified":
                open_ = [r for r in reviews if r[1] is None]
                if open_:
                    open_[0][1] = e.occurred_at
        for given, fixed in reviews:
            assert given is not None
            if LO <= given < HI:
                n["bad"] += 1
                n["rectified"] += fixed is not None and fixed < HI
    starts = np.asarray([a.replace(tzinfo=None) for a, _ in spans], dtype="datetime64[s]")
    ends = np.asarray([b.replace(tzinfo=None) for _, b in spans], dtype="datetime64[s]")
    n["mean_working_days_used"] = float(cal.working_days_between(starts, ends).mean())
    n["departments"] = {k: v for k, v in depts.items() if v["accepted"] or v["completed"]}
    n["windows"] = {k: v for k, v in windows.items() if v["accepted"] or v["completed"]}
    return n


async def clocks_and_ledger(dsn: str) -> dict[str, Any]:
    """On time, early, overdue from the one SQL definition; cards from the ledger's rows."""
    async with db.open_loop(), await db.connect(dsn) as conn:
        rows = await conn.fetch("SELECT * FROM jiancha.figures_v1($1, $2, $2)", LO, HI)
        cards = await conn.fetch("SELECT level, status, issued_at FROM jiancha.cards")
    s = {k: sum(int(r[k]) for r in rows) for k in ("on_time", "early", "late", "overdue_open")}
    levels = {"blue": 0, "yellow": 0, "red": 0}
    revoked = 0
    for c in cards:
        if LO <= c["issued_at"] < HI:
            if c["status"] == "revoked":
                revoked += 1
            else:
                levels[c["level"]] += 1
    return {**s, "cards": levels, "revoked": revoked}


def test_the_documents_agree_with_the_raw_rows(history, documents, cal) -> None:
    dsn, events = history
    out_dir, printed = documents
    plain = plain_month(events, cal)
    sql = trio.run(clocks_and_ledger, dsn)
    judged = sql["on_time"] + sql["late"]
    # the history exercised what the report tells apart
    assert plain["accepted"] > 400 and plain["immediate"] > 0 and plain["bad"] > 0
    assert sql["overdue_open"] > 0 and sql["late"] > 0 and sql["cards"]["red"] > 0
    assert sql["revoked"] == 1

    doc = json.loads((out_dir / "jiancha-monthly-2024-03.json").read_text("utf-8"))
    f = doc["figures"]
    assert (doc["period"], doc["scope"]) == ("2024-03", CENTRE)
    expected = {
        "accepted": plain["accepted"],
        "completed": plain["completed"],
        "immediate": plain["immediate"],
        "immediate_share": plain["immediate"] / plain["accepted"],
        "on_time_rate": sql["on_time"] / judged,
        "early_rate": sql["early"] / judged,
        "overdue_open": sql["overdue_open"],
        "satisfaction_rate": plain["satisfied"] / plain["ratings"],
        "rectification_rate": plain["rectified"] / plain["bad"],
    }
    assert {k: f[k] for k in expected} == pytest.approx(expected)
    assert f["cards"] == sql["cards"]
    assert f["mean_working_days_used"] == pytest.approx(plain["mean_working_days_used"])
    assert f["cards_revoked"] == 1
    got_depts = {d["department"]: {"accepted": d["accepted"], "completed": d["completed"]}
                 for d in doc["departments"]}  # fmt: skip
    assert got_depts == plain["departments"]
    assert [d["rank"] for d in doc["departments"]] == list(range(1, len(got_depts) + 1))
    rates = [d["on_time_rate"] for d in doc["departments"] if d["on_time_rate"] is not None]
    assert rates == sorted(rates, reverse=True)
    assert len(doc["overdue"]) == sql["overdue_open"]
    assert len(doc["red_cards"]) == sql["cards"]["red"]
    names = {m.name for m in load_catalogue().matters.values()}
    assert doc["red_cards"][0]["matter"] in names  # the catalogue's name, not the code
    got_windows = {
        (w["department"], w["window"]): {"accepted": w["accepted"], "completed": w["completed"]}
        for w in doc["windows"]
        if w["accepted"] or w["completed"]
    }
    assert got_windows == plain["windows"]
    assert doc["compared"]["previous"]["period"] == "2024-02"
    assert doc["compared"]["year_ago"]["period"] == "2023-03"
    assert doc["compared"]["previous"]["figures"]["accepted"] == 0
    assert f"受理 {plain['accepted']} 件" in printed

    # the workbook: numbers in cells, one sheet per table, native charts
    book_path = out_dir / "jiancha-monthly-2024-03.xlsx"
    wb = openpyxl.load_workbook(book_path)
    assert wb.sheetnames == ["总体指标", "部门排名", "窗口明细", "按规则发牌", "红牌清单",
                             "超期件清单"]  # fmt: skip
    overview = {row[0]: row[1] for row in wb["总体指标"].iter_rows(min_row=2, max_col=2,
                                                                   values_only=True)}  # fmt: skip
    assert overview["受理件"] == plain["accepted"]
    assert overview["办结件"] == plain["completed"]
    assert overview["即办件"] == plain["immediate"]
    assert overview["按期办结率"] == pytest.approx(sql["on_time"] / judged)
    assert overview["提前办结率"] == pytest.approx(sql["early"] / judged)
    assert overview["期末超期件"] == sql["overdue_open"]
    assert (overview["红牌"], overview["黄牌"], overview["蓝牌"]) == (
        sql["cards"]["red"], sql["cards"]["yellow"], sql["cards"]["blue"])  # fmt: skip
    assert overview["满意率"] == pytest.approx(plain["satisfied"] / plain["ratings"])
    assert overview["差评整改率"] == pytest.approx(plain["rectified"] / plain["bad"])
    ranked = list(wb["部门排名"].iter_rows(min_row=2, max_col=4, values_only=True))
    assert {r[1]: {"accepted": r[2], "completed": r[3]} for r in ranked} == plain["departments"]
    by_window = wb["窗口明细"].iter_rows(min_row=2, max_col=4, values_only=True)
    assert {(r[0], r[1]): {"accepted": r[2], "completed": r[3]} for r in by_window
            if r[2] or r[3]} == plain["windows"]  # fmt: skip
    assert wb["超期件清单"].max_row == 1 + sql["overdue_open"]
    assert wb["红牌清单"].max_row == 1 + sql["cards"]["red"]
    with zipfile.ZipFile(book_path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 2
        kinds = "".join(z.read(n).decode() for n in charts)
        assert "<c:barChart>" in kinds and "按期办结率" in kinds

    # the HTML: the title, the officers' sentence, the charts inline
    html = (out_dir / "jiancha-monthly-2024-03.html").read_text("utf-8")
    assert f"<h1>{TITLE}</h1>" in html
    assert f"本期共受理办件 {plain['accepted']:,} 件，办结 {plain['completed']:,} 件" in html
    assert f"按期办结率 {100 * sql['on_time'] / judged:.2f}%" in html
    assert f'期末超期未办结 <span class="red">{sql["overdue_open"]}</span> 件' in html
    assert f"满意率 {100 * plain['satisfied'] / plain['ratings']:.2f}%" in html
    assert html.count("data:image/png;base64,") == 2
    assert "未扣除特别程序" in html  # the note on working days used
    for x in doc["red_cards"] + doc["overdue"]:
        assert f'<td class="k">{x["case_id"]}</td><td>{x["matter"]}</td>' in html


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="needs poppler-utils (dev-deps.sh)")
def test_the_pdf_renders_its_chinese_title(documents) -> None:
    from PIL import Image

    out_dir, _ = documents
    pdf = out_dir / "jiancha-monthly-2024-03.pdf"
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert TITLE.replace(" ", "") in text.replace(" ", "")
    assert "一、总体情况" in text and "按期办结率" in text
    png = out_dir / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(png)], check=True)  # fmt: skip
    page = Image.open(f"{png}.png").convert("L")
    width, height = page.size
    title_area = page.crop((0, 0, width, height // 10))
    dark = sum(title_area.histogram()[:160])
    assert dark > 500, "the title area is blank: no CJK glyphs drawn"
    body = page.crop((0, height // 10, width, height))
    assert sum(body.histogram()[:200]) > 5000, "the page body is blank"
