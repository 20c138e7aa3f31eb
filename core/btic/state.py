"""The state database: the ledger of deliveries, watermarks and runs.

SQLAlchemy Core on any database (SQLite by default, PostgreSQL tested). The
ledger has one row per (site, destination, data type, item): what became of
the item there and when. Rows are written the moment a delivery ends, so a
killed process loses at most the item in hand, which the next run redelivers
(destinations are idempotent). The schema carries a version so later releases
can migrate it.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from btic.errors import BticError

SCHEMA_VERSION = 1
#: A failure repeated this many times is given up on (reported, not retried).
MAX_ATTEMPTS = 5

DELIVERED, SKIPPED, FAILED, EXPIRED = "delivered", "skipped", "failed", "expired"
#: Statuses that settle an item: it is not fetched again unless forced.
SETTLED = (DELIVERED, SKIPPED, EXPIRED)

metadata = MetaData()

meta_table = Table(
    "btic_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

deliveries = Table(
    "btic_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("data_type", String(32), nullable=False),
    Column("item_key", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("location", Text),
    Column("size", Integer),
    Column("sha256", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("item_time", DateTime(timezone=True)),
    Column("run_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("site", "destination", "data_type", "item_key", name="uq_btic_delivery"),
)

watermarks = Table(
    "btic_watermarks",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("data_type", String(32), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("position", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "btic_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("schedule", String(64)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("summary", Text),
)

locks = Table(
    "btic_locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


class StateError(BticError):
    """The state database cannot be used."""


@dataclass(frozen=True)
class LedgerEntry:
    site: str
    destination: str
    data_type: str
    item_key: str
    status: str
    location: str | None
    size: int | None
    sha256: str | None
    attempts: int
    error: str | None
    updated_at: datetime


def now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything here is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


class StateStore:
    """Access to one state database.

    :param url: any SQLAlchemy URL; SQLite files get WAL and full sync so a
        recorded delivery survives a crash.
    """

    def __init__(self, url: str):
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StateError(f"state database {_safe(url)}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock = threading.Lock()
        self._prepare()

    def close(self) -> None:
        self.engine.dispose()

    def _prepare(self) -> None:
        try:
            with self.engine.begin() as connection:
                metadata.create_all(connection)
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
                # Older versions are migrated here, one step at a time, as releases add them.
        except OperationalError as exc:
            raise StateError(
                f"state database {_safe(self.url)} cannot be opened: {exc.orig}"
            ) from None

    # -- ledger -------------------------------------------------------------------

    def settled(
        self,
        site: str,
        destination: str,
        data_type: str,
        keys: Iterable[str],
        include_given_up: bool = True,
    ) -> set[str]:
        """The keys among ``keys`` that need no further delivery to ``destination``."""
        keys = list(keys)
        found: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                condition: ColumnElement[bool] = deliveries.c.status.in_(SETTLED)
                if include_given_up:
                    condition = condition | (
                        (deliveries.c.status == FAILED) & (deliveries.c.attempts >= MAX_ATTEMPTS)
                    )
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
                found.update(row[0] for row in rows)
        return found

    def record(
        self,
        *,
        site: str,
        destination: str,
        data_type: str,
        item_key: str,
        status: str,
        run_id: str,
        location: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        error: str | None = None,
        item_time: datetime | None = None,
        give_up: bool = False,
    ) -> int:
        """Write the outcome of one delivery at once. Returns the count of
        consecutive failures (0 after a success).

        :param give_up: the failure is permanent: count it as the last attempt.
        """
        moment = now()
        key = (
            (deliveries.c.site == site)
            & (deliveries.c.destination == destination)
            & (deliveries.c.data_type == data_type)
            & (deliveries.c.item_key == item_key)
        )
        values = {
            "status": status,
            "location": location,
            "size": size,
            "sha256": sha256,
            "error": error,
            "run_id": run_id,
            "updated_at": moment,
        }
        if item_time is not None:
            values["item_time"] = item_time
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
                            and previous.status == FAILED
                            and previous.error != error
                        ):
                            attempts = 1  # a new kind of failure starts a new count
                        if give_up and status == FAILED:
                            attempts = max(attempts, MAX_ATTEMPTS)
                        connection.execute(
                            update(deliveries).where(key).values(attempts=attempts, **values)
                        )
                        return attempts
                    try:
                        attempts = (MAX_ATTEMPTS if give_up else 1) if status == FAILED else 0
                        connection.execute(
                            deliveries.insert().values(
                                site=site,
                                destination=destination,
                                data_type=data_type,
                                item_key=item_key,
                                attempts=attempts,
                                created_at=moment,
                                **values,
                            )
                        )
                        return attempts
                    except IntegrityError:
                        continue  # another writer inserted it first: update instead
        raise StateError(f"could not record {data_type} {item_key} for {destination}")

    def entries(
        self,
        *,
        site: str | None = None,
        destination: str | None = None,
        status: str | None = None,
        data_type: str | None = None,
    ) -> Iterator[LedgerEntry]:
        query = select(deliveries).order_by(deliveries.c.id)
        for column, value in (
            ("site", site),
            ("destination", destination),
            ("status", status),
            ("data_type", data_type),
        ):
            if value is not None:
                query = query.where(deliveries.c[column] == value)
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                yield LedgerEntry(
                    row.site,
                    row.destination,
                    row.data_type,
                    row.item_key,
                    row.status,
                    row.location,
                    row.size,
                    row.sha256,
                    row.attempts,
                    row.error,
                    _utc(row.updated_at),
                )

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(deliveries)).scalar_one()

    # -- watermarks --------------------------------------------------------------------

    def watermark(self, site: str, data_type: str, destination: str) -> datetime | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(watermarks.c.position).where(
                    (watermarks.c.site == site)
                    & (watermarks.c.data_type == data_type)
                    & (watermarks.c.destination == destination)
                )
            ).scalar()
        return _aware(value)

    def watermark_entry(
        self, site: str, data_type: str, destination: str
    ) -> tuple[datetime, datetime] | None:
        """(position, when it was last moved, by this machine's clock) or None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(watermarks.c.position, watermarks.c.updated_at).where(
                    (watermarks.c.site == site)
                    & (watermarks.c.data_type == data_type)
                    & (watermarks.c.destination == destination)
                )
            ).first()
        return None if row is None else (_utc(row.position), _utc(row.updated_at))

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
        with self._write_lock, self.engine.begin() as connection:
            key = (
                (watermarks.c.site == site)
                & (watermarks.c.data_type == data_type)
                & (watermarks.c.destination == destination)
            )
            current = _aware(connection.execute(select(watermarks.c.position).where(key)).scalar())
            if current is None:
                connection.execute(
                    watermarks.insert().values(
                        site=site,
                        data_type=data_type,
                        destination=destination,
                        position=position,
                        updated_at=now(),
                    )
                )
            elif position > current or allow_back:
                connection.execute(
                    update(watermarks).where(key).values(position=position, updated_at=now())
                )

    # -- runs -------------------------------------------------------------------------

    def start_run(self, kind: str, schedule: str | None = None) -> str:
        run_id = str(uuid.uuid4())
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                runs.insert().values(
                    id=run_id,
                    kind=kind,
                    schedule=schedule,
                    started_at=now(),
                    status="running",
                    host=socket.gethostname(),
                    pid=os.getpid(),
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str, summary: str | None = None) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, finished_at=now(), summary=summary)
            )


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
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
