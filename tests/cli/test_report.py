"""`jiancha report` at its edges: periods as officers type them, an empty period, help."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.report import last_complete, parse_period


@pytest.fixture(autouse=True)
def _chinese(monkeypatch):
    monkeypatch.setenv("JIANCHA_LANG", "zh")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.mark.parametrize(
    ("kind", "period"),
    [("daily", "2026-12-32"), ("daily", "2026-W49"), ("weekly", "2026-W54"),
     ("weekly", "2026-12-02"), ("monthly", "2026-13"), ("yearly", "去年")],
)  # fmt: skip
def test_a_bad_period_is_refused_in_chinese(kind, period, capsys, tmp_path) -> None:
    code, out = run("report", kind, "--period", period, "--out", str(tmp_path),
                    "--dsn", "postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert "jiancha: 错误: 无效的" in err and repr(period) in err
    assert "应写作" in err  # how to write one
    assert list(tmp_path.iterdir()) == []


def test_a_bad_format_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "daily", "--format", "html,docx"])
    assert exc.value.code == 2
    assert "无效的格式：docx" in capsys.readouterr().err


def test_periods_as_officers_write_them() -> None:
    week = parse_period("weekly", "2026-W49")
    assert (week.first, week.after, week.key) == (dt.date(2026, 11, 30), dt.date(2026, 12, 7),
                                                  "2026-W49")  # fmt: skip
    assert week.label() == "2026年第49周（11月30日至12月6日）"
    assert week.previous().key == "2026-W48" and week.year_earlier().key == "2025-W49"
    assert parse_period("weekly", "2026-W53").year_earlier().key == "2025-W52"
    month = parse_period("monthly", "2024-03")
    assert month.lo == dt.datetime(2024, 2, 29, 16, tzinfo=dt.UTC)
    assert month.hi == dt.datetime(2024, 3, 31, 16, tzinfo=dt.UTC)
    assert month.label() == "2024年3月" and month.previous().key == "2024-02"
    assert parse_period("daily", "2024-03-01").previous().key == "2024-02-29"
    assert parse_period("daily", "2024-02-29").year_earlier().key == "2023-02-28"
    assert parse_period("yearly", "2026").previous().key == "2025"
    # the last complete period, in Beijing: 2026-12-01 17:00 UTC is already the 2nd there
    now = dt.datetime(2026, 12, 1, 17, tzinfo=dt.UTC)
    assert last_complete("daily", now).key == "2026-12-01"
    assert last_complete("weekly", now).key == "2026-W48"
    assert last_complete("monthly", now).key == "2026-11"
    assert last_complete("yearly", now).key == "2025"


def test_an_empty_period_is_a_report_of_zeros(sync_dsn: str, tmp_path: Path) -> None:
    code, out = run("report", "daily", "--period", "2020-01-02", "--out", str(tmp_path),
                    "--dsn", sync_dsn)  # fmt: skip
    assert code == 0, out
    assert "受理 0 件，办结 0 件，按期办结率 —，期末超期 0 件，红牌 0 张" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"jiancha-daily-2020-01-02.{ext}" for ext in ("html", "json", "pdf", "xlsx")]
    doc = json.loads((tmp_path / "jiancha-daily-2020-01-02.json").read_text("utf-8"))
    f = doc["figures"]
    assert (doc["period"], doc["scope"], doc["departments"]) == ("2020-01-02", "政务服务中心", [])
    assert (f["accepted"], f["completed"], f["immediate"], f["overdue_open"]) == (0, 0, 0, 0)
    assert f["cards"] == {"blue": 0, "yellow": 0, "red": 0}
    assert f["on_time_rate"] is None and f["satisfaction_rate"] is None
    html = (tmp_path / "jiancha-daily-2020-01-02.html").read_text("utf-8")
    assert "政务服务中心 2020年1月2日 政务服务电子监察日监测" in html and "本期无办件" in html
    assert (tmp_path / "jiancha-daily-2020-01-02.pdf").read_bytes().startswith(b"%PDF")


def test_the_default_period_and_one_format(sync_dsn: str, tmp_path: Path) -> None:
    code, out = run("report", "weekly", "--format", "json", "--out", str(tmp_path),
                    "--dsn", sync_dsn, "--department", "市场监管局")  # fmt: skip
    assert code == 0, out
    (written,) = tmp_path.iterdir()
    doc = json.loads(written.read_text("utf-8"))
    assert doc["period"] == last_complete("weekly", dt.datetime.now(dt.UTC)).key
    assert written.name == f"jiancha-weekly-{doc['period']}-市场监管局.json"
    assert doc["scope"] == doc["department"] == "市场监管局"


def test_help_teaches_with_examples(capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "jiancha report weekly --period 2026-W49" in text and "期间写法" in text
    monkeypatch.setenv("JIANCHA_LANG", "en")
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "Periods: day 2026-12-02, week 2026-W49" in capsys.readouterr().out


def test_a_worked_example_and_a_mistyped_department(sync_dsn: str, tmp_path: Path, capsys) -> None:
    """Accepted Thu 2024-02-08 10:00 for 5 wd: due Feb 21 24:00 (rule-book §3), still open."""
    from tests.cli.test_evaluate import case, put

    put(sync_dsn, case("C1", "2024-02-08T02:00:00") + case("C2", "2024-02-22T01:00:00",
                                                           "2024-02-22T03:00:00"))  # fmt: skip
    assert run("evaluate", "--now", "2024-02-23T01:00", "--source-dsn", sync_dsn)[0] == 0
    code, out = run("report", "daily", "--period", "2024-02-22", "--department", "住建",
                    "--dsn", sync_dsn, "--out", str(tmp_path))  # fmt: skip
    assert code == 2 and list(tmp_path.iterdir()) == []
    assert "没有名为 '住建' 的部门（已知：住建局）" in capsys.readouterr().err
    code, out = run("report", "daily", "--period", "2024-02-22", "--department", "住建局",
                    "--dsn", sync_dsn, "--out", str(tmp_path), "--format", "json")  # fmt: skip
    assert code == 0, out
    doc = json.loads((tmp_path / "jiancha-daily-2024-02-22-住建局.json").read_text("utf-8"))
    f = doc["figures"]
    # C2 accepted and completed the same morning, early; C1 red at 24:00 of Feb 21, overdue
    assert (f["accepted"], f["completed"], f["on_time_rate"], f["early_rate"]) == (1, 1, 1.0, 1.0)
    assert (f["overdue_open"], f["cards"]["red"]) == (1, 1)
    assert f["mean_working_days_used"] == 0.0  # the day of acceptance is not counted
    (red,) = doc["red_cards"]
    assert (red["case_id"], red["matter"], red["window"], red["reason"]) == (
        "C1", "建筑工程施工许可", "W1", "超过承诺时限")  # fmt: skip
    assert red["at"] == "2024-02-21T16:00:00Z"
    (late,) = doc["overdue"]
    assert late["case_id"] == "C1" and late["reason"] == "承诺 5 个工作日，期末已超期 1 个工作日"


def test_store_keeps_a_version_once(sync_dsn: str, tmp_path: Path) -> None:
    """--store: the first run stores version 1; the same figures again store nothing and
    write that version's own documents."""
    args = ("report", "daily", "--period", "2020-01-03", "--format", "json,xlsx", "--store",
            "--dsn", sync_dsn)  # fmt: skip
    code, out = run(*args, "--out", str(tmp_path / "a"))
    assert code == 0, out
    assert "已存储：第 1 版\n" in out
    code, out = run(*args, "--out", str(tmp_path / "b"))
    assert code == 0, out
    assert "已存储：第 1 版（数字未变，未生成新版本）" in out
    first = (tmp_path / "a" / "jiancha-daily-2020-01-03.json").read_bytes()
    assert (tmp_path / "b" / "jiancha-daily-2020-01-03.json").read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "jiancha-daily-2020-01-03.json", "jiancha-daily-2020-01-03.xlsx"]  # fmt: skip


def test_a_period_with_nothing_in_it_says_so_beside_its_zeros(
    sync_dsn: str, tmp_path: Path, capsys
) -> None:
    """An officer who typed the wrong period, or whose --dsn names the wrong database, got a
    bulletin of zeros and nothing else: ready to circulate. It is still written (a quiet
    day is possible), with a note naming the latest event the database holds."""
    from tests.cli.test_evaluate import case, put

    def report(period: str) -> str:
        code, _ = run("report", "daily", "--period", period, "--dsn", sync_dsn,
                      "--out", str(tmp_path), "--format", "json")  # fmt: skip
        assert code == 0
        return capsys.readouterr().err

    nothing = report("2024-02-22")
    assert "注意：本期没有任何办件、牌或评价，且 --dsn 指向的数据库中没有任何事件" in nothing
    put(sync_dsn, case("C2", "2024-02-22T01:00:00", "2024-02-22T03:00:00"))
    assert run("evaluate", "--now", "2024-02-23T01:00", "--source-dsn", sync_dsn)[0] == 0
    capsys.readouterr()
    elsewhere = report("2024-03-22")
    assert (
        "注意：本期没有任何办件、牌或评价；--dsn 指向的数据库中最新的事件在 2024-02-22 11:00"
        in (elsewhere)
    )
    assert "注意" not in report("2024-02-22")
