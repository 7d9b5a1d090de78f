"""The leader lease's fence on a real PostgreSQL (``monitor.lease``, migration 0012).

The failover test (``tests/test_leader.py``) shows processes taking over;
here the two properties the fence rests on are checked one at a time: a
transaction of a leader whose lease was taken over never commits, even when
the leader itself still believes in its lease (a wall clock that lied, a
pause it did not notice); and a commit in flight holds a takeover up while a
renewal goes through.
"""

from __future__ import annotations

import math
from dataclasses import replace

import asyncpg
import pytest
import trio

from monitor import db, lease


async def _leading(a: lease.Lease) -> None:
    with trio.fail_after(10):
        while not a.leading:
            await trio.sleep(0.02)


async def test_a_taken_over_leaders_transaction_never_commits(dsn, nursery):
    a = lease.Lease(dsn, trio.sleep_forever, ttl=2.0, renew=0.5, holder="A")
    nursery.start_soon(a.run)
    await _leading(a)
    fenced = replace(db.OWN_SESSION, fence=a.fence)
    async with await db.connect(dsn, session=fenced) as conn, await db.connect(dsn) as admin:
        await admin.execute("CREATE TABLE IF NOT EXISTS lease_probe (x int)")
        async with conn.transaction():  # while the lease is ours: commits
            await conn.execute("INSERT INTO lease_probe VALUES (1)")
        a.valid_until = math.inf  # A does not notice what follows
        with pytest.raises(db.Fenced):
            async with conn.transaction():
                await conn.execute("INSERT INTO lease_probe VALUES (2)")
                # a standby takes over while A's transaction runs
                await admin.execute(
                    "UPDATE jiancha.leader SET holder = 'B', token = token + 1 WHERE id = 1"
                )
        with pytest.raises(db.Fenced):  # and the next one never commits either
            async with conn.transaction():
                await conn.execute("INSERT INTO lease_probe VALUES (3)")
        assert [r["x"] for r in await admin.fetch("SELECT x FROM lease_probe")] == [1]


async def test_a_commit_in_flight_holds_a_takeover_but_not_a_renewal(dsn):
    async with await db.connect(dsn) as leader, await db.connect(dsn) as other:
        await leader.execute("UPDATE jiancha.leader SET holder = 'A', token = token + 1, "
                             "expires_at = '-infinity' WHERE id = 1")  # fmt: skip
        token = await leader.fetchval("SELECT token FROM jiancha.leader")
        await other.execute("SET lock_timeout = '300ms'")
        async with leader.transaction():
            assert await leader.fetchval(lease._FENCE, token) == 1  # the fence before COMMIT
            # the holder's renewal (expires_at only) is not held up ...
            renew = await other.fetchval(lease._RENEW, token, "A", lease.dt.timedelta(seconds=1))
            assert renew == token
            await other.execute("UPDATE jiancha.leader SET expires_at = '-infinity'")
            # ... a takeover (a new token) waits for the commit
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.fetchval(lease._TAKE, "B", lease.dt.timedelta(seconds=1))
        took = await other.fetchval(lease._TAKE, "B", lease.dt.timedelta(seconds=1))
        assert took == token + 1


async def test_a_standby_ends_a_frozen_leaders_transaction_and_takes_over(dsn, nursery):
    """A leader frozen between its final fence and COMMIT holds the fence's row lock (and
    whatever its transaction wrote) until the server ends its session: a minute. The
    standby ends that holder's open transactions itself, and only that holder's."""
    async with (
        await db.connect(dsn) as admin,
        await db.connect(dsn, session=replace(db.OWN_SESSION, tag=lease.holder_tag("A"))) as a,
        await db.connect(dsn, session=replace(db.OWN_SESSION, tag=lease.holder_tag("C"))) as c,
        await db.connect(dsn, application_name="psql") as operator,
    ):
        await admin.execute("CREATE TABLE IF NOT EXISTS frozen_probe (x int)")
        await admin.execute("UPDATE jiancha.leader SET holder = 'A', token = token + 1, expires_at"
                            " = clock_timestamp() + interval '1 s' WHERE id = 1")  # fmt: skip
        token = await admin.fetchval("SELECT token FROM jiancha.leader")
        frozen = a._raw.transaction()  # A's transaction, which A will never finish
        await a._call(frozen.start)
        await a.execute("INSERT INTO frozen_probe VALUES (1)")
        assert await a.fetchval(lease._FENCE, token) == 1
        for bystander in (c, operator):  # open transactions that are not A's
            await bystander.execute("BEGIN; SELECT count(*) FROM frozen_probe")
        name = await a.fetchval("SELECT application_name FROM pg_stat_activity "
                                "WHERE pid = pg_backend_pid()")  # fmt: skip
        assert name == f"jiancha {lease.holder_tag('A')}"

        b = lease.Lease(dsn, trio.sleep_forever, ttl=2.0, renew=0.5, poll=0.1, holder="B")
        nursery.start_soon(b.run)
        with trio.fail_after(5):  # before: until the server's idle-in-transaction timeout
            while not b.leading:
                await trio.sleep(0.02)
        assert b.token == token + 1
        with pytest.raises(db.DISCONNECTS):  # A's session was ended ...
            await a.fetchval("SELECT 1")
        assert await admin.fetchval("SELECT count(*) FROM frozen_probe") == 0  # ... uncommitted
        for bystander in (c, operator):  # the others' transactions go on
            assert await bystander.fetchval("SELECT count(*) FROM frozen_probe") == 0
            await bystander.execute("COMMIT")
