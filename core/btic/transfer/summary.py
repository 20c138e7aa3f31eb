"""What a run reports: counts per destination and data type, problems, notes.

A :class:`Summary` is filled from the download threads of a run, so every
change to it goes through a method that takes its lock.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

from btic.state import DELIVERED


@dataclass
class Tally:
    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    expired: int = 0
    #: listed, but the ledger has it settled already (not offered again without --force)
    already: int = 0
    #: older items the destination removed under its retention setting
    removed: int = 0
    bytes: int = 0

    def add(self, other: Tally) -> None:
        for counter in fields(self):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class Summary:
    """Counts per (destination, data type), and the problems met.

    :ivar problems: one line per failure, for the user.
    :ivar given_up: failures that will not be retried until ``--force``.
    :ivar notes: things the user should know that are not failures.
    :ivar planned: what a dry run would transfer, per (destination, data type).
    :ivar held_elsewhere: the (destination, data type) pairs skipped because
        another run held them (their items wait for a later run).
    """

    tallies: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    problems: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    held_elsewhere: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, destination: str, data_type: str, status: str, size: int | None = None) -> None:
        with self._lock:
            tally = self.tallies[(destination, data_type)]
            setattr(tally, status, getattr(tally, status) + 1)
            if status == DELIVERED and size:
                tally.bytes += size

    def removed(self, destination: str, data_type: str, count: int) -> None:
        """``count`` older items the destination removed under its retention setting."""
        if count:
            with self._lock:
                self.tallies[(destination, data_type)].removed += count

    def already(self, destination: str, data_type: str, count: int) -> None:
        """``count`` items the ledger had settled for this destination already."""
        if count:
            with self._lock:
                self.tallies[(destination, data_type)].already += count

    def problem(self, message: str) -> None:
        with self._lock:
            self.problems.append(message)

    def give_up(self, message: str) -> None:
        with self._lock:
            self.given_up.append(message)

    def note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)

    def held(self, destination: str, data_type: str, message: str) -> None:
        """Another run holds this pair: skipped, with ``message`` as the note."""
        with self._lock:
            self.held_elsewhere.append((destination, data_type))
            self.notes.append(message)

    def plan(self, destination: str, data_type: str, items: list[str]) -> None:
        with self._lock:
            self.planned[(destination, data_type)].extend(items)

    def as_json(self) -> dict[str, object]:
        """The summary as plain data (``--json``)."""
        with self._lock:
            return {
                "ok": not self.failed,
                "tallies": [
                    {"destination": destination, "data_type": data_type, **asdict(tally)}
                    for (destination, data_type), tally in sorted(self.tallies.items())
                ],
                "problems": list(dict.fromkeys(self.problems)),
                "given_up": list(self.given_up),
                "notes": list(dict.fromkeys(self.notes)),
            }

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(t.failed for t in self.tallies.values())

    def merge(self, other: Summary) -> None:
        with self._lock:
            for key, tally in other.tallies.items():
                self.tallies[key].add(tally)
            self.problems.extend(other.problems)
            self.given_up.extend(other.given_up)
            self.notes.extend(other.notes)
            self.held_elsewhere.extend(other.held_elsewhere)
            for key, items in other.planned.items():
                self.planned[key].extend(items)


class Reporter(Protocol):
    """Where progress goes: bars on a terminal, log lines otherwise."""

    def delivered(
        self,
        site: str,
        destination: str,
        data_type: str,
        key: str,
        status: str,
        detail: str,
        size: int | None,
    ) -> None: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def delivered(
        self,
        site: str,
        destination: str,
        data_type: str,
        key: str,
        status: str,
        detail: str,
        size: int | None,
    ) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class Reporters:
    """Several reporters as one (bars on the terminal and the daemon's metrics)."""

    def __init__(self, *reporters: Reporter):
        self.reporters = reporters

    def delivered(
        self,
        site: str,
        destination: str,
        data_type: str,
        key: str,
        status: str,
        detail: str,
        size: int | None,
    ) -> None:
        for reporter in self.reporters:
            reporter.delivered(site, destination, data_type, key, status, detail, size)

    def note(self, message: str) -> None:
        for reporter in self.reporters:
            reporter.note(message)
