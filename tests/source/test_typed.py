"""Typed extraction: the payloads read_batch builds from typed columns are the very dicts
json.loads makes of the payload's text, for every shape a source may send."""

from __future__ import annotations

import json
import random
from typing import Any

from monitor import db
from monitor.source import typed
from monitor.source.contract import START
from monitor.source.tailer import read_batch
from tests.sourcekit import at

_ADD = """
INSERT INTO case_events (case_id, kind, occurred_at, payload)
SELECT 'C', k, $2, p::jsonb FROM unnest($1::text[], $3::text[]) AS u(k, p)
"""

# Shapes the typed columns hold, and shapes they must leave to the JSON path.
CASES: list[tuple[str, str]] = [
    ("submitted", '{"matter": "M1", "window": "W1", "region": "220102", "channel": "window"}'),
    ("submitted", '{"matter": "M1", "window": "W1", "region": "220102"}'),  # missing key
    ("submitted", '{"matter": "M1", "window": 3, "region": "r", "channel": "online"}'),
    ("submitted", '{"matter": "M1", "window": null, "region": "r", "channel": "online"}'),
    ("submitted", '{"matter": "受理", "window": "窗口\\"1\\"", "region": "", "channel": "x"}'),
    ("submitted", '{"matter": "M1", "window": "W", "region": "r", "channel": "w", "x": 1}'),
    ("accepted", "{}"),
    ("accepted", '{"promised_days": 5}'),
    ("accepted", '{"pledged_days": 3, "promised_days": -2}'),
    ("accepted", '{"promised_days": 5.0}'),
    ("accepted", '{"promised_days": 1e2}'),
    ("accepted", '{"promised_days": 123456789012345678901234567890}'),
    ("accepted", '{"promised_days": true}'),
    ("extended", '{"days": 10, "approver": "局长"}'),
    ("extended", '{"days": 0, "approver": ""}'),
    ("fee_charged", '{"amount": 12}'),
    ("fee_charged", '{"amount": 12.50}'),
    ("fee_charged", '{"amount": -0.1}'),
    ("fee_charged", '{"amount": 1e400}'),
    ("fee_charged", '{"amount": 1e-400}'),
    ("fee_charged", '{"amount": 0.1234567890123456789}'),
    ("fee_charged", '{"amount": "12"}'),
    ("fee_charged", "{}"),
    ("rated", '{"level": 2, "comment": "等了太久"}'),
    ("rated", '{"level": 9}'),
    ("resumed", "{}"),
    ("resumed", '{"type": "hearing"}'),
    ("resumed", '{"type": 1}'),
    ("suspended", '{"type": "hearing", "notified_days": 20}'),
    ("supplement_requested", '{"items": ["a", "b"]}'),
    ("completed", "{}"),
    ("completed", '{"savepoint": true}'),
    ("completed", "[]"),
    ("completed", '"text"'),
    ("completed", "12"),
    ("completed", "null"),
    ("no_such_kind", '{"matter": "M1"}'),
]


async def _read_both(conn: db.Connection) -> list[tuple[Any, Any, bool]]:
    """(payload read_batch built, json.loads of the payload's text, whether it was typed)."""
    events = await read_batch(conn, START, 10_000)
    texts = {
        r["id"]: r["p"] for r in await conn.fetch("SELECT id, payload::text AS p FROM case_events")
    }
    flags = {
        r["id"]: r["typed"]
        for r in await conn.fetch(
            f"SELECT e.id, x.typed FROM case_events AS e {typed.JOIN.replace('$4', '1e9')}"
        )
    }
    return [(e.payload, json.loads(texts[e.event_id]), flags[e.event_id]) for e in events]


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types and, for objects, the same key order (dead letters show it)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def test_typed_payloads_equal_the_decoded_text(dsn):
    async with await db.connect(dsn) as conn:
        await conn.execute(_ADD, [k for k, _ in CASES], at(0), [p for _, p in CASES])
        got = await _read_both(conn)
    assert len(got) == len(CASES)
    for (kind, text), (built, decoded, _) in zip(CASES, got, strict=True):
        assert _same(built, decoded), (kind, text, built, decoded)
    untyped = [text for (_, text), (_, _, flag) in zip(CASES, got, strict=True) if not flag]
    # the usual shapes are typed; the others (and only they) come as text
    assert untyped == [
        '{"matter": "M1", "window": 3, "region": "r", "channel": "online"}',
        '{"matter": "M1", "window": null, "region": "r", "channel": "online"}',
        '{"matter": "M1", "window": "W", "region": "r", "channel": "w", "x": 1}',
        '{"promised_days": 5.0}',
        '{"promised_days": 123456789012345678901234567890}',
        '{"promised_days": true}',
        '{"amount": 1e400}',
        '{"amount": 1e-400}',
        '{"amount": 0.1234567890123456789}',
        '{"amount": "12"}',
        '{"type": 1}',
        '{"items": ["a", "b"]}',
        '{"savepoint": true}', "[]", '"text"', "12", "null",
        '{"matter": "M1"}',
    ]  # fmt: skip


_KEYS = ["matter", "window", "region", "channel", "days", "approver", "amount", "level",
         "comment", "type", "notified_days", "promised_days", "pledged_days", "reason", "step",
         "result", "items", "other"]  # fmt: skip


def _value(rng: random.Random) -> Any:
    """A JSON value of any kind, often near a typed column's edges."""
    pick = rng.randrange(9)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randint(-(10**20), 10**20) // 10 ** rng.randrange(21)
    if pick == 3:
        return rng.uniform(-1e6, 1e6) * 10.0 ** rng.randrange(-320, 300)
    if pick == 4:
        return round(rng.uniform(-1e6, 1e6), rng.randrange(8))
    if pick == 5:
        return [chr(rng.randrange(0xE000, 0x2FFFF)) for _ in range(rng.randrange(3))]
    return "".join(chr(rng.choice((rng.randrange(1, 128), rng.randrange(0x4E00, 0x9FFF))))
                   for _ in range(rng.randrange(6)))  # fmt: skip


async def test_random_payloads_read_as_their_text_decodes(dsn):
    """Random payloads of every kind: keys a kind reads or not, values of every JSON type."""
    rng = random.Random(20261206)
    kinds = [*sorted(typed.KEYS), "supplement_requested"]
    rows = []
    for _ in range(3000):
        kind = rng.choice(kinds)
        own = [k for group in typed.KEYS.get(kind, ((), (), ())) for k in group]
        keys = rng.sample(_KEYS, rng.randrange(3)) + rng.sample(own, rng.randrange(len(own) + 1))
        payload = {k: _value(rng) for k in keys}
        if rng.random() < 0.5:  # the usual case: the kind's own keys, rightly typed
            payload = {k: v for k, v in payload.items() if k in own and v is not None}
        rows.append((kind, json.dumps(payload, ensure_ascii=rng.random() < 0.5)))
    async with await db.connect(dsn) as conn:
        await conn.execute(_ADD, [k for k, _ in rows], at(0), [p for _, p in rows])
        got = await _read_both(conn)
    assert len(got) == len(rows)
    for built, decoded, _ in got:
        assert _same(built, decoded), (built, decoded)
    assert 0 < sum(flag for _, _, flag in got) < len(got)  # both paths taken
