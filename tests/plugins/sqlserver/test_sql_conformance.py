"""The SQL plugin passes btic's destination conformance suite, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from btic.testing import DestinationConformance

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import new_postgres_database


class TestSqlConformance(DestinationConformance):
    plugin = "sqlserver"

    @pytest.fixture(params=["sqlite", "postgresql"])
    def destination_options(self, request, tmp_path):
        if request.param == "sqlite":
            return {"url": f"sqlite:///{tmp_path / 'reports.db'}"}
        return {"url": new_postgres_database(request.getfixturevalue("postgres_url"))}

    @pytest.fixture
    def broken_options(self, tmp_path):
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("x")
        return {"url": f"sqlite:///{blocker / 'reports.db'}"}

    def stored_items(self, options):
        from btic_sqlserver.verification import location, stored_digest

        engine = sa.create_engine(options["url"])
        try:
            with engine.connect() as connection:
                if not sa.inspect(connection).has_table("session"):
                    return {}
                sessions = connection.execute(sa.text("SELECT host_name, lsid FROM session")).all()
                return {
                    location(host, lsid): (stored_digest(connection, host, lsid) or "").encode()
                    for host, lsid in sessions
                }
        finally:
            engine.dispose()
