"""The systemd notification protocol (sd_notify), without libsystemd.

``READY=1`` once every component has started, ``STATUS=`` for
``systemctl status``, ``WATCHDOG=1`` while every task is alive (a hung task
stops the pings and systemd restarts the service: ``monitor.health``), ``STOPPING=1`` on the
way out. Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket


def enabled() -> bool:
    """Whether there is a service manager to tell (``$NOTIFY_SOCKET`` is set)."""
    return bool(os.environ.get("NOTIFY_SOCKET"))


def notify(*lines: str) -> bool:
    """Send one notification; False when not under systemd or the socket is gone."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode(), address)
    except OSError:
        return False
    return True


class Watchdog:
    """How often to ping: half of ``WATCHDOG_USEC`` when it is meant for this process.

    The pings come from ``monitor.health``'s supervisor, which sends them only
    while every task of the daemon is alive.
    """

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2e6 if wanted else None
