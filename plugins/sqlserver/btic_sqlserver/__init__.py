"""btic destination plugin: session reports in SQL Server, or any SQLAlchemy database.

Settings follow the vendor's SQL Server plugin: the connection string and
whether to store system information. SQL databases receive session reports
only; recordings and backups go to file or object destinations.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

import btic
from btic.secrets import DatabaseUrl, Secret

__version__ = "0.1.0"


class SqlServerOptions(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "sqlserver"``.

    Give either ``url`` (any SQLAlchemy URL, e.g. ``mssql+pyodbc://...``,
    ``postgresql+psycopg://...``, ``sqlite:///...``) or ``connection_string``
    (an ODBC connection string as the vendor's tool takes, for SQL Server).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: DatabaseUrl | None = Field(default=None, description="SQLAlchemy database URL")
    connection_string: Secret | None = Field(
        default=None, description="ODBC connection string for SQL Server (instead of url)"
    )
    should_store_system_information: bool = Field(
        default=True, description="store the system_information rows of each session"
    )

    @model_validator(mode="after")
    def _one_target(self) -> SqlServerOptions:
        if (self.url is None) == (self.connection_string is None):
            raise ValueError("give exactly one of url or connection_string")
        return self


class SqlServerDestination:
    """Stores each session report as rows of the Integration Client's tables."""

    Options = SqlServerOptions

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        raise btic.DestinationError(
            f"{ctx.destination}: btic-sqlserver {__version__} cannot store sessions yet"
        )
