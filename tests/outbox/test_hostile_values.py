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


def hostile_message(cal, flavour: str = "text", **cfg: object):
    card = CardRecord(
        7, EVIL_CASE, "step", "step_time", "red", z("2024-02-20T16:00:00"),
        z("2024-02-21T16:00:00"), "M1", EVIL_DEPT, EVIL_WINDOW,
        {"limit_days": 5, "used_days": 6.0, "remaining_days": -1.0, "subject": EVIL_STEP},
    )  # fmt: skip
    config = NotifyConfig(heads={f"window:{EVIL_WINDOW}": "王芳\n# 假标题"}, **cfg)  # type: ignore[arg-type]
    facts = CardFacts(card, "环节时限", EVIL_MATTER)
    return render(facts, "card", config, cal, config.heads, flavour)


def assert_inert_markdown(md: str, ours_tags: int, ours_links: int = 0) -> None:
    lines = md.splitlines()
    assert [ln for ln in lines if ln.lstrip().startswith("#")] == [lines[0]]  # our heading only
    assert not [ln for ln in lines if ln.lstrip().startswith(">")]  # no quote injected
    assert md.count("](") == ours_links  # no link, no image but ours
    assert md.count("[") == ours_links
    assert md.count("<") == ours_tags and "<@all" not in md  # no tag, no mention of all
    assert "http://evil" not in md and "https://evil" not in md  # no auto-link
    assert "**紧急**" not in md and "~~" not in md and "`" not in md


def test_the_plain_text_keeps_every_value_on_its_own_line(cal):
    msg = hostile_message(cal)
    lines = msg.text.splitlines()
    # the template's lines, none added by a value
    heads = ["【红牌】", "超期 1 个工作日，截止", "事项：", "问题：", "窗口：", "违规："]
    assert [next(h for h in heads if ln.startswith(h)) for ln in lines] == heads
    assert lines[0].startswith(
        "【红牌】C1 # 已撤销，请忽略 [点此登录整改系统](http：//evil.example/login)"
    )
    assert not re.search(r"https?://evil", msg.text)
    assert msg.title == lines[0] and "\n" not in msg.title
    assert "&lt;font" in (msg.html or "") and "<font" not in (msg.html or "")


def test_wecom_and_dingtalk_markdown_are_inert(cal):
    msg = hostile_message(cal, "wecom")
    content = wecom.markdown_of(msg)
    assert_inert_markdown(content, ours_tags=2)  # <font ...>**超期 1 个工作日**</font>
    assert content.count("【红牌】") == 1  # the title once
    assert "［点此登录整改系统］" in content  # still readable, in full-width
    msg = hostile_message(cal, "dingtalk")
    title, text = dingtalk.markdown_of(msg, ["13800000000"])
    assert_inert_markdown(text, ours_tags=0)
    assert "\n# " not in title and text.count("【红牌】") == 1


def test_the_link_is_the_console_card_page(cal):
    for flavour in ("text", "wecom", "dingtalk"):
        msg = hostile_message(cal, flavour, base_url="https://jiancha.example.gov.cn")
        assert msg.fields["link"] == "https://jiancha.example.gov.cn/cards/7"
        assert msg.text.splitlines()[-1] == "查看督办卡：https://jiancha.example.gov.cn/cards/7"
    content = wecom.markdown_of(hostile_message(cal, "wecom", base_url="https://j.example"))
    assert content.splitlines()[-1] == "[查看督办卡](https://j.example/cards/7)"
    assert_inert_markdown(content, ours_tags=2, ours_links=1)


def test_a_centres_own_template_is_escaped_too(cal, tmp_path):
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "card.wecom.j2").write_text(
        "## 新{{ case }}\n{{ matter }} {{ window }}{{ department|md }}\n{{ link }}\n",
        encoding="utf-8")  # fmt: skip
    msg = hostile_message(cal, "wecom", templates=str(tmp_path))
    content = wecom.markdown_of(msg)
    assert content.startswith("## 新C1 ＃ 已撤销")
    assert_inert_markdown(content, ours_tags=0)
    assert hostile_message(cal, "dingtalk", templates=str(tmp_path)).markdown.startswith(
        "## 【红牌】"
    )  # only the file the centre wrote is replaced


def test_a_queued_row_without_markdown_is_escaped_whole(cal):
    old = hostile_message(cal)
    from dataclasses import replace

    raw = replace(old, markdown=None, text=EVIL_CASE, flavour=None)  # a row queued before
    assert_inert_markdown(wecom.markdown_of(raw), ours_tags=2)


def test_the_digest_is_inert_too(cal):
    item = AtRisk(EVIL_CASE, EVIL_WINDOW, EVIL_DEPT, EVIL_MATTER, "red", -1.0,
                  z("2024-02-21T16:00:00"))  # fmt: skip
    cfg = NotifyConfig(heads={f"window:{EVIL_WINDOW}": "王芳"})
    title, text, md = render_digest(EVIL_WINDOW, dt.date(2024, 2, 22), [item], cfg, cal)
    assert len(text.splitlines()) == 3 and "\n" not in title
    assert_inert_markdown("## " + md, ours_tags=0)
