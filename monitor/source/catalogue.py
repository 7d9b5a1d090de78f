"""The matter catalogue: the source's ``matters``, or the example shipped in ``rules/``."""

from __future__ import annotations

import tomllib

from monitor.db import Connection
from monitor.paths import rules_dir
from monitor.source.contract import Matter

__all__ = ["example_matters", "load_matters"]

_MATTERS = (
    "SELECT code, name, department, statutory_days, promised_days, free, joint, "
    "step_days, pause_max_days FROM matters"
)


async def load_matters(conn: Connection) -> dict[str, Matter]:
    """The matter catalogue of the source database."""
    return {r["code"]: Matter.of(r) for r in await conn.fetch(_MATTERS)}


def example_matters() -> dict[str, Matter]:
    """The example catalogue shipped in rules/matters-example.toml (no database needed)."""
    data = tomllib.loads((rules_dir() / "matters-example.toml").read_text("utf-8"))
    return {m["code"]: Matter.of(m) for m in data.get("matter", [])}
