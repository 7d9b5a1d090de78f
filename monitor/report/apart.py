"""The documents made in a process of their own, for the daemon.

A city's monthly bulletin is seconds of pure-Python layout (WeasyPrint) and
a few hundred MiB: in the daemon's process it would hold the GIL against the
live path and leave the memory behind. ``render_apart`` hands the report to
``python -m monitor.report.apart`` and takes the files back; the child
exits, and its memory with it. Both ends are this package: pickle is safe.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from monitor.report.model import Report

__all__ = ["RenderFailed", "render_apart"]

Files = dict[str, tuple[str, bytes]]


class RenderFailed(RuntimeError):
    """The child could not make the documents; its last words are the message."""


TIMEOUT = 900.0  # seconds: a city's yearly bulletin takes about a minute here


async def render_apart(r: Report, formats: Sequence[str], lang: str,
                       timeout: float = TIMEOUT) -> Files:  # fmt: skip
    """``render_files`` in a child process, stopped if it has not answered in ``timeout`` s.

    A child that hangs would otherwise hold the schedule for good while it
    beats on for the watchdog: no bulletin after it would ever be made.
    """
    done = None
    with trio.move_on_after(timeout):
        done = await trio.run_process(  # cancelled: the child is terminated, then killed
            [sys.executable, "-m", "monitor.report.apart"],
            stdin=pickle.dumps((r, tuple(formats), lang)),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    if done is None:
        raise RenderFailed(f"report documents: no answer in {timeout:.0f} s, the child stopped")
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderFailed(f"report documents: exit {done.returncode}: "
                           + (said[-1] if said else "no message"))  # fmt: skip
    files: Files = pickle.loads(done.stdout)
    return files


def main() -> int:
    from monitor.log import configure_logging
    from monitor.report.render import render_files

    configure_logging("WARNING", stream=sys.stderr)
    r, formats, lang = pickle.loads(sys.stdin.buffer.read())
    files = render_files(r, formats, lang)
    sys.stdout.buffer.write(pickle.dumps(files, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
