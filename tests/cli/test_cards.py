"""``jiancha cards ...`` and `monitor.cards` on a real PostgreSQL, and the pure transition table.

The engine that issues cards is not needed: cards are inserted with SQL, as
the engine would leave them (a card row and its ``issued`` step). CLI tests
are plain functions because the command runs its own trio run; their
database is prepared by a synchronous fixture for the same reason.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import sys
from typing import Any

import asyncpg
import pytest

from monitor import db
from monitor.cli._format import display_width, format_table
from monitor.cli.cards import register

T0 = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Beijing
DAY = dt.timedelta(days=1)


def test_table_pads_by_display_width() -> None:
    assert display_width("红牌") == 4 and display_width("W1") == 2 and display_width("（") == 2
    lines = format_table(["编号", "部门"], [["1", "住建局"], ["12345", "x"]])
    assert lines == ["编号   部门", "1      住建局", "12345  x"]


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _chinese_no_env_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv(db.DSN_ENV, raising=False)
    monkeypatch.delenv(db.SOURCE_DSN_ENV, raising=False)


def sql(dsn: str, query: str, *args: object) -> list[Any]:
    """Run one statement outside trio (asyncio + asyncpg, as conftest does)."""

    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


_INSERT_CARD = """
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, deadline,
    matter, department, "window", region, ruleset, calendar, detail, status, reply_due,
    updated_at)
VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, 'R1', 'rules-abc', 'cn-2024', $10::jsonb, $11,
    $12, $5)
RETURNING id
"""


def add_card(
    dsn: str,
    case_id: str = "C1",
    *,
    clock: str = "decision",
    rule: str = "decision.blue",
    level: str = "blue",
    issued_at: dt.datetime = T0,
    department: str | None = "住建局",
    window: str | None = "W1",
    status: str = "issued",
    reply_due: dt.datetime | None = None,
) -> int:
    """A card as the engine leaves it: the row, its ``issued`` step, and a closing step."""

    async def go() -> int:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            async with conn.transaction():
                card_id: int = await conn.fetchval(
                    _INSERT_CARD,
                    case_id,
                    clock,
                    rule,
                    level,
                    issued_at,
                    issued_at + 5 * DAY,
                    "建筑工程施工许可",
                    department,
                    window,
                    json.dumps({"consumed": 0.5}),
                    status,
                    reply_due,
                )
                await conn.execute(
                    "INSERT INTO jiancha.card_events (card_id, kind, at, actor)"
                    " VALUES ($1, 'issued', $2, 'jiancha')",
                    card_id,
                    issued_at,
                )
                if status in ("closed", "revoked"):
                    await conn.execute(
                        "INSERT INTO jiancha.card_events (card_id, kind, at, actor, reason)"
                        " VALUES ($1, $2, $3, 'jiancha', 'fixture')",
                        card_id,
                        status,
                        issued_at + DAY,
                    )
            return card_id
        finally:
            await conn.close()

    return asyncio.run(go())


def card_row(dsn: str, card_id: int) -> Any:
    return sql(dsn, "SELECT * FROM jiancha.cards WHERE id = $1", card_id)[0]


def kinds(dsn: str, card_id: int) -> list[str]:
    rows = sql(dsn, "SELECT kind FROM jiancha.card_events WHERE card_id = $1 ORDER BY id", card_id)
    return [r["kind"] for r in rows]


def _cli_main(argv: list[str], out: io.StringIO) -> int:
    """`monitor.cli.main` once it registers ``cards``; until then a parser that mirrors it."""
    from monitor import cli

    top = cli.build_parser()
    wired = any(
        isinstance(a, argparse._SubParsersAction) and "cards" in a.choices for a in top._actions
    )
    if wired:
        return cli.main(argv, out=out)
    parser = argparse.ArgumentParser(prog="jiancha")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args, out)
    except cli.UsageError as exc:
        sys.stderr.write(f"jiancha: 错误: {exc}\n")
        return 2
    except cli.CommandFailed as exc:
        sys.stderr.write(f"jiancha: 错误: {exc}\n")
        return 1
    return code


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return _cli_main(list(argv), out), out.getvalue()


def ok(*argv: str) -> str:
    code, text = run(*argv)
    assert code == 0, text
    return text


def listed(dsn: str, *argv: str) -> list[int]:
    doc = json.loads(ok("cards", "list", "--dsn", dsn, "--json", *argv))
    return [c["id"] for c in doc["cards"]]


# --- list ---------------------------------------------------------------------------------


def test_list_filters(sync_dsn: str) -> None:
    d = sync_dsn
    a = add_card(d, "C1", level="blue", issued_at=T0)
    b = add_card(d, "C1", level="red", rule="decision.red", issued_at=T0 + DAY)
    c = add_card(
        d,
        "C2",
        clock="acceptance",
        rule="acceptance.yellow",
        level="yellow",
        department="市场监管局",
        window="W2",
        issued_at=T0 + 2 * DAY,
    )
    closed = add_card(d, "C3", status="closed", issued_at=T0 + 3 * DAY)
    revoked = add_card(d, "C4", status="revoked", issued_at=T0 + 4 * DAY)

    assert listed(d) == [c, b, a]  # open by default, newest first
    assert listed(d, "--status", "all") == [revoked, closed, c, b, a]
    assert listed(d, "--status", "closed") == [closed]
    assert listed(d, "--status", "已撤销") == [revoked]
    assert listed(d, "--level", "red") == [b]
    assert listed(d, "--level", "红牌") == listed(d, "--level", "红") == [b]
    assert listed(d, "--department", "市场监管局") == [c]
    assert listed(d, "--window", "W1") == [b, a]
    assert listed(d, "--case", "C1") == [b, a]
    assert listed(d, "--rule", "decision.red") == [b]
    assert listed(d, "--clock", "acceptance") == listed(d, "--clock", "受理") == [c]
    assert listed(d, "--limit", "2") == [c, b]
    assert listed(d, "--level", "red", "--case", "C2") == []

    # Local dates are whole Beijing days; --to includes its day.
    assert listed(d, "--from", "2024-03-05") == [c, b]
    assert listed(d, "--to", "2024-03-05") == [b, a]
    assert listed(d, "--from", "2024-03-05", "--to", "2024-03-05") == [b]
    # Instants: local without an offset, --to exclusive.
    assert listed(d, "--from", "2024-03-05T10:00", "--to", "2024-03-06T10:00") == [b]
    assert listed(d, "--from", "2024-03-05T02:00:01Z") == [c]
    assert listed(d, "--to", "2024-03-05T10:00+08:00") == [a]


def test_list_table_is_chinese_local_and_aligned(sync_dsn: str) -> None:
    d = sync_dsn
    add_card(d, "C1", level="red", rule="decision.red", reply_due=T0 + 7 * DAY)
    add_card(
        d,
        "CASE-2024-000123",
        level="yellow",
        department=None,
        window="综合窗口",
        issued_at=T0 + DAY,
    )
    text = ok("cards", "list", "--dsn", d)
    lines = text.splitlines()
    assert lines[0].split() == [
        "编号",
        "案件",
        "时钟",
        "规则",
        "等级",
        "状态",
        "签发时间",
        "部门",
        "窗口",
    ]
    assert "红牌" in lines[2] and "黄牌" in lines[1] and "办结" in lines[1]
    assert "2024-03-04 10:00" in lines[2] and "已发牌" in lines[2]  # 02:00Z in Beijing
    # The issued-at column starts at the same display column on every line.
    starts = {display_width(lines[0][: lines[0].index("签发时间")])}
    for line in lines[1:]:
        starts.add(display_width(line[: line.index("2024-03-0")]))
    assert len(starts) == 1
    assert all(line == line.rstrip() for line in lines)

    assert "没有符合条件的牌" in ok("cards", "list", "--dsn", d, "--status", "closed")
    assert "--limit" in ok("cards", "list", "--dsn", d, "--limit", "1")


def test_list_in_english(sync_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_card(sync_dsn, "C1", level="red", rule="decision.red")
    monkeypatch.setenv("JIANCHA_LANG", "en")
    lines = ok("cards", "list", "--dsn", sync_dsn).splitlines()
    assert lines[0].split()[:6] == ["id", "case", "clock", "rule", "level", "status"]
    assert " red " in lines[1] and "issued" in lines[1] and "decision" in lines[1]


def test_list_json(sync_dsn: str) -> None:
    card_id = add_card(sync_dsn, "C1", level="red", reply_due=T0 + 7 * DAY)
    doc = json.loads(ok("cards", "list", "--dsn", sync_dsn, "--json"))
    assert doc["limit"] == 100
    [card] = doc["cards"]
    assert card["id"] == card_id
    assert card["issued_at"] == "2024-03-04T02:00:00Z"
    assert card["reply_due"] == "2024-03-11T02:00:00Z"
    assert card["replied_at"] is None
    assert card["level"] == "red" and card["status"] == "issued"
    assert card["department"] == "住建局" and card["window"] == "W1"
    assert card["detail"] == {"consumed": 0.5}


def test_list_rejects_bad_arguments(sync_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--level", "purple"],
        ["--status", "lost"],
        ["--clock", "sundial"],
        ["--from", "2024-13-01"],
        ["--limit", "0"],
    ):
        with pytest.raises(SystemExit) as caught:
            run("cards", "list", "--dsn", sync_dsn, *argv)
        assert caught.value.code == 2
    capsys.readouterr()
    code, out = run(
        "cards", "list", "--dsn", sync_dsn, "--from", "2024-03-05", "--to", "2024-03-04"
    )
    assert code == 2 and out == ""
    assert "--from" in capsys.readouterr().err


# --- show ---------------------------------------------------------------------------------


def test_show_prints_the_card_and_its_timeline(sync_dsn: str) -> None:
    d = sync_dsn
    card_id = add_card(d, "C1", level="red", rule="decision.red", reply_due=T0 + 7 * DAY)
    ok("cards", "ack", str(card_id), "--dsn", d, "--by", "王芳", "--reason", "申请人补正延误")
    ok("cards", "appeal", str(card_id), "--dsn", d, "--by", "王芳", "--reason", "踏勘未扣除")
    ok(
        "cards",
        "decide",
        str(card_id),
        "--dsn",
        d,
        "--result",
        "upheld",
        "--by",
        "李明",
        "--reason",
        "踏勘已扣除",
    )
    text = ok("cards", "show", str(card_id), "--dsn", d)
    assert text.startswith(f"牌 {card_id}：红牌 · 已签收\n")
    assert "办结（decision）" in text and "建筑工程施工许可" in text
    assert "2024-03-04 10:00" in text  # issued, Beijing time
    assert "督办回复期限" in text and "督办已回复" in text
    timeline = text.split("过程：\n", 1)[1].splitlines()
    role = sql(d, "SELECT session_user::text")[0][0]  # the database role that wrote each step
    assert timeline[0].split() == ["时间", "事件", "操作人", "数据库角色", "原因"]
    assert timeline[1].split()[2:] == ["发牌", "jiancha", role]
    assert timeline[2].split()[2:] == ["签收说明", "王芳", role, "申请人补正延误"]
    assert timeline[3].split()[2:] == ["申诉", "王芳", role, "踏勘未扣除"]
    assert timeline[4].split()[2:] == ["申诉裁决（维持原牌）", "李明", role, "踏勘已扣除"]

    doc = json.loads(ok("cards", "show", str(card_id), "--dsn", d, "--json"))
    assert doc["card"]["id"] == card_id and doc["card"]["status"] == "acknowledged"
    assert [e["kind"] for e in doc["events"]] == [
        "issued",
        "acknowledged",
        "appealed",
        "appeal_decided",
    ]
    decided = doc["events"][-1]
    assert decided["actor"] == "李明" and decided["reason"] == "踏勘已扣除"
    assert decided["db_role"] == role
    assert decided["detail"] == {"from": "appealed", "to": "acknowledged", "result": "upheld"}
    assert decided["at"].endswith("Z")


def test_unknown_card_is_a_usage_error(sync_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["show", "999"],
        ["ack", "999", "--by", "王芳", "--reason", "说明"],
        ["revoke", "999", "--by", "李明", "--reason", "错误"],
    ):
        code, out = run("cards", *argv, "--dsn", sync_dsn)
        err = capsys.readouterr().err
        assert code == 2 and out == ""
        assert err == "jiancha: 错误: 没有编号为 999 的牌\n"
    with pytest.raises(SystemExit) as caught:
        run("cards", "show", "abc", "--dsn", sync_dsn)
    assert caught.value.code == 2


# --- the steps --------------------------------------------------------------------------------


def test_ack_answers_the_supervision_order(sync_dsn: str) -> None:
    d = sync_dsn
    red = add_card(d, "C1", level="red", rule="decision.red", reply_due=T0 + 7 * DAY)
    blue = add_card(d, "C2")
    before = dt.datetime.now(dt.UTC)
    text = ok("cards", "ack", str(red), "--dsn", d, "--by", "王芳", "--reason", "已督促办结")
    assert text.startswith(f"牌 {red}：已发牌 → 已签收；已回复督办（")
    row = card_row(d, red)
    assert row["status"] == "acknowledged"
    assert row["replied_at"] is not None and row["replied_at"] >= before
    assert row["replied_at"] == row["updated_at"]
    [event] = sql(
        d, "SELECT * FROM jiancha.card_events WHERE card_id = $1 AND kind = 'acknowledged'", red
    )
    assert event["at"] == row["replied_at"] and event["actor"] == "王芳"
    assert event["reason"] == "已督促办结"
    assert json.loads(event["detail"])["replied_to_order"] is True

    doc = json.loads(
        ok("cards", "ack", str(blue), "--dsn", d, "--by", "王芳", "--reason", "已知悉", "--json")
    )
    assert doc["previous_status"] == "issued" and doc["card"]["status"] == "acknowledged"
    assert doc["card"]["replied_at"] is None  # no supervision order on a blue card
    assert [e["kind"] for e in doc["events"]] == ["acknowledged"]


@pytest.mark.parametrize("command", ["ack", "appeal", "revoke", "decide"])
def test_who_and_why_are_required(
    sync_dsn: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    card_id = add_card(sync_dsn)
    extra = ["--result", "upheld"] if command == "decide" else []
    base = ["cards", command, str(card_id), "--dsn", sync_dsn, *extra]
    for missing in (["--by", "李明"], ["--reason", "数据错误"], []):
        with pytest.raises(SystemExit) as caught:
            run(*base, *missing)
        assert caught.value.code == 2
    if command == "decide":
        with pytest.raises(SystemExit) as caught:
            run("cards", "decide", str(card_id), "--dsn", sync_dsn, "--by", "李明", "--reason", "x")
        assert caught.value.code == 2  # --result is required too
    capsys.readouterr()
    # Blank text and the daemon's own name are refused before anything is written.
    for who, why, word in (
        ("  ", "数据错误", "操作人"),
        ("李明", " ", "原因"),
        ("jiancha", "数据错误", "保留"),
    ):
        code, _ = run(*base, "--by", who, "--reason", why)
        assert code == 2 and word in capsys.readouterr().err
    assert kinds(sync_dsn, card_id) == ["issued"]


@pytest.mark.parametrize("status", ["closed", "revoked"])
def test_a_final_card_refuses_every_step(
    sync_dsn: str, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    card_id = add_card(sync_dsn, status=status)
    before = kinds(sync_dsn, card_id)
    name = {"closed": "已销号", "revoked": "已撤销"}[status]
    for command, extra in (
        ("ack", []),
        ("appeal", []),
        ("revoke", []),
        ("decide", ["--result", "revoked"]),
    ):
        code, out = run(
            "cards",
            command,
            str(card_id),
            "--dsn",
            sync_dsn,
            "--by",
            "李明",
            "--reason",
            "再试",
            *extra,
        )
        err = capsys.readouterr().err
        assert code == 2 and out == ""
        assert err.startswith(f"jiancha: 错误: 牌 {card_id} 当前状态为“{name}”，不能")
        assert "终态" in err and err.count("\n") == 1
    assert kinds(sync_dsn, card_id) == before
    assert card_row(sync_dsn, card_id)["status"] == status


def test_appeal_upheld_returns_to_where_the_card_was(sync_dsn: str) -> None:
    d = sync_dsn
    plain = add_card(d, "C1")
    acked = add_card(d, "C2")
    ok("cards", "ack", str(acked), "--dsn", d, "--by", "王芳", "--reason", "说明")
    for card_id, back in ((plain, "issued"), (acked, "acknowledged")):
        ok("cards", "appeal", str(card_id), "--dsn", d, "--by", "王芳", "--reason", "理由")
        assert card_row(d, card_id)["status"] == "appealed"
        text = ok(
            "cards",
            "decide",
            str(card_id),
            "--dsn",
            d,
            "--result",
            "upheld",
            "--by",
            "李明",
            "--reason",
            "维持",
        )
        assert "申诉中 →" in text and "维持原牌" in text
        assert card_row(d, card_id)["status"] == back
    # Back at issued, the card can still be acknowledged.
    ok("cards", "ack", str(plain), "--dsn", d, "--by", "王芳", "--reason", "说明")
    assert card_row(d, plain)["status"] == "acknowledged"


def test_appeal_decided_revoked_revokes(sync_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = sync_dsn
    card_id = add_card(d)
    # decide before any appeal is refused, naming what is allowed
    code, _ = run(
        "cards",
        "decide",
        str(card_id),
        "--dsn",
        d,
        "--result",
        "revoked",
        "--by",
        "李明",
        "--reason",
        "x",
    )
    err = capsys.readouterr().err
    assert code == 2 and "已发牌" in err and "申诉（appeal）" in err
    ok("cards", "appeal", str(card_id), "--dsn", d, "--by", "王芳", "--reason", "日历有误")
    doc = json.loads(
        ok(
            "cards",
            "decide",
            str(card_id),
            "--dsn",
            d,
            "--result",
            "revoked",
            "--by",
            "李明",
            "--reason",
            "日历更正",
            "--json",
        )
    )
    assert doc["card"]["status"] == "revoked"
    assert [(e["kind"], e["actor"], e["reason"]) for e in doc["events"]] == [
        ("appeal_decided", "李明", "日历更正"),
        ("revoked", "李明", "日历更正"),
    ]
    assert doc["events"][0]["detail"]["result"] == "revoked"
    assert kinds(d, card_id) == ["issued", "appealed", "appeal_decided", "revoked"]
    assert card_row(d, card_id)["status"] == "revoked"


def test_every_step_appends_exactly_its_rows(sync_dsn: str) -> None:
    d = sync_dsn
    steps: list[tuple[str, list[str], str, list[str]]] = [
        ("ack", [], "acknowledged", ["acknowledged"]),
        ("appeal", [], "appealed", ["appealed"]),
        ("decide", ["--result", "upheld"], "acknowledged", ["appeal_decided"]),
        ("appeal", [], "appealed", ["appealed"]),
        ("decide", ["--result", "revoked"], "revoked", ["appeal_decided", "revoked"]),
    ]
    card_id = add_card(d)
    other = add_card(d, "C2")
    for command, extra, status, appended in steps:
        before = kinds(d, card_id)
        total = sql(d, "SELECT count(*) AS n FROM jiancha.card_events")[0]["n"]
        ok("cards", command, str(card_id), "--dsn", d, "--by", "李明", "--reason", "r", *extra)
        assert kinds(d, card_id) == before + appended
        after = sql(d, "SELECT count(*) AS n FROM jiancha.card_events")[0]["n"]
        assert after == total + len(appended)
        assert card_row(d, card_id)["status"] == status
    ok("cards", "revoke", str(other), "--dsn", d, "--by", "李明", "--reason", "数据错误")
    assert kinds(d, other) == ["issued", "revoked"]
    assert card_row(d, other)["status"] == "revoked"

    # The ledger stays append-only under all this.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        sql(d, "UPDATE jiancha.card_events SET reason = 'edited' WHERE card_id = $1", card_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        sql(d, "DELETE FROM jiancha.card_events WHERE card_id = $1", card_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="identity"):
        sql(d, "UPDATE jiancha.cards SET level = 'red' WHERE id = $1", card_id)
    assert kinds(d, card_id)[-1] == "revoked"


def test_database_problems_exit_1_and_no_dsn_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run("cards", "list", "--dsn", "postgresql://nobody:secret@127.0.0.1:1/none")
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert err.startswith("jiancha: 错误: 无法连接数据库") and "secret" not in err
    code, out = run("cards", "show", "1")
    err = capsys.readouterr().err
    assert code == 2 and "JIANCHA_DSN" in err


def test_the_dsn_falls_back_to_the_source_dsn(
    sync_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    card_id = add_card(sync_dsn)
    monkeypatch.setenv(db.SOURCE_DSN_ENV, sync_dsn)
    doc = json.loads(ok("cards", "list", "--json"))
    assert [c["id"] for c in doc["cards"]] == [card_id]


# --- the library, with time injected and two people at once ---------------------------------
