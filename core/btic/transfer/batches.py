"""What batching destinations hold (``Delivery(deferred=True)``): each one's batch,
when it is due to be flushed (items, bytes, age, as its
:class:`~btic.types.DeliveryLimits` say), and the lock that keeps its hand-overs
and flushes apart. :class:`~btic.transfer.delivery.Deliverer` flushes and records.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from btic.plugins import PluginManager
from btic.transfer.pacing import Pacing
from btic.transfer.sealing import Sealed
from btic.transfer.summary import Summary
from btic.types import Delivery, TransferContext


@dataclass(frozen=True)
class Deferred:
    """An item a destination holds in a batch, to be recorded when it is flushed."""

    ctx: TransferContext
    delivery: Delivery
    item_time: datetime | None
    summary: Summary
    size: int
    #: as handed over: sealed or not
    handed: Sealed


class Batches:
    """The unflushed batch of each batching destination."""

    def __init__(self, plugins: PluginManager, pacing: Pacing):
        self.plugins = plugins
        self.pacing = pacing
        self._held: dict[str, list[Deferred]] = {}
        self._began: dict[str, float] = {}
        self._bytes: dict[str, int] = {}
        # A batching destination's hand-overs and flushes never interleave, so a
        # flush's failures name exactly the items the core holds for it.
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()

    def lock(self, destination: str) -> threading.RLock | nullcontext[None]:
        """Held around each hand-over and flush of a batching destination; none for
        the others (their recordings are delivered in parallel)."""
        if not self.plugins.can_flush(destination):
            return nullcontext()
        with self._locks_lock:
            return self._locks.setdefault(destination, threading.RLock())

    def would_overflow(self, destination: str, size: int) -> bool:
        """Whether ``size`` more bytes would take the held batch past its budget."""
        budget = self.pacing.limits(destination).batch_bytes
        return (
            budget is not None
            and bool(self._held.get(destination))
            and self._bytes.get(destination, 0) + size > budget
        )

    def add(self, entry: Deferred) -> bool:
        """Hold ``entry``; True when its batch is now due to be flushed."""
        destination = entry.ctx.destination
        limits = self.pacing.limits(destination)
        batch = self._held.setdefault(destination, [])
        if not batch:
            self._began[destination] = time.monotonic()
            self._bytes[destination] = 0
        batch.append(entry)
        self._bytes[destination] += entry.size
        age = time.monotonic() - self._began[destination]
        held = self._bytes[destination]
        full = limits.batch_bytes is not None and held >= limits.batch_bytes
        return len(batch) >= limits.batch_items or age >= limits.batch_seconds or full

    def holders(self) -> list[str]:
        """The destinations holding a batch (or that did)."""
        return list(self._held)

    def take(self, destination: str) -> list[Deferred]:
        """The destination's batch, no longer held (call it under :meth:`lock`)."""
        return self._held.pop(destination, [])
