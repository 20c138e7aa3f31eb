"""systemd's service notification protocol: ``Type=notify`` and ``WatchdogSec=``.

A service started by systemd with ``Type=notify`` finds a datagram socket's
address in ``$NOTIFY_SOCKET`` and sends it newline-separated assignments:
``READY=1`` once it serves, ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC``
microseconds when the unit has a watchdog, ``STOPPING=1`` when it begins to
stop, ``STATUS=...`` for ``systemctl status``. The protocol is a few lines
(sd_notify(3)); without ``$NOTIFY_SOCKET`` (not under systemd, or Windows)
every call does nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

#: How much of the watchdog's timeout may pass between two pings (sd_watchdog_enabled(3)
#: suggests half).
WATCHDOG_SHARE = 0.5


class Notifier:
    """Tells systemd how this service is doing; inert where systemd did not ask.

    :param address: ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).
    :param watchdog_seconds: the unit's watchdog timeout, or None for none.
    """

    def __init__(self, address: str | None, watchdog_seconds: float | None = None):
        self.address = address
        self.watchdog_seconds = watchdog_seconds
        self._last_ping = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd's environment describes (``WATCHDOG_PID``, when set,
        must be this process: a child started by btic does not ping for it)."""
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET") or None
        if address is not None and not hasattr(socket, "AF_UNIX"):
            address = None
        watchdog = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    @property
    def active(self) -> bool:
        return self.address is not None

    @property
    def ping_every(self) -> float | None:
        """Seconds between watchdog pings, or None without a watchdog."""
        if self.watchdog_seconds is None or not self.active:
            return None
        return self.watchdog_seconds * WATCHDOG_SHARE

    def ready(self, status: str = "") -> None:
        self._send("READY=1", *([f"STATUS={status}"] if status else []))
        self._last_ping = time.monotonic()

    def stopping(self, status: str = "") -> None:
        self._send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def alive(self) -> None:
        """A watchdog ping, sent when a share of the timeout has passed since the last."""
        every = self.ping_every
        if every is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last_ping < every:
                return
            self._last_ping = now
        self._send("WATCHDOG=1")

    def _send(self, *assignments: str) -> None:
        if self.address is None:
            return
        address = self.address
        if address.startswith("@"):  # the abstract namespace
            address = "\0" + address[1:]
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message)
        except OSError:
            # systemd gone or the socket unreadable: the service itself is not worse
            # off, and the watchdog, if any, will say so.
            pass


class WatchdogThread:
    """Pings the watchdog from a thread (for a process whose main loop is someone
    else's, such as a Celery worker's): it says the process lives, not that its
    tasks progress."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        every = self.notifier.ping_every
        if every is None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(every,), name="btic-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, every: float) -> None:
        # Woken twice as often as a ping is due: alive() sends only once ``every``
        # has passed, and a wake-up a hair early must not push the ping to the
        # next round, a whole watchdog timeout later.
        while not self._stop.wait(every / 2):
            self.notifier.alive()
