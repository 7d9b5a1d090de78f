"""Scrapes of the collector from a snapshot, as the daemon takes them."""

from __future__ import annotations

import urllib.request
from typing import Any

import trio
from prometheus_client import generate_latest

from exporters.metrics import Holder, Snapshot, registry_for
from monitor.vocab import LEVELS, OUTBOX_STATES, OUTCOMES


def snapshot(**figures: object) -> Snapshot:
    """A snapshot as the daemon takes it: with the label values every family emits."""
    return Snapshot(levels=LEVELS, outbox_states=OUTBOX_STATES, outcomes=OUTCOMES,
                    **figures)  # type: ignore[arg-type]  # fmt: skip


def scrape(snapshot: Snapshot) -> str:
    holder = Holder()
    holder.set(snapshot)
    return generate_latest(registry_for(holder)).decode()


async def until_metric(running: Any, line: str) -> None:
    """Scrape a running daemon's (`monitor.daemon.Running`) metrics until ``line`` is among
    them."""
    url = f"http://{running.metrics}/metrics"
    while True:
        body = await trio.to_thread.run_sync(lambda: urllib.request.urlopen(url, timeout=10).read())
        if f"\n{line}\n".encode() in body:
            return
        await trio.sleep(0.1)
