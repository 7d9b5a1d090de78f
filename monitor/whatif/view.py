"""What ``jiancha demo`` shows while it runs: the figures it reads, and the screen it draws.

Read from schema ``jiancha`` (as an officer's dashboard would), drawn with
rich; `render` is pure, a `View` in, a screen out.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor import db
from monitor.i18n import current_lang, h
from monitor.rules.model import RuleSet
from monitor.vocab import LEVEL_WORDS, LEVELS, WEEKDAYS, Lang, word

__all__ = ["View", "period_figures", "read_view", "render"]


_OPEN_BY_LEVEL = """
WITH open AS (
    SELECT c.case_id, c.department,
           coalesce(max(CASE k.level WHEN 'red' THEN 3 WHEN 'yellow' THEN 2
                                     WHEN 'blue' THEN 1 END), 0) AS level
    FROM jiancha.cases c
    LEFT JOIN jiancha.cards k ON k.case_id = c.case_id
                             AND k.status IN ('issued', 'acknowledged', 'appealed')
    WHERE c.completed_at IS NULL AND c.closed_at IS NULL
      AND c.status NOT IN ('refused', 'withdrawn', 'terminated', 'orphan')
    GROUP BY c.case_id, c.department
)
SELECT department, count(*) AS open,
       count(*) FILTER (WHERE level = 1) AS blue,
       count(*) FILTER (WHERE level = 2) AS yellow,
       count(*) FILTER (WHERE level = 3) AS red
FROM open GROUP BY department ORDER BY count(*) DESC, department
"""

_LATEST_CARDS = """
SELECT k.issued_at, k.level, k.rule, k.case_id, k.department, k."window", k.matter
FROM jiancha.cards k ORDER BY k.id DESC LIMIT $1
"""

# The figures of a span of business time, as jiancha saw them (not as simulated): the
# counts by the one definition (jiancha.figures_v1), overdue at the span's end.
_FIGURES = """
SELECT coalesce(sum(accepted), 0) AS accepted, coalesce(sum(immediate), 0) AS immediate,
       coalesce(sum(completed), 0) AS completed, coalesce(sum(on_time), 0) AS on_time,
       coalesce(sum(late), 0) AS late, coalesce(sum(overdue_open), 0) AS overdue,
       (SELECT count(*) FROM jiancha.cases
        WHERE submitted_at >= $1 AND submitted_at < $2) AS submitted,
       (SELECT count(*) FROM jiancha.cases
        WHERE rating IS NOT NULL AND updated_at >= $1) AS rated,
       (SELECT count(*) FROM jiancha.cases WHERE rating <= 2 AND updated_at >= $1) AS bad_ratings,
       (SELECT count(*) FROM jiancha.cases
        WHERE completed_at IS NULL AND closed_at IS NULL
          AND status NOT IN ('refused', 'withdrawn', 'terminated', 'orphan')) AS open
FROM jiancha.figures_v1($1, $2, $2)
"""

_CARDS_IN = """
SELECT level, count(*) AS n FROM jiancha.cards
WHERE issued_at >= $1 AND issued_at < $2 AND status <> 'revoked' GROUP BY level
"""


@dataclass
class View:
    """One refresh of what the terminal shows, read from schema jiancha."""

    now: dt.datetime
    departments: list[dict[str, Any]] = field(default_factory=list)
    latest: list[dict[str, Any]] = field(default_factory=list)
    today: dict[str, int] = field(default_factory=dict)
    cards_today: dict[str, int] = field(default_factory=dict)
    written: int = 0
    total: int = 0


async def _figures(conn: db.Connection, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    row = await conn.fetchrow(_FIGURES, since, until)
    assert row is not None  # an aggregate: always one row
    return {k: int(v or 0) for k, v in dict(row).items()}


async def read_view(conn: db.Connection, now: dt.datetime, day_start: dt.datetime,
                    latest: int = 12) -> View:  # fmt: skip
    v = View(now)
    v.departments = [dict(r) for r in await conn.fetch(_OPEN_BY_LEVEL)]
    v.latest = [dict(r) for r in await conn.fetch(_LATEST_CARDS, latest)]
    v.today = await _figures(conn, day_start, now)
    v.cards_today = {r["level"]: int(r["n"]) for r in await conn.fetch(_CARDS_IN, day_start, now)}
    return v


async def period_figures(conn: db.Connection, since: dt.datetime, until: dt.datetime
                         ) -> dict[str, Any]:  # fmt: skip
    """The live period's figures from jiancha's tables (what `--headless` prints)."""
    f: dict[str, Any] = dict(await _figures(conn, since, until))
    f["cards"] = {r["level"]: int(r["n"]) for r in await conn.fetch(_CARDS_IN, since, until)}
    for level in LEVELS:
        f["cards"].setdefault(level, 0)
    # backlog included; the clock ran on past the end. Revoked cards are not cards: counted
    # apart (the demo's simulator, on a busy machine, commits events late)
    counts = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status <> 'revoked'), "
        "count(*) FILTER (WHERE status = 'revoked') FROM jiancha.cards WHERE issued_at < $1",
        until,
    )
    assert counts is not None  # an aggregate: always one row
    f["cards_total"], f["cards_revoked"] = counts[0], counts[1]
    f["dead_letters"] = await conn.fetchval("SELECT count(*) FROM jiancha.dead_letters")
    done = f["on_time"] + f["late"]
    f["on_time_rate"] = round(f["on_time"] / done, 4) if done else None
    f["immediate_share"] = round(f["immediate"] / f["accepted"], 4) if f["accepted"] else None
    return f


LEVEL_STYLE = {"blue": "bold blue", "yellow": "bold yellow", "red": "bold red"}


def _head(v: View, local: dt.datetime, speed: float, metrics: str | None, lang: Lang) -> Any:
    from rich.text import Text

    weekday = WEEKDAYS[lang][local.weekday()]
    head = Text()
    head.append(h("jiancha 电子监察演示  ", "jiancha demo  "), style="bold")
    head.append(local.strftime("%Y-%m-%d %H:%M") + f" {weekday}")
    head.append(f"  ×{speed:g}", style="dim")
    if metrics:
        head.append(f"  http://{metrics}/metrics", style="underline")
    if v.total:
        head.append(h(f"  已写入事件 {v.written}/{v.total}", f"  events {v.written}/{v.total}"),
                    style="dim")  # fmt: skip
    return head


def _open_cases(v: View, lang: Lang) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=h("在办件（按最高牌级）", "open cases by highest card"), expand=True)
    table.add_column(h("部门", "department"))
    table.add_column(h("在办", "open"), justify="right")
    for level in LEVELS:
        table.add_column(word(LEVEL_WORDS, level, lang), justify="right", style=LEVEL_STYLE[level])
    keys = ("open", *LEVELS)
    totals = dict.fromkeys(keys, 0)
    for row in v.departments[:12]:
        table.add_row(str(row["department"]), *(str(row[k]) for k in keys))
    for row in v.departments:
        for k in keys:
            totals[k] += int(row[k])
    table.add_row(Text(h("合计", "total"), style="bold"),
                  *(Text(str(totals[k]), style="bold") for k in keys))  # fmt: skip
    return table


def _latest(v: View, tz: zoneinfo.ZoneInfo, rules: RuleSet, matters: Mapping[str, Any],
            lang: Lang) -> Any:  # fmt: skip
    from rich.table import Table
    from rich.text import Text

    titles = {r.rule: r.title(lang) for r in rules.rules}
    table = Table(title=h("最新亮牌", "latest cards"), expand=True)
    for col in (h("时间", "at"), h("牌", "card"), h("规则", "rule"), h("办件", "case"),
                h("事项", "matter"), h("窗口", "window")):  # fmt: skip
        table.add_column(col, overflow="ellipsis", no_wrap=True)
    for c in v.latest:
        matter = matters.get(c["matter"])
        table.add_row(
            c["issued_at"].astimezone(tz).strftime("%m-%d %H:%M"),
            Text(word(LEVEL_WORDS, c["level"], lang), style=LEVEL_STYLE.get(c["level"], "")),
            titles.get(c["rule"], c["rule"]), c["case_id"],
            getattr(matter, "name", c["matter"] or ""), c["window"] or "",
        )  # fmt: skip
    return table


def _today(v: View, lang: Lang) -> Any:
    from rich.text import Text

    t = v.today
    done = t.get("on_time", 0) + t.get("late", 0)
    rate = f"{100 * t.get('on_time', 0) / done:.1f}%" if done else "—"
    share = f"{100 * t.get('immediate', 0) / t['accepted']:.0f}%" if t.get("accepted") else "—"
    cards = "  ".join(f"{word(LEVEL_WORDS, lv, lang)} {v.cards_today.get(lv, 0)}" for lv in LEVELS)
    return Text(
        h(f"今日：受理 {t.get('accepted', 0)}（即办 {share}）  办结 {t.get('completed', 0)}"
          f"  按期办结率 {rate}  差评 {t.get('bad_ratings', 0)}  亮牌 {cards}"
          f"  在办 {t.get('open', 0)}（超期 {t.get('overdue', 0)}）",
          f"Today: accepted {t.get('accepted', 0)} (immediate {share})  completed "
          f"{t.get('completed', 0)}  on time {rate}  bad ratings {t.get('bad_ratings', 0)}"
          f"  cards {cards}  open {t.get('open', 0)} ({t.get('overdue', 0)} overdue)")
    )  # fmt: skip


def render(v: View, *, tz: zoneinfo.ZoneInfo, speed: float, metrics: str | None,
           rules: RuleSet, matters: Mapping[str, Any]) -> Any:  # fmt: skip
    """The live view (rich renderables); pure: a View in, a screen out."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    lang: Lang = "en" if current_lang() == "en" else "zh"
    stop = h("Ctrl-C 结束（停止守护进程、模拟器与数据库）",
             "Ctrl-C stops the daemon, the simulator and the database")  # fmt: skip
    hint = Text(stop, style="dim")
    return Group(Panel(_head(v, v.now.astimezone(tz), speed, metrics, lang)),
                 Panel(_today(v, lang)), _open_cases(v, lang),
                 _latest(v, tz, rules, matters, lang), hint)  # fmt: skip
