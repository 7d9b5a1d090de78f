"""The systemd notification protocol (sd_notify), without libsystemd.

``READY=1`` once every component has started, ``STATUS=`` for
``systemctl status``, ``WATCHDOG=1`` from the loop that does the work (a hung
loop stops the pings and systemd restarts the service), ``STOPPING=1`` on the
way out. Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time


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
    """Pings at half of ``WATCHDOG_USEC``; call ``beat()`` from the working loop."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2e6 if wanted else None
        self.last = 0.0

    def beat(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            notify("WATCHDOG=1")
