"""Where jiancha finds the data it ships (``rules/``, ``deploy/sql``, its migrations).

In a source checkout (and an editable install) the data is the top-level
``rules/`` and ``deploy/sql/`` folders; a wheel carries the same folders as
``monitor/_rules`` and ``monitor/_deploy/sql``. ``JIANCHA_RULES_DIR`` points
elsewhere, e.g. a centre's own copy. The migrations of schema ``jiancha``
are part of the package itself (``monitor/sql``).
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


def deploy_sql_dir() -> Path:
    """The operator's SQL files (``deploy/sql``), wherever this install keeps them."""
    installed = _PACKAGE / "_deploy" / "sql"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "deploy" / "sql"


def source_sql() -> Path:
    """``source.sql``: the source contract for the approval database."""
    return deploy_sql_dir() / "source.sql"


def sql_dir() -> Path:
    """SQL of schema ``jiancha``: ``schema.sql`` (the snapshot) and ``migrations/``."""
    return _PACKAGE / "sql"


def migrations_dir() -> Path:
    """The numbered migrations of schema ``jiancha`` (``NNNN_name.sql``)."""
    return sql_dir() / "migrations"
