"""jiancha.toml as the daemon reads it: precedence, overrides, secrets, `config check`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from monitor.cli import build_parser, main
from monitor.cli.run import daemon_config
from monitor.config import BATCH_SIZE, ConfigError, load_config

ENV = {"JIANCHA_SOURCE_DSN": "postgresql://env@db/approval"}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "jiancha.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_precedence_defaults_env_file_override(tmp_path):
    # built-in defaults and the environment defaults of docs/contract.md
    cfg = load_config(write(tmp_path, ""), environ=ENV)
    assert cfg.daemon.source_dsn == "postgresql://env@db/approval"
    assert cfg.daemon.dsn is None and cfg.daemon.batch_size == BATCH_SIZE == 100_000
    assert cfg.metrics_address == "127.0.0.1:9731"
    # the file overrides the environment defaults
    path = write(tmp_path, '[database]\nsource_dsn = "postgresql://file@db/approval"\n'
                           '[daemon]\nbatch_size = 200\npoll_interval = "250ms"\n'
                           .replace("250ms", "0.25"))  # fmt: skip
    cfg = load_config(path, environ=ENV)
    assert cfg.daemon.source_dsn == "postgresql://file@db/approval"
    assert (cfg.daemon.batch_size, cfg.daemon.poll_interval) == (200, 0.25)
    # JIANCHA__SECTION__KEY overrides the file; values are TOML values or plain text
    env = {**ENV, "JIANCHA__DAEMON__BATCH_SIZE": "2000", "JIANCHA__METRICS__ADDRESS":
           "0.0.0.0:9100", "JIANCHA__NOTIFY__QUIET_HOURS__ENABLED": "false",
           "JIANCHA__NOTIFY__INSPECTORS": '["ops"]',
           "JIANCHA__CHANNELS__OPS__KIND": "webhook",
           "JIANCHA__CHANNELS__OPS__URL": "http://127.0.0.1:8080/hook"}  # fmt: skip
    cfg = load_config(path, environ=env)
    assert cfg.daemon.batch_size == 2000 and cfg.metrics_address == "0.0.0.0:9100"
    assert cfg.notify.quiet.enabled is False and cfg.notify.inspectors == ("ops",)
    assert cfg.notify.channels["ops"]["url"] == "http://127.0.0.1:8080/hook"
    assert cfg.daemon.source_dsn == "postgresql://file@db/approval"  # untouched keys stay
    assert "daemon.batch_size" in cfg.overridden
    assert cfg.fingerprint != load_config(path, environ=ENV).fingerprint


def test_command_line_overrides_everything_and_pins_what_it_set(tmp_path):
    path = write(tmp_path, '[daemon]\nbatch_size = 200\nrules = "cards-supervision"\n')
    args = build_parser().parse_args(["run", "--config", path, "--batch-size", "7"])
    old = dict(os.environ)
    os.environ.update(ENV)
    try:
        config = daemon_config(args)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert config.batch_size == 7 and config.rules_name == "cards-supervision"
    assert config.source_dsn == config.dsn == "postgresql://env@db/approval"
    assert config.pinned == frozenset({"batch_size"})  # SIGHUP keeps it; rules follow the file


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[daemon]\nbatch_size = 0\n", {}, "[daemon] batch_size"),
        ("[daemon]\nbatchsize = 10\n", {}, "'batchsize' / unknown key"),
        (
            "[log]\nlevel = 'INFO'\n\n[notify]\nlanguage = 'zh'\ngroupwindow = 5\n",
            {},
            ":6: [notify] groupwindow: 未知的配置项",
        ),  # the line it stands on
        ("", {"JIANCHA__LOG__COLOUR": "no"}, "[log]: 未知的配置项 'colour'"),  # no line: env
        ("[deamon]\n", {}, "[deamon] / unknown section"),
        ("[log]\nlevel = 'LOUD'\n", {}, "[log] level"),
        ("", {"JIANCHA__DAEMON__POLL_INTERVAL": "soon"}, "poll_interval"),
        ("", {"JIANCHA__DAEMON__": "1"}, "$JIANCHA__DAEMON__"),
        ("[metrics]\naddress = ':1'\n", {"JIANCHA__METRICS__ADDRESS__PORT": "1"}, "not a table"),
        ("[database]\nsource_dsn_file = '/nonexistent/dsn'\n", {}, "source_dsn_file"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path, text, env, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert message in str(info.value)
    if not env:
        assert str(info.value).startswith(path)


_MAIL = "[channels.mail]\nkind = 'smtp'\nhost = 'h'\nfrom = 'a@b.cn'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[reports.daily]\nat = '25:00'\n", ":2: [reports.daily] at: 时间应为 HH:MM"),
        ("[reports.weekly]\nchannels = ['mail']\n", ":2: [reports.weekly] channels: 未定义的通道"),
        (
            _MAIL + "[reports.monthly]\nchannels = ['mail']\nto = ['nobody']\n",
            ":7: [reports.monthly] to: 不是有效的邮件地址",
        ),
        ("[reports]\nformats = ['pdf', 'docx']\n", ":2: [reports] formats"),
        ("[reports.hourly]\n", "'hourly' / unknown key"),
        ("[reports.daily]\nwhen = '18:00'\n", "'when' / unknown key"),
        ("[web]\nbase_url = 'jiancha.example'\n", ":2: [web] base_url: 应为 http(s)://"),
        (
            "[daemon]\nrules = 'cards'\npoll_interval = 'fast'\n",
            ":3: [daemon] poll_interval: 时长应为",
        ),
        ("[daemon]\n\nbatch_size = -3\n", ":3: [daemon] batch_size: 应为不小于 1 的整数"),
        ("[log]\nformat = 'json'\nlevel = 'LOUD'\n", ":3: [log] level 应为"),
        ("[metrics]\naddress = 'nowhere'\n", ":2: [metrics] address 应为 HOST:PORT"),
        ("[notify]\ngive_up_after = 'soon'\n", ":2: [notify] give_up_after: 时长应为"),
        ("[notify.quiet_hours]\nend = '8 点'\n", ":2: [notify.quiet_hours] end: 时间应为"),
        # a channel without its kind: the table's header, and what is missing
        ("[channels.x]\ntype = 'wecom'\n", ":1: [channels.x] kind: 缺少通道类型"),
        ("[channels.x]\nkind = 'wechat'\n", ":2: [channels.x] kind: 无效的通道类型 'wechat'"),
        # the second of two [[routes]], its key
        (
            "[[routes]]\nchannels = []\n[[routes]]\nlevels = ['purple']\n",
            ":4: [[routes]] #2.levels",
        ),
        ("[[routes]]\nlevel = 'red'\n", ":2: [[routes]] #1 level: 未知的配置项 'level'"),
        (
            "[windows.W1]\nhead = '张三'\nchannels = ['nope']\n",
            ":3: [windows.W1] channels: 未定义的通道",
        ),
        ("[daemon\nbatch_size = 10\n", ":1: TOML 语法错误 / syntax error: Expected ']'"),
    ],
)
def test_every_bad_value_names_the_file_line_and_key(tmp_path, text, message):
    """An operator fixing jiancha.toml at 3 a.m. is sent to the line, whatever is wrong."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(path)
    assert message in str(info.value), str(info.value)


def test_report_schedules_with_their_defaults(tmp_path):
    import datetime as dt

    path = write(tmp_path, _MAIL + "[reports]\ndepartments = ['税务局']\n[reports.daily]\n"
                 "channels = ['mail']\n[reports.monthly]\nat = '09:15'\n"
                 "[web]\nbase_url = 'https://jc.example.gov.cn/'\n")  # fmt: skip
    cfg = load_config(path, environ={})
    assert [(s.kind, s.at, s.channels) for s in cfg.reports.schedules] == [
        ("daily", dt.time(18, 0), ("mail",)), ("monthly", dt.time(9, 15), ()),
    ]  # fmt: skip
    assert cfg.reports.departments == ("税务局",)
    assert cfg.web_base_url == "https://jc.example.gov.cn"
    assert load_config(write(tmp_path, ""), environ={}).reports.schedules == ()


def test_dsn_from_a_systemd_credential(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "source.dsn").write_text("postgresql://reader:pw@db/approval\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(write(tmp_path, '[database]\nsource_dsn_file = "source.dsn"\n'), environ={})
    assert cfg.daemon.source_dsn == "postgresql://reader:pw@db/approval"


def check(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["config", "check", *argv], out=out)
    return code, out.getvalue()


def test_config_check_masks_secrets_and_lists_every_problem(tmp_path, monkeypatch, capsys):
    secret = tmp_path / "ops.secret"
    secret.write_text("hunter2-hmac\n", encoding="utf-8")
    monkeypatch.setenv("JIANCHA_SOURCE_DSN", "postgresql://reader:Pa55word@db/approval")
    monkeypatch.setenv("JIANCHA_LANG", "en")
    good = (f'[channels.ops]\nkind = "webhook"\nurl = "http://127.0.0.1:8080/hook?token=t0k3n"\n'
            f'secret_file = "{secret}"\n'
            '[channels.w1]\nkind = "wecom"\nurl = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"'
            '\nkey_file = "' + str(secret) + '"\n')  # fmt: skip
    code, text = check("--config", write(tmp_path, good))
    assert code == 0, text
    assert "the configuration is valid" in text
    assert "Pa55word" not in text and "t0k3n" not in text and "hunter2" not in text
    assert 'source_dsn = "postgresql://reader:***@db/approval"' in text
    assert "[daemon]\nbatch_size = 100000" in text  # defaults are shown too
    assert 'source_statement_timeout = "60s"' in text and "keepalives_count = 6" in text
    # the printed configuration is TOML again
    import tomllib

    body = tomllib.loads(text)
    assert body["channels"]["ops"]["secret_file"] == str(secret)
    # every problem at once: a channel whose secret is missing, an unknown rule set
    bad = good.replace(f'key_file = "{secret}"', 'key_file = "/nonexistent/w1.key"')
    bad += '[daemon]\nrules = "no-such-rules"\n'
    monkeypatch.setenv("JIANCHA__NOTIFY__LANGUAGE", "en")
    code, text = check("--config", write(tmp_path, bad), "--json")
    doc = json.loads(text)
    assert code == 1 and doc["valid"] is False
    assert len(doc["problems"]) == 2
    assert any("/nonexistent/w1.key" in p for p in doc["problems"])
    assert any("no-such-rules" in p for p in doc["problems"])
    assert doc["overridden"] == ["notify.language"]
    assert doc["config"]["notify"]["language"] == "en"
    # a file that cannot be parsed: exit 1 with the file and the reason
    code = main(["config", "check", "--config", write(tmp_path, "[metrics\n")])
    assert code == 1
    assert f"{tmp_path / 'jiancha.toml'}:1: TOML 语法错误" in capsys.readouterr().err


def test_config_check_of_the_example_file(monkeypatch, tmp_path):
    """Every documented key parses; only the example's secret files are missing."""
    from monitor.paths import _PACKAGE

    example = _PACKAGE.parent / "deploy" / "jiancha.example.toml"
    monkeypatch.setenv("JIANCHA_SOURCE_DSN", "postgresql:///approval")
    code, text = check("--config", str(example), "--json")
    doc = json.loads(text)
    assert code == 1
    assert all("/etc/jiancha/" in p for p in doc["problems"]), doc["problems"]
    assert {"database", "daemon", "log", "metrics", "notify", "channels", "routes"} <= set(
        doc["config"]
    )
