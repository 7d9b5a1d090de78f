"""`jiancha calendar ...` as users type it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from monitor.cli import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def ok(*argv: str) -> str:
    code, text = run(*argv)
    assert code == 0
    return text


@pytest.fixture(autouse=True)
def _chinese(monkeypatch):
    monkeypatch.setenv("JIANCHA_LANG", "zh")


def test_deadline_local_input_and_explain():
    text = ok("calendar", "deadline", "--start", "2024-02-08T10:00", "--workdays", "5",
                     "--explain")  # fmt: skip
    assert "截止时间：2024-02-21 24:00（Asia/Shanghai） = 2024-02-21T16:00:00Z" in text
    assert "2024-02-18（春节调休上班）" in text


def test_deadline_json_with_absolute_instant():
    text = ok("calendar", "deadline", "--start", "2024-02-08T02:00:00Z", "--workdays", "5",
                     "--json")  # fmt: skip
    doc = json.loads(text)
    assert doc["deadline"] == "2024-02-21T16:00:00Z"
    assert doc["deadline_local"] == "2024-02-22T00:00:00+08:00"
    assert doc["provisional"] is False


def test_deadline_with_offset_and_provisional_year():
    text = ok("calendar", "deadline", "--start", "2026-12-21T10:00+08:00", "--workdays",
                     "9", "--json")  # fmt: skip
    doc = json.loads(text)
    assert doc["deadline"] == "2027-01-04T16:00:00Z"  # Fri Jan 1: New Year's Day, inferred
    assert doc["provisional"] is True
    text = ok("calendar", "deadline", "--start", "2026-12-21T10:00", "--workdays", "9")
    assert "暂定" in text


def test_is_workday_multiple_dates():
    text = ok("calendar", "is-workday", "2024-02-04", "2020-02-01", "--json")
    days = json.loads(text)["days"]
    assert [d["workday"] for d in days] == [True, False]
    assert days[0]["weekday"] == "Sunday"
    text = ok("calendar", "is-workday", "2024-02-04")
    assert text.strip() == "2024-02-04 星期日：工作日（春节调休上班）"


def test_count_and_office_hours_calendar():
    text = ok("calendar", "count", "--start", "2024-02-08T10:00", "--end",
                     "2024-02-19T12:00", "--json")  # fmt: skip
    assert json.loads(text)["working_days"] == 2.5
    text = ok("calendar", "count", "--calendar", "example-centre", "--start",
                     "2024-02-08T10:00", "--end", "2024-02-09T10:30", "--json")  # fmt: skip
    assert json.loads(text)["working_days"] == pytest.approx(1.5 / 7)


def test_english_output(monkeypatch):
    text = ok("--lang", "en", "calendar", "is-workday", "2025-10-01")
    assert text.strip() == "2025-10-01 Wednesday: rest day (国庆节)"


def test_bad_input_exits_2_with_a_clear_message(capsys):
    code, _ = run("calendar", "deadline", "--start", "yesterday", "--workdays", "3")
    assert code == 2
    assert "时间格式无效" in capsys.readouterr().err
    code, _ = run("calendar", "deadline", "--start", "2024-01-01", "--workdays", "-1")
    assert code == 2
    code, _ = run("calendar", "is-workday", "2024-01-01", "--calendar", "atlantis")
    err = capsys.readouterr().err
    assert code == 2 and "atlantis" in err and "cn" in err


def test_calendar_list():
    text = ok("calendar", "list", "--json")
    names = json.loads(text)["calendars"]
    assert {"cn", "national", "weekdays", "yanbian", "example-centre"} <= set(names)


def test_console_script_entry_point():
    """The installed `jiancha` script runs the same main()."""
    env = {**os.environ, "JIANCHA_LANG": "en"}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "calendar", "deadline", "--start",
         "2024-02-03T09:00", "--workdays", "1", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["deadline"] == "2024-02-04T16:00:00Z"
    help_text = subprocess.run(
        [sys.executable, "-m", "monitor", "calendar", "deadline", "--help"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    assert "2024-02-21 24:00" in help_text


@pytest.mark.parametrize(
    ("argv", "speed"),
    [([], 600.0), (["--headless"], 3000.0), (["--json"], 3000.0),
     (["--headless", "--speed", "50"], 50.0)],
)  # fmt: skip
def test_demo_speed_defaults_to_faster_when_nobody_watches(monkeypatch, argv, speed):
    import monitor.whatif.demo as demo

    seen = []
    monkeypatch.setattr(demo, "main", lambda opts, out, beside: seen.append((opts, beside)) or 0)
    assert main(["demo", *argv], out=io.StringIO()) == 0
    assert seen[0][0].speed == speed
    assert seen[0][0].headless == (argv != [])
    assert seen[0][1] is None  # no console unless --web
    assert main(["demo", *argv, "--web"], out=io.StringIO()) == 0
    assert seen[1][0] == seen[0][0] and callable(seen[1][1])


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["evaluate", "--now", "2024-02-22T09:00"], "--source-dsn"),
        # jiancha's own database given: the approval database is still missing
        (["evaluate", "--now", "2024-02-22T09:00", "--dsn", "postgresql://h/j"], "--source-dsn"),
        (["replay", "--from", "2024-02-01", "--to", "2024-02-29"], "--source-dsn"),
        (["db", "reset-cursor", "--from", "2024-02-01T00:00"], "--source-dsn"),
        (["db", "install-source"], "--dsn"),
        (["simulate", "--start", "2024-03-04"], "--source-dsn"),
        (["run"], "--source-dsn"),
        (["cards", "list"], "--dsn"),
    ],
)
def test_a_missing_database_is_asked_for_by_the_option_the_command_has(
    argv: list[str], flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator told "use --dsn" by `jiancha evaluate`, whose approval database is
    `--source-dsn`, got the same message again after adding --dsn."""
    monkeypatch.delenv("JIANCHA_DSN", raising=False)
    monkeypatch.delenv("JIANCHA_SOURCE_DSN", raising=False)
    monkeypatch.delenv("JIANCHA_CONFIG", raising=False)  # `run`: no config file either
    code, out = run(*argv)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert f"未指定数据库：请使用 {flag}，" in err, err


def test_argparse_speaks_chinese_and_leaves_other_parsers_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its usage, help and errors were English beside jiancha's Chinese."""
    import argparse

    with pytest.raises(SystemExit) as caught:
        run("users", "add")
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert "用法：jiancha users add" in err
    assert "jiancha users add: 错误: 缺少必需的参数：NAME, --role" in err
    with pytest.raises(SystemExit) as caught:
        run("cards", "show", "--help")
    text = capsys.readouterr().out
    assert caught.value.code == 0
    assert "位置参数" in text and "选项" in text and "显示本帮助并退出" in text
    with pytest.raises(SystemExit):
        run("cards", "list", "--level", "紫牌")
    levels = "无效的等级：'紫牌'（可选：蓝牌（blue）、黄牌（yellow）、红牌（red））"
    assert levels in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("cardz")
    assert "错误: 参数 COMMAND：无效的取值：'cardz'" in capsys.readouterr().err
    # another parser in the same process, afterwards: argparse's own English
    other = argparse.ArgumentParser(prog="other")
    other.add_argument("--x", required=True)
    with pytest.raises(SystemExit):
        other.parse_args([])
    assert "other: error: the following arguments are required: --x" in capsys.readouterr().err
    monkeypatch.setenv("JIANCHA_LANG", "en")
    with pytest.raises(SystemExit):
        run("users", "add")
    assert "error: the following arguments are required: NAME, --role" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "lang", "shown"),
    [
        ([], "zh", ["用法：jiancha [-h]", "db            数据库", "示例：", "显示版本号并退出"]),
        (["db"], "zh", ["用法：jiancha db [-h] COMMAND", "migrate", "reset-cursor"]),
        (["cards"], "zh", ["用法：jiancha cards", "ack ", "窗口负责人签收并说明", "revoke"]),
        (["dead-letters"], "en", ["usage: jiancha dead-letters", "retry", "list"]),
    ],
)
def test_a_command_group_alone_shows_its_help(
    argv: list[str], lang: str, shown: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jiancha`` or ``jiancha db`` alone said only "缺少必需的参数：COMMAND"; an operator
    trying the tool learns nothing from that. Its help, with exit 2 (a usage error)."""
    monkeypatch.setenv("JIANCHA_LANG", lang)
    out = io.StringIO()
    assert main(argv, out=out) == 2
    text = out.getvalue()
    assert [s for s in shown if s not in text] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # a batch of 0 events read nothing and said it was done
        (["evaluate", "--now", "2024-02-22T09:00", "--batch-size", "0"], "应不小于 1：'0'"),
        (["run", "--batch-size", "-5"], "应不小于 1：'-5'"),
        (["run", "--poll-interval", "0"], "应大于 0：'0'"),
        (["run", "--poll-interval", "nan"], "应为有限的数：'nan'"),
        (["outbox", "list", "--limit", "-1"], "应不小于 1：'-1'"),
        (["cards", "show", "9" * 400], "数值过大"),  # past a float too: no OverflowError
        (["dead-letters", "list", "--limit", "0"], "应不小于 1：'0'"),
        (["grafana", "push", "--timeout", "0"], "应大于 0：'0'"),
        # requests called it "'://None/notaurlapi/folders'"
        (["grafana", "push", "--url", "notaurl", "--token-file", "t"], "应为 http(s) 地址"),
    ],
)
def test_an_option_value_that_cannot_work_is_refused_with_the_usage(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        run(*argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
