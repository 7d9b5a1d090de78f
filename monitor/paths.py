"""Where jiancha finds the data it ships: rules, SQL, dashboards and deployment files.

In a source checkout (and an editable install) the data is the top-level
``rules/``, ``dashboards/*.json`` and ``deploy/`` folders; a wheel carries the
same files as ``monitor/_rules``, ``monitor/_dashboards`` and ``monitor/_deploy``
(pyproject.toml's force-include), so an installed jiancha can push its
dashboards and an operator finds the unit, the example configuration and the
Prometheus and Grafana files without a checkout. ``JIANCHA_RULES_DIR`` points
elsewhere, e.g. a centre's own copy. The migrations of schema ``jiancha``
are part of the package itself (``monitor/sql``).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
DEMO_DIR = Path(".jiancha-demo")  # `jiancha demo`'s database and state, in the working directory


def rules_dir() -> Path:
    """The rules folder in force."""
    env = os.environ.get("JIANCHA_RULES_DIR")
    if env:
        return Path(env)
    installed = _PACKAGE / "_rules"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "rules"


def _shipped(installed: str, checkout: str) -> Path:
    """``monitor/<installed>`` in a wheel, else ``<checkout>`` beside the package."""
    path = _PACKAGE / installed
    if path.is_dir():
        return path
    return _PACKAGE.parent / checkout


def dashboards_dir() -> Path:
    """The generated Grafana dashboards (``*.json``) that ``jiancha grafana push`` installs.

    Only the JSON ships; ``dashboards/build.py`` that writes it is dev tooling.
    """
    return _shipped("_dashboards", "dashboards")


def deploy_dir() -> Path:
    """The operator's files (``deploy/``: unit, example configuration, Prometheus, Grafana, SQL).

    ``deploy/install.sh`` reads the unit and the example configuration from here in
    the venv it installed, so they match the installed version.
    """
    return _shipped("_deploy", "deploy")


def deploy_sql_dir() -> Path:
    """The operator's SQL files (``deploy/sql``), wherever this install keeps them."""
    return deploy_dir() / "sql"


def prometheus_dir() -> Path:
    """``prometheus.yml`` and the alerting rules (with their promtool test) for Prometheus."""
    return deploy_dir() / "prometheus"


def grafana_provisioning_dir() -> Path:
    """Grafana's file provisioning (``datasources/``, ``dashboards/``) for a Grafana host."""
    return deploy_dir() / "grafana" / "provisioning"


def systemd_unit() -> Path:
    """The hardened ``jiancha.service`` template (paths for /opt/jiancha, /etc/jiancha)."""
    return deploy_dir() / "systemd" / "jiancha.service"


def example_config() -> Path:
    """``jiancha.example.toml``: every setting with its default, the start of a jiancha.toml."""
    return deploy_dir() / "jiancha.example.toml"


def source_sql() -> Path:
    """``source.sql``: the source contract for the approval database."""
    return deploy_sql_dir() / "source.sql"


def schema_snapshot() -> Path:
    """``schema.sql``: schema ``jiancha`` as all migrations leave it, for DBAs to review.

    The migrations are what runs; a test keeps the snapshot equal to them.
    """
    return deploy_sql_dir() / "schema.sql"


def sql_dir() -> Path:
    """SQL of schema ``jiancha``: ``bootstrap.sql`` and ``migrations/``."""
    return _PACKAGE / "sql"


def migrations_dir() -> Path:
    """The numbered migrations of schema ``jiancha`` (``NNNN_name.sql``)."""
    return sql_dir() / "migrations"
