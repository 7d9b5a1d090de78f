"""The simulated centre's matter catalogue: the engine's matters plus volumes and fees.

A TOML file (rules/matters-county.toml by default) that `jiancha simulate`,
`jiancha demo` and the benchmarks read; refused with the file, the matter and
the key when wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.i18n import h
from monitor.paths import rules_dir
from monitor.source.contract import PAUSE_TYPES, Matter

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_CATALOGUE",
    "DEFAULT_FEE",
    "Catalogue",
    "CatalogueError",
    "load_catalogue",
    "parse_catalogue",
]

DEFAULT_CATALOGUE = "matters-county.toml"
DEFAULT_FEE = 50.0


# --- the catalogue -------------------------------------------------------------------


class CatalogueError(ValueError):
    """The matter catalogue file is wrong; ``str()`` names the file, the matter and why."""


@dataclass(frozen=True)
class Catalogue:
    """The matters (the engine's own type) plus what only the simulator needs."""

    matters: dict[str, Matter]
    weights: dict[str, float]  # relative volume per matter code
    fees: dict[str, float]  # amount charged per case of a non-free matter
    path: Path | None = None


_KEYS = frozenset(
    {"code", "name", "department", "statutory_days", "promised_days", "free", "joint",
     "step_days", "pause_max_days", "weight", "fee"}
)  # fmt: skip


def _days_table(where: str, key: str, value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise CatalogueError(f"{where}: {key} " + h("应为表", "must be a table"))
    out: dict[str, int] = {}
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise CatalogueError(
                f"{where}: {key}.{k} " + h("应为非负整数", "must be a non-negative integer")
            )
        if key == "pause_max_days" and k not in PAUSE_TYPES:
            raise CatalogueError(
                f"{where}: {key}.{k} "
                + h("不是特别程序类型", "is not a pause type")
                + f" ({', '.join(sorted(PAUSE_TYPES))})"
            )
        out[str(k)] = v
    return out


def _int(where: str, m: Mapping[str, Any], key: str) -> int:
    value = m.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CatalogueError(
            f"{where}: {key} " + h("应为非负整数", "must be a non-negative integer")
        )
    return value


def _number(where: str, m: Mapping[str, Any], key: str, default: float) -> float:
    value = m.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise CatalogueError(f"{where}: {key} " + h("应为非负数", "must be a non-negative number"))
    return float(value)


def parse_catalogue(data: Mapping[str, Any], path: Path | None = None) -> Catalogue:
    """A catalogue from parsed TOML (``[[matter]]`` tables), checked entry by entry."""
    name = str(path) if path is not None else "catalogue"
    entries = data.get("matter")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{name}: " + h("没有 [[matter]] 条目", "no [[matter]] entries"))
    matters: dict[str, Matter] = {}
    weights: dict[str, float] = {}
    fees: dict[str, float] = {}
    for i, m in enumerate(entries):
        where = f"{name}: matter #{i + 1}"
        if not isinstance(m, dict):
            raise CatalogueError(f"{where}: " + h("应为表", "must be a table"))
        unknown = sorted(set(m) - _KEYS)
        if unknown:
            raise CatalogueError(
                f"{where}: " + h("未知的键 ", "unknown keys ") + ", ".join(unknown)
            )
        for key in ("code", "name", "department"):
            if not isinstance(m.get(key), str) or not m[key].strip():
                raise CatalogueError(f"{where}: {key} " + h("应为非空文本", "must be text"))
        code = m["code"]
        where = f"{name}: {code}"
        if code in matters:
            raise CatalogueError(f"{where}: " + h("事项编码重复", "duplicate code"))
        statutory, promised = _int(where, m, "statutory_days"), _int(where, m, "promised_days")
        if promised > statutory:
            raise CatalogueError(
                f"{where}: " + h("承诺时限不能超过法定时限", "promised_days > statutory_days")
            )
        for key in ("free", "joint"):
            if not isinstance(m.get(key, False), bool):
                raise CatalogueError(f"{where}: {key} " + h("应为 true/false", "must be a boolean"))
        matters[code] = Matter.of({
            **m, "statutory_days": statutory, "promised_days": promised,
            "step_days": _days_table(where, "step_days", m.get("step_days", {})),
            "pause_max_days": _days_table(where, "pause_max_days", m.get("pause_max_days", {})),
        })  # fmt: skip
        weights[code] = _number(where, m, "weight", 1.0)
        if not matters[code].free:
            fees[code] = _number(where, m, "fee", DEFAULT_FEE)
    if sum(weights.values()) <= 0:
        raise CatalogueError(f"{name}: " + h("权重之和必须为正", "weights must not all be 0"))
    return Catalogue(matters, weights, fees, path)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read a catalogue file; a bare name is looked up in the rules folder.

    Default: ``rules/matters-county.toml``. The matters are the same
    ``monitor.source.contract.Matter`` values ``monitor.source.catalogue.example_matters`` and
    ``ingest.load_matters`` give, so the engine takes them as they are.
    """
    p = Path(path) if path is not None else rules_dir() / DEFAULT_CATALOGUE
    if not p.exists() and path is not None and p.parent == Path("."):
        candidate = rules_dir() / (p.name if p.suffix else f"{p.name}.toml")
        p = candidate if candidate.exists() else p
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{p}: {exc}") from None
    return parse_catalogue(data, p)
