"""The pieces the dashboards are made of: datasources, queries, field settings, variables.

Shared by the three boards of ``dashboards.build``; nothing here knows a board.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, table
from grafana_foundation_sdk.builders.dashboard import (
    ConstantVariable,
    CustomVariable,
    Dashboard,
    DashboardLink,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from monitor.rules.load import load_rules
from monitor.vocab import LEVEL_WORDS, Names

HERE = Path(__file__).resolve().parent
PROMETHEUS_UID = "jiancha-prometheus"
POSTGRES_UID = "jiancha-postgres"
PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
POSTGRES = dm.DataSourceRef(type_val="grafana-postgresql-datasource", uid=POSTGRES_UID)
CONSOLE = "http://127.0.0.1:9732"
"""The console's address when no configuration names one (``jiancha web``'s default)."""

LEVEL_COLOURS = {"none": "transparent", "blue": "blue", "yellow": "yellow", "red": "red"}
Panel = cogbuilder.Builder[dm.Panel]
Json = dict[str, Any]


# --- targets -----------------------------------------------------------------------------


class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL target of Grafana's PostgreSQL datasource (the SDK has no builder for it)."""

    def __init__(self, sql: str, fmt: str, ref: str) -> None:
        self.sql, self.fmt, self.ref = sql, fmt, ref

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.sql,
            "refId": self.ref,
        }


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str, fmt: str = "table", ref: str = "A") -> None:
        self.query = SqlQuery(sql, fmt, ref)

    def build(self) -> cogvariants.Dataquery:
        return self.query


def prom(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> PromQuery:
    query = PromQuery().expr(expr).legend_format(legend or "__auto").ref_id(ref)
    query = query.datasource(PROMETHEUS)
    return query.instant() if instant else query.range()


# --- field settings ----------------------------------------------------------------------


def steps(*pairs: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


def names(words: Names, colours: Mapping[str, str] | None = None) -> list[dm.ValueMapping]:
    """A value mapping from codes to their Chinese words (monitor/vocab.py)."""
    colours = colours or {}
    return [
        dm.ValueMap(
            options={
                code: dm.ValueMappingResult(text=w["zh"], color=colours.get(code), index=n)
                for n, (code, w) in enumerate(words.items())
            }
        )
    ]


LEVELS: Names = {"none": {"zh": "未亮牌", "en": "none"}, **LEVEL_WORDS}


def rule_words() -> Names:
    """Rule codes and their titles, from the shipped rule set."""
    return {r.rule: {"zh": r.title("zh"), "en": r.title("en")} for r in load_rules("cards").rules}


def column(name: str, *props: dm.DynamicConfigValue) -> tuple[str, list[dm.DynamicConfigValue]]:
    return name, list(props)


def mapped(words: Names, colours: Mapping[str, str] | None = None) -> list[dm.DynamicConfigValue]:
    out = [dm.DynamicConfigValue(id_val="mappings", value=names(words, colours))]
    if colours:
        out.append(dm.DynamicConfigValue(id_val="custom.cellOptions",
                                         value={"type": "color-background"}))  # fmt: skip
    return out


def link(title: str, url: str) -> list[dm.DynamicConfigValue]:
    return [dm.DynamicConfigValue(id_val="links", value=[
        {"title": title, "url": url, "targetBlank": False}])]  # fmt: skip


def unit(name: str, decimals: int | None = None) -> list[dm.DynamicConfigValue]:
    out = [dm.DynamicConfigValue(id_val="unit", value=name)]
    if decimals is not None:
        out.append(dm.DynamicConfigValue(id_val="decimals", value=decimals))
    return out


PERCENT = unit("percentunit", 1)
WORKDAYS = unit("none", 1)
CASE_PAGE = link("在控制台打开办件", "${console}/cases/${__value.raw:percentencode}")
WINDOW_PAGE = link(
    "下钻到窗口",
    '/d/jiancha-window?var-department=${__data.fields["部门"]:percentencode}'
    "&var-window=${__value.raw:percentencode}&${__url_time_range}",
)
DEPARTMENT_PAGE = link(
    "下钻到部门",
    "/d/jiancha-overview?var-department=${__value.raw:percentencode}&${__url_time_range}",
)


def bars(p: bargauge.Panel) -> bargauge.Panel:
    return (
        p.orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
    )


def grid(p: table.Panel, overrides: Sequence[tuple[str, list[dm.DynamicConfigValue]]]) -> Panel:
    p = p.show_header(True).cell_height(cm.TableCellHeight.SM)
    for name, props in overrides:
        p = p.override_by_name(name, props)
    return p


def describe(p: Any, title: str, text: str, w: int, h: int) -> Any:
    return p.title(title).description(text).span(w).height(h)


# --- variables ---------------------------------------------------------------------------


def department_variable(datasource: dm.DataSourceRef, query: str) -> QueryVariable:
    return (
        QueryVariable("department").label("部门").description("下钻到一个或几个部门")
        .datasource(datasource).query(query).refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True)
    )  # fmt: skip


def sql_variable(name: str, label: str, text: str, query: str, *, multi: bool) -> QueryVariable:
    return (
        QueryVariable(name).label(label).description(text).datasource(POSTGRES).query(query)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi).include_all(multi)
    )  # fmt: skip


def level_variable(*, none: bool) -> CustomVariable:
    words = LEVELS if none else LEVEL_WORDS
    values = ",".join(f"{w['zh']} : {code}" for code, w in words.items())
    return (
        CustomVariable("level").label("牌级").description("只看这些牌级").values(values)
        .multi(True).include_all(True)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )  # fmt: skip


def console_variable(url: str) -> ConstantVariable:
    return (
        ConstantVariable("console").label("监察控制台").description(
            "jiancha web 的地址（配置 [web] base_url），办件编号链接到其办件页"
        ).value(url)
    )  # fmt: skip


def dashboard(uid: str, title: str, text: str, *, time_from: str, refresh: str) -> Dashboard:
    return (
        Dashboard(title).uid(uid).description(text).tags(["jiancha", "电子监察"])
        .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).time(time_from, "now")
        .timezone("browser").refresh(refresh).week_start("monday")
        .link(DashboardLink("电子监察").type(dm.DashboardLinkType.DASHBOARDS)
              .tags(["jiancha"]).as_dropdown(True).include_vars(False).keep_time(True))
    )  # fmt: skip


def add(board: Dashboard, panels: Sequence[Panel]) -> Json:
    for n, p in enumerate(panels, start=1):
        board = board.with_panel(p.id(n))  # type: ignore[attr-defined]
    out: Json = json.loads(json.dumps(board.build(), cls=JSONEncoder, ensure_ascii=False))
    return out
