"""The words every stage shares: levels, clocks, card states, and how a deadline reads.

A card's level, its clock and its status are codes in the database, the
metrics and the config (``red``, ``decision``, ``acknowledged``); people read
them in Chinese (or English). One table each, here, so that a window head's
message, an officer's table and the command line never disagree, and one
function writes an instant the way the Civil Code reads a deadline (art. 203:
a day ends at 24:00, not at 00:00 of the next).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "CARD_STATUSES",
    "CLOCKS",
    "CLOCK_NAMES",
    "CLOCK_TITLES",
    "DEAD_REASON_NAMES",
    "EVENT_NAMES",
    "FINISHED",
    "LEVELS",
    "LEVEL_NAMES",
    "LEVEL_WORDS",
    "OPEN_STATUSES",
    "OUTBOX_STATES",
    "OUTCOMES",
    "STATE_NAMES",
    "STATUS_NAMES",
    "SUBJECT_NAMES",
    "WEEKDAYS",
    "Lang",
    "Names",
    "level_name",
    "level_number",
    "local_text",
    "subject_text",
    "word",
]

Lang = Literal["zh", "en"]
Names = Mapping[str, Mapping[Lang, str]]

LEVELS: Final = ("blue", "yellow", "red")
"""Card levels, lowest first: level ``n`` (1, 2, 3) is ``LEVELS[n - 1]``."""

CLOCKS: Final = (
    "acceptance",
    "decision",
    "statutory",
    "delivery",
    "immediate",
    "step",
    "review",
    "supplement",
)
"""The clock names of a card (docs/contract.md)."""

CARD_STATUSES: Final = ("issued", "acknowledged", "appealed", "closed", "revoked")
OPEN_STATUSES: Final = ("issued", "acknowledged", "appealed")
"""A card in one of these may still be acted on, closed or revoked."""

FINISHED: Final = frozenset({"completed", "delivered", "withdrawn", "terminated", "refused"})
"""Case statuses after which no decision period runs."""

OUTBOX_STATES: Final = ("pending", "delivered", "failed")
OUTCOMES: Final = ("early", "on_time", "late")
"""How a finished case's decision clock ended: before the deadline's day, by it, after it."""


def level_name(level: int) -> str:
    """The code of level ``level`` (1 blue, 2 yellow, 3 red)."""
    return LEVELS[level - 1]


def level_number(name: str) -> int:
    """The number of level ``name``; ValueError for anything else."""
    return LEVELS.index(name) + 1


LEVEL_NAMES: Final[Names] = {
    "blue": {"zh": "蓝牌", "en": "blue card"},
    "yellow": {"zh": "黄牌", "en": "yellow card"},
    "red": {"zh": "红牌", "en": "red card"},
}
LEVEL_WORDS: Final[Names] = {
    "blue": {"zh": "蓝牌", "en": "blue"},
    "yellow": {"zh": "黄牌", "en": "yellow"},
    "red": {"zh": "红牌", "en": "red"},
}
"""Levels in a table column or a filter (``--level red``)."""

CLOCK_NAMES: Final[Names] = {
    "acceptance": {"zh": "受理", "en": "acceptance"},
    "decision": {"zh": "办结", "en": "decision"},
    "statutory": {"zh": "法定时限", "en": "statutory"},
    "delivery": {"zh": "送达", "en": "delivery"},
    "immediate": {"zh": "即办", "en": "immediate"},
    "step": {"zh": "环节", "en": "step"},
    "review": {"zh": "差评整改", "en": "review"},
    "supplement": {"zh": "容缺补齐", "en": "supplement"},
}
"""Clocks in a table column or a filter (``--clock 办结``)."""

CLOCK_TITLES: Final[Names] = {
    "acceptance": {"zh": "受理", "en": "acceptance"},
    "decision": {"zh": "办结（承诺时限）", "en": "decision (promised limit)"},
    "statutory": {"zh": "法定时限", "en": "statutory limit"},
    "delivery": {"zh": "送达", "en": "delivery"},
    "immediate": {"zh": "即办", "en": "immediate"},
    "step": {"zh": "环节", "en": "step"},
    "review": {"zh": "差评整改", "en": "bad-rating rectification"},
    "supplement": {"zh": "容缺补齐", "en": "pledged materials"},
}
"""Clocks in a sentence of a notification."""

STATUS_NAMES: Final[Names] = {
    "issued": {"zh": "已发牌", "en": "issued"},
    "acknowledged": {"zh": "已签收", "en": "acknowledged"},
    "appealed": {"zh": "申诉中", "en": "appealed"},
    "closed": {"zh": "已销号", "en": "closed"},
    "revoked": {"zh": "已撤销", "en": "revoked"},
}
EVENT_NAMES: Final[Names] = {
    "issued": {"zh": "发牌", "en": "issued"},
    "notified": {"zh": "已通知", "en": "notified"},
    "acknowledged": {"zh": "签收说明", "en": "acknowledged"},
    "closed": {"zh": "销号", "en": "closed"},
    "revoked": {"zh": "撤销", "en": "revoked"},
    "appealed": {"zh": "申诉", "en": "appealed"},
    "appeal_decided": {"zh": "申诉裁决", "en": "appeal decided"},
    "escalated": {"zh": "督办逾期上报", "en": "escalated"},
}
"""Steps of a card's ledger (``jiancha.card_events.kind``)."""

DEAD_REASON_NAMES: Final[Names] = {
    "unknown_kind": {"zh": "未知事件类型", "en": "unknown kind"},
    "missing_key": {"zh": "缺少字段", "en": "missing key"},
    "bad_type": {"zh": "字段类型错误", "en": "bad type"},
    "bad_value": {"zh": "字段取值不合理", "en": "bad value"},
    "unknown_matter": {"zh": "事项不在目录中", "en": "unknown matter"},
    "future_timestamp": {"zh": "业务时间超前", "en": "timestamp in the future"},
    "never_submitted": {"zh": "办件未申报", "en": "never submitted"},
    "value_out_of_range": {"zh": "数值超出范围", "en": "value out of range"},
    "text_too_long": {"zh": "文本过长", "en": "text too long"},
    "list_too_long": {"zh": "列表过长", "en": "list too long"},
    "payload_too_large": {"zh": "事件内容过大", "en": "payload too large"},
    "apply_failed": {"zh": "写入时被数据库拒绝", "en": "refused by the database"},
}
"""Why an event is in ``jiancha.dead_letters`` (``monitor.source.contract.DeadReason``)."""

STATE_NAMES: Final[Names] = {
    "pending": {"zh": "待发送", "en": "pending"},
    "delivered": {"zh": "已送达", "en": "delivered"},
    "failed": {"zh": "失败", "en": "failed"},
}
"""Delivery states of a notification in the outbox."""

SUBJECT_NAMES: Final[Names] = {
    "hearing": {"zh": "听证", "en": "hearing"},
    "bidding": {"zh": "招标", "en": "bidding"},
    "auction": {"zh": "拍卖", "en": "auction"},
    "inspection": {"zh": "检验", "en": "inspection"},
    "testing": {"zh": "检测", "en": "testing"},
    "quarantine": {"zh": "检疫", "en": "quarantine"},
    "appraisal": {"zh": "鉴定", "en": "appraisal"},
    "expert_review": {"zh": "专家评审", "en": "expert review"},
    "survey": {"zh": "现场踏勘", "en": "site survey"},
    "public_notice": {"zh": "公示", "en": "public notice"},
    "rating": {"zh": "差评", "en": "bad rating"},
    "request": {"zh": "补正通知", "en": "request for materials"},
}
"""What a card's subject (``kind@instant``) is about: pause types (special procedures), ..."""

WEEKDAYS: Final[Mapping[Lang, tuple[str, ...]]] = {
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def word(names: Names, code: str | None, lang: Lang) -> str:
    """The word for ``code``; an unknown code reads as itself, None as nothing."""
    if code is None:
        return ""
    return names.get(code, {}).get(lang, code)


def local_text(
    moment: dt.datetime | None,
    tz: str,
    *,
    deadline: bool = True,
    seconds: bool = False,
    with_year: bool = True,
    missing: str = "",
) -> str:
    """``moment`` on the local clock of ``tz``, as people write it.

    With ``deadline`` (the default), an instant at midnight is written as
    24:00 of the day it ends (2024-02-21 24:00, not 2024-02-22 00:00): the
    reading of Civil Code art. 203 that every card and notice uses.
    """
    if moment is None:
        return missing
    local = moment.astimezone(zoneinfo.ZoneInfo(tz))
    day = "%Y-%m-%d" if with_year else "%m-%d"
    if deadline and (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return f"{local - dt.timedelta(days=1):{day}} 24:00"
    return local.strftime(f"{day} %H:%M:%S" if seconds else f"{day} %H:%M")


def subject_text(subject: str, tz: str, lang: Lang) -> str:
    """A card's subject as people read it: ``survey@2024-03-05T02:00:00Z`` -> 现场踏勘（… 起）."""
    kind, sep, at = subject.partition("@")
    if not sep:
        return subject  # a step's name
    try:
        moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return subject
    since = local_text(moment, tz, deadline=False)
    name = word(SUBJECT_NAMES, kind, lang)
    return f"{name}（{since} 起）" if lang == "zh" else f"{name} (from {since})"
