"""The daemon's documents are made in a child process: the same files, and a failure named."""

from __future__ import annotations

import os

import pytest

from monitor.report import apart
from monitor.report.model import assemble
from monitor.report.render import render_files
from tests.report.test_model import CURRENT, P, context, rows


async def test_the_child_makes_the_same_documents() -> None:
    r = assemble(P, None, CURRENT, rows(), rows(), context())
    formats = ("html", "json", "pdf")
    got = await apart.render_apart(r, formats, "zh")
    here = render_files(r, formats, "zh")
    assert {f: name for f, (name, _) in got.items()} == {f: n for f, (n, _) in here.items()}
    assert got["json"] == here["json"] and got["html"] == here["html"]
    assert got["pdf"][1].startswith(b"%PDF-")


async def test_a_child_that_fails_is_an_error_not_empty_documents(monkeypatch) -> None:
    r = assemble(P, None, CURRENT, rows(), rows(), context())
    monkeypatch.setattr(apart.sys, "executable", "/bin/false")  # exits 1, says nothing
    with pytest.raises(apart.RenderFailed, match="exit 1: no message"):
        await apart.render_apart(r, ("json",), "zh")


async def test_a_child_that_hangs_is_stopped_and_named(monkeypatch, tmp_path) -> None:
    r = assemble(P, None, CURRENT, rows(), rows(), context())
    pid_file = tmp_path / "pid"
    hang = tmp_path / "hang"
    hang.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    hang.chmod(0o755)
    monkeypatch.setattr(apart.sys, "executable", str(hang))
    with pytest.raises(apart.RenderFailed, match="no answer in 1 s"):
        await apart.render_apart(r, ("json",), "zh", timeout=1.0)
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not left behind
        os.kill(int(pid_file.read_text()), 0)
