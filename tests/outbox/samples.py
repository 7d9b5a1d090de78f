"""The rendered samples in docs/alerts.md, made by the renderer and the channels themselves.

``python -m tests.outbox.samples`` rewrites the part of docs/alerts.md between
the markers; tests/outbox/test_samples.py fails when the document and the
renderer disagree, so the samples cannot drift from what is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tomllib
from pathlib import Path
from typing import Final

from monitor.calendar import load_calendar
from monitor.cards.store import CardRecord
from monitor.config import NotifyConfig, parse
from monitor.notify import build_channels, dingtalk, wecom
from monitor.notify.smtp import SmtpChannel
from monitor.notify.webhook import body_of
from monitor.outbox.message import Message
from monitor.outbox.render import CardFacts, render, render_group

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
README: Final = DOC.parents[1] / "README.md"  # the same samples, folded (<details>)
BEGIN: Final = "<!-- samples: made by python -m tests.outbox.samples; do not edit -->"
END: Final = "<!-- samples end -->"

CONFIG: Final = """
[windows."综合受理1号窗口"]
head = "王芳"
head_wecom_userid = "wangfang"
head_mobile = "13800000000"
channels = ["wx", "dd", "mail", "ops"]
[channels.wx]
kind = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=sample-key-0000"
[channels.dd]
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=sample-token-0000"
[channels.mail]
kind = "smtp"
host = "mail.example.gov.cn"
from = "监察系统 <jiancha@example.gov.cn>"
to = ["zhangsan@example.gov.cn"]
[channels.ops]
kind = "webhook"
url = "https://ops.example.gov.cn/hooks/jiancha"
[web]
base_url = "https://jiancha.example.gov.cn"
"""


def _z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _cards() -> list[CardFacts]:
    window = "综合受理1号窗口"
    red = CardRecord(
        1042, "370102-2024-000731", "decision", "decision_time", "red", _z("2024-02-21T16:00:00"),
        _z("2024-02-21T16:00:00"), "M1", "区住建局", window,
        {"limit_days": 5, "used_days": 5.4, "remaining_days": -0.4},
        reply_due=_z("2024-02-28T16:00:00"),
    )  # fmt: skip
    yellow = CardRecord(
        1043, "370102-2024-000745", "decision", "decision_time", "yellow",
        _z("2024-02-21T02:00:00"), _z("2024-02-22T16:00:00"), "M2", "区市场监管局", window,
        {"limit_days": 3, "used_days": 2.0, "remaining_days": 1.0},
    )  # fmt: skip
    return [CardFacts(red, "超过承诺时限", "建筑工程施工许可"),
            CardFacts(yellow, "即将超过承诺时限", "食品经营许可（新办）")]  # fmt: skip


def _keyed(m: Message, key: str) -> Message:
    from dataclasses import replace

    return replace(m, key=key)


def samples() -> str:
    """The samples section, as docs/alerts.md holds it."""
    cfg: NotifyConfig = parse(tomllib.loads(CONFIG))
    cal = load_calendar("cn")
    channels = build_channels(cfg, secrets=lambda _: "")
    red, yellow = _cards()

    def msg(facts: CardFacts, flavour: str, key: str) -> Message:
        return _keyed(render(facts, "card", cfg, cal, cfg.heads, flavour), key)

    wx = wecom.markdown_of(msg(red, "wecom", "card:1042:wx"))
    group = render_group([msg(red, "wecom", "card:1042:wx"), msg(yellow, "wecom", "card:1043:wx")],
                         "wecom", cfg)  # fmt: skip
    dd = msg(red, "dingtalk", "card:1042:dd")
    dd_title, dd_text = dingtalk.markdown_of(dd, dd.recipients)
    mail_channel = channels["mail"]
    assert isinstance(mail_channel, SmtpChannel)
    mail_msg = msg(red, "text", "card:1042:mail")
    mail = mail_channel.build(mail_msg, mail_channel.recipients_for(mail_msg))
    plain = mail.get_body(("plain",))
    assert plain is not None
    mail_text = f"Subject: {mail['Subject']}\n\n{plain.get_content().rstrip()}"
    hook = json.loads(body_of(msg(red, "text", "card:1042:ops")))
    parts = [
        BEGIN,
        "",
        "**WeCom** (`msgtype: markdown`, `markdown.content`), a red card:",
        "",
        "```markdown\n" + wx + "\n```",
        "",
        "**WeCom**, two cards for one group within the group window (one message):",
        "",
        "```markdown\n" + wecom.markdown_of(group) + "\n```",
        "",
        f"**DingTalk** (`msgtype: markdown`; `markdown.title` = `{dd_title}`, "
        f"`at.atMobiles` = `{list(dd.recipients)}`), `markdown.text`:",
        "",
        "```markdown\n" + dd_text + "\n```",
        "",
        "**E-mail** (the text part; the HTML part says the same):",
        "",
        "```text\n" + mail_text + "\n```",
        "",
        "**Webhook** (the body, indented here; sent compact, signed):",
        "",
        "```json\n" + json.dumps(hook, ensure_ascii=False, indent=2) + "\n```",
        "",
        END,
    ]
    return "\n".join(parts)


def embedded(doc: str) -> str:
    """The samples section that ``doc`` holds now."""
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[start:end]


def main() -> int:
    for path in (DOC, README):
        doc = path.read_text(encoding="utf-8")
        new = doc.replace(embedded(doc), samples())
        if new != doc:
            path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
