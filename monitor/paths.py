"""Where jiancha finds the data it ships (``rules/``).

In a source checkout (and an editable install) the data is the top-level
``rules/`` folder; a wheel carries the same folder as ``monitor/_rules``.
``JIANCHA_RULES_DIR`` points elsewhere, e.g. a centre's own copy.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def rules_dir() -> Path:
    """The rules folder in force."""
    env = os.environ.get("JIANCHA_RULES_DIR")
    if env:
        return Path(env)
    installed = _PACKAGE / "_rules"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "rules"
