"""Routing, quiet hours and the outbox: each card reaches its people once, through outages."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.config import ConfigError, NotifyConfig, QuietHours, load_config, parse
from monitor.evaluator import Evaluator
from monitor.notify import build_channels
from monitor.outbox.enqueue import Notifier
from monitor.outbox.quiet import hold_until
from monitor.outbox.route import recipients
from monitor.outbox.send import Sender
from monitor.rules.load import load_rules
from monitor.wallclock import VirtualClock
from tests import httpkit
from tests.cardkit import ACCEPTED_FEB8, Driver, z
from tests.httpkit import Reply
from tests.sourcekit import write

receiver = httpkit.receiver
UTC = dt.UTC


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


def config(text: str) -> NotifyConfig:
    return parse(tomllib.loads(text))


CHANNELS = """
[channels.w1]
kind = "webhook"
url = "http://127.0.0.1:9/w1"
[channels.zj]
kind = "webhook"
url = "http://127.0.0.1:9/zj"
[channels.jw]
kind = "webhook"
url = "http://127.0.0.1:9/jw"
[channels.ops]
kind = "webhook"
url = "http://127.0.0.1:9/ops"
[windows.W1]
head = "王芳"
channels = ["w1"]
[departments."住建局"]
head = "李明"
channels = ["zj"]
[notify]
inspectors = ["jw"]
fallback = ["ops"]
"""


def test_default_routes_window_then_red_up_the_chain():
    cfg = config(CHANNELS)
    assert recipients(cfg, "card", "blue", "住建局", "W1") == (["w1"], True)
    assert recipients(cfg, "card", "yellow", "住建局", "W1") == (["w1"], True)
    assert recipients(cfg, "card", "red", "住建局", "W1") == (["w1", "zj", "jw"], True)
    assert recipients(cfg, "escalation", "red", "住建局", "W1") == (["jw"], True)
    # a window nobody configured: not dropped, the fallback gets it (and it is counted)
    assert recipients(cfg, "card", "blue", "文旅局", "W9") == (["ops"], False)


def test_explicit_routes_and_errors(tmp_path: Path):
    cfg = config(CHANNELS + '[[routes]]\nlevels = ["red"]\ndepartments = ["住建局"]\n'
                 'channels = ["ops"]\nto = ["window"]\n')  # fmt: skip
    assert recipients(cfg, "card", "red", "住建局", "W1") == (["ops", "w1"], True)
    assert recipients(cfg, "card", "blue", "住建局", "W1") == (["ops"], False)
    with pytest.raises(ConfigError, match="nope"):
        config(CHANNELS + '[[routes]]\nchannels = ["nope"]\n')
    with pytest.raises(ConfigError, match="kind"):
        config('[channels.x]\nkind = "pigeon"\n')
    with pytest.raises(ConfigError, match="colour"):
        config(CHANNELS + '[[routes]]\ncolour = "red"\n')
    f = tmp_path / "jiancha.toml"
    f.write_text(CHANNELS, encoding="utf-8")
    loaded = load_config(str(f))
    assert loaded.path == f and loaded.notify.heads == {"window:W1": "王芳",
                                                        "department:住建局": "李明"}  # fmt: skip
    f.write_text("[channels\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(f)):
        load_config(str(f))


@pytest.mark.parametrize(
    ("level", "at", "expected"),
    [
        # a working Friday evening before the 2024 Spring Festival: held to the working
        # Sunday Feb 18, 08:30 Beijing
        ("yellow", "2024-02-09T11:00:00", "2024-02-18T00:30:00"),
        ("red", "2024-02-09T11:00:00", "2024-02-09T11:00:00"),  # red never waits
        ("blue", "2024-02-03T02:00:00", "2024-02-04T00:30:00"),  # Sat -> working Sunday
        ("blue", "2024-03-05T23:00:00", "2024-03-06T00:30:00"),  # Wed 07:00 -> 08:30
        ("blue", "2024-03-05T02:00:00", "2024-03-05T02:00:00"),  # Tue 10:00: now
        ("yellow", "2024-03-08T10:30:00", "2024-03-11T00:30:00"),  # Fri 18:30 -> Mon
        ("yellow", "2024-10-01T02:00:00", "2024-10-08T00:30:00"),  # National Day week
    ],
)
def test_quiet_hours_across_weekends_and_holidays(cal, level, at, expected):
    cfg = NotifyConfig()
    got = hold_until(level, z(at), cal, cfg)
    assert got == z(expected)
    off = NotifyConfig(quiet=QuietHours(enabled=False))
    assert hold_until(level, z(at), cal, off) == z(at)


def _hook_config(url: str, *, base_url: str = "", **notify: object) -> NotifyConfig:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in notify.items())
    web = f'[web]\nbase_url = "{base_url}"\n' if base_url else ""
    return config(f'[channels.w1]\nkind = "webhook"\nurl = "{url}"\n[windows.W1]\n'
                  f'head = "王芳"\nchannels = ["w1"]\n{web}[notify]\n{extra}')  # fmt: skip


async def carded(dsn: str, cfg: NotifyConfig, cal, until: str = "2024-02-19T05:00:00") -> None:
    """C1's cards and their outbox rows, up to ``until``: by default its blue card, issued at
    Feb 19 12:00 Beijing (a working Monday)."""
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        ev = Evaluator(load_rules("cards"), cal)
        ev.notifier = Notifier(cfg, cal)
        d = Driver(conn, ev)
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z(until), z("2024-02-08T03:00:00"))


async def test_card_is_queued_in_its_transaction_and_delivered_once(dsn, cal, receiver):
    cfg = _hook_config(receiver.url("/hook"), base_url="https://jiancha.example/")
    await carded(dsn, cfg, cal)
    async with await db.connect(dsn) as conn:
        rows = await conn.fetch("SELECT key, channel, kind, state, not_before FROM jiancha.outbox")
        assert [(r["key"], r["channel"], r["state"]) for r in rows] == [
            ("card:1:w1", "w1", "pending")
        ]
        # issued at the threshold instant during working hours: no hold
        assert rows[0]["not_before"] == z("2024-02-19T04:00:00")
        # a restart and a replay of every event queue nothing new
        ev = Evaluator(load_rules("cards"), cal)
        ev.notifier = Notifier(cfg, cal)
        d = Driver(conn, ev)
        await conn.execute("DELETE FROM jiancha.cursor")
        await d.start(z("2024-02-19T05:00:00"))
        await d.ingest(z("2024-02-19T05:00:00"))
        await d.run_until(z("2024-02-19T06:00:00"), z("2024-02-19T05:00:00"))
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox") == 1
        sender = Sender(dsn, build_channels(cfg), cfg, clock=lambda: z("2024-02-19T05:00:00"))
        assert await sender.step(conn) == 1
        assert await sender.step(conn) == 0  # delivered: nothing more to claim
        assert receiver.keys() == ["card:1:w1"]
        body = receiver.requests[0].json()
        assert body["level"] == "blue" and body["case"] == "C1" and body["window"] == "W1"
        assert body["message"].startswith("【蓝牌】C1 · 承诺时限\n剩余 2.5 个工作日，截止 ")
        assert "窗口：W1 窗口\u3000负责人：王芳" in body["message"]
        assert "2024-02-21 24:00" in body["message"]  # the deadline in Beijing time
        # the card's page in the console (a webhook is not grouped: no wait)
        assert body["link"] == "https://jiancha.example/cards/1"
        assert body["message"].endswith("查看督办卡：https://jiancha.example/cards/1")
        notified = await conn.fetch(
            "SELECT detail FROM jiancha.card_events WHERE kind = 'notified'"
        )
        assert [r["detail"] for r in notified] == [{"channel": "w1"}]
        state = await conn.fetchrow("SELECT state, attempts FROM jiancha.outbox")
        assert (state["state"], state["attempts"]) == ("delivered", 1)


async def test_a_receiver_down_for_a_while_gets_everything_once(dsn, cal, receiver):
    cfg = _hook_config(receiver.url("/hook"), backoff_initial=0.05, backoff_max=0.2)
    await carded(dsn, cfg, cal)
    receiver.down(connections=3)
    receiver.script(Reply(503), Reply(503))
    t0 = trio.current_time()
    sender = Sender(dsn, build_channels(cfg), cfg,  # a 2024 wall clock, running at real speed
                    clock=lambda: z("2024-02-19T05:00:00") + dt.timedelta(
                        seconds=trio.current_time() - t0))  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        with trio.fail_after(20):
            while sender.stats.delivered < 1:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert receiver.keys() == ["card:1:w1"] * 3  # two 503s, then the 200: one key
    async with await db.connect(dsn) as conn:
        attempts = await conn.fetch("SELECT ok FROM jiancha.outbox_attempts ORDER BY id")
        assert [r["ok"] for r in attempts] == [False] * 5 + [True]
        assert await conn.fetchval("SELECT state FROM jiancha.outbox") == "delivered"


async def test_giving_up_marks_the_notification_failed(dsn, cal, receiver, mock_clock):
    cfg = _hook_config(receiver.url("/hook"), backoff_initial=0.01, backoff_max=0.02,
                       give_up_after="1s")  # fmt: skip
    await carded(dsn, cfg, cal)
    receiver.default = Reply(503)
    # business time follows trio's clock, which only moves when the test says
    clock = VirtualClock(z("2024-02-19T05:00:00"), monotonic=trio.current_time)
    sender = Sender(dsn, build_channels(cfg), cfg, clock=clock)
    async with await db.connect(dsn) as conn:
        await conn.execute("UPDATE jiancha.outbox SET give_up_at = $1", z("2024-02-19T05:00:02"))
        for _ in range(5):
            await sender.step(conn)
            mock_clock.jump(1)
        row = await conn.fetchrow("SELECT state, attempts, last_error FROM jiancha.outbox")
        assert row["state"] == "failed" and row["attempts"] == 3 and "503" in row["last_error"]
    assert sender.stats.failed == 1 and sender.stats.delivered == 0


async def test_rate_limit_defers_without_an_attempt(dsn, cal, receiver):
    cfg = _hook_config(receiver.url("/hook"))
    await carded(dsn, cfg, cal)
    channels = build_channels(cfg)
    channels["w1"].per_minute = 1  # type: ignore[misc]
    sender = Sender(dsn, channels, cfg, clock=lambda: z("2024-02-19T05:00:00"))
    async with await db.connect(dsn) as conn:
        await conn.execute(
            "INSERT INTO jiancha.outbox (key, channel, kind, payload, created_at, not_before, "
            "next_attempt_at, give_up_at) SELECT 'test:' || i, 'w1', 'card', p.payload, "
            "$1::timestamptz, $1::timestamptz, $1::timestamptz, $1::timestamptz + interval '1 day' "
            "FROM generate_series(1, 2) i, "
            "(SELECT payload FROM jiancha.outbox LIMIT 1) p", z("2024-02-19T04:00:00"),
        )  # fmt: skip
        await sender.step(conn)
        assert len(receiver.requests) == 1  # one a minute: the others wait their turn
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox_attempts") == 1
        assert await conn.fetchval(
            "SELECT count(*) FROM jiancha.outbox WHERE state = 'pending' AND next_attempt_at > $1",
            z("2024-02-19T05:00:00"),
        ) == 2  # fmt: skip


def test_outbox_cli_shows_failures_and_requeues_them(sync_dsn, monkeypatch):
    import io

    from monitor.cli import main

    monkeypatch.setenv("JIANCHA_LANG", "zh")
    monkeypatch.delenv("JIANCHA_CONFIG", raising=False)

    async def seed() -> None:
        async with db.open_loop(), await db.connect(sync_dsn) as conn:
            await conn.execute(
                "INSERT INTO jiancha.outbox (key, channel, kind, payload, created_at, not_before, "
                "next_attempt_at, give_up_at, state, attempts, last_error) VALUES "
                "('card:9:w1', 'w1', 'card', '{}', $1, $1, $1, $1, 'failed', 7, 'HTTP 503'), "
                "('card:8:w1', 'w1', 'card', '{}', $1, $1, $1, $1, 'delivered', 1, '')",
                z("2024-02-19T04:00:00"),
            )

    trio.run(seed)
    out = io.StringIO()
    assert main(["outbox", "list", "--state", "failed", "--dsn", sync_dsn, "--json"], out=out) == 0
    doc = json.loads(out.getvalue())
    assert [(r["key"], r["attempts"], r["last_error"]) for r in doc] == [
        ("card:9:w1", 7, "HTTP 503")
    ]
    out = io.StringIO()
    assert main(["outbox", "list", "--dsn", sync_dsn], out=out) == 0
    assert "失败" in out.getvalue() and "已送达" in out.getvalue()
    assert main(["outbox", "retry", "--dsn", sync_dsn], out=io.StringIO()) == 2
    # an id that is not a failed notification is said, not counted as requeued
    delivered, failed = (r["id"] for r in sorted(doc_all(sync_dsn), key=lambda r: r["key"]))
    assert main(["outbox", "retry", str(delivered), "--dsn", sync_dsn], out=io.StringIO()) == 2
    with pytest.raises(SystemExit):  # not a number: argparse's usage, not a traceback
        main(["outbox", "retry", "abc", "--dsn", sync_dsn], out=io.StringIO())
    out = io.StringIO()
    assert main(["outbox", "retry", str(failed), "424242", "--dsn", sync_dsn], out=out) == 0
    assert "未重新排队（不存在或不是失败状态）：[424242]" in out.getvalue()
    trio.run(seed_failed_again, sync_dsn)
    out = io.StringIO()
    assert main(["outbox", "retry", "--all-failed", "--dsn", sync_dsn], out=out) == 0
    assert "1" in out.getvalue()
    out = io.StringIO()
    main(["outbox", "list", "--state", "pending", "--dsn", sync_dsn, "--json"], out=out)
    assert [r["key"] for r in json.loads(out.getvalue())] == ["card:9:w1"]


def doc_all(dsn: str) -> list[dict[str, Any]]:
    import io

    from monitor.cli import main

    out = io.StringIO()
    assert main(["outbox", "list", "--dsn", dsn, "--json"], out=out) == 0
    rows: list[dict[str, Any]] = json.loads(out.getvalue())
    return rows


async def seed_failed_again(dsn: str) -> None:
    async with db.open_loop(), await db.connect(dsn) as conn:
        await conn.execute("UPDATE jiancha.outbox SET state = 'failed' WHERE key = 'card:9:w1'")


async def test_missed_supervision_reply_notifies_the_inspectors(dsn, cal):
    cfg = config(CHANNELS)
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        ev = Evaluator(load_rules("cards"), cal)
        ev.notifier = Notifier(cfg, cal)
        d = Driver(conn, ev)
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-03-05T00:00:00"), z("2024-02-08T03:00:00"))
        rows = await conn.fetch(
            "SELECT key, channel, not_before, payload FROM jiancha.outbox WHERE kind = 'escalation'"
        )
        red = await conn.fetchval("SELECT id FROM jiancha.cards WHERE rule = 'decision_time' "
                                  "AND level = 'red'")  # fmt: skip
        assert [(r["key"], r["channel"]) for r in rows] == [(f"escalation:{red}:jw", "jw")]
        assert rows[0]["not_before"] == z("2024-02-29T16:00:00")  # escalations never wait
        text = rows[0]["payload"]["text"]
        assert "督办升级" in text and "王芳" in text and "2024-02-29 24:00" in text
        # the red card itself went to the window, the department and the inspectors
        keys = {r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox")}
        assert {f"card:{red}:w1", f"card:{red}:zj", f"card:{red}:jw"} <= keys


def test_the_example_configuration_loads_and_builds_every_channel():
    from monitor.paths import _PACKAGE

    example = _PACKAGE.parent / "deploy" / "jiancha.example.toml"
    cfg = load_config(str(example)).notify
    channels = build_channels(cfg, secrets=lambda path: "s3cret")
    assert {n: c.kind for n, c in channels.items()} == {
        "window1": "wecom", "zhujian": "dingtalk", "jiwei": "smtp", "ops": "webhook",
        "alerts": "alertmanager",
    }  # fmt: skip
    assert recipients(cfg, "card", "red", "住建局", "综合受理1号窗口") == (
        ["window1", "alerts", "zhujian", "jiwei"], True
    )  # fmt: skip


def test_secrets_from_files_or_systemd_credentials(tmp_path, monkeypatch):
    from monitor.secrets import read_secret

    (tmp_path / "abs.secret").write_text("from-a-file\n", encoding="utf-8")
    assert read_secret(str(tmp_path / "abs.secret")) == "from-a-file"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ops.secret").write_text("from-systemd", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret("ops.secret") == "from-systemd"  # LoadCredential=ops.secret:...


def test_english_messages_and_unrouted_cards_are_counted(cal):
    from monitor.cards.store import CardRecord
    from monitor.outbox.render import CardFacts, render

    cfg = config(CHANNELS.replace("[notify]", '[notify]\nlanguage = "en"'))
    card = CardRecord(7, "C1", "decision", "decision_time", "yellow", z("2024-02-20T16:00:00"),
                      z("2024-02-21T16:00:00"), "M1", "住建局", "W1",
                      {"limit_days": 5, "used_days": 4.0, "remaining_days": 1.0})  # fmt: skip
    facts = CardFacts(card, "promised time limit", "建筑工程施工许可")
    text = render(facts, "card", cfg, cal, cfg.heads).text
    assert text.splitlines()[0] == "[yellow card] C1 · promised time limit"
    assert text.splitlines()[1] == "1 working day left, due 2024-02-21 24:00"
    notifier = Notifier(cfg, cal)
    lost = CardFacts(CardRecord(8, "C9", "decision", "decision_time", "blue",
                                z("2024-02-20T16:00:00"), None, "M1", "文旅局", "W9"))  # fmt: skip
    rows = notifier.rows([(facts, "card"), (lost, "card")], z("2024-02-21T02:00:00"))
    assert [(r[0], r[4]) for r in rows] == [("card:7:w1", True), ("card:8:ops", False)]
    assert notifier.unrouted == 1 and notifier.dropped == 0
