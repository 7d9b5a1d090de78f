"""Values from the source are text in every channel, never markup (monitor.outbox.escape).

A case id, window, department, matter or step name is written by whoever can
file an application or name a counter. Rendered raw into a robot's markdown,
the case id below became a heading saying the card was revoked and a link to
a fake login page, sent with the supervision system's authority.
"""

from __future__ import annotations

import datetime as dt
import re

from monitor.cards.store import CardRecord
from monitor.config import NotifyConfig
from monitor.notify import dingtalk, wecom
from monitor.outbox.digest import AtRisk, render_digest
from monitor.outbox.render import CardFacts, render

EVIL_CASE = "C1\n# 已撤销，请忽略\n[点此登录整改系统](http://evil.example/login)"
EVIL_WINDOW = 'W1 **紧急** <font color="info">&<@all>'
EVIL_MATTER = "`建筑`许可 ![x](http://evil.example/x.png) | ~~删~~ \u2028> 引用"
EVIL_DEPT = "住建局\r\n> 请点击 https://evil.example"
EVIL_STEP = "审核](http://evil.example)_*"


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def hostile_message(cal, **cfg: object):
    card = CardRecord(
        7, EVIL_CASE, "step", "step_time", "red", z("2024-02-20T16:00:00"),
        z("2024-02-21T16:00:00"), "M1", EVIL_DEPT, EVIL_WINDOW,
        {"limit_days": 5, "used_days": 6.0, "remaining_days": -1.0, "subject": EVIL_STEP},
    )  # fmt: skip
    config = NotifyConfig(heads={f"window:{EVIL_WINDOW}": "王芳\n# 假标题"}, **cfg)  # type: ignore[arg-type]
    return render(CardFacts(card, "环节时限", EVIL_MATTER), "card", config, cal, config.heads)


def assert_inert_markdown(md: str, ours_tags: int) -> None:
    lines = md.splitlines()
    assert [ln for ln in lines if ln.lstrip().startswith("#")] == [lines[0]]  # our heading only
    assert not [ln for ln in lines if ln.lstrip().startswith(">")]  # no quote injected
    assert "](" not in md and "[" not in md.replace("【", "")  # no link, no image
    assert md.count("<") == ours_tags and "<@" not in md  # no tag, no mention of all
    assert "http://evil" not in md and "https://evil" not in md  # no auto-link
    assert "**紧急**" not in md and "~~" not in md and "`" not in md


def test_the_plain_text_keeps_every_value_on_its_own_line(cal):
    msg = hostile_message(cal)
    lines = msg.text.splitlines()
    assert len(lines) == 8  # the template's lines, none added by a value
    assert lines[1].startswith(
        "办件：C1 # 已撤销，请忽略 [点此登录整改系统](http：//evil.example/login)"
    )
    assert not re.search(r"https?://evil", msg.text)
    assert msg.title == lines[0] and "\n" not in msg.title
    assert "&lt;font" in (msg.html or "") and "<font" not in (msg.html or "")


def test_wecom_and_dingtalk_markdown_are_inert(cal):
    msg = hostile_message(cal)
    content = wecom.markdown_of(msg)
    assert_inert_markdown(content, ours_tags=2)  # <font ...>**红牌**</font>
    assert content.count(msg.title.split("】")[0]) == 1  # the title once
    assert "［点此登录整改系统］" in content  # still readable, in full-width
    title, text = dingtalk.markdown_of(msg, ["13800000000"])
    assert_inert_markdown(text, ours_tags=0)
    assert "\n# " not in title


def test_the_link_is_url_encoded(cal):
    msg = hostile_message(cal, dashboard_url="https://grafana.example/d/jiancha-window")
    link = msg.text.splitlines()[-1].split("。")[-1]
    assert link.startswith("https://grafana.example/d/jiancha-window?var-window=W1+%2A%2A")
    assert "%0A" in link and "\n" not in link and "<" not in link


def test_a_queued_row_without_markdown_is_escaped_whole(cal):
    old = hostile_message(cal)
    from dataclasses import replace

    raw = replace(old, markdown=None, text=EVIL_CASE)  # as a row queued before the fix
    assert_inert_markdown(wecom.markdown_of(raw), ours_tags=2)


def test_the_digest_is_inert_too(cal):
    item = AtRisk(EVIL_CASE, EVIL_WINDOW, EVIL_DEPT, EVIL_MATTER, "red", -1.0,
                  z("2024-02-21T16:00:00"))  # fmt: skip
    cfg = NotifyConfig(heads={f"window:{EVIL_WINDOW}": "王芳"})
    title, text, md = render_digest(EVIL_WINDOW, dt.date(2024, 2, 22), [item], cfg, cal)
    assert len(text.splitlines()) == 3 and "\n" not in title
    assert_inert_markdown("## " + md, ours_tags=0)
