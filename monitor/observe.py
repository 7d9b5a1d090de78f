"""The daemon's side of the metrics: the components' counters copied into a ``Snapshot``.

A small trio task takes a snapshot every few seconds (the components' own
plain counters plus a few aggregate queries of schema ``jiancha``) and swaps
it into the ``Holder`` that scrapes read (``exporters.metrics``). This is
the one place that observes the stages: they keep plain counters, and the
histogram of tick durations is folded here. A lost database shows as
``jiancha_database_up 0`` rather than as a failed scrape.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import numpy as np
import trio

from exporters.metrics import EVAL_BUCKETS, Holder, Snapshot, utc_timestamp
from monitor import __version__, db
from monitor.calendar import Calendar
from monitor.db import DISCONNECTS
from monitor.evaluator import Evaluator
from monitor.log import get_logger
from monitor.outbox.enqueue import Notifier
from monitor.outbox.send import Sender
from monitor.vocab import LEVELS, OUTBOX_STATES, OUTCOMES
from monitor.worker import Worker

_OPEN_CASES = """
SELECT coalesce(s.department, '') AS department, coalesce(s."window", '') AS "window",
       coalesce(s.matter, '') AS matter,
       coalesce((ARRAY['blue', 'yellow', 'red'])[c.top], 'none') AS level, count(*) AS n
FROM jiancha.cases s
LEFT JOIN (SELECT case_id, max(array_position(ARRAY['blue', 'yellow', 'red'], level)) AS top
           FROM jiancha.cards WHERE status IN ('issued', 'acknowledged', 'appealed')
           GROUP BY case_id) c USING (case_id)
WHERE s.status NOT IN ('completed', 'delivered', 'withdrawn', 'terminated', 'refused', 'orphan')
GROUP BY 1, 2, 3, 4
"""
_ACTIVE_CARDS = """
SELECT level, rule, coalesce(department, '') AS department, count(*) AS n FROM jiancha.cards
WHERE status IN ('issued', 'acknowledged', 'appealed') GROUP BY 1, 2, 3
"""
_OUTBOX = "SELECT channel, state, count(*) AS n FROM jiancha.outbox GROUP BY 1, 2"
# Totals that only grow, exposed as counters: Prometheus' increase() over 1d/7d/30d
# gives the period's figures (recording rules in deploy/prometheus).
_COMPLETIONS = """
SELECT coalesce(department, '') AS department, outcome, count(*) AS n FROM jiancha.cases
WHERE outcome IS NOT NULL GROUP BY 1, 2
"""
# 超期件: the one definition (jiancha.overdue_v1, migration 0007), at the daemon's now.
_OVERDUE = """
SELECT coalesce(department, '') AS department, count(*) AS n FROM jiancha.cases c
WHERE completed_at IS NULL AND closed_at IS NULL AND jiancha.overdue_v1(c, $1)
GROUP BY 1
"""
_RATINGS = """
SELECT coalesce(department, '') AS department, rating, count(*) AS n FROM jiancha.cases
WHERE rating IS NOT NULL GROUP BY 1, 2
"""
_REVIEWS = """
SELECT coalesce(department, '') AS department,
       count(*) FILTER (WHERE clocks->'review'->>'stop' IS NOT NULL) AS rectified,
       count(*) AS bad
FROM jiancha.cases WHERE clocks ? 'review' GROUP BY 1
"""
_CARDS = """
SELECT coalesce(department, '') AS department, level, rule, count(*) AS n FROM jiancha.cards
GROUP BY 1, 2, 3
"""


OTHER_WINDOW = "其他"
"""The ``window`` label of every window the configuration does not name."""

# The calendar as the database reads it (migration 0013): rewritten whole, in one transaction.
_WORKING_TIME = (
    "INSERT INTO jiancha.working_time (starts_at, ends_at, before_days, days, known_until, "
    "provisional, calendar, timezone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
# What it was written from (migration 0017): a start on the same day with the same
# calendar finds it current and writes nothing.
_WORKING_TIME_SOURCE = "SELECT calendar, first_day, last_day FROM jiancha.working_time_source"
_WORKING_TIME_WRITTEN = """
INSERT INTO jiancha.working_time_source (calendar, first_day, last_day, written_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (only_row) DO UPDATE
SET calendar = EXCLUDED.calendar, first_day = EXCLUDED.first_day,
    last_day = EXCLUDED.last_day, written_at = EXCLUDED.written_at
"""
_MATTER_NAMES = "INSERT INTO jiancha.matters (code, name, department) VALUES ($1, $2, $3)"
WORKING_TIME_SPAN = (3660, 731)
"""Days of jiancha.working_time before and after today: ten years of overdue cases back,
the longest promised limits ahead."""

# The figures a snapshot takes from schema jiancha (kept from the last one while it is away).
_FROM_DATABASE = ("open_cases", "active_cards", "notifications", "completions", "cards_total",
                  "ratings", "bad_reviews", "overdue_cases")  # fmt: skip


def working_time_rows(
    calendar: Calendar, first: dt.date, last: dt.date
) -> list[tuple[dt.datetime, dt.datetime, float, float, dt.datetime, bool, str, str]]:
    """jiancha.working_time's rows for the local days ``first`` .. ``last``, from ``calendar``.

    Each working day (or office-hours interval) becomes a stretch whose working days are
    the calendar's own count at its ends (``working_days_between`` from 00:00 of
    ``first``), so the table cannot disagree with the Python calendar at any boundary,
    and the count runs linearly in between, as the calendar's kernel counts it.
    """
    tz = zoneinfo.ZoneInfo(calendar.timezone)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    work = calendar.is_workday(np.array(days, dtype="datetime64[D]"), errors="nat")
    provisional = calendar.is_provisional(np.array(days, dtype="datetime64[D]"))
    hours = calendar.office_hours or ((0, 86400),)
    spans: list[tuple[dt.datetime, dt.datetime, bool]] = []
    for day, working, prov in zip(days, work, provisional, strict=True):
        if not working:
            continue
        midnight = dt.datetime.combine(day, dt.time(0), tz)
        for lo, hi in hours:
            start = (midnight + dt.timedelta(seconds=lo)).astimezone(dt.UTC)
            end = (midnight + dt.timedelta(seconds=hi)).astimezone(dt.UTC)
            spans.append((start, end, bool(prov)))
    if not spans:
        return []
    origin = dt.datetime.combine(first - dt.timedelta(days=1), dt.time(12), tz)
    edges = np.array([e.replace(tzinfo=None) for s, t, _ in spans for e in (s, t)],
                     dtype="datetime64[s]")  # fmt: skip
    counted = calendar.working_days_between(
        np.full(edges.shape, np.datetime64(origin.astimezone(dt.UTC).replace(tzinfo=None), "s")),
        edges,
        errors="nat",
    )
    kept = [
        (start, end, float(counted[2 * n]), float(counted[2 * n + 1]), prov)
        for n, (start, end, prov) in enumerate(spans)
        if counted[2 * n + 1] > counted[2 * n]
    ]
    rows = []
    for n, (start, end, before, after, prov) in enumerate(kept):
        until = kept[n + 1][0] if n + 1 < len(kept) else end
        rows.append((start, end, before, after - before, until, prov, calendar.fingerprint,
                     calendar.timezone))  # fmt: skip
    return rows


class Snapshotter:
    """Takes the snapshots; one per daemon."""

    def __init__(self, holder: Holder, dsn: str, *, worker: Worker | None = None,
                 evaluator: Evaluator | None = None, sender: Sender | None = None,
                 notifier: Notifier | None = None, calendar: Calendar | None = None,
                 config_hash: str = "", interval: float = 5.0,
                 clock: Callable[[], float] = time.time,
                 session: db.Session = db.OWN_SESSION) -> None:  # fmt: skip
        self.holder, self.dsn = holder, dsn
        self.session = session
        self.worker, self.evaluator, self.sender = worker, evaluator, sender
        self.notifier = notifier
        self.calendar = calendar
        self.config_hash = config_hash
        self.interval = interval
        self.clock = clock
        self.reload_ok = True
        self.reloads_failed = 0
        self.beat: Callable[[], None] = lambda: None  # each snapshot, taken or not (the heartbeat)
        self.leading: Callable[[], bool] = lambda: True  # holds the leader lease
        self.rounds = self.done = 0  # snapshots begun, and the last one published
        self._wake = trio.Event()
        # the histogram of tick durations: counts at or below each bound, then all
        self.tick_buckets = [0] * (len(EVAL_BUCKETS) + 1)
        self.tick_sum = 0.0
        self.log = get_logger("monitor.observe")
        self._kept: tuple[str, dt.date] | None = None  # working_time: calendar and day written
        self._matters_kept: Mapping[str, Any] | None = None

    def _fold_ticks(self) -> None:
        """The evaluator's tick durations since the last snapshot, into the histogram."""
        if self.evaluator is None:
            return
        stats = self.evaluator.stats
        taken, stats.tick_seconds = stats.tick_seconds, []
        buckets = self.tick_buckets
        for took in taken:
            self.tick_sum += took
            for i, bound in enumerate(EVAL_BUCKETS):
                if took <= bound:
                    buckets[i] += 1
            buckets[-1] += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        conn: db.Connection | None = None
        started = False
        try:
            while True:
                self.rounds += 1
                try:
                    if conn is None:
                        conn = await db.connect(self.dsn, application_name="jiancha-metrics",
                                                session=self.session)  # fmt: skip
                    await self.take(conn)
                except (*DISCONNECTS, asyncpg.PostgresError) as exc:
                    # a failed figure must not take the daemon down: report it, carry on
                    self.log.warning(
                        "metrics_snapshot_failed", error=f"{type(exc).__name__}: {exc}"
                    )
                    if conn is not None:
                        with trio.CancelScope(shield=True):
                            await conn.close()
                    conn = None
                    await trio.to_thread.run_sync(self.holder.publish, self._figures(None))
                self.done = self.rounds
                if not started:
                    task_status.started()
                    started = True
                await self._nap()
        finally:
            if conn is not None:
                with trio.CancelScope(shield=True):
                    await conn.close()

    async def _nap(self) -> None:
        """Until the next snapshot is due or asked for, beating the heart every second."""
        self._wake = trio.Event()
        with trio.move_on_after(self.interval):
            while not self._wake.is_set():
                with trio.move_on_after(1.0):
                    await self._wake.wait()
                self.beat()

    async def fresh(self) -> None:
        """Return once a snapshot begun after this call is published (a state change)."""
        since = self.rounds
        self._wake.set()
        while self.done <= since:
            await trio.sleep(0.01)

    async def keep_tables(self, conn: db.Connection) -> None:
        """jiancha.working_time and jiancha.matters, rewritten when what they copy changed.

        Once a day and after a calendar reload for the first, after a catalogue reload
        for the second; each in one transaction, so a dashboard never reads half of it.
        """
        cal = self.evaluator.cal if self.evaluator is not None else self.calendar
        if cal is not None:
            await self._keep_working_time(conn, cal)
        matters = self.worker.matters() if self.worker is not None else None
        if matters is not None and matters is not self._matters_kept:
            async with conn.transaction():
                await conn.execute("DELETE FROM jiancha.matters")
                await conn.executemany(_MATTER_NAMES, [(code, m.name, m.department)
                                                       for code, m in matters.items()])  # fmt: skip
            self._matters_kept = matters

    async def _keep_working_time(self, conn: db.Connection, cal: Calendar) -> None:
        """Write jiancha.working_time unless it already holds this calendar's span of days.

        A start reads what the table was written from instead of writing it again: the
        rows and the calendar's first compiled call would cost a second before READY.
        """
        today = dt.datetime.fromtimestamp(self.clock(), zoneinfo.ZoneInfo(cal.timezone)).date()
        if self._kept == (cal.fingerprint, today):
            return
        back, ahead = WORKING_TIME_SPAN
        first = max(today - dt.timedelta(days=back), cal.first_day.item())
        last = min(today + dt.timedelta(days=ahead), cal.last_day.item())
        source = (cal.fingerprint, first, last)
        if self._kept is None and tuple(await conn.fetchrow(_WORKING_TIME_SOURCE) or ()) == source:
            self._kept = (cal.fingerprint, today)  # written by an earlier start today
            return
        rows = working_time_rows(cal, first, last)
        async with conn.transaction():
            await conn.execute("DELETE FROM jiancha.working_time")
            await conn.executemany(_WORKING_TIME, rows)
            await conn.execute(_WORKING_TIME_WRITTEN, *source)
        self._kept = (cal.fingerprint, today)
        self.log.info("working_time_written", calendar=cal.fingerprint, rows=len(rows))

    async def take(self, conn: db.Connection) -> None:
        try:
            await self.keep_tables(conn)
        except asyncpg.PostgresError as exc:  # refused (rights, an old schema): figures go on
            self.log.warning("dashboard_tables_failed", error=f"{type(exc).__name__}: {exc}")
        rows = {
            "cases": await conn.fetch(_OPEN_CASES),
            "cards": await conn.fetch(_ACTIVE_CARDS),
            "outbox": await conn.fetch(_OUTBOX),
            "completions": await conn.fetch(_COMPLETIONS),
            "overdue": await conn.fetch(_OVERDUE, dt.datetime.fromtimestamp(self.clock(), dt.UTC)),
            "all_cards": await conn.fetch(_CARDS),
            "ratings": await conn.fetch(_RATINGS),
            "reviews": await conn.fetch(_REVIEWS),
        }
        # rendering the exposition takes time at scale: a worker thread, not the loop
        await trio.to_thread.run_sync(self.holder.publish, self._figures(rows))

    def _horizon(self) -> float | None:
        """Unix seconds of the end of the last day with a published holiday schedule."""
        if self.calendar is None:
            return None
        through = self.calendar.published_through(np.datetime64(dt.datetime.now(dt.UTC).date()))
        return None if through is None else utc_timestamp(through)

    def _counts(self, rows: dict[str, list[Any]] | None) -> dict[str, Any]:
        """The aggregate figures of schema jiancha; the last ones while the database is away."""
        if rows is None:
            old = self.holder.get()
            return {k: getattr(old, k) for k in _FROM_DATABASE}
        return {
            "open_cases": self._open_cases(rows["cases"]),
            "active_cards": {(r["level"], r["rule"], r["department"]): int(r["n"])
                             for r in rows["cards"]},
            "notifications": {(r["channel"], r["state"]): int(r["n"]) for r in rows["outbox"]},
            "completions": {(r["department"], r["outcome"]): int(r["n"])
                            for r in rows["completions"]},
            "overdue_cases": {r["department"]: int(r["n"]) for r in rows["overdue"]},
            "cards_total": {(r["department"], r["level"], r["rule"]): int(r["n"])
                            for r in rows["all_cards"]},
            "ratings": {(r["department"], int(r["rating"])): int(r["n"]) for r in rows["ratings"]},
            "bad_reviews": {r["department"]: (int(r["bad"]), int(r["rectified"]))
                            for r in rows["reviews"]},
        }  # fmt: skip

    def _open_cases(self, rows: list[Any]) -> dict[tuple[str, str, str, str], int]:
        """Open cases by department, window, matter and level, the window a configured one.

        A case's window is free text from the source: a label of its own would let
        any typo or renamed counter grow the series without bound. Departments and
        matters come from the catalogue, which is bounded.
        """
        known = set(self.notifier.cfg.windows) if self.notifier is not None else set()
        out: dict[tuple[str, str, str, str], int] = {}
        for r in rows:
            window = r["window"] if r["window"] in known else OTHER_WINDOW
            key = (r["department"], window, r["matter"], r["level"])
            out[key] = out.get(key, 0) + int(r["n"])
        return out

    def _figures(self, rows: dict[str, list[Any]] | None) -> Snapshot:
        self._fold_ticks()
        w, e, snd = self.worker, self.evaluator, self.sender
        stats = e.stats if e is not None else None
        due = e.wake_at() if e is not None else None
        per = snd.stats.by_channel if snd is not None else {}
        cfg = self.notifier.cfg if self.notifier is not None else None
        return Snapshot(
            taken_at=self.clock(),
            version=__version__,
            database_up=rows is not None,
            levels=LEVELS,
            outbox_states=OUTBOX_STATES,
            outcomes=OUTCOMES,
            departments=tuple(sorted(cfg.departments)) if cfg is not None else (),
            channels=tuple(sorted(cfg.channels)) if cfg is not None else (),
            rules=tuple(sorted({r.rule for r in e.ruleset.rules})) if e is not None else (),
            events=w.stats.events if w else 0,
            dead_letters=w.stats.dead_letters if w else 0,
            tail_lag=w.stats.lag(trio.current_time()) if w else 0.0,
            blocking_tx_age=w.tailer.stats.blocking_tx_age if w else 0.0,
            source_mismatch=w.stats.source_mismatch is not None if w else False,
            code_fault=w.stats.code_fault is not None if w else False,
            leader=self.leading(),
            cards_issued=dict(stats.issued_by_level) if stats else {},
            cards_closed=stats.cards_closed if stats else 0,
            cards_revoked=stats.cards_revoked if stats else 0,
            escalations=stats.escalated if stats else 0,
            cases_not_decided=stats.not_decided if stats else 0,
            eval_buckets=tuple(self.tick_buckets),
            eval_sum=self.tick_sum,
            next_crossing=None if due is None else float(due),
            open_clocks=e.scheduler.rows() if e is not None else 0,  # regional tables too
            delivered={c: v["delivered"] for c, v in per.items()},
            failed={c: v["failed"] for c, v in per.items()},
            unrouted=self.notifier.unrouted if self.notifier is not None else 0,
            calendar_published_through=self._horizon(),
            rules_hash=e.ruleset.fingerprint if e is not None else "",
            calendar_hash=e.cal.fingerprint if e is not None else "",
            config_hash=self.config_hash,
            reload_ok=self.reload_ok,
            reloads_failed=self.reloads_failed,
            **self._counts(rows),
        )
