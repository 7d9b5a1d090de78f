"""A concurrent writer workload against the source contract, with an exact ledger.

``run_workload`` starts N writer tasks (asyncpg through ``monitor.db``, each on
its own connection with ``application_name="writer"``). Each writer runs
transactions of 1–5 ``case_events`` rows taken from plausible case lifecycles
(submitted → accepted → suspended/resumed, extended → decided → completed →
delivered → rated → review ...), with the payloads docs/contract.md requires. Cases
live in one pool shared by all writers, so one case's transactions come from
different writers; a case is claimed by one transaction at a time for its
lifecycle, while "side" events (fees, steps) land on any live case from any
writer concurrently. Each transaction is held open for a random 0–20 ms before
it commits, so transactions commit out of id order; 5% roll back, and some roll
back a savepoint inside a transaction that commits.

The returned ``Ledger`` says exactly which rows committed (from ``INSERT ...
RETURNING``: id, tx, case, kind, time, payload, and the wall time the COMMIT
returned), which rolled back, and which are in doubt (connection lost during
COMMIT; ``Ledger.resolve`` settles them against the table). A test computes
the expected final state per case with ``monitor.state.reduce_case`` on the
committed events (``Ledger.expected_cases``).

Writers survive a lost server: a transaction cut off before COMMIT did not
commit; one cut off during COMMIT is in doubt; the writer reconnects and
carries on. Randomness is seeded per writer; which writer gets which case
depends on timing, so runs agree in shape, not byte for byte.

Also runnable, to put the writers in their own process (benchmarks)::

    python -m tests.torture --dsn DSN --events N [--writers 8] [--rate R] --out ledger.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from monitor import db
from monitor.db import DISCONNECTS
from monitor.source.contract import PAUSE_TYPES, Matter, SourceEvent, validate
from monitor.state.case import CaseState
from monitor.state.reduce import reduce_case

T0 = dt.datetime(2024, 1, 8, 1, 0, tzinfo=dt.UTC)
MATTER_CODES = ("M1", "M2", "M0")  # tests/sourcekit.MATTERS
WINDOWS = ("W1", "W2", "W3", "W4")
REGIONS = ("R1", "R2", "R3")
STEPS = ("受理", "审核", "决定")
ITEMS = ("身份证明", "营业执照副本", "场地证明", "章程", "委托书")
PAUSES = tuple(sorted(PAUSE_TYPES))

_INSERT = """
INSERT INTO case_events (case_id, kind, occurred_at, payload)
SELECT c, k, o, p::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
     WITH ORDINALITY AS u(c, k, o, p, n)
ORDER BY n
RETURNING id, tx::text AS tx, case_id, kind, occurred_at, payload
"""


@dataclass(frozen=True)
class WorkloadConfig:
    writers: int = 8
    events: int = 3000  # committed events in all; writers stop when this many committed
    rate: float | None = None  # events/s over all writers; None = as fast as they go
    max_hold: float = 0.020  # each transaction stays open uniform(0, max_hold) s before COMMIT
    rollback_rate: float = 0.05  # transactions that roll back instead of committing
    savepoint_rate: float = 0.03  # transactions that also roll back a savepoint with a row in it
    side_rate: float = 0.15  # events that are fees / steps on any live case (no claim)
    bad_rate: float = 0.0  # events that break the contract (dead letters)
    live_cases: int = 64  # cases in the shared pool at a time
    seed: int = 20240308
    reconnect_delay: float = 0.1
    # 0: business time from 2024 (every case long overdue when read, each event of it two
    # years late: the worst case for the cards). N: a centre's live traffic: a case's
    # submission is dated up to N days back, every later event the moment it is written.
    live_days: float = 0.0


@dataclass(frozen=True, slots=True)
class Written:
    """One row a writer inserted."""

    event_id: int
    tx: int
    case_id: str
    kind: str
    occurred_at: dt.datetime
    payload: dict[str, Any]
    writer: int
    committed_at: float | None = None  # time.time() when COMMIT returned

    def source_event(self) -> SourceEvent:
        return SourceEvent(
            self.event_id, self.tx, self.case_id, self.kind, self.occurred_at, self.payload
        )


@dataclass
class Ledger:
    """Exactly what the workload did to ``case_events``."""

    committed: list[Written] = field(default_factory=list)
    rolled_back: list[Written] = field(default_factory=list)  # rows the source never showed
    in_doubt: list[list[Written]] = field(default_factory=list)  # one list per transaction
    transactions: int = 0  # committed
    rollbacks: int = 0  # deliberate
    savepoint_rollbacks: int = 0
    lost_before_commit: int = 0  # transactions cut off by a lost connection
    reconnects: int = 0
    seconds: float = 0.0

    # --- what the tailer should end up with -----------------------------------

    def case_ids(self) -> set[str]:
        return {w.case_id for w in self.committed}

    def ghost_case_ids(self) -> set[str]:
        """Cases that appear only in rows that never committed."""
        return {w.case_id for w in self.rolled_back} - self.case_ids()

    def split(
        self, matters: Mapping[str, Matter], now: dt.datetime
    ) -> tuple[list[SourceEvent], list[SourceEvent]]:
        """Committed events: (valid, breaking the contract)."""
        valid: list[SourceEvent] = []
        bad: list[SourceEvent] = []
        for w in self.committed:
            ev = w.source_event()
            (valid if validate(ev, matters, now) is None else bad).append(ev)
        return valid, bad

    def expected_cases(
        self, matters: Mapping[str, Matter], now: dt.datetime
    ) -> dict[str, CaseState]:
        """``reduce_case`` of each case's valid committed events."""
        valid, _ = self.split(matters, now)
        per_case: dict[str, list[SourceEvent]] = {}
        for ev in valid:
            per_case.setdefault(ev.case_id, []).append(ev)
        return {cid: reduce_case(cid, evs, matters) for cid, evs in per_case.items()}

    def last_position(self) -> tuple[int, int]:
        """The largest committed (tx, id): where a tailer's cursor ends."""
        return max((w.tx, w.event_id) for w in self.committed)

    def absorb(self, other: Ledger) -> None:
        """Add another run's ledger (same source table) to this one."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            setattr(self, name, mine + value)
        self.committed.sort(key=lambda w: w.event_id)

    async def resolve(self, conn: db.Connection) -> None:
        """Settle in-doubt transactions by looking for their rows in ``case_events``."""
        if not self.in_doubt:
            return
        ids = [w.event_id for tx in self.in_doubt for w in tx]
        found = {
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM case_events WHERE id = ANY($1::bigint[])", ids
            )
        }
        for tx in self.in_doubt:
            present = {w.event_id in found for w in tx}
            assert len(present) == 1, "a transaction committed in part"
            if present.pop():
                self.committed.extend(tx)
                self.transactions += 1
            else:
                self.rolled_back.extend(tx)
        self.in_doubt = []
        self.committed.sort(key=lambda w: w.event_id)

    # --- (de)serialisation, for writers in another process ----------------------

    def to_json(self) -> dict[str, Any]:
        def rows(ws: Iterable[Written]) -> list[dict[str, Any]]:
            return [{**asdict(w), "occurred_at": w.occurred_at.isoformat()} for w in ws]

        out = {k: v for k, v in asdict(self).items() if not isinstance(v, list)}
        out["committed"] = rows(self.committed)
        out["rolled_back"] = rows(self.rolled_back)
        out["in_doubt"] = [rows(tx) for tx in self.in_doubt]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ledger:
        def rows(items: Iterable[Mapping[str, Any]]) -> list[Written]:
            return [
                Written(**{**r, "occurred_at": dt.datetime.fromisoformat(r["occurred_at"])})
                for r in items
            ]

        scalars = {k: v for k, v in data.items() if not isinstance(v, list)}
        return cls(
            committed=rows(data["committed"]),
            rolled_back=rows(data["rolled_back"]),
            in_doubt=[rows(tx) for tx in data["in_doubt"]],
            **scalars,
        )


# --- case lifecycles --------------------------------------------------------------


@dataclass
class _Case:
    """Where one case's lifecycle stands (copied per transaction, kept on commit)."""

    case_id: str
    t: dt.datetime
    stage: str = "new"
    matter: str = "M1"
    paused: bool = False
    pledged: bool = False
    approved: bool = True

    @property
    def done(self) -> bool:
        return self.stage == "done"


def _hours(rng: random.Random, lo: float, hi: float) -> dt.timedelta:
    return dt.timedelta(seconds=round(rng.uniform(lo, hi) * 3600))


def _next_event(case: _Case, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """The case's next lifecycle event; advances ``case`` (a private copy)."""
    case.t += _hours(rng, 0.1, 60.0)
    r = rng.random()
    st = case.stage
    if st == "new":
        case.matter = rng.choice(MATTER_CODES)
        case.stage = "submitted"
        return "submitted", {
            "matter": case.matter,
            "window": rng.choice(WINDOWS),
            "region": rng.choice(REGIONS),
            "channel": rng.choice(("window", "online")),
        }
    if st == "submitted":
        if r < 0.12:
            case.stage = "supplement"
            return "supplement_requested", {"items": rng.sample(ITEMS, rng.randint(1, 3))}
        if r < 0.16:
            case.stage = "done"
            return "refused", {"reason": "材料不符合法定形式"}
        if r < 0.19:
            case.stage = "done"
            return "withdrawn", {}
        case.stage = "accepted"
        payload: dict[str, Any] = {}
        if rng.random() < 0.2:
            payload["promised_days"] = rng.randint(1, 10)
        if rng.random() < 0.1:
            payload["pledged_days"] = rng.randint(1, 5)
            case.pledged = True
        return "accepted", payload
    if st == "supplement":
        if r < 0.1:
            case.stage = "done"
            return "withdrawn", {}
        case.stage = "submitted"
        return "supplement_received", {}
    if st == "accepted":
        if case.paused:
            case.paused = r < 0.05  # a second suspension before resuming is ignored
            if case.paused:
                return "suspended", {"type": rng.choice(PAUSES), "notified_days": 3}
            return "resumed", {}
        if r < 0.14:
            case.paused = True
            return "suspended", {"type": rng.choice(PAUSES), "notified_days": rng.randint(1, 15)}
        if r < 0.22:
            return "extended", {"days": rng.randint(1, 10), "approver": "分管局长"}
        if case.pledged and r < 0.30:
            case.pledged = False
            return "supplement_received", {}
        if r < 0.32:
            case.stage = "done"
            return "terminated", {"reason": "申请人死亡"}
        case.approved = rng.random() < 0.85
        case.stage = "decided"
        return "decided", {"result": "approve" if case.approved else "deny"}
    if st == "decided":
        case.stage = "completed"
        return "completed", {}
    if st == "completed":
        if not case.approved:
            case.stage = "done" if r < 0.5 else "delivered"
            return "rated", {"level": rng.randint(1, 5)}
        case.stage = "delivered"
        return "delivered", {}
    if st == "delivered":
        level = rng.randint(1, 5)
        case.stage = "review" if level <= 2 else "done"
        payload = {"level": level}
        if rng.random() < 0.3:
            payload["comment"] = "窗口人员态度很好" if level > 2 else "等了太久"
        return "rated", payload
    if st == "review":
        case.stage = "visited"
        return "review_visited", {}
    if st == "visited":
        case.stage = "done"
        return "review_rectified", {}
    raise AssertionError(f"no event after stage {st!r}")


def _side_event(case: _Case, rng: random.Random) -> tuple[str, dt.datetime, dict[str, Any]]:
    """An event that needs no claim: it changes nothing the lifecycle depends on."""
    at = case.t + _hours(rng, -30.0, 30.0)
    r = rng.random()
    if r < 0.4:
        return "fee_charged", at, {"amount": rng.randint(1, 400) / 2}  # exact in binary
    step = rng.choice(STEPS)
    return ("step_started" if r < 0.7 else "step_finished"), at, {"step": step}


def _bad_event(case: _Case, rng: random.Random) -> tuple[str, dt.datetime, dict[str, Any]]:
    at = case.t + _hours(rng, 0.0, 5.0)
    r = rng.random()
    if r < 0.4:
        return "teleported", at, {}
    if r < 0.7:
        return "suspended", at, {"type": "nap", "notified_days": 1}
    return "extended", at, {"days": "three", "approver": "x"}


# --- the writers ------------------------------------------------------------------


class _Rollback(Exception):
    pass


@dataclass
class _Plan:
    """One transaction: its rows and the case copies it advances."""

    rows: list[tuple[str, str, dt.datetime, dict[str, Any]]]
    cases: dict[str, _Case]  # claimed case copies, committed back on success
    split_at: int
    hold: float
    rollback: bool
    savepoint_row: tuple[str, str, dt.datetime, dict[str, Any]] | None


class Pacer:
    """One writer's schedule: ``interval`` seconds per committed event.

    The rate asked is of events that reach the log, as a centre's is: a
    transaction that did not commit gives its slot back (its events go back to
    the budget), so rollbacks are load on top of the rate, not a share of it.
    A writer more than a second behind its schedule drops the arrears.
    """

    def __init__(self, interval: float, rng: random.Random, now: float) -> None:
        self.interval = interval
        self.next = now + rng.uniform(0, interval)
        self._slot = self.next

    def take(self, k: int, now: float) -> float:
        """The instant a transaction of ``k`` events may start."""
        start = self.next
        self._slot = start
        self.next = max(start + k * self.interval, now - 1.0)
        return start

    def give_back(self) -> None:
        """The last transaction did not commit: the next starts in its slot."""
        self.next = min(self.next, self._slot)


class Workload:
    """Shared state of the writers: the case pool, the event budget, the ledger."""

    def __init__(self, dsn: str, config: WorkloadConfig) -> None:
        self.dsn = dsn
        self.config = config
        self.ledger = Ledger()
        self.cases: dict[str, _Case] = {}  # live (committed at least once, not done)
        self.claimed: set[str] = set()
        self.budget = config.events  # events not yet committed nor in flight
        self.next_case = 0

    def _reserve(self, want: int) -> int:
        got = min(want, self.budget)
        self.budget -= got
        return got

    def _new_case(self, rng: random.Random) -> _Case:
        self.next_case += 1
        cid = f"Q{self.config.seed % 10_000:04d}-{self.next_case:06d}"
        if self.config.live_days:
            ago = dt.timedelta(seconds=rng.uniform(0, self.config.live_days * 86400))
            return _Case(cid, self._now() - ago)
        start = T0 + dt.timedelta(seconds=rng.randrange(0, 60 * 86400))
        return _Case(cid, start)

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def _dated(self, at: dt.datetime, kind: str = "") -> dt.datetime:
        """``live_days``: a submission as drawn (never ahead), any other event now."""
        if not self.config.live_days:
            return at
        now = self._now()
        return min(at, now) if kind == "submitted" else now

    def _plan(self, rng: random.Random, k: int) -> _Plan:
        cfg = self.config
        rows: list[tuple[str, str, dt.datetime, dict[str, Any]]] = []
        mine: dict[str, _Case] = {}
        new: set[str] = set()
        for _ in range(k):
            r = rng.random()
            live = [c for c in self.cases.values() if not c.done]
            if live and r < cfg.bad_rate:
                case = rng.choice(live)
                kind, at, payload = _bad_event(case, rng)
                rows.append((case.case_id, kind, self._dated(at), payload))
                continue
            if live and r < cfg.bad_rate + cfg.side_rate:
                case = rng.choice(live)
                kind, at, payload = _side_event(case, rng)
                rows.append((case.case_id, kind, self._dated(at), payload))
                continue
            open_ = [c for c in mine.values() if not c.done]
            if open_ and rng.random() < 0.5:
                case = rng.choice(open_)
            else:
                free = [c for c in live if c.case_id not in self.claimed]
                if free and len(self.cases) + len(new) >= cfg.live_cases:
                    case = copy.copy(rng.choice(free))
                else:
                    case = self._new_case(rng)
                    new.add(case.case_id)
                self.claimed.add(case.case_id)
                mine[case.case_id] = case
            kind, payload = _next_event(case, rng)
            case.t = self._dated(case.t, kind)
            rows.append((case.case_id, kind, case.t, payload))
        savepoint_row = None
        if self.cases and rng.random() < cfg.savepoint_rate:
            case = rng.choice(list(self.cases.values()))
            kind, at, payload = _side_event(case, rng)
            savepoint_row = (case.case_id, kind, self._dated(at), {**payload, "savepoint": True})
        return _Plan(
            rows=rows,
            cases=mine,
            split_at=rng.randint(1, len(rows)),
            hold=rng.uniform(0.0, cfg.max_hold),
            rollback=rng.random() < cfg.rollback_rate,
            savepoint_row=savepoint_row,
        )

    def _settle(self, plan: _Plan, committed: bool) -> None:
        for cid, case in plan.cases.items():
            self.claimed.discard(cid)
            if not committed:
                continue  # the copy is dropped; a new case that never committed is abandoned
            if case.done:
                self.cases.pop(cid, None)
            else:
                self.cases[cid] = case
        if not committed:
            self.budget += len(plan.rows)

    async def _connect(self) -> db.Connection:
        while True:
            try:
                return await db.connect(self.dsn, application_name="writer", timeout=5.0)
            except DISCONNECTS:
                self.ledger.reconnects += 1
                await trio.sleep(self.config.reconnect_delay)

    async def _insert(
        self,
        conn: db.Connection,
        rows: Sequence[tuple[str, str, dt.datetime, dict[str, Any]]],
        writer: int,
    ) -> list[Written]:
        got = await conn.fetch(
            _INSERT,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [json.dumps(r[3], ensure_ascii=False) for r in rows],
        )
        return [
            Written(
                int(g["id"]),
                int(g["tx"]),
                g["case_id"],
                g["kind"],
                g["occurred_at"],
                g["payload"],
                writer,
            )
            for g in got
        ]

    async def _transaction(self, conn: db.Connection, plan: _Plan, writer: int) -> str:
        """Run one planned transaction: 'committed', 'rolled_back', 'lost' or 'in_doubt'."""
        inserted: list[Written] = []
        body_done = False
        try:
            async with conn.transaction():
                inserted += await self._insert(conn, plan.rows[: plan.split_at], writer)
                await trio.sleep(plan.hold / 2)
                if plan.savepoint_row is not None:
                    try:
                        async with conn.transaction():  # a savepoint
                            sp = await self._insert(conn, [plan.savepoint_row], writer)
                            raise _Rollback
                    except _Rollback:
                        self.ledger.rolled_back.extend(sp)
                        self.ledger.savepoint_rollbacks += 1
                if plan.split_at < len(plan.rows):
                    inserted += await self._insert(conn, plan.rows[plan.split_at :], writer)
                await trio.sleep(plan.hold / 2)
                body_done = True
                if plan.rollback:
                    raise _Rollback
        except _Rollback:
            self.ledger.rolled_back.extend(inserted)
            self.ledger.rollbacks += 1
            return "rolled_back"
        except DISCONNECTS:
            if body_done:  # the COMMIT was sent: it may or may not have happened
                self.ledger.in_doubt.append(inserted)
                return "in_doubt"
            self.ledger.rolled_back.extend(inserted)
            self.ledger.lost_before_commit += 1
            return "lost"
        now = time.time()
        self.ledger.committed.extend(dataclasses.replace(w, committed_at=now) for w in inserted)
        self.ledger.transactions += 1
        return "committed"

    async def _writer(self, writer: int) -> None:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:writer:{writer}")
        pace = None if cfg.rate is None else Pacer(cfg.writers / cfg.rate, rng, trio.current_time())
        conn = await self._connect()
        try:
            while True:
                k = self._reserve(rng.randint(1, 5))
                if k == 0:
                    return
                if pace is not None:
                    await trio.sleep_until(pace.take(k, trio.current_time()))
                if conn.is_closed():
                    conn = await self._connect()
                plan = self._plan(rng, k)
                outcome = await self._transaction(conn, plan, writer)
                self._settle(plan, outcome == "committed")
                if pace is not None and outcome != "committed":
                    pace.give_back()
                if outcome in ("lost", "in_doubt"):
                    conn.raw.terminate()
                    await trio.sleep(cfg.reconnect_delay)
                    conn = await self._connect()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await conn.close()
                except DISCONNECTS:
                    conn.raw.terminate()

    async def run(self) -> Ledger:
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for w in range(self.config.writers):
                nursery.start_soon(self._writer, w)
        self.ledger.seconds = time.perf_counter() - started
        self.ledger.committed.sort(key=lambda w: w.event_id)
        return self.ledger


async def run_workload(dsn: str, config: WorkloadConfig | None = None) -> Ledger:
    """Run the writers to completion (inside ``monitor.db.open_loop()``)."""
    return await Workload(dsn, config or WorkloadConfig()).run()


# --- comparing jiancha.cases with the expectation --------------------------------------

CASE_FIELDS = (
    "matter", "department", "window", "region", "channel", "status", "submitted_at",
    "accepted_at", "refused_at", "decided_at", "decision", "completed_at", "delivered_at",
    "closed_at", "immediate", "promised_days", "statutory_days", "pledged_days",
    "extension_days", "extensions", "supplement_requests", "fees", "rating", "paused_since",
    "pauses", "clocks", "event_count", "last_event_id",
)  # fmt: skip


def expected_row(state: CaseState) -> dict[str, Any]:
    """The ``jiancha.cases`` columns (``CASE_FIELDS``) that ``state`` should produce."""
    row = {f: getattr(state, f) for f in CASE_FIELDS if f not in ("pauses", "clocks")}
    row["status"] = str(state.status)
    row["fees"] = float(state.fees)
    row["pauses"] = [p.as_json() for p in state.pauses]
    row["clocks"] = json.loads(json.dumps(state.clocks.as_json()))
    return row


def stored_row(record: Any) -> dict[str, Any]:
    """The ``CASE_FIELDS`` of a ``jiancha.cases`` record, comparable with ``expected_row``."""
    row = {f: record[f] for f in CASE_FIELDS}
    row["fees"] = float(row["fees"])
    return row


def case_mismatches(
    stored: Mapping[str, Any], expected: Mapping[str, CaseState], limit: int = 10
) -> list[str]:
    """Differences between stored records (by case id) and expected states, for a message."""
    out: list[str] = []
    for cid in sorted(set(stored) | set(expected)):
        if cid not in stored:
            out.append(f"{cid}: missing from jiancha.cases")
        elif cid not in expected:
            out.append(f"{cid}: in jiancha.cases but no committed event")
        else:
            got, want = stored_row(stored[cid]), expected_row(expected[cid])
            for f in CASE_FIELDS:
                if got[f] != want[f] and not (
                    isinstance(want[f], float) and math.isclose(got[f], want[f])
                ):
                    out.append(f"{cid}.{f}: stored {got[f]!r} != expected {want[f]!r}")
        if len(out) >= limit:
            break
    return out


# --- command line ------------------------------------------------------------------------


async def _main(args: argparse.Namespace) -> None:
    cfg = WorkloadConfig(
        writers=args.writers,
        events=args.events,
        rate=args.rate,
        max_hold=args.max_hold,
        rollback_rate=args.rollback_rate,
        seed=args.seed,
        live_days=args.live_days,
    )
    async with db.open_loop():
        ledger = await run_workload(args.dsn, cfg)
    Path(args.out).write_text(json.dumps(ledger.to_json(), ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--rate", type=float, default=None, help="events/s over all writers")
    p.add_argument("--max-hold", type=float, default=0.020)
    p.add_argument("--rollback-rate", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=WorkloadConfig.seed)
    p.add_argument("--live-days", type=float, default=0.0, metavar="N",
                   help="live traffic: submissions dated up to N days back, every other event "
                   "when written (default 0: business time from 2024, every case long overdue "
                   "and each event two years late)")  # fmt: skip
    p.add_argument("--out", required=True, help="write the ledger here as JSON")
    trio.run(_main, p.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
