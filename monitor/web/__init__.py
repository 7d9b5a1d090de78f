"""The web console (``jiancha web``): officers and window heads act on cards from a browser.

A shell beside ``monitor.cli``: it reads the ledger through ``monitor.cards``
and takes every step through `monitor.cards.lifecycle.act`, the same door as
the CLI, so the append-only rules hold whichever way a person comes in.
Accounts are ``monitor.accounts``. See docs/console.md.
"""

from monitor.web._app import SESSION_COOKIE, create_app
from monitor.web._core import Console
from monitor.web._pool import Pool
from monitor.web._serve import load_secret, serve
from monitor.web._throttle import Throttle

__all__ = ["SESSION_COOKIE", "Console", "Pool", "Throttle", "create_app", "load_secret", "serve"]
