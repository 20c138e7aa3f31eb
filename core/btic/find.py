"""``btic find``: sessions in the archive, and where each of their items is.

The session index (:mod:`btic.state.session_index`) says which sessions match;
the ledger says what became of each of their items at each destination. Nothing
is read back from a destination, so a search works over any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from btic.state import StateStore
from btic.state.entries import LedgerEntry
from btic.state.session_index import IndexedSession, SessionQuery
from btic.types import DataType

#: The data types of a session (a backup belongs to no session).
SESSION_DATA_TYPES = frozenset(DataType) - {DataType.BACKUP}


@dataclass(frozen=True)
class FoundSession:
    """A session that matched, and its items in the ledger."""

    session: IndexedSession
    items: tuple[LedgerEntry, ...]

    def as_json(self) -> dict[str, Any]:
        s = self.session
        return {
            "site": s.site,
            "lsid": s.lsid,
            "appliance": s.host,
            "product": s.product,
            "start_time": iso_time(s.start_time),
            "end_time": iso_time(s.end_time),
            "external_key": s.external_key,
            "people": list(s.people),
            "customers": list(s.customers),
            "items": [_item_json(item) for item in self.items],
        }


def find(
    state: StateStore,
    query: SessionQuery,
    *,
    data_types: Iterable[DataType] = (),
    destinations: Iterable[str] = (),
) -> list[FoundSession]:
    """The sessions matching ``query`` with their items; with ``data_types`` or
    ``destinations``, only sessions that have such an item, and only those items."""
    wanted_types = {dt.value for dt in data_types}
    wanted_destinations = set(destinations)
    sessions = state.find_sessions(query)
    ledger = state.items_by_key((s.site, key) for s in sessions for key in s.item_keys)
    found = []
    for session in sessions:
        items = tuple(
            item
            for key in session.item_keys
            for item in ledger.get((session.site, key), ())
            if (not wanted_types or item.data_type in wanted_types)
            and (not wanted_destinations or item.destination in wanted_destinations)
        )
        if (wanted_types or wanted_destinations) and not items:
            continue
        found.append(FoundSession(session, items))
    return found


def _item_json(item: LedgerEntry) -> dict[str, Any]:
    return {
        "destination": item.destination,
        "data_type": item.data_type,
        "item_key": item.item_key,
        "status": str(item.status),
        "location": item.location,
        "size": item.size,
        "sha256": item.sha256,
        # Sealed to the destination's age recipients: sha256 is the stored file's,
        # plain_sha256 what its decrypted bytes hash to.
        "encrypted": item.encrypted,
        "plain_sha256": item.plain_sha256,
        "recorded_at": iso_time(item.updated_at),
        "verified_at": iso_time(item.verified_at),
    }


def iso_time(moment: datetime | None) -> str | None:
    """A UTC time as the JSON answers and manifests write it (``...Z``)."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
