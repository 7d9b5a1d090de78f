"""User-facing text in zh-CN (default) or English.

Operators and window heads read Chinese; a centre with foreign staff can set
``JIANCHA_LANG=en``. Keys are stable identifiers so tests never compare
translated prose.
"""

from __future__ import annotations

import os
from typing import Literal

Lang = Literal["zh", "en"]

_MESSAGES: dict[str, dict[Lang, str]] = {
    # calendar files
    "cal.toml_syntax": {"zh": "TOML 语法错误：{detail}", "en": "TOML syntax error: {detail}"},
    "cal.unknown_key": {
        "zh": "未知的配置项 {name!r}（可用：{allowed}）",
        "en": "unknown key {name!r} (allowed: {allowed})",
    },
    "cal.bad_type": {
        "zh": "{name} 应为{expected}，实际是 {got}",
        "en": "{name} must be {expected}, got {got}",
    },
    "cal.bad_date": {
        "zh": "日期无效：{value!r}（应为 YYYY-MM-DD 或 YYYY-MM-DD..YYYY-MM-DD）",
        "en": "invalid date {value!r} (expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)",
    },
    "cal.bad_annual": {
        "zh": "每年固定日期无效：{value!r}（应为 MM-DD）",
        "en": "invalid annual date {value!r} (expected MM-DD)",
    },
    "cal.date_outside_year": {
        "zh": "日期 {value} 不在 {year} 年内",
        "en": "date {value} is not in year {year}",
    },
    "cal.date_out_of_range": {
        "zh": "日期 {value} 超出日历范围 {lo}–{hi}",
        "en": "date {value} is outside the calendar range {lo}–{hi}",
    },
    "cal.bad_year": {
        "zh": "年份无效：{value!r}（应在 {lo}–{hi} 之间）",
        "en": "invalid year {value!r} (must be within {lo}–{hi})",
    },
    "cal.holiday_and_workday": {
        "zh": "{value} 同时被列为放假日和调休上班日",
        "en": "{value} is listed both as a holiday and as a working day",
    },
    "cal.bad_timezone": {"zh": "未知时区：{value!r}", "en": "unknown time zone {value!r}"},
    "cal.bad_office_hours": {
        "zh": "办公时间无效：{value!r}（应为 HH:MM-HH:MM，按时间先后排列、互不重叠）",
        "en": "invalid office hours {value!r} (expected HH:MM-HH:MM, in order, not overlapping)",
    },
    "cal.unknown_base": {
        "zh": "未知的基础日历 {value!r}（可用：{allowed}）",
        "en": "unknown base calendar {value!r} (available: {allowed})",
    },
    "cal.cycle": {"zh": "日历继承出现循环：{chain}", "en": "calendar bases form a cycle: {chain}"},
    "cal.not_found": {
        "zh": "找不到日历 {name!r}（已查找：{searched}；可用：{allowed}）",
        "en": "calendar {name!r} not found (searched: {searched}; available: {allowed})",
    },
    "cal.unreadable": {"zh": "无法读取文件：{detail}", "en": "cannot read file: {detail}"},
    "cal.out_of_range": {
        "zh": "{count} 个时间超出日历 {name!r} 的范围 {lo}–{hi}（或期限超出范围）",
        "en": "{count} instant(s) outside calendar {name!r}'s range {lo}–{hi} "
        "(or a deadline past it)",
    },
    "cal.negative_workdays": {
        "zh": "工作日数不能为负数",
        "en": "the number of working days cannot be negative",
    },
    "cal.shape_mismatch": {
        "zh": "输入数组长度不一致：{a} 与 {b}",
        "en": "input arrays differ in length: {a} and {b}",
    },
    # CLI
    "cli.workday": {"zh": "工作日", "en": "working day"},
    "cli.restday": {"zh": "休息日", "en": "rest day"},
    "cli.provisional": {
        "zh": "（暂定：该年度节假日安排尚未公布，按国务院令第795号推定法定节假日，调休未知）",
        "en": " (provisional: that year's holiday schedule is not published; holidays inferred"
        " from State Council Order 795, no make-up working days known)",
    },
    "cli.bad_instant": {
        "zh": "时间格式无效：{value!r}"
        "（示例：2024-02-08T10:00、2024-02-08T02:00Z、2024-02-08T10:00+08:00）",
        "en": "invalid instant {value!r} (e.g. 2024-02-08T10:00, 2024-02-08T02:00Z, "
        "2024-02-08T10:00+08:00)",
    },
    "cli.bad_day": {
        "zh": "日期格式无效：{value!r}（示例：2024-02-04）",
        "en": "invalid date {value!r} (e.g. 2024-02-04)",
    },
    "cli.deadline": {"zh": "截止时间", "en": "deadline"},
    "cli.count": {"zh": "已用工作日", "en": "working days elapsed"},
    "cli.error": {"zh": "错误", "en": "error"},
    # schema migrations and the source contract
    "migrate.bad_name": {
        "zh": "迁移文件名无效：{file}（应为 NNNN_名称.sql，名称只含小写字母、数字和下划线）",
        "en": "invalid migration file name {file} (expected NNNN_name.sql, name in a-z, 0-9, _)",
    },
    "migrate.duplicate": {
        "zh": "迁移版本 {version} 重复：{a} 与 {b}",
        "en": "migration version {version} appears twice: {a} and {b}",
    },
    "migrate.gap": {
        "zh": "缺少迁移版本 {version}（{folder}）：版本号须从 1 起连续编号",
        "en": "migration version {version} is missing in {folder}: versions run from 1 "
        "without gaps",
    },
    "migrate.too_new": {
        "zh": "数据库中 jiancha 模式的版本为 {db_version}，"
        "新于本程序已知的最新版本 {known_version}；请升级 jiancha，不要用旧版本运行",
        "en": "the database's jiancha schema is at version {db_version}, newer than version "
        "{known_version}, the newest this jiancha knows; upgrade jiancha instead of running "
        "an older one",
    },
    "migrate.absent": {
        "zh": "数据库中还没有 jiancha 模式：请先运行 jiancha db migrate",
        "en": "the database has no jiancha schema yet: run jiancha db migrate first",
    },
    "migrate.behind": {
        "zh": "数据库中 jiancha 模式的版本为 {current}，本程序需要 {newest}："
        "请先运行 jiancha db migrate（升级时先迁移，再启动）",
        "en": "the database's jiancha schema is at version {current}; this jiancha needs "
        "{newest}: run jiancha db migrate first (upgrading: migrate, then start)",
    },
    "migrate.unknown_applied": {
        "zh": "数据库记录了本程序没有的迁移 {version:04d}_{name}",
        "en": "the database records migration {version:04d}_{name}, which this jiancha lacks",
    },
    "migrate.checksum": {
        "zh": "迁移 {label} 已应用，但文件 {file} 的内容已被修改（已发布的迁移不得修改，"
        "请另写新的迁移）",
        "en": "migration {label} is applied but {file} has changed since (a released "
        "migration must not be edited; write a new one)",
    },
    "migrate.failed": {
        "zh": "迁移 {label} 执行失败，已回滚：{detail}",
        "en": "migration {label} failed and was rolled back: {detail}",
    },
    # rule files
    "rules.not_found": {
        "zh": "找不到规则文件 {name!r}（查找位置：{searched}）",
        "en": "rule file {name!r} not found (searched: {searched})",
    },
    "rules.unreadable": {"zh": "无法读取规则文件：{detail}", "en": "cannot read rules: {detail}"},
    "rules.toml_syntax": {"zh": "TOML 语法错误：{detail}", "en": "TOML syntax error: {detail}"},
    "rules.cycle": {
        "zh": "规则文件继承出现循环：{name}",
        "en": "rule files extend in a cycle: {name}",
    },
    "rules.unknown_key": {
        "zh": "未知的配置项 {name!r}（可用：{allowed}）",
        "en": "unknown key {name!r} (allowed: {allowed})",
    },
    "rules.missing_key": {"zh": "缺少配置项 {name!r}", "en": "missing key {name!r}"},
    "rules.bad_type": {"zh": "{name} 应为 {expected}", "en": "{name} must be {expected}"},
    "rules.bad_int": {
        "zh": "{name} 应为不小于 {minimum} 的整数，实际是 {value!r}",
        "en": "{name} must be an integer of at least {minimum}, got {value!r}",
    },
    "rules.bad_level": {
        "zh": "{name} 应为 blue、yellow 或 red，实际是 {value!r}",
        "en": "{name} must be blue, yellow or red, got {value!r}",
    },
    "rules.bad_rule_name": {
        "zh": "规则名 {value!r} 只能由小写字母、数字和下划线组成",
        "en": "rule name {value!r} must be lower-case letters, digits and underscores",
    },
    "rules.bad_threshold": {
        "zh": '{name} 的阈值 {value!r} 无效（应为 "50%"、"3wd"、"1wd left"、'
        '"deadline"、"deadline+5wd" 或它们的列表）',
        "en": 'threshold {name} = {value!r} is invalid (expected "50%", "3wd", '
        '"1wd left", "deadline", "deadline+5wd" or a list of them)',
    },
    "rules.bad_clock": {
        "zh": "未知的时钟 {value!r}（可用：{allowed}）",
        "en": "unknown clock {value!r} (allowed: {allowed})",
    },
    "rules.bad_on": {
        "zh": "未知的计时对象 on = {value!r}（可用：{allowed}）",
        "en": "unknown period on = {value!r} (allowed: {allowed})",
    },
    "rules.bad_check": {
        "zh": "未知的程序性检查 {value!r}（可用：{allowed}）",
        "en": "unknown check {value!r} (allowed: {allowed})",
    },
    "rules.limit_from_catalogue": {
        "zh": "{on} 的时限来自事项目录（{source}），不能在规则中设置 limit_days",
        "en": "the limit of {on} comes from the matter catalogue ({source}); "
        "limit_days is not allowed",
    },
    "rules.limit_needed": {
        "zh": "{on} 没有目录时限，规则必须设置 limit_days",
        "en": "{on} has no catalogue limit: the rule needs limit_days",
    },
    "rules.no_levels": {
        "zh": "规则 {rule} 至少要有 blue、yellow、red 中的一个阈值",
        "en": "rule {rule} needs at least one of blue, yellow, red",
    },
    "rules.supervision_level": {
        "zh": "督办等级 {level} 在本规则中没有阈值",
        "en": "supervision level {level} has no threshold in this rule",
    },
    "rules.duplicate": {"zh": "规则 {rule} 在本文件中重复", "en": "rule {rule} appears twice"},
    "rules.unknown_rule": {
        "zh": "覆盖的规则 {rule!r} 不存在（已有：{allowed}）",
        "en": "override of unknown rule {rule!r} (known: {allowed})",
    },
    "rules.override_scope": {
        "zh": "覆盖项必须指定 regions、departments 或 matters",
        "en": "an override needs regions, departments or matters",
    },
    "rules.override_key": {
        "zh": "规则 {rule} 不能覆盖 {name}",
        "en": "{name} cannot be overridden for rule {rule}",
    },
    "db.no_dsn": {
        "zh": "未指定数据库：请使用 {flag}，或设置环境变量 {env}",
        "en": "no database given: use {flag} or set the environment variable {env}",
    },
    "db.connect_failed": {
        "zh": "无法连接数据库：{detail}",
        "en": "cannot connect to the database: {detail}",
    },
    "db.failed": {"zh": "数据库操作失败：{detail}", "en": "database operation failed: {detail}"},
    "db.no_schema": {
        "zh": "数据库操作失败：{detail}。jiancha 模式未建立或版本过旧：请先运行 jiancha db migrate"
        "（jiancha db status 查看版本）",
        "en": "database operation failed: {detail}. The jiancha schema is missing or behind: "
        "run jiancha db migrate (jiancha db status shows its version)",
    },
    "db.no_source": {
        "zh": "数据库操作失败：{detail}。审批数据库中没有源数据约定的表：请确认 --source-dsn "
        "指向审批数据库，或运行 jiancha db install-source",
        "en": "database operation failed: {detail}. The approval database lacks the source "
        "contract's tables: check that --source-dsn names it, or run jiancha db install-source",
    },
    "db.migrated": {
        "zh": "已应用迁移：{versions}；jiancha 模式当前版本 {current}",
        "en": "applied migrations: {versions}; schema jiancha is now at version {current}",
    },
    "db.up_to_date": {
        "zh": "jiancha 模式已是最新版本 {current}，无需迁移",
        "en": "schema jiancha is up to date at version {current}; nothing to apply",
    },
    "db.source_installed": {
        "zh": "已安装源数据约定：case_events、matters、触发器（NOTIFY 频道 {channel}）、"
        "只读角色 {role}",
        "en": "source contract installed: case_events, matters, triggers (NOTIFY channel "
        "{channel}), read-only role {role}",
    },
    "db.status_current": {"zh": "当前版本", "en": "current version"},
    "db.status_newest": {"zh": "已知最新版本", "en": "newest known version"},
    "db.status_applied": {"zh": "已应用", "en": "applied"},
    "db.status_pending": {"zh": "待应用", "en": "pending"},
    "db.status_none": {"zh": "无", "en": "none"},
    "db.status_uninitialised": {
        "zh": "未初始化（尚无 jiancha.schema_migrations）",
        "en": "not initialised (no jiancha.schema_migrations yet)",
    },
    "db.status_problem": {"zh": "问题", "en": "problem"},
    # the source moved (monitor.source.identity, jiancha db reset-cursor)
    "source.moved": {
        "zh": "源数据库已不是游标所在的数据库，拒绝读取事件（否则新事件会排在游标之后被静默跳过）："
        "{what}。确认后执行 jiancha db reset-cursor --from <业务时间>"
        "（例如 --from 2024-03-01T00:00+08:00），"
        "从该业务时间起重新读取事件并采用当前源的标识；已发的牌不会重复",
        "en": "the source is not the database the cursor is a position in; refusing to read "
        "events (new ones would sort behind the cursor and be skipped silently): {what}. "
        "Once checked, run jiancha db reset-cursor --from <business time> "
        "(e.g. --from 2024-03-01T00:00+08:00) to read the events again from that business "
        "time and adopt the source's current identity; no card is issued twice",
    },
    # a fault of jiancha's own code met by every event (monitor.pipeline.CodeFault)
    "pipeline.code_fault": {
        "zh": "连续 {streak} 个案件的事件单独写入时都因同一程序错误失败"
        "（{error}，事件 {event_id}）：这是 jiancha 的缺陷，不是数据问题。"
        "已停止读取事件，以免案件的办结等事件被搁置后误发红牌；"
        "之后的事件仍在审批数据库中，不会丢失。请把日志 code_fault 报告给开发方；"
        "修复升级后守护进程自动续读，再执行 jiancha dead-letters retry --reason apply_failed "
        "取回已搁置的 {kept} 个事件",
        "en": "events of {streak} cases in a row failed alone with the same error of the program "
        "({error}, event {event_id}): a defect of jiancha, not bad data. Reading events has "
        "stopped, lest cases whose completions were set aside earn wrong red cards; the events "
        "after it stay in the approval database and nothing is lost. Report the log's "
        "code_fault to the developers; once fixed and upgraded the daemon reads on, then run "
        "jiancha dead-letters retry --reason apply_failed to take back the {kept} event(s) "
        "set aside",
    },
    # cases the engine raised on, decided one by one (monitor.engine.apart)
    "engine.not_decided": {
        "zh": "{cases} 个案件无法判定（如案件 {case}：{error}）："
        "这是 jiancha 的缺陷，不是数据问题。"
        "这些案件暂不发牌、不计时，其余案件照常监察；案件记录已标注错误"
        "（jiancha.cases.decide_error，控制台案件页可见），事件均已保存，不会丢失。"
        "请把日志 cases_not_decided 报告给开发方；修复升级后重启即重新判定这些案件",
        "en": "{cases} case(s) could not be decided (e.g. case {case}: {error}): a defect of "
        "jiancha, not bad data. These cases get no cards and no clocks for now, every other "
        "case is supervised as usual; their rows are marked with the error "
        "(jiancha.cases.decide_error, shown on the console's case page) and their events "
        "are stored, nothing is lost. Report the log's cases_not_decided to the developers; "
        "once fixed and upgraded, a restart decides them again",
    },
    "source.moved_identity": {
        "zh": "游标记录的源为 {stored}，当前源为 {now}",
        "en": "the cursor was stored for {stored}, the source is now {now}",
    },
    "source.moved_xid": {
        "zh": "游标的事务号 {tx} 不小于源的下一个事务号 {xmax}"
        "（事务号倒退：转储恢复、逻辑切换或换了数据库）",
        "en": "the cursor's transaction id {tx} is not below the source's next transaction id "
        "{xmax} (transaction ids went backwards: a dump and restore, a logical cutover or "
        "another database)",
    },
    "db.reset_plan": {
        "zh": "将重置游标：{old} → {new}\n"
        "  源：{source}\n"
        "  业务时间不早于 {since} 的 {again} 个事件将重新读取（游标之后共 {after} 个事件）；"
        "已入库的事件与已发的牌不会重复\n"
        "  请先停止守护进程（systemctl stop jiancha），或确认它正因源不符而拒绝读取",
        "en": "the cursor will be reset: {old} -> {new}\n"
        "  source: {source}\n"
        "  {again} event(s) with a business time at or after {since} will be read again "
        "({after} event(s) after the cursor in all); stored events and issued cards are not "
        "duplicated\n"
        "  stop the daemon first (systemctl stop jiancha), or make sure it is refusing "
        "because the source moved",
    },
    "db.reset_ask": {"zh": "继续吗？[y/N] ", "en": "go ahead? [y/N] "},
    "db.reset_aborted": {
        "zh": "未重置游标（需要确认：回答 y，或加 --yes）",
        "en": "the cursor was not reset (confirm with y, or pass --yes)",
    },
    "db.reset_done": {
        "zh": "游标已重置为 {new}，源标识已更新；"
        "守护进程会在下次检查时（至多 {recheck} 秒）继续读取",
        "en": "the cursor is now {new} and the source's identity adopted; the daemon resumes "
        "at its next check (within {recheck} s)",
    },
}


def current_lang() -> Lang:
    """The language chosen by ``JIANCHA_LANG`` (``zh`` unless it starts with ``en``)."""
    return "en" if os.environ.get("JIANCHA_LANG", "").lower().startswith("en") else "zh"


def t(key: str, lang: Lang | None = None, **kwargs: object) -> str:
    """Render message ``key`` in ``lang`` (default: ``current_lang()``)."""
    return _MESSAGES[key][lang or current_lang()].format(**kwargs)


def h(zh: str, en: str) -> str:
    """Text written in place in both languages (help, one-off messages), in the chosen one."""
    return en if current_lang() == "en" else zh
