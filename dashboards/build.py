"""Build jiancha's Grafana dashboards as JSON (schemaVersion 39), in plain Python.

The datasources are inputs (``__inputs``: ``DS_PROMETHEUS`` and ``DS_POSTGRES``), so the
files import into any Grafana, which asks for the two datasources on import.

    python -m dashboards.build           # (re)write dashboards/*.json
    python -m dashboards.build --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
GRAFANA_VERSION = "10.4.0"

PROMETHEUS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "${DS_POSTGRES}"}

INPUTS = [
    {
        "name": "DS_PROMETHEUS",
        "label": "Prometheus",
        "description": "抓取 jiancha /metrics 并加载 jiancha.rules.yml 的 Prometheus",
        "type": "datasource",
        "pluginId": "prometheus",
        "pluginName": "Prometheus",
    },
    {
        "name": "DS_POSTGRES",
        "label": "PostgreSQL",
        "description": "含 jiancha 模式的 PostgreSQL（建议只读账号）",
        "type": "datasource",
        "pluginId": "grafana-postgresql-datasource",
        "pluginName": "PostgreSQL",
    },
]

OPEN_CARD = "('issued', 'acknowledged', 'appealed')"
LEVEL_COLOURS = {"blue": "blue", "yellow": "yellow", "red": "red"}
LEVEL_NAMES = {"blue": "蓝牌", "yellow": "黄牌", "red": "红牌"}

Json = dict[str, Any]


# --- targets -----------------------------------------------------------------------------


def prom(expr: str, legend: str = "", *, instant: bool = False) -> Json:
    target: Json = {"datasource": PROMETHEUS, "editorMode": "code", "expr": expr}
    target["legendFormat"] = legend or "__auto"
    target["range"] = not instant
    target["instant"] = instant
    return target


def sql(query: str, fmt: str = "table") -> Json:
    return {
        "datasource": POSTGRES,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": query,
    }


# --- panels ------------------------------------------------------------------------------


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    *,
    w: int = 12,
    h: int = 8,
    unit: str = "",
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[Json] | None = None,
    options: Json | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    datasource = targets[0]["datasource"]
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        target["refId"] = ref
    defaults: Json = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    steps = thresholds or [(None, "green")]
    defaults["thresholds"] = {
        "mode": "absolute",
        "steps": [{"color": colour, "value": value} for value, colour in steps],
    }
    defaults["color"] = {"mode": "thresholds" if thresholds else "palette-classic"}
    if mappings:
        defaults["mappings"] = mappings
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": targets,
    }


def bars(horizontal: bool = True) -> Json:
    return {
        "orientation": "horizontal" if horizontal else "vertical",
        "displayMode": "gradient",
        "showUnfilled": True,
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    }


def stat_options() -> Json:
    return {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "textMode": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    }


def level_overrides(field: str = "") -> list[Json]:
    """Colour series (or a table column's values) by card level."""
    if field:
        steps = {k: {"color": v, "index": i} for i, (k, v) in enumerate(LEVEL_COLOURS.items())}
        return [
            {
                "matcher": {"id": "byName", "options": field},
                "properties": [
                    {"id": "mappings", "value": [{"type": "value", "options": steps}]},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                ],
            }
        ]
    return [
        {
            "matcher": {"id": "byName", "options": level},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
                {"id": "displayName", "value": LEVEL_NAMES[level]},
            ],
        }
        for level, colour in LEVEL_COLOURS.items()
    ]


def layout(panels: list[Json]) -> list[Json]:
    """Number the panels and place them left to right, wrapping at Grafana's 24 columns."""
    x = y = row_h = 0
    for n, p in enumerate(panels, start=1):
        grid = p["gridPos"]
        if x + grid["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        grid["x"], grid["y"] = x, y
        x += grid["w"]
        row_h = max(row_h, grid["h"])
        p["id"] = n
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    *,
    time_from: str = "now-7d",
    refresh: str = "1m",
) -> Json:
    kinds = sorted({p["type"] for p in panels})
    requires = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION}]
    requires += [
        {"type": "datasource", "id": i["pluginId"], "name": i["pluginName"], "version": "1.0.0"}
        for i in INPUTS
    ]
    requires += [{"type": "panel", "id": k, "name": k, "version": ""} for k in kinds]
    return {
        "__inputs": INPUTS,
        "__elements": {},
        "__requires": requires,
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "panels": layout(panels),
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["jiancha", "电子监察"],
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "monday",
    }


# --- 1. 电子监察总览 ---------------------------------------------------------------------

DEPT = 'department=~"$department"'


def overview() -> Json:
    department = {
        "type": "query",
        "name": "department",
        "label": "部门",
        "description": "下钻到一个或几个部门",
        "datasource": PROMETHEUS,
        "definition": "label_values(jiancha_open_cases, department)",
        "query": {
            "qryType": 1,
            "query": "label_values(jiancha_open_cases, department)",
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {},
        "options": [],
        "hide": 0,
    }
    percent = {"unit": "percentunit", "minimum": 0, "maximum": 1, "decimals": 1}
    panels = [
        panel(
            "timeseries",
            "各级发牌趋势",
            "所选部门每个时间段新发的蓝牌、黄牌、红牌数（jiancha_cards_total 的增量，按牌级）。",
            [
                prom(
                    f"sum by (level) (increase(jiancha_cards_total{{{DEPT}}}[$__interval]))",
                    "{{level}}",
                )
            ],
            w=24,
            unit="short",
            options={"legend": {"displayMode": "list", "placement": "bottom"}},
            overrides=level_overrides(),
        ),
        panel(
            "bargauge",
            "红牌部门排名",
            "当前未关闭红牌最多的十个部门（jiancha_active_cards，level=red）。",
            [
                prom(
                    f'sort_desc(topk(10, sum by (department) (jiancha_active_cards{{level="red", '
                    f"{DEPT}}})))",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            unit="short",
            thresholds=[(None, "green"), (1, "orange"), (5, "red")],
            options=bars(),
        ),
        panel(
            "bargauge",
            "按期办结率排名",
            "近 7 天按期（含提前）办结的办件占办结办件的比例，由低到高排列"
            "（记录规则 department:jiancha_on_time_rate:ratio_7d）。",
            [
                prom(
                    f"sort(department:jiancha_on_time_rate:ratio_7d{{{DEPT}}})",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            thresholds=[(None, "red"), (0.9, "orange"), (0.98, "green")],
            options=bars(),
            **percent,
        ),
        panel(
            "bargauge",
            "提前办结率",
            "近 7 天在期限当日之前办结的办件占办结办件的比例"
            "（记录规则 department:jiancha_early_rate:ratio_7d）。",
            [
                prom(
                    f"sort_desc(department:jiancha_early_rate:ratio_7d{{{DEPT}}})",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            options=bars(),
            **percent,
        ),
        panel(
            "bargauge",
            "超期在办件",
            "已超过承诺期限（暂停、合法延期已计入）仍未办结的办件数，按部门"
            "（jiancha_overdue_cases；与统计口径 jiancha.overdue_v1 一致，其他规则的红牌不计）。",
            [
                prom(
                    f"sort_desc(jiancha_overdue_cases{{{DEPT}}})",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            unit="short",
            thresholds=[(None, "green"), (1, "red")],
            options=bars(),
        ),
        panel(
            "bargauge",
            "满意率",
            "最新评价为 3 至 5 星（基本满意及以上）的办件占已评价办件的比例（jiancha_ratings）。",
            [
                prom(
                    f'sum by (department) (jiancha_ratings{{rating=~"3|4|5", {DEPT}}})'
                    f" / sum by (department) (jiancha_ratings{{{DEPT}}})",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            thresholds=[(None, "red"), (0.9, "orange"), (0.98, "green")],
            options=bars(),
            **percent,
        ),
        panel(
            "bargauge",
            "差评整改率",
            "已整改的差评（1 至 2 星）占全部差评的比例"
            "（jiancha_bad_reviews_rectified_total / jiancha_bad_reviews_total）。",
            [
                prom(
                    f"sum by (department) (jiancha_bad_reviews_rectified_total{{{DEPT}}})"
                    f" / sum by (department) (jiancha_bad_reviews_total{{{DEPT}}})",
                    "{{department}}",
                    instant=True,
                )
            ],
            w=8,
            thresholds=[(None, "red"), (1, "green")],
            options=bars(),
            **percent,
        ),
        panel(
            "table",
            "日均发牌（近 7 天）",
            "近 7 天各部门每天平均发出的各级牌数"
            "（记录规则 department_level:jiancha_cards:per_day_7d）。",
            [prom(f"department_level:jiancha_cards:per_day_7d{{{DEPT}}}", instant=True)],
            w=24,
            unit="short",
            decimals=2,
            options={"showHeader": True, "cellHeight": "sm"},
        ),
    ]
    panels[-1]["targets"][0]["format"] = "table"
    panels[-1]["transformations"] = [
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
                "renameByName": {"department": "部门", "level": "牌级", "Value": "日均发牌"},
            },
        }
    ]
    panels[-1]["fieldConfig"]["overrides"] = level_overrides("牌级")
    return dashboard(
        "jiancha-overview",
        "电子监察总览",
        "监察人员用：各部门发牌、按期办结、提前办结、超期、满意度与差评整改。",
        panels,
        [department],
        time_from="now-30d",
    )


# --- 2. 窗口办件 -------------------------------------------------------------------------

AT_RISK = f"""\
SELECT c.case_id AS "办件编号",
       c.matter AS "事项",
       k.level AS "最高牌级",
       COALESCE(k.deadline, c.decision_deadline) AS "期限",
       CASE WHEN (k.detail->>'provisional')::boolean THEN '暂定（当年放假安排未公布）'
            ELSE '' END AS "期限说明",
       (k.detail->>'remaining_days')::numeric AS "剩余工作日",
       k.status AS "牌状态"
FROM jiancha.cases c
JOIN LATERAL (
    SELECT level, deadline, detail, status
    FROM jiancha.cards
    WHERE cards.case_id = c.case_id AND cards.status IN {OPEN_CARD}
    ORDER BY CASE level WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC,
             issued_at DESC
    LIMIT 1
) k ON true
WHERE c."window" = '$window' AND c.completed_at IS NULL AND c.closed_at IS NULL
ORDER BY COALESCE(k.deadline, c.decision_deadline) ASC NULLS LAST,
         (k.detail->>'remaining_days')::numeric ASC NULLS LAST,
         c.case_id"""

OPEN_BY_LEVEL = f"""\
SELECT level AS "牌级", count(*) AS "未关闭"
FROM jiancha.cards
WHERE "window" = '$window' AND status IN {OPEN_CARD}
GROUP BY level
ORDER BY CASE level WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC"""

WINDOW_CARDS = """\
SELECT issued_at AS "发牌时间",
       case_id AS "办件编号",
       matter AS "事项",
       clock AS "时钟",
       rule AS "规则",
       level AS "牌级",
       status AS "状态",
       reply_due AS "督办回复期限",
       replied_at AS "回复时间",
       escalated_at AS "升级时间"
FROM jiancha.cards
WHERE "window" = '$window' AND $__timeFilter(issued_at)
ORDER BY issued_at DESC, id DESC
LIMIT 500"""

WINDOW_OUTCOMES = """\
SELECT CASE outcome WHEN 'early' THEN '提前办结' WHEN 'on_time' THEN '按期办结'
                    ELSE '超期办结' END AS "办结情况",
       count(*) AS "办件数"
FROM jiancha.cases
WHERE "window" = '$window' AND outcome IS NOT NULL AND $__timeFilter(completed_at)
GROUP BY outcome
ORDER BY outcome"""

WINDOWS = """\
SELECT DISTINCT "window" FROM jiancha.cases WHERE "window" IS NOT NULL ORDER BY 1"""


def window() -> Json:
    variable = {
        "type": "query",
        "name": "window",
        "label": "窗口",
        "description": "要查看的窗口",
        "datasource": POSTGRES,
        "definition": WINDOWS,
        "query": WINDOWS,
        "refresh": 1,
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "hide": 0,
    }
    panels = [
        panel(
            "table",
            "临近超期办件",
            "本窗口未办结且已亮牌的办件，取每件最高一级未关闭的牌，按期限先后排列："
            "期限取牌上的期限，没有则取承诺办结期限；剩余工作日取自发牌时的记录。",
            [sql(AT_RISK)],
            w=16,
            h=10,
            options={"showHeader": True, "cellHeight": "sm"},
            overrides=level_overrides("最高牌级"),
        ),
        panel(
            "bargauge",
            "本窗口未关闭的牌",
            "本窗口尚未关闭（已发、已签收、申诉中）的牌，按牌级计数。",
            [sql(OPEN_BY_LEVEL)],
            w=8,
            h=10,
            unit="short",
            thresholds=[(None, "green"), (1, "orange")],
            options={**bars(), "reduceOptions": {"calcs": [], "fields": "", "values": True}},
        ),
        panel(
            "table",
            "本窗口的牌",
            "所选时间段内本窗口发出的牌及其状态（已发、已签收、申诉中、已关闭、已撤销）与督办情况。",
            [sql(WINDOW_CARDS)],
            w=16,
            h=12,
            options={"showHeader": True, "cellHeight": "sm"},
            overrides=level_overrides("牌级"),
        ),
        panel(
            "piechart",
            "办结情况",
            "所选时间段内本窗口办结办件的提前、按期、超期构成。",
            [sql(WINDOW_OUTCOMES)],
            w=8,
            h=12,
            options={
                "pieType": "donut",
                "legend": {"displayMode": "table", "placement": "bottom", "values": ["value"]},
                "reduceOptions": {"calcs": [], "fields": "", "values": True},
            },
        ),
    ]
    return dashboard(
        "jiancha-window",
        "窗口办件",
        "窗口负责人用：本窗口临近超期的办件、发出的牌及其处理状态。",
        panels,
        [variable],
    )


# --- 3. 运行状态 -------------------------------------------------------------------------

UP = [
    {
        "type": "value",
        "options": {"0": {"text": "断开", "color": "red"}, "1": {"text": "正常", "color": "green"}},
    }
]
RELOAD = [
    {
        "type": "value",
        "options": {"0": {"text": "失败", "color": "red"}, "1": {"text": "成功", "color": "green"}},
    }
]


def operations() -> Json:
    panels = [
        panel(
            "stat",
            "数据库连接",
            "最近一次快照是否连上 PostgreSQL（jiancha_database_up）。",
            [prom("min(jiancha_database_up)", instant=True)],
            w=6,
            h=4,
            thresholds=[(None, "red"), (1, "green")],
            mappings=UP,
            options=stat_options(),
        ),
        panel(
            "stat",
            "配置重载",
            "最近一次 SIGHUP 重载配置、规则和日历是否成功"
            "（jiancha_config_last_reload_successful）。",
            [prom("min(jiancha_config_last_reload_successful)", instant=True)],
            w=6,
            h=4,
            thresholds=[(None, "red"), (1, "green")],
            mappings=RELOAD,
            options=stat_options(),
        ),
        panel(
            "stat",
            "距下一次发牌",
            "调度器下一个到点时刻距现在的时间；没有待到点的牌时无数据"
            "（jiancha_next_crossing_timestamp_seconds）。",
            [prom("min(jiancha_next_crossing_timestamp_seconds > 0) - time()", instant=True)],
            w=6,
            h=4,
            unit="s",
            options=stat_options(),
        ),
        panel(
            "stat",
            "节假日数据剩余天数",
            "已公布的节假日安排还能覆盖多少天；少于 45 天时请更新日历"
            "（jiancha_calendar_published_through_timestamp_seconds）。",
            [
                prom(
                    "min(jiancha_calendar_published_through_timestamp_seconds - time()) / 86400",
                    instant=True,
                )
            ],
            w=6,
            h=4,
            unit="d",
            decimals=0,
            thresholds=[(None, "red"), (45, "orange"), (90, "green")],
            options=stat_options(),
        ),
        panel(
            "timeseries",
            "事件读取速率",
            "每秒从审批数据库读取的办件事件数（jiancha_events_ingested_total），以及违反数据约定的死信。",
            [
                prom("sum(rate(jiancha_events_ingested_total[$__rate_interval]))", "事件"),
                prom("sum(rate(jiancha_dead_letters_total[$__rate_interval]))", "死信"),
            ],
            unit="ops",
        ),
        panel(
            "timeseries",
            "读取滞后与阻塞事务",
            "距读取器上次追上源库的秒数（jiancha_tail_lag_seconds），"
            "以及阻挡读取的最老写事务的时长（jiancha_blocking_transaction_age_seconds）。",
            [
                prom("max(jiancha_tail_lag_seconds)", "读取滞后"),
                prom("max(jiancha_blocking_transaction_age_seconds)", "阻塞事务"),
            ],
            unit="s",
        ),
        panel(
            "timeseries",
            "评估耗时 P99",
            "调度器每次评估的耗时第 99 百分位与中位数（jiancha_evaluation_duration_seconds）。",
            [
                prom(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(jiancha_evaluation_duration_seconds_bucket[$__rate_interval])))",
                    "P99",
                ),
                prom(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(jiancha_evaluation_duration_seconds_bucket[$__rate_interval])))",
                    "P50",
                ),
            ],
            unit="s",
        ),
        panel(
            "timeseries",
            "运行中的时钟",
            "调度器表中正在计时的期限数（jiancha_open_clocks）。",
            [prom("sum(jiancha_open_clocks)", "时钟")],
            unit="short",
        ),
        panel(
            "timeseries",
            "通知队列",
            "发件箱中各通道待发送、已送达、已放弃的通知数（jiancha_outbox_notifications）。",
            [
                prom(
                    "sum by (channel, state) (jiancha_outbox_notifications)",
                    "{{channel}} {{state}}",
                )
            ],
            unit="short",
        ),
        panel(
            "bargauge",
            "发送失败的通知",
            "所选时间段内各通道放弃发送的通知数（jiancha_notifications_failed_total）；"
            "用 jiancha outbox list --state failed 查看。",
            [
                prom(
                    "sum by (channel) (increase(jiancha_notifications_failed_total[$__range]))",
                    "{{channel}}",
                    instant=True,
                )
            ],
            unit="short",
            thresholds=[(None, "green"), (1, "red")],
            options=bars(),
        ),
    ]
    return dashboard(
        "jiancha-operations",
        "运行状态",
        "运维人员用：数据库连接、事件读取、调度评估、通知发送、日历与配置。",
        panels,
        [],
        time_from="now-6h",
        refresh="30s",
    )


# --- output ------------------------------------------------------------------------------


def dashboards() -> dict[str, Json]:
    """Every dashboard, by file name."""
    return {
        "jiancha-overview.json": overview(),
        "jiancha-window.json": window(),
        "jiancha-operations.json": operations(),
    }


def render(board: Json) -> str:
    return json.dumps(board, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path = args.out / name
        text = render(board)
        current = path.read_text("utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, "utf-8")
            sys.stderr.write(f"wrote {path}\n")
    if stale:
        sys.stderr.write(f"out of date: {', '.join(stale)}; run python -m dashboards.build\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
