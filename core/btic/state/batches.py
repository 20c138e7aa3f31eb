"""Group commit of the ledger: outcomes that may wait, written many to a transaction.

A commit per delivered item costs a disk flush per item (SQLite's full sync,
PostgreSQL's WAL flush): a third of a run of small session reports. An item
a destination has made durable may be recorded a moment later without
risk: if btic dies before the commit, the next run finds the item not
recorded and delivers it again, and the destination recognises what it has
(a file with identical content, a row replaced by key, an object with the
same checksum). So successes wait in a :class:`PendingRecords` for up to
:data:`GROUP_ITEMS` items or :data:`GROUP_SECONDS`, and are written in one
transaction; failures are written at once, since their count of attempts
decides when an item is given up. The store writes the pending records before
anything reads the ledger or moves a watermark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from btic.state.schema import deliveries

#: Outcomes written at most this many at a time, and after at most this long.
GROUP_ITEMS = 500
GROUP_SECONDS = 1.0
#: Keys per IN (...) when looking up which rows exist.
_LOOKUP_CHUNK = 500

_Key = tuple[str, str, str, str]


class PendingRecords:
    """Outcomes waiting for their commit, the latest per item."""

    def __init__(self) -> None:
        self._records: dict[_Key, dict[str, Any]] = {}
        self._since = 0.0
        self._lock = threading.Lock()

    def add(self, key: _Key, values: dict[str, Any]) -> bool:
        """Keep ``values`` for the item ``key`` (site, destination, data type, stored
        item key); True when the group is full or old enough to be written."""
        with self._lock:
            if not self._records:
                self._since = time.monotonic()
            self._records[key] = values
            return (
                len(self._records) >= GROUP_ITEMS or time.monotonic() - self._since >= GROUP_SECONDS
            )

    def settled(self, site: str, destination: str, data_type: str, keys: Iterable[str]) -> set[str]:
        """The stored keys among ``keys`` waiting here (every outcome waiting is settled)."""
        with self._lock:
            return {k for k in keys if (site, destination, data_type, k) in self._records}

    def take(self) -> dict[_Key, dict[str, Any]]:
        with self._lock:
            records, self._records = self._records, {}
        return records

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


def write(connection: Connection, records: dict[_Key, dict[str, Any]], moment: datetime) -> None:
    """Upsert ``records`` in ``connection``'s transaction: one UPDATE executemany for
    the rows that exist, one INSERT executemany for the rest."""
    groups: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for (site, destination, data_type, item_key), values in records.items():
        groups.setdefault((site, destination, data_type), {})[item_key] = values
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for (site, destination, data_type), items in groups.items():
        existing = set(_existing(connection, site, destination, data_type, items))
        for item_key, values in items.items():
            row = {"site": site, "destination": destination, "data_type": data_type}
            if item_key in existing:
                updates.append({**{f"k_{k}": v for k, v in row.items()}, "k_item": item_key,
                                **values, "attempts": 0})  # fmt: skip
            else:
                inserts.append(
                    {**row, "item_key": item_key, **values, "attempts": 0, "created_at": moment}
                )
    if updates:
        columns = [c for c in updates[0] if not c.startswith("k_")]
        connection.execute(
            update(deliveries)
            .where(
                and_(
                    deliveries.c.site == bindparam("k_site"),
                    deliveries.c.destination == bindparam("k_destination"),
                    deliveries.c.data_type == bindparam("k_data_type"),
                    deliveries.c.item_key == bindparam("k_item"),
                )
            )
            .values({column: bindparam(column) for column in columns}),
            updates,
        )
    if inserts:
        connection.execute(deliveries.insert(), inserts)


def _existing(
    connection: Connection, site: str, destination: str, data_type: str, keys: Iterable[str]
) -> list[str]:
    keys = list(keys)
    found: list[str] = []
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        rows = connection.execute(
            select(deliveries.c.item_key).where(
                (deliveries.c.site == site)
                & (deliveries.c.destination == destination)
                & (deliveries.c.data_type == data_type)
                & deliveries.c.item_key.in_(keys[start : start + _LOOKUP_CHUNK])
            )
        )
        found.extend(row[0] for row in rows)
    return found
