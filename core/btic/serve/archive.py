"""What the viewer reads: the state database's index and ledger, and the archived
items themselves through their destinations' ``on_open``.

Nothing here writes. A session's report is read from the archive (the file, the
object), checked against the sha256 the ledger recorded, and parsed with btic's
own parser, so what a page shows is what is archived.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from btic.appliance.model import Product, ReportKind, Session
from btic.appliance.parse import iter_sessions
from btic.config import Config
from btic.errors import ConfigError, DestinationError, ReportError
from btic.find import FoundSession, find
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.state.entries import LedgerEntry
from btic.state.session_index import SessionQuery
from btic.state.verification import DestinationIntegrity
from btic.statuses import LedgerStatus
from btic.stored import stored_item_of
from btic.types import DataType

#: A report larger than this is not read into a page (its recordings and raw XML
#: still stream): 5,000 events are about 2 MB.
MOST_REPORT_BYTES = 64 * 1024 * 1024
#: The data types whose item is a session's XML report.
REPORT_TYPES = frozenset({DataType.SESSION.value, DataType.PRESENTATION.value})


class Unavailable(Exception):
    """An item the viewer cannot show: its destination cannot be read or opened."""


@dataclass(frozen=True)
class ReadReport:
    """A session's report as read from the archive.

    :ivar session: parsed; None when no archived copy could be read (``reason`` says why).
    :ivar source: the ledger entry it was read from.
    :ivar intact: the bytes read hash to the sha256 the ledger recorded.
    """

    session: Session | None
    source: LedgerEntry | None
    intact: bool
    reason: str | None


class ArchiveReader:
    """The archive as ``config`` describes it, read-only, shared by every request."""

    def __init__(self, config: Config, plugins: PluginManager, state: StateStore):
        self._config = config
        self._plugins = plugins
        self._state = state
        self._configured: set[str] = set()
        self._configuring = threading.Lock()

    @property
    def destinations(self) -> list[str]:
        return list(self._config.destinations)

    def search(self, query: SessionQuery) -> list[FoundSession]:
        return find(self._state, query)

    def session(self, site: str, lsid: str) -> FoundSession | None:
        """The session ``lsid`` of ``site`` with its items; None when the archive has none."""
        found = find(self._state, SessionQuery(site=site, lsid=lsid, limit=1))
        return found[0] if found else None

    def integrity(self) -> list[DestinationIntegrity]:
        return self._state.integrity_overview(self.destinations)

    def can_open(self, entry: LedgerEntry) -> bool:
        """Whether ``entry``'s bytes can be read: delivered, and a destination that opens."""
        return (
            entry.status == LedgerStatus.DELIVERED
            and entry.location is not None
            and entry.destination in self._config.destinations
            and self._plugins_for(entry.destination).can_open(entry.destination)
        )

    def open(self, entry: LedgerEntry) -> IO[bytes]:
        """``entry``'s bytes as stored (sealed items stay sealed); the caller closes it.

        :raises Unavailable: when they cannot be read.
        """
        if not self.can_open(entry):
            raise Unavailable(f"destination {entry.destination} cannot be read by the viewer")
        try:
            stored = stored_item_of(self._config, entry)
            return self._plugins.on_open(entry.destination, item=stored)
        except DestinationError as exc:
            raise Unavailable(f"destination {entry.destination}: {exc}") from None

    def read_report(self, found: FoundSession) -> ReadReport:
        """The session's report from the first destination that can give it in clear."""
        reports = [item for item in found.items if item.data_type in REPORT_TYPES]
        readable = [item for item in reports if self.can_open(item) and not item.encrypted]
        if not readable:
            if any(item.encrypted for item in reports):
                reason = "its report is encrypted; the viewer does not decrypt (btic decrypt does)"
            elif reports:
                reason = "its report is held where the viewer cannot read it back: " + ", ".join(
                    sorted({item.destination for item in reports})
                )
            else:
                reason = "the archive holds no report of it"
            return ReadReport(None, None, False, reason)
        problems = []
        for item in readable:
            try:
                return self._parsed(found, item)
            except (Unavailable, ReportError, _TooLarge) as exc:
                problems.append(f"{item.destination}: {exc}")
        return ReadReport(None, None, False, "; ".join(problems))

    def _parsed(self, found: FoundSession, item: LedgerEntry) -> ReadReport:
        with self.open(item) as stream:
            data = _read_at_most(stream, MOST_REPORT_BYTES)
        intact = item.sha256 is not None and hashlib.sha256(data).hexdigest() == item.sha256
        s = found.session
        product = cast("Product", s.product)
        kind: ReportKind = (
            "presentation"
            if item.data_type == DataType.PRESENTATION.value
            else ("access" if product == "pa" else "support")
        )
        for session, _ in iter_sessions(
            io.BytesIO(data), product=product, report=kind, host=s.host
        ):
            if session.lsid == s.lsid:
                return ReadReport(session, item, intact, None)
        raise ReportError("", f"{item.location} holds no session {s.lsid}")

    def _plugins_for(self, destination: str) -> PluginManager:
        """The plugin manager with ``destination`` configured (once, on first use)."""
        with self._configuring:
            if destination not in self._configured:
                try:
                    self._config.configure_destination(self._plugins, destination)
                except ConfigError as exc:
                    raise Unavailable(str(exc)) from None
                self._configured.add(destination)
        return self._plugins


class _TooLarge(Exception):
    pass


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    chunks, total = [], 0
    for chunk in iter(lambda: stream.read(1024 * 1024), b""):
        total += len(chunk)
        if total > limit:
            raise _TooLarge(f"the report is larger than {limit // (1024 * 1024)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def body_of(stream: IO[bytes], start: int, length: int | None) -> Iterator[bytes]:
    """``length`` bytes of ``stream`` from ``start`` (to the end when None), in 1 MiB
    chunks, and the stream closed at the end: a download's memory stays flat."""
    try:
        if start:
            if _seekable(stream):
                stream.seek(start)
            else:
                skip = start
                while skip:
                    chunk = stream.read(min(skip, 1024 * 1024))
                    if not chunk:
                        return
                    skip -= len(chunk)
        left = length
        while left is None or left > 0:
            chunk = stream.read(1024 * 1024 if left is None else min(left, 1024 * 1024))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        stream.close()


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except AttributeError:  # a stream without seekable() (botocore's before 1.31) cannot
        return False
