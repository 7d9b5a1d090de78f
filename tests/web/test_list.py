"""The officers' list: working time left counted now on each case's calendar, filters, XLSX.

Now is injected (the console's clock): Monday 4 March 2024, 10:00 in Beijing.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import AsyncIterator

import numpy as np
import openpyxl
import pytest

from monitor import db
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from monitor.web._list import time_left
from tests.web.webkit import DAY, T0, add_account, add_card, console_client, sign_in

REGIONS = Regions.of(load_calendar("cn"), {"2224": load_calendar("yanbian")})


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "lim", ["officer"])
        await add_account(c, "zhaod", ["department_head"], departments=["住建局"])
        yield c


async def _case(conn: db.Connection, case_id: str, decision_deadline: dt.datetime,
                paused_since: dt.datetime | None = None) -> None:  # fmt: skip
    await conn.execute(
        'INSERT INTO jiancha.cases (case_id, status, accepted_at, decision_deadline, paused_since,'
        " first_seen_at, event_count, last_event_id, updated_at)"
        " VALUES ($1, 'accepted', $2, $3, $4, $2, 1, 1, $2)",
        case_id, T0 - 10 * DAY, decision_deadline, paused_since,
    )  # fmt: skip


def _order(html: str) -> list[str]:
    return re.findall(r'<span class="matter">([^<]+)</span>', html)


def test_time_left_counts_working_days_on_the_regions_calendar() -> None:
    # Tuesday 3 Sept 2024 is a rest day in 延边 (its founding day), a working day elsewhere
    now = int(dt.datetime(2024, 9, 2, 2, 0, tzinfo=dt.UTC).timestamp())  # Mon 10:00 Beijing
    due = int(dt.datetime(2024, 9, 5, 2, 0, tzinfo=dt.UTC).timestamp())  # Thu 10:00
    past = now - 86400  # Sun 10:00: Monday's first 10 hours have gone by
    left, provisional = time_left(
        REGIONS, ["110101", "222401", None, "222401"],
        np.array([due, due, -1, past]), np.array([now, now, now, now]),
    )  # fmt: skip
    assert left[0] == 3.0 and left[1] == 2.0 and np.isnan(left[2])
    assert left[3] == pytest.approx(-10 / 24, abs=1e-3)
    assert not provisional.any()
    late = int(dt.datetime(2027, 6, 1, tzinfo=dt.UTC).timestamp())  # holidays not published
    _, prov = time_left(REGIONS, [None], np.array([late]), np.array([now]))
    assert prov.tolist() == [True]


async def test_the_list_is_sorted_by_time_left_now_not_at_issue(
    dsn: str, conn: db.Connection
) -> None:
    # frozen at issue this one was due first; the case was extended since
    await _case(conn, "C-ext", T0 + 12 * DAY)
    await add_card(conn, "C-ext", matter="延期的办件", deadline=T0 + DAY,
                   detail={"remaining_days": 0.5})  # fmt: skip
    await add_card(conn, "C-soon", matter="三天后到期", deadline=T0 + 3 * DAY, clock="acceptance")
    await add_card(conn, "C-late", matter="已超期", deadline=T0 - 2 * DAY, clock="acceptance")
    # paused since Friday 10:00: its time left stands still at what was left then
    await _case(conn, "C-paused", T0 + DAY, paused_since=T0 - 3 * DAY)
    await add_card(conn, "C-paused", matter="暂停中", deadline=T0 + DAY)
    await add_card(conn, "C-none", matter="无期限", deadline=None, clock="acceptance")
    async with console_client(dsn, regions=REGIONS) as client:
        await sign_in(client, "lim")
        page = await client.get("/cards")
    assert page.status_code == 200
    assert _order(page.text) == ["已超期", "暂停中", "三天后到期", "延期的办件", "无期限"]
    left = re.findall(r'<span class="left[^>]*>([^<]+)</span>', page.text)
    assert left == [
        "已超期 0.4 个工作日",  # Saturday 10:00: only Monday's first 10 hours were working time
        "剩余 2.0 个工作日 · 暂停计时中",  # Friday 10:00 to Tuesday 10:00, frozen at the pause
        "剩余 3.0 个工作日",
        "剩余 9.6 个工作日",  # to Saturday 16 March: the extension counts, not the card's date
        "—",
    ]
    assert "共 5 张" in page.text


async def test_filters_matter_and_provisional(dsn: str, conn: db.Connection) -> None:
    await add_card(conn, "C1", matter="建筑工程施工许可", deadline=T0 + 2 * DAY)
    await add_card(conn, "C2", matter="食品经营许可", deadline=T0 + 3 * DAY)
    far = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)  # counted on a year not yet published
    await add_card(conn, "C3", matter="建筑工程竣工验收", deadline=far)
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        building = await client.get("/cards", params={"matter": "建筑工程"})
        provisional = await client.get("/cards", params={"provisional": "yes"})
        published = await client.get("/cards", params={"provisional": "no", "matter": "许可"})
        bad = await client.get("/cards", params={"provisional": "maybe"})
    assert _order(building.text) == ["建筑工程施工许可", "建筑工程竣工验收"]
    assert _order(provisional.text) == ["建筑工程竣工验收"] and "暂定" in provisional.text
    assert _order(published.text) == ["建筑工程施工许可", "食品经营许可"]
    assert bad.status_code == 400 and "请求有误" in bad.text
    # the export link keeps the filters
    link = re.search(r'href="(/cards\.xlsx[^"]*)"', building.text)
    assert link is not None
    assert (
        link.group(1) == "/cards.xlsx?matter=%E5%BB%BA%E7%AD%91%E5%B7%A5%E7%A8%8B&amp;status=open"
    )


async def test_xlsx_export_in_the_lists_order_and_scope(dsn: str, conn: db.Connection) -> None:
    await add_card(conn, "C1", matter="甲", deadline=T0 + 4 * DAY, window="W1")
    await add_card(conn, "C2", matter="乙", deadline=T0 + DAY, window="W2")
    await add_card(conn, "C3", matter="丙", deadline=T0 + 2 * DAY, department="市场监管局")
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        everything = await client.get("/cards.xlsx")
    async with console_client(dsn) as client:
        await sign_in(client, "zhaod")  # 住建局's head
        scoped = await client.get("/cards.xlsx", params={"level": "yellow"})
        page = await client.get("/cards")
    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "attachment" in everything.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(everything.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("牌", "等级", "状态", "办件", "事项", "事项编码")
    assert [r[4] for r in rows[1:]] == ["乙", "丙", "甲"]  # no catalogue entry: the code
    assert rows[1][1] == "黄牌" and rows[1][10] == 1.0 and rows[1][11] is False
    assert rows[1][9] == dt.datetime(2024, 3, 5, 10, 0)  # Beijing time
    mine = list(
        openpyxl.load_workbook(io.BytesIO(scoped.content)).active.iter_rows(values_only=True)
    )
    assert [r[4] for r in mine[1:]] == ["乙", "甲"]  # not 市场监管局's
    # a department head reads, and is told so: no forms to act
    assert "只读" in page.text
    card = await conn.fetchval("SELECT id FROM jiancha.cards WHERE case_id = 'C1'")
    async with console_client(dsn) as client:
        await sign_in(client, "zhaod")
        view = await client.get(f"/cards/{card}")
        form = re.search(r'name="csrf" value="([^"]+)"', view.text)
        assert form is not None
        tried = await client.post(f"/cards/{card}/ack",
                                  data={"csrf": form.group(1), "reason": "x"})  # fmt: skip
    assert view.status_code == 200 and f'action="/cards/{card}/' not in view.text
    assert tried.status_code == 403


async def test_the_first_page_without_reading_every_card(
    dsn: str, conn: db.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read by deadline a few at a time; a later deadline on a calendar with a rest
    day can still have less time left, and must not be missed."""
    import monitor.web._list as listing

    monkeypatch.setattr(listing, "LIST_LIMIT", 3)
    monkeypatch.setattr(listing, "_FIRST_CANDIDATES", 1)  # 6 rows read at first
    now = dt.datetime(2024, 9, 2, 2, tzinfo=dt.UTC)  # Mon 10:00; 延边 rests on Tue 3 Sept
    for name, hours in (("周二", 24), ("周三", 48), ("周四10时", 72), ("周四10时半", 72.5),
                        ("周四11时", 73), ("周四11时半", 73.5), ("周五", 96)):  # fmt: skip
        await add_card(conn, name, matter=name, deadline=now + dt.timedelta(hours=hours),
                       clock="acceptance", region="110101")  # fmt: skip
    await add_card(conn, "延边", matter="延边周四12时", deadline=now + dt.timedelta(hours=74),
                   clock="acceptance", region="222401")  # fmt: skip
    async with console_client(dsn, regions=REGIONS, clock=lambda: now) as client:
        await sign_in(client, "lim")
        page = await client.get("/cards")
    assert _order(page.text) == ["周二", "周三", "延边周四12时"]
    assert "剩余 2.1 个工作日" in page.text and "共 8 张" in page.text


async def test_the_list_says_which_cases_jiancha_could_not_decide(
    dsn: str, conn: db.Connection
) -> None:
    """Such a case gets no card, so the list of cards alone would hide that it goes
    unsupervised: the list names them, each as far as the reader sees it."""
    for cid, dept, at in (("K9", "住建局", T0 - DAY), ("K8", "市场监管局", T0)):
        await conn.execute(
            "INSERT INTO jiancha.cases (case_id, department, status, first_seen_at, event_count,"
            " last_event_id, updated_at, decide_error, decide_failed_at)"
            " VALUES ($1, $2, 'accepted', $3, 1, 1, $3, 'IndexError: boom', $3)",
            cid, dept, at,
        )  # fmt: skip
    async with console_client(dsn, clock=lambda: T0) as client:
        await sign_in(client, "lim")  # an officer: every case
        officer = (await client.get("/cards")).text
        await sign_in(client, "zhaod")  # 住建局's head: its own
        head = (await client.get("/cards")).text
    alert = re.search(r'<p class="alert" role="alert">(.*?)</p>', officer, re.S)
    assert alert is not None and "暂未能判定 2 个案件" in alert.group(1)
    assert re.findall(r'href="/cases/(K\d)"', alert.group(1)) == ["K9", "K8"]  # oldest first
    mine = re.search(r'<p class="alert" role="alert">(.*?)</p>', head, re.S)
    assert mine is not None and "暂未能判定 1 个案件" in mine.group(1)
    assert re.findall(r'href="/cases/(K\d)"', mine.group(1)) == ["K9"]
    await conn.execute("UPDATE jiancha.cases SET decide_error = NULL, decide_failed_at = NULL")
    async with console_client(dsn, clock=lambda: T0) as client:
        await sign_in(client, "lim")
        assert 'role="alert"' not in (await client.get("/cards")).text


async def test_a_matter_is_shown_by_its_catalogue_name(dsn: str, conn: db.Connection) -> None:
    """A window head on a phone saw "11371303MB00302" as the card's title: the console now
    reads the names of the source catalogue (``matters``), shows the name with the code
    beside it, and its matter filter finds a part of the name, as its label says."""
    code, name = "11371303MB00302", "建设用地规划许可"
    await conn.execute(
        "INSERT INTO matters (code, name, department, statutory_days, promised_days)"
        " VALUES ($1, $2, '自然资源局', 20, 10)", code, name,
    )  # fmt: skip
    try:
        card = await add_card(conn, "C9", matter=code)
        await _case(conn, "C9", T0 + 5 * DAY)
        await conn.execute("UPDATE jiancha.cases SET matter = $1 WHERE case_id = 'C9'", code)
        await add_card(conn, "C8", matter="不在目录中的事项", deadline=T0 + 6 * DAY)
        async with console_client(dsn) as client:
            await sign_in(client, "lim")
            listed = await client.get("/cards")
            found = await client.get("/cards", params={"matter": "规划"})
            by_code = await client.get("/cards", params={"matter": "MB003"})
            page = await client.get(f"/cards/{card}")
            case = await client.get("/cases/C9")
            book = await client.get("/cards.xlsx")
    finally:
        await conn.execute("DELETE FROM matters WHERE code = $1", code)
    assert _order(listed.text) == [name, "不在目录中的事项"]  # no name: the code, as before
    assert "C9 · " in listed.text  # the case, to find it in the approval system
    assert _order(found.text) == [name] and _order(by_code.text) == [name]
    assert f"<h1>{name}</h1>" in page.text and f'<p class="muted">{code}</p>' in page.text
    assert f'{name} <span class="muted">{code}</span>' in case.text
    rows = list(openpyxl.load_workbook(io.BytesIO(book.content)).active.iter_rows(values_only=True))
    assert [r[4:6] for r in rows[1:]] == [(name, code), ("不在目录中的事项", "不在目录中的事项")]


async def test_a_window_heads_cards_come_before_the_filters_on_a_phone(
    dsn: str, conn: db.Connection
) -> None:
    """A window head opening the list on a phone saw a screen of seven filter fields before
    the first of their few cards: their filters fold away, open when one is in use; an
    officer's, the way through a whole centre, stay open."""
    await add_account(conn, "wangf", ["window_head"], windows=["W1"])
    await add_card(conn, "C1", window="W1")
    folded = '<details class="filter-box">'
    unfolded = '<details class="filter-box" open>'
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        plain = (await client.get("/cards")).text
        narrowed = (await client.get("/cards", params={"level": "yellow"})).text
        every = (await client.get("/cards", params={"status": "all"})).text
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        officer = (await client.get("/cards")).text
    assert folded in plain and "筛选条件（部门、窗口、等级、事项……）" in plain
    assert plain.index("</details>") < plain.index('<span class="matter">')
    assert unfolded in narrowed and unfolded in every and unfolded in officer


async def test_the_database_role_of_a_step_is_for_those_who_audit_the_ledger(
    dsn: str, conn: db.Connection
) -> None:
    """ "数据库角色：jiancha_daemon" under every step meant nothing to a window head; an officer
    checking who wrote a step still sees it."""
    await add_account(conn, "wangf", ["window_head"], windows=["W1"])
    card = await add_card(conn, "C1", window="W1")
    pages = {}
    for who in ("wangf", "lim"):
        async with console_client(dsn) as client:
            await sign_in(client, who)
            pages[who] = (await client.get(f"/cards/{card}")).text
    assert "数据库角色" not in pages["wangf"] and "发牌" in pages["wangf"]
    assert "数据库角色" in pages["lim"]


async def test_a_card_says_how_much_working_time_is_left_now(dsn: str, conn: db.Connection) -> None:
    """A window head opening the alert's link saw only what was left when the card was
    issued; the page now says what is left at this moment, counted as the list counts it:
    on the case's decision deadline as it stands (here extended by a day since), an
    overdue card by how much, a settled card nothing."""
    soon = await add_card(conn, "C1", deadline=T0 + DAY)
    await _case(conn, "C1", T0 + 2 * DAY)  # the deadline moved after the card
    late = await add_card(conn, "C2", deadline=T0 - DAY)  # Sunday 10:00: Monday's 10 hours
    done = await add_card(conn, "C3", deadline=T0 + DAY, status="closed")
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        pages = {n: (await client.get(f"/cards/{c}")).text for n, c in
                 (("soon", soon), ("late", late), ("done", done))}  # fmt: skip
    flat = {n: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", p)) for n, p in pages.items()}
    assert "当前 剩余 2.0 个工作日" in flat["soon"]
    assert "当前 已超期 0.4 个工作日" in flat["late"]
    assert "当前" not in flat["done"] and "签发时剩余" in flat["done"]
