"""``jiancha run``: one trio nursery that owns every component.

For now the tailer carries the evaluator (cards are decided in the tailer's
transactions and at the scheduler's crossing instants); the service issue
adds the outbox sender, the metrics server and the reloader as siblings.
Signals are handled here at the edge, never inside components, so the same
``serve`` runs unchanged inside tests.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from dataclasses import dataclass, field
from typing import Any

import trio

from exporters.metrics import Holder, registry_for
from exporters.metrics import serve as serve_metrics
from exporters.snapshot import Snapshotter
from monitor import db, systemd
from monitor.calendar import Calendar, CalendarError, load_calendar
from monitor.config import Config, NotifyConfig
from monitor.digest import Digester
from monitor.evaluator import Evaluator
from monitor.log import configure_logging, get_logger
from monitor.outbox import Notifier, Sender, build_channels, read_secret
from monitor.rules import RuleError, RuleSet, load_rules
from monitor.source import Tailer, TailerConfig
from monitor.systemd import Watchdog


@dataclass(frozen=True)
class DaemonConfig:
    source_dsn: str
    dsn: str
    batch_size: int = 5000
    poll_interval: float = 1.0
    orphan_grace: dt.timedelta = dt.timedelta(hours=1)
    rules: RuleSet = field(default_factory=load_rules)
    calendar: Calendar = field(default_factory=load_calendar)
    rules_name: str = "cards"  # what SIGHUP re-reads
    calendar_name: str = "cn"
    config: Config = field(default_factory=lambda: Config(None, NotifyConfig(), "default"))
    metrics_address: str | None = None  # None: the configuration's (127.0.0.1:9731); "": off

    def tailer(self) -> TailerConfig:
        return TailerConfig(
            source_dsn=self.source_dsn,
            dsn=self.dsn,
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
            orphan_grace=self.orphan_grace,
        )


async def serve(
    config: DaemonConfig, *, task_status: trio.TaskStatus[Tailer] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run every component until cancelled; reports ready once all have started."""
    log = get_logger("monitor.daemon")
    async with db.open_loop(), trio.open_nursery() as nursery:
        evaluator = Evaluator(config.rules, config.calendar)
        notify = config.config.notify
        channels = build_channels(notify)  # a bad channel fails here, before READY
        if channels:
            titles = {r.rule: r.title(notify.language) for r in config.rules.rules}
            evaluator.notifier = Notifier(notify, config.calendar, rule_titles=titles)
        tailer = Tailer(config.tailer(), evaluator=evaluator)
        watchdog = Watchdog()
        tailer.on_loop = watchdog.beat
        await nursery.start(tailer.run)
        sender: Sender | None = None
        if channels:
            sender = Sender(config.dsn, channels, notify)
            await nursery.start(sender.run)
            digester = Digester(config.dsn, notify, config.calendar, config.rules,
                                tailer.matters, on_queued=sender.wake)  # fmt: skip
            await nursery.start(digester.run)
        holder = Holder()
        registry = registry_for(holder)  # before the first snapshot, so it is rendered
        snapshotter = Snapshotter(holder, config.dsn, tailer=tailer, evaluator=evaluator,
                                  sender=sender, notifier=evaluator.notifier,
                                  calendar=config.calendar,
                                  config_hash=config.config.fingerprint)  # fmt: skip
        tailer.snapshotter = snapshotter
        await nursery.start(snapshotter.run)
        address = config.config.metrics_address if config.metrics_address is None else (
            config.metrics_address)  # fmt: skip
        port = None
        if address:
            cfg = config.config
            password = None
            if cfg.metrics_password_file is not None:
                password = read_secret(cfg.metrics_password_file)
            server, port = serve_metrics(
                address, registry, username=cfg.metrics_username, password=password,
                certfile=cfg.metrics_tls_cert_file, keyfile=cfg.metrics_tls_key_file,
                holder=holder,
            )  # fmt: skip
            nursery.start_soon(_stop_on_cancel, server)
        log.info(
            "ready",
            pid=os.getpid(),
            rules=config.rules.name,
            rules_hash=config.rules.fingerprint,
            calendar=config.calendar.name,
            config=str(config.config.path or "built-in defaults"),
            config_hash=config.config.fingerprint,
            channels=sorted(channels),
            metrics=f"{address.rpartition(':')[0]}:{port}" if port else None,
        )
        systemd.notify(
            "READY=1",
            f"STATUS=运行中：规则 {config.rules.name}，在办时钟 {len(evaluator.table)} 个",
        )
        task_status.started(tailer)


async def _stop_on_cancel(server: Any) -> None:
    """Shut the metrics server's thread down with the nursery."""
    try:
        await trio.sleep_forever()
    finally:
        server.shutdown()
        server.server_close()


def reload(config: DaemonConfig, tailer: Tailer) -> bool:
    """Re-read rules and calendar; on any error keep those in force (logged). True if taken."""
    log = get_logger("monitor.daemon")
    try:
        rules = load_rules(config.rules_name)
        calendar = load_calendar(config.calendar_name)
    except (RuleError, CalendarError) as exc:
        log.error("reload_failed", error=str(exc), kept_rules=config.rules_name)
        if tailer.snapshotter is not None:
            tailer.snapshotter.reload_ok = False
            tailer.snapshotter.reloads_failed += 1
        return False
    if tailer.snapshotter is not None:
        tailer.snapshotter.reload_ok = True
    evaluator = tailer.evaluator
    if evaluator is None or not evaluator.request_reload(rules, calendar):
        log.info("reload_unchanged", rules_hash=rules.fingerprint)
        return False
    tailer.wake()
    return True


async def _main(config: DaemonConfig) -> None:
    log = get_logger("monitor.daemon")
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            running: list[Tailer] = []  # filled once every component has started

            async def serving() -> None:
                running.append(await nursery.start(serve, config))

            nursery.start_soon(serving)  # not awaited: SIGTERM must work while connecting
            async for signum in signals:
                if signum == signal.SIGHUP:
                    systemd.notify("RELOADING=1")
                    if running:
                        reload(config, running[0])
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
    """Blocking entry point of ``jiancha run``; exit status 0 on a clean stop."""
    configure_logging()
    trio.run(_main, config)
    return 0


if __name__ == "__main__":  # same as `jiancha run`, for hosts without the console script
    import sys

    from monitor.cli import main

    raise SystemExit(main(["run", *sys.argv[1:]]))
