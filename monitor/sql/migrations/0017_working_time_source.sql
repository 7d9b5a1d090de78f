-- jiancha schema, version 17: what jiancha.working_time was last written from.
--
-- The daemon rewrites jiancha.working_time from its calendar once a day and when the
-- calendar changes (monitor/observe.py). It used to rewrite it at every start too, before
-- READY: the rows (about 3,000) and the calendar's first compiled call cost a second of a
-- start. Now a start reads this row and writes the table again only when the calendar's
-- fingerprint or the span of days differs. Written in the same transaction as the table.
CREATE TABLE IF NOT EXISTS jiancha.working_time_source (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    calendar    text NOT NULL,          -- fingerprint of the calendar the rows came from
    first_day   date NOT NULL,          -- the local days the rows cover
    last_day    date NOT NULL,
    written_at  timestamptz NOT NULL
);
