"""What comes for one recipient within the group window goes as one message, within the robots'
rate limits; the morning release too; and each card is still delivered once.

Real parts: the embedded PostgreSQL, the WeCom channel posting to a real HTTP
receiver (tests/httpkit.py); trio's MockClock drives both the business clock
and the rate limiter, so nothing here waits for real time.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass

import pytest
import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.cards.store import CardRecord
from monitor.config import NotifyConfig, parse
from monitor.notify import build_channels
from monitor.outbox.enqueue import Notifier
from monitor.outbox.message import Channel
from monitor.outbox.render import CardFacts
from monitor.outbox.send import GROUP_MAX, Sender
from monitor.wallclock import VirtualClock
from tests import httpkit
from tests.cardkit import z

receiver = httpkit.receiver


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


def robot_config(url: str, extra: str = "") -> NotifyConfig:
    return parse(tomllib.loads(
        f'[channels.wx]\nkind = "wecom"\nurl = "{url}?key=robot-key-0123"\n'
        '[windows.W1]\nhead = "王芳"\nhead_wecom_userid = "wangfang"\nchannels = ["wx"]\n'
        '[web]\nbase_url = "https://jiancha.example"\n[notify]\n' + extra
    ))  # fmt: skip


_CARD = """
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, deadline,
    matter, department, "window", ruleset, calendar, detail, updated_at)
VALUES ($1, 'decision', 'decision_time', $2, $3, $3, $3, 'M1', '住建局', 'W1', 'r', 'c',
        '{}'::jsonb, $3)
RETURNING id
"""


async def issue(conn: db.Connection, notifier: Notifier, case: str, level: str,
                at: dt.datetime) -> int:  # fmt: skip
    """A card in the ledger and its notification queued, as the pipeline does at ``at``."""
    card_id = int(await conn.fetchval(_CARD, case, level, at))
    detail = {"limit_days": 5, "used_days": 5.5, "remaining_days": -0.5}
    record = CardRecord(card_id, case, "decision", "decision_time", level, at, at, "M1",
                        "住建局", "W1", detail)  # fmt: skip
    await notifier.enqueue(conn, [(CardFacts(record, "超过承诺时限", "建筑工程施工许可"), "card")],
                           at)  # fmt: skip
    return card_id


@dataclass
class Rig:
    """A WeCom robot (the real receiver), the notifier and a sender, on trio's clock."""

    clock: VirtualClock
    cfg: NotifyConfig
    notifier: Notifier
    channels: dict[str, Channel]
    sender: Sender


def rig(dsn: str, cal, receiver, start: str = "2024-02-19T02:00:00") -> Rig:
    """Business time starts at ``start`` (default a working Monday, 10:00 in Beijing)."""
    clock = VirtualClock(z(start), monotonic=trio.current_time)
    cfg = robot_config(receiver.url("/wx"))
    channels = build_channels(cfg)
    return Rig(clock, cfg, Notifier(cfg, cal), channels, Sender(dsn, channels, cfg, clock=clock))


async def delivered(conn: db.Connection) -> list[tuple[str, str, int]]:
    rows = await conn.fetch("SELECT key, state, attempts FROM jiancha.outbox ORDER BY id")
    return [(r["key"], r["state"], r["attempts"]) for r in rows]


async def test_cards_within_the_window_go_as_one_message(dsn, cal, receiver, mock_clock):
    r = rig(dsn, cal, receiver)
    clock, notifier, sender = r.clock, r.notifier, r.sender
    async with await db.connect(dsn) as conn:
        await issue(conn, notifier, "C1", "red", clock())
        mock_clock.jump(20)
        await issue(conn, notifier, "C2", "red", clock())
        mock_clock.jump(30)
        await issue(conn, notifier, "C3", "yellow", clock())
        assert await sender.step(conn) == 0  # the first waits out its window (60 s)
        mock_clock.jump(10)
        assert await sender.step(conn) == 3  # C1 is due: C2 and C3, queued since, go with it
        assert await sender.step(conn) == 0
        assert len(receiver.requests) == 1
        content = receiver.requests[0].json()["markdown"]["content"]
        lines = content.splitlines()
        assert lines[0] == "## 【督办提醒】3 条，其中红牌 2 张"
        assert [ln.split("](")[0].split("[")[-1] for ln in lines[1:4]] == ["C1", "C2", "C3"]
        assert "(https://jiancha.example/cards/1)" in lines[1]
        assert lines[-1] == "<@wangfang>"  # the head mentioned once, not three times
        assert await delivered(conn) == [(f"card:{i}:wx", "delivered", 1) for i in (1, 2, 3)]
        notified = await conn.fetchval(
            "SELECT count(*) FROM jiancha.card_events WHERE kind = 'notified'"
        )
        assert notified == 3
        # a card after the group starts a window of its own
        mock_clock.jump(5)
        await issue(conn, notifier, "C4", "red", clock())
        mock_clock.jump(61)
        assert await sender.step(conn) == 1
        assert receiver.requests[1].json()["markdown"]["content"].startswith("## 【红牌】C4 ·")


async def test_a_burst_stays_within_the_robots_rate_limit(dsn, cal, receiver, mock_clock):
    r = rig(dsn, cal, receiver)
    clock, notifier, sender = r.clock, r.notifier, r.sender
    assert r.channels["wx"].per_minute == 20  # WeCom: 20 messages a minute per robot
    n = 25 * GROUP_MAX + 5  # more than 20 messages' worth in one minute
    async with await db.connect(dsn) as conn:
        for i in range(n):
            await issue(conn, notifier, f"C{i}", "red", clock())
        mock_clock.jump(60)
        for _ in range(12):  # a minute in 5-second steps
            await sender.step(conn)
            mock_clock.jump(5)
        sent_in_a_minute = len(receiver.requests)
        assert sent_in_a_minute == 20  # never more than 20 in any minute
        while await conn.fetchval("SELECT count(*) FROM jiancha.outbox WHERE state = 'pending'"):
            await sender.step(conn)
            mock_clock.jump(5)
        states = await delivered(conn)
    assert {s for _, s, _ in states} == {"delivered"} and len(states) == n
    assert {a for _, _, a in states} == {1}  # each card once: none resent
    assert len(receiver.requests) == -(-n // GROUP_MAX)  # groups of ten
    cases = [c for r in receiver.requests for c in r.json()["markdown"]["content"].split("[")[1:]]
    assert len(cases) == n


async def test_the_morning_release_is_grouped_too(dsn, cal, receiver, mock_clock):
    r = rig(dsn, cal, receiver, "2024-02-19T11:00:00")  # Monday 19:00 in Beijing: quiet hours
    clock, notifier, sender = r.clock, r.notifier, r.sender
    async with await db.connect(dsn) as conn:
        for i, hours in enumerate((0, 3, 6)):  # 19:00, 22:00, 04:00: all held to 08:30
            mock_clock.jump(hours * 3600)
            await issue(conn, notifier, f"C{i}", "yellow", clock())
        held = await conn.fetch("SELECT DISTINCT not_before FROM jiancha.outbox")
        assert [r["not_before"] for r in held] == [z("2024-02-20T00:30:00")]
        mock_clock.jump((z("2024-02-20T00:30:00") - clock()).total_seconds())
        assert await sender.step(conn) == 3
        assert await sender.step(conn) == 0
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json()["markdown"]["content"].startswith("## 【督办提醒】3 条\n")


async def test_a_crash_mid_group_resends_only_the_group_in_flight(dsn, cal, receiver, mock_clock):
    r = rig(dsn, cal, receiver)
    clock, notifier, channels, cfg = r.clock, r.notifier, r.channels, r.cfg
    async with await db.connect(dsn) as conn:
        for case in ("C1", "C2", "C3"):
            await issue(conn, notifier, case, "red", clock())
        mock_clock.jump(60)
        # the daemon claims the group and sends it, then dies before recording anything
        dying = Sender(dsn, channels, cfg, clock=clock)
        async with conn.transaction():
            rows = await dying._claim(conn)
        assert len(rows) == 3
        assert (await channels["wx"].send(dying._message(rows))).ok
        # the next daemon: the claims hold until their lease runs out, then all go again
        sender = Sender(dsn, channels, cfg, clock=clock)
        assert await sender.step(conn) == 0
        mock_clock.jump(cfg.lease + 1)
        assert await sender.step(conn) == 3
        await issue(conn, notifier, "C4", "red", clock())  # after: a message of its own
        mock_clock.jump(61)
        assert await sender.step(conn) == 1
        assert await sender.step(conn) == 0
        assert {s for _, s, _ in await delivered(conn)} == {"delivered"}
    bodies = [r.json()["markdown"]["content"] for r in receiver.requests]
    assert len(bodies) == 3 and bodies[0] == bodies[1]  # the one in flight, at least once
    assert "C4" in bodies[2] and not any("C4" in b for b in bodies[:2])


def test_group_window_zero_sends_each_card_alone(cal):
    cfg = robot_config("http://127.0.0.1:9/wx", "group_window = 0\n")
    assert cfg.group_window == 0.0
    record = CardRecord(1, "C1", "decision", "decision_time", "red", z("2024-02-19T02:00:00"),
                        None, "M1", "住建局", "W1", {})  # fmt: skip
    rows = Notifier(cfg, cal).rows([(CardFacts(record), "card")], z("2024-02-19T02:00:00"))
    assert rows[0][6] == z("2024-02-19T02:00:00")  # not held for a group
    default = robot_config("http://127.0.0.1:9/wx")
    rows = Notifier(default, cal).rows([(CardFacts(record), "card")], z("2024-02-19T02:00:00"))
    assert rows[0][6] == z("2024-02-19T02:01:00")
