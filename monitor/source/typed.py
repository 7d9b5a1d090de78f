"""Typed extraction: the payload fields jiancha reads, as typed columns of the read query.

Decoding every payload's JSON in Python is per-event work on the hot path
that the server can do as it reads. The read query looks each event's kind
up in a small table of the keys it reads and returns their values as
``text``, ``int8`` and ``float8`` columns, with a flag saying whether those columns hold the whole
payload exactly: an object with no other key, no ``null``, each value of its
key's JSON type (an integer no longer than 18 digits, a decimal of at most
15 + 15 digits). Every cast is guarded by a pattern, so no value can fail
the query. When the flag is set, `payload` rebuilds the very dict
``json.loads`` would have made from the payload's text (same keys, values,
types and key order: jsonb's, shorter keys first), so validation, dead
letters and the reduction see exactly what they saw before. When it is not
(an extra key, a list, a wrong type, a huge number), the query returns the
payload's text and it is decoded as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["COLUMNS", "JOIN", "KEYS", "payload"]

# kind -> (text keys, integer keys, number keys): slots t1-t4, i1-i2, n1 in that order.
# The keys each kind's validation and reduction read (contract._SCHEMA, and the
# `type` a `resumed` may name); `items` (a list) is left to the JSON path.
KEYS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "submitted": (("matter", "window", "region", "channel"), (), ()),
    "supplement_received": ((), (), ()),
    "accepted": ((), ("promised_days", "pledged_days"), ()),
    "refused": (("reason",), (), ()),
    "step_started": (("step",), (), ()),
    "step_finished": (("step",), (), ()),
    "suspended": (("type",), ("notified_days",), ()),
    "resumed": (("type",), (), ()),
    "extended": (("approver",), ("days",), ()),
    "decided": (("result",), (), ()),
    "completed": ((), (), ()),
    "delivered": ((), (), ()),
    "withdrawn": ((), (), ()),
    "terminated": (("reason",), (), ()),
    "fee_charged": ((), (), ("amount",)),
    "rated": (("comment",), ("level",), ()),
    "review_visited": ((), (), ()),
    "review_rectified": ((), (), ()),
}
_TEXTS, _INTS = 4, 2


def _literal(key: str | None) -> str:
    return "NULL::text" if key is None else f"'{key}'"


def _values() -> str:
    rows = []
    for kind, (texts, ints, nums) in KEYS.items():
        slots = [*texts, *[None] * (_TEXTS - len(texts)), *ints, *[None] * (_INTS - len(ints)),
                 *(nums or [None])]  # fmt: skip
        rows.append(f"('{kind}', " + ", ".join(map(_literal, slots)) + ")")
    return ",\n       ".join(rows)


# A jsonb scalar's text (`#>> '{}'`) is what payload::text holds for it: numbers in
# numeric's plain notation (no exponent), so the patterns below see what json.loads saw.
_INT = "'^-?[0-9]{1,18}$'"
_DEC = "'^-?[0-9]{1,15}\\.[0-9]{1,15}$'"

# Joined to the rows read (alias e, with case_events' kind and payload): k = the kind's
# keys, v = their values, x.typed = whether the typed columns are the whole payload.
# $4 is the read's STORED_MAX: a payload stored larger is not typed either.
JOIN = f"""
LEFT JOIN (VALUES {_values()}
) AS k(kind, t1, t2, t3, t4, i1, i2, n1) ON k.kind = e.kind
LEFT JOIN LATERAL (
  SELECT e.payload -> k.t1 AS t1, e.payload -> k.t2 AS t2, e.payload -> k.t3 AS t3,
         e.payload -> k.t4 AS t4, e.payload -> k.i1 AS i1, e.payload -> k.i2 AS i2,
         e.payload -> k.n1 AS n1
) AS v ON k.kind IS NOT NULL
CROSS JOIN LATERAL (
  SELECT k.kind IS NOT NULL
     AND pg_column_size(e.payload) <= $4  -- else never read (tailer.STORED_MAX)
     AND CASE WHEN jsonb_typeof(e.payload) = 'object'  -- `-` fails on a scalar
              THEN e.payload - ARRAY[k.t1, k.t2, k.t3, k.t4, k.i1, k.i2, k.n1] = '{{}}'::jsonb
              ELSE false END
     AND (v.t1 IS NULL OR jsonb_typeof(v.t1) = 'string')
     AND (v.t2 IS NULL OR jsonb_typeof(v.t2) = 'string')
     AND (v.t3 IS NULL OR jsonb_typeof(v.t3) = 'string')
     AND (v.t4 IS NULL OR jsonb_typeof(v.t4) = 'string')
     AND (v.i1 IS NULL OR (jsonb_typeof(v.i1) = 'number' AND v.i1 #>> '{{}}' ~ {_INT}))
     AND (v.i2 IS NULL OR (jsonb_typeof(v.i2) = 'number' AND v.i2 #>> '{{}}' ~ {_INT}))
     AND (v.n1 IS NULL OR (jsonb_typeof(v.n1) = 'number'
                           AND (v.n1 #>> '{{}}' ~ {_INT} OR v.n1 #>> '{{}}' ~ {_DEC})))
     AS typed
) AS x
"""

# The typed columns, after the read's own (the flag first); NULL unless `typed`.
COLUMNS = f"""x.typed,
       CASE WHEN x.typed THEN v.t1 #>> '{{}}' END, CASE WHEN x.typed THEN v.t2 #>> '{{}}' END,
       CASE WHEN x.typed THEN v.t3 #>> '{{}}' END, CASE WHEN x.typed THEN v.t4 #>> '{{}}' END,
       CASE WHEN x.typed THEN (v.i1 #>> '{{}}')::int8 END,
       CASE WHEN x.typed THEN (v.i2 #>> '{{}}')::int8 END,
       CASE WHEN x.typed AND v.n1 #>> '{{}}' ~ {_INT} THEN (v.n1 #>> '{{}}')::int8 END,
       CASE WHEN x.typed AND v.n1 #>> '{{}}' ~ {_DEC} THEN (v.n1 #>> '{{}}')::float8 END"""

WIDTH: Final = 9  # the columns COLUMNS adds: typed, t1-t4, i1-i2, the number as int8 or float8


def _builder(kind: str) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """The payload of one typed row of ``kind``, from its slots (slots[0] the flag)."""
    texts, ints, nums = KEYS[kind]
    where = {key: 1 + i for i, key in enumerate(texts)}
    where |= {key: 1 + _TEXTS + i for i, key in enumerate(ints)}
    # a number comes as an int8 (no fraction) or a float8: json.loads's int or float
    where |= {key: 1 + _TEXTS + _INTS for key in nums}
    number = 1 + _TEXTS + _INTS
    # jsonb's key order, which json.loads of payload::text keeps: shorter keys first
    order = sorted(where, key=lambda k: (len(k), k))
    positions = [where[key] for key in order]

    def build(r: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, at in zip(order, positions, strict=True):
            value = r[at] if at != number or r[at] is not None else r[at + 1]
            if value is not None:  # an absent key: a present one is never null here
                out[key] = value
        return out

    if not order:
        return lambda r: {}
    if nums:
        return build

    def every(r: Sequence[Any]) -> dict[str, Any]:
        values = [r[at] for at in positions]
        if None in values:  # an optional key left out (or a required one: validate says so)
            return build(r)
        return dict(zip(order, values, strict=True))

    return every


_BUILDERS: Final = {kind: _builder(kind) for kind in KEYS}


def payload(kind: str, slots: Sequence[Any]) -> dict[str, Any]:
    """The payload of a typed row (``slots`` = the row's COLUMNS, the flag set)."""
    return _BUILDERS[kind](slots)
