"""Reaching the storage database: the URL, the engine, and its errors in a user's words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

import btic
from btic_sqlserver.options import SqlServerOptions

#: The package that brings each driver, for the "install it" line.
_DRIVER_PACKAGES = {
    "pyodbc": "pyodbc (pip install 'btic-sqlserver[mssql]'; and unixODBC with the "
    "database's ODBC driver)",
    "psycopg": "psycopg (pip install 'btic-sqlserver[postgresql]')",
    "psycopg2": "psycopg2 (pip install psycopg2-binary)",
    "pymysql": "PyMySQL (pip install pymysql)",
    "mysqldb": "mysqlclient (pip install mysqlclient)",
    "pymssql": "pymssql (pip install pymssql)",
}


def odbc_url(connection_string: str) -> str:
    """The guide's ODBC connection string (``Driver=...;Server=...;Database=...;
    Trusted_Connection=yes`` or ``Uid=...;Pwd=...``) as an ``mssql+pyodbc`` URL.

    The string is passed to the driver whole (``odbc_connect``), so every
    keyword the driver knows keeps working.
    """
    text = connection_string.strip().rstrip(";")
    if not re.search(r"(^|;)\s*(driver|dsn)\s*=", text, re.IGNORECASE):
        raise ValueError(
            "an ODBC connection string names its driver, as in "
            '"Driver={ODBC Driver 18 for SQL Server};Server=db;Database=btic;'
            'Trusted_Connection=yes" (or a DSN=...)'
        )
    return "mssql+pyodbc:///?odbc_connect=" + quote_plus(text)


def database_of(options: SqlServerOptions, config_dir: Path) -> tuple[str, str]:
    """The SQLAlchemy URL of a destination's database, and how messages name it
    (its reference, or the URL with the password masked).

    :raises btic.ConfigError: the connection string or URL is unusable.
    """
    if options.connection_string is not None:
        try:
            url = odbc_url(options.connection_string.get_secret_value())
        except ValueError as exc:
            raise btic.ConfigError(f"connection_string: {exc}") from None
        return url, f"SQL Server ({options.connection_string.display})"
    assert options.url is not None
    url = options.url.get_secret_value()
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError as exc:
        raise btic.ConfigError(f"url: not a database URL: {exc}") from None
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        # Relative to the configuration file, like every other path in it.
        path = Path(database).expanduser()
        if not path.is_absolute():
            url = parsed.set(database=str(config_dir / path)).render_as_string(hide_password=False)
    return url, options.url.display


def make_engine(url: str, where: str) -> sa.Engine:
    """An engine for ``url``; nothing is connected yet.

    :param where: how messages name the database (its URL, password hidden).
    :raises btic.DestinationError: the URL is unusable or its driver is missing.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError as exc:
        raise btic.DestinationError(f"{where}: not a database URL: {exc}") from None
    options: dict[str, object] = {"pool_pre_ping": True}
    backend = parsed.get_backend_name()
    if backend == "mssql" and parsed.get_driver_name() == "pyodbc":
        # Parameter arrays, one round trip per batch (SQLAlchemy keeps each
        # statement under SQL Server's 2,100-parameter limit).
        options["fast_executemany"] = True
    if backend == "sqlite":
        options["connect_args"] = {"timeout": 30}
    try:
        engine = sa.create_engine(url, **options)
    except ImportError as exc:
        raise btic.DestinationError(f"{where}: {missing_driver(exc)}") from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
        raise btic.DestinationError(f"{where}: {exc}") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def missing_driver(exc: ImportError) -> str:
    module = (exc.name or str(exc)).split(".")[0]
    package = _DRIVER_PACKAGES.get(module.lower(), module)
    return f"the database driver is not installed: install {package}"


# -- errors --------------------------------------------------------------------------

#: SQLSTATEs of a transaction the server chose to abort, to be run again.
_RETRY_STATES = frozenset({"40001", "40P01"})
_RETRY_WORDS = ("deadlock", "database is locked", "lock wait timeout", "serialize access")


def should_retry(error: sa_exc.DBAPIError) -> bool:
    """A deadlock victim, a serialization failure or a lock timeout: run the
    transaction again."""
    original = error.orig
    state = getattr(original, "sqlstate", None) or _odbc_state(original)
    if state in _RETRY_STATES:
        return True
    text = str(original).lower()
    return any(word in text for word in _RETRY_WORDS)


def _odbc_state(original: BaseException | None) -> str | None:
    # pyodbc puts the SQLSTATE first in its args.
    args: tuple[Any, ...] = getattr(original, "args", ())
    if args and isinstance(args[0], str) and len(args[0]) == 5:
        return args[0]
    return None


def cause(error: BaseException) -> str:
    """The database's own words, on one line, without the statement or its values."""
    original = getattr(error, "orig", None) or error
    args: tuple[Any, ...] = getattr(original, "args", ())
    if _odbc_state(original) and len(args) > 1 and isinstance(args[1], str):
        # pyodbc: ('42000', '[42000] [ma-3.1.18]Access denied ... (1142) (SQLExecDirectW)')
        text = re.sub(r"^(\[[^\]]*\]\s*)+", "", args[1])
        text = re.sub(r"\s*\(SQL\w+\)$", "", text)
    else:
        text = str(original)
    return " ".join(text.split())[:300]


def is_connection_problem(error: BaseException) -> bool:
    return isinstance(error, sa_exc.DBAPIError) and (
        error.connection_invalidated or isinstance(error, sa_exc.OperationalError)
    )


__all__ = ["cause", "database_of", "make_engine", "missing_driver", "odbc_url", "should_retry"]
