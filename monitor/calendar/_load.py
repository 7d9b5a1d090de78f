"""Finding and building calendars: ``NAME.toml`` on the search path over a built-in base."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from monitor.i18n import t
from monitor.paths import rules_dir

from . import BUILTIN_CALENDARS, Calendar
from ._spec import CalendarError, CalendarSpec, parse_spec_file
from ._tables import DEFAULT_TZ, DayModel, apply_spec, build_tables, national_days, weekday_days

__all__ = ["available_calendars", "build_calendar", "calendar_search_path", "load_calendar"]


def calendar_search_path() -> list[Path]:
    """Folders searched for ``NAME.toml``: ``JIANCHA_CALENDAR_PATH`` first, then rules/."""
    extra = os.environ.get("JIANCHA_CALENDAR_PATH", "")
    dirs = [Path(p) for p in extra.split(os.pathsep) if p]
    return [*dirs, rules_dir() / "calendars"]


def available_calendars(search_path: list[Path] | None = None) -> dict[str, str]:
    """Calendar names that ``load_calendar`` accepts, with their descriptions."""
    found = dict(BUILTIN_CALENDARS)
    for folder in reversed(search_path or calendar_search_path()):
        for path in sorted(folder.glob("*.toml")):
            try:
                found[path.stem] = parse_spec_file(path).description
            except CalendarError as exc:
                found[path.stem] = f"⚠ {exc}"
    return found


def _find_spec(name: str, search_path: list[Path]) -> CalendarSpec | None:
    if name.endswith(".toml") or os.sep in name:
        return parse_spec_file(Path(name))
    for folder in search_path:
        path = folder / f"{name}.toml"
        if path.is_file():
            return parse_spec_file(path, name)
    return None


def load_calendar(name: str = "cn", *, search_path: list[Path] | None = None) -> Calendar:
    """A calendar by name (or path): its file's overrides on top of its base's.

    ``national`` and ``weekdays`` are built in; any other name is a file
    ``NAME.toml`` on ``calendar_search_path()``, whose ``base`` is another
    name (``national`` by default). Raises CalendarError with file and line.
    """
    path = search_path if search_path is not None else calendar_search_path()
    chain: list[CalendarSpec] = []
    current = name
    while True:
        spec = _find_spec(current, path)
        if spec is None:
            if current in BUILTIN_CALENDARS:
                break
            allowed = ", ".join(sorted(available_calendars(path)))
            searched = ", ".join(str(p) for p in path)
            message = t("cal.not_found", name=current, searched=searched, allowed=allowed)
            if chain:
                message = t("cal.unknown_base", value=current, allowed=allowed)
                raise CalendarError(message, chain[-1].path, _base_line(chain[-1]))
            raise CalendarError(message)
        if any(s.path == spec.path for s in chain):
            links = " → ".join([*(s.name for s in chain), spec.name])
            raise CalendarError(t("cal.cycle", chain=links), spec.path)
        chain.append(spec)
        current = spec.base
    return build_calendar(tuple(reversed(chain)), base=current, name=name)


def _base_line(spec: CalendarSpec) -> int | None:
    if spec.path is None:
        return None
    for no, line in enumerate(spec.path.read_text("utf-8").splitlines(), 1):
        if line.strip().startswith("base"):
            return no
    return None


@functools.lru_cache(maxsize=8)
def _base_model(base: str) -> DayModel:
    return national_days() if base == "national" else weekday_days()


def build_calendar(
    specs: tuple[CalendarSpec, ...] = (), *, base: str = "national", name: str | None = None
) -> Calendar:
    """A calendar from a built-in base and specs applied in order (base first)."""
    if base not in BUILTIN_CALENDARS:
        raise CalendarError(
            t("cal.unknown_base", value=base, allowed=", ".join(sorted(BUILTIN_CALENDARS)))
        )
    model = _base_model(base)
    tz: str | None = None
    hours: tuple[tuple[int, int], ...] | None = None
    for spec in specs:
        model = apply_spec(model, spec)
        tz = spec.timezone or tz
        hours = spec.office_hours if spec.office_hours is not None else hours
    tz = tz or DEFAULT_TZ
    hours = hours or ()
    tables = build_tables(model, tz, hours)
    description = specs[-1].description if specs else BUILTIN_CALENDARS[base]
    return Calendar(
        name or (specs[-1].name if specs else base),
        tables,
        timezone=tz,
        office_hours=hours,
        model=model,
        specs=specs,
        description=description,
    )
