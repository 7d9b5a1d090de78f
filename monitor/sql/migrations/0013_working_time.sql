-- jiancha schema, version 13: what the dashboards need to stay current by themselves.
--
-- jiancha.working_time is the centre's calendar as the database can read it: one row
-- per stretch of working time (a working day, or one office-hours interval of it), with
-- the working days elapsed before it since an arbitrary origin. The daemon rewrites it
-- from its calendar when the calendar changes and once a day (monitor/observe.py), a
-- year back and two ahead. jiancha.working_days_v1(t) is the working time elapsed by
-- instant t since that origin, so W(deadline) - W(now()) is the working time left, at
-- the moment Grafana asks: nothing is frozen at the moment a card was issued.
CREATE TABLE jiancha.working_time (
    starts_at    timestamptz PRIMARY KEY,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    before_days  double precision NOT NULL,  -- working days from the origin to starts_at
    days         double precision NOT NULL CHECK (days > 0),  -- working days in the stretch
    known_until  timestamptz NOT NULL,       -- the next stretch's start (the last: its end)
    provisional  boolean NOT NULL,           -- the year's holiday schedule is not published
    calendar     text NOT NULL,              -- fingerprint of the calendar it came from
    timezone     text NOT NULL               -- the calendar's: where its days begin
);

-- Working days elapsed by `at` since the table's origin; NULL outside the table's span.
CREATE FUNCTION jiancha.working_days_v1(at timestamptz) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN at <= w.known_until
                THEN w.before_days + w.days * least(1.0, extract(epoch FROM at - w.starts_at)
                                                   / extract(epoch FROM w.ends_at - w.starts_at))
           END
    FROM jiancha.working_time w
    WHERE w.starts_at <= at
    ORDER BY w.starts_at DESC
    LIMIT 1
$$;

-- Where a period begun at `start` starts counting: 00:00 after its local day (the day
-- of acceptance is not counted, Civil Code art. 201; docs/rule-book.md §3).
CREATE FUNCTION jiancha.count_start_v1(start timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (date_trunc('day', start AT TIME ZONE w.timezone) + interval '1 day')
           AT TIME ZONE w.timezone
    FROM (SELECT timezone FROM jiancha.working_time LIMIT 1) w
$$;

-- Working days from `start` to `stop`, as monitor.calendar's working_days_between counts
-- them (the starting day not counted; a stop before the count starts counts 0).
CREATE FUNCTION jiancha.working_days_between_v1(start timestamptz, stop timestamptz)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jiancha.working_days_v1(greatest(stop, jiancha.count_start_v1(start)))
           - jiancha.working_days_v1(jiancha.count_start_v1(start))
$$;

-- Working days left at `at` of a period begun at `since` that ends at `deadline`:
-- negative once the deadline has passed (overdue by that much).
CREATE FUNCTION jiancha.remaining_days_v1(deadline timestamptz, at timestamptz,
                                          since timestamptz)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jiancha.working_days_v1(deadline)
           - jiancha.working_days_v1(greatest(at, jiancha.count_start_v1(since)))
$$;

-- The matter catalogue's names, kept by the daemon from the source's `matters` (which
-- may live in another database than schema jiancha): the dashboards show names, not codes.
CREATE TABLE jiancha.matters (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    department  text NOT NULL
);
