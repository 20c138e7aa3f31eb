"""The plugin's settings: the vendor's SQL Server plugin's, plus a SQLAlchemy URL."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from btic import DatabaseUrl, Secret


class SqlServerOptions(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "sqlserver"``.

    Give either ``url`` (any SQLAlchemy URL, e.g. ``mssql+pyodbc://...``,
    ``postgresql+psycopg://...``, ``sqlite:///...``) or ``connection_string``
    (an ODBC connection string as the vendor's tool takes, for SQL Server).
    Both may be secret references (``env:NAME``, ``file:PATH``).
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
