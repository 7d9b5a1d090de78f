"""``jiancha config check``: the configuration a daemon would run with, secrets masked.

Operators run it after an edit and before ``systemctl reload jiancha``: it
loads the file exactly as the daemon does (environment overrides included),
then also builds every channel (reading its secret files), loads the rules
and the calendar, and says what is wrong with the file and the key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TextIO

from monitor.cli._common import FMT, CommandFailed, commands, dump, h, json_option, one_line
from monitor.config import Config, ConfigError, Route, load_config
from monitor.log import redact


def _seconds(value: float | dt.timedelta) -> str:
    s = value.total_seconds() if isinstance(value, dt.timedelta) else value
    return f"{s:g}s"


def _route(r: Route) -> dict[str, Any]:
    return {"levels": sorted(r.levels), "kinds": sorted(r.kinds),
            "departments": sorted(r.departments), "windows": sorted(r.windows),
            "channels": list(r.channels), "to": list(r.to)}  # fmt: skip


def effective(cfg: Config) -> dict[str, Any]:
    """Every setting in force, defaults included, in the file's own layout (not masked)."""
    d, n = cfg.daemon, cfg.notify
    q = n.quiet
    out: dict[str, Any] = {
        "database": {"source_dsn": d.source_dsn or "", "dsn": d.dsn or d.source_dsn or "",
                     "source_statement_timeout": _seconds(d.source_statement_timeout),
                     "keepalives_idle": _seconds(d.keepalives_idle),
                     "keepalives_interval": _seconds(d.keepalives_interval),
                     "keepalives_count": d.keepalives_count},
        "daemon": {"batch_size": d.batch_size, "poll_interval": _seconds(d.poll_interval),
                   "orphan_grace": _seconds(d.orphan_grace), "rules": d.rules,
                   "calendar": d.calendar, "state_dir": d.state_dir or "",
                   "checkpoint_every": _seconds(d.checkpoint_every),
                   "stuck_after": _seconds(d.stuck_after),
                   "lease_ttl": _seconds(d.lease_ttl), "lease_renew": _seconds(d.lease_renew)},
        "log": {"level": d.log_level, "format": d.log_format},
        "metrics": {"address": cfg.metrics_address},
        "notify": {
            "language": n.language, "dashboard_url": n.dashboard_url,
            "inspectors": list(n.inspectors), "fallback": list(n.fallback),
            "give_up_after": _seconds(n.give_up_after),
            "backoff_initial": _seconds(n.backoff_initial),
            "backoff_max": _seconds(n.backoff_max),
            "resend_firing_every": _seconds(n.resend_firing_every), "lease": _seconds(n.lease),
            "quiet_hours": {"start": q.start.strftime("%H:%M"), "end": q.end.strftime("%H:%M"),
                            "levels": sorted(q.levels), "non_working_days": q.non_working_days,
                            "enabled": q.enabled},
        },
        "channels": {name: dict(table) for name, table in n.channels.items()},
        "windows": {w: {"head": n.heads.get(f"window:{w}", ""), "channels": list(c)}
                    for w, c in n.windows.items()},
        "departments": {w: {"head": n.heads.get(f"department:{w}", ""), "channels": list(c)}
                        for w, c in n.departments.items()},
        "routes": [_route(r) for r in n.routes],
    }  # fmt: skip
    for key in ("username", "password_file", "tls_cert_file", "tls_key_file"):
        value = getattr(cfg, f"metrics_{key}")
        if value is not None:
            out["metrics"][key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() and name.isascii() else (
        json.dumps(name, ensure_ascii=False))  # fmt: skip


def to_toml(doc: Mapping[str, Any]) -> str:
    """A small TOML writer for the effective configuration (tables, arrays of tables)."""
    lines: list[str] = []

    def table(path: str, body: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, Mapping)}
        inner = {k: v for k, v in body.items() if isinstance(v, Mapping)}
        if scalars or not inner:
            lines.append(f"\n[{path}]")
            lines.extend(f"{_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in inner.items():
            table(f"{path}.{_key(k)}", v)

    for section, body in doc.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"\n[[{section}]]")
                lines.extend(f"{_key(k)} = {_toml_value(v)}" for k, v in item.items())
        elif section in ("channels", "windows", "departments"):
            for name, inner in body.items():
                table(f"{section}.{_key(name)}", inner)
        else:
            table(section, body)
    return "\n".join(lines).lstrip("\n") + "\n"


def problems(cfg: Config) -> list[str]:
    """What would stop the daemon from starting with this configuration."""
    from monitor.calendar import CalendarError, load_calendar
    from monitor.notify import build_channels
    from monitor.rules.load import load_rules
    from monitor.rules.model import RuleError
    from monitor.secrets import read_secret

    found: list[str] = []
    if not cfg.daemon.source_dsn:
        found.append(
            h(
                "未设置审批数据库：[database] source_dsn 或 JIANCHA_SOURCE_DSN",
                "no approval database: [database] source_dsn or JIANCHA_SOURCE_DSN",
            )
        )
    try:
        load_rules(cfg.daemon.rules)
    except RuleError as exc:
        found.append(str(exc))
    try:
        load_calendar(cfg.daemon.calendar)
    except CalendarError as exc:
        found.append(str(exc))
    for name, table in cfg.notify.channels.items():  # each one, so all are listed
        try:
            build_channels(replace(cfg.notify, channels={name: table}))
        except (ConfigError, OSError) as exc:
            found.append(one_line(exc))
    try:  # the console's directory sign-in (jiancha web)
        from monitor.directory import ldap_settings

        ldap_settings(cfg)
    except ConfigError as exc:
        found.append(str(exc))
    for key in ("password_file", "tls_cert_file", "tls_key_file"):
        path = getattr(cfg, f"metrics_{key}")
        if path is not None:
            try:
                read_secret(path)
            except OSError as exc:
                found.append(f"[metrics] {key}: {path}: {exc.strerror}")
    return found  # fmt: skip


def cmd_config_check(args: argparse.Namespace, out: TextIO) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise CommandFailed(str(exc)) from None
    shown = redact(effective(cfg))
    wrong = problems(cfg)
    source = (
        str(cfg.path) if cfg.path else h("内置默认值（无配置文件）", "built-in defaults (no file)")
    )
    if args.json:
        doc = {"file": str(cfg.path) if cfg.path else None, "fingerprint": cfg.fingerprint,
               "overridden": list(cfg.overridden), "valid": not wrong, "problems": wrong,
               "config": shown}  # fmt: skip
        dump(doc, out)
    else:
        out.write(f"# {h('配置文件', 'file')}: {source} ({cfg.fingerprint})\n")
        if cfg.overridden:
            env = ", ".join(cfg.overridden)
            out.write(f"# {h('环境变量覆盖', 'overridden by the environment')}: {env}\n")
        out.write(f"# {h('生效配置（密钥已隐去）', 'effective configuration, secrets masked')}\n\n")
        out.write(to_toml(shown))
        if wrong:
            out.write(f"\n# {h('问题', 'problems')}:\n")
            out.writelines(f"#   - {p}\n" for p in wrong)
        else:
            out.write(f"\n# {h('配置有效', 'the configuration is valid')}\n")
    return 1 if wrong else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser(
        "config", help=h("配置文件", "the configuration file"), formatter_class=FMT
    )
    csub = commands(top, "config_command")
    p = csub.add_parser(
        "check",
        formatter_class=FMT,
        help=h(
            "校验配置并打印生效配置（密钥隐去）", "validate and print the effective configuration"
        ),
        description=h(
            "按守护进程的方式读取配置（--config，否则 JIANCHA_CONFIG，否则\n"
            "/etc/jiancha/jiancha.toml），叠加环境变量覆盖 JIANCHA__节__键=值\n"
            "（如 JIANCHA__METRICS__ADDRESS=0.0.0.0:9731），再建立各通知通道（读取密钥文件）、\n"
            "加载规则与日历。打印生效配置，密码与令牌以 *** 隐去。\n"
            "退出码：0 有效；1 有问题（逐条列出）。\n"
            "修改后先运行本命令，再 systemctl reload jiancha。",
            "Read the configuration as the daemon does (--config, else JIANCHA_CONFIG, else\n"
            "/etc/jiancha/jiancha.toml) with the environment overrides\n"
            "JIANCHA__SECTION__KEY=value (e.g. JIANCHA__METRICS__ADDRESS=0.0.0.0:9731), build\n"
            "every channel (reading its secret files), load the rules and the calendar, and\n"
            "print the effective configuration with passwords and tokens masked as ***.\n"
            "Exit status 0 when valid, 1 with the problems listed. Run it after an edit,\n"
            "before systemctl reload jiancha.",
        ),
    )
    p.add_argument("--config", metavar="PATH", help=h("配置文件", "configuration file"))
    json_option(p)
    p.set_defaults(func=cmd_config_check)
