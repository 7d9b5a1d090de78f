"""Which calendar a case counts on: the centre's, or its region's (one daemon, many counties).

A region's calendar is the national one plus that region's own rest days
(延边朝鲜族自治州 rests on Sept 3, its founding day). The mapping is by
prefix of the case's region code, the longest prefix winning, so one daemon
can serve a whole city or province: ``{"2224": "yanbian"}`` sends every case
of a 延边 county (222401, 222402, ...) to the 延边 calendar.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from monitor.calendar import Calendar, load_calendar

__all__ = ["Regions", "load_regions"]


@dataclass(frozen=True)
class Regions:
    """The centre's calendar, and the calendars of region-code prefixes that differ from it."""

    default: Calendar
    prefixes: tuple[tuple[str, Calendar], ...] = ()  # longest first

    @classmethod
    def of(cls, default: Calendar, by_prefix: Mapping[str, Calendar] | None = None) -> Regions:
        items = sorted((by_prefix or {}).items(), key=lambda kv: (-len(kv[0]), kv[0]))
        return cls(default, tuple(items))

    def for_region(self, region: str | None) -> Calendar:
        if region:
            for prefix, cal in self.prefixes:
                if region.startswith(prefix):
                    return cal
        return self.default

    def key_of(self, region: str | None) -> str:
        """Which calendar, as a short key: "" for the default, else the prefix."""
        if region:
            for prefix, _ in self.prefixes:
                if region.startswith(prefix):
                    return prefix
        return ""

    def regional(self) -> Iterator[tuple[str, Calendar]]:
        yield from self.prefixes

    @property
    def fingerprint(self) -> str:
        """The default calendar's own fingerprint when no region has its own."""
        if not self.prefixes:
            return self.default.fingerprint
        h = hashlib.sha256(self.default.fingerprint.encode())
        for prefix, cal in self.prefixes:
            h.update(f"\0{prefix}={cal.fingerprint}".encode())
        return h.hexdigest()[:16]


def load_regions(default: Calendar, mapping: Mapping[str, str]) -> Regions:
    """Load each region's calendar by name or path (a bad one raises `CalendarError`)."""
    return Regions.of(default, {prefix: load_calendar(name) for prefix, name in mapping.items()})
