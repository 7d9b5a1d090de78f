"""The state stage's SQL: what a batch writes into ``jiancha.events``, ``jiancha.cases``
and ``jiancha.cursor``, and reads back of the cases it touches.

Kept apart from `monitor.state.store`, which runs them, so that the statements
a live batch merges into one (`BATCH_WRITES`) are written once.
"""

from __future__ import annotations

import re

EVENT_COLUMNS = ("event_id", "tx", "case_id", "kind", "occurred_at", "payload", "ingested_at")

# The case row's columns with the SQL type of each (the upsert sends one array per column).
CASE_FIELDS = (
    "case_id text", "matter text", "department text", "\"window\" text", "region text",
    "channel text", "status text", "submitted_at timestamptz", "accepted_at timestamptz",
    "refused_at timestamptz", "decided_at timestamptz", "decision text",
    "completed_at timestamptz", "delivered_at timestamptz", "closed_at timestamptz",
    "immediate boolean", "promised_days int", "statutory_days int", "pledged_days int",
    "extension_days int", "extensions int", "supplement_requests int", "fees numeric",
    "rating int", "paused_since timestamptz", "pauses text", "clocks text", "facts text",
    "first_seen_at timestamptz", "event_count int", "last_event_id bigint",
    "updated_at timestamptz",
)  # fmt: skip
CASE_COLUMNS = tuple(f.rsplit(" ", 1)[0] for f in CASE_FIELDS)
CASE_TYPES = tuple(f.rsplit(" ", 1)[1] for f in CASE_FIELDS)


def upsert_cases_sql(source: str | None = None) -> str:
    """The upsert of case rows from one array parameter per column, or from ``source``, a
    table of `CASE_FIELDS` (the batch's undecided mark then its only parameter)."""
    cols = ", ".join(CASE_COLUMNS)
    names = CASE_COLUMNS if source else [f"c{i}" for i in range(len(CASE_COLUMNS))]
    select = ", ".join(
        f"{name}::jsonb" if col in ("pauses", "clocks", "facts") else name
        for name, col in zip(names, CASE_COLUMNS, strict=True)
    )
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}"
        for c in (*CASE_COLUMNS, "undecided")
        if c not in ("case_id", "first_seen_at")
    )
    if source:
        rows, undecided = source, "$1::boolean"
    else:
        params = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(CASE_TYPES))
        rows = f"unnest({params}) AS u({', '.join(names)})"
        undecided = f"${len(CASE_COLUMNS) + 1}::boolean"  # one for the batch (migration 0016)
    return (
        f"INSERT INTO jiancha.cases ({cols}, undecided) "
        f"SELECT {select}, {undecided} FROM {rows} "
        f"ON CONFLICT (case_id) DO UPDATE SET {updates}"
    )


CASE_ROWS_TABLE = "jiancha_case_rows"  # a backlog's case rows on their way (monitor.state.store)
UPSERT_CASES = upsert_cases_sql()
UPSERT_CASE_ROWS = upsert_cases_sql(f"pg_temp.{CASE_ROWS_TABLE}")
COPY_COLUMNS = [c.strip('"') for c in CASE_COLUMNS]

# The events sent as parameters: a live batch from another database (one statement with
# its case rows and cursor, see BATCH_WRITES); skipping stored ones, a batch taken again.
SEND_EVENTS = """
INSERT INTO jiancha.events (event_id, tx, case_id, kind, occurred_at, payload, ingested_at)
SELECT e, t::xid8, c, k, o, p::jsonb, $7
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
     AS u(e, t, c, k, o, p)
"""
SEND_NEW_EVENTS = SEND_EVENTS + "ON CONFLICT (event_id) DO NOTHING\n"

# When jiancha's schema lives in the source database (the default), the batch's
# valid events are copied server-side: every row of the (tx, id) range just read
# is below the horizon it was read under, so the range holds exactly those rows.
# A plain INSERT: the range lies past the committed cursor, so none of its events
# is stored yet, and ON CONFLICT would cost the server a fifth more per event.
COPY_EVENTS = """
INSERT INTO jiancha.events (event_id, tx, case_id, kind, occurred_at, payload, ingested_at)
SELECT id, tx, case_id, kind, occurred_at, payload, $6
FROM case_events
WHERE (tx, id) > ($1::text::xid8, $2::bigint) AND (tx, id) <= ($3::text::xid8, $4::bigint)
  AND id <> ALL($5::bigint[])
"""
# The same, for a batch that met stored events all the same (see apply_batch).
COPY_NEW_EVENTS = COPY_EVENTS + "ON CONFLICT (event_id) DO NOTHING\n"

INSERT_DEAD = """
INSERT INTO jiancha.dead_letters (event_id, case_id, kind, reason, detail, raw, created_at)
SELECT e, c, k, r, d, w::jsonb, $7
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     AS u(e, c, k, r, d, w)
ON CONFLICT (event_id) DO NOTHING
"""

# Where a batch's known cases start: the first sight and the stored history of each, in
# one round trip (a case row always commits with its events; a row without any still
# says the case was seen).
STARTS = """
SELECT c.case_id, c.first_seen_at, e.event_id, e.tx::text AS tx, e.kind, e.occurred_at, e.payload
FROM jiancha.cases c LEFT JOIN jiancha.events e ON e.case_id = c.case_id
WHERE c.case_id = ANY($1::text[])
"""

SAVE_CURSOR = """
INSERT INTO jiancha.cursor (source, tx, event_id, events, updated_at)
VALUES ($1, $2::text::xid8, $3, $4, $5)
ON CONFLICT (source) DO UPDATE
SET tx = EXCLUDED.tx, event_id = EXCLUDED.event_id,
    events = jiancha.cursor.events + EXCLUDED.events, updated_at = EXCLUDED.updated_at
"""


CREATE_CASE_ROWS = (
    f"CREATE TEMP TABLE IF NOT EXISTS {CASE_ROWS_TABLE} ("
    + ", ".join(CASE_FIELDS)
    + ") ON COMMIT DELETE ROWS"
)


def _renumbered(sql: str, offset: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + offset}", sql)


def _arity(sql: str) -> int:
    return max(int(n) for n in re.findall(r"\$(\d+)", sql))


def _batch_write(events: str) -> str:
    """A small batch's events, case rows and cursor as one statement (data-modifying
    ``WITH``; no trigger or key ties the three tables, so one snapshot for all is enough):
    one round trip instead of three, which is most of a live batch's latency on a busy
    host. The parameters are the three statements' in order."""
    n, m = _arity(events), _arity(UPSERT_CASES)
    return (
        f"WITH stored_events AS ({events.strip()}), "
        f"stored_cases AS ({_renumbered(UPSERT_CASES, n)}) "
        + _renumbered(SAVE_CURSOR.strip(), n + m)
    )


EVENTS_SQL = {
    "stream": SEND_EVENTS,  # a small batch only: a large one is streamed by COPY
    "send": SEND_NEW_EVENTS,
    "copy": COPY_EVENTS,
    "copy_new": COPY_NEW_EVENTS,
}
"""The statement that stores a batch's events, by `monitor.state.store.EventCopy`."""
BATCH_WRITES = {mode: _batch_write(sql) for mode, sql in EVENTS_SQL.items()}
