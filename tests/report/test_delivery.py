"""Bulletins delivered through the outbox to a real SMTP server and real robot receivers.

A daily bulletin of a simulated day is built, stored and queued by the
daemon's ``Publisher`` for three channels (e-mail, WeCom, DingTalk), and the
outbox ``Sender`` delivers it: the e-mail (aiosmtpd) carries the summary
with the PDF and the workbook attached, the robots (a real HTTP receiver)
get the summary in markdown with a link to the bulletin in the web console.
Running the schedule's work again, from a new publisher (a restart), or as
a catch-up, queues nothing more and nothing is sent twice.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import trio

from monitor import db
from monitor.config import load_config
from monitor.notify import build_channels
from monitor.outbox.send import Sender
from monitor.report.deliver import Publisher
from monitor.report.period import parse_period
from tests import httpkit
from tests.notify.test_smtp import _Handler, _parse, _start
from tests.report.history import build_days

receiver = httpkit.receiver
FIRST = dt.date(2024, 3, 5)
UNTIL = dt.datetime(2024, 3, 7, 12, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 3, 6, 10, 0, tzinfo=dt.UTC)  # 18:00 in Beijing
BASE = "https://jiancha.example.gov.cn"


@pytest.fixture(scope="module")
def days(pg_dsn: str, cal: Any, rules: Any) -> str:
    async def run() -> None:
        async with db.open_loop():
            await build_days(pg_dsn, cal, rules, FIRST, 3, UNTIL)

    trio.run(run)
    return pg_dsn


def _config(tmp_path: Path, smtp_port: int, robots: str) -> Any:
    path = tmp_path / "jiancha.toml"
    path.write_text(f"""
[channels.mail]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "电子监察 <jiancha@example.gov.cn>"
to = ["duty@example.gov.cn"]

[channels.wx]
kind = "wecom"
url = "{robots}/wecom?key=k1"

[channels.dd]
kind = "dingtalk"
url = "{robots}/dingtalk?access_token=t1"

[reports]
centre = "县政务服务中心"

[reports.daily]
at = "18:00"
channels = ["mail", "wx", "dd"]
to = ["leader@example.gov.cn"]

[web]
base_url = "{BASE}/"
""", encoding="utf-8")  # fmt: skip
    return load_config(str(path), environ={})


async def test_mail_with_documents_and_robots_with_a_link_exactly_once(
    days: str, cal: Any, rules: Any, receiver: httpkit.Receiver, tmp_path: Path
) -> None:
    handler = _Handler()
    smtp = _start(handler)
    try:
        async with db.open_loop():
            await _deliver(days, cal, rules, receiver, handler, smtp.port, tmp_path)
    finally:
        smtp.stop()


async def _deliver(dsn: str, cal: Any, rules: Any, receiver: httpkit.Receiver,
                   handler: _Handler, port: int, tmp_path: Path) -> None:  # fmt: skip
    cfg = _config(tmp_path, port, receiver.base_url)
    assert cfg.web_base_url == BASE
    (schedule,) = cfg.reports.schedules
    period = parse_period("daily", "2024-03-06")

    def publisher() -> Publisher:
        return Publisher(dsn, cfg.reports, cfg.notify, cal, rules, base_url=cfg.web_base_url)

    first = publisher()
    await first(schedule, period, NOW, False)
    assert first.queued == 3
    sender = Sender(dsn, build_channels(cfg.notify), cfg.notify, clock=lambda: NOW)
    async with await db.connect(dsn) as conn:
        assert await sender.step(conn) == 3
        report_id = await conn.fetchval("SELECT id FROM jiancha.reports")
        rows = await conn.fetch("SELECT key, state FROM jiancha.outbox ORDER BY key")
    assert [(r["key"], r["state"]) for r in rows] == [
        (f"report:daily:2024-03-06:-:v1:{c}", "delivered") for c in ("dd", "mail", "wx")
    ]
    link = f"{BASE}/reports/{report_id}"

    (envelope,) = handler.envelopes
    assert sorted(envelope.rcpt_tos) == ["duty@example.gov.cn", "leader@example.gov.cn"]
    mail = _parse(envelope)
    assert str(mail["Subject"]) == "县政务服务中心 2024年3月6日 政务服务电子监察日监测"
    body = mail.get_body(("plain",))
    assert body is not None and link in body.get_content() and "受理" in body.get_content()
    files = {a.get_filename(): a.get_payload(decode=True) for a in mail.iter_attachments()}
    assert set(files) == {"jiancha-daily-2024-03-06.pdf", "jiancha-daily-2024-03-06.xlsx"}
    assert files["jiancha-daily-2024-03-06.pdf"].startswith(b"%PDF")
    sheets = zipfile.ZipFile(io.BytesIO(files["jiancha-daily-2024-03-06.xlsx"])).namelist()
    assert "xl/workbook.xml" in sheets

    by_path = {r.path: r.json() for r in receiver.requests}
    assert set(by_path) == {"/wecom", "/dingtalk"}
    wecom = by_path["/wecom"]["markdown"]["content"]
    assert "政务服务电子监察日监测" in wecom and f"]({link})" in wecom
    ding = by_path["/dingtalk"]["markdown"]
    assert f"]({link})" in ding["text"]

    # The schedule again, a restarted daemon, a new term's catch-up: nothing more sent.
    again = publisher()
    await again(schedule, period, NOW + dt.timedelta(hours=1), False)
    await publisher()(schedule, period, NOW + dt.timedelta(days=1), True)
    assert again.queued == 0
    async with await db.connect(dsn) as conn:
        assert await sender.step(conn) == 0
        assert await conn.fetchval("SELECT count(*) FROM jiancha.outbox") == 3
        assert await conn.fetchval("SELECT count(*) FROM jiancha.reports") == 1
    assert len(handler.envelopes) == 1 and len(receiver.requests) == 2
