"""The leader lease: of any number of `jiancha run` on one schema, one tails, evaluates and sends.

A row ``jiancha.leader`` (migration 0012) with a holder, a fencing token and
an expiry on the database's clock. The leader renews it every ``renew``
seconds on a session of its own; a standby polls it and, once it has
expired, takes it with the token one higher. Every transaction of the
leader's sessions runs `fence` (``Session.fence``) first, against the
lease as the leader knows it, and again right before COMMIT, then ``FOR
KEY SHARE`` on the row with the leader's token: a transaction of an
ex-leader (one paused by SIGSTOP or a frozen host past its expiry) aborts
instead of committing, and a takeover waits for the commits in flight.

A leader frozen inside a transaction still holds that transaction's locks: the
fence's row lock when it froze between the final fence and COMMIT, the rows
it wrote (the events the next leader will write again, the cursor) otherwise.
The server would end such a session only after ``idle_in_transaction_timeout``
(a minute). So the leader's sessions carry its lease's `tag` in their
application name, and a standby that finds the lease expired first ends the
ex-holder's open transactions (``pg_terminate_backend``, allowed on sessions of
its own role), then takes the lease.

Locally the leader trusts its lease until ``ttl`` after it sent its last
successful renewal (the database's expiry is later), and steps down the
moment it is past that, e.g. when it wakes from SIGCONT.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import trio

from monitor import db
from monitor.health import pause
from monitor.log import get_logger

__all__ = ["Lease", "LeaseStats", "holder_tag"]

_FENCE = "SELECT 1 FROM jiancha.leader WHERE id = 1 AND token = $1 FOR KEY SHARE"
_PEEK = """
SELECT holder, token, expires_at < clock_timestamp() AS expired FROM jiancha.leader WHERE id = 1
"""
# A plain UPDATE evaluates the expiry before it locks the row: a standby's polls take
# no lock while the lease is held. Changing token (UNIQUE) waits for the leader's fences.
# Our own row (a term ended by a lost connection) is taken again at once, with a new token.
_TAKE = """
UPDATE jiancha.leader SET holder = $1, token = token + 1, acquired_at = clock_timestamp(),
       renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $2::interval
WHERE id = 1 AND (expires_at < clock_timestamp() OR holder = $1)
RETURNING token
"""
_RENEW = """
UPDATE jiancha.leader SET renewed_at = clock_timestamp(),
       expires_at = clock_timestamp() + $3::interval
WHERE id = 1 AND token = $1 AND holder = $2
RETURNING token
"""
# The ex-holder's sessions inside a transaction (a frozen leader's); idle ones hold nothing.
_END_HOLDERS = """
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name LIKE '% ' || $1 AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
"""
_RELEASE = "UPDATE jiancha.leader SET expires_at = clock_timestamp() WHERE id = 1 AND token = $1"

Lead = Callable[[], Awaitable[None]]


def holder_tag(holder: str) -> str:
    """A short, fixed-length mark of a holder: application names stop at 63 bytes."""
    return "L" + hashlib.blake2s(holder.encode(), digest_size=6).hexdigest()


@dataclass
class LeaseStats:
    """What the lease did, for the log, the metrics and ``systemctl status``."""

    acquired: int = 0  # terms begun
    lost: int = 0  # terms that ended without a clean stop
    leader: str = ""  # the holder as last seen (ours or another's)
    connected: bool = False  # the lease's session is up
    ever_connected: bool = False
    retries: int = 0  # connection attempts that failed


class Lease:
    """Stands by, leads while the lease is ours, steps down when it is lost; one per daemon."""

    def __init__(self, dsn: str, lead: Lead, *, ttl: float = 6.0, renew: float = 2.0,
                 poll: float = 0.5, session: db.Session = db.OWN_SESSION,
                 holder: str | None = None) -> None:  # fmt: skip
        self.dsn, self.lead, self.session = dsn, lead, session
        self.ttl, self.renew, self.poll = ttl, renew, poll
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.token: int | None = None  # while leading
        self.valid_until = 0.0  # trio time until which the lease is surely ours
        self.stats = LeaseStats()
        self.beat: Callable[[], None] = lambda: None
        self.log = get_logger("monitor.lease")

    @property
    def tag(self) -> str:
        """What this daemon's leader sessions append to their application name."""
        return holder_tag(self.holder)

    @property
    def leading(self) -> bool:
        return self.token is not None and trio.current_time() < self.valid_until

    async def fence(self, conn: db.Connection, final: bool) -> None:
        """In every transaction of the leader: abort unless the lease is still ours.

        First the lease as this process knows it (an ex-leader that noticed stops
        early); then, right before COMMIT, the row ``FOR KEY SHARE`` until the
        commit, which a takeover (changing the token) must wait for. A leader
        frozen in that instant is ended by the standby that takes over
        (`_end_transactions_of`). The first check asks the database nothing: the
        second is the guarantee, and a round trip in every transaction was a
        tenth of a live batch's time.
        """
        token = self.token
        if token is None or not self.leading:
            raise db.Fenced(f"not the leader (term {token})")
        if final and await conn.fetchval(_FENCE, token) is None:
            raise db.Fenced(f"lease term {token} taken over")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stand by or lead until cancelled; a lost database is waited out (standing by)."""
        delays = db.backoff_delays(0.2, 5.0, random.Random())
        task_status.started()
        while True:
            self.beat()
            try:
                async with await db.connect(self.dsn, application_name="jiancha-lease",
                                            session=self.session) as conn:  # fmt: skip
                    await conn.execute("SET lock_timeout = '1s'")
                    delays = db.backoff_delays(0.2, 5.0, random.Random())
                    self.stats.connected = self.stats.ever_connected = True
                    await self._serve(conn)
            except BaseException as exc:  # sorted below: only a lost connection is ours
                lost = db.only(exc, db.DISCONNECTS)
                if lost is None:
                    raise
                self.stats.connected = False
                self.stats.retries += 1
                delay = delays()
                self.log.warning("lease_disconnected", error=f"{type(lost).__name__}: {lost}",
                                 retry_in_s=round(delay, 2))  # fmt: skip
                await pause(delay, self.beat)

    async def _serve(self, conn: db.Connection) -> None:
        standing_by = False
        while True:
            self.beat()
            token = await self._try_take(conn)
            if token is None:
                if not standing_by:
                    self.log.info("standby", leader=self.stats.leader, holder=self.holder)
                    standing_by = True
                await pause(self.poll, self.beat, self.poll)
                continue
            standing_by = False
            await self._term(conn, token)

    async def _try_take(self, conn: db.Connection) -> int | None:
        """Our new token when the lease had expired, else None (someone else holds it)."""
        row = await conn.fetchrow(_PEEK, timeout=self.ttl)  # a silent database: reconnect
        if row is None:
            raise RuntimeError("jiancha.leader has no row: run `jiancha db migrate`")
        self.stats.leader = row["holder"]
        if not row["expired"] and row["holder"] != self.holder:
            return None
        if row["holder"] != self.holder:
            await self._end_transactions_of(conn, row["holder"])
        sent = trio.current_time()
        try:
            token = await conn.fetchval(_TAKE, self.holder, self.ttl_interval(), timeout=self.ttl)
        except asyncpg.LockNotAvailableError:  # a leader's transaction still holds its fence
            return None
        if token is not None:
            self.valid_until = sent + self.ttl
        return None if token is None else int(token)

    async def _end_transactions_of(self, conn: db.Connection, holder: str) -> None:
        """End the open transactions of an expired holder: a frozen leader holds their locks."""
        try:
            ended = await conn.fetchval(_END_HOLDERS, holder_tag(holder), timeout=self.ttl)
        except asyncpg.InsufficientPrivilegeError as exc:  # another role's: wait for the server
            self.log.warning("lease_holder_sessions_kept", holder=holder, error=str(exc))
            return
        if ended:
            self.log.warning("lease_holder_sessions_ended", holder=holder, tag=holder_tag(holder),
                             sessions=ended)  # fmt: skip

    def ttl_interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.ttl)

    async def _term(self, conn: db.Connection, token: int) -> None:
        """Lead under ``token`` until the lease is lost or we are cancelled."""
        self.token = token
        self.stats.acquired += 1
        self.log.info("lease_acquired", term=token, holder=self.holder,
                      previous=self.stats.leader)  # fmt: skip
        self.stats.leader = self.holder
        why = "stopped"
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._leading, nursery.cancel_scope)
                why = await self._keep(conn, token)
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            fenced = db.only(exc, db.Fenced)
            if fenced is None:
                lost = db.only(exc, db.DISCONNECTS)
                if lost is not None:
                    why = f"lost connection: {type(lost).__name__}"
                raise
            why = f"fenced: {fenced}"
        finally:
            self.token = None
            if why == "stopped":  # a clean stop hands the lease on at once
                await _release(conn, token)
            else:
                self.stats.lost += 1
                self.log.warning("lease_lost", term=token, reason=why, holder=self.holder)

    async def _leading(self, scope: trio.CancelScope) -> None:
        await self.lead()
        scope.cancel()

    async def _keep(self, conn: db.Connection, token: int) -> str:
        """Renew every ``renew`` seconds; returns why the lease was lost."""
        while True:
            await pause(self.renew, self.beat, min(self.renew, 1.0))
            sent = trio.current_time()
            if sent >= self.valid_until:  # woke too late (SIGSTOP, a frozen host)
                return "expired"
            # no answer before the lease would end: the connection is given up (TimeoutError)
            renewed = await conn.fetchval(_RENEW, token, self.holder, self.ttl_interval(),
                                          timeout=self.valid_until - sent)  # fmt: skip
            if renewed is None:
                return "taken over"
            self.valid_until = sent + self.ttl


async def _release(conn: db.Connection, token: int) -> None:
    """Best effort: expire our lease now, so a standby need not wait out the TTL."""
    with trio.move_on_after(2, shield=True):
        try:
            await conn.execute(_RELEASE, token)
        except (*db.DISCONNECTS, asyncpg.PostgresError):
            pass
