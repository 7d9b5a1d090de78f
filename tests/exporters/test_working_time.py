"""jiancha.remaining_days_v1 against the Python calendar: the dashboards' live remaining time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from exporters.metrics import Holder
from monitor import db
from monitor.calendar import load_calendar
from monitor.observe import Snapshotter, working_time_rows
from tests.cardkit import z

STARTS = ["2024-02-05T02:00:00", "2024-02-08T02:00:00", "2024-02-09T07:30:00",
          "2024-04-28T01:00:00", "2024-09-13T09:00:00", "2024-12-30T05:45:00"]  # fmt: skip


def instant(moment: dt.datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(dt.UTC).replace(tzinfo=None), "s")


@pytest.mark.parametrize("name", ["cn", "example-centre"])
async def test_remaining_days_agree_with_the_calendar_at_every_hour(dsn, name):
    """At each hour from the start to past the deadline: promised minus used, by Python."""
    cal = load_calendar(name)
    now = z("2024-06-01T00:00:00").timestamp()
    keeper = Snapshotter(Holder(), dsn, calendar=cal, clock=lambda: now)
    async with await db.connect(dsn) as conn:
        await keeper.keep_tables(conn)
        assert await conn.fetchval("SELECT count(*) FROM jiancha.working_time") > 200
        await conn.execute("SET ROLE jiancha_dashboard")  # as Grafana reads it
        for start in map(z, STARTS):
            for promised in (0, 1, 5, 20):
                deadline = cal.deadline(instant(start), promised).item().replace(tzinfo=dt.UTC)
                hours = int((deadline - start).total_seconds() // 3600) + 30
                moments = [start + dt.timedelta(hours=h, minutes=17) for h in range(hours)]
                used = cal.working_days_between(
                    np.full(len(moments), instant(start)), [instant(m) for m in moments]
                )
                got = await conn.fetch(
                    "SELECT jiancha.remaining_days_v1($1, m, $2) AS r"
                    " FROM unnest($3::timestamptz[]) m", deadline, start, moments,
                )  # fmt: skip
                between = await conn.fetch(
                    "SELECT jiancha.working_days_between_v1($1, m) AS d"
                    " FROM unnest($2::timestamptz[]) m", start, moments,
                )  # fmt: skip
                assert [r["d"] for r in between] == pytest.approx(list(used), abs=1e-6)
                for moment, u, row in zip(moments, used, got, strict=True):
                    if moment <= deadline:
                        assert row["r"] == pytest.approx(promised - u, abs=1e-6), (start, moment)
                    else:  # past the deadline: overdue by the working time since
                        after = cal.working_days_between(instant(deadline - dt.timedelta(
                            seconds=1)), instant(moment))  # fmt: skip
                        assert row["r"] <= 0
                        assert row["r"] == pytest.approx(-float(after), abs=1e-3) or after == 0


async def test_the_table_follows_a_new_day_and_a_new_calendar(dsn):
    cn, centre = load_calendar("cn"), load_calendar("example-centre")
    clock = [z("2024-06-01T00:00:00").timestamp()]
    keeper = Snapshotter(Holder(), dsn, calendar=cn, clock=lambda: clock[0])
    span = (
        "SELECT min(starts_at), max(ends_at), min(calendar), max(calendar) "
        "FROM jiancha.working_time"
    )
    async with await db.connect(dsn) as conn:
        await keeper.keep_tables(conn)
        first = await conn.fetchrow(span)
        assert first[2] == first[3] == cn.fingerprint
        clock[0] += 7 * 86400  # a week on: the window moves with it
        await keeper.keep_tables(conn)
        second = await conn.fetchrow(span)
        assert second[0] > first[0] and second[1] > first[1]
        keeper.calendar = centre
        await keeper.keep_tables(conn)
        third = await conn.fetchrow(span)
        assert third[2] == third[3] == centre.fingerprint
        # beyond the table's span the figure is unknown, never a wrong number
        assert await conn.fetchval(
            "SELECT jiancha.remaining_days_v1($1, $2, $2)", z("2030-01-01T00:00:00"),
            z("2024-06-02T00:00:00"))  is None  # fmt: skip


async def test_a_restart_the_same_day_with_the_same_calendar_writes_nothing(dsn):
    """A start finds the table current (migration 0017) and leaves it as it is; a start on
    another day, or with another calendar, writes it again."""
    cn, centre = load_calendar("cn"), load_calendar("example-centre")
    noon = z("2024-06-03T04:00:00").timestamp()
    written = "SELECT sum(xmin::text::bigint), count(*) FROM jiancha.working_time"
    async with await db.connect(dsn) as conn:
        await Snapshotter(Holder(), dsn, calendar=cn, clock=lambda: noon).keep_tables(conn)
        first = await conn.fetchrow(written)
        source = await conn.fetchrow("SELECT * FROM jiancha.working_time_source")
        assert source["calendar"] == cn.fingerprint and first[1] > 2000
        assert (source["first_day"], source["last_day"]) == (dt.date(2014, 5, 27),
                                                             dt.date(2026, 6, 4))  # fmt: skip

        later = noon + 6 * 3600  # 18:00 Beijing, the same day: a restart after an upgrade
        await Snapshotter(Holder(), dsn, calendar=cn, clock=lambda: later).keep_tables(conn)
        assert await conn.fetchrow(written) == first  # not one row written again
        assert await conn.fetchrow("SELECT * FROM jiancha.working_time_source") == source

        tomorrow = noon + 86400
        await Snapshotter(Holder(), dsn, calendar=cn, clock=lambda: tomorrow).keep_tables(conn)
        assert await conn.fetchrow(written) != first
        moved = await conn.fetchrow("SELECT * FROM jiancha.working_time_source")
        assert moved["first_day"] == source["first_day"] + dt.timedelta(days=1)

        again = await conn.fetchrow(written)
        await Snapshotter(Holder(), dsn, calendar=centre,
                          clock=lambda: tomorrow).keep_tables(conn)  # fmt: skip
        assert await conn.fetchrow(written) != again
        assert await conn.fetchval("SELECT DISTINCT calendar FROM jiancha.working_time") == (
            centre.fingerprint
        )


def test_no_stretch_on_a_rest_day():
    cal = load_calendar("cn")
    rows = working_time_rows(cal, dt.date(2024, 2, 9), dt.date(2024, 2, 19))
    local = {r[0].astimezone(dt.timezone(dt.timedelta(hours=8))).date() for r in rows}
    assert local == {dt.date(2024, 2, 9), dt.date(2024, 2, 18), dt.date(2024, 2, 19)}
    assert all(r[3] == pytest.approx(1.0) for r in rows)


async def test_a_refused_table_does_not_stop_the_figures(dsn):
    """Without the right to write the dashboards' tables the snapshot is still taken."""
    holder = Holder()
    keeper = Snapshotter(holder, dsn, calendar=load_calendar("cn"), clock=lambda: 1.7e9)
    async with await db.connect(dsn) as conn:
        await conn.execute("SET ROLE jiancha_dashboard")  # may read, may not write
        await keeper.take(conn)
    assert holder.get().database_up and holder.get().taken_at == 1.7e9
