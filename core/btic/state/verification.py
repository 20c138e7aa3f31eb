"""What ``btic verify`` last found: when each item was found as delivered (``find``
and ``export`` show it) and each destination's last report (the viewer's integrity
page shows it): the part of the state database :mod:`btic.verify` writes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from btic.state.schema import deliveries, digests, verifications
from btic.state.values import aware, stored_key
from btic.statuses import LedgerStatus

#: Findings beyond this many in one verify leave the times unrecorded (a statement
#: excludes them by key; a destination this broken is not "verified" anyway).
MOST_EXCLUDED = 1000


@dataclass(frozen=True)
class DestinationIntegrity:
    """One destination as the state database knows it, for the integrity page.

    :ivar delivered: items the ledger says it holds.
    :ivar verified: of those, the ones a ``btic verify`` has found intact.
    :ivar oldest_verified: the earliest of their ``verified_at`` (the stalest proof).
    :ivar digests: signed digests written into it; ``last_digest_at`` the latest's time.
    :ivar report: its last ``btic verify`` report (JSON), None when never verified.
    """

    destination: str
    delivered: int
    verified: int
    oldest_verified: datetime | None
    digests: int
    last_digest_at: datetime | None
    verified_at: datetime | None
    report: str | None


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

    def record_verify_report(self, destination: str, finished_at: datetime, report: str) -> None:
        """Keep ``report`` (JSON) as ``destination``'s last verify, replacing the one before."""
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                delete(verifications).where(verifications.c.destination == destination)
            )
            connection.execute(
                verifications.insert().values(
                    destination=destination, finished_at=finished_at, report=report
                )
            )

    def integrity_overview(self, destinations: Collection[str]) -> list[DestinationIntegrity]:
        """Each of ``destinations``: its items, how many are proven, its digests and
        its last verify report, in the order given."""
        self.flush_records()
        held = (deliveries.c.status == LedgerStatus.DELIVERED) & deliveries.c.location.is_not(None)
        with self.engine.connect() as connection:
            items = {
                row.destination: row
                for row in connection.execute(
                    select(
                        deliveries.c.destination,
                        func.count().label("delivered"),
                        func.count(deliveries.c.verified_at).label("verified"),
                        func.min(deliveries.c.verified_at).label("oldest"),
                    )
                    .where(held & deliveries.c.destination.in_(list(destinations)))
                    .group_by(deliveries.c.destination)
                )
            }
            chained = {
                row.destination: row
                for row in connection.execute(
                    select(
                        digests.c.destination,
                        func.count().label("digest_count"),
                        func.max(digests.c.created_at).label("last"),
                    ).group_by(digests.c.destination)
                )
            }
            reports = {row.destination: row for row in connection.execute(select(verifications))}
        overview = []
        for name in destinations:
            counted, chain, report = items.get(name), chained.get(name), reports.get(name)
            overview.append(
                DestinationIntegrity(
                    destination=name,
                    delivered=counted.delivered if counted else 0,
                    verified=counted.verified if counted else 0,
                    oldest_verified=aware(counted.oldest) if counted else None,
                    digests=chain.digest_count if chain else 0,
                    last_digest_at=aware(chain.last) if chain else None,
                    verified_at=aware(report.finished_at) if report else None,
                    report=report.report if report else None,
                )
            )
        return overview
