"""Secrets come from files, never from the command line or the configuration itself.

A path is read as given; a bare name is first looked up in systemd's
``$CREDENTIALS_DIRECTORY`` (``LoadCredential=ops.secret:/etc/jiancha/ops.secret``),
so the unit can hand the service a secret its user cannot read on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_secret"]


def read_secret(path: str) -> str:
    """The secret in ``path``, stripped; OSError when it cannot be read."""
    p = Path(path)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if not p.is_absolute() and creds and (Path(creds) / path).is_file():
        p = Path(creds) / path
    return p.read_text(encoding="utf-8").strip()
