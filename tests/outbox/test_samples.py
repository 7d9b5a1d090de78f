"""docs/alerts.md shows what is sent, and what is sent stays within the robots' markdown."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.calendar import load_calendar
from monitor.config import NotifyConfig
from monitor.notify import dingtalk, wecom
from monitor.outbox.digest import AtRisk, render_digest
from monitor.outbox.render import render, render_group
from tests.outbox import samples
from tests.outbox.mdsubset import problems
from tests.outbox.test_hostile_values import EVIL_WINDOW, hostile_message
from tests.outbox.test_messages import cfg_of, red_card


def test_the_documented_samples_are_what_the_renderer_makes():
    doc = samples.DOC.read_text(encoding="utf-8")
    assert samples.embedded(doc) == samples.samples(), (
        "docs/alerts.md is out of date: run python -m tests.outbox.samples"
    )


def test_the_readme_shows_the_same_samples_and_links_the_notes():
    readme = samples.README.read_text(encoding="utf-8")
    assert "docs/alerts.md#samples" in readme
    assert samples.embedded(readme) == samples.samples(), (
        "README.md is out of date: run python -m tests.outbox.samples"
    )


def _blocks(doc: str, lang: str) -> list[str]:
    parts = doc.split(f"```{lang}\n")[1:]
    return [p.split("\n```")[0] for p in parts]


def test_the_documented_robot_messages_are_within_their_subsets():
    section = samples.samples()
    wx, group, dd = _blocks(section, "markdown")
    assert problems(wx, "wecom") == [] and problems(group, "wecom") == []
    assert problems(dd, "dingtalk") == []


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("level", ["blue", "yellow", "red"])
def test_every_built_in_robot_message_is_within_its_subset(level, lang):
    from dataclasses import replace

    cal = load_calendar("cn")
    cfg = cfg_of(notify=f'language = "{lang}"\n')
    for kind in ("card", "escalation"):
        base = red_card()
        facts = replace(base, card=replace(base.card, level=level))
        wx = render(facts, kind, cfg, cal, cfg.heads, "wecom")
        dd = render(facts, kind, cfg, cal, cfg.heads, "dingtalk")
        assert problems(wecom.markdown_of(wx), "wecom") == [], (kind, level)
        assert problems(dingtalk.markdown_of(dd, dd.recipients)[1], "dingtalk") == []
        assert problems(wecom.markdown_of(render_group([wx, wx], "wecom", cfg)), "wecom") == []
        group = render_group([dd, dd], "dingtalk", cfg)
        assert problems(dingtalk.markdown_of(group, group.recipients)[1], "dingtalk") == []


def test_hostile_values_stay_within_the_subsets():
    cal = load_calendar("cn")
    assert problems(wecom.markdown_of(hostile_message(cal, "wecom")), "wecom") == []
    dd = hostile_message(cal, "dingtalk")
    assert problems(dingtalk.markdown_of(dd, ["13800000000"])[1], "dingtalk") == []
    item = AtRisk("C1\n# x", EVIL_WINDOW, "d", "m", "red", -1.0, None)
    _, _, md = render_digest(EVIL_WINDOW, dt.date(2024, 2, 22), [item], NotifyConfig(), cal)
    assert problems("## " + md.replace("\n", "\n\n"), "dingtalk") == []


def test_the_checker_refuses_what_the_robots_do_not_render():
    assert problems("- a list", "wecom") and not problems("- a list", "dingtalk")
    assert problems("line one\nline two", "dingtalk")  # runs together on DingTalk
    assert problems("| a | b |", "wecom") and problems("![x](http://x/y.png)", "dingtalk")
    assert problems('<font color="red">x</font>', "wecom")  # not one of WeCom's three
    assert problems('<font color="warning">x</font>', "dingtalk")  # no HTML on DingTalk
    assert problems("<@all>", "dingtalk") and not problems("<@wangfang>", "wecom")
    assert problems("a _b_ `c`", "wecom") and problems("[x](javascript:alert(1))", "wecom")
