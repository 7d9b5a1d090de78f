"""Benchmark of the web console's two heavy pages, server time, on a real PostgreSQL.

Run from the repository root::

    python -m tests.bench.bench_web [--quick] [--json PATH]

1. The open-warnings list over 100,000 open cases (one open card each, across
   20 windows, 5 departments and two region calendars), first page, as an
   officer: ``GET /cards`` through the ASGI app in process (sign-in, session
   row, the working time left counted now on each card's calendar, the sort,
   the page rendered), timed from request to the last byte. Target: p95 <= 300 ms.
2. The case page of a case with 200 events and 3 cards with their ledgers
   (``GET /cases/{id}``, the engine's clocks). Target: p95 <= 100 ms.

Anchors, measured in the same run on the same connection pool: the bare SQL
query of the old list (open cards by frozen deadline, first 200 rows), and
the case page's bare SQL (the case row, its events, its cards' ledger). The
ratios say what the console adds to the database's own work. Nothing here
asserts a timing; the module is not collected by pytest. ``--quick``: 5,000
cases, fewer rounds (a smoke test).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from monitor import db
from monitor.accounts import add_user, hash_password
from monitor.calendar import load_calendar
from monitor.calendar.regions import Regions
from monitor.cards.query import CARD_COLUMNS, EVENT_COLUMNS
from monitor.log import configure_logging
from monitor.migrate import migrate
from monitor.rules.load import load_rules
from monitor.web import Console, Pool, create_app
from tests.bench.bench_calendar import finish, table, verdict

NOW = dt.datetime(2024, 6, 3, 2, tzinfo=dt.UTC)  # Monday 10:00 in Beijing
PASSWORD = "bench password 1"
LIST_TARGET_MS, CASE_TARGET_MS = 300.0, 100.0

_FILL = """
INSERT INTO jiancha.cases (case_id, matter, department, "window", region, status, accepted_at,
    decision_deadline, promised_days, paused_since, clocks, first_seen_at, event_count,
    last_event_id, updated_at)
SELECT 'B' || g, 'matter ' || (g % 300), 'D' || (g % 5), 'W' || (g % 20),
    CASE WHEN g % 10 = 0 THEN '222401' ELSE '110101' END, 'accepted',
    $1::timestamptz - (g % 30) * interval '1 day',
    $1::timestamptz + ((g % 41) - 20) * interval '1 day' + (g % 24) * interval '1 hour',
    20, CASE WHEN g % 50 = 0 THEN $1::timestamptz - interval '2 days' END, '{}', $1, 2, g, $1
FROM generate_series(1, $2) g;
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, deadline,
    matter, department, "window", region, ruleset, calendar, detail, status, updated_at)
SELECT case_id, CASE WHEN last_event_id % 3 = 0 THEN 'acceptance' ELSE 'decision' END,
    'decision_time', (ARRAY['blue', 'yellow', 'red'])[1 + last_event_id % 3], $1, $1,
    decision_deadline - interval '1 day', matter, department, "window", region, 'r', 'c',
    '{"limit_days": 20, "used_days": 18, "remaining_days": 2}', 'issued', $1
FROM jiancha.cases;
INSERT INTO jiancha.card_events (card_id, kind, at, actor)
SELECT id, 'issued', issued_at, 'jiancha' FROM jiancha.cards;
ANALYZE;
"""

_BIG_CASE = """
INSERT INTO jiancha.cases (case_id, matter, department, "window", region, status, accepted_at,
    decision_deadline, promised_days, clocks, first_seen_at, event_count, last_event_id,
    updated_at, pauses)
VALUES ('BIG', '建设工程规划许可', 'D1', 'W1', '110101', 'accepted', $1::timestamptz,
    $1::timestamptz + interval '30 days', 20, $2::jsonb, $1::timestamptz, 200, 10000200,
    $1::timestamptz, '[]');
INSERT INTO jiancha.events (event_id, tx, case_id, kind, occurred_at, payload, ingested_at)
SELECT 10000000 + g, '1', 'BIG', CASE WHEN g = 1 THEN 'submitted' WHEN g = 2 THEN 'accepted'
    ELSE 'step_started' END, $1::timestamptz + g * interval '10 minutes',
    jsonb_build_object('step', 's' || g, 'by', '经办人'),
    $1::timestamptz + g * interval '11 minutes'
FROM generate_series(1, 200) g;
"""


async def _fill(conn: db.Connection, cases: int) -> None:
    await conn.execute("SET synchronous_commit = off")
    for statement in _FILL.strip().split(";\n"):
        if statement.strip():
            now = f"'{NOW.isoformat()}'::timestamptz"
            sql = statement.replace("$1::timestamptz", now).replace("$1", now)
            await conn.execute(sql.replace("$2", str(cases)))
    start = NOW - dt.timedelta(days=3)
    clocks = {"decision": {"start": start.isoformat(), "stop": None, "limit_days": 20,
                           "extension_days": 0, "extensions": [], "pauses": []},
              "acceptance": {"start": (start - dt.timedelta(hours=2)).isoformat(),
                             "stop": start.isoformat()}}  # fmt: skip
    for statement in _BIG_CASE.strip().split(";\n"):
        await conn.execute(statement, start, clocks) if "$2" in statement else \
            await conn.execute(statement, start)  # fmt: skip
    for level in ("blue", "yellow", "red"):
        card = await conn.fetchval(
            "INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at,"
            " deadline, matter, department, \"window\", region, ruleset, calendar, status,"
            " updated_at) VALUES ('BIG', 'decision', 'decision_time', $1, $2, $2, $3, 'm', 'D1',"
            " 'W1', '110101', 'r', 'c', 'issued', $2) RETURNING id",
            level, NOW, NOW + dt.timedelta(days=5))  # fmt: skip
        await conn.execute("INSERT INTO jiancha.card_events (card_id, kind, at, actor)"
                           " VALUES ($1, 'issued', $2, 'jiancha'), ($1, 'notified', $2, 'jiancha')",
                           card, NOW)  # fmt: skip
    await add_user(conn, "officer1", roles=["officer"], password_hash=hash_password(PASSWORD))
    await conn.execute("ANALYZE")


async def _times(fn: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    await fn()  # warm-up: plans, numba, templates
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _p(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


async def run(dsn: str, cases: int, rounds: int) -> dict[str, Any]:
    async with db.open_loop():
        async with await db.connect(dsn) as conn:
            await migrate(conn)
            t0 = time.perf_counter()
            await _fill(conn, cases)
            fill_s = time.perf_counter() - t0
            version = await conn.fetchval("SHOW server_version")
        pool = Pool(dsn)
        regions = Regions.of(load_calendar("cn"), {"2224": load_calendar("yanbian")})
        rules = load_rules("cards")
        titles = {r.rule: (r.title("zh"), r.title("en")) for r in rules.rules}
        state = Console(pool=pool, regions=regions, rules=rules, clock=lambda: NOW,
                        rule_titles=titles)  # fmt: skip
        app = create_app(state, "b" * 48)
        transport = httpx.ASGITransport(app=app)
        res: dict[str, Any] = {"cases": cases, "fill_s": fill_s, "postgresql": version}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = await client.post("/login", data={"username": "officer1", "password": PASSWORD,
                                                       "csrf": csrf, "next": "/cards"})  # fmt: skip
            assert signed.status_code == 303, signed.text

            async def page_list() -> None:
                r = await client.get("/cards")
                assert r.status_code == 200 and r.text.count('class="row ') == 200, r.status_code

            async def page_case() -> None:
                r = await client.get("/cases/BIG")
                assert r.status_code == 200 and r.text.count("<tr><td>") >= 200, r.status_code

            async def sql_list() -> None:
                async with pool.connection() as c:
                    await c.fetch(f"SELECT {CARD_COLUMNS} FROM jiancha.cards WHERE status = ANY($1)"
                                  " ORDER BY deadline, id LIMIT 200",
                                  ["issued", "acknowledged", "appealed"])  # fmt: skip

            async def sql_case() -> None:
                async with pool.connection() as c:
                    await c.fetchrow("SELECT * FROM jiancha.cases WHERE case_id = 'BIG'")
                    await c.fetch("SELECT * FROM jiancha.events WHERE case_id = 'BIG'"
                                  " ORDER BY occurred_at, event_id")  # fmt: skip
                    ids = [r[0] for r in await c.fetch(
                        "SELECT id FROM jiancha.cards WHERE case_id = 'BIG'")]  # fmt: skip
                    await c.fetch(f"SELECT {EVENT_COLUMNS} FROM jiancha.card_events"
                                  " WHERE card_id = ANY($1) ORDER BY at, id", ids)  # fmt: skip

            # interleaved rounds: page and anchor see the same machine
            lists, list_sql, case_pages, case_sql = [], [], [], []
            for _ in range(rounds):
                lists += await _times(page_list, 1)
                list_sql += await _times(sql_list, 1)
                case_pages += await _times(page_case, 2)
                case_sql += await _times(sql_case, 2)
        await pool.close()
    for name, xs in (("list", lists), ("list_sql", list_sql), ("case", case_pages),
                     ("case_sql", case_sql)):  # fmt: skip
        res[name] = {"p50_ms": statistics.median(xs), "p95_ms": _p(xs, 95), "n": len(xs)}
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    configure_logging("ERROR")
    started = time.perf_counter()
    cases, rounds = (5_000, 10) if args.quick else (100_000, 30)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver
    tmp = Path(tempfile.mkdtemp(prefix="jiancha-bench-web-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        res = trio.run(run, server.get_uri(), cases, rounds)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    lst, lsql, case, csql = res["list"], res["list_sql"], res["case"], res["case_sql"]
    scale = "" if cases == 100_000 else f" ({cases:,} cases: --quick)"
    rows = [
        [f"GET /cards, first page of {cases:,} open cases{scale}", f"{lst['p50_ms']:.1f} ms",
         f"{lst['p95_ms']:.1f} ms", f"{lst['p95_ms'] / lsql['p95_ms']:.1f}x the bare SQL "
         f"({lsql['p95_ms']:.1f} ms)", f"<= {LIST_TARGET_MS:.0f} ms",
         verdict(lst["p95_ms"] <= LIST_TARGET_MS)],
        ["GET /cases/BIG, 200 events, 3 cards", f"{case['p50_ms']:.1f} ms",
         f"{case['p95_ms']:.1f} ms", f"{case['p95_ms'] / csql['p95_ms']:.1f}x the bare SQL "
         f"({csql['p95_ms']:.1f} ms)", f"<= {CASE_TARGET_MS:.0f} ms",
         verdict(case["p95_ms"] <= CASE_TARGET_MS)],
    ]  # fmt: skip
    print(table(["page (server time, in process)", "p50", "p95", "anchor", "target", ""], rows))
    print(f"PostgreSQL {res['postgresql']} (pgserver, own data dir, same host); filled in "
          f"{res['fill_s']:.1f} s; {lst['n']} list and {case['n']} case requests")  # fmt: skip
    return finish(res, started, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
