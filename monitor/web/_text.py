"""The console's words in zh-CN (the default) and English, looked up by stable keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from monitor.vocab import Lang, Names

__all__ = ["CASE_STATUS_NAMES", "REVOKE_CATEGORIES", "TEXT", "text"]

TEXT: Final[Mapping[str, Mapping[Lang, str]]] = {
    "app": {"zh": "监察 · 办件时限监察", "en": "jiancha · time-limit supervision"},
    "login": {"zh": "登录", "en": "Sign in"},
    "logout": {"zh": "退出", "en": "Sign out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "bad_login": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "throttled": {
        "zh": "登录失败次数过多，请 15 分钟后再试",
        "en": "Too many failed sign-ins: try again in 15 minutes",
    },
    "ldap_down": {
        "zh": "目录服务（LDAP）暂时无法连接，请稍后再试或联系管理员",
        "en": "The directory (LDAP) cannot be reached: try again later or ask the administrator",
    },
    "cards": {"zh": "未结的牌", "en": "Open cards"},
    "card": {"zh": "牌", "en": "Card"},
    "case": {"zh": "办件", "en": "Case"},
    "matter": {"zh": "事项", "en": "Matter"},
    "matter_code": {"zh": "事项编码", "en": "Matter code"},
    "level": {"zh": "等级", "en": "Level"},
    "rule": {"zh": "规则", "en": "Rule"},
    "broke": {"zh": "触发规则", "en": "Rule broken"},
    "system": {"zh": "系统（自动）", "en": "the system"},
    "clock": {"zh": "时钟", "en": "Clock"},
    "status": {"zh": "状态", "en": "Status"},
    "department": {"zh": "部门", "en": "Department"},
    "window": {"zh": "窗口", "en": "Window"},
    "deadline": {"zh": "期限", "en": "Deadline"},
    "provisional": {
        "zh": "暂定：该年度放假安排尚未公布",
        "en": "provisional: that year's holidays are not published",
    },
    "issued": {"zh": "签发时间", "en": "Issued"},
    "remaining": {"zh": "签发时剩余", "en": "Left at issue"},
    "overdue": {"zh": "签发时已超期", "en": "Overdue at issue"},
    "workdays": {"zh": "个工作日", "en": "working days"},
    "used": {"zh": "已用", "en": "Used"},
    "limit": {"zh": "时限", "en": "Limit"},
    "reply_due": {"zh": "督办回复期限", "en": "Supervision reply due"},
    "ledger": {"zh": "台账", "en": "Ledger"},
    "at": {"zh": "时间", "en": "When"},
    "event": {"zh": "事件", "en": "Step"},
    "by": {"zh": "操作人", "en": "By"},
    "reason": {"zh": "原因", "en": "Why"},
    "db_role": {"zh": "数据库角色", "en": "DB role"},
    "ack": {"zh": "签收说明", "en": "Acknowledge"},
    "ack_hint": {"zh": "情况说明（必填）", "en": "Explanation (required)"},
    "appeal": {"zh": "申诉", "en": "Appeal"},
    "appeal_hint": {"zh": "申诉理由（必填）", "en": "Grounds (required)"},
    "revoke": {"zh": "撤销", "en": "Revoke"},
    "revoke_hint": {"zh": "撤销说明（必填）", "en": "Explanation (required)"},
    "category": {"zh": "原因类别", "en": "Reason category"},
    "decide": {"zh": "申诉裁决", "en": "Decide the appeal"},
    "decide_hint": {"zh": "裁决理由（必填）", "en": "Grounds (required)"},
    "upheld": {"zh": "维持原牌", "en": "Uphold the card"},
    "revoked": {"zh": "撤销该牌", "en": "Revoke the card"},
    "submit": {"zh": "提交", "en": "Submit"},
    "filter": {"zh": "筛选", "en": "Filter"},
    "any": {"zh": "全部", "en": "any"},
    "open": {"zh": "未结", "en": "open"},
    "all": {"zh": "全部", "en": "all"},
    "filters": {
        "zh": "筛选条件（部门、窗口、等级、事项……）",
        "en": "Filters (department, window, level, matter, ...)",
    },
    "none": {"zh": "没有符合条件的牌", "en": "No cards match"},
    "more": {"zh": "只列出期限最早的 {n} 张", "en": "Only the {n} with the earliest deadline"},
    "read_only": {"zh": "只读", "en": "read only"},
    "accepted": {"zh": "受理时间", "en": "Accepted"},
    "deemed": {"zh": "视为受理", "en": "Deemed accepted"},
    "deemed_since": {
        "zh": "自收到材料 {since} 起（受理期限 {limit} 届满未作决定，《行政许可法》第三十二条）",
        "en": "from receipt of the materials, {since} (the acceptance limit passed on {limit} "
        "with no decision: Administrative Licensing Law, Art. 32)",
    },
    "deemed_status": {"zh": "视为已受理", "en": "deemed accepted"},
    "not_decided_list": {
        "zh": "jiancha 因程序缺陷暂未能判定 {n} 个案件，这些案件不发牌、不计时（运维已收到告警）：",
        "en": "jiancha could not decide {n} case(s), a defect of the program: they get no "
        "cards and no clocks for now (operators are alerted):",
    },
    "not_decided": {
        "zh": "jiancha 自 {at} 起无法判定本案（程序缺陷，不是数据问题）：本案暂不发牌、不计时，"
        "下列时限与牌可能不是最新。已报告运维；修复后自动重新判定。错误：{error}",
        "en": "jiancha has not been able to decide this case since {at} (a defect of the "
        "program, not of the data): it gets no cards and no clocks for now, and what follows "
        "may be out of date. Operators are alerted; it is decided again once fixed. "
        "Error: {error}",
    },
    "submitted": {"zh": "申报时间", "en": "Submitted"},
    "decision_deadline": {"zh": "办结期限", "en": "Decision deadline"},
    "promised": {"zh": "承诺时限", "en": "Promised limit"},
    "case_cards": {"zh": "该办件的牌", "en": "Cards of this case"},
    "done": {"zh": "已记入台账", "en": "Recorded in the ledger"},
    "signed_in_as": {"zh": "当前用户", "en": "Signed in as"},
    "error": {"zh": "出错了", "en": "Something went wrong"},
    "e400": {"zh": "请求有误", "en": "Bad request"},
    "nul": {
        "zh": "请求中含有空字符（\\0），无法处理",
        "en": "The request holds a NUL character (\\0), which cannot be stored",
    },
    "e403": {"zh": "无权访问：这不在您负责的范围内", "en": "Forbidden: not within your remit"},
    "e403_csrf": {
        "zh": "表单已失效，请返回页面刷新后重新提交",
        "en": "The form has expired: go back, reload and submit again",
    },
    "e413": {"zh": "附件过大：最大 5 MB", "en": "The attachment is too large: 5 MB at most"},
    "e415": {
        "zh": "附件须为 JPEG、PNG 图片或 PDF 文件",
        "en": "The attachment must be a JPEG or PNG picture or a PDF",
    },
    "attachment_hint": {
        "zh": "附件（可选：纸质记录照片，JPEG/PNG/PDF，最大 5 MB）",
        "en": "Attachment (optional: a photo of the paper record, JPEG/PNG/PDF, 5 MB at most)",
    },
    "reply": {"zh": "回复督办", "en": "Reply to the supervision order"},
    "reply_hint": {"zh": "督办回复（必填）", "en": "Reply (required)"},
    "reply_late": {"zh": "已超过回复期限", "en": "past the reply deadline"},
    "replied": {"zh": "已回复督办", "en": "Replied"},
    "e404": {"zh": "找不到该页面或该记录", "en": "No such page or record"},
    "e405": {"zh": "不支持该请求方式", "en": "Method not allowed"},
    "e409": {"zh": "该牌当前状态不允许此操作", "en": "The card's status does not allow that"},
    "e500": {
        "zh": "服务器内部错误，已记录。请稍后再试或联系管理员",
        "en": "Internal error, logged. Try again later or ask the administrator",
    },
    "back": {"zh": "返回", "en": "Back"},
    "clocks": {"zh": "时钟", "en": "Clocks"},
    "clock_start": {"zh": "起算", "en": "Started"},
    "clock_stop": {"zh": "停止", "en": "stopped"},
    "frozen": {"zh": "暂停中，期限待定", "en": "paused: not yet known"},
    "pauses": {"zh": "暂停（特别程序等）", "en": "Pauses"},
    "still_paused": {"zh": "尚未恢复", "en": "not resumed"},
    "allowance": {"zh": "允许时长", "en": "Allowance"},
    "notified_days": {"zh": "告知 {n} 个工作日", "en": "{n} working days notified"},
    "events": {"zh": "办件事件", "en": "Events"},
    "business_time": {"zh": "业务时间", "en": "Business time"},
    "arrival_time": {"zh": "到达时间", "en": "Arrived"},
    "payload": {"zh": "内容", "en": "Payload"},
    "more_events": {"zh": "只列出最早的 {n} 个事件", "en": "Only the first {n} events"},
    "attachment": {"zh": "附件", "en": "Attachment"},
    "admin": {"zh": "系统管理", "en": "Administration"},
    "bulletins": {"zh": "监察通报", "en": "Bulletins"},
    "users": {"zh": "用户与角色", "en": "Users and roles"},
    "add_user": {"zh": "新增用户", "en": "Add a user"},
    "display_name": {"zh": "姓名", "en": "Name"},
    "roles": {"zh": "角色", "en": "Roles"},
    "windows_hint": {"zh": "窗口（逗号分隔）", "en": "Windows (comma-separated)"},
    "departments_hint": {"zh": "部门（逗号分隔）", "en": "Departments (comma-separated)"},
    "directory_account": {
        "zh": "目录账户（LDAP 登录，无本地密码）",
        "en": "Directory account (LDAP sign-in, no local password)",
    },
    "initial_password": {
        "zh": "初始密码（至少 10 个字符）",
        "en": "Initial password (at least 10 characters)",
    },
    "local": {"zh": "本地", "en": "local"},
    "directory": {"zh": "目录（LDAP）", "en": "directory (LDAP)"},
    "disabled": {"zh": "已停用", "en": "disabled"},
    "sessions": {"zh": "在线会话", "en": "Sessions"},
    "save_scope": {"zh": "保存角色与范围", "en": "Save roles and scope"},
    "disable": {"zh": "停用", "en": "Disable"},
    "enable": {"zh": "启用", "en": "Enable"},
    "sign_out_all": {"zh": "强制下线", "en": "End sessions"},
    "done_admin": {"zh": "已保存", "en": "Saved"},
    "calendar": {"zh": "日历", "en": "Calendar"},
    "calendars": {"zh": "日历（区划→日历）", "en": "Calendars (region → calendar)"},
    "region_prefix": {"zh": "区划代码前缀", "en": "Region prefix"},
    "default_calendar": {"zh": "默认（本中心）", "en": "default (the centre's)"},
    "fingerprint": {"zh": "指纹", "en": "Fingerprint"},
    "published_through": {"zh": "节假日已公布至", "en": "Holidays published through"},
    "rules_in_force": {"zh": "生效的规则", "en": "Rules in force"},
    "ruleset": {"zh": "规则集", "en": "Rule set"},
    "enabled": {"zh": "启用", "en": "enabled"},
    "daemon_stamps": {
        "zh": "守护进程最近签发的牌所用指纹",
        "en": "Fingerprints on the daemon's latest cards",
    },
    "no_rules": {"zh": "规则未能加载", "en": "The rules could not be loaded"},
    "left_now": {"zh": "剩余工作日（实时）", "en": "Working days left (now)"},
    "left": {"zh": "剩余 {n} 个工作日", "en": "{n} working days left"},
    "over": {"zh": "已超期 {n} 个工作日", "en": "{n} working days overdue"},
    "paused": {"zh": "暂停计时中", "en": "clock paused"},
    "now": {"zh": "当前", "en": "Now"},
    "provisional_col": {"zh": "暂定", "en": "Provisional"},
    "provisional_short": {"zh": "暂定", "en": "provisional"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "export": {"zh": "导出 Excel", "en": "Export to Excel"},
    "matching": {"zh": "共 {n} 张", "en": "{n} in all"},
    "issued_col": {"zh": "签发时间", "en": "Issued"},
}

CASE_STATUS_NAMES: Final[Names] = {
    "orphan": {"zh": "未申报", "en": "not submitted"},
    "submitted": {"zh": "已申报", "en": "submitted"},
    "supplement": {"zh": "补正中", "en": "awaiting materials"},
    "accepted": {"zh": "已受理", "en": "accepted"},
    "refused": {"zh": "不予受理", "en": "refused"},
    "decided": {"zh": "已决定", "en": "decided"},
    "completed": {"zh": "已办结", "en": "completed"},
    "delivered": {"zh": "已送达", "en": "delivered"},
    "withdrawn": {"zh": "已撤回", "en": "withdrawn"},
    "terminated": {"zh": "已终止", "en": "terminated"},
}

REVOKE_CATEGORIES: Final[Names] = {
    "applicant": {"zh": "申请人原因", "en": "applicant's fault"},
    "data_error": {"zh": "数据错误", "en": "data error"},
    "calendar": {"zh": "日历更正", "en": "calendar correction"},
    "other": {"zh": "其他", "en": "other"},
}
"""Why an officer revokes a card (issue 18); the code goes into the step's detail."""


def text(key: str, lang: Lang, **values: object) -> str:
    """The words for ``key``; an unknown key reads as itself, so a typo shows, not crashes."""
    words = TEXT.get(key, {}).get(lang, key)
    return words.format(**values) if values else words
