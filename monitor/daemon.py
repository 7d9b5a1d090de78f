"""``jiancha run``: one trio nursery that owns every component.

The worker feeds the tailer's batches through the pipeline and ticks the
scheduler (cards are decided in the batches' transactions and at the
crossing instants); the outbox sender, the digester, the snapshotter and
the metrics server are its siblings. None waits for the database:
readiness goes to systemd once all have started, and the watchdog follows
the daemon's own health (``monitor.health``), not the database's.
Signals are handled here at the edge, never inside components, so the same
``serve`` runs unchanged inside tests.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import trio

from exporters.metrics import Holder, registry_for
from exporters.metrics import serve as serve_metrics
from monitor import db, systemd
from monitor.calendar import Calendar, CalendarError, load_calendar
from monitor.calendar.regions import Regions, load_regions
from monitor.clocks.checkpoint import Checkpointer
from monitor.config import BATCH_SIZE, Config, ConfigError, NotifyConfig, load_config
from monitor.evaluator import Evaluator, configure_gc
from monitor.health import Health
from monitor.lease import Lease
from monitor.log import configure_logging, get_logger
from monitor.migrate import SchemaNotReady, schema_problem
from monitor.notify import build_channels
from monitor.observe import Snapshotter
from monitor.outbox.digest import Digester
from monitor.outbox.enqueue import Notifier
from monitor.outbox.message import Channel
from monitor.outbox.send import Sender
from monitor.report.deliver import Publisher
from monitor.report.schedule import Bulletins
from monitor.rules.load import load_rules
from monitor.rules.model import RuleError, RuleSet
from monitor.secrets import read_secret
from monitor.systemd import Watchdog
from monitor.wallclock import Clock, utc_now
from monitor.worker import Worker, WorkerConfig


@dataclass(frozen=True)
class DaemonConfig:
    source_dsn: str
    dsn: str
    batch_size: int = BATCH_SIZE
    poll_interval: float = 1.0
    orphan_grace: dt.timedelta = dt.timedelta(days=7)
    rules: RuleSet = field(default_factory=load_rules)
    calendar: Calendar = field(default_factory=load_calendar)
    regions: Regions | None = None  # regions with calendars of their own (None: none)
    rules_name: str = "cards"  # what SIGHUP re-reads
    calendar_name: str = "cn"
    config: Config = field(default_factory=lambda: Config(None, NotifyConfig(), "default"))
    metrics_address: str | None = None  # None: the configuration's (127.0.0.1:9731); "": off
    config_file: str | None = None  # what SIGHUP re-reads (None: $JIANCHA_CONFIG, default path)
    pinned: frozenset[str] = frozenset()  # settings the command line fixed: SIGHUP keeps them
    clock: Clock = utc_now  # a VirtualClock in the demo
    state_dir: Path | None = None  # the clock table's checkpoint (None: always rebuilt)
    checkpoint_every: float = 300.0
    stuck_after: float = 60.0  # a task without a heartbeat this long stops the watchdog's pings
    lease_ttl: float = 6.0  # the leader lease lasts this long unless renewed (monitor.lease)
    lease_renew: float = 2.0  # and is renewed this often
    recheck_interval: float = 30.0  # while the source does not match the cursor

    def worker(self) -> WorkerConfig:
        return WorkerConfig(
            source_dsn=self.source_dsn,
            dsn=self.dsn,
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
            orphan_grace=self.orphan_grace,
            source_session=self.session(source=True),
            session=self.session(source=False),
            recheck_interval=self.recheck_interval,
            retention=self.config.retention,
        )

    def session(self, *, source: bool) -> db.Session:
        """The approval database's sessions are read-only with a statement timeout."""
        d = self.config.daemon
        return db.Session(
            read_only=source,
            statement_timeout=d.source_statement_timeout if source else 0.0,
            keepalives_idle=d.keepalives_idle,
            keepalives_interval=d.keepalives_interval,
            keepalives_count=d.keepalives_count,
        )


@dataclass
class Running:
    """The live components, for SIGHUP and for tests that drive a daemon in-process."""

    config: DaemonConfig
    worker: Worker
    sender: Sender
    digester: Digester
    snapshotter: Snapshotter
    metrics: str | None = None  # HOST:PORT the metrics server listens on
    reloads: int = 0
    lease: Lease = field(default_factory=lambda: Lease("", _no_lead))
    bulletins: Bulletins | None = None  # the [reports] schedule (leader only)


IDLE_IN_TRANSACTION = 60.0  # seconds; see _build


async def _no_lead() -> None:
    """A lease that leads nothing (Running built by hand)."""


def _notifier(notify: NotifyConfig, calendar: Calendar,
              channels: dict[str, Channel]) -> Notifier | None:  # fmt: skip
    return Notifier(notify, calendar) if channels else None


class _Laps:
    """Milliseconds each component took to start, for the ready line."""

    def __init__(self) -> None:
        self.took: dict[str, float] = {}
        self.mark = trio.current_time()

    def __call__(self, name: str) -> None:
        now = trio.current_time()
        self.took[name] = round((now - self.mark) * 1000, 1)
        self.mark = now


def _serve_metrics(config: DaemonConfig, holder: Holder, nursery: trio.Nursery) -> str | None:
    """The /metrics endpoint on its thread; HOST:PORT it listens on (None: switched off)."""
    cfg = config.config
    address = cfg.metrics_address if config.metrics_address is None else config.metrics_address
    if not address:
        return None
    password = None
    if cfg.metrics_password_file is not None:
        password = read_secret(cfg.metrics_password_file)
    server, port = serve_metrics(
        address, holder.registry or registry_for(holder), username=cfg.metrics_username,
        password=password, certfile=cfg.metrics_tls_cert_file, keyfile=cfg.metrics_tls_key_file,
        holder=holder,
    )  # fmt: skip
    nursery.start_soon(_stop_on_cancel, server)
    return f"{address.rpartition(':')[0]}:{port}"


class _Beating(Protocol):
    beat: Callable[[], None]

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


async def _watched(
    health: Health, name: str, bound: float, component: _Beating, *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:  # fmt: skip
    """Run a component with a heart of its own: while it runs, it must beat within ``bound``."""
    with health.watch(name, bound) as heart:
        component.beat = heart.beat
        await component.run(task_status=task_status)


def _build(config: DaemonConfig, health: Health) -> Running:
    """Every component, wired; nothing runs yet. The leader's sessions carry the fence."""
    clock = config.clock
    notify = config.config.notify
    channels = build_channels(notify)  # a bad channel fails here, before READY
    evaluator = Evaluator(config.rules, config.calendar, regions=config.regions,
                          notifier=_notifier(notify, config.calendar, channels))  # fmt: skip
    checkpointer = None
    if config.state_dir is not None:
        checkpointer = Checkpointer(config.state_dir, config.checkpoint_every)
    own = config.session(source=False)
    lease = Lease(config.dsn, lambda: _lead(running, health), ttl=config.lease_ttl,
                  renew=config.lease_renew, session=own)  # fmt: skip
    # A paused ex-leader's transaction aborts (the fence); one left open by a frozen host is
    # ended by the standby that takes over (found by the lease's tag) or, failing that (another
    # role), by the server. Longer than any pause a working transaction makes (a large
    # city's table rebuild computes ~4 s between statements).
    fenced = replace(own, fence=lease.fence, tag=lease.tag,
                     idle_in_transaction_timeout=IDLE_IN_TRANSACTION)  # fmt: skip
    worker = Worker(replace(config.worker(), session=fenced), evaluator=evaluator,
                    clock=clock, checkpointer=checkpointer)  # fmt: skip
    # The sender and the digester run even without channels, so that a reload that
    # adds the first channel needs no restart.
    sender = Sender(config.dsn, channels, notify, clock=clock, session=fenced,
                    token=lambda: lease.token, may_send=lambda: lease.leading)  # fmt: skip
    digester = Digester(config.dsn, notify, config.calendar, config.rules, worker.matters,
                        clock=clock, on_queued=sender.wake, session=fenced)  # fmt: skip
    holder = Holder()
    registry_for(holder)  # before the first snapshot, so that it is rendered
    snapshotter = Snapshotter(holder, config.dsn, worker=worker, evaluator=evaluator,
                              sender=sender, notifier=evaluator.notifier,
                              calendar=config.calendar, config_hash=config.config.fingerprint,
                              clock=lambda: clock().timestamp(), session=own)  # fmt: skip
    snapshotter.leading = lambda: lease.leading
    running = Running(config, worker, sender, digester, snapshotter, lease=lease,
                      bulletins=_bulletins(config, worker, sender, fenced))  # fmt: skip
    return running


def _bulletins(config: DaemonConfig, worker: Worker, sender: Sender,
               session: db.Session) -> Bulletins:  # fmt: skip
    """The bulletins of ``[reports]``, built, stored and queued on the leader's fenced sessions."""
    cfg = config.config
    publisher = Publisher(config.dsn, cfg.reports, cfg.notify, config.calendar, config.rules,
                          base_url=cfg.web_base_url, session=session,
                          matter_names=lambda: {k: m.name for k, m in worker.matters().items()},
                          on_queued=sender.wake)  # fmt: skip
    return Bulletins(cfg.reports.schedules, config.calendar, publisher, clock=config.clock,
                     tz=config.calendar.timezone)  # fmt: skip


async def _lead(running: Running, health: Health) -> None:
    """The leader's work: tail, evaluate, send. Cancelled when the lease is lost."""
    bound = running.config.stuck_after
    try:
        async with trio.open_nursery() as nursery:
            for name, component in (("sender", running.sender), ("digester", running.digester),
                                    ("worker", running.worker)):  # fmt: skip
                nursery.start_soon(_watched, health, name, bound, component)
            if running.bulletins is not None:
                nursery.start_soon(_watched, health, "reports", bound, running.bulletins)
    finally:
        running.worker.stats.connected = False


async def serve(
    config: DaemonConfig, *, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
    on_up: Callable[[Running], None] | None = None,
) -> None:  # fmt: skip
    """Run every component until cancelled.

    The snapshotter, the metrics server and the lease start without waiting for
    the database, and READY=1 goes to systemd once they are up (``on_up`` gets
    the components then); the watchdog is fed by the daemon's own health. The
    instance that holds the lease runs the worker, the sender and the digester;
    the ``ready`` log line and ``task_status`` follow its worker's first session.
    """
    lap = _Laps()
    health = Health()
    bound = config.stuck_after
    async with db.open_loop(), trio.open_nursery() as nursery:
        running = _build(config, health)
        worker, snapshotter, lease = running.worker, running.snapshotter, running.lease
        # the first snapshot says jiancha_database_up 0 when the database is away
        await nursery.start(_watched, health, "snapshot", bound, snapshotter)
        running.metrics = _serve_metrics(config, snapshotter.holder, nursery)
        lap("metrics")
        await nursery.start(_watched, health, "lease", bound, lease)
        watchdog = Watchdog()
        nursery.start_soon(health.supervise, watchdog)
        systemd.notify("READY=1", status_line(running, trio.current_time()))
        get_logger("monitor.daemon").info("started", pid=os.getpid(), metrics=running.metrics,
                                          holder=lease.holder)  # fmt: skip
        if on_up is not None:
            on_up(running)
        if systemd.enabled():
            # as often as the watchdog pings, at most every 10 s
            nursery.start_soon(_status, running, min(10.0, watchdog.interval or 10.0))
        await worker.connected_once.wait()
        with trio.move_on_after(10):  # the first scrape after `ready` sees the worker
            await snapshotter.fresh()
        lap("worker")
        _ready(config, worker, sorted(running.sender.channels), running.metrics, lap.took)
        task_status.started(running)


def _ready(config: DaemonConfig, worker: Worker, channels: list[str], metrics: str | None,
           took: dict[str, float]) -> None:  # fmt: skip
    """The ready line in the log: every component runs and the database answered."""
    get_logger("monitor.daemon").info(
        "ready",
        pid=os.getpid(),
        rules=config.rules.name,
        rules_hash=config.rules.fingerprint,
        calendar=config.calendar.name,
        config=str(config.config.path or "built-in defaults"),
        config_hash=config.config.fingerprint,
        channels=channels,
        metrics=metrics,
        startup_ms=took,
        table=worker.table_from,
        redecided=worker.redecided,
        source_mismatch=worker.stats.source_mismatch is not None,
        gc_thresholds=list(gc.get_threshold()),
    )


def status_line(running: Running, now: float) -> str:
    """What `systemctl status jiancha` shows: standby or leading, connected, lag, clocks, cards."""
    worker, evaluator, lease = running.worker, running.worker.evaluator, running.lease
    st = worker.stats
    if not lease.stats.ever_connected:
        return f"STATUS=已启动，等待数据库（已重试 {lease.stats.retries} 次）"
    if not lease.stats.connected:
        return f"STATUS=数据库未连接，重连中（已重连 {lease.stats.retries} 次）"
    if not lease.leading:
        leader = lease.stats.leader or "无"
        return f"STATUS=待命（备用实例），主实例：{leader}；本实例 {lease.holder}"
    if st.source_mismatch is not None:
        return "STATUS=拒绝读取：源数据库已变更（见日志 source_mismatch，jiancha db reset-cursor）"
    if st.code_fault is not None:
        return (f"STATUS=暂停读取：连续多个事件因同一程序错误失败（事件 {st.code_fault.event_id}，"
                "见日志 code_fault），定时重试")  # fmt: skip
    if not st.connected:
        if not worker.connected_once.is_set():
            return f"STATUS=已启动，等待数据库（已重试 {st.reconnects} 次）"
        return f"STATUS=数据库未连接，重连中（已重连 {st.reconnects} 次）"
    rows = evaluator.scheduler.rows() if evaluator is not None else 0
    issued = evaluator.stats.cards_issued if evaluator is not None else 0
    stuck = evaluator.stats.not_decided if evaluator is not None else 0
    odd = f"；{stuck} 个案件无法判定（见日志 cases_not_decided）" if stuck else ""
    return (f"STATUS=运行中：延迟 {st.lag(now):.1f} 秒，在办时钟 {rows} 个，"
            f"已处理事件 {st.events} 条，已发牌 {issued} 张{odd}")  # fmt: skip


async def _status(running: Running, every: float = 10.0) -> None:
    """Keep systemd's STATUS= current (lag, open clocks) while the daemon runs."""
    while True:
        await trio.sleep(every)
        systemd.notify(status_line(running, trio.current_time()))


async def _stop_on_cancel(server: Any) -> None:
    """Shut the metrics server's thread down with the nursery."""
    try:
        await trio.sleep_forever()
    finally:
        server.shutdown()
        server.server_close()


# Settings a running daemon cannot take without a restart (connections, the listener).
_RESTART_ONLY = ("source_dsn", "dsn")


@dataclass(frozen=True)
class _Reloaded:
    """A configuration, its rules, calendar and channels, all loaded and validated."""

    config: Config
    rules_name: str
    calendar_name: str
    rules: RuleSet
    calendar: Calendar
    channels: dict[str, Channel]
    regions: Regions


def _load_again(old: DaemonConfig) -> _Reloaded:
    """Everything a reload takes, validated; raises what is wrong (nothing is swapped yet)."""
    cfg = load_config(old.config_file)
    rules_name = old.rules_name if "rules" in old.pinned else cfg.daemon.rules
    calendar_name = old.calendar_name if "calendar" in old.pinned else cfg.daemon.calendar
    calendar = load_calendar(calendar_name)
    return _Reloaded(cfg, rules_name, calendar_name, load_rules(rules_name), calendar,
                     build_channels(cfg.notify),
                     load_regions(calendar, cfg.daemon.region_calendars))  # fmt: skip


def _needs_restart(old: DaemonConfig, cfg: Config) -> list[str]:
    """The changed settings a running daemon cannot take (connections, the listener)."""
    pinned = old.pinned
    keys = [
        k
        for k in _RESTART_ONLY
        if k not in pinned and getattr(cfg.daemon, k) not in (None, getattr(old, k))
    ]
    if "metrics_address" not in pinned and cfg.metrics_address != old.config.metrics_address:
        keys.append("metrics.address")
    return keys


def reload(running: Running) -> bool:
    """Re-read configuration, rules and calendar; on any error keep all in force. True if taken.

    Everything is loaded and validated first (the file, its channels and their
    secrets, the rules, the calendar) and only then swapped in, so a half-good
    edit never runs.
    """
    log = get_logger("monitor.daemon")
    old = running.config
    snap = running.snapshotter
    try:
        new = _load_again(old)
    except (ConfigError, RuleError, CalendarError, OSError) as exc:
        log.error("reload_failed", error=str(exc), kept_config=old.config.fingerprint,
                  kept_rules=old.rules.fingerprint)  # fmt: skip
        snap.reload_ok = False
        snap.reloads_failed += 1
        return False
    snap.reload_ok = True
    cfg, rules, calendar, channels = new.config, new.rules, new.calendar, new.channels
    restart = _needs_restart(old, cfg)
    if restart:
        log.warning("reload_needs_restart", keys=restart)
    worker = running.worker
    worker.configure(**{key: getattr(cfg.daemon, key)
                        for key in ("batch_size", "poll_interval", "orphan_grace")
                        if key not in old.pinned})  # fmt: skip
    wcfg = worker.config
    running.config = replace(
        old, config=cfg, rules=rules, calendar=calendar, regions=new.regions,
        rules_name=new.rules_name,
        calendar_name=new.calendar_name, batch_size=wcfg.batch_size,
        poll_interval=wcfg.poll_interval, orphan_grace=wcfg.orphan_grace,
    )  # fmt: skip
    notifier = _notifier(cfg.notify, calendar, channels)
    evaluator = worker.evaluator
    before = evaluator.notifier if evaluator is not None else None
    if notifier is not None and before is not None:  # counters carry over
        notifier.unrouted, notifier.dropped = before.unrouted, before.dropped
    running.sender.configure(channels, cfg.notify)
    digester = running.digester
    digester.cfg, digester.cal, digester.ruleset = cfg.notify, calendar, rules
    if running.bulletins is not None:
        _reconfigure_bulletins(running.bulletins, cfg, calendar, rules)
    snap.notifier, snap.calendar, snap.config_hash = notifier, calendar, cfg.fingerprint
    if "log" not in old.pinned:
        configure_logging(cfg.daemon.log_level, json=_log_json(cfg.daemon.log_format))
    changed = cfg.fingerprint != old.config.fingerprint
    if evaluator is not None:
        evaluator.notifier = notifier
        changed = evaluator.request_reload(rules, calendar, new.regions) or changed
    running.reloads += 1
    log.info("reloaded" if changed else "reload_unchanged", config_hash=cfg.fingerprint,
             rules_hash=rules.fingerprint, calendar=calendar.name,
             channels=sorted(channels))  # fmt: skip
    running.sender.wake()
    worker.wake()
    return changed


def _reconfigure_bulletins(b: Bulletins, cfg: Config, calendar: Calendar, rules: RuleSet) -> None:
    """A reload's ``[reports]``, ``[web]`` and channels, from the next run on."""
    b.schedules, b.cal = cfg.reports.schedules, calendar
    work = b.work
    if isinstance(work, Publisher):
        work.reports, work.notify, work.cal, work.rules = cfg.reports, cfg.notify, calendar, rules
        work.base_url = cfg.web_base_url


def _log_json(fmt: str) -> bool | None:
    return {"json": True, "console": False}.get(fmt)


async def _main(config: DaemonConfig) -> None:
    log = get_logger("monitor.daemon")
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            running: list[Running] = []  # filled once every component has started
            # not awaited: SIGTERM must work while connecting
            nursery.start_soon(partial(serve, config, on_up=running.append))
            async for signum in signals:
                if signum == signal.SIGHUP:
                    systemd.notify("RELOADING=1")
                    if running:
                        reload(running[0])
                    else:
                        log.warning("reload_ignored", reason="still starting")
                    systemd.notify("READY=1")
                    continue
                # Cancelling rolls back the batch in flight (its transaction never
                # commits), so the next start resumes exactly at the last commit.
                log.info("stopping", signal=signal.Signals(signum).name)
                systemd.notify("STOPPING=1")
                nursery.cancel_scope.cancel()
                break
    log.info("stopped")


def run(config: DaemonConfig) -> int:
    """Blocking entry point of ``jiancha run``; exit status 0 on a clean stop.

    Refuses a database whose jiancha schema is absent or behind (`SchemaNotReady`):
    its first statement would otherwise fail deep in a component, as a traceback,
    at every restart systemd makes. Under systemd the restarts go on, each a line
    saying what to run, and the first after ``jiancha db migrate`` starts.
    """
    settings = config.config.daemon
    configure_logging(settings.log_level, json=_log_json(settings.log_format))
    problem = trio.run(schema_problem, config.dsn)
    if problem is not None:
        get_logger("monitor.daemon").error("schema_not_ready", reason=problem)
        raise SchemaNotReady(problem)
    configure_gc()
    trio.run(_main, config)
    return 0
