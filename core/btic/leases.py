"""Leases: which run works on which (site, destination, data type) right now.

Two runs on one state database — two cron entries, a cron run and a manual
``btic transfer``, two daemons — must never work on the same items at once,
or both deliver them and a destination in ``AppendNumber`` mode keeps two
copies. Each run takes a lease per (site, destination, data type) before it
touches those items, and a run that finds one held skips that part and says
so.

A lease is a row of ``btic_locks`` (name, owner, expiry), taken by a
compare-and-set in :meth:`StateStore.take_lease`, so one contender wins on
SQLite and PostgreSQL alike. The holder renews its leases from a background
thread while it works: a heartbeat. A holder that died (SIGKILL, a power cut,
a machine gone) stops beating and loses its leases within :data:`LEASE_TTL`
on any machine, or at once when it ran on this machine and its process is gone.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from btic.processes import process_alive
from btic.state import LOCK_NAME_LENGTH, StateStore, fit_column, now

#: How long a lease lasts without renewal: a dead holder elsewhere holds up its
#: items this long at most. Holders renew every quarter of it, so three renewals
#: in a row must fail (a state database away for 45 s) before a live one loses it.
LEASE_TTL = timedelta(minutes=1)
RENEWALS_PER_TTL = 4


def lease_name(site: str, destination: str, data_type: str) -> str:
    """The lease that guards one (site, destination, data type)."""
    return fit_column(f"transfer/{site}/{destination}/{data_type}", LOCK_NAME_LENGTH)


def schedule_lease(name: str) -> str:
    """The lease that keeps a schedule from overlapping itself."""
    return fit_column(f"schedule/{name}", LOCK_NAME_LENGTH)


class Leases:
    """The leases one run holds; :meth:`close` gives them all back.

    :param run_id: the run, as the runs table names it.
    """

    def __init__(self, state: StateStore, run_id: str, *, ttl: timedelta = LEASE_TTL):
        self.state = state
        self.host = socket.gethostname()
        #: who holds a lease: ``host:pid:run``, so another run can say who has it
        self.owner = f"{self.host}:{os.getpid()}:{run_id}"
        self.ttl = ttl
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, name: str) -> str | None:
        """Take ``name``; None when taken, else who holds it (``host:pid:run``).

        Not re-entrant: two threads of one run (a schedule's transfers, run at
        the same time) that ask for the same lease get it once.
        """
        with self._lock:
            if name in self._held:
                return self.owner
        holder = self.state.take_lease(name, self.owner, self.ttl, self._abandoned)
        if holder is None:
            with self._lock:
                if name in self._held:
                    return self.owner
                self._held.add(name)
                if self._renewer is None:
                    self._renewer = threading.Thread(
                        target=self._renew, name="btic-lease-renewer", daemon=True
                    )
                    self._renewer.start()
        return holder

    def release(self, names: Iterable[str]) -> None:
        with self._lock:
            mine = [n for n in names if n in self._held]
            self._held.difference_update(mine)
        self.state.release_leases(mine, self.owner)

    def close(self) -> None:
        """Stop renewing and give back every lease still held."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._lock:
            held = list(self._held)
        self.release(held)

    def _abandoned(self, holder: str, expires_at: datetime) -> bool:
        if expires_at < now():
            return True
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        # On this machine a dead holder is known at once, without waiting for expiry.
        return host == self.host and pid.isdigit() and not process_alive(int(pid))

    def _renew(self) -> None:
        interval = self.ttl.total_seconds() / RENEWALS_PER_TTL
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self._held)
            try:
                self.state.renew_leases(held, self.owner, self.ttl)
            except Exception:  # noqa: BLE001 - the run's own ledger writes report a dead database
                continue
