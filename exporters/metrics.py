"""Prometheus metrics: a Collector over an immutable snapshot, on jiancha's own registry.

The daemon's components keep plain counters of their own; a snapshot task
copies them, with a few aggregate queries of schema ``jiancha``, into a
frozen ``Snapshot`` every few seconds. A scrape only reads the latest
snapshot (client_python's ``ProcessCollector`` pattern): nothing on the hot
path touches a metric object, and a slow database never slows a scrape.
Label sets are bounded (department, window, matter, level, rule, channel,
state; never a case id) and every level is emitted, at zero if need be.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hmac
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporters.httpd import DEADLINE, WORKERS, BoundedServer

# Seconds; the evaluation pass runs from well under a millisecond to ~0.1 s at 10M clocks.
EVAL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape reports, copied at one instant."""

    taken_at: float = 0.0  # unix seconds
    version: str = ""
    # The label values every family emits, at zero if need be (the daemon's vocabulary).
    levels: tuple[str, ...] = ()  # card levels, lowest first
    outbox_states: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    # The configuration's departments, channels and rules: their series exist from the
    # first scrape at zero (a panel shows 0, not "No data"), and nothing else bounds them.
    departments: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    database_up: bool = False
    events: int = 0
    dead_letters: int = 0
    tail_lag: float = 0.0
    blocking_tx_age: float = 0.0
    source_mismatch: bool = False  # refusing to read: the cursor is not a position in the source
    code_fault: bool = False  # not reading on: every event fails alone alike (a bug)
    cases_not_decided: int = 0  # cases the engine raised on, marked and left undecided
    leader: bool = True  # holds the leader lease: tails, evaluates and sends (else a standby)
    cards_issued: Mapping[str, int] = field(default_factory=dict)  # level -> since start
    cards_closed: int = 0
    cards_revoked: int = 0
    escalations: int = 0
    eval_buckets: tuple[int, ...] = ()  # cumulative counts per EVAL_BUCKETS, then +Inf
    eval_sum: float = 0.0
    next_crossing: float | None = None  # unix seconds
    open_clocks: int = 0
    notifications: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (chan, state)
    delivered: Mapping[str, int] = field(default_factory=dict)  # channel -> since start
    failed: Mapping[str, int] = field(default_factory=dict)
    unrouted: int = 0
    open_cases: Mapping[tuple[str, str, str, str], int] = field(default_factory=dict)
    active_cards: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    completions: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (dept, outcome)
    overdue_cases: Mapping[str, int] = field(default_factory=dict)  # dept -> open past deadline
    cards_total: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # dept,lvl,rule
    ratings: Mapping[tuple[str, int], int] = field(default_factory=dict)  # (dept, 1..5)
    bad_reviews: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # dept: (bad, fixed)
    calendar_published_through: float | None = None  # unix seconds of the last published day
    rules_hash: str = ""
    calendar_hash: str = ""
    config_hash: str = ""
    reload_ok: bool = True
    reloads_failed: int = 0


class JianchaCollector(Collector):
    """Yields jiancha's metric families from the latest snapshot."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families depend on the snapshot; registering must not collect

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        yield from _daemon(s)
        yield from _cards(s)
        yield from _outbox(s)
        yield from _cases(s)
        yield from _config(s)


def _labelled(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    labels: list[str],
    rows: Iterable[tuple[Sequence[str], float]],
) -> Metric:
    family = kind(name, doc, labels=labels)
    for values, n in rows:
        family.add_metric(list(values), n)
    return family


def _daemon(s: Snapshot) -> Iterator[Metric]:
    """The daemon itself: version, database, tailing."""
    info = InfoMetricFamily("jiancha_build", "jiancha's version")
    info.add_metric([], {"version": s.version})
    yield info
    yield _gauge("jiancha_database_up", "1 when the last snapshot reached the database",
                 float(s.database_up))  # fmt: skip
    yield _gauge("jiancha_leader",
                 "1 while this instance holds the leader lease (tails, evaluates, sends); "
                 "0 on a standby", float(s.leader))  # fmt: skip
    yield _gauge("jiancha_snapshot_timestamp_seconds", "When these figures were taken",
                 s.taken_at)  # fmt: skip
    yield _counter("jiancha_events_ingested_total", "Source events taken", s.events)
    yield _counter("jiancha_dead_letters_total", "Source events that broke the contract",
                   s.dead_letters)  # fmt: skip
    yield _gauge("jiancha_tail_lag_seconds", "Seconds since the tailer last caught up", s.tail_lag)
    yield _gauge("jiancha_blocking_transaction_age_seconds",
                 "Age of the oldest write transaction holding the tailer back",
                 s.blocking_tx_age)  # fmt: skip
    yield _gauge("jiancha_source_mismatch",
                 "1 while the tailer refuses to read: the source is not the database the cursor "
                 "was stored for, or its transaction ids went backwards",
                 float(s.source_mismatch))  # fmt: skip
    yield _gauge("jiancha_code_fault",
                 "1 while the tailer does not read on: events in a row failed alone with one "
                 "error of jiancha's own code (a defect, not bad data)",
                 float(s.code_fault))  # fmt: skip


def _cards(s: Snapshot) -> Iterator[Metric]:
    """The evaluator: cards since start, its ticks, the table."""
    yield _labelled(CounterMetricFamily, "jiancha_cards_issued", "Cards issued since start",
                    ["level"], (([lv], s.cards_issued.get(lv, 0)) for lv in s.levels))  # fmt: skip
    yield _counter("jiancha_cards_closed_total", "Cards closed since start", s.cards_closed)
    yield _gauge("jiancha_cases_not_decided",
                 "Cases the engine raised on when deciding them alone (a defect of jiancha): "
                 "no cards nor clocks for them until decided again",
                 s.cases_not_decided)  # fmt: skip
    yield _counter("jiancha_cards_revoked_total", "Cards revoked by jiancha since start",
                   s.cards_revoked)  # fmt: skip
    yield _counter("jiancha_escalations_total", "Supervision orders escalated since start",
                   s.escalations)  # fmt: skip
    hist = HistogramMetricFamily("jiancha_evaluation_duration_seconds",
                                 "Duration of the scheduler's evaluation ticks")  # fmt: skip
    counts = s.eval_buckets or (0,) * (len(EVAL_BUCKETS) + 1)
    buckets = [(str(b), float(c)) for b, c in zip(EVAL_BUCKETS, counts, strict=False)]
    buckets.append(("+Inf", float(counts[-1])))
    hist.add_metric([], buckets, s.eval_sum)
    yield hist
    yield _gauge("jiancha_open_clocks", "Running periods in the scheduler's table", s.open_clocks)
    yield _gauge("jiancha_next_crossing_timestamp_seconds",
                 "When the next card level is due (0: none scheduled)",
                 s.next_crossing or 0.0)  # fmt: skip


def _outbox(s: Snapshot) -> Iterator[Metric]:
    """Notifications: in the outbox by state, delivered and given up since start."""
    channels = sorted(
        {c for c, _ in s.notifications} | set(s.delivered) | set(s.failed) | set(s.channels)
    )
    yield _labelled(GaugeMetricFamily, "jiancha_outbox_notifications",
                    "Notifications in the outbox by channel and state", ["channel", "state"],
                    (([ch, st], s.notifications.get((ch, st), 0))
                     for ch in channels for st in s.outbox_states))  # fmt: skip
    yield _labelled(CounterMetricFamily, "jiancha_notifications_delivered",
                    "Notifications delivered since start", ["channel"],
                    (([ch], s.delivered.get(ch, 0)) for ch in channels))  # fmt: skip
    yield _labelled(CounterMetricFamily, "jiancha_notifications_failed",
                    "Notifications given up since start", ["channel"],
                    (([ch], s.failed.get(ch, 0)) for ch in channels))  # fmt: skip
    yield _counter("jiancha_notifications_unrouted_total",
                   "Notifications no route matched (sent to the fallback)", s.unrouted)  # fmt: skip


def _cases(s: Snapshot) -> Iterator[Metric]:
    """The figures of schema jiancha: open cases, cards, completions, ratings."""
    groups = sorted({k[:3] for k in s.open_cases})
    yield _labelled(GaugeMetricFamily, "jiancha_open_cases",
                    "Open cases by department, window, matter and card level",
                    ["department", "window", "matter", "level"],
                    (([*g, lv], s.open_cases.get((*g, lv), 0))
                     for g in groups for lv in ("none", *s.levels)))  # fmt: skip
    zeros = {(d, lv, r): 0 for d in s.departments for lv in s.levels for r in s.rules}
    active = {(lv, r, d): 0 for d, lv, r in zeros} | dict(s.active_cards)
    yield _labelled(GaugeMetricFamily, "jiancha_active_cards",
                    "Open cards by level, rule and department", ["level", "rule", "department"],
                    sorted(active.items()))  # fmt: skip
    overdue = sorted({g[0] for g in groups} | set(s.overdue_cases) | set(s.departments))
    yield _labelled(GaugeMetricFamily, "jiancha_overdue_cases",
                    "Open cases past the instant their promised limit was used up (超期件), "
                    "by department", ["department"],
                    (([d], s.overdue_cases.get(d, 0)) for d in overdue))  # fmt: skip
    depts = sorted({d for d, _ in s.completions} | set(s.departments))
    yield _labelled(CounterMetricFamily, "jiancha_completions",
                    "Cases completed, by department and how the promised limit ended (early: "
                    "before the deadline's day; on_time; late); withdrawn and terminated cases "
                    "are not completions", ["department", "outcome"],
                    (([d, o], s.completions.get((d, o), 0)) for d in depts for o in s.outcomes),
                    )  # fmt: skip
    yield _labelled(CounterMetricFamily, "jiancha_cards",
                    "Cards in the ledger by department, level and rule",
                    ["department", "level", "rule"],
                    sorted((zeros | dict(s.cards_total)).items()))  # fmt: skip
    rated = sorted({d for d, _ in s.ratings} | set(s.departments))
    yield _labelled(GaugeMetricFamily, "jiancha_ratings",
                    "Cases by their latest rating (5 非常满意 .. 1 非常不满意): a case re-rated "
                    "moves from one rating to the other, so this is a gauge",
                    ["department", "rating"],
                    (([d, str(k)], s.ratings.get((d, k), 0)) for d in rated for k in range(1, 6)),
                    )  # fmt: skip
    reviews = sorted(({d: (0, 0) for d in s.departments} | dict(s.bad_reviews)).items())
    yield _labelled(CounterMetricFamily, "jiancha_bad_reviews", "Ratings of 1 or 2 (差评)",
                    ["department"], (([d], bad) for d, (bad, _) in reviews))  # fmt: skip
    yield _labelled(CounterMetricFamily, "jiancha_bad_reviews_rectified",
                    "Bad ratings rectified (差评整改)", ["department"],
                    (([d], fixed) for d, (_, fixed) in reviews))  # fmt: skip


def _config(s: Snapshot) -> Iterator[Metric]:
    """What is in force: the calendar's horizon, reloads, fingerprints."""
    yield _gauge("jiancha_calendar_published_through_timestamp_seconds",
                 "End of the last day with a published holiday schedule",
                 s.calendar_published_through or 0.0)  # fmt: skip
    yield _gauge("jiancha_config_last_reload_successful",
                 "1 when the last reload of configuration, rules and calendar succeeded",
                 float(s.reload_ok))  # fmt: skip
    yield _counter("jiancha_config_reloads_failed_total", "Reloads refused since start",
                   s.reloads_failed)  # fmt: skip
    hashes = InfoMetricFamily("jiancha_config", "Fingerprints of what is in force")
    hashes.add_metric([], {"rules": s.rules_hash, "calendar": s.calendar_hash,
                           "config": s.config_hash})  # fmt: skip
    yield hashes


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name.removesuffix("_total"), doc, value=value)


class Holder:
    """The latest snapshot and its rendered exposition; swapped whole, read by scrapes.

    ``publish`` renders the text once per snapshot, off the scrape path (the
    snapshot task runs it in a worker thread), so a scrape only hands over
    bytes: at a million cases and ~34k series rendering takes ~0.3 s.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._text: bytes | None = None
        self._gzip: bytes | None = None
        self.registry: CollectorRegistry | None = None

    def get(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def set(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot
            self._text = self._gzip = None

    def publish(self, snapshot: Snapshot) -> None:
        """Swap in ``snapshot`` and render it (call from a worker thread: it takes time)."""
        self.set(snapshot)
        if self.registry is None:
            return
        text = generate_latest(self.registry)
        packed = gzip.compress(text, compresslevel=5)
        with self._lock:
            if self._snapshot is snapshot:  # not overtaken meanwhile
                self._text, self._gzip = text, packed

    def rendered(self) -> tuple[bytes | None, bytes | None]:
        with self._lock:
            return self._text, self._gzip


def registry_for(holder: Holder) -> CollectorRegistry:
    """A registry of jiancha's own, with the standard process collector (not the platform one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JianchaCollector(holder.get))
    ProcessCollector(registry=registry)  # process_*: memory, CPU, open files of the daemon
    holder.registry = registry
    return registry


def serve(
    address: str,
    registry: CollectorRegistry,
    *,
    username: str | None = None,
    password: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    holder: Holder | None = None,
    workers: int = WORKERS,
    deadline: float = DEADLINE,
) -> tuple[BoundedServer, int]:
    """Serve ``/metrics`` on ``host:port`` in a thread; returns the server and its port.

    With a username and password, scrapes need HTTP basic auth (401 otherwise);
    with a certificate and key, the endpoint speaks TLS only. With a holder,
    scrapes serve the exposition it rendered when the snapshot was taken.
    ``workers`` threads answer, and a connection is cut ``deadline`` seconds
    after it was accepted (``exporters.httpd``), so no client can hold scrapes up.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    app = make_wsgi_app(registry) if holder is None else _cached_app(holder, registry)
    if username is not None:
        app = _basic_auth(app, username, password or "")
    tls = None
    if certfile is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(certfile, keyfile)
    httpd = BoundedServer(host, int(port), app, tls=tls, workers=workers, deadline=deadline)
    thread = threading.Thread(target=httpd.serve_forever, name="jiancha-metrics", daemon=True)
    thread.start()
    httpd.wait_running()
    return httpd, int(httpd.server_port)


def _cached_app(holder: Holder, registry: CollectorRegistry) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        text, packed = holder.rendered()
        headers = [("Content-Type", CONTENT_TYPE_LATEST)]
        if text is None:  # nothing rendered yet (the first snapshot is on its way)
            text, packed = generate_latest(registry), None
        body = text
        if packed is not None and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = packed
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return app


def _basic_auth(app: Any, username: str, password: str) -> Any:
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="jiancha"'),
                                                ("Content-Type", "text/plain")])  # fmt: skip
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return guarded


def utc_timestamp(day: Any) -> float:
    """Unix seconds of the end (24:00 UTC) of a ``datetime64[D]`` day."""
    d = dt.date.fromisoformat(str(day))
    return dt.datetime.combine(d + dt.timedelta(days=1), dt.time(0), dt.UTC).timestamp()
