"""Watermarks: how far each (site, data type, destination) has come, so an
incremental run asks the appliance only for what ended since."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from btic.state.schema import watermarks
from btic.state.values import as_utc, aware, now


class Watermarks:
    """The part of :class:`~btic.state.StateStore` that keeps the watermarks."""

    engine: Engine
    _write_lock: threading.Lock
    #: commits the ledger's waiting outcomes first (the store's own; see batches.py)
    flush_records: Callable[[], None]

    def watermark(self, site: str, data_type: str, destination: str) -> datetime | None:
        self.flush_records()
        with self.engine.connect() as connection:
            value = connection.execute(
                select(watermarks.c.position).where(
                    (watermarks.c.site == site)
                    & (watermarks.c.data_type == data_type)
                    & (watermarks.c.destination == destination)
                )
            ).scalar()
        return aware(value)

    def watermark_entry(
        self, site: str, data_type: str, destination: str
    ) -> tuple[datetime, datetime] | None:
        """(position, when it was last moved, by this machine's clock) or None."""
        self.flush_records()
        with self.engine.connect() as connection:
            row = connection.execute(
                select(watermarks.c.position, watermarks.c.updated_at).where(
                    (watermarks.c.site == site)
                    & (watermarks.c.data_type == data_type)
                    & (watermarks.c.destination == destination)
                )
            ).first()
        return None if row is None else (as_utc(row.position), as_utc(row.updated_at))

    def advance_watermark(
        self,
        site: str,
        data_type: str,
        destination: str,
        position: datetime,
        *,
        allow_back: bool = False,
    ) -> None:
        """Move a watermark forward (never back, unless ``allow_back``: the
        appliance's clock was set back and positions must follow it)."""
        self.flush_records()
        with self._write_lock, self.engine.begin() as connection:
            key = (
                (watermarks.c.site == site)
                & (watermarks.c.data_type == data_type)
                & (watermarks.c.destination == destination)
            )
            current = aware(connection.execute(select(watermarks.c.position).where(key)).scalar())
            if current is None:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            watermarks.insert().values(
                                site=site,
                                data_type=data_type,
                                destination=destination,
                                position=position,
                                updated_at=now(),
                            )
                        )
                    return
                except IntegrityError:
                    # Another process wrote the first watermark meanwhile: move it as usual.
                    current = aware(
                        connection.execute(select(watermarks.c.position).where(key)).scalar()
                    )
            if current is None or position > current or allow_back:
                connection.execute(
                    update(watermarks).where(key).values(position=position, updated_at=now())
                )
