"""A PostgreSQL of a benchmark's own: pgserver in a temporary directory, removed afterwards."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def embedded_server(prefix: str = "jiancha-bench-") -> Iterator[tuple[Any, Path]]:
    """(the server, its temporary directory); the server stopped and the directory gone after."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # containers, CI
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
        try:
            yield server, tmp
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
