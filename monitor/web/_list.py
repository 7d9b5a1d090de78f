"""The officers' list: open cards by working time left, counted now on each case's calendar.

The time left is not the figure frozen on the card at issue: it is the
working time from now to the clock's deadline as it stands (for the
decision clock the case's ``decision_deadline``, which the daemon moves
with pauses and extensions), on the calendar of the case's region. While a
case is paused its clock stands still, so its time left is counted to the
pause's start. Sorting needs every matching row's deadline, not the rows:
those few columns are read, counted in one vectorised call per calendar,
and only the first page is read in full. The same rows export as XLSX.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt
import xlsxwriter
from starlette.requests import Request
from starlette.responses import Response

from monitor.accounts import User
from monitor.calendar.regions import Regions
from monitor.cards.query import CARD_COLUMNS
from monitor.vocab import CARD_STATUSES, LEVEL_NAMES, LEVELS, OPEN_STATUSES, STATUS_NAMES, Lang
from monitor.web._core import Refusal, console, lang_of, matter_names, page, render, signed_in
from monitor.web._scope import ALL_SEEING
from monitor.web._text import text

__all__ = ["LIST_LIMIT", "card_list", "card_list_xlsx", "time_left"]

LIST_LIMIT: Final = 200
EXPORT_LIMIT: Final = 50_000
"""Most rows in one workbook: the centre-wide list, far above a real day's open cards."""
_PAUSING_CLOCKS: Final = ("decision", "statutory")
_ANCHOR_DAYS: Final = 60 * 86400  # see time_left


Seconds = npt.NDArray[np.int64]


def time_left(regions: Regions, region_keys: Sequence[str | None], due: Seconds, at: Seconds
              ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:  # fmt: skip
    """Working days from ``at`` to ``due`` (UTC seconds) on each row's region's calendar.

    Negative when ``due`` has passed (overdue by that much); NaN where there
    is no deadline (``due`` < 0). Also whether the count touches a year whose
    holidays are not published yet (provisional). ``working_days_between``
    starts its count at the midnight after its start, so both ends are counted
    from one anchor well before them: the difference is the working time
    between the two instants themselves.
    """
    left = np.full(due.shape, np.nan)
    provisional = np.zeros(due.shape, dtype=np.bool_)
    known = {r: regions.key_of(r) for r in set(region_keys)}
    keys = np.array([known[r] for r in region_keys], dtype=object)
    for key in set(keys.tolist()):
        calendar = regions.default if key == "" else dict(regions.prefixes)[key]
        rows = np.flatnonzero((keys == key) & (due >= 0))
        if rows.size == 0:
            continue
        anchor = np.minimum(due[rows], at[rows]) - _ANCHOR_DAYS
        to_due, p1 = calendar.working_days_between(anchor, due[rows], provisional=True,
                                                   errors="nat")  # fmt: skip
        to_now, p2 = calendar.working_days_between(anchor, at[rows], provisional=True,
                                                   errors="nat")  # fmt: skip
        left[rows] = np.round(to_due - to_now, 3)
        provisional[rows] = p1 | p2
    return left, provisional


@dataclass(frozen=True)
class Filters:
    department: str | None
    window: str | None
    matter: str | None  # a part of the matter's name
    level: str | None
    rule: str | None
    status: str  # a status, open or all
    provisional: str | None  # "yes" | "no"

    def active(self) -> bool:
        """Whether any filter narrows the default list (open cards)."""
        return self.status != "open" or any(
            (self.department, self.window, self.matter, self.level, self.rule, self.provisional)
        )

    def query(self) -> str:
        """The filters as a query string (the export link keeps them)."""
        return urlencode({k: v for k, v in self.__dict__.items() if v})


def _choice(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if allowed is not None and value not in allowed:
        raise Refusal(400, "e400", f"{name}={value}")
    return value[:200]


def _filters(request: Request) -> Filters:
    return Filters(
        department=_choice(request, "department"), window=_choice(request, "window"),
        matter=_choice(request, "matter"), level=_choice(request, "level", LEVELS),
        rule=_choice(request, "rule"),
        status=_choice(request, "status", (*CARD_STATUSES, "open", "all")) or "open",
        provisional=_choice(request, "provisional", ("yes", "no")),
    )  # fmt: skip


def _scope(user: User) -> tuple[list[str], list[object]]:
    """The rows of ``c`` (a card or a case) that ``user`` sees, as SQL and its arguments."""
    if any(user.has(r) for r in ALL_SEEING):
        return ["TRUE"], []
    return ['(c."window" = ANY($1) OR c.department = ANY($2))'], [
        list(user.windows if user.has("window_head") else ()),
        list(user.departments if user.has("department_head") else ()),
    ]


def _where(user: User, f: Filters, names: Mapping[str, str]) -> tuple[str, list[object]]:
    """``names``: the catalogue's, so the matter filter finds a part of a name (its label
    says so) as well as of a code."""
    where, args = _scope(user)
    for column in ("department", "window", "level", "rule"):
        value = getattr(f, column)
        if value is not None:
            args.append(value)
            where.append(f'c."{column}" = ${len(args)}')
    if f.matter is not None:
        named = sorted(code for code, name in names.items() if f.matter in name)
        args += [f.matter, named]
        where.append(f"(strpos(c.matter, ${len(args) - 1}) > 0 OR c.matter = ANY(${len(args)}))")
    if f.status == "open":
        args.append(list(OPEN_STATUSES))
        where.append(f"c.status = ANY(${len(args)})")
    elif f.status != "all":
        args.append(f.status)
        where.append(f"c.status = ${len(args)}")
    return " AND ".join(where), args


# The deadline as it stands, and the instant the count stops at: now, or a pause's start.
_ORDER_QUERY = """
SELECT c.id, c.region,
    extract(epoch FROM coalesce(
        CASE WHEN c.clock = 'decision' THEN k.decision_deadline END, c.deadline))::bigint AS due,
    CASE WHEN c.clock = ANY($CLOCKS) THEN extract(epoch FROM k.paused_since)::bigint END
        AS paused
FROM jiancha.cards c LEFT JOIN jiancha.cases k ON k.case_id = c.case_id
WHERE {where}
"""
_PAUSED = "(c.clock = ANY($CLOCKS) AND k.paused_since IS NOT NULL)"
_FIRST_CANDIDATES: Final = 1000


@dataclass
class _Rows:
    """Candidate rows of the list, as arrays: id, due (-1: none), the count's end, region."""

    ids: npt.NDArray[np.int64]
    due: Seconds
    at: Seconds
    regions: list[str | None]

    @classmethod
    def of(cls, rows: Sequence[Any], now_s: int) -> _Rows:
        n = len(rows)
        return cls(
            np.fromiter((r["id"] for r in rows), dtype=np.int64, count=n),
            np.fromiter((-1 if r["due"] is None else r["due"] for r in rows), np.int64, n),
            np.fromiter(
                (now_s if r["paused"] is None else min(r["paused"], now_s) for r in rows),
                np.int64,
                n,
            ),
            [r["region"] for r in rows],
        )


def _least_possible(regions: Regions, due: int, now_s: int) -> float:
    """The least working time left, on any of the calendars, of a deadline at ``due`` or later."""
    keys = [None, *(prefix for prefix, _ in regions.prefixes)]
    left, _ = time_left(regions, keys, np.full(len(keys), due, np.int64),
                        np.full(len(keys), now_s, np.int64))  # fmt: skip
    return float(np.nanmin(left))


async def _candidates(conn: Any, query: str, paused_sql: str, args: list[object], limit: int,
                      regions: Regions, now_s: int) -> list[Any]:  # fmt: skip
    """The rows that can be on the first page, without reading every open card.

    On one calendar, less time left means an earlier deadline; so the rows
    are read by deadline, ``m`` at a time (the paused ones, whose count stands
    still, all at once: they are few), until the page's last row has no more
    time left than any unread row could: the unread ones are due no earlier
    than the last read, which has at least `_least_possible` left on any
    calendar (a tie goes to the earlier deadline, which is read first).
    """
    # inner join from the paused cases: their partial index, not a scan of every card
    paused = list(await conn.fetch(f"{query.replace('LEFT JOIN', 'JOIN')} AND {paused_sql}",
                                   *args))  # fmt: skip
    by_due = f"{query} AND NOT coalesce({paused_sql}, false) ORDER BY due, c.id"
    m = max(_FIRST_CANDIDATES, 2 * limit)
    while True:
        running = await conn.fetch(f"{by_due} LIMIT {m}", *args)
        rows = [*running, *paused]
        if len(running) < m or running[-1]["due"] is None:
            return rows  # every running row read
        got = _Rows.of(rows, now_s)
        left, _ = time_left(regions, got.regions, got.due, got.at)
        page = np.sort(np.nan_to_num(left, nan=np.inf))[:limit]
        if len(page) == limit and page[-1] <= _least_possible(regions, running[-1]["due"], now_s):
            return rows
        m *= 4


async def ordered_cards(request: Request, user: User, f: Filters, limit: int,
                        now: dt.datetime) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The first ``limit`` matching cards, least working time left first; and how many match."""
    where, args = _where(user, f, await matter_names(request))
    args.append(list(_PAUSING_CLOCKS))
    query = _ORDER_QUERY.format(where=where).replace("$CLOCKS", f"${len(args)}")
    state = console(request)
    now_s = int(now.timestamp())
    async with state.pool.connection() as conn:
        if f.provisional is None:
            paused_sql = _PAUSED.replace("$CLOCKS", f"${len(args)}")
            rows = await _candidates(conn, query, paused_sql, args, limit, state.regions, now_s)
            # counted on the cards alone (the filters are the card's columns): no join
            total = await conn.fetchval(f"SELECT count(*) FROM jiancha.cards c WHERE {where}",
                                        *args[:-1])  # fmt: skip
        else:  # whether a count is provisional is known only once counted: read them all
            rows = await conn.fetch(query, *args)
        got = _Rows.of(rows, now_s)
        left, provisional = time_left(state.regions, got.regions, got.due, got.at)
        keep = np.ones(len(rows), dtype=np.bool_)
        if f.provisional is not None:
            keep = provisional if f.provisional == "yes" else ~provisional
            total = int(keep.sum())
        chosen = np.flatnonzero(keep)
        # least left first; no deadline last; then by deadline and id, as the rows were read
        order = chosen[np.lexsort((got.ids[chosen], got.due[chosen],
                                   np.nan_to_num(left[chosen], nan=np.inf)))]  # fmt: skip
        first = order[:limit]
        full = await conn.fetch(f"SELECT {CARD_COLUMNS} FROM jiancha.cards WHERE id = ANY($1)",
                                got.ids[first].tolist())  # fmt: skip
    by_id = {r["id"]: dict(r) for r in full}
    cards = []
    for i in first.tolist():
        card = by_id[int(got.ids[i])]
        card["left"] = None if np.isnan(left[i]) else float(left[i])
        card["provisional_now"] = bool(provisional[i])
        card["paused"] = int(got.at[i]) < now_s
        cards.append(card)
    return cards, int(total)


async def left_now(request: Request, card_id: int) -> tuple[float | None, bool]:
    """A card's working time left now, counted as the list counts it (its case's decision
    deadline as it stands; a pause stops the count): the days (None: no deadline) and
    whether its clock is paused. The card page said only what was left at issue."""
    state = console(request)
    now_s = int(state.clock().timestamp())
    query = _ORDER_QUERY.format(where="c.id = $1").replace("$CLOCKS", "$2")
    async with state.pool.connection() as conn:
        rows = await conn.fetch(query, card_id, list(_PAUSING_CLOCKS))
    if not rows:
        return None, False
    got = _Rows.of(rows, now_s)
    left, _ = time_left(state.regions, got.regions, got.due, got.at)
    return (None if np.isnan(left[0]) else float(left[0])), int(got.at[0]) < now_s


def _now(request: Request) -> dt.datetime:
    return console(request).clock()


# Cases jiancha could not decide (schema 19): no card is issued for them, so the list of
# cards alone would not show that they go unsupervised.
_NOT_DECIDED = """
SELECT case_id, count(*) OVER () AS n FROM jiancha.cases c
WHERE decide_error IS NOT NULL AND {scope}
ORDER BY decide_failed_at, case_id LIMIT 20
"""


async def _not_decided(request: Request, user: User) -> tuple[list[str], int]:
    """The first of the cases ``user`` sees that are marked with the engine's error, and
    how many there are."""
    where, args = _scope(user)
    async with console(request).pool.connection() as conn:
        rows = await conn.fetch(_NOT_DECIDED.format(scope=" AND ".join(where)), *args)
    return [r["case_id"] for r in rows], (int(rows[0]["n"]) if rows else 0)


@page
async def card_list(request: Request) -> Response:
    user = await signed_in(request)
    f = _filters(request)
    cards, total = await ordered_cards(request, user, f, LIST_LIMIT, _now(request))
    stuck, stuck_total = await _not_decided(request, user)
    # a window head's few cards come first on a phone: the filters fold away, unless in use
    # or the reader sees a whole centre or department, where they are the way through it
    filters_open = f.active() or set(user.roles) != {"window_head"}
    return render(request, "cards.html", cards=cards, filters=f, limit=LIST_LIMIT, total=total,
                  filters_open=filters_open,
                  stuck=stuck, stuck_total=stuck_total,
                  levels=LEVELS, statuses=("open", "all", *CARD_STATUSES),
                  LEVEL_NAMES=LEVEL_NAMES, STATUS_NAMES=STATUS_NAMES, query=f.query(),
                  read_only=not any(user.has(r) for r in ("officer", "window_head")))  # fmt: skip


_COLUMNS: Final = ("card", "level", "status", "case", "matter", "matter_code", "department",
                   "window", "rule", "deadline", "left_now", "provisional_col",
                   "issued_col")  # fmt: skip


def workbook(cards: Sequence[Mapping[str, Any]], lang: Lang, rule_titles: Mapping[str, Any],
             now: dt.datetime, names: Mapping[str, str] | None = None) -> bytes:  # fmt: skip
    """The list as an .xlsx: one row a card, in the list's order, times in Beijing time; the
    matter by its catalogue name (``names``; the code when it has none) and its code."""
    from zoneinfo import ZoneInfo

    from monitor.web._core import TIMEZONE

    names = names or {}

    zone = ZoneInfo(TIMEZONE)
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet(text("cards", lang)[:31])
    bold = book.add_format({"bold": True})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    days = book.add_format({"num_format": "0.00"})
    sheet.write_row(0, 0, [text(c, lang) for c in _COLUMNS], bold)
    for n, c in enumerate(cards, 1):
        title = rule_titles.get(c["rule"])
        values: list[Any] = [
            c["id"], LEVEL_NAMES[c["level"]][lang], STATUS_NAMES[c["status"]][lang], c["case_id"],
            names.get(c["matter"] or "") or c["matter"] or "", c["matter"] or "",
            c["department"] or "", c["window"] or "",
            title[0 if lang == "zh" else 1] if title else c["rule"],
        ]  # fmt: skip
        sheet.write_row(n, 0, values)
        if c["deadline"] is not None:
            sheet.write_datetime(n, 9, c["deadline"].astimezone(zone).replace(tzinfo=None), stamp)
        if c["left"] is not None:
            sheet.write_number(n, 10, c["left"], days)
        sheet.write_boolean(n, 11, c["provisional_now"])
        sheet.write_datetime(n, 12, c["issued_at"].astimezone(zone).replace(tzinfo=None), stamp)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(cards), 1), len(_COLUMNS) - 1)
    sheet.set_column(4, 4, 36)
    sheet.set_column(5, 5, 18)
    sheet.set_column(9, 9, 17)
    sheet.set_column(12, 12, 17)
    book.set_properties({"title": text("cards", lang), "created": now.replace(tzinfo=None)})
    book.close()
    return out.getvalue()


@page
async def card_list_xlsx(request: Request) -> Response:
    user = await signed_in(request)
    f = _filters(request)
    now = _now(request)
    cards, _ = await ordered_cards(request, user, f, EXPORT_LIMIT, now)
    state = console(request)
    data = workbook(cards, lang_of(request), state.rule_titles, now, state.matter_names)
    name = f"jiancha-cards-{now.astimezone(dt.UTC):%Y%m%d-%H%M}.xlsx"
    return Response(data, media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})  # fmt: skip
