"""``python -m monitor``: the ``jiancha`` command, for hosts without the console script."""

from monitor.cli import main

raise SystemExit(main())
