"""`jiancha run` through what production does to it (issue 7): real process, real PostgreSQL.

- The database stops for 30 s under a running daemon, with cases written before and
  after: the process stays up, ``jiancha_database_up`` says 0 then 1, the logs say
  what happened, and afterwards every committed event, card and notification is there
  exactly once.
- The daemon is killed with SIGKILL at 20 random instants of a busy run and restarted
  each time: the ledger and the outbox end up equal to an uninterrupted run's, and the
  webhook receiver saw every notification, repeated (if at all) only under its
  Idempotency-Key with the same body (at-least-once, ``monitor.outbox``).
- The morning digest falls due while the database does not answer: the digester
  waits it out instead of ending the daemon.

The workload is whole case histories from 2024, each committed in one transaction
(with other cases, from concurrent writers, out of id order; some transactions roll
back). Every threshold has long passed and a case is never seen half-written, so the
cards it is due do not depend on when the daemon looks: ``expected_cards`` computes
them with the pure engine, and both runs must produce exactly those.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import signal
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import trio

from monitor import db
from monitor.calendar import load_calendar
from monitor.engine.cards import ExistingCard
from monitor.engine.decide import decide_case
from monitor.outbox.digest import Digester
from monitor.rules.load import load_rules
from monitor.source.catalogue import load_matters
from monitor.source.contract import Matter, SourceEvent
from monitor.state import store as state_store
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from monitor.vocab import level_name
from tests import httpkit, sourcekit
from tests.httpkit import Receiver, Reply
from tests.outbox.test_digest import CFG as DIGEST_CONFIG
from tests.outbox.test_digest import _two_cases_at_risk
from tests.sourcekit import Daemon, last_position, prepare, write
from tests.torture import case_mismatches

own_server = sourcekit.own_server
reference_dsn = sourcekit.reference_dsn
receiver = httpkit.receiver

SEED = 20240707
CHANNEL = "hook"
OUTAGE = 30.0  # seconds the database is down
KILLS = 20
T0 = dt.datetime(2024, 1, 8, 2, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Beijing
# A matter with a step limit and a pause maximum, beside tests/sourcekit.MATTERS.
STEP_MATTER = ("MS", "消防验收", "消防救援支队", 20, 10, {"审核": 2}, {"survey": 3})

Row = tuple[str, str, dt.datetime, dict[str, Any]]


# --- the workload: whole case histories ------------------------------------------------


@dataclass(frozen=True)
class Case:
    case_id: str
    profile: str
    rows: tuple[Row, ...]
    rollback: bool = False  # written, then rolled back: must leave no trace


def _history(profile: str, window: str) -> list[tuple[str, float, dict[str, Any]]]:
    """(kind, hours after submission, payload) of one case of this profile."""
    d = 24.0

    def submitted(matter: str) -> tuple[str, float, dict[str, Any]]:
        return ("submitted", 0.0, {"matter": matter, "window": window, "region": "R1",
                                   "channel": "window"})  # fmt: skip

    done = [("decided", 3 * d, {"result": "approve"}), ("completed", 3 * d + 1, {}),
            ("delivered", 4 * d, {})]  # fmt: skip
    if profile == "on_time":  # no card
        return [submitted("M2"), ("accepted", 2, {}), *done, ("rated", 4 * d + 2, {"level": 5})]
    if profile == "denied":  # no card
        return [submitted("M2"), ("accepted", 2, {}), ("decided", 2 * d, {"result": "deny"}),
                ("completed", 2 * d + 1, {}), ("rated", 2 * d + 2, {"level": 4})]  # fmt: skip
    if profile == "withdrawn":  # no card
        return [submitted("M1"), ("withdrawn", 3, {})]
    if profile == "late":  # red at completion, closed at once
        return [submitted("M1"), ("accepted", 1, {}), ("decided", 14 * d, {"result": "approve"}),
                ("completed", 14 * d + 1, {}), ("delivered", 15 * d, {})]  # fmt: skip
    if profile == "open":  # red on the running decision and statutory clocks
        return [submitted("M1"), ("accepted", 1, {})]
    if profile == "immediate_late":  # yellow: an immediate case not finished the same day
        return [submitted("M0"), ("accepted", 1, {}), ("decided", 50, {"result": "approve"}),
                ("completed", 51, {}), ("delivered", 52, {})]  # fmt: skip
    if profile == "step_late":  # blue: a step over its limit in a case on time
        return [submitted("MS"), ("accepted", 1, {}), ("step_started", 2, {"step": "审核"}),
                ("step_finished", 5 * d, {"step": "审核"}),
                ("decided", 6 * d, {"result": "approve"}), ("completed", 6 * d + 1, {}),
                ("delivered", 7 * d, {})]  # fmt: skip
    if profile == "pause_overlong":  # yellow: a survey longer than the matter allows
        return [submitted("MS"), ("accepted", 1, {}),
                ("suspended", d, {"type": "survey", "notified_days": 3}), ("resumed", 12 * d, {}),
                ("decided", 13 * d, {"result": "approve"}), ("completed", 13 * d + 1, {}),
                ("delivered", 14 * d, {})]  # fmt: skip
    if profile == "supplement_twice":  # yellow: a second request for missing materials
        return [submitted("M2"), ("supplement_requested", 1, {"items": ["身份证明"]}),
                ("supplement_received", 2, {}), ("supplement_requested", 3, {"items": ["章程"]}),
                ("supplement_received", 4, {}), ("accepted", 5, {}), *done]  # fmt: skip
    if profile == "refused_silently":  # yellow: a refusal without a reason
        return [submitted("M2"), ("refused", 2, {})]
    if profile == "fee":  # red: a fee on a free matter
        return [submitted("M1"), ("accepted", 1, {}), ("fee_charged", 2, {"amount": 50}),
                ("decided", 2 * d, {"result": "approve"}), ("completed", 2 * d + 1, {}),
                ("delivered", 3 * d, {})]  # fmt: skip
    if profile == "bad_rating_open":  # yellow and red on the running review clocks
        return [submitted("M2"), ("accepted", 2, {}), *done, ("rated", 4 * d + 2, {"level": 1})]
    if profile == "bad_rating_done":  # no card: visited and rectified in time
        return [submitted("M2"), ("accepted", 2, {}), *done, ("rated", 4 * d + 2, {"level": 1}),
                ("review_visited", 4 * d + 5, {}), ("review_rectified", 6 * d, {})]  # fmt: skip
    raise AssertionError(profile)


PROFILES = ("on_time", "denied", "withdrawn", "late", "open", "immediate_late", "step_late",
            "pause_overlong", "supplement_twice", "refused_silently", "fee", "bad_rating_open",
            "bad_rating_done")  # fmt: skip


def plan(n: int, seed: int, prefix: str) -> list[Case]:
    """``n`` cases, every profile about as often, starting on random days of 2024."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        profile = PROFILES[i % len(PROFILES)] if i < len(PROFILES) else rng.choice(PROFILES)
        start = T0 + dt.timedelta(days=rng.randrange(0, 250), minutes=rng.randrange(0, 240))
        case_id = f"{prefix}-{i:05d}"
        rows = tuple(
            (case_id, kind, start + dt.timedelta(hours=h), payload)
            for kind, h, payload in _history(profile, rng.choice(("W1", "W2", "W3")))
        )
        out.append(Case(case_id, profile, rows, rollback=rng.random() < 0.05))
    return out


class _RolledBack(Exception):
    pass


async def write_cases(
    dsn: str, cases: Sequence[Case], *, seed: int, writers: int = 4, seconds: float = 0.0
) -> None:
    """Commit the cases from concurrent writers, 1-3 whole cases a transaction.

    Each transaction inserts its rows in two statements with a pause between and
    before COMMIT, so transactions commit out of id order. A case marked
    ``rollback`` is written alone and rolled back. ``seconds`` spreads the writing.
    """
    queue = deque(cases)
    per_case = seconds * writers / max(len(cases), 1)

    async def writer(w: int) -> None:
        rng = random.Random(f"{seed}:{w}")
        async with await db.connect(dsn, application_name="writer") as conn:
            next_at = trio.current_time()
            while queue:
                take = [queue.popleft()]
                want = rng.randint(1, 3)
                while not take[0].rollback and queue and not queue[0].rollback and len(take) < want:
                    take.append(queue.popleft())
                rows = [r for c in take for r in c.rows]
                split = rng.randint(1, len(rows))
                try:
                    async with conn.transaction():
                        await write(conn, rows[:split])
                        await trio.sleep(rng.uniform(0, 0.01))
                        if rows[split:]:
                            await write(conn, rows[split:])
                        await trio.sleep(rng.uniform(0, 0.01))
                        if take[0].rollback:
                            raise _RolledBack
                except _RolledBack:
                    pass
                next_at += per_case * len(take)
                await trio.sleep_until(next_at)

    async with trio.open_nursery() as nursery:
        for w in range(writers):
            nursery.start_soon(writer, w)


async def prepare_source(dsn: str) -> None:
    """The source contract, schema jiancha and the matters (tests/sourcekit.MATTERS + MS)."""
    await prepare(dsn)
    async with await db.connect(dsn) as conn:
        await conn.execute(
            "INSERT INTO matters (code, name, department, statutory_days, promised_days, "
            "step_days, pause_max_days) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (code) DO NOTHING",
            *STEP_MATTER,
        )


# --- what the daemon should end up with ---------------------------------------------------

CardRow = tuple[str, str, str, str, str, int, str]
"""case, clock, rule, subject, level, issued_at, status."""


def expected_cards(
    events: Sequence[SourceEvent], matters: Mapping[str, Matter], now: dt.datetime
) -> set[CardRow]:
    """The ledger the events imply at ``now``, decided as the daemon does: first in the
    batch (finished periods, procedural rules), then at the scheduler's tick (running
    periods), by the pure engine."""
    rules, cal = load_rules(), load_calendar()
    n = int(now.timestamp())
    per_case: dict[str, list[SourceEvent]] = {}
    for e in events:
        per_case.setdefault(e.case_id, []).append(e)
    out: set[CardRow] = set()
    for case_id, evs in per_case.items():
        view = CaseView.from_state(reduce_case(case_id, evs, matters))
        matter = matters.get(view.matter or "")
        cards: dict[int, ExistingCard] = {}
        for running in (False, True):
            decision = decide_case(view, matter, rules, cal, n, list(cards.values()),
                                   running=running)  # fmt: skip
            for new in decision.issue:
                card = ExistingCard(len(cards) + 1, case_id, new.clock, new.rule, new.level,
                                    "closed" if new.close else "issued", new.issued_at,
                                    new.subject)  # fmt: skip
                cards[card.card_id] = card
            for closing in decision.close:
                cards[closing.card_id] = replace(cards[closing.card_id], status="closed")
            for closing in decision.revoke:
                cards[closing.card_id] = replace(cards[closing.card_id], status="revoked")
        out |= {(case_id, c.clock, c.rule, c.subject, level_name(c.level), c.issued_at,
                 c.status) for c in cards.values()}  # fmt: skip
    return out


async def ledger_cards(conn: db.Connection) -> set[CardRow]:
    rows = await conn.fetch(
        "SELECT case_id, clock, rule, subject, level, issued_at, status FROM jiancha.cards"
    )
    return {(r["case_id"], r["clock"], r["rule"], r["subject"], r["level"],
             int(r["issued_at"].timestamp()), r["status"]) for r in rows}  # fmt: skip


async def ledger_view(conn: db.Connection) -> dict[str, Any]:
    """The ledger and the outbox without ids and recording times (which differ by run).

    A card is named by (case, clock, rule, subject, level, issued_at); an idempotency key
    ``kind:<card id>:channel`` by the card's name in place of its id.
    """
    cards = await conn.fetch(
        "SELECT id, case_id, clock, rule, subject, level, issued_at FROM jiancha.cards"
    )
    name = {r["id"]: "/".join((r["case_id"], r["clock"], r["rule"], r["subject"], r["level"],
                               r["issued_at"].isoformat())) for r in cards}  # fmt: skip
    kinds: dict[str, list[str]] = {n: [] for n in name.values()}
    for r in await conn.fetch("SELECT card_id, kind FROM jiancha.card_events ORDER BY id"):
        kinds[name[r["card_id"]]].append(r["kind"])
    outbox = []
    for r in await conn.fetch("SELECT key, channel, kind, card_id, state FROM jiancha.outbox"):
        assert r["key"] == f"{r['kind']}:{r['card_id']}:{r['channel']}", r["key"]
        key = f"{r['kind']}:{name[r['card_id']]}:{r['channel']}"
        outbox.append((key, r["channel"], r["kind"], r["state"]))
    return {
        "cards": sorted(await ledger_cards(conn)),
        "card_events": kinds,
        "outbox": sorted(outbox),
    }


async def committed_events(conn: db.Connection) -> list[SourceEvent]:
    """Every committed row of ``case_events`` (the source is the truth), once the writers
    are done. Not through the tailer's read: the daemon's own open transactions hold its
    horizon back, and the newest rows would be missing while it works (as they should be
    for the tailer, which reads them after its commit)."""
    rows = await conn.fetch(
        "SELECT id, tx::text::int8, case_id, kind, occurred_at, payload FROM case_events "
        "ORDER BY case_events.tx, case_events.id"
    )
    return [SourceEvent(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def settled(conn: db.Connection, expected: set[CardRow]) -> bool:
    """Every event taken, exactly the expected cards issued, every notification delivered."""
    if await state_store.load_cursor(conn) < await last_position(conn):
        return False
    if await ledger_cards(conn) != expected:
        return False
    counts = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE state = 'delivered') AS delivered "
        "FROM jiancha.outbox"
    )
    return counts["n"] == counts["delivered"] == len(expected)


async def settle(
    conn: db.Connection, daemon: Daemon, expected: set[CardRow], timeout: float
) -> float:
    """Wait until ``settled`` (or ``timeout``: the assertions that follow say what is
    missing); the daemon must stay up. Returns the seconds waited."""
    started = trio.current_time()
    with trio.move_on_after(timeout):
        while not await settled(conn, expected):
            assert daemon.proc.poll() is None, daemon.output()[-4000:]
            await trio.sleep(0.1)
    return trio.current_time() - started


async def assert_applied(
    conn: db.Connection, cases: Sequence[Case], expected: set[CardRow]
) -> None:
    """jiancha holds each committed event once, each case as its events say, the
    expected cards, and one delivered notification per card; rolled back cases left
    nothing."""
    events = await committed_events(conn)
    committed = {c.case_id: len(c.rows) for c in cases if not c.rollback}
    per_case: dict[str, int] = {}
    for e in events:
        per_case[e.case_id] = per_case.get(e.case_id, 0) + 1
    assert per_case == committed, "the writers' transactions did not all commit"
    stored = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM jiancha.events")]
    assert len(stored) == len(set(stored)), "an event applied twice"
    assert set(stored) == {e.event_id for e in events}, "an event lost"
    assert await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters") == 0
    assert await state_store.load_cursor(conn) == await last_position(conn)
    assert await conn.fetchval("SELECT events FROM jiancha.cursor") == len(events)

    matters = await load_matters(conn)
    rows = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM jiancha.cases")}
    per_case_events: dict[str, list[SourceEvent]] = {}
    for e in events:
        per_case_events.setdefault(e.case_id, []).append(e)
    states = {cid: reduce_case(cid, evs, matters) for cid, evs in per_case_events.items()}
    problems = case_mismatches(rows, states)
    assert not problems, "\n".join(problems)

    cards = await ledger_cards(conn)
    assert cards - expected == set(), "cards nobody was due"
    assert expected - cards == set(), "cards missing"
    ghosts = {c.case_id for c in cases if c.rollback}
    assert not ghosts & {c[0] for c in cards}
    outbox = await conn.fetch("SELECT state, card_id FROM jiancha.outbox")
    assert {r["state"] for r in outbox} == {"delivered"}
    assert len(outbox) == len({r["card_id"] for r in outbox}) == len(cards)


def deliveries(receiver: Receiver, path: str) -> dict[str, list[bytes]]:
    """The bodies the receiver got at ``path``, by Idempotency-Key."""
    out: dict[str, list[bytes]] = {}
    for r in receiver.requests:
        if r.path == path:
            out.setdefault(r.headers["idempotency-key"], []).append(r.body)
    return out


async def assert_received(conn: db.Connection, receiver: Receiver, path: str) -> int:
    """Every outbox key reached the receiver, a repeat only with the same body; returns
    the number of repeats."""
    keys = {r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox")}
    got = deliveries(receiver, path)
    assert keys - set(got) == set(), "notifications that never reached the receiver"
    assert set(got) - keys == set(), "deliveries of no notification"
    differing = sorted(k for k, bodies in got.items() if len(set(bodies)) > 1)
    assert not differing, f"a key sent with different bodies: {differing[:5]}"
    return sum(len(bodies) - 1 for bodies in got.values())


# --- running the daemon ------------------------------------------------------------------


def config_file(path: Path, url: str, state: Path | None = None) -> Path:
    """A webhook channel to the test receiver, every card routed to it, no quiet hours;
    with ``state``, the clock table's checkpoint there, saved every 0.3 s."""
    daemon = f'[daemon]\nstate_dir = "{state}"\ncheckpoint_every = 0.3\n\n' if state else ""
    path.write_text(
        daemon + f'[channels.{CHANNEL}]\nkind = "webhook"\nurl = "{url}"\n\n'
        f'[[routes]]\nkinds = ["card"]\nchannels = ["{CHANNEL}"]\n\n'
        # a notification claimed by a killed daemon is tried again after 1 s, not 120 s
        "[notify]\nlease = 1\nbackoff_initial = 0.2\nbackoff_max = 2\n\n"
        "[notify.quiet_hours]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def run_command(config: Path) -> tuple[str, ...]:
    return ("-m", "monitor", "run", "--config", str(config), "--poll-interval", "0.1",
            "--metrics-address", "127.0.0.1:0")  # fmt: skip


_UP = re.compile(r"^jiancha_database_up (\S+)$", re.MULTILINE)


async def database_up(http: httpx.AsyncClient, url: str, daemon: Daemon) -> float:
    """``jiancha_database_up`` as scraped; the daemon must be up to answer."""
    alive = f"the daemon exited {daemon.proc.returncode}"
    assert daemon.proc.poll() is None, f"{alive}:\n{daemon.output()[-6000:]}"
    try:
        text = (await http.get(url)).text
    except httpx.TransportError:
        with trio.move_on_after(10):  # going down? let it say why
            await daemon.wait()
        raise AssertionError(f"no metrics:\n{daemon.output()[-6000:]}") from None
    m = _UP.search(text)
    assert m is not None, text[:2000]
    return float(m[1])


def index_of(records: Sequence[Mapping[str, Any]], event: str, after: int = 0) -> int | None:
    return next((i for i, r in enumerate(records) if i >= after and r.get("event") == event),
                None)  # fmt: skip


def lost_at(records: Sequence[Mapping[str, Any]], after: int = 0) -> int | None:
    """The first line after ``after`` saying the database was lost: the worker's, or the
    leader's lease's (its loss stops the worker before it meets the closed connection)."""
    found = [i for e in ("source_disconnected", "lease_lost")
             if (i := index_of(records, e, after)) is not None]  # fmt: skip
    return min(found, default=None)


async def stop_cleanly(daemon: Daemon) -> None:
    assert daemon.proc.poll() is None, daemon.output()[-4000:]
    daemon.proc.send_signal(signal.SIGTERM)
    assert await daemon.wait() == 0, daemon.output()[-4000:]
    assert daemon.records()[-1]["event"] == "stopped"


# --- the database goes away for 30 s --------------------------------------------------------


@pytest.mark.slow
async def test_the_daemon_rides_out_a_30_second_database_outage(own_server, receiver, tmp_path):
    """The server stops while the daemon delivers the first cases' cards and starts again
    30 s later; more cases come. The process never exits, the metrics and the logs say
    what happened, and in the end everything is there once."""
    source, stop, start = own_server
    began = time.monotonic()
    receiver.default = Reply(200, delay=0.02)  # each delivery takes a moment
    async with db.open_loop():
        await prepare_source(source)
        before, after = plan(130, SEED, "A"), plan(130, SEED + 1, "B")
        command = run_command(config_file(tmp_path / "jiancha.toml", receiver.url("/hook")))
        daemon = Daemon(source, tmp_path / "daemon.log", command)
        try:
            ready = await daemon.wait_for("ready", timeout=30)
            metrics = f"http://{ready['metrics']}/metrics"
            async with httpx.AsyncClient(timeout=10) as http:
                assert await database_up(http, metrics, daemon) == 1.0
                await write_cases(source, before, seed=SEED)
                async with await db.connect(source) as conn:  # until it is busy delivering
                    with trio.fail_after(30):
                        while True:
                            busy = await conn.fetchrow(
                                "SELECT (SELECT count(*) FROM case_events) AS written, "
                                "(SELECT count(*) FROM jiancha.events) AS taken, "
                                "(SELECT count(*) FROM jiancha.outbox) AS queued, "
                                "(SELECT count(*) FROM jiancha.outbox "
                                " WHERE state = 'delivered') AS sent"
                            )
                            if busy["taken"] == busy["written"] and busy["sent"] > 0:
                                break
                            await trio.sleep(0.02)
                mark = len(daemon.records())
                # --- the server stops under the running daemon
                await trio.to_thread.run_sync(stop)
                stopped_at = trio.current_time()
                with trio.fail_after(15):  # the next snapshot (every 5 s) finds it gone
                    while await database_up(http, metrics, daemon) != 0.0:
                        await trio.sleep(0.2)
                noticed = trio.current_time() - stopped_at
                scrapes = 0
                while trio.current_time() - stopped_at < OUTAGE:
                    assert await database_up(http, metrics, daemon) == 0.0
                    scrapes += 1
                    await trio.sleep(1.0)
                down = trio.current_time() - stopped_at
                # --- and starts again
                assert await trio.to_thread.run_sync(start) == source
                restarted_at = trio.current_time()
                await write_cases(source, after, seed=SEED + 1)
                with trio.fail_after(15):
                    while await database_up(http, metrics, daemon) != 1.0:
                        await trio.sleep(0.2)
                back = trio.current_time() - restarted_at
                async with await db.connect(source) as conn:
                    expected = expected_cards(
                        await committed_events(conn),
                        await load_matters(conn),
                        dt.datetime.now(dt.UTC),
                    )
                    caught_up = await settle(conn, daemon, expected, timeout=60)
                    await assert_applied(conn, [*before, *after], expected)
                    repeats = await assert_received(conn, receiver, "/hook")
                assert await database_up(http, metrics, daemon) == 1.0

            assert daemon.proc.poll() is None, "the daemon exited during the outage"
            records = daemon.records()
            lost = lost_at(records, mark)
            assert lost is not None, "no log line says the source was lost"
            assert records[lost]["level"] == "warning"
            found = index_of(records, "source_connected", lost)
            assert found is not None, "no log line says the source came back"
            retries = [r for r in records[lost:found] if r["event"] == "source_disconnected"]
            assert index_of(records, "metrics_snapshot_failed", mark) is not None
            sender_lost = index_of(records, "outbox_disconnected", mark)
            assert sender_lost is not None, "the sender did not notice"
            assert index_of(records, "outbox_connected", sender_lost) is not None
            await stop_cleanly(daemon)
        finally:
            daemon.stop()

    levels = {c[4] for c in expected}
    assert levels == {"blue", "yellow", "red"}, levels
    assert {c[6] for c in expected} == {"issued", "closed"}
    print(
        f"\noutage: {busy['taken']}/{busy['written']} events taken and {busy['sent']}/"
        f"{busy['queued']} notifications sent when the server stopped; database_up 0 after "
        f"{noticed:.1f} s, {scrapes} scrapes said 0 during {down:.1f} s down; "
        f"{len(retries)} reconnect attempts logged; database_up 1 {back:.1f} s after the "
        f"restart, all caught up {back + caught_up:.1f} s after it; {len(expected)} cards, "
        f"{repeats} repeated deliveries; {time.monotonic() - began:.1f} s in all"
    )


async def test_the_digester_waits_out_a_lost_database(dsn):
    """The morning digest is due while the database does not answer (an address nobody
    listens on): the digester says so and tries again, rather than ending the daemon, and
    queues the digest once the database answers (the real address)."""
    cal, rules = load_calendar("cn"), load_rules("cards")
    async with await db.connect(dsn) as conn:
        await _two_cases_at_risk(conn, cal, rules)
        matters = await load_matters(conn)
    queued = trio.Event()
    digester = Digester("postgresql://jiancha@127.0.0.1:1/jiancha", DIGEST_CONFIG, cal, rules,
                        lambda: matters, clock=lambda: dt.datetime(2024, 3, 7, 6, tzinfo=dt.UTC),
                        on_queued=queued.set)  # fmt: skip  # Thu 14:00 in Beijing: due
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(digester.run)
            with trio.fail_after(10):
                while not any(e["event"] == "digest_postponed" for e in logs):
                    await trio.sleep(0.01)
            digester.dsn = dsn
            with trio.fail_after(10):
                await queued.wait()
            nursery.cancel_scope.cancel()
    postponed = [e for e in logs if e["event"] == "digest_postponed"]
    assert postponed[0]["log_level"] == "warning" and postponed[0]["day"] == "2024-03-07"
    async with await db.connect(dsn) as conn:
        keys = {r["key"] for r in await conn.fetch("SELECT key FROM jiancha.outbox")}
    assert keys == {"digest:2024-03-07:W1:w1", "digest:2024-03-07:W9:ops"}


# --- SIGKILL at 20 random instants -------------------------------------------------------------


@pytest.mark.slow
async def test_sigkill_at_random_instants_gives_the_uninterrupted_ledger(
    dsn, reference_dsn, receiver, tmp_path
):
    """21 daemon lives, the first 20 ended by SIGKILL at a random instant while writers add
    cases (each life's share, spread over 2 s); then the same cases once, uninterrupted, on
    a fresh database. Ledger and outbox are equal; every notification reached the receiver,
    repeated only under its own key with the same body."""
    began = time.monotonic()
    rng = random.Random(SEED)
    cases = plan((KILLS + 1) * 20, SEED + 2, "K")
    chunks = [cases[i :: KILLS + 1] for i in range(KILLS + 1)]  # one per daemon life
    receiver.default = Reply(200, delay=0.01)  # each delivery takes a moment
    await prepare_source(dsn)
    # Every life but the first may resume from a checkpoint saved at any moment before its
    # predecessor's kill: the ledger must not depend on it.
    command = run_command(config_file(tmp_path / "killed.toml", receiver.url("/killed"),
                                      state=tmp_path / "state"))  # fmt: skip
    kills: list[tuple[str, bool]] = []  # (when, whether work was left) per kill
    async with await db.connect(dsn) as conn:
        async with trio.open_nursery() as writers:
            for life in range(KILLS):
                daemon = Daemon(dsn, tmp_path / f"killed-{life}.log", command)
                writers.start_soon(partial(write_cases, dsn, chunks[life], seed=SEED + life,
                                           seconds=2.0))  # fmt: skip
                try:
                    if rng.random() < 0.25:  # while it starts (or just after)
                        pause = rng.uniform(0.2, 1.5)
                        when = f"{pause:.2f} s after start"
                    else:  # while it works
                        await daemon.wait_for("source_connected", timeout=30)
                        pause = rng.uniform(0.0, 1.2)
                        when = f"{pause:.2f} s after connecting"
                    await trio.sleep(pause)
                finally:
                    daemon.stop()
                assert daemon.proc.returncode == -signal.SIGKILL, daemon.output()[-4000:]
                left = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM jiancha.outbox WHERE state = 'pending') > 0 "
                    "OR (SELECT count(*) FROM case_events) > "
                    "coalesce((SELECT events FROM jiancha.cursor), 0)"
                )
                kills.append((when, bool(left)))
        daemon = Daemon(dsn, tmp_path / "killed-last.log", command)
        try:
            await write_cases(dsn, chunks[KILLS], seed=SEED + KILLS)
            events = await committed_events(conn)
            expected = expected_cards(events, await load_matters(conn), dt.datetime.now(dt.UTC))
            waited = await settle(conn, daemon, expected, timeout=60)
            await assert_applied(conn, cases, expected)
            repeats = await assert_received(conn, receiver, "/killed")
            killed = await ledger_view(conn)
            await stop_cleanly(daemon)
        finally:
            daemon.stop()
    killed_seconds = time.monotonic() - began

    # The same workload, once, without kills, on a fresh database.
    await prepare_source(reference_dsn)
    command = run_command(config_file(tmp_path / "reference.toml", receiver.url("/reference")))
    async with await db.connect(reference_dsn) as conn:
        daemon = Daemon(reference_dsn, tmp_path / "reference.log", command)
        try:
            await write_cases(reference_dsn, cases, seed=SEED)
            assert len(await committed_events(conn)) == len(events)
            waited_ref = await settle(conn, daemon, expected, timeout=60)
            await assert_applied(conn, cases, expected)
            assert await assert_received(conn, receiver, "/reference") == 0
            reference = await ledger_view(conn)
            await stop_cleanly(daemon)
        finally:
            daemon.stop()

    starts = [line for life in sorted(tmp_path.glob("killed-*.log"))
              for line in life.read_text(errors="replace").splitlines()
              if '"event": "ready"' in line]  # fmt: skip
    resumed = sum('"table": "checkpoint"' in line for line in starts)
    assert resumed >= KILLS // 2, f"only {resumed} of {len(starts)} starts used the checkpoint"
    assert killed["cards"] == reference["cards"]
    assert killed["card_events"] == reference["card_events"]
    assert killed["outbox"] == reference["outbox"]
    assert {c[4] for c in expected} == {"blue", "yellow", "red"}
    busy = sum(left for _, left in kills)
    assert busy >= KILLS // 2, f"most kills found nothing left to do: {kills}"
    print(
        f"\nSIGKILL x{len(kills)} ({busy} with work left): {kills}\n"
        f"{resumed} of {len(starts)} starts resumed from the checkpoint; "
        f"{len(events)} events, {len(expected)} cards, {repeats} deliveries repeated after a "
        f"kill; killed run {killed_seconds:.1f} s (last life settled in {waited:.1f} s), "
        f"reference settled in {waited_ref:.1f} s; {time.monotonic() - began:.1f} s in all"
    )
