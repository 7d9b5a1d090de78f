"""Cards end to end on a real PostgreSQL: ingest, evaluate, ledger, exactly once."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from monitor import db
from monitor.calendar import load_calendar
from monitor.evaluator import Evaluator
from monitor.rules.load import load_rules
from monitor.source.contract import START
from tests.cardkit import ACCEPTED_FEB8, SUB, Driver, events_of, ledger, z
from tests.sourcekit import write


async def test_cards_come_due_at_their_instants_and_only_once(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        now = z("2024-02-08T03:00:00")
        await d.start(now)
        await d.ingest(now)
        assert await ledger(conn) == []
        await d.ev.tick(conn, d.matters, now)  # the tick after a batch, as the tailer's
        # the scheduler wakes exactly at the blue instant (Feb 19 12:00 Beijing)
        assert d.ev.wake_at() == z("2024-02-19T04:00:00").timestamp()
        await d.run_until(z("2024-02-22T00:00:00"), now)
        got = [(r[2], r[3], r[4]) for r in await ledger(conn)]
        assert got == [
            ("decision_time", "blue", z("2024-02-19T04:00:00")),
            ("decision_time", "red", z("2024-02-21T16:00:00")),
            ("decision_time", "yellow", z("2024-02-20T16:00:00")),
        ]
        red = next(r for r in await ledger(conn) if r[3] == "red")
        # supervision order issued at Feb 22 00:00 Beijing: 5 wd not counting that day ->
        # Feb 23, 26, 27, 28, 29 -> Feb 29 24:00
        assert red[6] == z("2024-02-29T16:00:00")
        before = await events_of(conn)
        assert [e[3] for e in before] == ["issued"] * 3
        # ticking again, re-ingesting, restarting: nothing new
        await d.run_until(z("2024-02-22T00:00:00"), z("2024-02-22T00:00:00"))
        d2 = Driver(conn, Evaluator(rules, cal))
        await d2.start(z("2024-02-22T00:00:00"))
        await conn.execute("DELETE FROM jiancha.cursor")  # replay every event
        d2.cursor = START
        await d2.ingest(z("2024-02-22T00:00:00"))
        assert await events_of(conn) == before


async def test_completion_closes_cards_and_a_closed_case_never_escalates(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-22T00:00:00"), z("2024-02-08T03:00:00"))
        await write(conn, [("C1", "completed", z("2024-02-23T02:00:00"), {})])
        await d.ingest(z("2024-02-23T03:00:00"))
        # past the supervision reply deadline, but the case is closed: no escalation
        await d.run_until(z("2024-03-10T00:00:00"), z("2024-02-23T03:00:00"))
        rows = await ledger(conn)
        assert {r[5] for r in rows} == {"closed"} and all(r[7] is None for r in rows)
        kinds = [(e[2], e[3], e[5]) for e in await events_of(conn)]
        assert ("red", "closed", "period_finished") in kinds
        assert not [k for k in kinds if k[1] == "escalated"]
        # the statutory clock stopped too: no red card on it after completion
        assert not [r for r in rows if r[1] == "statutory"]
        # how it ended, for the on-time rate: after the Feb 21 24:00 deadline
        done = await conn.fetchrow("SELECT outcome, decision_deadline FROM jiancha.cases")
        assert tuple(done) == ("late", z("2024-02-21T16:00:00"))


async def test_missed_supervision_reply_escalates_once(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-29T15:59:59"), z("2024-02-08T03:00:00"))
        assert [r[7] for r in await ledger(conn) if r[3] == "red"] == [None]
        assert d.ev.wake_at() == z("2024-02-29T16:00:00").timestamp()  # the reply deadline
        await d.run_until(z("2024-03-05T00:00:00"), z("2024-02-29T15:59:59"))
        red = next(r for r in await ledger(conn) if r[3] == "red")
        assert red[7] == z("2024-02-29T16:00:00")
        kinds = [e[3] for e in await events_of(conn) if e[2] == "red"]
        assert kinds.count("escalated") == 1


async def test_acknowledged_supervision_order_does_not_escalate(dsn, cal, rules):
    from monitor.cards.lifecycle import act

    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-22T00:00:00"), z("2024-02-08T03:00:00"))
        red_id = await conn.fetchval("SELECT id FROM jiancha.cards WHERE level = 'red'")
        await act(conn, red_id, "ack", "张科长", "材料待专家论证，已督促", z("2024-02-23T02:00:00"))
        await d.run_until(z("2024-03-05T00:00:00"), z("2024-02-23T02:00:00"))
        assert (
            await conn.fetchval("SELECT escalated_at FROM jiancha.cards WHERE id = $1", red_id)
            is None
        )


async def test_late_pause_revokes_a_card_whose_basis_is_gone(dsn, cal, rules):
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-08T03:00:00"))
        await d.ingest(z("2024-02-08T03:00:00"))
        await d.run_until(z("2024-02-21T06:00:00"), z("2024-02-08T03:00:00"))
        assert {r[3] for r in await ledger(conn)} == {"blue", "yellow"}
        await write(
            conn,
            [
                (
                    "C1",
                    "suspended",
                    z("2024-02-09T04:00:00"),
                    {"type": "inspection", "notified_days": 3},
                ),
                ("C1", "resumed", z("2024-02-19T04:00:00"), {}),
            ],
        )
        before = {r[3]: r[4] for r in await ledger(conn) if r[2] == "decision_time"}
        await d.ingest(z("2024-02-21T06:00:00"))
        # both crossings came after the pause began: both cards recorded a wrong instant
        got = sorted((r[3], r[4], r[5]) for r in await ledger(conn) if r[2] == "decision_time")
        assert got == [("blue", before["blue"], "revoked"), ("yellow", before["yellow"], "revoked")]
        # each threshold, crossed again where the pause moved it, is a new card (the blue at
        # Feb 21 12:00 Beijing, the yellow at Feb 22 24:00), and the red at the new deadline:
        # a revocation is not forever
        await d.run_until(z("2024-02-27T00:00:00"), z("2024-02-21T06:00:00"))
        got = sorted((r[3], r[4], r[5]) for r in await ledger(conn) if r[2] == "decision_time")
        assert got == [
            ("blue", before["blue"], "revoked"),
            ("blue", z("2024-02-21T04:00:00"), "issued"),
            ("red", z("2024-02-23T16:00:00"), "issued"),
            ("yellow", before["yellow"], "revoked"),
            ("yellow", z("2024-02-22T16:00:00"), "issued"),
        ]


async def test_calendar_change_moves_open_deadlines_not_past_cards(dsn, rules, tmp_path: Path):
    """A centre closes on Feb 20 (a local holiday added after cards were issued)."""
    national = load_calendar("cn")
    (tmp_path / "closure.toml").write_text(
        'description = "闭馆"\n[[holidays]]\nname = "闭馆"\ndates = ["2024-02-20"]\n',
        encoding="utf-8",
    )
    closed = load_calendar(str(tmp_path / "closure.toml"))
    async with await db.connect(dsn) as conn:
        await write(
            conn,
            [
                *ACCEPTED_FEB8,
                ("C2", "submitted", z("2024-02-19T01:00:00"), SUB),
                ("C2", "accepted", z("2024-02-19T02:00:00"), {}),
            ],
        )
        d = Driver(conn, Evaluator(rules, national))
        await d.start(z("2024-02-19T03:00:00"))
        await d.ingest(z("2024-02-19T03:00:00"))
        await d.run_until(z("2024-02-19T05:00:00"), z("2024-02-19T03:00:00"))
        before = await ledger(conn)
        assert [(r[0], r[3]) for r in before] == [("C1", "blue")]
        # restart with the new calendar: C1's deadline moves from Feb 21 to Feb 22 24:00
        d2 = Driver(conn, Evaluator(rules, closed))
        await d2.start(z("2024-02-19T05:00:00"))
        await d2.run_until(z("2024-02-23T00:00:00"), z("2024-02-19T05:00:00"))
        after = await ledger(conn)
        assert after[0] == before[0]  # the blue card's time is history
        red = [r for r in after if r[0] == "C1" and r[3] == "red"]
        assert red[0][4] == z("2024-02-22T16:00:00")
        fps = await conn.fetch("SELECT level, calendar FROM jiancha.cards WHERE case_id = 'C1'")
        assert {r["calendar"] for r in fps} == {national.fingerprint, closed.fingerprint}


async def test_rule_edit_while_paused_keeps_the_pause(dsn, cal, rules, tmp_path: Path):
    strict = tmp_path / "strict.toml"
    strict.write_text(
        'extends = "cards"\n[[override]]\ndepartments = ["住建局"]\nrule = "decision_time"\n'
        'blue = "1wd"\n',
        encoding="utf-8",
    )
    async with await db.connect(dsn) as conn:
        await write(
            conn,
            [
                *ACCEPTED_FEB8,
                (
                    "C1",
                    "suspended",
                    z("2024-02-09T04:00:00"),
                    {"type": "inspection", "notified_days": 20},
                ),
            ],
        )
        # paused: nothing comes due before the pause's allowance (20 wd notified) ends,
        # Mar 14 24:00, unless it resumes first
        allowance_end = z("2024-03-14T16:00:00")
        d = Driver(conn, Evaluator(rules, cal))
        await d.start(z("2024-02-19T00:00:00"))
        await d.ingest(z("2024-02-19T00:00:00"))
        await d.ev.tick(conn, d.matters, z("2024-02-19T00:00:00"))
        assert (d.ev.wake_at() or 0) >= allowance_end.timestamp()  # the pause card
        d2 = Driver(conn, Evaluator(load_rules(str(strict)), cal))
        await d2.start(z("2024-02-26T00:00:00"))
        await d2.ev.tick(conn, d2.matters, z("2024-02-26T00:00:00"))
        # still paused at 0.5 wd used: the stricter 1 wd blue is not due before the allowance
        clock_cards = [r for r in await ledger(conn) if r[2] == "decision_time"]
        assert clock_cards == [] and (d2.ev.wake_at() or 0) >= allowance_end.timestamp()
        await write(conn, [("C1", "resumed", z("2024-02-26T02:00:00"), {})])
        await d2.ingest(z("2024-02-26T02:00:00"))
        await d2.run_until(z("2024-02-28T00:00:00"), z("2024-02-26T02:00:00"))
        # 0.5 before the pause + Feb 26 from 10:00: 1 wd used at Feb 26 22:00 Beijing
        assert [(r[2], r[3], r[4]) for r in await ledger(conn) if r[2] == "decision_time"] == [
            ("decision_time", "blue", z("2024-02-26T14:00:00"))
        ]


def _history(rng: random.Random, n_cases: int) -> list[tuple]:
    kinds = []
    base = z("2024-03-04T01:00:00")
    for i in range(n_cases):
        cid = f"P{i:03d}"
        t = base + dt.timedelta(hours=rng.randrange(0, 200))
        matter = rng.choice(["M1", "M2", "M0"])
        kinds.append((cid, "submitted", t, {**SUB, "matter": matter}))
        if rng.random() < 0.8:
            t += dt.timedelta(hours=rng.randrange(1, 60))
            kinds.append((cid, "accepted", t, {}))
            if rng.random() < 0.3:
                t += dt.timedelta(hours=rng.randrange(1, 40))
                kinds.append((cid, "suspended", t, {"type": "survey", "notified_days": 3}))
                if rng.random() < 0.7:
                    t += dt.timedelta(hours=rng.randrange(1, 80))
                    kinds.append((cid, "resumed", t, {}))
            if rng.random() < 0.5:
                t += dt.timedelta(hours=rng.randrange(1, 300))
                kinds.append((cid, "completed", t, {}))
        if rng.random() < 0.1:
            kinds.append((cid, "fee_charged", t, {"amount": 10}))
        if rng.random() < 0.15:
            t += dt.timedelta(hours=rng.randrange(1, 100))
            kinds.append((cid, "withdrawn", t, {}))
    rng.shuffle(kinds)  # late and out of order
    return kinds


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_restarts_and_replays_give_the_identical_ledger(pg_dsn, cal, rules, seed):
    """The same history, once straight through and once in random batches with restarts."""
    from tests.sourcekit import prepare, reset

    rng = random.Random(seed)
    history = _history(rng, 40)
    end = z("2024-04-15T00:00:00")
    results = []
    async with db.open_loop():
        await prepare(pg_dsn)
        for chopped in (False, True):
            await reset(pg_dsn)
            async with await db.connect(pg_dsn) as conn:
                # What happened in each 3-day window becomes visible at its end, shuffled,
                # with some events held back one more window (reported late).
                pending = sorted(history, key=lambda e: e[2])
                late = random.Random(seed)  # the same visibility schedule in both runs
                now = z("2024-03-04T00:00:00")
                d = Driver(conn, Evaluator(rules, cal))
                await d.start(now)
                while now < end:
                    nxt = now + dt.timedelta(days=3)
                    now = await d.run_until(nxt, now)  # crossings before the window's news
                    due = [e for e in pending if e[2] < nxt]
                    chunk = [e for e in due if late.random() > 0.15 or nxt >= end]
                    pending = [e for e in pending if e not in chunk]
                    late.shuffle(chunk)
                    if chunk:
                        await write(conn, chunk)
                    if chopped and rng.random() < 0.5:  # a restart between batches
                        d = Driver(conn, Evaluator(rules, cal))
                        await d.start(now)
                    while await d.ingest(now, rng.randrange(1, 15) if chopped else 10_000):
                        pass
                await d.run_until(end, now)
                dead = await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters")
                assert dead == 0
                results.append((await ledger(conn), await events_of(conn)))
    straight, chopped_run = results
    withdrawn = {e[0]: e[2] for e in history if e[1] == "withdrawn"}
    assert straight[0] and withdrawn
    # no card on a closed case: nothing comes due after a withdrawal (a card issued before
    # the withdrawal was known is revoked or closed)
    for row in straight[0]:
        if row[0] in withdrawn and row[4] > withdrawn[row[0]]:
            assert row[5] in ("revoked", "closed"), row
    assert set(straight[0]) ^ set(chopped_run[0]) == set()
    assert set(straight[1]) ^ set(chopped_run[1]) == set()
    assert straight == chopped_run
    # levels never fall within one rule of one case, and nothing on a finished period is
    # left open
    live = [r for r in straight[0] if r[5] != "revoked"]
    for case_rule in {(r[0], r[2]) for r in live}:
        rows = sorted((r[4], r[3]) for r in live if (r[0], r[2]) == case_rule)
        order = [("blue", "yellow", "red").index(level) for _, level in rows]
        assert order == sorted(order)


async def test_a_caught_up_supervision_order_gets_its_full_reply_period(dsn, cal, rules):
    """Red came due while the daemon was away: the order's 5 wd count from when it is written."""
    async with await db.connect(dsn) as conn:
        await write(conn, ACCEPTED_FEB8)
        d = Driver(conn, Evaluator(rules, cal))
        back = z("2024-03-04T02:00:00")  # Mon Mar 4 10:00 Beijing, long after Feb 21
        await d.start(back)
        await d.ingest(back)
        await d.run_until(back, back)
        red = next(r for r in await ledger(conn) if r[2] == "decision_time")
        assert red[3] == "red" and red[4] == z("2024-02-21T16:00:00")
        # written Mar 4 (not counted): Mar 5, 6, 7, 8, 11 -> Mar 11 24:00; not escalated at once
        assert red[6] == z("2024-03-11T16:00:00") and red[7] is None


def test_a_set_is_decided_with_the_collector_paused_and_it_runs_again_after(
    cal, rules, monkeypatch
):
    """Deciding makes no cycles; collections in the middle of a set found nothing (a tick
    ~10% less CPU without them). Each call pauses anew and restores, as a decorator."""
    import gc

    from monitor.engine.warm import warm_cases
    from monitor.evaluator import shell

    seen: list[bool] = []
    real = shell.decide_apart

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(shell, "decide_apart", spy)
    ev = Evaluator(rules, cal)
    now = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    views = [v for v, _, _ in warm_cases(now)]
    assert gc.isenabled()
    for _ in range(2):
        ev._decide(views, {}, {}, int(now.timestamp()), True, True)
        assert gc.isenabled()
    assert seen == [False, False]
