"""Who hears about a notification: the routes of ``jiancha.toml`` applied to its facts."""

from __future__ import annotations

from monitor.config import NotifyConfig

__all__ = ["recipients"]


def recipients(
    cfg: NotifyConfig, kind: str, level: str | None, department: str, window: str
) -> tuple[list[str], bool]:
    """The channels a notification goes to, and whether a route matched (else: fallback)."""
    found: list[str] = []
    for route in cfg.routes:
        if not route.matches(kind, level, department, window):
            continue
        found.extend(route.channels)
        for role in route.to:
            if role == "window":
                found.extend(cfg.windows.get(window, ()))
            elif role == "department":
                found.extend(cfg.departments.get(department, ()))
            elif role == "inspectors":
                found.extend(cfg.inspectors)
            elif role == "fallback":
                found.extend(cfg.fallback)
    unique = list(dict.fromkeys(c for c in found if c in cfg.channels))
    if unique:
        return unique, True
    return list(cfg.fallback), False
