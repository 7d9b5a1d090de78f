"""The administrator's pages: accounts and roles, calendars by region, rules and fingerprints."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitor import db
from monitor.accounts import get_user
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from tests.web.webkit import PASSWORD, add_account, add_card, console_client, csrf_of, sign_in

REGIONS = Regions.of(load_calendar("cn"), {"2224": load_calendar("yanbian")})


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "root1", ["admin"], display_name="管理员")
        await add_account(c, "wangf", ["window_head"], windows=["W1"], display_name="王芳")
        await add_account(c, "lim", ["officer"])
        yield c


async def test_only_an_admin_sees_the_admin_pages(dsn: str, conn: db.Connection) -> None:
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        page = await client.get("/admin")
        cards = await client.get("/cards")
        tried = await client.post("/admin/users/wangf/disable", data={"csrf": csrf_of(cards.text)})
    assert page.status_code == 403 and tried.status_code == 403
    assert 'href="/admin"' not in cards.text
    assert not (await get_user(conn, "wangf")).disabled  # type: ignore[union-attr]


async def test_calendars_rules_and_fingerprints(dsn: str, conn: db.Connection) -> None:
    await add_card(conn)  # stamped 'rules-abc' / 'cn-2024' by the daemon (here: the test)
    async with console_client(dsn, regions=REGIONS) as client:
        await sign_in(client, "root1")
        page = await client.get("/admin")
    assert page.status_code == 200
    html = page.text
    for text in ("默认（本中心）", "2224", "yanbian", REGIONS.default.fingerprint,
                 dict(REGIONS.prefixes)["2224"].fingerprint, "节假日已公布至", "2026-12-31",
                 "生效的规则", "decision_time", "rules-abc", "cn-2024"):  # fmt: skip
        assert text in html, text


async def test_manage_an_account(dsn: str, conn: db.Connection) -> None:
    async with console_client(dsn) as wangf:
        await sign_in(wangf, "wangf")
        assert (await wangf.get("/cards")).status_code == 200
        async with console_client(dsn) as client:
            await sign_in(client, "root1")
            csrf = csrf_of((await client.get("/admin")).text)
            # roles and scope: wangf now also heads W2 and is an officer
            done = await client.post("/admin/users/wangf/scope", data={
                "csrf": csrf, "role_window_head": "yes", "role_officer": "yes",
                "windows": "W1，W2"})  # fmt: skip
            assert done.status_code == 303
            user = await get_user(conn, "wangf")
            assert user is not None and user.roles == ("window_head", "officer")
            assert user.windows == ("W1", "W2")
            # a window head without windows is refused, with the reason on the page
            bad = await client.post("/admin/users/wangf/scope",
                                    data={"csrf": csrf, "role_window_head": "yes"})  # fmt: skip
            shown = await client.get(bad.headers["location"])
            assert "窗口负责人须用" in shown.text
            # end wangf's sessions: her browser is signed out at once
            assert (await client.post("/admin/users/wangf/sign-out",
                                      data={"csrf": csrf})).status_code == 303  # fmt: skip
            assert (await wangf.get("/cards")).status_code == 303
            # add a directory account and a local one
            for form in (
                {"username": "chenj", "display_name": "陈静", "role_officer": "yes",
                 "directory": "yes"},
                {"username": "zhaod", "role_department_head": "yes", "departments": "住建局",
                 "password": "a long enough password"},
            ):  # fmt: skip
                added = await client.post("/admin/users", data={"csrf": csrf, **form})
                assert added.status_code == 303
            form = {"csrf": csrf, "username": "x1", "role_officer": "yes", "password": "short"}
            short = await client.post("/admin/users", data=form)
            assert "密码至少 10 个字符" in (await client.get(short.headers["location"])).text
            # disable, not delete; and not oneself
            assert (await client.post("/admin/users/lim/disable",
                                      data={"csrf": csrf})).status_code == 303  # fmt: skip
            me = await client.post("/admin/users/root1/disable", data={"csrf": csrf})
            assert "不能停用自己的账户" in (await client.get(me.headers["location"])).text
            no_csrf = await client.post("/admin/users/wangf/disable", data={})
            assert no_csrf.status_code == 403
    chen, zhao, lim, root = [await get_user(conn, n) for n in ("chenj", "zhaod", "lim", "root1")]
    assert chen is not None and not chen.local and chen.display_name == "陈静"
    assert zhao is not None and zhao.local and zhao.departments == ("住建局",)
    assert await get_user(conn, "x1") is None
    assert lim is not None and lim.disabled and root is not None and not root.disabled
    async with console_client(dsn) as client:
        assert (await sign_in(client, "zhaod", "a long enough password")).status_code == 303
        assert (await sign_in(client, "lim", PASSWORD)).status_code == 401
