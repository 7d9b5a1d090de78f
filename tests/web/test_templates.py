"""The console's pages are compiled once, when it starts."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.web._core import _HERE, templates


def test_a_running_console_keeps_the_pages_it_started_with(tmp_path: Path) -> None:
    """An upgrade replaces the files under a running console; reloading them paired the new
    pages with the old code (a 500 where a page wants a value the old code does not pass)
    until the restart."""
    (tmp_path / "base.html").write_text("base {% block main %}{% endblock %}", "utf-8")
    page = tmp_path / "page.html"
    page.write_text('{% extends "base.html" %}{% block main %}old {{ x }}{% endblock %}', "utf-8")
    env = templates(tmp_path)
    page.write_text(
        '{% extends "base.html" %}{% block main %}{{ now_left }}{% endblock %}', "utf-8"
    )
    (tmp_path / "base.html").write_text("replaced", "utf-8")
    later = page.stat().st_mtime_ns + 10**9  # a second on, whatever the file system's clock
    os.utime(page, ns=(later, later))
    assert env.get_template("page.html").render(x=1) == "base old 1"


def test_every_page_of_the_console_compiles_at_start() -> None:
    env = templates(_HERE / "templates")
    assert {"base.html", "card.html", "cards.html", "case.html", "_ledger.html"} <= set(
        env.list_templates()
    )
