"""When ``btic verify`` last found each item as delivered: the part of the state
database :mod:`btic.verify` writes, and ``find`` and ``export`` show."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine

from btic.state.schema import deliveries
from btic.state.values import stored_key
from btic.statuses import LedgerStatus

#: Findings beyond this many in one verify leave the times unrecorded (a statement
#: excludes them by key; a destination this broken is not "verified" anyway).
MOST_EXCLUDED = 1000


class VerificationRecords:
    """The part of :class:`~btic.state.StateStore` that keeps verification times."""

    engine: Engine
    _write_lock: threading.Lock
    flush_records: Callable[[], None]

    def record_verified(
        self,
        destination: str,
        *,
        started: datetime,
        site: str | None = None,
        since: datetime | None = None,
        except_keys: Collection[str] = (),
    ) -> int:
        """Set ``verified_at = started`` on every item delivered to ``destination``
        before ``started`` (of ``site``; whose time is at or after ``since``), but the
        ledger keys of ``except_keys`` (the items found missing, changed or tampered
        with). Returns the rows updated; 0 when the findings are too many to name."""
        if len(except_keys) > MOST_EXCLUDED:
            return 0
        self.flush_records()
        condition = (
            (deliveries.c.destination == destination)
            & (deliveries.c.status == LedgerStatus.DELIVERED)
            & deliveries.c.location.is_not(None)
            & (deliveries.c.updated_at <= started)
        )
        if site is not None:
            condition &= deliveries.c.site == site
        if since is not None:
            condition &= deliveries.c.item_time >= since
        if except_keys:
            condition &= deliveries.c.item_key.not_in([stored_key(k) for k in except_keys])
        with self._write_lock, self.engine.begin() as connection:
            result = connection.execute(
                update(deliveries).where(condition).values(verified_at=started)
            )
        return int(result.rowcount or 0)
