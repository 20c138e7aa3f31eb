"""The SQL plugin passes btic's destination conformance suite, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from contextlib import contextmanager
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

    @contextmanager
    def outage(self, options):
        url = options["url"]
        if url.startswith("sqlite:///"):
            # The database file's place is taken by a directory: it cannot be opened.
            path = Path(url.removeprefix("sqlite:///"))
            away = path.with_name(path.name + ".away")
            if path.exists():
                path.rename(away)
            path.mkdir()
            try:
                yield
            finally:
                path.rmdir()
                if away.exists():
                    away.rename(path)
            return
        # PostgreSQL refuses every connection to the database, and drops those open.
        import psycopg

        server, name = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            try:
                yield
            finally:
                admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

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
