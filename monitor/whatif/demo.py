"""``jiancha demo``: a county service centre in a terminal, on an embedded PostgreSQL.

It wraps the real parts, it does not imitate them: pgserver runs a private
PostgreSQL in a local folder, ``deploy/sql/source.sql`` and the migrations
build the two schemas, `monitor.whatif.simulate` writes a centre's case events, and
the daemon's own ``serve`` tails them, issues the cards and serves the
metrics. Both run on one virtual clock (`VirtualClock`), so a working day
passes in minutes. Before the live part, ``history`` working days of events
are written as a backlog: the daemon starts on a centre in mid-stream, with
open cases at every stage, and catches up as it would after an outage.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sys
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import trio

from monitor import db, migrate
from monitor.calendar import Calendar, load_calendar
from monitor.daemon import DaemonConfig, Running, serve
from monitor.evaluator import configure_gc
from monitor.i18n import h
from monitor.log import configure_logging, get_logger
from monitor.paths import DEMO_DIR
from monitor.rules.load import load_rules
from monitor.rules.model import RuleSet
from monitor.source.tailer import last_event_id
from monitor.wallclock import VirtualClock
from monitor.whatif.simulate import (
    Catalogue,
    Event,
    between,
    generate,
    load_catalogue,
    next_working_day,
)
from monitor.whatif.source_writer import Progress, install_matters, write_events
from monitor.whatif.view import period_figures, read_view, render

DEMO_DATABASE = "jiancha_demo"
DEFAULT_DIR = DEMO_DIR
OPENING = dt.time(8, 30)  # the virtual clock starts as the hall opens


@dataclass(frozen=True)
class DemoOptions:
    speed: float = 600.0  # virtual seconds per real second: a working day in ~1 min
    days: int = 1  # live working days
    history: int = 10  # working days of backlog before the live part
    headless: bool = False
    directory: Path = DEFAULT_DIR
    seed: int = 2024
    per_day: int = 560
    start: dt.date | None = None  # first live day (default: the next working day)
    metrics_address: str = "127.0.0.1:9731"
    json: bool = False
    refresh: float = 0.5  # real seconds between redraws of the live view


# --- the period -----------------------------------------------------------------------


def working_days_back(cal: Calendar, day: dt.date, n: int) -> dt.date:
    """The working day ``n`` working days before ``day`` (``day`` itself when n = 0)."""
    span = np.arange(np.datetime64(day - dt.timedelta(days=3 * n + 30), "D"),
                     np.datetime64(day, "D"))  # fmt: skip
    work = span[cal.is_workday(span)]
    return day if n == 0 else dt.date.fromisoformat(str(work[-n]))


def live_days(cal: Calendar, first: dt.date, n: int) -> list[dt.date]:
    days: list[dt.date] = []
    d = first
    while len(days) < n:
        if bool(cal.is_workday(np.asarray([np.datetime64(d, "D")]))[0]):
            days.append(d)
        d += dt.timedelta(days=1)
    return days


@dataclass(frozen=True)
class Timeline:
    """The demo's timeline: backlog days, then live days, on the calendar's local time."""

    history_from: dt.date
    first: dt.date
    last: dt.date
    start: dt.datetime  # the virtual clock's start (UTC): the first live day's opening
    end: dt.datetime  # the end of the last live day (UTC): headless runs stop here

    @classmethod
    def plan(cls, cal: Calendar, opts: DemoOptions) -> Timeline:
        tz = zoneinfo.ZoneInfo(cal.timezone)
        first = opts.start or next_working_day(cal)
        days = live_days(cal, first, opts.days)
        start = dt.datetime.combine(first, OPENING, tz).astimezone(dt.UTC)
        end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(0), tz)
        return cls(working_days_back(cal, first, opts.history), first, days[-1], start,
                   end.astimezone(dt.UTC))  # fmt: skip


# --- the embedded database --------------------------------------------------------------


def _no_pgserver() -> str:
    return h(
        "jiancha demo 需要内嵌 PostgreSQL（pgserver）：pip install 'jiancha[demo]'，"
        "或在源码目录运行 make demo",
        "jiancha demo needs the embedded PostgreSQL (pgserver): "
        "pip install 'jiancha[demo]', or run make demo in a checkout",
    )


class DemoUnavailable(RuntimeError):
    """This install has no embedded PostgreSQL (the ``demo`` extra)."""


def _pgserver() -> Any:
    """The pgserver module (quietly: it warns about $XDG_RUNTIME_DIR when unset)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        try:
            import pgserver
        except ImportError:
            raise DemoUnavailable(_no_pgserver()) from None
    return pgserver


def start_postgres(directory: Path) -> Any:
    """pgserver in ``directory/pg``, stopped again by ``cleanup()``."""
    pgserver = _pgserver()

    directory.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(directory / "pg", cleanup_mode="stop")


def _database(uri: str, name: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


async def fresh_database(admin_uri: str) -> str:
    """An empty ``jiancha_demo`` with the source contract and schema jiancha."""
    async with await db.connect(admin_uri, application_name="jiancha-demo") as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DEMO_DATABASE}")
    dsn = _database(admin_uri, DEMO_DATABASE)
    async with await db.connect(dsn, application_name="jiancha-demo") as conn:
        await migrate.install_source(conn)
        await migrate.migrate(conn)
    return dsn


def free_address(wanted: str) -> str:
    """``wanted`` if its port is free, else the same host on a port the system picks."""
    host, _, port = wanted.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return f"{host}:0"
    return wanted


@dataclass
class Outcome:
    period: Timeline
    simulated: dict[str, Any]
    seen: dict[str, Any]
    metrics: str | None
    stopped_early: bool


@dataclass(frozen=True)
class _Plan:
    """The demo's calendar, rules, catalogue, period and events, before anything runs."""

    cal: Calendar
    rules: RuleSet
    catalogue: Catalogue
    period: Timeline
    backlog: list[Event]
    live: list[Event]
    simulated: dict[str, Any]  # the live period's cases as simulated, to compare with jiancha

    @classmethod
    def of(cls, opts: DemoOptions) -> _Plan:
        from monitor.whatif.figures import figures as simulated_figures

        cal = load_calendar("cn")
        catalogue = load_catalogue()
        period = Timeline.plan(cal, opts)
        days = (period.last - period.history_from).days + 1
        events = generate(catalogue, cal, period.history_from, days, seed=opts.seed,
                          per_day=opts.per_day)  # fmt: skip
        backlog = between(events, until=period.start)
        live = [e for e in events[len(backlog) :] if e.occurred_at <= period.end]
        mine = {e.case_id for e in live if e.kind == "submitted"}
        simulated = simulated_figures([e for e in live if e.case_id in mine], catalogue.matters,
                                      cal).as_json()  # fmt: skip
        return cls(cal, load_rules("cards"), catalogue, period, backlog, live, simulated)


async def _watch(conn: db.Connection, running: Running, clock: VirtualClock, plan: _Plan,
                 opts: DemoOptions, on_view: Callable[[Any], None] | None,
                 progress: list[Progress]) -> None:  # fmt: skip
    """Redraw the view until the end of the period (every ``opts.refresh`` real seconds)."""
    tz = zoneinfo.ZoneInfo(plan.cal.timezone)
    while clock() < plan.period.end:
        if on_view is not None:
            now = clock()
            day = dt.datetime.combine(now.astimezone(tz).date(), dt.time(0), tz)
            v = await read_view(conn, now, day)
            v.written, v.total = progress[-1].written, len(plan.live)
            on_view(render(v, tz=tz, speed=opts.speed, metrics=running.metrics,
                           rules=plan.rules, matters=plan.catalogue.matters))  # fmt: skip
        await trio.sleep(opts.refresh)


# A service started beside the daemon on the demo's database and clock (the web console,
# from the CLI: this layer does not know it): ``await nursery.start(starter, dsn, clock)``,
# which hands back what to do once the period is over (or None).
Starter = Callable[..., Awaitable[Any]]
AtEnd = Callable[[], Awaitable[None]]


async def run_demo(opts: DemoOptions, *, out: TextIO,
                   on_view: Callable[[Any], None] | None = None,
                   beside: Starter | None = None,
                   on_period_end: Callable[[Outcome], None] | None = None) -> Outcome:  # fmt: skip
    """Everything from an empty folder to the period's figures; stops cleanly when cancelled.

    With ``beside`` (the console), the period's end does not end the demo: the clock is
    held there, ``on_period_end`` hears the figures, and everything stays up until the
    demo is cancelled (Ctrl-C), so the cards can be looked at.
    """
    log = get_logger("monitor.whatif.demo")
    plan = _Plan.of(opts)
    period = plan.period
    server = await trio.to_thread.run_sync(start_postgres, opts.directory)
    stopped_early = True
    try:
        async with db.open_loop():
            dsn = await fresh_database(server.get_uri())
            async with await db.connect(dsn, application_name="jiancha-demo") as conn:
                await install_matters(conn, plan.catalogue.matters)
                await write_events(conn, plan.backlog, batch_size=5000)
            log.info("demo_backlog", events=len(plan.backlog),
                     since=period.history_from.isoformat())  # fmt: skip
            clock = VirtualClock(period.start, opts.speed, running=False)
            if beside is not None:  # the demo outlives its period: its time stops at the end
                clock.stop_at(period.end)
            config = DaemonConfig(source_dsn=dsn, dsn=dsn, poll_interval=0.2, rules=plan.rules,
                                  calendar=plan.cal, clock=clock,
                                  metrics_address=free_address(opts.metrics_address))  # fmt: skip
            progress = [Progress(0, len(plan.live), None)]
            async with trio.open_nursery() as nursery:
                running: Running = await nursery.start(serve, config)
                at_end: AtEnd | None = None
                if beside is not None:
                    at_end = await nursery.start(beside, dsn, clock)
                clock.run()  # the day begins once the daemon is ready
                if not opts.json:
                    out.write(h(f"指标：http://{running.metrics}/metrics\n",
                                f"metrics: http://{running.metrics}/metrics\n"))  # fmt: skip
                    out.flush()

                async def simulate() -> None:
                    async with await db.connect(dsn, application_name="jiancha-simulate") as w:
                        await write_events(w, plan.live, clock=clock, progress=progress.append)

                nursery.start_soon(simulate)
                async with await db.connect(dsn, application_name="jiancha-demo-view") as conn:
                    await _watch(conn, running, clock, plan, opts, on_view, progress)
                    # the end of the period: let the daemon take the last events and ticks
                    await _settle(conn, running, period.end)
                    seen = await period_figures(conn, period.start, period.end)
                    stopped_early = False
                    if beside is not None:
                        await store_bulletins(dsn, plan, opts, clock())
                        if on_period_end is not None:
                            on_period_end(Outcome(period, plan.simulated, seen, running.metrics,
                                                  False))  # fmt: skip
                        if at_end is not None:
                            await at_end()
                        await trio.sleep_forever()  # until Ctrl-C
                    nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.cleanup)
    return Outcome(period, plan.simulated, seen, running.metrics, stopped_early)


async def store_bulletins(dsn: str, plan: _Plan, opts: DemoOptions, now: dt.datetime) -> None:
    """Each live day's daily bulletin (日监测), stored as the daemon's schedule stores it, so
    the console's 监察通报 has the demo's days to open. Optional: a machine without the
    fonts or WeasyPrint's libraries still gets the rest of the demo, and a log line."""
    from monitor.i18n import current_lang
    from monitor.report import build_report, publish
    from monitor.report.period import containing

    log = get_logger("monitor.whatif.demo")
    lang = current_lang()
    async with await db.connect(dsn, application_name="jiancha-demo") as conn:
        for day in live_days(plan.cal, plan.period.first, opts.days):
            period = containing("daily", day, plan.cal.timezone)
            try:
                report = await build_report(conn, "daily", period, None, now, cal=plan.cal,
                                            rules=plan.rules, lang=lang)  # fmt: skip
                stored = await publish(conn, report, lang=lang)
            except Exception:  # an extra of the demo: never its end
                log.warning("demo_bulletin_failed", day=day.isoformat(), exc_info=True)
                continue
            log.info("demo_bulletin_stored", day=day.isoformat(), report=stored.id)


async def _settle(conn: db.Connection, running: Running, end: dt.datetime,
                  timeout: float = 30.0) -> None:  # fmt: skip
    """Wait until the daemon has read every event and issued every card due by ``end``.

    So the figures of a period do not depend on where the real-time scheduling
    of the two tasks left off (bounded by ``timeout``).
    """
    ev = running.worker.evaluator
    with trio.move_on_after(timeout):
        while True:
            read = running.worker.stats.cursor.event_id >= await last_event_id(conn)
            due = ev.wake_at() if ev is not None else None
            idle = ev is None or (not ev.undecided and not ev.scheduler.dirty
                                  and (due is None or due > end.timestamp()))  # fmt: skip
            if read and idle:
                break
            running.worker.wake()
            await trio.sleep(0.1)


def print_figures(o: Outcome, out: TextIO, as_json: bool) -> None:
    p = o.period
    if as_json:
        doc = {"first_day": p.first.isoformat(), "last_day": p.last.isoformat(),
               "history_from": p.history_from.isoformat(), "jiancha": o.seen,
               "simulated_cases_of_the_period": o.simulated}  # fmt: skip
        json.dump(doc, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
        return
    s = o.seen
    rate = "—" if s["on_time_rate"] is None else f"{100 * s['on_time_rate']:.1f}%"
    share = "—" if s["immediate_share"] is None else f"{100 * s['immediate_share']:.0f}%"
    c = s["cards"]
    out.write(h(
        f"\n演示期 {p.first} 至 {p.last}（此前 {p.history_from} 起的办件作为积压写入）\n"
        f"  受理 {s['accepted']} 件（即办 {share}），办结 {s['completed']} 件，"
        f"按期办结率 {rate}，超期办结 {s['late']} 件\n"
        f"  亮牌：蓝 {c['blue']}、黄 {c['yellow']}、红 {c['red']}；账本共 {s['cards_total']} 张"
        f"（另撤销 {s['cards_revoked']} 张）\n"
        f"  差评 {s['bad_ratings']} 条；期末在办 {s['open']} 件（超期 {s['overdue']} 件）；"
        f"死信 {s['dead_letters']} 条\n",
        f"\nDemo period {p.first} to {p.last} (cases since {p.history_from} written as a "
        f"backlog first)\n"
        f"  accepted {s['accepted']} (immediate {share}), completed {s['completed']}, "
        f"on time {rate}, completed late {s['late']}\n"
        f"  cards: blue {c['blue']}, yellow {c['yellow']}, red {c['red']}; "
        f"{s['cards_total']} in the ledger ({s['cards_revoked']} more revoked)\n"
        f"  bad ratings {s['bad_ratings']}; open at the end {s['open']} "
        f"({s['overdue']} overdue); "
        f"dead letters {s['dead_letters']}\n",
    ))  # fmt: skip


def main(opts: DemoOptions, out: TextIO, beside: Starter | None = None) -> int:
    """Blocking entry point: the live view on a terminal, or ``--headless`` figures. With
    ``beside`` (the console) the figures come at the period's end and the demo stays up
    until Ctrl-C, which is then its normal end (exit 0)."""
    opts.directory.mkdir(parents=True, exist_ok=True)
    logfile = (opts.directory / "jiancha.log").open("a", encoding="utf-8")
    configure_logging("INFO", json=True, stream=logfile)  # the screen is the view's
    os.environ.setdefault("NUMBA_CACHE_DIR", str(opts.directory / "numba"))
    result: list[Outcome] = []
    ended: list[Outcome] = []  # the period's end reached, with ``beside``

    def period_end(o: Outcome) -> None:
        ended.append(o)
        print_figures(o, out, opts.json)
        if not opts.json:
            out.write(h("\n演示期已结束，时钟停在期末；控制台继续运行，Ctrl-C 结束。\n",
                        "\nThe period is over and its clock held there; the console stays up "
                        "until Ctrl-C.\n"))  # fmt: skip
        out.flush()

    async def session() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop_on_signal)
                kw: dict[str, Any] = {"beside": beside, "on_period_end": period_end}
                if opts.headless:
                    result.append(await run_demo(opts, out=out, **kw))
                else:
                    from rich.live import Live

                    with Live(refresh_per_second=4, screen=False, transient=False) as live:
                        result.append(await run_demo(opts, out=out, on_view=live.update, **kw))
                nursery.cancel_scope.cancel()

    configure_gc()  # the demo runs the daemon's components: the daemon's collector settings
    try:
        trio.run(session)
    finally:  # pgserver logs once more at exit: not into a closed file
        configure_logging("WARNING", json=True, stream=sys.stderr)
        logfile.close()
    if not result and ended:
        out.write(h("已停止。\n", "Stopped.\n")) if not opts.json else None
        return 0
    if not result:
        out.write(
            h(
                "\n已停止：守护进程、模拟器与数据库均已退出。\n",
                "\nStopped: the daemon, the simulator and the database have exited.\n",
            )
        )
        return 130
    print_figures(result[0], out, opts.json)
    out.write(
        h(f"日志：{opts.directory / 'jiancha.log'}\n", f"log: {opts.directory / 'jiancha.log'}\n")
    ) if not opts.json else None
    return 0


__all__ = ["DEFAULT_DIR", "DemoOptions", "DemoUnavailable", "Event", "check_available", "main",
           "run_demo"]  # fmt: skip


def check_available() -> None:
    """Raise `DemoUnavailable` (saying what to install) when the embedded PostgreSQL is absent."""
    _pgserver()
