"""What a session run still owes each destination, shared by its threads."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from btic.types import DataType

#: (data type, destination): one destination's share of a data type.
Pair = tuple[DataType, str]


class Pending:
    """(data type, destination) -> lsids still to settle in this run.

    The session run's thread delivers reports and reads what is left while its
    download threads settle recordings, so every read and change takes the lock;
    what leaves is a copy.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owed: dict[Pair, set[str]] = {}

    def owe(self, data_type: DataType, destination: str, lsids: Iterable[str]) -> None:
        """Add ``lsids`` to what this destination is owed (the pair is known from
        now on, even with none: its watermark may then move to the window's end)."""
        with self._lock:
            self._owed.setdefault((data_type, destination), set()).update(lsids)

    def owes(self, data_type: DataType, destination: str, lsid: str) -> bool:
        with self._lock:
            return lsid in self._owed.get((data_type, destination), ())

    def owed_anywhere(self, lsid: str) -> bool:
        with self._lock:
            return any(lsid in owed for owed in self._owed.values())

    def pairs_owed(self, lsid: str) -> list[Pair]:
        """The pairs that are owed ``lsid``."""
        with self._lock:
            return [pair for pair, owed in self._owed.items() if lsid in owed]

    def settle(self, data_type: DataType, destination: str, lsids: Iterable[str]) -> None:
        """``lsids`` are in (or finally out) for this destination: no longer owed."""
        with self._lock:
            self._owed.get((data_type, destination), set()).difference_update(lsids)

    def left(self) -> dict[Pair, frozenset[str]]:
        """A copy of what is still owed, per pair."""
        with self._lock:
            return {pair: frozenset(owed) for pair, owed in self._owed.items()}
