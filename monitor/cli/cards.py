"""``jiancha cards``: the card ledger for the people who answer for it.

Window heads acknowledge cards with an explanation, appeal them; inspection
officers revoke them and decide appeals (docs/rule-book.md §4). Every step names who
and why, because the ledger is what an audit reads. Tables are in Chinese by
default and in Asia/Shanghai time; ``--json`` gives one document with UTC
instants for scripts.

Exit status: 0 done; 2 the request cannot be done as asked (bad arguments,
no such card, or the card's status does not allow the step; nothing was
written); 1 the database failed (unreachable, refused).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO, TypeVar

from monitor.cards.errors import CardError
from monitor.cards.lifecycle import RESULTS, act
from monitor.cards.query import CardFilter, list_cards, show_card
from monitor.cli._common import (
    FMT,
    UsageError,
    colon,
    commands,
    day_or_instant,
    db_dsn,
    dsn_option,
    dump,
    examples,
    h,
    number,
    with_connection,
)
from monitor.cli._format import display_width, format_table, jsonable, pad
from monitor.i18n import current_lang
from monitor.vocab import CLOCK_NAMES, EVENT_NAMES, STATUS_NAMES, Names, local_text
from monitor.vocab import LEVEL_WORDS as LEVEL_NAMES

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["TIMEZONE", "register"]

_T = TypeVar("_T")

TIMEZONE: Final = "Asia/Shanghai"
"""The time zone of the tables and of dates given to ``--from`` and ``--to``."""

_Names = Names

RESULT_NAMES: Final[Names] = {
    "upheld": {"zh": "维持原牌", "en": "upheld"},
    "revoked": {"zh": "撤销该牌", "en": "revoked"},
}
_FILTER_STATUS_NAMES: Final[Names] = {
    "open": {"zh": "未结", "en": "open"},
    "all": {"zh": "全部", "en": "all"},
    **STATUS_NAMES,
}


def _name(names: _Names, code: str | None) -> str:
    """The word for ``code`` in the current language; unknown codes as they are."""
    if code is None:
        return ""
    return names.get(code, {}).get(current_lang(), code)


def _local(moment: dt.datetime | None, *, seconds: bool = False, deadline: bool = False) -> str:
    """Asia/Shanghai time; a ``deadline`` at midnight is 24:00 of its day (Civil Code art. 203)."""
    return local_text(moment, TIMEZONE, deadline=deadline, seconds=seconds)


def _dump(doc: Any, out: TextIO) -> None:
    dump(jsonable(doc), out)


def _alias(names: _Names, what_zh: str, what_en: str) -> Callable[[str], str]:
    """An argparse type taking a code or its Chinese name (``red``, ``红牌``, ``红``)."""
    lookup: dict[str, str] = {}
    for code, words in names.items():
        lookup[code] = code
        lookup[words["zh"]] = code
        if words["zh"].endswith("牌"):
            lookup[words["zh"][:-1]] = code

    def convert(text: str) -> str:
        code = lookup.get(text.strip().lower()) or lookup.get(text.strip())
        if code is None:
            allowed = ", ".join(names)
            both = "、".join(f"{words['zh']}（{code}）" for code, words in names.items())
            raise argparse.ArgumentTypeError(
                h(
                    f"无效的{what_zh}：{text!r}（可选：{both}）",
                    f"invalid {what_en} {text!r} (choose from {allowed})",
                )
            )
        return code

    return convert


def _bound(text: str, *, end: bool) -> dt.datetime:
    """A date (a whole local day: --to 2024-03-04 includes it) or an ISO instant."""
    try:
        return day_or_instant(text, TIMEZONE, end=end)
    except ValueError:
        raise argparse.ArgumentTypeError(
            h(
                f"日期或时间格式无效：{text!r}（示例：2024-03-04、2024-03-04T10:00、"
                "2024-03-04T02:00Z）",
                f"invalid date or instant {text!r} (e.g. 2024-03-04, 2024-03-04T10:00, "
                "2024-03-04T02:00Z)",
            )
        ) from None


def _from(text: str) -> dt.datetime:
    return _bound(text, end=False)


def _to(text: str) -> dt.datetime:
    return _bound(text, end=True)


# --- running ---------------------------------------------------------------------------


def _run(args: argparse.Namespace, work: Callable[[Connection], Awaitable[_T]]) -> _T:
    """Run ``work`` on the jiancha database; a `CardError` becomes a usage error.

    The refusal is caught inside the trio run and handed out as a value:
    raised through trio-asyncio's nursery it would arrive wrapped in an
    exception group.
    """
    dsn = db_dsn(args.dsn, "jiancha")

    async def guarded(conn: Connection) -> _T | CardError:
        try:
            return await work(conn)
        except CardError as exc:
            return exc

    outcome = with_connection(dsn, guarded)
    if isinstance(outcome, CardError):
        raise UsageError(str(outcome))
    return outcome


# --- commands ----------------------------------------------------------------------------


def cmd_cards_list(args: argparse.Namespace, out: TextIO) -> int:
    if args.issued_from and args.issued_to and args.issued_from >= args.issued_to:
        raise UsageError(h("--from 应早于 --to", "--from must be before --to"))
    filters = CardFilter(
        status=args.status,
        level=args.level,
        department=args.department,
        window=args.window,
        case_id=args.case,
        rule=args.rule,
        clock=args.clock,
        issued_from=args.issued_from,
        issued_to=args.issued_to,
        limit=args.limit,
    )
    found = _run(args, lambda conn: list_cards(conn, filters))
    if args.json:
        _dump({"cards": found, "limit": args.limit}, out)
        return 0
    if not found:
        out.write(h("没有符合条件的牌", "no cards match") + "\n")
        return 0
    headers = [
        h("编号", "id"),
        h("案件", "case"),
        h("时钟", "clock"),
        h("规则", "rule"),
        h("等级", "level"),
        h("状态", "status"),
        h("签发时间", "issued"),
        h("部门", "department"),
        h("窗口", "window"),
    ]
    rows = [
        [
            str(c["id"]),
            c["case_id"],
            _name(CLOCK_NAMES, c["clock"]),
            c["rule"],
            _name(LEVEL_NAMES, c["level"]),
            _name(STATUS_NAMES, c["status"]),
            _local(c["issued_at"]),
            c["department"] or "",
            c["window"] or "",
        ]
        for c in found
    ]
    for line in format_table(headers, rows):
        out.write(line + "\n")
    if len(found) == args.limit:
        out.write(
            h(
                f"（只列出最新的 {args.limit} 张，可用 --limit 调整）",
                f"(only the newest {args.limit} are listed; see --limit)",
            )
            + "\n"
        )
    return 0


def _event_name(event: Mapping[str, Any]) -> str:
    name = _name(EVENT_NAMES, event["kind"])
    result = (event["detail"] or {}).get("result") if event["kind"] == "appeal_decided" else None
    if result is None:
        return name
    return f"{name}{h('（', ' (')}{_name(RESULT_NAMES, result)}{h('）', ')')}"


def cmd_cards_show(args: argparse.Namespace, out: TextIO) -> int:
    card, events = _run(args, lambda conn: show_card(conn, args.card_id))
    if args.json:
        _dump({"card": card, "events": events}, out)
        return 0
    title = h(f"牌 {card['id']}", f"card {card['id']}")
    level = _name(LEVEL_NAMES, card["level"])
    out.write(f"{title}{colon()}{level} · {_name(STATUS_NAMES, card['status'])}\n")
    clock = _name(CLOCK_NAMES, card["clock"])
    if clock != card["clock"]:
        clock += h(f"（{card['clock']}）", f" ({card['clock']})")
    fields: list[tuple[str, str]] = [
        (h("案件", "case"), card["case_id"]),
        (h("事项", "matter"), card["matter"] or ""),
        (h("时钟", "clock"), clock),
        (h("规则", "rule"), card["rule"]),
        (h("部门", "department"), card["department"] or ""),
        (h("窗口", "window"), card["window"] or ""),
        (h("区域", "region"), card["region"] or ""),
        (h("签发时间", "issued"), _local(card["issued_at"])),
        (h("期限", "deadline"), _local(card["deadline"], deadline=True)),
        (h("督办回复期限", "reply due"), _local(card["reply_due"], deadline=True)),
        (h("督办已回复", "replied"), _local(card["replied_at"])),
        (h("逾期上报", "escalated"), _local(card["escalated_at"])),
        (h("规则版本", "ruleset"), card["ruleset"]),
        (h("日历版本", "calendar"), card["calendar"]),
    ]
    if card["detail"]:
        detail = json.dumps(card["detail"], ensure_ascii=False, sort_keys=True)
        fields.append((h("详情", "detail"), detail))
    shown = [(k, v) for k, v in fields if v]
    width = max(display_width(k) for k, _ in shown)
    for key, value in shown:
        out.write(f"  {pad(key, width)}  {value}\n")
    out.write(h("过程：", "timeline:") + "\n")
    headers = [h("时间", "at"), h("事件", "event"), h("操作人", "by"),
               h("数据库角色", "db role"), h("原因", "reason")]  # fmt: skip
    rows = [
        [_local(e["at"], seconds=True), _event_name(e), e["actor"], e["db_role"] or "",
         e["reason"]]
        for e in events
    ]  # fmt: skip
    for line in format_table(headers, rows):
        out.write(f"  {line}\n")
    return 0


def _os_user() -> str:
    """Who is logged in on the server: recorded beside ``--by``, which is only what was typed."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def cmd_cards_act(args: argparse.Namespace, out: TextIO) -> int:
    now = dt.datetime.now(dt.UTC)
    result = getattr(args, "result", None)
    os_user = _os_user()
    done = _run(
        args,
        lambda conn: act(conn, args.card_id, args.action, args.by, args.reason, now, result,
                         channel="cli", extra={"os_user": os_user}),
    )  # fmt: skip
    if args.json:
        _dump(
            {"card": done.card, "previous_status": done.previous_status, "events": done.events},
            out,
        )
        return 0
    card = done.card
    before = _name(STATUS_NAMES, done.previous_status)
    after = _name(STATUS_NAMES, card["status"])
    line = h(f"牌 {card['id']}：{before} → {after}", f"card {card['id']}: {before} -> {after}")
    if result is not None:
        line += h(f"（{_name(RESULT_NAMES, result)}）", f" ({_name(RESULT_NAMES, result)})")
    if any((e["detail"] or {}).get("replied_to_order") for e in done.events):
        when = _local(card["replied_at"])
        line += h(f"；已回复督办（{when}）", f"; supervision order answered at {when}")
    out.write(line + "\n")
    out.write(h(f"（台账记录：操作人 {args.by}，经命令行，操作系统用户 {os_user or '未知'}）",
                f"(recorded: by {args.by}, via the command line, OS user {os_user or 'unknown'})")
              + "\n")  # fmt: skip
    return 0


# --- parser ------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    dsn_option(p)
    p.add_argument(
        "--json", action="store_true", help=h("输出 JSON（时间为 UTC）", "print JSON (UTC)")
    )


def _card_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "card_id",
        type=number(int, 1, h("牌的编号", "a card id")),
        metavar="ID",
        help=h("牌的编号", "card id"),
    )


def _who_why(p: argparse.ArgumentParser, reason_zh: str, reason_en: str) -> None:
    p.add_argument(
        "--by",
        required=True,
        metavar="NAME",
        help=h("操作人姓名或工号（记入台账）", "who acts, name or staff number (recorded)"),
    )
    p.add_argument("--reason", required=True, metavar="TEXT", help=h(reason_zh, reason_en))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha cards`` and its subcommands to the main parser's subcommands."""
    status_codes = ", ".join(_FILTER_STATUS_NAMES)
    parent = sub.add_parser(
        "cards",
        help=h("红黄蓝牌台账：查询、签收、申诉、裁决、撤销", "the card ledger"),
        formatter_class=FMT,
        description=h(
            "红黄蓝牌台账。每一步（签收说明、申诉、裁决、撤销）都记入只增不改的台账，\n"
            "写明操作人与原因。状态：已发牌 → 已签收 → 已销号；未结的牌可申诉（申诉中），\n"
            "裁决维持则回到申诉前的状态，裁决撤销或由监察人员直接撤销则为已撤销。\n"
            "已销号、已撤销的牌不能再做任何操作。\n"
            "退出码：0 成功；2 参数有误、牌不存在或当前状态不允许该操作（未写入任何内容）；\n"
            "1 数据库错误。",
            "The card ledger. Every step (acknowledge, appeal, decide, revoke) is appended\n"
            "to an append-only ledger with who and why. Status: issued -> acknowledged ->\n"
            "closed; an open card may be appealed, an upheld appeal returns it to where it\n"
            "was, a revoking decision or an officer's revocation revokes it. Closed and\n"
            "revoked cards allow nothing more.\n"
            "Exit status: 0 done; 2 bad arguments, no such card, or the status does not\n"
            "allow the step (nothing written); 1 database error.",
        ),
        epilog=examples(
            (
                "jiancha cards list --level 红牌 --department 住建局",
                "jiancha cards list --level red --department 住建局",
            ),
            "jiancha cards list --status all --from 2024-03-01 --to 2024-03-31 --json",
            "jiancha cards show 12",
            (
                'jiancha cards ack 12 --by 王芳 --reason "申请人补充材料延误，已电话告知"',
                'jiancha cards ack 12 --by "Wang Fang" --reason "applicant was late; phoned"',
            ),
            (
                'jiancha cards appeal 12 --by 王芳 --reason "系统未计入现场踏勘时间"',
                'jiancha cards appeal 12 --by "Wang Fang" --reason "site survey not paused"',
            ),
            (
                'jiancha cards decide 12 --result revoked --by 李明 --reason "踏勘时间应扣除"',
                'jiancha cards decide 12 --result revoked --by "Li Ming" --reason "survey time"',
            ),
            (
                'jiancha cards revoke 15 --by 李明 --reason "数据录入错误"',
                'jiancha cards revoke 15 --by "Li Ming" --reason "data entry error"',
            ),
        ),
    )
    csub = commands(parent, "cards_command")

    p = csub.add_parser(
        "list",
        help=h("列出牌（默认未结的，最新的在前）", "list cards (open ones, newest first)"),
        formatter_class=FMT,
        description=h(
            "按条件列出牌，最新签发的在前。时间为北京时间（Asia/Shanghai）。\n"
            "--from/--to 可写日期（整天，--to 当天计入）或时间（--to 不含该时刻）。",
            "List cards, newest issue first, times in Asia/Shanghai. --from/--to take a\n"
            "date (a whole day; --to includes its day) or an instant (--to excludes it).",
        ),
    )
    p.add_argument(
        "--status",
        type=_alias(_FILTER_STATUS_NAMES, "状态", "status"),
        default="open",
        metavar="STATUS",
        help=h(
            f"状态（默认 open：已发牌、已签收、申诉中；all 为全部）：{status_codes}",
            f"status (default open: issued, acknowledged, appealed; all): {status_codes}",
        ),
    )
    p.add_argument(
        "--level",
        type=_alias(LEVEL_NAMES, "等级", "level"),
        metavar="LEVEL",
        help=h("等级：blue/蓝牌, yellow/黄牌, red/红牌", "level: blue, yellow, red"),
    )
    p.add_argument("--department", metavar="NAME", help=h("部门", "department"))
    p.add_argument("--window", metavar="NAME", help=h("窗口", "window"))
    p.add_argument("--case", metavar="CASE_ID", help=h("案件编号", "case id"))
    p.add_argument("--rule", metavar="RULE", help=h("规则", "rule"))
    p.add_argument(
        "--clock",
        type=_alias(CLOCK_NAMES, "时钟", "clock"),
        metavar="CLOCK",
        help=h(
            "时钟：" + ", ".join(f"{k}/{v['zh']}" for k, v in CLOCK_NAMES.items()),
            "clock: " + ", ".join(CLOCK_NAMES),
        ),
    )
    p.add_argument(
        "--from",
        dest="issued_from",
        type=_from,
        metavar="WHEN",
        help=h("签发时间不早于（日期或时间）", "issued at or after (date or instant)"),
    )
    p.add_argument(
        "--to",
        dest="issued_to",
        type=_to,
        metavar="WHEN",
        help=h("签发时间早于（日期则含当天）", "issued before (a date includes its day)"),
    )
    p.add_argument(
        "--limit",
        type=number(int, 1, "--limit"),
        default=100,
        metavar="N",
        help=h("最多列出几张（默认 100）", "at most this many (default 100)"),
    )
    _common(p)
    p.set_defaults(func=cmd_cards_list)

    p = csub.add_parser(
        "show",
        help=h("查看一张牌及其全部过程", "show a card and its timeline"),
        description=h(
            "显示牌的内容与台账中的每一步：时间、事件、操作人、原因。",
            "Show a card and every step in its ledger: when, what, who, why.",
        ),
    )
    _card_arg(p)
    _common(p)
    p.set_defaults(func=cmd_cards_show)

    p = csub.add_parser(
        "ack",
        help=h("窗口负责人签收并说明", "acknowledge with an explanation (window head)"),
        description=h(
            "窗口负责人签收已发的牌并写明情况说明；红牌的督办令同时记为已回复。",
            "The window head acknowledges an issued card with an explanation; for a red\n"
            "card this also answers its supervision order.",
        ),
    )
    _card_arg(p)
    _who_why(p, "情况说明（必填）", "the explanation (required)")
    _common(p)
    p.set_defaults(func=cmd_cards_act, action="ack")

    p = csub.add_parser(
        "appeal",
        help=h("对牌提出申诉", "appeal a card"),
        description=h(
            "对已发牌或已签收的牌提出申诉，由监察人员以 decide 裁决。",
            "Appeal an issued or acknowledged card; an inspection officer decides it.",
        ),
    )
    _card_arg(p)
    _who_why(p, "申诉理由（必填）", "grounds of the appeal (required)")
    _common(p)
    p.set_defaults(func=cmd_cards_act, action="appeal")

    p = csub.add_parser(
        "decide",
        help=h("裁决申诉（监察人员）", "decide an appeal (inspection officer)"),
        description=h(
            "upheld：维持原牌，回到申诉前的状态；revoked：撤销该牌。",
            "upheld: the card stands and returns to where it was; revoked: the card is revoked.",
        ),
    )
    _card_arg(p)
    p.add_argument(
        "--result",
        required=True,
        choices=RESULTS,
        help=h("裁决结果：upheld 维持、revoked 撤销", "the decision: upheld or revoked"),
    )
    _who_why(p, "裁决理由（必填）", "grounds of the decision (required)")
    _common(p)
    p.set_defaults(func=cmd_cards_act, action="decide")

    p = csub.add_parser(
        "revoke",
        help=h("撤销牌（监察人员）", "revoke a card (inspection officer)"),
        description=h(
            "监察人员撤销未结的牌，须写明原因（如申请人原因、数据错误、日历更正）。",
            "An inspection officer revokes an open card, with a reason (the applicant's\n"
            "fault, a data error, a calendar correction).",
        ),
    )
    _card_arg(p)
    _who_why(p, "撤销原因（必填）", "why it is revoked (required)")
    _common(p)
    p.set_defaults(func=cmd_cards_act, action="revoke")
