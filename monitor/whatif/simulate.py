"""A simulated county service centre: the case events ``jiancha demo`` and benchmarks feed on.

The daemon is only convincing against days that look like a real centre's
(the approval bureaus' work reports: about 560 cases a working day, about 55 %
immediate, 补正, special procedures, extensions, a few late cases and bad
ratings). So the generator is pure and seeded (tests and benchmarks get the
same days every time, and a day does not depend on the period around it), it
uses the working-day calendar for its timing (late cases are late by the same
arithmetic the engine applies), and the writer replays the events into the
source database on an injected clock, so a demo runs a day in minutes through
the daemon's real code paths.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from monitor.source.contract import Matter

if TYPE_CHECKING:
    from monitor.calendar import Calendar
from monitor.whatif.catalogue import (
    DEFAULT_CATALOGUE,
    DEFAULT_FEE,
    Catalogue,
    CatalogueError,
    load_catalogue,
    parse_catalogue,
)

__all__ = [
    "DEFAULT_CATALOGUE",
    "DEFAULT_PER_DAY",
    "DEFAULT_REGION",
    "Catalogue",
    "CatalogueError",
    "Event",
    "Profile",
    "between",
    "generate",
    "load_catalogue",
    "next_working_day",
    "parse_catalogue",
]

DEFAULT_PER_DAY = 560
DEFAULT_REGION = "县政务服务中心"


# --- how the centre behaves ------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Shares of each kind of case (per case unless said otherwise); tune for a demo."""

    online_share: float = 0.12  # of a working day's cases
    rest_day_online: float = 0.04  # online cases on a rest day, as a share of per_day
    supplement: float = 0.09  # 补正 before acceptance
    second_supplement: float = 0.03  # of those: asked twice (breaks 一次告知: a yellow card)
    refused: float = 0.012
    refused_without_reason: float = 0.05  # of refusals (a yellow card)
    withdrawn: float = 0.005
    terminated: float = 0.002  # promised cases only
    denied: float = 0.02  # of promised decisions
    pledged: float = 0.03  # 容缺受理, of promised cases
    pledge_late: float = 0.1  # of those: materials later than pledged
    suspended: float = 0.3  # of cases whose matter allows special procedures
    pause_overrun: float = 0.05  # of pauses: longer than the type's maximum
    extended: float = 0.04  # of promised cases with at least 5 promised days
    late: float = 0.025  # promised cases decided after the promised limit ...
    statutory_late: float = 0.004  # ... and after the statutory one as well
    step_overrun: float = 0.02  # per step
    immediate_late: float = 0.003  # immediate cases finished the next working day
    online_slow: float = 0.03  # online cases accepted only after 3 to 6 working days
    rated_window: float = 0.75
    rated_online: float = 0.35
    rating_levels: tuple[float, float, float, float, float] = (0.004, 0.006, 0.015, 0.05, 0.925)
    late_delivery: float = 0.003
    review_visit_late: float = 0.15
    review_rectify_late: float = 0.1
    windows: int = 40  # counters in the hall, shared out by volume
    weekday_factor: tuple[float, ...] = (1.10, 1.02, 1.00, 0.98, 0.90, 0.90, 0.90)


class Event(NamedTuple):
    """One row for ``case_events``: what ``tests/sourcekit.write`` takes as well."""

    case_id: str
    kind: str
    occurred_at: dt.datetime  # aware, UTC
    payload: dict[str, Any]


# Office hours of the hall (local seconds since midnight); arrivals peak mid-morning.
_AM = (9 * 3600, 12 * 3600)
_PM = (13 * 3600 + 1800, 17 * 3600 + 1800)
_ARRIVAL_HOURS = ((9.0, 10.0), (10.0, 11.0), (11.0, 12.0), (13.5, 14.5), (14.5, 15.5),
                  (15.5, 16.5), (16.5, 17.5))  # fmt: skip
_ARRIVAL_WEIGHTS = (0.17, 0.20, 0.14, 0.12, 0.15, 0.13, 0.09)
# Online submissions by local hour (any day, any hour, mostly in the daytime).
_ONLINE_HOURS = (1, 1, 1, 1, 1, 1, 2, 4, 7, 9, 9, 8, 6, 7, 8, 8, 8, 7, 6, 6, 6, 5, 4, 2)

_SUPPLEMENT_ITEMS = (
    "申请人身份证明", "营业执照副本", "法定代表人授权委托书", "经营场所使用证明",
    "现场照片", "申请表签字确认", "不动产权属证明", "建设用地规划许可证",
    "施工图审查合格书", "健康证明", "相关人员资格证书", "平面布局图",
)  # fmt: skip
_REFUSAL_REASONS = (
    "申请事项不属于本机关职权范围",
    "申请人不具备申请资格",
    "申请事项依法不需要取得行政许可",
    "申请材料存在虚假内容",
)
_TERMINATION_REASONS = (
    "申请人主体资格依法终止",
    "申请人死亡或丧失行为能力",
    "因不可抗力致使审批无法进行",
)
_BAD_COMMENTS = (
    "排队等候时间太长",
    "窗口人员态度不好",
    "材料要求前后不一致，跑了好几趟",
    "系统故障，当天没办成",
    "办理进度查询不到，没人通知",
    "收费标准没有讲清楚",
)
_GOOD_COMMENTS = ("办事效率高", "服务热情周到", "一次就办好了，点赞")


# Milestones that end the decision period: a pause always comes before them.
_FINAL = frozenset({"decided", "withdrawn", "terminated"})


class _Days:
    """The calendar's working days around the period, precomputed for scalar lookups."""

    def __init__(self, cal: Calendar, first: dt.date, last: dt.date, horizon: int) -> None:
        self.tz = zoneinfo.ZoneInfo(cal.timezone)
        lo_cal = dt.date.fromisoformat(str(cal.first_day))
        hi_cal = dt.date.fromisoformat(str(cal.last_day))
        lo = max(first - dt.timedelta(days=7), lo_cal)
        hi = min(last + dt.timedelta(days=horizon), hi_cal)
        span = np.arange(np.datetime64(lo, "D"), np.datetime64(hi, "D") + 1)
        work = cal.is_workday(span)
        self.work = [lo + dt.timedelta(days=int(i)) for i in np.flatnonzero(work)]
        self.ordinals = [d.toordinal() for d in self.work]
        self._working = set(self.ordinals)
        self._midnight: dict[dt.date, dt.datetime] = {}

    def is_workday(self, day: dt.date) -> bool:
        return day.toordinal() in self._working

    def index(self, day: dt.date) -> int:
        """Index of ``day``, or of the first working day after it."""
        return bisect.bisect_left(self.ordinals, day.toordinal())

    def day(self, i: int) -> dt.date:
        if i >= len(self.work):
            raise ValueError("simulation runs past the end of the calendar")
        return self.work[i]

    def instant(self, day: dt.date, second: int) -> dt.datetime:
        base = self._midnight.get(day)
        if base is None:
            base = dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)
            self._midnight[day] = base
        return base + dt.timedelta(seconds=second)


@dataclass
class _Cursor:
    """Where a case's story has got to: a local day and a second of that day."""

    day: dt.date
    sec: int
    last: dt.datetime | None = None


@dataclass
class _Milestone:
    offset: int  # working days after the acceptance day
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


class _Centre:
    """The generator's state: the catalogue, the working days, the windows, one RNG."""

    def __init__(
        self,
        catalogue: Catalogue,
        days: _Days,
        profile: Profile,
        region: str,
    ) -> None:
        self.cat = catalogue
        self.days = days
        self.p = profile
        self.region = region
        self.codes = sorted(catalogue.matters)
        total = 0.0
        self.cum: list[float] = []
        for code in self.codes:
            total += catalogue.weights.get(code, 0.0)
            self.cum.append(total)
        by_dept: dict[str, float] = {}
        for code in self.codes:
            dept = catalogue.matters[code].department
            by_dept[dept] = by_dept.get(dept, 0.0) + catalogue.weights.get(code, 0.0)
        self.windows = {
            dept: [
                f"{dept}{k}号窗口" for k in range(1, max(1, round(profile.windows * w / total)) + 1)
            ]
            for dept, w in sorted(by_dept.items())
        }
        self.rng = random.Random()
        self.out: list[Event] = []

    # --- time ---------------------------------------------------------------------

    def _emit(self, c: _Cursor, case_id: str, kind: str, payload: dict[str, Any]) -> None:
        at = self.days.instant(c.day, c.sec)
        if c.last is not None and at <= c.last:  # keep each case's events strictly ordered
            at = c.last + dt.timedelta(seconds=self.rng.randint(1, 30))
            c.sec += int((at - self.days.instant(c.day, c.sec)).total_seconds())
        c.last = at
        self.out.append(Event(case_id, kind, at, payload))

    def _soon(self, c: _Cursor, lo_min: float, hi_min: float) -> None:
        """A few minutes later, in the same visit."""
        c.sec += int(self.rng.uniform(lo_min, hi_min) * 60)

    def _office_time(self, after: int | None = None) -> int | None:
        """A random second of office hours (after ``after``), None when the day is over."""
        spans = []
        for a, b in (_AM, _PM):
            start = a if after is None else max(a, after + 60)
            if start < b:
                spans.append((start, b))
        total = sum(b - a for a, b in spans)
        if total <= 0:
            return None
        x = self.rng.uniform(0, total)
        for a, b in spans:
            if x < b - a:
                return int(a + x)
            x -= b - a
        return spans[-1][1] - 1

    def _later_today(self, c: _Cursor) -> None:
        """The next step of the same day's work: minutes to an hour or two later.

        Work that runs past closing time stays on that day (a few minutes of
        overtime), so a case planned on time is not pushed into the next day.
        """
        if c.sec >= _PM[1]:
            c.sec += int(self.rng.uniform(1, 8) * 60)
            return
        sec = c.sec + int(self.rng.uniform(5, 100) * 60)
        if _AM[1] <= sec < _PM[0]:
            sec += _PM[0] - _AM[1]  # lunch break
        c.sec = min(sec, _PM[1] + int(self.rng.uniform(0, 15) * 60))

    def _move(self, c: _Cursor, k: int) -> None:
        """Staff work on the k-th working day from now (0: today if office hours are left)."""
        i = self.days.index(c.day)
        target = self.days.day(i + k)
        if target == c.day:
            sec = self._office_time(c.sec)
            if sec is not None:
                c.sec = sec
                return
            target = self.days.day(i + 1)
        c.day, c.sec = target, self._office_time() or _AM[0]

    def _goto(self, c: _Cursor, index: int) -> None:
        """Staff work on the working day ``index`` (the same day: a bit later)."""
        target = self.days.day(index)
        if target <= c.day:
            self._later_today(c)
        else:
            c.day, c.sec = target, self._office_time() or _AM[0]

    # --- one day --------------------------------------------------------------------

    def day(self, day: dt.date, per_day: int, prefix: str, seed: int) -> None:
        """The cases submitted on ``day``, from an RNG seeded by the seed and the day alone."""
        rng = self.rng
        rng.seed(f"jiancha-simulate:{seed}:{day.isoformat()}")
        p = self.p
        working = self.days.is_workday(day)
        factor = p.weekday_factor[day.weekday()] * min(1.1, max(0.9, rng.gauss(1.0, 0.03)))
        if working:
            n = round(per_day * factor)
            n_online = round(n * p.online_share)
            n_window = n - n_online
        else:
            n_window, n_online = 0, round(per_day * p.rest_day_online * rng.uniform(0.7, 1.3))
        arrivals: list[tuple[int, str]] = []
        for a, b in rng.choices(_ARRIVAL_HOURS, weights=_ARRIVAL_WEIGHTS, k=n_window):
            arrivals.append((int(rng.uniform(a, b) * 3600), "window"))
        for hour in rng.choices(range(24), weights=_ONLINE_HOURS, k=n_online):
            arrivals.append((hour * 3600 + rng.randrange(3600), "online"))
        arrivals.sort()
        width = max(4, len(str(len(arrivals))))
        for seq, (sec, channel) in enumerate(arrivals, 1):
            case_id = f"{prefix}{day:%Y%m%d}-{seq:0{width}d}"
            code = rng.choices(self.codes, cum_weights=self.cum)[0]
            self._case(case_id, code, channel, _Cursor(day, sec))

    # --- one case -------------------------------------------------------------------

    def _case(self, case_id: str, code: str, channel: str, c: _Cursor) -> None:
        rng, p = self.rng, self.p
        m = self.cat.matters[code]
        online = channel == "online"
        windows = self.windows[m.department]
        window = windows[0] if online else rng.choice(windows)

        def emit(kind: str, payload: dict[str, Any] | None = None) -> None:
            self._emit(c, case_id, kind, payload or {})

        emit("submitted", {
            "matter": code, "window": window, "region": self.region, "channel": channel,
            "applicant": "company" if rng.random() < 0.3 else "person",
        })  # fmt: skip
        if online:  # the back office looks at it in its working hours
            slow = rng.random() < p.online_slow
            self._move(c, rng.randint(3, 6) if slow else (0 if rng.random() < 0.7 else 1))
        else:
            self._soon(c, 2, 12)
        if rng.random() < p.refused:
            reason = (
                None if rng.random() < p.refused_without_reason else rng.choice(_REFUSAL_REASONS)
            )
            emit("refused", {} if reason is None else {"reason": reason})
            return
        if rng.random() < p.supplement:
            requests = 2 if rng.random() < p.second_supplement else 1
            for _ in range(requests):
                items = rng.sample(_SUPPLEMENT_ITEMS, rng.randint(1, 3))
                emit("supplement_requested", {"items": items})
                self._move(c, rng.randint(1, 4))  # the applicant comes back with them
                emit("supplement_received")
                if not online:
                    self._soon(c, 2, 10)
            if online:
                self._move(c, 0)
        immediate = m.promised_days == 0
        if immediate and not online and rng.random() < p.withdrawn:
            emit("withdrawn")
            return
        if immediate:
            emit("accepted")
            self._immediate(c, emit, m, online)
        else:
            self._promised(c, emit, m, online)

    def _immediate(self, c: _Cursor, emit: Callable[..., None], m: Matter, online: bool) -> None:
        rng, p = self.rng, self.p
        if online:
            self._soon(c, 5, 60)
        else:
            self._soon(c, 3, 25)
        if rng.random() < p.immediate_late:
            self._move(c, 1)  # not finished by close of business: a yellow card
        emit("decided", {"result": "approve"})
        self._fee(c, emit, m)
        emit("completed")
        if online:
            self._soon(c, 1, 30)  # an electronic licence
        else:
            self._soon(c, 0.5, 5)  # handed over at the counter
        emit("delivered")
        self._rate(c, emit, online, on_the_spot=not online)

    def _fee(self, c: _Cursor, emit: Callable[..., None], m: Matter) -> None:
        if not m.free:
            self._soon(c, 1, 4)
            emit("fee_charged", {"amount": self.cat.fees.get(m.code, DEFAULT_FEE)})
            self._soon(c, 0.5, 3)

    def _decided_after(self, m: Matter) -> tuple[int, int, int]:
        """When the decision comes, in working days after acceptance (pauses apart).

        Also an extension's days and when it is asked (0, 0: none).
        """
        rng, p = self.rng, self.p
        promised, statutory = m.promised_days, m.statutory_days
        r = rng.random()
        if r < p.statutory_late:
            return statutory + rng.randint(2, 4), 0, 0
        if r < p.statutory_late + p.late:
            return promised + rng.randint(2, 4), 0, 0
        if promised >= 5 and rng.random() < p.extended:
            ext_days = rng.choice((5, 10, 10))
            ext_at = rng.randint(max(1, promised - 3), promised - 1)
            return rng.randint(promised + 1, promised + ext_days), ext_days, ext_at
        return (1 + int((promised - 1) * rng.random() ** 1.5) if promised > 1 else 1), 0, 0

    def _steps(self, m: Matter, done: int) -> list[_Milestone]:
        """The matter's steps, one after the other, each on time but for a few overruns."""
        rng = self.rng
        plan: list[_Milestone] = []
        start = 0
        for step, limit in m.step_days.items():
            took = min(rng.randint(0, limit), done - start)
            if rng.random() < self.p.step_overrun and start + limit + 1 <= done:
                took = limit + 1  # a blue card for the step
            plan.append(_Milestone(start, "step_started", {"step": step}))
            plan.append(_Milestone(start + took, "step_finished", {"step": step}))
            start += took
        return plan

    def _ending(self, plan: list[_Milestone], done: int) -> list[_Milestone]:
        """Withdrawn or terminated part-way (what came after is dropped), else decided."""
        rng, p = self.rng, self.p
        r = rng.random()
        if r >= p.withdrawn + p.terminated:
            result = "deny" if rng.random() < p.denied else "approve"
            return [*plan, _Milestone(done, "decided", {"result": result})]
        stop = rng.randint(0, done)
        kept = [x for x in plan if x.offset < stop]
        if r < p.withdrawn:
            return [*kept, _Milestone(stop, "withdrawn")]
        return [*kept, _Milestone(stop, "terminated", {"reason": rng.choice(_TERMINATION_REASONS)})]

    def _promised(self, c: _Cursor, emit: Callable[..., None], m: Matter, online: bool) -> None:
        """Plan the decision period in working days after acceptance, then play it out.

        Planning in whole working days keeps an on-time case on time whatever
        the hour of its events: a deadline ends at 24:00 of its last day.
        """
        rng, p = self.rng, self.p
        accepted: dict[str, Any] = {}
        pledged = 0
        if rng.random() < p.pledged:  # 容缺受理: accepted now, the missing papers promised
            pledged = min(m.promised_days, rng.randint(2, 5))
            accepted["pledged_days"] = pledged
        emit("accepted", accepted)
        a = self.days.index(c.day)
        done, ext_days, ext_at = self._decided_after(m)
        plan = self._steps(m, done)
        if ext_days:
            plan.append(_Milestone(ext_at, "extended", {
                "days": ext_days, "approver": f"{m.department}负责人",
                "reason": "情况复杂，需进一步核查",
            }))  # fmt: skip
        if pledged:
            late = rng.random() < p.pledge_late
            when = pledged + rng.randint(1, 3) if late else rng.randint(1, pledged)
            plan.append(_Milestone(min(when, done), "supplement_received"))
        plan = self._ending(plan, done)
        plan.sort(key=lambda x: x.offset)  # stable: the logical order within a day stays
        if m.pause_max_days and rng.random() < p.suspended:
            plan = self._pause(plan, m, done)
        for x in plan:
            self._goto(c, a + x.offset)
            emit(x.kind, x.payload)
            if x.kind == "decided":
                if x.payload["result"] == "approve":
                    self._fee(c, emit, m)
                self._soon(c, 1, 20)
                emit("completed")
                self._deliver(c, emit, online)

    def _pause(self, plan: list[_Milestone], m: Matter, done: int) -> list[_Milestone]:
        """A special procedure: the clock stops, everything after it moves out."""
        rng = self.rng
        kind = rng.choice(sorted(m.pause_max_days))
        most = max(1, m.pause_max_days[kind])
        notified = rng.randint(max(1, most // 2), most)
        if rng.random() < self.p.pause_overrun:
            notified, took = most, most + rng.randint(1, 3)  # a yellow card
        else:
            took = rng.randint(max(1, notified - 1), notified)
        at = rng.randint(0, max(0, min(done, plan[-1].offset) - 1))
        before = [x for x in plan if x.offset <= at and x.kind not in _FINAL]
        after = [x for x in plan if x.offset > at or x.kind in _FINAL]
        suspended = _Milestone(at, "suspended", {"type": kind, "notified_days": notified})
        resumed = _Milestone(at + took, "resumed")
        moved = [_Milestone(x.offset + took, x.kind, x.payload) for x in after]
        return [*before, suspended, resumed, *moved]

    def _deliver(self, c: _Cursor, emit: Callable[..., None], online: bool) -> None:
        rng, p = self.rng, self.p
        if rng.random() < p.late_delivery:
            k = rng.randint(11, 14)  # a red card: past the 10 wd of Art. 44
        elif online:
            k = rng.choice((0, 0, 1, 2))
        else:
            k = rng.choices((0, 1, 2, 3, 5, 8), weights=(30, 35, 15, 10, 6, 4))[0]
        if k == 0:
            self._later_today(c)
        else:
            self._move(c, k)
        emit("delivered")
        self._rate(c, emit, online, on_the_spot=not online)

    def _rate(
        self, c: _Cursor, emit: Callable[..., None], online: bool, *, on_the_spot: bool
    ) -> None:
        rng, p = self.rng, self.p
        if rng.random() >= (p.rated_online if online else p.rated_window):
            return
        if on_the_spot:
            self._soon(c, 0.2, 2)  # the rating pad at the counter
        else:
            c.day = c.day + dt.timedelta(days=rng.randint(0, 2))  # a text message, any hour
            c.sec = rng.randint(8 * 3600, 22 * 3600)
        level = rng.choices((1, 2, 3, 4, 5), weights=p.rating_levels)[0]
        payload: dict[str, Any] = {"level": level}
        if level <= 2:
            payload["comment"] = rng.choice(_BAD_COMMENTS)
        elif level == 5 and rng.random() < 0.03:
            payload["comment"] = rng.choice(_GOOD_COMMENTS)
        emit("rated", payload)
        if level <= 2:  # 差评：a return visit within 1 wd, rectified within 15 wd
            late_visit = rng.random() < p.review_visit_late
            self._move(c, rng.randint(2, 3) if late_visit else rng.randint(0, 1))
            emit("review_visited")
            late_fix = rng.random() < p.review_rectify_late
            self._move(c, rng.randint(16, 20) if late_fix else rng.randint(2, 10))
            emit("review_rectified")


def next_working_day(cal: Calendar, after: dt.date | None = None) -> dt.date:
    """The first working day after ``after`` (default: today in the calendar's time zone)."""
    if after is None:
        after = dt.datetime.now(zoneinfo.ZoneInfo(cal.timezone)).date()
    span = np.arange(
        np.datetime64(after + dt.timedelta(days=1), "D"),
        np.datetime64(after + dt.timedelta(days=60), "D"),
    )
    work = np.flatnonzero(cal.is_workday(span))
    return after + dt.timedelta(days=1 + int(work[0]))


def generate(
    catalogue: Catalogue,
    cal: Calendar,
    first_day: dt.date,
    days: int = 1,
    *,
    seed: int = 0,
    per_day: int = DEFAULT_PER_DAY,
    region: str = DEFAULT_REGION,
    prefix: str = "SIM",
    profile: Profile | None = None,
) -> list[Event]:
    """Every event of every case submitted in ``days`` calendar days from ``first_day``.

    Sorted by ``occurred_at``; a case's later events (decisions, deliveries,
    rectifications) are included even when they fall after the period, so
    callers cut at their clock. Each day draws from its own seeded RNG, so a
    day's cases do not change with the length of the period, and case ids
    (``SIM20240304-0001``: prefix, day, order of arrival) are unique within a run.
    """
    if days < 0 or per_day < 0:
        raise ValueError("days and per_day must not be negative")
    profile = profile or Profile()
    longest = max(
        (m.statutory_days + sum(m.pause_max_days.values()) for m in catalogue.matters.values()),
        default=0,
    )
    horizon = int((longest + 120) * 1.6) + 60
    last = first_day + dt.timedelta(days=max(0, days - 1))
    centre = _Centre(catalogue, _Days(cal, first_day, last, horizon), profile, region)
    for i in range(days):
        centre.day(first_day + dt.timedelta(days=i), per_day, prefix, seed)
    centre.out.sort(key=lambda e: e.occurred_at)
    return centre.out


def between(
    events: Sequence[Event], since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[Event]:
    """The events after ``since`` up to ``until`` (inclusive): what a clock at ``until`` sees.

    Write no further than the reader's clock: jiancha dead-letters an event
    stamped more than a day after its "now" (``future_timestamp``), for good.
    """
    times = [e.occurred_at for e in events]
    lo = 0 if since is None else bisect.bisect_right(times, since)
    hi = len(events) if until is None else bisect.bisect_right(times, until)
    return list(events[lo:hi])
