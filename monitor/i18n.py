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
        "zh": "（暂定：该年度节假日安排尚未公布，按双休日推算）",
        "en": " (provisional: that year's holiday schedule is not published; weekends only)",
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
}


def current_lang() -> Lang:
    """The language chosen by ``JIANCHA_LANG`` (``zh`` unless it starts with ``en``)."""
    return "en" if os.environ.get("JIANCHA_LANG", "").lower().startswith("en") else "zh"


def t(key: str, lang: Lang | None = None, **kwargs: object) -> str:
    """Render message ``key`` in ``lang`` (default: ``current_lang()``)."""
    return _MESSAGES[key][lang or current_lang()].format(**kwargs)
