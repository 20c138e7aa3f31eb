"""Legal holds, the items retention is due for, and the record of each removal: the
part of the state database :mod:`btic.retention` works on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from btic.state.entries import LedgerEntry, is_session_marker, ledger_entry
from btic.state.schema import REMOVED, deliveries, holds, removals
from btic.state.values import as_utc, fit_column, now, stored_key
from btic.statuses import LedgerStatus


@dataclass(frozen=True)
class Hold:
    """A legal hold on one session: no retention rule deletes any of its items."""

    site: str
    lsid: str
    reason: str
    held_by: str
    held_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "lsid": self.lsid,
            "reason": self.reason,
            "held_by": self.held_by,
            "held_at": self.held_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class DueItem:
    """An item past a retention rule's period, as the ledger has it."""

    site: str
    item_key: str
    location: str | None
    sha256: str | None
    size: int | None
    item_time: datetime


class RetentionRecords:
    """The part of :class:`~btic.state.StateStore` that keeps holds and removals."""

    engine: Engine
    _write_lock: threading.Lock
    flush_records: Callable[[], None]

    def add_holds(self, site: str, lsids: Iterable[str], *, reason: str, held_by: str) -> int:
        """Hold each session (one already held keeps its first hold); return how many
        were newly held."""
        added = 0
        moment = now()
        with self._write_lock, self.engine.begin() as connection:
            rows = connection.execute(select(holds.c.lsid).where(holds.c.site == site))
            held = {row.lsid for row in rows}
            for lsid in dict.fromkeys(fit_column(lsid, 255) for lsid in lsids):
                if lsid in held:
                    continue
                try:
                    connection.execute(
                        holds.insert().values(
                            site=site, lsid=lsid, reason=reason, held_by=held_by, held_at=moment
                        )
                    )
                except IntegrityError:
                    continue
                added += 1
        return added

    def remove_holds(self, site: str, lsids: Iterable[str]) -> int:
        """Lift the holds of these sessions; return how many there were."""
        wanted = [fit_column(lsid, 255) for lsid in lsids]
        with self._write_lock, self.engine.begin() as connection:
            return int(
                connection.execute(
                    delete(holds).where((holds.c.site == site) & holds.c.lsid.in_(wanted))
                ).rowcount
                or 0
            )

    def holds(self, site: str | None = None) -> list[Hold]:
        query = select(holds).order_by(holds.c.site, holds.c.held_at, holds.c.lsid)
        if site is not None:
            query = query.where(holds.c.site == site)
        with self.engine.connect() as connection:
            return [
                Hold(row.site, row.lsid, row.reason, row.held_by, as_utc(row.held_at))
                for row in connection.execute(query)
            ]

    def delivered_items_of(self, site: str, lsids: Iterable[str]) -> list[LedgerEntry]:
        """The items of these sessions (reports and recordings) delivered anywhere."""
        self.flush_records()
        wanted = sorted(set(lsids))
        found: list[LedgerEntry] = []
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 100):
                chunk = wanted[start : start + 100]
                key = deliveries.c.item_key
                keys = or_(
                    key.in_(chunk),
                    *(key.startswith(f"{lsid}#", autoescape=True) for lsid in chunk),
                )
                query = select(deliveries).where(
                    (deliveries.c.site == site)
                    & (deliveries.c.status == LedgerStatus.DELIVERED)
                    & keys
                )
                found += [
                    entry
                    for entry in map(ledger_entry, connection.execute(query))
                    if not is_session_marker(entry.data_type, entry.item_key)
                ]
        return found

    def due_for_removal(
        self, destination: str, data_type: str, before: datetime
    ) -> Iterator[DueItem]:
        """Each item delivered to ``destination`` whose time is before ``before``,
        oldest first."""
        self.flush_records()
        query = (
            select(
                deliveries.c.site,
                deliveries.c.item_key,
                deliveries.c.location,
                deliveries.c.sha256,
                deliveries.c.size,
                deliveries.c.item_time,
            )
            .where(
                (deliveries.c.destination == destination)
                & (deliveries.c.status == LedgerStatus.DELIVERED)
                & (deliveries.c.data_type == data_type)
                & (deliveries.c.item_time < before)
            )
            .order_by(deliveries.c.item_time)
        )
        with self.engine.connect().execution_options(yield_per=1000) as connection:
            for row in connection.execute(query):
                when = as_utc(row.item_time)
                yield DueItem(row.site, row.item_key, row.location, row.sha256, row.size, when)

    def record_removal(
        self,
        *,
        site: str,
        destination: str,
        data_type: str,
        item_key: str,
        location: str | None,
        sha256: str | None,
        rule: str,
        run_id: str,
    ) -> None:
        """The item is gone from the destination by ``rule``: its ledger row says
        ``removed`` (so it is never fetched again, nor called missing), and the
        removals keep when, why and what it was, in the same transaction."""
        moment = now()
        key = stored_key(item_key)
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(
                    (deliveries.c.site == site)
                    & (deliveries.c.destination == destination)
                    & (deliveries.c.data_type == data_type)
                    & (deliveries.c.item_key == key)
                )
                .values(status=REMOVED, run_id=run_id, error=None, updated_at=moment)
            )
            connection.execute(
                removals.insert().values(
                    site=site,
                    destination=destination,
                    data_type=data_type,
                    item_key=key,
                    location=location,
                    sha256=sha256,
                    rule=fit_column(rule, 255),
                    run_id=run_id,
                    removed_at=moment,
                )
            )
