"""Every word the console can show has its Chinese and its English.

`text` reads an unknown key as itself, so a page never fails on a missing
word: it shows the key instead. The status filter said "all" among
未结、已发牌、已签收 on every Chinese cards page that way.
"""

from __future__ import annotations

import re
from pathlib import Path

from monitor.cards.lifecycle import ACTIONS
from monitor.web import _list
from monitor.web._text import TEXT

WEB = Path(__file__).resolve().parents[2] / "monitor" / "web"

# the keys the templates compute: t(flash), t(action), t(action ~ '_hint'), t(v) for the
# provisional filter, t(s) for the status filter, t(error) on the sign-in page
COMPUTED = {"done", "done_admin", "yes", "no", "open", "all", "throttled", "ldap_down",
            "bad_login", *ACTIONS, *(f"{a}_hint" for a in ACTIONS)}  # fmt: skip


def _written() -> set[str]:
    keys: set[str] = set()
    for page in (WEB / "templates").glob("*.html"):
        keys |= set(re.findall(r"\bt\('([A-Za-z0-9_]+)'", page.read_text(encoding="utf-8")))
    for module in WEB.glob("*.py"):
        code = module.read_text(encoding="utf-8")
        keys |= set(re.findall(r'\btext\("([A-Za-z0-9_]+)"', code))
        keys |= set(re.findall(r'Refusal\(\d+, "([A-Za-z0-9_]+)"', code))
        keys |= set(re.findall(r'error="([A-Za-z0-9_]+)"', code))
    return keys


def test_every_word_the_console_shows_has_both_languages() -> None:
    keys = _written() | COMPUTED | set(_list._COLUMNS)
    assert len(keys) > 100  # the scan found the templates
    missing = sorted(k for k in keys if set(TEXT.get(k, {})) != {"zh", "en"})
    assert missing == []


def test_the_computed_keys_are_the_templates_own() -> None:
    """COMPUTED stays the list of what the templates compute: each t(name) without a quote
    is one of the names above."""
    computed = set()
    for page in (WEB / "templates").glob("*.html"):
        computed |= set(re.findall(r"\bt\(([a-z_]+)\b(?!')", page.read_text(encoding="utf-8")))
    assert computed == {"flash", "action", "v", "s", "key", "error"}
