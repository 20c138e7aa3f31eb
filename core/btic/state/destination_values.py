"""Each destination's own values by item key: what ``ctx.state`` reads and writes.

A value is written at once, in a transaction of its own: it says what the
destination's service holds (a sent-log), which is true the moment the service
answered, whether or not btic's ledger records the delivery afterwards.
"""

from __future__ import annotations

import threading

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from btic.state.schema import destination_values
from btic.state.values import now, stored_key
from btic.types import ItemKey


class DestinationValues:
    """The part of :class:`~btic.state.StateStore` that keeps destinations' values."""

    engine: Engine
    _write_lock: threading.Lock

    def destination_value(self, destination: str, key: ItemKey) -> str | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(destination_values.c.value).where(_row(destination, key))
            ).scalar()
        return None if value is None else str(value)

    def put_destination_value(self, destination: str, key: ItemKey, value: str) -> None:
        values = {"value": value, "updated_at": now()}
        with self._write_lock:
            for _ in range(2):
                with self.engine.begin() as connection:
                    changed = connection.execute(
                        update(destination_values).where(_row(destination, key)).values(values)
                    ).rowcount
                    if changed:
                        return
                    try:
                        connection.execute(
                            destination_values.insert().values(
                                destination=destination, item_key=stored_key(str(key)), **values
                            )
                        )
                        return
                    except IntegrityError:
                        continue  # another process inserted it first: update instead

    def delete_destination_value(self, destination: str, key: ItemKey) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(delete(destination_values).where(_row(destination, key)))

    def destination_state(self, destination: str) -> LedgerState:
        """``destination``'s values, as a :class:`btic.types.DestinationState`."""
        return LedgerState(self, destination)


class LedgerState:
    """One destination's values in the state database (a ``DestinationState``)."""

    def __init__(self, store: DestinationValues, destination: str):
        self._store = store
        self._destination = destination

    def get(self, key: ItemKey) -> str | None:
        return self._store.destination_value(self._destination, key)

    def put(self, key: ItemKey, value: str) -> None:
        self._store.put_destination_value(self._destination, key, value)

    def delete(self, key: ItemKey) -> None:
        self._store.delete_destination_value(self._destination, key)


def _row(destination: str, key: ItemKey) -> ColumnElement[bool]:
    return (destination_values.c.destination == destination) & (
        destination_values.c.item_key == stored_key(str(key))
    )
