"""The progress bar of long commands: on a terminal only, never on a pipe or in stdout.

The terminal is a real pseudo-terminal (``pty``) whose other end a thread
drains, as a terminal emulator would; the commands run in-process with
stderr pointed at it.
"""

from __future__ import annotations

import io
import os
import pty
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from monitor.cli._progress import Bar
from monitor.whatif import replay
from tests.cli.test_evaluate import _env, case, put, run  # noqa: F401 (fixture)
from tests.whatif.test_replay import MATTERS_M1, events, z


@contextmanager
def terminal() -> Iterator[tuple[io.TextIOWrapper, list[bytes]]]:
    """A text stream on a pty's terminal side; what arrives at the other side is collected."""
    master, slave = pty.openpty()
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stream = io.TextIOWrapper(os.fdopen(slave, "wb", buffering=0), encoding="utf-8",
                              write_through=True)  # fmt: skip
    try:
        yield stream, seen
    finally:
        stream.close()
        reader.join(timeout=5)
        os.close(master)


def test_a_bar_on_a_terminal_and_nothing_elsewhere() -> None:
    with terminal() as (tty, seen), Bar(4, "生成报告", stream=tty) as bar:
        assert bar.bar is not None
        bar.step("PDF")
        bar.update(3)
    shown = b"".join(seen).decode("utf-8", "replace")
    assert "PDF" in shown and "75%" in shown
    pipe = io.StringIO()
    with Bar(4, "生成报告", stream=pipe) as bar:
        assert bar.bar is None
        bar.step("PDF")
    assert pipe.getvalue() == ""


async def test_a_replay_tells_how_far_it_is(cal, rules) -> None:
    evs = events(("A", "2024-03-04T02:00:00", "2024-03-06T02:00:00"),
                 ("B", "2024-03-04T02:00:00", None))  # fmt: skip
    heard: list[tuple[int, int]] = []
    lo, hi = z("2024-03-01T00:00:00"), z("2024-04-01T00:00:00")
    await replay.run(evs, MATTERS_M1, rules, cal, lo, hi,
                     progress=lambda i, n: heard.append((i, n)))  # fmt: skip
    assert heard[0] == (0, 5) and heard[-1] == (5, 5)


def test_replay_and_report_show_it_on_a_terminal_stderr(
    sync_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(sync_dsn, [*case("A", "2024-03-04T02:00:00", "2024-03-06T02:00:00")])
    with terminal() as (tty, seen):
        monkeypatch.setattr(sys, "stderr", tty)
        code, out = run("replay", "--from", "2024-03-01", "--to", "2024-04-01", "--source-dsn",
                        sync_dsn, "--json", "--no-save")  # fmt: skip
        assert code == 0 and out.startswith("{")  # stdout: the document alone
        code, out = run("report", "daily", "--period", "2024-03-04", "--format", "json",
                        "--out", str(tmp_path), "--dsn", sync_dsn)  # fmt: skip
        assert code == 0
        monkeypatch.undo()
    shown = b"".join(seen).decode("utf-8", "replace")
    assert "回放事件" in shown or "replaying events" in shown
    assert "JSON" in shown


def test_evaluate_shows_how_many_events_it_took_on_a_terminal_stderr(
    sync_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up's bar: how far by source ids (a count would scan the backlog), how many
    events and batches taken, then the deciding."""
    put(sync_dsn, case("A", "2024-03-04T02:00:00", "2024-03-06T02:00:00")
        + case("B", "2024-03-04T03:00:00") + case("C", "2024-03-04T04:00:00"))  # fmt: skip
    with terminal() as (tty, seen):
        monkeypatch.setattr(sys, "stderr", tty)
        code, out = run("evaluate", "--now", "2024-03-08T12:00", "--source-dsn", sync_dsn,
                        "--json", "--batch-size", "3")  # fmt: skip
        monkeypatch.undo()
    assert code == 0 and out.startswith("{")
    shown = b"".join(seen).decode("utf-8", "replace")
    assert "已处理事件 3 条（1 批）" in shown and "43%" in shown  # 3 of 7
    assert "已处理事件 6 条（2 批）" in shown and "86%" in shown
    assert "已处理事件 7 条（3 批）" in shown and "100%" in shown
    # A and B came in full batches, decided once caught up; C's last event came in a
    # batch that was not full, which decided C itself
    assert "判定积压办件、发牌：0 / 2" in shown and "判定积压办件、发牌：2 / 2" in shown
