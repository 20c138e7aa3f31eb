"""The storage database: the tables of the guides' "SQL Server Storage Database" chapter.

Table and column names are the guides' (IC guide 2024 for Remote Support, the
PA IC guide for Privileged Access), so reports written against the vendor's
database keep working. RS sites fill ``representative`` and ``customer``, PA
sites ``user`` and ``endpoint`` (the PA guide's "Endpoint (Customer)" table);
both sets live side by side in one database.

Text columns are Unicode (``NVARCHAR`` on SQL Server, ``utf8mb4`` on MySQL and
MariaDB); times are UTC, stored without a zone. The lengths are btic's choice
(the guides give none): long enough for what appliances send, short enough
for SQL Server's 900-byte index keys on the indexed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mssql

#: Raised by one each time the tables change; a newer database is refused.
SCHEMA_VERSION = 1

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_DATETIME2: type[sa.types.TypeEngine[Any]] = mssql.DATETIME2
_TIME = sa.DateTime().with_variant(_DATETIME2(), "mssql")
_FLAG = sa.SmallInteger  # the guides' "Integer value (1 or 0)"
_TABLE_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

NAME = 255
ADDRESS = 64


def _text(length: int | None = NAME) -> sa.types.TypeEngine[str]:
    if length is None:
        # NVARCHAR(max) on SQL Server: its NTEXT is deprecated.
        return sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")
    return sa.Unicode(length)


def _id() -> sa.Column[int]:
    return sa.Column("id", _ID, primary_key=True, autoincrement=True)


def _parent(table: str, column: str) -> sa.Column[int]:
    return sa.Column(column, _ID, sa.ForeignKey(f"{table}.id"), nullable=False, index=True)


session = sa.Table(
    "session",
    metadata,
    _id(),
    sa.Column("lsid", _text(64), nullable=False),
    sa.Column("type", _text(32), nullable=False),
    sa.Column("start_time", _TIME, index=True),
    sa.Column("end_time", _TIME, index=True),
    sa.Column("duration", _text(32)),
    sa.Column("file_transfers", sa.Integer),
    sa.Column("host_name", _text(NAME), nullable=False, index=True),
    sa.Column("external_key", _text(NAME), index=True),
    sa.Column("public_site_id", sa.Integer),
    sa.Column("public_site_name", _text(NAME)),
    sa.Column("lseq", sa.BigInteger),
    sa.Column("jump_group_id", sa.Integer),
    sa.Column("jump_group_name", _text(NAME)),
    sa.Column("jump_group_type", _text(32)),
    sa.Index("ix_session_lsid", "lsid"),
    # A session is one row per appliance: delivering it again replaces it.
    sa.UniqueConstraint("host_name", "lsid", name="uq_session_host_name_lsid"),
    **_TABLE_OPTIONS,
)

session_event = sa.Table(
    "session_event",
    metadata,
    _id(),
    _parent("session", "session_id"),
    sa.Column("type", _text(64), nullable=False, index=True),
    sa.Column("event_time", _TIME, index=True),
    sa.Column("performed_by", _text(NAME)),
    sa.Column("performed_by_type", _text(32)),
    sa.Column("destination", _text(NAME)),
    sa.Column("destination_type", _text(32)),
    **_TABLE_OPTIONS,
)

session_event_data = sa.Table(
    "session_event_data",
    metadata,
    _id(),
    _parent("session_event", "session_event_id"),
    sa.Column("name", _text(NAME), nullable=False),
    sa.Column("value", _text(None)),
    **_TABLE_OPTIONS,
)

system_information = sa.Table(
    "system_information",
    metadata,
    _id(),
    _parent("session_event", "session_event_id"),
    sa.Column("category", _text(NAME), nullable=False),
    sa.Column("information", _text(None)),
    **_TABLE_OPTIONS,
)


def _people(name: str) -> sa.Table:
    """``representative`` (RS) and ``user`` (PA): the same columns."""
    return sa.Table(
        name,
        metadata,
        _id(),
        sa.Column("gs_number", sa.Integer),
        _parent("session", "session_id"),
        sa.Column("user_id", sa.Integer, index=True),
        sa.Column("user_name", _text(NAME)),
        sa.Column("display_name", _text(NAME)),
        sa.Column("public_display_name", _text(NAME)),
        sa.Column("display_number", sa.Integer),
        sa.Column("public_ip", _text(ADDRESS)),
        sa.Column("private_ip", _text(ADDRESS)),
        sa.Column("is_owner", _FLAG, nullable=False),
        sa.Column("is_primary", _FLAG, nullable=False),
        sa.Column("duration", sa.Integer),
        sa.Column("host_name", _text(NAME)),
        sa.Column("operating_system", _text(NAME)),
        **_TABLE_OPTIONS,
    )


def _endpoints(name: str) -> sa.Table:
    """``customer`` (RS) and ``endpoint`` (PA): the same columns."""
    return sa.Table(
        name,
        metadata,
        _id(),
        _parent("session", "session_id"),
        sa.Column("gs_number", sa.Integer),
        sa.Column("issue", _text(NAME)),
        sa.Column("issue_description", _text(None)),
        sa.Column("display_name", _text(NAME)),
        sa.Column("company_name", _text(NAME)),
        sa.Column("company_code", _text(NAME)),
        sa.Column("public_ip", _text(ADDRESS)),
        sa.Column("private_ip", _text(ADDRESS)),
        sa.Column("rpat_support", _FLAG, nullable=False),
        sa.Column("host_name", _text(NAME)),
        sa.Column("operating_system", _text(NAME)),
        **_TABLE_OPTIONS,
    )


representative = _people("representative")
user = _people("user")
customer = _endpoints("customer")
endpoint = _endpoints("endpoint")

team = sa.Table(
    "team",
    metadata,
    _id(),
    _parent("session", "session_id"),
    sa.Column("team_id", sa.Integer, index=True),
    sa.Column("name", _text(NAME)),
    sa.Column("is_primary", _FLAG, nullable=False),
    **_TABLE_OPTIONS,
)

custom_attribute = sa.Table(
    "custom_attribute",
    metadata,
    _id(),
    _parent("session", "session_id"),
    sa.Column("display_name", _text(NAME)),
    sa.Column("code_name", _text(NAME), index=True),
    sa.Column("value", _text(None)),
    **_TABLE_OPTIONS,
)

#: Which release of these tables the database holds, for later migrations.
schema_version = sa.Table(
    "btic_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _TIME, nullable=False),
    **_TABLE_OPTIONS,
)

#: The people and endpoint tables of each product.
PEOPLE = {"rs": representative, "pa": user}
ENDPOINTS = {"rs": customer, "pa": endpoint}

#: A session's child tables, each with how its rows hang off the session.
SESSION_CHILDREN = (representative, user, customer, endpoint, team, custom_attribute)
EVENT_CHILDREN = (session_event_data, system_information)

DIALECTS = ("mssql", "postgresql", "mysql", "sqlite")


def ddl(dialect_name: str) -> str:
    """The ``CREATE TABLE`` and ``CREATE INDEX`` statements for one dialect, for DBAs
    who create the tables themselves."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = _dialect(dialect_name)
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return ";\n\n".join(statements) + ";\n"


def _dialect(name: str) -> sa.engine.Dialect:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    modules = {"mssql": mssql, "postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}
    if name not in modules:
        raise ValueError(f"unknown dialect {name!r}; one of: {', '.join(DIALECTS)}")
    return cast("sa.engine.Dialect", modules[name].dialect())


@dataclass(frozen=True)
class Difference:
    """How an existing table differs from what this release writes."""

    table: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table}: {self.problem}"


def differences(connection: sa.Connection) -> list[Difference]:
    """What an existing database lacks (tables, columns) or holds too short
    (text columns shorter than these); extra tables and columns are fine."""
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    found: list[Difference] = []
    for table in metadata.sorted_tables:
        if table.name not in present:
            continue  # created, not a difference
        columns = {c["name"].lower(): c for c in inspector.get_columns(table.name)}
        for column in table.columns:
            existing = columns.get(column.name.lower())
            if existing is None:
                found.append(Difference(table.name, f"column {column.name} is missing"))
                continue
            wanted = getattr(column.type, "length", None)
            have = getattr(existing["type"], "length", None)
            if wanted is not None and have is not None and have < wanted:
                found.append(
                    Difference(
                        table.name,
                        f"column {column.name} holds {have} characters, btic writes up to {wanted}",
                    )
                )
    return found


__all__ = [
    "DIALECTS",
    "ENDPOINTS",
    "EVENT_CHILDREN",
    "PEOPLE",
    "SCHEMA_VERSION",
    "SESSION_CHILDREN",
    "Difference",
    "ddl",
    "differences",
    "metadata",
]
