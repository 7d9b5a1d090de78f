"""``jiancha rules check``: a rule file checked, and what each matter's cases get under it.

Inspectors run it before the daemon takes a changed file: an error names the
file, the line and the reason; a good file is shown as the thresholds each
matter's clocks get, in working days.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from monitor.cli._common import (
    FMT,
    UsageError,
    commands,
    dump,
    examples,
    h,
    json_option,
    rules_option,
    source_dsn_option,
    with_connection,
)
from monitor.i18n import current_lang
from monitor.rules.load import load_rules
from monitor.rules.model import CheckRule, ClockRule, RuleError, RuleSet
from monitor.vocab import LEVEL_WORDS, LEVELS, word

if TYPE_CHECKING:
    from monitor.source.contract import Matter

__all__ = ["describe", "register", "ruleset_of"]


def _level(name: str) -> str:
    return word(LEVEL_WORDS, name, current_lang())


def ruleset_of(args: argparse.Namespace) -> RuleSet:
    """The rule set ``--rules`` names; a bad file is a usage error (file, line, reason)."""
    try:
        return load_rules(args.rules)
    except RuleError as exc:
        raise UsageError(str(exc)) from None


def _limit_of(rule: ClockRule, matter: Matter) -> list[tuple[str, int]]:
    """(subject, limit) pairs the rule watches for a case of this matter."""
    if rule.limit_days is not None:
        return [("", rule.limit_days)]
    if rule.on == "decision":
        return [("", matter.promised_days)]
    if rule.on == "statutory":
        return [("", matter.statutory_days)]
    if rule.on == "step":
        return sorted((str(k), int(v)) for k, v in matter.step_days.items())
    if rule.on == "pause":
        return sorted((str(k), int(v)) for k, v in matter.pause_max_days.items())
    return [("", -1)]  # supplement: the pledge made at acceptance


def describe(rs: RuleSet, matters: dict[str, Matter], region: str | None) -> dict[str, Any]:
    """What each matter's cases get under ``rs``: levels and their thresholds in working days."""
    doc: dict[str, Any] = {
        "rules": rs.name,
        "files": [str(p) for p in rs.paths],
        "fingerprint": rs.fingerprint,
        "description": rs.description,
        "supervision_reply_days": rs.supervision_reply_days,
        "overrides": len(rs.overrides),
        "matters": [],
    }
    for code in sorted(matters):
        m = matters[code]
        entry: dict[str, Any] = {
            "code": code,
            "name": m.name,
            "department": m.department,
            "promised_days": m.promised_days,
            "statutory_days": m.statutory_days,
            "rules": [],
        }
        for rule in rs.resolve(region, m.department, code):
            if isinstance(rule, ClockRule):
                if rule.on == "immediate" and m.promised_days != 0:
                    continue
                for subject, limit in _limit_of(rule, m):
                    levels = {}
                    for lv, th in sorted(rule.thresholds.items()):
                        at = float(th.consumed_at(limit)) if limit >= 0 else None
                        levels[LEVELS[lv - 1]] = {"threshold": th.text, "working_days": at}
                    entry["rules"].append(
                        {
                            "rule": rule.rule,
                            "clock": rule.clock,
                            "name": rule.title(current_lang()),
                            "subject": subject,
                            "limit_days": limit if limit >= 0 else None,
                            "levels": levels,
                            "supervision": LEVELS[rule.supervision - 1]
                            if rule.supervision
                            else None,
                        }
                    )
            elif isinstance(rule, CheckRule):
                entry["rules"].append(
                    {
                        "rule": rule.rule,
                        "clock": rule.clock,
                        "name": rule.title(current_lang()),
                        "check": rule.check,
                        "level": LEVELS[rule.level - 1],
                        "params": dict(rule.params),
                    }
                )
        doc["matters"].append(entry)
    return doc


def cmd_rules_check(args: argparse.Namespace, out: TextIO) -> int:
    from monitor import db
    from monitor.source.catalogue import example_matters, load_matters

    rs = ruleset_of(args)
    source = args.source_dsn or db.dsn_from_env("source")
    matters = with_connection(source, load_matters) if source else example_matters()
    doc = describe(rs, matters, args.region)
    if args.json:
        dump(doc, out)
        return 0
    files = " ← ".join(doc["files"])
    out.write(
        h(
            f"规则集 {rs.name}（{rs.fingerprint}）有效：{files}\n",
            f"rule set {rs.name} ({rs.fingerprint}) is valid: {files}\n",
        )
    )
    if rs.description:
        out.write(f"  {rs.description}\n")
    out.write(
        h(
            f"  督办回复期限 {rs.supervision_reply_days} 个工作日；覆盖项 {len(rs.overrides)} 条\n",
            f"  supervision reply within {rs.supervision_reply_days} working days; "
            f"{len(rs.overrides)} overrides\n",
        )
    )
    where = (
        h("数据库事项目录", "the database's catalogue")
        if source
        else h("示例事项目录 rules/matters-example.toml", "the example catalogue")
    )
    out.write(h(f"各类办件适用的规则（{where}）：\n", f"what each case type gets ({where}):\n"))
    for m in doc["matters"]:
        limits = h(
            f"承诺 {m['promised_days']} / 法定 {m['statutory_days']} 个工作日",
            f"promised {m['promised_days']} / statutory {m['statutory_days']} wd",
        )
        out.write(f"\n{m['code']} {m['name']}（{m['department']}，{limits}）\n")
        for r in m["rules"]:
            subject = f"[{r['subject']}]" if r.get("subject") else ""
            if "levels" in r:
                parts = []
                for name, lv in r["levels"].items():
                    wd = lv["working_days"]
                    amount = "" if wd is None else h(f"={wd:g} 个工作日", f"={wd:g} wd")
                    parts.append(f"{_level(name)} {lv['threshold']}{amount}")
                sup = (
                    h(
                        f"，{_level(r['supervision'])}附督办单",
                        f", {r['supervision']} carries a supervision order",
                    )
                    if r["supervision"]
                    else ""
                )
                out.write(f"  {r['clock']:<11}{r['name']}{subject}：{'；'.join(parts)}{sup}\n")
            else:
                out.write(f"  {r['clock']:<11}{r['name']}：{_level(r['level'])}\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jiancha rules``."""
    rules = sub.add_parser("rules", help=h("牌规则", "card rules"), formatter_class=FMT)
    rsub = commands(rules, "rules_command")
    p = rsub.add_parser(
        "check",
        formatter_class=FMT,
        help=h(
            "校验规则文件并列出各类办件适用的规则",
            "validate a rule set and show what each case type gets",
        ),
        description=h(
            "校验规则文件（含其 extends 继承的文件）；有错误时给出文件、行号和原因，退出码 2。\n"
            "通过后列出每个事项的办件适用的时钟规则（阈值换算为工作日）和程序性规则。\n"
            "事项目录取自 --source-dsn / JIANCHA_SOURCE_DSN，未设置时用示例目录。",
            "Validate a rule file (and the files it extends): an error names the file, the line\n"
            "and the reason, exit status 2. Then list, for each matter, the clock rules its\n"
            "cases get (thresholds in working days) and the procedural rules. Matters come from\n"
            "--source-dsn / JIANCHA_SOURCE_DSN, else from the example catalogue.",
        ),
        epilog=examples(
            "jiancha rules check", "jiancha rules check --rules cards-supervision --json"
        ),
    )
    rules_option(p)
    source_dsn_option(p)
    p.add_argument(
        "--region",
        metavar="NAME",
        help=h("按此区域（中心）的覆盖项解析", "resolve overrides for this region"),
    )
    json_option(p)
    p.set_defaults(func=cmd_rules_check)
