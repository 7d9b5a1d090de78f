"""The cards, a card and its case, and the steps people take on a card.

Who sees what (docs/console.md): officers and admins every card; a
department head the cards of their departments, read only; a window head
the cards of their windows, which they may acknowledge or appeal. Officers
revoke and decide appeals. Every step goes through
`monitor.cards.lifecycle.act`, the one implementation the CLI uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from monitor.accounts import ROLE_NAMES
from monitor.cards.errors import BadInput, CardNotFound
from monitor.cards.lifecycle import Action, TransitionRefused, act, allowed_actions
from monitor.cards.query import show_card
from monitor.vocab import (
    CLOCK_TITLES,
    EVENT_NAMES,
    LEVEL_NAMES,
    OPEN_STATUSES,
    STATUS_NAMES,
    Lang,
)
from monitor.web._attach import check_length, read_upload, store
from monitor.web._core import (
    Refusal,
    check_csrf,
    console,
    lang_of,
    matter_names,
    page,
    render,
    signed_in,
)
from monitor.web._list import left_now
from monitor.web._scope import ACTING_ROLE, may, sees
from monitor.web._text import REVOKE_CATEGORIES, text

__all__ = ["act_on_card", "card_page", "healthz"]


def _card_id(request: Request) -> int:
    raw = request.path_params["card_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Refusal(404, "e404")
    return int(raw)


@page
async def card_page(request: Request) -> Response:
    user = await signed_in(request)
    card_id = _card_id(request)
    async with console(request).pool.connection() as conn:
        try:
            card, events = await show_card(conn, card_id)
        except CardNotFound:
            raise Refusal(404, "e404") from None
    if not sees(user, card["window"], card["department"]):
        raise Refusal(403, "e403")
    await matter_names(request)  # the heading: the matter's name, its code below
    # what a window head opening the alert's link asks first: how long is left now
    now_left, now_paused = (await left_now(request, card_id) if card["status"] in OPEN_STATUSES
                            else (None, False))  # fmt: skip
    actions = [a for a in allowed_actions(card["status"]) if may(user, a, card["window"])]
    detail: dict[str, Any] = card["detail"] or {}
    return render(request, "card.html", card=card, events=events, detail=detail,
                  now_left=now_left, now_paused=now_paused,
                  actions=actions, reply_late=card["reply_due"] is not None
                  and card["reply_due"] < console(request).clock(),
                  flash=request.session.pop("flash", ""), categories=REVOKE_CATEGORIES,
                  LEVEL_NAMES=LEVEL_NAMES, STATUS_NAMES=STATUS_NAMES, EVENT_NAMES=EVENT_NAMES,
                  CLOCK_TITLES=CLOCK_TITLES, ROLE_NAMES=ROLE_NAMES)  # fmt: skip


def _step(action: Action, form: Mapping[str, str], lang: Lang) -> tuple[str, dict[str, Any], Any]:
    """The reason, the step's extra detail and the decision's result, from the posted form."""
    reason = form.get("reason", "").strip()
    if not reason:
        raise Refusal(400, "e400", text(f"{action}_hint", lang))
    extra: dict[str, Any] = {}
    result = None
    if action == "revoke":
        category = form.get("category", "")
        if category not in REVOKE_CATEGORIES:
            raise Refusal(400, "e400", text("category", lang))
        extra["category"] = category
        reason = f"{REVOKE_CATEGORIES[category]['zh']}：{reason}"
    elif action == "decide":
        result = form.get("result")
        if result not in ("upheld", "revoked"):
            raise Refusal(400, "e400", text("decide", lang))
    return reason, extra, result


@page
async def act_on_card(request: Request) -> Response:
    user = await signed_in(request)
    check_length(request)
    form = await check_csrf(request)
    card_id = _card_id(request)
    action = request.path_params["action"]
    if action not in ACTING_ROLE:
        raise Refusal(404, "e404")
    lang = lang_of(request)
    async with console(request).pool.connection() as conn:
        row = await conn.fetchrow('SELECT "window", department FROM jiancha.cards WHERE id = $1',
                                  card_id)  # fmt: skip
        if row is None:
            raise Refusal(404, "e404")
        if not sees(user, row["window"], row["department"]) or not may(user, action, row["window"]):
            raise Refusal(403, "e403")
        reason, extra, result = _step(action, form, lang)
        upload = await read_upload(request) if action == "appeal" else None
        role = ACTING_ROLE[action]
        by = f"{user.display_name or user.username}（{ROLE_NAMES[role]['zh']}）"
        extra["username"] = user.username
        now = console(request).clock()
        try:
            async with conn.transaction():  # the attachment stands or falls with the step
                if upload is not None:
                    extra["attachment"] = await store(conn, card_id, upload, user.username, now)
                await act(conn, card_id, action, by, reason, now, result,
                          role=role, channel="web", extra=extra)  # fmt: skip
        except TransitionRefused as exc:
            raise Refusal(409, "e409", exc.message(lang)) from None
        except BadInput as exc:
            raise Refusal(400, "e400", exc.message(lang)) from None
    request.session["flash"] = "done"
    return RedirectResponse(f"/cards/{card_id}", status_code=303)


async def healthz(request: Request) -> Response:
    """200 when the console can reach its database (no sign-in: for monitors)."""
    try:
        async with console(request).pool.connection() as conn:
            await conn.fetchval("SELECT 1")
    except Exception:
        return PlainTextResponse("database unreachable\n", status_code=503)
    return PlainTextResponse("ok\n")
