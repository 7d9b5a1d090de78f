"""Signing in to the console against a real OpenLDAP slapd (ldap3 bind).

The password is checked by the directory; who the person is in jiancha —
roles, windows, disabled — stays in ``jiancha.users``, where a directory
account has no password hash. DN template and search modes, ldaps:// with
the certificate verified, a directory that is down, and ``[web.ldap]``
mistakes reported with file, line and key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor import db
from monitor.config import ConfigError, load_config
from monitor.directory import LdapSettings, ldap_settings
from tests.web.ldapkit import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, running_slapd
from tests.web.webkit import PASSWORD, add_account, add_card, console_client, sign_in

CHEN_PASSWORD = "directory password 1"
TEMPLATE = f"uid={{username}},{PEOPLE}"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    people = {"chenj": ("陈静", CHEN_PASSWORD), "zhouq": ("周强", "zhou's password 2"),
              "wangf": ("王芳", "not the local one")}  # fmt: skip
    with running_slapd(tmp_path_factory.mktemp("slapd"), people, tls=True) as server:
        yield server


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[db.Connection]:
    async with await db.connect(dsn) as c:
        await c.execute("DELETE FROM jiancha.users")
        await add_account(c, "chenj", ["officer"], display_name="陈静", directory=True)
        await add_account(c, "wangf", ["window_head"], windows=["W1"])  # a local account
        yield c


async def test_a_directory_account_signs_in_with_its_ldap_password(
    dsn: str, conn: db.Connection, slapd: Slapd
) -> None:
    card = await add_card(conn)
    ldap = LdapSettings(url=slapd.url, bind_dn=TEMPLATE)
    async with console_client(dsn, ldap=ldap) as client:
        wrong = await sign_in(client, "chenj", "not it")
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        signed = await sign_in(client, "chenj", CHEN_PASSWORD)
        assert signed.status_code == 303 and signed.headers["location"] == "/cards"
        page = await client.get(f"/cards/{card}")
        # the role comes from jiancha.users: an officer may revoke
        assert page.status_code == 200 and f'action="/cards/{card}/revoke"' in page.text
    assert (
        await conn.fetchval("SELECT count(*) FROM jiancha.login_failures WHERE username = 'chenj'")
        == 0
    )  # the right password cleared the failure
    assert (
        await conn.fetchval("SELECT count(*) FROM jiancha.web_sessions WHERE username = 'chenj'")
        == 1
    )


async def test_what_the_directory_does_not_decide(
    dsn: str, conn: db.Connection, slapd: Slapd
) -> None:
    ldap = LdapSettings(url=slapd.url, bind_dn=TEMPLATE)
    async with console_client(dsn, ldap=ldap) as client:
        # in the directory but not in jiancha.users: no account, no sign-in
        assert (await sign_in(client, "zhouq", "zhou's password 2")).status_code == 401
        # a local account signs in with its local password, never the directory's
        assert (await sign_in(client, "wangf", "not the local one")).status_code == 401
        assert (await sign_in(client, "wangf", PASSWORD)).status_code == 303
        # an empty password would be an anonymous bind, which LDAP calls a success
        assert not ldap.check("chenj", "")
        # a name that tries to leave its RDN finds nobody
        assert not ldap.check("chenj,ou=people", CHEN_PASSWORD)
        # a disabled directory account is refused even with the right password
        await conn.execute("UPDATE jiancha.users SET disabled = true WHERE username = 'chenj'")
        assert (await sign_in(client, "chenj", CHEN_PASSWORD)).status_code == 401


async def test_search_under_a_service_account(dsn: str, conn: db.Connection, slapd: Slapd) -> None:
    ldap = LdapSettings(url=slapd.url, search_base=PEOPLE, search_filter="(uid={username})",
                        service_dn=SERVICE_DN, service_password=SERVICE_PASSWORD)  # fmt: skip
    assert ldap.check("chenj", CHEN_PASSWORD)
    assert not ldap.check("chenj", "wrong")
    assert not ldap.check("*", CHEN_PASSWORD)  # escaped: a filter with '*' matches no one
    async with console_client(dsn, ldap=ldap) as client:
        assert (await sign_in(client, "chenj", CHEN_PASSWORD)).status_code == 303
    refused = LdapSettings(url=slapd.url, search_base=PEOPLE, service_dn=SERVICE_DN,
                           service_password="wrong")  # fmt: skip
    async with console_client(dsn, ldap=refused) as client:
        down = await sign_in(client, "chenj", CHEN_PASSWORD)
    assert down.status_code == 503 and "目录服务" in down.text


async def test_ldaps_verifies_the_certificate(dsn: str, conn: db.Connection, slapd: Slapd) -> None:
    assert slapd.ldaps_url and slapd.ca_file
    trusted = LdapSettings(url=slapd.ldaps_url, bind_dn=TEMPLATE, ca_file=slapd.ca_file)
    assert trusted.check("chenj", CHEN_PASSWORD) and not trusted.check("chenj", "wrong")
    starttls = LdapSettings(url=slapd.url, bind_dn=TEMPLATE, start_tls=True,
                            ca_file=slapd.ca_file)  # fmt: skip
    assert starttls.check("chenj", CHEN_PASSWORD)
    # a self-signed certificate the system does not trust: refused, not sent a password
    untrusted = LdapSettings(url=slapd.ldaps_url, bind_dn=TEMPLATE)
    async with console_client(dsn, ldap=untrusted) as client:
        page = await sign_in(client, "chenj", CHEN_PASSWORD)
        assert page.status_code == 503 and "目录服务（LDAP）暂时无法连接" in page.text
    # the directory being down is not a wrong password: nothing counted against the user
    assert await conn.fetchval("SELECT count(*) FROM jiancha.login_failures") == 0


async def test_a_directory_that_is_down(dsn: str, conn: db.Connection, tmp_path: Path) -> None:
    with running_slapd(tmp_path / "gone", {"chenj": ("陈静", CHEN_PASSWORD)}) as server:
        url = server.url
    ldap = LdapSettings(url=url, bind_dn=TEMPLATE, timeout=2)
    async with console_client(dsn, ldap=ldap) as client:
        page = await sign_in(client, "chenj", CHEN_PASSWORD)
        assert page.status_code == 503 and "目录服务" in page.text
        assert "Traceback" not in page.text
        # local accounts still sign in
        assert (await sign_in(client, "wangf", PASSWORD)).status_code == 303


def _settings(tmp_path: Path, body: str) -> LdapSettings | None:
    path = tmp_path / "jiancha.toml"
    path.write_text(body, encoding="utf-8")
    return ldap_settings(load_config(str(path), environ={}), read_secret=lambda p: "pw")


def test_ldap_settings_from_the_config_file(tmp_path: Path) -> None:
    assert _settings(tmp_path, "[log]\nlevel = 'INFO'\n") is None
    settings = _settings(tmp_path, (
        "[web.ldap]\nurl = 'ldaps://ad.example.gov.cn'\nbind_dn = '{username}@example.gov.cn'\n"
        "ca_file = '/etc/ssl/ad.pem'\ntimeout = 3\n"))  # fmt: skip
    assert settings == LdapSettings(url="ldaps://ad.example.gov.cn",
                                    bind_dn="{username}@example.gov.cn",
                                    ca_file="/etc/ssl/ad.pem", timeout=3.0)  # fmt: skip
    searched = _settings(tmp_path, (
        "[web.ldap]\nurl = 'ldap://ldap.example'\nstart_tls = true\nsearch_base = 'ou=p'\n"
        "search_filter = '(sAMAccountName={username})'\nservice_dn = 'cn=svc'\n"
        "service_password_file = 'ldap.pw'\n"))  # fmt: skip
    assert searched is not None and searched.service_password == "pw" and searched.start_tls


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ("[web.ldap]\nurl = 'http://x'\nbind_dn = 'uid={username}'\n", ":2: [web.ldap] url",
         "ldap://"),
        ("[web.ldap]\nurl = 'ldap://x'\n\nbind_dn = 'uid=chen'\n", ":4: [web.ldap] bind_dn",
         "{username}"),
        ("[web.ldap]\nurl = 'ldap://x'\n", ":1: [web.ldap] bind_dn", "search_base"),
        ("[web.ldap]\nurl = 'ldap://x'\nbind_dn = 'uid={username}'\nport = 389\n",
         ":4: [web.ldap] port", "unknown key"),
        ("[web.ldap]\nurl = 'ldaps://x'\nbind_dn = 'uid={username}'\nstart_tls = true\n",
         ":4: [web.ldap] start_tls", "TLS"),
        ("[web.ldap]\nurl = 'ldap://x'\nsearch_base = 'ou=p'\nservice_dn = 'cn=s'\n",
         ":4: [web.ldap] service_dn", "go together"),
        ("[web]\nldap_url = 'ldap://x'\n", ":2: [web] ldap_url", "unknown key"),
    ],
)  # fmt: skip
def test_ldap_settings_mistakes_name_file_line_and_key(
    tmp_path: Path, body: str, where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, body)
    message = str(caught.value)
    assert f"jiancha.toml{where}" in message, message
    assert says in message, message


def test_config_check_names_a_bad_ldap_table(tmp_path: Path) -> None:
    import io

    from monitor.cli import main

    path = tmp_path / "jiancha.toml"
    path.write_text("[web.ldap]\nurl = 'ldap://x'\nbind_dn = 'uid=nobody'\n", encoding="utf-8")
    out = io.StringIO()
    code = main(["config", "check", "--config", str(path)], out)
    assert code == 1 and "jiancha.toml:3: [web.ldap] bind_dn" in out.getvalue()
