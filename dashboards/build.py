"""Build jiancha's Grafana dashboards as JSON with grafana-foundation-sdk's typed builders.

The datasources are referenced by the fixed uids ``jiancha-prometheus`` and
``jiancha-postgres``, which deploy/grafana's file provisioning gives them and
``jiancha grafana push`` creates (or maps to the uid of an existing datasource
of that name), so the files work as they are, with nothing left to fill in.
The console's address (the case page a case number links to) is the constant
``console``, taken from ``[web] base_url`` of a configuration with ``--config``.

    python -m dashboards.build                        # (re)write dashboards/*.json
    python -m dashboards.build --check                # exit 1 if a committed file differs
    python -m dashboards.build --config /etc/jiancha/jiancha.toml --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    QueryVariable,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.piechart import PieChartType

from dashboards import queries as q
from dashboards.parts import (
    CASE_PAGE,
    CONSOLE,
    DEPARTMENT_PAGE,
    HERE,
    LEVEL_COLOURS,
    LEVELS,
    PERCENT,
    POSTGRES,
    PROMETHEUS,
    WINDOW_PAGE,
    WORKDAYS,
    Json,
    Panel,
    Sql,
    add,
    bars,
    column,
    console_variable,
    dashboard,
    department_variable,
    describe,
    grid,
    level_variable,
    mapped,
    names,
    prom,
    rule_words,
    sql_variable,
    steps,
)
from monitor.vocab import CLOCK_NAMES, LEVEL_WORDS, STATUS_NAMES

# --- 1. 电子监察总览 ---------------------------------------------------------------------

FILTER = 'department=~"${department:regex}"'
CARD_FILTER = FILTER + ', level=~"${level:regex}", rule=~"${rule:regex}"'


def overview(console: str) -> Json:
    board = (
        dashboard("jiancha-overview", "电子监察总览",
                  "监察人员用：各部门、各窗口的受理、办结、按期、即办、超期、好差评与发牌；"
                  "部门名下钻到本部门，窗口名下钻到窗口办件。", time_from="now-30d",
                  refresh="1m")
        .with_variable(department_variable(
            PROMETHEUS, "label_values(jiancha_overdue_cases, department)"))
        .with_variable(level_variable(none=False))
        .with_variable(
            QueryVariable("rule").label("规则").description("只看这些规则的牌")
            .datasource(PROMETHEUS).query("label_values(jiancha_cards_total, rule)")
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True))
        .with_variable(console_variable(console))
    )  # fmt: skip
    rules = rule_words()
    panels: list[Panel] = [
        grid(
            describe(
                table.Panel().with_target(Sql(q.DEPARTMENT_FIGURES)).datasource(POSTGRES),
                "部门概况",
                "所选时间段内各部门受理、办结的办件数，即办件占受理的比例，"
                "按期（含提前）办结率，以及此刻已超过承诺期限仍未办结的办件数"
                "（jiancha.figures_v1，与统计报表同一口径）。点部门名下钻。",
                24,
                8,
            ),
            [
                column("部门", *DEPARTMENT_PAGE),
                column("即办件占比", *PERCENT),
                column("按期办结率", *PERCENT),
            ],
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.WINDOW_RANKING)).datasource(POSTGRES),
                "窗口排名",
                "所选时间段内各窗口的受理、办结、即办件占比与按期办结率，按期"
                "办结率由低到高；平均用时与承诺取所选时间段内办结的办件（工作日，暂停与"
                "合法延期不计入用时占承诺的分母之外）。点窗口名查看该窗口的办件。",
                24,
                10,
            ),
            [
                column("窗口", *WINDOW_PAGE),
                column("即办件占比", *PERCENT),
                column("按期办结率", *PERCENT),
                column("用时占承诺", *PERCENT),
                column("平均用时（工作日）", *WORKDAYS),
                column("平均承诺（工作日）", *WORKDAYS),
            ],
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.OVERDUE_CASES)).datasource(POSTGRES),
                "超期在办件清单",
                "所选部门此刻已超过承诺期限（暂停、合法延期已计入）仍未办结的办件，超期最久的在前；"
                "超期工作日按日历现算。点办件编号打开控制台的办件页，点窗口名查看该窗口。",
                24,
                8,
            ),
            [
                column("办件编号", *CASE_PAGE),
                column("窗口", *WINDOW_PAGE),
                column("超期工作日", *WORKDAYS),
            ],
        ),
        describe(
            timeseries.Panel()
            .with_target(
                prom(
                    f"sum by (level) (increase(jiancha_cards_total{{{CARD_FILTER}}}[$__interval]))",
                    "{{level}}",
                )
            )
            .unit("short")
            .mappings(names(LEVEL_WORDS, LEVEL_COLOURS))
            .legend(
                common.VizLegendOptions()
                .display_mode(cm.LegendDisplayMode.LIST)
                .placement(cm.LegendPlacement.BOTTOM)
                .show_legend(True)
            ),
            "各级发牌趋势",
            "所选部门、牌级、规则每个时间段新发的蓝牌、黄牌、红牌数"
            "（jiancha_cards_total 的增量，按牌级）。",
            24,
            8,
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.CARDS_BY_RULE)).datasource(POSTGRES),
                "按规则的牌",
                "所选时间段内按规则和牌级发出的牌，以及其中尚未关闭的。",
                12,
                10,
            ),
            [column("规则", *mapped(rules)), column("牌级", *mapped(LEVEL_WORDS, LEVEL_COLOURS))],
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.RATINGS)).datasource(POSTGRES),
                "好差评",
                "所选时间段内的评价：每件取该时间段内最后一次评价，3 至 5 星为"
                "满意；差评（1 至 2 星）为该时间段内给出的，已整改按时间段结束时计。",
                12,
                10,
            ),
            [column("满意率", *PERCENT), column("整改率", *PERCENT)],
        ),
        describe(
            bars(
                bargauge.Panel().with_target(
                    prom(
                        f"sort_desc(topk(10, sum by (department) (jiancha_active_cards{{{FILTER}, "
                        f'level="red", rule=~"${{rule:regex}}"}})))',
                        "{{department}}",
                        instant=True,
                    )
                )
            )
            .unit("short")
            .thresholds(steps((None, "green"), (1, "orange"), (5, "red")))
            .color_scheme(_thresholds()),
            "红牌部门排名",
            "当前未关闭红牌最多的十个部门（jiancha_active_cards，level=red）。",
            8,
            8,
        ),
        describe(
            bars(
                bargauge.Panel().with_target(
                    prom(
                        f"sort(department:jiancha_on_time_rate:ratio_7d{{{FILTER}}})",
                        "{{department}}",
                        instant=True,
                    )
                )
            )
            .unit("percentunit")
            .decimals(1)
            .min(0)
            .max(1)
            .thresholds(steps((None, "red"), (0.9, "orange"), (0.98, "green")))
            .color_scheme(_thresholds()),
            "按期办结率（近 7 天）",
            "近 7 天按期（含提前）办结的办件占办结办件的比例，由低到高"
            "排列（记录规则 department:jiancha_on_time_rate:ratio_7d）。",
            8,
            8,
        ),
        describe(
            bars(
                bargauge.Panel().with_target(
                    prom(
                        f"sort_desc(jiancha_overdue_cases{{{FILTER}}})",
                        "{{department}}",
                        instant=True,
                    )
                )
            )
            .unit("short")
            .thresholds(steps((None, "green"), (1, "red")))
            .color_scheme(_thresholds()),
            "超期在办件",
            "已超过承诺期限（暂停、合法延期已计入）仍未办结的办件数，按部门"
            "（jiancha_overdue_cases；与统计口径 jiancha.overdue_v1 一致，其他规则的红牌不计）。",
            8,
            8,
        ),
    ]
    return add(board, panels)


def _thresholds() -> Any:
    from grafana_foundation_sdk.builders.dashboard import FieldColor

    return FieldColor().mode(dm.FieldColorModeId.THRESHOLDS)


# --- 2. 窗口办件 -------------------------------------------------------------------------


def window(console: str) -> Json:
    board = (
        dashboard("jiancha-window", "窗口办件",
                  "窗口负责人用：本窗口的在办件（剩余工作日此刻现算）、发出的牌及其处理状态；"
                  "办件编号链接到监察控制台的办件页。", time_from="now-7d", refresh="1m")
        .with_variable(department_variable(POSTGRES, q.DEPARTMENT_VALUES))
        .with_variable(sql_variable("window", "窗口", "要查看的窗口", q.WINDOW_VALUES,
                                    multi=False))
        .with_variable(sql_variable("matter", "事项", "只看这些事项（目录中的名称）",
                                    q.MATTER_VALUES, multi=True))
        .with_variable(level_variable(none=True))
        .with_variable(sql_variable("rule", "规则", "只看这些规则的牌", q.RULE_VALUES,
                                    multi=True))
        .with_variable(console_variable(console))
    )  # fmt: skip
    rules = rule_words()
    level = column("最高牌级", *mapped(LEVELS, LEVEL_COLOURS))
    panels: list[Panel] = [
        describe(
            stat.Panel()
            .with_target(Sql(q.WINDOW_FIGURES))
            .datasource(POSTGRES)
            .color_mode(cm.BigValueColorMode.NONE)
            .graph_mode(cm.BigValueGraphMode.NONE)
            .reduce_options(
                common.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("/.*/")
            )
            .override_by_name("即办件占比", PERCENT)
            .override_by_name("按期办结率", PERCENT),
            "本窗口办件概况",
            "所选时间段内本窗口受理、办结的办件数，即办件占比、按期办结率，"
            "以及此刻超期在办的办件数（jiancha.figures_v1）。",
            24,
            4,
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.OPEN_CASES)).datasource(POSTGRES),
                "在办件",
                "本窗口已受理未办结的办件，期限早的在前：最高一级未关闭的牌、"
                "承诺期限，以及此刻距期限的剩余工作日（负数为已超期的工作日，按日历现算，"
                "不是发牌时的记录）。点办件编号打开控制台的办件页。",
                16,
                12,
            ),
            [
                column("办件编号", *CASE_PAGE),
                level,
                column("规则", *mapped(rules)),
                column("牌状态", *mapped(STATUS_NAMES)),
                column(
                    "剩余工作日",
                    *WORKDAYS,
                    dm.DynamicConfigValue(
                        id_val="thresholds",
                        value=steps((None, "red"), (0, "orange"), (1, "green")).build(),
                    ),
                    dm.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "color-text"}
                    ),
                ),
            ],
        ),
        describe(
            bars(bargauge.Panel().with_target(Sql(q.OPEN_BY_LEVEL)).datasource(POSTGRES))
            .reduce_options(common.ReduceDataOptions().calcs([]).values(True))
            .unit("short")
            .mappings(names(LEVEL_WORDS, LEVEL_COLOURS))
            .thresholds(steps((None, "green"), (1, "orange"))),
            "本窗口未关闭的牌",
            "本窗口尚未关闭（已发、已签收、申诉中）的牌，按牌级计数。",
            8,
            12,
        ),
        grid(
            describe(
                table.Panel().with_target(Sql(q.WINDOW_CARDS)).datasource(POSTGRES),
                "本窗口的牌",
                "所选时间段内本窗口发出的牌及其状态（已发、已签收、申诉中、"
                "已销号、已撤销）与督办情况。点办件编号打开控制台的办件页。",
                16,
                12,
            ),
            [
                column("办件编号", *CASE_PAGE),
                column("牌级", *mapped(LEVEL_WORDS, LEVEL_COLOURS)),
                column("规则", *mapped(rules)),
                column("状态", *mapped(STATUS_NAMES)),
                column("时钟", *mapped(CLOCK_NAMES)),
            ],
        ),
        describe(
            piechart.Panel()
            .with_target(Sql(q.WINDOW_OUTCOMES))
            .datasource(POSTGRES)
            .pie_type(PieChartType.DONUT)
            .reduce_options(common.ReduceDataOptions().calcs([]).values(True)),
            "办结情况",
            "所选时间段内本窗口办结办件的提前、按期、超期构成。",
            8,
            12,
        ),
    ]
    return add(board, panels)


# --- 3. 运行状态 -------------------------------------------------------------------------

UP = names({"0": {"zh": "断开", "en": "down"}, "1": {"zh": "正常", "en": "up"}},
           {"0": "red", "1": "green"})  # fmt: skip
RELOAD = names({"0": {"zh": "失败", "en": "failed"}, "1": {"zh": "成功", "en": "ok"}},
               {"0": "red", "1": "green"})  # fmt: skip


def big(expr: str, title: str, text: str, **kw: Any) -> Panel:
    p = stat.Panel().with_target(prom(expr, instant=True)).color_mode(
        cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)  # fmt: skip
    for key, value in kw.items():
        p = getattr(p, key)(*value) if isinstance(value, tuple) else getattr(p, key)(value)
    return describe(p, title, text, 6, 4)


def trend(targets: Sequence[PromQuery], title: str, text: str, unit_name: str) -> Panel:
    p = timeseries.Panel().unit(unit_name)
    for ref, t in zip("ABCD", targets, strict=False):
        p = p.with_target(t.ref_id(ref))
    return describe(p, title, text, 12, 8)


def operations() -> Json:
    board = dashboard("jiancha-operations", "运行状态",
                      "运维人员用：数据库连接、事件读取、调度评估、通知发送、日历与配置。",
                      time_from="now-6h", refresh="30s")  # fmt: skip
    quantile = (
        "histogram_quantile({q}, sum by (le) "
        "(rate(jiancha_evaluation_duration_seconds_bucket[$__rate_interval])))"
    )
    panels: list[Panel] = [
        big("min(jiancha_database_up)", "数据库连接",
            "最近一次快照是否连上 PostgreSQL（jiancha_database_up）。", mappings=UP,
            thresholds=steps((None, "red"), (1, "green"))),
        big("min(jiancha_config_last_reload_successful)", "配置重载",
            "最近一次 SIGHUP 重载配置、规则和日历是否成功"
            "（jiancha_config_last_reload_successful）。", mappings=RELOAD,
            thresholds=steps((None, "red"), (1, "green"))),
        big("min(jiancha_next_crossing_timestamp_seconds > 0) - time()", "距下一次发牌",
            "调度器下一个到点时刻距现在的时间；没有待到点的牌时无数据"
            "（jiancha_next_crossing_timestamp_seconds）。", unit="s"),
        big("min(jiancha_calendar_published_through_timestamp_seconds - time()) / 86400",
            "节假日数据剩余天数", "已公布的节假日安排还能覆盖多少天；少于 45 天时请更新日历"
            "（jiancha_calendar_published_through_timestamp_seconds）。", unit="d", decimals=0,
            thresholds=steps((None, "red"), (45, "orange"), (90, "green"))),
        trend([prom("sum(rate(jiancha_events_ingested_total[$__rate_interval]))", "事件"),
               prom("sum(rate(jiancha_dead_letters_total[$__rate_interval]))", "死信")],
              "事件读取速率", "每秒从审批数据库读取的办件事件数（jiancha_events_ingested_total），"
              "以及违反数据约定的死信。", "ops"),
        trend([prom("max(jiancha_tail_lag_seconds)", "读取滞后"),
               prom("max(jiancha_blocking_transaction_age_seconds)", "阻塞事务")],
              "读取滞后与阻塞事务", "距读取器上次追上源库的秒数（jiancha_tail_lag_seconds），"
              "以及阻挡读取的最老写事务的时长（jiancha_blocking_transaction_age_seconds）。", "s"),
        trend([prom(quantile.format(q="0.99"), "P99"), prom(quantile.format(q="0.5"), "P50")],
              "评估耗时 P99", "调度器每次评估的耗时第 99 百分位与中位数"
              "（jiancha_evaluation_duration_seconds）。", "s"),
        trend([prom("sum(jiancha_open_clocks)", "时钟")], "运行中的时钟",
              "调度器表中正在计时的期限数（jiancha_open_clocks）。", "short"),
        trend([prom("sum by (channel, state) (jiancha_outbox_notifications)",
                    "{{channel}} {{state}}")], "通知队列",
              "发件箱中各通道待发送、已送达、已放弃的通知数（jiancha_outbox_notifications）。",
              "short"),
        describe(bars(bargauge.Panel().with_target(prom(
            "sum by (channel) (increase(jiancha_notifications_failed_total[$__range]))",
            "{{channel}}", instant=True))).unit("short")
            .thresholds(steps((None, "green"), (1, "red"))).color_scheme(_thresholds()),
            "发送失败的通知", "所选时间段内各通道放弃发送的通知数"
            "（jiancha_notifications_failed_total）；用 jiancha outbox list --state failed 查看。",
            12, 8),
    ]  # fmt: skip
    return add(board, panels)


# --- output ------------------------------------------------------------------------------


def dashboards(console: str = CONSOLE) -> dict[str, Json]:
    """Every dashboard, by file name; case numbers link to the console at ``console``."""
    console = console.rstrip("/")
    return {
        "jiancha-overview.json": overview(console),
        "jiancha-window.json": window(console),
        "jiancha-operations.json": operations(),
    }


def render(board: Json) -> str:
    return json.dumps(board, ensure_ascii=False, indent=2) + "\n"


def console_url(config: Path) -> str:
    """``[web] base_url`` of a jiancha configuration file (the default if it has none)."""
    data = tomllib.loads(config.read_text("utf-8"))
    web = data.get("web") or {}
    url = web.get("base_url") if isinstance(web, dict) else None
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise SystemExit(f"{config}: [web] base_url: 应为 http(s) 地址 / must be an http(s) URL")
    return str(url or CONSOLE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    parser.add_argument("--config", type=Path, help="take the console's address from it")
    args = parser.parse_args(argv)
    console = console_url(args.config) if args.config else CONSOLE
    stale = []
    for name, board in dashboards(console).items():
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
