"""The daily digest: working mornings on the real calendar, most urgent case first, once."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.config import parse
from monitor.evaluator import Evaluator
from monitor.outbox.digest import Digester, digest_day, next_digest, queue_digests
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from tests.cardkit import SUB, Driver, z
from tests.sourcekit import write

AT = dt.time(8, 30)


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2024-02-07T23:00:00", "2024-02-08T00:30:00"),  # Thu 07:00 -> the same morning
        ("2024-02-09T01:00:00", "2024-02-18T00:30:00"),  # Fri 09:00 -> the working Sunday
        ("2024-09-30T02:00:00", "2024-10-08T00:30:00"),  # across the National Day week
        ("2024-03-08T12:00:00", "2024-03-11T00:30:00"),  # Fri 20:00 -> Monday
    ],
)
def test_next_digest_is_the_next_working_morning(cal, now, expected):
    assert next_digest(z(now), cal, AT) == z(expected)


def test_digest_day_only_on_working_days_after_the_hour(cal):
    assert digest_day(z("2024-02-18T00:29:59"), cal, AT) is None
    assert digest_day(z("2024-02-18T00:30:00"), cal, AT) == dt.date(2024, 2, 18)
    assert digest_day(z("2024-02-17T02:00:00"), cal, AT) is None  # Spring Festival


CFG = parse(tomllib.loads(
    '[channels.w1]\nkind = "webhook"\nurl = "http://127.0.0.1:9/w1"\n'
    '[channels.ops]\nkind = "webhook"\nurl = "http://127.0.0.1:9/ops"\n'
    '[windows.W1]\nhead = "王芳"\nchannels = ["w1"]\n[notify]\nfallback = ["ops"]\n'
))  # fmt: skip


async def _two_cases_at_risk(conn, cal, rules):
    # both 5 wd; C2 accepted a day earlier, so it has less time left
    await write(conn, [
        ("C1", "submitted", z("2024-03-04T01:00:00"), SUB),
        ("C1", "accepted", z("2024-03-04T02:00:00"), {}),
        ("C2", "submitted", z("2024-03-01T01:00:00"), SUB),
        ("C2", "accepted", z("2024-03-01T02:00:00"), {}),
        ("C3", "submitted", z("2024-03-01T01:00:00"), {**SUB, "window": "W9"}),
        ("C3", "accepted", z("2024-03-01T02:00:00"), {}),
    ])  # fmt: skip
    d = Driver(conn, Evaluator(rules, cal))
    await d.start(z("2024-03-04T03:00:00"))
    await d.ingest(z("2024-03-04T03:00:00"))
    await d.run_until(z("2024-03-07T06:00:00"), z("2024-03-04T03:00:00"))


async def test_digest_lists_cases_most_urgent_first_once(dsn, cal):
    rules = load_rules("cards")
    async with await db.connect(dsn) as conn:
        await _two_cases_at_risk(conn, cal, rules)
        matters = await load_matters(conn)
        now = z("2024-03-07T06:00:00")  # Thu 14:00 (a late start: the morning's digest)
        added = await queue_digests(conn, CFG, cal, rules, matters, now, dt.date(2024, 3, 7))
        assert added == 2
        rows = {r["key"]: r for r in await conn.fetch("SELECT * FROM jiancha.outbox")}
        assert set(rows) == {"digest:2024-03-07:W1:w1", "digest:2024-03-07:W9:ops"}
        assert rows["digest:2024-03-07:W9:ops"]["routed"] is False  # nobody set up for W9
        text = rows["digest:2024-03-07:W1:w1"]["payload"]["text"]
        lines = text.splitlines()
        assert lines[0] == "【每日风险提示】W1 窗口 · 2024-03-07 · 风险办件 2 件"
        assert "王芳" in lines[1]
        # C2 (accepted Fri Mar 1): Mar 4, 5, 6 and 14 h of Mar 7 used -> 1.4 left; C1 2.4
        assert lines[2].startswith("1. C2") and "剩余 1.4 个工作日" in lines[2]
        assert lines[3].startswith("2. C1") and "剩余 2.4 个工作日" in lines[3]
        assert "截止 03-08 24:00" in lines[2]
        assert await queue_digests(conn, CFG, cal, rules, matters, now, dt.date(2024, 3, 7)) == 0


async def test_digester_queues_the_morning_digest_when_started_late(dsn, cal):
    rules = load_rules("cards")
    async with await db.connect(dsn) as conn:
        await _two_cases_at_risk(conn, cal, rules)
        matters = await load_matters(conn)
    woke = trio.Event()
    digester = Digester(dsn, CFG, cal, rules, lambda: matters,
                        clock=lambda: z("2024-03-07T06:00:00"),  # Thu 14:00, after 08:30
                        on_queued=woke.set)  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(digester.run)
        with trio.fail_after(10):
            await woke.wait()
        nursery.cancel_scope.cancel()
    async with await db.connect(dsn) as conn:
        keys = {r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox")}
    assert keys == {"digest:2024-03-07:W1:w1", "digest:2024-03-07:W9:ops"}
