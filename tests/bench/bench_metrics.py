"""Benchmark of the Prometheus endpoint: scrape time at 1M open cases, and the snapshot's cost.

Run from the repository root::

    python -m tests.bench.bench_metrics [--quick] [--json PATH]

1. Scrape: a ``Snapshot`` shaped like 1M open cases over 100 departments (10
   windows each, 20 matters per department, each matter served at 3 of the
   department's windows, 4 card levels; active cards and the card ledger by
   level x 15 rules x 100 departments; completions, ratings, bad reviews; 10
   outbox channels), served through ``registry_for(holder)`` and rendered with
   ``prometheus_client.generate_latest``: median and min of k scrapes, series
   count and bytes. The anchor, measured in the same rounds, is
   ``generate_latest`` of a plain registry holding the same series as the
   library's own ``Gauge`` objects (labels set): the ratio is what the
   snapshot-and-collector approach costs against the library's standard path.
   Then the same scrape over real HTTP (``exporters.metrics.serve`` + urllib,
   plain and gzip), and in full mode a worst case where every window serves
   every matter.
2. Snapshot cost (taken every few seconds by a task of its own, never on the
   scrape path): the aggregate queries of ``monitor.observe`` and a whole
   ``Snapshotter.take`` against PostgreSQL (pgserver, own data directory,
   removed afterwards) holding 1M open cases over 100 departments (plus 10%
   closed ones with outcomes and ratings) and 300k cards, generated with
   ``INSERT ... SELECT generate_series``.

Nothing here asserts a timing; the module is not collected by pytest.
``--quick`` keeps the scrape section's shape (fewer rounds, no worst case) and
runs section 2 at 50k open cases and 15k cards (a smoke test, ~15 s).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import prometheus_client
import trio
from prometheus_client import CollectorRegistry, Gauge, generate_latest

import exporters.metrics
import monitor.observe
from exporters.metrics import (
    EVAL_BUCKETS,
    Holder,
    JianchaCollector,
    Snapshot,
    registry_for,
    serve,
)
from monitor import db
from monitor.log import configure_logging
from monitor.observe import Snapshotter
from monitor.vocab import LEVELS, OUTBOX_STATES, OUTCOMES
from tests.bench import bench_calendar
from tests.bench.bench_calendar import finish, fmt, table, verdict
from tests.bench.bench_tailer import new_database

SEED = 20240601
TARGETS = {"scrape_ms": 100.0}  # at most, at 1M open cases and 100 departments

SIZES = {
    "open_cases": 1_000_000,  # section 1's snapshot (always) and section 2's table
    "closed_cases": 100_000,  # section 2: completed, with outcome and (mostly) a rating
    "cards": 300_000,  # section 2
    "outbox": 20_000,  # section 2
    "departments": 100,  # section 1's snapshot
    "scrape_rounds": 15,
    "http_rounds": 15,
    "gzip": True,  # section 1: also time HTTP scrapes with Accept-Encoding: gzip
    "query_rounds": 5,
    "worst_case": True,
}
QUICK = {
    "open_cases": 50_000,
    "closed_cases": 5_000,
    "cards": 15_000,
    "outbox": 2_000,
    "departments": 25,
    "scrape_rounds": 9,
    "http_rounds": 3,
    "gzip": False,
    "query_rounds": 3,
    "worst_case": False,
}
SNAPSHOT_CASES = 1_000_000  # open cases of section 1's snapshot (x departments / 100)

DEPARTMENTS = 100
WINDOWS = 10  # per department
MATTERS = 20  # per department
WINDOWS_PER_MATTER = 3
RULES = 15
CHANNELS = 10


def title(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


def code_hash() -> str:
    files = [Path(m.__file__ or "") for m in (exporters.metrics, monitor.observe)]
    return bench_calendar.describe_code(files, "exporters/metrics.py, monitor/observe.py")


def dept(d: int) -> str:
    return f"D{d:03d}"


def window(d: int, w: int) -> str:
    return f"D{d:03d}-W{w}"


def matter(d: int, m: int) -> str:
    return f"M{d:03d}-{m:02d}"


def rule(r: int) -> str:
    return f"R{r:02d}"


def channel(c: int) -> str:
    return f"ch{c}"


# --- section 1: the scrape -------------------------------------------------------------


def fake_snapshot(
    rng: np.random.Generator,
    n_cases: int,
    departments: int = DEPARTMENTS,
    windows_per_matter: int = WINDOWS_PER_MATTER,
) -> Snapshot:
    """A snapshot as ``Snapshotter.take`` would make at ``n_cases`` open cases."""
    groups = [
        (dept(d), window(d, (m + k) % WINDOWS), matter(d, m))
        for d in range(departments)
        for m in range(MATTERS)
        for k in range(windows_per_matter)
    ]
    per_group = rng.multinomial(n_cases, rng.dirichlet(np.ones(len(groups))))
    open_cases: dict[tuple[str, str, str, str], int] = {}
    for (d, w, m), n in zip(groups, per_group, strict=True):
        # ~80% without a card, then blue, yellow, red; zero counts left out as the SQL would
        split = rng.multinomial(int(n), [0.8, 0.12, 0.05, 0.03])
        for level, k in zip(("none", *LEVELS), split, strict=True):
            if k:
                open_cases[(d, w, m, level)] = int(k)
    active = {
        (lv, rule(r), dept(d)): int(rng.integers(1, 400))
        for lv in LEVELS
        for r in range(RULES)
        for d in range(departments)
    }
    total = {
        (dept(d), lv, rule(r)): int(rng.integers(400, 40_000))
        for d in range(departments)
        for lv in LEVELS
        for r in range(RULES)
    }
    chans = [channel(c) for c in range(CHANNELS)]
    return Snapshot(
        levels=LEVELS,
        outbox_states=OUTBOX_STATES,
        outcomes=OUTCOMES,
        taken_at=time.time(),
        version="bench",
        database_up=True,
        events=123_456_789,
        dead_letters=12,
        tail_lag=0.4,
        cards_issued={lv: int(rng.integers(1000, 100_000)) for lv in LEVELS},
        cards_closed=54_321,
        cards_revoked=321,
        escalations=42,
        eval_buckets=tuple(range(10, 10 * (len(EVAL_BUCKETS) + 2), 10)),
        eval_sum=12.5,
        next_crossing=time.time() + 60,
        open_clocks=2 * n_cases,
        notifications={(c, st): int(rng.integers(0, 5000)) for c in chans for st in OUTBOX_STATES},
        delivered={c: int(rng.integers(0, 50_000)) for c in chans},
        failed={c: int(rng.integers(0, 50)) for c in chans},
        unrouted=7,
        open_cases=open_cases,
        active_cards=active,
        completions={
            (dept(d), o): int(rng.integers(1000, 500_000))
            for d in range(departments)
            for o in OUTCOMES
        },
        cards_total=total,
        ratings={
            (dept(d), s): int(rng.integers(10, 100_000))
            for d in range(departments)
            for s in range(1, 6)
        },
        bad_reviews={dept(d): (int(rng.integers(100, 999)), 50) for d in range(departments)},
        calendar_published_through=time.time() + 86400 * 300,
        rules_hash="a" * 12,
        calendar_hash="b" * 12,
        config_hash="c" * 12,
    )


def anchor_registry(snapshot: Snapshot) -> CollectorRegistry:
    """The same series as plain ``Gauge`` objects, one per sample name, labels set."""
    reg = CollectorRegistry(auto_describe=False)
    gauges: dict[str, Gauge] = {}
    for family in JianchaCollector(lambda: snapshot).collect():
        for s in family.samples:
            g = gauges.get(s.name)
            if g is None:
                g = Gauge(s.name, family.documentation, list(s.labels), registry=reg)
                gauges[s.name] = g
            (g.labels(**s.labels) if s.labels else g).set(s.value)
    return reg


def series_count(text: bytes) -> int:
    return sum(1 for ln in text.splitlines() if ln and not ln.startswith(b"#"))


def rounds(fns: dict[str, Callable[[], object]], k: int) -> dict[str, list[float]]:
    """One warm-up call each, then k rounds calling each in turn (interleaved)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(k):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def ms(ts: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(ts) * 1e3, "min_ms": min(ts) * 1e3}


def http_get(url: str, encoding: str | None) -> bytes:
    headers = {"Accept-Encoding": encoding} if encoding else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return bytes(r.read())


def scrape_case(name: str, snapshot: Snapshot, size: dict[str, Any]) -> dict[str, Any]:
    holder = Holder()
    holder.set(snapshot)
    registry = registry_for(holder)
    anchor = anchor_registry(snapshot)
    ours_text, anchor_text = generate_latest(registry), generate_latest(anchor)
    collector = JianchaCollector(holder.get)
    res: dict[str, Any] = {
        "name": name,
        "series": series_count(ours_text),
        "anchor_series": series_count(anchor_text),
        "bytes": len(ours_text),
        "anchor_bytes": len(anchor_text),
        "open_case_series": sum(
            1 for ln in ours_text.splitlines() if ln.startswith(b"jiancha_open_cases{")
        ),
    }
    times = rounds(
        {
            "ours": lambda: generate_latest(registry),
            "anchor": lambda: generate_latest(anchor),
            "collect": lambda: list(collector.collect()),
        },
        size["scrape_rounds"],
    )
    # the daemon's way: rendered once per snapshot (off the scrape path), served as bytes;
    # the median of three, since one render may or may not meet a full garbage collection
    renders = []
    for _ in range(3):
        t0 = time.perf_counter()
        holder.publish(snapshot)
        renders.append((time.perf_counter() - t0) * 1e3)
    res["render_ms"] = statistics.median(renders)
    server, port = serve("127.0.0.1:0", registry, holder=holder)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        body = http_get(url, None)
        res["http_bytes"], res["http_series"] = len(body), series_count(body)
        fns: dict[str, Callable[[], object]] = {"http": lambda: http_get(url, None)}
        if size["gzip"]:
            zipped = http_get(url, "gzip")
            res["http_gzip_bytes"] = len(zipped)
            res["http_gzip_series"] = series_count(gzip.decompress(zipped))
            fns["http_gzip"] = lambda: http_get(url, "gzip")
        times.update(rounds(fns, size["http_rounds"]))
    finally:
        server.shutdown()
        server.server_close()
    for key, ts in times.items():
        res[key] = ms(ts)
    res["ratio_median"] = res["ours"]["median_ms"] / res["anchor"]["median_ms"]
    res["ratio_min"] = res["ours"]["min_ms"] / res["anchor"]["min_ms"]
    return res


def bench_scrape(size: dict[str, Any]) -> dict[str, Any]:
    n_dept = size["departments"]
    n_cases = SNAPSHOT_CASES * n_dept // DEPARTMENTS
    t0 = time.perf_counter()
    snap = fake_snapshot(np.random.default_rng(SEED), n_cases, n_dept)
    built = time.perf_counter() - t0
    print(
        f"snapshot: {fmt(n_cases, 0)} open cases, {n_dept} departments x {MATTERS} matters "
        f"x {WINDOWS_PER_MATTER} of {WINDOWS} windows x 4 levels; cards by {len(LEVELS)} "
        f"levels x {RULES} rules x {n_dept} departments; {CHANNELS} channels (built in "
        f"{built * 1e3:.0f} ms). After a warm-up, {size['scrape_rounds']} rounds of "
        f"(ours, anchor, collect) interleaved, then {size['http_rounds']} HTTP rounds."
    )
    cases = [scrape_case("realistic", snap, size)]
    if size["worst_case"]:
        worst = fake_snapshot(np.random.default_rng(SEED), n_cases, n_dept, WINDOWS)
        fewer = {**size, "scrape_rounds": 9, "http_rounds": 9}
        cases.append(scrape_case("every window x every matter (9 rounds)", worst, fewer))
    rows = []
    for c in cases:
        rows.append([f"{c['name']}: generate_latest(registry_for)", fmt(c["series"], 0),
                     fmt(c["bytes"] / 1024, 0), fmt(c["ours"]["median_ms"]),
                     fmt(c["ours"]["min_ms"]), f"{c['ratio_median']:.2f}x"])  # fmt: skip
        rows.append(["  anchor: plain Gauge registry, same series", fmt(c["anchor_series"], 0),
                     fmt(c["anchor_bytes"] / 1024, 0), fmt(c["anchor"]["median_ms"]),
                     fmt(c["anchor"]["min_ms"]), "1.00x"])  # fmt: skip
        rows.append(["  of which collect() (families, no text)", "", "",
                     fmt(c["collect"]["median_ms"]), fmt(c["collect"]["min_ms"]), ""])  # fmt: skip
        for key, label, b in (("http", "HTTP GET /metrics (serve + urllib)", "http_bytes"),
                              ("http_gzip", "HTTP GET, Accept-Encoding: gzip",
                               "http_gzip_bytes")):  # fmt: skip
            if key in c:
                rows.append([f"  {label}", fmt(c[f"{key}_series" if key == "http" else
                                                 "http_gzip_series"], 0),
                             fmt(c[b] / 1024, 0), fmt(c[key]["median_ms"]),
                             fmt(c[key]["min_ms"]),
                             f"{c[key]['median_ms'] / c['anchor']['median_ms']:.2f}x"])  # fmt: skip
    print()
    print(table(["scrape", "series", "KiB", "median ms", "min ms", "vs anchor"], rows))
    main = cases[0]
    if n_dept == DEPARTMENTS:
        print(
            f"\ntarget: scrape ≤ {TARGETS['scrape_ms']:.0f} ms at {fmt(n_cases, 0)} open cases, "
            f"{n_dept} departments: the daemon's scrape over HTTP (exposition rendered once "
            f"per snapshot, {main['render_ms']:.0f} ms off the scrape path) "
            f"{main['http']['median_ms']:.1f} ms -> "
            f"{verdict(main['http']['median_ms'] <= TARGETS['scrape_ms'])}; rendering at scrape "
            f"time (generate_latest) would be {main['ours']['median_ms']:.1f} ms"
        )
    else:
        print(f"\n(--quick: {n_dept} departments, not the target's 100: no verdict)")
    return {"snapshot_build_ms": built * 1e3, "cases": cases}


# --- section 2: the snapshot's queries -------------------------------------------------

_LOAD_CASES = """
INSERT INTO jiancha.cases (case_id, matter, department, "window", status, submitted_at,
                           accepted_at, completed_at, outcome, rating, clocks, first_seen_at,
                           event_count, last_event_id, updated_at)
SELECT 'C' || g,
       'M' || lpad((g % 100)::text, 3, '0') || '-' || lpad(((g / 100) % 20)::text, 2, '0'),
       'D' || lpad((g % 100)::text, 3, '0'),
       'D' || lpad((g % 100)::text, 3, '0') || '-W' || ((((g / 100) % 20) + (g / 2000) % 3) % 10),
       CASE WHEN g <= $1::int
            THEN (ARRAY['accepted', 'submitted', 'supplement', 'decided'])[1 + g % 4]
            ELSE 'completed' END,
       now() - interval '20 days', now() - interval '19 days',
       CASE WHEN g > $1::int THEN now() - interval '1 day' END,
       CASE WHEN g > $1::int THEN (ARRAY['early', 'early', 'early', 'on_time', 'on_time', 'on_time',
                                    'on_time', 'on_time', 'on_time', 'late'])[1 + g % 10] END,
       CASE WHEN g > $1::int AND g % 5 <> 0 THEN 1 + (g / 7) % 5 END,
       CASE WHEN g > $1::int AND g % 5 <> 0 AND (g / 7) % 5 < 2
            THEN CASE WHEN g % 2 = 0
                      THEN '{"review": {"start": "2025-01-01T00:00:00Z",
                                        "stop": "2025-01-03T00:00:00Z"}}'::jsonb
                      ELSE '{"review": {"start": "2025-01-01T00:00:00Z"}}'::jsonb END
            ELSE '{}'::jsonb END,
       now(), 3, g, now()
FROM generate_series(1, $1::int + $2::int) AS g
"""
# One card on each of the first $1 open cases: 60% blue, 30% yellow, 10% red;
# 80% issued, 5% acknowledged, 2% appealed, the rest closed.
_LOAD_CARDS = """
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, matter,
                           department, "window", ruleset, calendar, status, updated_at)
SELECT 'C' || g, 'decision', 'R' || lpad(((g / 100) % 15)::text, 2, '0'),
       CASE WHEN g % 10 < 6 THEN 'blue' WHEN g % 10 < 9 THEN 'yellow' ELSE 'red' END,
       now() - interval '2 days', now() - interval '2 days',
       'M' || lpad((g % 100)::text, 3, '0') || '-' || lpad(((g / 100) % 20)::text, 2, '0'),
       'D' || lpad((g % 100)::text, 3, '0'),
       'D' || lpad((g % 100)::text, 3, '0') || '-W' || ((((g / 100) % 20) + (g / 2000) % 3) % 10),
       'rules-bench', 'calendar-bench',
       CASE WHEN g % 100 < 80 THEN 'issued' WHEN g % 100 < 85 THEN 'acknowledged'
            WHEN g % 100 < 87 THEN 'appealed' ELSE 'closed' END,
       now()
FROM generate_series(1, $1) AS g
"""
_LOAD_OUTBOX = """
INSERT INTO jiancha.outbox (key, channel, kind, payload, created_at, not_before, state,
                            next_attempt_at, give_up_at)
SELECT 'k' || g, 'ch' || (g % 10), 'card', '{}'::jsonb, now(), now(),
       (ARRAY['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered',
              'delivered', 'delivered', 'pending', 'failed'])[1 + (g / 10) % 10],
       now(), now() + interval '1 day'
FROM generate_series(1, $1) AS g
"""

QUERIES = {
    "open cases (_OPEN_CASES)": monitor.observe._OPEN_CASES,
    "active cards (_ACTIVE_CARDS)": monitor.observe._ACTIVE_CARDS,
    "outbox (_OUTBOX)": monitor.observe._OUTBOX,
    "completions (_COMPLETIONS)": monitor.observe._COMPLETIONS,
    "card ledger (_CARDS)": monitor.observe._CARDS,
    "ratings (_RATINGS)": monitor.observe._RATINGS,
    "bad reviews (_REVIEWS)": monitor.observe._REVIEWS,
}


async def load(dsn: str, size: dict[str, Any]) -> dict[str, float]:
    took: dict[str, float] = {}
    async with await db.connect(dsn) as conn:
        for name, sql, args in (
            ("cases", _LOAD_CASES, (size["open_cases"], size["closed_cases"])),
            ("cards", _LOAD_CARDS, (size["cards"],)),
            ("outbox", _LOAD_OUTBOX, (size["outbox"],)),
        ):
            t0 = time.perf_counter()
            await conn.execute(sql, *args, timeout=3600)
            took[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for tbl in ("jiancha.cases", "jiancha.cards", "jiancha.outbox"):
            await conn.execute(f"VACUUM (ANALYZE) {tbl}", timeout=3600)
        took["vacuum_analyze"] = time.perf_counter() - t0
    return took


async def bench_queries(dsn: str, size: dict[str, Any]) -> dict[str, Any]:
    k = size["query_rounds"]
    t0 = time.perf_counter()
    loaded = await load(dsn, size)
    n_total = size["open_cases"] + size["closed_cases"]
    print(
        f"loaded {fmt(n_total, 0)} cases ({fmt(size['open_cases'], 0)} open, "
        f"{fmt(size['closed_cases'], 0)} completed) in {loaded['cases']:.1f} s, "
        f"{fmt(size['cards'], 0)} cards in {loaded['cards']:.1f} s, "
        f"{fmt(size['outbox'], 0)} outbox rows; VACUUM ANALYZE {loaded['vacuum_analyze']:.1f} s "
        f"(all {time.perf_counter() - t0:.1f} s). Each query: a warm-up, then {k} runs."
    )
    res: dict[str, Any] = {"load_s": loaded, "rounds": k, "queries": {}}
    rows = []
    async with await db.connect(dsn, application_name="jiancha-metrics") as conn:
        sizes = {}
        for tbl in ("jiancha.cases", "jiancha.cards"):
            sizes[tbl] = await conn.fetchval(f"SELECT pg_total_relation_size('{tbl}')")
        res["table_bytes"] = sizes
        for name, sql in QUERIES.items():
            got = await conn.fetch(sql, timeout=3600)
            ts = []
            for _ in range(k):
                t = time.perf_counter()
                got = await conn.fetch(sql, timeout=3600)
                ts.append(time.perf_counter() - t)
            res["queries"][name] = {**ms(ts), "rows": len(got)}
            rows.append([name, fmt(len(got), 0), fmt(statistics.median(ts) * 1e3),
                         fmt(min(ts) * 1e3)])  # fmt: skip
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + monitor.observe._OPEN_CASES)
        res["open_cases_plan"] = [r[0] for r in plan]
        holder = Holder()
        snapper = Snapshotter(holder, dsn)
        await snapper.take(conn)
        ts = []
        for _ in range(k):
            t = time.perf_counter()
            await snapper.take(conn)
            ts.append(time.perf_counter() - t)
        snap = holder.get()
        res["take"] = ms(ts)
        res["take"]["open_cases_total"] = sum(snap.open_cases.values())
        res["take"]["open_case_keys"] = len(snap.open_cases)
        text = generate_latest(registry_for(holder))
        res["take"]["series"] = series_count(text)
        rows.append(["Snapshotter.take (all 7 + _figures)",
                     f"{fmt(len(snap.open_cases), 0)} keys", fmt(res["take"]["median_ms"]),
                     fmt(res["take"]["min_ms"])])  # fmt: skip
    print()
    print(
        f"jiancha.cases {sizes['jiancha.cases'] / 2**20:.0f} MiB, "
        f"jiancha.cards {sizes['jiancha.cards'] / 2**20:.0f} MiB (with indexes)"
    )
    print(table(["query", "rows", "median ms", "min ms"], rows))
    print(
        f"take() saw {fmt(res['take']['open_cases_total'], 0)} open cases; a scrape of it "
        f"has {fmt(res['take']['series'], 0)} series"
    )
    print("\nplan of _OPEN_CASES (EXPLAIN ANALYZE):")
    for ln in res["open_cases_plan"]:
        print("  " + ln)
    return res


async def run_db(admin_dsn: str, size: dict[str, Any]) -> dict[str, Any]:
    async with db.open_loop():
        async with await db.connect(admin_dsn) as conn:
            version = await conn.fetchval("SHOW server_version")
        dsn = await new_database(admin_dsn, "bench_metrics")
        res = await bench_queries(dsn, size)
        res["postgresql"] = version
        return res


# --- main ------------------------------------------------------------------------------


def summary(results: dict[str, Any], info: dict[str, Any], size: dict[str, Any]) -> None:
    title("summary")
    sc = results["scrape"]["cases"][0]
    q = results["snapshot"]
    rows: list[list[object]] = [
        ["CPU", info["cpu"]],
        ["cores (os / usable)", f"{info['cores']} / {info['cores_usable']}"],
        ["memory", f"{info.get('memory_gib', '?')} GiB"],
        ["python / prometheus_client", f"{info['python']} / {info['prometheus_client']}"],
        ["PostgreSQL", f"{q['postgresql']} (pgserver, own data dir, same host)"],
        ["code", info["code"]],
        ["series (realistic snapshot)", fmt(sc["series"], 0)],
        ["scrape generate_latest median / min",
         f"{sc['ours']['median_ms']:.1f} / {sc['ours']['min_ms']:.1f} ms"],
        ["anchor (plain Gauges) median / min",
         f"{sc['anchor']['median_ms']:.1f} / {sc['anchor']['min_ms']:.1f} ms"],
        ["ratio to anchor (median / min)", f"{sc['ratio_median']:.2f}x / {sc['ratio_min']:.2f}x"],
        ["scrape over HTTP median / min",
         f"{sc['http']['median_ms']:.1f} / {sc['http']['min_ms']:.1f} ms"],
        ["rendered per snapshot, off the scrape path", f"{sc['render_ms']:.1f} ms"],
        ["target ≤ 100 ms (the daemon's scrape over HTTP)",
         verdict(sc["http"]["median_ms"] <= TARGETS["scrape_ms"])
         if size["departments"] == DEPARTMENTS else "n/a (--quick: 25 departments)"],
    ]  # fmt: skip
    if len(results["scrape"]["cases"]) > 1:
        w = results["scrape"]["cases"][1]
        rows.append(["worst case series / median",
                     f"{fmt(w['series'], 0)} / {w['ours']['median_ms']:.1f} ms "
                     f"({w['ratio_median']:.2f}x anchor)"])  # fmt: skip
    n = size["open_cases"]
    for name, v in q["queries"].items():
        rows.append([f"{name} at {fmt(n, 0)} open", f"{v['median_ms']:.1f} ms median"])
    rows.append([f"Snapshotter.take at {fmt(n, 0)} open",
                 f"{q['take']['median_ms']:.1f} / {q['take']['min_ms']:.1f} ms"])  # fmt: skip
    print(table(["", ""], rows, left=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configure_logging("WARNING")
    size = QUICK if args.quick else SIZES
    info = bench_calendar.machine_info()
    info["prometheus_client"] = getattr(prometheus_client, "__version__", None) or _version()
    info["asyncpg"] = asyncpg.__version__
    info["code"] = code_hash()
    results: dict[str, Any] = {"quick": args.quick, "sizes": size, "machine": info}
    head = "jiancha metrics benchmark" + (" (--quick: small sizes)" if args.quick else "")
    print(head)
    print("=" * len(head))

    n_dept = size["departments"]
    title(
        f"1. scrape: registry_for(holder) at {fmt(SNAPSHOT_CASES * n_dept // DEPARTMENTS, 0)} "
        f"open cases, {n_dept} departments"
    )
    results["scrape"] = bench_scrape(size)

    title(f"2. snapshot cost: the aggregate queries at {fmt(size['open_cases'], 0)} open cases")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="jiancha-bench-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        results["snapshot"] = trio.run(run_db, server.get_uri(), size)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    summary(results, info, size)
    return finish(results, started, args.json)


def _version() -> str:
    from importlib.metadata import version

    return version("prometheus_client")


if __name__ == "__main__":
    sys.exit(main())
