"""What a message says, read as a window head reads it on a phone (issue 19's findings).

One title; the matter's name; what broke; "超期 N 个工作日" or "剩余 N 个工作日",
never "剩余：-0.4"; the deadline; for a red card the supervision order's reply
deadline; a link to the card's page in the console; the head @-mentioned where
the robot can; the centre's own templates; and no staff name or id to a
third-party robot that the configuration does not name, none at all with
``redact_staff``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from monitor import db
from monitor.calendar import load_calendar
from monitor.cards.store import CardRecord
from monitor.config import ConfigError, NotifyConfig, parse
from monitor.notify import build_channels, dingtalk, wecom
from monitor.notify.alertmanager import AlertmanagerChannel
from monitor.outbox.digest import AtRisk, render_digest
from monitor.outbox.render import CardFacts, due_text, render
from tests.cardkit import z
from tests.outbox.test_outbox import carded

WINDOW = "综合受理1号窗口"
PEOPLE = f"""
[windows."{WINDOW}"]
head = "王芳"
head_wecom_userid = "wangfang"
head_mobile = "13800000000"
channels = ["wx", "dd", "mail"]
[channels.wx]
kind = "wecom"
url = "http://127.0.0.1:9/wx?key=robot-key-0123"
[channels.dd]
kind = "dingtalk"
url = "http://127.0.0.1:9/dd?access_token=robot-token-0123"
[channels.mail]
kind = "smtp"
host = "127.0.0.1"
from = "jiancha@example.gov.cn"
to = ["head@example.gov.cn"]
[web]
base_url = "https://jiancha.example.gov.cn/"
"""


@pytest.fixture(scope="module")
def cal():
    return load_calendar("cn")


def cfg_of(extra: str = "", notify: str = "") -> NotifyConfig:
    return parse(tomllib.loads(PEOPLE + extra + "[notify]\n" + notify))


def red_card(remaining: float = -0.4) -> CardFacts:
    record = CardRecord(
        7, "2024-0001", "decision", "decision_time", "red", z("2024-02-21T16:00:00"),
        z("2024-02-21T16:00:00"), "M1", "住建局", WINDOW,
        {"limit_days": 5, "used_days": 5.4, "remaining_days": remaining},
        reply_due=z("2024-02-28T16:00:00"),
    )  # fmt: skip
    return CardFacts(record, "超过承诺时限", "建筑工程施工许可")


def contents(cfg: NotifyConfig, cal, facts: CardFacts | None = None) -> dict[str, str]:
    """What each channel kind puts on the screen."""
    facts = facts or red_card()
    out = {}
    for flavour in ("text", "wecom", "dingtalk"):
        m = render(facts, "card", cfg, cal, cfg.heads, flavour)
        if flavour == "wecom":
            out[flavour] = wecom.markdown_of(m)
        elif flavour == "dingtalk":
            out[flavour] = dingtalk.markdown_of(m, m.recipients)[1]
        else:
            out[flavour] = m.text
    return out


@pytest.mark.parametrize(
    ("remaining", "zh", "en"),
    [
        (-0.4, "超期 0.4 个工作日", "overdue by 0.4 working days"),
        (-0.04, "超期 0.1 个工作日", "overdue by 0.1 working days"),  # never "超期 0"
        (-1.0, "超期 1 个工作日", "overdue by 1 working day"),
        (0.0, "剩余 0 个工作日", "0 working days left"),
        (2.56, "剩余 2.5 个工作日", "2.5 working days left"),  # never more than is left
        (None, "", ""),
    ],
)
def test_time_left_reads_as_people_say_it(remaining, zh, en):
    assert due_text(remaining, "zh") == zh and due_text(remaining, "en") == en


def test_phone_first_one_title_and_every_fact(cal):
    for flavour, text in contents(cfg_of(), cal).items():
        assert "剩余：" not in text and "-0.4" not in text, flavour
        assert text.count("【红牌】") == 1 and text.count("2024-0001") == 1, flavour
        first = text.split("\n\n" if flavour == "dingtalk" else "\n")[:2]
        assert "超期 0.4 个工作日" in first[1] and "截止 2024-02-21 24:00" in first[1], flavour
        assert "建筑工程施工许可" in text and "超过承诺时限" in text, flavour
        assert "督办回复期限" in text and "2024-02-28 24:00" in text, flavour
        assert f"{WINDOW} 窗口" not in text and WINDOW in text, flavour
        assert "https://jiancha.example.gov.cn/cards/7" in text, flavour
    assert (
        "[查看督办卡](https://jiancha.example.gov.cn/cards/7)" in contents(cfg_of(), cal)["wecom"]
    )


def test_the_window_head_is_asked_to_acknowledge_where_they_can(cal):
    """With the console's address the message sends the head to the card's page, the link
    right below it; a command (jiancha cards ack) means nothing on a phone. Without one,
    the command is what an operator runs for them."""
    linked = cfg_of()
    no_console = PEOPLE.replace('[web]\nbase_url = "https://jiancha.example.gov.cn/"\n', "")
    bare = parse(tomllib.loads(no_console + "[notify]\n"))
    assert not bare.base_url
    for flavour, text in contents(linked, cal).items():
        assert "请在督办期限内书面说明并整改（打开下方督办卡签收说明）。" in text, flavour
        assert "jiancha cards ack" not in text, flavour
    for flavour, text in contents(bare, cal).items():
        assert "整改（jiancha cards ack）。" in text and "督办卡" not in text, flavour
    english = cfg_of(notify='language = "en"')
    yellow = replace(red_card(), card=replace(red_card().card, level="yellow"))
    text = render(yellow, "card", english, cal, english.heads, "text").text
    assert "explain today (acknowledge on the card's page, linked below)." in text


def test_the_digest_neither_doubles_the_window_nor_says_minus(cal):
    item = AtRisk("2024-0001", WINDOW, "住建局", "建筑工程施工许可", "red", -0.4,
                  z("2024-02-21T16:00:00"))  # fmt: skip
    title, text, md = render_digest(WINDOW, dt.date(2024, 2, 22), [item], NotifyConfig(), cal)
    assert title.startswith(f"【每日风险提示】{WINDOW} · 2024-02-22")
    assert "超期 0.4 个工作日" in text and "-0.4" not in text and "剩余" not in text
    assert "超期 0.4 个工作日" in md


async def test_a_red_cards_notification_carries_its_reply_deadline(dsn, cal):
    cfg = cfg_of('[windows.W1]\nchannels = ["mail"]\n')
    await carded(dsn, cfg, cal, until="2024-02-23T03:00:00")
    async with await db.connect(dsn) as conn:
        rows = await conn.fetch(
            "SELECT c.level, c.reply_due, o.payload FROM jiancha.outbox o "
            "JOIN jiancha.cards c ON c.id = o.card_id WHERE o.channel = 'mail' ORDER BY c.id"
        )
    levels = {r["level"]: r for r in rows}
    assert set(levels) == {"blue", "yellow", "red"} and levels["red"]["reply_due"] is not None
    assert "督办回复期限" in levels["red"]["payload"]["text"]
    assert "督办回复期限" not in levels["yellow"]["payload"]["text"]


def test_the_head_is_mentioned_where_the_robot_can(cal):
    cfg = cfg_of()
    shown = contents(cfg, cal)
    assert shown["wecom"].splitlines()[-1] == "<@wangfang>"
    assert shown["dingtalk"].endswith("\n\n@13800000000")
    m = render(red_card(), "card", cfg, cal, cfg.heads, "dingtalk")
    assert m.recipients == ("13800000000",)  # the DingTalk channel puts it in at.atMobiles
    assert "@" not in shown["text"]


def test_redact_staff_keeps_names_and_ids_from_third_party_robots(cal):
    cfg = cfg_of(notify="redact_staff = true\n")
    shown = contents(cfg, cal)
    for flavour in ("wecom", "dingtalk"):
        text = shown[flavour]
        assert "王芳" not in text and "wangfang" not in text and "13800000000" not in text
        assert "<@" not in text and "@1" not in text
    assert "王芳" in shown["text"]  # the centre's own mail server keeps the name
    item = AtRisk("2024-0001", WINDOW, "住建局", "建筑工程施工许可", "red", -0.4, None)
    _, text, md = render_digest(WINDOW, dt.date(2024, 2, 22), [item], cfg, cal)
    assert "王芳" in text and "王芳" not in md  # the digest's markdown is the robots'
    m = render(red_card(), "card", cfg, cal, cfg.heads, "dingtalk")
    assert m.recipients == ()


def test_only_names_the_config_gives_reach_a_robot(cal):
    """A head comes only from the configuration: a window without one names nobody."""
    cfg = cfg_of()
    other = CardRecord(8, "2024-0002", "decision", "decision_time", "red",
                       z("2024-02-21T16:00:00"), None, "M1", "住建局", "W2", {})  # fmt: skip
    for flavour in ("wecom", "dingtalk"):
        m = render(CardFacts(other), "card", cfg, cal, cfg.heads, flavour)
        assert "王芳" not in (m.markdown or "") and m.recipients == ()


def test_a_centre_overrides_one_level_of_one_channel(cal, tmp_path: Path):
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "card.red.wecom.j2").write_text(
        "## 红牌 {{ case }}\n{{ due }}\n[打开]({{ link }})\n", encoding="utf-8"
    )
    cfg = cfg_of(notify=f'templates = "{tmp_path}"\n')
    red = render(red_card(), "card", cfg, cal, cfg.heads, "wecom")
    assert red.markdown == (
        "## 红牌 2024-0001\n超期 0.4 个工作日\n[打开](https://jiancha.example.gov.cn/cards/7)"
    )
    yellow = CardFacts(
        CardRecord(
            9,
            "2024-0003",
            "decision",
            "decision_time",
            "yellow",
            z("2024-02-21T16:00:00"),
            None,
            "M1",
            "住建局",
            WINDOW,
        )
    )
    assert (render(yellow, "card", cfg, cal, cfg.heads, "wecom").markdown or "").startswith(
        "## 【黄牌】"
    )  # the built-in template for every file the centre did not write


def test_a_broken_template_is_refused_at_start_with_file_and_line(tmp_path: Path):
    (tmp_path / "zh").mkdir()
    bad = tmp_path / "zh" / "card.wecom.j2"
    bad.write_text("## {{ case }}\n{{ due }\n", encoding="utf-8")
    cfg = cfg_of(notify=f'templates = "{tmp_path}"\n')
    with pytest.raises(ConfigError, match=rf"\[notify\] templates: {bad}:2: "):
        build_channels(cfg, secrets=lambda _: "x")


def test_configuration_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"\[web\] base_url"):
        parse(tomllib.loads('[web]\nbase_url = "javascript:alert(1)"\n'))
    with pytest.raises(ConfigError, match=r"\[web\].*unknown key"):
        parse(tomllib.loads('[web]\nbase = "https://x"\n'))
    with pytest.raises(ConfigError, match=r"\[notify\] templates"):
        parse(tomllib.loads('[notify]\ntemplates = "/nonexistent/jiancha"\n'))
    cfg = cfg_of()
    assert cfg.base_url == "https://jiancha.example.gov.cn" and cfg.group_window == 60.0
    assert cfg.head_ids == {f"window:{WINDOW}": {"wecom": "wangfang", "dingtalk": "13800000000"}}


def test_alertmanager_links_back_to_the_console(cal):
    cfg = cfg_of()
    m = render(red_card(), "card", cfg, cal, cfg.heads, "text")
    alert = AlertmanagerChannel(name="am", url="http://127.0.0.1:9093").alert(m)
    assert alert["generatorURL"] == "https://jiancha.example.gov.cn/cards/7"
    assert alert["labels"]["severity"] == "critical"


def test_a_card_of_a_case_deemed_accepted_says_why_its_clock_runs(cal):
    """A window head whose window never accepted the case reads why it has a decision
    card: acceptance was deemed when the acceptance limit passed (Art. 32)."""
    facts = red_card()
    detail = {**facts.card.detail, "deemed_accepted_at": "2024-02-09T16:00:00+00:00"}
    deemed = CardFacts(replace(facts.card, detail=detail), facts.rule_title, facts.matter_name)
    for flavour, text in contents(cfg_of(), cal, deemed).items():
        assert "视为受理：受理期限 2024-02-09 24:00 届满未作决定" in text, flavour
        assert "第三十二条" in text, flavour
    for flavour, text in contents(cfg_of(notify='language = "en"'), cal, deemed).items():
        assert "Deemed accepted: the acceptance limit passed on 2024-02-09 24:00" in text, flavour
    for flavour, text in contents(cfg_of(), cal).items():
        assert "视为受理" not in text, flavour  # an accepted case says nothing of it
