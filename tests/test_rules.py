"""Rule files: the shipped sets load, overrides resolve by specificity, errors say where."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from monitor.cli import main
from monitor.rules.load import load_rules
from monitor.rules.model import CHECKS, CheckRule, ClockRule, RuleError, parse_threshold
from monitor.vocab import CLOCKS


def test_default_rules_cover_every_row_of_domain_section_4():
    rs = load_rules("cards")
    clock_rules = {r.rule: r for r in rs.rules if isinstance(r, ClockRule)}
    checks = {r.check: r for r in rs.rules if isinstance(r, CheckRule)}
    levels = {name: {lv: th.text for lv, th in r.thresholds.items()} for name, r in
              clock_rules.items()}  # fmt: skip
    assert levels["decision_time"] == {1: "50%", 2: "90% | 1wd left", 3: "deadline"}
    assert levels["statutory_time"] == {3: "deadline"}
    assert levels["acceptance_time"] == {1: "50%", 2: "90% | 1wd left", 3: "deadline"}
    assert clock_rules["acceptance_time"].limit_days == 5
    assert levels["delivery_time"] == {3: "deadline"}
    assert clock_rules["delivery_time"].limit_days == 10
    assert levels["immediate_time"] == {2: "deadline"}
    assert levels["step_time"] == {1: "deadline"}
    assert levels["pause_overlong"] == {2: "deadline"}
    assert levels["review_visit"] == {2: "deadline"} and clock_rules["review_visit"].limit_days == 1
    assert levels["review_rectify"] == {3: "deadline"}
    assert clock_rules["review_rectify"].limit_days == 15
    assert set(checks) == set(CHECKS)
    assert {c: r.level for c, r in checks.items()} == {
        "repeated_supplement_request": 2, "pause_type_not_allowed": 2,
        "irregular_extension": 3, "fee_on_free_matter": 3, "refusal_without_reason": 2,
        "supplement_after_acceptance": 2, "refused_after_acceptance": 2,
    }  # fmt: skip
    assert {r.clock for r in rs.rules} <= set(CLOCKS)
    assert clock_rules["decision_time"].supervision == 3 and rs.supervision_reply_days == 5


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("50%", 10, 5.0),
        (["90%", "1wd left"], 10, 9.0),
        (["90%", "1wd left"], 5, 4.0),
        ("3wd", 10, 3.0),
        ("deadline", 10, 10.0),
        ("deadline+5wd", 10, 15.0),
        ("1wd left", 0, 0.0),
    ],
)
def test_thresholds_in_working_days(text, limit, expected):
    assert float(parse_threshold(text).consumed_at(limit)) == expected


@pytest.mark.parametrize("bad", ["150%", "0%", "deadline-1wd", "soon", [], ["50%", "60%"]])
def test_malformed_thresholds_are_refused(bad):
    with pytest.raises(ValueError):
        parse_threshold(bad)


def test_profile_extends_and_replaces_a_rule():
    profile = load_rules("cards-supervision")
    base = load_rules("cards")
    d = profile.by_name()["decision_time"]
    assert isinstance(d, ClockRule) and d.supervision == 2
    assert float(d.thresholds[3].consumed_at(5)) == 10.0
    assert len(profile.rules) == len(base.rules)
    assert profile.fingerprint != base.fingerprint
    assert [p.name for p in profile.paths] == ["cards-supervision.toml", "cards.toml"]


def test_overrides_most_specific_wins(tmp_path: Path):
    f = tmp_path / "local.toml"
    f.write_text(
        'extends = "cards"\n'
        '[[override]]\nregions = ["R1"]\nrule = "decision_time"\nyellow = "2wd left"\n'
        '[[override]]\ndepartments = ["住建局"]\nrule = "decision_time"\nyellow = "80%"\n'
        '[[override]]\nmatters = ["M1"]\nrule = "decision_time"\nyellow = "95%"\n'
        '[[override]]\nmatters = ["M0"]\nrule = "immediate_time"\nenabled = false\n'
        '[[override]]\ndepartments = ["市场监管局"]\nrule = "fee_on_free_matter"\n'
        'level = "yellow"\n',
        encoding="utf-8",
    )
    rs = load_rules(str(f))

    def yellow(region, dept, matter):
        r = next(x for x in rs.resolve(region, dept, matter) if x.rule == "decision_time")
        return r.thresholds[2].text

    assert yellow("R9", "文旅局", "M9") == "90% | 1wd left"
    assert yellow("R1", "文旅局", "M9") == "2wd left"
    assert yellow("R1", "住建局", "M9") == "80%"
    assert yellow("R1", "住建局", "M1") == "95%"
    assert "immediate_time" not in {r.rule for r in rs.resolve(None, "市场监管局", "M0")}
    fee = next(r for r in rs.resolve(None, "市场监管局", "M2") if r.rule == "fee_on_free_matter")
    assert isinstance(fee, CheckRule) and fee.level == 2
    # unchanged keys of an overridden rule stay (the blue threshold)
    r = next(x for x in rs.resolve("R1", "住建局", "M1") if x.rule == "decision_time")
    assert r.thresholds[1].text == "50%"


BAD = [
    ('[[clock]]\nrule = "x"\nclock = "decision"\nblue = "lots"\n', 4, "lots"),
    ('[[clock]]\nrule = "x"\nclock = "lunch"\nred = "deadline"\n', 3, "lunch"),
    ('[[clock]]\nrule = "x"\nclock = "decision"\nlimit_days = 3\nred = "deadline"\n', 4,
     "limit_days"),
    ('[[clock]]\nrule = "x"\nclock = "delivery"\nred = "deadline"\n', 1, "limit_days"),
    ('description = "x"\ncolour = "red"\n', 2, "colour"),
    ('[[check]]\nrule = "x"\ncheck = "fee_on_free_matter"\nclock = "decision"\nlevel = "pink"\n',
     5, "pink"),
    ('[[check]]\nrule = "x"\ncheck = "made_up"\nclock = "decision"\nlevel = "red"\n', 3,
     "made_up"),
    ('extends = "cards"\n[[override]]\nrule = "nope"\ndepartments = ["x"]\n', 3, "nope"),
    ('extends = "cards"\n[[override]]\nrule = "decision_time"\nyellow = "80%"\n', 2, "regions"),
    ('[[clock]]\nrule = "x"\nclock = "decision"\nred = "deadline"\n[[clock]]\nrule = "x"\n'
     'clock = "statutory"\nred = "deadline"\n', 6, "x"),
    ("[[clock]\nrule = 1\n", 1, "TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "word"), BAD)
def test_bad_files_name_file_line_and_reason(tmp_path: Path, text, line, word):
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_rules(str(f))
    assert err.value.path == f and err.value.line == line, str(err.value)
    assert word in str(err.value)
    assert str(err.value).startswith(f"{f}:{line}: ")


def test_rules_check_cli(tmp_path: Path, capsys):
    out = io.StringIO()
    assert main(["--lang", "zh", "rules", "check"], out=out) == 0
    text = out.getvalue()
    assert "规则集 cards" in text and "建筑工程施工许可证核发" in text
    assert "红牌 deadline=3 个工作日，红牌附督办单" in text  # promised 3 wd
    out = io.StringIO()
    assert main(["rules", "check", "--rules", "cards-supervision", "--json"], out=out) == 0
    doc = json.loads(out.getvalue())
    m = next(x for x in doc["matters"] if x["code"] == "11370100MB28561")
    d = next(r for r in m["rules"] if r["rule"] == "decision_time")
    assert d["levels"]["red"] == {"threshold": "deadline+5wd", "working_days": 15.0}
    assert d["supervision"] == "yellow"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[clock]]\nrule = "x"\nclock = "decision"\nblue = "lots"\n', encoding="utf-8")
    assert main(["rules", "check", "--rules", str(bad)], out=io.StringIO()) == 2
    assert f"{bad}:4:" in capsys.readouterr().err


def test_threshold_arrays_broadcast():
    th = parse_threshold(["90%", "1wd left"])
    np.testing.assert_allclose(th.consumed_at(np.array([1, 5, 20])), [0.0, 4.0, 18.0])
