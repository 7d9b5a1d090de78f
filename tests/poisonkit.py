"""Poison for the source: rows that once stopped the daemon, and a flood of them among good ones.

Each poison is a ``case_events`` row (case id, kind, payload as the JSON text the
source stores, which may hold numbers no Python float takes) and the dead-letter
reason it must earn. A `Flood` mixes them into a backlog of good cases; `check`
says whether jiancha took exactly the good ones and dead-lettered every bad one
with its reason. Used by tests/test_poison.py and tests/bench/bench_poison.py.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from monitor import db
from monitor.evaluator import Evaluator
from monitor.source.catalogue import load_matters
from monitor.source.contract import event_from_row
from monitor.state.reduce import reduce_case
from monitor.worker import Worker, WorkerConfig
from tests.sourcekit import SUBMITTED, T0, last_position
from tests.torture import case_mismatches

NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)  # the worker's clock
BIG = 4096  # bytes of randomness: 8 KB of hex, past a btree key even compressed
INF_TEXT = "9" * 320 + ".5"  # a jsonb number Python reads as float inf
TRAP = "TRAP"  # case ids a test trigger on jiancha.cases refuses (`trap`)

Row = tuple[str, str, dt.datetime | str, str]  # case_id, kind, occurred_at, payload JSON


def _j(n: int, extra: dict[str, Any] | None = None, raw: str = "") -> str:
    """A payload's text: ``n`` (the row's number, an extra key jiancha ignores), then
    ``extra``, then ``raw`` key-value text spliced in as it is."""
    body = json.dumps({"n": n, **(extra or {})}, ensure_ascii=False)
    return body[:-1] + (", " + raw if raw else "") + "}"


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# name -> (kind, payload text given n, case id given n or None for a case of its own, reason)
Poison = tuple[str, Callable[[int], str], Callable[[int], str] | None, str]
POISONS: dict[str, Poison] = {
    "promised_days_int32": ("accepted", lambda n: _j(n, {"promised_days": 2**31}), None,
                            "value_out_of_range"),
    "pledged_days": ("accepted", lambda n: _j(n, {"pledged_days": 99_999}), None,
                     "value_out_of_range"),
    "extended_days_int32": ("extended", lambda n: _j(n, {"days": 2**31, "approver": "局长"}),
                            None, "value_out_of_range"),
    "notified_days": ("suspended", lambda n: _j(n, {"type": "survey", "notified_days": 10**12}),
                      None, "value_out_of_range"),
    "amount_1e309": ("fee_charged", lambda n: _j(n, raw='"amount": 1e309'), None,
                     "value_out_of_range"),
    "amount_inf": ("fee_charged", lambda n: _j(n, raw=f'"amount": {INF_TEXT}'), None,
                   "value_out_of_range"),
    "amount_5000_digits": ("fee_charged", lambda n: _j(n, raw='"amount": 1e5000'), None,
                           "value_out_of_range"),
    "ignored_key_inf": ("completed", lambda n: _j(n, raw=f'"x": [{INF_TEXT}]'), None,
                        "value_out_of_range"),
    "case_id_8kb": ("submitted", lambda n: _j(n, SUBMITTED),
                    lambda n: secrets.token_hex(BIG), "text_too_long"),
    "window_8kb": ("submitted", lambda n: _j(n, {**SUBMITTED, "window": secrets.token_hex(BIG)}),
                   None, "text_too_long"),
    "matter_8kb": ("submitted", lambda n: _j(n, {**SUBMITTED, "matter": "M" * 8192}), None,
                   "text_too_long"),
    "step_8kb": ("step_started", lambda n: _j(n, {"step": "审" * 8192}), None, "text_too_long"),
    "approver_8kb": ("extended", lambda n: _j(n, {"days": 1, "approver": "x" * 8192}), None,
                     "text_too_long"),
    "reason_5000": ("refused", lambda n: _j(n, {"reason": "理由" * 2500}), None,
                    "text_too_long"),
    "comment_5000": ("rated", lambda n: _j(n, {"level": 5, "comment": "好" * 5000}), None,
                     "text_too_long"),
    "item_5000": ("supplement_requested", lambda n: _j(n, {"items": ["材料" * 2500]}), None,
                  "text_too_long"),
    "items_1000": ("supplement_requested", lambda n: _j(n, {"items": ["身份证"] * 1000}), None,
                   "list_too_long"),
    "payload_70kb": ("completed", lambda n: _j(n, {"note": "x" * 70_000}), None,
                     "payload_too_large"),
    "nested_3000": ("completed", lambda n: _j(n, raw=f'"x": {_deep(3000)}'), None,
                    "payload_too_large"),
    "unknown_kind": ("teleported", lambda n: _j(n), None, "unknown_kind"),
    "unknown_matter": ("submitted", lambda n: _j(n, {**SUBMITTED, "matter": "NOPE"}), None,
                       "unknown_matter"),
    "bad_type": ("extended", lambda n: _j(n, {"days": "5", "approver": "x"}), None, "bad_type"),
    "bad_value": ("rated", lambda n: _j(n, {"level": 7}), None, "bad_value"),
}  # fmt: skip


# Event times Python's datetime cannot hold: they once stopped the reader itself.
WHEN = {
    "occurred_infinity": "infinity",
    "occurred_minus_infinity": "-infinity",
    "occurred_year_12000": "12000-01-01 00:00+00",
    "occurred_bc": "4000-01-01 00:00+00 BC",
}
for _name in WHEN:
    POISONS[_name] = ("completed", _j, None, "value_out_of_range")


def poison_row(name: str, n: int, case_id: str) -> Row:
    kind, payload, own_case, _reason = POISONS[name]
    return (own_case(n) if own_case else case_id, kind, WHEN.get(name, T0), payload(n))


async def insert(conn: db.Connection, rows: list[Row], chunk: int = 2000) -> None:
    """Rows into ``case_events``, ``chunk`` per transaction, payloads as their text."""
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        await conn.execute(
            "INSERT INTO case_events (case_id, kind, occurred_at, payload) "
            "SELECT c, k, o::timestamptz, p::jsonb FROM unnest($1::text[], $2::text[], "
            "$3::text[], $4::text[]) AS u(c, k, o, p)",
            [r[0] for r in part], [r[1] for r in part],
            [r[2] if isinstance(r[2], str) else r[2].isoformat() for r in part],
            [r[3] for r in part],
        )  # fmt: skip


def _good_case(cid: str, n: int, i: int) -> list[Row]:
    """Four events of a case that completes in time, in business order."""
    t = T0 + dt.timedelta(minutes=i % 600)
    sub = {**SUBMITTED, "matter": ("M1", "M2", "M0")[i % 3], "window": f"W{i % 7}"}
    return [
        (cid, "submitted", t, _j(n, sub)),
        (cid, "accepted", t + dt.timedelta(hours=1), _j(n + 1)),
        (cid, "fee_charged", t + dt.timedelta(hours=2), _j(n + 2, {"amount": 12.5})),
        (cid, "completed", t + dt.timedelta(hours=3), _j(n + 3)),
    ]


@dataclass
class Flood:
    """``good`` events in cases of four, ``bad`` poisons among them (every kind in turn,
    every other one a late event of a good case), ``traps`` valid events a trigger refuses."""

    good: int
    bad: int
    traps: int = 0
    seed: int = 20240308
    rows: list[Row] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # row number -> reason it must earn
    good_rows: set[int] = field(default_factory=set)

    def build(self) -> Flood:
        rng = random.Random(self.seed)
        numbered: list[tuple[int, Row]] = []
        n = 0
        cases = [f"G{i}" for i in range(self.good // 4)]
        for i, cid in enumerate(cases):
            for row in _good_case(cid, n, i):
                self.good_rows.add(n)
                numbered.append((n, row))
                n += 1
        names = sorted(POISONS)
        for i in range(self.bad):
            name = names[i % len(names)]
            target = cases[rng.randrange(len(cases))] if i % 2 else f"P{i}"
            numbered.append((n, poison_row(name, n, target)))
            self.reasons[n] = POISONS[name][3]
            n += 1
        for i in range(self.traps):
            numbered.append((n, (f"{TRAP}{i}", "submitted", T0, _j(n, SUBMITTED))))
            self.reasons[n] = "apply_failed"
            n += 1
        rng.shuffle(numbered)  # poisons land anywhere in any batch
        self.rows = [row for _n, row in numbered]
        return self


async def trap(conn: db.Connection, errcode: str = "P0001") -> None:
    """A trigger on jiancha.cases that refuses every case whose id starts with TRAP: an
    event valid by the contract that the database refuses (test databases only)."""
    await conn.execute(f"""
        CREATE OR REPLACE FUNCTION jiancha.test_trap() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.case_id LIKE '{TRAP}%' THEN
                RAISE EXCEPTION 'test trap refuses case %', NEW.case_id USING ERRCODE = '{errcode}';
            END IF;
            RETURN NEW;
        END $$;
        DROP TRIGGER IF EXISTS test_trap ON jiancha.cases;
        CREATE TRIGGER test_trap BEFORE INSERT OR UPDATE ON jiancha.cases
            FOR EACH ROW EXECUTE FUNCTION jiancha.test_trap();
    """)  # fmt: skip


async def untrap(conn: db.Connection) -> None:
    await conn.execute(
        "DROP TRIGGER IF EXISTS test_trap ON jiancha.cases; "
        "DROP FUNCTION IF EXISTS jiancha.test_trap()"
    )


async def check(conn: db.Connection, flood: Flood, cursor: Any) -> dict[str, Any]:
    """Problems (empty when jiancha took exactly the good rows and dead-lettered every bad
    one with its reason, the cases equal to reducing the good rows) and the counts."""
    ids = {r["n"]: r["id"] for r in await conn.fetch(
        "SELECT id, (payload->>'n')::int AS n FROM case_events")}  # fmt: skip
    good_ids = {ids[n] for n in flood.good_rows}
    want_dead = {ids[n]: reason for n, reason in flood.reasons.items()}
    stored = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM jiancha.events")}
    dead = {r["event_id"]: r["reason"] for r in await conn.fetch(
        "SELECT event_id, reason FROM jiancha.dead_letters")}  # fmt: skip
    problems = []
    if stored != good_ids:
        problems.append(f"events: {len(good_ids - stored)} good missing, "
                        f"{len(stored - good_ids)} stored that are not good")  # fmt: skip
    wrong = {i: (dead.get(i), r) for i, r in want_dead.items() if dead.get(i) != r}
    if wrong or set(dead) != set(want_dead):
        extra = len(set(dead) - set(want_dead))
        problems.append(f"dead letters: {len(wrong)} wrong or missing, e.g. "
                        f"{list(wrong.items())[:5]}; {extra} extra")  # fmt: skip
    matters = await load_matters(conn)
    history: dict[str, list[Any]] = {}
    for row in await conn.fetch(
        "SELECT id AS event_id, tx::text AS tx, case_id, kind, occurred_at, payload "
        "FROM case_events WHERE id = ANY($1::bigint[])",
        sorted(good_ids),
    ):
        history.setdefault(row["case_id"], []).append(event_from_row(row))
    expected = {cid: reduce_case(cid, evs, matters) for cid, evs in history.items()}
    cases = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM jiancha.cases")}
    problems += case_mismatches(cases, expected)
    end = await last_position(conn)
    if cursor != end:
        problems.append(f"cursor {cursor} is not at the end {end}")
    return {
        "problems": problems,
        "good": len(good_ids),
        "bad": len(want_dead),
        "stored": len(stored),
        "dead": len(dead),
        "cases": len(cases),
        "reasons": dict(sorted(Counter(dead.values()).items())),
    }


# --- the worker under a flood ------------------------------------------------------------


async def drain(w: Worker, conn: db.Connection, timeout: float = 50.0) -> None:
    end = await last_position(conn)
    with trio.fail_after(timeout):
        while w.stats.cursor < end:
            w.wake()
            await trio.sleep(0.05)


async def run_flood(
    dsn: str,
    flood: Flood,
    evaluator: Evaluator | None,
    batch_size: int = 5000,
    timeout: float = 50.0,
) -> dict[str, Any]:
    """Load the flood as a backlog, run the worker (cards on) until it has taken it all."""
    async with await db.connect(dsn) as conn:
        await trap(conn)
        try:
            await insert(conn, flood.rows)
            config = WorkerConfig(source_dsn=dsn, dsn=dsn, batch_size=batch_size,
                                  poll_interval=0.05, probe_interval=0.5)  # fmt: skip
            w = Worker(config, clock=lambda: NOW, evaluator=evaluator)
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                await nursery.start(w.run)  # a crash would end this block with its error
                await drain(w, conn, timeout)
                seconds = time.perf_counter() - started
                nursery.cancel_scope.cancel()
            figures = await check(conn, flood, w.stats.cursor)
        finally:
            await untrap(conn)
    figures.update(seconds=seconds, batches=w.stats.batches, isolated=w.stats.isolated,
                   reconnects=w.stats.reconnects, worker_dead=w.stats.dead_letters)  # fmt: skip
    return figures


def report(f: dict[str, Any], total: int) -> str:
    return (f"poison flood: {f['good']} good + {f['bad']} bad events in {f['seconds']:.1f} s "
            f"({total / f['seconds']:,.0f} events/s, {f['batches']} batches); stored "
            f"{f['stored']} events of {f['cases']} cases, {f['dead']} dead letters "
            f"({f['isolated']} isolated by bisection), {f['reconnects']} reconnects; "
            f"reasons {f['reasons']}")  # fmt: skip
