"""The digests btic wrote into each destination, and what a run's digest lists: the
part of the state database :mod:`btic.digests` works on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from btic.integrity import DigestEntry
from btic.state.schema import deliveries, digests, removals
from btic.state.values import aware
from btic.statuses import LedgerStatus


class DigestRecords:
    """The part of :class:`~btic.state.StateStore` that keeps the digests' chain."""

    engine: Engine
    _write_lock: threading.Lock
    flush_records: Callable[[], None]

    def run_entries(self, destination: str, run_id: str) -> list[DigestEntry]:
        """What run ``run_id`` delivered to ``destination`` and removed from it."""
        self.flush_records()
        entries: list[DigestEntry] = []
        with self.engine.connect() as connection:
            delivered = connection.execute(
                select(deliveries)
                .where(
                    (deliveries.c.destination == destination)
                    & (deliveries.c.run_id == run_id)
                    & (deliveries.c.status == LedgerStatus.DELIVERED)
                    & deliveries.c.location.is_not(None)
                )
                .order_by(deliveries.c.id)
            )
            entries += [_entry("delivered", row, row.size) for row in delivered]
            removed = connection.execute(
                select(removals)
                .where((removals.c.destination == destination) & (removals.c.run_id == run_id))
                .order_by(removals.c.id)
            )
            entries += [_entry("removed", row, None) for row in removed]
        return entries

    def last_digest(self, destination: str) -> tuple[str, str] | None:
        """(name, sha256) of the destination's latest digest."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(digests.c.name, digests.c.sha256)
                .where(digests.c.destination == destination)
                .order_by(digests.c.name.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.name, row.sha256)

    def last_digest_time(self, destination: str) -> datetime | None:
        """When the destination's latest digest was written."""
        with self.engine.connect() as connection:
            moment = connection.execute(
                select(digests.c.created_at)
                .where(digests.c.destination == destination)
                .order_by(digests.c.name.desc())
                .limit(1)
            ).scalar()
        return aware(moment)

    def digest_names(self, destination: str) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(digests.c.name)
                .where(digests.c.destination == destination)
                .order_by(digests.c.name)
            )
            return [row.name for row in rows]

    def record_digest(
        self,
        *,
        destination: str,
        name: str,
        sha256: str,
        run_id: str,
        location: str | None,
        created_at: datetime,
    ) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                digests.insert().values(
                    destination=destination,
                    name=name,
                    sha256=sha256,
                    run_id=run_id,
                    location=location,
                    created_at=created_at,
                )
            )


def _entry(action: str, row: Any, size: int | None) -> DigestEntry:
    return DigestEntry(
        action=action,
        site=row.site,
        data_type=row.data_type,
        item_key=row.item_key,
        location=row.location,
        sha256=row.sha256,
        size=size,
    )
