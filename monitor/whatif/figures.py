"""What a simulated period looks like, in the terms of the approval bureaus' work reports.

Counted from the generated events themselves (not through the daemon), so a
test or a demo can hold jiancha's own figures against what was simulated.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from monitor.source.contract import Matter

if TYPE_CHECKING:
    from monitor.calendar import Calendar
from monitor.whatif.simulate import Event

__all__ = ["Workload", "figures"]


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What the simulated period looks like, in the terms of the work reports."""

    first_day: str | None
    last_day: str | None
    working_days: int
    cases: int
    events: int
    cases_per_working_day: float
    online_share: float
    immediate_share: float
    supplement_share: float
    suspended_share: float
    extension_share: float
    refused_share: float
    withdrawn: int
    terminated: int
    completed: int
    late: int  # promised cases completed after the promised deadline
    late_share: float  # of completed promised cases
    statutory_late: int
    immediate_late: int  # immediate cases not finished the same day
    on_time_rate: float  # 按期办结率
    ratings: dict[int, int]
    bad_ratings: int
    satisfaction: float  # 满意率: top three of five levels ÷ ratings
    fees: int
    fees_total: float
    by_department: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        doc = {k: getattr(self, k) for k in self.__dataclass_fields__}
        doc["ratings"] = {str(k): v for k, v in sorted(self.ratings.items())}
        for k, v in doc.items():
            if isinstance(v, float):
                doc[k] = round(v, 4)
        return doc


def _share(n: int, d: int) -> float:
    return n / d if d else 0.0


def _collect(events: Iterable[Event]) -> tuple[dict[str, dict[str, Any]], int]:
    """Each case's facts the figures need (by case id), and how many events there were."""
    cases: dict[str, dict[str, Any]] = {}
    n_events = 0
    for e in events:
        n_events += 1
        c = cases.setdefault(e.case_id, {"kinds": Counter(), "pauses": [], "ext": 0})
        c["kinds"][e.kind] += 1
        if e.kind == "submitted" and "submitted" not in c:
            c["submitted"], c["matter"], c["channel"] = (
                e.occurred_at, e.payload["matter"], e.payload["channel"]
            )  # fmt: skip
        elif e.kind == "accepted" and "accepted" not in c:
            c["accepted"] = e.occurred_at
            c["promised"] = e.payload.get("promised_days")
        elif e.kind == "completed" and "completed" not in c:
            c["completed"] = e.occurred_at
        elif e.kind == "suspended":
            c["pauses"].append([e.occurred_at, None])
        elif e.kind == "resumed" and c["pauses"] and c["pauses"][-1][1] is None:
            c["pauses"][-1][1] = e.occurred_at
        elif e.kind == "extended":
            c["ext"] += int(e.payload["days"])
        elif e.kind == "rated":
            c["rating"] = int(e.payload["level"])
        elif e.kind == "fee_charged":
            c.setdefault("fees", []).append(float(e.payload["amount"]))
    return cases, n_events


def _paused(cal: Calendar, prom: Sequence[dict[str, Any]]) -> npt.NDArray[np.float64]:
    """The working days each case's decision clock spent paused."""
    starts, ends, owner = [], [], []
    for i, c in enumerate(prom):
        for ps, pe in c["pauses"]:
            starts.append(ps)
            ends.append(pe or c["completed"])
            owner.append(i)
    paused = np.zeros(len(prom))
    if owner:
        acc = np.asarray([_s(prom[i]["accepted"]) for i in owner], "datetime64[s]")
        a = cal.working_days_between(acc, np.asarray([_s(x) for x in starts], "datetime64[s]"))
        b = cal.working_days_between(acc, np.asarray([_s(x) for x in ends], "datetime64[s]"))
        np.add.at(paused, np.asarray(owner), np.maximum(b - a, 0.0))
    return paused


def _late(cal: Calendar, prom: Sequence[dict[str, Any]], imm: Sequence[dict[str, Any]],
          matters: Mapping[str, Matter]) -> tuple[int, int, int]:  # fmt: skip
    """Completed after the promised deadline, after the statutory one, immediate not same-day.

    Vectorised: the working time paused, then each clock's deadline, as the engine counts.
    """
    late = statutory_late = immediate_late = 0
    if prom:
        paused = _paused(cal, prom)
        acc = np.asarray([_s(c["accepted"]) for c in prom], "datetime64[s]")
        completed = np.asarray([_s(c["completed"]) for c in prom], "datetime64[s]")
        ext = np.asarray([c["ext"] for c in prom], dtype=np.float64)
        promised = np.asarray(
            [c["promised"] if c["promised"] is not None else matters[c["matter"]].promised_days
             for c in prom], dtype=np.float64,
        )  # fmt: skip
        statutory = np.asarray([matters[c["matter"]].statutory_days for c in prom], np.float64)
        over = []
        for limit in (promised, statutory):
            whole = np.ceil(np.maximum(limit + ext + paused - 1e-7, 0.0)).astype(np.int64)
            over.append(int(np.count_nonzero(completed > cal.deadline(acc, whole))))
        late, statutory_late = over
    if imm:
        acc = np.asarray([_s(c["accepted"]) for c in imm], "datetime64[s]")
        completed = np.asarray([_s(c["completed"]) for c in imm], "datetime64[s]")
        immediate_late = int(
            np.count_nonzero(completed > cal.deadline(acc, np.zeros(len(imm), np.int64)))
        )
    return late, statutory_late, immediate_late


def _working_days(cal: Calendar, first: dt.date | None, last: dt.date | None) -> int:
    if first is None or last is None:
        return 0
    span = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    return int(np.count_nonzero(cal.is_workday(span)))


def figures(
    events: Iterable[Event],
    matters: Mapping[str, Matter],
    cal: Calendar,
    *,
    working_days: int | None = None,
) -> Workload:
    """The figures of generated events; lateness by the engine's arithmetic (rule book §3).

    A case is late when it completes after the deadline of its decision clock:
    the limit plus extensions plus the working time spent paused, rounded to
    the end of that working day. ``working_days`` defaults to the working days
    between the first and the last day with a submission.
    """
    tz = zoneinfo.ZoneInfo(cal.timezone)
    cases, n_events = _collect(events)
    real = {cid: c for cid, c in cases.items() if "submitted" in c}
    local_days = sorted({c["submitted"].astimezone(tz).date() for c in real.values()})
    first = local_days[0] if local_days else None
    last = local_days[-1] if local_days else None
    if working_days is None:
        working_days = _working_days(cal, first, last)

    def has(c: dict[str, Any], kind: str) -> bool:
        return bool(c["kinds"][kind])

    def immediate(c: dict[str, Any]) -> bool:
        m = matters.get(c["matter"])
        promised = c.get("promised")
        return (m is not None and m.promised_days == 0) if promised is None else promised == 0

    done = [c for c in real.values() if "accepted" in c and "completed" in c]
    prom = [c for c in done if not immediate(c) and c["matter"] in matters]
    late, statutory_late, immediate_late = _late(cal, prom, [c for c in done if immediate(c)],
                                                 matters)  # fmt: skip
    ratings = Counter(c["rating"] for c in real.values() if "rating" in c)
    n_ratings = sum(ratings.values())
    fees = [x for c in real.values() for x in c.get("fees", [])]
    n = len(real)
    return Workload(
        first_day=None if first is None else first.isoformat(),
        last_day=None if last is None else last.isoformat(),
        working_days=working_days,
        cases=n,
        events=n_events,
        cases_per_working_day=_share(n, working_days),
        online_share=_share(sum(c["channel"] == "online" for c in real.values()), n),
        immediate_share=_share(sum(immediate(c) for c in real.values()), n),
        supplement_share=_share(sum(has(c, "supplement_requested") for c in real.values()), n),
        suspended_share=_share(sum(has(c, "suspended") for c in real.values()), n),
        extension_share=_share(sum(has(c, "extended") for c in real.values()), n),
        refused_share=_share(sum(has(c, "refused") for c in real.values()), n),
        withdrawn=sum(has(c, "withdrawn") for c in real.values()),
        terminated=sum(has(c, "terminated") for c in real.values()),
        completed=len(done),
        late=late,
        late_share=_share(late, len(prom)),
        statutory_late=statutory_late,
        immediate_late=immediate_late,
        on_time_rate=_share(len(done) - late - immediate_late, len(done)),
        ratings={level: ratings.get(level, 0) for level in range(1, 6)},
        bad_ratings=ratings.get(1, 0) + ratings.get(2, 0),
        satisfaction=_share(sum(v for k, v in ratings.items() if k >= 3), n_ratings),
        fees=len(fees),
        fees_total=float(sum(fees)),
        by_department=dict(
            Counter(
                matters[c["matter"]].department for c in real.values() if c["matter"] in matters
            ).most_common()
        ),
    )


def _s(instant: dt.datetime) -> int:
    return int(instant.timestamp())
