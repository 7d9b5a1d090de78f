"""The case page's timeline, on a case the daemon's own pipeline built from source events.

Every event with business and arrival time, the pause with its type and
allowance, each clock with start, limit, consumed and deadline (the engine's
own, so the decision clock's deadline is the one the daemon stored), and
each card with its ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from monitor import db
from monitor.calendar.regions import Regions
from monitor.evaluator import Evaluator
from monitor.pipeline import apply_batch
from monitor.source.catalogue import load_matters
from monitor.source.tailer import read_batch
from monitor.state import store as state_store
from monitor.state.view import VIEW_COLUMNS, CaseView
from monitor.web._case import case_timeline
from tests.sourcekit import SUBMITTED, at, write
from tests.web.webkit import add_account, console_client, sign_in

NOW = dt.datetime(2024, 3, 8, 2, tzinfo=dt.UTC)  # Friday 10:00 Beijing; at(0) is Monday 10:00


async def ingest(conn: db.Connection, now: dt.datetime, ev: Evaluator) -> None:
    matters = await load_matters(conn)
    cursor = await state_store.load_cursor(conn)
    while events := await read_batch(conn, cursor, 1000):
        cursor = (await apply_batch(conn, events, matters, cursor, now, evaluator=ev)).cursor


@pytest.fixture
async def conn(dsn: str, cal: Any, rules: Any) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "lim", ["officer"], display_name="李明")
        await add_account(c, "wangf", ["window_head"], windows=["W2"])
        await write(c, [
            ("K1", "submitted", at(0), SUBMITTED),
            ("K1", "accepted", at(1), {}),
            ("K1", "suspended", at(24), {"type": "inspection", "notified_days": 3}),
            ("K1", "resumed", at(48), {}),
        ])  # fmt: skip
        await ingest(c, NOW, Evaluator(rules, cal))
        yield c


async def test_the_clocks_are_the_engines(conn: db.Connection, cal: Any, rules: Any) -> None:
    row = await conn.fetchrow(
        f"SELECT {VIEW_COLUMNS}, decision_deadline FROM jiancha.cases WHERE case_id = 'K1'"
    )
    clocks, pauses = case_timeline(CaseView.from_row(row), rules, NOW, Regions.of(cal))
    decision = [c for c in clocks if c["on"] == "decision"]
    assert decision and all(c["deadline"] == row["decision_deadline"] for c in decision)
    assert all(c["limit"] == 5 and c["start"] == at(1) for c in decision)
    # counted from Tuesday 00:00 (the day after acceptance) to Friday 10:00, less the day
    # paused (Tuesday 10:00 to Wednesday 10:00): 3 10/24 - 1
    assert decision[0]["consumed"] == pytest.approx(2.417, abs=0.005)
    assert pauses == [{"type": "inspection", "start": at(24), "end": at(48), "notified": 3,
                       "allowance": 3}]  # fmt: skip


async def test_the_case_page_shows_the_whole_timeline(dsn: str, conn: db.Connection) -> None:
    card = await conn.fetchval("SELECT min(id) FROM jiancha.cards WHERE case_id = 'K1'")
    async with console_client(dsn, clock=lambda: NOW) as client:
        await sign_in(client, "lim")
        page = await client.get("/cases/K1")
        other = await client.get("/cases/nope")
    async with console_client(dsn, clock=lambda: NOW) as client:
        await sign_in(client, "wangf")  # heads W2, not K1's W1
        refused = await client.get("/cases/K1")
    assert page.status_code == 200, page.text
    html = page.text
    events = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td><td>([^<]+)</td>", html)
    assert [e[0] for e in events] == ["submitted", "accepted", "suspended", "resumed"]
    assert events[0][1] == "2024-03-04 10:00"  # business time, Beijing
    assert all(e[2] != "—" for e in events)  # and when it reached jiancha
    assert "inspection" in html and "允许时长 3 个工作日" in html and "告知 3 个工作日" in html
    assert "起算 2024-03-04 11:00" in html and "时限 5" in html
    assert card is not None and f'href="/cards/{card}"' in html
    assert "发牌" in html and "系统（自动）" in html  # the card's ledger
    assert other.status_code == 404 and refused.status_code == 403


async def test_a_case_deemed_accepted_says_so_beside_its_status(
    dsn: str, conn: db.Connection, cal: Any, rules: Any
) -> None:
    """Submitted ten days before and never accepted, then a 补正 notice after the
    acceptance limit: by the statute (Art. 32) it counts as accepted from receipt, and the
    status word alone (补正中) would say it still waits for acceptance."""
    await write(conn, [("K2", "submitted", at(-240), SUBMITTED),
                       ("K2", "supplement_requested", at(-24), {"items": ["图纸"]})])  # fmt: skip
    await ingest(conn, NOW, Evaluator(rules, cal))
    assert await conn.fetchval("SELECT status FROM jiancha.cases WHERE case_id = 'K2'") == (
        "supplement"
    )
    async with console_client(dsn, clock=lambda: NOW) as client:
        await sign_in(client, "lim")
        deemed = (await client.get("/cases/K2")).text
        timely = (await client.get("/cases/K1")).text
    facts = re.search(r'<dl class="facts">(.*?)</dl>', deemed, re.S)
    assert facts is not None
    assert "<dd>视为已受理</dd>" in facts.group(1) and "补正中" not in facts.group(1)
    assert "<dt>视为受理</dt><dd>自收到材料 2024-02-23 10:00 起" in facts.group(1)
    assert "第三十二条" in facts.group(1)
    assert "视为受理" not in timely  # accepted within the limit


async def test_a_case_the_engine_cannot_decide_says_so_and_its_page_still_opens(
    dsn: str, conn: db.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An officer looking at a case jiancha could not decide (schema 19's mark) is told
    that its clocks and cards may be out of date, and why; the page opens even when the
    same defect breaks its timeline (it would have been a 500)."""
    error = "IndexError: list index out of range"
    await conn.execute("UPDATE jiancha.cases SET decide_error = $1, decide_failed_at = $2 "
                       "WHERE case_id = 'K1'", error, NOW)  # fmt: skip

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise IndexError("list index out of range")

    async with console_client(dsn, clock=lambda: NOW) as client:
        await sign_in(client, "lim")
        page = await client.get("/cases/K1")
        monkeypatch.setattr("monitor.web._case.periods", broken)
        blind = await client.get("/cases/K1")
    assert page.status_code == 200 and blind.status_code == 200
    for text in (page.text, blind.text):
        alert = re.search(r'<p class="alert" role="alert">(.*?)</p>', text, re.S)
        assert alert is not None
        assert "jiancha 自 2024-03-08 10:00 起无法判定本案" in alert.group(1)
        assert "IndexError: list index out of range" in alert.group(1)
    assert 'id="clocks"' in page.text and 'id="clocks"' not in blind.text
    await conn.execute("UPDATE jiancha.cases SET decide_error = NULL, decide_failed_at = NULL")
    async with console_client(dsn, clock=lambda: NOW) as client:
        await sign_in(client, "lim")
        assert 'role="alert"' not in (await client.get("/cases/K1")).text
