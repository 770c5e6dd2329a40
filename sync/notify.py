"""The systemd notify protocol (`Type=notify`): READY, WATCHDOG, STATUS and STOPPING datagrams to
$NOTIFY_SOCKET, as sd_notify(3) sends them. Without $NOTIFY_SOCKET (not under systemd) every call
does nothing."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Talks to systemd on behalf of the daemon; `watchdog_due` paces WATCHDOG=1 at half the
    interval systemd asked for ($WATCHDOG_USEC)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with '@' is in the abstract namespace: a leading NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval = int(usec) / 1_000_000 / 2
        self._next_ping = 0.0

    @property
    def enabled(self) -> bool:
        """True under systemd (a notify socket was given)."""
        return bool(self.address)

    def send(self, *fields: str) -> None:
        """Send `KEY=value` fields in one datagram; a failure is logged, never raised."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
        except OSError as err:
            log.warning("systemd.notify_failed", error=str(err))

    def ready(self, status: str) -> None:
        """Start-up is complete."""
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """A one-line status for `systemctl status`."""
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self.send("STOPPING=1", "STATUS=stopping: finishing the batch in hand")

    def watchdog_due(self, now: float | None = None) -> None:
        """Send WATCHDOG=1 when half the watchdog interval has passed since the last one."""
        if self.interval is None:
            return
        now = time.monotonic() if now is None else now
        if now >= self._next_ping:
            self.send("WATCHDOG=1")
            self._next_ping = now + self.interval
