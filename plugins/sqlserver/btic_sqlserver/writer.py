"""Writing sessions: a batch of them, each replaced whole, in one transaction,
retried when the server aborts it.

A batch of sessions takes a handful of round trips whatever its size: one
statement per table, each an ``executemany`` of all the batch's rows. The only
keys read back are the sessions' own and their events' (a ``SELECT`` in
insertion order), so no row needs its own ``RETURNING`` or ``SCOPE_IDENTITY``
trip.
"""

from __future__ import annotations

import operator
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

import btic
from btic_sqlserver import schema
from btic_sqlserver.connection import cause, should_retry
from btic_sqlserver.rows import Row, SessionRows

#: Times a transaction the server aborted (deadlock, serialization, a
#: concurrent insert of the same session) is run again.
ATTEMPTS = 6


class SchemaMismatch(btic.DestinationError):
    """The database holds tables that differ from what this release writes."""


class Writer:
    """Owns the storage database of one destination: its schema and its writes.

    :param engine: the database.
    :param where: how messages name it (the URL without its password).
    """

    def __init__(self, engine: sa.Engine, where: str):
        self.engine = engine
        self.where = where
        self._ready = False
        self._lock = threading.Lock()
        self._statements: dict[str, PreparedInsert] = {}

    # -- the schema ----------------------------------------------------------------

    def prepare(self) -> None:
        """Create missing tables and record the schema version; refuse a database
        whose tables differ. Once per destination and run."""
        with self._lock:
            if self._ready:
                return
            for attempt in range(ATTEMPTS):
                try:
                    with self.engine.begin() as connection:
                        problems = schema.differences(connection)
                        if problems:
                            raise SchemaMismatch(
                                f"{self.where}: the tables differ from what btic-sqlserver "
                                "writes (changed by hand, or by another tool); nothing was "
                                "altered: " + "; ".join(str(p) for p in problems)
                            )
                        schema.metadata.create_all(connection, checkfirst=True)
                        self._check_version(connection)
                    break
                except sa_exc.DBAPIError as exc:
                    # Two processes creating the tables at once: the loser sees the
                    # winner's ("already exists") and looks again.
                    if attempt == ATTEMPTS - 1 or not _lost_a_race(exc):
                        raise
                    time.sleep(0.2 * (attempt + 1))
            self._ready = True

    def _check_version(self, connection: sa.Connection) -> None:
        found = connection.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
        version = found.scalar()
        if version is None:
            connection.execute(
                schema.schema_version.insert(),
                {"version": schema.SCHEMA_VERSION, "applied_at": _now()},
            )
        elif version > schema.SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.where}: the tables are of schema version {version}, written by a "
                f"newer btic-sqlserver; this one knows version {schema.SCHEMA_VERSION}: "
                "upgrade btic-sqlserver"
            )

    # -- sessions -------------------------------------------------------------------

    def replace(self, batch: Sequence[SessionRows]) -> None:
        """Store sessions, each replacing any earlier copy and all its child rows,
        all in one transaction.

        :raises sqlalchemy.exc.SQLAlchemyError: what the database said, after
            the retries a deadlock or a concurrent insert deserve.
        """
        # One copy per session (the last); sorted, so writers that share
        # sessions take their locks in one order.
        unique = {(r.session["host_name"], r.session["lsid"]): r for r in batch}
        ordered = [unique[key] for key in sorted(unique)]
        for attempt in range(ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    self._delete(connection, self._ids(connection, list(unique)))
                    self._insert(connection, ordered)
                return
            except sa_exc.DBAPIError as exc:
                retry = should_retry(exc) or isinstance(exc, sa_exc.IntegrityError)
                if attempt == ATTEMPTS - 1 or not retry:
                    raise
                # Apart, so two writers that collided do not collide again.
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))

    def remove(self, host_name: str, lsid: str) -> None:
        """Delete a session's rows from every table, in one transaction (none: nothing)."""
        with self.engine.begin() as connection:
            self._delete(connection, self._ids(connection, [(host_name, lsid)]))

    def _ids(self, connection: sa.Connection, keys: list[tuple[str, str]]) -> dict[Any, Any]:
        """(host_name, lsid) -> session id, of the sessions the tables hold."""
        session = schema.session
        by_host: dict[str, list[str]] = {}
        for host_name, lsid in keys:
            by_host.setdefault(host_name, []).append(lsid)
        found: dict[Any, Any] = {}
        for host_name, lsids in by_host.items():
            for chunk in in_lists(lsids):
                rows = connection.execute(
                    sa.select(session.c.id, session.c.lsid).where(
                        session.c.host_name == host_name, session.c.lsid.in_(chunk)
                    )
                )
                found.update({(host_name, lsid): session_id for session_id, lsid in rows})
        return found

    def _delete(self, connection: sa.Connection, ids: dict[Any, Any]) -> None:
        event = schema.session_event
        for chunk in in_lists(sorted(ids.values())):
            events = sa.select(event.c.id).where(event.c.session_id.in_(chunk))
            for table in schema.EVENT_CHILDREN:
                connection.execute(table.delete().where(table.c.session_event_id.in_(events)))
            connection.execute(event.delete().where(event.c.session_id.in_(chunk)))
            for table in schema.SESSION_CHILDREN:
                connection.execute(table.delete().where(table.c.session_id.in_(chunk)))
            connection.execute(schema.session.delete().where(schema.session.c.id.in_(chunk)))

    def _insert(self, connection: sa.Connection, batch: list[SessionRows]) -> None:
        # The rows are the batch's own: their parents' keys are filled in place.
        self._bulk_insert(connection, schema.session, [rows.session for rows in batch])
        keys = [(rows.session["host_name"], rows.session["lsid"]) for rows in batch]
        ids = self._ids(connection, keys)
        session_ids = [ids[key] for key in keys]
        children: dict[sa.Table, list[Row]] = {table: [] for table in schema.SESSION_CHILDREN}
        events: list[Row] = []
        for session_id, rows in zip(session_ids, batch, strict=True):
            for table, table_rows in rows.children.items():
                for row in table_rows:
                    row["session_id"] = session_id
                children[table].extend(table_rows)
            for e in rows.events:
                e.event["session_id"] = session_id
                events.append(e.event)
        for table, table_rows in children.items():
            if table_rows:
                self._bulk_insert(connection, table, table_rows)
        if not events:
            return
        event = schema.session_event
        self._bulk_insert(connection, event, events)
        # Keys grow in insertion order among this transaction's own rows.
        event_ids: dict[Any, list[Any]] = {}
        for chunk in in_lists(session_ids):
            found = connection.execute(
                sa.select(event.c.session_id, event.c.id)
                .where(event.c.session_id.in_(chunk))
                .order_by(event.c.session_id, event.c.id)
            )
            for session_id, event_id in found:
                event_ids.setdefault(session_id, []).append(event_id)
        data: list[Row] = []
        information: list[Row] = []
        for session_id, rows in zip(session_ids, batch, strict=True):
            written = event_ids.get(session_id, [])
            if len(written) != len(rows.events):
                raise sa_exc.InvalidRequestError(
                    f"wrote {len(rows.events)} events and read back {len(written)}"
                )
            for event_id, e in zip(written, rows.events, strict=True):
                for row in e.data:
                    row["session_event_id"] = event_id
                for row in e.system_information:
                    row["session_event_id"] = event_id
                data.extend(e.data)
                information.extend(e.system_information)
        if data:
            self._bulk_insert(connection, schema.session_event_data, data)
        if information:
            self._bulk_insert(connection, schema.system_information, information)

    def _bulk_insert(self, connection: sa.Connection, table: sa.Table, rows: list[Row]) -> None:
        """One DB-API ``executemany`` of ``rows``.

        SQLAlchemy's ``execute(insert, rows)`` builds each row's parameters through
        its compiler, which costs more than the database's own work; here the
        statement is built once per table and each value goes through only its
        type's bind processor (the same conversion SQLAlchemy applies).
        """
        statement = self._statements.get(table.name)
        if statement is None:
            statement = self._statements[table.name] = PreparedInsert.of(table, self.engine.dialect)
        connection.exec_driver_sql(statement.sql, statement.parameters(rows))

    # -- a permission probe ----------------------------------------------------------

    def probe(self) -> None:
        """Insert and delete a session row, rolled back: the INSERT and DELETE
        permissions the guide asks for, leaving nothing."""
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                probe = {"lsid": "btic-probe", "type": "support", "host_name": "btic-probe.invalid"}
                probe_id = _new_id(connection.execute(schema.session.insert(), probe))
                connection.execute(schema.session.delete().where(schema.session.c.id == probe_id))
            finally:
                transaction.rollback()


@dataclass(frozen=True)
class PreparedInsert:
    """An ``INSERT`` of every column but the key, in the driver's own paramstyle."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    by_name: bool

    @classmethod
    def of(cls, table: sa.Table, dialect: sa.Dialect) -> PreparedInsert:
        columns = tuple(c for c in table.columns if not c.primary_key or c.autoincrement is False)
        names = tuple(c.name for c in columns)
        quote = dialect.identifier_preparer.quote
        style = dialect.paramstyle
        by_name = style in ("named", "pyformat")
        markers = {
            "qmark": ["?"] * len(names),
            "format": ["%s"] * len(names),
            "numeric": [f":{i}" for i in range(1, len(names) + 1)],
            "named": [f":{n}" for n in names],
            "pyformat": [f"%({n})s" for n in names],
        }[style]
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(markers)})"
        )
        processors = tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
        return cls(sql, names, processors, by_name)

    def parameters(self, rows: list[Row]) -> list[Any]:
        """Each row's values in column order, converted; every row names every column."""
        values_of = operator.itemgetter(*self.columns)
        converting = [(i, p) for i, p in enumerate(self.processors) if p is not None]
        converted: list[Any] = []
        for row in rows:
            values = list(values_of(row))
            for index, process in converting:
                if values[index] is not None:
                    values[index] = process(values[index])
            converted.append(tuple(values))
        if self.by_name:
            return [dict(zip(self.columns, values, strict=True)) for values in converted]
        return converted


def in_lists(values: Sequence[Any], size: int = 500) -> Iterator[list[Any]]:
    """``IN`` lists that stay far below SQL Server's 2,100 parameters a statement."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _new_id(result: sa.CursorResult[Any]) -> Any:
    key = result.inserted_primary_key
    if key is None:
        raise sa_exc.InvalidRequestError("the database did not say the new row's id")
    return key[0]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _lost_a_race(error: sa_exc.DBAPIError) -> bool:
    text = cause(error).lower()
    return (
        isinstance(error, sa_exc.IntegrityError) or "already exists" in text or should_retry(error)
    )


__all__ = ["ATTEMPTS", "PreparedInsert", "SchemaMismatch", "Writer", "in_lists"]
