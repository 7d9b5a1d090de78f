"""A progress bar on the terminal (rich, on stderr) for long commands; nothing otherwise.

Only when stderr is a terminal: a pipe, a log file or a cron mail gets no
escape codes, and stdout (what scripts read) is never touched. Transient: the
bar disappears when the command is done, leaving its own output clean.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["Bar"]


class Bar:
    """``total`` steps (None: not known, the bar pulses); ``step`` advances one, ``update``
    sets where we are."""

    def __init__(self, total: float | None, description: str, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        self.bar: Any = None
        if stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TaskProgressColumn(), TimeRemainingColumn(),
                                console=Console(file=stream), transient=True)  # fmt: skip
            self.task = self.bar.add_task(description, total=total)
            self.bar.start()

    @property
    def shown(self) -> bool:
        """Whether there is a bar to feed (what it would show may cost a query)."""
        return self.bar is not None

    def step(self, what: str | None = None) -> None:
        if self.bar is not None:
            kw = {} if what is None else {"description": what, "refresh": True}  # seen now
            self.bar.update(self.task, advance=1, **kw)

    def update(self, completed: float, total: float | None = None, what: str | None = None) -> None:
        if self.bar is not None:
            kw = {} if what is None else {"description": what, "refresh": True}
            self.bar.update(self.task, completed=completed, total=total, **kw)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
