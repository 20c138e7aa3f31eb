"""Access to one state database: the ledger, watermarks, runs and leases.

SQLAlchemy Core on any database (SQLite by default, PostgreSQL tested). The
ledger has one row per (site, destination, data type, item): what became of
the item there and when. Rows are written the moment a delivery ends, so a
killed process loses at most the item in hand, which the next run redelivers
(destinations are idempotent). The schema carries a version so later releases
can migrate it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.sql.elements import ColumnElement

from btic.errors import BticError
from btic.state import batches
from btic.state.destination_values import DestinationValues
from btic.state.digests import DigestRecords
from btic.state.entries import LedgerEntry, is_session_marker, ledger_entry
from btic.state.records import RunRecords
from btic.state.retention import RetentionRecords
from btic.state.schema import (
    FAILED,
    GIVEN_UP,
    SCHEMA_VERSION,
    SETTLED,
    deliveries,
    ledger_indexes,
    meta_table,
    metadata,
    watermarks,
)
from btic.state.session_index import SessionIndex
from btic.state.tasks import TaskRecords
from btic.state.values import now, stored_key
from btic.state.verification import VerificationRecords
from btic.state.watermarks import Watermarks
from btic.statuses import LedgerStatus

#: Tries at creating the schema when other processes create it at the same moment.
_PREPARE_TRIES = 8
#: The PostgreSQL advisory lock that serialises schema creation ("btic" in ASCII).
_SCHEMA_LOCK_KEY = 0x62746963


#: Keys per statement when items are looked up by key.
_ITEMS_CHUNK = 500


class StateError(BticError):
    """The state database cannot be used."""


class StateStore(
    Watermarks,
    RunRecords,
    TaskRecords,
    DestinationValues,
    SessionIndex,
    RetentionRecords,
    DigestRecords,
    VerificationRecords,
):
    """Access to one state database.

    :param url: any SQLAlchemy URL; SQLite files get WAL and full sync so a
        recorded delivery survives a crash.
    """

    def __init__(self, url: str):
        self.url = url
        _create_private(url)
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StateError(f"state database {_safe(url)}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock = threading.Lock()
        self._pending = batches.PendingRecords()
        self._summaries = {}
        self._prepare()

    def close(self) -> None:
        self.flush_records()
        self.flush_index()
        self.engine.dispose()

    def _prepare(self) -> None:
        # Two processes may open a new database at once. PostgreSQL serialises them
        # with an advisory lock; elsewhere the loser of the race sees the winner's
        # tables ("already exists", a duplicate key) and simply tries again.
        for attempt in range(_PREPARE_TRIES):
            try:
                with self.engine.begin() as connection:
                    if self.engine.dialect.name == "postgresql":
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
                        )
                    self._create_or_check(connection)
                return
            except (OperationalError, IntegrityError, ProgrammingError) as exc:
                lost_race = isinstance(exc, IntegrityError) or any(
                    sign in str(exc) for sign in ("already exists", "database is locked")
                )
                if lost_race and attempt + 1 < _PREPARE_TRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise StateError(
                    f"state database {_safe(self.url)} cannot be opened: {exc.orig}"
                ) from None

    def _create_or_check(self, connection: Connection) -> None:
        metadata.create_all(connection)
        for index in ledger_indexes:
            index.create(connection, checkfirst=True)
        version = connection.execute(
            select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        ).scalar()
        if version is None:
            connection.execute(
                meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
            )
        elif int(version) > SCHEMA_VERSION:
            raise StateError(
                f"state database {_safe(self.url)} has schema version {version}, newer "
                f"than this btic understands ({SCHEMA_VERSION}); upgrade btic"
            )
        elif int(version) < SCHEMA_VERSION:
            # Older versions are migrated one step at a time, in this transaction.
            for step in range(int(version), SCHEMA_VERSION):
                _MIGRATIONS[step](connection)
            connection.execute(
                update(meta_table)
                .where(meta_table.c.key == "schema_version")
                .values(value=str(SCHEMA_VERSION))
            )

    # -- ledger -------------------------------------------------------------------

    def settled(
        self,
        site: str,
        destination: str,
        data_type: str,
        keys: Iterable[str],
        include_given_up: bool = True,
    ) -> set[str]:
        """The keys among ``keys`` that need no further delivery to ``destination``
        (those waiting for their group commit included: asked once per session by
        ``import-xml``, this must not commit each time)."""
        stored = {stored_key(key): key for key in keys}
        keys = list(stored)
        found = {stored[k] for k in self._pending.settled(site, destination, data_type, keys)}
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                statuses = (*SETTLED, GIVEN_UP) if include_given_up else SETTLED
                condition: ColumnElement[bool] = deliveries.c.status.in_(statuses)
                rows = connection.execute(
                    select(deliveries.c.item_key).where(
                        and_(
                            deliveries.c.site == site,
                            deliveries.c.destination == destination,
                            deliveries.c.data_type == data_type,
                            deliveries.c.item_key.in_(chunk),
                            condition,
                        )
                    )
                )
                found.update(stored[row[0]] for row in rows)
        return found

    def record(
        self,
        *,
        site: str,
        destination: str,
        data_type: str,
        item_key: str,
        status: LedgerStatus,
        run_id: str,
        location: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        plain_sha256: str | None = None,
        error: str | None = None,
        item_time: datetime | None = None,
        give_up: bool = False,
        give_up_after: int | None = None,
        soon: bool = False,
    ) -> int:
        """Write the outcome of one delivery. Returns the count of consecutive
        failures (0 after a success).

        :param give_up: the failure is permanent: the item is given up now.
        :param give_up_after: give the item up when it has failed this many
            times in a row with the same error (for "no such item" from the
            appliance; never for a destination's failure, which may be an outage).
        :param soon: a settled outcome with its item's time may wait for the next
            group commit (see :mod:`btic.state.batches`): within a second, before
            the ledger is read or a watermark moves, and when the store is
            closed. Anything else is written at once.
        """
        moment = now()
        item_key = stored_key(item_key)
        values = {
            "status": status,
            "location": location,
            "size": size,
            "sha256": sha256,
            "plain_sha256": plain_sha256,
            "error": error,
            # Delivered anew: not verified since.
            "verified_at": None,
            "run_id": run_id,
            "updated_at": moment,
        }
        if item_time is not None:
            values["item_time"] = item_time
        if sha256 is None and status == FAILED:
            # A failure keeps what the last delivery recorded.
            del values["sha256"], values["plain_sha256"], values["verified_at"]
        if soon and status in SETTLED and item_time is not None:
            if self._pending.add((site, destination, data_type, item_key), values):
                self.flush_records()
            return 0
        self.flush_records()
        key = (
            (deliveries.c.site == site)
            & (deliveries.c.destination == destination)
            & (deliveries.c.data_type == data_type)
            & (deliveries.c.item_key == item_key)
        )
        with self._write_lock:
            for _ in range(2):
                with self.engine.begin() as connection:
                    previous = connection.execute(
                        select(
                            deliveries.c.attempts, deliveries.c.status, deliveries.c.error
                        ).where(key)
                    ).first()
                    if previous is not None:
                        attempts = previous.attempts + 1 if status == FAILED else 0
                        if (
                            status == FAILED
                            and previous.status in (FAILED, GIVEN_UP)
                            and previous.error != error
                        ):
                            attempts = 1  # a new kind of failure starts a new count
                        connection.execute(
                            update(deliveries)
                            .where(key)
                            .values(
                                attempts=attempts,
                                **_given_up(values, give_up, give_up_after, attempts),
                            )
                        )
                        return attempts
                    try:
                        attempts = 1 if status == FAILED else 0
                        connection.execute(
                            deliveries.insert().values(
                                site=site,
                                destination=destination,
                                data_type=data_type,
                                item_key=item_key,
                                attempts=attempts,
                                created_at=moment,
                                **_given_up(values, give_up, give_up_after, attempts),
                            )
                        )
                        return attempts
                    except IntegrityError:
                        continue  # another writer inserted it first: update instead
        raise StateError(f"could not record {data_type} {item_key} for {destination}")

    def recorded_sha256(
        self, *, site: str, destination: str, data_type: str, item_key: str
    ) -> str | None:
        """The sha256 the ledger last recorded for one item at one destination."""
        self.flush_records()
        with self.engine.connect() as connection:
            value = connection.execute(
                select(deliveries.c.sha256).where(
                    (deliveries.c.site == site)
                    & (deliveries.c.destination == destination)
                    & (deliveries.c.data_type == data_type)
                    & (deliveries.c.item_key == stored_key(item_key))
                )
            ).scalar()
        return None if value is None else str(value)

    def flush_records(self) -> None:
        """Commit the outcomes waiting for their group commit, in one transaction.

        Called before every read of the ledger: under the write lock, so a
        reader never passes a group another thread is still committing."""
        with self._write_lock:
            records = self._pending.take()
            if records:
                with self.engine.begin() as connection:
                    batches.write(connection, records, now())

    def entries(
        self,
        *,
        site: str | None = None,
        destination: str | None = None,
        status: str | None = None,
        data_type: str | None = None,
    ) -> Iterator[LedgerEntry]:
        self.flush_records()
        query = select(deliveries).order_by(deliveries.c.id)
        for column, value in (
            ("site", site),
            ("destination", destination),
            ("status", status),
            ("data_type", data_type),
        ):
            if value is not None:
                query = query.where(deliveries.c[column] == value)
        # Streamed in chunks: a ledger of a million rows must not sit in memory.
        with self.engine.connect().execution_options(yield_per=1000) as connection:
            for row in connection.execute(query):
                yield ledger_entry(row)

    def items_by_key(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """The ledger's rows of the given items at every destination, by (site, ledger
        key): a session's report and recordings are its lsid and ``lsid#instance``.
        The rows that only mark a session's numbered recordings as all delivered are
        left out (see :func:`is_session_marker`). A few statements for any number."""
        self.flush_records()
        by_site: dict[str, list[str]] = {}
        for site, key in keys:
            by_site.setdefault(site, []).append(stored_key(key))
        found: dict[tuple[str, str], list[LedgerEntry]] = {}
        with self.engine.connect() as connection:
            for site, wanted in by_site.items():
                for start in range(0, len(wanted), _ITEMS_CHUNK):
                    chunk = wanted[start : start + _ITEMS_CHUNK]
                    query = (
                        select(deliveries)
                        .where((deliveries.c.site == site) & deliveries.c.item_key.in_(chunk))
                        .order_by(deliveries.c.destination, deliveries.c.data_type)
                    )
                    for row in connection.execute(query):
                        entry = ledger_entry(row)
                        if not is_session_marker(entry.data_type, entry.item_key):
                            found.setdefault((site, entry.item_key), []).append(entry)
        return found

    def requeue_given_up(
        self, *, site: str | None = None, destination: str | None = None
    ) -> tuple[list[LedgerEntry], list[LedgerEntry]]:
        """Put the given-up items (of ``site``, of ``destination``) back in the queue.

        Each becomes ``failed`` with no attempts counted, and the watermark of its
        (site, data type, destination) moves back to just before the earliest of
        them, so the next incremental run lists them again; what is settled
        there is skipped as ever. One transaction: a crash leaves all or nothing.
        Items without a time — a backup (each run takes a new one) or a report
        that could not be read — cannot be listed again and stay given up.

        :return: (the items re-queued, the items left given up).
        """
        self.flush_records()
        query = select(deliveries).where(deliveries.c.status == GIVEN_UP)
        if site is not None:
            query = query.where(deliveries.c.site == site)
        if destination is not None:
            query = query.where(deliveries.c.destination == destination)
        requeued: list[LedgerEntry] = []
        left: list[LedgerEntry] = []
        with self._write_lock, self.engine.begin() as connection:
            earliest: dict[tuple[str, str, str], datetime] = {}
            ids = []
            for row in connection.execute(query).all():
                entry = ledger_entry(row)
                if entry.item_time is None or entry.data_type == "backup":
                    left.append(entry)
                    continue
                requeued.append(entry)
                ids.append(row.id)
                pair = (entry.site, entry.data_type, entry.destination)
                earliest[pair] = min(earliest.get(pair, entry.item_time), entry.item_time)
            for start in range(0, len(ids), 500):
                connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids[start : start + 500]))
                    .values(status=FAILED, attempts=0, updated_at=now())
                )
            for (item_site, data_type, item_destination), moment in earliest.items():
                key = (
                    (watermarks.c.site == item_site)
                    & (watermarks.c.data_type == data_type)
                    & (watermarks.c.destination == item_destination)
                    & (watermarks.c.position >= moment)
                )
                connection.execute(
                    update(watermarks)
                    .where(key)
                    .values(position=moment - timedelta(seconds=1), updated_at=now())
                )
        return requeued, left

    def count_given_up(self, sites: Iterable[str] | None = None) -> int:
        """How many items are given up (of ``sites``, or all)."""
        self.flush_records()
        query = select(func.count()).select_from(deliveries).where(deliveries.c.status == GIVEN_UP)
        if sites is not None:
            query = query.where(deliveries.c.site.in_(list(sites)))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def count(self) -> int:
        self.flush_records()
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(deliveries)).scalar_one()


def _size_as_bigint(connection: Connection) -> None:
    """1 -> 2: ``btic_deliveries.size`` held sizes up to 2 GiB on PostgreSQL, MySQL
    and SQL Server (a longer recording could not be recorded); SQLite's integers
    are 64-bit already."""
    statement = {
        "postgresql": "ALTER TABLE btic_deliveries ALTER COLUMN size TYPE BIGINT",
        "mysql": "ALTER TABLE btic_deliveries MODIFY size BIGINT",
        "mariadb": "ALTER TABLE btic_deliveries MODIFY size BIGINT",
        "mssql": "ALTER TABLE btic_deliveries ALTER COLUMN size BIGINT",
    }.get(connection.dialect.name)
    if statement is not None:
        connection.execute(text(statement))


def _sealing_and_verification(connection: Connection) -> None:
    """2 -> 3: ``btic_deliveries.plain_sha256`` (items sealed to age recipients) and
    ``verified_at`` (when ``btic verify`` last found an item)."""
    columns = {column["name"] for column in inspect(connection).get_columns("btic_deliveries")}
    add = "ADD" if connection.dialect.name == "mssql" else "ADD COLUMN"
    moment = {
        "postgresql": "TIMESTAMP WITH TIME ZONE",
        "mssql": "DATETIMEOFFSET",
        "mysql": "DATETIME",
        "mariadb": "DATETIME",
    }.get(connection.dialect.name, "DATETIME")
    for name, kind in (("plain_sha256", "VARCHAR(64)"), ("verified_at", moment)):
        if name not in columns:
            connection.execute(text(f"ALTER TABLE btic_deliveries {add} {name} {kind}"))


#: The step from each schema version to the next.
_MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _size_as_bigint,
    2: _sealing_and_verification,
}


def _given_up(
    values: dict[str, Any], give_up: bool, give_up_after: int | None, attempts: int
) -> dict[str, Any]:
    """``values`` with the status turned to GIVEN_UP when the failure is given up."""
    if values["status"] != FAILED:
        return values
    if give_up or (give_up_after is not None and attempts >= give_up_after):
        return {**values, "status": GIVEN_UP}
    return values


@contextmanager
def opened_state(url: str) -> Iterator[StateStore]:
    """The state database at ``url``, open for the block and closed after it; its
    failures reported as :func:`failures_reported` does."""
    with failures_reported(url):
        state = StateStore(url)
        try:
            yield state
        finally:
            state.close()


@contextmanager
def failures_reported(url: str) -> Iterator[None]:
    """Turn a failure of the state database into a :class:`StateError` naming it.

    The ledger holds every delivery recorded before the failure; the next run
    redelivers the rest (destinations are idempotent), which the message says.
    """
    try:
        yield
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StateError(
            f"state database {_safe(url)}: {reason}; fix it and run again: nothing recorded is lost"
        ) from None


def _create_private(url: str) -> None:
    """Create a SQLite state file that does not exist yet as its owner's alone
    (0600): the ledger names every session archived. SQLite gives its WAL and
    shared-memory files the database file's mode."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return  # create_engine says what is wrong with it
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return  # a URI filename: SQLite opens it as its options say
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # a missing directory and the like: create_engine reports it


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: a process opening the file while another creates it waits instead of failing.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    return _safe(url)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never show a URL we cannot parse
        return "(unparseable URL)"
