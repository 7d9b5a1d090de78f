"""The webhook receiver is down for 10 minutes while cards are issued (issue 17).

The whole daemon (``monitor.daemon.serve``: worker, sender, digester,
snapshotter) runs in-process on a ``VirtualClock`` 100 times faster than
the wall clock: every component takes "now" from it and converts its waits
with ``real_seconds``, so the sender believes ten minutes pass in six real
seconds. (trio's ``MockClock`` cannot drive it: its autojump fires while
the tasks wait on PostgreSQL and HTTP sockets through trio-asyncio, which it
cannot see.) The receiver is a real HTTP server on 127.0.0.1: its port is
closed for the first half of the outage (connection refused), and it
answers 503 for the second half. Cases arrive in waves across the outage.

The backoff is the default one (5 s doubling to 600 s, jittered down to
half) and so is ``give_up_after`` (24 h): no notification may be given up,
none may be tried more often than the schedule allows, and once the
receiver answers 200 each is delivered exactly once.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import trio

from monitor import db
from monitor.config import NotifyConfig, load_config
from monitor.daemon import DaemonConfig, Running, serve
from monitor.wallclock import VirtualClock
from tests import httpkit
from tests.httpkit import Receiver, Reply, Request
from tests.sourcekit import write
from tests.test_resilience import SEED, plan, prepare_source

receiver = httpkit.receiver

RATE = 100.0  # virtual seconds per real second
START = dt.datetime(2025, 6, 8, 2, 0, tzinfo=dt.UTC)  # a Sunday: no morning digest falls due
REFUSED = 300.0  # virtual seconds of connection refused
FAILING = 300.0  # then virtual seconds of 503
WAVES = 3
PER_WAVE = 20  # cases; most of them earn a card


def attempts_allowed(cfg: NotifyConfig, down: float) -> int:
    """The most attempts a notification can fail in ``down`` seconds: attempt k+1 comes
    at least half of the k-th backoff ceiling after attempt k (the jitter's lower end)."""
    attempts, elapsed = 1, 0.0
    while True:
        ceiling = min(cfg.backoff_max, cfg.backoff_initial * 2 ** (attempts - 1))
        if elapsed + ceiling / 2 > down:
            return attempts
        elapsed += ceiling / 2
        attempts += 1


class Outage:
    """The receiver's answers: 503 while failing, 200 after; which keys got a 200."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.failing = False
        self.ok: list[str] = []
        self.refused_from = self.failing_from = self.up_from = 0.0

    def __call__(self, request: Request) -> Reply:
        if self.failing:
            return Reply(503, json={"error": "maintenance"})
        self.ok.append(request.headers.get("idempotency-key", ""))
        return Reply(200)


def config_file(path: Path, url: str) -> Path:
    """Every card to the webhook, no quiet hours; the backoff and give_up_after as shipped."""
    path.write_text(
        f'[channels.hook]\nkind = "webhook"\nurl = "{url}"\n\n'
        '[[routes]]\nkinds = ["card"]\nchannels = ["hook"]\n\n'
        "[notify.quiet_hours]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


async def _counts(conn: db.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM case_events) AS written, "
        "(SELECT count(*) FROM jiancha.events) AS taken, "
        "(SELECT count(*) FROM jiancha.cards) AS cards, "
        "(SELECT count(*) FROM jiancha.outbox) AS queued, "
        "(SELECT count(*) FROM jiancha.outbox WHERE state = 'delivered') AS delivered, "
        "(SELECT count(*) FROM jiancha.outbox WHERE state = 'failed') AS failed, "
        "(SELECT count(*) FROM jiancha.outbox_attempts) AS attempts, "
        "(SELECT count(*) FROM jiancha.outbox_attempts WHERE detail LIKE 'connection failed%') "
        " AS refused, "
        "(SELECT count(*) FROM jiancha.outbox_attempts WHERE detail LIKE 'HTTP 503%') AS http_503"
    )
    assert row is not None
    return dict(row)


async def until(clock: VirtualClock, virtual: float) -> None:
    """Sleep until ``virtual`` seconds after START on ``clock``."""
    ahead = virtual - (clock() - START).total_seconds()
    await trio.sleep(max(0.0, ahead / clock.rate))


@pytest.mark.slow
async def test_receiver_down_ten_minutes_delivers_each_once_after(dsn, receiver, tmp_path):
    began = time.monotonic()
    await prepare_source(dsn)
    outage = Outage(receiver)
    receiver.respond = outage
    config = load_config(str(config_file(tmp_path / "jiancha.toml", receiver.url("/hook"))),
                         environ={})  # fmt: skip
    notify = config.notify
    assert notify.give_up_after == dt.timedelta(hours=24)  # the default: nothing given up
    receiver.stop()  # connection refused from the start
    with trio.fail_after(5):
        while True:  # the listening socket is closed once the serving task is gone
            try:
                await (await trio.open_tcp_stream("127.0.0.1", receiver.port)).aclose()
            except OSError:
                break
            await trio.sleep(0.01)
    clock = VirtualClock(START, rate=RATE)
    cases = plan(WAVES * PER_WAVE, SEED + 170, "R")
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(serve, DaemonConfig(
            source_dsn=dsn, dsn=dsn, poll_interval=0.05, config=config, clock=clock,
            metrics_address=""))  # fmt: skip
        async with await db.connect(dsn, application_name="writer") as conn:
            # --- down: refused, then 503; cases keep coming and are carded
            t0 = outage.refused_from = (clock() - START).total_seconds()
            plan_ = [(t0 + i * (REFUSED + FAILING) / WAVES, "wave", i) for i in range(WAVES)]
            plan_ += [(t0 + REFUSED, "503", 0), (t0 + REFUSED + FAILING, "up", 0)]
            for at, what, i in sorted(plan_):
                await until(clock, at)
                if what == "wave":
                    for case in cases[i * PER_WAVE : (i + 1) * PER_WAVE]:
                        async with conn.transaction():
                            await write(conn, list(case.rows))
                elif what == "503":
                    outage.failing = True
                    await receiver.start()
                    outage.failing_from = (clock() - START).total_seconds()
            before = await _counts(conn)
            # --- up again
            outage.failing = False
            outage.up_from = (clock() - START).total_seconds()
            up_real = time.monotonic()
            with trio.fail_after(2 * notify.backoff_max / RATE + 30):
                while True:
                    after = await _counts(conn)
                    if after["queued"] and after["delivered"] == after["queued"]:
                        break
                    await trio.sleep(0.05)
            took_virtual = (clock() - START).total_seconds() - outage.up_from
            took_real = time.monotonic() - up_real
            per = await conn.fetch(
                "SELECT o.key, count(*) FILTER (WHERE NOT a.ok) AS failed, "
                "count(*) FILTER (WHERE a.ok) AS ok, min(a.at) AS first "
                "FROM jiancha.outbox o JOIN jiancha.outbox_attempts a ON a.outbox_id = o.id "
                "GROUP BY o.key"
            )
        assert running.worker.stats.events == after["written"]  # the worker never stopped
        assert not nursery.cancel_scope.cancel_called
        nursery.cancel_scope.cancel()

    down = outage.up_from - outage.refused_from
    bound = attempts_allowed(notify, down)
    # cards were issued while the receiver was down, and nothing got through or was given up
    assert before["taken"] == before["written"] and before["cards"] > 0
    assert before["queued"] == before["cards"] and before["delivered"] == 0
    assert before["failed"] == 0
    assert after["failed"] == 0 and after["queued"] == after["cards"] == before["cards"]
    # each delivered exactly once: one successful attempt, one 200 on the wire
    assert {r["ok"] for r in per} == {1} and len(per) == after["queued"]
    assert sorted(outage.ok) == sorted(r["key"] for r in per)
    # both halves of the outage were met, and nothing else went wrong
    assert after["refused"] > 0 and after["http_503"] > 0
    assert after["attempts"] == after["refused"] + after["http_503"] + len(per)
    assert after["http_503"] == len(receiver.requests) - len(outage.ok)
    worst = max(r["failed"] for r in per)
    assert worst <= bound, f"{worst} failed attempts, the schedule allows {bound} in {down:.0f} s"
    print(
        f"\nreceiver down {down / 60:.1f} virtual min ({REFUSED / 60:.0f} refused + "
        f"{FAILING / 60:.0f} answering 503, {down / RATE:.1f} s real at x{RATE:.0f}): "
        f"{after['written']} events, {after['cards']} cards, {after['queued']} notifications "
        f"queued during it; {after['attempts']} attempts in all ({after['attempts'] - len(per)} "
        f"failed: {after['refused']} refused, {after['http_503']} answered 503), at most "
        f"{worst} failed per notification (schedule allows {bound}); after recovery all "
        f"{after['delivered']} delivered in {took_virtual:.0f} virtual s ({took_real:.1f} s "
        f"real), each once (0 duplicates), 0 given up; {time.monotonic() - began:.1f} s in all"
    )
