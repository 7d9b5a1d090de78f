"""A person's step on a card: the pure transition, and one step per transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
import trio

from monitor import db
from monitor.cards.lifecycle import (
    ACTIONS,
    RESULTS,
    Action,
    Result,
    TransitionRefused,
    act,
    allowed_actions,
    transition,
)
from monitor.cards.query import CardFilter, list_cards, show_card
from monitor.vocab import CARD_STATUSES
from tests.cli.test_cards import _INSERT_CARD, DAY, T0

# Every allowed (status, action) outside decide, and where it leads.
EXPECTED: dict[tuple[str, str], str] = {
    ("issued", "ack"): "acknowledged",
    ("issued", "appeal"): "appealed",
    ("issued", "revoke"): "revoked",
    ("acknowledged", "appeal"): "appealed",
    ("acknowledged", "revoke"): "revoked",
    ("appealed", "revoke"): "revoked",
}


def _expected(status: str, action: str, result: str | None, acked: bool) -> str | None:
    if action == "decide":
        if status != "appealed":
            return None
        if result == "revoked":
            return "revoked"
        return "acknowledged" if acked else "issued"
    return EXPECTED.get((status, action))


async def _add_card_async(conn: db.Connection, reply_due: dt.datetime | None) -> int:
    card_id: int = await conn.fetchval(
        _INSERT_CARD,
        "C1",
        "decision",
        "decision.red",
        "red",
        T0,
        T0 + 5 * DAY,
        None,
        "住建局",
        "W1",
        "{}",
        "issued",
        reply_due,
    )
    return card_id


_WAITING_ON_LOCKS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.mark.parametrize("status", CARD_STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_transition_every_status_and_action(status: str, action: Action) -> None:
    results: Sequence[Result | None] = RESULTS if action == "decide" else (None,)
    for result in results:
        for acked in (False, True):
            want = _expected(status, action, result, acked)
            if want is None:
                with pytest.raises(TransitionRefused) as caught:
                    transition(status, action, result, acked)
                assert caught.value.status == status and caught.value.action == action
                assert action not in caught.value.allowed
            else:
                assert transition(status, action, result, acked) == want
                assert action in allowed_actions(status)


def test_final_statuses_allow_nothing_and_say_so() -> None:
    for status in ("closed", "revoked"):
        assert allowed_actions(status) == ()
        with pytest.raises(TransitionRefused) as caught:
            transition(status, "ack")
        assert "终态" in caught.value.message("zh")
        assert "final" in caught.value.message("en")
    refusal = TransitionRefused("acknowledged", "ack").for_card(7)
    assert refusal.message("zh") == (
        "牌 7 当前状态为“已签收”，不能签收说明（ack）；此状态下只能：申诉（appeal）、撤销（revoke）"
    )
    assert refusal.message("en").startswith("card 7 is acknowledged; cannot acknowledge")


def test_transition_rejects_calls_no_user_can_make() -> None:
    with pytest.raises(ValueError, match="result"):
        transition("appealed", "decide")
    with pytest.raises(ValueError, match="only decide"):
        transition("issued", "revoke", "revoked")
    with pytest.raises(ValueError, match="status"):
        transition("lost", "ack")
    with pytest.raises(ValueError, match="action"):
        transition("issued", "close")  # type: ignore[arg-type]


async def test_act_uses_the_given_time(dsn: str) -> None:
    now = dt.datetime(2024, 3, 6, 1, 30, tzinfo=dt.UTC)
    async with await db.connect(dsn) as conn:
        card_id = await _add_card_async(conn, T0 + 7 * DAY)
        done = await act(conn, card_id, "ack", " 王芳 ", " 已办结 ", now)
        assert done.previous_status == "issued"
        assert done.card["replied_at"] == done.card["updated_at"] == now
        assert done.events[0]["at"] == now
        assert (done.events[0]["actor"], done.events[0]["reason"]) == ("王芳", "已办结")
        card, events = await show_card(conn, card_id)
        assert card["status"] == "acknowledged" and len(events) == 1
        with pytest.raises(ValueError, match="aware"):
            await act(conn, card_id, "revoke", "李明", "x", dt.datetime(2024, 3, 6))
        found = await list_cards(conn, CardFilter(status="acknowledged"))
        assert [c["id"] for c in found] == [card_id]


async def test_two_officers_revoking_at_once_revoke_once(dsn: str) -> None:
    now = dt.datetime(2024, 3, 6, 1, 30, tzinfo=dt.UTC)
    outcomes: list[str] = []
    async with (
        await db.connect(dsn) as holder,
        await db.connect(dsn) as first,
        await db.connect(dsn) as second,
    ):
        card_id = await _add_card_async(holder, None)

        async def revoke(conn: db.Connection, who: str) -> None:
            try:
                await act(conn, card_id, "revoke", who, "重复撤销", now)
                outcomes.append("revoked")
            except TransitionRefused as exc:
                assert exc.card_id == card_id and exc.status == "revoked"
                outcomes.append("refused")

        # Hold the card's row lock until both officers wait on it, so that they
        # really do act at the same moment; committing lets them through.
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery, holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM jiancha.cards WHERE id = $1 FOR UPDATE", card_id
                )
                nursery.start_soon(revoke, first, "李明")
                nursery.start_soon(revoke, second, "赵强")
                while await holder.fetchval(_WAITING_ON_LOCKS) < 2:
                    await trio.sleep(0.01)
        rows = await holder.fetch(
            "SELECT kind, actor FROM jiancha.card_events WHERE card_id = $1 AND kind = 'revoked'",
            card_id,
        )
    assert sorted(outcomes) == ["refused", "revoked"]
    assert len(rows) == 1
