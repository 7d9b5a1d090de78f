"""Replying to a supervision order (督办) and appealing with an attachment, on a real PostgreSQL.

Both go through `monitor.cards.lifecycle.act`: the reply is the acknowledgement
of a card under an order (it sets ``replied_at``, so the daemon does not
escalate it); the attachment is a row of ``jiancha.attachments`` written in
the appeal's transaction and named in its ledger step.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from monitor import db
from tests.web.webkit import DAY, T0, add_account, add_card, console_client, csrf_of, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # a photo, as far as the bytes go


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "wangf", ["window_head"], windows=["W1"], display_name="王芳")
        await add_account(c, "liuy", ["window_head"], windows=["W2"])
        await add_account(c, "lim", ["officer"], display_name="李明")
        yield c


async def test_reply_to_a_supervision_order(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn, "C9", level="red", rule="decision.red", reply_due=T0 + 5 * DAY)
    async with console_client(dsn, clock=lambda: T0 + DAY) as client:
        await sign_in(client, "wangf")
        page = await client.get(f"/cards/{card}")
        assert "回复督办" in page.text and "督办回复期限" in page.text
        assert "已超过回复期限" not in page.text
        done = await client.post(f"/cards/{card}/ack", data={
            "csrf": csrf_of(page.text), "reason": "已召集经办人核查，明日办结"})  # fmt: skip
        assert done.status_code == 303
        after = await client.get(f"/cards/{card}")
    row = await conn.fetchrow("SELECT status, replied_at FROM jiancha.cards WHERE id = $1", card)
    assert row["status"] == "acknowledged" and row["replied_at"] == T0 + DAY
    step = await conn.fetchrow(
        "SELECT actor, detail FROM jiancha.card_events"
        " WHERE card_id = $1 AND kind = 'acknowledged'", card)  # fmt: skip
    assert step["actor"] == "王芳（窗口负责人）" and step["detail"]["replied_to_order"] is True
    assert "已回复督办" in after.text and "2024-03-05 10:00" in after.text
    # past the deadline the page says so
    late = await add_card(conn, "C10", level="red", rule="decision.red", reply_due=T0 + DAY)
    async with console_client(dsn, clock=lambda: T0 + 2 * DAY) as client:
        await sign_in(client, "wangf")
        assert "已超过回复期限" in (await client.get(f"/cards/{late}")).text


async def _appeal(client: httpx.AsyncClient, card: int, files: dict | None,
                  reason: str = "纸质记录显示已按时受理") -> httpx.Response:  # fmt: skip
    page = await client.get(f"/cards/{card}")
    form = {"csrf": csrf_of(page.text), "reason": reason}
    return await client.post(f"/cards/{card}/appeal", data=form, files=files)


async def test_appeal_with_a_photo(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        page = await client.get(f"/cards/{card}")
        assert 'enctype="multipart/form-data"' in page.text and 'name="attachment"' in page.text
        done = await _appeal(client, card, {"attachment": ("受理登记簿.png", PNG, "image/png")})
        assert done.status_code == 303
        shown = await client.get(f"/cards/{card}")
        link = re.search(r'href="(/attachments/\d+)">受理登记簿.png</a>', shown.text)
        assert link is not None, shown.text
        photo = await client.get(link.group(1))
    assert photo.status_code == 200 and photo.content == PNG
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in photo.headers["content-security-policy"]
    step = await conn.fetchrow(
        "SELECT detail FROM jiancha.card_events WHERE card_id = $1 AND kind = 'appealed'", card
    )
    stored = await conn.fetchrow("SELECT id, sha256, size, uploaded_by FROM jiancha.attachments")
    assert step["detail"]["attachment"]["id"] == stored["id"]
    assert step["detail"]["attachment"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert bytes(stored["sha256"]) == hashlib.sha256(PNG).digest()
    assert stored["size"] == len(PNG) and stored["uploaded_by"] == "wangf"
    # another window's head cannot open it; an officer can
    async with console_client(dsn) as client:
        await sign_in(client, "liuy")
        assert (await client.get(link.group(1))).status_code == 403
    async with console_client(dsn) as client:
        await sign_in(client, "lim")
        assert (await client.get(link.group(1))).status_code == 200
    # evidence is append-only
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE jiancha.attachments SET name = 'x'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM jiancha.attachments")


async def test_an_appeal_without_a_file_still_works(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        done = await _appeal(client, card, {"attachment": ("", b"", "application/octet-stream")})
    assert done.status_code == 303
    assert await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card) == "appealed"
    assert await conn.fetchval("SELECT count(*) FROM jiancha.attachments") == 0


@pytest.mark.parametrize(
    ("name", "data", "status", "says"),
    [
        ("photo.png", b"<html><script>alert(1)</script></html>", 415, "JPEG"),  # not a picture
        ("big.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), 413, "最大 5 MB"),
    ],
)
async def test_a_bad_attachment_records_nothing(
    dsn: str, conn: db.Connection, name: str, data: bytes, status: int, says: str
) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        refused = await _appeal(client, card, {"attachment": (name, data, "image/png")})
    assert refused.status_code == status and says in refused.text
    assert await conn.fetchval("SELECT status FROM jiancha.cards WHERE id = $1", card) == "issued"
    assert await conn.fetchval("SELECT count(*) FROM jiancha.attachments") == 0
    kinds = await conn.fetch("SELECT kind FROM jiancha.card_events WHERE card_id = $1", card)
    assert [k["kind"] for k in kinds] == ["issued"]


async def test_a_refused_appeal_leaves_no_attachment(dsn: str, conn: db.Connection) -> None:
    card = await add_card(conn)
    async with console_client(dsn) as client:
        await sign_in(client, "wangf")
        assert (await _appeal(client, card, None)).status_code == 303
        again = await _appeal(client, card, {"attachment": ("p.png", PNG, "image/png")})
    assert again.status_code == 409  # appealed already
    assert await conn.fetchval("SELECT count(*) FROM jiancha.attachments") == 0
