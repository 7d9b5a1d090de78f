"""The web console on a real PostgreSQL, driven over ASGI by an HTTP client under trio.

What a window head, an officer and a department head may see and do, the
sign-in and its throttle, CSRF on every form, the ledger rows each step
leaves (who, in which role, through which door), and the Chinese pages of
every refusal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest

from monitor import db
from monitor.accounts import hash_password, set_password
from monitor.signins import revoke_sessions
from monitor.web import Throttle
from tests.web.webkit import (
    DAY,
    PASSWORD,
    T0,
    add_account,
    add_card,
    console_client,
    csrf_of,
    sign_in,
)


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "wangf", ["window_head"], windows=["W1"], display_name="王芳")
        await add_account(c, "lim", ["officer"], display_name="李明")
        await add_account(c, "zhaod", ["department_head"], departments=["住建局"])
        yield c


async def test_healthz_needs_no_sign_in(dsn: str) -> None:
    async with console_client(dsn) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200 and response.text.strip() == "ok"


async def test_pages_send_you_to_sign_in(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        response = await client.get(f"/cards/{card}")
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=%2Fcards%2F{card}"
        login = await client.get("/login")
    assert login.status_code == 200 and "登录" in login.text and 'name="password"' in login.text


async def test_ten_wrong_passwords_throttle_the_account(dsn: str, conn: db.Connection) -> None:
    await conn.execute("DELETE FROM jiancha.login_failures")
    async with console_client(dsn) as client:  # the console's default throttle: 10 in 15 min
        for _ in range(9):
            wrong = await sign_in(client, "wangf", "not the password")
            assert wrong.status_code == 401
            assert "用户名或密码错误" in wrong.text
    # a restart (a new console) remembers: the failures are rows
    async with console_client(dsn) as client:
        assert (await sign_in(client, "wangf", "still not it")).status_code == 401
        # the eleventh try is refused even with the right password
        blocked = await sign_in(client, "wangf", PASSWORD)
        assert blocked.status_code == 429 and "登录失败次数过多" in blocked.text
        # another account is not affected
        other = await sign_in(client, "lim", PASSWORD)
        assert other.status_code == 303 and other.headers["location"] == "/cards"
    assert (
        await conn.fetchval("SELECT count(*) FROM jiancha.login_failures WHERE username = 'wangf'")
        == 10
    )


async def test_login_without_csrf_is_refused(dsn: str, conn: db.Connection) -> None:
    async with console_client(dsn) as client:
        response = await client.post("/login", data={"username": "lim", "password": PASSWORD})
    assert response.status_code == 403 and "表单已失效" in response.text


async def test_window_head_sees_own_card_not_anothers(dsn: str, conn: db.Connection) -> None:
    mine = await add_card(conn, "C1", window="W1")
    theirs = await add_card(conn, "C2", window="W2")
    async with console_client(dsn) as client:
        assert (await sign_in(client, "wangf")).status_code == 303
        page = await client.get(f"/cards/{mine}")
        assert page.status_code == 200
        for text in (
            "黄牌",
            "已发牌",
            "建筑工程施工许可",
            "办结时限黄牌",
            "2024-03-09 10:00",
            "签发时剩余",
            "签收说明",
            "申诉",
            "王芳",
        ):
            assert text in page.text, text
        assert "/revoke" not in page.text and "/decide" not in page.text
        refused = await client.get(f"/cards/{theirs}")
        assert refused.status_code == 403 and "无权访问" in refused.text
        case = await client.get("/cases/C2")
        assert case.status_code == 403
        # nor by posting a form to it (tampering with the URL)
        token = csrf_of(page.text)
        tampered = await client.post(f"/cards/{theirs}/ack", data={"csrf": token, "reason": "x"})
        assert tampered.status_code == 403
    status = await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", theirs)
    assert status == "issued"


async def test_ack_needs_csrf_and_records_user_and_role(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        page = await client.get(f"/cards/{card}")
        no_token = await client.post(f"/cards/{card}/ack", data={"reason": "已电话告知申请人"})
        assert no_token.status_code == 403 and "表单已失效" in no_token.text
        bad_token = await client.post(
            f"/cards/{card}/ack", data={"reason": "已电话告知申请人", "csrf": "forged"}
        )
        assert bad_token.status_code == 403
        assert (
            await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card) == "issued"
        )

        empty = await client.post(
            f"/cards/{card}/ack", data={"reason": "  ", "csrf": csrf_of(page.text)}
        )
        assert empty.status_code == 400 and "情况说明" in empty.text

        done = await client.post(
            f"/cards/{card}/ack", data={"reason": "已电话告知申请人", "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 303 and done.headers["location"] == f"/cards/{card}"
        after = await client.get(f"/cards/{card}")
        assert "已记入台账" in after.text and "已签收" in after.text
        assert "王芳（窗口负责人）" in after.text and "已电话告知申请人" in after.text
        # an acknowledged card cannot be acknowledged again: 409, in Chinese
        again = await client.post(
            f"/cards/{card}/ack", data={"reason": "再次", "csrf": csrf_of(after.text)}
        )
        assert again.status_code == 409 and "不能签收说明" in again.text
    assert (
        await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card)
        == "acknowledged"
    )
    step = await conn.fetchrow(
        "SELECT actor, reason, detail, db_role FROM jiancha.card_events"
        " WHERE card_id = $1 AND kind = 'acknowledged'",
        card,
    )
    assert step["actor"] == "王芳（窗口负责人）" and step["reason"] == "已电话告知申请人"
    assert step["detail"]["role"] == "window_head" and step["detail"]["channel"] == "web"
    assert step["detail"]["username"] == "wangf" and step["db_role"]


async def test_officer_revokes_with_a_category(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn, window="W9")
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        page = await client.get(f"/cards/{card}")
        assert page.status_code == 200 and "/revoke" in page.text and "数据错误" in page.text
        assert "/ack" not in page.text  # an officer is not the window head
        no_category = await client.post(
            f"/cards/{card}/revoke", data={"csrf": csrf_of(page.text), "reason": "x"}
        )
        assert no_category.status_code == 400
        done = await client.post(
            f"/cards/{card}/revoke",
            data={
                "csrf": csrf_of(page.text),
                "category": "data_error",
                "reason": "受理时间录入错误",
            },
        )
        assert done.status_code == 303
        after = await client.get(f"/cards/{card}")
        assert "已撤销" in after.text and "数据错误：受理时间录入错误" in after.text
        assert "李明（纪检监察员）" in after.text
    step = await conn.fetchrow(
        "SELECT actor, reason, detail FROM jiancha.card_events"
        " WHERE card_id = $1 AND kind = 'revoked'",
        card,
    )
    assert step["actor"] == "李明（纪检监察员）"
    assert step["reason"] == "数据错误：受理时间录入错误"
    assert step["detail"]["category"] == "data_error" and step["detail"]["role"] == "officer"


async def test_a_provisional_deadline_is_marked(dsn: str, conn: db.Connection) -> None:
    facts = {"limit_days": 5, "used_days": 6.5, "remaining_days": -1.5, "provisional": True}
    card = await add_card(conn, detail=facts)
    plain = await add_card(conn, "C2")
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        page = await client.get(f"/cards/{card}")
        assert "暂定" in page.text and "签发时已超期" in page.text and "1.5 个工作日" in page.text
        assert "暂定" not in (await client.get(f"/cards/{plain}")).text


async def test_window_head_cannot_revoke_nor_decide(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        token = csrf_of((await client.get(f"/cards/{card}")).text)
        for action in ("revoke", "decide"):
            refused = await client.post(
                f"/cards/{card}/{action}",
                data={"csrf": token, "category": "other", "result": "revoked", "reason": "想撤"},
            )
            assert refused.status_code == 403 and "无权访问" in refused.text
    assert await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card) == "issued"


async def test_appeal_then_officer_decides(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as head, console_client(dsn) as officer:
        await sign_in(head, "wangf")
        token = csrf_of((await head.get(f"/cards/{card}")).text)
        appealed = await head.post(
            f"/cards/{card}/appeal", data={"csrf": token, "reason": "现场踏勘未扣除"}
        )
        assert appealed.status_code == 303
        await sign_in(officer, "lim")
        page = await officer.get(f"/cards/{card}")
        assert "申诉中" in page.text and "/decide" in page.text
        decided = await officer.post(
            f"/cards/{card}/decide",
            data={"csrf": csrf_of(page.text), "result": "revoked", "reason": "踏勘时间应扣除"},
        )
        assert decided.status_code == 303
    rows = await conn.fetch(
        "SELECT kind, detail->>'role' AS role FROM jiancha.card_events"
        " WHERE card_id = $1 ORDER BY id",
        card,
    )
    assert [(r["kind"], r["role"]) for r in rows] == [
        ("issued", None),
        ("appealed", "window_head"),
        ("appeal_decided", "officer"),
        ("revoked", "officer"),
    ]


def _listed(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/cards/(\d+)"', html)]


async def test_card_list_filters_scopes_and_sorts(dsn: str, conn: db.Connection) -> None:
    late = await add_card(conn, "C1", window="W1", level="yellow", deadline=T0 + 9 * DAY)
    soon = await add_card(
        conn, "C2", window="W1", level="red", rule="decision.red", deadline=T0 + 2 * DAY
    )
    other = await add_card(
        conn,
        "C3",
        window="W2",
        department="市监局",
        level="blue",
        rule="decision.blue",
        deadline=T0 + 1 * DAY,
    )
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        assert _listed((await client.get("/cards")).text) == [other, soon, late]
        assert _listed((await client.get("/cards?level=red")).text) == [soon]
        assert _listed((await client.get("/cards?window=W1")).text) == [soon, late]
        assert _listed((await client.get("/cards?department=市监局")).text) == [other]
        assert _listed((await client.get("/cards?rule=decision.yellow")).text) == [late]
        assert _listed((await client.get("/cards?status=revoked")).text) == []
        bad = await client.get("/cards?level=purple")
        assert bad.status_code == 400 and "请求有误" in bad.text
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert _listed((await client.get("/cards")).text) == [soon, late]
    async with console_client(dsn) as client:
        await sign_in(client, "zhaod")  # 住建局's head: W1's cards, read only
        listing = await client.get("/cards")
        assert _listed(listing.text) == [soon, late] and "只读" in listing.text
        page = await client.get(f"/cards/{soon}")
        assert page.status_code == 200 and '<form method="post" action="/cards' not in page.text
        assert (await client.get(f"/cards/{other}")).status_code == 403


async def test_case_page_shows_its_clocks_and_cards(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn, "C1")
    await conn.execute(
        'INSERT INTO jiancha.cases (case_id, matter, department, "window", status, accepted_at,'
        " decision_deadline, promised_days, first_seen_at, event_count, last_event_id, updated_at)"
        " VALUES ('C1', '建筑工程施工许可', '住建局', 'W1', 'accepted', $1, $2, 5, $1, 2, 2, $1)",
        T0,
        T0 + 7 * DAY,
    )
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        page = await client.get("/cases/C1")
    assert page.status_code == 200
    for text in (
        "办件 C1",
        "已受理",
        "受理时间",
        "2024-03-04 10:00",
        "办结期限",
        "2024-03-11 10:00",
        f'href="/cards/{card}"',
    ):
        assert text in page.text, text


async def test_bad_ids_are_chinese_404_pages(dsn: str, conn: db.Connection) -> None:
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        for path in (
            "/cards/abc",
            "/cards/999999",
            "/cards/99999999999999999999999",
            "/cases/NOPE",
            "/no/such/page",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "找不到该页面或该记录" in response.text and "Traceback" not in response.text
        wrong_method = await client.post("/cards")
        assert wrong_method.status_code == 405 and "不支持该请求方式" in wrong_method.text
        english = await client.get("/cards/abc?lang=en")
        assert english.status_code == 404 and "No such page or record" in english.text


async def test_a_nul_character_is_a_chinese_400_page_and_changes_nothing(
    dsn: str, conn: db.Connection
) -> None:
    """PostgreSQL takes no NUL in text: in a path, a filter or a form field it was a 500."""
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        for path in ("/cases/%00", "/cards?department=%00", "/cards?x%00=1", "/cards/1%00"):
            response = await client.get(path)
            assert response.status_code == 400, path
            assert "请求有误" in response.text and "空字符" in response.text, path
        page = await client.get(f"/cards/{card}")
        ack = await client.post(
            f"/cards/{card}/ack", data={"reason": "已告知\x00申请人", "csrf": csrf_of(page.text)}
        )
        assert ack.status_code == 400 and "空字符" in ack.text
        status = await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card)
        assert status == "issued"
        assert (await client.get(f"/cards/{card}")).status_code == 200  # the session goes on
        # a NUL in the login form: the same page, not a trace
        form = await client.get("/login")
        fields = {"username": "wang\x00f", "password": "x", "csrf": csrf_of(form.text)}
        login = await client.post("/login", data=fields)
        assert login.status_code == 400 and "空字符" in login.text
        english = await client.get("/cases/%00?lang=en")
        assert english.status_code == 400 and "NUL character" in english.text


async def test_html_in_data_renders_as_text(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn, "<script>alert(1)</script>", matter="<b>事项</b>")
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        page = await client.get(f"/cards/{card}")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "<b>事项</b>" not in page.text


async def test_a_disabled_account_is_signed_out(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert (await client.get(f"/cards/{card}")).status_code == 200
        await conn.execute(
            "UPDATE jiancha.users SET disabled = true, updated_at = now() WHERE username = 'wangf'"
        )
        assert (await client.get(f"/cards/{card}")).status_code == 303


async def test_an_error_is_a_chinese_500_page_without_details(
    dsn: str, conn: db.Connection
) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        # the ledger's table gone from under the console: an unexpected database error
        await conn.execute("ALTER TABLE jiancha.card_events RENAME TO card_events_away")
        try:
            response = await client.get(f"/cards/{card}")
        finally:
            await conn.execute("ALTER TABLE jiancha.card_events_away RENAME TO card_events")
    assert response.status_code == 500
    assert "服务器内部错误" in response.text
    assert "card_events" not in response.text and "Traceback" not in response.text


async def test_the_throttle_forgets_after_its_window(dsn: str, conn: db.Connection) -> None:
    now = [T0]
    throttle = Throttle(limit=10, window=dt.timedelta(minutes=15), clock=lambda: now[0])
    for _ in range(10):
        await throttle.failed(conn, "WangF")
    assert await throttle.blocked(conn, "wangf") and not await throttle.blocked(conn, "lim")
    now[0] = T0 + dt.timedelta(seconds=899)
    assert await throttle.blocked(conn, "wangf")
    now[0] = T0 + dt.timedelta(seconds=900.5)  # the failures are older than 15 minutes
    assert not await throttle.blocked(conn, "wangf")
    await throttle.failed(conn, "wangf")  # and are deleted as a new one comes
    assert await conn.fetchval("SELECT count(*) FROM jiancha.login_failures") == 1
    await throttle.succeeded(conn, "wangf")
    assert await conn.fetchval("SELECT count(*) FROM jiancha.login_failures") == 0


async def test_password_hashes_are_not_for_the_dashboards_or_the_daemon(
    dsn: str, conn: db.Connection
) -> None:
    for role in ("jiancha_dashboard", "jiancha_daemon"):
        assert await conn.fetchval("SELECT to_regrole($1) IS NOT NULL", role), role
        can = "SELECT has_table_privilege($1, $2, 'SELECT')"
        assert await conn.fetchval(can, role, "jiancha.cards") is True, role
        assert await conn.fetchval(can, role, "jiancha.users") is False, role


async def test_a_session_from_before_a_password_change_is_refused(
    dsn: str, conn: db.Connection
) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert (await client.get(f"/cards/{card}")).status_code == 200
        await set_password(conn, "wangf", hash_password("a brand new password"))
        assert (await client.get(f"/cards/{card}")).status_code == 303


async def test_english_on_request_and_no_open_redirect(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        form = await client.get("/login?lang=en")
        assert "Sign in" in form.text and 'lang="en"' in form.text
        signed = await client.post(
            "/login",
            data={
                "username": "wangf",
                "password": PASSWORD,
                "csrf": csrf_of(form.text),
                "next": "//evil.example/cards",
            },
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/cards"
        page = await client.get(f"/cards/{card}")  # the session keeps the language
        for text in ("yellow card", "issued", "Acknowledge", "Appeal", "Left at issue"):
            assert text in page.text, text
        assert "签收说明" not in page.text
        chinese = await client.get(f"/cards/{card}?lang=zh")
        assert "签收说明" in chinese.text


async def test_a_revoked_session_cookie_is_refused(dsn: str, conn: db.Connection) -> None:
    """A copy of the cookie taken before signing out (or before an admin revokes) is dead."""
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert (await client.get(f"/cards/{card}")).status_code == 200
        copied = dict(client.cookies)
        page = await client.get(f"/cards/{card}")
        out = await client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
    async with console_client(dsn) as thief:
        thief.cookies.update(copied)
        assert (await thief.get(f"/cards/{card}")).status_code == 303
    assert (
        await conn.fetchval("SELECT revoked_by FROM jiancha.web_sessions WHERE username = 'wangf'")
        == "logout"
    )
    # an administrator ends someone's sessions: their next request is refused
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert (await client.get(f"/cards/{card}")).status_code == 200
        assert await revoke_sessions(conn, "wangf", T0, "admin1") == 1
        assert (await client.get(f"/cards/{card}")).status_code == 303
    # the table keeps only the token's hash: the cookie's token is not in it
    rows = await conn.fetch("SELECT token_sha256 FROM jiancha.web_sessions")
    tokens = [bytes(r[0]) for r in rows]
    assert all(len(t) == 32 for t in tokens) and len(tokens) == 2


async def _stored_report(conn: db.Connection, scope: str, version: int = 1) -> int:
    figures = {"accepted": 1200, "completed": 1100, "on_time_rate": 0.9731, "overdue_open": 3,
               "cards": {"red": 2, "yellow": 5, "blue": 9}, "satisfaction_rate": 0.99}  # fmt: skip
    content = {"centre": "县政务服务中心", "department": scope or None, "figures": figures}
    changed = [] if version == 1 else [{"key": "figures.completed", "was": 1099, "now": 1100}]
    rid = await conn.fetchval(
        "INSERT INTO jiancha.reports (kind, period, scope, version, generated_at, digest, "
        "content, changed, files) VALUES ('monthly', '2024-03', $1, $2, $3, $4, $5, $6, $7) "
        "RETURNING id", scope, version, T0, f"d{version}{scope}", content, changed,
        {"pdf": {"name": f"jiancha-monthly-2024-03{'-' + scope if scope else ''}.pdf",
                 "bytes": 9}},
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO jiancha.report_files (report_id, format, name, content) "
        "VALUES ($1, 'pdf', $2, $3)",
        rid, f"jiancha-monthly-2024-03{'-' + scope if scope else ''}.pdf", b"%PDF-1.7\n",
    )  # fmt: skip
    return int(rid)


async def test_a_bulletin_page_its_documents_and_who_sees_them(dsn: str, conn: db.Connection
                                                               ) -> None:  # fmt: skip
    await conn.execute("DELETE FROM jiancha.report_files")
    await conn.execute("UPDATE jiancha.outbox SET report_id = NULL")
    await conn.execute("DELETE FROM jiancha.reports")
    centre = await _stored_report(conn, "")
    revised = await _stored_report(conn, "", version=2)
    other = await _stored_report(conn, "税务局")
    mine = await _stored_report(conn, "住建局")
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        page = await client.get(f"/reports/{revised}")
        assert page.status_code == 200
        for text in ("县政务服务中心 2024年3月 政务服务电子监察月总结", "第 2 版", "修订版",
                     "本期 · 办结件", "1,099", "97.31%", f"/reports/{centre}\""):  # fmt: skip
            assert text in page.text, text
        pdf = await client.get(f"/reports/{centre}/pdf")
        assert pdf.status_code == 200 and pdf.content == b"%PDF-1.7\n"
        assert pdf.headers["content-type"] == "application/pdf"
        assert "jiancha-monthly-2024-03.pdf" in pdf.headers["content-disposition"]
        assert (await client.get(f"/reports/{centre}/xlsx")).status_code == 404
        assert (await client.get("/reports/99999")).status_code == 404
        assert (await client.get("/reports/x1")).status_code == 404
        # the list: each bulletin's latest version, a revision marked, the documents linked
        listed = await client.get("/reports")
        assert listed.status_code == 200 and 'href="/reports">监察通报</a>' in listed.text
        for rid in (revised, other, mine):
            assert f'href="/reports/{rid}"' in listed.text
        assert f'href="/reports/{centre}"' not in listed.text  # superseded by version 2
        assert "修订版（第 2 版）" in listed.text and f"/reports/{revised}/pdf" in listed.text
        assert "受理 1,200 · 按期办结率 97.31% · 红牌 2" in listed.text
        assert "尚无已存储的通报" in (await client.get("/reports?kind=daily")).text
        bad = await client.get("/reports?kind=quarterly")
        assert bad.status_code == 400 and "请求有误" in bad.text and "Traceback" not in bad.text
    async with console_client(dsn) as client:
        await sign_in(client, "zhaod")  # head of 住建局
        assert (await client.get(f"/reports/{mine}")).status_code == 200
        refused = await client.get(f"/reports/{other}")
        assert refused.status_code == 403 and "无权访问" in refused.text
        assert (await client.get(f"/reports/{centre}/pdf")).status_code == 403
        listed = await client.get("/reports")
        assert f'href="/reports/{mine}"' in listed.text
        assert f'href="/reports/{other}"' not in listed.text
        assert f'href="/reports/{revised}"' not in listed.text
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")  # a window head
        assert (await client.get(f"/reports/{centre}")).status_code == 403
        assert (await client.get("/reports")).status_code == 403
        assert 'href="/reports"' not in (await client.get("/cards")).text  # not in the menu
