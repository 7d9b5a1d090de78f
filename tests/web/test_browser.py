"""The console in a real browser: Debian's headless Chromium, driven by Selenium.

A window head opens a card at phone width (390×844) from its link, signs in,
acknowledges it with an explanation and sees the ledger row with their name
and role; an officer's list at desktop width (1440×900). Screenshots are saved
in the test's directory (and in ``JIANCHA_SCREENSHOTS`` when set) to be looked at.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from monitor import db
from tests.web.ldapkit import PEOPLE, Slapd, running_slapd
from tests.web.webkit import DAY, PASSWORD, SECRET, T0

LDAP_PASSWORD = "directory password 1"

_CARD = """
INSERT INTO jiancha.cards (case_id, clock, rule, level, issued_at, recorded_at, deadline,
    matter, department, "window", region, ruleset, calendar, detail, status, updated_at)
VALUES ($1, 'decision', 'decision_time', $2, $3, $3, $4, $5, '住建局', $6, 'R1', 'rules-abc',
    'cn-2024', $7::jsonb, 'issued', $3)
RETURNING id
"""


def _seed(dsn: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await conn.execute("DELETE FROM jiancha.users")
            from monitor.accounts import hash_password

            for name, roles, windows, display, hashed in (
                ("wangf", ["window_head"], ["W1"], "王芳", hash_password(PASSWORD)),
                ("lim", ["officer"], [], "李明", hash_password(PASSWORD)),
                ("chenj", ["officer"], [], "陈静", None),  # a directory account: LDAP
            ):
                await conn.execute(
                    "INSERT INTO jiancha.users (username, display_name, password_hash, roles,"
                    " windows) VALUES ($1, $2, $3, $4, $5)",
                    name,
                    display,
                    hashed,
                    roles,
                    windows,
                )
            detail = '{"limit_days": 20, "used_days": 21.5, "remaining_days": -1.5}'
            ids = []
            for case, level, window, matter, deadline, facts in (
                (
                    "2024-0304-000123",
                    "red",
                    "W1",
                    "建设工程规划许可证核发（含临时建设工程）",
                    T0 + 3 * DAY,
                    detail,
                ),
                (
                    "2024-0304-000124",
                    "yellow",
                    "W1",
                    "建筑工程施工许可",
                    T0 + 6 * DAY,
                    '{"limit_days": 5, "used_days": 4, "remaining_days": 1, "provisional": true}',
                ),
                (
                    "2024-0304-000125",
                    "blue",
                    "W2",
                    "食品经营许可",
                    T0 + 9 * DAY,
                    '{"limit_days": 10, "used_days": 6, "remaining_days": 4}',
                ),
            ):
                card_id = await conn.fetchval(
                    _CARD, case, level, T0, deadline, matter, window, facts
                )
                await conn.execute(
                    "INSERT INTO jiancha.card_events (card_id, kind, at, actor)"
                    " VALUES ($1, 'issued', $2, 'jiancha')",
                    card_id,
                    T0,
                )
                ids.append(card_id)
            return int(ids[0])
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd"), {"chenj": ("陈静", LDAP_PASSWORD)}) as s:
        yield s


@pytest.fixture
def console(sync_dsn: str, tmp_path: Path, slapd: Slapd) -> Iterator[tuple[str, int]]:
    """``jiancha web`` on a free port over the test database: (base URL, the red card's id).

    Its jiancha.toml points ``[web.ldap]`` at the test's slapd.
    """
    card = _seed(sync_dsn)
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    config = tmp_path / "jiancha.toml"
    config.write_text(f"[web.ldap]\nurl = '{slapd.url}'\nbind_dn = 'uid={{username}},{PEOPLE}'\n")
    env = {**os.environ, db.DSN_ENV: sync_dsn, "JIANCHA_LANG": "zh",
           "JIANCHA_CONFIG": str(config)}  # fmt: skip
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "web",
            "--address",
            "127.0.0.1:0",
            "--secret-file",
            str(secret),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "http://127.0.0.1:" in first, first + (proc.stderr.read() if proc.stderr else "")
        yield first.split("：", 1)[1].split()[0], card
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    assert chromium and driver, (
        "chromium, chromium-driver missing: deploy/dev-deps.sh installs them"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--lang=zh-CN",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _arrive(browser: webdriver.Chrome, at: Callable[[str], bool]) -> None:
    """Wait until the browser is at an address ``at`` accepts and its page has loaded: the
    address changes when the navigation commits, before the new document is parsed."""
    WebDriverWait(browser, 10).until(
        lambda b: at(b.current_url) and b.execute_script("return document.readyState") == "complete"
    )


def _shot(chrome: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot: the window grows to the page's height first."""
    width = chrome.get_window_size()["width"]
    height = chrome.execute_script("return document.documentElement.scrollHeight")
    chrome.set_window_size(width, max(int(height) + 140, 300))
    path = tmp_path / name
    assert chrome.save_screenshot(str(path)), path
    extra = os.environ.get("JIANCHA_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def test_window_head_acknowledges_on_a_phone(
    console: tuple[str, int], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    base, card = console
    browser.set_window_size(390, 844)
    browser.get(f"{base}/cards/{card}")  # the alert's link: sign in first, then the card
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("wangf")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    _arrive(browser, lambda u: u.endswith(f"/cards/{card}"))
    body = browser.find_element(By.TAG_NAME, "body").text
    for text in (
        "红牌",
        "已发牌",
        "建设工程规划许可证核发",
        "触发规则：承诺时限",
        "签发时已超期",
        "1.5 个工作日",
    ):
        assert text in body, text
    # nothing wider than the phone: no sideways scrolling
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    _shot(browser, tmp_path, "card-390.png")

    browser.set_window_size(390, 844)
    form = browser.find_element(By.CSS_SELECTOR, f"form[action='/cards/{card}/ack']")
    form.find_element(By.NAME, "reason").send_keys("专家论证中，已督促经办人")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CLASS_NAME, "notice"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "已记入台账" in body and "已签收" in body
    assert "王芳（窗口负责人）" in body and "专家论证中，已督促经办人" in body
    _shot(browser, tmp_path, "card-390-acknowledged.png")


def test_officer_list_on_a_desktop(
    console: tuple[str, int], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    base, _ = console
    browser.set_window_size(1440, 900)
    browser.get(f"{base}/login")
    browser.find_element(By.NAME, "username").send_keys("lim")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".rows li"))
    rows = browser.find_elements(By.CSS_SELECTOR, ".rows li")
    assert [r.find_element(By.CLASS_NAME, "badge").text for r in rows] == ["红牌", "黄牌", "蓝牌"]
    _shot(browser, tmp_path, "cards-1440.png")


def test_officer_signs_in_through_ldap(
    console: tuple[str, int], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """A directory account: the password is the directory's, the role jiancha's."""
    base, card = console
    browser.set_window_size(1440, 900)
    browser.get(f"{base}/cards/{card}")
    browser.find_element(By.NAME, "username").send_keys("chenj")
    browser.find_element(By.NAME, "password").send_keys("a wrong one")
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CLASS_NAME, "alert"))
    assert "用户名或密码错误" in browser.find_element(By.CLASS_NAME, "alert").text
    browser.find_element(By.NAME, "username").clear()
    browser.find_element(By.NAME, "username").send_keys("chenj")
    browser.find_element(By.NAME, "password").send_keys(LDAP_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    _arrive(browser, lambda u: u.endswith(f"/cards/{card}"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "陈静" in body and "纪检监察员" in body
    # an officer's form: revoke with a reason category
    assert browser.find_elements(By.CSS_SELECTOR, f"form[action='/cards/{card}/revoke']")
    _shot(browser, tmp_path, "card-1440-ldap.png")


def test_appeal_with_a_photo_then_an_officer_decides(
    console: tuple[str, int], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """A window head appeals from a phone with a photo; an officer upholds it on a desktop."""
    base, card = console
    photo = tmp_path / "登记簿.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    browser.set_window_size(390, 844)
    browser.get(f"{base}/login?next=/cards/{card}")
    browser.find_element(By.NAME, "username").send_keys("wangf")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    _arrive(browser, lambda u: u.endswith(f"/cards/{card}"))
    form = browser.find_element(By.CSS_SELECTOR, f"form[action='/cards/{card}/appeal']")
    form.find_element(By.NAME, "reason").send_keys("纸质登记簿显示当日已受理")
    form.find_element(By.NAME, "attachment").send_keys(str(photo))
    _shot(browser, tmp_path, "appeal-390.png")
    browser.set_window_size(390, 844)
    form = browser.find_element(By.CSS_SELECTOR, f"form[action='/cards/{card}/appeal']")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CLASS_NAME, "notice"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "申诉中" in body and "附件：登记簿.png" in body and "王芳（窗口负责人）" in body
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.find_element(By.PARTIAL_LINK_TEXT, "2024-0304-000123").click()  # the case's page
    _arrive(browser, lambda u: "/cases/" in u)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "该办件的牌" in body and "附件：登记簿.png" in body
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    _shot(browser, tmp_path, "case-390.png")
    browser.set_window_size(390, 844)
    browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    _arrive(browser, lambda u: "/login" in u)

    browser.set_window_size(1440, 900)
    browser.get(f"{base}/login?next=/cards/{card}")
    browser.find_element(By.NAME, "username").send_keys("lim")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    _arrive(browser, lambda u: u.endswith(f"/cards/{card}"))
    # the address changes before the page has loaded: wait for the attachment's link itself
    found = WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.LINK_TEXT, "登记簿.png"))
    link = found[0].get_attribute("href")
    form = browser.find_element(By.CSS_SELECTOR, f"form[action='/cards/{card}/decide']")
    form.find_element(By.CSS_SELECTOR, "input[value='upheld']").click()
    form.find_element(By.NAME, "reason").send_keys("照片不能证明当日受理，维持原牌")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CLASS_NAME, "notice"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "李明（纪检监察员）" in body and "维持原牌" in body
    _shot(browser, tmp_path, "card-1440-decided.png")
    assert link and link.startswith(f"{base}/attachments/")


def _store_bulletin(dsn: str) -> int:
    """A monthly bulletin and its revision in jiancha.reports, with a PDF."""

    async def go() -> int:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await conn.execute("DELETE FROM jiancha.report_files")
            await conn.execute("UPDATE jiancha.outbox SET report_id = NULL")
            await conn.execute("DELETE FROM jiancha.reports")
            figures = ('{"accepted": 109021, "completed": 99745, "on_time_rate": 0.9835, '
                       '"overdue_open": 315, "cards": {"red": 1166, "yellow": 3120, "blue": 6534},'
                       ' "satisfaction_rate": 0.9895}')  # fmt: skip
            rid = 0
            for version, changed in ((1, "[]"), (2, '[{"key": "figures.completed", '
                                                     '"was": 99744, "now": 99745}]')):  # fmt: skip
                rid = await conn.fetchval(
                    "INSERT INTO jiancha.reports (kind, period, scope, version, generated_at,"
                    " digest, content, changed, files) VALUES ('monthly', '2025-11', '', $1, $2,"
                    " $3, jsonb_build_object('centre', '示范县政务服务中心', 'figures', $4::jsonb),"
                    " $5::jsonb, $6::jsonb) RETURNING id",
                    version, T0 + version * DAY, f"d{version}", figures, changed,
                    '{"pdf": {"name": "jiancha-monthly-2025-11.pdf", "bytes": 9}}',
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO jiancha.report_files (report_id, format, name, content)"
                    " VALUES ($1, 'pdf', 'jiancha-monthly-2025-11.pdf', '%PDF-1.7'::bytea)",
                    rid,
                )
            return int(rid)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_officer_finds_the_monthly_bulletin_on_a_phone(
    console: tuple[str, int], browser: webdriver.Chrome, tmp_path: Path, sync_dsn: str
) -> None:
    """From the menu to the bulletins, the latest version, its page: nothing wider than a phone."""
    base, _ = console
    latest = _store_bulletin(sync_dsn)
    browser.set_window_size(390, 844)
    browser.get(f"{base}/login")
    browser.find_element(By.NAME, "username").send_keys("lim")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.LINK_TEXT, "监察通报"))
    browser.find_element(By.LINK_TEXT, "监察通报").click()
    _arrive(browser, lambda u: u.endswith("/reports"))
    rows = browser.find_elements(By.CSS_SELECTOR, ".rows li")
    assert len(rows) == 1  # the revision, not both versions
    text = rows[0].text
    assert "月总结" in text and "2025年11月" in text and "修订版（第 2 版）" in text, text
    assert "受理 109,021 · 按期办结率 98.35% · 红牌 1,166" in text, text
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    _shot(browser, tmp_path, "reports-390.png")
    browser.set_window_size(390, 844)
    rows[0].find_element(By.CSS_SELECTOR, "a[href^='/reports/']").click()
    _arrive(browser, lambda u: u.endswith(f"/reports/{latest}"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "修订版" in body and "jiancha-monthly-2025-11.pdf" in body
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
