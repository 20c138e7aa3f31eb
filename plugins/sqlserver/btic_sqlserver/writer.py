"""Writing sessions: each one replaced whole, in one transaction, retried when the
server aborts it.

A handful of round trips per session whatever its size: one statement per
table, each an ``executemany`` of all its rows. The only keys read back are the
session's own and its events' (one ``SELECT`` in insertion order), so no row
needs its own ``RETURNING`` or ``SCOPE_IDENTITY`` trip.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

import btic
from btic_sqlserver import schema
from btic_sqlserver.connection import cause, should_retry
from btic_sqlserver.rows import SessionRows

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

    def replace(self, rows: SessionRows) -> None:
        """Store one session, replacing any earlier copy and all its child rows.

        :raises sqlalchemy.exc.SQLAlchemyError: what the database said, after
            the retries a deadlock or a concurrent insert deserve.
        """
        for attempt in range(ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    self._delete(connection, rows.session["host_name"], rows.session["lsid"])
                    self._insert(connection, rows)
                return
            except sa_exc.DBAPIError as exc:
                retry = should_retry(exc) or isinstance(exc, sa_exc.IntegrityError)
                if attempt == ATTEMPTS - 1 or not retry:
                    raise
                # Apart, so two writers that collided do not collide again.
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))

    def _delete(self, connection: sa.Connection, host_name: str, lsid: str) -> None:
        session = schema.session
        found = connection.execute(
            sa.select(session.c.id).where(session.c.host_name == host_name, session.c.lsid == lsid)
        ).scalar()
        if found is None:
            return
        events = sa.select(schema.session_event.c.id).where(
            schema.session_event.c.session_id == found
        )
        for table in schema.EVENT_CHILDREN:
            connection.execute(table.delete().where(table.c.session_event_id.in_(events)))
        connection.execute(
            schema.session_event.delete().where(schema.session_event.c.session_id == found)
        )
        for table in schema.SESSION_CHILDREN:
            connection.execute(table.delete().where(table.c.session_id == found))
        connection.execute(session.delete().where(session.c.id == found))

    def _insert(self, connection: sa.Connection, rows: SessionRows) -> None:
        session_id = _new_id(connection.execute(schema.session.insert(), rows.session))
        for table, table_rows in rows.children.items():
            if table_rows:
                connection.execute(
                    table.insert(), [{**row, "session_id": session_id} for row in table_rows]
                )
        if not rows.events:
            return
        event = schema.session_event
        connection.execute(
            event.insert(), [{**e.event, "session_id": session_id} for e in rows.events]
        )
        # Keys grow in insertion order within this transaction's own rows.
        event_ids = (
            connection.execute(
                sa.select(event.c.id).where(event.c.session_id == session_id).order_by(event.c.id)
            )
            .scalars()
            .all()
        )
        if len(event_ids) != len(rows.events):
            raise sa_exc.InvalidRequestError(
                f"wrote {len(rows.events)} events and read back {len(event_ids)}"
            )
        data = [
            {**row, "session_event_id": event_id}
            for event_id, e in zip(event_ids, rows.events, strict=True)
            for row in e.data
        ]
        if data:
            connection.execute(schema.session_event_data.insert(), data)
        information = [
            {**row, "session_event_id": event_id}
            for event_id, e in zip(event_ids, rows.events, strict=True)
            for row in e.system_information
        ]
        if information:
            connection.execute(schema.system_information.insert(), information)

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


__all__ = ["ATTEMPTS", "SchemaMismatch", "Writer"]
