"""Building the kernel's tables from national data and override files.

Pure numpy over the 36,890 days of 2000–2100: the national schedule is
written into a weekday mask by fancy indexing from chinese-calendar's data
dicts (never one ``is_workday`` call per day), so a calendar builds in a few
milliseconds and a reload can rebuild every calendar freely. The years it has
no schedule for get the regulation's own holidays (``_statutory``), whose
lunar dates are computed once per year and cached.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._spec import FIRST_YEAR, LAST_YEAR, CalendarSpec, DateRule
from ._statutory import inferred_name, lunar_days, source_text, statutory_days

D0 = int(np.datetime64(f"{FIRST_YEAR}-01-01", "D").astype(np.int64))
D_END = int(np.datetime64(f"{LAST_YEAR + 1}-01-01", "D").astype(np.int64))
N_DAYS = D_END - D0
# Kernels divide seconds since the first local midnight in 32 bits (a vectorisable
# division); the range, with a day of DST slack, must stay below 2^32 s.
assert (N_DAYS + 1) * 86400 < 2**32
DEFAULT_TZ = "Asia/Shanghai"
_SENTINEL = 2**30  # larger than any working-day index: marks "outside the table"

BoolArray = npt.NDArray[np.bool_]
I64Array = npt.NDArray[np.int64]
I32Array = npt.NDArray[np.int32]

_DAYS = np.arange(D0, D_END, dtype=np.int64)
_WEEKDAY = (_DAYS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
_YEAR = _DAYS.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


@dataclass
class DayModel:
    """Which local days are worked and which are provisional, before time of day."""

    work: BoolArray
    provisional: BoolArray
    names: dict[int, str]  # day index -> holiday / adjusted-workday name
    sources: dict[int, str]  # year -> where its schedule comes from

    def copy(self) -> DayModel:
        return DayModel(
            self.work.copy(), self.provisional.copy(), dict(self.names), dict(self.sources)
        )


def national_days() -> DayModel:
    """The State Council schedules that chinese-calendar carries; elsewhere, provisionally,
    weekends and the holidays the national regulation itself fixes."""
    from chinese_calendar import constants

    work = _WEEKDAY < 5
    hol = _to_index(constants.holidays)
    wrk = _to_index(constants.workdays)
    work[hol] = False
    work[wrk] = True
    years = [d.year for d in constants.holidays] + [d.year for d in constants.workdays]
    published = np.arange(min(years), max(years) + 1)
    provisional = ~np.isin(_YEAR, published)
    names = {int(i): _name(n) for i, n in zip(hol, constants.holidays.values(), strict=True)}
    for i, n in zip(wrk, constants.workdays.values(), strict=True):
        names[int(i)] = _name(n) + "调休上班"
    import chinese_calendar

    version = getattr(chinese_calendar, "__version__", "?")
    sources = {int(y): f"chinese-calendar {version}" for y in published}
    model = DayModel(work, provisional, names, sources)
    known = set(published.tolist())
    infer_statutory(model, [y for y in range(FIRST_YEAR, LAST_YEAR + 1) if y not in known])
    return model


def infer_statutory(model: DayModel, years: list[int]) -> None:
    """Make the regulation's own holidays of ``years`` rest days of ``model``, in place.

    Only the days 全国年节及纪念日放假办法 fixes (Order 795 from 2025; before,
    the version then in force): no bridge days, no adjusted working weekends,
    no 补假 for a holiday on a weekend. The years stay provisional.
    """
    days: list[int] = []
    for year, lunar in lunar_days(years).items():
        for day, names in statutory_days(year, lunar).items():
            i = day - D0
            days.append(i)
            model.names[i] = inferred_name(names, year)
        model.sources[year] = source_text(year)
    model.work[np.asarray(days, dtype=np.int64)] = False


def weekday_days() -> DayModel:
    """Monday to Friday every week, nothing provisional: a reference calendar."""
    return DayModel(_WEEKDAY < 5, np.zeros(N_DAYS, dtype=bool), {}, {})


_ZH_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def _name(value: object) -> str:
    text = str(getattr(value, "value", value))
    return _ZH_NAMES.get(text, text)


def _to_index(dates: object) -> I64Array:
    """Day indices of an iterable of ``datetime.date``, within 2000–2100."""
    arr = np.array([d.isoformat() for d in dates], dtype="datetime64[D]")  # type: ignore[attr-defined]
    idx = arr.astype(np.int64) - D0
    return idx[(idx >= 0) & (idx < N_DAYS)]


def apply_spec(model: DayModel, spec: CalendarSpec) -> DayModel:
    """The day model of ``spec`` on top of its base's model."""
    out = model.copy()
    for notice in spec.years:
        mask: BoolArray = _YEAR == notice.year  # noqa: SIM300
        out.work[mask] = _WEEKDAY[mask] < 5
        out.provisional[mask] = False
        hol = np.asarray(notice.holidays, dtype=np.int64) - D0
        wrk = np.asarray(notice.workdays, dtype=np.int64) - D0
        out.work[hol] = False
        out.work[wrk] = True
        for i in np.nonzero(mask)[0]:
            out.names.pop(int(i), None)
        for i in hol:
            out.names[int(i)] = "法定节假日"
        for i in wrk:
            out.names[int(i)] = "调休上班"
        out.sources[notice.year] = notice.source or str(spec.path or spec.name)
    for rule in spec.holidays:
        idx = _rule_index(rule)
        out.work[idx] = False
        for i in idx:
            out.names[int(i)] = rule.name
    for rule in spec.workdays:
        idx = _rule_index(rule)
        out.work[idx] = True
        for i in idx:
            out.names[int(i)] = rule.name
    return out


def _rule_index(rule: DateRule) -> I64Array:
    parts = [np.asarray(rule.days, dtype=np.int64) - D0]
    for month, day in rule.annual:
        for year in range(max(rule.from_year, FIRST_YEAR), min(rule.to_year, LAST_YEAR) + 1):
            try:
                parts.append(
                    np.array([(dt.date(year, month, day) - dt.date(1970, 1, 1)).days - D0])
                )
            except ValueError:  # 02-29 in a common year
                continue
    idx = np.concatenate(parts)
    years = _YEAR[np.clip(idx, 0, N_DAYS - 1)]
    keep = (idx >= 0) & (idx < N_DAYS) & (years >= rule.from_year) & (years <= rule.to_year)
    return idx[keep]


# --- time zones ------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def zone_offsets(tz: str) -> tuple[I64Array, I64Array]:
    """UTC offset changes of ``tz`` over the table's range: (instants, offsets).

    zoneinfo keeps its transitions private, so they are found by sampling
    weekly and bisecting each change to the second (a few thousand calls).
    """
    zone = zoneinfo.ZoneInfo(tz)
    lo = (D0 - 2) * 86400
    hi = (D_END + 2) * 86400
    utc = dt.UTC

    def off(sec: int) -> int:
        moment = dt.datetime.fromtimestamp(sec, utc).astimezone(zone)
        delta = moment.utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    step = 7 * 86400
    samples = [*list(range(lo, hi, step)), hi]
    offs = [off(s) for s in samples]
    instants, values = [lo], [offs[0]]
    for a, b, oa, ob in zip(samples, samples[1:], offs, offs[1:], strict=False):
        while oa != ob:
            # first second in (a, b] whose offset differs from oa
            left, right = a, b
            while right - left > 1:
                mid = (left + right) // 2
                if off(mid) == oa:
                    left = mid
                else:
                    right = mid
            oa = off(right)
            instants.append(right)
            values.append(oa)
            a = right
    return np.array(instants, dtype=np.int64), np.array(values, dtype=np.int64)


def _local_to_utc(local: I64Array, instants: I64Array, offsets: I64Array) -> I64Array:
    """UTC instants of wall-clock times (seconds, as if UTC); a gap resolves forward."""
    guess: I64Array = local - offsets[np.searchsorted(instants, local - offsets[0], "right") - 1]
    utc: I64Array = local - offsets[np.searchsorted(instants, guess, "right") - 1]
    return utc


@dataclass(frozen=True, eq=False)
class Tables:
    """Everything the kernels read; arrays are never mutated after build."""

    t0: int  # UTC instant of local midnight of day index 0
    fixed: bool  # one UTC offset over the whole range
    work: BoolArray  # [N_DAYS]
    provisional: BoolArray  # [N_DAYS]
    day_start: I64Array  # [N_DAYS + 1] UTC instant of each local midnight
    trans: I64Array  # [N_DAYS] UTC instant of an offset change inside the day, else max
    shift: I64Array  # [N_DAYS] the change's size in seconds
    oh_start: I64Array  # [P] office periods, local seconds of day
    oh_end: I64Array
    oh_total: int
    cum: I32Array  # [N_DAYS + 1] working days before each day
    pcum: I32Array  # [N_DAYS + 1] provisional days before each day
    cum_pad: I32Array  # [N_DAYS + 2] cum, then two sentinels past any working-day index
    nth_end: I64Array  # [n_work + 1] UTC instant the k-th working day ends; NaT sentinel last
    nth_pcum: I32Array  # [n_work + 1] provisional days up to and including it; 0 last
    nth_day: I32Array  # [n_work + 1] local day index of the k-th working day; 0 last
    ctab: I64Array  # [N_DAYS + 2] 2 * working seconds before each day + work[d]
    ltab: I32Array  # [N_DAYS + 1] 2 * working days before each day + work[d] (_levels24)

    @property
    def day_start_or_none(self) -> I64Array | None:
        """What kernels take as ``day_start``: None selects their fixed-offset variant."""
        return None if self.fixed else self.day_start


def _ctab(cum: I32Array, work: BoolArray) -> I64Array:
    """``count_kernel_24h``'s table: working seconds before each day (and the day
    after the range, twice) with the day's work flag in the low bit."""
    secs = cum.astype(np.int64) * 86400
    tab = np.append(secs, secs[-1]) * 2
    tab[:N_DAYS] += work
    return tab


def build_tables(model: DayModel, tz: str, office_hours: tuple[tuple[int, int], ...]) -> Tables:
    """Kernel tables for a day model in a time zone, with optional office hours."""
    instants, offsets = zone_offsets(tz)
    local_midnight = np.arange(D0, D_END + 1, dtype=np.int64) * 86400
    day_start = _local_to_utc(local_midnight, instants, offsets)
    fixed = len(offsets) == 1
    trans = np.full(N_DAYS, np.iinfo(np.int64).max, dtype=np.int64)
    shift = np.zeros(N_DAYS, dtype=np.int64)
    inner = instants[1:]
    where = np.searchsorted(day_start, inner, "right") - 1
    ok = (where >= 0) & (where < N_DAYS)
    trans[where[ok]] = inner[ok]
    shift[where[ok]] = (offsets[1:] - offsets[:-1])[ok]

    work = model.work
    cum = np.zeros(N_DAYS + 1, dtype=np.int32)
    np.cumsum(work, out=cum[1:])
    pcum = np.zeros(N_DAYS + 1, dtype=np.int32)
    np.cumsum(model.provisional, out=pcum[1:])
    work_idx = np.nonzero(work)[0]
    if office_hours:
        close = office_hours[-1][1]
        day_end = _local_to_utc(local_midnight[:-1] + close, instants, offsets)
    else:
        day_end = day_start[1:]
    oh = np.array(office_hours, dtype=np.int64).reshape(-1, 2)
    return Tables(
        t0=int(day_start[0]),
        fixed=fixed,
        work=work,
        provisional=model.provisional,
        day_start=day_start,
        trans=trans,
        shift=shift,
        oh_start=np.ascontiguousarray(oh[:, 0]),
        oh_end=np.ascontiguousarray(oh[:, 1]),
        oh_total=int((oh[:, 1] - oh[:, 0]).sum()) or 86400,
        cum=cum,
        pcum=pcum,
        cum_pad=np.append(cum, [_SENTINEL, _SENTINEL]).astype(np.int32),
        nth_end=np.append(day_end[work_idx], np.iinfo(np.int64).min),
        nth_pcum=np.append(pcum[work_idx + 1], 0).astype(np.int32),
        nth_day=np.append(work_idx, 0).astype(np.int32),
        ctab=_ctab(cum, work),
        ltab=(2 * cum + np.append(work, False)).astype(np.int32),
    )
