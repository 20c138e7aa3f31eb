"""The SQL destination: each session report as rows of the storage tables.

It implements ``on_session_xml`` and no recording or backup hook: as the guide
says, recordings and backups can be saved to files, not to the database, and a
schedule that routes them here is refused when the configuration loads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc

import btic
from btic_sqlserver import digests
from btic_sqlserver.connection import cause, database_of, is_connection_problem, make_engine
from btic_sqlserver.options import SqlServerOptions

# The tables (with SQL Server's and MySQL's dialects) and the row models are
# imported when a SQL destination is first used, in the hooks below: every btic
# command loads every installed plugin, and a command without a SQL destination
# would otherwise pay ~70 ms of start-up for them.
if TYPE_CHECKING:
    import click

    from btic_sqlserver.rows import SessionRows
    from btic_sqlserver.writer import Writer


class SqlServerDestination:
    """Stores each session report as rows of the Integration Client's tables."""

    #: the plugin API this plugin is written for (btic refuses a later one it lacks)
    api_version = (1, 0)

    Options = SqlServerOptions

    def __init__(self) -> None:
        self._options: SqlServerOptions | None = None
        self._url = ""
        self._where = "the storage database"
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        # (item key, rows) of the sessions taken since the last on_flush
        self._batch: list[tuple[btic.ItemKey, SessionRows]] = []

    @btic.hookimpl
    def register_commands(self, cli: click.Group) -> None:
        from btic_sqlserver.commands import sql_group  # loaded for the command alone

        cli.add_command(sql_group)

    @btic.hookimpl
    def on_configure(self, options: SqlServerOptions, app: btic.AppContext) -> None:
        self._options = options
        self._url, self._where = database_of(options, app.config_dir)

    @property
    def options(self) -> SqlServerOptions:
        if self._options is None:
            raise btic.DestinationError("the SQL destination was not configured")
        return self._options

    def _ready_writer(self) -> Writer:
        """The writer, its schema prepared (connecting on first use)."""
        from btic_sqlserver.writer import Writer

        with self._lock:
            if self._writer is None:
                self._writer = Writer(make_engine(self._url, self._where), self._where)
            writer = self._writer
        try:
            writer.prepare()
        except btic.DestinationError:
            raise
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure("cannot prepare the tables", exc) from None
        return writer

    def _failure(self, what: str, exc: BaseException) -> btic.DestinationError:
        if is_connection_problem(exc):
            what = f"cannot reach the database ({what})"
        return btic.DestinationError(f"{self._where}: {what}: {cause(exc)}")

    # -- hooks ---------------------------------------------------------------------------

    @btic.hookimpl
    def on_check(self) -> str:
        writer = self._ready_writer()
        try:
            writer.probe()
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure("cannot insert and delete a session row", exc) from None
        return f"{self._where}: tables ready, INSERT and DELETE allowed"

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery:
        from btic_sqlserver.rows import digest_of, session_rows
        from btic_sqlserver.verification import location

        # Refused here, alone, when a value cannot be stored; written with its batch.
        rows = session_rows(
            session, system_information=self.options.should_store_system_information
        )
        with self._lock:
            self._batch.append((ctx.item_key, rows))
        return btic.Delivery(
            location=location(rows.session["host_name"], rows.session["lsid"]),
            sha256=digest_of(rows),
            deferred=True,
        )

    @btic.hookimpl
    def on_flush(self) -> list[btic.Refusal]:
        from btic_sqlserver.writer import SchemaMismatch

        with self._lock:
            batch, self._batch = self._batch, []
        if not batch:
            return []
        writer = self._ready_writer()
        try:
            writer.replace([rows for _key, rows in batch])
        except SchemaMismatch:
            raise
        except sa_exc.DataError:
            # A value the database refused (one its column cannot hold, as it
            # measures): written one by one, so only that session fails.
            return self._one_by_one(writer, batch)
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure(f"a batch of {len(batch)} sessions", exc) from None
        return []

    def _one_by_one(
        self, writer: Writer, batch: list[tuple[btic.ItemKey, SessionRows]]
    ) -> list[btic.Refusal]:
        refusals = []
        for key, rows in batch:
            lsid = rows.session["lsid"]
            try:
                writer.replace([rows])
            except sa_exc.DataError as exc:
                reason = f"{self._where}: session {lsid}: {cause(exc)}"
                # Retrying cannot help until someone changes the table.
                refusals.append(btic.Refusal(key, btic.DestinationError(reason, permanent=True)))
            except sa_exc.SQLAlchemyError as exc:
                raise self._failure(f"session {lsid}", exc) from None
        return refusals

    @btic.hookimpl
    def on_verify(self, items: Iterable[btic.StoredItem]) -> Iterator[btic.VerifyFinding]:
        from btic_sqlserver import verification

        writer = self._ready_writer()
        return verification.findings(writer.engine, items, self._where)

    @btic.hookimpl
    def on_remove(self, item: btic.StoredItem) -> None:
        from btic_sqlserver.rows import storable

        writer = self._ready_writer()
        try:
            writer.remove(storable(item.site.host), storable(item.item_key.id))
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure(f"session {item.item_key.id}", exc) from None

    @btic.hookimpl
    def on_digest(self, digest: btic.Digest) -> str:
        writer = self._ready_writer()
        try:
            digests.store(writer.engine, digest)
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure(f"digest {digest.name}", exc) from None
        return f"{digests.digest_table.name}/{digest.name}"

    @btic.hookimpl
    def on_digests(self) -> Iterator[btic.Digest]:
        writer = self._ready_writer()
        try:
            return iter(list(digests.read(writer.engine)))
        except sa_exc.SQLAlchemyError as exc:
            raise self._failure("reading the digests", exc) from None

    @btic.hookimpl
    def on_list(self) -> Iterator[str]:
        from btic_sqlserver import verification

        writer = self._ready_writer()
        return verification.locations(writer.engine)


__all__ = ["SqlServerDestination"]
