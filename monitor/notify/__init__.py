"""The last stage: notification channels, one small module per kind behind one interface.

A channel turns a rendered ``monitor.outbox.message.Message`` into one delivery
attempt and says what happened; the outbox's sender owns retries. Channels
are built from the ``[channels.NAME]`` tables of ``jiancha.toml``
(docs/contract.md) by `build_channels`, which checks every key and reads every
secret file, so a bad channel is refused before the daemon starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from monitor.config import ConfigError, NotifyConfig
from monitor.outbox.message import Channel
from monitor.outbox.templating import TemplateProblem, check_templates
from monitor.secrets import read_secret

__all__ = ["CHANNEL_MODULES", "ChannelError", "build_channels"]


class ChannelError(ConfigError):
    """A channel's configuration is wrong (names the channel and the key)."""


CHANNEL_MODULES = {
    "webhook": ("monitor.notify.webhook", "WebhookChannel"),
    "wecom": ("monitor.notify.wecom", "WeComChannel"),
    "dingtalk": ("monitor.notify.dingtalk", "DingTalkChannel"),
    "smtp": ("monitor.notify.smtp", "SmtpChannel"),
    "alertmanager": ("monitor.notify.alertmanager", "AlertmanagerChannel"),
}


def build_channels(cfg: NotifyConfig, secrets: Callable[[str], str] = read_secret
                   ) -> dict[str, Channel]:  # fmt: skip
    try:  # the centre's own templates: refused here, before the daemon starts
        check_templates(cfg.templates)
    except TemplateProblem as exc:
        raise ConfigError(f"[notify] templates: {exc}") from None
    out: dict[str, Channel] = {}
    for name, table in cfg.channels.items():
        module, cls = CHANNEL_MODULES[str(table["kind"])]
        factory = getattr(importlib.import_module(module), cls)
        out[name] = factory.from_config(name, table, secrets)
    return out
