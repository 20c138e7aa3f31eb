"""The statuses btic records: of an item in the ledger, and of a run, a schedule's
slot or a Celery task. Kept apart from the database code, so what only reads a
status (notifications, metrics, the command line) need not load it."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A status as text: its value, which equals (and hashes like) the plain text a
    row of the state database holds, so a row's ``"delivered"`` is ``DELIVERED``."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __hash__(self) -> int:
        return hash(str(self.value))

    def __repr__(self) -> str:
        # Logs render values with repr(): a line says status='ok', as it always has.
        return repr(str(self.value))


class LedgerStatus(Status):
    """What the ledger says became of an item at a destination."""

    DELIVERED = "delivered"
    SKIPPED = "skipped"
    FAILED = "failed"
    EXPIRED = "expired"
    #: A failure that retrying cannot mend: the item itself is refused (a destination's
    #: permanent error) or absent (the appliance, run after run). Never an outage.
    GIVEN_UP = "given_up"
    #: A session with no recording of a kind: nothing to fetch, nothing stored. Not
    #: SKIPPED, which is a destination's choice not to store an item it was offered.
    NO_RECORDING = "no_recording"
    #: Deleted from the destination by a retention rule (``btic_removals`` says which,
    #: and when): never fetched again, and not missing.
    REMOVED = "removed"


class RunStatus(Status):
    """How a run (``btic_runs``), a schedule's slot or a Celery task went, or where it is."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    #: btic itself failed (the state database, a plugin's bug): the slot runs again
    ERROR = "error"
    #: handed to Celery workers (a schedule's slot, a task)
    QUEUED = "queued"
    #: a task put back because its site had its fill of tasks
    RETRIED = "retried"


class Transient(Status):
    """What became of an item in this run that no ledger row says: the engine's own,
    never stored."""

    #: a batching destination holds it; recorded when its batch is flushed
    DEFERRED = "deferred"
    #: the recording could not be fetched for a reason of this machine (its spool
    #: disk): nothing is marked against the item, and it stays pending
    NOT_FETCHED = "not fetched"


__all__ = ["LedgerStatus", "RunStatus", "Status", "Transient"]
