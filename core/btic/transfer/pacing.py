"""What a destination asks of the core's pace: its limits, and pauses while it is busy.

A plugin declares :class:`~btic.types.DeliveryLimits` (how many of its hooks at
once, how large its batches), and raises :class:`~btic.errors.DestinationBusy`
when its service asks to be left alone for a while. :class:`Pacing` keeps both
for one run: every delivery to a busy destination waits until the pause it asked
for is over, so the service is not hammered and no item is recorded as failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from structlog.typing import FilteringBoundLogger

from btic.types import DeliveryLimits

#: Seconds a run waits, in all, on a destination that says it is busy, before it
#: leaves the destination alone for the rest of the run (its items stay pending).
BUSY_PATIENCE = 900.0
#: The longest one pause of a busy destination lasts, whatever it asked for.
LONGEST_BUSY_WAIT = 300.0


class Pacing:
    """Each destination's limits and pauses, for one run.

    :param limits_of: reads a destination's limits (from its plugin), once.
    :param stop: set when the run stops after the items in hand: waits end at once.
    """

    def __init__(
        self,
        limits_of: Callable[[str], DeliveryLimits],
        stop: threading.Event,
        *,
        log: FilteringBoundLogger,
    ):
        self._limits_of = limits_of
        self._stop = stop
        self._log = log
        self._lock = threading.Lock()
        self._limits: dict[str, DeliveryLimits] = {}
        self._gates: dict[str, threading.BoundedSemaphore] = {}
        # destination -> when it may be offered items again; seconds waited on it
        self._resume_at: dict[str, float] = {}
        self._waited: dict[str, float] = {}

    def limits(self, destination: str) -> DeliveryLimits:
        with self._lock:
            limits = self._limits.get(destination)
            if limits is None:
                limits = self._limits[destination] = self._limits_of(destination)
                if limits.concurrency is not None:
                    self._gates[destination] = threading.BoundedSemaphore(limits.concurrency)
            return limits

    def gate(self, destination: str) -> AbstractContextManager[object]:
        """Held while one of the destination's hooks runs (its ``concurrency``)."""
        self.limits(destination)
        return self._gates.get(destination) or nullcontext()

    def pause(self, destination: str, retry_after: float, detail: str) -> None:
        """Hold every delivery to ``destination`` for as long as it asked."""
        delay = min(max(float(retry_after), 0.0), LONGEST_BUSY_WAIT)
        with self._lock:
            resume = time.monotonic() + delay
            self._resume_at[destination] = max(self._resume_at.get(destination, 0.0), resume)
        self._log.info("destination busy", destination=destination, wait=delay, detail=detail)

    def wait(self, destination: str) -> float | None:
        """Wait until ``destination``'s pause is over: None then; else the seconds
        already waited on it this run, when waiting longer would pass
        :data:`BUSY_PATIENCE` or the run stops."""
        while True:
            with self._lock:
                delay = self._resume_at.get(destination, 0.0) - time.monotonic()
                waited = self._waited.get(destination, 0.0)
                if delay <= 0:
                    return None
                if waited + delay > BUSY_PATIENCE:
                    return waited
                self._waited[destination] = waited + delay
            if self._stop.wait(delay):
                return waited + delay
