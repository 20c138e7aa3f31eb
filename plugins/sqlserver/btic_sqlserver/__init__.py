"""btic destination plugin: session reports in SQL Server, or any SQLAlchemy database.

Settings follow the vendor's SQL Server plugin: the connection string and
whether to store system information. The tables are the guides' "SQL Server
Storage Database" (docs/sql-schema.md). SQL databases receive session reports
only; recordings and backups go to file or object destinations.

* :mod:`btic_sqlserver.options` — the settings.
* :mod:`btic_sqlserver.schema` — the tables, their DDL, and how a database differs.
* :mod:`btic_sqlserver.rows` — a session report as rows, and their digest.
* :mod:`btic_sqlserver.connection` — URLs, engines, the database's errors.
* :mod:`btic_sqlserver.writer` — each session replaced whole in one transaction.
* :mod:`btic_sqlserver.verification` — ``btic verify`` against the tables.
* :mod:`btic_sqlserver.commands` — ``btic sql``.
"""

from __future__ import annotations

from btic_sqlserver.destination import SqlServerDestination
from btic_sqlserver.options import SqlServerOptions

__version__ = "1.0.0"

__all__ = ["SqlServerDestination", "SqlServerOptions", "__version__"]
